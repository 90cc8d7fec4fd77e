//! Revoked devices still on groups' member lists: which ones each member should remove by a commit, and whom to tell when a device is revoked.
//!
//! A revocation ends a device's connections and refuses everything it
//! sends, but only a commit takes it out of a group's MLS state: until then
//! its keys would open what is sent there. The relay cannot make that
//! commit (it holds no group secrets), so it tells the members who can
//! (SECURITY.md, "Revocation that removes"): in clinical groups and
//! emergency broadcasts, where every phone refuses a membership change
//! from anyone but an administrator, only administrators' devices.

use super::{id16, Store, StoreError};
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::wire::RevokedInGroup;
use huddle_core::wire::Role;

/// The most groups one `RevokedMembers` frame names; the rest follow once
/// those are removed (at the next sign-in, or the next revocation).
pub const MAX_GROUPS_PER_NOTICE: usize = 64;

/// The most devices of one group a notice names: one commit removes at
/// most this many, well inside the relay's limit per commit.
pub const MAX_DEVICES_PER_GROUP: usize = 100;

impl Store {
    /// The revoked devices (or devices of revoked people) still members of
    /// the groups `device` is in, by group: of the groups it may change.
    pub async fn revoked_members(
        &self,
        device: DeviceId,
    ) -> Result<Vec<RevokedInGroup>, StoreError> {
        let administrator = matches!(self.role_of(device).await?, Some((_, Role::Administrator)));
        let only_open_groups = if administrator {
            ""
        } else {
            "AND g.kind NOT IN ('clinical', 'emergency_broadcast')"
        };
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT gone.group_id, gone.device_id
             FROM members mine
             JOIN groups g ON g.id = mine.group_id
             JOIN members gone ON gone.group_id = mine.group_id AND gone.removed_seq IS NULL
             JOIN devices d ON d.id = gone.device_id
             LEFT JOIN users u ON u.id = d.user_id
             WHERE mine.device_id = $1 AND mine.removed_seq IS NULL
               AND gone.device_id <> $1
               AND (d.revoked_at IS NOT NULL OR u.revoked_at IS NOT NULL)
               {only_open_groups}
             ORDER BY gone.group_id, gone.device_id
             LIMIT $2"
        ))
        .bind(&device.as_bytes()[..])
        .bind((MAX_GROUPS_PER_NOTICE * MAX_DEVICES_PER_GROUP) as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut groups: Vec<RevokedInGroup> = Vec::new();
        for (group, gone) in rows {
            let group = GroupId::from_bytes(id16(&group)?);
            let gone = DeviceId::from_bytes(id16(&gone)?);
            let full = groups.len() >= MAX_GROUPS_PER_NOTICE;
            match groups.last_mut() {
                Some(last) if last.group == group => {
                    if last.devices.len() < MAX_DEVICES_PER_GROUP {
                        last.devices.push(gone);
                    }
                }
                _ if full => break,
                _ => groups.push(RevokedInGroup {
                    group,
                    devices: vec![gone],
                }),
            }
        }
        Ok(groups)
    }

    /// The devices, not revoked themselves, that share a group with any of
    /// `revoked`: those to tell.
    pub async fn fellow_members(&self, revoked: &[DeviceId]) -> Result<Vec<DeviceId>, StoreError> {
        let mut fellows = Vec::new();
        for device in revoked {
            let ids: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT DISTINCT other.device_id
                 FROM members gone
                 JOIN members other ON other.group_id = gone.group_id AND other.removed_seq IS NULL
                 WHERE gone.device_id = $1 AND gone.removed_seq IS NULL
                   AND other.device_id <> $1",
            )
            .bind(&device.as_bytes()[..])
            .fetch_all(&self.pool)
            .await?;
            for id in ids {
                fellows.push(DeviceId::from_bytes(id16(&id)?));
            }
        }
        fellows.sort();
        fellows.dedup();
        fellows.retain(|d| !revoked.contains(d));
        Ok(fellows)
    }
}
