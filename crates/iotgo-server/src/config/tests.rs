//! The configuration's layers, origins, example file and secrets.

use super::*;

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn layers_apply_in_order() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "iotgo.toml",
            "listen = \"127.0.0.1:1\"\npage_limit = 10\njwt_ttl = \"2h\"",
        )?;
        jail.set_env("IOTGO_PAGE_LIMIT", "20");
        jail.set_env("IOTGO_DATA_DIR", "/tmp/x");
        jail.set_env("IOTGO_ADMIN_PASSWORD", "0123456789");
        jail.set_env("IOTGO_JWT_TTL", "3600");
        let flags = Overrides {
            data_dir: Some("/tmp/y".into()),
            ..Default::default()
        };
        let c = Config::load(Some(Path::new("iotgo.toml")), &flags).unwrap();
        assert_eq!(c.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(c.page_limit, 20);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
        assert_eq!(c.jwt_ttl, Duration::from_secs(3600));
        assert_eq!(c.admin_password, Some(Secret::new("0123456789")));
        assert_eq!(c.pending_request_timeout_ms, 3000);
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn the_example_file_matches_the_defaults() {
    figment::Jail::expect_with(|_| {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../iotgo.example.toml");
        let c = Config::load(Some(Path::new(example)), &Overrides::default()).unwrap();
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn origins_name_each_layer_and_unknown_file_keys_fail() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("iotgo.toml", "page_limit = 10\nhost = \"h\"")?;
        jail.set_env("IOTGO_PAGE_LIMIT", "20");
        jail.set_env("IOTGO_HOST", "e");
        jail.set_env("IOTGO_UNRELATED", "ignored");
        let flags = Overrides {
            data_dir: Some("/tmp/y".into()),
            ..Default::default()
        };
        let fig = Config::figment(Some(Path::new("iotgo.toml")), &flags).unwrap();
        let origin = |k| Origin::of(&fig, k).to_string();
        assert_eq!(origin("page_limit"), "environment IOTGO_PAGE_LIMIT");
        assert_eq!(origin("host"), "environment IOTGO_HOST");
        assert_eq!(origin("data_dir"), "flag --data-dir");
        assert_eq!(origin("listen"), "default");
        assert_eq!(origin("jwt_secret"), "default");
        jail.create_file("typo.toml", "[[admins]]\nemail = \"a@b.c\"\nhash = \"x\"")?;
        let err = Config::load(Some(Path::new("typo.toml")), &flags).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown key `admins[0].hash` in the config file typo.toml")
        );
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn rate_limits_off_and_trusted_proxies() {
    figment::Jail::expect_with(|jail| {
        let load = || Config::load(None, &Overrides::default());
        assert!(load().unwrap().rate_limits);
        for off in ["off", "OFF", "false", "0", "no"] {
            jail.set_env("IOTGO_RATE_LIMITS", off);
            assert!(!load().unwrap().rate_limits, "{off}");
        }
        jail.set_env("IOTGO_RATE_LIMITS", "on");
        assert!(load().unwrap().rate_limits);
        jail.set_env("IOTGO_RATE_LIMITS", "maybe");
        assert!(load().is_err());
        jail.set_env("IOTGO_RATE_LIMITS", "true");
        jail.set_env("IOTGO_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16,::1");
        let proxies = format!("{:?}", load().unwrap().trusted_proxies);
        assert_eq!(proxies, "[10.0.0.1/32, 192.168.0.0/16, ::1/128]");
        jail.set_env("IOTGO_TRUSTED_PROXIES", "10.0.0.300");
        assert!(load().is_err());
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "iotgo.toml",
            "rate_limits = false\ntrusted_proxies = [\"172.16.0.0/12\", \"10.1.2.3\"]",
        )?;
        let c = Config::load(Some(Path::new("iotgo.toml")), &Overrides::default()).unwrap();
        assert!(!c.rate_limits);
        assert_eq!(
            format!("{:?}", c.trusted_proxies),
            "[172.16.0.0/12, 10.1.2.3/32]"
        );
        Ok(())
    });
}

#[test]
fn secret_keys() {
    for k in [
        "database_url",
        "jwt_secret",
        "admin_password",
        "recaptcha_secret",
        "metrics_token",
        "smtp_url",
    ] {
        assert!(is_secret_key(k), "{k}");
    }
    for k in [
        "recaptcha_site_key",
        "listen",
        "admin_email",
        "map_tile_url",
        "password_hash_concurrency",
        "password_hash_queue_timeout",
        "smtp_from",
        "public_url",
    ] {
        assert!(!is_secret_key(k), "{k}");
    }
}

#[test]
fn secrets_never_print() {
    let c = Config {
        jwt_secret: Some(Secret::new("hunter2")),
        ..Config::default()
    };
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn hsts_from_the_environment() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert!(!c.hsts);
        jail.set_env("IOTGO_HSTS", "on");
        jail.set_env("IOTGO_HSTS_MAX_AGE", "1day");
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert!(c.hsts);
        assert_eq!(c.hsts_max_age, Duration::from_secs(86_400));
        Ok(())
    });
}
