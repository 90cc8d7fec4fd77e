//! Shared set-up for the relay's integration tests: a real relay on 127.0.0.1, on SQLite or on a fresh PostgreSQL database.
#![allow(dead_code)] // Each test binary uses its own subset.

pub mod device;
pub mod ws;

use huddle_relay::{Config, RunningRelay};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Which database a test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the test command started, as an admin URL
/// (`postgres://huddle@127.0.0.1:PORT/postgres`).
const POSTGRES_ENV: &str = "HUDDLE_TEST_POSTGRES_URL";

/// Returns a URL to a brand-new PostgreSQL database, or `None` when no server
/// was given. Under the test command (`HUDDLE_REQUIRE_POSTGRES=1`) a missing
/// server fails the test instead of skipping it.
pub async fn fresh_postgres_database() -> Option<String> {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        if std::env::var("HUDDLE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("{POSTGRES_ENV} is not set, but PostgreSQL tests are required");
        }
        eprintln!("skipping the PostgreSQL half: {POSTGRES_ENV} is not set (scripts/test sets it)");
        return None;
    };
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "huddle_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .expect("the PostgreSQL URL names a database");
    Some(format!("{base}/{name}"))
}

/// The database URL for `engine`, or `None` when that engine is not available.
pub async fn database_url(engine: Engine, data_dir: &Path) -> Option<String> {
    match engine {
        Engine::Sqlite => Some(format!("sqlite://{}", data_dir.join("huddle.db").display())),
        Engine::Postgres => fresh_postgres_database().await,
    }
}

/// Settings for a relay on a free port of 127.0.0.1.
/// The relay's defaults, except what a test must control.
pub fn config(data_dir: &Path, app_dir: &Path, database_url: Option<String>) -> Config {
    let mut config = Config::with_defaults(data_dir.to_path_buf(), app_dir.to_path_buf());
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.database_url = database_url;
    config.tls_cert = None;
    config.tls_key = None;
    config.log_format = "text".into();
    config.frames_per_second = 20;
    config.frame_burst = 200;
    config
}

pub async fn start(config: &Config) -> RunningRelay {
    huddle_relay::start(config).await.expect("the relay starts")
}
