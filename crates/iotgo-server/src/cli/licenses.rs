//! `iotgo licenses create|export`: license batches of factory ("indie") devices, made and
//! exported as the admin panel does (same store call, same CSV).

use super::{ConfigArgs, open_store};
use crate::api::{MAX_CSV_ROWS, licenses_csv, validate};
use crate::store::{DeviceFilter, ListFilter, TimeRange};
use anyhow::Context;
use clap::Subcommand;
use iotgo_protocol::{DeviceId, DeviceType};
use std::io::Write;
use std::path::PathBuf;

/// The `licenses` group's help.
pub(super) const HELP: &str = "\
Examples:
  iotgo licenses create --type 02 --qty 500 --name 'ITEAD switch'
  iotgo licenses export --batch 0280000001 --out licenses.csv";

const CREATE_HELP: &str = "\
Prints the batch id (the first license's deviceid) on standard output; progress goes to
standard error. A batch holds up to 100000 licenses (the admin panel makes up to 1000).

Example:
  BATCH=$(iotgo licenses create --type 02 --qty 500 --name 'ITEAD switch')
  iotgo licenses export --batch $BATCH --out licenses-$BATCH.csv";

const EXPORT_HELP: &str = "\
The CSV is the admin panel's download (GET /api/admin/factorydevices/csv?batch=ID):
deviceid,apikey,type,name,batch,createdAt. Without --out it goes to standard output.

Examples:
  iotgo licenses export --batch 0280000001 --out licenses.csv
  iotgo licenses export --batch 0280000001 | head";

/// The `licenses` subcommands.
#[derive(Subcommand)]
pub enum LicensesCommand {
    /// Make a batch of licenses for factory-made devices; prints the batch id.
    #[command(after_help = CREATE_HELP)]
    Create {
        /// Device type, two digits (see GET /api/types), e.g. 02.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// How many licenses (1 to 100000).
        #[arg(long)]
        qty: u32,
        /// Name of the product, shown on the licenses.
        #[arg(long)]
        name: String,
    },
    /// Write a batch's licenses as CSV.
    #[command(after_help = EXPORT_HELP)]
    Export {
        /// The batch id: the deviceid of its first license.
        #[arg(long, value_name = "ID")]
        batch: String,
        /// File to write (must not exist); standard output when not given.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Runs a `licenses` subcommand.
pub(super) async fn run(command: LicensesCommand, args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    match command {
        LicensesCommand::Create { kind, qty, name } => {
            let name = validate::name("Name", &name)?;
            anyhow::ensure!(!name.is_empty(), "the name must not be empty");
            let ty = DeviceType::parse(&kind)
                .map_err(|_| anyhow::anyhow!("Device type {kind} is forbidden!"))?;
            anyhow::ensure!(
                (1..=MAX_CSV_ROWS).contains(&i64::from(qty)),
                "--qty must be from 1 to {MAX_CSV_ROWS}"
            );
            let store = open_store(&config).await?;
            let started = std::time::Instant::now();
            let licenses = store
                .licenses()
                .create_reporting(name, ty, qty, |done| {
                    eprintln!("  {done}/{qty} licenses…");
                })
                .await?;
            let batch = &licenses.first().context("no license was made")?.batch;
            eprintln!(
                "created {qty} licenses of type {ty} ({name}) in {:.1} s; batch:",
                started.elapsed().as_secs_f64()
            );
            println!("{batch}");
        }
        LicensesCommand::Export { batch, out } => {
            DeviceId::parse(&batch)
                .map_err(|_| anyhow::anyhow!("{batch} is not a batch id (a deviceid)"))?;
            let store = open_store(&config).await?;
            let filter = DeviceFilter {
                page: ListFilter {
                    limit: MAX_CSV_ROWS,
                    skip: 0,
                },
                created: TimeRange::default(),
                last_modified: TimeRange::default(),
                name: None,
                kind: None,
                deviceid: None,
                apikey: None,
                batch: Some(batch.clone()),
            };
            let (items, _) = store.licenses().list(&filter).await?;
            anyhow::ensure!(!items.is_empty(), "no batch {batch}");
            let csv = licenses_csv(&items)?;
            match out {
                Some(path) => {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .and_then(|mut f| f.write_all(&csv))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote {} licenses of batch {batch} to {}",
                        items.len(),
                        path.display()
                    );
                }
                None => std::io::stdout().write_all(&csv)?,
            }
        }
    }
    Ok(())
}
