//! `iotgo check-config`, unknown keys in the file, `iotgo healthcheck`, usage errors.

use crate::helpers::spawn_app;
use crate::{arg, base_command, closed_address, run, temp_path};

/// The line of `key` in check-config's output, its columns split on runs of spaces.
fn row<'a>(stdout: &'a str, key: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in\n{stdout}"));
    line.split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test]
async fn check_config_prints_every_key_with_its_source_and_masks_secrets() {
    let (_dir, file) = temp_path("iotgo.toml");
    std::fs::write(
        &file,
        "page_limit = 10\njwt_secret = \"file-secret-0123456789\"\n\
         [[admins]]\nemail = \"root@example.com\"\npassword_hash = \"$argon2id$hash\"\n",
    )
    .unwrap();
    let mut cmd = base_command(&[
        "check-config",
        "--config",
        arg(&file),
        "--data-dir",
        "/srv/iotgo",
        "--database-url",
        "postgres://iotgo:db-password@db.example:5432/iotgo",
    ]);
    cmd.env("IOTGO_JWT_TTL", "2h")
        .env("IOTGO_RECAPTCHA_SECRET", "captcha-secret")
        .env("IOTGO_ADMIN_PASSWORD", "0123456789")
        .env(
            "IOTGO_SMTP_URL",
            "smtp://iotgo%40example.com:smtp-password@mail.example:587",
        );
    let out = run(cmd, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let from_file = format!("file {}", file.display());

    assert_eq!(
        row(&out.stdout, "listen"),
        ["listen", "\"0.0.0.0:8080\"", "default"]
    );
    assert_eq!(
        row(&out.stdout, "data_dir"),
        ["data_dir", "\"/srv/iotgo\"", "flag --data-dir"]
    );
    assert_eq!(
        row(&out.stdout, "database_url"),
        [
            "database_url",
            "\"postgres://iotgo:***@db.example:5432/iotgo\"",
            "flag --database-url"
        ]
    );
    assert_eq!(
        row(&out.stdout, "page_limit"),
        ["page_limit", "10", from_file.as_str()]
    );
    assert_eq!(
        row(&out.stdout, "jwt_secret"),
        ["jwt_secret", "\"***\"", from_file.as_str()]
    );
    assert_eq!(
        row(&out.stdout, "admins"),
        [
            "admins",
            r#"[{"email":"root@example.com","password_hash":"***"}]"#,
            from_file.as_str()
        ]
    );
    assert_eq!(
        row(&out.stdout, "smtp_url"),
        [
            "smtp_url",
            "\"smtp://iotgo%40example.com:***@mail.example:587\"",
            "environment IOTGO_SMTP_URL"
        ]
    );
    assert_eq!(
        row(&out.stdout, "jwt_ttl"),
        ["jwt_ttl", "\"2h\"", "environment IOTGO_JWT_TTL"]
    );
    assert_eq!(
        row(&out.stdout, "recaptcha_secret"),
        [
            "recaptcha_secret",
            "\"***\"",
            "environment IOTGO_RECAPTCHA_SECRET"
        ]
    );
    assert_eq!(
        row(&out.stdout, "admin_password"),
        [
            "admin_password",
            "\"***\"",
            "environment IOTGO_ADMIN_PASSWORD"
        ]
    );
    assert_eq!(row(&out.stdout, "host"), ["host", "(unset)", "default"]);
    assert_eq!(
        row(&out.stdout, "history_max_points"),
        ["history_max_points", "1000", "default"]
    );
    // Every key of the example file, each on its own line.
    let example = include_str!("../../../../iotgo.example.toml");
    let keys: Vec<&str> = example
        .lines()
        .filter_map(|l| l.trim_start_matches("# ").split_once(" = "))
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.contains(' ') && !k.starts_with('#') && *k != "email" && *k != "password_hash"
        })
        .collect();
    assert!(keys.len() >= 20, "{keys:?}");
    for key in keys {
        row(&out.stdout, key);
    }
    for secret in [
        "file-secret",
        "db-password",
        "captcha-secret",
        "smtp-password",
        "0123456789",
        "$argon2id",
    ] {
        assert!(
            !out.stdout.contains(secret),
            "{secret} shown:\n{}",
            out.stdout
        );
    }

    // Without a database URL, the SQLite file in the data directory is named.
    let out = run(
        base_command(&["check-config", "--data-dir", "/srv/iotgo"]),
        None,
    )
    .await;
    assert_eq!(
        row(&out.stdout, "database_url"),
        [
            "database_url",
            "(unset: sqlite:///srv/iotgo/iotgo.db?mode=rwc)",
            "default"
        ]
    );
}

#[tokio::test]
async fn an_unknown_key_in_the_file_is_an_error_for_every_subcommand() {
    let (_dir, file) = temp_path("iotgo.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\npage_limt = 10\n").unwrap();
    let message = format!(
        "error: unknown key `page_limt` in the config file {} \
         (iotgo.example.toml lists every key)\n",
        file.display()
    );
    for args in [["check-config", "--config"], ["serve", "--config"]] {
        let out = run(base_command(&[args[0], args[1], arg(&file)]), None).await;
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (1, message.as_str()),
            "{args:?}"
        );
    }
    std::fs::write(
        &file,
        "[[admins]]\nemail = \"a@b.c\"\npasword_hash = \"x\"\n",
    )
    .unwrap();
    let out = run(
        base_command(&["check-config", "--config", arg(&file)]),
        None,
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: unknown key `admins[0].pasword_hash`"),
        "{}",
        out.stderr
    );
    // Environment variables are not checked: IOTGO_TEST_DATABASE_URL and others pass.
    let mut cmd = base_command(&["check-config"]);
    cmd.env("IOTGO_NOT_A_KEY", "1");
    assert_eq!(run(cmd, None).await.code, 0);
    // A wrong value names the key.
    std::fs::write(&file, "page_limit = \"ten\"\n").unwrap();
    let out = run(
        base_command(&["check-config", "--config", arg(&file)]),
        None,
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("page_limit"), "{}", out.stderr);
}

#[tokio::test]
async fn healthcheck_exits_0_when_the_server_answers_and_1_when_nothing_listens() {
    let app = spawn_app().await;
    let url = format!("{}/healthz", app.base);
    let out = run(base_command(&["healthcheck", "--url", &url]), None).await;
    assert_eq!(
        (out.code, out.stdout),
        (0, format!("ok: {url} answered 200 OK\n"))
    );
    // The default URL comes from the listen address (0.0.0.0 → 127.0.0.1).
    let listen = format!("0.0.0.0:{}", app.addr.port());
    let mut cmd = base_command(&["healthcheck"]);
    cmd.env("IOTGO_LISTEN", &listen);
    let out = run(cmd, None).await;
    let local = format!("http://127.0.0.1:{}/healthz", app.addr.port());
    assert_eq!(
        (out.code, out.stdout),
        (0, format!("ok: {local} answered 200 OK\n"))
    );

    let closed = closed_address();
    let out = run(base_command(&["healthcheck", "--listen", &closed]), None).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("error: http://{closed}/healthz: no answer: Connection refused (os error 111)\n")
    );
    // Something that is not /healthz answering 200.
    let out = run(
        base_command(&["healthcheck", "--url", &format!("{}/api/nothing", app.base)]),
        None,
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("answered 404 Not Found"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(run(base_command(&["no-such-command"]), None).await.code, 2);
    assert_eq!(run(base_command(&["backup"]), None).await.code, 2);
    assert_eq!(
        run(base_command(&["serve", "--listen", "nowhere"]), None)
            .await
            .code,
        2
    );
    for sub in [
        "serve",
        "user",
        "licenses",
        "backup",
        "check-config",
        "healthcheck",
        "hash-password",
    ] {
        let out = run(base_command(&[sub, "--help"]), None).await;
        assert_eq!(out.code, 0, "{sub}");
        assert!(
            out.stdout.contains("Example"),
            "{sub} --help has no example:\n{}",
            out.stdout
        );
    }
    let out = run(base_command(&["--help"]), None).await;
    assert!(
        out.stdout.contains("Exit codes: 0 success, 1 failure"),
        "{}",
        out.stdout
    );
}
