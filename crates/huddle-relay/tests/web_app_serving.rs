//! Integration test: the relay serves the built app like a production server (types, encodings, caching, security headers), over a real socket.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use reqwest::header::{HeaderMap, ACCEPT_ENCODING};
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;
use support::Engine;

const WASM: &str = "huddle-0123456789abcdef_bg.wasm";
const JS: &str = "huddle-0123456789abcdef.js";

/// Writes a small app folder as the build leaves it: each file next to its
/// `.br` and `.gz` versions. The compressed files hold marker bytes, so that
/// the test sees which variant was served.
fn write_app(dir: &Path) {
    let write = |name: &str, body: &[u8]| std::fs::write(dir.join(name), body).expect("write");
    for (name, body) in [
        (
            "index.html",
            &b"<!doctype html><title>Huddle</title><div id=app>Opening Huddle</div>"[..],
        ),
        (WASM, b"\0asm\x01\0\0\0"),
        (JS, b"export default function init() {}"),
        ("sw.js", b"self.addEventListener('install', () => {});"),
        ("manifest.webmanifest", br#"{"name":"Huddle"}"#),
    ] {
        write(name, body);
        write(&format!("{name}.br"), format!("brotli:{name}").as_bytes());
        write(&format!("{name}.gz"), format!("gzip:{name}").as_bytes());
    }
}

struct Served {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Served {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn get(base: &str, path: &str, accept_encoding: Option<&str>) -> Served {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base}{path}"));
    if let Some(encoding) = accept_encoding {
        request = request.header(ACCEPT_ENCODING, encoding);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8_lossy(&response.bytes().await.expect("body")).into_owned();
    Served {
        status,
        headers,
        body,
    }
}

fn assert_security_headers(served: &Served, path: &str) {
    let csp = served.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{path}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert!(!csp.contains("'unsafe-eval'"), "{path}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    assert_eq!(served.header("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(served.header("referrer-policy"), "no-referrer", "{path}");
    let permissions = served.header("permissions-policy");
    for denied in ["microphone=()", "geolocation=()", "payment=()"] {
        assert!(permissions.contains(denied), "{path}: {permissions}");
    }
    // The camera only for the app itself, to scan safety-number codes.
    assert!(
        permissions.contains("camera=(self)"),
        "{path}: {permissions}"
    );
}

async fn serves_the_app(engine: Engine) {
    let data = tempfile::tempdir().expect("tempdir");
    let app = tempfile::tempdir().expect("tempdir");
    write_app(app.path());
    let Some(url) = support::database_url(engine, data.path()).await else {
        return;
    };
    let relay = support::start(&support::config(data.path(), app.path(), Some(url))).await;
    let base = format!("http://{}", relay.local_addr);

    // The main wasm: the right type, the best encoding the browser accepts,
    // and cached for good because its name carries a content hash.
    let wasm_path = format!("/{WASM}");
    let br = get(&base, &wasm_path, Some("gzip, deflate, br")).await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(br.header("content-type"), "application/wasm");
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(br.body, format!("brotli:{WASM}"));
    assert_eq!(
        br.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(br
        .header("vary")
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    assert_security_headers(&br, &wasm_path);

    let gz = get(&base, &wasm_path, Some("gzip")).await;
    assert_eq!(gz.header("content-encoding"), "gzip");
    assert_eq!(gz.body, format!("gzip:{WASM}"));

    let plain = get(&base, &wasm_path, None).await;
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.body, "\0asm\x01\0\0\0");

    let js = get(&base, &format!("/{JS}"), Some("br")).await;
    assert_eq!(js.header("content-type"), "text/javascript");
    assert_eq!(
        js.header("cache-control"),
        "public, max-age=31536000, immutable"
    );

    // The page, the service worker and the manifest are checked on every
    // load, so that an update reaches phones at once.
    for (path, content_type) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/sw.js", "text/javascript"),
        ("/manifest.webmanifest", "application/manifest+json"),
    ] {
        let served = get(&base, path, Some("br")).await;
        assert_eq!(served.status, StatusCode::OK, "{path}");
        assert_eq!(served.header("cache-control"), "no-cache", "{path}");
        assert_eq!(served.header("content-encoding"), "br", "{path}");
        assert!(
            served.header("content-type").starts_with(content_type),
            "{path}: {}",
            served.header("content-type")
        );
        assert_security_headers(&served, path);
    }

    // The app's own routes load the app, so that a reload keeps the screen.
    let route = get(&base, "/conversations/42", None).await;
    assert_eq!(route.status, StatusCode::OK);
    assert!(route.body.contains("Opening Huddle"));
    assert_eq!(route.header("cache-control"), "no-cache");

    // A missing asset is a plain 404, never the app's HTML.
    let missing = get(&base, "/huddle-ffffffffffffffff_bg.wasm", Some("br")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.body.contains("Huddle"));
    assert_eq!(missing.header("cache-control"), "no-cache");
    assert_security_headers(&missing, "missing asset");

    // Unknown API paths answer JSON.
    let api = get(&base, "/api/no/such/thing", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.header("content-type").starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_str(&api.body).expect("json");
    assert_eq!(json["error"], "not_found");
    assert_eq!(
        json["message"],
        "There is no API endpoint at /api/no/such/thing."
    );

    let health = get(&base, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("json");
    assert_eq!(json["status"], "ok");
    let engine_name = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    assert_eq!(json["database"], engine_name);
    // Nothing that tells a stranger which version (and which flaws) to try.
    assert!(json.get("version").is_none(), "{json}");
    // Plain HTTP gets no HSTS: it would mean nothing there.
    assert_eq!(health.header("strict-transport-security"), "");

    relay
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test]
async fn serves_the_app_on_sqlite() {
    serves_the_app(Engine::Sqlite).await;
}

#[tokio::test]
async fn serves_the_app_on_postgres() {
    serves_the_app(Engine::Postgres).await;
}

#[tokio::test]
async fn sqlite_is_durable_and_created_in_the_data_folder() {
    let data = tempfile::tempdir().expect("tempdir");
    let app = tempfile::tempdir().expect("tempdir");
    let relay = support::start(&support::config(
        &data.path().join("nested"),
        app.path(),
        None,
    ))
    .await;
    assert!(data.path().join("nested/huddle.db").is_file());
    assert_eq!(relay.store.engine(), huddle_relay::store::Engine::Sqlite);
    let pool = relay.store.pool();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .expect("pragma");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .expect("pragma");
    assert_eq!(journal, "wal");
    assert_eq!(synchronous, 2, "synchronous=FULL");
    let created = relay.store.created_at().await.expect("created_at");
    assert!(created > 1_700_000_000_000, "{created}");
    relay
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test]
async fn a_bad_database_url_is_refused_with_a_clear_reason() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = support::config(
        data.path(),
        data.path(),
        Some("mysql://localhost/huddle".into()),
    );
    let error = huddle_relay::start(&config).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "the database URL must start with sqlite:// or postgres:// (got a URL starting \"mysql\")"
    );
}

#[tokio::test]
async fn serves_https_from_certificate_files() {
    let data = tempfile::tempdir().expect("tempdir");
    let app = tempfile::tempdir().expect("tempdir");
    write_app(app.path());
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert_path = data.path().join("cert.pem");
    let key_path = data.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");

    let mut config = support::config(data.path(), app.path(), None);
    config.tls_cert = Some(cert_path);
    config.tls_key = Some(key_path);
    let relay = support::start(&config).await;

    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("pem"),
        )
        .resolve("localhost", relay.local_addr)
        .build()
        .expect("client");
    let response = client
        .get(format!(
            "https://localhost:{}/healthz",
            relay.local_addr.port()
        ))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), StatusCode::OK);
    // Browsers that reached Huddle over HTTPS keep to it.
    assert_eq!(
        response
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=63072000")
    );
    relay
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

/// Sends `request` as raw bytes and returns the whole answer as text.
async fn raw_answer(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn hidden_files_impossible_paths_and_unparseable_requests_get_plain_refusals() {
    let data = tempfile::tempdir().expect("tempdir");
    let app = tempfile::tempdir().expect("tempdir");
    write_app(app.path());
    // What an operator's tools might leave in the app folder.
    std::fs::write(app.path().join(".env"), "DATABASE_PASSWORD=secret").expect("write");
    std::fs::create_dir(app.path().join(".git")).expect("mkdir");
    std::fs::write(app.path().join(".git").join("config"), "[core]").expect("write");
    let relay = support::start(&support::config(data.path(), app.path(), None)).await;
    let base = format!("http://{}", relay.local_addr);

    for path in ["/.env", "/.git/config", "/%2Eenv", "/%2egit/config"] {
        let served = get(&base, path, None).await;
        assert_eq!(served.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !served.body.contains("secret") && !served.body.contains("[core]"),
            "{path}"
        );
        assert_security_headers(&served, path);
    }
    // Longer than any file name: not found, rather than a fault (the file
    // system's refusal used to answer 500 and write an error to the log).
    for path in [
        format!("/{}", "a".repeat(300)),
        format!("/{}.js", "a".repeat(300)),
        format!("/icons/{}", "%61".repeat(300)),
    ] {
        let served = get(&base, &path, None).await;
        assert_eq!(served.status, StatusCode::NOT_FOUND, "{}", &path[..20]);
    }

    // Requests the HTTP layer refuses before the relay sees them still
    // carry the security headers.
    let too_long = format!(
        "GET /{} HTTP/1.1\r\nHost: relay\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let garbage = "NOT HTTP AT ALL\r\n\r\n".to_owned();
    let mut many_headers = "GET / HTTP/1.1\r\nHost: relay\r\n".to_owned();
    for n in 0..200 {
        many_headers.push_str(&format!("X-Header-{n}: {n}\r\n"));
    }
    many_headers.push_str("\r\n");
    for (request, status) in [(too_long, "414"), (garbage, "400"), (many_headers, "431")] {
        let answer = raw_answer(relay.local_addr, request.as_bytes()).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        let head = answer.to_ascii_lowercase();
        for header in [
            "x-content-type-options: nosniff",
            "content-security-policy: default-src 'self'",
            "x-frame-options: deny",
            "referrer-policy: no-referrer",
        ] {
            assert!(
                head.contains(header),
                "{status}: {header} missing from {answer}"
            );
        }
    }
    relay
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}
