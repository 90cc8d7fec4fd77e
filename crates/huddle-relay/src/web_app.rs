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
/// into the page could use them either. The camera is the app's own (to
/// scan a colleague's safety-number code), and nobody else's. (Bluetooth
/// is left out: Chromium knows no such policy feature and warned of it on
/// every page.)
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(self), \
display-capture=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), \
midi=(), payment=(), publickey-credentials-get=(), serial=(), usb=(), xr-spatial-tracking=(), \
interest-cohort=()";

/// Tells browsers to come back over HTTPS only, for two years, once they
/// have reached the relay over HTTPS (sent only when the relay serves TLS).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000";

/// The security headers on every response, HTTPS-only ones when `tls`.
pub fn security_headers(tls: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", PERMISSIONS_POLICY),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    .into_iter()
    .chain(tls.then_some(("strict-transport-security", STRICT_TRANSPORT_SECURITY)))
}

/// The longest path segment a file can have (most file systems' limit).
const MAX_SEGMENT_BYTES: usize = 255;

const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
const CACHE_REVALIDATE: &str = "no-cache";

/// The router that serves the app from `app_dir`: files by path, and
/// `index.html` for any other path without a file extension, so that the
/// app's own routes work on reload. Hidden files (a name starting with a
/// dot) and names no file could have are not found, whatever is on disk.
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
    Router::new().fallback(move |request: Request| {
        let files = files.clone();
        async move {
            if !is_servable(request.uri().path()) {
                return not_found();
            }
            match files.oneshot(request).await {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            }
        }
    })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found\n",
    )
        .into_response()
}

/// Whether a path may be looked up in the app's folder: no hidden files
/// (`.env`, `.git`, however percent-encoded) and no segment longer than a
/// file name can be (the file system would refuse it, and the refusal
/// would look like a fault of the relay's).
fn is_servable(path: &str) -> bool {
    path.split('/').all(|segment| {
        let name = percent_decoded(segment);
        name.len() <= MAX_SEGMENT_BYTES && !name.starts_with(b".")
    })
}

/// A path segment with `%XX` escapes decoded, as the file server reads it.
fn percent_decoded(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded
}

/// What to answer for a path that has no file: a missing asset is a 404 (so
/// that a stale page fails loudly instead of parsing HTML as JavaScript); any
/// other path is a route of the app itself.
async fn app_fallback(index: PathBuf, request: Request) -> Response {
    if looks_like_a_file(request.uri().path()) {
        return not_found();
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

/// Adds the security headers to every response (`tls`: the relay serves
/// HTTPS), and the caching rule to every response from the app's files.
pub async fn headers_middleware(tls: bool, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let succeeded = response.status().is_success();
    let headers = response.headers_mut();

    let static_header = HeaderValue::from_static;
    for (name, value) in security_headers(tls) {
        headers.insert(name, static_header(value));
    }

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
    fn hidden_files_and_impossible_names_are_never_looked_up() {
        assert!(is_servable("/"));
        assert!(is_servable("/huddle-0123456789abcdef.js"));
        assert!(is_servable("/icons/icon-192.png"));
        assert!(is_servable("/conversations/42"));
        assert!(is_servable("/a%20b"));
        for refused in [
            "/.env",
            "/.git/config",
            "/icons/.hidden",
            "/%2Eenv",
            "/%2egit/HEAD",
            "/..",
        ] {
            assert!(!is_servable(refused), "{refused}");
        }
        let long = format!("/{}", "a".repeat(256));
        assert!(!is_servable(&long));
        assert!(is_servable(&format!("/{}", "a".repeat(255))));
        // Escapes count as the bytes they stand for.
        assert!(!is_servable(&format!("/{}", "%41".repeat(256))));
        assert!(is_servable(&format!("/{}", "%41".repeat(255))));
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
