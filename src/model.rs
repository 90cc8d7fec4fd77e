//! The app's reactive state: the signals every screen reads, and the adapter that applies the session's updates to them.
//!
//! The session (`huddle-session`) is the only writer of what the phone
//! knows; it sends [`Update`]s, and [`AppModel::apply`] turns each into the
//! views the screens show (with `state`'s words). Screens write only their
//! own state: the route, the open conversation, a notice they dismiss.

use crate::platform::AppPhone;
use crate::state::broadcasts::{broadcast_view, PinnedView};
use crate::state::conversations::{message_views, sort_newest_first, summarise, title};
use crate::state::conversations::{ConversationSummary, MessageView};
use crate::state::route::Route;
use crate::state::shifts::Viewer;
use crate::state::time::year_of;
use crate::state::words;
use huddle_core::attestation::Identities;
use huddle_core::ids::GroupId;
use huddle_core::retention::UnixMillis;
use huddle_session::{
    ConversationEntry, ConversationRecord, Directory, Enrolment, Screen, ShownMessage, SignOut,
    Update as SessionUpdate,
};
use leptos::prelude::*;

/// The connection as the offline banner shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionView {
    /// Authenticated and caught up.
    pub live: bool,
    /// The browser says it has a network.
    pub browser_online: bool,
    /// Messages written here that the relay has not stored yet.
    pub waiting: usize,
}

/// Where the phone stands with its passcode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockView {
    /// Unlocked (or not joined yet).
    #[default]
    Open,
    /// Locked: only the lock screen shows, and nothing was read.
    Locked,
    /// Joined, with no passcode yet: the person chooses one before anything
    /// else.
    Choosing,
}

/// Every signal the screens share. `Copy`, so each view takes it by value.
#[derive(Clone, Copy)]
pub struct AppModel {
    pub route: RwSignal<Route>,
    /// Who this phone is, once it has joined.
    pub enrolment: RwSignal<Option<Enrolment>>,
    /// The cache has been read (the list can be painted).
    pub loaded: RwSignal<bool>,
    pub conversations: RwSignal<Vec<ConversationSummary>>,
    /// Urgent broadcasts pinned above the conversation list, newest first.
    pub pinned: RwSignal<Vec<PinnedView>>,
    /// The broadcasts whose list of who has acknowledged is open: it stays
    /// open as the card is made again with each acknowledgement.
    pub expanded: RwSignal<Vec<huddle_core::shift::MessageRef>>,
    pub records: RwSignal<Vec<ConversationRecord>>,
    pub directory: RwSignal<Directory>,
    /// Colleagues' checked keys and who verified them in person.
    pub identities: RwSignal<Identities>,
    /// The conversation on screen, and its messages.
    pub open: RwSignal<Option<GroupId>>,
    pub messages: RwSignal<Vec<MessageView>>,
    /// The open conversation has earlier messages than it shows.
    pub more_messages: RwSignal<bool>,
    pub connection: RwSignal<ConnectionView>,
    /// Something went wrong that the person should know, in words.
    pub notice: RwSignal<Option<String>>,
    /// The page is hidden, being left, or out of focus: everything on
    /// screen is covered.
    pub hidden: RwSignal<bool>,
    /// The clock, ticking, for "disappears in" labels.
    pub now: RwSignal<UnixMillis>,
    /// The relay refused this phone; everything was wiped.
    pub signed_out: RwSignal<Option<SignOut>>,
    /// The relay did not recognise this phone: the person is asked what to
    /// do, with how many of her messages were not sent.
    pub not_recognised: RwSignal<Option<usize>>,
    /// The relay did not recognise this phone, and it is not connecting
    /// until the person tries again.
    pub refused: RwSignal<bool>,
    /// Locked, open, or waiting for a passcode to be chosen.
    pub lock: RwSignal<LockView>,
    /// What the organisation asks of its phones (when to lock).
    pub policy: RwSignal<huddle_core::wire::PhonePolicy>,
    /// The phone's session, once loaded. It lives as long as the page, so
    /// it is leaked rather than owned: nothing ever needs to drop it, and the
    /// first screen's code carries no drop glue for all it holds.
    phone: StoredValue<Option<&'static AppPhone>, LocalStorage>,
    /// What the session last sent, kept so that views can be made again
    /// when names arrive in the directory.
    entries: StoredValue<Vec<ConversationEntry>, LocalStorage>,
    shown: StoredValue<Option<(GroupId, Vec<ShownMessage>)>, LocalStorage>,
}

impl AppModel {
    pub fn new(route: Route, now: UnixMillis) -> Self {
        AppModel {
            route: RwSignal::new(route),
            enrolment: RwSignal::new(None),
            loaded: RwSignal::new(false),
            conversations: RwSignal::new(Vec::new()),
            pinned: RwSignal::new(Vec::new()),
            expanded: RwSignal::new(Vec::new()),
            records: RwSignal::new(Vec::new()),
            directory: RwSignal::new(Directory::default()),
            identities: RwSignal::new(Identities::default()),
            open: RwSignal::new(None),
            messages: RwSignal::new(Vec::new()),
            more_messages: RwSignal::new(false),
            connection: RwSignal::new(ConnectionView {
                browser_online: true,
                ..ConnectionView::default()
            }),
            notice: RwSignal::new(None),
            hidden: RwSignal::new(false),
            now: RwSignal::new(now),
            signed_out: RwSignal::new(None),
            not_recognised: RwSignal::new(None),
            refused: RwSignal::new(false),
            lock: RwSignal::new(LockView::Open),
            policy: RwSignal::new(huddle_core::wire::PhonePolicy::default()),
            phone: StoredValue::new_local(None),
            entries: StoredValue::new_local(Vec::new()),
            shown: StoredValue::new_local(None),
        }
    }

    /// The phone's session, once it is loaded.
    pub fn phone(&self) -> Option<AppPhone> {
        self.phone.get_value().cloned()
    }

    /// Keeps the phone's session for the life of the page.
    pub fn set_phone(&self, phone: AppPhone) -> &'static AppPhone {
        let phone: &'static AppPhone = Box::leak(Box::new(phone));
        self.phone.set_value(Some(phone));
        phone
    }

    pub fn record(&self, group: GroupId) -> Option<ConversationRecord> {
        self.records
            .with_untracked(|records| records.iter().find(|r| r.group == group).cloned())
    }

    fn is_admin_untracked(&self) -> bool {
        self.enrolment
            .with_untracked(|e| e.as_ref().is_some_and(|e| e.administrator))
    }

    pub fn is_admin(&self) -> bool {
        self.enrolment
            .with(|e| e.as_ref().is_some_and(|e| e.administrator))
    }

    /// An error from the session in words, for a screen to show where it
    /// happened (an empty sentence if the page is going away).
    pub fn sentence(&self, error: &huddle_session::SessionError) -> String {
        self.directory
            .try_with_untracked(|d| words::session_error(error, d))
            .unwrap_or_default()
    }

    /// Whether the folded list under `id` (who has acknowledged a
    /// broadcast, who has read a message) is open.
    pub fn is_expanded(&self, id: huddle_core::shift::MessageRef) -> bool {
        self.expanded.with(|open| open.contains(&id))
    }

    /// Remembers, from its `toggle` event, whether the `<details>` under
    /// `id` is open, so that it stays so as the card is made again.
    pub fn expanded_toggled(&self, id: huddle_core::shift::MessageRef, ev: &leptos::ev::Event) {
        let now_open = event_target::<web_sys::HtmlDetailsElement>(ev).open();
        self.expanded.update(|open| {
            open.retain(|other| *other != id);
            if now_open {
                open.push(id);
            }
        });
    }

    /// Shows an error from the session in words.
    pub fn tell(&self, error: &huddle_session::SessionError) {
        self.notice.set(Some(self.sentence(error)));
    }

    /// Applies one of the session's updates to what the screens show.
    pub fn apply(&self, update: SessionUpdate) {
        match update {
            SessionUpdate::Enrolment(enrolment) => self.enrolment.set(Some(enrolment)),
            SessionUpdate::Directory(directory) => {
                self.directory.set(directory);
                self.paint_list();
                self.paint_messages();
            }
            SessionUpdate::Conversations(entries) => {
                self.records
                    .set(entries.iter().map(|e| e.record.clone()).collect());
                self.entries.set_value(entries);
                self.paint_list();
            }
            SessionUpdate::Messages {
                group,
                messages,
                more,
            } => {
                self.shown.set_value(Some((group, messages)));
                self.more_messages.set(more);
                self.paint_messages();
            }
            SessionUpdate::Connection(status) => self.connection.update(|c| {
                c.live = status.live;
                c.waiting = status.waiting;
            }),
            SessionUpdate::Problem(problem) => {
                let words = self
                    .directory
                    .with_untracked(|d| words::problem(&problem, d));
                self.notice.set(Some(words));
            }
            SessionUpdate::SignedOut(why) => {
                self.conversations.set(Vec::new());
                self.pinned.set(Vec::new());
                self.messages.set(Vec::new());
                self.records.set(Vec::new());
                self.entries.set_value(Vec::new());
                self.shown.set_value(None);
                self.enrolment.set(None);
                self.not_recognised.set(None);
                self.signed_out.set(Some(why));
            }
            SessionUpdate::NotRecognised { unsent } => {
                self.refused.set(true);
                self.not_recognised.set(Some(unsent));
            }
            SessionUpdate::Tick(now) => self.now.set(now),
            SessionUpdate::Identities(identities) => self.identities.set(identities),
            SessionUpdate::Repaired { group } => {
                // The banner about a group that needed repairing goes once
                // no group does.
                let still = self
                    .conversations
                    .with_untracked(|list| list.iter().any(|c| c.group != group && c.needs_repair));
                let about_repair = self
                    .notice
                    .with_untracked(|n| n.as_deref() == Some(words::needs_repair().as_str()));
                if about_repair && !still {
                    self.notice.set(None);
                }
            }
            SessionUpdate::Policy(policy) => self.policy.set(policy),
        }
    }

    fn me(&self) -> Option<huddle_core::ids::UserId> {
        self.enrolment
            .with_untracked(|e| e.as_ref().map(|e| e.user))
    }

    fn paint_list(&self) {
        let Some(me) = self.me() else { return };
        let mut list: Vec<ConversationSummary> = self.entries.with_value(|entries| {
            self.directory.with_untracked(|directory| {
                entries
                    .iter()
                    .map(|e| ConversationSummary {
                        needs_repair: e.needs_repair,
                        ..summarise(&e.record, e.latest.as_ref(), directory, me)
                    })
                    .collect()
            })
        });
        sort_newest_first(&mut list);
        self.conversations.set(list);
        let administrator = self.is_admin_untracked();
        let mut pinned: Vec<PinnedView> = self.entries.with_value(|entries| {
            self.directory.with_untracked(|directory| {
                entries
                    .iter()
                    .flat_map(|entry| {
                        let group_title = title(&entry.record, directory);
                        entry.broadcasts.iter().map(move |pin| PinnedView {
                            group_title: group_title.clone(),
                            view: broadcast_view(
                                entry.record.group,
                                huddle_session::broadcasts::reference(&pin.message),
                                pin.message.body.text().unwrap_or_default(),
                                pin.message.sent_at,
                                &pin.card,
                                None,
                                me,
                                administrator,
                                directory,
                            ),
                        })
                    })
                    .collect()
            })
        });
        pinned.sort_by_key(|pin| std::cmp::Reverse(pin.view.sent_at));
        self.pinned.set(pinned);
    }

    fn paint_messages(&self) {
        let Some(me) = self.me() else { return };
        let viewer = Viewer {
            me,
            administrator: self
                .enrolment
                .with_untracked(|e| e.as_ref().is_some_and(|e| e.administrator)),
            this_year: year_of(crate::platform::browser::now()),
        };
        let open = self.open.get_untracked();
        let views = self.shown.with_value(|shown| match shown {
            Some((group, messages)) if Some(*group) == open => Some(
                self.directory
                    .with_untracked(|directory| message_views(messages, directory, viewer)),
            ),
            _ => None,
        });
        if let Some(views) = views {
            self.messages.set(views);
        }
    }
}

/// The session's screen: its updates go to the model.
pub struct ModelScreen(pub AppModel);

impl Screen for ModelScreen {
    fn loaded(
        &self,
        enrolment: &Enrolment,
        directory: &Directory,
        conversations: Vec<ConversationEntry>,
    ) {
        self.0.enrolment.set(Some(enrolment.clone()));
        self.0.directory.set(directory.clone());
        self.0
            .records
            .set(conversations.iter().map(|e| e.record.clone()).collect());
        self.0.entries.set_value(conversations);
        self.0.paint_list();
    }

    fn wiped_on_opening(&self, why: SignOut) {
        self.0.signed_out.set(Some(why));
    }

    fn show(&self, update: SessionUpdate) {
        self.0.apply(update);
    }
}
