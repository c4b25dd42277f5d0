//! What the server answers outside `/api`: the web app, embedded in the binary.
//!
//! `web/dist` (built by `npm run build` in `web/`) is compiled into release binaries, so
//! `iotgo serve` needs no other files; debug builds read it from disk. `/`, `/admin` and
//! `/admin/…` answer the app's `index.html`; files of the build are served with their
//! type; other paths redirect to the single-page app as `/?path=…` (with their query), as the original did,
//! so that a bookmarked deep link lands in the app, which routes it. A binary built
//! without the web app answers a short page that says how to build it.

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

const NOT_BUILT: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
    "<title>IoTgo</title></head><body><h1>IoTgo</h1>",
    "<p>The server is running, but this binary was built without the web app. ",
    "Build it with <code>scripts/run</code> (or <code>npm ci &amp;&amp; npm run build</code> ",
    "in <code>web/</code>, then rebuild the server). The Web API is under ",
    "<code>/api</code>.</p></body></html>"
);

/// The web app's routes and the redirect of unknown paths.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/admin", get(index))
        .route("/admin/{*rest}", get(index))
        .fallback(fallback)
}

async fn index() -> Response {
    match Assets::get("index.html") {
        Some(file) => {
            let mut res = Html(file.data).into_response();
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        None => Html(NOT_BUILT).into_response(),
    }
}

async fn fallback(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = Assets::get(path) {
        let mime = file.metadata.mimetype().to_owned();
        // Vite puts content-hashed names under assets/: they never change.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let content_type = HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        return (
            [
                (CONTENT_TYPE, content_type),
                (CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
            file.data,
        )
            .into_response();
    }
    // The query goes along: the links in mails carry their token in it.
    let wanted = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let query = serde_urlencoded::to_string([("path", wanted)]).unwrap_or_default();
    Redirect::to(&format!("/?{query}")).into_response()
}
