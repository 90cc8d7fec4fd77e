//! The conversation list and a conversation's messages as the screens show them: titles, previews, order, states.

use crate::state::broadcasts::{broadcast_view, BroadcastView};
use crate::state::shifts::{cannot_work_view, shift_view, CannotWorkView, ShiftView, Viewer};
use huddle_core::ids::{ClientMessageId, GroupId, UserId};
use huddle_core::patient_data::{detect, PatientDataKind};
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_core::shift::MessageRef;
use huddle_session::{
    ConversationRecord, Delivery, Directory, MessageBody, MessageRecord, ShownMessage,
};

/// One row of the conversation list. Its preview is content: it never
/// prints (see the `Debug` below).
#[derive(Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub group: GroupId,
    pub title: String,
    pub kind: GroupKind,
    pub unread: u32,
    /// The latest message still on the phone: who wrote it and what it says.
    pub preview: Option<String>,
    /// When the latest message was sent, or the conversation began.
    pub last_at: UnixMillis,
    pub ended: bool,
    /// Stopped at a change this phone could not open.
    pub needs_repair: bool,
}

/// The name a person sees for a conversation.
pub fn title(record: &ConversationRecord, directory: &Directory) -> String {
    match (record.kind, record.peer) {
        (GroupKind::Direct, Some(peer)) => directory
            .name_of(peer)
            .map(str::to_owned)
            .unwrap_or_else(|| "A colleague".to_owned()),
        _ if record.name.is_empty() => "Unnamed group".to_owned(),
        _ => record.name.clone(),
    }
}

/// The list row for `record`, given its latest message.
pub fn summarise(
    record: &ConversationRecord,
    latest: Option<&MessageRecord>,
    directory: &Directory,
    me: UserId,
) -> ConversationSummary {
    let preview = latest.map(|message| {
        let who = if message.sender == me {
            "You".to_owned()
        } else {
            directory
                .name_of(message.sender)
                .unwrap_or("Someone")
                .to_owned()
        };
        let text = first_line(&body_text(&message.body), 80);
        if message.body == MessageBody::Repaired {
            format!("{who} {text}")
        } else {
            format!("{who}: {text}")
        }
    });
    ConversationSummary {
        group: record.group,
        title: title(record, directory),
        kind: record.kind,
        unread: record.unread,
        preview,
        last_at: latest.map_or(record.created_at, |m| m.sent_at),
        ended: record.ended,
        needs_repair: false,
    }
}

/// Newest first; ties by title so that the order is stable.
pub fn sort_newest_first(list: &mut [ConversationSummary]) {
    list.sort_by(|a, b| {
        b.last_at
            .cmp(&a.last_at)
            .then_with(|| a.title.cmp(&b.title))
    });
}

fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max_chars || text.lines().nth(1).is_some() {
        let cut: String = line.chars().take(max_chars).collect();
        format!("{}…", cut.trim_end())
    } else {
        line.to_owned()
    }
}

/// A message as the conversation screen shows it. Its text and shift are
/// content: they never print (see the `Debug` below).
#[derive(Clone, PartialEq, Eq)]
pub struct MessageView {
    pub client_msg: ClientMessageId,
    pub sender_name: String,
    pub sender: UserId,
    pub own: bool,
    pub text: String,
    pub sent_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub delivery: Delivery,
    /// Not a message but a line about the conversation (where it was
    /// repaired), shown apart from the messages.
    pub notice: bool,
    /// A shift offer: shown as a card.
    pub shift: Option<ShiftView>,
    /// An urgent broadcast: shown with who has acknowledged it.
    pub broadcast: Option<BroadcastView>,
    /// "I can't make my shift", told to a manager: shown as a card she can
    /// offer the shift from.
    pub cannot_work: Option<CannotWorkView>,
    /// One's own message in a group with read receipts, once the relay
    /// has it: who has it and who has read it.
    pub readers: Option<crate::state::receipts::ReadersView>,
    /// A message someone wrote (not a card, a notice or a stub): one that
    /// can be recorded in the care record or deleted for everyone.
    pub plain: bool,
    /// What is left of a message recorded in the care record or deleted
    /// for everyone: the stub's words, and when it was removed.
    pub removed: Option<(String, UnixMillis)>,
}

impl std::fmt::Debug for ConversationSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationSummary")
            .field("group", &self.group)
            .field("kind", &self.kind)
            .field("unread", &self.unread)
            .field("has_preview", &self.preview.is_some())
            .field("last_at", &self.last_at)
            .field("ended", &self.ended)
            .field("needs_repair", &self.needs_repair)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MessageView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageView")
            .field("client_msg", &self.client_msg)
            .field("sender", &self.sender)
            .field("own", &self.own)
            .field("characters", &self.text.chars().count())
            .field("sent_at", &self.sent_at)
            .field("expires_at", &self.expires_at)
            .field("delivery", &self.delivery)
            .field("notice", &self.notice)
            .field("shift", &self.shift)
            .field("broadcast", &self.broadcast)
            .field("cannot_work", &self.cannot_work)
            .field("readers", &self.readers.as_ref().map(|r| r.ticks))
            .field("plain", &self.plain)
            .field("removed", &self.removed.as_ref().map(|(_, at)| at))
            .finish_non_exhaustive()
    }
}

/// Where a group was repaired, after the name of who repaired it.
pub const REPAIRED: &str =
    "repaired this group. Messages sent while it was stopped could not be read on this phone.";

/// What a message's body reads as.
pub fn body_text(body: &MessageBody) -> String {
    match body {
        MessageBody::Text(text) => text.clone(),
        MessageBody::NewerKind => "Update Huddle to see this message.".into(),
        MessageBody::Unreadable => "This message could not be read.".into(),
        MessageBody::Repaired => REPAIRED.into(),
        MessageBody::ShiftOffer(shift) => format!("offered a shift: {}", shift.role),
        MessageBody::CannotWork(shift) => format!("can't make a shift: {}", shift.role),
        MessageBody::ShiftUpdate { .. } => "answered a shift offer.".into(),
        MessageBody::Acknowledgement(_) => "acknowledged an urgent message.".into(),
        // Never shown by itself: it shows as the stub it leaves.
        MessageBody::Removal(_) => String::new(),
        MessageBody::Removed { recorded_in, .. } if recorded_in.is_empty() => {
            "This message was deleted.".into()
        }
        MessageBody::Removed { .. } => "This message was recorded in the care record.".into(),
    }
}

/// A removed message's stub, in words, to be followed by when: "Recorded
/// in the care record (Nourish) by Ben Okafor", "You deleted this message".
pub fn removed_text(
    author: UserId,
    by: UserId,
    recorded_in: &str,
    directory: &Directory,
    me: UserId,
) -> String {
    let name = |user: UserId| {
        if user == me {
            "you".to_owned()
        } else {
            directory.name_of(user).unwrap_or("a colleague").to_owned()
        }
    };
    match recorded_in {
        "" if by == me => "You deleted this message".into(),
        // Only its author deletes a message; anyone else's word is a record.
        "" if by == author => format!("{} deleted this message", capitalised(&name(by))),
        "" => "This message was deleted".into(),
        record => format!("Recorded in the care record ({record}) by {}", name(by)),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Which of "Recorded in the care record" and "Delete for everyone" a
/// message offers in a group of `kind`: only for a message someone wrote
/// that the relay holds (not one still waiting to be sent); the first in
/// clinical groups, the second for one's own.
pub fn removal_actions(message: &MessageView, kind: GroupKind) -> (bool, bool) {
    let on_relay = matches!(message.delivery, Delivery::Received | Delivery::Sent);
    let removable = message.plain && message.removed.is_none() && on_relay;
    (
        removable && kind == GroupKind::Clinical,
        removable && message.own,
    )
}

/// A conversation's messages, as the session sends them (oldest first),
/// with their senders' names.
pub fn message_views(
    messages: &[ShownMessage],
    directory: &Directory,
    viewer: Viewer,
) -> Vec<MessageView> {
    let me = viewer.me;
    messages
        .iter()
        .map(|shown| {
            let m = &shown.message;
            let shift = match (&m.body, &shown.shift) {
                (MessageBody::ShiftOffer(shift), Some(card)) => {
                    let offer = MessageRef {
                        author: m.sender,
                        client_msg: m.client_msg,
                    };
                    Some(shift_view(offer, shift, card, viewer, directory))
                }
                _ => None,
            };
            let broadcast = shown.broadcast.as_ref().map(|card| {
                broadcast_view(
                    m.group,
                    MessageRef {
                        author: m.sender,
                        client_msg: m.client_msg,
                    },
                    m.body.text().unwrap_or_default(),
                    m.sent_at,
                    card,
                    shown.reach.as_deref(),
                    me,
                    viewer.administrator,
                    directory,
                )
            });
            // A broadcast's card says who has read it; any other message of
            // one's own says it beside its time.
            let readers = match (&shown.reach, &shown.broadcast) {
                (Some(reach), None) if m.sender == me => {
                    crate::state::receipts::readers_view(reach, directory)
                }
                _ => None,
            };
            let removed = match &m.body {
                MessageBody::Removed {
                    by,
                    at,
                    recorded_in,
                } => Some((removed_text(m.sender, *by, recorded_in, directory, me), *at)),
                _ => None,
            };
            let cannot_work = match &m.body {
                MessageBody::CannotWork(shift) => {
                    Some(cannot_work_view(m.sender, shift, viewer, directory))
                }
                _ => None,
            };
            MessageView {
                cannot_work,
                plain: matches!(m.body, MessageBody::Text(_))
                    && shift.is_none()
                    && broadcast.is_none(),
                removed,
                client_msg: m.client_msg,
                sender_name: if m.sender == me {
                    "You".to_owned()
                } else {
                    directory.name_of(m.sender).unwrap_or("Someone").to_owned()
                },
                sender: m.sender,
                own: m.sender == me,
                text: body_text(&m.body),
                sent_at: m.sent_at,
                expires_at: m.expires_at,
                delivery: shown.delivery.clone(),
                notice: m.body == MessageBody::Repaired,
                shift,
                broadcast,
                readers,
            }
        })
        .collect()
}

/// What a message's state reads as, next to it.
pub fn delivery_label(delivery: &Delivery) -> &'static str {
    match delivery {
        Delivery::Received => "",
        Delivery::Waiting => "Waiting to send",
        Delivery::Sending => "Sending",
        Delivery::Sent => "Sent",
        Delivery::Failed(_) => "Not sent",
    }
}

/// The composer's warning when the text looks like it identifies a patient.
pub fn patient_data_warning(text: &str, year: i32) -> Option<String> {
    let mut kinds: Vec<PatientDataKind> = detect(text, year).into_iter().map(|f| f.kind).collect();
    kinds.dedup();
    if kinds.is_empty() {
        return None;
    }
    let labels: Vec<&str> = kinds.iter().map(|k| patient_data_label(*k)).collect();
    let what = match labels.as_slice() {
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => String::new(),
    };
    Some(format!(
        "This message looks like it contains {what}. Keep details that identify a person in the care record, not in chat."
    ))
}

/// A kind of patient data, in plain English, for the composer's warning.
pub fn patient_data_label(kind: PatientDataKind) -> &'static str {
    match kind {
        PatientDataKind::NhsNumber => "an NHS number",
        PatientDataKind::DateOfBirth => "a date of birth",
        PatientDataKind::Postcode => "a postcode",
    }
}

/// The label a person sees next to a conversation's name.
pub fn kind_label(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Clinical => "Clinical",
        GroupKind::Operational => "Operational",
        GroupKind::Social => "Social",
        GroupKind::EmergencyBroadcast => "Emergency broadcast",
        GroupKind::Direct => "One-to-one",
    }
}

/// The CSS modifier and label that keep each kind of conversation apart.
pub fn kind_class(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Clinical => "kind--clinical",
        GroupKind::Operational => "kind--operational",
        GroupKind::Social => "kind--social",
        GroupKind::EmergencyBroadcast => "kind--broadcast",
        GroupKind::Direct => "kind--direct",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::ids::DeviceId;
    use huddle_core::retention::RetentionSecs;
    use huddle_core::wire::{Person, Role};

    const ME: UserId = UserId::from_bytes([1; 16]);
    const ANN: UserId = UserId::from_bytes([2; 16]);

    fn directory() -> Directory {
        Directory {
            people: vec![Person {
                user: ANN,
                display_name: "Ann".into(),
                role: Role::Staff,
                devices: vec![],
            }],
        }
    }

    fn record(kind: GroupKind, name: &str, peer: Option<UserId>) -> ConversationRecord {
        ConversationRecord {
            group: GroupId::from_bytes([9; 16]),
            kind,
            retention: RetentionSecs::DAY,
            name: name.into(),
            peer,
            members: vec![ME],
            unread: 2,
            created_at: UnixMillis(100),
            ended: false,
        }
    }

    fn message(sender: UserId, at: u64, text: &str) -> MessageRecord {
        MessageRecord {
            group: GroupId::from_bytes([9; 16]),
            client_msg: ClientMessageId::from_bytes([at as u8; 16]),
            sender,
            sender_device: DeviceId::from_bytes([0; 16]),
            sent_at: UnixMillis(at),
            expires_at: UnixMillis(at + 1000),
            body: MessageBody::Text(text.into()),
        }
    }

    const VIEWER: Viewer = Viewer {
        me: ME,
        administrator: false,
        this_year: 2026,
    };

    fn shown(message: MessageRecord) -> ShownMessage {
        let delivery = if message.sender == ME {
            Delivery::Sent
        } else {
            Delivery::Received
        };
        ShownMessage {
            message,
            delivery,
            shift: None,
            broadcast: None,
            reach: None,
        }
    }

    #[test]
    fn one_to_one_conversations_are_named_after_the_other_person() {
        let direct = record(GroupKind::Direct, "", Some(ANN));
        assert_eq!(title(&direct, &directory()), "Ann");
        let unknown = record(GroupKind::Direct, "", Some(UserId::from_bytes([3; 16])));
        assert_eq!(title(&unknown, &directory()), "A colleague");
        assert_eq!(
            title(&record(GroupKind::Social, "Tea", None), &directory()),
            "Tea"
        );
    }

    #[test]
    fn previews_name_the_sender_and_keep_to_one_line() {
        let group = record(GroupKind::Operational, "Rota", None);
        let summary = summarise(
            &group,
            Some(&message(ANN, 500, "Can anyone\ncover Sunday?")),
            &directory(),
            ME,
        );
        assert_eq!(summary.preview.as_deref(), Some("Ann: Can anyone…"));
        assert_eq!(summary.last_at, UnixMillis(500));
        let own = summarise(&group, Some(&message(ME, 600, "I can")), &directory(), ME);
        assert_eq!(own.preview.as_deref(), Some("You: I can"));
        let empty = summarise(&group, None, &directory(), ME);
        assert_eq!((empty.preview, empty.last_at), (None, UnixMillis(100)));
    }

    #[test]
    fn the_list_is_newest_first() {
        let group = record(GroupKind::Operational, "Rota", None);
        let mut list = vec![
            summarise(&group, Some(&message(ANN, 1, "old")), &directory(), ME),
            summarise(&group, Some(&message(ANN, 3, "new")), &directory(), ME),
            summarise(&group, Some(&message(ANN, 2, "mid")), &directory(), ME),
        ];
        sort_newest_first(&mut list);
        let order: Vec<u64> = list.iter().map(|s| s.last_at.0).collect();
        assert_eq!(order, vec![3, 2, 1]);
    }

    #[test]
    fn messages_read_in_the_order_written_with_their_senders() {
        let views = message_views(
            &[
                shown(message(ME, 10, "first")),
                shown(message(ANN, 20, "second")),
            ],
            &directory(),
            VIEWER,
        );
        assert_eq!(views[0].text, "first");
        assert!(views[0].own);
        assert_eq!(views[1].sender_name, "Ann");
        assert_eq!(delivery_label(&views[0].delivery), "Sent");
    }

    #[test]
    fn a_removed_message_shows_who_removed_it_and_offers_nothing_more() {
        let mut recorded = message(ANN, 10, "gone");
        recorded.body = MessageBody::Removed {
            by: ME,
            at: UnixMillis(70),
            recorded_in: "Nourish".into(),
        };
        let mut deleted = message(ANN, 20, "gone too");
        deleted.body = MessageBody::Removed {
            by: ANN,
            at: UnixMillis(80),
            recorded_in: String::new(),
        };
        let mut mine = message(ME, 30, "mine");
        mine.body = MessageBody::Removed {
            by: ME,
            at: UnixMillis(90),
            recorded_in: String::new(),
        };
        let views = message_views(
            &[shown(recorded), shown(deleted), shown(mine)],
            &directory(),
            VIEWER,
        );
        let stubs: Vec<_> = views.iter().map(|v| v.removed.clone()).collect();
        assert_eq!(
            stubs,
            vec![
                Some((
                    "Recorded in the care record (Nourish) by you".to_owned(),
                    UnixMillis(70)
                )),
                Some(("Ann deleted this message".to_owned(), UnixMillis(80))),
                Some(("You deleted this message".to_owned(), UnixMillis(90))),
            ]
        );
        for view in &views {
            assert!(!view.text.contains("gone"));
            assert_eq!(removal_actions(view, GroupKind::Clinical), (false, false));
        }
    }

    #[test]
    fn messages_offer_recording_in_clinical_groups_and_deleting_ones_own_once_sent() {
        let views = message_views(
            &[
                shown(message(ANN, 10, "theirs")),
                shown(message(ME, 20, "mine")),
            ],
            &directory(),
            VIEWER,
        );
        assert_eq!(
            removal_actions(&views[0], GroupKind::Clinical),
            (true, false)
        );
        assert_eq!(
            removal_actions(&views[1], GroupKind::Clinical),
            (true, true)
        );
        assert_eq!(
            removal_actions(&views[0], GroupKind::Operational),
            (false, false)
        );
        assert_eq!(removal_actions(&views[1], GroupKind::Social), (false, true));
        let mut waiting = views[1].clone();
        waiting.delivery = Delivery::Waiting;
        assert_eq!(
            removal_actions(&waiting, GroupKind::Clinical),
            (false, false)
        );
    }

    #[test]
    fn what_the_screens_hold_never_prints_its_content() {
        let secret = "NHS 943 476 5919 in bed 4";
        let views = message_views(&[shown(message(ANN, 10, secret))], &directory(), VIEWER);
        let group = record(GroupKind::Operational, "Rota", None);
        let summary = summarise(&group, Some(&message(ANN, 10, secret)), &directory(), ME);
        for printed in [format!("{:?}", views[0]), format!("{summary:?}")] {
            assert!(
                !printed.contains("943") && !printed.contains("bed"),
                "{printed}"
            );
        }
    }

    #[test]
    fn where_a_group_was_repaired_reads_as_a_line_about_it_not_a_message() {
        let mut repaired = message(ANN, 30, "");
        repaired.body = MessageBody::Repaired;
        let views = message_views(&[shown(repaired.clone())], &directory(), VIEWER);
        assert!(views[0].notice);
        assert_eq!(
            format!("{} {}", views[0].sender_name, views[0].text),
            "Ann repaired this group. Messages sent while it was stopped could not be read on this phone."
        );
        let group = record(GroupKind::Operational, "Night shift", None);
        let summary = summarise(&group, Some(&repaired), &directory(), ME);
        assert!(summary
            .preview
            .is_some_and(|p| p.starts_with("Ann repaired this group. ")));
        assert!(!message_views(&[shown(message(ANN, 1, "hi"))], &directory(), VIEWER)[0].notice);
    }

    #[test]
    fn the_composer_warns_about_patient_details_in_plain_words() {
        assert_eq!(patient_data_warning("Shift swap on Sunday?", 2026), None);
        let warning =
            patient_data_warning("Mrs B, NHS 943 476 5919, DOB 03/04/1941", 2026).unwrap();
        assert!(
            warning.contains("an NHS number and a date of birth"),
            "{warning}"
        );
    }

    #[test]
    fn messages_this_version_cannot_show_say_so() {
        assert_eq!(
            body_text(&MessageBody::NewerKind),
            "Update Huddle to see this message."
        );
        assert_eq!(
            body_text(&MessageBody::Unreadable),
            "This message could not be read."
        );
    }
}
