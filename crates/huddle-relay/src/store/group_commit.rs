//! Group commit: connections hand their appends, acknowledgements and key packages to a writer that commits whatever has queued up in one transaction, so that one fsync covers many messages.
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
//!
//! Each writer has two lanes, each committing on its own: a quick lane for
//! messages and acknowledgements, and a costly lane for writes that store
//! rows beyond their own (commits that add or remove devices, key packages
//! published, key packages claimed). A member who keeps the costly lane busy
//! with commits of a thousand devices makes others' membership changes wait,
//! not everyone's messages. Writes for one group still keep their order: once
//! a costly write for a group is handed over, the group's later writes follow
//! it through the costly lane until it drains, and a costly write waits for
//! the group's quick writes handed over before it.
//!
//! Each writer tells its [`CommitListener`] about the new entries of a
//! batch around its commit, in log order: live delivery hears of a group's
//! entries in the order they were stored, whoever sent them.

use super::log::{AppendOutcome, Appended, CommitListener, Write, Written};
use super::{Engine, Store, StoreError};
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{ClaimedKeyPackage, Submission};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// At most this many writes share one commit, so that one commit's latency
/// stays bounded when a flood arrives.
pub const MAX_BATCH: usize = 256;

/// At most about this many rows of work share one commit (a write counts
/// one, plus the devices it adds or removes, the key packages it stores,
/// the people it claims for): a message queued behind a commit adding a
/// thousand devices waits for that commit alone, not for a dozen like it.
const MAX_BATCH_ROWS: usize = 1_024;

/// Writes waiting per writer before senders wait: back-pressure for a flood.
const QUEUE_DEPTH: usize = 4096;

/// A batch that takes longer than this to commit is logged: every message
/// behind it waited as long.
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(250);

/// Writers for PostgreSQL, each with a connection per lane while it commits.
const POSTGRES_WRITERS: usize = 4;

struct Queued {
    write: Write,
    /// Where the outcome goes; acknowledgements are not waited for.
    reply: Option<oneshot::Sender<Written>>,
}

/// Which of its writer's lanes a write takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// Messages and acknowledgements: a row each.
    Quick,
    /// Writes that store rows beyond their own, and whatever follows one
    /// in its group until none of the group's writes is left in this lane.
    Costly,
}

/// One writer's two lanes.
struct Lanes {
    quick: mpsc::Sender<Queued>,
    costly: mpsc::Sender<Queued>,
}

impl Lanes {
    fn lane(&self, lane: Lane) -> &mpsc::Sender<Queued> {
        match lane {
            Lane::Quick => &self.quick,
            Lane::Costly => &self.costly,
        }
    }
}

/// Writes handed to each lane and not yet committed, per group: what keeps
/// a group's writes in order across the two lanes.
#[derive(Default)]
struct InFlight {
    groups: Mutex<HashMap<GroupId, Counts>>,
    /// Woken whenever a quick write is committed.
    quick_committed: Notify,
    /// Held by the one costly lane committing at a time: on PostgreSQL the
    /// costly work of all the writers at once would take every core from
    /// the quick lanes.
    costly_turn: tokio::sync::Mutex<()>,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    quick: usize,
    costly: usize,
}

impl InFlight {
    fn groups(&self) -> MutexGuard<'_, HashMap<GroupId, Counts>> {
        // Counters only: one left by a panicking holder is still right.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lane for a write to `group`, counted in until [`InFlight::done`].
    fn route(&self, group: GroupId, costly: bool) -> Lane {
        let mut groups = self.groups();
        let counts = groups.entry(group).or_default();
        if costly || counts.costly > 0 {
            counts.costly += 1;
            Lane::Costly
        } else {
            counts.quick += 1;
            Lane::Quick
        }
    }

    /// A write to `group` through `lane` is committed (or was never queued).
    fn done(&self, group: GroupId, lane: Lane) {
        {
            let mut groups = self.groups();
            if let Some(counts) = groups.get_mut(&group) {
                match lane {
                    Lane::Quick => counts.quick = counts.quick.saturating_sub(1),
                    Lane::Costly => counts.costly = counts.costly.saturating_sub(1),
                }
                if counts.quick == 0 && counts.costly == 0 {
                    groups.remove(&group);
                }
            }
        }
        if lane == Lane::Quick {
            self.quick_committed.notify_waiters();
        }
    }

    /// Waits until none of `groups` has a quick write in flight: a costly
    /// write goes after the quick ones handed over before it.
    async fn until_quick_committed(&self, groups: &[GroupId]) {
        loop {
            let committed = self.quick_committed.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            let waiting = {
                let in_flight = self.groups();
                groups
                    .iter()
                    .any(|group| in_flight.get(group).is_some_and(|c| c.quick > 0))
            };
            if !waiting {
                return;
            }
            committed.await;
        }
    }
}

/// A write counted in by [`InFlight::route`] and not yet handed to its
/// lane: dropped, it is counted out.
struct Routed<'a> {
    in_flight: &'a InFlight,
    group: Option<GroupId>,
    lane: Lane,
}

impl Drop for Routed<'_> {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            self.in_flight.done(group, self.lane);
        }
    }
}

/// The way into the writers; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Appender {
    writers: Arc<[Lanes]>,
    /// Picks a writer for an id. Keyed afresh by each relay process, so
    /// that a client choosing its group ids cannot pile every group onto
    /// one writer while the others stand idle.
    spread: std::collections::hash_map::RandomState,
    in_flight: Arc<InFlight>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("writers", &self.writers.len())
            .finish()
    }
}

impl Appender {
    /// Starts the writer tasks for `store`, telling `listener` of each new
    /// entry; they run until every clone of the returned appender is dropped
    /// (or the handles are aborted).
    pub fn start(
        store: &Store,
        listener: Arc<dyn CommitListener>,
    ) -> (Appender, Vec<JoinHandle<()>>) {
        let count = match store.engine() {
            Engine::Sqlite => 1,
            Engine::Postgres => POSTGRES_WRITERS,
        };
        let mut writers = Vec::with_capacity(count);
        let mut incoming = Vec::with_capacity(2 * count);
        for _ in 0..count {
            let (quick, quick_queue) = mpsc::channel(QUEUE_DEPTH);
            let (costly, costly_queue) = mpsc::channel(QUEUE_DEPTH);
            writers.push(Lanes { quick, costly });
            incoming.push((Lane::Quick, quick_queue));
            incoming.push((Lane::Costly, costly_queue));
        }
        let in_flight = Arc::new(InFlight::default());
        let lanes_in_flight = in_flight.clone();
        // Every writer on one thread of its own, off the runtime that runs
        // the connections (see `on_its_own_thread`); on PostgreSQL, with
        // connections of their own opened on that thread, so that each
        // round trip resumes the writer as soon as PostgreSQL answers.
        let io = store.engine() == Engine::Postgres;
        let store = store.clone();
        let all_writers = async move {
            let store = match store.with_connections_of_its_own(2 * count as u32) {
                Ok(store) => store,
                Err(error) => {
                    tracing::error!(%error, "could not open the writers' connections");
                    return;
                }
            };
            let writers = incoming.into_iter().map(|(lane, incoming)| {
                run_writer(
                    store.clone(),
                    lane,
                    incoming,
                    listener.clone(),
                    lanes_in_flight.clone(),
                )
            });
            futures::future::join_all(writers).await;
            if store.engine() == Engine::Postgres {
                store.pool().close().await;
            }
        };
        (
            Appender {
                writers: writers.into(),
                spread: Default::default(),
                in_flight,
            },
            vec![on_its_own_thread(all_writers, io)],
        )
    }

    /// The writer that owns `id` (a group, or the device or person a write
    /// without a group is about): every write for one group goes through
    /// one writer, in the order it was handed over.
    fn writer_by(&self, id: &[u8; 16]) -> &Lanes {
        use std::hash::BuildHasher;
        let hash = self.spread.hash_one(id);
        // The remainder is below the number of writers, so it fits a usize.
        let index = (hash % self.writers.len() as u64) as usize;
        &self.writers[index]
    }

    /// Hands a write to its writer's lane (waiting while that lane's queue
    /// is full); false if the writers have stopped.
    async fn hand_over(&self, queued: Queued) -> bool {
        let costly = queued.write.extra_rows() > 0;
        let lane = match queued.write.group() {
            Some(group) => self.in_flight.route(group, costly),
            None if costly => Lane::Costly,
            None => Lane::Quick,
        };
        // Counted in until the lane commits it; if it never reaches the
        // lane (the writers stopped, or this wait was given up), counted
        // out here, or its group would wait for it for ever.
        let routed = Routed {
            in_flight: &self.in_flight,
            group: queued.write.group(),
            lane,
        };
        let writer = self.writer_by(&queued.write.spread_key());
        if writer.lane(lane).send(queued).await.is_err() {
            return false;
        }
        std::mem::forget(routed);
        true
    }

    /// Hands a write over and waits for its commit.
    async fn write(&self, write: Write) -> Written {
        let (reply, outcome) = oneshot::channel();
        let queued = Queued {
            write,
            reply: Some(reply),
        };
        if !self.hand_over(queued).await {
            return Written::Acknowledged(Err(shutting_down()));
        }
        outcome
            .await
            .unwrap_or_else(|_| Written::Acknowledged(Err(shutting_down())))
    }

    /// Stores a device's key packages with the next commit.
    pub async fn publish_key_packages(
        &self,
        device: DeviceId,
        key_packages: Vec<Vec<u8>>,
        last_resort: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let write = Write::PublishKeyPackages {
            device,
            key_packages,
            last_resort,
        };
        match self.write(write).await {
            Written::KeyPackagesPublished(outcome) => outcome,
            _ => Err(shutting_down()),
        }
    }

    /// Claims a key package for each current device of each of `users`,
    /// with the next commit.
    pub async fn claim_key_packages(
        &self,
        users: Vec<UserId>,
    ) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
        match self.write(Write::ClaimKeyPackages { users }).await {
            Written::KeyPackagesClaimed(outcome) => outcome,
            _ => Err(shutting_down()),
        }
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
    /// lane's queue is full): submissions to one group enqueued one after
    /// another are written in that order (to different groups, in any
    /// order), while their outcomes are awaited together.
    pub async fn enqueue(
        &self,
        sender: DeviceId,
        submission: Submission,
        now: UnixMillis,
    ) -> PendingAppend {
        let (reply, outcome) = oneshot::channel();
        let queued = Queued {
            write: Write::Append {
                sender,
                submission,
                now,
            },
            reply: Some(reply),
        };
        if self.hand_over(queued).await {
            PendingAppend(Some(outcome))
        } else {
            PendingAppend(None)
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
        self.hand_over(queued).await;
    }
}

/// Runs `writer` (the SQLite writer, the sweeper) on a thread of its own,
/// with its own single-threaded runtime; the returned task stands for it
/// (aborting the task stops the writer).
///
/// Each statement of an append is a round trip to SQLite's worker thread,
/// about eight per message. On the shared runtime the writer would queue
/// behind every runnable connection task after each of them, so a relay
/// busy with sockets (a flood, ten thousand phones reconnecting after a
/// network blip) would store everyone's messages slowly. On its own thread
/// it resumes as soon as SQLite answers. The same holds for anything else
/// that holds SQLite's write gate for a while: everyone's messages wait.
///
/// `io` gives the thread's runtime sockets of its own (for PostgreSQL's
/// connections); SQLite needs timers only.
pub(crate) fn on_its_own_thread(
    writer: impl std::future::Future<Output = ()> + Send + 'static,
    io: bool,
) -> JoinHandle<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (finished, done) = oneshot::channel::<()>();
    let started = std::thread::Builder::new()
        .name("huddle-writer".into())
        .spawn(move || {
            // Timers only for SQLite: without an IO driver the thread
            // parks on a futex, the cheapest thing to wake after each of
            // SQLite's answers.
            let mut runtime = tokio::runtime::Builder::new_current_thread();
            runtime.enable_time();
            if io {
                runtime.enable_io();
            }
            match runtime.build() {
                Ok(runtime) => runtime.block_on(async move {
                    tokio::select! {
                        () = writer => {}
                        _ = stopped => {}
                    }
                }),
                Err(error) => tracing::error!(%error, "could not start the writer's runtime"),
            }
            let _ = finished.send(());
        });
    if let Err(error) = started {
        tracing::error!(%error, "could not start the writer's thread");
    }
    tokio::spawn(async move {
        // Dropped with this task, which stops the writer.
        let _stop = stop;
        let _ = done.await;
    })
}

/// How many of `queued` (at least one) go into the next batch: in order,
/// up to [`MAX_BATCH`] writes and [`MAX_BATCH_ROWS`] rows of work.
fn batch_length(queued: &[Queued]) -> usize {
    let mut rows = 0;
    let mut take = 0;
    for queued in queued.iter().take(MAX_BATCH) {
        let cost = 1 + queued.write.extra_rows();
        if take > 0 && rows + cost > MAX_BATCH_ROWS {
            break;
        }
        rows += cost;
        take += 1;
    }
    take
}

fn shutting_down() -> StoreError {
    StoreError::NotCommitted("the relay is shutting down".into())
}

/// A submission handed to a writer, waiting for its commit.
pub struct PendingAppend(Option<oneshot::Receiver<Written>>);

impl PendingAppend {
    /// What became of the submission, once its batch is committed.
    pub async fn outcome(self) -> AppendOutcome {
        match self.0 {
            Some(outcome) => match outcome.await {
                Ok(Written::Append(outcome)) => outcome,
                _ => Err(shutting_down()),
            },
            None => Err(shutting_down()),
        }
    }
}

/// One lane of one writer: commits what queues in `incoming`, a batch at a
/// time, until every sender is dropped.
async fn run_writer(
    store: Store,
    lane: Lane,
    mut incoming: mpsc::Receiver<Queued>,
    listener: Arc<dyn CommitListener>,
    in_flight: Arc<InFlight>,
) {
    let mut queued: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    loop {
        if queued.is_empty() {
            if incoming.recv_many(&mut queued, MAX_BATCH).await == 0 {
                return;
            }
        } else {
            // Writes left over from a batch that was full go first; top up
            // with what has arrived since, without waiting.
            while queued.len() < MAX_BATCH {
                match incoming.try_recv() {
                    Ok(write) => queued.push(write),
                    Err(_) => break,
                }
            }
        }
        let take = batch_length(&queued);
        let (writes, replies): (Vec<Write>, Vec<_>) = queued
            .drain(..take)
            .map(|queued| (queued.write, queued.reply))
            .unzip();
        let groups: Vec<GroupId> = writes.iter().filter_map(Write::group).collect();
        let turn = match lane {
            Lane::Costly => {
                in_flight.until_quick_committed(&groups).await;
                Some(in_flight.costly_turn.lock().await)
            }
            Lane::Quick => None,
        };
        let started = std::time::Instant::now();
        let outcomes = store.write_batch(&writes, listener.as_ref()).await;
        let took = started.elapsed();
        drop(turn);
        if took >= SLOW_BATCH {
            // Counts only: what a batch holds is nobody's business but its
            // groups'.
            let appends = writes
                .iter()
                .filter(|write| matches!(write, Write::Append { .. }))
                .count();
            let extra_rows: usize = writes.iter().map(Write::extra_rows).sum();
            tracing::warn!(
                writes = writes.len(),
                appends,
                extra_rows,
                millis = took.as_millis(),
                "a batch of writes was slow to commit"
            );
        } else {
            tracing::trace!(writes = writes.len(), "batch written");
        }
        // Kept (cheaply: a clone of each new entry) to hand to live
        // delivery once every sender is answered.
        let fresh: Vec<Appended> = outcomes
            .iter()
            .filter_map(Written::fresh_entry)
            .cloned()
            .collect();
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            match (reply, outcome) {
                (None, Written::Acknowledged(Err(error))) => {
                    tracing::warn!(%error, "could not record an acknowledgement");
                }
                // The connection may have closed meanwhile; its device
                // sends again and is answered then.
                (Some(reply), outcome) => {
                    let _ = reply.send(outcome);
                }
                (None, _) => {}
            }
        }
        fresh
            .iter()
            .for_each(|appended| listener.committed(appended));
        for group in groups {
            in_flight.done(group, lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::ids::ClientMessageId;
    use huddle_core::wire::{MembershipChange, Payload};

    fn queued(adds: usize) -> Queued {
        let payload = if adds == 0 {
            Payload::Application {
                ciphertext: vec![1],
            }
        } else {
            Payload::Commit {
                commit: vec![1],
                welcome: Some(vec![2]),
                change: MembershipChange {
                    create: None,
                    add: (0..adds)
                        .map(|n| DeviceId::from_bytes([n as u8; 16]))
                        .collect(),
                    remove: vec![],
                },
            }
        };
        Queued {
            write: Write::Append {
                sender: DeviceId::from_bytes([9; 16]),
                submission: Submission {
                    client_msg: ClientMessageId::from_bytes([adds as u8; 16]),
                    group: GroupId::from_bytes([7; 16]),
                    epoch: 0,
                    expires_at: None,
                    payload,
                },
                now: UnixMillis(0),
            },
            reply: None,
        }
    }

    #[test]
    fn a_batch_is_bounded_by_its_work_as_well_as_its_length() {
        // Messages alone: as many as a batch holds.
        let messages: Vec<Queued> = (0..MAX_BATCH + 10).map(|_| queued(0)).collect();
        assert_eq!(batch_length(&messages), MAX_BATCH);
        // A commit adding a thousand devices goes with the few writes
        // around it that fit; a second such commit waits for the next batch.
        let mixed = vec![
            queued(0),
            queued(0),
            queued(1_000),
            queued(1_000),
            queued(0),
        ];
        assert_eq!(batch_length(&mixed), 3);
        assert_eq!(batch_length(&mixed[3..]), 2);
        // Bigger than a whole batch's work: it still goes, alone.
        let huge = vec![queued(5_000), queued(0)];
        assert_eq!(batch_length(&huge), 1);
    }

    #[test]
    fn groups_whose_ids_look_alike_still_spread_over_every_writer() {
        let writers: Vec<Lanes> = (0..POSTGRES_WRITERS)
            .map(|_| Lanes {
                quick: mpsc::channel(1).0,
                costly: mpsc::channel(1).0,
            })
            .collect();
        let appender = Appender {
            writers: writers.into(),
            spread: Default::default(),
            in_flight: Arc::default(),
        };
        let writer_for = |group: GroupId| &appender.writer_by(group.as_bytes()).quick;
        // Ids that differ only after their first byte (as a client may
        // choose them): every writer gets some, and each group always goes
        // to the same writer.
        let groups: Vec<GroupId> = (0u64..256)
            .map(|n| {
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&n.to_be_bytes());
                GroupId::from_bytes(id)
            })
            .collect();
        let used = appender
            .writers
            .iter()
            .filter(|writer| {
                groups
                    .iter()
                    .any(|group| writer_for(*group).same_channel(&writer.quick))
            })
            .count();
        assert_eq!(used, POSTGRES_WRITERS);
        for group in &groups {
            assert!(writer_for(*group).same_channel(writer_for(*group)));
        }
    }

    #[test]
    fn a_groups_writes_follow_its_costly_write_until_the_costly_lane_holds_none_of_them() {
        let in_flight = InFlight::default();
        let (ward, other) = (GroupId::from_bytes([1; 16]), GroupId::from_bytes([2; 16]));
        assert_eq!(in_flight.route(ward, false), Lane::Quick);
        // A commit adding people: the costly lane, and the ward's messages
        // after it follow it there; other groups' messages do not.
        assert_eq!(in_flight.route(ward, true), Lane::Costly);
        assert_eq!(in_flight.route(ward, false), Lane::Costly);
        assert_eq!(in_flight.route(other, false), Lane::Quick);
        // Once both costly-lane writes are committed, the ward's messages
        // take the quick lane again.
        in_flight.done(ward, Lane::Costly);
        assert_eq!(in_flight.route(ward, false), Lane::Costly);
        for _ in 0..2 {
            in_flight.done(ward, Lane::Costly);
        }
        assert_eq!(in_flight.route(ward, false), Lane::Quick);
    }

    #[test]
    fn a_write_given_up_before_its_lane_took_it_is_counted_out() {
        use futures::FutureExt;
        let (quick, quick_queue) = mpsc::channel(1);
        let (costly, _costly_queue) = mpsc::channel(1);
        let appender = Appender {
            writers: vec![Lanes { quick, costly }].into(),
            spread: Default::default(),
            in_flight: Arc::default(),
        };
        let ward = GroupId::from_bytes([7; 16]);
        assert_eq!(appender.hand_over(queued(0)).now_or_never(), Some(true));
        // The lane's queue is full: the next write waits for room, and
        // whoever handed it over gives up waiting.
        assert_eq!(appender.hand_over(queued(0)).now_or_never(), None);
        let quick = |appender: &Appender| appender.in_flight.groups().get(&ward).map(|c| c.quick);
        assert_eq!(quick(&appender), Some(1), "only the write in the queue");
        // A writer that has stopped: counted out too.
        drop(quick_queue);
        appender.in_flight.done(ward, Lane::Quick);
        assert_eq!(appender.hand_over(queued(0)).now_or_never(), Some(false));
        assert_eq!(quick(&appender), None);
    }

    #[tokio::test]
    async fn a_costly_write_waits_for_its_groups_quick_writes_handed_over_before_it() {
        let in_flight = Arc::new(InFlight::default());
        let (ward, other) = (GroupId::from_bytes([1; 16]), GroupId::from_bytes([2; 16]));
        in_flight.route(ward, false);
        in_flight.route(other, false);
        in_flight.route(ward, true);
        let waiting = {
            let in_flight = in_flight.clone();
            tokio::spawn(async move { in_flight.until_quick_committed(&[ward]).await })
        };
        // Another group's message is committed: the ward's still is not.
        in_flight.done(other, Lane::Quick);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        in_flight.done(ward, Lane::Quick);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the costly write goes once the ward's message is committed")
            .expect("the waiting task ran");
    }
}
