//! Membership reviews as administrators see them: which of their groups are due (named as this phone names them), and a review in progress, finished once every other member was kept or removed.

use crate::state::time::date_label;
use huddle_core::ids::{GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::ReviewDue;
use huddle_session::records::{ConversationRecord, Directory};

/// A group whose members are due for review, as the list's prompt shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewPrompt {
    pub group: GroupId,
    /// "Review who is in Handover".
    pub heading: String,
    /// "Due since 3 Dec 2026. Last reviewed 4 Sep 2026." (or "Never reviewed").
    pub detail: String,
}

/// The reviews due by `now` of groups this phone holds and is still in,
/// soonest first.
pub fn prompts(
    due: &[ReviewDue],
    records: &[ConversationRecord],
    directory: &Directory,
    now: UnixMillis,
    offset_minutes: i64,
) -> Vec<ReviewPrompt> {
    due.iter()
        .filter(|review| review.due_at <= now)
        .filter_map(|review| {
            let record = records
                .iter()
                .find(|r| r.group == review.group && !r.ended)?;
            let title = crate::state::conversations::title(record, directory);
            Some(ReviewPrompt {
                group: review.group,
                heading: format!("Review who is in {title}"),
                detail: review_detail(review, offset_minutes),
            })
        })
        .collect()
}

/// When a review fell due and when the last one was.
pub fn review_detail(review: &ReviewDue, offset_minutes: i64) -> String {
    let due = date_label(review.due_at, offset_minutes);
    match review.reviewed_at {
        Some(last) => format!(
            "Due since {due}. Last reviewed {}.",
            date_label(last, offset_minutes)
        ),
        None => format!("Due since {due}. Never reviewed."),
    }
}

/// A review in progress on the members screen: who was kept, how many were
/// removed while reviewing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Review {
    pub kept: Vec<UserId>,
    pub removed: u32,
}

impl Review {
    /// Marks `user` kept (again: no longer kept).
    pub fn toggle_kept(&mut self, user: UserId) {
        match self.kept.iter().position(|kept| *kept == user) {
            Some(at) => {
                self.kept.remove(at);
            }
            None => self.kept.push(user),
        }
    }

    pub fn is_kept(&self, user: UserId) -> bool {
        self.kept.contains(&user)
    }

    /// Whether every member but the reviewer has been kept (the removed
    /// ones are no longer members).
    pub fn is_complete(&self, members: &[UserId], reviewer: UserId) -> bool {
        members
            .iter()
            .filter(|member| **member != reviewer)
            .all(|member| self.is_kept(*member))
    }

    /// How many of the current members were kept (the reviewer counts as
    /// kept: she confirms the group with herself in it).
    pub fn kept_count(&self, members: &[UserId]) -> u32 {
        let kept = members.iter().filter(|m| self.is_kept(**m)).count();
        u32::try_from(kept + 1).unwrap_or(u32::MAX)
    }
}

/// What the members screen says once a review is recorded.
pub fn recorded(next_due: UnixMillis, offset_minutes: i64) -> String {
    format!(
        "Review recorded. The next one is due on {}.",
        date_label(next_due, offset_minutes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::retention::{GroupKind, RetentionSecs};
    use huddle_core::wire::{Person, Role};

    const DAY: u64 = 86_400_000;
    // 2026-12-03 00:00 UTC.
    const NOW: UnixMillis = UnixMillis(1_796_256_000_000);

    fn record(n: u8, name: &str, ended: bool) -> ConversationRecord {
        ConversationRecord {
            group: GroupId::from_bytes([n; 16]),
            kind: GroupKind::Operational,
            retention: RetentionSecs::DAY,
            name: name.into(),
            peer: None,
            members: vec![UserId::from_bytes([1; 16]), UserId::from_bytes([2; 16])],
            unread: 0,
            created_at: UnixMillis(0),
            ended,
        }
    }

    fn directory() -> Directory {
        Directory {
            people: vec![Person {
                user: UserId::from_bytes([2; 16]),
                display_name: "Ben".into(),
                role: Role::Staff,
                devices: vec![],
            }],
        }
    }

    #[test]
    fn only_due_groups_this_phone_is_still_in_are_prompted() {
        let due = [
            ReviewDue {
                group: GroupId::from_bytes([1; 16]),
                due_at: UnixMillis(NOW.0 - DAY),
                reviewed_at: Some(UnixMillis(NOW.0 - 91 * DAY)),
            },
            ReviewDue {
                group: GroupId::from_bytes([2; 16]),
                due_at: UnixMillis(NOW.0 + DAY),
                reviewed_at: None,
            },
            ReviewDue {
                group: GroupId::from_bytes([3; 16]),
                due_at: NOW,
                reviewed_at: None,
            },
            ReviewDue {
                group: GroupId::from_bytes([4; 16]),
                due_at: NOW,
                reviewed_at: None,
            },
        ];
        let records = [
            record(1, "Handover", false),
            record(2, "Night shift", false),
            record(3, "Old rota", true),
        ];
        let shown = prompts(&due, &records, &directory(), NOW, 0);
        assert_eq!(
            shown,
            vec![ReviewPrompt {
                group: GroupId::from_bytes([1; 16]),
                heading: "Review who is in Handover".into(),
                detail: "Due since 2 Dec 2026. Last reviewed 3 Sep 2026.".into(),
            }]
        );
        assert_eq!(
            review_detail(&due[2], 0),
            "Due since 3 Dec 2026. Never reviewed."
        );
    }

    #[test]
    fn a_review_is_complete_once_every_other_member_is_kept() {
        let (me, ben, cara) = (
            UserId::from_bytes([1; 16]),
            UserId::from_bytes([2; 16]),
            UserId::from_bytes([3; 16]),
        );
        let mut review = Review::default();
        assert!(!review.is_complete(&[me, ben, cara], me));
        review.toggle_kept(ben);
        assert!(!review.is_complete(&[me, ben, cara], me));
        // Cara removed while reviewing: she is no longer a member.
        review.removed += 1;
        assert!(review.is_complete(&[me, ben], me));
        assert_eq!(review.kept_count(&[me, ben]), 2);
        review.toggle_kept(ben);
        assert!(!review.is_kept(ben));
        assert!(review.is_complete(&[me], me), "alone in it, nothing to do");
        assert_eq!(
            recorded(UnixMillis(NOW.0 + 90 * DAY), 0),
            "Review recorded. The next one is due on 3 Mar 2027."
        );
    }
}
