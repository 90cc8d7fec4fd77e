//! What the app keeps on the phone, as plain Rust records: who this device is, its conversations, its messages and its outbox.
//!
//! The platform layer seals each record with AES-256-GCM before it reaches
//! IndexedDB; nothing here is ever stored in the clear.

use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::sync::OutboxItem;
use huddle_core::wire::{GroupSpec, Person};
use serde::{Deserialize, Serialize};

/// Who this phone is, once it has joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub org: OrgId,
    pub org_name: String,
    pub user: UserId,
    pub device: DeviceId,
    pub display_name: String,
    pub administrator: bool,
    /// Whether this device has given the relay its first key packages.
    pub key_packages_published: bool,
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

/// Where one of this device's own messages stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Delivery {
    /// Received from someone else.
    Received,
    /// Saved on this phone; not encrypted yet (the group is changing).
    Waiting,
    /// Encrypted and queued; no connection yet.
    Queued,
    /// Sent; the relay has not confirmed it.
    Sending,
    /// The relay has stored it.
    Sent,
    /// The relay refused it; the reason is in words.
    Failed(String),
}

/// One message, kept until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub group: GroupId,
    pub client_msg: ClientMessageId,
    pub sender: UserId,
    pub sender_device: DeviceId,
    pub sent_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub text: String,
    pub delivery: Delivery,
}

impl MessageRecord {
    /// A message this device's person has just written, not yet encrypted.
    pub fn written(
        session: &Session,
        group: GroupId,
        client_msg: ClientMessageId,
        now: UnixMillis,
        retention: RetentionSecs,
        text: String,
    ) -> Self {
        MessageRecord {
            group,
            client_msg,
            sender: session.user,
            sender_device: session.device,
            sent_at: now,
            expires_at: now.saturating_add(retention),
            text,
            delivery: Delivery::Waiting,
        }
    }

    pub fn is_own(&self) -> bool {
        self.delivery != Delivery::Received
    }
}

/// What an outbox item does, kept so that it can be made again in a later
/// epoch when the relay says the group has moved on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// A text message: the envelope to seal and its expiry.
    Text {
        envelope: Vec<u8>,
        expires_at: UnixMillis,
    },
    /// Adds devices (the first commit of a new group carries `create`).
    Add {
        key_packages: Vec<Vec<u8>>,
        create: Option<GroupSpec>,
    },
    Remove {
        devices: Vec<DeviceId>,
    },
}

/// One outbox entry: the submission and what it was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The order the user made them in (outbox keys sort by it).
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
        self.people
            .iter()
            .find(|p| p.user == user)
            .map(|p| p.display_name.as_str())
    }

    pub fn person(&self, user: UserId) -> Option<&Person> {
        self.people.iter().find(|p| p.user == user)
    }
}
