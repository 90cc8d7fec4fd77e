//! Handing each committed entry to live delivery in the order it was stored: straight from the writer with one relay process, through the PostgreSQL bus with several.
//!
//! With one process (SQLite), a group's entries are all written by one
//! writer, which publishes each right after its commit, in log order.
//!
//! With several processes sharing PostgreSQL, two processes can append to
//! one group; if each published its own entries directly, a member
//! connected to one of them could get entry 6 (stored here) before entry 5
//! (stored there, still on its way over the bus), and would have to resync.
//! So every process publishes every entry, its own included, in the order
//! the bus announces them, which is the order PostgreSQL committed them.
//! Its own entries wait here from just before their commit until their
//! announcement arrives (no database read needed); others' are read back.
//! An announcement can overtake the writer (PostgreSQL tells listeners
//! before the writer hears its commit returned), so an own entry is
//! published only once its writer has answered its sender too: a phone
//! hears "accepted" before its own message comes back to it.
//! While the bus is down, a process publishes its own entries directly.

use super::hub::Hub;
use crate::store::log::{Appended, CommitListener};
use huddle_core::ids::GroupId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Own entries waiting for their announcement, at most: beyond it they are
/// published directly (only a bus far behind gets here).
const MAX_AWAITING: usize = 16_384;

/// How long an announced own entry waits for its writer to answer the
/// sender. The writer does so microseconds after its commit returns; this
/// only bounds a writer that never does.
const WRITER_ANSWER_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Awaiting {
    /// Whether this process is listening to the bus right now.
    listening: bool,
    entries: HashMap<(GroupId, u64), OwnEntry>,
}

struct OwnEntry {
    appended: Appended,
    /// Whether the writer has answered the sender.
    committed: bool,
}

/// The writers' [`CommitListener`]: publishes committed entries to the hub.
pub struct LivePublisher {
    hub: Arc<Hub>,
    /// Whether entries are published in the bus's order (PostgreSQL).
    through_bus: bool,
    awaiting: Mutex<Awaiting>,
    /// Woken when a writer marks an awaited entry committed.
    commits: Notify,
}

impl LivePublisher {
    pub fn new(hub: Arc<Hub>, through_bus: bool) -> Self {
        LivePublisher {
            hub,
            through_bus,
            awaiting: Mutex::default(),
            commits: Notify::new(),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn awaiting(&self) -> MutexGuard<'_, Awaiting> {
        // Consistent even after a panic: every update is one insert or removal.
        self.awaiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bus started or stopped listening. Entries still awaiting an
    /// announcement are forgotten either way: one that was lost is caught
    /// up by its recipients when they next sync.
    pub fn set_listening(&self, listening: bool) {
        let mut awaiting = self.awaiting();
        awaiting.listening = listening;
        awaiting.entries.clear();
    }

    /// The bus announced an entry: publishes it if it is one of this
    /// process's own, once its writer has answered its sender (the bus's
    /// later announcements wait meanwhile, keeping the log's order); false
    /// if it must be read from the database.
    pub async fn announced(&self, group: GroupId, seq: u64) -> bool {
        let key = (group, seq);
        let deadline = tokio::time::Instant::now() + WRITER_ANSWER_WAIT;
        loop {
            let commits = self.commits.notified();
            tokio::pin!(commits);
            // Registered before looking, so a commit marked in between
            // still wakes this.
            commits.as_mut().enable();
            {
                let mut awaiting = self.awaiting();
                match awaiting.entries.get(&key) {
                    None => return false,
                    Some(own) if own.committed => {
                        if let Some(own) = awaiting.entries.remove(&key) {
                            self.hub.publish(&own.appended);
                        }
                        return true;
                    }
                    Some(_) => {}
                }
            }
            if tokio::time::timeout_at(deadline, commits).await.is_err() {
                // Stored and announced, so it is delivered, answer or not.
                if let Some(own) = self.awaiting().entries.remove(&key) {
                    self.hub.publish(&own.appended);
                }
                return true;
            }
        }
    }
}

impl CommitListener for LivePublisher {
    fn committing(&self, appended: &Appended) {
        if !self.through_bus {
            return;
        }
        let mut awaiting = self.awaiting();
        if awaiting.listening && awaiting.entries.len() < MAX_AWAITING {
            let key = (appended.entry.group, appended.entry.seq);
            let own = OwnEntry {
                appended: appended.clone(),
                committed: false,
            };
            awaiting.entries.insert(key, own);
        }
    }

    fn abandoned(&self, appended: &Appended) {
        if self.through_bus {
            let key = (appended.entry.group, appended.entry.seq);
            self.awaiting().entries.remove(&key);
        }
    }

    fn committed(&self, appended: &Appended) {
        if !self.through_bus {
            self.hub.publish(appended);
            return;
        }
        let key = (appended.entry.group, appended.entry.seq);
        let mut awaiting = self.awaiting();
        match awaiting.entries.get_mut(&key) {
            Some(own) => {
                own.committed = true;
                drop(awaiting);
                self.commits.notify_waiters();
            }
            None if !self.hub.already_delivered(key.0, key.1) => {
                // Not waiting for the bus (it is down, or far behind) and
                // not delivered by it yet: deliver it now.
                self.hub.publish(appended);
            }
            None => {}
        }
    }
}
