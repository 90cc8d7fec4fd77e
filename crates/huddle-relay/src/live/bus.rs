//! The bus between relay processes on one PostgreSQL database: each announces what the others must act on (a stored entry, a revoked device), and listens for theirs.
//!
//! On SQLite there is one process and no bus: the hub does everything.

use super::hub::Hub;
use super::publisher::LivePublisher;
use crate::announcement::{Announcement, BUS_CHANNEL};
use crate::store::{Engine, Store};
use huddle_core::ids::DeviceId;
use std::sync::Arc;

/// After a revocation: ends the devices' connections and tells the
/// connected members of their groups to remove them, in every relay process
/// (through the bus on PostgreSQL, where this process hears its own
/// announcement too).
pub async fn revoked(store: &Store, hub: &Hub, devices: &[DeviceId]) {
    for device in devices {
        hub.revoke(*device);
    }
    if store.engine() != Engine::Postgres {
        tell_fellow_members(store, hub, devices).await;
        return;
    }
    for device in devices {
        announce_revoked(store, *device).await;
    }
}

/// Tells this process's connections of the members sharing a group with
/// `devices` that they were revoked.
async fn tell_fellow_members(store: &Store, hub: &Hub, devices: &[DeviceId]) {
    match store.fellow_members(devices).await {
        Ok(fellows) => hub.members_revoked(&fellows),
        // They are told at their next sign-in instead.
        Err(error) => tracing::warn!(%error, "could not find whom to tell of a revocation"),
    }
}

/// Tells every relay process (this one too) that a device was revoked.
async fn announce_revoked(store: &Store, device: DeviceId) {
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(BUS_CHANNEL)
        .bind(Announcement::Revoked { device }.encode())
        .execute(store.pool())
        .await;
    if let Err(error) = sent {
        tracing::warn!(%error, "could not announce a revoked device to other relays");
    }
}

/// Acts on every process's announcements, this one's included, for as
/// long as the relay runs: delivers entries to this process's connections
/// in the order they were committed (see `publisher.rs`), and ends revoked
/// devices' connections here.
pub async fn run(store: Store, publisher: Arc<LivePublisher>) {
    if store.engine() != Engine::Postgres {
        return;
    }
    loop {
        publisher.set_listening(false);
        let mut listener = match sqlx::postgres::PgListener::connect(store.url()).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "could not listen for other relays' announcements; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(BUS_CHANNEL).await {
            tracing::warn!(%error, "could not listen for other relays' announcements; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        publisher.set_listening(true);
        loop {
            let notification = match listener.recv().await {
                Ok(notification) => notification,
                Err(error) => {
                    // Devices catch up on anything missed when they next sync;
                    // a revocation missed here still refuses the device when
                    // it next connects or appends.
                    tracing::warn!(%error, "lost the connection for other relays' announcements");
                    break;
                }
            };
            // One notification per batch: an announcement per line.
            for line in notification.payload().lines() {
                act_on(&store, &publisher, Announcement::decode(line)).await;
            }
        }
    }
}

async fn act_on(store: &Store, publisher: &LivePublisher, announcement: Option<Announcement>) {
    let hub = publisher.hub();
    match announcement {
        Some(Announcement::Entry { group, seq }) => {
            if publisher.announced(group, seq).await || hub.already_delivered(group, seq) {
                return;
            }
            match store.appended_at(group, seq).await {
                Ok(Some(appended)) => hub.publish(&appended),
                Ok(None) => {} // expired and swept already
                Err(error) => tracing::warn!(%error, "could not read an announced entry"),
            }
        }
        Some(Announcement::Revoked { device }) => {
            hub.revoke(device);
            // Off the bus's loop: live delivery does not wait for it.
            let (store, hub) = (store.clone(), hub.clone());
            tokio::spawn(async move { tell_fellow_members(&store, &hub, &[device]).await });
        }
        None => tracing::warn!("an unreadable announcement on the bus"),
    }
}
