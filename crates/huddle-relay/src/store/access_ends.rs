//! When access ends: agency and bank staff invited until a date, the date moved or lifted by an administrator, and the relay signing each person out once her date has passed, whether or not anyone opens the app that day.

use super::people::{audit, revoke_devices_of, role_from_name};
use super::{id16, to_i64, Store, StoreError};
use huddle_core::calendar::civil_from_days;
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{AccessEnd, Role};

/// Why an end of access was not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessRefusal {
    /// Unknown, signed out already, or her invite used or withdrawn.
    Unknown,
    /// An administrator's access is ended by signing her out, where the
    /// relay can refuse to leave the home with none.
    Administrator,
}

impl AccessRefusal {
    /// In words for the administrator.
    pub fn words(self) -> &'static str {
        match self {
            AccessRefusal::Unknown => {
                "That person is not on the team or invited: she may have been signed out already."
            }
            AccessRefusal::Administrator => {
                "Administrators cannot have an end date. Sign her out instead when she leaves."
            }
        }
    }
}

/// A person whose access ended, signed out by the relay: her phones, to be
/// told as any revocation's are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    pub user: UserId,
    pub devices: Vec<DeviceId>,
}

/// `at` as the audit log writes it: to the minute, in UTC (the relay knows
/// no time zone; the phones show the audit log's own times in theirs).
pub fn utc_minute(at: UnixMillis) -> String {
    let minutes = at.0 / 60_000;
    let (days, minute_of_day) = (minutes / 1440, minutes % 1440);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

fn until_words(ends_at: Option<UnixMillis>) -> String {
    ends_at.map_or_else(
        || "no end".to_owned(),
        |at| format!("until {}", utc_minute(at)),
    )
}

impl Store {
    /// Moves or lifts the end of `user`'s access: a current person's, or an
    /// unused invite's. Staff only: an administrator's access is ended by
    /// signing her out, where the relay can refuse to leave none.
    pub async fn set_access_ends(
        &self,
        actor: UserId,
        user: UserId,
        ends_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<Result<(), AccessRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let ends = ends_at.map(|at| to_i64(at.0));
        let person: Option<String> =
            sqlx::query_scalar("SELECT role FROM users WHERE id = $1 AND revoked_at IS NULL")
                .bind(&user.as_bytes()[..])
                .fetch_optional(&mut *tx)
                .await?;
        let invite: Option<String> = sqlx::query_scalar(
            "SELECT role FROM invites WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&user.as_bytes()[..])
        .fetch_optional(&mut *tx)
        .await?;
        let (table, role) = match (person, invite) {
            (Some(role), _) => ("users", role),
            (None, Some(role)) => ("invites", role),
            (None, None) => return Ok(Err(AccessRefusal::Unknown)),
        };
        if role_from_name(&role) == Role::Administrator {
            return Ok(Err(AccessRefusal::Administrator));
        }
        // Only while she is still on the team (or her invite still unused):
        // a sign-out or a redeem racing this one on another connection
        // leaves nothing to change, and the administrator is told so.
        let changed = if table == "users" {
            sqlx::query("UPDATE users SET access_ends_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        } else {
            sqlx::query(
                "UPDATE invites SET access_ends_at = $2
                  WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
            )
        }
        .bind(&user.as_bytes()[..])
        .bind(ends)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Ok(Err(AccessRefusal::Unknown));
        }
        audit(
            &mut tx,
            now,
            actor,
            "end of access changed",
            &format!("person {user}, {}", until_words(ends_at)),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The people and unused invites whose access ends, soonest first.
    pub async fn access_ends(&self, now: UnixMillis) -> Result<Vec<AccessEnd>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT id, access_ends_at, 0 FROM users
               WHERE access_ends_at IS NOT NULL AND revoked_at IS NULL
             UNION ALL
             SELECT user_id, access_ends_at, 1 FROM invites
               WHERE access_ends_at IS NOT NULL AND used_at IS NULL AND revoked_at IS NULL
                 AND expires_at > $1 AND access_ends_at > $1
             ORDER BY 2, 1",
        )
        .bind(to_i64(now.0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(user, ends_at, invited)| {
                Ok(AccessEnd {
                    user: UserId::from_bytes(id16(&user)?),
                    ends_at: UnixMillis(u64::try_from(ends_at).unwrap_or(0)),
                    invited: invited == 1,
                })
            })
            .collect()
    }

    /// Signs out everyone whose access ended by `now`, each in a
    /// transaction of her own (in id order, so that relays sweeping at once
    /// take the rows in the same order), with a line each in the audit log
    /// under no person's name. Returns whom, with their phones, for the
    /// connections and fellow members to be told.
    pub async fn end_access_due(&self, now: UnixMillis) -> Result<Vec<Ended>, StoreError> {
        // A read first, outside the write gate: most sweeps find nobody.
        let due: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT id FROM users WHERE access_ends_at IS NOT NULL AND access_ends_at <= $1
               AND revoked_at IS NULL ORDER BY id",
        )
        .bind(to_i64(now.0))
        .fetch_all(&self.pool)
        .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut ended = Vec::new();
        for user in due {
            let user = UserId::from_bytes(id16(&user)?);
            // One transaction each: one person's trouble holds up nobody
            // else's sign-out.
            match self.end_access_of(user, now).await {
                Ok(Some(devices)) => ended.push(Ended { user, devices }),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, %user, "could not end a person's access"),
            }
        }
        Ok(ended)
    }

    /// Signs `user` out if her access has ended by `now` and she is still
    /// on the team (checked inside the write: an administrator may have
    /// moved the date, or signed her out, since the sweep looked). Returns
    /// her phones, or `None` if there was nothing to do.
    async fn end_access_of(
        &self,
        user: UserId,
        now: UnixMillis,
    ) -> Result<Option<Vec<DeviceId>>, StoreError> {
        let mut tx = self.begin_write().await?;
        self.hold_devices(&mut tx, None, Some(user)).await?;
        let still_due = sqlx::query(
            "UPDATE users SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
               AND role <> 'administrator'
               AND access_ends_at IS NOT NULL AND access_ends_at <= $2",
        )
        .bind(&user.as_bytes()[..])
        .bind(to_i64(now.0))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if still_due != 1 {
            return Ok(None);
        }
        let devices = revoke_devices_of(&mut tx, user, now).await?;
        audit(
            &mut tx,
            now,
            None,
            "access ended",
            &format!(
                "person {user}, {} devices, at the end of access set for her",
                devices.len()
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(devices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_read_as_utc_dates() {
        assert_eq!(utc_minute(UnixMillis(0)), "1970-01-01 00:00 UTC");
        // 2026-12-14 18:05 UTC, and a leap day.
        assert_eq!(
            utc_minute(UnixMillis(1_797_271_500_000)),
            "2026-12-14 18:05 UTC"
        );
        assert_eq!(
            utc_minute(UnixMillis(1_709_164_800_000)),
            "2024-02-29 00:00 UTC"
        );
    }
}
