//! Live delivery inside one relay process: who is connected, and handing each new log entry to the connections of its recipients without waiting for any of them.
//!
//! A frame is encoded once and shared by every connection it goes to: a
//! commit of 2 MiB to a group of a thousand is one buffer, not a thousand.

use crate::store::log::Appended;
use axum::body::Bytes;
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::wire::ServerFrame;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};

/// Frames waiting for one connection. A device that lets this many pile up
/// is disconnected (it catches up from its cursor when it reconnects), so
/// that a slow phone never slows the others.
pub const LIVE_QUEUE: usize = 1024;

/// A frame from the hub for one connection, already encoded.
#[derive(Clone, Debug)]
pub enum LiveFrame {
    /// The entry at `seq` of `group`.
    Entry {
        group: GroupId,
        seq: u64,
        frame: Bytes,
    },
    /// A welcome into `group`, made by its commit at `seq`.
    Welcome {
        group: GroupId,
        seq: u64,
        frame: Bytes,
    },
    /// A device sharing a group with this one was revoked: the connection
    /// tells its phone which revoked devices to remove.
    MembersRevoked,
}

/// What a connection gets when it registers: its frames, and a signal that
/// its device was revoked. The signal does not queue behind the frames, so
/// a revoked device is cut off at once however busy its connection is.
#[derive(Debug)]
pub struct Registration {
    pub handle: LiveHandle,
    pub frames: mpsc::Receiver<LiveFrame>,
    pub revoked: Arc<Notify>,
}

/// One registered connection, to unregister it.
#[derive(Debug)]
pub struct LiveHandle {
    id: u64,
}

struct LiveConnection {
    id: u64,
    frames: mpsc::Sender<LiveFrame>,
    revoked: Arc<Notify>,
}

/// Each device's live connections.
type ConnectionMap = HashMap<DeviceId, Vec<LiveConnection>>;

/// Entries this process has delivered recently, so that one heard again
/// (its own PostgreSQL announcement, or a lost race) is not read twice.
#[derive(Default)]
struct Recent {
    order: VecDeque<(GroupId, u64)>,
    set: HashSet<(GroupId, u64)>,
}

#[derive(Default)]
pub struct Hub {
    connections: Mutex<ConnectionMap>,
    next_id: AtomicU64,
    recent: Mutex<Recent>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connected_devices", &self.connected_devices())
            .finish()
    }
}

/// How many recent entries the hub remembers having delivered.
const RECENT_CAPACITY: usize = 4096;

/// A lock whose data stays consistent even if a holder panicked: every
/// update under these locks is a single insert or removal.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    pub fn register(&self, device: DeviceId) -> Registration {
        let (sender, frames) = mpsc::channel(LIVE_QUEUE);
        let revoked = Arc::new(Notify::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.connections)
            .entry(device)
            .or_default()
            .push(LiveConnection {
                id,
                frames: sender,
                revoked: revoked.clone(),
            });
        Registration {
            handle: LiveHandle { id },
            frames,
            revoked,
        }
    }

    pub fn unregister(&self, device: DeviceId, handle: &LiveHandle) {
        let mut connections = lock(&self.connections);
        if let Some(list) = connections.get_mut(&device) {
            list.retain(|connection| connection.id != handle.id);
            if list.is_empty() {
                connections.remove(&device);
            }
        }
    }

    pub fn is_connected(&self, device: DeviceId) -> bool {
        lock(&self.connections).contains_key(&device)
    }

    pub fn connected_devices(&self) -> usize {
        lock(&self.connections).len()
    }

    /// Queues a frame for every connection of each of `devices`; a
    /// connection whose queue is full is dropped from the hub, which ends it.
    fn send(&self, devices: &[DeviceId], frame: &LiveFrame) {
        let mut connections = lock(&self.connections);
        for device in devices {
            if let Some(list) = connections.get_mut(device) {
                list.retain(|connection| connection.frames.try_send(frame.clone()).is_ok());
                if list.is_empty() {
                    connections.remove(device);
                }
            }
        }
    }

    /// Ends every connection of a revoked device.
    pub fn revoke(&self, device: DeviceId) {
        if let Some(list) = lock(&self.connections).remove(&device) {
            for connection in list {
                connection.revoked.notify_one();
            }
        }
    }

    /// Tells the connections of `devices` that a fellow member was revoked.
    pub fn members_revoked(&self, devices: &[DeviceId]) {
        self.send(devices, &LiveFrame::MembersRevoked);
    }

    /// Delivers a newly stored entry to its recipients, and its welcome to
    /// the devices it added. Called in log order for each group (see
    /// `publisher.rs`), so every connection gets a group's entries in order.
    pub fn publish(&self, appended: &Appended) {
        let entry = &appended.entry;
        let (group, seq) = (entry.group, entry.seq);
        let frame = LiveFrame::Entry {
            group,
            seq,
            frame: ServerFrame::delivery(entry.clone(), appended.declared.as_deref().cloned())
                .encode()
                .into(),
        };
        self.send(&appended.recipients, &frame);
        if let Some(welcome) = &appended.welcome {
            let frame = LiveFrame::Welcome {
                group,
                seq,
                frame: ServerFrame::Welcome {
                    group,
                    seq,
                    spec: appended.spec,
                    welcome: welcome.clone(),
                }
                .encode()
                .into(),
            };
            self.send(&appended.added, &frame);
        }
        self.remember(group, seq);
    }

    /// Whether this process already delivered the entry.
    pub fn already_delivered(&self, group: GroupId, seq: u64) -> bool {
        lock(&self.recent).set.contains(&(group, seq))
    }

    fn remember(&self, group: GroupId, seq: u64) {
        let mut recent = lock(&self.recent);
        if !recent.set.insert((group, seq)) {
            return;
        }
        recent.order.push_back((group, seq));
        if recent.order.len() > RECENT_CAPACITY {
            if let Some(oldest) = recent.order.pop_front() {
                recent.set.remove(&oldest);
            }
        }
    }
}
