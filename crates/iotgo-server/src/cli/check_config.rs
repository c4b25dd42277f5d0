//! `iotgo check-config`: the effective configuration, every key, secrets masked, and where
//! each value comes from (default, file, environment variable, flag).

use super::ConfigArgs;
use crate::config::{Config, Origin, is_secret_key};
use serde_json::Value;

/// The `check-config` subcommand's help.
pub(super) const HELP: &str = "\
Loads the configuration as `serve` does (defaults < --config file < IOTGO_* environment
< flags) and prints one line per key: its value and its source. Secrets print as ***
(a database URL keeps everything but its password). Exits 1 on an invalid value or on
a key of the file that does not exist (a misspelt key would otherwise keep its default).

Example:
  IOTGO_PAGE_LIMIT=100 iotgo check-config --config /etc/iotgo/iotgo.toml --data-dir /srv/iotgo";

/// Runs `check-config`.
pub(super) fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let fig = Config::figment(args.config.as_deref(), &args.overrides())?;
    let config: Config = fig
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let Value::Object(values) = serde_json::to_value(&config)? else {
        anyhow::bail!("the configuration is not a table");
    };
    let rows: Vec<(String, String, String)> = values
        .iter()
        .map(|(key, value)| {
            let mut shown = show(key, value);
            if key == "database_url" && value.is_null() {
                shown = format!("(unset: {})", config.database_url());
            }
            (key.clone(), shown, Origin::of(&fig, key).to_string())
        })
        .collect();
    let key_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    for (key, value, origin) in rows {
        println!("{key:key_width$}  {value:value_width$}  {origin}");
    }
    Ok(())
}

/// A value as shown: JSON text, `(unset)` for none, secrets masked (also inside tables
/// and lists such as `admins`).
fn show(key: &str, value: &Value) -> String {
    match value {
        Value::Null => "(unset)".to_owned(),
        _ => mask(key, value).to_string(),
    }
}

fn mask(key: &str, value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(url) if key == "database_url" || key == "smtp_url" => {
            Value::String(mask_url_password(url))
        }
        _ if is_secret_key(key) => Value::String("***".into()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), mask(k, v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| mask(key, v)).collect()),
        other => other.clone(),
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn database_url_keeps_all_but_the_password() {
        let m = mask_url_password;
        assert_eq!(m("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(m("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            m("sqlite://./data/iotgo.db?mode=rwc"),
            "sqlite://./data/iotgo.db?mode=rwc"
        );
        assert_eq!(m("nonsense"), "***");
    }

    #[test]
    fn secrets_are_masked_inside_lists() {
        let admins = json!([{"email": "a@b.c", "password_hash": "$argon2id$x"}]);
        assert_eq!(
            show("admins", &admins),
            r#"[{"email":"a@b.c","password_hash":"***"}]"#
        );
        assert_eq!(show("jwt_secret", &json!("0123456789abcdef")), r#""***""#);
        assert_eq!(show("jwt_secret", &Value::Null), "(unset)");
        assert_eq!(show("page_limit", &json!(50)), "50");
    }
}
