//! The passcode lock as the worker keeps it: the lock record (both data keys wrapped under the unlock key, the offline copy of the share), and the rules for opening it with the relay's share or, for a while, without it.
//!
//! Plain Rust, tested natively; `browser.rs` stores the record and asks the
//! relay. See SECURITY.md, "The lost phone".

use huddle_core::at_rest::{DataKey, KEY_LEN, NONCE_LEN};
use huddle_core::crypto_worker::{
    LockStatus, PageKey, PasscodeText, WorkerError, WorkerErrorKind, WorkerResponse,
};
use huddle_core::ids::{DeviceId, OrgId};
use huddle_core::passcode::{self, Passcode, Share, Stretched, SHARE_LEN};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{LockSecrets, PhonePolicy};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Wrong passcodes this phone allows itself without the relay before it
/// deletes its offline copy of the share.
pub const LOCAL_GUESSES: u32 = 5;

/// What each wrapped key is for, bound to it, so that one cannot be passed
/// off as another.
const WORKER_KEY_PURPOSE: &str = "huddle worker data key";
const PAGE_KEY_PURPOSE: &str = "huddle page data key";

/// The offline copy's purpose names the time it was made: moving the time
/// on makes the copy fail to open.
fn offline_purpose(made_at: UnixMillis) -> String {
    format!("huddle offline share {}", made_at.0)
}

/// The lock, as stored in the worker's database. Its secrets are wrapped;
/// the rest (ids, times, counts, policy) is not secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub org: OrgId,
    pub device: DeviceId,
    /// The lock key's public half, as the relay has it.
    pub lock_public: Vec<u8>,
    /// The worker's data key, wrapped under the unlock key.
    pub worker_key: Vec<u8>,
    /// The page's data key, wrapped under the unlock key.
    pub page_key: Vec<u8>,
    /// The share, sealed under the offline key, and when.
    pub offline: Option<OfflineCopy>,
    /// Wrong passcodes tried against the offline copy since it was made.
    pub offline_failures: u32,
    /// The latest time this phone has seen: a clock turned back does not
    /// bring an expired copy back.
    pub latest_time: UnixMillis,
    /// The last unlock with the relay (or the setting of the passcode).
    pub last_relay_unlock: UnixMillis,
    /// What the organisation asked, as of the last unlock with the relay.
    pub policy: PhonePolicy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineCopy {
    pub made_at: UnixMillis,
    pub sealed: Vec<u8>,
}

/// A lock made in memory, waiting for the relay to keep its half.
pub struct NewLock {
    pub record: LockRecord,
    /// The lock key's private half: kept apart, wrapped by WebCrypto.
    pub lock_private: Zeroizing<Vec<u8>>,
    /// What the relay keeps.
    pub secrets: LockSecrets,
    /// The worker's data key, unchanged: the worker keeps using it.
    pub worker_key: DataKey,
}

impl NewLock {
    /// The worker's answer: what the relay is to keep of this lock.
    pub fn relay_half(&self) -> WorkerResponse {
        WorkerResponse::PasscodeLock {
            lock_key: self.record.lock_public.clone(),
            secrets: self.secrets.clone(),
        }
    }
}

impl std::fmt::Debug for NewLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLock")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

fn passcode_error(message: String) -> WorkerError {
    WorkerError {
        kind: WorkerErrorKind::Passcode,
        message,
    }
}

fn damaged() -> WorkerError {
    WorkerError {
        kind: WorkerErrorKind::Storage,
        message: "the lock record is damaged".into(),
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, WorkerError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::getrandom(&mut bytes[..]).map_err(|_| WorkerError {
        kind: WorkerErrorKind::Storage,
        message: "no secure random numbers".into(),
    })?;
    Ok(bytes)
}

fn wrap(kek: &DataKey, purpose: &str, key: &[u8]) -> Result<Vec<u8>, WorkerError> {
    let nonce = random::<NONCE_LEN>()?;
    Ok(passcode::wrap(kek, *nonce, purpose, key))
}

/// Stretches a passcode typed to unlock (the slow step: Argon2id).
pub fn stretch_typed(
    typed: &PasscodeText,
    org: OrgId,
    device: DeviceId,
) -> Result<Stretched, WorkerError> {
    let passcode = Passcode::typed(typed.as_str()).map_err(|e| passcode_error(e.to_string()))?;
    Ok(passcode::stretch(&passcode, org, device))
}

/// Makes a lock for a passcode just chosen: checks it against the rules,
/// stretches it, makes the share and the lock key, and wraps both data keys.
#[allow(clippy::too_many_arguments)]
pub fn make(
    typed: &PasscodeText,
    org: OrgId,
    device: DeviceId,
    worker_key: DataKey,
    page_key: &PageKey,
    policy: PhonePolicy,
    now: UnixMillis,
) -> Result<NewLock, WorkerError> {
    let passcode = Passcode::new(typed.as_str()).map_err(|e| passcode_error(e.to_string()))?;
    if page_key.as_bytes().len() != KEY_LEN {
        return Err(passcode_error("the page's key is not a key".into()));
    }
    let policy = bounded(policy);
    let stretched = passcode::stretch(&passcode, org, device);
    let share = Share::from_bytes(*random::<SHARE_LEN>()?);
    let kek = stretched.unlock_key(&share);
    let signer = huddle_mls::identity::DeviceSigner::generate().map_err(|_| WorkerError {
        kind: WorkerErrorKind::Storage,
        message: "could not make a lock key".into(),
    })?;
    let (lock_private, lock_public) = signer.export();
    let record = LockRecord {
        org,
        device,
        lock_public,
        worker_key: wrap(&kek, WORKER_KEY_PURPOSE, &worker_key.to_bytes()[..])?,
        page_key: wrap(&kek, PAGE_KEY_PURPOSE, page_key.as_bytes())?,
        offline: seal_offline(&stretched, &share, now, policy)?,
        offline_failures: 0,
        latest_time: now,
        last_relay_unlock: now,
        policy,
    };
    Ok(NewLock {
        record,
        lock_private,
        secrets: LockSecrets {
            verifier: stretched.verifier().as_bytes().to_vec(),
            share: share.as_bytes().to_vec(),
        },
        worker_key,
    })
}

/// The offline copy of the share, if the organisation allows unlocking
/// without the relay.
fn seal_offline(
    stretched: &Stretched,
    share: &Share,
    now: UnixMillis,
    policy: PhonePolicy,
) -> Result<Option<OfflineCopy>, WorkerError> {
    if policy.offline_unlock_secs == 0 {
        return Ok(None);
    }
    Ok(Some(OfflineCopy {
        made_at: now,
        sealed: wrap(
            &stretched.offline_key(),
            &offline_purpose(now),
            share.as_bytes(),
        )?,
    }))
}

/// Both data keys, unwrapped with the unlock key. A wrong share (or a
/// record tampered with) fails.
pub fn open(
    record: &LockRecord,
    stretched: &Stretched,
    share: &Share,
) -> Result<(DataKey, PageKey), WorkerError> {
    let kek = stretched.unlock_key(share);
    let worker =
        passcode::unwrap(&kek, WORKER_KEY_PURPOSE, &record.worker_key).map_err(|_| damaged())?;
    let page = passcode::unwrap(&kek, PAGE_KEY_PURPOSE, &record.page_key).map_err(|_| damaged())?;
    let worker: [u8; KEY_LEN] = worker[..].try_into().map_err(|_| damaged())?;
    if page.len() != KEY_LEN {
        return Err(damaged());
    }
    Ok((DataKey::from_bytes(worker), PageKey::new(page.to_vec())))
}

impl LockRecord {
    /// The later of the phone's clock and the latest time it has seen.
    fn effective_now(&self, now: UnixMillis) -> UnixMillis {
        UnixMillis(now.0.max(self.latest_time.0))
    }

    fn offline_until(&self) -> Option<UnixMillis> {
        let copy = self.offline.as_ref()?;
        let grace = self.policy.offline_unlock_secs.saturating_mul(1000);
        (grace > 0).then(|| UnixMillis(copy.made_at.0.saturating_add(grace)))
    }

    /// Where the lock stands at `now`; deletes the offline copy whose time
    /// is over. The caller stores the record again.
    pub fn status(&mut self, now: UnixMillis) -> LockStatus {
        let now = self.effective_now(now);
        self.latest_time = now;
        if self.offline_until().is_none_or(|until| now.0 > until.0) {
            self.offline = None;
        }
        let max_offline = self.policy.max_offline_secs.saturating_mul(1000);
        LockStatus {
            locked: true,
            away_too_long: max_offline > 0
                && now.0.saturating_sub(self.last_relay_unlock.0) > max_offline,
            offline_until: self.offline_until(),
        }
    }

    /// Counts a guess against the offline copy before it is tried (so that
    /// guesses racing each other, in several tabs, are all counted), and
    /// hands the copy over; `None` if there is no copy to try.
    pub fn claim_offline_guess(&mut self, now: UnixMillis) -> Option<OfflineCopy> {
        self.status(now);
        if self.offline_failures >= LOCAL_GUESSES {
            self.offline = None;
        }
        let copy = self.offline.clone()?;
        self.offline_failures = self.offline_failures.saturating_add(1);
        Some(copy)
    }

    /// After a claimed guess: a right one clears the count; a wrong one
    /// stays counted, and the last one deletes the copy. How many are left.
    pub fn offline_guess_was(&mut self, right: bool) -> u32 {
        if right {
            self.offline_failures = 0;
            return LOCAL_GUESSES;
        }
        let left = LOCAL_GUESSES.saturating_sub(self.offline_failures);
        if left == 0 {
            self.offline = None;
        }
        left
    }

    /// Tries the offline copy with a passcode typed without the relay: the
    /// claim, the try and its outcome, on one record.
    pub fn try_offline(&mut self, stretched: &Stretched, now: UnixMillis) -> OfflineTry {
        let Some(copy) = self.claim_offline_guess(now) else {
            return OfflineTry::Unavailable;
        };
        match open_offline(&copy, stretched) {
            Some(share) => {
                self.offline_guess_was(true);
                OfflineTry::Opened(share)
            }
            None => OfflineTry::Wrong {
                left: self.offline_guess_was(false),
            },
        }
    }

    /// After an unlock with the relay: a fresh offline copy, the count
    /// reset, and the organisation's current policy.
    pub fn unlocked_with_relay(
        &mut self,
        stretched: &Stretched,
        share: &Share,
        policy: PhonePolicy,
        now: UnixMillis,
    ) -> Result<(), WorkerError> {
        let now = self.effective_now(now);
        let policy = bounded(policy);
        self.policy = policy;
        self.latest_time = now;
        self.last_relay_unlock = now;
        self.offline_failures = 0;
        self.offline = seal_offline(stretched, share, now, policy)?;
        Ok(())
    }
}

/// The share from the offline copy, if this is the passcode that sealed it.
pub fn open_offline(copy: &OfflineCopy, stretched: &Stretched) -> Option<Share> {
    let bytes = passcode::unwrap(
        &stretched.offline_key(),
        &offline_purpose(copy.made_at),
        &copy.sealed,
    )
    .ok()?;
    <[u8; SHARE_LEN]>::try_from(&bytes[..])
        .ok()
        .map(Share::from_bytes)
}

/// The longest an organisation may let a phone unlock without the relay:
/// a relay that says more (or a damaged answer) is not believed.
pub const MAX_OFFLINE_UNLOCK_SECS: u64 = 72 * 60 * 60;

/// The policy as this phone applies it: the offline grace at most
/// [`MAX_OFFLINE_UNLOCK_SECS`], and never past the time after which the
/// phone wipes itself.
pub fn bounded(mut policy: PhonePolicy) -> PhonePolicy {
    policy.offline_unlock_secs = policy.offline_unlock_secs.min(MAX_OFFLINE_UNLOCK_SECS);
    if policy.max_offline_secs > 0 {
        policy.offline_unlock_secs = policy.offline_unlock_secs.min(policy.max_offline_secs);
    }
    policy
}

/// What trying the offline copy found.
#[derive(Debug)]
pub enum OfflineTry {
    Opened(Share),
    /// Wrong passcode; `left` more may be tried here (0: the copy is gone).
    Wrong {
        left: u32,
    },
    /// No copy: never allowed, its time is over, or too many wrong guesses.
    Unavailable,
}

#[cfg(test)]
mod tests;
