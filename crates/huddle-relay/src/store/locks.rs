//! Passcode locks: the share the relay holds for each locked phone, released on a proof of the passcode; wrong guesses counted, and the share destroyed at the tenth.
//!
//! See SECURITY.md, "The lost phone". What the relay stores opens nothing by
//! itself: the share is half of the unlock key's input, the other half is
//! derived from the passcode on the phone. The verifier lets the relay check
//! a proof, and would let someone with this database search the passcode
//! offline at Argon2id's cost.

use super::people::audit;
use super::{id16, to_i64, Store, StoreError};
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::passcode::{
    unlock_transcript, Share, Verifier, NONCE_LEN_UNLOCK, SHARE_LEN, VERIFIER_LEN,
};
use huddle_core::retention::UnixMillis;
use sqlx::Row;

/// Wrong passcodes in a row before the share is destroyed.
pub const MAX_WRONG_PASSCODES: u32 = 10;

/// How long an unlock nonce may be answered.
pub const UNLOCK_NONCE_MILLIS: u64 = 60_000;

/// What an unlock attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlocked {
    /// The passcode was right: the share.
    Released(Share),
    /// It was wrong; this many guesses are left.
    Wrong { left: u32 },
    /// It was the last wrong guess: the share and the verifier are gone,
    /// and the device is revoked (unless it is the last administrator's
    /// last phone, which then simply never unlocks again).
    Destroyed,
}

/// Why an unlock was not even tried (no guess is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockRefusal {
    /// No lock is set for this device (or it was destroyed).
    NoLock,
    /// The device is revoked.
    Revoked,
    /// The nonce is not the one handed out, or it is too old, or used.
    StaleNonce,
    /// The request is not signed by the phone's lock key: someone without
    /// the phone cannot spend its guesses.
    BadSignature,
}

impl Store {
    /// Sets (or replaces, when the passcode is changed) a device's lock.
    pub async fn set_passcode_lock(
        &self,
        device: DeviceId,
        lock_key: &[u8],
        verifier: &[u8; VERIFIER_LEN],
        share: &[u8; SHARE_LEN],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM passcode_locks WHERE device_id = $1")
            .bind(&device.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO passcode_locks (device_id, lock_key, verifier, share, failures, set_at)
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(&device.as_bytes()[..])
        .bind(lock_key)
        .bind(&verifier[..])
        .bind(&share[..])
        .bind(to_i64(now.0))
        .execute(&mut *tx)
        .await?;
        // Kept on the device too, past the lock's destruction: see
        // `unlock_nonce`.
        sqlx::query("UPDATE devices SET lock_key = $2 WHERE id = $1")
            .bind(&device.as_bytes()[..])
            .bind(lock_key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the nonce the device's next unlock must answer (replacing
    /// any earlier one), if the request is signed by the device's lock key
    /// (`signed` checks that, given the key): otherwise anyone who knows the
    /// device's id could keep replacing its nonce and stop it unlocking.
    pub async fn unlock_nonce(
        &self,
        device: DeviceId,
        nonce: &[u8; NONCE_LEN_UNLOCK],
        signed: impl FnOnce(&[u8]) -> bool,
        now: UnixMillis,
    ) -> Result<Result<(), UnlockRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(refusal) = refusal_before_unlock(&mut tx, device).await? {
            drop(tx);
            // A signed-out phone on its lock screen hears "signed out" and
            // wipes itself; when the request is its own (signed with the
            // lock key it had), its administrator may be told so. The
            // signature is checked outside any write transaction: a stranger
            // naming a revoked device must not hold up the writer.
            if refusal == UnlockRefusal::Revoked {
                let kept: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT lock_key FROM devices WHERE id = $1")
                        .bind(&device.as_bytes()[..])
                        .fetch_optional(&self.pool)
                        .await?;
                if kept.flatten().is_some_and(|key| signed(&key)) {
                    self.told_to_wipe(device, now).await?;
                }
            }
            return Ok(Err(refusal));
        }
        let lock_key: Vec<u8> =
            sqlx::query_scalar("SELECT lock_key FROM passcode_locks WHERE device_id = $1")
                .bind(&device.as_bytes()[..])
                .fetch_one(&mut *tx)
                .await?;
        if !signed(&lock_key) {
            return Ok(Err(UnlockRefusal::BadSignature));
        }
        sqlx::query(
            "UPDATE passcode_locks SET nonce = $2, nonce_expires = $3 WHERE device_id = $1",
        )
        .bind(&device.as_bytes()[..])
        .bind(&nonce[..])
        .bind(to_i64(now.saturating_add_millis(UNLOCK_NONCE_MILLIS).0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Checks an unlock: the nonce (claimed once, and only if it is the one
    /// handed out), the lock key's signature, then the proof. A wrong proof
    /// counts; the tenth in a row destroys the share and the verifier and
    /// revokes the device.
    ///
    /// Each step is one statement that re-checks what it changes, so that
    /// requests racing each other on PostgreSQL (where a transaction sees
    /// others' commits) cannot answer one nonce twice or count two wrong
    /// guesses as one: the claim holds the lock row until this commits, and
    /// a second claim of the same nonce then finds it gone.
    pub async fn try_unlock(
        &self,
        device: DeviceId,
        nonce: &[u8; NONCE_LEN_UNLOCK],
        proof: &[u8],
        signature: &[u8],
        now: UnixMillis,
    ) -> Result<Result<Unlocked, UnlockRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(refusal) = refusal_before_unlock(&mut tx, device).await? {
            return Ok(Err(refusal));
        }
        // A nonce that is not the one handed out (or too old) leaves the
        // real one alone: a stranger cannot wear it out.
        let claimed = sqlx::query(
            "UPDATE passcode_locks SET nonce = NULL, nonce_expires = NULL
             WHERE device_id = $1 AND nonce = $2 AND nonce_expires > $3
             RETURNING lock_key, verifier, share",
        )
        .bind(&device.as_bytes()[..])
        .bind(&nonce[..])
        .bind(to_i64(now.0))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = claimed else {
            return Ok(Err(UnlockRefusal::StaleNonce));
        };
        let lock_key: Vec<u8> = row.try_get(0)?;
        let verifier: Vec<u8> = row.try_get(1)?;
        let share: Vec<u8> = row.try_get(2)?;
        if !crate::auth::verify_signature(
            &lock_key,
            &unlock_transcript(device, nonce, proof),
            signature,
        ) {
            tx.commit().await?;
            return Ok(Err(UnlockRefusal::BadSignature));
        }
        let verifier: [u8; VERIFIER_LEN] = verifier
            .try_into()
            .map_err(|_| StoreError::Corrupt("a passcode verifier of the wrong length"))?;
        let share: [u8; SHARE_LEN] = share
            .try_into()
            .map_err(|_| StoreError::Corrupt("a share of the wrong length"))?;
        if Verifier::from_bytes(verifier).check(nonce, device, proof) {
            sqlx::query("UPDATE passcode_locks SET failures = 0 WHERE device_id = $1")
                .bind(&device.as_bytes()[..])
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Ok(Unlocked::Released(Share::from_bytes(share))));
        }
        let failures: i64 = sqlx::query_scalar(
            "UPDATE passcode_locks SET failures = failures + 1 WHERE device_id = $1
             RETURNING failures",
        )
        .bind(&device.as_bytes()[..])
        .fetch_one(&mut *tx)
        .await?;
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        if failures < MAX_WRONG_PASSCODES {
            tx.commit().await?;
            return Ok(Ok(Unlocked::Wrong {
                left: MAX_WRONG_PASSCODES - failures,
            }));
        }
        self.destroy(&mut tx, device, now).await?;
        tx.commit().await?;
        Ok(Ok(Unlocked::Destroyed))
    }

    /// The tenth wrong guess: the share and the verifier go, and the device
    /// is revoked as an administrator would revoke it (waiting for its
    /// appends in flight, never leaving the home without an administrator).
    async fn destroy(
        &self,
        tx: &mut sqlx::AnyConnection,
        device: DeviceId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.hold_administrators(&mut *tx).await?;
        sqlx::query("DELETE FROM passcode_locks WHERE device_id = $1")
            .bind(&device.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
        let (owner, role): (Vec<u8>, String) = sqlx::query_as(
            "SELECT u.id, u.role FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1",
        )
        .bind(&device.as_bytes()[..])
        .fetch_one(&mut *tx)
        .await?;
        let owner = UserId::from_bytes(id16(&owner)?);
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices d JOIN users u ON u.id = d.user_id
             WHERE u.role = 'administrator' AND u.revoked_at IS NULL
               AND d.revoked_at IS NULL AND d.id <> $1",
        )
        .bind(&device.as_bytes()[..])
        .fetch_one(&mut *tx)
        .await?;
        // The last administrator's last phone is not revoked (the home would
        // have no administrator left); without its share it never unlocks.
        if !(role == "administrator" && others == 0) {
            self.hold_devices(&mut *tx, Some(device), None).await?;
            sqlx::query("UPDATE devices SET revoked_at = $2 WHERE id = $1")
                .bind(&device.as_bytes()[..])
                .bind(to_i64(now.0))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE devices SET wiped_at = $2 WHERE id = $1 AND wiped_at IS NULL")
            .bind(&device.as_bytes()[..])
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
        audit(
            &mut *tx,
            now,
            owner,
            "phone wiped after ten wrong passcodes",
            &format!("device {device}"),
        )
        .await
    }
}

/// Why a device may not try to unlock at all, if it may not.
async fn refusal_before_unlock(
    tx: &mut sqlx::AnyConnection,
    device: DeviceId,
) -> Result<Option<UnlockRefusal>, StoreError> {
    let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT d.revoked_at, u.revoked_at, l.set_at
         FROM devices d JOIN users u ON u.id = d.user_id
         LEFT JOIN passcode_locks l ON l.device_id = d.id
         WHERE d.id = $1",
    )
    .bind(&device.as_bytes()[..])
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match row {
        None => Some(UnlockRefusal::NoLock),
        Some((Some(_), _, _)) | Some((_, Some(_), _)) => Some(UnlockRefusal::Revoked),
        Some((None, None, None)) => Some(UnlockRefusal::NoLock),
        Some((None, None, Some(_))) => None,
    })
}
