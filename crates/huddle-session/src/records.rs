//! What a phone keeps, as plain records: who it is, its conversations, their messages, its outbox and the organisation's directory.
//!
//! The platform seals each record with AES-256-GCM before it reaches
//! storage; nothing here is ever stored in the clear. Records are encoded
//! with postcard, field by field, so their layout is frozen by the vectors
//! in `records/tests.rs`: a later version must still read what this one
//! wrote.

use huddle_core::crypto_worker::Plaintext;
use huddle_core::envelope::EnvelopeBody;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::removal::Removal;
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::shift::{MessageRef, Shift, ShiftUpdate};
use huddle_core::sync::{Failure, OutboxItem, OutboxState};
use huddle_core::wire::{ClaimedKeyPackage, GroupSpec, Person};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who this phone is, once it has joined its organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub org: OrgId,
    pub org_name: String,
    pub user: UserId,
    pub device: DeviceId,
    pub display_name: String,
    pub administrator: bool,
    /// Whether this device has given the relay its first key packages.
    pub key_packages_published: bool,
}

/// What the phone keeps of time and of the relay between openings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// The latest time this phone has known, by its own clock or the
    /// relay's, whichever was later. Expiry never goes back before it, so a
    /// clock turned back while the app was closed keeps nothing longer.
    pub latest_seen: UnixMillis,
    /// When this phone was last connected to the relay.
    pub last_reached_relay: UnixMillis,
    /// The organisation's longest time away from the relay, after which the
    /// phone wipes itself when it opens (0: never).
    pub max_offline_millis: u64,
}

impl Standing {
    /// Whether a phone that knows `now` has been away from the relay for
    /// longer than its organisation allows.
    pub fn away_too_long(&self, now: UnixMillis) -> bool {
        self.max_offline_millis > 0
            && now.0.saturating_sub(self.last_reached_relay.0) > self.max_offline_millis
    }
}

/// One conversation (an MLS group) as this device knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub group: GroupId,
    pub kind: GroupKind,
    pub retention: RetentionSecs,
    /// The group's name (for one-to-one conversations, see `peer`).
    pub name: String,
    /// For a one-to-one conversation: the other person.
    pub peer: Option<UserId>,
    /// The people in it, as of the last change this device processed.
    pub members: Vec<UserId>,
    pub unread: u32,
    pub created_at: UnixMillis,
    /// This device was removed: nothing new arrives, nothing can be sent.
    pub ended: bool,
}

impl ConversationRecord {
    pub fn spec(&self) -> GroupSpec {
        GroupSpec {
            kind: self.kind,
            retention: self.retention,
        }
    }
}

/// One message, kept until it expires. Whether one of this phone's own
/// messages has reached the relay is not kept here but in the outbox
/// ([`delivery_of`]): one record of it, not two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub group: GroupId,
    pub client_msg: ClientMessageId,
    pub sender: UserId,
    pub sender_device: DeviceId,
    pub sent_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub body: MessageBody,
}

/// What a message says.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    Text(String),
    /// A kind of message that a newer version of Huddle sends.
    NewerKind,
    /// It was opened, but what it holds is damaged.
    Unreadable,
    /// Not a message: where the group was repaired (its encryption
    /// restarted by the sender), written by this phone.
    Repaired,
    /// A shift someone needs covered, shown as a card.
    ShiftOffer(Shift),
    /// An answer to a shift offer: not shown by itself, but folded into its
    /// offer's card. `logged_at` is its place in the group's log (for one
    /// of this phone's own, once the relay has stored it; `None` before),
    /// which orders the answers the same way on every phone.
    ShiftUpdate {
        update: ShiftUpdate,
        logged_at: Option<u64>,
        /// Its sender's certificate made her an administrator when it was
        /// opened (for one's own, this phone's enrolment).
        by_administrator: bool,
    },
    /// A member's acknowledgement of the urgent broadcast it names: not
    /// shown by itself, but counted on the broadcast.
    Acknowledgement(MessageRef),
    /// A mark that takes the content of the message it names off every
    /// phone: not shown by itself, but replaces that message's content.
    Removal(Removal),
    /// "I can't make my shift", told to a manager one to one: shown as a
    /// card she can offer the shift from.
    CannotWork(Shift),
    /// Where a message was, after its content was deleted everywhere: who
    /// removed it, when (her phone's clock), and the care record system it
    /// was written into (empty when its author deleted it).
    Removed {
        by: UserId,
        at: UnixMillis,
        recorded_in: String,
    },
}

impl MessageBody {
    /// What a phone shows for an envelope's body: the same mapping for what
    /// it sends and what it receives, so that a new kind of message is
    /// added here once.
    pub fn of(body: &EnvelopeBody) -> MessageBody {
        match body {
            EnvelopeBody::Text { text } => MessageBody::Text(text.clone()),
            EnvelopeBody::ShiftOffer(shift) => MessageBody::ShiftOffer(shift.clone()),
            EnvelopeBody::ShiftUpdate(update) => MessageBody::ShiftUpdate {
                update: *update,
                logged_at: None,
                by_administrator: false,
            },
            EnvelopeBody::Acknowledgement(broadcast) => MessageBody::Acknowledgement(*broadcast),
            EnvelopeBody::Removal(removal) => MessageBody::Removal(removal.clone()),
            EnvelopeBody::CannotWork(shift) => MessageBody::CannotWork(shift.clone()),
            // Never kept as a message: the driver folds a receipt into the
            // group's `ReceiptsRecord` before anything is stored.
            EnvelopeBody::ReadReceipt(_) | EnvelopeBody::Unsupported { .. } => {
                MessageBody::NewerKind
            }
        }
    }

    /// What a phone shows for an envelope stored at `seq` of its group's
    /// log, sent by an administrator or not (as her certificate says).
    pub fn logged(body: &EnvelopeBody, seq: u64, by_administrator: bool) -> MessageBody {
        match MessageBody::of(body) {
            MessageBody::ShiftUpdate { update, .. } => MessageBody::ShiftUpdate {
                update,
                logged_at: Some(seq),
                by_administrator,
            },
            other => other,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            MessageBody::Text(text) => Some(text),
            MessageBody::NewerKind
            | MessageBody::Unreadable
            | MessageBody::Repaired
            | MessageBody::ShiftOffer(_)
            | MessageBody::ShiftUpdate { .. }
            | MessageBody::Acknowledgement(_)
            | MessageBody::Removal(_)
            | MessageBody::CannotWork(_)
            | MessageBody::Removed { .. } => None,
        }
    }

    /// Whether it is a message someone wrote for others to read: not an
    /// answer, a line about the group, or what is left of a removed one.
    /// These are what read receipts count and what a removal may replace.
    pub fn is_to_read(&self) -> bool {
        matches!(
            self,
            MessageBody::Text(_)
                | MessageBody::ShiftOffer(_)
                | MessageBody::CannotWork(_)
                | MessageBody::NewerKind
        )
    }

    /// Whether this answers another message (a shift answer, an
    /// acknowledgement) rather than being one to read: answers change the
    /// message they name, count as nothing unread, and are not previews.
    pub fn is_answer(&self) -> bool {
        matches!(
            self,
            MessageBody::ShiftUpdate { .. }
                | MessageBody::Acknowledgement(_)
                | MessageBody::Removal(_)
        )
    }
}

/// Message text is content: it never reaches a log, so it never prints.
impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageBody::Text(text) => write!(f, "Text({} characters)", text.chars().count()),
            MessageBody::NewerKind => f.write_str("NewerKind"),
            MessageBody::Unreadable => f.write_str("Unreadable"),
            MessageBody::Repaired => f.write_str("Repaired"),
            MessageBody::ShiftOffer(shift) => write!(f, "ShiftOffer({shift:?})"),
            MessageBody::ShiftUpdate {
                update, logged_at, ..
            } => {
                write!(f, "ShiftUpdate({:?} at {logged_at:?})", update.action)
            }
            MessageBody::Acknowledgement(_) => f.write_str("Acknowledgement"),
            MessageBody::Removal(removal) => write!(f, "{removal:?}"),
            MessageBody::CannotWork(shift) => write!(f, "CannotWork({shift:?})"),
            MessageBody::Removed { by, at, .. } => write!(f, "Removed(by {by:?} at {at:?})"),
        }
    }
}

/// What an outbox item was made from, kept so that it can be made again in
/// a later epoch when the group has moved on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// A message: the envelope to seal, encoded once when it was written.
    Text {
        envelope: Plaintext,
    },
    /// Adds devices (the first commit of a new group carries `create`).
    Add {
        /// As the relay handed them out: each names its person and device,
        /// which the crypto worker checks against the certificate.
        key_packages: Vec<ClaimedKeyPackage>,
        create: Option<GroupSpec>,
    },
    Remove {
        devices: Vec<DeviceId>,
    },
    /// A restart of a stopped group's encryption (never made again as it
    /// was: a refused one is dropped and a new one made later).
    Restart,
}

/// One outbox entry: the engine's item and what it was made from. It is the
/// only record of where this phone's own message stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The order things were written in (the outbox is replayed in it).
    pub order: u64,
    pub item: OutboxItem,
    pub intent: Intent,
}

/// The organisation's people, as the relay last told this device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub people: Vec<Person>,
}

impl Directory {
    pub fn name_of(&self, user: UserId) -> Option<&str> {
        self.person(user).map(|p| p.display_name.as_str())
    }

    pub fn person(&self, user: UserId) -> Option<&Person> {
        self.people.iter().find(|p| p.user == user)
    }
}

/// Where a message stands, as the conversation shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Written by someone else.
    Received,
    /// Saved on this phone; waiting to be encrypted or for a connection.
    Waiting,
    /// Sent; the relay has not confirmed it yet.
    Sending,
    /// The relay has stored it.
    Sent,
    /// Not sent; the person can try again.
    Failed(Failure),
}

/// Where `message` stands, given this phone's device and its outbox.
pub fn delivery_of(
    message: &MessageRecord,
    device: DeviceId,
    outbox: Option<&OutboxState>,
) -> Delivery {
    if message.sender_device != device {
        return Delivery::Received;
    }
    match outbox {
        None | Some(OutboxState::Sent { .. }) => Delivery::Sent,
        Some(OutboxState::Queued) => Delivery::Waiting,
        Some(OutboxState::Sending) => Delivery::Sending,
        Some(OutboxState::Failed { reason }) => Delivery::Failed(reason.clone()),
    }
}

#[cfg(test)]
mod tests;
