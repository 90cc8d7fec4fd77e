//! Shift offers and the answers to them: what an offer says, what staff and managers send back, and the one rule every phone applies, in the log's order, to say where a shift stands.
//!
//! An offer and each answer are ordinary encrypted messages (envelope kinds
//! `ShiftOffer` and `ShiftUpdate`); the relay learns nothing of them. An
//! answer names its offer by the offer's author and message id, both taken
//! from MLS-authenticated data, so neither the relay nor a colleague can
//! point an answer at another offer. Asking for a shift is a request: the
//! shift is settled only by a confirmation from the person who offered it
//! or an administrator, naming one request. Every phone folds the answers
//! it holds in log order with [`settle`], so phones that hold the same
//! answers agree, and they agree on who has the shift whenever they hold
//! the confirmation (SECURITY.md, "Shift offers").

use crate::ids::{ClientMessageId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest ward or unit name, in bytes of UTF-8.
pub const MAX_UNIT_BYTES: usize = 80;
/// The longest role ("Senior carer", "RGN"), in bytes of UTF-8.
pub const MAX_ROLE_BYTES: usize = 80;
/// The longest note on an offer, in bytes of UTF-8.
pub const MAX_NOTE_BYTES: usize = 500;
/// Minutes in a day: a start or end time is below this.
pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// One message of a conversation, as its author's phone named it: both
/// halves come from MLS-authenticated data, never from the relay's labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    pub author: UserId,
    pub client_msg: ClientMessageId,
}

/// A shift someone needs covered. The day is a calendar date with no time
/// zone (the home's own calendar, as the poster's phone showed it), counted
/// in days from 1 January 1970; times are minutes after midnight. An end at
/// or before the start ends the next day (a night shift).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub day: u32,
    pub start: u16,
    pub end: u16,
    /// Where: a unit, ward or house (may be empty).
    pub unit: String,
    /// Who is needed: a role (never empty).
    pub role: String,
    /// Anything else worth saying (may be empty). Like any message, it is
    /// checked for patient details before it is sent.
    pub note: String,
}

/// Why a shift cannot be offered as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShiftError {
    #[error("say which role is needed")]
    NoRole,
    #[error("a time is not a time of day")]
    NotATime,
    #[error("the shift starts and ends at the same time")]
    NoLength,
    #[error("the {field} is too long ({len} bytes; the limit is {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

impl Shift {
    /// Checks the limits every phone holds an offer to, written or received.
    pub fn check(&self) -> Result<(), ShiftError> {
        if self.role.trim().is_empty() {
            return Err(ShiftError::NoRole);
        }
        if self.start >= MINUTES_PER_DAY || self.end >= MINUTES_PER_DAY {
            return Err(ShiftError::NotATime);
        }
        if self.start == self.end {
            return Err(ShiftError::NoLength);
        }
        for (field, text, max) in [
            ("unit", &self.unit, MAX_UNIT_BYTES),
            ("role", &self.role, MAX_ROLE_BYTES),
            ("note", &self.note, MAX_NOTE_BYTES),
        ] {
            if text.len() > max {
                return Err(ShiftError::TooLong {
                    field,
                    len: text.len(),
                    max,
                });
            }
        }
        Ok(())
    }

    /// Whether it ends on the day after it starts.
    pub fn overnight(&self) -> bool {
        self.end <= self.start
    }
}

/// A shift is content: only its length of note ever prints.
impl fmt::Debug for Shift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shift(note of {} characters)", self.note.chars().count())
    }
}

/// What someone answers to an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShiftAction {
    /// "I can take this shift": a request, in the log's order.
    Claim,
    /// The person takes back her own request (before it is confirmed).
    CancelClaim,
    /// The poster or an administrator gives the shift to one request.
    Confirm { claim: MessageRef },
    /// The poster or an administrator takes a confirmed shift back: it is
    /// open again, and the person it was given to no longer asks for it.
    Release,
    /// The poster or an administrator withdraws the offer for good.
    Withdraw,
}

/// The body of a `ShiftUpdate` envelope: one answer to one offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftUpdate {
    pub offer: MessageRef,
    pub action: ShiftAction,
}

/// One answer as a phone holds it, with what MLS says about its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// This answer, as a message another may name.
    pub id: MessageRef,
    /// Whether the sender's certificate makes her an administrator.
    pub by_administrator: bool,
    pub action: ShiftAction,
}

/// A request to take a shift, still standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: MessageRef,
}

impl Request {
    pub fn by(&self) -> UserId {
        self.id.author
    }
}

/// Where an offered shift stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShiftStatus {
    /// Not yet given to anyone: the standing requests, first to ask first.
    Open { requests: Vec<Request> },
    /// Given to the person who made `to`; the other requests still stand
    /// (in case it is released).
    Confirmed { to: Request, others: Vec<Request> },
    /// Withdrawn by the poster or an administrator.
    Withdrawn,
}

impl ShiftStatus {
    /// The standing request of `user`, if any (confirmed or not).
    pub fn request_of(&self, user: UserId) -> Option<Request> {
        match self {
            ShiftStatus::Open { requests } => requests.iter().copied().find(|r| r.by() == user),
            ShiftStatus::Confirmed { to, others } => std::iter::once(to)
                .chain(others)
                .copied()
                .find(|r| r.by() == user),
            ShiftStatus::Withdrawn => None,
        }
    }
}

/// Where the offer `offer` stands after `answers`, which must be every
/// answer to it this phone holds, in the log's order. An answer that breaks
/// a rule changes nothing: a request from the poster, or a second one from
/// the same person; a confirmation, release or withdrawal from anyone but
/// the poster or an administrator; a confirmation while the shift is
/// confirmed, or naming the poster; anything after a withdrawal. A
/// confirmation need not name a request this phone holds: it decides.
pub fn settle(offer: MessageRef, answers: &[Answer]) -> ShiftStatus {
    let mut requests: Vec<Request> = Vec::new();
    let mut confirmed: Option<Request> = None;
    for answer in answers {
        let by = answer.id.author;
        let manages = by == offer.author || answer.by_administrator;
        match answer.action {
            ShiftAction::Claim => {
                let asked = requests.iter().any(|r| r.by() == by)
                    || confirmed.is_some_and(|c| c.by() == by);
                if by != offer.author && !asked {
                    requests.push(Request { id: answer.id });
                }
            }
            ShiftAction::CancelClaim => requests.retain(|r| r.by() != by),
            // The confirmation decides on its own, whether or not this
            // phone holds the claim it names (withheld, or expired here
            // first): phones that hold the confirmation agree.
            ShiftAction::Confirm { claim }
                if manages && confirmed.is_none() && claim.author != offer.author =>
            {
                requests.retain(|r| r.by() != claim.author);
                confirmed = Some(Request { id: claim });
            }
            ShiftAction::Release if manages => confirmed = None,
            ShiftAction::Withdraw if manages => return ShiftStatus::Withdrawn,
            ShiftAction::Confirm { .. } | ShiftAction::Release | ShiftAction::Withdraw => {}
        }
    }
    match confirmed {
        Some(to) => ShiftStatus::Confirmed {
            to,
            others: requests,
        },
        None => ShiftStatus::Open { requests },
    }
}

#[cfg(test)]
mod tests;
