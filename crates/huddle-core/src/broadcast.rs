//! Urgent broadcasts and the replies to them: which groups carry them, and the one size every reply is padded to so that the relay can hold staff to replies without reading them.
//!
//! In an emergency broadcast group only administrators write; every text
//! message of theirs is a broadcast that asks each member to acknowledge
//! it. Staff send only replies (an acknowledgement now; read receipts
//! later), which every phone refuses from them as anything else. So that
//! the relay can refuse everything else from staff there too, without
//! reading a word, every reply is padded to one size:
//! - the envelope to [`REPLY_ENVELOPE_BYTES`] (the envelope layer does it);
//! - the MLS plaintext, with its signature (whose encoding varies by a few
//!   bytes), to a multiple of [`MLS_PADDING_BYTES`];
//!
//! so that its MLS ciphertext is always [`REPLY_CIPHERTEXT_BYTES`] long.
//! `huddle-mls` tests that it is. A reply's size says nothing of which
//! broadcast it answers or whether it is an acknowledgement or a receipt.

use crate::retention::GroupKind;

/// Every reply's envelope, padded: comfortably more than a reference to a
/// message (32 bytes) and the envelope's own header.
pub const REPLY_ENVELOPE_BYTES: usize = 96;

/// Every MLS application message is padded to a multiple of this (with its
/// 16-byte authentication tag): replies to one size, and every other
/// message's length hidden to within 64 bytes.
pub const MLS_PADDING_BYTES: usize = 64;

/// The length of a reply's MLS ciphertext (the `ciphertext` field of its
/// `PrivateMessage`): the padded envelope, its length, the signature and
/// the tag, padded up to a multiple of [`MLS_PADDING_BYTES`]. The relay
/// stores from staff in a broadcast group only application messages whose
/// ciphertext is this long.
pub const REPLY_CIPHERTEXT_BYTES: usize = 256;

/// Whether a group of `kind` carries broadcasts that ask to be
/// acknowledged: emergency broadcast groups only. Anywhere else an
/// acknowledgement means nothing and is dropped.
pub fn acknowledged_in(kind: GroupKind) -> bool {
    kind == GroupKind::EmergencyBroadcast
}

/// How long after a broadcast a member who has not acknowledged it is
/// reminded, and after how long the group's administrators are told it is
/// not getting through (the organisation sets both; see `PhonePolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub remind_after_millis: u64,
    pub alert_after_millis: u64,
}

/// Where one person's acknowledgement of a broadcast stands, as her own
/// phone shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Sent less than the reminder interval ago.
    Waiting,
    /// Past the reminder interval and still not acknowledged.
    Reminder,
    /// Past the alert interval: administrators are told it is not getting
    /// through.
    NotGettingThrough,
}

impl Escalation {
    /// How urgent a broadcast sent `sent_at` is at `now`, while someone has
    /// still not acknowledged it. A clock that goes back counts as no time.
    pub fn urgency(&self, sent_at: crate::UnixMillis, now: crate::UnixMillis) -> Urgency {
        let waited = now.0.saturating_sub(sent_at.0);
        if waited >= self.alert_after_millis {
            Urgency::NotGettingThrough
        } else if waited >= self.remind_after_millis {
            Urgency::Reminder
        } else {
            Urgency::Waiting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnixMillis;

    #[test]
    fn urgency_rises_with_time_and_never_with_a_clock_turned_back() {
        let escalation = Escalation {
            remind_after_millis: 10_000,
            alert_after_millis: 30_000,
        };
        let sent = UnixMillis(1_000_000);
        assert_eq!(escalation.urgency(sent, sent), Urgency::Waiting);
        assert_eq!(
            escalation.urgency(sent, UnixMillis(1_009_999)),
            Urgency::Waiting
        );
        assert_eq!(
            escalation.urgency(sent, UnixMillis(1_010_000)),
            Urgency::Reminder
        );
        assert_eq!(
            escalation.urgency(sent, UnixMillis(1_030_000)),
            Urgency::NotGettingThrough
        );
        assert_eq!(escalation.urgency(sent, UnixMillis(5)), Urgency::Waiting);
    }

    #[test]
    fn only_emergency_broadcast_groups_ask_for_acknowledgement() {
        for kind in GroupKind::ALL {
            assert_eq!(acknowledged_in(kind), kind == GroupKind::EmergencyBroadcast);
        }
    }
}
