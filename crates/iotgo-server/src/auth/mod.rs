//! Authentication: password hashing, JWTs, admin accounts and the request extractors.

mod admin_tokens;
mod admins;
mod extract;
mod jwt;
mod password;

pub use admin_tokens::AdminTokens;
pub use admins::{Admins, GeneratedAdmin};
pub use extract::{AuthAdmin, AuthUser, SignedIn, SignedInUser, TokenRefused, signed_in_user};
pub use jwt::{Claims, Jwt};
pub use password::{PasswordError, Passwords, hash_password};
