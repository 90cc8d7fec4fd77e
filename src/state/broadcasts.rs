//! An urgent broadcast in words: who sent it, where the reader stands with it, who has acknowledged it and who has not, and how urgent it has become.

use crate::state::time::elapsed_label;
use huddle_core::broadcast::{Escalation, Urgency};
use huddle_core::ids::{GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::shift::MessageRef;
use huddle_session::broadcasts::{BroadcastCard, MyPart};
use huddle_session::Directory;

/// A broadcast as its card shows it. Its text is content and names are
/// about people: neither prints (see the `Debug` below).
#[derive(Clone, PartialEq, Eq)]
pub struct BroadcastView {
    pub group: GroupId,
    pub broadcast: MessageRef,
    /// "Mia Patel", or "You".
    pub sender_name: String,
    pub text: String,
    pub sent_at: UnixMillis,
    pub mine: MyPart,
    /// Whether the reader sees who has acknowledged it: its sender and the
    /// group's administrators.
    pub sees_who: bool,
    /// Who has acknowledged it and when, earliest first.
    pub acknowledged: Vec<(String, UnixMillis)>,
    /// Who has not yet.
    pub waiting: Vec<String>,
    /// For whoever follows its reach: why each of `waiting` has not yet, in
    /// the same order ("read it, not acknowledged yet").
    pub waiting_why: Vec<&'static str>,
}

impl std::fmt::Debug for BroadcastView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastView")
            .field("group", &self.group)
            .field("sent_at", &self.sent_at)
            .field("mine", &self.mine)
            .field("acknowledged", &self.acknowledged.len())
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

/// The card for `broadcast` (a message of `sender`, saying `text`), as
/// `me` reads it.
#[allow(clippy::too_many_arguments)]
pub fn broadcast_view(
    group: GroupId,
    broadcast: MessageRef,
    text: &str,
    sent_at: UnixMillis,
    card: &BroadcastCard,
    reach: Option<&[(UserId, huddle_core::receipt::Reached)]>,
    me: UserId,
    administrator: bool,
    directory: &Directory,
) -> BroadcastView {
    let name = |user: UserId| {
        if user == me {
            "You".to_owned()
        } else {
            directory.name_of(user).unwrap_or("Someone").to_owned()
        }
    };
    let mut waiting: Vec<(String, &'static str)> = card
        .waiting
        .iter()
        .map(|who| {
            let reached =
                reach.and_then(|reach| reach.iter().find(|(user, _)| user == who).map(|(_, r)| *r));
            let why = crate::state::receipts::not_acknowledged_because(reached);
            (name(*who), why)
        })
        .collect();
    waiting.sort();
    BroadcastView {
        group,
        broadcast,
        sender_name: name(broadcast.author),
        text: text.to_owned(),
        sent_at,
        mine: card.mine,
        sees_who: card.mine == MyPart::Sender || administrator,
        acknowledged: card
            .acknowledged
            .iter()
            .map(|(who, at)| (name(*who), *at))
            .collect(),
        waiting: waiting.iter().map(|(name, _)| name.clone()).collect(),
        waiting_why: waiting.iter().map(|(_, why)| *why).collect(),
    }
}

impl BroadcastView {
    /// "Acknowledged by 1 of 2."
    pub fn count(&self) -> String {
        let total = self.acknowledged.len() + self.waiting.len();
        match (self.acknowledged.len(), total) {
            (_, 0) => "Nobody else is in this group.".to_owned(),
            (done, total) if done == total => format!("Acknowledged by all {total}."),
            (done, total) => format!("Acknowledged by {done} of {total}."),
        }
    }

    /// How urgent it is at `now`: rising only while someone has yet to do
    /// something about it (the reader, or for its sender and the
    /// administrators, anyone).
    pub fn urgency(&self, escalation: Escalation, now: UnixMillis) -> Option<Urgency> {
        let outstanding = if self.sees_who {
            !self.waiting.is_empty()
        } else {
            self.mine.to_do()
        };
        outstanding.then(|| escalation.urgency(self.sent_at, now))
    }

    /// Who has not acknowledged yet, by name, for the sender and the
    /// administrators: "Not yet: Ben Okafor", "Not yet: A, B, C and 4 more".
    pub fn not_yet(&self) -> Option<String> {
        const NAMED: usize = 3;
        if !self.sees_who || self.waiting.is_empty() {
            return None;
        }
        let named = self.waiting.iter().take(NAMED).cloned().collect::<Vec<_>>();
        let more = self.waiting.len().saturating_sub(NAMED);
        Some(match (named.as_slice(), more) {
            ([one], 0) => format!("Not yet: {one}"),
            ([rest @ .., last], 0) => format!("Not yet: {} and {last}", rest.join(", ")),
            (_, more) => format!("Not yet: {} and {more} more", named.join(", ")),
        })
    }

    /// The card's first line: "Urgent from Mia Patel", or, for its sender,
    /// "Your urgent message".
    pub fn label(&self) -> String {
        if self.mine == MyPart::Sender {
            "Your urgent message".to_owned()
        } else {
            format!("Urgent from {}", self.sender_name)
        }
    }

    /// What the reader's own part says, under the message.
    pub fn my_part(&self) -> Option<&'static str> {
        match self.mine {
            MyPart::Sender => None,
            MyPart::ToAcknowledge => None,
            MyPart::Sending => Some("Acknowledging…"),
            MyPart::Failed => {
                Some("Your acknowledgement was not sent. Tap Acknowledge to try again.")
            }
            MyPart::Acknowledged => Some("You acknowledged this."),
        }
    }
}

/// A broadcast pinned above the conversation list.
#[derive(Clone, PartialEq, Eq)]
pub struct PinnedView {
    /// The broadcast group's name.
    pub group_title: String,
    pub view: BroadcastView,
}

impl std::fmt::Debug for PinnedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedView")
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

/// The heading of a pinned broadcast at `now`: what the reader has to do,
/// louder as time goes by.
pub fn pinned_heading(pin: &PinnedView, escalation: Escalation, now: UnixMillis) -> String {
    let view = &pin.view;
    let waited = elapsed_label(now.0.saturating_sub(view.sent_at.0));
    match (view.mine.to_do(), view.urgency(escalation, now)) {
        (true, Some(Urgency::Waiting) | None) => {
            format!("Urgent from {}: please acknowledge", view.sender_name)
        }
        (true, Some(_)) => format!(
            "Reminder: {} asked you to acknowledge this {waited} ago",
            view.sender_name
        ),
        (false, Some(Urgency::NotGettingThrough)) => {
            format!(
                "Not getting through: {} not acknowledged after {waited}",
                people(view.waiting.len())
            )
        }
        (false, _) => format!(
            "Waiting for acknowledgement: {} not yet",
            people(view.waiting.len())
        ),
    }
}

/// What a screen reader says, once, when a pinned broadcast becomes
/// urgent: a sentence that does not change as the minutes go by.
pub fn pinned_alert(pin: &PinnedView, urgency: Urgency) -> Option<String> {
    let view = &pin.view;
    match urgency {
        Urgency::Waiting => None,
        Urgency::Reminder if view.mine.to_do() => Some(format!(
            "Reminder: please acknowledge the urgent message from {} in {}.",
            view.sender_name, pin.group_title
        )),
        Urgency::Reminder => None,
        Urgency::NotGettingThrough => Some(format!(
            "Not getting through: an urgent message in {} has not been acknowledged by everyone.",
            pin.group_title
        )),
    }
}

fn people(count: usize) -> String {
    match count {
        1 => "1 person has".to_owned(),
        n => format!("{n} people have"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::ids::ClientMessageId;
    use huddle_core::wire::{Person, Role};

    const MIA: UserId = UserId::from_bytes([1; 16]);
    const BEN: UserId = UserId::from_bytes([2; 16]);
    const CARA: UserId = UserId::from_bytes([3; 16]);
    const SENT: UnixMillis = UnixMillis(1_795_000_000_000);
    const ESCALATION: Escalation = Escalation {
        remind_after_millis: 10 * 60_000,
        alert_after_millis: 30 * 60_000,
    };

    fn directory() -> Directory {
        let person = |user, name: &str| Person {
            user,
            display_name: name.into(),
            role: Role::Staff,
            devices: vec![],
        };
        Directory {
            people: vec![
                person(MIA, "Mia Patel"),
                person(BEN, "Ben Okafor"),
                person(CARA, "Cara Jones"),
            ],
        }
    }

    fn pin(me: UserId, administrator: bool, mine: MyPart) -> PinnedView {
        let card = BroadcastCard {
            acknowledged: vec![(CARA, UnixMillis(SENT.0 + 60_000))],
            waiting: vec![BEN],
            mine,
        };
        let broadcast = MessageRef {
            author: MIA,
            client_msg: ClientMessageId::from_bytes([9; 16]),
        };
        PinnedView {
            group_title: "Fire and alarms".into(),
            view: broadcast_view(
                GroupId::from_bytes([4; 16]),
                broadcast,
                "Fire doors on Rowan are jammed",
                SENT,
                &card,
                None,
                me,
                administrator,
                &directory(),
            ),
        }
    }

    fn at(minutes: u64) -> UnixMillis {
        UnixMillis(SENT.0 + minutes * 60_000)
    }

    #[test]
    fn the_reader_is_asked_then_reminded_and_never_shown_who_else_answered() {
        let ben = pin(BEN, false, MyPart::ToAcknowledge);
        assert!(!ben.view.sees_who);
        assert_eq!(
            ben.view.not_yet(),
            None,
            "staff are not told who else has not"
        );
        assert_eq!(ben.view.label(), "Urgent from Mia Patel");
        assert_eq!(
            pinned_heading(&ben, ESCALATION, at(1)),
            "Urgent from Mia Patel: please acknowledge"
        );
        assert_eq!(
            pinned_heading(&ben, ESCALATION, at(12)),
            "Reminder: Mia Patel asked you to acknowledge this 12 minutes ago"
        );
        // Acknowledged: nothing more is asked of her.
        let done = pin(BEN, false, MyPart::Acknowledged);
        assert_eq!(done.view.urgency(ESCALATION, at(40)), None);
        assert_eq!(done.view.my_part(), Some("You acknowledged this."));
    }

    #[test]
    fn the_sender_sees_who_and_is_told_when_it_is_not_getting_through() {
        let mia = pin(MIA, true, MyPart::Sender);
        assert!(mia.view.sees_who);
        assert_eq!(mia.view.sender_name, "You");
        assert_eq!(mia.view.count(), "Acknowledged by 1 of 2.");
        assert_eq!(mia.view.acknowledged[0].0, "Cara Jones");
        assert_eq!(mia.view.waiting, vec!["Ben Okafor".to_owned()]);
        assert_eq!(mia.view.not_yet().as_deref(), Some("Not yet: Ben Okafor"));
        assert_eq!(mia.view.label(), "Your urgent message");
        let mut many = mia.view.clone();
        many.waiting = ["A", "B", "C", "D", "E"].map(str::to_owned).to_vec();
        assert_eq!(
            many.not_yet().as_deref(),
            Some("Not yet: A, B, C and 2 more")
        );
        many.waiting.truncate(2);
        assert_eq!(many.not_yet().as_deref(), Some("Not yet: A and B"));
        assert_eq!(
            pinned_heading(&mia, ESCALATION, at(5)),
            "Waiting for acknowledgement: 1 person has not yet"
        );
        assert_eq!(
            pinned_heading(&mia, ESCALATION, at(31)),
            "Not getting through: 1 person has not acknowledged after 31 minutes"
        );
        assert_eq!(
            mia.view.urgency(ESCALATION, at(31)),
            Some(Urgency::NotGettingThrough)
        );
        // Said once, in words that do not change with the minutes.
        assert_eq!(pinned_alert(&mia, Urgency::Reminder), None);
        assert_eq!(
            pinned_alert(&mia, Urgency::NotGettingThrough).as_deref(),
            Some("Not getting through: an urgent message in Fire and alarms has not been acknowledged by everyone.")
        );
        let ben = pin(BEN, false, MyPart::ToAcknowledge);
        assert_eq!(
            pinned_alert(&ben, Urgency::Reminder).as_deref(),
            Some("Reminder: please acknowledge the urgent message from Mia Patel in Fire and alarms.")
        );
    }

    #[test]
    fn a_broadcast_view_never_prints_its_text_or_names() {
        let printed = format!("{:?}", pin(MIA, true, MyPart::Sender));
        for secret in ["Fire doors", "Ben Okafor", "Cara Jones", "Mia Patel"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
