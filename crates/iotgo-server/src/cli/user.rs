//! `iotgo user list|create|delete|set-password`: user accounts, with the Web API's rules
//! (e-mail form, password length, Argon2id) and store functions.

use super::{ConfigArgs, healthcheck, open_store, read_password};
use crate::api::validate;
use crate::auth::hash_password;
use crate::store::{ListFilter, Store, StoreError, TimeRange, User, UserFilter, UserRecord};
use clap::Subcommand;
use iotgo_protocol::ApiKey;

/// The `user` group's help.
pub(super) const HELP: &str = "\
Passwords are read from standard input. `iotgo user <command> --help` tells more.

Examples:
  iotgo user list
  echo -n 'a long password' | iotgo user create --email me@example.com
  echo -n 'a new long password' | iotgo user set-password --email me@example.com
  iotgo user delete --email me@example.com";

const LIST_HELP: &str = "\
Examples:
  iotgo user list
  iotgo user list --json | jq -r '.[].email'";

const CREATE_HELP: &str = "\
The password is read from standard input (one line; at least 8 characters).

Example:
  echo -n 'a long password' | iotgo user create --email me@example.com";

const DELETE_HELP: &str = "\
Deletes the user, every device they own and its history, as the admin panel does.

A running server keeps the owners of devices in memory and would not see a deletion made
by this process: when a server answers /healthz at the configured listen address, this
command refuses. Stop the server first, or delete through the admin panel (or
DELETE /api/admin/users/{apikey}). A server it cannot see (another port or host on the
same database) must be stopped too.

Example:
  iotgo user delete --email me@example.com";

const SET_PASSWORD_HELP: &str = "\
The new password is read from standard input (one line; at least 8 characters). Every
login token of the user stops working, as after a password change in the web app.

Example:
  echo -n 'a new long password' | iotgo user set-password --email me@example.com";

/// The `user` subcommands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// List every user: e-mail, apikey, sign-up time.
    #[command(after_help = LIST_HELP)]
    List {
        /// Print a JSON array (the admin API's user shape) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a user; the password comes on standard input.
    #[command(after_help = CREATE_HELP)]
    Create {
        /// E-mail address (the login).
        #[arg(long)]
        email: String,
    },
    /// Delete a user with their devices (refused while a server answers; see below).
    #[command(after_help = DELETE_HELP)]
    Delete {
        /// E-mail address of the user.
        #[arg(long)]
        email: String,
    },
    /// Set a user's password (read on standard input) and sign out their sessions.
    #[command(after_help = SET_PASSWORD_HELP)]
    SetPassword {
        /// E-mail address of the user.
        #[arg(long)]
        email: String,
    },
}

/// Runs a `user` subcommand.
pub(super) async fn run(command: UserCommand, args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    match command {
        UserCommand::List { json } => {
            let store = open_store(&config).await?;
            let users = all_users(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                print_table(&users);
            }
            eprintln!("{} users", users.len());
        }
        UserCommand::Create { email } => {
            let email = validate::email(&email)?;
            let password = read_password()?;
            validate::new_password(&password)?;
            let store = open_store(&config).await?;
            let hash = hash_password(password).await?;
            let apikey = ApiKey::generate();
            match store
                .users()
                .create(&email, apikey.as_str(), &hash, true)
                .await
            {
                Err(StoreError::Conflict) => anyhow::bail!("a user with e-mail {email} exists"),
                other => other?,
            };
            println!("created user {email} (apikey {apikey})");
        }
        UserCommand::Delete { email } => {
            if let Some(url) = healthcheck::running_server(&config).await {
                anyhow::bail!(
                    "a server answers at {url}: its caches would not see this deletion. \
                     Delete the user in the admin panel (or DELETE /api/admin/users/{{apikey}}), \
                     or stop the server first"
                );
            }
            let store = open_store(&config).await?;
            let user = find(&store, &email).await?;
            // No server runs (checked above), so no cache needs telling. None: deleted
            // meanwhile by someone else.
            let (_, devices) = store
                .users()
                .delete(&user.user.apikey)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user with e-mail {}", user.user.email))?;
            println!(
                "deleted user {} and {} devices",
                user.user.email,
                devices.len()
            );
        }
        UserCommand::SetPassword { email } => {
            let store = open_store(&config).await?;
            let user = find(&store, &email).await?;
            let password = read_password()?;
            validate::new_password(&password)?;
            let hash = hash_password(password).await?;
            store.users().set_password(&user.user.apikey, &hash).await?;
            println!(
                "password of {} set; their earlier logins are signed out",
                user.user.email
            );
        }
    }
    Ok(())
}

/// The user with this e-mail address (compared as the Web API's login does).
async fn find(store: &Store, email: &str) -> anyhow::Result<UserRecord> {
    let email = email.trim().to_lowercase();
    store
        .users()
        .find_by_email(&email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with e-mail {email}"))
}

/// Every user, newest first, read a page at a time.
async fn all_users(store: &Store) -> anyhow::Result<Vec<User>> {
    const PAGE: i64 = 1000;
    let mut users = Vec::new();
    loop {
        let filter = UserFilter {
            page: ListFilter {
                limit: PAGE,
                skip: users.len() as i64,
            },
            created: TimeRange::default(),
            email: None,
        };
        let (page, _) = store.users().list(&filter).await?;
        let last = (page.len() as i64) < PAGE;
        users.extend(page);
        if last {
            return Ok(users);
        }
    }
}

fn print_table(users: &[User]) {
    let width = users
        .iter()
        .map(|u| u.email.chars().count())
        .max()
        .unwrap_or(0)
        .max("EMAIL".len());
    println!("{:width$}  {:36}  CREATED", "EMAIL", "APIKEY");
    for u in users {
        println!(
            "{:width$}  {:36}  {}",
            u.email,
            u.apikey,
            u.created_at.iso()
        );
    }
}
