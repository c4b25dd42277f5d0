//! `iotgo licenses create|export`: batches made by the CLI, the admin panel's CSV.

use crate::helpers::spawn_app;
use crate::{Cli, arg, temp_path};
use serde_json::Value;

#[tokio::test]
async fn a_batch_made_by_the_cli_exports_as_the_admin_panels_csv() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);

    let out = cli
        .run(
            &[
                "licenses", "create", "--type", "02", "--qty", "3", "--name", "ITEAD",
            ],
            None,
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "0280000001\n");
    assert!(
        out.stderr
            .starts_with("created 3 licenses of type 02 (ITEAD) in "),
        "{}",
        out.stderr
    );

    // The admin panel sees the batch…
    let admin = app.admin_token().await;
    let (_, list) = app
        .get("/api/admin/factorydevices?batch=0280000001", Some(&admin))
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    assert_eq!(list[2]["deviceid"], "0280000001");
    // …and its CSV download is byte for byte what the CLI exports.
    let panel_csv = app
        .client
        .get(format!(
            "{}/api/admin/factorydevices/csv?batch=0280000001",
            app.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let out = cli
        .run(&["licenses", "export", "--batch", "0280000001"], None)
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, panel_csv);
    assert_eq!(out.stdout.lines().count(), 4);
    assert!(
        out.stdout
            .starts_with("deviceid,apikey,type,name,batch,createdAt\n")
    );
    let apikey = list[0]["apikey"].as_str().unwrap();
    assert!(
        out.stdout
            .contains(&format!("0280000003,{apikey},02,ITEAD,0280000001,"))
    );

    let (_dir, file) = temp_path("batch.csv");
    let args = [
        "licenses",
        "export",
        "--batch",
        "0280000001",
        "--out",
        arg(&file),
    ];
    let out = cli.run(&args, None).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), panel_csv);
    assert_eq!(
        out.stderr,
        format!(
            "wrote 3 licenses of batch 0280000001 to {}\n",
            file.display()
        )
    );
    // An existing file is never overwritten.
    let out = cli.run(&args, None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot write {}: ", file.display()))
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), panel_csv);
}

#[tokio::test]
async fn a_large_batch_reports_progress() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);
    let args = [
        "licenses", "create", "--type", "01", "--qty", "2500", "--name", "Big",
    ];
    let out = cli.run(&args, None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "0180000001\n"),
        "{}",
        out.stderr
    );
    let progress: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.ends_with("licenses…"))
        .collect();
    assert_eq!(progress, ["  1000/2500 licenses…", "  2000/2500 licenses…"]);
    let out = cli
        .run(&["licenses", "export", "--batch", "0180000001"], None)
        .await;
    assert_eq!(out.stdout.lines().count(), 2501);
}

#[tokio::test]
async fn license_errors_exit_1_with_the_reason() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "licenses", "create", "--type", "zz", "--qty", "1", "--name", "N",
            ],
            "error: Device type zz is forbidden!\n",
        ),
        (
            &[
                "licenses", "create", "--type", "02", "--qty", "0", "--name", "N",
            ],
            "error: --qty must be from 1 to 100000\n",
        ),
        (
            &[
                "licenses", "create", "--type", "02", "--qty", "100001", "--name", "N",
            ],
            "error: --qty must be from 1 to 100000\n",
        ),
        (
            &[
                "licenses", "create", "--type", "02", "--qty", "1", "--name", " ",
            ],
            "error: the name must not be empty\n",
        ),
        (
            &["licenses", "export", "--batch", "0280000001"],
            "error: no batch 0280000001\n",
        ),
        (
            &["licenses", "export", "--batch", "02-1"],
            "error: 02-1 is not a batch id (a deviceid)\n",
        ),
    ];
    for (args, stderr) in cases {
        let out = cli.run(args, None).await;
        assert_eq!(
            (out.code, out.stderr.as_str(), out.stdout.as_str()),
            (1, stderr, ""),
            "{args:?}"
        );
    }
    assert_eq!(
        cli.run(&["licenses", "create", "--type", "02"], None)
            .await
            .code,
        2
    );
    assert_eq!(
        cli.run(
            &[
                "licenses", "create", "--type", "02", "--qty", "-1", "--name", "N"
            ],
            None
        )
        .await
        .code,
        2
    );
    // No batch was made by the failures.
    let (_, list) = app
        .get("/api/admin/factorydevices", Some(&app.admin_token().await))
        .await;
    assert_eq!(list, Value::Array(vec![]));
}
