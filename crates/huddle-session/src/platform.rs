//! The small traits a phone runs on: its cache, the crypto worker, the connection to the relay, a clock, randomness, a screen to show updates on, a way to run tasks and a log.
//!
//! The browser implements them in the app's `src/platform/`; the native
//! tests implement them in memory (`testing.rs`). Nothing here names a
//! browser type, so the compiler keeps the session layer free of them.

use crate::records::{
    ConversationRecord, Directory, Enrolment, MessageRecord, OutboxRecord, Standing,
};
use crate::update::{ConversationEntry, SignOut, Update};
use futures::future::LocalBoxFuture;
use huddle_core::attestation::Identities;
use huddle_core::crypto_worker::{PageKey, WorkerError, WorkerRequest, WorkerResponse};
use huddle_core::ids::{ClientMessageId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::sync::GroupPosition;

/// The phone's storage could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("the phone's storage would not open")]
    Unavailable,
    #[error("the phone's storage refused a read or write")]
    Failed,
    #[error("a record in the phone's storage is damaged")]
    Damaged,
}

/// One change in a [`Cache::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheWrite {
    Enrolment(Enrolment),
    Directory(Directory),
    Conversation(ConversationRecord),
    Message(MessageRecord),
    DeleteMessage {
        expires_at: UnixMillis,
        group: GroupId,
        client_msg: ClientMessageId,
    },
    Outbox(OutboxRecord),
    DeleteOutbox(ClientMessageId),
    Cursor(GroupPosition),
    /// What this phone knows of colleagues' keys and who checked them.
    Identities(Identities),
    /// The latest time known and the last sign-in.
    Standing(Standing),
    /// One group's read receipts.
    Receipts(crate::receipts::ReceiptsRecord),
}

/// The phone's encrypted cache. Every record is sealed at rest by the
/// implementation; the session sees plain records.
#[allow(async_fn_in_trait)] // single-threaded: futures need not be `Send`
pub trait Cache {
    async fn enrolment(&self) -> Result<Option<Enrolment>, CacheError>;
    async fn directory(&self) -> Result<Directory, CacheError>;
    /// Colleagues' checked keys and attestations (empty until first fetched).
    async fn identities(&self) -> Result<Identities, CacheError>;
    /// The latest time known and the last sign-in (none before the first).
    async fn standing(&self) -> Result<Option<Standing>, CacheError>;
    async fn conversations(&self) -> Result<Vec<ConversationRecord>, CacheError>;
    /// A conversation's newest `limit` messages, newest first.
    async fn latest_messages(
        &self,
        group: GroupId,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, CacheError>;
    async fn message_count(&self, group: GroupId) -> Result<u32, CacheError>;
    /// The message stored under this key, if any.
    async fn message(
        &self,
        expires_at: UnixMillis,
        group: GroupId,
        client_msg: ClientMessageId,
    ) -> Result<Option<MessageRecord>, CacheError>;
    async fn outbox(&self) -> Result<Vec<OutboxRecord>, CacheError>;
    async fn cursors(&self) -> Result<Vec<GroupPosition>, CacheError>;
    /// One group's read receipts, if any were kept.
    async fn receipts(
        &self,
        group: GroupId,
    ) -> Result<Option<crate::receipts::ReceiptsRecord>, CacheError>;
    /// Applies every change in one transaction: all of them, or none (and
    /// an error).
    async fn write(&self, writes: Vec<CacheWrite>) -> Result<(), CacheError>;
    /// Deletes every message whose expiry has come (`expires_at <= now`), in
    /// every conversation at once. (Apart from `write`, so that the first
    /// screen's sweep needs nothing else of the cache's writing.)
    async fn expire(&self, now: UnixMillis) -> Result<(), CacheError>;
    /// Remote wipe: every record and the key that sealed them, and
    /// whatever else the platform keeps for the app (the crypto worker's
    /// storage too, when the worker is not running to delete it).
    async fn wipe(&self) -> Result<(), CacheError>;
    /// The cache's data key, to be wrapped under a passcode's unlock key.
    fn data_key(&self) -> Result<PageKey, CacheError>;
    /// Deletes the data key kept beside the data: from now on only the
    /// passcode (through the crypto worker) opens the cache.
    async fn forget_kept_key(&self) -> Result<(), CacheError>;
}

/// Why the crypto worker did not answer a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// It answered, refusing (bad input, unknown group, storage).
    #[error("{0}")]
    Refused(WorkerError),
    /// This browser cannot run it.
    #[error("the crypto worker cannot run here")]
    Unsupported,
    /// It did not answer in time (it never loaded, or is stuck).
    #[error("the crypto worker did not answer in time")]
    TimedOut,
    /// It stopped.
    #[error("the crypto worker stopped")]
    Stopped,
}

/// The crypto worker: MLS and the device key, one request at a time.
#[allow(async_fn_in_trait)]
pub trait Crypto {
    async fn request(&self, request: WorkerRequest) -> Result<WorkerResponse, CryptoError>;
}

/// What the connection reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketEvent {
    Opened,
    Frame(Vec<u8>),
    Closed,
}

/// Where a connection's events go. Each connection gets its own; events of
/// a connection that has since been replaced are ignored.
pub type SocketEvents = Box<dyn Fn(SocketEvent)>;

/// The connection to the relay: one at a time.
pub trait Transport {
    /// Starts connecting (replacing any connection); false if it cannot even
    /// start. Its events go to `events`.
    fn connect(&self, events: SocketEvents) -> bool;
    /// Sends one frame; false if there is no open connection.
    fn send(&self, frame: &[u8]) -> bool;
    fn disconnect(&self);
    /// Whether the device says it has a network at all.
    fn is_online(&self) -> bool;
}

/// Time, and waiting for it.
pub trait Clock {
    fn now(&self) -> UnixMillis;
    /// Milliseconds since a fixed moment (the page's start), which never
    /// go backwards or jump whatever is done to the phone's clock.
    fn monotonic_millis(&self) -> u64;
    /// Calls `then` once, after `millis`.
    fn after(&self, millis: u64, then: Box<dyn FnOnce()>);
}

/// Random numbers from the platform's secure source.
pub trait Randomness {
    /// Sixteen random bytes, for a new id.
    fn id(&self) -> [u8; 16];
    /// A number in `[0, 1)` that spreads reconnects of many phones apart.
    fn jitter(&self) -> f64;
}

/// Where the session's updates go: the app applies them to what the screens
/// show.
pub trait Screen {
    /// The first paint, from the cache, before anything else runs. (Apart
    /// from `show` so that an app can keep the first screen's code small.)
    fn loaded(
        &self,
        enrolment: &Enrolment,
        directory: &Directory,
        conversations: Vec<ConversationEntry>,
    );
    /// Instead of the first paint: the phone wiped itself as it opened
    /// ([`SignOut::AwayTooLong`]). (Apart from `show` for the same reason as
    /// `loaded`.)
    fn wiped_on_opening(&self, why: SignOut);
    /// Everything after.
    fn show(&self, update: Update);
}

/// Runs work in the background, on this thread.
pub trait Tasks {
    fn spawn(&self, task: LocalBoxFuture<'static, ()>);
}

/// Where the session notes what went wrong, for whoever looks at the
/// console. Lines name kinds and ids, never content, keys or names.
pub trait Log {
    fn warn(&self, line: &str);
}

/// One platform: the types a phone runs on.
pub trait Platform: 'static {
    type Cache: Cache + 'static;
    type Crypto: Crypto + 'static;
    type Transport: Transport + 'static;
    type Clock: Clock + 'static;
    type Randomness: Randomness + 'static;
    type Screen: Screen + 'static;
    type Tasks: Tasks + 'static;
    type Log: Log + 'static;
}

/// What a phone needs before it can paint: everything but the crypto worker
/// and the connection, which come later ([`crate::Phone::start`]).
pub struct Parts<P: Platform> {
    pub cache: P::Cache,
    pub clock: P::Clock,
    pub randomness: P::Randomness,
    pub screen: P::Screen,
    pub tasks: P::Tasks,
    pub log: P::Log,
}
