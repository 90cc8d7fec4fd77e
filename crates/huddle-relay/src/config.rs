//! The relay's settings: command-line flags, each with an environment variable, documented by `--help`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Huddle relay: stores and forwards end-to-end encrypted messages for one
/// care organisation, and serves the Huddle web app.
///
/// The relay only ever holds ciphertext. By default it keeps its data in an
/// embedded SQLite database inside the data folder; give a PostgreSQL URL to
/// share one database between several relays.
#[derive(Clone, Debug, Parser)]
#[command(name = "huddle-relay", version, about, long_about)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "HUDDLE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder for the relay's own data (the SQLite database lives here). It is
    /// created if missing.
    #[arg(long, env = "HUDDLE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    /// Defaults to `sqlite://DATA_DIR/huddle.db`.
    #[arg(long, env = "HUDDLE_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Folder holding the built web app (Trunk's `dist`).
    #[arg(long, env = "HUDDLE_APP_DIR", default_value = "dist")]
    pub app_dir: PathBuf,

    /// PEM certificate chain for serving HTTPS directly. Needs --tls-key. Leave
    /// both out when a reverse proxy terminates TLS.
    #[arg(long, env = "HUDDLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching --tls-cert.
    #[arg(long, env = "HUDDLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Frames each device may send per second, sustained (0: no limit, for
    /// load tests only). A phone flushing its outbox after a night offline
    /// uses the burst allowance below.
    #[arg(long, env = "HUDDLE_FRAMES_PER_SECOND", default_value_t = 20)]
    pub frames_per_second: u32,

    /// Frames a device may send at once before the per-second limit applies.
    #[arg(long, env = "HUDDLE_FRAME_BURST", default_value_t = 200)]
    pub frame_burst: u32,

    /// Connections the relay holds open at once, of every kind (phones'
    /// sockets, page loads, registrations). Past it, new connections are
    /// closed as soon as they arrive, and phones retry a little later. Each
    /// idle phone costs about 16 KiB.
    #[arg(long, env = "HUDDLE_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,

    /// Device sockets still proving who they are (each may hold up to 2 MiB
    /// while it does). Past it, a new socket is closed with code 1013, "try
    /// again later".
    #[arg(long, env = "HUDDLE_MAX_UNAUTHENTICATED", default_value_t = 256)]
    pub max_unauthenticated: usize,

    /// Seconds a connection has to send a request's headers; also how long
    /// a new or idle connection may stay silent before it is closed.
    #[arg(long, env = "HUDDLE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a request (a registration) has to send its body and be
    /// answered; a slower one is answered 408.
    #[arg(long, env = "HUDDLE_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Days a phone may go without reaching the relay: one that has been
    /// away longer (lost, or kept offline) deletes everything Huddle kept
    /// on it when it is next opened. 0 turns this off.
    #[arg(long, env = "HUDDLE_MAX_OFFLINE_DAYS", default_value_t = 7)]
    pub max_offline_days: u64,

    /// Seconds without a touch after which the app locks (0: never).
    #[arg(long, env = "HUDDLE_LOCK_AFTER_IDLE_SECS", default_value_t = 120)]
    pub lock_after_idle_secs: u64,

    /// Seconds in the background after which the app locks (0: at once).
    #[arg(long, env = "HUDDLE_LOCK_AFTER_HIDDEN_SECS", default_value_t = 30)]
    pub lock_after_hidden_secs: u64,

    /// Hours after its last unlock with the relay that a phone may still be
    /// unlocked without a connection (0: only with the relay).
    #[arg(long, env = "HUDDLE_OFFLINE_UNLOCK_HOURS", default_value_t = 12)]
    pub offline_unlock_hours: u64,

    /// Seconds after an urgent broadcast that a member who has not
    /// acknowledged it is reminded on her phone.
    #[arg(long, env = "HUDDLE_BROADCAST_REMINDER_SECS", default_value_t = 600)]
    pub broadcast_reminder_secs: u64,

    /// Seconds after an urgent broadcast that the group's administrators
    /// are told it is not getting through, while anyone has not
    /// acknowledged it.
    #[arg(long, env = "HUDDLE_BROADCAST_ALERT_SECS", default_value_t = 1800)]
    pub broadcast_alert_secs: u64,

    /// Days between reviews of each group's members: once a group's review
    /// falls due, its administrators are asked to keep or remove each
    /// member. Nobody is removed by a missed review.
    #[arg(long, env = "HUDDLE_MEMBERSHIP_REVIEW_DAYS", default_value_t = 90)]
    pub membership_review_days: u64,

    /// Seconds between reviews instead of days, where a test cannot wait
    /// for days. Overrides `--membership-review-days`.
    #[arg(long, env = "HUDDLE_MEMBERSHIP_REVIEW_SECS")]
    pub membership_review_secs: Option<u64>,

    /// Seconds between pings to a quiet phone. A phone that answers nothing
    /// to two pings in a row is taken for gone and its socket closed (with
    /// the default, within 45 seconds of its going).
    #[arg(long, env = "HUDDLE_PING_SECS", default_value_t = 15)]
    pub ping_secs: u64,

    /// Registrations (first-run setup and invite links) each network
    /// address may make per minute; the relay as a whole takes ten times
    /// as many. Each one costs the relay a signature check.
    #[arg(long, env = "HUDDLE_REGISTRATIONS_PER_MINUTE", default_value_t = 30)]
    pub registrations_per_minute: u32,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "HUDDLE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Config {
    /// The database URL in force: the one given, or SQLite in the data folder.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("huddle.db").display()),
        }
    }

    /// The time between reviews of a group's members.
    pub fn membership_review_millis(&self) -> u64 {
        self.membership_review_secs
            .unwrap_or(self.membership_review_days.saturating_mul(24 * 60 * 60))
            .max(1)
            .saturating_mul(1000)
    }

    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The relay's settings as they are when no flag or variable is given,
    /// with the data and app folders given (tests, tools).
    pub fn with_defaults(data_dir: PathBuf, app_dir: PathBuf) -> Self {
        let mut config = Config::parse_from(["huddle-relay"]);
        config.data_dir = data_dir;
        config.app_dir = app_dir;
        config
    }
}
