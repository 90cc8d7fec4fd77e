//! In-memory implementations of the session's traits, for its native tests: a cache of maps, the crypto worker's own logic in process (real MLS), a hand-driven clock, a screen that records, and a small relay that orders logs the way the real one does.
//!
//! The relay here keeps only the rules the phone depends on (one commit per
//! epoch, each client message stored once, backlogs after a cursor,
//! welcomes for added devices); the real relay is tested against real
//! sockets and databases in `huddle-relay`, and the whole app end to end.
//! Tests can make it misbehave the ways a network does: drop an answer,
//! drop a live entry, close a connection.

use crate::platform::{
    Cache, CacheError, CacheWrite, Clock, Crypto, CryptoError, Log, Parts, Platform, Randomness,
    Screen, SocketEvent, SocketEvents, Tasks, Transport,
};
use crate::records::{
    ConversationRecord, Directory, Enrolment, MessageRecord, OutboxRecord, Standing,
};
use crate::update::Update;
use crate::Phone;
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::LocalBoxFuture;
use futures::task::LocalSpawnExt;
use huddle_core::attestation::Identities;
use huddle_core::crypto_worker::{PageKey, WorkerRequest, WorkerResponse};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::sync::GroupPosition;
use huddle_core::wire::{
    ClaimedKeyPackage, ClientFrame, DeviceCertificate, EntryKind, GroupCursor, GroupSpec, LogEntry,
    MembershipChange, Payload, Person, Rejection, Role, ServerFrame, Submission,
};
use huddle_worker::core::{DeviceRecord, WorkerCore};
use huddle_worker::lock::LockRecord;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

pub const ORG: OrgId = OrgId::from_bytes([1; 16]);
/// When every test begins.
pub const START: UnixMillis = UnixMillis(1_795_000_000_000);

// --- The cache ------------------------------------------------------------

#[derive(Default)]
pub struct MemStore {
    pub enrolment: Option<Enrolment>,
    pub directory: Directory,
    pub identities: Identities,
    pub standing: Option<Standing>,
    pub conversations: BTreeMap<GroupId, ConversationRecord>,
    /// Keyed as the browser keys them: expiry first.
    pub messages: BTreeMap<(UnixMillis, GroupId, ClientMessageId), MessageRecord>,
    pub outbox: BTreeMap<ClientMessageId, OutboxRecord>,
    pub cursors: BTreeMap<GroupId, GroupPosition>,
    pub receipts: BTreeMap<GroupId, crate::receipts::ReceiptsRecord>,
    /// Every transaction written, in order.
    pub transactions: Vec<Vec<CacheWrite>>,
    /// The next writes fail, as a full disk would make them.
    pub failing: bool,
    /// The data key is no longer kept beside the data (a passcode wraps it).
    pub key_forgotten: bool,
}

#[derive(Clone, Default)]
pub struct MemCache(pub Rc<RefCell<MemStore>>);

impl Cache for MemCache {
    async fn enrolment(&self) -> Result<Option<Enrolment>, CacheError> {
        Ok(self.0.borrow().enrolment.clone())
    }
    async fn directory(&self) -> Result<Directory, CacheError> {
        Ok(self.0.borrow().directory.clone())
    }
    async fn identities(&self) -> Result<Identities, CacheError> {
        Ok(self.0.borrow().identities.clone())
    }
    async fn standing(&self) -> Result<Option<Standing>, CacheError> {
        Ok(self.0.borrow().standing)
    }
    async fn conversations(&self) -> Result<Vec<ConversationRecord>, CacheError> {
        Ok(self.0.borrow().conversations.values().cloned().collect())
    }
    async fn latest_messages(
        &self,
        group: GroupId,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, CacheError> {
        Ok(self
            .0
            .borrow()
            .messages
            .values()
            .rev()
            .filter(|m| m.group == group)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn message(
        &self,
        expires_at: UnixMillis,
        group: GroupId,
        client_msg: ClientMessageId,
    ) -> Result<Option<MessageRecord>, CacheError> {
        Ok(self
            .0
            .borrow()
            .messages
            .get(&(expires_at, group, client_msg))
            .cloned())
    }
    async fn message_count(&self, group: GroupId) -> Result<u32, CacheError> {
        let count = self
            .0
            .borrow()
            .messages
            .values()
            .filter(|m| m.group == group)
            .count();
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }
    async fn outbox(&self) -> Result<Vec<OutboxRecord>, CacheError> {
        let mut records: Vec<OutboxRecord> = self.0.borrow().outbox.values().cloned().collect();
        records.sort_by_key(|r| r.order);
        Ok(records)
    }
    async fn cursors(&self) -> Result<Vec<GroupPosition>, CacheError> {
        Ok(self.0.borrow().cursors.values().copied().collect())
    }
    async fn receipts(
        &self,
        group: GroupId,
    ) -> Result<Option<crate::receipts::ReceiptsRecord>, CacheError> {
        Ok(self.0.borrow().receipts.get(&group).cloned())
    }
    async fn write(&self, writes: Vec<CacheWrite>) -> Result<(), CacheError> {
        let mut store = self.0.borrow_mut();
        if store.failing {
            return Err(CacheError::Failed);
        }
        for write in &writes {
            match write.clone() {
                CacheWrite::Enrolment(e) => store.enrolment = Some(e),
                CacheWrite::Directory(d) => store.directory = d,
                CacheWrite::Identities(i) => store.identities = i,
                CacheWrite::Standing(standing) => store.standing = Some(standing),
                CacheWrite::Receipts(r) => {
                    store.receipts.insert(r.group, r);
                }
                CacheWrite::Conversation(c) => {
                    store.conversations.insert(c.group, c);
                }
                CacheWrite::Message(m) => {
                    store
                        .messages
                        .insert((m.expires_at, m.group, m.client_msg), m);
                }
                CacheWrite::DeleteMessage {
                    expires_at,
                    group,
                    client_msg,
                } => {
                    store.messages.remove(&(expires_at, group, client_msg));
                }
                CacheWrite::Outbox(r) => {
                    store.outbox.insert(r.item.id(), r);
                }
                CacheWrite::DeleteOutbox(id) => {
                    store.outbox.remove(&id);
                }
                CacheWrite::Cursor(p) => {
                    store.cursors.insert(p.group, p);
                }
            }
        }
        store.transactions.push(writes);
        Ok(())
    }
    async fn expire(&self, now: UnixMillis) -> Result<(), CacheError> {
        let mut store = self.0.borrow_mut();
        if store.failing {
            return Err(CacheError::Failed);
        }
        store.messages.retain(|(at, _, _), _| *at > now);
        Ok(())
    }
    async fn wipe(&self) -> Result<(), CacheError> {
        *self.0.borrow_mut() = MemStore::default();
        Ok(())
    }
    fn data_key(&self) -> Result<PageKey, CacheError> {
        Ok(PageKey::new(vec![0x5a; 32]))
    }
    async fn forget_kept_key(&self) -> Result<(), CacheError> {
        self.0.borrow_mut().key_forgotten = true;
        Ok(())
    }
}

// --- The crypto worker ----------------------------------------------------

/// The worker's logic with its "disk": what the browser glue does around
/// `WorkerCore` (persist every change before answering), in memory.
#[derive(Clone)]
pub struct MemCrypto(pub Rc<RefCell<WorkerDisk>>);

pub struct WorkerDisk {
    core: WorkerCore,
    record: Option<DeviceRecord>,
    entries: HashMap<Vec<u8>, Vec<u8>>,
    pub wiped: bool,
    /// Requests fail with this, as a stuck worker's would.
    pub failing: Option<CryptoError>,
    /// A passcode lock made and waiting for the relay, and the one kept.
    pending_lock: Option<LockRecord>,
    pub lock: Option<LockRecord>,
}

impl MemCrypto {
    pub fn new() -> Self {
        MemCrypto(Rc::new(RefCell::new(WorkerDisk {
            core: WorkerCore::default(),
            record: None,
            entries: HashMap::new(),
            wiped: false,
            failing: None,
            pending_lock: None,
            lock: None,
        })))
    }

    /// A copy of the disk as it is now, opened by a fresh worker: what
    /// someone who copied the phone's profile would hold.
    pub fn copy_of_disk(&self) -> Self {
        let disk = self.0.borrow();
        MemCrypto(Rc::new(RefCell::new(WorkerDisk {
            core: WorkerCore::default(),
            record: disk.record.as_ref().map(|r| DeviceRecord {
                identity: r.identity,
                private_key: r.private_key.clone(),
                public_key: r.public_key.clone(),
            }),
            entries: disk.entries.clone(),
            wiped: false,
            failing: None,
            pending_lock: None,
            lock: disk.lock.clone(),
        })))
    }

    /// The same disk, opened by a fresh worker (the page reloaded).
    pub fn restarted(&self) -> Self {
        self.0.borrow_mut().core = WorkerCore::default();
        self.clone()
    }
}

impl Crypto for MemCrypto {
    async fn request(&self, request: WorkerRequest) -> Result<WorkerResponse, CryptoError> {
        let mut disk = self.0.borrow_mut();
        if let Some(error) = disk.failing.clone() {
            return Err(error);
        }
        let disk = &mut *disk;
        let answer = match request {
            WorkerRequest::OpenDevice { identity } => {
                let saved = disk.record.as_ref().map(|r| DeviceRecord {
                    identity: r.identity,
                    private_key: r.private_key.clone(),
                    public_key: r.public_key.clone(),
                });
                let entries = disk.entries.clone();
                disk.core
                    .open_device(identity, saved, None, entries)
                    .map(|(response, record)| {
                        if record.is_some() {
                            disk.record = record;
                        }
                        response
                    })
            }
            WorkerRequest::Wipe => {
                disk.core.forget_device();
                disk.record = None;
                disk.entries.clear();
                disk.lock = None;
                disk.wiped = true;
                Ok(WorkerResponse::Done)
            }
            // The worker's own data key is the browser's business; any key
            // stands for it here.
            WorkerRequest::SetPasscode {
                passcode,
                page_key,
                org,
                device,
                policy,
                now,
            } => huddle_worker::lock::make(
                &passcode,
                org,
                device,
                huddle_core::at_rest::DataKey::from_bytes([0x17; 32]),
                &page_key,
                policy,
                now,
            )
            .map(|lock| {
                let answer = lock.relay_half();
                disk.pending_lock = Some(lock.record);
                answer
            }),
            WorkerRequest::CommitPasscode => match disk.pending_lock.take() {
                Some(lock) => {
                    disk.lock = Some(lock);
                    Ok(WorkerResponse::Done)
                }
                None => Err(huddle_core::crypto_worker::WorkerError {
                    kind: huddle_core::crypto_worker::WorkerErrorKind::NoDevice,
                    message: "no passcode is waiting to be kept".into(),
                }),
            },
            request => disk.core.handle(request),
        };
        huddle_mls::state::apply_changes(&mut disk.entries, &disk.core.take_state_changes());
        answer.map_err(CryptoError::Refused)
    }
}

// --- Time, randomness, tasks, the screen and the log ----------------------

type Timer = (UnixMillis, u64, Box<dyn FnOnce()>);

/// The world's clock; a phone's may read behind it (`behind`), as a phone
/// whose clock was turned back would. Timers run on the world's time.
#[derive(Clone)]
pub struct ManualClock(pub Rc<ClockState>, u64);

pub struct ClockState {
    now: Cell<UnixMillis>,
    next: Cell<u64>,
    timers: RefCell<Vec<Timer>>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock(
            Rc::new(ClockState {
                now: Cell::new(START),
                next: Cell::new(0),
                timers: RefCell::new(Vec::new()),
            }),
            0,
        )
    }

    /// The same clock, read `millis` behind.
    pub fn behind(&self, millis: u64) -> ManualClock {
        ManualClock(self.0.clone(), millis)
    }

    /// Moves time on, firing what falls due, in time order.
    pub fn advance(&self, millis: u64) {
        let until = self.0.now.get().saturating_add_millis(millis);
        loop {
            let due = {
                let mut timers = self.0.timers.borrow_mut();
                timers.sort_by_key(|(at, n, _)| (*at, *n));
                match timers.first() {
                    Some((at, _, _)) if *at <= until => Some(timers.remove(0)),
                    _ => None,
                }
            };
            let Some((at, _, then)) = due else { break };
            self.0.now.set(self.0.now.get().max(at));
            then();
        }
        self.0.now.set(until);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        self.0.now.get().saturating_sub_millis(self.1)
    }
    fn monotonic_millis(&self) -> u64 {
        // The world's time, whatever this phone's clock reads.
        self.0.now.get().0.saturating_sub(START.0)
    }
    fn after(&self, millis: u64, then: Box<dyn FnOnce()>) {
        let n = self.0.next.get();
        self.0.next.set(n + 1);
        let at = self.0.now.get().saturating_add_millis(millis);
        self.0.timers.borrow_mut().push((at, n, then));
    }
}

/// Deterministic "random" ids: a counter, distinct per phone.
pub struct Counter {
    seed: u8,
    next: Cell<u32>,
}

impl Randomness for Counter {
    fn id(&self) -> [u8; 16] {
        let n = self.next.get();
        self.next.set(n + 1);
        let mut id = [self.seed; 16];
        id[12..].copy_from_slice(&n.to_be_bytes());
        id
    }
    fn jitter(&self) -> f64 {
        0.5
    }
}

#[derive(Clone)]
pub struct Spawner(pub LocalSpawner);

impl Tasks for Spawner {
    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        self.0.spawn_local(task).expect("the test's executor runs");
    }
}

#[derive(Clone, Default)]
pub struct RecordingScreen(pub Rc<RefCell<Vec<Update>>>);

impl Screen for RecordingScreen {
    fn loaded(
        &self,
        enrolment: &Enrolment,
        directory: &Directory,
        conversations: Vec<crate::update::ConversationEntry>,
    ) {
        let mut updates = self.0.borrow_mut();
        updates.push(Update::Enrolment(enrolment.clone()));
        updates.push(Update::Directory(directory.clone()));
        updates.push(Update::Conversations(conversations));
    }

    fn wiped_on_opening(&self, why: crate::update::SignOut) {
        self.0.borrow_mut().push(Update::SignedOut(why));
    }

    fn show(&self, update: Update) {
        self.0.borrow_mut().push(update);
    }
}

#[derive(Clone, Default)]
pub struct MemLog(pub Rc<RefCell<Vec<String>>>);

impl Log for MemLog {
    fn warn(&self, line: &str) {
        self.0.borrow_mut().push(line.to_owned());
    }
}

// --- The relay ------------------------------------------------------------

#[derive(Default)]
struct LogGroup {
    spec: Option<GroupSpec>,
    epoch: u64,
    entries: Vec<LogEntry>,
    /// What each commit declared, by sequence number.
    declared: HashMap<u64, MembershipChange>,
    members: Vec<DeviceId>,
    /// When its encryption was last restarted.
    restarted_at: Option<UnixMillis>,
}

impl LogGroup {
    /// The frame that delivers `entry`: commits with their declaration.
    fn delivery(&self, entry: &LogEntry) -> ServerFrame {
        ServerFrame::delivery(entry.clone(), self.declared.get(&entry.seq).cloned())
    }
}

/// A welcome waiting for a device: its group, the commit's place, the
/// group's type and the welcome.
type WaitingWelcome = (GroupId, u64, GroupSpec, Vec<u8>);

#[derive(Default)]
pub struct RelayState {
    people: BTreeMap<UserId, (String, Vec<DeviceId>)>,
    /// The people enrolled as administrators (the directory says so).
    administrators: Vec<UserId>,
    /// Key packages published, by device (a test may take one, as a
    /// modified app would claim it).
    pub key_packages: HashMap<DeviceId, Vec<Vec<u8>>>,
    groups: HashMap<GroupId, LogGroup>,
    welcomes: HashMap<DeviceId, Vec<WaitingWelcome>>,
    /// Each connected device's event sink.
    connections: HashMap<DeviceId, Rc<SocketEvents>>,
    /// The next `Accepted` for these is lost, and the connection with it.
    pub lose_answer: Vec<ClientMessageId>,
    /// The next live delivery of these entries (group, seq) to this device
    /// is lost.
    pub lose_live: Vec<(DeviceId, GroupId, u64)>,
    /// The next submission of these is lost on its way in, with the
    /// connection: the relay never stores it.
    pub lose_submission: Vec<ClientMessageId>,
    /// Every frame devices sent, in order.
    pub received: Vec<(DeviceId, ClientFrame)>,
    /// The world's time, which the relay's challenges carry.
    pub clock: Option<ManualClock>,
    /// Each device's published certificate chain.
    pub certificates: BTreeMap<DeviceId, Vec<u8>>,
    /// Attestations by (attester, subject), as their phones sent them.
    pub attestations: BTreeMap<(DeviceId, DeviceId), (UserId, Vec<u8>)>,
    /// What the organisation asks of its phones.
    pub policy: huddle_core::wire::PhonePolicy,
    /// Devices this relay does not know (as if restored from an older
    /// backup): their sign-ins are refused.
    pub unknown: Vec<DeviceId>,
    /// Devices an administrator revoked.
    pub revoked: Vec<DeviceId>,
    /// Passcode locks kept, by device: the lock key and the share.
    pub locks: BTreeMap<DeviceId, (Vec<u8>, Vec<u8>)>,
    /// Refuse the next passcode lock, as a relay that failed to store it.
    pub refuse_locks: bool,
}

#[derive(Clone, Default)]
pub struct MemRelay(pub Rc<RefCell<RelayState>>);

impl MemRelay {
    pub fn enrol(&self, user: UserId, name: &str, device: DeviceId) {
        let mut state = self.0.borrow_mut();
        let person = state
            .people
            .entry(user)
            .or_insert_with(|| (name.to_owned(), Vec::new()));
        person.1.push(device);
    }

    /// Stops listing a device (in the directory and in identities), as a
    /// relay hiding it would.
    pub fn hide(&self, device: DeviceId) {
        for (_, devices) in self.0.borrow_mut().people.values_mut() {
            devices.retain(|d| *d != device);
        }
    }

    /// How many entries a group's log holds.
    pub fn log_len(&self, group: GroupId) -> usize {
        self.0
            .borrow()
            .groups
            .get(&group)
            .map_or(0, |g| g.entries.len())
    }

    pub fn log(&self, group: GroupId) -> Vec<LogEntry> {
        self.0
            .borrow()
            .groups
            .get(&group)
            .map(|g| g.entries.clone())
            .unwrap_or_default()
    }

    /// What the commit at `seq` of `group` declared, as members are told.
    pub fn declared(&self, group: GroupId, seq: u64) -> Option<MembershipChange> {
        self.0
            .borrow()
            .groups
            .get(&group)
            .and_then(|g| g.declared.get(&seq).cloned())
    }

    /// Submissions `device` made of `client_msg`, counting resends.
    pub fn submissions(&self, client_msg: ClientMessageId) -> usize {
        self.0
            .borrow()
            .received
            .iter()
            .filter(|(_, f)| matches!(f, ClientFrame::Submit(s) if s.client_msg == client_msg))
            .count()
    }

    /// Appends a submission as if `device` had sent it (a member whose app
    /// was modified), delivering it like any other.
    pub fn submit_from(&self, device: DeviceId, submission: Submission) {
        self.submit(device, submission);
    }

    /// An administrator revokes `device`: it is refused from now on, and
    /// the connected members of its groups are told to remove it.
    pub fn revoke(&self, device: DeviceId) {
        self.0.borrow_mut().revoked.push(device);
        self.push(
            device,
            ServerFrame::Error {
                code: huddle_core::wire::ErrorCode::Revoked,
                message: "This device was removed by an administrator.".into(),
            },
        );
        self.drop_connection(device);
        let fellows: Vec<DeviceId> = {
            let state = self.0.borrow();
            let mut fellows: Vec<DeviceId> = state
                .groups
                .values()
                .filter(|g| g.members.contains(&device))
                .flat_map(|g| g.members.iter().copied())
                .filter(|m| *m != device && state.connections.contains_key(m))
                .collect();
            fellows.sort();
            fellows.dedup();
            fellows
        };
        for fellow in fellows {
            self.tell_revoked_members(fellow);
        }
    }

    /// Names to `device` the revoked members of its groups, if any.
    fn tell_revoked_members(&self, device: DeviceId) {
        let groups: Vec<huddle_core::wire::RevokedInGroup> = {
            let state = self.0.borrow();
            let mut groups: Vec<_> = state
                .groups
                .iter()
                .filter(|(_, g)| g.members.contains(&device))
                .filter_map(|(id, g)| {
                    let devices: Vec<DeviceId> = g
                        .members
                        .iter()
                        .copied()
                        .filter(|m| state.revoked.contains(m))
                        .collect();
                    (!devices.is_empty()).then_some(huddle_core::wire::RevokedInGroup {
                        group: *id,
                        devices,
                    })
                })
                .collect();
            groups.sort_by_key(|g| g.group);
            groups
        };
        if !groups.is_empty() {
            self.push(device, ServerFrame::RevokedMembers { groups });
        }
    }

    /// Ends `device`'s connection, as a network drop would.
    pub fn drop_connection(&self, device: DeviceId) {
        let sink = self.0.borrow_mut().connections.remove(&device);
        if let Some(sink) = sink {
            sink(SocketEvent::Closed);
        }
    }

    /// Sends `device` a frame on its connection.
    pub fn push(&self, device: DeviceId, frame: ServerFrame) {
        let sink = self.0.borrow().connections.get(&device).cloned();
        if let Some(sink) = sink {
            sink(SocketEvent::Frame(frame.encode()));
        }
    }

    /// Sends `device` bytes on its connection, as a relay of another
    /// version (or a broken one) would.
    pub fn push_raw(&self, device: DeviceId, bytes: Vec<u8>) {
        let sink = self.0.borrow().connections.get(&device).cloned();
        if let Some(sink) = sink {
            sink(SocketEvent::Frame(bytes));
        }
    }

    fn connect(&self, device: DeviceId, events: SocketEvents) {
        let events = Rc::new(events);
        self.0
            .borrow_mut()
            .connections
            .insert(device, events.clone());
        events(SocketEvent::Opened);
        events(SocketEvent::Frame(
            ServerFrame::Challenge {
                nonce: [7; 32],
                relay_time: self.0.borrow().clock.as_ref().map_or(START, Clock::now),
            }
            .encode(),
        ));
    }

    fn handle(&self, device: DeviceId, bytes: &[u8]) {
        let Ok(frame) = ClientFrame::decode(bytes) else {
            return;
        };
        self.0.borrow_mut().received.push((device, frame.clone()));
        let reply = |frame: ServerFrame| self.push(device, frame);
        match frame {
            ClientFrame::Authenticate { .. } if self.0.borrow().unknown.contains(&device) => {
                reply(ServerFrame::Error {
                    code: huddle_core::wire::ErrorCode::AuthenticationFailed,
                    message: "This device is not registered with this relay.".into(),
                });
                self.drop_connection(device);
            }
            ClientFrame::Authenticate { .. } if self.0.borrow().revoked.contains(&device) => {
                reply(ServerFrame::Error {
                    code: huddle_core::wire::ErrorCode::Revoked,
                    message: "This device was removed by an administrator.".into(),
                });
                self.drop_connection(device);
            }
            ClientFrame::Authenticate { .. } => {
                let user = self.user_of(device);
                let policy = self.0.borrow().policy;
                reply(ServerFrame::Ready {
                    org: ORG,
                    user,
                    device,
                    policy,
                });
                self.tell_revoked_members(device);
            }
            ClientFrame::Sync { cursors } => self.sync(device, cursors),
            ClientFrame::RevokeDevice {
                request,
                device: revoked,
            } => {
                reply(ServerFrame::Done { request });
                self.revoke(revoked);
            }
            ClientFrame::Submit(submission) => self.submit(device, submission),
            ClientFrame::PublishKeyPackages {
                request,
                key_packages,
                ..
            } => {
                self.0
                    .borrow_mut()
                    .key_packages
                    .entry(device)
                    .or_default()
                    .extend(key_packages);
                reply(ServerFrame::KeyPackagesPublished { request });
            }
            ClientFrame::ClaimKeyPackages { request, users } => {
                let mut claimed = Vec::new();
                let mut state = self.0.borrow_mut();
                for user in users {
                    let devices = state
                        .people
                        .get(&user)
                        .map(|p| p.1.clone())
                        .unwrap_or_default();
                    for device in devices {
                        if let Some(key_package) =
                            state.key_packages.get_mut(&device).and_then(|k| k.pop())
                        {
                            claimed.push(ClaimedKeyPackage {
                                user,
                                device,
                                key_package,
                            });
                        }
                    }
                }
                drop(state);
                reply(ServerFrame::KeyPackages {
                    request,
                    key_packages: claimed,
                });
            }
            ClientFrame::Directory { request } => {
                let people = self
                    .0
                    .borrow()
                    .people
                    .iter()
                    .map(|(user, (name, devices))| Person {
                        user: *user,
                        display_name: name.clone(),
                        role: if self.0.borrow().administrators.contains(user) {
                            Role::Administrator
                        } else {
                            Role::Staff
                        },
                        devices: devices.clone(),
                    })
                    .collect();
                reply(ServerFrame::People { request, people });
            }
            ClientFrame::PublishCertificate { request, chain } => {
                self.0.borrow_mut().certificates.insert(device, chain);
                reply(ServerFrame::Done { request });
            }
            ClientFrame::Attest {
                request,
                attestation,
            } => {
                let Ok(parsed) = huddle_core::attestation::Attestation::from_bytes(&attestation)
                else {
                    reply(ServerFrame::Refused {
                        request,
                        reason: "unreadable".into(),
                    });
                    return;
                };
                let subject = parsed.statement.subject;
                self.0
                    .borrow_mut()
                    .attestations
                    .insert((device, subject.device), (subject.user, attestation));
                reply(ServerFrame::Done { request });
            }
            ClientFrame::Identities { request, users } => {
                let state = self.0.borrow();
                let devices = users
                    .iter()
                    .flat_map(|user| {
                        let devices = state.people.get(user).map(|p| p.1.clone());
                        devices.into_iter().flatten().filter_map(|device| {
                            Some(DeviceCertificate {
                                user: *user,
                                device,
                                chain: state.certificates.get(&device)?.clone(),
                            })
                        })
                    })
                    .collect();
                let attestations = state
                    .attestations
                    .values()
                    .filter(|(user, _)| users.contains(user))
                    .map(|(_, bytes)| bytes.clone())
                    .collect();
                drop(state);
                reply(ServerFrame::Identities {
                    request,
                    devices,
                    attestations,
                });
            }
            ClientFrame::SetPasscodeLock {
                request,
                lock_key,
                secrets,
            } => {
                if self.0.borrow().refuse_locks {
                    reply(ServerFrame::Refused {
                        request,
                        reason: "The passcode could not be saved. Try again.".into(),
                    });
                } else {
                    self.0
                        .borrow_mut()
                        .locks
                        .insert(device, (lock_key, secrets.share.clone()));
                    reply(ServerFrame::Done { request });
                }
            }
            ClientFrame::Ack { .. } | ClientFrame::Ping { .. } => {}
            _ => {}
        }
    }

    fn user_of(&self, device: DeviceId) -> UserId {
        self.0
            .borrow()
            .people
            .iter()
            .find(|(_, (_, devices))| devices.contains(&device))
            .map_or(UserId::from_bytes([0; 16]), |(user, _)| *user)
    }

    fn sync(&self, device: DeviceId, cursors: Vec<GroupCursor>) {
        let asked: HashMap<GroupId, u64> = cursors.iter().map(|c| (c.group, c.seq)).collect();
        let (welcomes, backlog) = {
            let state = self.0.borrow();
            let welcomes: Vec<ServerFrame> = state
                .welcomes
                .get(&device)
                .into_iter()
                .flatten()
                .filter(|(group, seq, ..)| asked.get(group).is_none_or(|at| at < seq))
                .map(|(group, seq, spec, welcome)| ServerFrame::Welcome {
                    group: *group,
                    seq: *seq,
                    spec: *spec,
                    welcome: welcome.clone(),
                })
                .collect();
            let backlog: Vec<ServerFrame> = asked
                .iter()
                .filter_map(|(group, after)| Some((state.groups.get(group)?, *after)))
                .flat_map(|(group, after)| {
                    group
                        .entries
                        .iter()
                        .filter(move |e| e.seq > after)
                        .map(|e| {
                            if e.kind == EntryKind::Application && e.payload.is_empty() {
                                ServerFrame::Skipped {
                                    group: e.group,
                                    up_to: e.seq,
                                }
                            } else {
                                group.delivery(e)
                            }
                        })
                })
                .collect();
            (welcomes, backlog)
        };
        for frame in welcomes.into_iter().chain(backlog) {
            self.push(device, frame);
        }
        self.push(device, ServerFrame::Synced);
    }

    fn submit(&self, device: DeviceId, submission: Submission) {
        let client_msg = submission.client_msg;
        let group = submission.group;
        let dropped = {
            let mut state = self.0.borrow_mut();
            let dropped = state.lose_submission.contains(&client_msg);
            state.lose_submission.retain(|id| *id != client_msg);
            dropped
        };
        if dropped {
            self.drop_connection(device);
            return;
        }
        let outcome = self.append(device, submission);
        let (entry, recipients, welcomes) = match outcome {
            Err(reason) => {
                self.push(
                    device,
                    ServerFrame::Rejected {
                        client_msg,
                        group,
                        reason,
                    },
                );
                return;
            }
            Ok(appended) => appended,
        };
        let lost = {
            let mut state = self.0.borrow_mut();
            let lost = state.lose_answer.contains(&client_msg);
            state.lose_answer.retain(|id| *id != client_msg);
            lost
        };
        if lost {
            // The relay stored it, and the connection broke before its
            // answer (or the sender's own copy) got out.
            self.drop_connection(device);
        } else {
            self.push(
                device,
                ServerFrame::Accepted {
                    client_msg,
                    group,
                    seq: entry.seq,
                },
            );
        }
        for (added, welcome, spec) in welcomes {
            self.push(
                added,
                ServerFrame::Welcome {
                    group,
                    seq: entry.seq,
                    spec,
                    welcome,
                },
            );
        }
        let delivery = {
            let state = self.0.borrow();
            match state.groups.get(&group) {
                Some(log) => log.delivery(&entry),
                None => ServerFrame::Deliver(entry.clone()),
            }
        };
        for recipient in recipients {
            if lost && recipient == device {
                continue;
            }
            let skip = {
                let mut state = self.0.borrow_mut();
                let key = (recipient, group, entry.seq);
                let skip = state.lose_live.contains(&key);
                state.lose_live.retain(|k| *k != key);
                skip
            };
            if !skip {
                self.push(recipient, delivery.clone());
            }
        }
    }

    /// The relay's ordering rules, for one submission.
    #[allow(clippy::type_complexity)]
    fn append(
        &self,
        device: DeviceId,
        submission: Submission,
    ) -> Result<(LogEntry, Vec<DeviceId>, Vec<(DeviceId, Vec<u8>, GroupSpec)>), Rejection> {
        let mut state = self.0.borrow_mut();
        if state.revoked.contains(&device) {
            return Err(Rejection::Revoked);
        }
        let group = state.groups.entry(submission.group).or_default();
        if let Some(stored) = group
            .entries
            .iter()
            .find(|e| e.sender == device && e.client_msg == submission.client_msg)
        {
            return Ok((stored.clone(), vec![device], Vec::new()));
        }
        let creating = matches!(
            &submission.payload,
            Payload::Commit { change, .. } if change.create.is_some()
        );
        if group.entries.is_empty() && creating {
            group.members.push(device);
        }
        if !group.members.contains(&device) {
            return Err(Rejection::NotAMember);
        }
        // A restart of the group's encryption: the next chain, at most once
        // a minute, then routing follows the devices it names.
        let restarting = creating && !group.entries.is_empty();
        let expected = if restarting {
            huddle_core::wire::restart_epoch(huddle_core::wire::chain_of_epoch(group.epoch) + 1)
        } else {
            group.epoch
        };
        if submission.epoch != expected {
            return Err(Rejection::StaleEpoch {
                current_epoch: group.epoch,
            });
        }
        let now = state
            .clock
            .as_ref()
            .map_or(UnixMillis(0), |clock| clock.now());
        let revoked = state.revoked.clone();
        let group = state.groups.entry(submission.group).or_default();
        if restarting {
            let recent = group.restarted_at.is_some_and(|at| {
                now.0.saturating_sub(at.0) < huddle_core::wire::RESTART_EVERY_MILLIS
            });
            if recent {
                return Err(Rejection::RepairedRecently);
            }
            group.restarted_at = Some(now);
        }
        let seq = group.entries.len() as u64 + 1;
        let mut removed = Vec::new();
        let (kind, payload, mut welcomes) = match submission.payload {
            Payload::Application { ciphertext } => (EntryKind::Application, ciphertext, Vec::new()),
            // Empties what it names, as the relay does; the phones decide
            // whether the mark itself is honoured (this relay checks
            // nothing, as a lying one would not).
            Payload::Removing {
                ciphertext,
                removes,
            } => {
                for entry in group.entries.iter_mut() {
                    if entry.client_msg == removes && entry.kind == EntryKind::Application {
                        entry.payload.clear();
                    }
                }
                (EntryKind::Application, ciphertext, Vec::new())
            }
            Payload::Commit {
                commit,
                welcome,
                change,
            } => {
                group.declared.insert(seq, change.clone());
                if let Some(spec) = change.create {
                    group.spec = Some(spec);
                }
                // Removed devices still receive the commit that removes them.
                removed = change.remove.clone();
                group.members.retain(|m| !change.remove.contains(m));
                if restarting {
                    // Everyone in the group hears of it; members it leaves
                    // out stay routed unless signed out (their phones
                    // restart the group again).
                    removed = group.members.clone();
                    group.members.retain(|m| !revoked.contains(m));
                }
                let mut welcomes = Vec::new();
                for added in change.add {
                    if !group.members.contains(&added) {
                        group.members.push(added);
                    }
                    if let (Some(welcome), Some(spec)) = (&welcome, group.spec) {
                        welcomes.push((added, welcome.clone(), spec));
                    }
                }
                group.epoch = submission.epoch + 1;
                (EntryKind::Commit, commit, welcomes)
            }
        };
        let entry = LogEntry {
            group: submission.group,
            seq,
            epoch: submission.epoch,
            sender: device,
            client_msg: submission.client_msg,
            kind,
            expires_at: submission.expires_at,
            payload,
        };
        group.entries.push(entry.clone());
        let mut recipients: Vec<DeviceId> = group
            .members
            .iter()
            .copied()
            .filter(|m| restarting || !welcomes.iter().any(|(added, ..)| added == m))
            .chain(removed)
            .collect();
        recipients.sort();
        recipients.dedup();
        let group_id = submission.group;
        for (added, welcome, spec) in &welcomes {
            state
                .welcomes
                .entry(*added)
                .or_default()
                .push((group_id, seq, *spec, welcome.clone()));
        }
        welcomes.retain(|(added, ..)| state.connections.contains_key(added));
        Ok((entry, recipients, welcomes))
    }
}

/// One phone's end of the relay.
pub struct MemTransport {
    relay: MemRelay,
    device: DeviceId,
    pub online: Rc<Cell<bool>>,
}

impl Transport for MemTransport {
    fn connect(&self, events: SocketEvents) -> bool {
        if !self.online.get() {
            return false;
        }
        self.relay.connect(self.device, events);
        true
    }
    fn send(&self, frame: &[u8]) -> bool {
        if !self.online.get() || !self.relay.0.borrow().connections.contains_key(&self.device) {
            return false;
        }
        self.relay.handle(self.device, frame);
        true
    }
    fn disconnect(&self) {
        self.relay.0.borrow_mut().connections.remove(&self.device);
    }
    fn is_online(&self) -> bool {
        self.online.get()
    }
}

// --- Phones ---------------------------------------------------------------

pub struct TestPlatform;

impl Platform for TestPlatform {
    type Cache = MemCache;
    type Crypto = MemCrypto;
    type Transport = MemTransport;
    type Clock = ManualClock;
    type Randomness = Counter;
    type Screen = RecordingScreen;
    type Tasks = Spawner;
    type Log = MemLog;
}

/// A world of phones around one relay, on one hand-driven clock.
pub struct World {
    pub pool: LocalPool,
    pub clock: ManualClock,
    pub relay: MemRelay,
    /// The founding administrator's crypto worker, which certifies every
    /// phone's invite (it holds the organisation key).
    founder: MemCrypto,
    /// Phones (by seed) whose clocks read this far behind the world's.
    pub clocks_behind: HashMap<u8, u64>,
}

/// One person's phone, and everything it runs on, for the test to inspect.
pub struct TestPhone {
    pub phone: Phone<TestPlatform>,
    pub user: UserId,
    pub device: DeviceId,
    pub cache: MemCache,
    pub crypto: MemCrypto,
    pub screen: RecordingScreen,
    pub log: MemLog,
    pub online: Rc<Cell<bool>>,
    seed: u8,
}

impl World {
    pub fn new() -> Self {
        let clock = ManualClock::new();
        let relay = MemRelay::default();
        relay.0.borrow_mut().clock = Some(clock.clone());
        World {
            pool: LocalPool::new(),
            clock,
            relay,
            founder: MemCrypto::new(),
            clocks_behind: HashMap::new(),
        }
    }

    /// Certifies `crypto`'s device through the requests a real phone makes:
    /// the founder (made on first use) certifies an invite, the phone
    /// accepts it.
    fn certify(
        &mut self,
        crypto: &MemCrypto,
        identity: DeviceIdentity,
        name: &str,
        role: huddle_core::wire::Role,
    ) {
        let founder = self.founder.clone();
        let phone = crypto.clone();
        let now = self.clock.now();
        let name = name.to_owned();
        self.run(async move {
            let founder_identity = DeviceIdentity {
                org: ORG,
                user: UserId::from_bytes([0xf0; 16]),
                device: DeviceId::from_bytes([0xf1; 16]),
            };
            let ready = founder
                .request(WorkerRequest::OpenDevice {
                    identity: founder_identity,
                })
                .await;
            if let Ok(WorkerResponse::DeviceReady { org_key: None, .. }) = ready {
                founder
                    .request(WorkerRequest::FoundOrganisation {
                        display_name: "Founder".into(),
                        now,
                    })
                    .await
                    .expect("the organisation is founded");
            }
            let org_key = match founder
                .request(WorkerRequest::OpenDevice {
                    identity: founder_identity,
                })
                .await
            {
                Ok(WorkerResponse::DeviceReady {
                    org_key: Some(org_key),
                    ..
                }) => org_key,
                other => panic!("the founder is certified: {other:?}"),
            };
            let Ok(WorkerResponse::InviteCertified {
                certificate,
                invite_key,
                ..
            }) = founder
                .request(WorkerRequest::CertifyInvite {
                    user: identity.user,
                    display_name: name,
                    role,
                    expires_at: now.saturating_add_millis(86_400_000),
                    now,
                })
                .await
            else {
                panic!("the invite is certified");
            };
            phone
                .request(WorkerRequest::OpenDevice { identity })
                .await
                .expect("the phone's device opens");
            phone
                .request(WorkerRequest::AcceptInvite {
                    certificate,
                    invite_key,
                    org_key,
                    now,
                })
                .await
                .expect("the phone accepts its invite");
        });
    }

    /// Runs every task until none can make progress.
    pub fn settle(&mut self) {
        self.pool.run_until_stalled();
    }

    /// Moves time on, running what that wakes.
    pub fn advance(&mut self, millis: u64) {
        // In steps, so that work a timer starts runs before the next fires.
        let mut left = millis;
        while left > 0 {
            let step = left.min(1_000);
            self.clock.advance(step);
            self.settle();
            left -= step;
        }
    }

    /// Runs `future` on the test's executor until it resolves, letting time
    /// pass (in 100 ms steps, up to a simulated minute) if it waits for it.
    pub fn run<T: 'static>(&mut self, future: impl std::future::Future<Output = T> + 'static) -> T {
        let result = Rc::new(RefCell::new(None));
        let slot = result.clone();
        self.pool
            .spawner()
            .spawn_local(async move {
                let value = future.await;
                *slot.borrow_mut() = Some(value);
            })
            .expect("the test's executor runs");
        for _ in 0..600 {
            self.settle();
            if let Some(value) = result.borrow_mut().take() {
                return value;
            }
            self.clock.advance(100);
        }
        panic!("the future did not resolve within a simulated minute");
    }

    /// A person with a phone enrolled with the relay, loaded but not started.
    pub fn phone(&mut self, seed: u8, name: &str) -> TestPhone {
        self.phone_of(UserId::from_bytes([seed; 16]), seed, name)
    }

    /// A phone (device `seed`) of a person who may have others.
    pub fn phone_of(&mut self, user: UserId, seed: u8, name: &str) -> TestPhone {
        self.phone_as(user, seed, name, huddle_core::wire::Role::Administrator)
    }

    /// A staff member (not an administrator) with a phone.
    pub fn staff_phone(&mut self, seed: u8, name: &str) -> TestPhone {
        let user = UserId::from_bytes([seed; 16]);
        self.phone_as(user, seed, name, huddle_core::wire::Role::Staff)
    }

    fn phone_as(
        &mut self,
        user: UserId,
        seed: u8,
        name: &str,
        role: huddle_core::wire::Role,
    ) -> TestPhone {
        let device = DeviceId::from_bytes([seed + 100; 16]);
        self.relay.enrol(user, name, device);
        if role == huddle_core::wire::Role::Administrator {
            self.relay.0.borrow_mut().administrators.push(user);
        }
        let cache = MemCache::default();
        cache.0.borrow_mut().enrolment = Some(Enrolment {
            org: ORG,
            org_name: "Oak Lodge".into(),
            user,
            device,
            display_name: name.into(),
            administrator: role == huddle_core::wire::Role::Administrator,
            key_packages_published: false,
        });
        let crypto = MemCrypto::new();
        self.certify(
            &crypto,
            DeviceIdentity {
                org: ORG,
                user,
                device,
            },
            name,
            role,
        );
        let online = Rc::new(Cell::new(true));
        let mut phone = TestPhone {
            phone: self.load(seed, &cache),
            user,
            device,
            cache,
            crypto,
            screen: RecordingScreen::default(),
            log: MemLog::default(),
            online,
            seed,
        };
        phone.screen = self.screen_of(&phone.phone);
        phone.log = self.log_of(&phone.phone);
        phone
    }

    fn load(&mut self, seed: u8, cache: &MemCache) -> Phone<TestPlatform> {
        self.try_load(seed, cache, RecordingScreen::default())
            .expect("the phone is enrolled")
    }

    /// Loads a phone from `cache` as the page does; `None` if it has not
    /// joined (or wiped itself on opening).
    fn try_load(
        &mut self,
        seed: u8,
        cache: &MemCache,
        screen: RecordingScreen,
    ) -> Option<Phone<TestPlatform>> {
        let parts = Parts {
            cache: cache.clone(),
            clock: self
                .clock
                .behind(self.clocks_behind.get(&seed).copied().unwrap_or(0)),
            randomness: Counter {
                seed,
                next: Cell::new(0),
            },
            screen,
            tasks: Spawner(self.pool.spawner()),
            log: MemLog::default(),
        };
        self.run(Phone::load(parts)).expect("the cache reads")
    }

    fn screen_of(&self, phone: &Phone<TestPlatform>) -> RecordingScreen {
        phone.shared.screen.clone()
    }

    fn log_of(&self, phone: &Phone<TestPlatform>) -> MemLog {
        phone.shared.log.clone()
    }

    /// Starts a phone: its crypto worker opens the device, and it connects.
    pub fn start(&mut self, phone: &TestPhone) {
        let transport = MemTransport {
            relay: self.relay.clone(),
            device: phone.device,
            online: phone.online.clone(),
        };
        let (handle, crypto) = (phone.phone.clone(), phone.crypto.clone());
        self.run(async move { handle.start(crypto, transport).await })
            .expect("the phone starts");
    }

    /// The app is opened again, as [`World::reload`] does; false if the
    /// phone did not open (it wiped itself). Either way `phone.screen`
    /// shows what the opening showed.
    pub fn open_again(&mut self, phone: &mut TestPhone) -> bool {
        close_page(&phone.phone);
        let screen = RecordingScreen::default();
        let opened = self.try_load(phone.seed, &phone.cache, screen.clone());
        phone.screen = screen;
        phone.crypto = phone.crypto.restarted();
        match opened {
            Some(opened) => {
                phone.phone = opened;
                phone.log = self.log_of(&phone.phone);
                true
            }
            None => false,
        }
    }

    /// The page reloads: the same storage, a fresh session and worker.
    pub fn reload(&mut self, phone: &mut TestPhone) {
        close_page(&phone.phone);
        phone.phone = self.load(phone.seed, &phone.cache);
        phone.screen = self.screen_of(&phone.phone);
        phone.log = self.log_of(&phone.phone);
        phone.crypto = phone.crypto.restarted();
    }
}

/// The page goes away: its session connects, sends and sweeps no more.
fn close_page(phone: &Phone<TestPlatform>) {
    *phone.shared.inputs.borrow_mut() = None;
    let live = phone.shared.live.borrow_mut().take();
    if let Some(live) = live {
        live.transport.disconnect();
    }
}

impl TestPhone {
    /// The number this phone was made with (its clock's entry in
    /// `World::clocks_behind`).
    pub fn seed(&self) -> u8 {
        self.seed
    }

    /// The messages the open conversation shows now, as (text, delivery).
    pub fn shown(&self) -> Vec<(String, crate::records::Delivery)> {
        self.screen
            .0
            .borrow()
            .iter()
            .rev()
            .find_map(|u| match u {
                Update::Messages { messages, .. } => Some(
                    messages
                        .iter()
                        .map(|m| {
                            (
                                m.message.body.text().unwrap_or("").to_owned(),
                                m.delivery.clone(),
                            )
                        })
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The conversation list as last painted: (group, unread, latest text).
    pub fn listed(&self) -> Vec<(GroupId, u32, Option<String>)> {
        self.screen
            .0
            .borrow()
            .iter()
            .rev()
            .find_map(|u| match u {
                Update::Conversations(entries) => Some(
                    entries
                        .iter()
                        .map(|e| {
                            (
                                e.record.group,
                                e.record.unread,
                                e.latest
                                    .as_ref()
                                    .and_then(|m| m.body.text().map(str::to_owned)),
                            )
                        })
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Every text message in the cache, oldest first.
    pub fn cached_texts(&self, group: GroupId) -> Vec<String> {
        let store = self.cache.0.borrow();
        let mut messages: Vec<&MessageRecord> = store
            .messages
            .values()
            .filter(|m| m.group == group)
            .collect();
        messages.sort_by_key(|m| (m.sent_at, m.client_msg));
        messages
            .into_iter()
            .filter_map(|m| m.body.text().map(str::to_owned))
            .collect()
    }

    /// Every message record in the cache, whatever its body, oldest first.
    pub fn cached_messages(&self, group: GroupId) -> Vec<MessageRecord> {
        let store = self.cache.0.borrow();
        let mut messages: Vec<MessageRecord> = store
            .messages
            .values()
            .filter(|m| m.group == group)
            .cloned()
            .collect();
        messages.sort_by_key(|m| (m.sent_at, m.client_msg));
        messages
    }

    pub fn updates(&self) -> Vec<Update> {
        self.screen.0.borrow().clone()
    }
}
