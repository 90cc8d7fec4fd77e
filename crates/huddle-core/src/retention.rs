//! Retention and expiry: how long each kind of conversation keeps its messages, and when a message expires.
//!
//! Every party computes expiry for itself (the relay, each device, the crypto
//! worker), so the rules live here once and take the clock as an argument.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    pub fn saturating_add(self, duration: RetentionSecs) -> UnixMillis {
        UnixMillis(self.0.saturating_add(duration.as_millis()))
    }

    pub fn saturating_add_millis(self, millis: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(millis))
    }

    pub fn saturating_sub_millis(self, millis: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(millis))
    }
}

/// A retention time in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RetentionSecs(pub u64);

impl RetentionSecs {
    pub const MINUTE: RetentionSecs = RetentionSecs(60);
    pub const HOUR: RetentionSecs = RetentionSecs(60 * 60);
    pub const DAY: RetentionSecs = RetentionSecs(24 * 60 * 60);

    pub const fn minutes(n: u64) -> Self {
        RetentionSecs(n * 60)
    }
    pub const fn hours(n: u64) -> Self {
        RetentionSecs(n * 60 * 60)
    }
    pub const fn days(n: u64) -> Self {
        RetentionSecs(n * 24 * 60 * 60)
    }
    pub const fn as_millis(self) -> u64 {
        self.0.saturating_mul(1000)
    }
}

impl fmt::Display for RetentionSecs {
    /// Plain English, as the app shows it: "30 minutes", "1 day", "2 weeks".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0;
        let (n, unit) = if secs.is_multiple_of(7 * 86_400) && secs >= 7 * 86_400 {
            (secs / (7 * 86_400), "week")
        } else if secs.is_multiple_of(86_400) && secs >= 86_400 {
            (secs / 86_400, "day")
        } else if secs.is_multiple_of(3_600) && secs >= 3_600 {
            (secs / 3_600, "hour")
        } else if secs.is_multiple_of(60) && secs >= 60 {
            (secs / 60, "minute")
        } else {
            (secs, "second")
        };
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "{n} {unit}{plural}")
    }
}

/// The kind of a conversation, fixed when it is created.
///
/// Guidance asks that social chat is kept apart from clinical and operational
/// chat; the kind is therefore part of the group's MLS context and never
/// changes. Each kind has its own retention limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Observations and decisions about the people in our care. Short-lived:
    /// the care record is where decisions end up.
    Clinical,
    /// Rotas, shift offers, sickness and handover logistics.
    Operational,
    /// Morale and chat. Never for anything about the people in our care.
    Social,
    /// One-way alerts from administrators that ask for acknowledgement.
    EmergencyBroadcast,
    /// A one-to-one conversation between two colleagues.
    Direct,
}

impl GroupKind {
    pub const ALL: [GroupKind; 5] = [
        GroupKind::Clinical,
        GroupKind::Operational,
        GroupKind::Social,
        GroupKind::EmergencyBroadcast,
        GroupKind::Direct,
    ];

    /// How long messages may be kept in a conversation of this kind.
    pub fn retention_policy(self) -> RetentionPolicy {
        use RetentionSecs as R;
        match self {
            // Clinical content should move to the care record within a shift
            // or two, so it is kept for a week at most.
            GroupKind::Clinical => RetentionPolicy {
                min: R::minutes(5),
                default: R::DAY,
                max: R::days(7),
            },
            GroupKind::Operational => RetentionPolicy {
                min: R::HOUR,
                default: R::days(7),
                max: R::days(30),
            },
            GroupKind::Social => RetentionPolicy {
                min: R::HOUR,
                default: R::days(14),
                max: R::days(90),
            },
            GroupKind::EmergencyBroadcast => RetentionPolicy {
                min: R::HOUR,
                default: R::days(3),
                max: R::days(14),
            },
            GroupKind::Direct => RetentionPolicy {
                min: R::minutes(5),
                default: R::days(7),
                max: R::days(30),
            },
        }
    }

    /// Whether the retention time is within this kind's limits.
    pub fn check_retention(
        self,
        retention: RetentionSecs,
    ) -> Result<RetentionSecs, RetentionError> {
        let policy = self.retention_policy();
        if retention < policy.min {
            Err(RetentionError::TooShort {
                kind: self,
                min: policy.min,
            })
        } else if retention > policy.max {
            Err(RetentionError::TooLong {
                kind: self,
                max: policy.max,
            })
        } else {
            Ok(retention)
        }
    }
}

/// The allowed range and the default retention of one kind of conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub min: RetentionSecs,
    pub default: RetentionSecs,
    pub max: RetentionSecs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("{kind:?} conversations keep messages for at least {min}")]
    TooShort { kind: GroupKind, min: RetentionSecs },
    #[error("{kind:?} conversations keep messages for at most {max}")]
    TooLong { kind: GroupKind, max: RetentionSecs },
}

/// How far apart two honest clocks may be. Phones set their clocks from the
/// network, so five minutes covers a phone that was off for a long while.
pub const MAX_CLOCK_SKEW_MILLIS: u64 = 5 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("the message had already expired when it arrived; check the phone's date and time")]
    ExpiredOnArrival,
}

/// The expiry a receiver enforces for a message that claims `claimed_expiry`.
///
/// `reference` is when the receiver's side first saw the message (for the
/// relay, when it stored it; for a device, the relay's stored time). A sender
/// whose clock runs fast must not make a message outlive its group's retention,
/// so the claim is capped at `reference + retention + skew`. A sender whose
/// clock runs slow only makes the message expire sooner, which is the safe side,
/// unless the claim is already in the past by more than the allowed skew.
pub fn effective_expiry(
    claimed_expiry: UnixMillis,
    reference: UnixMillis,
    retention: RetentionSecs,
) -> Result<UnixMillis, ExpiryError> {
    if claimed_expiry < reference.saturating_sub_millis(MAX_CLOCK_SKEW_MILLIS) {
        return Err(ExpiryError::ExpiredOnArrival);
    }
    let cap = reference
        .saturating_add(retention)
        .saturating_add_millis(MAX_CLOCK_SKEW_MILLIS);
    Ok(claimed_expiry.min(cap))
}

#[cfg(test)]
mod tests;
