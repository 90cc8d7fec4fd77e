//! Taking a message's content off every phone and the relay: "recorded in the care record" by a member of a clinical group, or "delete for everyone" by its author.
//!
//! A [`Removal`] is an MLS application message like any other (envelope
//! kind 6). It names the message by its author and id, which every phone
//! checks against what it holds, and by its expiry, which is where every
//! phone files it. On the wire it travels as
//! [`crate::wire::Payload::Removing`], which also names the message's id to
//! the relay so that it can empty the stored ciphertext in the same
//! transaction as it stores the mark (see SECURITY.md).

use crate::ids::UserId;
use crate::retention::{GroupKind, UnixMillis};
use crate::shift::MessageRef;
use serde::{Deserialize, Serialize};

/// The longest name of a care record system ("Nourish", "PCS", "the paper
/// notes in the office"), in bytes of UTF-8.
pub const MAX_RECORD_NAME_BYTES: usize = 60;

/// A message whose content is to be deleted everywhere, and why.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// The message: its author and her phone's id for it.
    pub message: MessageRef,
    /// When the message expires, as every phone holds it.
    pub expires_at: UnixMillis,
    /// The care record system its content was written into; empty when
    /// its author deleted it for everyone.
    pub recorded_in: String,
}

/// Why a removal cannot be sent, or is not honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemovalError {
    #[error("say which care record it was written into")]
    NoRecordSystem,
    #[error("the name of the care record is too long (at most {MAX_RECORD_NAME_BYTES} bytes)")]
    RecordNameTooLong,
    #[error("the name of the care record has characters that cannot be shown as they are")]
    RecordNameNotPlain,
    #[error("only its author can delete a message for everyone")]
    NotTheAuthor,
    #[error("messages are marked as recorded in the care record only in clinical groups")]
    NotClinical,
}

/// What a removal says happened to the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// Written into the care record, then deleted.
    Recorded,
    /// Deleted for everyone by its author.
    Deleted,
}

impl Removal {
    /// A mark that the message was written into `recorded_in`.
    pub fn recorded(
        message: MessageRef,
        expires_at: UnixMillis,
        recorded_in: &str,
    ) -> Result<Removal, RemovalError> {
        let removal = Removal {
            message,
            expires_at,
            recorded_in: recorded_in.trim().to_owned(),
        };
        if removal.recorded_in.is_empty() {
            return Err(RemovalError::NoRecordSystem);
        }
        removal.check()?;
        Ok(removal)
    }

    /// Its author deletes the message for everyone.
    pub fn deleted(message: MessageRef, expires_at: UnixMillis) -> Removal {
        Removal {
            message,
            expires_at,
            recorded_in: String::new(),
        }
    }

    pub fn reason(&self) -> RemovalReason {
        if self.recorded_in.is_empty() {
            RemovalReason::Deleted
        } else {
            RemovalReason::Recorded
        }
    }

    /// Whether an honest phone could have written it.
    pub fn check(&self) -> Result<(), RemovalError> {
        if self.recorded_in.len() > MAX_RECORD_NAME_BYTES {
            return Err(RemovalError::RecordNameTooLong);
        }
        // Every stub quotes it: no spaces round it (a blank name would read
        // as a record), no line breaks or controls, and no characters that
        // reorder the text around it (which could make "by Ben" read as by
        // someone else).
        let plain = self.recorded_in.trim() == self.recorded_in
            && !self
                .recorded_in
                .chars()
                .any(|c| c.is_control() || is_reordering(c));
        if !plain {
            return Err(RemovalError::RecordNameNotPlain);
        }
        Ok(())
    }

    /// Whether `remover` may take this message off everyone's phones in a
    /// group of `kind`: its author always; anyone else only by marking it
    /// recorded in a clinical group. Decided the same way on every phone
    /// (and, as far as it can tell, by the relay).
    pub fn allowed(&self, remover: UserId, kind: GroupKind) -> Result<(), RemovalError> {
        self.check()?;
        if remover == self.message.author {
            return Ok(());
        }
        match self.reason() {
            RemovalReason::Recorded if kind == GroupKind::Clinical => Ok(()),
            RemovalReason::Recorded => Err(RemovalError::NotClinical),
            RemovalReason::Deleted => Err(RemovalError::NotTheAuthor),
        }
    }
}

/// Unicode's marks and embeddings that change the direction of the text
/// around them.
fn is_reordering(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Names the message, never the record's name beyond its length.
impl std::fmt::Debug for Removal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Removal")
            .field("message", &self.message)
            .field("expires_at", &self.expires_at)
            .field("reason", &self.reason())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ClientMessageId;

    fn bens_message() -> MessageRef {
        MessageRef {
            author: UserId::from_bytes([2; 16]),
            client_msg: ClientMessageId::from_bytes([9; 16]),
        }
    }

    #[test]
    fn its_author_deletes_a_message_anywhere_and_nobody_else_does() {
        let ben = UserId::from_bytes([2; 16]);
        let mia = UserId::from_bytes([1; 16]);
        let deleted = Removal::deleted(bens_message(), UnixMillis(5));
        for kind in [
            GroupKind::Social,
            GroupKind::Operational,
            GroupKind::Clinical,
            GroupKind::Direct,
            GroupKind::EmergencyBroadcast,
        ] {
            assert_eq!(deleted.allowed(ben, kind), Ok(()));
            assert_eq!(deleted.allowed(mia, kind), Err(RemovalError::NotTheAuthor));
        }
    }

    #[test]
    fn anyone_in_a_clinical_group_marks_a_message_recorded_and_only_there() {
        let mia = UserId::from_bytes([1; 16]);
        let recorded = Removal::recorded(bens_message(), UnixMillis(5), "  Nourish ").unwrap();
        assert_eq!(recorded.recorded_in, "Nourish");
        assert_eq!(recorded.reason(), RemovalReason::Recorded);
        assert_eq!(recorded.allowed(mia, GroupKind::Clinical), Ok(()));
        for kind in [
            GroupKind::Social,
            GroupKind::Operational,
            GroupKind::Direct,
            GroupKind::EmergencyBroadcast,
        ] {
            assert_eq!(recorded.allowed(mia, kind), Err(RemovalError::NotClinical));
        }
    }

    #[test]
    fn a_mark_names_its_record_system_within_limits() {
        assert_eq!(
            Removal::recorded(bens_message(), UnixMillis(5), "   "),
            Err(RemovalError::NoRecordSystem)
        );
        let long = "x".repeat(MAX_RECORD_NAME_BYTES + 1);
        assert_eq!(
            Removal::recorded(bens_message(), UnixMillis(5), &long),
            Err(RemovalError::RecordNameTooLong)
        );
        let forged = Removal {
            recorded_in: long,
            ..Removal::deleted(bens_message(), UnixMillis(5))
        };
        assert_eq!(
            forged.allowed(UserId::from_bytes([2; 16]), GroupKind::Clinical),
            Err(RemovalError::RecordNameTooLong)
        );
        assert!(!format!("{forged:?}").contains("xxx"));
        for unreadable in ["Nourish\n", "Nou\u{202e}hsir", "PCS\u{0007}"] {
            let sent = Removal::recorded(bens_message(), UnixMillis(5), unreadable);
            let forged = Removal {
                recorded_in: unreadable.to_owned(),
                ..Removal::deleted(bens_message(), UnixMillis(5))
            };
            assert!(
                sent.is_err() || unreadable.trim() != unreadable,
                "{unreadable:?}"
            );
            assert_eq!(
                forged.check(),
                Err(RemovalError::RecordNameNotPlain),
                "{unreadable:?}"
            );
        }
        let blank = Removal {
            recorded_in: "   ".into(),
            ..Removal::deleted(bens_message(), UnixMillis(5))
        };
        assert_eq!(blank.check(), Err(RemovalError::RecordNameNotPlain));
    }
}
