//! Live delivery inside one relay process: who is connected, and handing each new log entry to the connections of its recipients without waiting for any of them.

use crate::store::log::Appended;
use crate::store::Store;
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::wire::ServerFrame;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Frames waiting for one connection. A device that lets this many pile up
/// is disconnected (it catches up from its cursor when it reconnects), so
/// that a slow phone never slows the others.
pub const LIVE_QUEUE: usize = 1024;

/// What the hub hands a connection.
#[derive(Debug)]
pub enum LiveFrame {
    Frame(ServerFrame),
    /// The device was revoked: end the connection now.
    Revoked,
}

/// One registered connection.
#[derive(Debug)]
pub struct LiveHandle {
    id: u64,
}

/// Each device's live connections, by connection id.
type ConnectionMap = HashMap<DeviceId, Vec<(u64, mpsc::Sender<LiveFrame>)>>;

#[derive(Debug, Default)]
pub struct Hub {
    connections: Mutex<ConnectionMap>,
    next_id: AtomicU64,
    /// Entries this process has fanned out recently, so that its own
    /// PostgreSQL announcements are not delivered twice.
    recent: Mutex<std::collections::VecDeque<(GroupId, u64)>>,
}

/// How many recent entries the hub remembers having delivered.
const RECENT_CAPACITY: usize = 4096;

impl Hub {
    fn connections(&self) -> std::sync::MutexGuard<'_, ConnectionMap> {
        // The map stays consistent even if a holder panicked: every update
        // is a single insert or removal.
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn register(&self, device: DeviceId) -> (LiveHandle, mpsc::Receiver<LiveFrame>) {
        let (sender, receiver) = mpsc::channel(LIVE_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.connections()
            .entry(device)
            .or_default()
            .push((id, sender));
        (LiveHandle { id }, receiver)
    }

    pub fn unregister(&self, device: DeviceId, handle: &LiveHandle) {
        let mut connections = self.connections();
        if let Some(list) = connections.get_mut(&device) {
            list.retain(|(id, _)| *id != handle.id);
            if list.is_empty() {
                connections.remove(&device);
            }
        }
    }

    pub fn is_connected(&self, device: DeviceId) -> bool {
        self.connections().contains_key(&device)
    }

    pub fn connected_devices(&self) -> usize {
        self.connections().len()
    }

    /// Queues a frame for every connection of `device`; a connection whose
    /// queue is full is dropped from the hub, which ends it.
    pub fn send(&self, device: DeviceId, frame: &ServerFrame) {
        let mut connections = self.connections();
        if let Some(list) = connections.get_mut(&device) {
            list.retain(|(_, sender)| sender.try_send(LiveFrame::Frame(frame.clone())).is_ok());
            if list.is_empty() {
                connections.remove(&device);
            }
        }
    }

    /// Ends every connection of a revoked device.
    pub fn revoke(&self, device: DeviceId) {
        if let Some(list) = self.connections().remove(&device) {
            for (_, sender) in list {
                let _ = sender.try_send(LiveFrame::Revoked);
            }
        }
    }

    /// Whether this process already delivered the entry (it stored it, or
    /// an announcement for it arrived before).
    pub fn already_delivered(&self, group: GroupId, seq: u64) -> bool {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&(group, seq))
    }

    fn remember(&self, group: GroupId, seq: u64) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if recent.len() == RECENT_CAPACITY {
            recent.pop_front();
        }
        recent.push_back((group, seq));
    }

    /// Delivers a freshly stored entry to the group's members and its
    /// welcomes to the devices it added.
    pub async fn fan_out(&self, store: &Store, appended: Appended) {
        let entry = appended.entry;
        match store.recipients(entry.group, entry.seq).await {
            Ok(recipients) => {
                let frame = ServerFrame::Deliver(entry.clone());
                for device in recipients {
                    self.send(device, &frame);
                }
            }
            Err(error) => {
                // Members still get the entry from the backlog when they
                // next sync.
                tracing::error!(%error, "could not list recipients for live delivery");
            }
        }
        for (device, welcome) in appended.welcomes {
            self.send(
                device,
                &ServerFrame::Welcome {
                    group: entry.group,
                    seq: entry.seq,
                    spec: appended.spec,
                    welcome,
                },
            );
        }
        // Remembered only once it is in every member's queue: the PostgreSQL
        // listener skips a remembered entry, and skipping one still on its
        // way here would let the next entry overtake it (a connection sends
        // each group's entries in order and drops one that comes too late).
        self.remember(entry.group, entry.seq);
    }
}
