//! The phone the screens talk to: loaded from the cache (and painted) before anything else runs, then started with the crypto worker and the connection.
//!
//! A [`Phone`] is a cheap handle. What changes what the phone knows goes
//! through one queue and is handled in order by the driver (`driver.rs`):
//! that keeps MLS operations from interleaving and the outbox in the order
//! things were written. Questions that only ask the relay something (the
//! directory, key packages, invites) go straight out and are paired with
//! their answers by request id (`relay.rs`).
//!
//! Three stages, so that a slow phone shows its messages at once:
//! 1. [`Phone::load`] reads the cache, deletes what has expired and paints
//!    the conversation list: nothing else is needed for the first screen.
//! 2. [`Phone::run`] starts the driver: from then on the person can open
//!    conversations, write (saved at once, sent later) and messages expire
//!    on a timer.
//! 3. [`Phone::start`] opens the device in the crypto worker and connects:
//!    what was written is encrypted and sent, and what arrives is received.

use crate::driver::{Driver, Input, Reply};
use crate::error::SessionError;
use crate::platform::{Cache, CacheError, CacheWrite, Clock, Log, Parts, Platform, Screen, Tasks};
use crate::records::{
    delivery_of, ConversationRecord, Delivery, Directory, Enrolment, MessageBody, MessageRecord,
    OutboxRecord, Standing,
};
use crate::update::{
    ConnectionStatus, ConversationEntry, PinnedBroadcast, ShownMessage, SignOut, Update,
};
use futures::channel::{mpsc, oneshot};
use huddle_core::attestation::Identities;
use huddle_core::broadcast::acknowledged_in;
use huddle_core::envelope::EnvelopeBody;
use huddle_core::group::GroupProfile;
use huddle_core::ids::{ClientMessageId, GroupId, UserId};
use huddle_core::removal::Removal;
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_core::shift::{MessageRef, Shift, ShiftUpdate};
use huddle_core::sync::OutboxState;
use huddle_core::wire::{PhonePolicy, RequestId, ServerFrame};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

/// How many messages a conversation shows at first, and how many more each
/// "show earlier messages" adds: several screenfuls, few enough to read,
/// decrypt and paint within 100 ms on a slow phone.
pub const PAGE: u32 = 50;

/// The most messages read at once for a broadcast group's page: its
/// acknowledgements (one per member per broadcast) are read with the
/// broadcasts they count towards, up to this many.
pub const BROADCAST_WINDOW: u32 = 2_000;

/// How many of a broadcast group's newest messages the conversation list
/// reads for the broadcasts to pin.
const PINNED_WINDOW: u32 = 600;

/// How far back the conversation list looks for a preview past answers.
const PREVIEW_LOOKBACK: u32 = 200;

/// How long an administrator sees a broadcast pinned while someone has not
/// acknowledged it: a day, after which chasing it is a phone call, not an
/// app's job. Members see theirs pinned until they acknowledge.
const ADMINISTRATOR_PIN_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// How often expired messages are swept (and the clock labels refreshed).
pub const SWEEP_EVERY_MS: u64 = 5_000;

/// The most messages of one conversation an export holds: far more than
/// any group keeps within its retention.
const EXPORT_MESSAGES_PER_CONVERSATION: u32 = 100_000;

/// A handle on the phone's session.
pub struct Phone<P: Platform> {
    pub(crate) shared: Rc<Shared<P>>,
}

impl<P: Platform> Clone for Phone<P> {
    fn clone(&self) -> Self {
        Phone {
            shared: self.shared.clone(),
        }
    }
}

/// What the handle, the driver and the relay questions share.
pub(crate) struct Shared<P: Platform> {
    pub cache: P::Cache,
    pub clock: P::Clock,
    pub randomness: P::Randomness,
    pub screen: P::Screen,
    pub tasks: P::Tasks,
    pub log: P::Log,
    pub state: RefCell<State>,
    /// The driver's queue, once it runs.
    pub inputs: RefCell<Option<mpsc::UnboundedSender<Input<P>>>>,
    /// The crypto worker and the connection, once started.
    pub live: RefCell<Option<Live<P>>>,
    /// Questions to the relay waiting for their answers.
    pub requests: RefCell<HashMap<RequestId, oneshot::Sender<ServerFrame>>>,
    pub next_request: Cell<RequestId>,
    /// How far the relay's clock was ahead of this phone's at the last
    /// sign-in (never behind: see [`Shared::expiry_now`]).
    pub relay_ahead_ms: Cell<u64>,
    /// The latest time this phone has known, in this session or (from its
    /// [`Standing`]) an earlier one: expiry does not go back before it
    /// until the relay next tells the time.
    pub latest_seen: Cell<UnixMillis>,
    /// The latest time known when the phone was loaded (or when the relay
    /// last told the time), and the monotonic clock then: time goes on from
    /// there at the monotonic clock's pace, whatever the phone's clock says.
    pub opened: Cell<(UnixMillis, u64)>,
    /// The standing last saved, if any.
    pub standing: Cell<Option<Standing>>,
}

/// How far the latest time known may run ahead of the saved one before it
/// is saved again: a clock turned back while the app is closed gains at
/// most this much.
pub const STANDING_SAVED_EVERY_MS: u64 = 60_000;

/// The parts that arrive with [`Phone::start`].
pub(crate) struct Live<P: Platform> {
    pub crypto: Rc<P::Crypto>,
    pub transport: Rc<P::Transport>,
}

impl<P: Platform> Clone for Live<P> {
    fn clone(&self) -> Self {
        Live {
            crypto: self.crypto.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// What the phone knows, in memory. The driver is its only writer once it
/// runs; every change is written to the cache first.
pub(crate) struct State {
    pub enrolment: Enrolment,
    pub directory: Directory,
    pub conversations: Vec<ConversationRecord>,
    /// Everything written here that the relay has not stored yet (and our
    /// commits until they are merged): the one record of where each stands.
    pub outbox: HashMap<ClientMessageId, OutboxRecord>,
    pub next_order: u64,
    /// The conversation on screen, and how many of its messages it shows.
    pub open: Option<GroupId>,
    pub limit: u32,
    /// The page is visible (a hidden page reads nothing).
    pub visible: bool,
    pub connection: ConnectionStatus,
    /// The phone was wiped: nothing more happens.
    pub wiped: bool,
    /// The relay did not recognise this phone (and did not say it was
    /// revoked): it stops connecting until the person decides.
    pub not_recognised: bool,
    /// The person asked to sign this phone out: the revocation that
    /// follows is hers, not an administrator's.
    pub signing_out_here: bool,
    /// Groups stopped at a change this phone could not open (in memory: the
    /// change comes again after a restart, and stops the group again).
    pub needs_repair: BTreeSet<GroupId>,
    /// Colleagues' checked keys and attestations, read when the driver
    /// starts (the first screen does not need them).
    pub identities: Identities,
    /// What the organisation asks of its phones, as of the last sign-in.
    pub policy: huddle_core::wire::PhonePolicy,
    /// Each broadcast group's pins as last read, with what they were read
    /// from: the list repaints every few seconds, and reads a group's
    /// messages again only when something in it may have changed.
    pub pins: HashMap<GroupId, PinsRead>,
    /// Each group's read receipts, read when the driver starts.
    pub receipts: HashMap<GroupId, crate::receipts::ReceiptsRecord>,
    /// Groups with news for a receipt, waiting for a moment's quiet.
    pub receipts_due: BTreeSet<GroupId>,
}

/// A broadcast group's pins and what they were worked out from.
#[derive(Clone)]
pub(crate) struct PinsRead {
    /// The group's newest message, this phone's outbox size and the
    /// group's size when they were read.
    pub from: (Option<ClientMessageId>, usize, usize),
    pub at: UnixMillis,
    pub pins: Vec<PinnedBroadcast>,
}

/// Pins are read again at least this often, for messages that expired.
const PINS_FRESH_FOR_MILLIS: u64 = 60_000;

impl State {
    pub fn conversation(&self, group: GroupId) -> Option<&ConversationRecord> {
        self.conversations.iter().find(|c| c.group == group)
    }

    pub fn conversation_mut(&mut self, group: GroupId) -> Option<&mut ConversationRecord> {
        self.conversations.iter_mut().find(|c| c.group == group)
    }

    /// Puts a conversation record in place of the one it replaces.
    pub fn store_conversation(&mut self, record: ConversationRecord) {
        match self.conversation_mut(record.group) {
            Some(existing) => *existing = record,
            None => self.conversations.push(record),
        }
    }

    /// The groups this device is still in.
    pub fn active_groups(&self) -> Vec<GroupId> {
        self.conversations
            .iter()
            .filter(|c| !c.ended)
            .map(|c| c.group)
            .collect()
    }

    /// Read receipts this phone has written that the relay has not stored
    /// yet: not messages the person is waiting on.
    pub fn receipts_in_outbox(&self) -> usize {
        self.outbox
            .values()
            .filter(|r| {
                matches!(r.item.state, OutboxState::Queued | OutboxState::Sending)
                    && crate::driver::is_receipt(r)
            })
            .count()
    }

    /// The outbox's messages that expired before the relay stored them.
    pub fn expired_outbox(&self, now: UnixMillis) -> Vec<ClientMessageId> {
        self.outbox
            .values()
            .filter(|r| r.item.is_expired(now))
            .map(|r| r.item.id())
            .collect()
    }

    /// Whether the person is looking at `group` right now.
    pub fn is_reading(&self, group: GroupId) -> bool {
        self.visible && self.open == Some(group)
    }
}

impl<P: Platform> Phone<P> {
    /// Reads what the phone has cached, deletes what has expired, and
    /// paints the conversation list. `None` if this phone has not joined.
    pub async fn load(parts: Parts<P>) -> Result<Option<Phone<P>>, SessionError> {
        let Some(enrolment) = parts.cache.enrolment().await? else {
            return Ok(None);
        };
        // A phone away from the relay for longer than its organisation
        // allows (lost, or kept offline on purpose) wipes itself before it
        // shows anything; its clock cannot be turned back past the latest
        // time it knew. A standing that does not open (sealed under another
        // key, or damaged) counts as none: the phone signs in and saves a
        // new one, rather than refusing to open for ever.
        let standing = match parts.cache.standing().await {
            Err(CacheError::Damaged) => None,
            read => read?,
        };
        let now = standing.map_or(parts.clock.now(), |saved| {
            parts.clock.now().max(saved.latest_seen)
        });
        if standing.is_some_and(|saved| saved.away_too_long(now)) {
            parts.cache.wipe().await?;
            parts.screen.wiped_on_opening(SignOut::AwayTooLong);
            return Ok(None);
        }
        let opened_monotonic = parts.clock.monotonic_millis();
        // The startup sweep: nothing expired is ever shown.
        parts.cache.expire(now).await?;
        let directory = parts.cache.directory().await?;
        let conversations = parts.cache.conversations().await?;
        let entries = list_entries(&parts.cache, &parts.log, &conversations).await;
        // Made after the last wait, so that a load given up half-way has
        // only plain records to drop.
        let shared: Rc<Shared<P>> = Rc::new(Shared {
            cache: parts.cache,
            clock: parts.clock,
            randomness: parts.randomness,
            screen: parts.screen,
            tasks: parts.tasks,
            log: parts.log,
            state: RefCell::new(State {
                enrolment: enrolment.clone(),
                directory: directory.clone(),
                conversations,
                // Read when the driver starts (see `Driver::run`): the list
                // does not need it, and the first screen waits for nothing
                // it does not need.
                outbox: HashMap::new(),
                next_order: 1,
                open: None,
                limit: PAGE,
                visible: true,
                connection: ConnectionStatus::default(),
                wiped: false,
                not_recognised: false,
                signing_out_here: false,
                needs_repair: BTreeSet::new(),
                identities: Identities::default(),
                policy: huddle_core::wire::PhonePolicy::default(),
                pins: HashMap::new(),
                receipts: HashMap::new(),
                receipts_due: BTreeSet::new(),
            }),
            inputs: RefCell::new(None),
            relay_ahead_ms: Cell::new(0),
            latest_seen: Cell::new(now),
            opened: Cell::new((now, opened_monotonic)),
            standing: Cell::new(standing),
            live: RefCell::new(None),
            requests: RefCell::new(HashMap::new()),
            next_request: Cell::new(1),
        });
        shared.screen.loaded(&enrolment, &directory, entries);
        Ok(Some(Phone { shared }))
    }

    /// Who this phone is.
    pub fn enrolment(&self) -> Enrolment {
        self.shared.state.borrow().enrolment.clone()
    }

    /// A conversation as this phone knows it.
    pub fn conversation(&self, group: GroupId) -> Option<ConversationRecord> {
        self.shared.state.borrow().conversation(group).cloned()
    }

    pub fn directory(&self) -> Directory {
        self.shared.state.borrow().directory.clone()
    }

    /// Everything this phone holds that its person can read, for her own
    /// export: each conversation with its messages that have not expired
    /// (answers and marks among them; the export leaves those out).
    pub async fn messages_to_export(
        &self,
    ) -> Result<Vec<(ConversationRecord, Vec<MessageRecord>)>, SessionError> {
        let now = self.shared.expiry_now();
        let conversations: Vec<ConversationRecord> =
            self.shared.state.borrow().conversations.clone();
        let mut exported = Vec::with_capacity(conversations.len());
        for record in conversations {
            let mut messages = self
                .shared
                .cache
                .latest_messages(record.group, EXPORT_MESSAGES_PER_CONVERSATION)
                .await?;
            messages.retain(|m| m.expires_at > now);
            exported.push((record, messages));
        }
        Ok(exported)
    }

    /// Starts the driver (once): writing, reading and expiry work from now
    /// on, before the crypto worker is ready.
    pub fn run(&self) {
        if self.shared.inputs.borrow().is_some() {
            return;
        }
        let (inputs, queue) = mpsc::unbounded();
        *self.shared.inputs.borrow_mut() = Some(inputs.clone());
        let driver = Driver::new(self.shared.clone(), inputs);
        self.shared.tasks.spawn(Box::pin(driver.run(queue)));
        self.sweep_every(SWEEP_EVERY_MS);
    }

    fn sweep_every(&self, millis: u64) {
        let phone = self.clone();
        self.shared.clock.after(
            millis,
            Box::new(move || {
                if phone.send(Input::Sweep) {
                    phone.sweep_every(millis);
                }
            }),
        );
    }

    /// Opens the device in the crypto worker and connects. Runs the driver
    /// first if it is not running.
    pub async fn start(
        &self,
        crypto: P::Crypto,
        transport: P::Transport,
    ) -> Result<(), SessionError> {
        self.run();
        self.call(|reply| Input::Start {
            crypto,
            transport,
            reply,
        })
        .await
    }

    /// Hands an input to the driver; false once it has stopped.
    pub(crate) fn send(&self, input: Input<P>) -> bool {
        self.shared
            .inputs
            .borrow()
            .as_ref()
            .is_some_and(|inputs| inputs.unbounded_send(input).is_ok())
    }

    /// Hands an input with a reply to the driver and waits for the reply.
    async fn call<T>(&self, input: impl FnOnce(Reply<T>) -> Input<P>) -> Result<T, SessionError> {
        self.run();
        let (reply, answer) = oneshot::channel();
        if !self.send(input(reply)) {
            return Err(SessionError::Stopped);
        }
        answer.await.unwrap_or(Err(SessionError::Stopped))
    }

    /// Writes a message: saved on the phone at once (when this returns),
    /// encrypted and sent when it can be.
    pub async fn compose(&self, group: GroupId, text: String) -> Result<(), SessionError> {
        self.call(|reply| Input::Compose {
            group,
            body: EnvelopeBody::Text { text },
            reply,
        })
        .await
    }

    /// Offers a shift in an operational group: saved at once, sent when it
    /// can be, like any message.
    pub async fn offer_shift(&self, group: GroupId, shift: Shift) -> Result<(), SessionError> {
        self.call(|reply| Input::Compose {
            group,
            body: EnvelopeBody::ShiftOffer(shift),
            reply,
        })
        .await
    }

    /// Answers a shift offer (asks for it, takes the request back, or, for
    /// the poster or an administrator, confirms, releases or withdraws).
    pub async fn answer_shift(
        &self,
        group: GroupId,
        update: ShiftUpdate,
    ) -> Result<(), SessionError> {
        self.call(|reply| Input::Compose {
            group,
            body: EnvelopeBody::ShiftUpdate(update),
            reply,
        })
        .await
    }

    /// Acknowledges an urgent broadcast (saved at once, sent when it can
    /// be, like any message).
    pub async fn acknowledge(
        &self,
        group: GroupId,
        broadcast: MessageRef,
    ) -> Result<(), SessionError> {
        self.call(|reply| Input::Compose {
            group,
            body: EnvelopeBody::Acknowledgement(broadcast),
            reply,
        })
        .await
    }

    /// "I can't make my shift": told privately to each of the
    /// organisation's other administrators, in a one-to-one conversation
    /// with each (made if there is none yet, which needs the relay), never
    /// in a group. Returns the managers it was saved for (sent when it can
    /// be, like any message); fails only when it reached none of them.
    pub async fn cannot_work(&self, shift: Shift) -> Result<Vec<UserId>, SessionError> {
        shift
            .check()
            .map_err(|error| SessionError::Invalid(error.into()))?;
        // Who the managers are now, if the relay can say; else as this
        // phone last heard.
        let directory = match self.shared.fetch_directory().await {
            Ok(fresh) => {
                self.send(Input::SaveDirectory(fresh.clone()));
                fresh
            }
            Err(_) => self.shared.state.borrow().directory.clone(),
        };
        let (my_name, managers) = {
            let state = self.shared.state.borrow();
            let me = state.enrolment.user;
            let managers: Vec<(UserId, String)> = directory
                .people
                .iter()
                .filter(|p| {
                    p.role == huddle_core::wire::Role::Administrator
                        && p.user != me
                        && !p.devices.is_empty()
                })
                .map(|p| (p.user, p.display_name.clone()))
                .collect();
            (state.enrolment.display_name.clone(), managers)
        };
        let mut told = Vec::new();
        let mut failure = SessionError::NoManagers;
        for (manager, name) in managers {
            let existing = self
                .shared
                .state
                .borrow()
                .conversations
                .iter()
                .find_map(|c| {
                    (c.kind == GroupKind::Direct && c.peer == Some(manager) && !c.ended)
                        .then_some(c.group)
                });
            let group = match existing {
                Some(group) => group,
                None => {
                    let title: String = format!("{my_name} and {name}")
                        .chars()
                        .take(huddle_core::group::MAX_NAME_CHARS)
                        .collect();
                    let policy = GroupKind::Direct.retention_policy();
                    let Ok(profile) = GroupProfile::new(GroupKind::Direct, policy.default, title)
                    else {
                        continue;
                    };
                    match self
                        .create_group(profile, Some(manager), vec![manager])
                        .await
                    {
                        Ok(group) => group,
                        Err(error) => {
                            failure = error;
                            continue;
                        }
                    }
                }
            };
            let body = EnvelopeBody::CannotWork(shift.clone());
            match self
                .call(|reply| Input::Compose { group, body, reply })
                .await
            {
                Ok(()) => told.push(manager),
                Err(error) => failure = error,
            }
        }
        if told.is_empty() {
            return Err(failure);
        }
        Ok(told)
    }

    /// Takes a message's content off every phone and the relay: marked as
    /// written into the care record system `recorded_in` (any member, in a
    /// clinical group), or, with `None`, deleted for everyone by its
    /// author. Gone from this phone when this returns; the others follow
    /// when the mark reaches them. There is no undo.
    pub async fn remove_message(
        &self,
        group: GroupId,
        message: MessageRef,
        expires_at: UnixMillis,
        recorded_in: Option<&str>,
    ) -> Result<(), SessionError> {
        let removal = match recorded_in {
            Some(record) => Removal::recorded(message, expires_at, record)
                .map_err(|error| SessionError::Invalid(error.into()))?,
            None => Removal::deleted(message, expires_at),
        };
        self.call(|reply| Input::Compose {
            group,
            body: EnvelopeBody::Removal(removal),
            reply,
        })
        .await
    }

    /// Sends a message that failed again.
    pub fn retry(&self, client_msg: ClientMessageId) {
        self.run();
        self.send(Input::Retry(client_msg));
    }

    /// The conversation on screen changed (or closed): its messages are
    /// painted, and it is marked read.
    pub fn open(&self, group: Option<GroupId>) {
        {
            let mut state = self.shared.state.borrow_mut();
            state.open = group;
            state.limit = PAGE;
        }
        self.run();
        self.send(Input::Viewed);
    }

    /// Shows `PAGE` more of the open conversation's earlier messages.
    pub fn show_earlier(&self) {
        self.shared.state.borrow_mut().limit += PAGE;
        self.run();
        self.send(Input::Paint);
    }

    /// The page became visible or hidden. Visible again: connect if need
    /// be, and what is on screen is read.
    pub fn set_visible(&self, visible: bool) {
        self.shared.state.borrow_mut().visible = visible;
        if visible {
            self.wake();
            self.send(Input::Viewed);
        }
    }

    /// Try to be connected now (the network came back, the app came to the
    /// foreground).
    pub fn wake(&self) {
        self.send(Input::Wake);
    }

    /// After the relay did not recognise this phone
    /// ([`Update::NotRecognised`]): connect again, as before.
    pub fn try_again(&self) {
        self.shared.state.borrow_mut().not_recognised = false;
        self.wake();
    }

    /// After the relay did not recognise this phone: the person chose to
    /// delete everything Huddle keeps on it, unsent messages included.
    /// Writes records straight to the phone's cache, in one transaction
    /// (the benchmarks fill a conversation this way; nothing is sent).
    pub async fn write_cache(&self, writes: Vec<CacheWrite>) -> Result<(), SessionError> {
        Ok(self.shared.cache.write(writes).await?)
    }

    pub fn wipe_now(&self) {
        self.send(Input::WipeNow);
    }

    /// Makes a group with these people in it; returns its id. People whose
    /// phones are not set up yet are left out and reported
    /// ([`crate::Problem::NotSetUpYet`]).
    pub async fn create_group(
        &self,
        profile: GroupProfile,
        peer: Option<UserId>,
        users: Vec<UserId>,
    ) -> Result<GroupId, SessionError> {
        let members = if users.is_empty() {
            Vec::new()
        } else {
            self.claim_key_packages(users.clone()).await?
        };
        let missing = missing_people(&users, &members);
        if !missing.is_empty() {
            self.shared
                .screen
                .show(Update::Problem(crate::update::Problem::NotSetUpYet(
                    missing,
                )));
        }
        self.call(|reply| Input::CreateGroup {
            profile,
            peer,
            members,
            reply,
        })
        .await
    }

    /// Adds people to a group.
    pub async fn add_people(&self, group: GroupId, users: Vec<UserId>) -> Result<(), SessionError> {
        let members = self.claim_key_packages(users.clone()).await?;
        if members.is_empty() {
            return Err(SessionError::NotSetUpYet(users));
        }
        self.call(|reply| Input::AddMembers {
            group,
            members,
            reply,
        })
        .await
    }

    /// Removes people (all their devices) from a group.
    pub async fn remove_people(
        &self,
        group: GroupId,
        users: Vec<UserId>,
    ) -> Result<(), SessionError> {
        self.call(|reply| Input::RemoveMembers {
            group,
            users,
            reply,
        })
        .await
    }
}

/// The people in `users` for whom no key package came back.
fn missing_people(
    users: &[UserId],
    claimed: &[huddle_core::wire::ClaimedKeyPackage],
) -> Vec<UserId> {
    users
        .iter()
        .filter(|u| !claimed.iter().any(|c| c.user == **u))
        .copied()
        .collect()
}

impl<P: Platform> Shared<P> {
    /// The time expiry goes by: the later of this phone's clock and the
    /// relay's, as learned at the last sign-in. A phone whose clock was
    /// turned back still deletes on time, and one whose clock runs fast
    /// deletes early, never late.
    ///
    /// Nor does it go backwards, within a session or across them, until
    /// the relay next tells the time ([`Shared::relay_told_time`]): a clock
    /// turned back while the app was closed is overruled by the latest time
    /// known before (saved in the phone's [`Standing`]).
    pub fn expiry_now(&self) -> UnixMillis {
        let (opened_at, opened_monotonic) = self.opened.get();
        let since_opened = self
            .clock
            .monotonic_millis()
            .saturating_sub(opened_monotonic);
        let now = self
            .clock
            .now()
            .saturating_add_millis(self.relay_ahead_ms.get())
            .max(opened_at.saturating_add_millis(since_opened))
            .max(self.latest_seen.get());
        self.latest_seen.set(now);
        now
    }

    /// The relay told the time (in its challenge): from now on expiry goes
    /// by the later of it and this phone's clock, and no longer by the
    /// latest time saved before. The relay deletes on its own clock anyway,
    /// so it is trusted over a time this phone once knew: a clock once set
    /// far ahead (which deletes early, never late) is put right at the next
    /// sign-in rather than kept for ever.
    pub fn relay_told_time(&self, relay_time: UnixMillis) {
        let now = self.clock.now();
        self.relay_ahead_ms.set(relay_time.0.saturating_sub(now.0));
        let known = now.max(relay_time);
        self.latest_seen.set(known);
        self.opened.set((known, self.clock.monotonic_millis()));
    }

    /// The phone's standing as of now: after a sign-in (`policy` then
    /// says how long it may stay away), or as saved before, reaching the
    /// relay now if it is connected.
    pub fn standing_now(&self, signed_in: Option<PhonePolicy>) -> Option<Standing> {
        let now = self.expiry_now();
        let connected = self.state.borrow().connection.live;
        match (signed_in, self.standing.get()) {
            (Some(policy), _) => Some(Standing {
                latest_seen: now,
                last_reached_relay: now,
                max_offline_millis: policy.max_offline_secs.saturating_mul(1_000),
            }),
            (None, Some(saved)) => Some(Standing {
                latest_seen: now,
                last_reached_relay: if connected {
                    now
                } else {
                    saved.last_reached_relay
                },
                ..saved
            }),
            (None, None) => None,
        }
    }

    /// Repaints the conversation list from memory and the cache.
    pub async fn paint_list(&self) {
        let (conversations, needs_repair, enrolment) = {
            let state = self.state.borrow();
            (
                state.conversations.clone(),
                state.needs_repair.clone(),
                state.enrolment.clone(),
            )
        };
        let mut entries = list_entries(&self.cache, &self.log, &conversations).await;
        for entry in &mut entries {
            entry.needs_repair = needs_repair.contains(&entry.record.group);
            if acknowledged_in(entry.record.kind) && !entry.record.ended {
                entry.broadcasts = self.pinned(&entry.record, &enrolment).await;
            }
        }
        self.screen.show(Update::Conversations(entries));
    }

    /// A broadcast group's broadcasts to pin above the list: those this
    /// phone's person has yet to acknowledge and, for an administrator,
    /// those someone has yet to acknowledge.
    async fn pinned(
        &self,
        conversation: &ConversationRecord,
        enrolment: &Enrolment,
    ) -> Vec<PinnedBroadcast> {
        let group = conversation.group;
        let now = self.expiry_now();
        let newest = match self.cache.latest_messages(group, 1).await {
            Ok(mut newest) => newest.pop().map(|m| m.client_msg),
            Err(_) => None,
        };
        let from = (
            newest,
            self.state.borrow().outbox.len(),
            conversation.members.len(),
        );
        if let Some(read) = self.state.borrow().pins.get(&group) {
            if read.from == from && now.0.saturating_sub(read.at.0) < PINS_FRESH_FOR_MILLIS {
                return read.pins.clone();
            }
        }
        let mut messages = match self
            .cache
            .latest_messages(conversation.group, PINNED_WINDOW)
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                self.log.warn(&format!(
                    "a broadcast group's messages were not read: {error}"
                ));
                return Vec::new();
            }
        };
        let mut cards = {
            let state = self.state.borrow();
            crate::broadcasts::take_cards(
                &mut messages,
                conversation.kind,
                &conversation.members,
                enrolment.user,
                |m| {
                    delivery_of(
                        m,
                        enrolment.device,
                        state.outbox.get(&m.client_msg).map(|r| &r.item.state),
                    )
                },
            )
        };
        let state = self.state.borrow();
        // Newest first, as read.
        let pins: Vec<PinnedBroadcast> = messages
            .into_iter()
            .filter_map(|message| {
                let card = cards.remove(&crate::broadcasts::reference(&message))?;
                let recent = now.0.saturating_sub(message.sent_at.0) < ADMINISTRATOR_PIN_MILLIS;
                // One's own broadcast waits on nobody until the relay has it.
                let delivered = matches!(
                    delivery_of(
                        &message,
                        enrolment.device,
                        state.outbox.get(&message.client_msg).map(|r| &r.item.state),
                    ),
                    Delivery::Received | Delivery::Sent
                );
                let pin = card.mine.to_do()
                    || (enrolment.administrator && !card.waiting.is_empty() && recent && delivered);
                pin.then_some(PinnedBroadcast { message, card })
            })
            .collect();
        drop(state);
        self.state.borrow_mut().pins.insert(
            group,
            PinsRead {
                from,
                at: now,
                pins: pins.clone(),
            },
        );
        pins
    }

    /// Repaints the open conversation's messages from the cache.
    pub async fn paint_open(&self) {
        let (group, limit, kind, members) = {
            let state = self.state.borrow();
            let Some(group) = state.open else {
                return;
            };
            let (kind, members) = state
                .conversation(group)
                .map_or((GroupKind::Direct, Vec::new()), |c| {
                    (c.kind, c.members.clone())
                });
            (group, state.limit, kind, members)
        };
        // One more than shown, to know whether there are earlier ones; in a
        // broadcast group, room for everyone's acknowledgements too.
        let window = if acknowledged_in(kind) {
            let people = u32::try_from(members.len()).unwrap_or(u32::MAX);
            (limit + 1)
                .saturating_mul(people.saturating_add(1))
                .min(BROADCAST_WINDOW.max(limit + 1))
        } else {
            limit + 1
        };
        let mut messages = match self.cache.latest_messages(group, window).await {
            Ok(messages) => messages,
            Err(error) => {
                self.log
                    .warn(&format!("a conversation's messages were not read: {error}"));
                return;
            }
        };
        let state = self.state.borrow();
        if state.open != Some(group) {
            return; // the person has left the conversation meanwhile
        }
        let filled = messages.len() >= window as usize;
        let device = state.enrolment.device;
        let outbox_state =
            |m: &MessageRecord| state.outbox.get(&m.client_msg).map(|r| &r.item.state);
        let mut broadcasts = crate::broadcasts::take_cards(
            &mut messages,
            kind,
            &members,
            state.enrolment.user,
            |m| delivery_of(m, device, outbox_state(m)),
        );
        // A removal's mark shows as the stub it left, not by itself.
        messages.retain(|m| !matches!(m.body, MessageBody::Removal(_)));
        let more = filled || messages.len() > limit as usize;
        messages.truncate(limit as usize);
        messages.sort_by_key(|m| (m.sent_at, m.client_msg));
        // One of this phone's own answers that was refused counts for nothing.
        let failed = |message: &MessageRecord| {
            message.sender_device == device
                && matches!(
                    state.outbox.get(&message.client_msg).map(|r| &r.item.state),
                    Some(OutboxState::Failed { .. })
                )
        };
        let receipts = state.receipts.get(&group);
        let others: Vec<UserId> = members
            .iter()
            .copied()
            .filter(|m| *m != state.enrolment.user)
            .collect();
        let shown = crate::shifts::fold(messages, kind, failed)
            .into_iter()
            .map(|(message, shift)| ShownMessage {
                reach: receipts.and_then(|r| r.reach(message.client_msg, message.sender, &others)),
                delivery: delivery_of(&message, device, outbox_state(&message)),
                broadcast: broadcasts.remove(&crate::broadcasts::reference(&message)),
                message,
                shift,
            })
            .collect();
        drop(state);
        self.screen.show(Update::Messages {
            group,
            messages: shown,
            more,
        });
    }

    /// Writes `writes` in one transaction, reporting a failure on screen.
    pub async fn write(&self, writes: Vec<CacheWrite>) -> bool {
        if writes.is_empty() {
            return true;
        }
        match self.cache.write(writes).await {
            Ok(()) => true,
            Err(error) => {
                self.log
                    .warn(&format!("the phone's storage refused a write: {error}"));
                self.screen
                    .show(Update::Problem(crate::update::Problem::Storage(error)));
                false
            }
        }
    }
}

/// Each conversation with its newest message still on the phone.
async fn list_entries<C: Cache, L: Log>(
    cache: &C,
    log: &L,
    conversations: &[ConversationRecord],
) -> Vec<ConversationEntry> {
    let mut entries = Vec::with_capacity(conversations.len());
    for record in conversations {
        let record = record.clone();
        let mut latest = match cache.latest_messages(record.group, 1).await {
            Ok(mut latest) => latest.pop(),
            Err(error) => {
                log.warn(&format!(
                    "a conversation's newest message was not read: {error}"
                ));
                None
            }
        };
        // An answer (a claim, an acknowledgement) is not a preview: it says
        // little, and who acknowledged is for a broadcast's sender and the
        // administrators to see, not the whole group.
        if latest.as_ref().is_some_and(|m| m.body.is_answer()) {
            latest = cache
                .latest_messages(record.group, PREVIEW_LOOKBACK)
                .await
                .map_err(|error| {
                    log.warn(&format!(
                        "a conversation's earlier messages were not read: {error}"
                    ))
                })
                .ok()
                .and_then(|messages| messages.into_iter().find(|m| !m.body.is_answer()));
        }
        entries.push(ConversationEntry {
            record,
            latest,
            needs_repair: false,
            broadcasts: Vec::new(),
        });
    }
    entries
}
