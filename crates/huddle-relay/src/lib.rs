//! Huddle's relay: a delivery service for end-to-end encrypted messages that stores ciphertext only, and serves the web app.
//!
//! Architecture Invariant: the relay never holds plaintext or a key that
//! decrypts content, and does not depend on `huddle-mls`.
#![forbid(unsafe_code)]
// A native server only; see the note in Cargo.toml.
#![cfg(not(target_arch = "wasm32"))]

pub mod admission;
pub mod announcement;
pub mod api_error;
pub mod auth;
pub mod clock;
pub mod config;
pub mod live;
pub mod mls_framing;
pub mod registration;
pub mod socket;
pub mod store;
pub mod sweeper;
pub mod unlock;
pub mod web_app;

use api_error::ApiError;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
pub use config::Config;
use socket::limits::{NetworkKey, RateLimit, RateLimiter};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
pub use store::Store;
use tower_http::timeout::TimeoutLayer;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    /// Appends, acknowledgements and key packages, committed in batches.
    pub appender: store::group_commit::Appender,
    /// Live connections in this process.
    pub hub: Arc<live::hub::Hub>,
    /// The organisation this relay serves.
    pub org: huddle_core::ids::OrgId,
    /// Each device's frame allowance, kept across its reconnections.
    pub frame_limiter: Arc<RateLimiter<huddle_core::ids::DeviceId>>,
    /// Each device's allowance of rows of work for the writer (key packages
    /// stored, people claimed for, devices added or removed): a group of a
    /// thousand at once, then as many a second as frames.
    pub work_limiter: Arc<RateLimiter<huddle_core::ids::DeviceId>>,
    /// Registrations by network, and by everyone together.
    pub registration_limiter: Arc<RateLimiter<NetworkKey>>,
    pub all_registrations: Arc<RateLimiter<()>>,
    /// Unlock requests by network (see `unlock.rs`).
    pub unlock_limiter: Arc<RateLimiter<NetworkKey>>,
    /// Device sockets still proving who they are.
    pub unauthenticated: Arc<admission::Gate>,
    /// How often a quiet phone is pinged.
    pub ping_interval: Duration,
    /// What the organisation asks of its phones, told to each at sign-in.
    pub phone_policy: huddle_core::wire::PhonePolicy,
    /// The time between reviews of a group's members.
    pub membership_review_millis: u64,
}

/// The whole HTTP surface of the relay, without a socket, so that tests can
/// drive it directly. `tls`: it is served over HTTPS.
pub fn app(state: AppState, app_dir: &Path, body_timeout: Duration, tls: bool) -> Router {
    let registration = Router::new()
        .route("/setup", axum::routing::post(registration::setup))
        .route("/join", axum::routing::post(registration::join))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            registration::limit,
        ))
        // A body dripped in slowly holds a connection open: a registration
        // is answered within this time, or answered 408.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            body_timeout,
        ));
    let unlocking = Router::new()
        .route("/unlock/nonce", axum::routing::post(unlock::nonce))
        .route("/unlock", axum::routing::post(unlock::unlock))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            unlock::limit,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            body_timeout,
        ));
    let api = Router::new()
        .route("/ws", get(socket::upgrade))
        .merge(registration)
        .merge(unlocking)
        .fallback(api_not_found);
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api", api)
        .with_state(state)
        .merge(web_app::router(app_dir))
        .layer(axum::middleware::from_fn(move |request, next| {
            web_app::headers_middleware(tls, request, next)
        }))
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::not_found(uri.path())
}

/// Liveness and readiness in one: 200 when the database answers.
async fn healthz(State(state): State<AppState>) -> axum::response::Response {
    match state.store.ping().await {
        // No version: it would tell anyone which flaws to try.
        Ok(()) => Json(serde_json::json!({
            "status": "ok",
            "database": state.store.engine_name(),
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database did not answer");
            ApiError::unavailable("The relay's database is not answering.").into_response()
        }
    }
}

/// A relay that is listening. Dropping it does not stop it; call
/// [`RunningRelay::shutdown`].
pub struct RunningRelay {
    pub local_addr: SocketAddr,
    pub store: Store,
    /// Set when nobody is registered yet: the secret of the one-time setup
    /// link (`/setup#SECRET`), for the operator's eyes only.
    pub setup_secret: Option<[u8; 32]>,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The expiry sweeper, the end of access, the checkpointer, the bus
    /// listener and the group-commit writers.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningRelay {
    /// Stops accepting connections, lets requests in flight finish for up to
    /// `grace`, and closes the database.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        self.task.await??;
        self.background.iter().for_each(|task| task.abort());
        self.store.close().await;
        Ok(())
    }

    /// Resolves when the server stops (after a shutdown, or on a fatal error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        self.background.iter().for_each(|task| task.abort());
        self.store.close().await;
        Ok(())
    }

    pub fn handle(&self) -> axum_server::Handle {
        self.handle.clone()
    }
}

/// Gives the HTTP server a timer, without which none of its timeouts fire:
/// a request's headers must arrive within `header_timeout`, and an HTTP/2
/// connection that stops answering pings is closed.
fn set_timeouts(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
    ping_secs: u64,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(ping_secs.max(1)))
        .keep_alive_timeout(Duration::from_secs(ping_secs.max(1)));
}

/// Opens the database, binds the socket and starts serving in the background.
pub async fn start(config: &Config) -> anyhow::Result<RunningRelay> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "could not create the data folder {}: {e}",
            config.data_dir.display()
        )
    })?;
    if !config.app_dir.join("index.html").is_file() {
        tracing::warn!(
            app_dir = %config.app_dir.display(),
            "the web app is not built in this folder; the relay will serve its API only"
        );
    }
    let store = Store::connect(&config.effective_database_url()).await?;
    let mut fresh_org = [0u8; 16];
    getrandom::getrandom(&mut fresh_org)
        .map_err(|e| anyhow::anyhow!("no secure random numbers: {e}"))?;
    let org = store.org_id(fresh_org).await?;
    // First run: nobody is registered, so a one-time setup secret is made
    // (a new one each start until the link is used).
    let setup_secret = if store.user_count().await? == 0 {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret)
            .map_err(|e| anyhow::anyhow!("no secure random numbers: {e}"))?;
        store.set_setup_secret(&secret).await?;
        Some(secret)
    } else {
        None
    };
    let hub: Arc<live::hub::Hub> = Default::default();
    let publisher = Arc::new(live::publisher::LivePublisher::new(
        hub.clone(),
        store.engine() == store::Engine::Postgres,
    ));
    // On SQLite the sweeper holds the one write lock while it deletes: it
    // runs on a thread of its own, like the writer, so that it lets go as
    // soon as it can however busy the connections are.
    let sweeper = match store.engine() {
        store::Engine::Sqlite => {
            store::group_commit::on_its_own_thread(sweeper::run(store.clone()), false)
        }
        store::Engine::Postgres => tokio::spawn(sweeper::run(store.clone())),
    };
    let access_ends = tokio::spawn(sweeper::end_access(store.clone(), hub.clone()));
    let checkpoints = tokio::spawn(store::run_checkpoints(store.clone()));
    let listener = tokio::spawn(live::bus::run(store.clone(), publisher.clone()));
    let (appender, writers) = store::group_commit::Appender::start(&store, publisher);
    let registrations = RateLimit::per_minute(
        config.registrations_per_minute,
        config.registrations_per_minute,
    );
    let everyone = RateLimit::per_minute(
        config.registrations_per_minute.saturating_mul(10),
        config.registrations_per_minute.saturating_mul(10),
    );
    let header_timeout = Duration::from_secs(config.header_timeout_secs.max(1));
    let router = app(
        AppState {
            store: store.clone(),
            appender,
            hub,
            org,
            frame_limiter: Arc::new(RateLimiter::new(RateLimit::per_second(
                config.frames_per_second,
                config.frame_burst,
            ))),
            work_limiter: Arc::new(RateLimiter::new(RateLimit::per_second(
                config.frames_per_second,
                socket::limits::WORK_BURST,
            ))),
            registration_limiter: Arc::new(RateLimiter::new(registrations)),
            all_registrations: Arc::new(RateLimiter::new(everyone)),
            unlock_limiter: Arc::new(RateLimiter::new(RateLimit::per_minute(
                unlock::UNLOCK_REQUESTS_PER_MINUTE,
                unlock::UNLOCK_REQUESTS_PER_MINUTE / 4,
            ))),
            unauthenticated: admission::Gate::new(config.max_unauthenticated),
            ping_interval: Duration::from_secs(config.ping_secs.max(1)),
            phone_policy: huddle_core::wire::PhonePolicy {
                max_offline_secs: config.max_offline_days.saturating_mul(24 * 60 * 60),
                lock_after_idle_secs: config.lock_after_idle_secs,
                lock_after_hidden_secs: config.lock_after_hidden_secs,
                offline_unlock_secs: config.offline_unlock_hours.saturating_mul(60 * 60),
                broadcast_reminder_secs: config.broadcast_reminder_secs,
                broadcast_alert_secs: config.broadcast_alert_secs,
            },
            membership_review_millis: config.membership_review_millis(),
        },
        &config.app_dir,
        Duration::from_secs(config.body_timeout_secs.max(1)),
        config.serves_tls(),
    );
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let connections = admission::Gate::new(config.max_connections);

    let handle = axum_server::Handle::new();
    let task = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            // One process-wide choice of crypto backend for rustls; a second
            // call (tests start several relays) is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| anyhow::anyhow!("could not load the TLS certificate or key: {e}"))?;
            let acceptor = admission::Admission::new(
                axum_server::tls_rustls::RustlsAcceptor::new(tls),
                connections,
                header_timeout,
                true,
            );
            let mut server = axum_server::bind(config.listen)
                .acceptor(acceptor)
                .handle(handle.clone());
            set_timeouts(server.http_builder(), header_timeout, config.ping_secs);
            tokio::spawn(async move { server.serve(service).await })
        }
        _ => {
            let acceptor = admission::Admission::new(
                axum_server::accept::DefaultAcceptor,
                connections,
                header_timeout,
                false,
            );
            let mut server = axum_server::bind(config.listen)
                .acceptor(acceptor)
                .handle(handle.clone());
            set_timeouts(server.http_builder(), header_timeout, config.ping_secs);
            tokio::spawn(async move { server.serve(service).await })
        }
    };
    let Some(local_addr) = handle.listening().await else {
        // The server task ended before listening: report why.
        return match task.await {
            Ok(Err(e)) => Err(anyhow::anyhow!(
                "could not listen on {}: {e}",
                config.listen
            )),
            _ => Err(anyhow::anyhow!("could not listen on {}", config.listen)),
        };
    };
    Ok(RunningRelay {
        local_addr,
        store,
        setup_secret,
        handle,
        task,
        background: [sweeper, access_ends, checkpoints, listener]
            .into_iter()
            .chain(writers)
            .collect(),
    })
}
