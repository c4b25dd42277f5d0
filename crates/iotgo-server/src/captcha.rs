//! Server-side captcha check: the `siteverify` protocol shared by reCAPTCHA, hCaptcha and
//! Cloudflare Turnstile (form POST of `secret` and `response`, JSON `{"success": bool}`).

use crate::config::Secret;
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
struct Verdict {
    success: bool,
}

/// Asks the verifier at `url` whether `token` is a solved captcha.
///
/// `Err` when the verifier cannot be reached or answers nonsense: callers fail closed.
pub async fn verify(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    token: &str,
) -> anyhow::Result<bool> {
    let verdict: Verdict = http
        .post(url)
        .timeout(Duration::from_secs(10))
        .form(&[("secret", secret.expose()), ("response", token)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(verdict.success)
}
