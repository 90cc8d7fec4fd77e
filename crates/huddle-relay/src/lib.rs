//! Huddle's relay: a delivery service for end-to-end encrypted messages that stores ciphertext only, and serves the web app.
//!
//! Architecture Invariant: the relay never holds plaintext or a key that
//! decrypts content, and does not depend on `huddle-mls`.
#![forbid(unsafe_code)]
// A native server only; see the note in Cargo.toml.
#![cfg(not(target_arch = "wasm32"))]

pub mod announcement;
pub mod api_error;
pub mod auth;
pub mod clock;
pub mod config;
pub mod live;
pub mod registration;
pub mod socket;
pub mod store;
pub mod sweeper;
pub mod web_app;

use api_error::ApiError;
use axum::extract::{OriginalUri, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
pub use config::Config;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
pub use store::Store;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    /// Appends and acknowledgements, committed in batches.
    pub appender: store::group_commit::Appender,
    /// Live connections in this process.
    pub hub: std::sync::Arc<live::hub::Hub>,
    /// The organisation this relay serves.
    pub org: huddle_core::ids::OrgId,
    /// Per-device frame limits.
    pub rate_limit: socket::limits::RateLimit,
    pub rate_limiter: std::sync::Arc<socket::limits::RateLimiter>,
}

/// The whole HTTP surface of the relay, without a socket, so that tests can
/// drive it directly.
pub fn app(state: AppState, app_dir: &Path) -> Router {
    let api = Router::new()
        .route("/ws", get(socket::upgrade))
        .route("/setup", axum::routing::post(registration::setup))
        .route("/join", axum::routing::post(registration::join))
        .fallback(api_not_found);
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api", api)
        .with_state(state)
        .merge(web_app::router(app_dir))
        .layer(axum::middleware::from_fn(web_app::headers_middleware))
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::not_found(uri.path())
}

/// Liveness and readiness in one: 200 when the database answers.
async fn healthz(State(state): State<AppState>) -> axum::response::Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({
            "status": "ok",
            "database": state.store.engine_name(),
            "version": env!("CARGO_PKG_VERSION"),
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
    /// The expiry sweeper, the bus listener and the group-commit writers.
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
    let hub: std::sync::Arc<live::hub::Hub> = Default::default();
    let sweeper = tokio::spawn(sweeper::run(store.clone()));
    let listener = tokio::spawn(live::bus::run(store.clone(), hub.clone()));
    let (appender, writers) = store::group_commit::Appender::start(&store);
    let router = app(
        AppState {
            store: store.clone(),
            appender,
            hub,
            org,
            rate_limit: socket::limits::RateLimit {
                per_second: config.frames_per_second,
                burst: config.frame_burst,
            },
            rate_limiter: Default::default(),
        },
        &config.app_dir,
    );
    let service = router.into_make_service_with_connect_info::<SocketAddr>();

    let handle = axum_server::Handle::new();
    let task = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            // One process-wide choice of crypto backend for rustls; a second
            // call (tests start several relays) is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| anyhow::anyhow!("could not load the TLS certificate or key: {e}"))?;
            let server = axum_server::bind_rustls(config.listen, tls).handle(handle.clone());
            tokio::spawn(async move { server.serve(service).await })
        }
        _ => {
            let server = axum_server::bind(config.listen).handle(handle.clone());
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
        background: [sweeper, listener].into_iter().chain(writers).collect(),
    })
}
