//! The driver: one input at a time, it feeds the sync engine and carries out what the engine asks, with the cache, the crypto worker and the connection.
//!
//! Receiving one entry happens in fixed phases: decrypt first, outside any
//! write; then write everything it changed, the group's position included,
//! in one cache transaction; then repaint. Nothing goes to the relay while
//! writes are pending: an acknowledgement never runs ahead of what the
//! phone has stored.

use crate::error::SessionError;
use crate::outgoing::Outgoing;
use crate::phone::{Live, Shared, STANDING_SAVED_EVERY_MS};
use crate::platform::{
    Cache, CacheWrite, Clock, Crypto, CryptoError, Log, Platform, Randomness, Screen, SocketEvent,
    Tasks, Transport,
};
use crate::records::{ConversationRecord, Intent, MessageBody, MessageRecord, OutboxRecord};
use crate::update::{SignOut, Update};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use huddle_core::attestation::Identities;
use huddle_core::crypto_worker::{Incoming, WorkerErrorKind, WorkerRequest, WorkerResponse};
use huddle_core::envelope::{Envelope, EnvelopeBody};
use huddle_core::group::GroupProfile;
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_core::sync::{
    Command, ConnectionState, Event, Notice, OutboxItem, OutboxState, SyncConfig, SyncEngine,
};
use huddle_core::wire::{
    ClaimedKeyPackage, ClientFrame, EntryKind, ErrorCode, GroupSpec, LogEntry, MembershipChange,
    Payload, PhonePolicy, ServerFrame, Submission,
};
use std::collections::VecDeque;
use std::rc::Rc;

mod housekeeping;
pub(crate) mod identities;
mod receipts;
mod receiving;
mod repair;
mod writing;

use huddle_core::sync::Rejoin;

pub(crate) use receipts::is_receipt;
pub use receipts::RECEIPT_DELAY_MS;
use writing::publish_key_packages;

/// Key packages a device keeps with the relay, so that colleagues can add
/// it to groups while it is offline.
const KEY_PACKAGE_STOCK: u32 = 20;

/// Where the answer to an input goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, SessionError>>;

/// What the driver's queue carries.
pub(crate) enum Input<P: Platform> {
    Start {
        crypto: P::Crypto,
        transport: P::Transport,
        reply: Reply<()>,
    },
    Socket {
        generation: u64,
        event: SocketEvent,
    },
    Timer {
        generation: u64,
    },
    Wake,
    Sweep,
    /// Tell the group what this phone has received and read (the latest
    /// of these only: news restarts the wait).
    SendReceipts {
        generation: u64,
    },
    /// The open conversation changed, or the page became visible: repaint
    /// it and mark it read.
    Viewed,
    /// Repaint the open conversation (more of it was asked for).
    Paint,
    Compose {
        group: GroupId,
        body: EnvelopeBody,
        reply: Reply<()>,
    },
    Retry(ClientMessageId),
    CreateGroup {
        profile: GroupProfile,
        peer: Option<UserId>,
        members: Vec<ClaimedKeyPackage>,
        reply: Reply<GroupId>,
    },
    AddMembers {
        group: GroupId,
        members: Vec<ClaimedKeyPackage>,
        reply: Reply<()>,
    },
    RemoveMembers {
        group: GroupId,
        users: Vec<UserId>,
        reply: Reply<()>,
    },
    SaveDirectory(crate::records::Directory),
    /// What was just checked about `users` replaces what was known of them.
    SaveIdentities {
        users: Vec<UserId>,
        fresh: Identities,
    },
    KeyPackagesPublished,
    /// The person chose to wipe a phone the relay did not recognise.
    WipeNow,
    /// The relay named revoked devices still in a group: remove them.
    RemoveRevoked {
        group: GroupId,
        devices: Vec<DeviceId>,
    },
    /// What a restart of a stopped group needs, fetched from the relay.
    RestartReady {
        group: GroupId,
        chain: u32,
        key_packages: Vec<ClaimedKeyPackage>,
        active: Vec<DeviceId>,
    },
    /// A restart could not be prepared (the relay did not answer).
    RestartFailed {
        group: GroupId,
    },
    /// Another member's restart, with the devices still in the team.
    RejoinReady {
        rejoin: Rejoin,
        active: Vec<DeviceId>,
    },
}

/// An event for the engine, with the cache writes of the work that
/// produced it: they are written in one transaction with whatever the
/// engine saves in answer (the group's position).
type Staged = (Event, Vec<CacheWrite>);

pub(crate) struct Driver<P: Platform> {
    shared: Rc<Shared<P>>,
    /// Its own queue, for the connection's and the timers' callbacks.
    inputs: mpsc::UnboundedSender<Input<P>>,
    engine: Option<SyncEngine>,
    /// The connection in use: events of older ones are ignored.
    socket_generation: u64,
    /// The timer in use: older ones are ignored.
    timer_generation: u64,
    /// The read receipts' wait in use: older ones are ignored.
    receipts_generation: u64,
    /// The list or the open conversation changed while handling an input.
    repaint_list: bool,
    repaint_open: bool,
    /// When to ask the worker next which groups' keys are due for renewal
    /// (at once after a member was removed).
    next_key_check: UnixMillis,
    /// The person was told the relay speaks a newer Huddle (once: the
    /// page is reloaded to update, not told again at every reconnect).
    told_relay_newer: bool,
}

/// How often the phone asks which groups' keys are due for renewal.
pub const KEY_CHECK_EVERY_MS: u64 = 60 * 60 * 1000;

/// A phone told of revoked members removes them within this long (a moment
/// of its own, so that the members online do not all commit at once).
pub const REMOVE_REVOKED_WITHIN_MS: u64 = 5_000;

/// After a member is removed, each phone renews its keys within this long.
pub const RENEW_AFTER_REMOVAL_WITHIN_MS: u64 = 10 * 60 * 1000;

impl<P: Platform> Driver<P> {
    pub fn new(shared: Rc<Shared<P>>, inputs: mpsc::UnboundedSender<Input<P>>) -> Self {
        Driver {
            shared,
            inputs,
            engine: None,
            socket_generation: 0,
            timer_generation: 0,
            receipts_generation: 0,
            repaint_list: false,
            repaint_open: false,
            next_key_check: UnixMillis(0),
            told_relay_newer: false,
        }
    }

    pub async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Input<P>>) {
        // The outbox first: nothing the person wrote earlier may be missed,
        // and whatever she writes now queues behind it.
        match self.shared.cache.outbox().await {
            Ok(records) => {
                let mut state = self.shared.state.borrow_mut();
                state.next_order = records.iter().map(|r| r.order + 1).max().unwrap_or(1);
                state.outbox = records.into_iter().map(|r| (r.item.id(), r)).collect();
            }
            Err(error) => {
                // Without its outbox the phone must not write or send:
                // stopping keeps what is stored safe for the next start.
                self.log(&format!("the outbox could not be read: {error}"));
                self.shared
                    .screen
                    .show(Update::Problem(crate::update::Problem::Storage(error)));
                self.shared.inputs.borrow_mut().take();
                return;
            }
        }
        // The outbox's part of the startup sweep: what expired while the
        // app was closed is withdrawn before the connection could send it.
        self.withdraw_expired_unsent(self.shared.expiry_now()).await;
        // Who was verified in person, for the badges: a phone that cannot
        // read it shows everyone as not verified, which is the safe side.
        match self.shared.cache.identities().await {
            Ok(identities) => {
                self.shared.state.borrow_mut().identities = identities.clone();
                self.shared.screen.show(Update::Identities(identities));
            }
            Err(error) => self.log(&format!("verifications could not be read: {error}")),
        }
        self.load_receipts().await;
        while let Some(input) = queue.next().await {
            if self.shared.state.borrow().wiped {
                break;
            }
            self.handle(input).await;
            if self.repaint_list {
                self.repaint_list = false;
                self.shared.paint_list().await;
            }
            if self.repaint_open {
                self.repaint_open = false;
                self.shared.paint_open().await;
            }
            self.show_connection();
        }
        // The queue ends with the driver: the phone stops.
        self.shared.inputs.borrow_mut().take();
    }

    fn live(&self) -> Option<Live<P>> {
        self.shared.live.borrow().clone()
    }

    fn log(&self, line: &str) {
        self.shared.log.warn(line);
    }

    fn show_connection(&mut self) {
        let Some(engine) = &self.engine else {
            return;
        };
        let live = engine.connection() == ConnectionState::Live;
        let (status, news) = {
            let state = self.shared.state.borrow();
            // Read receipts are not messages the person waits on.
            let waiting = engine
                .waiting_count()
                .saturating_sub(state.receipts_in_outbox());
            let status = crate::update::ConnectionStatus { live, waiting };
            let news = live && !state.connection.live && !state.receipts_due.is_empty();
            (status, news)
        };
        if news {
            self.schedule_receipts();
        }
        let changed = {
            let mut state = self.shared.state.borrow_mut();
            let changed = state.connection != status;
            state.connection = status;
            changed
        };
        if changed {
            self.shared.screen.show(Update::Connection(status));
        }
    }

    async fn handle(&mut self, input: Input<P>) {
        let now = self.shared.clock.now();
        match input {
            Input::Start {
                crypto,
                transport,
                reply,
            } => {
                let result = self.start(crypto, transport).await;
                let _ = reply.send(result);
            }
            Input::Socket { generation, event } => {
                if generation == self.socket_generation {
                    self.socket_event(event).await;
                }
            }
            Input::Timer { generation } => {
                if generation == self.timer_generation {
                    self.drive(Event::Timer { now }).await;
                }
            }
            Input::Wake => self.drive(Event::Wake { now }).await,
            Input::Sweep => self.sweep().await,
            Input::SendReceipts { generation } => {
                if generation == self.receipts_generation {
                    self.send_receipts().await;
                }
            }
            Input::Viewed => self.viewed().await,
            Input::Paint => self.repaint_open = true,
            Input::Compose { group, body, reply } => {
                let result = self.compose(group, body).await;
                let _ = reply.send(result);
            }
            Input::Retry(client_msg) => self.drive(Event::Retry { now, client_msg }).await,
            Input::CreateGroup {
                profile,
                peer,
                members,
                reply,
            } => {
                let result = self.create_group(profile, peer, members).await;
                let _ = reply.send(result);
            }
            Input::AddMembers {
                group,
                members,
                reply,
            } => {
                let intent = Intent::Add {
                    key_packages: members,
                    create: None,
                };
                let result = self.commit(group, intent).await;
                let _ = reply.send(result);
            }
            Input::RemoveMembers {
                group,
                users,
                reply,
            } => {
                let result = self.remove(group, users).await;
                let _ = reply.send(result);
            }
            Input::SaveDirectory(directory) => {
                if self
                    .shared
                    .write(vec![CacheWrite::Directory(directory.clone())])
                    .await
                {
                    self.shared.state.borrow_mut().directory = directory.clone();
                    self.shared.screen.show(Update::Directory(directory));
                    self.repaint_list = true;
                    self.repaint_open = true;
                }
            }
            Input::SaveIdentities { users, fresh } => {
                let mut identities = self.shared.state.borrow().identities.clone();
                identities.replace(&users, fresh);
                if self
                    .shared
                    .write(vec![CacheWrite::Identities(identities.clone())])
                    .await
                {
                    self.shared.state.borrow_mut().identities = identities.clone();
                    self.shared.screen.show(Update::Identities(identities));
                }
            }
            Input::WipeNow => self.wipe(SignOut::NotRecognised).await,
            Input::RemoveRevoked { group, devices } => {
                self.remove_revoked(group, devices).await;
            }
            Input::RestartReady {
                group,
                chain,
                key_packages,
                active,
            } => {
                self.restart_ready(group, chain, key_packages, active).await;
            }
            Input::RestartFailed { group } => {
                self.drive(Event::RestartFailed { now, group }).await;
            }
            Input::RejoinReady { rejoin, active } => self.rejoin_ready(rejoin, active).await,
            Input::KeyPackagesPublished => {
                let enrolment = {
                    let mut state = self.shared.state.borrow_mut();
                    state.enrolment.key_packages_published = true;
                    state.enrolment.clone()
                };
                self.shared
                    .write(vec![CacheWrite::Enrolment(enrolment)])
                    .await;
            }
        }
    }

    // --- Starting -------------------------------------------------------

    async fn start(
        &mut self,
        crypto: P::Crypto,
        transport: P::Transport,
    ) -> Result<(), SessionError> {
        if self.engine.is_some() {
            return Ok(());
        }
        let enrolment = self.shared.state.borrow().enrolment.clone();
        let identity = DeviceIdentity {
            org: enrolment.org,
            user: enrolment.user,
            device: enrolment.device,
        };
        match crypto
            .request(WorkerRequest::OpenDevice { identity })
            .await?
        {
            WorkerResponse::DeviceReady { .. } => {}
            _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
        }
        let positions = self.shared.cache.cursors().await?;
        let mut outbox: Vec<OutboxRecord> = self
            .shared
            .state
            .borrow()
            .outbox
            .values()
            .cloned()
            .collect();
        outbox.sort_by_key(|r| r.order);
        self.engine = Some(SyncEngine::new(
            enrolment.device,
            SyncConfig::default(),
            positions,
            outbox.into_iter().map(|r| r.item),
        ));
        *self.shared.live.borrow_mut() = Some(Live {
            crypto: Rc::new(crypto),
            transport: Rc::new(transport),
        });
        // Connect, and encrypt what was written while starting.
        let now = self.shared.clock.now();
        self.drive(Event::Wake { now }).await;
        // A conversation opened before the worker was ready is read now.
        self.viewed().await;
        Ok(())
    }

    async fn crypto(&self, request: WorkerRequest) -> Result<WorkerResponse, SessionError> {
        let live = self.live().ok_or(SessionError::Starting)?;
        Ok(live.crypto.request(request).await?)
    }

    // --- The connection -------------------------------------------------

    async fn socket_event(&mut self, event: SocketEvent) {
        let now = self.shared.clock.now();
        match event {
            SocketEvent::Opened => self.drive(Event::Opened { now }).await,
            SocketEvent::Closed => {
                self.shared.drop_questions();
                let jitter = self.shared.randomness.jitter();
                self.drive(Event::Closed { now, jitter }).await;
            }
            SocketEvent::Frame(bytes) => match ServerFrame::decode(&bytes) {
                Ok(frame) => {
                    if self.shared.answer(&frame) {
                        return;
                    }
                    if let ServerFrame::Challenge { relay_time, .. } = &frame {
                        self.shared.relay_told_time(*relay_time);
                    }
                    let signed_in = match &frame {
                        ServerFrame::Ready { policy, .. } => Some(*policy),
                        _ => None,
                    };
                    self.drive(Event::Received { now, frame }).await;
                    if let Some(policy) = signed_in {
                        self.shared.state.borrow_mut().policy = policy;
                        self.shared.screen.show(Update::Policy(policy));
                        self.save_standing(Some(policy)).await;
                        self.after_ready();
                    }
                }
                Err(error) => {
                    self.log(&format!("an unreadable frame from the relay: {error}"));
                    // A relay updated since this copy of the app was loaded
                    // speaks frames it cannot read: at sign-in, or with a
                    // newer version number. Without a word the phone would
                    // just never connect; reloading the page updates it.
                    let signing_in = !self.shared.state.borrow().connection.live;
                    let newer =
                        matches!(error, huddle_core::wire::WireError::UnsupportedVersion(_));
                    if (newer || signing_in) && !self.told_relay_newer {
                        self.told_relay_newer = true;
                        self.shared
                            .screen
                            .show(Update::Problem(crate::update::Problem::RelayNewer));
                    }
                }
            },
        }
    }

    /// After each sign-in: key packages the first time, and the directory.
    fn after_ready(&self) {
        let shared = self.shared.clone();
        let inputs = self.inputs.clone();
        let publish = !self.shared.state.borrow().enrolment.key_packages_published;
        self.shared.tasks.spawn(Box::pin(async move {
            if publish {
                match publish_key_packages(&shared, KEY_PACKAGE_STOCK, true).await {
                    Ok(()) => {
                        let _ = inputs.unbounded_send(Input::KeyPackagesPublished);
                    }
                    Err(error) => shared
                        .log
                        .warn(&format!("key packages were not published: {error}")),
                }
            }
            match shared.fetch_directory().await {
                Ok(directory) => {
                    let _ = inputs.unbounded_send(Input::SaveDirectory(directory));
                }
                Err(error) => shared
                    .log
                    .warn(&format!("the directory was not refreshed: {error}")),
            }
            if let Err(error) = identities::publish_own_certificate(&shared).await {
                shared.log.warn(&format!(
                    "this phone's certificate was not published: {error}"
                ));
            }
            let colleagues = identities::colleagues(&shared);
            if let Err(error) = identities::refresh(&shared, &inputs, colleagues).await {
                shared
                    .log
                    .warn(&format!("verifications were not refreshed: {error}"));
            }
        }));
    }

    /// Someone this phone has not heard of (they joined since the directory
    /// was last fetched): fetch it again so that their name shows.
    fn learn_about(&self, users: &[UserId]) {
        let unknown = {
            let state = self.shared.state.borrow();
            state.connection.live && users.iter().any(|u| state.directory.person(*u).is_none())
        };
        if unknown {
            let shared = self.shared.clone();
            let inputs = self.inputs.clone();
            self.shared.tasks.spawn(Box::pin(async move {
                if let Ok(directory) = shared.fetch_directory().await {
                    let _ = inputs.unbounded_send(Input::SaveDirectory(directory));
                }
            }));
        }
    }

    // --- The engine -----------------------------------------------------

    /// Feeds an event to the engine and carries out what it asks, including
    /// the events those commands produce.
    async fn drive(&mut self, event: Event) {
        self.drive_staged((event, Vec::new())).await;
    }

    /// [`Driver::drive`], with writes to make together with what the engine
    /// saves in answer.
    async fn drive_staged(&mut self, staged: Staged) {
        let mut events: VecDeque<Staged> = VecDeque::from([staged]);
        while let Some((event, staged)) = events.pop_front() {
            let Some(engine) = self.engine.as_mut() else {
                return;
            };
            let commands = engine.handle(event);
            self.run_commands(commands, staged, &mut events).await;
        }
        if let Some(engine) = self.engine.as_mut() {
            engine.forget_sent();
        }
    }

    /// Saves are gathered into one write; anything that acts on the world
    /// (a frame, the crypto worker) waits until they are written.
    async fn run_commands(
        &mut self,
        commands: Vec<Command>,
        mut pending: Vec<CacheWrite>,
        events: &mut VecDeque<Staged>,
    ) {
        for command in commands {
            match command {
                Command::SaveCursor(position) => pending.push(CacheWrite::Cursor(position)),
                Command::SaveOutboxItem(item) => pending.extend(self.outbox_changed(item)),
                command => {
                    self.shared.write(std::mem::take(&mut pending)).await;
                    if let Some(next) = self.execute(command).await {
                        events.push_back(next);
                    }
                }
            }
        }
        self.shared.write(pending).await;
    }

    async fn execute(&mut self, command: Command) -> Option<Staged> {
        let now = self.shared.clock.now();
        let no_writes = |event: Event| Some((event, Vec::new()));
        match command {
            Command::Connect => {
                let live = self.live()?;
                self.socket_generation += 1;
                let generation = self.socket_generation;
                let inputs = self.inputs.clone();
                let events = Box::new(move |event| {
                    let _ = inputs.unbounded_send(Input::Socket { generation, event });
                });
                let refused = self.shared.state.borrow().not_recognised;
                if !refused && live.transport.is_online() && live.transport.connect(events) {
                    None
                } else {
                    // No network: wait for it (or the next backoff) instead
                    // of failing to connect. A phone the relay did not
                    // recognise waits for the person instead.
                    let jitter = self.shared.randomness.jitter();
                    no_writes(Event::Closed { now, jitter })
                }
            }
            Command::Disconnect => {
                if let Some(live) = self.live() {
                    live.transport.disconnect();
                }
                self.socket_generation += 1;
                self.shared.drop_questions();
                let jitter = self.shared.randomness.jitter();
                no_writes(Event::Closed { now, jitter })
            }
            Command::Send(frame) => {
                if let Some(live) = self.live() {
                    live.transport.send(&frame.encode());
                }
                None
            }
            Command::SignChallenge { transcript } => {
                match self
                    .crypto(WorkerRequest::SignChallenge { transcript })
                    .await
                {
                    Ok(WorkerResponse::Signature { signature }) => {
                        no_writes(Event::ChallengeSigned { signature })
                    }
                    // The relay's handshake timeout closes the socket.
                    _ => None,
                }
            }
            Command::WakeAt(at) => {
                self.timer_generation += 1;
                let generation = self.timer_generation;
                let inputs = self.inputs.clone();
                self.shared.clock.after(
                    at.0.saturating_sub(now.0),
                    Box::new(move || {
                        let _ = inputs.unbounded_send(Input::Timer { generation });
                    }),
                );
                None
            }
            Command::Process(entry, declared) => Some(self.process(entry, declared).await),
            Command::Join {
                group,
                seq,
                spec,
                welcome,
            } => self.join(group, seq, spec, welcome).await,
            Command::DiscardOwnCommit { group } => {
                if let Err(error) = self
                    .crypto(WorkerRequest::DiscardPendingCommit { group })
                    .await
                {
                    self.log(&format!("a refused commit could not be dropped: {error}"));
                }
                None
            }
            Command::MergeOwnCommit { group, client_msg } => {
                if let Err(error) = self
                    .crypto(WorkerRequest::MergePendingCommit {
                        group,
                        now: self.shared.expiry_now(),
                    })
                    .await
                {
                    self.log(&format!("our commit could not be merged: {error}"));
                }
                let merged = self.shared.state.borrow_mut().outbox.remove(&client_msg);
                let mut writes = vec![CacheWrite::DeleteOutbox(client_msg)];
                writes.extend(self.members_changed(group).await);
                if merged.is_some_and(|record| record.intent == Intent::Restart) {
                    let own = self.shared.state.borrow().enrolment.device;
                    writes.extend(self.repaired_line(group, own));
                }
                self.shared.write(writes).await;
                None
            }
            Command::Seal {
                client_msg, group, ..
            } => Some((self.seal(client_msg, group).await, Vec::new())),
            Command::RemoveRevoked { group, devices } => {
                // Every member phone online is told at once: each waits a
                // moment of its own first, so that usually one commits and
                // the others find the devices gone. (And a commit drives the
                // engine itself, so it is made after this turn anyway.)
                let inputs = self.inputs.clone();
                let wait =
                    (self.shared.randomness.jitter() * REMOVE_REVOKED_WITHIN_MS as f64) as u64;
                self.shared.clock.after(
                    wait,
                    Box::new(move || {
                        let _ = inputs.unbounded_send(Input::RemoveRevoked { group, devices });
                    }),
                );
                None
            }
            Command::Notice(Notice::SignedOut { code, .. }) => {
                if code == ErrorCode::Revoked {
                    let why = if self.shared.state.borrow().signing_out_here {
                        SignOut::SignedOutHere
                    } else {
                        SignOut::Revoked
                    };
                    self.wipe(why).await;
                } else {
                    // Not a revocation: the relay may have been restored
                    // from an older backup. The person decides; until then
                    // nothing is deleted and nothing more is sent.
                    let unsent = {
                        let mut state = self.shared.state.borrow_mut();
                        state.not_recognised = true;
                        state
                            .outbox
                            .values()
                            .filter(|r| !r.item.is_commit() && !is_receipt(r))
                            .count()
                    };
                    self.log("the relay did not recognise this phone");
                    self.shared.screen.show(Update::NotRecognised { unsent });
                }
                None
            }
            Command::Notice(Notice::Resyncing { .. }) => None,
            Command::Notice(Notice::Repaired { group }) => {
                self.log("a stopped group was repaired");
                self.shared.state.borrow_mut().needs_repair.remove(&group);
                self.repaint_list = true;
                self.repaint_open = true;
                self.shared.screen.show(Update::Repaired { group });
                None
            }
            Command::Restart { group, chain } => {
                self.start_restart(group, chain);
                None
            }
            Command::Rejoin(rejoin) => {
                self.start_rejoin(rejoin);
                None
            }
            Command::DiscardOwnRestart { group } => {
                if let Err(error) = self
                    .crypto(WorkerRequest::DiscardPendingRestart { group })
                    .await
                {
                    self.log(&format!("a refused repair could not be dropped: {error}"));
                }
                None
            }
            Command::DropOutboxItem(client_msg) => {
                self.shared.state.borrow_mut().outbox.remove(&client_msg);
                self.shared
                    .write(vec![CacheWrite::DeleteOutbox(client_msg)])
                    .await;
                None
            }
            Command::Notice(Notice::NeedsRepair { group, .. }) => {
                self.log("a group stopped at a change this phone could not open");
                self.shared.state.borrow_mut().needs_repair.insert(group);
                self.repaint_list = true;
                self.shared
                    .screen
                    .show(Update::Problem(crate::update::Problem::NeedsRepair {
                        group,
                    }));
                None
            }
            Command::SaveCursor(_) | Command::SaveOutboxItem(_) => None,
        }
    }

    /// The writes for an outbox item whose state changed, and the change in
    /// memory. A sent message is done with; a sent commit is kept until it
    /// is merged (after a restart, its log entry must still be recognised
    /// as ours).
    fn outbox_changed(&mut self, item: OutboxItem) -> Vec<CacheWrite> {
        let id = item.id();
        let mut placed = None;
        let mut writes = {
            let mut state = self.shared.state.borrow_mut();
            if state.open == Some(item.group) {
                self.repaint_open = true;
            }
            let me = DeviceIdentity {
                org: state.enrolment.org,
                user: state.enrolment.user,
                device: state.enrolment.device,
            };
            let administrator = state.enrolment.administrator;
            let Some(record) = state.outbox.get_mut(&id) else {
                return Vec::new();
            };
            let logged_at = match item.state {
                OutboxState::Sent { seq } => Some(seq),
                _ => None,
            };
            let failed = matches!(item.state, OutboxState::Failed { .. });
            record.item = item;
            if failed && is_receipt(record) {
                // A refused receipt is not tried again: the next one says
                // at least as much.
                state.outbox.remove(&id);
                if let Some(engine) = self.engine.as_mut() {
                    engine.forget_failed(id);
                }
                return vec![CacheWrite::DeleteOutbox(id)];
            }
            if let (Some(seq), false) = (logged_at, record.item.is_commit()) {
                let mut writes = Vec::new();
                if let Some(answer) = own_shift_answer(record, me, administrator, seq) {
                    // Its place in the log orders it among everyone's answers.
                    writes.push(CacheWrite::Message(answer));
                }
                if is_followed(record) {
                    let expires_at = record.item.expires_at.unwrap_or(UnixMillis(u64::MAX));
                    placed = Some((record.item.group, seq, expires_at));
                }
                state.outbox.remove(&id);
                writes.push(CacheWrite::DeleteOutbox(id));
                writes
            } else {
                vec![CacheWrite::Outbox(record.clone())]
            }
        };
        if let Some((group, seq, expires_at)) = placed {
            // Where it sits in the log, for the receipts that will name it.
            writes.extend(self.change_receipts(group, |r| r.place(id, seq, expires_at)));
        }
        writes
    }
}

/// Whether this phone follows who has received and read one of its own
/// messages: one a person reads (not an answer, a receipt or a commit).
fn is_followed(record: &OutboxRecord) -> bool {
    let Intent::Text { envelope } = &record.intent else {
        return false;
    };
    Envelope::decode(envelope.as_bytes()).is_ok_and(|envelope| {
        matches!(
            envelope.body,
            EnvelopeBody::Text { .. } | EnvelopeBody::ShiftOffer(_)
        )
    })
}

/// One of this phone's own answers to a shift offer, now stored by the
/// relay at `seq`: its message record again, with its place in the log.
fn own_shift_answer(
    record: &OutboxRecord,
    me: DeviceIdentity,
    administrator: bool,
    seq: u64,
) -> Option<MessageRecord> {
    let Intent::Text { envelope } = &record.intent else {
        return None;
    };
    let envelope = Envelope::decode(envelope.as_bytes()).ok()?;
    let body @ MessageBody::ShiftUpdate { .. } =
        MessageBody::logged(&envelope.body, seq, administrator)
    else {
        return None;
    };
    Some(MessageRecord {
        group: record.item.group,
        client_msg: record.item.client_msg,
        sender: me.user,
        sender_device: me.device,
        sent_at: envelope.sent_at,
        expires_at: record.item.expires_at?,
        body,
    })
}
