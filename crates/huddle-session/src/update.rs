//! What the session tells the screens: typed updates that the app applies to what it shows, with no wording (the app chooses the words).

use crate::platform::{CacheError, CryptoError};
use crate::records::{ConversationRecord, Delivery, Directory, Enrolment, MessageRecord};
use huddle_core::attestation::Identities;
use huddle_core::ids::{GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::Refusal;

/// One change to show.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// Who this phone is (after loading, and when it changes).
    Enrolment(Enrolment),
    Directory(Directory),
    /// Colleagues' checked keys and who verified them in person.
    Identities(Identities),
    /// Every conversation, with its newest message still on the phone, in
    /// no particular order (the app sorts, since titles are its words).
    Conversations(Vec<ConversationEntry>),
    /// The open conversation's newest messages, oldest first; `more` when
    /// there are earlier ones than the page shows.
    Messages {
        group: GroupId,
        messages: Vec<ShownMessage>,
        more: bool,
    },
    Connection(ConnectionStatus),
    /// Something the person should know about, that did not come from an
    /// action of hers (those get a `SessionError` back).
    Problem(Problem),
    /// The relay refused this phone; everything on it was wiped.
    SignedOut(SignOut),
    /// The relay does not recognise this phone, without saying it was
    /// signed out (a relay restored from an older backup, say). Nothing is
    /// wiped until the person chooses to ([`crate::Phone::wipe_now`]);
    /// meanwhile the phone stops connecting and keeps `unsent` messages
    /// it could not send.
    NotRecognised {
        unsent: usize,
    },
    /// The time, for "disappears in" labels; sent with every sweep.
    Tick(UnixMillis),
    /// What the organisation asks of its phones (when to lock), told at
    /// every sign-in.
    Policy(huddle_core::wire::PhonePolicy),
    /// A group that needed repairing was repaired: the problem said about
    /// it no longer holds.
    Repaired {
        group: GroupId,
    },
}

/// A conversation in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationEntry {
    pub record: ConversationRecord,
    pub latest: Option<MessageRecord>,
    /// The group stopped at a change this phone could not open.
    pub needs_repair: bool,
    /// In a broadcast group: the broadcasts this phone's person still has
    /// to acknowledge (pinned above the list until she does), and, for an
    /// administrator, those someone has not acknowledged yet (she is told
    /// when one is not getting through). Newest first.
    pub broadcasts: Vec<PinnedBroadcast>,
}

/// A broadcast the conversation list shows above the conversations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedBroadcast {
    pub message: MessageRecord,
    pub card: crate::broadcasts::BroadcastCard,
}

/// A message as the conversation shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownMessage {
    pub message: MessageRecord,
    pub delivery: Delivery,
    /// For a shift offer: where it stands.
    pub shift: Option<crate::shifts::ShiftCard>,
    /// For an urgent broadcast: who has acknowledged it.
    pub broadcast: Option<crate::broadcasts::BroadcastCard>,
    /// For one of this phone's own messages once the relay has it (and,
    /// for an administrator, every broadcast), in a group with read
    /// receipts: how far it has got with each of the other members.
    pub reach: Option<Vec<(UserId, huddle_core::receipt::Reached)>>,
}

/// The connection, as the offline banner shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// Authenticated and caught up.
    pub live: bool,
    /// Messages written here that the relay has not stored yet.
    pub waiting: usize,
}

/// Something that went wrong in the background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// These people could not be added: their phones have not finished
    /// setting up (no key package on the relay yet).
    NotSetUpYet(Vec<UserId>),
    /// The phone's storage failed.
    Storage(CacheError),
    /// The crypto worker failed.
    Crypto(CryptoError),
    /// Something arrived in a group that did not come from who it claims
    /// to (see `Refusal`): it was not shown, and the relay's audit log was
    /// told.
    Refused { group: GroupId, refusal: Refusal },
    /// A change to this group could not be opened: the phone stopped
    /// reading and sending in it (what is written waits) until it is
    /// repaired.
    NeedsRepair { group: GroupId },
    /// The relay sent frames this version cannot read: it runs a newer
    /// Huddle. Reloading the page updates the app; nothing is lost.
    RelayNewer,
}

/// Why the phone was signed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignOut {
    /// An administrator revoked this device or its person (or the person
    /// did, from another of her phones).
    Revoked,
    /// The person signed this phone out herself.
    SignedOutHere,
    /// The relay does not know this device (or its key did not verify).
    NotRecognised,
    /// The phone had not reached the relay for longer than the
    /// organisation allows, and wiped itself when it was opened.
    AwayTooLong,
    /// Ten wrong passcodes: the relay destroyed this phone's share.
    WrongPasscodes,
    /// The person had forgotten her passcode and wiped the phone herself.
    ForgottenPasscode,
}
