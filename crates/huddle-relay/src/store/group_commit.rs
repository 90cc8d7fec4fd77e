//! Group commit: connections hand their appends and acknowledgements to a writer that commits whatever has queued up in one transaction, so that one fsync covers many messages.
//!
//! Each append still gets its own savepoint, its own outcome and its own
//! place in its group's log; only the commit is shared, and nobody is told
//! "accepted" before it. Nothing waits to fill a batch: a writer takes what
//! is queued the moment the previous commit ends, so a quiet relay commits
//! each message alone and a busy one commits many per fsync.
//!
//! SQLite allows one writer at a time, so it gets one writer task: appends
//! queue here, in order, instead of sleeping in SQLite's busy handler.
//! PostgreSQL gets several, each owning the groups whose id falls to it, so
//! that appends to one group stay in order while different groups commit in
//! parallel.

use super::log::{AppendOutcome, Write, Written};
use super::{Engine, Store, StoreError};
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::Submission;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// At most this many writes share one commit, so that one commit's latency
/// stays bounded when a flood arrives.
pub const MAX_BATCH: usize = 256;

/// Writes waiting per writer before senders wait: back-pressure for a flood.
const QUEUE_DEPTH: usize = 4096;

/// Writer tasks for PostgreSQL, each with its own connection while it commits.
const POSTGRES_WRITERS: usize = 4;

struct Queued {
    write: Write,
    /// Where an append's outcome goes; acknowledgements are not waited for.
    reply: Option<oneshot::Sender<AppendOutcome>>,
}

/// The way into the writers; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Appender {
    writers: Arc<[mpsc::Sender<Queued>]>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("writers", &self.writers.len())
            .finish()
    }
}

impl Appender {
    /// Starts the writer tasks for `store`; they run until every clone of the
    /// returned appender is dropped (or the handles are aborted).
    pub fn start(store: &Store) -> (Appender, Vec<JoinHandle<()>>) {
        let count = match store.engine() {
            Engine::Sqlite => 1,
            Engine::Postgres => POSTGRES_WRITERS,
        };
        let mut writers = Vec::with_capacity(count);
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let (queue, incoming) = mpsc::channel(QUEUE_DEPTH);
            writers.push(queue);
            tasks.push(tokio::spawn(run_writer(store.clone(), incoming)));
        }
        (
            Appender {
                writers: writers.into(),
            },
            tasks,
        )
    }

    /// The writer that owns `group`: every write for one group goes through
    /// one writer, in the order it was handed over.
    fn writer_for(&self, group: GroupId) -> &mpsc::Sender<Queued> {
        let bytes = group.as_bytes();
        let index = usize::from(bytes[0]) % self.writers.len();
        &self.writers[index]
    }

    /// Appends a submission to its group's log; resolves once the commit
    /// that holds it is durable (or with the reason it was refused).
    pub async fn append(
        &self,
        sender: DeviceId,
        submission: Submission,
        now: UnixMillis,
    ) -> AppendOutcome {
        self.enqueue(sender, submission, now).await.outcome().await
    }

    /// Hands a submission to its writer and returns at once (unless the
    /// writer's queue is full): submissions enqueued one after another are
    /// written in that order, while their outcomes are awaited together.
    pub async fn enqueue(
        &self,
        sender: DeviceId,
        submission: Submission,
        now: UnixMillis,
    ) -> PendingAppend {
        let (reply, outcome) = oneshot::channel();
        let writer = self.writer_for(submission.group);
        let queued = Queued {
            write: Write::Append {
                sender,
                submission,
                now,
            },
            reply: Some(reply),
        };
        match writer.send(queued).await {
            Ok(()) => PendingAppend(Some(outcome)),
            Err(_) => PendingAppend(None),
        }
    }

    /// Records that `device` has processed `group` up to `seq`, with the next
    /// commit. Not waited for: only the clean-up of old handshakes depends
    /// on it, and acknowledgements are cumulative, so the device's next one
    /// covers a lost one.
    pub async fn acknowledge(&self, device: DeviceId, group: GroupId, seq: u64) {
        let queued = Queued {
            write: Write::Acknowledge { device, group, seq },
            reply: None,
        };
        // A relay shutting down drops it; the next acknowledgement covers it.
        let _ = self.writer_for(group).send(queued).await;
    }
}

/// A submission handed to a writer, waiting for its commit.
pub struct PendingAppend(Option<oneshot::Receiver<AppendOutcome>>);

impl PendingAppend {
    /// What became of the submission, once its batch is committed.
    pub async fn outcome(self) -> AppendOutcome {
        let shutting_down = || {
            Err(StoreError::NotCommitted(
                "the relay is shutting down".into(),
            ))
        };
        match self.0 {
            Some(outcome) => outcome.await.unwrap_or_else(|_| shutting_down()),
            None => shutting_down(),
        }
    }
}

async fn run_writer(store: Store, mut incoming: mpsc::Receiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (writes, replies): (Vec<Write>, Vec<_>) = batch
            .drain(..)
            .map(|queued| (queued.write, queued.reply))
            .unzip();
        let outcomes = store.write_batch(&writes).await;
        tracing::trace!(writes = writes.len(), "batch written");
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            match (reply, outcome) {
                (Some(reply), Written::Append(outcome)) => {
                    // The connection may have closed meanwhile; its device
                    // resends and is acknowledged again.
                    let _ = reply.send(outcome);
                }
                (None, Written::Acknowledged(Err(error))) => {
                    tracing::warn!(%error, "could not record an acknowledgement");
                }
                _ => {}
            }
        }
    }
}
