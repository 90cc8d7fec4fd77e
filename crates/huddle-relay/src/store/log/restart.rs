//! Restarts of a group's encryption (the repair of a group whose phones stopped at a commit they could not open): what the relay checks, and how its routing follows.
//!
//! The relay cannot see who is in the restarted MLS group; every member's
//! phone compares it with the group it held (SECURITY.md, "Groups that stop,
//! and their repair"). What the relay can check it does: the chain is the
//! next one (checked by the caller, from the epoch), the group keeps its type
//! and retention, the devices named are distinct, active and not the
//! sender, and restarts come at most once a minute.

use super::{
    bind_devices, end_membership, id16, numbered, start_membership, store_welcome, to_i64,
    AnyConnection, StoreError,
};
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{GroupSpec, MembershipChange, Rejection, RESTART_EVERY_MILLIS};
use sqlx::Row;

/// Whether `change`, from `sender`, may restart `group` now: `Ok(Err(_))`
/// says why not.
pub(super) async fn check_restart(
    tx: &mut AnyConnection,
    group: GroupId,
    sender: DeviceId,
    change: &MembershipChange,
    has_welcome: bool,
    spec: GroupSpec,
    now: UnixMillis,
) -> Result<Result<(), Rejection>, StoreError> {
    let refuse = |why: &str| Ok(Err(Rejection::InvalidCommit(why.into())));
    if change.create != Some(spec) {
        return refuse("a repair keeps the group's type and retention");
    }
    if !change.remove.is_empty() || change.add.contains(&sender) {
        return refuse("a repair names the other members it adds, and nothing else");
    }
    // A group of one is not repaired (nobody to talk to); without its
    // welcome, the members it names could never join it.
    if change.add.is_empty() {
        return refuse("a repair restarts the group with its other members");
    }
    if !has_welcome {
        return refuse("a repair carries its welcome");
    }
    let row = sqlx::query("SELECT restarted_at FROM groups WHERE id = $1")
        .bind(&group.as_bytes()[..])
        .fetch_one(&mut *tx)
        .await?;
    let restarted_at: Option<i64> = row.try_get(0)?;
    if restarted_at.is_some_and(|at| {
        now.0.saturating_sub(u64::try_from(at).unwrap_or(0)) < RESTART_EVERY_MILLIS
    }) {
        return Ok(Err(Rejection::RepairedRecently));
    }
    // Only phones still signed in that have been in the group (members
    // now, or removed by a commit the phones could not open): a repair
    // never brings in a stranger.
    let sql = format!(
        "SELECT COUNT(*) FROM devices d JOIN users u ON u.id = d.user_id
         JOIN members m ON m.device_id = d.id AND m.group_id = $1
         WHERE d.revoked_at IS NULL AND u.revoked_at IS NULL AND d.id IN ({})",
        numbered(2, change.add.len())
    );
    let known: i64 = bind_devices(sqlx::query(&sql).bind(&group.as_bytes()[..]), &change.add)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    if usize::try_from(known).ok() != Some(change.add.len()) {
        return refuse("a repair adds only phones of the group that are still signed in");
    }
    Ok(Ok(()))
}

/// The routing after a restart at `seq`: signed-out members it leaves out
/// stop at it, devices it brings back start at it (they read the restart's
/// entry, which names who made it: a phone checks that), members who
/// continue keep their place (so a phone that was only offline still reads
/// what came before), and every device it adds gets its welcome. A member
/// still signed in whom it leaves out stays routed: only the phones decide
/// who is in a group, and hers, left out, restarts the group again (a
/// restart cannot take a group away from its members at the relay).
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_restart(
    tx: &mut AnyConnection,
    group: GroupId,
    seq: u64,
    sender: DeviceId,
    members: &[DeviceId],
    change: &MembershipChange,
    welcome: Option<&[u8]>,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let in_restart = |device: &DeviceId| *device == sender || change.add.contains(device);
    let left_out: Vec<DeviceId> = members.iter().copied().filter(|m| !in_restart(m)).collect();
    let mut signed_out = Vec::new();
    for chunk in left_out.chunks(super::DEVICES_PER_STATEMENT) {
        let sql = format!(
            "SELECT d.id FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.id IN ({}) AND (d.revoked_at IS NOT NULL OR u.revoked_at IS NOT NULL)",
            numbered(1, chunk.len())
        );
        let rows_found = bind_devices(sqlx::query(&sql), chunk)
            .fetch_all(&mut *tx)
            .await?;
        for row in rows_found {
            let id: Vec<u8> = row.try_get(0)?;
            signed_out.push(DeviceId::from_bytes(id16(&id)?));
        }
    }
    let new: Vec<DeviceId> = change
        .add
        .iter()
        .copied()
        .filter(|d| !members.contains(d))
        .collect();
    let group_bytes = &group.as_bytes()[..];
    end_membership(tx, group_bytes, seq, &signed_out).await?;
    // Brought back, they read the restart's entry itself.
    start_membership(tx, group_bytes, seq.saturating_sub(1), &new).await?;
    if let Some(welcome) = welcome {
        store_welcome(tx, group_bytes, seq, welcome, &change.add, now).await?;
    }
    sqlx::query("UPDATE groups SET restarted_at = $2 WHERE id = $1")
        .bind(group_bytes)
        .bind(to_i64(now.0))
        .execute(&mut *tx)
        .await?;
    let list = |devices: &[DeviceId]| {
        devices
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut subject = format!("group {group}: {} devices", change.add.len() + 1);
    if !left_out.is_empty() {
        subject.push_str(&format!("; left out: {}", list(&left_out)));
    }
    sqlx::query(
        "INSERT INTO audit (at, actor, action, subject)
         VALUES ($1, (SELECT user_id FROM devices WHERE id = $2), $3, $4)",
    )
    .bind(to_i64(now.0))
    .bind(&sender.as_bytes()[..])
    .bind("group repaired")
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
