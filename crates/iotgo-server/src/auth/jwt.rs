//! JSON Web Tokens (HS256) for users and admins.
//!
//! The payload keeps the original's fields (`email`, `apikey`, `createdAt`, and
//! `isActivated`, which the original web app reads in the browser: true unless e-mail
//! verification is on and the address is not verified yet) and adds an
//! expiry, a role and a token version: a user's password change bumps the version, and
//! tokens carrying an older one are refused.

use crate::config::Secret;
use crate::store::User;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// The user's apikey, or the admin's e-mail address.
    pub sub: String,
    /// E-mail address.
    pub email: String,
    /// The user's apikey (users only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikey: Option<String>,
    /// Sign-up time (users only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Whether the account may use devices: false only while e-mail verification is on
    /// and the address is not verified (always true for admins).
    pub is_activated: bool,
    /// Admin role.
    #[serde(default)]
    pub is_admin: bool,
    /// Token version; must equal the user's current one (or, for an admin, the admin
    /// token version in force).
    #[serde(default)]
    pub ver: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
}

/// Issues and checks tokens with one HMAC key.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Jwt {
    /// A signer with `secret` and tokens valid for `ttl`.
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Jwt {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl,
        }
    }

    fn sign(&self, mut claims: Claims) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        claims.iat = now;
        claims.exp = now.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2));
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// A token for `user` at token version `ver`, saying whether the account is
    /// `activated` (see [`Claims::is_activated`]).
    pub fn issue_user(&self, user: &User, ver: i64, activated: bool) -> anyhow::Result<String> {
        self.sign(Claims {
            sub: user.apikey.clone(),
            email: user.email.clone(),
            apikey: Some(user.apikey.clone()),
            created_at: Some(user.created_at.iso()),
            is_activated: activated,
            is_admin: false,
            ver,
            iat: 0,
            exp: 0,
        })
    }

    /// A token for the admin `email` at admin token version `ver`.
    pub fn issue_admin(&self, email: &str, ver: i64) -> anyhow::Result<String> {
        self.sign(Claims {
            sub: email.to_owned(),
            email: email.to_owned(),
            apikey: None,
            created_at: None,
            is_activated: true,
            is_admin: true,
            ver,
            iat: 0,
            exp: 0,
        })
    }

    /// The claims of a well-signed, unexpired token.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Millis;

    fn user() -> User {
        User {
            email: "a@b.c".into(),
            apikey: "k".into(),
            created_at: Millis(0),
        }
    }

    #[test]
    fn tokens_round_trip_and_foreign_keys_fail() {
        let jwt = Jwt::new(&Secret::new("one"), Duration::from_secs(60));
        let token = jwt.issue_user(&user(), 3, true).unwrap();
        let c = jwt.verify(&token).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.ver, c.is_admin, c.is_activated),
            ("k", 3, false, true)
        );
        let other = Jwt::new(&Secret::new("two"), Duration::from_secs(60));
        assert!(other.verify(&token).is_none());
        assert!(jwt.verify("garbage").is_none());
    }

    #[test]
    fn expired_tokens_fail() {
        let jwt = Jwt::new(&Secret::new("one"), Duration::ZERO);
        let token = jwt.issue_admin("root@x.y", 0).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(jwt.verify(&token).is_none());
    }
}
