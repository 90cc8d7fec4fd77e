//! The driver: one input at a time, it feeds the sync engine and carries out what the engine asks, with the cache, the crypto worker and the connection.
//!
//! Receiving one entry happens in fixed phases: decrypt first, outside any
//! write; then write everything it changed, the group's position included,
//! in one cache transaction; then repaint. Nothing goes to the relay while
//! writes are pending: an acknowledgement never runs ahead of what the
//! phone has stored.

use crate::error::SessionError;
use crate::outgoing::Outgoing;
use crate::phone::{Live, Shared};
use crate::platform::{
    Cache, CacheWrite, Clock, Crypto, CryptoError, Log, Platform, Randomness, Screen, SocketEvent,
    Tasks, Transport,
};
use crate::records::{ConversationRecord, Intent, MessageBody, MessageRecord, OutboxRecord};
use crate::update::{SignOut, Update};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use huddle_core::crypto_worker::{Incoming, WorkerRequest, WorkerResponse};
use huddle_core::envelope::{Envelope, EnvelopeBody};
use huddle_core::group::GroupProfile;
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::GroupKind;
use huddle_core::sync::{
    Command, ConnectionState, Event, Notice, OutboxItem, OutboxState, SyncConfig, SyncEngine,
};
use huddle_core::wire::{
    ClaimedKeyPackage, ClientFrame, EntryKind, ErrorCode, GroupSpec, LogEntry, MembershipChange,
    Payload, ServerFrame, Submission,
};
use std::collections::VecDeque;
use std::rc::Rc;

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
    KeyPackagesPublished,
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
    /// The list or the open conversation changed while handling an input.
    repaint_list: bool,
    repaint_open: bool,
}

impl<P: Platform> Driver<P> {
    pub fn new(shared: Rc<Shared<P>>, inputs: mpsc::UnboundedSender<Input<P>>) -> Self {
        Driver {
            shared,
            inputs,
            engine: None,
            socket_generation: 0,
            timer_generation: 0,
            repaint_list: false,
            repaint_open: false,
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

    fn show_connection(&self) {
        let Some(engine) = &self.engine else {
            return;
        };
        let status = crate::update::ConnectionStatus {
            live: engine.connection() == ConnectionState::Live,
            waiting: engine.waiting_count(),
        };
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
                    key_packages: members.into_iter().map(|m| m.key_package).collect(),
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
                    let ready = matches!(frame, ServerFrame::Ready { .. });
                    self.drive(Event::Received { now, frame }).await;
                    if ready {
                        self.after_ready();
                    }
                }
                Err(error) => self.log(&format!("an unreadable frame from the relay: {error}")),
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
        let mut events: VecDeque<Staged> = VecDeque::from([(event, Vec::new())]);
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
                if live.transport.is_online() && live.transport.connect(events) {
                    None
                } else {
                    // No network: wait for it (or the next backoff) instead
                    // of failing to connect.
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
            Command::Process(entry) => Some(self.process(entry).await),
            Command::Join {
                group,
                seq,
                spec,
                welcome,
            } => self.join(group, seq, spec, welcome).await,
            Command::MergeOwnCommit { group, client_msg } => {
                if let Err(error) = self
                    .crypto(WorkerRequest::MergePendingCommit { group })
                    .await
                {
                    self.log(&format!("our commit could not be merged: {error}"));
                }
                self.shared.state.borrow_mut().outbox.remove(&client_msg);
                let mut writes = vec![CacheWrite::DeleteOutbox(client_msg)];
                writes.extend(self.members_changed(group).await);
                self.shared.write(writes).await;
                None
            }
            Command::Seal {
                client_msg, group, ..
            } => Some((self.seal(client_msg, group).await, Vec::new())),
            Command::Notice(Notice::SignedOut { code, .. }) => {
                let why = if code == ErrorCode::Revoked {
                    SignOut::Revoked
                } else {
                    SignOut::NotRecognised
                };
                self.wipe(why).await;
                None
            }
            Command::Notice(Notice::Resyncing { .. }) => None,
            Command::SaveCursor(_) | Command::SaveOutboxItem(_) => None,
        }
    }

    /// The writes for an outbox item whose state changed, and the change in
    /// memory. A sent message is done with; a sent commit is kept until it
    /// is merged (after a restart, its log entry must still be recognised
    /// as ours).
    fn outbox_changed(&mut self, item: OutboxItem) -> Vec<CacheWrite> {
        let id = item.id();
        let mut state = self.shared.state.borrow_mut();
        if state.open == Some(item.group) {
            self.repaint_open = true;
        }
        let Some(record) = state.outbox.get_mut(&id) else {
            return Vec::new();
        };
        let sent = matches!(item.state, OutboxState::Sent { .. });
        record.item = item;
        if sent && !record.item.is_commit() {
            state.outbox.remove(&id);
            vec![CacheWrite::DeleteOutbox(id)]
        } else {
            vec![CacheWrite::Outbox(record.clone())]
        }
    }

    // --- Writing --------------------------------------------------------

    async fn compose(&mut self, group: GroupId, body: EnvelopeBody) -> Result<(), SessionError> {
        let now = self.shared.clock.now();
        let client_msg = ClientMessageId::from_bytes(self.shared.randomness.id());
        let outgoing = {
            let state = self.shared.state.borrow();
            let conversation = state
                .conversation(group)
                .ok_or(SessionError::ConversationGone)?;
            Outgoing::new(
                &state.enrolment,
                conversation,
                client_msg,
                state.next_order,
                now,
                body,
            )?
        };
        // Saved before anything else: what the person typed is never lost.
        self.shared
            .cache
            .write(vec![
                CacheWrite::Message(outgoing.message),
                CacheWrite::Outbox(outgoing.outbox.clone()),
            ])
            .await?;
        let item = outgoing.outbox.item.clone();
        {
            let mut state = self.shared.state.borrow_mut();
            state.next_order += 1;
            state.outbox.insert(client_msg, outgoing.outbox);
        }
        self.repaint_list = true;
        self.repaint_open = true;
        // Encrypted and sent when its turn comes (at once, if the phone is
        // started and nothing of ours is changing the group).
        self.drive(Event::Enqueue { now, item }).await;
        Ok(())
    }

    /// Saves a made outbox record and queues it.
    async fn enqueue(
        &mut self,
        submission: Submission,
        intent: Intent,
    ) -> Result<(), SessionError> {
        let client_msg = submission.client_msg;
        let record = {
            let state = self.shared.state.borrow();
            OutboxRecord {
                order: state.next_order,
                item: OutboxItem::new(submission),
                intent,
            }
        };
        self.shared
            .cache
            .write(vec![CacheWrite::Outbox(record.clone())])
            .await?;
        let item = record.item.clone();
        {
            let mut state = self.shared.state.borrow_mut();
            state.next_order += 1;
            state.outbox.insert(client_msg, record);
        }
        let now = self.shared.clock.now();
        self.drive(Event::Enqueue { now, item }).await;
        Ok(())
    }

    /// Makes the MLS message of an outbox item in the group's current epoch:
    /// encrypts a message, or makes a commit that lost its epoch again.
    async fn seal(&mut self, client_msg: ClientMessageId, group: GroupId) -> Event {
        let now = self.shared.clock.now();
        let record = self.shared.state.borrow().outbox.get(&client_msg).cloned();
        let made = match record {
            None => Err("the item is no longer in the outbox".to_owned()),
            Some(record) => match &record.intent {
                Intent::Text { envelope } => {
                    let request = WorkerRequest::Seal {
                        group,
                        client_msg,
                        expires_at: record.item.expires_at.unwrap_or(now),
                        envelope: envelope.clone(),
                    };
                    match self.crypto(request).await {
                        Ok(WorkerResponse::Sealed(sealed)) => Ok((
                            sealed.epoch,
                            Payload::Application {
                                ciphertext: sealed.ciphertext,
                            },
                        )),
                        Ok(_) => Err("the crypto worker answered something else".to_owned()),
                        Err(error) => Err(error.to_string()),
                    }
                }
                intent => {
                    // Our commit lost the race for its epoch: drop it and make
                    // the same change again on top of the one that won.
                    if record.item.made.is_some() {
                        let _ = self
                            .crypto(WorkerRequest::DiscardPendingCommit { group })
                            .await;
                    }
                    self.make_commit(group, intent)
                        .await
                        .map(|submission| (submission.epoch, submission.payload))
                        .map_err(|error| error.to_string())
                }
            },
        };
        match made {
            Ok((epoch, payload)) => Event::Sealed {
                now,
                client_msg,
                epoch,
                payload,
            },
            Err(error) => {
                self.log(&format!("an outbox item could not be made: {error}"));
                Event::NotSealed { now, client_msg }
            }
        }
    }

    async fn create_group(
        &mut self,
        profile: GroupProfile,
        peer: Option<UserId>,
        members: Vec<ClaimedKeyPackage>,
    ) -> Result<GroupId, SessionError> {
        let group = GroupId::from_bytes(self.shared.randomness.id());
        self.crypto(WorkerRequest::CreateGroup {
            group,
            profile: profile.clone(),
        })
        .await?;
        let me = self.shared.state.borrow().enrolment.user;
        let mut users = vec![me];
        users.extend(members.iter().map(|m| m.user));
        users.sort();
        users.dedup();
        let record = ConversationRecord {
            group,
            kind: profile.kind,
            retention: profile.retention,
            name: profile.name.clone(),
            peer,
            members: users,
            unread: 0,
            created_at: self.shared.clock.now(),
            ended: false,
        };
        self.shared
            .cache
            .write(vec![CacheWrite::Conversation(record.clone())])
            .await?;
        self.shared.state.borrow_mut().store_conversation(record);
        self.repaint_list = true;
        let intent = Intent::Add {
            key_packages: members.into_iter().map(|m| m.key_package).collect(),
            create: Some(GroupSpec {
                kind: profile.kind,
                retention: profile.retention,
            }),
        };
        self.commit(group, intent).await?;
        Ok(group)
    }

    async fn remove(&mut self, group: GroupId, users: Vec<UserId>) -> Result<(), SessionError> {
        let members = match self.crypto(WorkerRequest::Members { group }).await? {
            WorkerResponse::Members { members } => members,
            _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
        };
        let devices: Vec<DeviceId> = members
            .iter()
            .filter(|m| users.contains(&m.user))
            .map(|m| m.device)
            .collect();
        if devices.is_empty() {
            return Err(SessionError::NotMembers);
        }
        self.commit(group, Intent::Remove { devices }).await
    }

    /// Makes the commit an intent describes, in the group's current epoch,
    /// and queues it.
    async fn commit(&mut self, group: GroupId, intent: Intent) -> Result<(), SessionError> {
        if self.shared.state.borrow().conversation(group).is_none() {
            return Err(SessionError::ConversationGone);
        }
        let mut submission = self.make_commit(group, &intent).await?;
        submission.client_msg = ClientMessageId::from_bytes(self.shared.randomness.id());
        self.enqueue(submission, intent).await
    }

    async fn make_commit(
        &self,
        group: GroupId,
        intent: &Intent,
    ) -> Result<Submission, SessionError> {
        let request = match intent {
            Intent::Add { key_packages, .. } if key_packages.is_empty() => {
                WorkerRequest::SelfUpdate { group }
            }
            Intent::Add { key_packages, .. } => WorkerRequest::AddMembers {
                group,
                key_packages: key_packages.clone(),
            },
            Intent::Remove { devices } => WorkerRequest::RemoveMembers {
                group,
                devices: devices.clone(),
            },
            Intent::Text { .. } => return Err(SessionError::UnexpectedAnswer),
        };
        let WorkerResponse::Commit(commit) = self.crypto(request).await? else {
            return Err(SessionError::Crypto(CryptoError::Stopped));
        };
        let create = match intent {
            Intent::Add { create, .. } => *create,
            _ => None,
        };
        Ok(Submission {
            client_msg: ClientMessageId::from_bytes([0; 16]),
            group,
            epoch: commit.epoch,
            expires_at: None,
            payload: Payload::Commit {
                commit: commit.commit,
                welcome: commit.welcome,
                change: MembershipChange {
                    create,
                    ..commit.change
                },
            },
        })
    }

    // --- Receiving ------------------------------------------------------

    /// Opens one log entry; returns the engine's event and the writes that
    /// store what it changed (written with the group's new position).
    async fn process(&mut self, entry: LogEntry) -> Staged {
        let group = entry.group;
        let seq = entry.seq;
        let mut epoch = self
            .engine
            .as_ref()
            .and_then(|e| e.position(group))
            .map_or(0, |p| p.epoch);
        let now = self.shared.clock.now();
        let mut writes = Vec::new();
        let opened = self
            .crypto(WorkerRequest::Open {
                group,
                message: entry.payload,
                declared: None,
                now,
            })
            .await;
        match opened {
            Ok(WorkerResponse::Opened(Incoming::Message {
                sender,
                client_msg,
                expires_at,
                envelope,
                ..
            })) => {
                let (sent_at, body) = match Envelope::decode(envelope.as_bytes()) {
                    Ok(envelope) => (envelope.sent_at, MessageBody::of(&envelope.body)),
                    Err(_) => (now, MessageBody::Unreadable),
                };
                self.learn_about(&[sender.user]);
                if expires_at > now {
                    writes.push(CacheWrite::Message(MessageRecord {
                        group,
                        client_msg,
                        sender: sender.user,
                        sender_device: sender.device,
                        sent_at,
                        expires_at,
                        body,
                    }));
                    let mut state = self.shared.state.borrow_mut();
                    let reading = state.is_reading(group);
                    if let Some(conversation) = state.conversation_mut(group) {
                        if !reading {
                            conversation.unread += 1;
                            writes.push(CacheWrite::Conversation(conversation.clone()));
                        }
                    }
                    self.repaint_list = true;
                    self.repaint_open |= reading;
                }
            }
            Ok(WorkerResponse::Opened(Incoming::MembershipChanged {
                epoch: new_epoch,
                removed_self,
                ..
            })) => {
                epoch = new_epoch;
                if removed_self {
                    let mut state = self.shared.state.borrow_mut();
                    if let Some(conversation) = state.conversation_mut(group) {
                        conversation.ended = true;
                        writes.push(CacheWrite::Conversation(conversation.clone()));
                    }
                    self.repaint_list = true;
                } else {
                    writes.extend(self.members_changed(group).await);
                }
            }
            Ok(WorkerResponse::Opened(Incoming::EpochChanged {
                epoch: new_epoch, ..
            })) => epoch = new_epoch,
            Ok(_) => {}
            Err(error) => {
                // Never the content: only that an entry could not be used.
                self.log(&format!(
                    "entry {seq} of a group could not be opened: {error}"
                ));
                if entry.kind == EntryKind::Commit {
                    epoch = entry.epoch + 1;
                }
            }
        }
        (Event::Processed { group, seq, epoch }, writes)
    }

    /// The people in a group changed: the write that records who is in it now.
    async fn members_changed(&mut self, group: GroupId) -> Vec<CacheWrite> {
        let Ok(WorkerResponse::Members { members }) =
            self.crypto(WorkerRequest::Members { group }).await
        else {
            return Vec::new();
        };
        let mut users: Vec<UserId> = members.iter().map(|m| m.user).collect();
        users.sort();
        users.dedup();
        self.learn_about(&users);
        self.repaint_list = true;
        let mut state = self.shared.state.borrow_mut();
        match state.conversation_mut(group) {
            Some(conversation) => {
                conversation.members = users;
                vec![CacheWrite::Conversation(conversation.clone())]
            }
            None => Vec::new(),
        }
    }

    async fn join(
        &mut self,
        group: GroupId,
        seq: u64,
        spec: GroupSpec,
        welcome: Vec<u8>,
    ) -> Option<Staged> {
        let joined = match self.crypto(WorkerRequest::Join { welcome }).await {
            Ok(WorkerResponse::Joined(joined)) => joined,
            Ok(_) => return None,
            Err(error) => {
                self.log(&format!("a welcome could not be used: {error}"));
                return None;
            }
        };
        if joined.group != group || joined.profile.kind != spec.kind {
            self.log("a welcome did not match the group the relay named");
            return None;
        }
        let me = self.shared.state.borrow().enrolment.user;
        let mut users: Vec<UserId> = joined.members.iter().map(|m| m.user).collect();
        users.sort();
        users.dedup();
        let peer = (joined.profile.kind == GroupKind::Direct)
            .then(|| users.iter().copied().find(|u| *u != me))
            .flatten();
        let record = ConversationRecord {
            group,
            kind: joined.profile.kind,
            retention: joined.profile.retention,
            name: joined.profile.name.clone(),
            peer,
            members: users,
            unread: 0,
            created_at: self.shared.clock.now(),
            ended: false,
        };
        self.learn_about(&record.members);
        self.shared
            .state
            .borrow_mut()
            .store_conversation(record.clone());
        self.repaint_list = true;
        // One key package was used up: give the relay another.
        let shared = self.shared.clone();
        self.shared.tasks.spawn(Box::pin(async move {
            if let Err(error) = publish_key_packages(&shared, 1, false).await {
                shared
                    .log
                    .warn(&format!("a key package was not replenished: {error}"));
            }
        }));
        Some((
            Event::Joined {
                group,
                seq,
                epoch: joined.epoch,
            },
            vec![CacheWrite::Conversation(record)],
        ))
    }

    // --- Reading, expiry and wipe ---------------------------------------

    /// The open conversation is on screen: repaint it, and it is read.
    async fn viewed(&mut self) {
        self.shared.paint_open().await;
        let read = {
            let mut state = self.shared.state.borrow_mut();
            let Some(group) = state.open.filter(|_| state.visible) else {
                return;
            };
            match state.conversation_mut(group) {
                Some(conversation) if conversation.unread > 0 => {
                    conversation.unread = 0;
                    Some(conversation.clone())
                }
                _ => None,
            }
        };
        if let Some(conversation) = read {
            self.shared
                .write(vec![CacheWrite::Conversation(conversation)])
                .await;
            self.repaint_list = true;
        }
    }

    /// Deletes what has expired: messages by one range delete, and what the
    /// relay never stored from the outbox (its text is in the outbox too).
    async fn sweep(&mut self) {
        let now = self.shared.clock.now();
        let withdrawn: Vec<ClientMessageId> = match self.engine.as_mut() {
            Some(engine) => engine.withdraw_expired(now),
            None => {
                let state = self.shared.state.borrow();
                state
                    .outbox
                    .values()
                    .filter(|r| {
                        !r.item.is_commit()
                            && !matches!(r.item.state, OutboxState::Sent { .. })
                            && r.item.expires_at.is_some_and(|at| at <= now)
                    })
                    .map(|r| r.item.id())
                    .collect()
            }
        };
        if let Err(error) = self.shared.cache.expire(now).await {
            self.log(&format!("expired messages were not deleted: {error}"));
            self.shared
                .screen
                .show(Update::Problem(crate::update::Problem::Storage(error)));
            return;
        }
        let writes = {
            let mut state = self.shared.state.borrow_mut();
            withdrawn
                .iter()
                .map(|id| {
                    state.outbox.remove(id);
                    CacheWrite::DeleteOutbox(*id)
                })
                .collect()
        };
        self.shared.write(writes).await;
        self.clamp_unread().await;
        self.shared.screen.show(Update::Tick(now));
        self.repaint_list = true;
        self.repaint_open = true;
    }

    /// Unread counts never exceed what is left after expiry.
    async fn clamp_unread(&mut self) {
        let unread: Vec<(GroupId, u32)> = self
            .shared
            .state
            .borrow()
            .conversations
            .iter()
            .filter(|c| c.unread > 0)
            .map(|c| (c.group, c.unread))
            .collect();
        let mut writes = Vec::new();
        for (group, unread) in unread {
            let left = self
                .shared
                .cache
                .message_count(group)
                .await
                .unwrap_or(unread);
            if left < unread {
                let mut state = self.shared.state.borrow_mut();
                if let Some(conversation) = state.conversation_mut(group) {
                    conversation.unread = left;
                    writes.push(CacheWrite::Conversation(conversation.clone()));
                }
            }
        }
        self.shared.write(writes).await;
    }

    /// Remote wipe: the relay refused this device. Everything on the phone
    /// goes: messages, keys, group secrets.
    async fn wipe(&mut self, why: SignOut) {
        let live = self.shared.live.borrow_mut().take();
        if let Some(live) = live {
            live.transport.disconnect();
            if let Err(error) = live.crypto.request(WorkerRequest::Wipe).await {
                self.log(&format!("the crypto worker's store was not wiped: {error}"));
            }
        }
        if let Err(error) = self.shared.cache.wipe().await {
            self.log(&format!("the phone's storage was not wiped: {error}"));
        }
        self.engine = None;
        {
            let mut state = self.shared.state.borrow_mut();
            state.wiped = true;
            state.conversations.clear();
            state.outbox.clear();
            state.directory = Default::default();
        }
        self.shared.screen.show(Update::SignedOut(why));
    }
}

/// Key packages for the relay: a stock the first time, one more after each
/// group this device joins.
async fn publish_key_packages<P: Platform>(
    shared: &Shared<P>,
    count: u32,
    last_resort: bool,
) -> Result<(), SessionError> {
    let crypto = shared
        .live
        .borrow()
        .as_ref()
        .map(|live| live.crypto.clone())
        .ok_or(SessionError::Starting)?;
    let key_packages = match crypto
        .request(WorkerRequest::KeyPackages {
            count,
            last_resort: false,
        })
        .await?
    {
        WorkerResponse::KeyPackages { key_packages } => key_packages,
        _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
    };
    let last_resort = if last_resort {
        match crypto
            .request(WorkerRequest::KeyPackages {
                count: 1,
                last_resort: true,
            })
            .await?
        {
            WorkerResponse::KeyPackages { mut key_packages } => key_packages.pop(),
            _ => None,
        }
    } else {
        None
    };
    shared
        .ask(|request| ClientFrame::PublishKeyPackages {
            request,
            key_packages,
            last_resort,
        })
        .await?;
    Ok(())
}
