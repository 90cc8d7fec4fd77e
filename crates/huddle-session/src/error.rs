//! Why something the person asked for did not happen, as types: the app turns each into a sentence she can act on.

use crate::platform::{CacheError, CryptoError};
use huddle_core::envelope::EnvelopeError;
use huddle_core::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The phone has not finished starting (the crypto worker or the
    /// session is not running yet).
    #[error("the phone is still starting")]
    Starting,
    /// The session stopped (the page is going away, or the phone was wiped).
    #[error("the session has stopped")]
    Stopped,
    #[error("that conversation is not on this phone")]
    ConversationGone,
    #[error("this device is no longer in that conversation")]
    NotInConversation,
    /// What was written cannot be sent as it is.
    #[error("the message cannot be sent: {0}")]
    Invalid(EnvelopeError),
    #[error("the phone's storage failed: {0}")]
    Storage(#[from] CacheError),
    #[error("the crypto worker failed: {0}")]
    Crypto(#[from] CryptoError),
    /// There is no connection to ask the relay.
    #[error("offline")]
    Offline,
    /// The relay did not answer in time.
    #[error("the relay did not answer")]
    NoAnswer,
    /// The connection dropped before the answer came.
    #[error("the connection dropped")]
    Dropped,
    /// The relay refused, with its reason in words.
    #[error("the relay refused: {0}")]
    Refused(String),
    /// The relay answered with a frame that does not answer the question.
    #[error("the relay answered something unexpected")]
    UnexpectedAnswer,
    /// Nobody to add: none of these people has a phone set up yet.
    #[error("none of these people can be added yet")]
    NotSetUpYet(Vec<UserId>),
    /// None of these people is in the group.
    #[error("nobody to remove")]
    NotMembers,
    /// Shift offers belong in operational groups (a group's type decides).
    #[error("shifts are offered in operational groups")]
    NoShiftsHere,
    /// Only urgent broadcasts are acknowledged, in emergency broadcast groups.
    #[error("only urgent broadcasts are acknowledged")]
    NotABroadcast,
    /// Only administrators write in an emergency broadcast group; the
    /// others acknowledge.
    #[error("only administrators write in this group")]
    AdministratorsOnly,
    /// The message to remove is not on this phone (expired, or removed
    /// already), or is not a message that can be removed.
    #[error("that message is no longer here")]
    NothingToRemove,
    /// "I can't make my shift" goes to managers one to one, never to a group.
    #[error("that goes to a manager in a one-to-one conversation")]
    NotOneToOne,
    /// Nobody to tell: the organisation has no other administrator with a
    /// phone set up.
    #[error("there is no manager to tell")]
    NoManagers,
    /// The message to remove has not reached the relay yet.
    #[error("that message has not been sent yet")]
    NotSentYet,
}
