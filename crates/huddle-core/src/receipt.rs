//! Read receipts: one phone's word, in a group's log, of how far it has received and read that log, and what such a word says about one message.
//!
//! A receipt names places in the group's log, not messages: "I hold every
//! message from place `since` through `delivered_through` (except the
//! `unopened` ones), and the conversation has been on my screen through
//! `read_through`". So one receipt answers for every message before it,
//! it is the same few bytes however many messages it covers, and every
//! phone reads it against the same log order. It travels as an MLS
//! application message padded to the size of every reply (see
//! [`crate::broadcast`]), so the relay cannot tell it from an
//! acknowledgement, and it expires with the group's retention.

use crate::retention::GroupKind;
use serde::{Deserialize, Serialize};

/// At most this many places a receipt names as received but not opened:
/// enough for the rare message a phone could not open, and small enough
/// that the fullest receipt fits the padded size of a reply.
pub const MAX_UNOPENED: usize = 4;

/// How far one phone has received and read one group's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The first place of the log this phone could hold: where it joined
    /// (0 for whoever made the group). Messages before it never reached it.
    pub since: u64,
    /// Every message through this place is on the phone, except `unopened`.
    pub delivered_through: u64,
    /// The conversation was on the phone's screen with every message
    /// through this place in it. Never beyond `delivered_through`.
    pub read_through: u64,
    /// Places it received but could not open, newest last.
    pub unopened: Vec<u64>,
}

/// How far one message has got with one person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reached {
    /// The relay holds it; her phone has not said it has it.
    Sent,
    /// On her phone.
    Delivered,
    /// On her screen.
    Read,
}

/// Why a receipt cannot be what a phone says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("a receipt names more unopened messages than it may")]
    TooManyUnopened,
    #[error("a receipt says more was read than received")]
    ReadBeyondDelivered,
}

impl Receipt {
    /// Whether this receipt could have been written by an honest phone.
    pub fn check(&self) -> Result<(), ReceiptError> {
        if self.unopened.len() > MAX_UNOPENED {
            return Err(ReceiptError::TooManyUnopened);
        }
        if self.read_through > self.delivered_through {
            return Err(ReceiptError::ReadBeyondDelivered);
        }
        Ok(())
    }

    /// What this receipt says of the message at `seq`: nothing when it is
    /// before the phone joined, after what it has, or one it could not open.
    pub fn reached(&self, seq: u64) -> Option<Reached> {
        if seq < self.since || seq > self.delivered_through || self.unopened.contains(&seq) {
            None
        } else if seq <= self.read_through {
            Some(Reached::Read)
        } else {
            Some(Reached::Delivered)
        }
    }

    /// Whether telling `self` says something `told` did not: a phone sends
    /// a receipt only then, so receipts never answer receipts.
    /// (A phone that joined again says its new `since` with the first
    /// message after it, which always passes what it told before.)
    pub fn says_more_than(&self, told: &Receipt) -> bool {
        self.delivered_through > told.delivered_through || self.read_through > told.read_through
    }

    /// Records that the entry at `seq` could not be opened, keeping the
    /// newest [`MAX_UNOPENED`].
    pub fn could_not_open(&mut self, seq: u64) {
        if !self.unopened.contains(&seq) {
            self.unopened.push(seq);
        }
        let excess = self.unopened.len().saturating_sub(MAX_UNOPENED);
        self.unopened.drain(..excess);
    }
}

/// Whether members of a group of `kind` tell each other what they have
/// received and read: everywhere but social groups, where it would only
/// add pressure to answer (the group's type decides, as it decides
/// retention).
pub fn sent_in(kind: GroupKind) -> bool {
    kind != GroupKind::Social
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(since: u64, delivered: u64, read: u64, unopened: &[u64]) -> Receipt {
        Receipt {
            since,
            delivered_through: delivered,
            read_through: read,
            unopened: unopened.to_vec(),
        }
    }

    #[test]
    fn a_receipt_answers_for_every_message_between_joining_and_its_places() {
        let r = receipt(10, 20, 15, &[17]);
        assert_eq!(r.reached(9), None, "before she joined");
        assert_eq!(r.reached(10), Some(Reached::Read));
        assert_eq!(r.reached(15), Some(Reached::Read));
        assert_eq!(r.reached(16), Some(Reached::Delivered));
        assert_eq!(r.reached(17), None, "one she could not open");
        assert_eq!(r.reached(20), Some(Reached::Delivered));
        assert_eq!(r.reached(21), None);
    }

    #[test]
    fn only_news_is_worth_a_receipt() {
        let told = receipt(0, 20, 15, &[]);
        assert!(!receipt(0, 20, 15, &[]).says_more_than(&told));
        assert!(!receipt(0, 19, 15, &[]).says_more_than(&told));
        assert!(receipt(0, 21, 15, &[]).says_more_than(&told));
        assert!(receipt(0, 20, 16, &[]).says_more_than(&told));
        assert!(
            !receipt(30, 20, 15, &[]).says_more_than(&told),
            "rejoined, nothing new"
        );
    }

    #[test]
    fn impossible_receipts_are_refused() {
        assert_eq!(
            receipt(0, 5, 6, &[]).check(),
            Err(ReceiptError::ReadBeyondDelivered)
        );
        assert_eq!(
            receipt(0, 9, 1, &[1, 2, 3, 4, 5]).check(),
            Err(ReceiptError::TooManyUnopened)
        );
        assert_eq!(receipt(0, 9, 1, &[1, 2, 3, 4]).check(), Ok(()));
    }

    #[test]
    fn only_the_newest_unopened_places_are_kept() {
        let mut r = Receipt::default();
        for seq in [3, 4, 4, 5, 6, 7] {
            r.could_not_open(seq);
        }
        assert_eq!(r.unopened, vec![4, 5, 6, 7]);
    }

    #[test]
    fn social_groups_send_no_receipts() {
        for kind in GroupKind::ALL {
            assert_eq!(sent_in(kind), kind != GroupKind::Social);
        }
    }
}
