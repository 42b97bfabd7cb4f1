//! The deliveries dashboard: one HTML page, its script and its stylesheet, compiled into the
//! binary (no CDN, no file reads at run time) and served by the API app at `GET /dashboard`.
//! The page holds no data: it asks for a token once and calls the documented JSON API.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::webhook::ApiError;

/// The page.
pub const INDEX_HTML: &str = include_str!("../dashboard/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("../dashboard/app.js");
/// Its stylesheet.
pub const APP_CSS: &str = include_str!("../dashboard/app.css");

/// Everything is same-origin; no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset_response(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /dashboard`.
pub async fn page() -> Response {
    asset_response("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /dashboard/{asset}`: `app.js` and `app.css`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => asset_response("text/javascript; charset=utf-8", APP_JS),
        "app.css" => asset_response("text/css; charset=utf-8", APP_CSS),
        _ => ApiError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        assert!(INDEX_HTML.contains(r#"src="/dashboard/app.js""#));
        assert!(INDEX_HTML.contains(r#"href="/dashboard/app.css""#));
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no remote URLs"
            );
        }
        // No inline script: the CSP forbids it.
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        // The token lives in sessionStorage only, never in a cookie or a URL.
        assert!(APP_JS.contains("sessionStorage"));
        assert!(!APP_JS.contains("localStorage") && !APP_JS.contains("document.cookie"));
        assert!(!APP_JS.contains("token="));
    }
}
