//! What the server answers outside `/api`: the web app's pages.
//!
//! Unknown paths redirect to the single-page app as `/?path=…`, as the original did, so
//! that a bookmarked deep link lands in the app, which routes it.

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
    "<title>IoTgo</title></head><body><h1>IoTgo</h1>",
    "<p>The IoTgo server is running. The Web API is under <code>/api</code>; ",
    "see the README for its paths.</p></body></html>"
);

/// The web app's routes and the redirect of unknown paths.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/admin", get(index))
        .route("/admin/{*rest}", get(index))
        .fallback(fallback)
}

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

async fn fallback(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::NOT_FOUND.into_response();
    }
    let query = serde_urlencoded::to_string([("path", uri.path())]).unwrap_or_default();
    Redirect::to(&format!("/?{query}")).into_response()
}
