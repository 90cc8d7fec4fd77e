//! The sans-IO sync engine: the outbox, per-group cursors, reconnects and commit retries, as a pure state machine.
//!
//! The app's platform layer owns the socket, the timers, IndexedDB and the
//! crypto worker. It feeds what happens into [`SyncEngine::handle`] as an
//! [`Event`] and carries out the [`Command`]s that come back, in order. The
//! engine never reads a clock or draws a random number: both arrive inside
//! events. That is what lets every path here be tested in plain Rust.
//!
//! Guarantees it keeps:
//! - an item is queued (`Enqueue`) only after the platform has saved it, and
//!   every change of its state is saved (`SaveOutboxItem`) before the next
//!   frame goes out;
//! - items go out in the order they were queued, and a resend carries the
//!   same client message id, so the relay stores each once;
//! - a group's log is processed in sequence order, each entry once;
//! - a message is encrypted (`Seal`) only when nothing of this device's is
//!   changing its group: a message written offline, before the crypto worker
//!   started, or while a commit of ours is in flight waits for its turn;
//! - a commit that lost the race for its epoch, or a message made in an
//!   epoch the group has left, is made again (`Seal`) once the device has
//!   caught up, and then sent;
//! - a commit that cannot be opened is never stepped over: the group stops
//!   at it (its position is not saved past it, nothing after it is opened,
//!   nothing is made or sent in it) until the group is joined afresh, and
//!   the person is told (`Notice::NeedsRepair`). Nothing written is lost:
//!   it waits in the outbox;
//! - a stopped group is repaired by a restart of its encryption: after a
//!   few seconds a stopped phone makes one (`Restart`) unless another
//!   member's arrives first, which it joins (`Rejoin`) only with the welcome
//!   and the log entry together, in log order; a restart that fails is
//!   tried again a minute later, for as long as the group is stopped.

use crate::ids::{ClientMessageId, DeviceId, GroupId};
use crate::retention::UnixMillis;
use crate::wire::{
    auth_transcript, chain_of_epoch, ClientFrame, EntryKind, GroupCursor, GroupSpec, LogEntry,
    MembershipChange, Payload, Rejection, ServerFrame, Submission,
};
use std::collections::{BTreeMap, HashSet};

/// Tuning of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// The first reconnect delay; it doubles with each failure.
    pub backoff_base_millis: u64,
    /// The longest reconnect delay.
    pub backoff_max_millis: u64,
    /// Submissions sent but not yet answered. The relay handles a connection's
    /// frames in order, so a window keeps order and hides the round trip.
    pub max_in_flight: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            backoff_base_millis: 500,
            backoff_max_millis: 30_000,
            max_in_flight: 32,
        }
    }
}

/// Where something this device wrote stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutboxState {
    /// Saved on the device, waiting to be encrypted or for a connection.
    Queued,
    /// Sent; the relay has not answered yet.
    Sending,
    /// Durably stored by the relay at this sequence number.
    Sent { seq: u64 },
    /// Not sent, for good unless the person tries again.
    Failed { reason: Failure },
}

/// Why an item was not sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Failure {
    /// The relay refused it.
    Refused(Rejection),
    /// The crypto worker could not encrypt it (the group is gone from this
    /// device, or the worker failed).
    NotEncrypted,
}

/// The MLS message an item carries, once made, and the epoch it was made in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Made {
    pub epoch: u64,
    pub payload: Payload,
}

/// One thing this device wrote for a group: a message (encrypted when its
/// turn comes) or a commit (made when the person asked for the change).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxItem {
    pub client_msg: ClientMessageId,
    pub group: GroupId,
    pub kind: EntryKind,
    /// When a message must be deleted everywhere (none for commits).
    pub expires_at: Option<UnixMillis>,
    /// `None` until the message is encrypted.
    pub made: Option<Made>,
    pub state: OutboxState,
    /// How many times it has been sent.
    pub attempts: u32,
}

impl OutboxItem {
    /// An item whose MLS message is already made (a commit, or a message
    /// sealed at once).
    pub fn new(submission: Submission) -> Self {
        OutboxItem {
            client_msg: submission.client_msg,
            group: submission.group,
            kind: submission.payload.kind(),
            expires_at: submission.expires_at,
            made: Some(Made {
                epoch: submission.epoch,
                payload: submission.payload,
            }),
            state: OutboxState::Queued,
            attempts: 0,
        }
    }

    /// A message written but not encrypted yet: the engine asks for it to
    /// be sealed (`Seal`) when its group is ready.
    pub fn unsealed(client_msg: ClientMessageId, group: GroupId, expires_at: UnixMillis) -> Self {
        OutboxItem {
            client_msg,
            group,
            kind: EntryKind::Application,
            expires_at: Some(expires_at),
            made: None,
            state: OutboxState::Queued,
            attempts: 0,
        }
    }

    pub fn id(&self) -> ClientMessageId {
        self.client_msg
    }

    pub fn is_commit(&self) -> bool {
        self.kind == EntryKind::Commit
    }

    /// A message past its expiry that the relay never stored: it is to be
    /// withdrawn, not sent. (Membership changes never expire; what the
    /// relay stored is the relay's to expire.)
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        !self.is_commit()
            && !matches!(self.state, OutboxState::Sent { .. })
            && self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether this is a restart of its group's encryption (a repair).
    pub fn is_restart(&self) -> bool {
        matches!(
            &self.made,
            Some(Made { epoch, payload: Payload::Commit { change, .. } }) if change.is_restart(*epoch)
        )
    }

    /// The frame's content, once the MLS message is made.
    pub fn submission(&self) -> Option<Submission> {
        let made = self.made.as_ref()?;
        Some(Submission {
            client_msg: self.client_msg,
            group: self.group,
            epoch: made.epoch,
            expires_at: self.expires_at,
            payload: made.payload.clone(),
        })
    }
}

/// What the device knows about one of its groups, saved with `SaveCursor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupPosition {
    pub group: GroupId,
    /// The last log entry processed and stored.
    pub seq: u64,
    /// The MLS epoch after processing it.
    pub epoch: u64,
}

/// The connection, as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No socket; the next attempt is due at `retry_at` (now, if `None`).
    Offline {
        retry_at: Option<UnixMillis>,
    },
    Connecting,
    /// The socket is open; proving who we are.
    Authenticating,
    /// Authenticated; receiving the backlog.
    CatchingUp,
    /// Caught up: live traffic, and the outbox drains.
    Live,
}

/// Something that happened, fed into the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Try to be connected now: the app started, the browser went online, or
    /// the app came back to the foreground.
    Wake { now: UnixMillis },
    /// A timer asked for with `WakeAt` fired.
    Timer { now: UnixMillis },
    /// The socket opened.
    Opened { now: UnixMillis },
    /// The socket closed or failed to open. `jitter` is a random number in
    /// `[0, 1)` that spreads reconnects of many devices apart.
    Closed { now: UnixMillis, jitter: f64 },
    /// A frame arrived.
    Received { now: UnixMillis, frame: ServerFrame },
    /// The device key signed the challenge transcript.
    ChallengeSigned { signature: Vec<u8> },
    /// The user wrote something, and the platform has saved it.
    Enqueue { now: UnixMillis, item: OutboxItem },
    /// A `Seal` was carried out: the message, made in `epoch`.
    Sealed {
        now: UnixMillis,
        client_msg: ClientMessageId,
        epoch: u64,
        payload: Payload,
    },
    /// A `Seal` could not be carried out; the item fails until the person
    /// tries again.
    NotSealed {
        now: UnixMillis,
        client_msg: ClientMessageId,
    },
    /// A commit that lost its epoch has nothing left to do once made again
    /// (the devices it removed were removed by another's): it is dropped.
    Unneeded {
        now: UnixMillis,
        client_msg: ClientMessageId,
    },
    /// A commit could not be opened (see `Notice::NeedsRepair`).
    Unopenable { group: GroupId, seq: u64 },
    /// A `Process` was carried out; the entry's effects are stored.
    Processed {
        group: GroupId,
        seq: u64,
        epoch: u64,
    },
    /// A `Join` was carried out.
    Joined {
        group: GroupId,
        seq: u64,
        epoch: u64,
    },
    /// A restart of this phone's could not be made (no key package for a
    /// member, the relay unreachable): it is tried again later.
    RestartFailed { now: UnixMillis, group: GroupId },
    /// The user asked to send a failed message again.
    Retry {
        now: UnixMillis,
        client_msg: ClientMessageId,
    },
}

/// Something the platform must do, in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Open the socket.
    Connect,
    /// Close the socket (the relay broke the protocol); a `Closed` event follows.
    Disconnect,
    Send(ClientFrame),
    /// Sign this transcript with the device key; answer with `ChallengeSigned`.
    SignChallenge {
        transcript: Vec<u8>,
    },
    /// Fire a `Timer` event at this time (replaces any earlier request).
    WakeAt(UnixMillis),
    /// Persist this outbox item (it is new or its state changed).
    SaveOutboxItem(OutboxItem),
    /// Persist a group position.
    SaveCursor(GroupPosition),
    /// Hand a log entry to the crypto worker; answer with `Processed`.
    /// A commit comes with the membership change the relay recorded for it.
    Process(LogEntry, Option<MembershipChange>),
    /// Join a group from a welcome; answer with `Joined`.
    Join {
        group: GroupId,
        seq: u64,
        spec: GroupSpec,
        welcome: Vec<u8>,
    },
    /// The log reached our own accepted commit: merge it.
    MergeOwnCommit {
        group: GroupId,
        client_msg: ClientMessageId,
    },
    /// Make this item's MLS message in the group's current epoch (encrypt
    /// a message; make a commit that lost its epoch again); answer with
    /// `Sealed` or `NotSealed`.
    Seal {
        client_msg: ClientMessageId,
        group: GroupId,
        epoch: u64,
    },
    /// Something the user should know about (shown, never logged with content).
    Notice(Notice),
    /// Remove these revoked devices from the group by a commit, unless
    /// they are gone already (the relay named them; each is checked).
    RemoveRevoked {
        group: GroupId,
        devices: Vec<DeviceId>,
    },
    /// The relay refused our commit for good: drop it from the worker, so
    /// that the group's next messages are made in its current epoch.
    DiscardOwnCommit {
        group: GroupId,
    },
    /// Restart the group's encryption in `chain` (it is stopped, and nobody
    /// else has restarted it): answered by `Enqueue` of the restart, or by
    /// `RestartFailed`.
    Restart {
        group: GroupId,
        chain: u32,
    },
    /// Join another member's restart, `sender`'s, at `seq`, if its members
    /// are the ones this phone held: answered by `Joined`, or by
    /// `Unopenable` when refused.
    Rejoin(Rejoin),
    /// Forget an outbox item for good (a restart the relay refused, or one
    /// another member's restart made needless).
    DropOutboxItem(ClientMessageId),
    /// The relay refused this device's restart: drop it from the worker
    /// (and nothing else of the group).
    DiscardOwnRestart {
        group: GroupId,
    },
}

/// Another member's restart of a group, both halves here: what joining it
/// needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejoin {
    pub group: GroupId,
    /// The restart's place in the log.
    pub seq: u64,
    /// The chain the entry starts: the welcome must be for it.
    pub chain: u32,
    /// The device the relay authenticated as the restart's sender.
    pub sender: DeviceId,
    pub spec: GroupSpec,
    pub welcome: Vec<u8>,
}

/// Conditions the app shows to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The relay found a gap in a group's log; the device asked again.
    Resyncing { group: GroupId },
    /// The group stopped at entry `seq`, a commit this device could not
    /// open (or, at `seq` 0, its keys fell behind the log): it must be
    /// joined afresh before anything more is read or sent in it.
    NeedsRepair { group: GroupId, seq: u64 },
    /// A stopped group was restarted and this phone is back in it.
    Repaired { group: GroupId },
    /// The relay refused our device: revoked (`ErrorCode::Revoked`) or not
    /// recognised (`ErrorCode::AuthenticationFailed`), with its words.
    SignedOut {
        code: crate::wire::ErrorCode,
        message: String,
    },
}

impl GroupTrack {
    /// Moves the position over deleted ranges that start where it stands.
    fn follow_skips(&mut self) {
        while let Some(up_to) = self.skips.remove(&self.position.seq) {
            self.position.seq = self.position.seq.max(up_to);
            self.dispatched = self.dispatched.max(up_to);
        }
        // Ranges already passed are of no further use.
        let passed: Vec<u64> = self
            .skips
            .range(..self.position.seq)
            .map(|(k, _)| *k)
            .collect();
        for key in passed {
            self.skips.remove(&key);
        }
    }
}

impl Event {
    fn now(&self) -> Option<UnixMillis> {
        match self {
            Event::Wake { now }
            | Event::Timer { now }
            | Event::Opened { now }
            | Event::Closed { now, .. }
            | Event::Received { now, .. }
            | Event::Enqueue { now, .. }
            | Event::Sealed { now, .. }
            | Event::NotSealed { now, .. }
            | Event::Unneeded { now, .. }
            | Event::RestartFailed { now, .. }
            | Event::Retry { now, .. } => Some(*now),
            Event::ChallengeSigned { .. }
            | Event::Processed { .. }
            | Event::Unopenable { .. }
            | Event::Joined { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
struct GroupTrack {
    position: GroupPosition,
    /// The highest sequence number handed to the worker.
    dispatched: u64,
    /// Deleted ranges announced by the relay: once the position reaches the
    /// key, it jumps to the value.
    skips: BTreeMap<u64, u64>,
    /// The entry this group stopped at, when it needs repairing.
    stopped_at: Option<u64>,
    /// The latest chain the relay's log has shown (see
    /// [`crate::wire::wire_epoch`]): a restart starts the one after.
    relay_chain: u32,
    /// When this phone restarts the stopped group, unless someone else does.
    restart_due: Option<UnixMillis>,
    /// Another member's restart, reached in the log: its place, sender and
    /// chain.
    restart_entry: Option<(u64, DeviceId, u32)>,
    /// The welcome of a restart, waiting for its log entry: place, type,
    /// welcome.
    restart_welcome: Option<(u64, GroupSpec, Vec<u8>)>,
}

impl GroupTrack {
    fn new(position: GroupPosition) -> Self {
        GroupTrack {
            position,
            dispatched: position.seq,
            skips: BTreeMap::new(),
            stopped_at: None,
            relay_chain: chain_of_epoch(position.epoch),
            restart_due: None,
            restart_entry: None,
            restart_welcome: None,
        }
    }
}

/// How long a stopped phone waits before it restarts the group itself: a
/// few seconds, spread by its device id so that a group's phones do not all
/// restart at once (the relay accepts one restart a minute).
pub const RESTART_AFTER_MILLIS: u64 = 3_000;
/// The spread added to [`RESTART_AFTER_MILLIS`].
pub const RESTART_SPREAD_MILLIS: u64 = 12_000;

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct SyncEngine {
    device: DeviceId,
    config: SyncConfig,
    connection: ConnectionState,
    failures: u32,
    paused_until: Option<UnixMillis>,
    groups: BTreeMap<GroupId, GroupTrack>,
    /// In the order the user wrote them.
    outbox: Vec<OutboxItem>,
    /// Items waiting to be made again, with the epoch they must reach first,
    /// or whose `Seal` was issued.
    awaiting_seal: BTreeMap<ClientMessageId, SealWait>,
    /// Revoked members the relay named, to remove once the device has
    /// caught up (a commit made in an epoch it has not reached is wasted).
    revoked_members: BTreeMap<GroupId, Vec<DeviceId>>,
    /// The latest time any event carried, for events that carry none.
    last_now: UnixMillis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SealWait {
    /// The group must reach this epoch before the item is made again.
    UntilEpoch(u64),
    /// `Seal` was issued.
    Requested,
}

impl SyncEngine {
    /// An engine for `device`, restored from what the device saved. Items
    /// that were `Sending` when the app stopped are queued again: the relay
    /// recognises a resend by its client message id.
    pub fn new(
        device: DeviceId,
        config: SyncConfig,
        positions: impl IntoIterator<Item = GroupPosition>,
        outbox: impl IntoIterator<Item = OutboxItem>,
    ) -> Self {
        let groups = positions
            .into_iter()
            .map(|position| (position.group, GroupTrack::new(position)))
            .collect();
        let outbox = outbox
            .into_iter()
            .map(|mut item| {
                if item.state == OutboxState::Sending {
                    item.state = OutboxState::Queued;
                }
                item
            })
            .collect();
        SyncEngine {
            device,
            config,
            connection: ConnectionState::Offline { retry_at: None },
            failures: 0,
            paused_until: None,
            groups,
            outbox,
            awaiting_seal: BTreeMap::new(),
            revoked_members: BTreeMap::new(),
            last_now: UnixMillis(0),
        }
    }

    pub fn connection(&self) -> ConnectionState {
        self.connection
    }

    pub fn outbox(&self) -> &[OutboxItem] {
        &self.outbox
    }

    /// Messages the user wrote that the relay has not stored yet (the
    /// offline banner's count).
    pub fn waiting_count(&self) -> usize {
        self.outbox
            .iter()
            .filter(|item| matches!(item.state, OutboxState::Queued | OutboxState::Sending))
            .count()
    }

    /// The entry a group stopped at, if it needs repairing.
    pub fn stopped_at(&self, group: GroupId) -> Option<u64> {
        self.groups.get(&group).and_then(|track| track.stopped_at)
    }

    /// Stops a group at `seq` (once) and tells the person.
    /// This device's share of [`RESTART_SPREAD_MILLIS`].
    fn restart_spread(&self) -> u64 {
        u64::from(self.device.as_bytes()[0]) * RESTART_SPREAD_MILLIS / 256
    }

    fn stop(&mut self, group: GroupId, seq: u64, out: &mut Vec<Command>) {
        let due = self
            .last_now
            .saturating_add_millis(RESTART_AFTER_MILLIS + self.restart_spread());
        let track = self.track(group);
        if track.stopped_at.is_none() {
            track.stopped_at = Some(seq);
            out.push(Command::Notice(Notice::NeedsRepair { group, seq }));
        }
        if track.restart_due.is_none() {
            track.restart_due = Some(due);
            out.push(Command::WakeAt(due));
        }
    }

    /// When this phone will restart a stopped group itself (tests).
    pub fn restart_due(&self, group: GroupId) -> Option<UnixMillis> {
        self.groups.get(&group).and_then(|track| track.restart_due)
    }

    /// Restarts that are due: a stopped group, live, and no restart of ours
    /// in the outbox. Another member's restart whose welcome has not come
    /// by then (a minute after its entry) is given up.
    fn due_restarts(&mut self, now: UnixMillis, out: &mut Vec<Command>) {
        if self.connection != ConnectionState::Live {
            return;
        }
        let outbox = &self.outbox;
        for (group, track) in self.groups.iter_mut() {
            let due = track.stopped_at.is_some()
                && track.restart_due.is_some_and(|at| at <= now)
                && !outbox
                    .iter()
                    .any(|item| item.group == *group && item.is_restart());
            if due {
                track.restart_due = None;
                track.restart_entry = None;
                out.push(Command::Restart {
                    group: *group,
                    chain: track.relay_chain.saturating_add(1),
                });
            }
        }
    }

    /// Tries a restart again in a minute, if the group is still stopped.
    fn restart_later(&mut self, group: GroupId, now: UnixMillis, out: &mut Vec<Command>) {
        // Spread too: a hostile member cannot count on being first.
        let spread = self.restart_spread();
        let track = self.track(group);
        if track.stopped_at.is_some() {
            let at = now.saturating_add_millis(crate::wire::RESTART_EVERY_MILLIS + spread);
            track.restart_due = Some(at);
            out.push(Command::WakeAt(at));
        }
    }

    /// Joins another member's restart once both halves are here: its log
    /// entry (reached in order) and its welcome.
    fn try_rejoin(&mut self, group: GroupId, out: &mut Vec<Command>) {
        let wait_until = self
            .last_now
            .saturating_add_millis(crate::wire::RESTART_EVERY_MILLIS);
        let track = self.track(group);
        let matched = matches!(
            (&track.restart_entry, &track.restart_welcome),
            (Some((at, ..)), Some((welcomed, ..))) if at == welcomed
        );
        if !matched {
            return;
        }
        // The entry stays until the worker has answered (`Joined`, or
        // `Unopenable`): what follows it waits meanwhile.
        let (Some((seq, sender, chain)), Some((_, spec, welcome))) =
            (track.restart_entry, track.restart_welcome.take())
        else {
            return;
        };
        if track.stopped_at.is_some() {
            track.restart_due = Some(wait_until);
        }
        out.push(Command::Rejoin(Rejoin {
            group,
            seq,
            chain,
            sender,
            spec,
            welcome,
        }));
    }

    /// A restart entry reached in the log at `entry.seq`.
    fn restart_reached(
        &mut self,
        entry: &LogEntry,
        change: &MembershipChange,
        out: &mut Vec<Command>,
    ) {
        let (group, seq) = (entry.group, entry.seq);
        if entry.sender == self.device {
            let own = self
                .outbox
                .iter_mut()
                .find(|item| item.id() == entry.client_msg && item.is_restart());
            if let Some(item) = own {
                // Ours, accepted: the restarted group replaces the old one.
                if !matches!(item.state, OutboxState::Sent { .. }) {
                    item.state = OutboxState::Sent { seq };
                    out.push(Command::SaveOutboxItem(item.clone()));
                }
                out.push(Command::MergeOwnCommit {
                    group,
                    client_msg: entry.client_msg,
                });
                let epoch = entry.epoch + 1;
                out.extend(self.handle(Event::Joined { group, seq, epoch }));
                return;
            }
        }
        if !change.add.contains(&self.device) {
            // A restart without this phone: it is out of the group as the
            // relay now routes it. Stop (and restart it with everyone this
            // phone held, in a minute, unless this phone was signed out).
            self.stop(group, seq, out);
            self.restart_later(group, self.last_now, out);
            return;
        }
        let now = self.last_now;
        let track = self.track(group);
        track.restart_entry = Some((seq, entry.sender, chain_of_epoch(entry.epoch)));
        let welcomed = track
            .restart_welcome
            .as_ref()
            .is_some_and(|(at, ..)| *at == seq);
        if !welcomed {
            // Nothing after the restart can be read until its welcome is
            // here: say so rather than wait silently, and if it has not
            // come in a minute, restart the group instead.
            self.stop(group, seq, out);
            let track = self.track(group);
            track.restart_due = Some(now.saturating_add_millis(crate::wire::RESTART_EVERY_MILLIS));
        }
        self.try_rejoin(group, out);
    }

    pub fn position(&self, group: GroupId) -> Option<GroupPosition> {
        self.groups.get(&group).map(|track| track.position)
    }

    /// Forgets an item that failed for good, instead of keeping it for the
    /// person to try again (a read receipt: the next one says as much).
    pub fn forget_failed(&mut self, client_msg: ClientMessageId) {
        self.outbox.retain(|item| {
            item.id() != client_msg || !matches!(item.state, OutboxState::Failed { .. })
        });
    }

    /// Drops items the relay has stored from memory (the app keeps its own
    /// copy of what was said). A commit stays until the group's log has
    /// reached it and it is merged: MLS cannot open a device's own commit, so
    /// its log entry must still be recognised as ours.
    pub fn forget_sent(&mut self) {
        let groups = &self.groups;
        self.outbox.retain(|item| match item.state {
            OutboxState::Sent { seq } => {
                item.is_commit()
                    && groups
                        .get(&item.group)
                        .is_none_or(|track| track.position.seq < seq)
            }
            _ => true,
        });
    }

    /// Withdraws the messages that expired before the relay stored them:
    /// they are never sent (the relay would refuse them) and the device
    /// must not keep them past their expiry. Returns their ids, for the
    /// app to delete its own copies.
    pub fn withdraw_expired(&mut self, now: UnixMillis) -> Vec<ClientMessageId> {
        let mut withdrawn = Vec::new();
        self.outbox.retain(|item| {
            let expired = item.is_expired(now);
            if expired {
                withdrawn.push(item.id());
            }
            !expired
        });
        for id in &withdrawn {
            self.awaiting_seal.remove(id);
        }
        withdrawn
    }

    /// Feeds one event in; returns what to do.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        if let Some(now) = event.now() {
            self.last_now = self.last_now.max(now);
        }
        match event {
            Event::Wake { now } => self.wake(now, true, &mut out),
            Event::Timer { now } => self.wake(now, false, &mut out),
            Event::Opened { .. } => {
                if self.connection == ConnectionState::Connecting {
                    self.connection = ConnectionState::Authenticating;
                }
            }
            Event::Closed { now, jitter } => self.closed(now, jitter, &mut out),
            Event::Received { now, frame } => self.received(now, frame, &mut out),
            Event::ChallengeSigned { signature } => {
                if self.connection == ConnectionState::Authenticating {
                    out.push(Command::Send(ClientFrame::Authenticate {
                        device: self.device,
                        signature,
                    }));
                }
            }
            Event::Enqueue { now, item } => {
                if self.item_mut(item.id()).is_none() {
                    self.outbox.push(item);
                }
                self.flush(now, &mut out);
                if matches!(self.connection, ConnectionState::Offline { .. }) {
                    self.wake(now, false, &mut out);
                }
            }
            Event::Sealed {
                now,
                client_msg,
                epoch,
                payload,
            } => {
                self.awaiting_seal.remove(&client_msg);
                let mut behind = None;
                if let Some(item) = self.item_mut(client_msg) {
                    let group = item.group;
                    item.made = Some(Made { epoch, payload });
                    item.state = OutboxState::Queued;
                    out.push(Command::SaveOutboxItem(item.clone()));
                    let group_epoch = self.groups.get(&group).map_or(0, |t| t.position.epoch);
                    if epoch < group_epoch {
                        behind = Some(group);
                    }
                }
                // The worker made it in an epoch the log has left: its keys
                // fell behind (a commit it never merged). Asking again would
                // get the same answer for ever.
                if let Some(group) = behind {
                    self.stop(group, 0, &mut out);
                }
                self.flush(now, &mut out);
            }
            Event::Unneeded { now, client_msg } => {
                self.awaiting_seal.remove(&client_msg);
                self.outbox.retain(|item| item.id() != client_msg);
                self.flush(now, &mut out);
            }
            Event::NotSealed { now, client_msg } => {
                self.awaiting_seal.remove(&client_msg);
                if let Some(item) = self.item_mut(client_msg) {
                    item.state = OutboxState::Failed {
                        reason: Failure::NotEncrypted,
                    };
                    out.push(Command::SaveOutboxItem(item.clone()));
                }
                self.flush(now, &mut out);
            }
            Event::Unopenable { group, seq } => {
                // A restart this phone refused: it is no longer waited on.
                let track = self.track(group);
                if track.restart_entry.is_some_and(|(at, ..)| at == seq) {
                    track.restart_entry = None;
                }
                self.stop(group, seq, &mut out);
                self.flush(self.last_now, &mut out);
            }
            Event::Processed { group, seq, epoch } => {
                let track = self.track(group);
                if track.stopped_at.is_some_and(|stop| seq >= stop) {
                    return out;
                }
                if seq > track.position.seq {
                    track.position.seq = seq;
                    track.position.epoch = epoch;
                    track.dispatched = track.dispatched.max(seq);
                    track.follow_skips();
                    let seq = track.position.seq;
                    out.push(Command::SaveCursor(track.position));
                    if self.connection == ConnectionState::Live {
                        out.push(Command::Send(ClientFrame::Ack { group, seq }));
                    }
                }
                self.release_seals(group, &mut out);
                self.flush(self.last_now, &mut out);
            }
            Event::Joined { group, seq, epoch } => {
                let position = GroupPosition { group, seq, epoch };
                let repaired = self
                    .groups
                    .get(&group)
                    .is_some_and(|track| track.stopped_at.is_some());
                let mut track = GroupTrack::new(position);
                if let Some(old) = self.groups.get(&group) {
                    track.relay_chain = track.relay_chain.max(old.relay_chain);
                }
                self.groups.insert(group, track);
                if repaired {
                    out.push(Command::Notice(Notice::Repaired { group }));
                }
                // A restart of ours that another member's made needless (its
                // worker state went with the join).
                let needless: Vec<ClientMessageId> = self
                    .outbox
                    .iter()
                    .filter(|item| {
                        item.group == group
                            && item.is_restart()
                            && !matches!(item.state, OutboxState::Sent { .. })
                    })
                    .map(|item| item.id())
                    .collect();
                self.outbox.retain(|item| !needless.contains(&item.id()));
                out.extend(needless.into_iter().map(Command::DropOutboxItem));
                // What the relay refused as made before a restart is made
                // again in the new chain.
                self.release_seals(group, &mut out);
                out.push(Command::SaveCursor(position));
                if matches!(
                    self.connection,
                    ConnectionState::Live | ConnectionState::CatchingUp
                ) {
                    // Ask for whatever followed the commit that added us.
                    out.push(Command::Send(ClientFrame::Sync {
                        cursors: vec![GroupCursor { group, seq }],
                    }));
                }
                // Joined afresh after a repair: what waited is made now.
                self.flush(self.last_now, &mut out);
            }
            Event::RestartFailed { now, group } => {
                self.restart_later(group, now, &mut out);
            }
            Event::Retry { now, client_msg } => {
                if let Some(item) = self.item_mut(client_msg) {
                    if matches!(item.state, OutboxState::Failed { .. }) {
                        item.state = OutboxState::Queued;
                        out.push(Command::SaveOutboxItem(item.clone()));
                    }
                }
                self.flush(now, &mut out);
            }
        }
        out
    }

    fn item_mut(&mut self, id: ClientMessageId) -> Option<&mut OutboxItem> {
        self.outbox.iter_mut().find(|item| item.id() == id)
    }

    fn track(&mut self, group: GroupId) -> &mut GroupTrack {
        self.groups.entry(group).or_insert_with(|| {
            GroupTrack::new(GroupPosition {
                group,
                seq: 0,
                epoch: 0,
            })
        })
    }

    fn wake(&mut self, now: UnixMillis, forced: bool, out: &mut Vec<Command>) {
        if let ConnectionState::Offline { retry_at } = self.connection {
            let due = forced || retry_at.is_none_or(|at| now >= at);
            if due {
                self.connection = ConnectionState::Connecting;
                out.push(Command::Connect);
            } else if let Some(at) = retry_at {
                out.push(Command::WakeAt(at));
            }
        }
        // Messages are encrypted in turn even offline; they are sent once live.
        self.flush(now, out);
    }

    /// The delay before reconnect attempt `failures`: exponential with a cap,
    /// then "equal jitter" (half fixed, half random) so that a relay restart
    /// is not met by every device at the same instant.
    pub fn backoff_millis(&self, failures: u32, jitter: f64) -> u64 {
        let exponent = failures.saturating_sub(1).min(20);
        let full = self
            .config
            .backoff_base_millis
            .saturating_mul(1u64 << exponent)
            .min(self.config.backoff_max_millis);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        full / 2 + ((full / 2) as f64 * jitter) as u64
    }

    fn closed(&mut self, now: UnixMillis, jitter: f64, out: &mut Vec<Command>) {
        self.failures = self.failures.saturating_add(1);
        let retry_at = now.saturating_add_millis(self.backoff_millis(self.failures, jitter));
        self.connection = ConnectionState::Offline {
            retry_at: Some(retry_at),
        };
        // Unanswered sends go again, with the same ids, after reconnecting.
        for item in &mut self.outbox {
            if item.state == OutboxState::Sending {
                item.state = OutboxState::Queued;
            }
        }
        // Entries handed to the worker but not processed will come again.
        for track in self.groups.values_mut() {
            track.dispatched = track.position.seq;
        }
        out.push(Command::WakeAt(retry_at));
    }

    fn received(&mut self, now: UnixMillis, frame: ServerFrame, out: &mut Vec<Command>) {
        match frame {
            ServerFrame::Challenge { nonce, .. } => {
                if self.connection == ConnectionState::Authenticating {
                    out.push(Command::SignChallenge {
                        transcript: auth_transcript(&nonce, self.device),
                    });
                }
            }
            ServerFrame::Ready { .. } => {
                self.failures = 0;
                // The relay names them afresh at each sign-in.
                self.revoked_members.clear();
                self.connection = ConnectionState::CatchingUp;
                let cursors = self
                    .groups
                    .values()
                    .map(|track| GroupCursor {
                        group: track.position.group,
                        seq: track.position.seq,
                    })
                    .collect();
                out.push(Command::Send(ClientFrame::Sync { cursors }));
            }
            ServerFrame::Synced => {
                if self.connection == ConnectionState::CatchingUp {
                    self.connection = ConnectionState::Live;
                }
                self.release_removals(out);
                self.flush(now, out);
            }
            ServerFrame::RevokedMembers { groups } => {
                for revoked in groups {
                    let known = self
                        .groups
                        .get(&revoked.group)
                        .is_some_and(|track| track.stopped_at.is_none());
                    if known && !revoked.devices.is_empty() {
                        self.revoked_members.insert(revoked.group, revoked.devices);
                    }
                }
                if self.connection == ConnectionState::Live {
                    self.release_removals(out);
                }
            }
            ServerFrame::Accepted {
                client_msg, seq, ..
            } => self.accepted(now, client_msg, seq, out),
            ServerFrame::Rejected {
                client_msg, reason, ..
            } => self.rejected(now, client_msg, reason, out),
            ServerFrame::Deliver(entry) => self.deliver(entry, None, out),
            ServerFrame::DeliverCommit { entry, declared } => {
                self.deliver(entry, Some(declared), out)
            }
            ServerFrame::Welcome {
                group,
                seq,
                spec,
                welcome,
            } => {
                match self.groups.get_mut(&group) {
                    None => out.push(Command::Join {
                        group,
                        seq,
                        spec,
                        welcome,
                    }),
                    // A welcome to a group this phone holds: a restart,
                    // joined when the log reaches its entry.
                    Some(track) if seq > track.position.seq => {
                        track.restart_welcome = Some((seq, spec, welcome));
                        self.try_rejoin(group, out);
                    }
                    Some(_) => {}
                }
            }
            ServerFrame::Skipped { group, up_to } => {
                let connection = self.connection;
                let track = self.track(group);
                if up_to > track.dispatched {
                    // The range starts after what was handed to the worker;
                    // the position jumps once the worker has caught up to it.
                    let from = track.dispatched;
                    track.skips.insert(from, up_to);
                    track.dispatched = up_to;
                    let before = track.position.seq;
                    track.follow_skips();
                    if track.position.seq > before {
                        let position = track.position;
                        out.push(Command::SaveCursor(position));
                        if connection == ConnectionState::Live {
                            out.push(Command::Send(ClientFrame::Ack {
                                group,
                                seq: position.seq,
                            }));
                        }
                    }
                }
            }
            ServerFrame::Error { code, message } => {
                use crate::wire::ErrorCode;
                if matches!(code, ErrorCode::Revoked | ErrorCode::AuthenticationFailed) {
                    out.push(Command::Notice(Notice::SignedOut { code, message }));
                    out.push(Command::Disconnect);
                }
            }
            // Answers to requests are paired with their askers by the
            // platform layer; they do not change what the engine does.
            ServerFrame::KeyPackagesPublished { .. }
            | ServerFrame::KeyPackages { .. }
            | ServerFrame::Pong { .. }
            | ServerFrame::InviteCreated { .. }
            | ServerFrame::Done { .. }
            | ServerFrame::Refused { .. }
            | ServerFrame::People { .. }
            | ServerFrame::Audit { .. }
            | ServerFrame::Identities { .. }
            | ServerFrame::Devices { .. }
            | ServerFrame::SignedOutPhones { .. }
            | ServerFrame::AccessEnds { .. }
            | ServerFrame::ReviewsDue { .. } => {}
        }
    }

    fn accepted(
        &mut self,
        now: UnixMillis,
        client_msg: ClientMessageId,
        seq: u64,
        out: &mut Vec<Command>,
    ) {
        let Some(item) = self.item_mut(client_msg) else {
            return;
        };
        if matches!(item.state, OutboxState::Sent { .. }) {
            return;
        }
        item.state = OutboxState::Sent { seq };
        out.push(Command::SaveOutboxItem(item.clone()));
        // An accepted commit is merged when the log reaches it (see
        // `deliver`), so that entries before it are opened in their epoch.
        self.flush(now, out);
    }

    /// Asks for the revoked members the relay named to be removed.
    fn release_removals(&mut self, out: &mut Vec<Command>) {
        for (group, devices) in std::mem::take(&mut self.revoked_members) {
            out.push(Command::RemoveRevoked { group, devices });
        }
    }

    fn rejected(
        &mut self,
        now: UnixMillis,
        client_msg: ClientMessageId,
        reason: Rejection,
        out: &mut Vec<Command>,
    ) {
        let Some(item) = self.item_mut(client_msg) else {
            return;
        };
        if item.is_restart() {
            // A restart is never made again as it was: the group may have
            // been restarted by someone else meanwhile. It is dropped, and
            // made afresh later if the group is still stopped.
            let group = item.group;
            self.outbox.retain(|item| item.id() != client_msg);
            out.push(Command::DiscardOwnRestart { group });
            out.push(Command::DropOutboxItem(client_msg));
            let track = self.track(group);
            if let Rejection::StaleEpoch { current_epoch } = reason {
                track.relay_chain = track.relay_chain.max(chain_of_epoch(current_epoch));
            }
            self.restart_later(group, now, out);
            self.flush(now, out);
            return;
        }
        match reason {
            Rejection::StaleEpoch { current_epoch } => {
                item.state = OutboxState::Queued;
                let id = item.id();
                let group = item.group;
                self.awaiting_seal
                    .insert(id, SealWait::UntilEpoch(current_epoch));
                // The commit that moved the group on is usually on its way
                // here; if its live copy was lost, nothing else would bring
                // it. Ask for the log from where we stand (what arrives twice
                // is dropped as a duplicate).
                let connection = self.connection;
                let track = self.track(group);
                if track.position.epoch < current_epoch
                    && matches!(
                        connection,
                        ConnectionState::Live | ConnectionState::CatchingUp
                    )
                {
                    track.dispatched = track.position.seq;
                    out.push(Command::Send(ClientFrame::Sync {
                        cursors: vec![GroupCursor {
                            group,
                            seq: track.position.seq,
                        }],
                    }));
                }
                self.release_seals(group, out);
            }
            Rejection::RateLimited { retry_after_ms } => {
                item.state = OutboxState::Queued;
                let until = now.saturating_add_millis(u64::from(retry_after_ms));
                self.paused_until = Some(until);
                out.push(Command::WakeAt(until));
            }
            reason => {
                item.state = OutboxState::Failed {
                    reason: Failure::Refused(reason),
                };
                out.push(Command::SaveOutboxItem(item.clone()));
                // A commit refused for good is still pending in the worker,
                // which then refuses to make anything else in the group:
                // drop it, or every message after it fails to encrypt.
                if item.is_commit() && item.made.is_some() {
                    out.push(Command::DiscardOwnCommit { group: item.group });
                }
            }
        }
        self.flush(now, out);
    }

    fn deliver(
        &mut self,
        entry: LogEntry,
        declared: Option<MembershipChange>,
        out: &mut Vec<Command>,
    ) {
        let connection = self.connection;
        let own = entry.sender == self.device;
        let track = self.track(entry.group);
        if entry.seq <= track.dispatched {
            return; // already handed over: a duplicate after a resync
        }
        track.relay_chain = track.relay_chain.max(chain_of_epoch(entry.epoch));
        if track.restart_entry.is_some() {
            // Made after a restart this phone has not joined yet: the log
            // is asked for again from the restart once it has.
            return;
        }
        if let Some(change) = declared.as_ref().filter(|c| c.is_restart(entry.epoch)) {
            if entry.seq == track.dispatched + 1 || track.stopped_at.is_some() {
                track.dispatched = entry.seq;
                let change = change.clone();
                self.restart_reached(&entry, &change, out);
                return;
            }
        }
        if track.stopped_at.is_some() {
            // Made in epochs this device never reached: it waits on the
            // relay, unacknowledged, until the group is repaired.
            track.dispatched = entry.seq;
            return;
        }
        if entry.seq > track.dispatched + 1 {
            // A gap: ask for the log again from what we have processed.
            let cursor = GroupCursor {
                group: entry.group,
                seq: track.position.seq,
            };
            track.dispatched = track.position.seq;
            out.push(Command::Notice(Notice::Resyncing { group: entry.group }));
            if matches!(
                connection,
                ConnectionState::Live | ConnectionState::CatchingUp
            ) {
                out.push(Command::Send(ClientFrame::Sync {
                    cursors: vec![cursor],
                }));
            }
            return;
        }
        track.dispatched = entry.seq;
        let epoch_before = track.position.epoch;
        if entry.epoch > epoch_before {
            // Made in an epoch this device never reached: a commit before
            // it was withheld, or skipped over. Stepping past it would leave
            // the group unreadable without a word; it stops here instead.
            let (group, seq) = (entry.group, entry.seq);
            self.stop(group, seq, out);
            return;
        }
        let own_item = if own {
            self.outbox
                .iter()
                .position(|item| item.id() == entry.client_msg)
        } else {
            None
        };
        let Some(index) = own_item else {
            out.push(Command::Process(entry, declared));
            return;
        };
        // MLS cannot open a device's own messages, and the device already
        // has them. The entry may come before the relay's `Accepted` when a
        // resend follows a lost connection: it counts as the acceptance.
        let item = &mut self.outbox[index];
        let is_commit = item.is_commit();
        if !matches!(item.state, OutboxState::Sent { .. }) {
            item.state = OutboxState::Sent { seq: entry.seq };
            out.push(Command::SaveOutboxItem(item.clone()));
        }
        if is_commit {
            out.push(Command::MergeOwnCommit {
                group: entry.group,
                client_msg: entry.client_msg,
            });
        }
        let epoch = if is_commit {
            entry.epoch + 1
        } else {
            epoch_before
        };
        out.extend(self.handle(Event::Processed {
            group: entry.group,
            seq: entry.seq,
            epoch,
        }));
    }

    /// Issues `Seal` for items whose group has reached the epoch they wait for.
    fn release_seals(&mut self, group: GroupId, out: &mut Vec<Command>) {
        if self.stopped_at(group).is_some() {
            return;
        }
        let epoch = self.groups.get(&group).map_or(0, |t| t.position.epoch);
        let ready: Vec<ClientMessageId> = self
            .awaiting_seal
            .iter()
            .filter(|(id, wait)| {
                matches!(wait, SealWait::UntilEpoch(target) if epoch >= *target)
                    && self
                        .outbox
                        .iter()
                        .any(|item| item.id() == **id && item.group == group)
            })
            .map(|(id, _)| *id)
            .collect();
        for client_msg in ready {
            self.awaiting_seal.insert(client_msg, SealWait::Requested);
            out.push(Command::Seal {
                client_msg,
                group,
                epoch,
            });
        }
    }

    /// Walks the outbox in order: asks for items to be encrypted (or made
    /// again) when their turn comes, and sends what is ready, within the
    /// window, when live. A group with an item waiting to be made, or with a
    /// commit of ours not yet merged, holds back its later items, so that
    /// order within a conversation is kept and nothing is made in an epoch
    /// that is about to end.
    fn flush(&mut self, now: UnixMillis, out: &mut Vec<Command>) {
        let mut can_send = self.connection == ConnectionState::Live;
        if let Some(until) = self.paused_until {
            if now < until {
                can_send = false;
            } else {
                self.paused_until = None;
            }
        }
        let mut in_flight = self
            .outbox
            .iter()
            .filter(|item| item.state == OutboxState::Sending)
            .count();
        // Nothing follows our own commit in its group until the log has
        // reached it and it is merged: whatever comes next must be made in
        // the epoch that commit creates.
        let mut held_groups: HashSet<GroupId> = self
            .outbox
            .iter()
            .filter(|item| {
                let merged_up_to = self.groups.get(&item.group).map_or(0, |t| t.position.seq);
                item.is_commit()
                    && match item.state {
                        OutboxState::Sending => true,
                        OutboxState::Sent { seq } => seq > merged_up_to,
                        _ => false,
                    }
            })
            .map(|item| item.group)
            .collect();
        // A group that needs repairing: what is written in it waits.
        held_groups.extend(
            self.groups
                .iter()
                .filter(|(_, track)| track.stopped_at.is_some())
                .map(|(group, _)| *group),
        );
        self.due_restarts(now, out);
        let mut to_seal = Vec::new();
        for index in 0..self.outbox.len() {
            let item = &self.outbox[index];
            let group = item.group;
            // A restart goes out from a stopped group: it is the repair.
            let held = held_groups.contains(&group)
                && !(item.is_restart() && self.stopped_at(group).is_some());
            if item.state != OutboxState::Queued || held {
                continue;
            }
            // Expired before the sweep reached it (the connection came
            // first): left for the sweep to withdraw, never sent.
            if item.is_expired(now) {
                continue;
            }
            if self.awaiting_seal.contains_key(&item.id()) {
                held_groups.insert(group);
                continue;
            }
            let group_epoch = self.groups.get(&group).map_or(0, |t| t.position.epoch);
            let ready = item.made.as_ref().is_some_and(|m| m.epoch >= group_epoch);
            if !ready {
                held_groups.insert(group);
                to_seal.push((item.id(), group, group_epoch));
                continue;
            }
            if item.is_commit() {
                // Ours, pending in the worker: nothing after it in the group
                // can be made until it is merged.
                held_groups.insert(group);
            }
            if !can_send || in_flight >= self.config.max_in_flight {
                continue;
            }
            let item = &mut self.outbox[index];
            let Some(submission) = item.submission() else {
                continue;
            };
            item.state = OutboxState::Sending;
            item.attempts = item.attempts.saturating_add(1);
            in_flight += 1;
            out.push(Command::Send(ClientFrame::Submit(submission)));
        }
        for (client_msg, group, epoch) in to_seal {
            self.awaiting_seal.insert(client_msg, SealWait::Requested);
            out.push(Command::Seal {
                client_msg,
                group,
                epoch,
            });
        }
    }
}

#[cfg(test)]
mod tests;
