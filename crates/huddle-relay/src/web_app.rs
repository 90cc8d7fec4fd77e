//! Serving the built web app as a production server should: precompressed files, caching by file kind, strict security headers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::path::{Path, PathBuf};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The Content Security Policy for every response.
///
/// Scripts come only from this origin; `wasm-unsafe-eval` lets the browser
/// compile WebAssembly without allowing `eval`. There is no `unsafe-inline`:
/// the build moves Trunk's inline loader into a file of its own.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; \
img-src 'self' data: blob:; \
font-src 'self'; \
connect-src 'self'; \
worker-src 'self'; \
manifest-src 'self'; \
media-src 'none'; \
object-src 'none'; \
frame-src 'none'; \
frame-ancestors 'none'; \
base-uri 'none'; \
form-action 'self'";

/// Browser features the app does not use, denied so that nothing injected
/// into the page could use them either.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), bluetooth=(), camera=(), \
display-capture=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), \
midi=(), payment=(), publickey-credentials-get=(), serial=(), usb=(), xr-spatial-tracking=(), \
interest-cohort=()";

const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
const CACHE_REVALIDATE: &str = "no-cache";

/// The router that serves the app from `app_dir`: files by path, and
/// `index.html` for any other path without a file extension, so that the
/// app's own routes work on reload.
pub fn router(app_dir: &Path) -> Router {
    let index = app_dir.join("index.html");
    let files = ServeDir::new(app_dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true)
        .fallback(tower::service_fn(move |request: Request| {
            let index = index.clone();
            async move { Ok::<_, std::convert::Infallible>(app_fallback(index, request).await) }
        }));
    Router::new().fallback_service(files)
}

/// What to answer for a path that has no file: a missing asset is a 404 (so
/// that a stale page fails loudly instead of parsing HTML as JavaScript); any
/// other path is a route of the app itself.
async fn app_fallback(index: PathBuf, request: Request) -> Response {
    if looks_like_a_file(request.uri().path()) {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found\n",
        )
            .into_response();
    }
    let serve_index = ServeFile::new(index)
        .precompressed_br()
        .precompressed_gzip();
    match serve_index.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

fn looks_like_a_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Whether a file name carries a content hash, as Trunk writes them
/// (`huddle-0123456789abcdef.js`, `huddle-0123456789abcdef_bg.wasm`): such a
/// file never changes, so browsers may keep it for a year.
pub fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some(stem) = name.split('.').next() else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    match stem.rsplit_once('-') {
        Some((_, hash)) => hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Adds the security headers to every response, and the caching rule to
/// every response from the app's files.
pub async fn headers_middleware(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let succeeded = response.status().is_success();
    let headers = response.headers_mut();

    let static_header = HeaderValue::from_static;
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        static_header(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff"));
    headers.insert(header::REFERRER_POLICY, static_header("no-referrer"));
    headers.insert("permissions-policy", static_header(PERMISSIONS_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, static_header("DENY"));
    headers.insert("cross-origin-opener-policy", static_header("same-origin"));

    if !headers.contains_key(header::CACHE_CONTROL) {
        let cache = if succeeded && is_content_hashed(&path) {
            CACHE_IMMUTABLE
        } else {
            CACHE_REVALIDATE
        };
        headers.insert(header::CACHE_CONTROL, static_header(cache));
    }
    // The same path is served brotli, gzip or plain by `Accept-Encoding`;
    // caches between the relay and the phone must keep them apart.
    headers.insert(header::VARY, static_header("accept-encoding"));
    // Manifests are JSON, but browsers want their own media type.
    if path.ends_with(".webmanifest") && succeeded {
        headers.insert(
            header::CONTENT_TYPE,
            static_header("application/manifest+json"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashed_names_are_recognised() {
        let check =
            |path: &str, expected: bool| assert_eq!(is_content_hashed(path), expected, "{path}");
        check("/huddle-0123456789abcdef.js", true);
        check("/huddle-0123456789abcdef_bg.wasm", true);
        check("/main-fedcba9876543210.css", true);
        check("/huddle-worker-0123456789abcdef_bg.wasm", true);
        check("/index.html", false);
        check("/sw.js", false);
        check("/manifest.webmanifest", false);
        check("/huddle-worker_loader.js", false);
        check("/huddle-worker.js", false);
        check("/icons/icon-192.png", false);
        check("/huddle-0123456789abcdeg.js", false);
        check("/huddle-0123456789abcde.js", false);
        check("/", false);
    }

    #[test]
    fn paths_with_an_extension_are_files_and_the_rest_are_routes() {
        assert!(looks_like_a_file("/missing-0123456789abcdef.js"));
        assert!(looks_like_a_file("/icons/nope.png"));
        assert!(!looks_like_a_file("/conversations/42"));
        assert!(!looks_like_a_file("/"));
        assert!(!looks_like_a_file("/invite"));
    }
}
