//! The running app behind the screens: the sync engine, the socket, the crypto worker and the encrypted cache, driven one event at a time.
//!
//! Everything that changes what the device knows (a frame from the relay, a
//! message the person wrote, a group she made) goes through one queue and is
//! handled in order by [`Driver`]. That is what keeps MLS operations from
//! interleaving and keeps the outbox in the order it was written. Requests
//! that only ask the relay something (the directory, key packages, invites)
//! are sent directly and paired with their answers by request id.

use crate::model::AppModel;
use crate::platform::browser;
use crate::platform::crypto_worker::CryptoWorkerClient;
use crate::platform::idb::{IdbDatabase, DATABASE_NAME};
use crate::platform::log;
use crate::platform::socket::{relay_url, Socket, SocketEvent};
use crate::state::conversations::{message_views, sort_newest_first, summarise};
use crate::state::records::{
    ConversationRecord, Delivery, Directory, Intent, MessageRecord, OutboxRecord, Session,
};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use huddle_core::envelope::Envelope;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_core::sync::{Command, Event, Notice, OutboxItem, OutboxState, SyncConfig, SyncEngine};
use huddle_core::wire::{
    ClaimedKeyPackage, ClientFrame, EntryKind, GroupSpec, LogEntry, MembershipChange, Payload,
    Rejection, RequestId, ServerFrame, Submission,
};
use huddle_mls::{DeviceIdentity, GroupProfile, Incoming};
use huddle_worker::{WorkerRequest, WorkerResponse};
use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Key packages a device keeps with the relay, so that colleagues can add
/// it to groups while it is offline.
const KEY_PACKAGE_STOCK: u32 = 20;

/// How often expired messages are swept and the clock labels refreshed.
const SWEEP_EVERY_MS: i32 = 5_000;

/// How long a question to the relay may take before the person is told.
const ASK_TIMEOUT_MS: u32 = 15_000;

/// What the driver's queue carries.
enum Input {
    Socket(u64, SocketEvent),
    Timer(u64),
    Wake,
    Compose {
        group: GroupId,
        text: String,
    },
    CreateGroup {
        profile: GroupProfile,
        peer: Option<UserId>,
        members: Vec<ClaimedKeyPackage>,
        reply: oneshot::Sender<Result<GroupId, String>>,
    },
    AddMembers {
        group: GroupId,
        members: Vec<ClaimedKeyPackage>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    RemoveMembers {
        group: GroupId,
        devices: Vec<DeviceId>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Retry(ClientMessageId),
    /// Messages were saved before the client was ready: encrypt them now.
    SealWaiting,
    Sweep,
    /// The open conversation changed, or the page became visible: it is read.
    Viewed,
}

/// The app's connection to everything outside the screens.
pub struct Client {
    model: AppModel,
    db: Rc<IdbDatabase>,
    worker: CryptoWorkerClient,
    session: RefCell<Session>,
    inputs: mpsc::UnboundedSender<Input>,
    socket: RefCell<Option<Socket>>,
    generation: Cell<u64>,
    timer: Cell<u64>,
    requests: RefCell<HashMap<RequestId, oneshot::Sender<ServerFrame>>>,
    next_request: Cell<RequestId>,
}

thread_local! {
    static CLIENT: RefCell<Option<Rc<Client>>> = const { RefCell::new(None) };
    /// The phone's cache, open from the moment the list is painted: screens
    /// read it without waiting for the crypto worker.
    static CACHE: RefCell<Option<Rc<IdbDatabase>>> = const { RefCell::new(None) };
}

/// Keeps the open cache for the screens, and hands it back shared.
pub fn share_cache(db: IdbDatabase) -> Rc<IdbDatabase> {
    let db = Rc::new(db);
    CACHE.with(|c| *c.borrow_mut() = Some(db.clone()));
    db
}

/// The running client, once the device is open.
pub fn client() -> Option<Rc<Client>> {
    CLIENT.with(|c| c.borrow().clone())
}

fn worker_failed(error: impl std::fmt::Display) -> String {
    format!("Huddle's encryption could not do that: {error}")
}

/// Loads what the phone has cached and paints it; the crypto worker and the
/// connection start after. Returns the session, if this phone has joined.
pub async fn load_cache(model: AppModel) -> Result<Option<(Rc<IdbDatabase>, Session)>, String> {
    let db = IdbDatabase::open(DATABASE_NAME)
        .await
        .map_err(|e| e.to_string())?;
    if !db.has_session().await.map_err(|e| e.to_string())? {
        db.close();
        return Ok(None);
    }
    let db = db.with_key().await.map_err(|e| e.to_string())?;
    let Some(session) = db.session().await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // The startup sweep: nothing expired is ever shown.
    let now = browser::now();
    db.delete_expired(now).await.map_err(|e| e.to_string())?;
    model.session.set(Some(session.clone()));
    refresh_list(&db, model, &session).await;
    model.loaded.set(true);
    Ok(Some((share_cache(db), session)))
}

async fn refresh_list(db: &IdbDatabase, model: AppModel, session: &Session) {
    let directory = db.directory().await.unwrap_or_default();
    let records = db.conversations().await.unwrap_or_default();
    let mut list = Vec::with_capacity(records.len());
    for record in &records {
        let latest = db
            .latest_messages(record.group, 1)
            .await
            .unwrap_or_default();
        list.push(summarise(record, latest.first(), &directory, session.user));
    }
    sort_newest_first(&mut list);
    model.directory.set(directory);
    model.records.set(records);
    model.conversations.set(list);
}

/// Paints the open conversation's newest messages from the cache. It needs
/// only the cache, not the crypto worker, so that a conversation opens at
/// once even while the app is still starting.
pub async fn show_open(model: AppModel) {
    let (Some(group), Some(db), Some(me)) = (
        model.open.get_untracked(),
        CACHE.with(|c| c.borrow().clone()),
        model.session.with_untracked(|s| s.as_ref().map(|s| s.user)),
    ) else {
        return;
    };
    let limit = model.message_limit.get_untracked();
    let messages = db.latest_messages(group, limit).await.unwrap_or_default();
    if model.open.get_untracked() != Some(group) {
        return; // the person has left the conversation meanwhile
    }
    let views = model
        .directory
        .with_untracked(|directory| message_views(messages, directory, me));
    model.messages.set(views);
}

/// Saves a message written before the crypto worker was ready (the list is
/// painted from the cache first). It waits on the phone, unencrypted by MLS
/// but sealed at rest like every record, and the client encrypts and sends
/// it as soon as it runs.
pub async fn compose_early(model: AppModel, group: GroupId, text: String) -> Result<(), String> {
    let now = browser::now();
    let session = model
        .session
        .get_untracked()
        .ok_or("This phone is not set up for Huddle.")?;
    let record = model
        .record(group)
        .ok_or("That conversation is no longer on this phone.")?;
    Envelope::text(now, text.clone()).map_err(|e| format!("This message can't be sent: {e}."))?;
    let client_msg = ClientMessageId::from_bytes(browser::random_id());
    let message = MessageRecord::written(&session, group, client_msg, now, record.retention, text);
    let db = CACHE
        .with(|c| c.borrow().clone())
        .ok_or("This phone's storage is not open yet. Try again in a moment.")?;
    db.save_message(&message).await.map_err(|e| e.to_string())?;
    show_open(model).await;
    // The client may have started meanwhile, past its first look for
    // waiting messages.
    if let Some(client) = client() {
        client.send_input(Input::SealWaiting);
    }
    Ok(())
}

/// Starts the worker, opens the device and connects. Runs for the life of the page.
pub async fn start(
    model: AppModel,
    db: Rc<IdbDatabase>,
    session: Session,
    worker: Option<CryptoWorkerClient>,
) -> Result<(), String> {
    let worker = match worker {
        Some(worker) => worker,
        None => CryptoWorkerClient::spawn().map_err(|e| e.to_string())?,
    };
    let identity = DeviceIdentity {
        org: session.org,
        user: session.user,
        device: session.device,
    };
    match worker.request(WorkerRequest::OpenDevice { identity }).await {
        Ok(Ok(WorkerResponse::DeviceReady { .. })) => {}
        Ok(Ok(_)) => return Err(worker_failed("unexpected answer")),
        Ok(Err(e)) => return Err(worker_failed(e)),
        Err(e) => return Err(e.to_string()),
    }
    let positions = db.cursors().await.map_err(|e| e.to_string())?;
    let outbox = db.outbox().await.map_err(|e| e.to_string())?;
    let engine = SyncEngine::new(
        session.device,
        SyncConfig::default(),
        positions,
        outbox.iter().map(|r| r.item.clone()),
    );
    let (inputs, queue) = mpsc::unbounded();
    let client = Rc::new(Client {
        model,
        db,
        worker,
        session: RefCell::new(session),
        inputs,
        socket: RefCell::new(None),
        generation: Cell::new(0),
        timer: Cell::new(0),
        requests: RefCell::new(HashMap::new()),
        next_request: Cell::new(1),
    });
    CLIENT.with(|c| *c.borrow_mut() = Some(client.clone()));
    let next_order = outbox.iter().map(|r| r.order + 1).max().unwrap_or(1);
    let driver = Driver {
        client: client.clone(),
        engine,
        intents: outbox.into_iter().map(|r| (r.item.id(), r)).collect(),
        next_order,
        unblocked: Vec::new(),
    };
    leptos::task::spawn_local(driver.run(queue));

    // Connect now, when the network returns, and when the app comes back
    // to the foreground; no reliance on Background Sync.
    let wake = {
        let client = client.clone();
        move || client.send_input(Input::Wake)
    };
    wake();
    browser::on_online({
        let wake = wake.clone();
        move || {
            model.connection.update(|c| c.browser_online = true);
            wake();
        }
    });
    browser::on_offline(move || model.connection.update(|c| c.browser_online = false));
    browser::on_visibility({
        let client = client.clone();
        move |hidden| {
            if !hidden {
                client.send_input(Input::Wake);
                client.send_input(Input::Viewed);
            }
        }
    });
    browser::every(SWEEP_EVERY_MS, {
        let client = client.clone();
        move || client.send_input(Input::Sweep)
    });
    model
        .connection
        .update(|c| c.browser_online = browser::is_online());
    // A conversation opened before the worker was ready is marked read now.
    client.send_input(Input::Viewed);
    Ok(())
}

impl Client {
    fn send_input(&self, input: Input) {
        // The driver runs for the life of the page; a closed queue means the
        // page is going away, when there is nothing left to do.
        let _ = self.inputs.unbounded_send(input);
    }

    pub fn session(&self) -> Session {
        self.session.borrow().clone()
    }

    /// Writes a message to a conversation: saved on the phone at once, sent
    /// when there is a connection.
    pub fn compose(&self, group: GroupId, text: String) {
        self.send_input(Input::Compose { group, text });
    }

    pub fn retry(&self, client_msg: ClientMessageId) {
        self.send_input(Input::Retry(client_msg));
    }

    /// The conversation on screen changed: mark it read.
    pub fn viewed(&self) {
        self.send_input(Input::Viewed);
    }

    /// Asks the relay something and waits for the answer.
    pub async fn ask(
        &self,
        make: impl FnOnce(RequestId) -> ClientFrame,
    ) -> Result<ServerFrame, String> {
        if !self.model.connection.get_untracked().live {
            return Err("You're offline. Try again when Huddle is connected.".into());
        }
        let id = self.next_request.get();
        self.next_request.set(id.wrapping_add(1));
        let (reply, answer) = oneshot::channel();
        self.requests.borrow_mut().insert(id, reply);
        let frame = make(id);
        let sent = self
            .socket
            .borrow()
            .as_ref()
            .is_some_and(|s| s.send(&frame.encode()));
        if !sent {
            self.requests.borrow_mut().remove(&id);
            return Err("You're offline. Try again when Huddle is connected.".into());
        }
        let timeout = gloo_timers::future::TimeoutFuture::new(ASK_TIMEOUT_MS);
        match futures::future::select(answer, timeout).await {
            futures::future::Either::Left((Ok(ServerFrame::Refused { reason, .. }), _)) => {
                Err(reason)
            }
            futures::future::Either::Left((Ok(frame), _)) => Ok(frame),
            futures::future::Either::Left((Err(_), _)) => {
                Err("The connection dropped. Try again in a moment.".into())
            }
            futures::future::Either::Right(_) => {
                self.requests.borrow_mut().remove(&id);
                Err("The relay did not answer. Try again in a moment.".into())
            }
        }
    }

    /// One key package for each device of each person.
    pub async fn claim_key_packages(
        &self,
        users: Vec<UserId>,
    ) -> Result<Vec<ClaimedKeyPackage>, String> {
        match self
            .ask(|request| ClientFrame::ClaimKeyPackages { request, users })
            .await?
        {
            ServerFrame::KeyPackages { key_packages, .. } => Ok(key_packages),
            _ => Err("The relay answered something unexpected.".into()),
        }
    }

    /// Makes a group with these people in it. Returns its id.
    pub async fn create_group(
        &self,
        profile: GroupProfile,
        peer: Option<UserId>,
        users: Vec<UserId>,
    ) -> Result<GroupId, String> {
        let members = if users.is_empty() {
            Vec::new()
        } else {
            self.claim_key_packages(users.clone()).await?
        };
        if let Some(notice) = self.not_ready(&users, &members) {
            self.model.notice.set(Some(notice));
        }
        let (reply, answer) = oneshot::channel();
        self.send_input(Input::CreateGroup {
            profile,
            peer,
            members,
            reply,
        });
        answer
            .await
            .map_err(|_| "Huddle stopped. Reload the page.".to_owned())?
    }

    pub async fn add_people(&self, group: GroupId, users: Vec<UserId>) -> Result<(), String> {
        let members = self.claim_key_packages(users.clone()).await?;
        if members.is_empty() {
            return Err(self
                .not_ready(&users, &members)
                .unwrap_or_else(|| "Nobody to add.".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.send_input(Input::AddMembers {
            group,
            members,
            reply,
        });
        answer
            .await
            .map_err(|_| "Huddle stopped. Reload the page.".to_owned())?
    }

    pub async fn remove_people(&self, group: GroupId, users: Vec<UserId>) -> Result<(), String> {
        let members = match self
            .worker_request(WorkerRequest::Members { group })
            .await?
        {
            WorkerResponse::Members { members } => members,
            _ => return Err(worker_failed("unexpected answer")),
        };
        let devices: Vec<DeviceId> = members
            .iter()
            .filter(|m| users.contains(&m.user))
            .map(|m| m.device)
            .collect();
        if devices.is_empty() {
            return Err("They are not in this group.".into());
        }
        let (reply, answer) = oneshot::channel();
        self.send_input(Input::RemoveMembers {
            group,
            devices,
            reply,
        });
        answer
            .await
            .map_err(|_| "Huddle stopped. Reload the page.".to_owned())?
    }

    /// Refreshes the directory in the background (screens that list people
    /// call this as they open; a failure leaves the cached list).
    pub fn refresh_directory_soon(self: &Rc<Self>) {
        let client = self.clone();
        leptos::task::spawn_local(async move {
            if let Err(e) = client.refresh_directory().await {
                log::warn(&format!("directory not refreshed: {e}"));
            }
        });
    }

    /// Names of the people in `users` for whom no key package came back:
    /// they have no phone set up yet, so they cannot be added now.
    fn not_ready(&self, users: &[UserId], claimed: &[ClaimedKeyPackage]) -> Option<String> {
        let directory = self.model.directory.get_untracked();
        let missing: Vec<String> = users
            .iter()
            .filter(|u| !claimed.iter().any(|c| c.user == **u))
            .map(|u| directory.name_of(*u).unwrap_or("Someone").to_owned())
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "{} could not be added yet: their phone has not finished setting up. Add them later from \"People in this conversation\".",
                missing.join(", ")
            )
        })
    }

    /// The organisation's people, fresh from the relay (and cached).
    pub async fn refresh_directory(&self) -> Result<(), String> {
        let ServerFrame::People { people, .. } = self
            .ask(|request| ClientFrame::Directory { request })
            .await?
        else {
            return Err("The relay answered something unexpected.".into());
        };
        let directory = Directory { people };
        self.db
            .save_directory(&directory)
            .await
            .map_err(|e| e.to_string())?;
        self.model.directory.set(directory);
        self.refresh().await;
        Ok(())
    }

    /// Someone this phone has not heard of (they joined since the directory
    /// was last fetched): fetch it again so that their name shows.
    fn learn_about(self: &Rc<Self>, users: &[UserId]) {
        let unknown = self
            .model
            .directory
            .with_untracked(|d| users.iter().any(|u| d.person(*u).is_none()));
        if unknown && self.model.connection.get_untracked().live {
            self.refresh_directory_soon();
        }
    }

    async fn worker_request(&self, request: WorkerRequest) -> Result<WorkerResponse, String> {
        match self.worker.request(request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(worker_failed(e)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Repaints the list and the open conversation from the cache.
    async fn refresh(&self) {
        let session = self.session();
        refresh_list(&self.db, self.model, &session).await;
        show_open(self.model).await;
    }

    /// Key packages for the relay: a stock the first time, one more after
    /// each group this device joins.
    async fn publish_key_packages(&self, count: u32, last_resort: bool) -> Result<(), String> {
        let key_packages = match self
            .worker_request(WorkerRequest::KeyPackages {
                count,
                last_resort: false,
            })
            .await?
        {
            WorkerResponse::KeyPackages { key_packages } => key_packages,
            _ => return Err(worker_failed("unexpected answer")),
        };
        let last_resort = if last_resort {
            match self
                .worker_request(WorkerRequest::KeyPackages {
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
        self.ask(|request| ClientFrame::PublishKeyPackages {
            request,
            key_packages,
            last_resort,
        })
        .await?;
        Ok(())
    }

    /// After each sign-in: key packages the first time, and the directory.
    async fn after_ready(self: Rc<Self>) {
        if !self.session.borrow().key_packages_published {
            match self.publish_key_packages(KEY_PACKAGE_STOCK, true).await {
                Ok(()) => {
                    let session = {
                        let mut session = self.session.borrow_mut();
                        session.key_packages_published = true;
                        session.clone()
                    };
                    if let Err(e) = self.db.save_session(&session).await {
                        log::error(&e.to_string());
                    }
                }
                Err(e) => log::warn(&format!("key packages not published: {e}")),
            }
        }
        if let Err(e) = self.refresh_directory().await {
            log::warn(&format!("directory not refreshed: {e}"));
        }
    }

    /// Remote wipe: the relay refused this device. Everything on the phone
    /// goes: messages, keys, group secrets.
    async fn wipe(&self, reason: String) {
        self.socket.borrow_mut().take();
        let _ = self.worker.request(WorkerRequest::Wipe).await;
        if let Err(e) = self.db.clear_all().await {
            log::error(&e.to_string());
        }
        self.model.conversations.set(Vec::new());
        self.model.messages.set(Vec::new());
        self.model.records.set(Vec::new());
        self.model.session.set(None);
        self.model.signed_out.set(Some(reason));
    }
}

/// Owns the sync engine and carries out its commands, one input at a time.
struct Driver {
    client: Rc<Client>,
    engine: SyncEngine,
    /// Outbox records by client message id: the engine's items plus what
    /// each was made from.
    intents: HashMap<ClientMessageId, OutboxRecord>,
    next_order: u64,
    /// Groups whose waiting messages can now be encrypted.
    unblocked: Vec<GroupId>,
}

impl Driver {
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Input>) {
        self.withdraw_expired().await;
        self.seal_waiting(None).await;
        while let Some(input) = queue.next().await {
            self.handle(input).await;
            while let Some(group) = self.unblocked.pop() {
                self.seal_waiting(Some(group)).await;
            }
            self.show_connection();
        }
    }

    /// Messages that expired before the relay stored them leave the outbox
    /// and the phone, like every other expired message: the outbox record
    /// holds the text until it is sent.
    async fn withdraw_expired(&mut self) {
        for id in self.engine.withdraw_expired(browser::now()) {
            self.intents.remove(&id);
            if let Err(e) = self.client.db.delete_outbox(id).await {
                log::error(&e.to_string());
            }
        }
    }

    fn show_connection(&self) {
        let live = self.engine.connection() == huddle_core::sync::ConnectionState::Live;
        let waiting = self.engine.waiting_count();
        self.client.model.connection.update(|c| {
            if c.live != live || c.waiting != waiting {
                c.live = live;
                c.waiting = waiting;
            }
        });
    }

    async fn handle(&mut self, input: Input) {
        let client = self.client.clone();
        match input {
            Input::Socket(generation, event) => {
                if generation != client.generation.get() {
                    return; // a socket that has since been replaced
                }
                let now = browser::now();
                match event {
                    SocketEvent::Opened => self.drive(Event::Opened { now }).await,
                    SocketEvent::Closed => {
                        client.socket.borrow_mut().take();
                        // Questions in flight will get no answer.
                        client.requests.borrow_mut().clear();
                        self.drive(Event::Closed {
                            now,
                            jitter: browser::jitter(),
                        })
                        .await;
                    }
                    SocketEvent::Frame(bytes) => match ServerFrame::decode(&bytes) {
                        Ok(frame) => {
                            if let Some(request) = request_of(&frame) {
                                if let Some(reply) = client.requests.borrow_mut().remove(&request) {
                                    let _ = reply.send(frame.clone());
                                }
                            }
                            let ready = matches!(frame, ServerFrame::Ready { .. });
                            self.drive(Event::Received { now, frame }).await;
                            if ready {
                                leptos::task::spawn_local(client.clone().after_ready());
                            }
                        }
                        Err(e) => log::warn(&format!("unreadable frame from the relay: {e}")),
                    },
                }
            }
            Input::Timer(generation) => {
                if generation == client.timer.get() {
                    self.drive(Event::Timer {
                        now: browser::now(),
                    })
                    .await;
                }
            }
            Input::Wake => {
                self.drive(Event::Wake {
                    now: browser::now(),
                })
                .await
            }
            Input::Compose { group, text } => self.compose(group, text).await,
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
                let key_packages = members.into_iter().map(|m| m.key_package).collect();
                let intent = Intent::Add {
                    key_packages,
                    create: None,
                };
                let result = self.commit(group, intent).await;
                let _ = reply.send(result);
            }
            Input::RemoveMembers {
                group,
                devices,
                reply,
            } => {
                let result = self.commit(group, Intent::Remove { devices }).await;
                let _ = reply.send(result);
            }
            Input::SealWaiting => self.seal_waiting(None).await,
            Input::Retry(client_msg) => {
                self.drive(Event::Retry {
                    now: browser::now(),
                    client_msg,
                })
                .await
            }
            Input::Sweep => {
                let now = browser::now();
                client.model.now.set(now);
                browser::mark("huddle:sweep-start");
                if let Err(e) = client.db.delete_expired(now).await {
                    log::error(&e.to_string());
                }
                browser::measure_since("huddle:sweep", "huddle:sweep-start");
                self.withdraw_expired().await;
                self.clamp_unread().await;
                client.refresh().await;
            }
            Input::Viewed => {
                if let Some(group) = client.model.open.get_untracked() {
                    if let Ok(Some(mut record)) = client.db.conversation(group).await {
                        if record.unread > 0 {
                            record.unread = 0;
                            let _ = client.db.save_conversation(&record).await;
                        }
                    }
                }
                // The screen paints the open conversation's messages itself
                // (`show_open`); only the list's unread count changes here.
                refresh_list(&client.db, client.model, &client.session()).await;
            }
        }
    }

    /// Unread counts never exceed what is left after expiry.
    async fn clamp_unread(&self) {
        let db = &self.client.db;
        for mut record in db.conversations().await.unwrap_or_default() {
            if record.unread == 0 {
                continue;
            }
            let left = db.message_count(record.group).await.unwrap_or(0);
            if record.unread > left {
                record.unread = left;
                let _ = db.save_conversation(&record).await;
            }
        }
    }

    /// Feeds an event to the engine and carries out what it asks, including
    /// the events those commands produce.
    async fn drive(&mut self, event: Event) {
        let mut events = std::collections::VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            for command in self.engine.handle(event) {
                if let Some(next) = self.execute(command).await {
                    events.push_back(next);
                }
            }
        }
        self.engine.forget_sent();
    }

    async fn execute(&mut self, command: Command) -> Option<Event> {
        let client = self.client.clone();
        match command {
            Command::Connect if !browser::is_online() => {
                // The phone has no network: wait for the browser's `online`
                // event (or the next backoff) instead of failing to connect.
                Some(Event::Closed {
                    now: browser::now(),
                    jitter: browser::jitter(),
                })
            }
            Command::Connect => {
                let generation = client.generation.get() + 1;
                client.generation.set(generation);
                let inputs = client.inputs.clone();
                let handler = Rc::new(move |generation, event| {
                    let _ = inputs.unbounded_send(Input::Socket(generation, event));
                });
                let socket = relay_url().and_then(|url| Socket::connect(&url, generation, handler));
                match socket {
                    Some(socket) => {
                        client.socket.replace(Some(socket));
                        None
                    }
                    None => Some(Event::Closed {
                        now: browser::now(),
                        jitter: browser::jitter(),
                    }),
                }
            }
            Command::Disconnect => {
                client.socket.borrow_mut().take();
                client.generation.set(client.generation.get() + 1);
                Some(Event::Closed {
                    now: browser::now(),
                    jitter: browser::jitter(),
                })
            }
            Command::Send(frame) => {
                if let Some(socket) = client.socket.borrow().as_ref() {
                    socket.send(&frame.encode());
                }
                None
            }
            Command::SignChallenge { transcript } => {
                match client
                    .worker_request(WorkerRequest::SignChallenge { transcript })
                    .await
                {
                    Ok(WorkerResponse::Signature { signature }) => {
                        Some(Event::ChallengeSigned { signature })
                    }
                    _ => None, // the relay's handshake timeout closes the socket
                }
            }
            Command::WakeAt(at) => {
                let generation = client.timer.get() + 1;
                client.timer.set(generation);
                let delay = at.0.saturating_sub(browser::now().0).min(i32::MAX as u64) as i32;
                let inputs = client.inputs.clone();
                browser::after(delay, move || {
                    let _ = inputs.unbounded_send(Input::Timer(generation));
                });
                None
            }
            Command::SaveOutboxItem(item) => {
                self.save_outbox_item(item).await;
                None
            }
            Command::SaveCursor(position) => {
                if let Err(e) = client.db.save_cursor(&position).await {
                    log::error(&e.to_string());
                }
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
                if let Err(e) = client
                    .worker_request(WorkerRequest::MergePendingCommit { group })
                    .await
                {
                    log::error(&e);
                }
                self.intents.remove(&client_msg);
                if let Err(e) = client.db.delete_outbox(client_msg).await {
                    log::error(&e.to_string());
                }
                self.update_members(group).await;
                // Messages written while the change was in flight can be
                // encrypted now (after this input, to keep the order).
                self.unblocked.push(group);
                None
            }
            Command::Reseal {
                client_msg,
                group,
                epoch: _,
            } => self.reseal(client_msg, group).await,
            Command::Notice(Notice::SignedOut { reason }) => {
                client.wipe(reason).await;
                None
            }
            Command::Notice(Notice::Resyncing { .. }) => None,
        }
    }

    async fn save_outbox_item(&mut self, item: OutboxItem) {
        let client = self.client.clone();
        let id = item.id();
        let Some(record) = self.intents.get_mut(&id) else {
            return;
        };
        record.item = item.clone();
        let record = record.clone();
        let delivery = match &item.state {
            OutboxState::Queued => Delivery::Queued,
            OutboxState::Sending => Delivery::Sending,
            OutboxState::Sent { .. } => Delivery::Sent,
            OutboxState::Failed { reason } => Delivery::Failed(rejection_words(reason)),
        };
        let is_text = matches!(record.intent, Intent::Text { .. });
        // A sent text is done with; a sent commit is kept until it is merged
        // (after a restart, its log entry must still be recognised as ours).
        let saved = if is_text && matches!(item.state, OutboxState::Sent { .. }) {
            self.intents.remove(&id);
            client.db.delete_outbox(id).await
        } else {
            client.db.save_outbox(&record).await
        };
        if let Err(e) = saved {
            log::error(&e.to_string());
        }
        if let Intent::Text { expires_at, .. } = record.intent {
            self.set_delivery(record.item.submission.group, id, expires_at, delivery)
                .await;
        }
    }

    async fn set_delivery(
        &self,
        group: GroupId,
        client_msg: ClientMessageId,
        expires_at: UnixMillis,
        delivery: Delivery,
    ) {
        let db = &self.client.db;
        if let Ok(Some(mut message)) = db.message(expires_at, group, client_msg).await {
            if message.delivery != delivery {
                message.delivery = delivery;
                let _ = db.save_message(&message).await;
                if self.client.model.open.get_untracked() == Some(group) {
                    show_open(self.client.model).await;
                }
            }
        }
    }

    async fn compose(&mut self, group: GroupId, text: String) {
        let client = self.client.clone();
        let now = browser::now();
        let Ok(Some(record)) = client.db.conversation(group).await else {
            client
                .model
                .notice
                .set(Some("That conversation is no longer on this phone.".into()));
            return;
        };
        if record.ended {
            client
                .model
                .notice
                .set(Some("You are no longer in this conversation.".into()));
            return;
        }
        if let Err(e) = Envelope::text(now, text.clone()) {
            client
                .model
                .notice
                .set(Some(format!("This message can't be sent: {e}.")));
            return;
        }
        let session = client.session();
        let client_msg = ClientMessageId::from_bytes(browser::random_id());
        let message =
            MessageRecord::written(&session, group, client_msg, now, record.retention, text);
        // Saved before anything else: what the person typed is never lost.
        if let Err(e) = client.db.save_message(&message).await {
            client.model.notice.set(Some(e.to_string()));
            return;
        }
        client.refresh().await;
        self.seal_message(message).await;
    }

    /// Encrypts a saved message and queues it. A group with a change of
    /// ours in flight cannot encrypt yet; the message waits until it lands.
    async fn seal_message(&mut self, message: MessageRecord) -> bool {
        let client = self.client.clone();
        let Ok(envelope) =
            Envelope::text(message.sent_at, message.text.clone()).and_then(|e| e.encode())
        else {
            return false;
        };
        let sealed = client
            .worker_request(WorkerRequest::Seal {
                group: message.group,
                client_msg: message.client_msg,
                expires_at: message.expires_at,
                envelope: envelope.clone(),
            })
            .await;
        let Ok(WorkerResponse::Sealed(sealed)) = sealed else {
            return false;
        };
        let submission = Submission {
            client_msg: message.client_msg,
            group: message.group,
            epoch: sealed.epoch,
            expires_at: Some(message.expires_at),
            payload: Payload::Application {
                ciphertext: sealed.ciphertext,
            },
        };
        self.enqueue(
            submission,
            Intent::Text {
                envelope,
                expires_at: message.expires_at,
            },
        )
        .await;
        true
    }

    /// Messages saved but not yet encrypted (in `group`, or everywhere), in
    /// the order they were written.
    async fn seal_waiting(&mut self, group: Option<GroupId>) {
        let client = self.client.clone();
        let db = &client.db;
        let groups: Vec<GroupId> = match group {
            Some(group) => vec![group],
            None => db
                .conversations()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.group)
                .collect(),
        };
        for group in groups {
            let mut waiting: Vec<MessageRecord> = db
                .latest_messages(group, u32::MAX)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.delivery == Delivery::Waiting)
                .collect();
            waiting.sort_by_key(|m| m.sent_at);
            for message in waiting {
                if !self.seal_message(message).await {
                    break; // keep the order: later ones wait too
                }
            }
        }
    }

    async fn enqueue(&mut self, submission: Submission, intent: Intent) {
        let order = self.next_order;
        self.next_order += 1;
        let record = OutboxRecord {
            order,
            item: OutboxItem::new(submission.clone()),
            intent,
        };
        self.intents.insert(submission.client_msg, record);
        self.drive(Event::Enqueue {
            now: browser::now(),
            submission,
        })
        .await;
    }

    async fn create_group(
        &mut self,
        profile: GroupProfile,
        peer: Option<UserId>,
        members: Vec<ClaimedKeyPackage>,
    ) -> Result<GroupId, String> {
        let client = self.client.clone();
        let group = GroupId::from_bytes(browser::random_id());
        client
            .worker_request(WorkerRequest::CreateGroup {
                group,
                profile: profile.clone(),
            })
            .await?;
        let session = client.session();
        let mut users = vec![session.user];
        users.extend(members.iter().map(|m| m.user));
        users.dedup();
        let record = ConversationRecord {
            group,
            kind: profile.kind,
            retention: profile.retention,
            name: profile.name.clone(),
            peer,
            members: users,
            unread: 0,
            created_at: browser::now(),
            ended: false,
        };
        client
            .db
            .save_conversation(&record)
            .await
            .map_err(|e| e.to_string())?;
        let spec = GroupSpec {
            kind: profile.kind,
            retention: profile.retention,
        };
        let intent = Intent::Add {
            key_packages: members.into_iter().map(|m| m.key_package).collect(),
            create: Some(spec),
        };
        self.commit(group, intent).await?;
        client.refresh().await;
        Ok(group)
    }

    /// Makes the commit an intent describes, in the group's current epoch.
    async fn make_commit(&self, group: GroupId, intent: &Intent) -> Result<Submission, String> {
        let client = &self.client;
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
            Intent::Text { .. } => return Err("not a commit".into()),
        };
        let WorkerResponse::Commit(commit) = client.worker_request(request).await? else {
            return Err(worker_failed("unexpected answer"));
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

    async fn commit(&mut self, group: GroupId, intent: Intent) -> Result<(), String> {
        let mut submission = self.make_commit(group, &intent).await?;
        submission.client_msg = ClientMessageId::from_bytes(browser::random_id());
        self.enqueue(submission, intent).await;
        Ok(())
    }

    async fn reseal(&mut self, client_msg: ClientMessageId, group: GroupId) -> Option<Event> {
        let client = self.client.clone();
        let intent = self.intents.get(&client_msg)?.intent.clone();
        let payload_and_epoch = match &intent {
            Intent::Text {
                envelope,
                expires_at,
            } => match client
                .worker_request(WorkerRequest::Seal {
                    group,
                    client_msg,
                    expires_at: *expires_at,
                    envelope: envelope.clone(),
                })
                .await
            {
                Ok(WorkerResponse::Sealed(sealed)) => Some((
                    Payload::Application {
                        ciphertext: sealed.ciphertext,
                    },
                    sealed.epoch,
                )),
                _ => None,
            },
            _ => {
                // Our commit lost the race for its epoch: drop it and make
                // the same change again on top of the one that won.
                let _ = client
                    .worker_request(WorkerRequest::DiscardPendingCommit { group })
                    .await;
                match self.make_commit(group, &intent).await {
                    Ok(submission) => Some((submission.payload, submission.epoch)),
                    Err(e) => {
                        log::error(&e);
                        None
                    }
                }
            }
        };
        let (payload, epoch) = payload_and_epoch?;
        Some(Event::Resealed {
            now: browser::now(),
            client_msg,
            epoch,
            payload,
        })
    }

    fn current_epoch(&self, group: GroupId) -> u64 {
        self.engine.position(group).map_or(0, |p| p.epoch)
    }

    async fn process(&mut self, entry: LogEntry) -> Event {
        let client = self.client.clone();
        let group = entry.group;
        let seq = entry.seq;
        let mut epoch = self.current_epoch(group);
        let now = browser::now();
        let opened = client
            .worker_request(WorkerRequest::Open {
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
                let text = match Envelope::decode(&envelope) {
                    Ok(envelope) => (envelope.sent_at, envelope.body.preview().to_owned()),
                    Err(_) => (now, "This message could not be read.".to_owned()),
                };
                client.learn_about(&[sender.user]);
                let message = MessageRecord {
                    group,
                    client_msg,
                    sender: sender.user,
                    sender_device: sender.device,
                    sent_at: text.0,
                    expires_at,
                    text: text.1,
                    delivery: Delivery::Received,
                };
                if expires_at > now {
                    if let Err(e) = client.db.save_message(&message).await {
                        log::error(&e.to_string());
                    }
                    let viewing =
                        client.model.open.get_untracked() == Some(group) && !browser::is_hidden();
                    if !viewing {
                        if let Ok(Some(mut record)) = client.db.conversation(group).await {
                            record.unread += 1;
                            let _ = client.db.save_conversation(&record).await;
                        }
                    }
                    client.refresh().await;
                }
            }
            Ok(WorkerResponse::Opened(Incoming::MembershipChanged {
                epoch: new_epoch,
                removed_self,
                ..
            })) => {
                epoch = new_epoch;
                if removed_self {
                    if let Ok(Some(mut record)) = client.db.conversation(group).await {
                        record.ended = true;
                        let _ = client.db.save_conversation(&record).await;
                    }
                    client.refresh().await;
                } else {
                    self.update_members(group).await;
                }
            }
            Ok(WorkerResponse::Opened(Incoming::EpochChanged {
                epoch: new_epoch, ..
            })) => epoch = new_epoch,
            Ok(_) => {}
            Err(e) => {
                // Never the content: only that an entry could not be used.
                log::warn(&format!("entry {seq} of a group could not be opened: {e}"));
                if entry.kind == EntryKind::Commit {
                    epoch = entry.epoch + 1;
                }
            }
        }
        Event::Processed { group, seq, epoch }
    }

    async fn update_members(&self, group: GroupId) {
        let client = &self.client;
        let Ok(WorkerResponse::Members { members }) = client
            .worker_request(WorkerRequest::Members { group })
            .await
        else {
            return;
        };
        let mut users: Vec<UserId> = members.iter().map(|m| m.user).collect();
        users.sort();
        users.dedup();
        if let Ok(Some(mut record)) = client.db.conversation(group).await {
            record.members = users;
            let _ = client.db.save_conversation(&record).await;
        }
        client.refresh().await;
    }

    async fn join(
        &mut self,
        group: GroupId,
        seq: u64,
        spec: GroupSpec,
        welcome: Vec<u8>,
    ) -> Option<Event> {
        let client = self.client.clone();
        let joined = match client.worker_request(WorkerRequest::Join { welcome }).await {
            Ok(WorkerResponse::Joined(joined)) => joined,
            Ok(_) => return None,
            Err(e) => {
                log::error(&e);
                return None;
            }
        };
        if joined.group != group || joined.profile.kind != spec.kind {
            log::error("a welcome did not match the group the relay named");
            return None;
        }
        let me = client.session().user;
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
            created_at: browser::now(),
            ended: false,
        };
        client.learn_about(&record.members);
        if let Err(e) = client.db.save_conversation(&record).await {
            log::error(&e.to_string());
        }
        client.refresh().await;
        // One key package was used up: give the relay another.
        let replenish = client.clone();
        leptos::task::spawn_local(async move {
            if let Err(e) = replenish.publish_key_packages(1, false).await {
                log::warn(&format!("key package not replenished: {e}"));
            }
        });
        Some(Event::Joined {
            group,
            seq,
            epoch: joined.epoch,
        })
    }
}

/// The request id of an answer frame, if it is one.
fn request_of(frame: &ServerFrame) -> Option<RequestId> {
    match frame {
        ServerFrame::KeyPackagesPublished { request }
        | ServerFrame::KeyPackages { request, .. }
        | ServerFrame::InviteCreated { request, .. }
        | ServerFrame::Done { request }
        | ServerFrame::Refused { request, .. }
        | ServerFrame::People { request, .. }
        | ServerFrame::Audit { request, .. } => Some(*request),
        _ => None,
    }
}

/// Why the relay refused a message, in words for the person who wrote it.
fn rejection_words(reason: &Rejection) -> String {
    match reason {
        Rejection::NotAMember | Rejection::UnknownGroup => {
            "You are no longer in this conversation.".into()
        }
        Rejection::NotPermitted => "Only administrators can post here.".into(),
        Rejection::Expired => "It was too old to send: it had already expired.".into(),
        Rejection::TooLarge { .. } => "It is too long. Shorten it and send again.".into(),
        other => format!("The relay refused it ({other:?}). Try again."),
    }
}
