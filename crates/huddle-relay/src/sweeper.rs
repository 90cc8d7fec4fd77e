//! The relay's expiry: deleting expired messages every few seconds, and handshakes every member has passed and welcomes nobody will use every minute; and signing out people whose access has ended.

use crate::clock::now;
use crate::live::{bus, hub::Hub};
use crate::store::Store;
use std::sync::Arc;

/// How often expired messages are deleted. Expired messages are never
/// served in between (the backlog query filters them); this bounds how long
/// their ciphertext stays on disk.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How often handshakes everyone has passed and welcomes nobody will use
/// are deleted. Neither holds content, and each is a query over every
/// group's members that holds SQLite's write gate while it runs: often
/// enough to keep the tables small, not so often that messages queue
/// behind it.
pub const TIDY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Sweeps every [`SWEEP_INTERVAL`] (and tidies every [`TIDY_INTERVAL`]),
/// for as long as the relay runs.
pub async fn run(store: Store) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    let mut tidied: Option<tokio::time::Instant> = None;
    loop {
        ticks.tick().await;
        match store.sweep_expired(now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired messages deleted"),
            Err(error) => tracing::warn!(%error, "could not delete expired messages"),
        }
        if tidied.is_some_and(|at| at.elapsed() < TIDY_INTERVAL) {
            continue;
        }
        tidied = Some(tokio::time::Instant::now());
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

/// How often the relay looks for people whose access has ended. A person
/// is signed out within this of her end, whoever has the app open.
pub const ACCESS_END_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Signs out, every [`ACCESS_END_INTERVAL`], the people whose access has
/// ended, as an administrator's revocation would: their connections close,
/// and the members of their groups are told, so that the first of their
/// phones to hear removes them by a commit.
pub async fn end_access(store: Store, hub: Arc<Hub>) {
    let mut ticks = tokio::time::interval(ACCESS_END_INTERVAL);
    loop {
        ticks.tick().await;
        let ended = match store.end_access_due(now()).await {
            Ok(ended) => ended,
            Err(error) => {
                tracing::warn!(%error, "could not end access that is due");
                continue;
            }
        };
        for person in ended {
            tracing::info!(
                user = %person.user,
                devices = person.devices.len(),
                "access ended"
            );
            bus::revoked(&store, &hub, &person.devices).await;
        }
    }
}
