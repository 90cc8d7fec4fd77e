//! The organisation's people and their devices: the first-run setup link, invites, joining with a device, roles, revocation, the directory and the audit log.
//!
//! One relay serves one organisation (a care home, a council team). Secrets
//! in links are stored only as SHA-256 hashes, are single use, and never
//! appear in logs. Every change to who may take part is written to the
//! audit log, with ids and names and never any message content.

use super::{id16, to_i64, to_u64, Engine, Store, StoreError};
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{
    AuditEntry, DeviceSeen, Person, Refusal, Role, SignedOutPhone, MAX_SIGNED_OUT_PHONES,
};
use sha2::{Digest, Sha256};

/// The longest display name or organisation name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// The longest an invite may stay valid.
pub const MAX_INVITE_SECS: u64 = 30 * 24 * 60 * 60;

pub fn secret_hash(secret: &[u8]) -> Vec<u8> {
    Sha256::digest(secret).to_vec()
}

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Staff => "staff",
        Role::Administrator => "administrator",
    }
}

pub(super) fn role_from_name(name: &str) -> Role {
    if name == "administrator" {
        Role::Administrator
    } else {
        Role::Staff
    }
}

/// Checks a name a person typed.
pub fn clean_name(name: &str) -> Option<String> {
    let name = name.trim();
    let chars = name.chars().count();
    (chars > 0 && chars <= MAX_NAME_CHARS && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

/// Why a setup link or an invite did not work, in words for the person holding it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error("This link is not valid. Ask your manager for a new one.")]
    Unknown,
    #[error("This invite has already been used. Ask your manager for a new one.")]
    Used,
    #[error("This invite has expired. Ask your manager for a new one.")]
    Expired,
    #[error("This invite was withdrawn. Ask your manager for a new one.")]
    Revoked,
    #[error("Huddle is already set up on this relay.")]
    AlreadySetUp,
    #[error("The device could not prove it holds its key.")]
    BadProof,
    #[error("This device is already registered.")]
    DeviceExists,
    #[error("Names need 1 to {MAX_NAME_CHARS} characters.")]
    BadName,
    #[error("This invite is not finished yet. Ask your manager to make a new one.")]
    NotCertified,
}

/// Why a device or a person was not revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeRefusal {
    /// Unknown, or revoked already.
    Unknown,
    /// The last administrator (or her last device): the home would be left
    /// with nobody who can invite or remove anyone.
    LastAdministrator,
}

/// Records an action in the audit log, inside `tx`: an administrator's, or
/// the relay's own (`None`).
pub(super) async fn audit(
    tx: &mut sqlx::AnyConnection,
    now: UnixMillis,
    actor: impl Into<Option<UserId>>,
    action: &str,
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (at, actor, action, subject) VALUES ($1, $2, $3, $4)")
        .bind(to_i64(now.0))
        .bind(actor.into().map(|actor| actor.as_bytes().to_vec()))
        .bind(action)
        .bind(subject)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Revokes, inside `tx`, every phone of `user` still signed in and
/// destroys their passcode shares; returns the phones. The person's own
/// row is the caller's (an administrator's sign-out, an end of access).
pub(super) async fn revoke_devices_of(
    tx: &mut sqlx::AnyConnection,
    user: UserId,
    now: UnixMillis,
) -> Result<Vec<DeviceId>, StoreError> {
    let devices: Vec<Vec<u8>> = sqlx::query_scalar(
        "UPDATE devices SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(&user.as_bytes()[..])
    .bind(to_i64(now.0))
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM passcode_locks WHERE device_id IN (SELECT id FROM devices WHERE user_id = $1)",
    )
    .bind(&user.as_bytes()[..])
    .execute(&mut *tx)
    .await?;
    devices
        .iter()
        .map(|d| Ok(DeviceId::from_bytes(id16(d)?)))
        .collect()
}

/// Notes, inside `tx`, that the signed-out `device` was told to wipe itself
/// after proving it was that phone: the first time only, with a line in the
/// audit log under its owner's name.
async fn mark_wiped(
    tx: &mut sqlx::AnyConnection,
    device: DeviceId,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let owner: Option<Vec<u8>> = sqlx::query_scalar(
        "UPDATE devices SET wiped_at = $2 WHERE id = $1 AND wiped_at IS NULL RETURNING user_id",
    )
    .bind(&device.as_bytes()[..])
    .bind(to_i64(now.0))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(owner) = owner {
        let owner = UserId::from_bytes(id16(&owner)?);
        audit(
            tx,
            now,
            owner,
            "signed-out phone wiped",
            &format!("device {device}"),
        )
        .await?;
    }
    Ok(())
}

/// Who joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub user: UserId,
    pub display_name: String,
    pub role: Role,
    /// The invite's certificate (none for the setup link).
    pub invite_certificate: Option<Vec<u8>>,
}

impl Store {
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok({
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&self.pool)
                .await?
        })
    }

    /// A member's phone refused an entry: one audit line, if the entry
    /// exists with that sender and the reporter is a member of the group
    /// (so that a phone cannot fill the log with reports about nothing).
    /// True when recorded.
    pub async fn report_refused(
        &self,
        reporter: DeviceId,
        group: GroupId,
        seq: u64,
        sender: DeviceId,
        refusal: Refusal,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let reporter_user: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT d.user_id FROM devices d
             JOIN members m ON m.device_id = d.id AND m.group_id = $2
             JOIN log l ON l.group_id = m.group_id AND l.seq = $3 AND l.sender = $4
             WHERE d.id = $1",
        )
        .bind(&reporter.as_bytes()[..])
        .bind(&group.as_bytes()[..])
        .bind(to_i64(seq))
        .bind(&sender.as_bytes()[..])
        .fetch_optional(&mut *tx)
        .await?;
        let Some(reporter_user) = reporter_user else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO audit (at, actor, action, subject) VALUES ($1, $2, 'refused by a member', $3)",
        )
        .bind(to_i64(now.0))
        .bind(reporter_user)
        .bind(format!(
            "group {group}, entry {seq} from device {sender}: {}",
            refusal.describe()
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes one audit line.
    pub async fn audit(
        &self,
        now: UnixMillis,
        actor: Option<UserId>,
        action: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        audit(&mut tx, now, actor, action, subject).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates the organisation's first administrator and her device, if
    /// the secret is the current setup secret and nobody is registered yet.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_setup(
        &self,
        secret: &[u8],
        org_name: &str,
        display_name: &str,
        user: UserId,
        device: DeviceId,
        public_key: &[u8],
        now: UnixMillis,
    ) -> Result<Result<Joined, LinkRefusal>, StoreError> {
        let (Some(org_name), Some(display_name)) = (clean_name(org_name), clean_name(display_name))
        else {
            return Ok(Err(LinkRefusal::BadName));
        };
        let hash = huddle_core::hex::encode(&secret_hash(secret));
        {
            let mut tx = self.begin_write().await?;
            let stored: Option<String> =
                sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'setup_secret_hash'")
                    .fetch_optional(&mut *tx)
                    .await?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&mut *tx)
                .await?;
            if users > 0 {
                return Ok(Err(LinkRefusal::AlreadySetUp));
            }
            if stored.as_deref() != Some(hash.as_str()) {
                return Ok(Err(LinkRefusal::Unknown));
            }
            sqlx::query("INSERT INTO users (id, display_name, role, created_at) VALUES ($1, $2, 'administrator', $3)")
                .bind(&user.as_bytes()[..])
                .bind(&display_name)
                .bind(to_i64(now.0))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO devices (id, user_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&device.as_bytes()[..])
            .bind(&user.as_bytes()[..])
            .bind(public_key)
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO relay_info (key, value) VALUES ('org_name', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(&org_name)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM relay_info WHERE key = 'setup_secret_hash'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO audit (at, actor, action, subject) VALUES ($1, $2, 'organisation set up', $3)")
                .bind(to_i64(now.0))
                .bind(&user.as_bytes()[..])
                .bind(format!("{org_name}; first administrator {display_name}, device {device}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        };
        Ok(Ok(Joined {
            user,
            display_name,
            role: Role::Administrator,
            invite_certificate: None,
        }))
    }

    /// The person using `device`, with their role; `None` if the device or
    /// the person is unknown or revoked.
    pub async fn role_of(&self, device: DeviceId) -> Result<Option<(UserId, Role)>, StoreError> {
        let row: Option<(Vec<u8>, String)> = {
            sqlx::query_as(
                "SELECT u.id, u.role FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE d.id = $1 AND d.revoked_at IS NULL AND u.revoked_at IS NULL",
            )
            .bind(&device.as_bytes()[..])
            .fetch_optional(&self.pool)
            .await?
        };
        row.map(|(user, role)| Ok((UserId::from_bytes(id16(&user)?), role_from_name(&role))))
            .transpose()
    }

    /// Records an invite (its secret's hash) for a named person. False, and
    /// nothing recorded, if the id is already a person's or an invite's.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invite(
        &self,
        actor: UserId,
        user: UserId,
        secret: &[u8],
        display_name: &str,
        role: Role,
        expires_at: UnixMillis,
        access_ends_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        {
            let mut tx = self.begin_write().await?;
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM users WHERE id = $1 UNION ALL SELECT 1 FROM invites WHERE user_id = $1",
            )
            .bind(&user.as_bytes()[..])
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO invites (user_id, secret_hash, display_name, role, created_by, created_at, expires_at, access_ends_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&user.as_bytes()[..])
            .bind(secret_hash(secret))
            .bind(display_name)
            .bind(role_name(role))
            .bind(&actor.as_bytes()[..])
            .bind(to_i64(now.0))
            .bind(to_i64(expires_at.0))
            .bind(access_ends_at.map(|at| to_i64(at.0)))
            .execute(&mut *tx)
            .await?;
            let until = access_ends_at.map_or_else(String::new, |at| {
                format!(", until {}", super::access_ends::utc_minute(at))
            });
            sqlx::query("INSERT INTO audit (at, actor, action, subject) VALUES ($1, $2, 'invite created', $3)")
                .bind(to_i64(now.0))
                .bind(&actor.as_bytes()[..])
                .bind(format!("{display_name} ({}), person {user}{until}", role_name(role)))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        };
        Ok(true)
    }

    /// Keeps the certificate an administrator's phone made for an unused
    /// invite. False when there is no such invite.
    pub async fn attach_invite_certificate(
        &self,
        user: UserId,
        certificate: &[u8],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE invites SET certificate = $2 WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&user.as_bytes()[..])
        .bind(certificate)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(updated == 1)
    }

    /// Uses an invite: creates the person and registers their first device.
    pub async fn redeem_invite(
        &self,
        secret: &[u8],
        device: DeviceId,
        public_key: &[u8],
        chosen_name: &str,
        now: UnixMillis,
    ) -> Result<Result<Joined, LinkRefusal>, StoreError> {
        // The person may pick the name colleagues see; the invite's name
        // stands if she leaves it empty.
        let chosen_name = clean_name(chosen_name);
        type InviteRow = (
            Vec<u8>,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<Vec<u8>>,
            Option<i64>,
        );
        {
            let mut tx = self.begin_write().await?;
            let invite: Option<InviteRow> = sqlx::query_as(
                "SELECT user_id, display_name, role, expires_at, used_at, revoked_at, certificate, access_ends_at
                 FROM invites WHERE secret_hash = $1",
            )
            .bind(secret_hash(secret))
            .fetch_optional(&mut *tx)
            .await?;
            let Some((
                user,
                display_name,
                role,
                expires_at,
                used_at,
                revoked_at,
                certificate,
                access_ends_at,
            )) = invite
            else {
                return Ok(Err(LinkRefusal::Unknown));
            };
            if used_at.is_some() {
                return Ok(Err(LinkRefusal::Used));
            }
            if revoked_at.is_some() {
                return Ok(Err(LinkRefusal::Revoked));
            }
            // An invite also lapses when the access it grants has ended.
            if expires_at <= to_i64(now.0) || access_ends_at.is_some_and(|at| at <= to_i64(now.0)) {
                return Ok(Err(LinkRefusal::Expired));
            }
            // Without its certificate the person could not be vouched for:
            // refuse before the invite is used up.
            let Some(certificate) = certificate else {
                return Ok(Err(LinkRefusal::NotCertified));
            };
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM devices WHERE id = $1")
                .bind(&device.as_bytes()[..])
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Ok(Err(LinkRefusal::DeviceExists));
            }
            let user = UserId::from_bytes(id16(&user)?);
            let display_name = chosen_name.unwrap_or(display_name);
            // The update only succeeds once: a second use racing this one
            // finds used_at set. It reads the end of access as it claims, so
            // an end an administrator moved meanwhile is the one she gets.
            let claimed: Option<Option<i64>> = sqlx::query_scalar(
                "UPDATE invites SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL
                 RETURNING access_ends_at",
            )
            .bind(&user.as_bytes()[..])
            .bind(to_i64(now.0))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(access_ends_at) = claimed else {
                return Ok(Err(LinkRefusal::Used));
            };
            if access_ends_at.is_some_and(|at| at <= to_i64(now.0)) {
                return Ok(Err(LinkRefusal::Expired));
            }
            sqlx::query(
                "INSERT INTO users (id, display_name, role, created_at, access_ends_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&user.as_bytes()[..])
            .bind(&display_name)
            .bind(&role)
            .bind(to_i64(now.0))
            .bind(access_ends_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO devices (id, user_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&device.as_bytes()[..])
            .bind(&user.as_bytes()[..])
            .bind(public_key)
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO audit (at, actor, action, subject) VALUES ($1, $2, 'joined', $3)",
            )
            .bind(to_i64(now.0))
            .bind(&user.as_bytes()[..])
            .bind(format!("{display_name} ({role}), device {device}"))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(Joined {
                user,
                display_name,
                role: role_from_name(&role),
                invite_certificate: Some(certificate),
            }))
        }
    }

    /// Withdraws an unused invite. Returns false if there was none to withdraw.
    pub async fn revoke_invite(
        &self,
        actor: UserId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE invites SET revoked_at = $2 WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&user.as_bytes()[..])
        .bind(to_i64(now.0))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            audit(
                &mut tx,
                now,
                actor,
                "invite withdrawn",
                &format!("person {user}"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Revokes one device, unless it is unknown, already revoked, or the
    /// last device of the last administrator.
    pub async fn revoke_device(
        &self,
        actor: UserId,
        device: DeviceId,
        now: UnixMillis,
    ) -> Result<Result<(), RevokeRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        self.hold_administrators(&mut tx).await?;
        let owner: Option<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT u.id, u.role FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.id = $1 AND d.revoked_at IS NULL",
        )
        .bind(&device.as_bytes()[..])
        .fetch_optional(&mut *tx)
        .await?;
        let Some((_, role)) = owner else {
            return Ok(Err(RevokeRefusal::Unknown));
        };
        if role_from_name(&role) == Role::Administrator {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT u.id) FROM users u JOIN devices d ON d.user_id = u.id
                 WHERE u.role = 'administrator' AND u.revoked_at IS NULL
                   AND d.revoked_at IS NULL AND d.id <> $1",
            )
            .bind(&device.as_bytes()[..])
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Ok(Err(RevokeRefusal::LastAdministrator));
            }
        }
        self.hold_devices(&mut tx, Some(device), None).await?;
        sqlx::query("UPDATE devices SET revoked_at = $2 WHERE id = $1")
            .bind(&device.as_bytes()[..])
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
        // Its share and verifier: no copy of the phone ever unlocks again.
        sqlx::query("DELETE FROM passcode_locks WHERE device_id = $1")
            .bind(&device.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            now,
            actor,
            "device revoked",
            &format!("device {device}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Revokes a person and all their devices, and returns the devices;
    /// unless the person is unknown, already revoked, or the last
    /// administrator.
    pub async fn revoke_user(
        &self,
        actor: UserId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<Result<Vec<DeviceId>, RevokeRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        self.hold_administrators(&mut tx).await?;
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM users WHERE id = $1 AND revoked_at IS NULL")
                .bind(&user.as_bytes()[..])
                .fetch_optional(&mut *tx)
                .await?;
        let Some(role) = role else {
            return Ok(Err(RevokeRefusal::Unknown));
        };
        if role_from_name(&role) == Role::Administrator {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT u.id) FROM users u JOIN devices d ON d.user_id = u.id
                 WHERE u.role = 'administrator' AND u.revoked_at IS NULL
                   AND d.revoked_at IS NULL AND u.id <> $1",
            )
            .bind(&user.as_bytes()[..])
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Ok(Err(RevokeRefusal::LastAdministrator));
            }
        }
        self.hold_devices(&mut tx, None, Some(user)).await?;
        sqlx::query("UPDATE users SET revoked_at = $2 WHERE id = $1")
            .bind(&user.as_bytes()[..])
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
        let devices = revoke_devices_of(&mut tx, user, now).await?;
        audit(
            &mut tx,
            now,
            actor,
            "person revoked",
            &format!("person {user}, {} devices", devices.len()),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(devices))
    }

    /// Makes concurrent revocations on PostgreSQL take turns, so that two
    /// administrators cannot each revoke the other and leave none. (SQLite
    /// writers take turns anyway.) The lock does not hold up appends: they
    /// take only a key-share lock, which it allows.
    pub(super) async fn hold_administrators(
        &self,
        tx: &mut sqlx::AnyConnection,
    ) -> Result<(), StoreError> {
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT id FROM users WHERE role = 'administrator' FOR NO KEY UPDATE")
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// On PostgreSQL, waits for appends in flight from the devices being
    /// revoked (they hold a key-share lock on their rows until they commit)
    /// and keeps new ones waiting until the revocation commits; they then
    /// find the device revoked. Nothing a device sends after its revocation
    /// is stored.
    pub(super) async fn hold_devices(
        &self,
        tx: &mut sqlx::AnyConnection,
        device: Option<DeviceId>,
        user: Option<UserId>,
    ) -> Result<(), StoreError> {
        if self.engine != Engine::Postgres {
            return Ok(());
        }
        if let Some(device) = device {
            sqlx::query("SELECT id FROM devices WHERE id = $1 FOR UPDATE")
                .bind(&device.as_bytes()[..])
                .execute(&mut *tx)
                .await?;
        }
        if let Some(user) = user {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(&user.as_bytes()[..])
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Everyone who may take part, with their current devices.
    pub async fn directory(&self) -> Result<Vec<Person>, StoreError> {
        type DirectoryRow = (Vec<u8>, String, String, Option<Vec<u8>>);
        let rows: Vec<DirectoryRow> = {
            sqlx::query_as(
                "SELECT u.id, u.display_name, u.role, d.id FROM users u
                 LEFT JOIN devices d ON d.user_id = u.id AND d.revoked_at IS NULL
                 WHERE u.revoked_at IS NULL ORDER BY u.display_name, u.id, d.id",
            )
            .fetch_all(&self.pool)
            .await?
        };
        let mut people: Vec<Person> = Vec::new();
        for (user, display_name, role, device) in rows {
            let user = UserId::from_bytes(id16(&user)?);
            if people.last().is_none_or(|p| p.user != user) {
                people.push(Person {
                    user,
                    display_name,
                    role: role_from_name(&role),
                    devices: Vec::new(),
                });
            }
            if let (Some(device), Some(person)) = (device, people.last_mut()) {
                person.devices.push(DeviceId::from_bytes(id16(&device)?));
            }
        }
        Ok(people)
    }

    /// Notes that `device` signed in now (for its owner's list of phones).
    pub async fn saw_device(&self, device: DeviceId, now: UnixMillis) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE devices SET last_seen = $2 WHERE id = $1")
            .bind(&device.as_bytes()[..])
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A person's devices still signed in, oldest first: when each was
    /// added and when it last signed in.
    pub async fn devices_seen(&self, user: UserId) -> Result<Vec<DeviceSeen>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, created_at, last_seen FROM devices
             WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
        )
        .bind(&user.as_bytes()[..])
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(device, added, seen)| {
                Ok(DeviceSeen {
                    device: DeviceId::from_bytes(id16(&device)?),
                    added_at: UnixMillis(to_u64(added)),
                    last_seen: seen.map(|seen| UnixMillis(to_u64(seen))),
                })
            })
            .collect()
    }

    /// Notes that the signed-out `device` has just been told to wipe
    /// itself on a connection it signed in on (see [`mark_wiped`]).
    pub async fn told_to_wipe(&self, device: DeviceId, now: UnixMillis) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        mark_wiped(&mut tx, device, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Phones signed out since `since`, newest first, at most
    /// [`MAX_SIGNED_OUT_PHONES`]: everyone's, or only `owner`'s.
    pub async fn signed_out_phones(
        &self,
        owner: Option<UserId>,
        since: UnixMillis,
    ) -> Result<Vec<SignedOutPhone>, StoreError> {
        type SignedOutRow = (Vec<u8>, String, Vec<u8>, i64, i64, Option<i64>);
        let rows: Vec<SignedOutRow> = sqlx::query_as(
            "SELECT u.id, u.display_name, d.id, d.created_at, d.revoked_at, d.wiped_at
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.revoked_at IS NOT NULL AND d.revoked_at >= $1
               AND ($2 IS NULL OR u.id = $2)
             ORDER BY d.revoked_at DESC, d.id LIMIT $3",
        )
        .bind(to_i64(since.0))
        .bind(owner.map(|owner| owner.as_bytes().to_vec()))
        .bind(MAX_SIGNED_OUT_PHONES as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(user, display_name, device, added_at, revoked_at, wiped_at)| {
                    Ok(SignedOutPhone {
                        user: UserId::from_bytes(id16(&user)?),
                        display_name,
                        device: DeviceId::from_bytes(id16(&device)?),
                        added_at: UnixMillis(to_u64(added_at)),
                        signed_out_at: UnixMillis(to_u64(revoked_at)),
                        wiped_at: wiped_at.map(|at| UnixMillis(to_u64(at))),
                    })
                },
            )
            .collect()
    }

    /// The audit log, newest first.
    pub async fn read_audit(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        type AuditRow = (i64, i64, Option<Vec<u8>>, String, String);
        let rows: Vec<AuditRow> = {
            sqlx::query_as(
                "SELECT id, at, actor, action, subject FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(before.map_or(i64::MAX, to_i64))
            .bind(i64::from(limit.min(500)))
            .fetch_all(&self.pool)
            .await?
        };
        rows.into_iter()
            .map(|(id, at, actor, action, subject)| {
                Ok(AuditEntry {
                    id: u64::try_from(id).unwrap_or(0),
                    at: UnixMillis(u64::try_from(at).unwrap_or(0)),
                    actor: actor
                        .map(|a| Ok::<_, StoreError>(UserId::from_bytes(id16(&a)?)))
                        .transpose()?,
                    action,
                    subject,
                })
            })
            .collect()
    }
}

impl Store {
    /// Adds a person directly, without an invite: for operators' tools and
    /// tests. The app never calls this; people join through invites.
    pub async fn put_user(
        &self,
        user: UserId,
        display_name: &str,
        role: Role,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        {
            sqlx::query(
                "INSERT INTO users (id, display_name, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&user.as_bytes()[..])
            .bind(display_name)
            .bind(role_name(role))
            .bind(to_i64(now.0))
            .execute(&self.pool)
            .await?;
        };
        Ok(())
    }
}

/// A device as the relay knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub user: UserId,
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

impl Store {
    /// Records a device and its public key, for a person who exists (for
    /// operators' tools and tests; the app's devices join through invites).
    pub async fn put_device(
        &self,
        device: DeviceId,
        user: UserId,
        public_key: &[u8],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices (id, user_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&device.as_bytes()[..])
        .bind(&user.as_bytes()[..])
        .bind(public_key)
        .bind(to_i64(now.0))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>, Option<i64>)> =
            sqlx::query_as("SELECT user_id, public_key, revoked_at FROM devices WHERE id = $1")
                .bind(&device.as_bytes()[..])
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(user, public_key, revoked_at)| {
            Ok(DeviceRow {
                user: UserId::from_bytes(id16(&user)?),
                public_key,
                revoked: revoked_at.is_some(),
            })
        })
        .transpose()
    }
}
