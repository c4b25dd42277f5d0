//! Argon2id password hashing, run off the async threads (it is deliberately slow).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Hashes a password into an Argon2id PHC string.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash_password("s3cret-pw".into()).await.unwrap();
        let b = hash_password("s3cret-pw".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("s3cret-pw".into(), a.clone()).await);
        assert!(!verify_password("wrong".into(), a).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }
}
