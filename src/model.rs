//! The app's reactive state: the signals every screen reads, filled from the phone's cache and kept current by the client.

use crate::state::conversations::{ConversationSummary, MessageView};
use crate::state::records::{ConversationRecord, Directory, Session};
use crate::state::route::Route;
use huddle_core::ids::GroupId;
use huddle_core::retention::UnixMillis;
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

/// Every signal the screens share. `Copy`, so each view takes it by value.
#[derive(Clone, Copy)]
pub struct AppModel {
    pub route: RwSignal<Route>,
    pub session: RwSignal<Option<Session>>,
    /// The cache has been read (the list can be painted).
    pub loaded: RwSignal<bool>,
    pub conversations: RwSignal<Vec<ConversationSummary>>,
    pub records: RwSignal<Vec<ConversationRecord>>,
    pub directory: RwSignal<Directory>,
    /// The conversation on screen, and its messages.
    pub open: RwSignal<Option<GroupId>>,
    pub messages: RwSignal<Vec<MessageView>>,
    /// How many of the open conversation's messages are loaded (it grows
    /// when the person asks for earlier ones).
    pub message_limit: RwSignal<u32>,
    pub connection: RwSignal<ConnectionView>,
    /// Something went wrong that the person should know, in words.
    pub notice: RwSignal<Option<String>>,
    /// The page is hidden: the content is blurred.
    pub hidden: RwSignal<bool>,
    /// The clock, ticking, for "disappears in" labels.
    pub now: RwSignal<UnixMillis>,
    /// An administrator signed this phone out; everything was wiped.
    pub signed_out: RwSignal<Option<String>>,
}

/// How many messages a conversation shows at first, and how many more each
/// "Show earlier messages" adds: several screenfuls, few enough to read,
/// decrypt and paint within 100 ms on a slow phone.
pub const FIRST_PAGE: u32 = 50;

impl AppModel {
    pub fn new(route: Route, now: UnixMillis) -> Self {
        AppModel {
            route: RwSignal::new(route),
            session: RwSignal::new(None),
            loaded: RwSignal::new(false),
            conversations: RwSignal::new(Vec::new()),
            records: RwSignal::new(Vec::new()),
            directory: RwSignal::new(Directory::default()),
            open: RwSignal::new(None),
            messages: RwSignal::new(Vec::new()),
            message_limit: RwSignal::new(FIRST_PAGE),
            connection: RwSignal::new(ConnectionView {
                browser_online: true,
                ..ConnectionView::default()
            }),
            notice: RwSignal::new(None),
            hidden: RwSignal::new(false),
            now: RwSignal::new(now),
            signed_out: RwSignal::new(None),
        }
    }

    pub fn record(&self, group: GroupId) -> Option<ConversationRecord> {
        self.records
            .with_untracked(|records| records.iter().find(|r| r.group == group).cloned())
    }

    pub fn is_admin(&self) -> bool {
        self.session
            .with(|s| s.as_ref().is_some_and(|s| s.administrator))
    }
}
