//! The relay's expiry: deleting expired messages, handshakes every member has passed, and welcomes nobody will use, every few seconds.

use crate::clock::now;
use crate::store::Store;

/// How often expired messages are deleted. Expired messages are never
/// served in between (the backlog query filters them); this bounds how long
/// their ciphertext stays on disk.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Sweeps every [`SWEEP_INTERVAL`], for as long as the relay runs.
pub async fn run(store: Store) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        match store.sweep_expired(now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired messages deleted"),
            Err(error) => tracing::warn!(%error, "could not delete expired messages"),
        }
        match store.sweep_handshakes(now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "handshakes everyone has passed deleted"),
            Err(error) => tracing::warn!(%error, "could not delete old handshakes"),
        }
        match store.sweep_welcomes(now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "welcomes nobody will use deleted"),
            Err(error) => tracing::warn!(%error, "could not delete old welcomes"),
        }
    }
}
