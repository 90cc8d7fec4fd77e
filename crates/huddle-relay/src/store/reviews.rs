//! Membership reviews: when each group's members are next due to be confirmed by an administrator, and the record that they were (dates and counts only; who was removed is in the group's own commits).

use super::people::audit;
use super::{id16, kind_name, to_i64, Store, StoreError};
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_core::wire::ReviewDue;

/// Why a review was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// Not a group this device is in, or a one-to-one conversation.
    NotReviewable,
}

impl ReviewRefusal {
    /// In words for the administrator.
    pub fn words(self) -> &'static str {
        match self {
            ReviewRefusal::NotReviewable => {
                "Only a group you are in can be reviewed, and not a one-to-one conversation."
            }
        }
    }
}

fn millis(value: i64) -> UnixMillis {
    UnixMillis(u64::try_from(value).unwrap_or(0))
}

impl Store {
    /// The groups `device` is in, but not one-to-one conversations, each
    /// with when its members are next due for review: `every` after the
    /// last review, or after the group was made. Soonest first.
    pub async fn reviews_due(
        &self,
        device: DeviceId,
        every_millis: u64,
    ) -> Result<Vec<ReviewDue>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT g.id, g.created_at, g.reviewed_at FROM groups g
               JOIN members m ON m.group_id = g.id
              WHERE m.device_id = $1 AND m.removed_seq IS NULL AND g.kind <> $2",
        )
        .bind(&device.as_bytes()[..])
        .bind(kind_name(GroupKind::Direct))
        .fetch_all(&self.pool)
        .await?;
        let mut due = rows
            .into_iter()
            .map(|(group, created_at, reviewed_at)| {
                let since = millis(reviewed_at.unwrap_or(created_at));
                Ok(ReviewDue {
                    group: GroupId::from_bytes(id16(&group)?),
                    due_at: since.saturating_add_millis(every_millis),
                    reviewed_at: reviewed_at.map(millis),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        due.sort_by_key(|review| (review.due_at, review.group));
        Ok(due)
    }

    /// Records that an administrator's `device`, a member of `group`,
    /// confirmed its members: `kept` stayed and `removed` were taken out
    /// (by commits of their own). The next review falls due from `now`.
    pub async fn members_reviewed(
        &self,
        actor: UserId,
        device: DeviceId,
        group: GroupId,
        kept: u32,
        removed: u32,
        now: UnixMillis,
    ) -> Result<Result<(), ReviewRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let reviewable: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM groups g JOIN members m ON m.group_id = g.id
              WHERE g.id = $1 AND m.device_id = $2 AND m.removed_seq IS NULL AND g.kind <> $3",
        )
        .bind(&group.as_bytes()[..])
        .bind(&device.as_bytes()[..])
        .bind(kind_name(GroupKind::Direct))
        .fetch_optional(&mut *tx)
        .await?;
        if reviewable.is_none() {
            return Ok(Err(ReviewRefusal::NotReviewable));
        }
        sqlx::query("UPDATE groups SET reviewed_at = $2 WHERE id = $1")
            .bind(&group.as_bytes()[..])
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            now,
            actor,
            "membership reviewed",
            &format!("group {group}: {kept} kept, {removed} removed"),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}
