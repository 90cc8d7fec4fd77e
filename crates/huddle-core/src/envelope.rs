//! The message envelope: what one person's device says to the others inside an MLS application message.
//!
//! The relay never sees an envelope; it is the plaintext that MLS encrypts.
//! The encoding is versioned and forward compatible:
//! - the outer layout (`version`, `kind`, `sent_at`, `body`) never changes;
//! - a kind this version does not know (a shift offer sent by a newer Huddle)
//!   decodes to [`EnvelopeBody::Unsupported`], which the app shows as "update
//!   Huddle to see this message" instead of dropping it;
//! - a newer version may append fields to a body; older readers ignore them.
//!
//! Bodies are [postcard](https://docs.rs/postcard) encoded: compact,
//! deterministic and with a stable, documented wire format.

use crate::broadcast::REPLY_ENVELOPE_BYTES;
use crate::receipt::{Receipt, ReceiptError};
use crate::removal::{Removal, RemovalError};
use crate::retention::UnixMillis;
use crate::shift::{MessageRef, Shift, ShiftError, ShiftUpdate};
use serde::{Deserialize, Serialize};

/// The envelope format this version writes.
pub const ENVELOPE_VERSION: u16 = 1;

/// The longest message text, in bytes of UTF-8. About six pages of prose:
/// Huddle is for coordination, and the care record is for documents.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The largest encoded envelope this version accepts from anyone.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// The numeric kind of an envelope on the wire. Numbers are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum EnvelopeKind {
    Text = 1,
    /// A shift someone needs covered ([`Shift`]).
    ShiftOffer = 2,
    /// An answer to a shift offer ([`ShiftUpdate`]): a request, its
    /// confirmation, a release or a withdrawal.
    ShiftUpdate = 3,
    /// "I have seen this": a member's answer to an urgent broadcast,
    /// padded to the size of every reply (see [`crate::broadcast`]).
    Acknowledgement = 4,
    /// How far a member has received and read the group's log
    /// ([`Receipt`]), padded to the size of every reply.
    ReadReceipt = 5,
    /// A message's content taken off every phone ([`Removal`]): recorded
    /// in the care record, or deleted for everyone by its author.
    Removal = 6,
    /// "I can't make my shift" ([`Shift`]), told privately to each manager
    /// in a one-to-one conversation; never in a group.
    CannotWork = 7,
}

/// A decoded message.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's clock when she pressed send. Shown to readers; expiry is
    /// computed from it with [`crate::retention::effective_expiry`].
    pub sent_at: UnixMillis,
    pub body: EnvelopeBody,
}

/// What a message says.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvelopeBody {
    /// A plain text message.
    Text { text: String },
    /// A shift someone needs covered.
    ShiftOffer(Shift),
    /// An answer to a shift offer.
    ShiftUpdate(ShiftUpdate),
    /// A member acknowledges the broadcast it names.
    Acknowledgement(MessageRef),
    /// A member says how far she has received and read the group's log.
    ReadReceipt(Receipt),
    /// A message's content is to be deleted on every phone.
    Removal(Removal),
    /// Its sender cannot work this shift (told to a manager, one to one).
    CannotWork(Shift),
    /// A kind this version cannot show: written by a newer Huddle.
    Unsupported { kind: u16, version: u16 },
}

/// Why bytes are not an envelope, or an envelope cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message is empty")]
    EmptyText,
    #[error("the message is too long ({len} bytes; the limit is {max})")]
    TextTooLong { len: usize, max: usize },
    #[error("the message data is too large ({len} bytes; the limit is {max})")]
    TooLarge { len: usize, max: usize },
    #[error("the message data is damaged: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Shift(#[from] ShiftError),
    #[error("{0}")]
    Receipt(#[from] ReceiptError),
    #[error("{0}")]
    Removal(#[from] RemovalError),
}

/// The fixed outer layout. Changing it breaks every reader: don't.
#[derive(Serialize, Deserialize)]
struct OuterLayout<'a> {
    version: u16,
    kind: u16,
    sent_at: u64,
    #[serde(borrow)]
    body: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct TextBody<'a> {
    #[serde(borrow)]
    text: &'a str,
}

impl Envelope {
    /// A text message, checked against the limits.
    pub fn text(sent_at: UnixMillis, text: impl Into<String>) -> Result<Envelope, EnvelopeError> {
        let text = text.into();
        check_text(&text)?;
        Ok(Envelope {
            sent_at,
            body: EnvelopeBody::Text { text },
        })
    }

    /// The bytes to seal. Unsupported bodies cannot be re-encoded: this
    /// version does not know what they said.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        let (kind, body) = match &self.body {
            EnvelopeBody::Text { text } => {
                check_text(text)?;
                let body = postcard::to_allocvec(&TextBody { text })
                    .map_err(|_| EnvelopeError::Malformed("text could not be encoded"))?;
                (EnvelopeKind::Text as u16, body)
            }
            EnvelopeBody::ShiftOffer(shift) => {
                shift.check()?;
                (EnvelopeKind::ShiftOffer as u16, encode_body(shift)?)
            }
            EnvelopeBody::ShiftUpdate(update) => {
                (EnvelopeKind::ShiftUpdate as u16, encode_body(update)?)
            }
            EnvelopeBody::Acknowledgement(broadcast) => {
                let body = encode_body(broadcast)?;
                return self.encode_padded(EnvelopeKind::Acknowledgement, body);
            }
            EnvelopeBody::ReadReceipt(receipt) => {
                receipt.check()?;
                let body = encode_body(receipt)?;
                return self.encode_padded(EnvelopeKind::ReadReceipt, body);
            }
            EnvelopeBody::Removal(removal) => {
                removal.check()?;
                (EnvelopeKind::Removal as u16, encode_body(removal)?)
            }
            EnvelopeBody::CannotWork(shift) => {
                shift.check()?;
                (EnvelopeKind::CannotWork as u16, encode_body(shift)?)
            }
            EnvelopeBody::Unsupported { .. } => {
                return Err(EnvelopeError::Malformed(
                    "a message of an unknown kind cannot be re-sent",
                ))
            }
        };
        let outer = OuterLayout {
            version: ENVELOPE_VERSION,
            kind,
            sent_at: self.sent_at.0,
            body: &body,
        };
        postcard::to_allocvec(&outer).map_err(|_| EnvelopeError::Malformed("could not be encoded"))
    }

    /// A reply's bytes: its body padded with zeros so that the whole
    /// envelope is [`REPLY_ENVELOPE_BYTES`] long, whatever its kind and
    /// time (see [`crate::broadcast`]).
    fn encode_padded(
        &self,
        kind: EnvelopeKind,
        mut body: Vec<u8>,
    ) -> Result<Vec<u8>, EnvelopeError> {
        let unpadded = self.outer(kind, &body)?.len();
        let room = REPLY_ENVELOPE_BYTES
            .checked_sub(unpadded)
            .ok_or(EnvelopeError::Malformed(
                "a reply is larger than its padded size",
            ))?;
        body.resize(body.len() + room, 0);
        let padded = self.outer(kind, &body)?;
        // A longer body could need a longer length prefix; none this small
        // does, but a reply of the wrong size must never leave the phone.
        if padded.len() != REPLY_ENVELOPE_BYTES {
            return Err(EnvelopeError::Malformed("a reply could not be padded"));
        }
        Ok(padded)
    }

    fn outer(&self, kind: EnvelopeKind, body: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let outer = OuterLayout {
            version: ENVELOPE_VERSION,
            kind: kind as u16,
            sent_at: self.sent_at.0,
            body,
        };
        postcard::to_allocvec(&outer).map_err(|_| EnvelopeError::Malformed("could not be encoded"))
    }

    /// Reads an envelope from opened MLS plaintext. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                len: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let (outer, rest): (OuterLayout<'_>, &[u8]) = postcard::take_from_bytes(bytes)
            .map_err(|_| EnvelopeError::Malformed("the outer layout is unreadable"))?;
        if !rest.is_empty() {
            return Err(EnvelopeError::Malformed(
                "unexpected bytes after the message",
            ));
        }
        if outer.version == 0 {
            return Err(EnvelopeError::Malformed("version 0 does not exist"));
        }
        let sent_at = UnixMillis(outer.sent_at);
        let body = match outer.kind {
            kind if kind == EnvelopeKind::Text as u16 => {
                // `from_bytes` ignores trailing bytes: fields a newer
                // version appends to the body.
                let body: TextBody<'_> = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the text is unreadable"))?;
                check_text(body.text)?;
                EnvelopeBody::Text {
                    text: body.text.to_owned(),
                }
            }
            kind if kind == EnvelopeKind::ShiftOffer as u16 => {
                let shift: Shift = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the shift offer is unreadable"))?;
                shift.check()?;
                EnvelopeBody::ShiftOffer(shift)
            }
            kind if kind == EnvelopeKind::ShiftUpdate as u16 => {
                let update: ShiftUpdate = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the shift answer is unreadable"))?;
                EnvelopeBody::ShiftUpdate(update)
            }
            kind if kind == EnvelopeKind::Acknowledgement as u16 => {
                // The padding after the reference is ignored, as appended
                // fields are.
                let broadcast: MessageRef = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the acknowledgement is unreadable"))?;
                EnvelopeBody::Acknowledgement(broadcast)
            }
            kind if kind == EnvelopeKind::ReadReceipt as u16 => {
                let receipt: Receipt = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the read receipt is unreadable"))?;
                receipt.check()?;
                EnvelopeBody::ReadReceipt(receipt)
            }
            kind if kind == EnvelopeKind::Removal as u16 => {
                let removal: Removal = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the removal is unreadable"))?;
                removal.check()?;
                EnvelopeBody::Removal(removal)
            }
            kind if kind == EnvelopeKind::CannotWork as u16 => {
                let shift: Shift = postcard::from_bytes(outer.body)
                    .map_err(|_| EnvelopeError::Malformed("the shift is unreadable"))?;
                shift.check()?;
                EnvelopeBody::CannotWork(shift)
            }
            kind => EnvelopeBody::Unsupported {
                kind,
                version: outer.version,
            },
        };
        Ok(Envelope { sent_at, body })
    }
}

impl EnvelopeBody {
    /// The text of a text message; `None` for a kind this version does not
    /// know (the app says "update Huddle to see this message").
    pub fn text(&self) -> Option<&str> {
        match self {
            EnvelopeBody::Text { text } => Some(text),
            EnvelopeBody::ShiftOffer(_)
            | EnvelopeBody::ShiftUpdate(_)
            | EnvelopeBody::Acknowledgement(_)
            | EnvelopeBody::ReadReceipt(_)
            | EnvelopeBody::Removal(_)
            | EnvelopeBody::CannotWork(_)
            | EnvelopeBody::Unsupported { .. } => None,
        }
    }

    /// Whether this is a reply (an acknowledgement or a read receipt: the
    /// only kinds staff may send in an emergency broadcast group), padded
    /// to one size.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            EnvelopeBody::Acknowledgement(_) | EnvelopeBody::ReadReceipt(_)
        )
    }
}

/// Content never prints: only its kind and size, so that an envelope in a
/// log or a panic message gives nothing away.
impl std::fmt::Debug for EnvelopeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeBody::Text { text } => write!(f, "Text({} characters)", text.chars().count()),
            EnvelopeBody::ShiftOffer(shift) => write!(f, "ShiftOffer({shift:?})"),
            EnvelopeBody::ShiftUpdate(update) => write!(f, "ShiftUpdate({:?})", update.action),
            EnvelopeBody::Acknowledgement(_) => f.write_str("Acknowledgement"),
            EnvelopeBody::ReadReceipt(_) => f.write_str("ReadReceipt"),
            EnvelopeBody::Removal(removal) => write!(f, "{removal:?}"),
            EnvelopeBody::CannotWork(shift) => write!(f, "CannotWork({shift:?})"),
            EnvelopeBody::Unsupported { kind, version } => f
                .debug_struct("Unsupported")
                .field("kind", kind)
                .field("version", version)
                .finish(),
        }
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("sent_at", &self.sent_at)
            .field("body", &self.body)
            .finish()
    }
}

/// A body's bytes (postcard: a later version may append fields, which
/// this one ignores).
fn encode_body(body: &impl Serialize) -> Result<Vec<u8>, EnvelopeError> {
    postcard::to_allocvec(body).map_err(|_| EnvelopeError::Malformed("could not be encoded"))
}

fn check_text(text: &str) -> Result<(), EnvelopeError> {
    if text.trim().is_empty() {
        return Err(EnvelopeError::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(EnvelopeError::TextTooLong {
            len: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
