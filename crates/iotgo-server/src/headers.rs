//! Security headers on every answer (docs/security.md, "Web hardening"): a Content
//! Security Policy without inline scripts, no framing, a referrer policy, no MIME
//! sniffing, and HSTS when the install says it is served over HTTPS.
//!
//! The policy is made once at start from the configuration (the map tiles' host, the
//! captcha) and set by `tower-http` layers; the API docs page sets its own
//! ([`DOCS_POLICY`]), which the outer layer leaves in place.

use crate::config::Config;
use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// Where reCAPTCHA's script comes from (Google's guidance for a CSP with reCAPTCHA).
const CAPTCHA_SCRIPTS: &str =
    "https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/";
/// Where reCAPTCHA's widget and challenge frames come from.
const CAPTCHA_FRAMES: &str =
    "https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/";

/// The policy of the Swagger UI page under `/api/docs/`: its own scripts and styles
/// (React sets style attributes, and its stylesheet's icons are `data:` SVGs), no other
/// origin, no framing.
pub const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The referrer policy: a cross-origin request (a map tile) names this server's origin,
/// never a page's path; OpenStreetMap's tile policy asks for a referrer, so not
/// `no-referrer`.
const REFERRER: &str = "strict-origin-when-cross-origin";

/// The web app's Content Security Policy for `config`: scripts, styles and everything
/// else from this server only; map tiles also from `map_tile_url`'s host; reCAPTCHA's
/// script and frames when `recaptcha_site_key` is set. `connect-src 'self'` covers the
/// app's WebSocket to this server (`ws:`/`wss:` of the same host, CSP Level 3).
pub fn app_policy(config: &Config) -> String {
    let mut script = String::from("'self'");
    let mut img = String::from("'self' data:");
    let mut frame = String::from("'none'");
    if let Some(tiles) = tile_source(&config.map_tile_url) {
        img.push(' ');
        img.push_str(&tiles);
    }
    if config.recaptcha_site_key.is_some() {
        script = format!("{script} {CAPTCHA_SCRIPTS}");
        frame = CAPTCHA_FRAMES.to_owned();
    }
    format!(
        "default-src 'self'; script-src {script}; style-src 'self'; img-src {img}; \
         connect-src 'self'; frame-src {frame}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The CSP source of the map tiles: `scheme://host[:port]` of a tile URL template, with
/// Leaflet's subdomain placeholder `{s}` as a wildcard label (`https://*.tile.example`).
/// `None` for a URL on this server (a path: `'self'` covers it). A host the policy cannot
/// name exactly (a placeholder inside a label) falls back to its scheme (`https:`), so
/// the map still works; no text of the setting that could end a directive (`;`, `,`,
/// spaces) ever reaches the policy.
fn tile_source(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url.strip_prefix("//")?),
    };
    let scheme = scheme.filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix("{s}.") {
        Some(rest) => format!("*.{rest}"),
        None => host.to_owned(),
    };
    let exact = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c) || c == '*')
        && !host[1..].contains('*');
    match (scheme, exact) {
        (Some(scheme), true) => Some(format!("{scheme}://{host}")),
        (None, true) => Some(host),
        (Some(scheme), false) => Some(format!("{scheme}:")),
        // A scheme-relative URL with a host we cannot name: the page's own scheme.
        (None, false) => Some("https:".to_owned()),
    }
}

/// Sets the security headers on every answer of `router`, made from `config`.
pub fn layer<S: Clone + Send + Sync + 'static>(router: Router<S>, config: &Config) -> Router<S> {
    let policy = app_policy(config);
    let policy = HeaderValue::from_str(&policy).expect("the policy is made of visible ASCII");
    let router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            policy,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static(REFERRER),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    match hsts(config) {
        Some(value) => router.layer(SetResponseHeaderLayer::overriding(
            STRICT_TRANSPORT_SECURITY,
            value,
        )),
        None => router,
    }
}

/// `Strict-Transport-Security: max-age=<seconds>` when `hsts` is on.
fn hsts(config: &Config) -> Option<HeaderValue> {
    config.hsts.then(|| {
        let secs = config.hsts_max_age.as_secs();
        HeaderValue::from_str(&format!("max-age={secs}")).expect("digits are a header value")
    })
}

/// The layer of the API docs page: its own policy, left in place by [`layer`].
pub fn docs_layer() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_POLICY),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_hosts() {
        let cases = [
            (
                "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                Some("https://tile.openstreetmap.org"),
            ),
            (
                "https://{s}.tile.example.com:8443/{z}/{x}/{y}.png",
                Some("https://*.tile.example.com:8443"),
            ),
            (
                "http://user:pw@tiles.lan/{z}/{x}/{y}.png",
                Some("http://tiles.lan"),
            ),
            (
                "//tiles.example.com/{z}/{x}/{y}.png",
                Some("tiles.example.com"),
            ),
            ("/tiles/{z}/{x}/{y}.png", None),
            ("https://tiles-{s}.example.com/{z}.png", Some("https:")),
            ("https://evil.example; script-src *", Some("https:")),
            ("https://a.example,b/{z}", Some("https:")),
            ("https://*.a.*.example/{z}", Some("https:")),
        ];
        for (url, want) in cases {
            assert_eq!(tile_source(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn policy_follows_the_config() {
        let plain = app_policy(&Config::default());
        assert!(plain.contains("img-src 'self' data: https://tile.openstreetmap.org;"));
        assert!(plain.contains("script-src 'self';"));
        assert!(plain.contains("frame-src 'none';"));
        let captcha = app_policy(&Config {
            recaptcha_site_key: Some("k".into()),
            ..Config::default()
        });
        assert!(captcha.contains(&format!("script-src 'self' {CAPTCHA_SCRIPTS};")));
        assert!(captcha.contains(&format!("frame-src {CAPTCHA_FRAMES};")));
    }

    #[test]
    fn a_policy_is_a_header_for_any_tile_url() {
        for url in [
            "https://tile\u{7f}s/",
            "https://é.example/{z}",
            "\r\n",
            "https://",
        ] {
            let config = Config {
                map_tile_url: url.into(),
                ..Config::default()
            };
            assert!(
                HeaderValue::from_str(&app_policy(&config)).is_ok(),
                "{url:?}"
            );
        }
    }
}
