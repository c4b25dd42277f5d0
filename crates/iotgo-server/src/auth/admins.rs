//! Admin accounts: from the config file (hashes), the environment (one plain password,
//! hashed at start-up), or, when none is configured, one generated at first start.

use super::admin_tokens::AdminTokens;
use super::password::{PasswordError, Passwords, hash_password};
use crate::config::{AdminEntry, Config, Secret};
use crate::secrets;
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
    pub async fn resolve(config: &Config) -> anyhow::Result<(Admins, Option<GeneratedAdmin>)> {
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
            let path = config.data_dir.join(GENERATED_FILE);
            if path.exists() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let entry: AdminEntry = toml::from_str(&text)
                    .with_context(|| format!("cannot parse {}", path.display()))?;
                list.push(entry);
            } else {
                let password = secrets::random_token(12);
                let hash = hash_password(password.clone()).await?;
                let entry = AdminEntry {
                    email: GENERATED_EMAIL.into(),
                    password_hash: Secret::new(hash),
                };
                secrets::write_private(&path, &toml::to_string(&entry)?)?;
                generated = Some(GeneratedAdmin {
                    email: GENERATED_EMAIL.into(),
                    password: Secret::new(password),
                });
                list.push(entry);
            }
        }
        for entry in &mut list {
            entry.email = entry.email.trim().to_lowercase();
        }
        Ok((Admins(list, AdminTokens::new(&config.data_dir)), generated))
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
