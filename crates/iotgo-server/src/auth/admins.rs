//! Admin accounts: from the config file (hashes), the environment (one plain password,
//! hashed at start-up), or, when none is configured, one generated at first start — kept
//! in the data directory, or on a cluster in the database, made by the first node.

use super::admin_tokens::AdminTokens;
use super::password::{PasswordError, Passwords, hash_password};
use crate::config::{AdminEntry, Config, Secret};
use crate::secrets;
use crate::store::Store;
use anyhow::Context;

const GENERATED_FILE: &str = "admin.toml";
const GENERATED_EMAIL: &str = "admin@iotgo.local";

/// The admin accounts in force, and the version their tokens must carry.
#[derive(Debug)]
pub struct Admins(Vec<AdminEntry>, AdminTokens);

/// An admin made at first start; its password is shown once and never stored in clear.
#[derive(Debug)]
pub struct GeneratedAdmin {
    /// Login e-mail address.
    pub email: String,
    /// The random password.
    pub password: Secret,
}

impl Admins {
    /// The configured admins, or the generated one (made now if it does not exist yet).
    /// On a cluster (`shared`: the cluster's database) the generated admin and the admin
    /// token version are the cluster's, not the node's.
    pub async fn resolve(
        config: &Config,
        shared: Option<&Store>,
    ) -> anyhow::Result<(Admins, Option<GeneratedAdmin>)> {
        let mut list = config.admins.clone();
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            let hash = hash_password(password.expose().to_owned()).await?;
            list.push(AdminEntry {
                email: email.clone(),
                password_hash: Secret::new(hash),
            });
        }
        let mut generated = None;
        if list.is_empty() {
            let (entry, made) = match shared {
                Some(store) => generated_in(store).await?,
                None => generated_in_file(&config.data_dir.join(GENERATED_FILE)).await?,
            };
            list.push(entry);
            generated = made;
        }
        for entry in &mut list {
            entry.email = entry.email.trim().to_lowercase();
        }
        let tokens = match shared {
            Some(store) => AdminTokens::in_cluster(store.clone()),
            None => AdminTokens::new(&config.data_dir),
        };
        Ok((Admins(list, tokens), generated))
    }

    /// The version admin tokens must carry (revoking them bumps it).
    pub fn tokens(&self) -> &AdminTokens {
        &self.1
    }

    /// The admins' e-mail addresses.
    pub fn emails(&self) -> Vec<&str> {
        self.0.iter().map(|a| a.email.as_str()).collect()
    }

    /// Whether `email` is an admin.
    pub fn contains(&self, email: &str) -> bool {
        self.0.iter().any(|a| a.email == email)
    }

    /// Whether `email` is an admin whose password is `password`. An unknown address
    /// costs one verify too (against a dummy hash), so timing does not tell admins apart.
    pub async fn verify(
        &self,
        passwords: &Passwords,
        email: &str,
        password: &str,
    ) -> Result<bool, PasswordError> {
        let admin = self.0.iter().find(|a| a.email == email);
        let hash = admin.map(|a| a.password_hash.expose());
        passwords.verify(password, hash).await
    }
}

/// A new admin with a random password: its entry, and its password to show once.
async fn generate() -> anyhow::Result<(AdminEntry, GeneratedAdmin)> {
    let password = secrets::random_token(12);
    let hash = hash_password(password.clone()).await?;
    let entry = AdminEntry {
        email: GENERATED_EMAIL.into(),
        password_hash: Secret::new(hash),
    };
    let made = GeneratedAdmin {
        email: GENERATED_EMAIL.into(),
        password: Secret::new(password),
    };
    Ok((entry, made))
}

/// The generated admin kept in `path`, made now when there is none.
async fn generated_in_file(
    path: &std::path::Path,
) -> anyhow::Result<(AdminEntry, Option<GeneratedAdmin>)> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let entry =
            toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
        return Ok((entry, None));
    }
    let (entry, made) = generate().await?;
    secrets::write_private(path, &toml::to_string(&entry)?)?;
    Ok((entry, Some(made)))
}

/// The cluster's generated admin, made now by this node when no node made it yet (only
/// the node that made it shows its password).
async fn generated_in(store: &Store) -> anyhow::Result<(AdminEntry, Option<GeneratedAdmin>)> {
    let nodes = store.nodes();
    let text = match nodes.shared("admin").await? {
        Some(text) => text,
        None => {
            let (entry, made) = generate().await?;
            let ours = toml::to_string(&entry)?;
            let text = nodes.share("admin", &ours).await?;
            if text == ours {
                return Ok((entry, Some(made)));
            }
            text
        }
    };
    let entry = toml::from_str(&text).context("cannot parse the cluster's admin")?;
    Ok((entry, None))
}
