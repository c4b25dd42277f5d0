//! `iotgo backup FILE`: a consistent SQLite copy taken while the server writes.

use crate::helpers::{PASSWORD, owner, spawn_app, spawn_app_with};
use crate::{Cli, arg, on_postgres, temp_path};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[tokio::test]
async fn a_backup_taken_while_the_server_writes_is_a_whole_database() {
    if on_postgres() {
        return; // PostgreSQL: `backup_refuses_postgresql_and_existing_files`.
    }
    let app = spawn_app().await;
    let cli = Cli::of(&app);
    let first = owner(&app, "first@example.com").await;
    let device = crate::helpers::device(&app, &first, "01").await;

    // Writers while the backup runs: sign-ups, and device updates through the group commit.
    let stop = Arc::new(AtomicBool::new(false));
    let signed_up = Arc::new(AtomicUsize::new(1));
    let mut writers = Vec::new();
    {
        let (client, base, stop, signed_up) = (
            app.client.clone(),
            app.base.clone(),
            stop.clone(),
            signed_up.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = json!({"email": format!("u{i}@example.com"), "password": PASSWORD});
                let res = client
                    .post(format!("{base}/api/user/register"))
                    .json(&body)
                    .send();
                assert_eq!(res.await.unwrap().status(), StatusCode::OK);
                signed_up.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    {
        let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
        let (deviceid, apikey) = (device.clone(), first.apikey.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let state = if i % 2 == 0 { "on" } else { "off" };
                let body = json!({"action": "update", "deviceid": deviceid, "apikey": apikey,
                                  "params": {"switch": state}});
                let res = client.post(format!("{base}/api/http")).json(&body).send();
                let answer: serde_json::Value = res.await.unwrap().json().await.unwrap();
                assert_eq!(answer["error"], 0, "{answer}");
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let acked_before = signed_up.load(Ordering::SeqCst);

    let (_dir, file) = temp_path("backup.db");
    let out = cli.run(&["backup", arg(&file)], None).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The writers kept writing while the backup ran.
    assert!(signed_up.load(Ordering::SeqCst) > acked_before);
    assert!(
        out.stdout
            .starts_with(&format!("backed up to {}: ", file.display())),
        "{}",
        out.stdout
    );
    let bytes = std::fs::metadata(&file).unwrap().len();
    assert!(
        out.stdout.contains(&format!(" MiB ({bytes} bytes) in ")),
        "{}",
        out.stdout
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A whole database by itself, with every sign-up acked before the backup began.
    let url = format!("sqlite://{}?mode=ro", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(users as usize >= acked_before, "{users} < {acked_before}");
    conn.close().await.unwrap();

    // A server started on the copy serves its data.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("iotgo.db")).unwrap();
    let path = restored.path().to_path_buf();
    let copy = spawn_app_with(|c| c.data_dir = path).await;
    let (status, session) = copy
        .post(
            "/api/user/login",
            &json!({"email": "first@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, devices) = copy.get("/api/user/device", session["jwt"].as_str()).await;
    assert_eq!(devices[0]["deviceid"], device.as_str());
    assert!(devices[0]["params"]["switch"].is_string(), "{devices}");
}

#[tokio::test]
async fn backup_refuses_postgresql_and_existing_files() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);
    let (_dir, file) = temp_path("backup.db");

    // PostgreSQL: told to use pg_dump; nothing written. (No connection is needed to
    // refuse, so an unreachable URL shows it on SQLite runs too.)
    let postgres = crate::base_command(&[
        "backup",
        arg(&file),
        "--database-url",
        "postgres://iotgo@127.0.0.1:1/iotgo",
    ]);
    let out = crate::run(postgres, None).await;
    let refusal = "error: the database is PostgreSQL: back it up with pg_dump \
                   (e.g. pg_dump --format=custom --file=iotgo.dump <database url>)\n";
    assert_eq!((out.code, out.stderr.as_str()), (1, refusal));
    assert!(!file.exists());
    if on_postgres() {
        let out = cli.run(&["backup", arg(&file)], None).await;
        assert_eq!((out.code, out.stderr.as_str()), (1, refusal));
        return;
    }

    std::fs::write(&file, "keep me").unwrap();
    let out = cli.run(&["backup", arg(&file)], None).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: {} exists; a backup never overwrites a file\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // The help says what PostgreSQL needs.
    let help = cli.run(&["backup", "--help"], None).await;
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("pg_dump --format=custom"),
        "{}",
        help.stdout
    );
}
