//! The per-group logs: appending in order (one commit per epoch, each client message once), backlogs after a cursor, welcomes for added devices, acknowledgements, and expiry.
//!
//! An append is reported accepted only after the transaction that holds it
//! has committed (SQLite WAL with `synchronous=FULL`, PostgreSQL with
//! `synchronous_commit=on`). Appends and acknowledgements run in batches
//! ([`Store::write_batch`], fed by `group_commit.rs`), so that one fsync
//! covers many; a write that can fail part-way (a commit, key packages)
//! runs in a savepoint of its own.

use super::{id16, keys, kind_from_name, kind_name, to_i64, to_u64, Engine, Store, StoreError};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{effective_expiry, GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::{
    chain_of_epoch, restart_epoch, ClaimedKeyPackage, EntryKind, GroupSpec, LogEntry,
    MembershipChange, Payload, Rejection, Submission, MAX_APPLICATION_BYTES,
};
use restart::{apply_restart, check_restart};

mod restart;
use sqlx::{AnyConnection, Row};

/// What an accepted submission produced: its place in the log, and what to
/// fan out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub entry: LogEntry,
    /// For a commit, the membership change it declared (delivered with it;
    /// boxed, as messages far outnumber commits).
    pub declared: Option<Box<MembershipChange>>,
    /// False when this was a resend of an entry already stored.
    pub fresh: bool,
    /// Who receives the entry: the group's members when it was appended
    /// (those it removes included, so that they learn of it).
    pub recipients: Vec<DeviceId>,
    /// Devices added by this commit; each gets `welcome`.
    pub added: Vec<DeviceId>,
    pub welcome: Option<Vec<u8>>,
    /// The group's type and retention.
    pub spec: GroupSpec,
}

/// The most devices one commit may add and remove together: bounded work
/// for the writer every other device waits behind. (Care teams add people a
/// few at a time; a broadcast group of a whole council's staff, a thousand
/// phones, is made in one.)
pub const MAX_CHANGES_PER_COMMIT: usize = 1_000;

/// The most replies (acknowledgements) the relay stores from one staff
/// device in one emergency broadcast group in a day: far more than anyone
/// acknowledges, few enough that a modified app cannot bury the group's
/// broadcasts under its replies on every phone (SECURITY.md, "Urgent
/// broadcasts and acknowledgements").
pub const REPLIES_PER_DAY: i64 = 50;

/// A day, in milliseconds.
const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// When a device that has sent its day's replies is told to try again.
const REPLIES_RETRY_AFTER_MS: u32 = 60 * 60 * 1000;

/// The most messages one person may take off everyone's phones (recorded
/// in the care record, or deleted) in an hour: more than any handover
/// needs, few enough that a modified app cannot empty a clinical group's
/// history before anyone notices (SECURITY.md, "Recorded in the care
/// record, and deleted for everyone").
pub const REMOVALS_PER_HOUR: i64 = 20;

/// An hour, in milliseconds.
const HOUR_MILLIS: u64 = 60 * 60 * 1000;

/// The audit log's word for a removal.
const REMOVED_ACTION: &str = "message removed";

/// A welcome waiting for a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingWelcome {
    pub group: GroupId,
    pub seq: u64,
    pub spec: GroupSpec,
    pub welcome: Vec<u8>,
}

/// What appending one submission produced: accepted (fresh or a resend),
/// rejected with a reason, or a database error.
pub type AppendOutcome = Result<Result<Appended, Rejection>, StoreError>;

/// One write in a batch committed together (see [`Store::write_batch`]):
/// everything a device does often, so that one fsync covers many.
#[derive(Clone, Debug)]
pub(crate) enum Write {
    Append {
        sender: DeviceId,
        submission: Submission,
        now: UnixMillis,
    },
    Acknowledge {
        device: DeviceId,
        group: GroupId,
        seq: u64,
    },
    PublishKeyPackages {
        device: DeviceId,
        key_packages: Vec<Vec<u8>>,
        last_resort: Option<Vec<u8>>,
    },
    ClaimKeyPackages {
        users: Vec<UserId>,
    },
}

impl Write {
    /// The group whose log it writes to or reads from, if any: writes for
    /// one group keep the order they were handed over in.
    pub(crate) fn group(&self) -> Option<GroupId> {
        match self {
            Write::Append { submission, .. } => Some(submission.group),
            Write::Acknowledge { group, .. } => Some(*group),
            Write::PublishKeyPackages { .. } | Write::ClaimKeyPackages { .. } => None,
        }
    }

    /// The id that picks its writer: its group, or else the device or the
    /// first person it is about.
    pub(crate) fn spread_key(&self) -> [u8; 16] {
        match self {
            Write::Append { submission, .. } => *submission.group.as_bytes(),
            Write::Acknowledge { group, .. } => *group.as_bytes(),
            Write::PublishKeyPackages { device, .. } => *device.as_bytes(),
            Write::ClaimKeyPackages { users } => users.first().map_or([0; 16], |u| *u.as_bytes()),
        }
    }

    /// Whether, in a batch, it needs a savepoint of its own: whether it can
    /// fail part-way, after writing something that must be undone while the
    /// rest of the batch commits. An application message and an
    /// acknowledgement cannot: every reason to refuse a message is found
    /// before anything but its group's no-op lock is written (harmless to
    /// keep), and a database error part-way fails the whole batch, whose
    /// devices send again. Skipping the savepoint saves two round trips per
    /// write, and these are most of what a busy relay writes.
    fn needs_savepoint(&self) -> bool {
        match self {
            Write::Append { submission, .. } => match &submission.payload {
                // A removal empties another entry after storing its own.
                Payload::Commit { .. } | Payload::Removing { .. } => true,
                Payload::Application { .. } => false,
            },
            Write::Acknowledge { .. } => false,
            Write::PublishKeyPackages { .. } | Write::ClaimKeyPackages { .. } => true,
        }
    }

    /// The rows of work it asks for beyond its own: devices a commit adds
    /// or removes, key packages stored, people whose packages are claimed.
    pub(crate) fn extra_rows(&self) -> usize {
        match self {
            Write::Append { submission, .. } => match &submission.payload {
                Payload::Commit { change, .. } => change.add.len() + change.remove.len(),
                Payload::Application { .. } => 0,
                Payload::Removing { .. } => 1,
            },
            Write::Acknowledge { .. } => 0,
            Write::PublishKeyPackages { key_packages, .. } => key_packages.len(),
            Write::ClaimKeyPackages { users } => users.len(),
        }
    }
}

/// The outcome of one [`Write`].
#[derive(Debug)]
pub(crate) enum Written {
    Append(AppendOutcome),
    Acknowledged(Result<(), StoreError>),
    KeyPackagesPublished(Result<(), StoreError>),
    KeyPackagesClaimed(Result<Vec<ClaimedKeyPackage>, StoreError>),
}

impl Written {
    /// Whether the write is kept (committed with its batch).
    fn is_kept(&self) -> bool {
        matches!(
            self,
            Written::Append(Ok(Ok(_)))
                | Written::Acknowledged(Ok(()))
                | Written::KeyPackagesPublished(Ok(()))
                | Written::KeyPackagesClaimed(Ok(_))
        )
    }

    /// The outcome for a write whose batch did not commit.
    fn not_committed(write: &Write, reason: &str) -> Written {
        let error = || StoreError::NotCommitted(reason.to_owned());
        match write {
            Write::Append { .. } => Written::Append(Err(error())),
            Write::Acknowledge { .. } => Written::Acknowledged(Err(error())),
            Write::PublishKeyPackages { .. } => Written::KeyPackagesPublished(Err(error())),
            Write::ClaimKeyPackages { .. } => Written::KeyPackagesClaimed(Err(error())),
        }
    }

    /// The entry this write appended, if it stored a new one.
    pub(crate) fn fresh_entry(&self) -> Option<&Appended> {
        match self {
            Written::Append(Ok(Ok(appended))) if appended.fresh => Some(appended),
            _ => None,
        }
    }
}

/// Hears about new entries around their batch's commit, in log order: how
/// live delivery learns of them without the store knowing about connections.
pub trait CommitListener: Send + Sync {
    /// Just before the batch holding `appended` commits.
    fn committing(&self, appended: &Appended);
    /// The batch did not commit after all.
    fn abandoned(&self, appended: &Appended);
    /// The batch committed and its senders have been told (called by the
    /// writer, after answering them, so that a sender hears "accepted"
    /// before its own entry comes back to it).
    fn committed(&self, appended: &Appended);
}

/// No one listens: appends made outside the writers (tests, tools).
impl CommitListener for () {
    fn committing(&self, _: &Appended) {}
    fn abandoned(&self, _: &Appended) {}
    fn committed(&self, _: &Appended) {}
}

fn entry_kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Application => "application",
        EntryKind::Commit => "commit",
    }
}

fn entry_kind_from_name(name: &str) -> EntryKind {
    if name == "commit" {
        EntryKind::Commit
    } else {
        EntryKind::Application
    }
}

fn is_unique_violation(error: &StoreError) -> bool {
    matches!(error, StoreError::Query(sqlx::Error::Database(db)) if db.is_unique_violation())
}

/// Appends a submission inside the open transaction on `tx`. The caller
/// decides whether to keep what it wrote: only an accepted append is kept.
async fn append(
    tx: &mut AnyConnection,
    engine: Engine,
    sender: DeviceId,
    submission: &Submission,
    now: UnixMillis,
) -> AppendOutcome {
    let group = &submission.group.as_bytes()[..];
    let sender_bytes = &sender.as_bytes()[..];
    let client_msg = &submission.client_msg.as_bytes()[..];
    // Take the group's write lock first (a no-op update) and read it in the
    // same round trip: SQLite then serialises appends without stale
    // snapshots, and PostgreSQL locks the row. On PostgreSQL the same round
    // trip also reads who is sending, whether this is a resend and who the
    // members are: there, each round trip costs more than the work it does.
    let locked = sqlx::query(match engine {
        Engine::Sqlite => {
            "UPDATE groups SET last_seq = last_seq WHERE id = $1
             RETURNING kind, retention_secs, epoch, last_seq"
        }
        Engine::Postgres => {
            "UPDATE groups SET last_seq = last_seq WHERE id = $1
             RETURNING kind, retention_secs, epoch, last_seq,
                 (SELECT u.role FROM devices d JOIN users u ON u.id = d.user_id
                  WHERE d.id = $2 AND d.revoked_at IS NULL AND u.revoked_at IS NULL
                  FOR KEY SHARE OF d, u),
                 (SELECT COUNT(*) FROM log WHERE sender = $2 AND client_msg = $3),
                 (SELECT string_agg(device_id, ''::bytea) FROM members
                  WHERE group_id = $1 AND removed_seq IS NULL)"
        }
    })
    .bind(group);
    let locked = match engine {
        Engine::Sqlite => locked,
        Engine::Postgres => locked.bind(sender_bytes).bind(client_msg),
    }
    .fetch_optional(&mut *tx)
    .await?;
    let standing_read = engine == Engine::Postgres && locked.is_some();

    // Who is sending, and whether this is a resend (unless read above): the
    // sender's role (none if the device or its person is revoked), and
    // whether (sender, client message id) is already stored. On PostgreSQL
    // the device and person rows are key-share locked until the commit: a
    // revocation (which locks them for update) waits for this append, and
    // an append after it sees it. SQLite's writers take turns anyway.
    let (role, resent): (Option<String>, i64) = match &locked {
        Some(row) if standing_read => (row.try_get(4)?, row.try_get(5)?),
        _ => {
            let status = sqlx::query(match engine {
                Engine::Sqlite => {
                    "SELECT (SELECT u.role FROM devices d JOIN users u ON u.id = d.user_id
                             WHERE d.id = $1 AND d.revoked_at IS NULL AND u.revoked_at IS NULL),
                            (SELECT COUNT(*) FROM log WHERE sender = $1 AND client_msg = $2)"
                }
                Engine::Postgres => {
                    "SELECT (SELECT u.role FROM devices d JOIN users u ON u.id = d.user_id
                             WHERE d.id = $1 AND d.revoked_at IS NULL AND u.revoked_at IS NULL
                             FOR KEY SHARE OF d, u),
                            (SELECT COUNT(*) FROM log WHERE sender = $1 AND client_msg = $2)"
                }
            })
            .bind(sender_bytes)
            .bind(client_msg)
            .fetch_one(&mut *tx)
            .await?;
            (status.try_get(0)?, status.try_get(1)?)
        }
    };
    // A resend of something already stored is acknowledged again.
    if resent > 0 {
        return stored_again(tx, sender, submission).await;
    }
    let members_read: Option<Vec<Vec<u8>>> = match &locked {
        Some(row) if standing_read => {
            let joined: Option<Vec<u8>> = row.try_get(6)?;
            Some(
                joined
                    .unwrap_or_default()
                    .chunks(16)
                    .map(<[u8]>::to_vec)
                    .collect(),
            )
        }
        _ => None,
    };
    let existing = locked;
    // A commit that declares `create` for a group that exists restarts the
    // group's encryption (see `restart.rs`).
    let restarting = existing.is_some()
        && matches!(&submission.payload, Payload::Commit { change, .. } if change.create.is_some());

    let (kind, retention, epoch, last_seq) = match (existing, &submission.payload) {
        (Some(row), _) => {
            let kind: String = row.try_get(0)?;
            (
                kind_from_name(&kind)?,
                RetentionSecs(to_u64(row.try_get(1)?)),
                to_u64(row.try_get(2)?),
                to_u64(row.try_get(3)?),
            )
        }
        (
            None,
            Payload::Commit {
                change:
                    MembershipChange {
                        create: Some(spec), ..
                    },
                ..
            },
        ) if submission.epoch == 0 => {
            if spec.kind.check_retention(spec.retention).is_err() {
                return Ok(Err(Rejection::InvalidRetention));
            }
            sqlx::query(
                "INSERT INTO groups (id, kind, retention_secs, epoch, last_seq, created_by, created_at)
                 VALUES ($1, $2, $3, 0, 0, $4, $5)",
            )
            .bind(group)
            .bind(kind_name(spec.kind))
            .bind(to_i64(spec.retention.0))
            .bind(sender_bytes)
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO members (group_id, device_id, joined_seq) VALUES ($1, $2, 0)")
                .bind(group)
                .bind(sender_bytes)
                .execute(&mut *tx)
                .await?;
            (spec.kind, spec.retention, 0, 0)
        }
        (None, _) => return Ok(Err(Rejection::UnknownGroup)),
    };

    // The members receive the entry; the sender must be one.
    let members: Vec<Vec<u8>> = match members_read {
        Some(members) => members,
        None => {
            sqlx::query_scalar(
                "SELECT device_id FROM members WHERE group_id = $1 AND removed_seq IS NULL",
            )
            .bind(group)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    if !members.iter().any(|m| m.as_slice() == sender_bytes) {
        return Ok(Err(Rejection::NotAMember));
    }
    // A revoked device (or a device of a revoked person) stays on the
    // member lists until someone removes it from each group, but nothing it
    // sends is stored.
    if role.is_none() {
        return Ok(Err(Rejection::Revoked));
    }
    // Clinical and emergency broadcast groups: only administrators change
    // who is in them, and only administrators broadcast (staff may reply to
    // a broadcast). Anyone may renew
    // her own keys (a commit that changes nobody).
    // A restart needs no administrator: every member's phone refuses one
    // whose members are not the ones the group had.
    let restricted = match &submission.payload {
        Payload::Commit { .. } if restarting => false,
        Payload::Commit { change, .. } => {
            matches!(kind, GroupKind::Clinical | GroupKind::EmergencyBroadcast)
                && (change.create.is_some() || !change.add.is_empty() || !change.remove.is_empty())
        }
        // Staff there only reply (acknowledge), and every reply is padded
        // to one size: the relay refuses anything else without reading it.
        Payload::Application { ciphertext } => {
            kind == GroupKind::EmergencyBroadcast && !crate::mls_framing::is_reply_sized(ciphertext)
        }
        // Staff there send nothing but replies, so they have nothing of
        // their own to delete and may mark nothing recorded.
        Payload::Removing { .. } => kind == GroupKind::EmergencyBroadcast,
    };
    if restricted && role.as_deref() != Some("administrator") {
        return Ok(Err(Rejection::NotPermitted));
    }
    let staff_reply = kind == GroupKind::EmergencyBroadcast
        && matches!(submission.payload, Payload::Application { .. })
        && role.as_deref() != Some("administrator");
    if staff_reply {
        let since = now.0.saturating_sub(DAY_MILLIS);
        let sent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM log WHERE sender = $1 AND group_id = $2 AND stored_at > $3",
        )
        .bind(sender_bytes)
        .bind(group)
        .bind(to_i64(since))
        .fetch_one(&mut *tx)
        .await?;
        if sent >= REPLIES_PER_DAY {
            return Ok(Err(Rejection::RateLimited {
                retry_after_ms: REPLIES_RETRY_AFTER_MS,
            }));
        }
    }
    let expected_epoch = if restarting {
        restart_epoch(chain_of_epoch(epoch).saturating_add(1))
    } else {
        epoch
    };
    if submission.epoch != expected_epoch {
        return Ok(Err(Rejection::StaleEpoch {
            current_epoch: epoch,
        }));
    }

    if let Payload::Commit { change, .. } = &submission.payload {
        if change.add.len() + change.remove.len() > MAX_CHANGES_PER_COMMIT {
            return Ok(Err(Rejection::InvalidCommit(format!(
                "a commit adds and removes at most {MAX_CHANGES_PER_COMMIT} devices"
            ))));
        }
        let distinct: std::collections::HashSet<&DeviceId> = change.add.iter().collect();
        if distinct.len() != change.add.len() {
            return Ok(Err(Rejection::InvalidCommit(
                "a commit adds each device once".into(),
            )));
        }
        if restarting {
            let spec = GroupSpec { kind, retention };
            let has_welcome = matches!(
                &submission.payload,
                Payload::Commit {
                    welcome: Some(_),
                    ..
                }
            );
            if let Err(rejection) =
                check_restart(tx, submission.group, sender, change, has_welcome, spec, now).await?
            {
                return Ok(Err(rejection));
            }
        }
    }

    // What a removal may empty: decided before anything is written.
    let removed = match &submission.payload {
        Payload::Removing { removes, .. } => {
            match removable(tx, submission.group, sender, *removes, kind, now).await? {
                Ok(removed) => removed,
                Err(rejection) => return Ok(Err(rejection)),
            }
        }
        _ => Vec::new(),
    };

    let seq = last_seq + 1;
    let (entry_kind, payload, expires_at) = match &submission.payload {
        Payload::Application { ciphertext } | Payload::Removing { ciphertext, .. } => {
            if ciphertext.len() > MAX_APPLICATION_BYTES {
                return Ok(Err(Rejection::TooLarge {
                    max: MAX_APPLICATION_BYTES as u32,
                }));
            }
            let Some(claimed) = submission.expires_at else {
                return Ok(Err(Rejection::Expired));
            };
            match effective_expiry(claimed, now, retention) {
                Ok(expires_at) => (EntryKind::Application, ciphertext, Some(expires_at)),
                Err(_) => return Ok(Err(Rejection::Expired)),
            }
        }
        Payload::Commit { commit, .. } => (EntryKind::Commit, commit, None),
    };
    let declared = match &submission.payload {
        Payload::Commit { change, .. } => Some(Box::new(change.clone())),
        Payload::Application { .. } | Payload::Removing { .. } => None,
    };
    let new_epoch = if entry_kind == EntryKind::Commit {
        submission.epoch + 1
    } else {
        epoch
    };
    // The entry and the group's new position: one round trip on
    // PostgreSQL, two on SQLite (which has no writing WITH).
    const INSERT_ENTRY: &str =
        "INSERT INTO log (group_id, seq, kind, epoch, sender, client_msg, expires_at, payload, stored_at, declared)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    const MOVE_GROUP_ON: &str = "UPDATE groups SET last_seq = $2, epoch = $11 WHERE id = $1";
    let both = format!("WITH stored AS ({INSERT_ENTRY}) {MOVE_GROUP_ON}");
    let insert = sqlx::query(match engine {
        Engine::Sqlite => INSERT_ENTRY,
        Engine::Postgres => &both,
    })
    .bind(group)
    .bind(to_i64(seq))
    .bind(entry_kind_name(entry_kind))
    .bind(to_i64(submission.epoch))
    .bind(sender_bytes)
    .bind(client_msg)
    .bind(expires_at.map(|e| to_i64(e.0)))
    .bind(payload.as_slice())
    .bind(to_i64(now.0))
    .bind(declared.as_deref().map(MembershipChange::to_bytes));
    match engine {
        Engine::Sqlite => {
            insert.execute(&mut *tx).await?;
            sqlx::query("UPDATE groups SET last_seq = $2, epoch = $3 WHERE id = $1")
                .bind(group)
                .bind(to_i64(seq))
                .bind(to_i64(new_epoch))
                .execute(&mut *tx)
                .await?;
        }
        Engine::Postgres => {
            insert.bind(to_i64(new_epoch)).execute(&mut *tx).await?;
        }
    }

    if !removed.is_empty() {
        remove_content(tx, submission.group, sender, &removed, now).await?;
    }

    let (mut added, mut shared_welcome) = (Vec::new(), None);
    if let Payload::Commit {
        change, welcome, ..
    } = &submission.payload
    {
        if restarting {
            let members = members
                .iter()
                .map(|m| Ok(DeviceId::from_bytes(id16(m)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            apply_restart(
                &mut *tx,
                submission.group,
                seq,
                sender,
                &members,
                change,
                welcome.as_deref(),
                now,
            )
            .await?;
        } else {
            apply_change(
                &mut *tx,
                submission.group,
                seq,
                change,
                welcome.as_deref(),
                now,
            )
            .await?;
            audit_change(&mut *tx, sender, submission.group, change, now).await?;
        }
        if welcome.is_some() {
            added = change.add.clone();
            shared_welcome = welcome.clone();
        }
    }
    Ok(Ok(Appended {
        entry: LogEntry {
            group: submission.group,
            seq,
            epoch: submission.epoch,
            sender,
            client_msg: submission.client_msg,
            kind: entry_kind,
            expires_at,
            payload: payload.clone(),
        },
        declared,
        fresh: true,
        recipients: {
            let mut recipients = members
                .iter()
                .map(|m| Ok(DeviceId::from_bytes(id16(m)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            // A restart is heard by everyone it names too (those it brings
            // back were no longer members).
            if restarting {
                if let Payload::Commit { change, .. } = &submission.payload {
                    for device in &change.add {
                        if !recipients.contains(device) {
                            recipients.push(*device);
                        }
                    }
                }
            }
            recipients
        },
        added,
        welcome: shared_welcome,
        spec: GroupSpec { kind, retention },
    }))
}

/// The answer to a resend: the entry as it was stored (its sender's own
/// copy, delivered to nobody again).
async fn stored_again(
    tx: &mut AnyConnection,
    sender: DeviceId,
    submission: &Submission,
) -> AppendOutcome {
    let row = sqlx::query(
        "SELECT l.group_id, l.seq, l.kind, l.epoch, l.expires_at, l.payload, g.kind, g.retention_secs, l.declared
         FROM log l JOIN groups g ON g.id = l.group_id WHERE l.sender = $1 AND l.client_msg = $2",
    )
    .bind(&sender.as_bytes()[..])
    .bind(&submission.client_msg.as_bytes()[..])
    .fetch_one(&mut *tx)
    .await?;
    let stored_group: Vec<u8> = row.try_get(0)?;
    if stored_group != submission.group.as_bytes() {
        return Ok(Err(Rejection::InvalidCommit(
            "this message id was already used in another group".into(),
        )));
    }
    let kind: String = row.try_get(2)?;
    let expires_at: Option<i64> = row.try_get(4)?;
    let group_kind: String = row.try_get(6)?;
    Ok(Ok(Appended {
        entry: LogEntry {
            group: submission.group,
            seq: to_u64(row.try_get(1)?),
            epoch: to_u64(row.try_get(3)?),
            sender,
            client_msg: submission.client_msg,
            kind: entry_kind_from_name(&kind),
            expires_at: expires_at.map(|e| UnixMillis(to_u64(e))),
            payload: row.try_get(5)?,
        },
        declared: declared_of(row.try_get(8)?)?.map(Box::new),
        fresh: false,
        recipients: Vec::new(),
        added: Vec::new(),
        welcome: None,
        spec: GroupSpec {
            kind: kind_from_name(&group_kind)?,
            retention: RetentionSecs(to_u64(row.try_get(7)?)),
        },
    }))
}

/// A stored declaration, read back.
fn declared_of(bytes: Option<Vec<u8>>) -> Result<Option<MembershipChange>, StoreError> {
    bytes
        .map(|bytes| {
            MembershipChange::from_bytes(&bytes)
                .ok_or(StoreError::Corrupt("a stored membership change"))
        })
        .transpose()
}

/// The membership change a commit declares: who leaves at `seq`, who joins
/// after it (the commit's welcome stored once, waiting for each).
async fn apply_change(
    tx: &mut AnyConnection,
    group: GroupId,
    seq: u64,
    change: &MembershipChange,
    welcome: Option<&[u8]>,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let group = &group.as_bytes()[..];
    // A few statements per slice of devices rather than several per device:
    // a commit adding hundreds is a handful of round trips, not thousands.
    end_membership(tx, group, seq, &change.remove).await?;
    // A device removed earlier and added again starts afresh.
    start_membership(tx, group, seq, &change.add).await?;
    if let Some(welcome) = welcome {
        store_welcome(tx, group, seq, welcome, &change.add, now).await?;
    }
    Ok(())
}

/// A commit's welcome, stored once and waiting for each of `devices` (any
/// earlier welcome to the group waiting for them is replaced).
async fn store_welcome(
    tx: &mut AnyConnection,
    group: &[u8],
    seq: u64,
    welcome: &[u8],
    devices: &[DeviceId],
    now: UnixMillis,
) -> Result<(), StoreError> {
    if devices.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO welcome_blobs (group_id, seq, welcome, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(group)
    .bind(to_i64(seq))
    .bind(welcome)
    .bind(to_i64(now.0))
    .execute(&mut *tx)
    .await?;
    for chunk in devices.chunks(DEVICES_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM pending_welcomes WHERE group_id = $1 AND device_id IN ({})",
            numbered(2, chunk.len())
        );
        bind_devices(sqlx::query(&sql).bind(group), chunk)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO pending_welcomes (group_id, seq, device_id) VALUES {}",
            rows(3, chunk.len(), |n| format!("($1, $2, ${n})"))
        );
        bind_devices(sqlx::query(&sql).bind(group).bind(to_i64(seq)), chunk)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `devices` stop receiving `group` after the entry at `seq` (which they
/// still read: it tells them they left).
async fn end_membership(
    tx: &mut AnyConnection,
    group: &[u8],
    seq: u64,
    devices: &[DeviceId],
) -> Result<(), StoreError> {
    for chunk in devices.chunks(DEVICES_PER_STATEMENT) {
        let sql = format!(
            "UPDATE members SET removed_seq = $2 WHERE group_id = $1 AND removed_seq IS NULL \
             AND device_id IN ({})",
            numbered(3, chunk.len())
        );
        bind_devices(sqlx::query(&sql).bind(group).bind(to_i64(seq)), chunk)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `devices` receive `group` from after the entry at `joined_seq`, whatever
/// membership they had before.
async fn start_membership(
    tx: &mut AnyConnection,
    group: &[u8],
    joined_seq: u64,
    devices: &[DeviceId],
) -> Result<(), StoreError> {
    for chunk in devices.chunks(DEVICES_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM members WHERE group_id = $1 AND device_id IN ({})",
            numbered(2, chunk.len())
        );
        bind_devices(sqlx::query(&sql).bind(group), chunk)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO members (group_id, device_id, joined_seq) VALUES {}",
            rows(3, chunk.len(), |n| format!("($1, ${n}, $2)"))
        );
        bind_devices(
            sqlx::query(&sql).bind(group).bind(to_i64(joined_seq)),
            chunk,
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// `query` with each of `devices` bound in turn, for the statements that
/// name a slice of devices.
fn bind_devices<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    devices: &'q [DeviceId],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    devices
        .iter()
        .fold(query, |query, device| query.bind(&device.as_bytes()[..]))
}

/// How many devices one statement names at most (far below both engines'
/// limits on parameters).
const DEVICES_PER_STATEMENT: usize = 250;

/// `$first, $first+1, …` for `count` parameters.
pub(crate) fn numbered(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `count` rows of a multi-row `VALUES`, the `i`th made by `row` from its
/// parameter number `first + i`.
pub(crate) fn rows(first: usize, count: usize, row: impl Fn(usize) -> String) -> String {
    (first..first + count)
        .map(row)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn audit_change(
    tx: &mut AnyConnection,
    sender: DeviceId,
    group: GroupId,
    change: &MembershipChange,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let list = |devices: &[DeviceId]| {
        devices
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = Vec::new();
    if change.create.is_some() {
        lines.push(("group created", format!("group {group}")));
    }
    if !change.add.is_empty() {
        lines.push((
            "members added",
            format!("group {group}: devices {}", list(&change.add)),
        ));
    }
    if !change.remove.is_empty() {
        lines.push((
            "members removed",
            format!("group {group}: devices {}", list(&change.remove)),
        ));
    }
    for (action, subject) in lines {
        audit_by_device(tx, now, sender, action, &subject).await?;
    }
    Ok(())
}

/// A line in the audit log under the name of the person whose device acted.
async fn audit_by_device(
    tx: &mut AnyConnection,
    now: UnixMillis,
    device: DeviceId,
    action: &str,
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, subject)
         VALUES ($1, (SELECT user_id FROM devices WHERE id = $2), $3, $4)",
    )
    .bind(to_i64(now.0))
    .bind(&device.as_bytes()[..])
    .bind(action)
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One entry a removal empties, and whether it was the remover's own.
struct Removable {
    seq: u64,
    own: bool,
}

/// The entries of `group` with the id `removes` that `sender` may empty:
/// application messages that still hold their content, her person's own
/// or, in a clinical group, anyone's. Refused when there is none (gone
/// already, or not hers to remove) or when she has removed her hour's
/// worth. Every phone checks the removal again, and more closely.
async fn removable(
    tx: &mut AnyConnection,
    group: GroupId,
    sender: DeviceId,
    removes: ClientMessageId,
    kind: GroupKind,
    now: UnixMillis,
) -> Result<Result<Vec<Removable>, Rejection>, StoreError> {
    let remover: Option<Vec<u8>> = sqlx::query_scalar("SELECT user_id FROM devices WHERE id = $1")
        .bind(&sender.as_bytes()[..])
        .fetch_optional(&mut *tx)
        .await?;
    let Some(remover) = remover else {
        return Ok(Err(Rejection::NotPermitted));
    };
    let since = now.0.saturating_sub(HOUR_MILLIS);
    let recent = sqlx::query(
        "SELECT COUNT(*), MIN(at) FROM audit WHERE actor = $1 AND action = $2 AND at > $3",
    )
    .bind(remover.as_slice())
    .bind(REMOVED_ACTION)
    .bind(to_i64(since))
    .fetch_one(&mut *tx)
    .await?;
    let (count, oldest): (i64, Option<i64>) = (recent.try_get(0)?, recent.try_get(1)?);
    if count >= REMOVALS_PER_HOUR {
        let free_at = oldest.map_or(now.0, to_u64).saturating_add(HOUR_MILLIS);
        let wait = free_at.saturating_sub(now.0).max(1_000);
        return Ok(Err(Rejection::RateLimited {
            retry_after_ms: u32::try_from(wait).unwrap_or(u32::MAX),
        }));
    }
    let rows = sqlx::query(
        "SELECT l.seq, d.user_id FROM log l JOIN devices d ON d.id = l.sender
         WHERE l.group_id = $1 AND l.client_msg = $2 AND l.kind = 'application'
           AND length(l.payload) > 0 AND (l.expires_at IS NULL OR l.expires_at > $3)",
    )
    .bind(&group.as_bytes()[..])
    .bind(&removes.as_bytes()[..])
    .bind(to_i64(now.0))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        // Expired, removed already, or never here: nothing to take off.
        return Ok(Err(Rejection::Expired));
    }
    let mut removed = Vec::new();
    for row in rows {
        let author: Vec<u8> = row.try_get(1)?;
        let own = author == remover;
        if own || kind == GroupKind::Clinical {
            removed.push(Removable {
                seq: to_u64(row.try_get(0)?),
                own,
            });
        }
    }
    if removed.is_empty() {
        return Ok(Err(Rejection::NotPermitted));
    }
    Ok(Ok(removed))
}

/// Empties the entries a removal names and records each in the audit log,
/// never with content. An emptied row stays until the message would have
/// expired, with nothing in it: backlogs skip it, and its sender's phone
/// sending it again (its acceptance lost) is answered as a resend, not
/// stored afresh.
async fn remove_content(
    tx: &mut AnyConnection,
    group: GroupId,
    sender: DeviceId,
    removed: &[Removable],
    now: UnixMillis,
) -> Result<(), StoreError> {
    for entry in removed {
        sqlx::query("UPDATE log SET payload = $3 WHERE group_id = $1 AND seq = $2")
            .bind(&group.as_bytes()[..])
            .bind(to_i64(entry.seq))
            .bind(Vec::<u8>::new())
            .execute(&mut *tx)
            .await?;
        let whose = if entry.own {
            "its author's own"
        } else {
            "another member's"
        };
        let subject = format!("group {group}: entry {} ({whose})", entry.seq);
        audit_by_device(tx, now, sender, REMOVED_ACTION, &subject).await?;
    }
    Ok(())
}

/// Records that a device has processed a group up to `seq` (never moving back).
async fn acknowledge(
    tx: &mut AnyConnection,
    device: DeviceId,
    group: GroupId,
    seq: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cursors (device_id, group_id, seq) VALUES ($1, $2, $3)
         ON CONFLICT (device_id, group_id) DO UPDATE SET seq = excluded.seq WHERE cursors.seq < excluded.seq",
    )
    .bind(&device.as_bytes()[..])
    .bind(&group.as_bytes()[..])
    .bind(to_i64(seq))
    .execute(&mut *tx)
    .await?;
    // A device past the commit that added it has joined: its welcome goes.
    sqlx::query(
        "DELETE FROM pending_welcomes WHERE device_id = $1 AND group_id = $2 AND seq <= $3",
    )
    .bind(&device.as_bytes()[..])
    .bind(&group.as_bytes()[..])
    .bind(to_i64(seq))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn write_one(tx: &mut AnyConnection, engine: Engine, write: &Write) -> Written {
    match write {
        Write::Append {
            sender,
            submission,
            now,
        } => Written::Append(append(tx, engine, *sender, submission, *now).await),
        Write::Acknowledge { device, group, seq } => {
            Written::Acknowledged(acknowledge(tx, *device, *group, *seq).await)
        }
        Write::PublishKeyPackages {
            device,
            key_packages,
            last_resort,
        } => Written::KeyPackagesPublished(
            keys::publish(tx, *device, key_packages, last_resort.as_deref()).await,
        ),
        Write::ClaimKeyPackages { users } => {
            Written::KeyPackagesClaimed(keys::claim(tx, engine, users).await)
        }
    }
}

impl Store {
    /// Appends one submission to its group's log in a transaction of its
    /// own, or says why not. Connections go through
    /// [`super::group_commit::Appender`], which commits many at once.
    pub async fn append(
        &self,
        sender: DeviceId,
        submission: &Submission,
        now: UnixMillis,
    ) -> AppendOutcome {
        let write = Write::Append {
            sender,
            submission: submission.clone(),
            now,
        };
        match self
            .write_batch(std::slice::from_ref(&write), &())
            .await
            .pop()
        {
            Some(Written::Append(outcome)) => outcome,
            _ => Err(StoreError::NotCommitted(
                "the write produced no outcome".into(),
            )),
        }
    }

    /// Records that `device` has processed `group` up to `seq`, in a
    /// transaction of its own.
    pub async fn acknowledge(
        &self,
        device: DeviceId,
        group: GroupId,
        seq: u64,
    ) -> Result<(), StoreError> {
        let write = Write::Acknowledge { device, group, seq };
        match self
            .write_batch(std::slice::from_ref(&write), &())
            .await
            .pop()
        {
            Some(Written::Acknowledged(outcome)) => outcome,
            _ => Err(StoreError::NotCommitted(
                "the write produced no outcome".into(),
            )),
        }
    }

    /// Writes `writes` in one transaction, each inside a savepoint of its
    /// own so that a rejection or an error undoes that write alone, and
    /// commits once: one fsync for the whole batch. Outcomes come back in
    /// the order of `writes`; an append is reported accepted only if the
    /// commit succeeded. `listener` hears of each new entry before the
    /// commit (and if it fails), in log order; telling it of the commit is
    /// the caller's, once the senders are answered.
    pub(crate) async fn write_batch(
        &self,
        writes: &[Write],
        listener: &dyn CommitListener,
    ) -> Vec<Written> {
        match self.try_write_batch(writes, listener).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // Nothing in the batch was committed, so nothing in it is
                // acknowledged: every device sends its message again, with
                // the same id, and is answered then.
                let reason = error.to_string();
                writes
                    .iter()
                    .map(|write| Written::not_committed(write, &reason))
                    .collect()
            }
        }
    }

    async fn try_write_batch(
        &self,
        writes: &[Write],
        listener: &dyn CommitListener,
    ) -> Result<Vec<Written>, StoreError> {
        let mut tx = self.begin_write().await?;
        // A write alone in its transaction needs no savepoint: if it is not
        // kept, the whole transaction is undone. That saves two round trips
        // whenever the relay is not busy.
        let lone = writes.len() == 1;
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            let guarded = !lone && write.needs_savepoint();
            let mut attempts = 0;
            let outcome = loop {
                attempts += 1;
                if guarded {
                    sqlx::query("SAVEPOINT write").execute(&mut *tx).await?;
                }
                let outcome = write_one(&mut tx, self.engine, write).await;
                if outcome.is_kept() {
                    if guarded {
                        sqlx::query("RELEASE SAVEPOINT write")
                            .execute(&mut *tx)
                            .await?;
                    }
                    break outcome;
                }
                // Two devices created the same group or committed the same
                // epoch at the same instant (relay processes sharing
                // PostgreSQL): this write hit a unique index. Read again;
                // the answer is now a clean rejection or a resend. A
                // violation that persists is a bug, reported rather than
                // retried for ever.
                let retry = matches!(
                    &outcome,
                    Written::Append(Err(error)) if is_unique_violation(error) && attempts < 5
                );
                if lone {
                    tx.rollback().await?;
                    if retry {
                        tx = self.begin_write().await?;
                        continue;
                    }
                    return Ok(vec![outcome]);
                }
                if !guarded {
                    // Refused before writing anything that matters, and
                    // kept out of the batch; or a database error, which
                    // fails the batch (PostgreSQL has aborted it anyway).
                    match outcome {
                        Written::Append(Err(error)) | Written::Acknowledged(Err(error)) => {
                            return Err(error)
                        }
                        refused => break refused,
                    }
                }
                sqlx::query("ROLLBACK TO SAVEPOINT write")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT write")
                    .execute(&mut *tx)
                    .await?;
                if !retry {
                    break outcome;
                }
            };
            outcomes.push(outcome);
        }
        // On PostgreSQL each new entry was announced to the other relay
        // processes by the statement that stored it (a trigger, see
        // migration 0015): sent with the commit, and only if it commits.
        let fresh = || outcomes.iter().filter_map(Written::fresh_entry);
        fresh().for_each(|appended| listener.committing(appended));
        // Acknowledged only once this returns: the commit is durable.
        if let Err(error) = tx.commit().await {
            fresh().for_each(|appended| listener.abandoned(appended));
            return Err(error.into());
        }
        Ok(outcomes)
    }

    /// The entries of `group` after `after_seq` that `device` may read,
    /// oldest first, skipping expired messages.
    pub async fn backlog(
        &self,
        group: GroupId,
        device: DeviceId,
        after_seq: u64,
        limit: u32,
        now: UnixMillis,
    ) -> Result<Vec<LogEntry>, StoreError> {
        Ok(self
            .backlog_with_declarations(group, device, after_seq, limit, now)
            .await?
            .into_iter()
            .map(|(entry, _)| entry)
            .collect())
    }

    /// [`Store::backlog`], each commit with the change it declared: what a
    /// device is sent.
    pub async fn backlog_with_declarations(
        &self,
        group: GroupId,
        device: DeviceId,
        after_seq: u64,
        limit: u32,
        now: UnixMillis,
    ) -> Result<Vec<(LogEntry, Option<MembershipChange>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.seq, l.kind, l.epoch, l.sender, l.client_msg, l.expires_at, l.payload, l.declared
             FROM log l JOIN members m ON m.group_id = l.group_id AND m.device_id = $2
             WHERE l.group_id = $1 AND l.seq > $3 AND l.seq > m.joined_seq
               AND (m.removed_seq IS NULL OR l.seq <= m.removed_seq)
               AND (l.expires_at IS NULL OR l.expires_at > $4)
               AND length(l.payload) > 0
             ORDER BY l.seq LIMIT $5",
        )
        .bind(&group.as_bytes()[..])
        .bind(&device.as_bytes()[..])
        .bind(to_i64(after_seq))
        .bind(to_i64(now.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let kind: String = row.try_get(1)?;
                let sender: Vec<u8> = row.try_get(3)?;
                let client_msg: Vec<u8> = row.try_get(4)?;
                let expires_at: Option<i64> = row.try_get(5)?;
                let entry = LogEntry {
                    group,
                    seq: to_u64(row.try_get(0)?),
                    epoch: to_u64(row.try_get(2)?),
                    sender: DeviceId::from_bytes(id16(&sender)?),
                    client_msg: ClientMessageId::from_bytes(id16(&client_msg)?),
                    kind: entry_kind_from_name(&kind),
                    expires_at: expires_at.map(|e| UnixMillis(to_u64(e))),
                    payload: row.try_get(6)?,
                };
                Ok((entry, declared_of(row.try_get(7)?)?))
            })
            .collect()
    }

    /// The groups a device belongs to (including one it was just removed
    /// from, until it has read its removal).
    pub async fn groups_of(&self, device: DeviceId) -> Result<Vec<GroupId>, StoreError> {
        let ids: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT group_id FROM members WHERE device_id = $1 ORDER BY group_id",
        )
        .bind(&device.as_bytes()[..])
        .fetch_all(&self.pool)
        .await?;
        ids.iter()
            .map(|id| Ok(GroupId::from_bytes(id16(id)?)))
            .collect()
    }

    /// The members of a group who receive the entry at `seq`.
    pub async fn recipients(&self, group: GroupId, seq: u64) -> Result<Vec<DeviceId>, StoreError> {
        let ids: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT device_id FROM members WHERE group_id = $1 AND joined_seq < $2
             AND (removed_seq IS NULL OR removed_seq >= $2)",
        )
        .bind(&group.as_bytes()[..])
        .bind(to_i64(seq))
        .fetch_all(&self.pool)
        .await?;
        ids.iter()
            .map(|id| Ok(DeviceId::from_bytes(id16(id)?)))
            .collect()
    }

    /// The last sequence number of `group` that `device` may read: the end
    /// of the log, or the entry that removed it. 0 if it is not a member.
    pub async fn readable_end(&self, group: GroupId, device: DeviceId) -> Result<u64, StoreError> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT g.last_seq, m.removed_seq FROM groups g JOIN members m ON m.group_id = g.id
             WHERE g.id = $1 AND m.device_id = $2",
        )
        .bind(&group.as_bytes()[..])
        .bind(&device.as_bytes()[..])
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(0, |(last, removed)| {
            to_u64(removed.map_or(last, |r| r.min(last)))
        }))
    }

    /// Welcomes waiting for a device.
    pub async fn welcomes_for(&self, device: DeviceId) -> Result<Vec<PendingWelcome>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.group_id, p.seq, g.kind, g.retention_secs, b.welcome
             FROM pending_welcomes p
             JOIN welcome_blobs b ON b.group_id = p.group_id AND b.seq = p.seq
             JOIN groups g ON g.id = p.group_id
             WHERE p.device_id = $1 ORDER BY p.seq",
        )
        .bind(&device.as_bytes()[..])
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let group: Vec<u8> = row.try_get(0)?;
                let kind: String = row.try_get(2)?;
                Ok(PendingWelcome {
                    group: GroupId::from_bytes(id16(&group)?),
                    seq: to_u64(row.try_get(1)?),
                    spec: GroupSpec {
                        kind: kind_from_name(&kind)?,
                        retention: RetentionSecs(to_u64(row.try_get(3)?)),
                    },
                    welcome: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// A device has joined: its welcome is no longer needed.
    pub async fn welcome_used(&self, device: DeviceId, group: GroupId) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM pending_welcomes WHERE device_id = $1 AND group_id = $2")
            .bind(&device.as_bytes()[..])
            .bind(&group.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many welcomes wait, for anyone (the tests and the soak watch it).
    pub async fn pending_welcomes(&self) -> Result<(u64, u64), StoreError> {
        let (pending, blobs): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM pending_welcomes), (SELECT COUNT(*) FROM welcome_blobs)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((to_u64(pending), to_u64(blobs)))
    }

    /// The entry at `seq` of `group`, with its recipients and the welcome it
    /// carried: what a relay process rebuilds to deliver an entry another
    /// process stored.
    pub async fn appended_at(
        &self,
        group: GroupId,
        seq: u64,
    ) -> Result<Option<Appended>, StoreError> {
        let row = sqlx::query(
            "SELECT l.kind, l.epoch, l.sender, l.client_msg, l.expires_at, l.payload, g.kind, g.retention_secs, l.declared
             FROM log l JOIN groups g ON g.id = l.group_id WHERE l.group_id = $1 AND l.seq = $2",
        )
        .bind(&group.as_bytes()[..])
        .bind(to_i64(seq))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let kind: String = row.try_get(0)?;
        let sender: Vec<u8> = row.try_get(2)?;
        let client_msg: Vec<u8> = row.try_get(3)?;
        let expires_at: Option<i64> = row.try_get(4)?;
        let group_kind: String = row.try_get(6)?;
        let welcome: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT welcome FROM welcome_blobs WHERE group_id = $1 AND seq = $2",
        )
        .bind(&group.as_bytes()[..])
        .bind(to_i64(seq))
        .fetch_optional(&self.pool)
        .await?;
        let added: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT device_id FROM pending_welcomes WHERE group_id = $1 AND seq = $2",
        )
        .bind(&group.as_bytes()[..])
        .bind(to_i64(seq))
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(Appended {
            entry: LogEntry {
                group,
                seq,
                epoch: to_u64(row.try_get(1)?),
                sender: DeviceId::from_bytes(id16(&sender)?),
                client_msg: ClientMessageId::from_bytes(id16(&client_msg)?),
                kind: entry_kind_from_name(&kind),
                expires_at: expires_at.map(|e| UnixMillis(to_u64(e))),
                payload: row.try_get(5)?,
            },
            declared: declared_of(row.try_get(8)?)?.map(Box::new),
            fresh: true,
            recipients: self.recipients(group, seq).await?,
            added: added
                .iter()
                .map(|d| Ok(DeviceId::from_bytes(id16(d)?)))
                .collect::<Result<_, StoreError>>()?,
            welcome,
            spec: GroupSpec {
                kind: kind_from_name(&group_kind)?,
                retention: RetentionSecs(to_u64(row.try_get(7)?)),
            },
        }))
    }

    /// Deletes every application message whose expiry has passed; returns how many.
    ///
    /// It deletes in slices of [`SWEEP_SLICE`] rows, each in a transaction
    /// of its own, so that devices' writes take turns with it instead of
    /// waiting for an hour's worth of expired messages to go at once.
    pub async fn sweep_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let slice = sqlx::query(
                "DELETE FROM log WHERE (group_id, seq) IN (SELECT group_id, seq FROM log
                 WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)",
            )
            .bind(to_i64(now.0))
            .bind(SWEEP_SLICE)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            deleted += slice;
            if slice < to_u64(SWEEP_SLICE) {
                return Ok(deleted);
            }
        }
    }

    /// Deletes welcomes older than [`HANDSHAKE_RETENTION_MILLIS`] (a device
    /// away that long rejoins by a new invitation to the group), and stored
    /// welcomes nobody waits for any more; returns how many.
    pub async fn sweep_welcomes(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let cap = to_i64(now.0.saturating_sub(HANDSHAKE_RETENTION_MILLIS));
        let mut tx = self.begin_write().await?;
        let stale = sqlx::query(
            "DELETE FROM pending_welcomes WHERE EXISTS (SELECT 1 FROM welcome_blobs b
             WHERE b.group_id = pending_welcomes.group_id AND b.seq = pending_welcomes.seq
             AND b.created_at < $1)",
        )
        .bind(cap)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let unused = sqlx::query(
            "DELETE FROM welcome_blobs WHERE NOT EXISTS (SELECT 1 FROM pending_welcomes p
             WHERE p.group_id = welcome_blobs.group_id AND p.seq = welcome_blobs.seq)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(stale + unused)
    }

    /// Deletes commits that every current member device has passed, and any
    /// older than [`HANDSHAKE_RETENTION_MILLIS`]; returns how many.
    pub async fn sweep_handshakes(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let cap = to_i64(now.0.saturating_sub(HANDSHAKE_RETENTION_MILLIS));
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM log WHERE kind = 'commit' AND (stored_at < $1 OR seq <= (
                SELECT MIN(COALESCE(c.seq, m.joined_seq)) FROM members m
                LEFT JOIN cursors c ON c.device_id = m.device_id AND c.group_id = m.group_id
                WHERE m.group_id = log.group_id AND m.removed_seq IS NULL))",
        )
        .bind(cap)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}

/// How many expired messages one sweeping transaction deletes at most.
const SWEEP_SLICE: i64 = 500;

/// How long handshake messages (commits) are kept at most, even if some
/// member device never came back to pass them.
pub const HANDSHAKE_RETENTION_MILLIS: u64 = 30 * 24 * 60 * 60 * 1000;
