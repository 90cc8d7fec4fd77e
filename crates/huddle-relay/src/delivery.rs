//! The delivery service's storage: appending to a group's log in order, one commit per epoch, each client message once; reading backlogs; sweeping expired messages.
//!
//! Every operation is one transaction, and an append is reported accepted
//! only after that transaction has committed (SQLite WAL with
//! `synchronous=FULL`, PostgreSQL with `synchronous_commit=on`). The SQL is
//! written once and runs on both engines (`$N` placeholders, `RETURNING`,
//! partial indexes), through [`on_pool!`].

use crate::store::{id16, on_pool, to_i64, to_u64, BeginWrite, Store, StoreError};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{effective_expiry, GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::{
    EntryKind, GroupSpec, LogEntry, MembershipChange, Payload, Rejection, Submission,
    MAX_APPLICATION_BYTES,
};
use sqlx::Row;

/// The PostgreSQL channel on which each new log entry is announced as
/// `GROUP_HEX:SEQ`, for the relay processes sharing the database.
pub const LOG_CHANNEL: &str = "huddle_log";

/// The PostgreSQL channel on which revoked devices are announced, so that
/// every relay process ends their connections.
pub const REVOKED_CHANNEL: &str = "huddle_revoked";

/// What an accepted submission produced: its place in the log, and what to
/// fan out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub entry: LogEntry,
    /// False when this was a resend of an entry already stored.
    pub fresh: bool,
    /// Devices added by this commit, with their welcome.
    pub welcomes: Vec<(DeviceId, Vec<u8>)>,
    /// The group's type and retention.
    pub spec: GroupSpec,
}

/// A welcome waiting for a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingWelcome {
    pub group: GroupId,
    pub seq: u64,
    pub spec: GroupSpec,
    pub welcome: Vec<u8>,
}

/// A device as the relay knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub user: UserId,
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

fn kind_name(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Clinical => "clinical",
        GroupKind::Operational => "operational",
        GroupKind::Social => "social",
        GroupKind::EmergencyBroadcast => "emergency_broadcast",
        GroupKind::Direct => "direct",
    }
}

fn kind_from_name(name: &str) -> Option<GroupKind> {
    GroupKind::ALL.into_iter().find(|k| kind_name(*k) == name)
}

fn entry_kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Application => "application",
        EntryKind::Commit => "commit",
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// What appending one submission produced: accepted (fresh or a resend),
/// rejected with a reason, or a database error.
pub type AppendOutcome = Result<Result<Appended, Rejection>, StoreError>;

/// One write in a batch committed together (see [`Store::write_batch`]).
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
}

/// The outcome of one [`Write`].
#[derive(Debug)]
pub(crate) enum Written {
    Append(AppendOutcome),
    Acknowledged(Result<(), StoreError>),
}

/// Appends a submission inside the open transaction `$tx` (a `sqlx`
/// transaction on either engine) and evaluates to an [`AppendOutcome`]. A
/// macro rather than a function because the same SQL runs on two connection
/// types; the caller decides whether to keep what it wrote: only an
/// accepted append is kept.
macro_rules! append_within {
    ($store:expr, $tx:ident, $sender:expr, $submission:expr, $now:expr) => {
        async {
            let sender: DeviceId = $sender;
            let submission: &Submission = $submission;
            let now: UnixMillis = $now;
            let group = &submission.group.as_bytes()[..];
            let sender_bytes = &sender.as_bytes()[..];
            let client_msg = &submission.client_msg.as_bytes()[..];
            // Take the group's write lock first (a no-op update) and read it
            // in the same round trip: SQLite then serialises appends without
            // stale snapshots, and PostgreSQL locks the row.
            let existing = sqlx::query(
                "UPDATE groups SET last_seq = last_seq WHERE id = $1
                 RETURNING kind, retention_secs, epoch, last_seq",
            )
            .bind(group)
            .fetch_optional(&mut *$tx)
            .await?;

            // A resend of something already stored is acknowledged again.
            if let Some(row) = sqlx::query(
                "SELECT l.group_id, l.seq, l.kind, l.epoch, l.expires_at, l.payload, g.kind, g.retention_secs
                 FROM log l JOIN groups g ON g.id = l.group_id WHERE l.sender = $1 AND l.client_msg = $2",
            )
            .bind(sender_bytes)
            .bind(client_msg)
            .fetch_optional(&mut *$tx)
            .await?
            {
                let stored_group: Vec<u8> = row.try_get(0)?;
                let kind: String = row.try_get(2)?;
                let expires_at: Option<i64> = row.try_get(4)?;
                let group_kind: String = row.try_get(6)?;
                let spec = GroupSpec {
                    kind: kind_from_name(&group_kind).ok_or_else(|| {
                        StoreError::Query(sqlx::Error::Protocol("unknown group kind".into()))
                    })?,
                    retention: RetentionSecs(to_u64(row.try_get(7)?)),
                };
                if stored_group != group {
                    return Ok(Err(Rejection::InvalidCommit(
                        "this message id was already used in another group".into(),
                    )));
                }
                return Ok(Ok(Appended {
                    entry: LogEntry {
                        group: submission.group,
                        seq: to_u64(row.try_get(1)?),
                        epoch: to_u64(row.try_get(3)?),
                        sender,
                        client_msg: submission.client_msg,
                        kind: if kind == "commit" { EntryKind::Commit } else { EntryKind::Application },
                        expires_at: expires_at.map(|e| UnixMillis(to_u64(e))),
                        payload: row.try_get(5)?,
                    },
                    fresh: false,
                    welcomes: Vec::new(),
                    spec,
                }));
            }

            let (kind, retention, epoch, last_seq) = match (existing, &submission.payload) {
                (Some(row), _) => {
                    let kind: String = row.try_get(0)?;
                    let Some(kind) = kind_from_name(&kind) else {
                        return Err(StoreError::Query(sqlx::Error::Protocol("unknown group kind".into())));
                    };
                    (kind, RetentionSecs(to_u64(row.try_get(1)?)), to_u64(row.try_get(2)?), to_u64(row.try_get(3)?))
                }
                (
                    None,
                    Payload::Commit {
                        change: MembershipChange { create: Some(spec), .. },
                        ..
                    },
                ) if submission.epoch == 0 => {
                    if spec.kind.check_retention(spec.retention).is_err() {
                        return Ok(Err(Rejection::InvalidRetention));
                    }
                    sqlx::query(
                        "INSERT INTO groups (id, kind, retention_secs, epoch, last_seq, created_by, created_at) VALUES ($1, $2, $3, 0, 0, $4, $5)",
                    )
                    .bind(group)
                    .bind(kind_name(spec.kind))
                    .bind(to_i64(spec.retention.0))
                    .bind(sender_bytes)
                    .bind(to_i64(now.0))
                    .execute(&mut *$tx)
                    .await?;
                    sqlx::query("INSERT INTO members (group_id, device_id, joined_seq) VALUES ($1, $2, 0)")
                        .bind(group)
                        .bind(sender_bytes)
                        .execute(&mut *$tx)
                        .await?;
                    (spec.kind, spec.retention, 0, 0)
                }
                (None, _) => return Ok(Err(Rejection::UnknownGroup)),
            };

            let is_member: Option<i64> = sqlx::query_scalar(
                "SELECT joined_seq FROM members WHERE group_id = $1 AND device_id = $2 AND removed_seq IS NULL",
            )
            .bind(group)
            .bind(sender_bytes)
            .fetch_optional(&mut *$tx)
            .await?;
            if is_member.is_none() {
                return Ok(Err(Rejection::NotAMember));
            }
            // Clinical and emergency broadcast groups: only administrators
            // change who is in them, and only administrators broadcast.
            let restricted = match &submission.payload {
                Payload::Commit { .. } => {
                    matches!(kind, GroupKind::Clinical | GroupKind::EmergencyBroadcast)
                }
                Payload::Application { .. } => kind == GroupKind::EmergencyBroadcast,
            };
            if restricted {
                let role: Option<String> = sqlx::query_scalar(
                    "SELECT u.role FROM devices d JOIN users u ON u.id = d.user_id
                     WHERE d.id = $1 AND u.revoked_at IS NULL",
                )
                .bind(sender_bytes)
                .fetch_optional(&mut *$tx)
                .await?;
                if role.as_deref() != Some("administrator") {
                    return Ok(Err(Rejection::NotPermitted));
                }
            }
            if submission.epoch != epoch {
                return Ok(Err(Rejection::StaleEpoch { current_epoch: epoch }));
            }

            let seq = last_seq + 1;
            let (entry_kind, payload, expires_at) = match &submission.payload {
                Payload::Application { ciphertext } => {
                    if ciphertext.len() > MAX_APPLICATION_BYTES {
                        return Ok(Err(Rejection::TooLarge { max: MAX_APPLICATION_BYTES as u32 }));
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
            sqlx::query(
                "INSERT INTO log (group_id, seq, kind, epoch, sender, client_msg, expires_at, payload, stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(group)
            .bind(to_i64(seq))
            .bind(entry_kind_name(entry_kind))
            .bind(to_i64(epoch))
            .bind(sender_bytes)
            .bind(client_msg)
            .bind(expires_at.map(|e| to_i64(e.0)))
            .bind(payload.as_slice())
            .bind(to_i64(now.0))
            .execute(&mut *$tx)
            .await?;

            let mut welcomes = Vec::new();
            if let Payload::Commit { change, welcome, .. } = &submission.payload {
                for removed in &change.remove {
                    sqlx::query(
                        "UPDATE members SET removed_seq = $3 WHERE group_id = $1 AND device_id = $2 AND removed_seq IS NULL",
                    )
                    .bind(group)
                    .bind(&removed.as_bytes()[..])
                    .bind(to_i64(seq))
                    .execute(&mut *$tx)
                    .await?;
                }
                for added in &change.add {
                    // A device removed earlier and added again starts afresh.
                    sqlx::query("DELETE FROM members WHERE group_id = $1 AND device_id = $2")
                        .bind(group)
                        .bind(&added.as_bytes()[..])
                        .execute(&mut *$tx)
                        .await?;
                    sqlx::query("INSERT INTO members (group_id, device_id, joined_seq) VALUES ($1, $2, $3)")
                        .bind(group)
                        .bind(&added.as_bytes()[..])
                        .bind(to_i64(seq))
                        .execute(&mut *$tx)
                        .await?;
                    if let Some(welcome) = welcome {
                        sqlx::query("DELETE FROM welcomes WHERE device_id = $1 AND group_id = $2")
                            .bind(&added.as_bytes()[..])
                            .bind(group)
                            .execute(&mut *$tx)
                            .await?;
                        sqlx::query("INSERT INTO welcomes (device_id, group_id, seq, welcome) VALUES ($1, $2, $3, $4)")
                            .bind(&added.as_bytes()[..])
                            .bind(group)
                            .bind(to_i64(seq))
                            .bind(welcome.as_slice())
                            .execute(&mut *$tx)
                            .await?;
                        welcomes.push((*added, welcome.clone()));
                    }
                }
            }
            if let Payload::Commit { change, .. } = &submission.payload {
                // Who changed whom in which group: ids only, never content.
                let list = |devices: &[DeviceId]| {
                    devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                };
                let mut lines = Vec::new();
                if change.create.is_some() {
                    lines.push(("group created", format!("group {}", submission.group)));
                }
                if !change.add.is_empty() {
                    lines.push(("members added", format!("group {}: devices {}", submission.group, list(&change.add))));
                }
                if !change.remove.is_empty() {
                    lines.push(("members removed", format!("group {}: devices {}", submission.group, list(&change.remove))));
                }
                for (action, subject) in lines {
                    sqlx::query(
                        "INSERT INTO audit (at, actor, action, subject)
                         VALUES ($1, (SELECT user_id FROM devices WHERE id = $2), $3, $4)",
                    )
                    .bind(to_i64(now.0))
                    .bind(sender_bytes)
                    .bind(action)
                    .bind(subject)
                    .execute(&mut *$tx)
                    .await?;
                }
            }
            let new_epoch = if entry_kind == EntryKind::Commit { epoch + 1 } else { epoch };
            sqlx::query("UPDATE groups SET last_seq = $2, epoch = $3 WHERE id = $1")
                .bind(group)
                .bind(to_i64(seq))
                .bind(to_i64(new_epoch))
                .execute(&mut *$tx)
                .await?;
            if $store.engine() == "postgres" {
                // Other relay processes on this database deliver the entry
                // to their own connections. `pg_notify` is transactional:
                // it is sent if and only if the entry is committed.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(LOG_CHANNEL)
                    .bind(format!("{}:{}", submission.group, seq))
                    .execute(&mut *$tx)
                    .await?;
            }
            AppendOutcome::Ok(Ok(Appended {
                entry: LogEntry {
                    group: submission.group,
                    seq,
                    epoch,
                    sender,
                    client_msg: submission.client_msg,
                    kind: entry_kind,
                    expires_at,
                    payload: payload.clone(),
                },
                fresh: true,
                welcomes,
                spec: GroupSpec { kind, retention },
            }))
        }
        .await
    };
}

/// Records inside `$tx` that a device has processed a group up to a
/// sequence number (never moving back).
macro_rules! acknowledge_within {
    ($tx:ident, $device:expr, $group:expr, $seq:expr) => {
        async {
            let (device, group, seq): (DeviceId, GroupId, u64) = ($device, $group, $seq);
            sqlx::query(
                "INSERT INTO cursors (device_id, group_id, seq) VALUES ($1, $2, $3)
                 ON CONFLICT (device_id, group_id) DO UPDATE SET seq = excluded.seq WHERE cursors.seq < excluded.seq",
            )
            .bind(&device.as_bytes()[..])
            .bind(&group.as_bytes()[..])
            .bind(to_i64(seq))
            .execute(&mut *$tx)
            .await?;
            Ok::<(), StoreError>(())
        }
        .await
    };
}

impl Store {
    /// Records a device and its public key (registration through invites
    /// calls this).
    pub async fn put_device(
        &self,
        device: DeviceId,
        user: UserId,
        public_key: &[u8],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO devices (id, user_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&device.as_bytes()[..])
            .bind(&user.as_bytes()[..])
            .bind(public_key)
            .bind(to_i64(now.0))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query("SELECT user_id, public_key, revoked_at FROM devices WHERE id = $1")
                .bind(&device.as_bytes()[..])
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<DeviceRow, StoreError> {
                    let user: Vec<u8> = row.try_get(0)?;
                    let revoked_at: Option<i64> = row.try_get(2)?;
                    Ok(DeviceRow {
                        user: UserId::from_bytes(id16(&user)?),
                        public_key: row.try_get(1)?,
                        revoked: revoked_at.is_some(),
                    })
                })
        });
        row.transpose()
    }

    /// Appends one submission to its group's log in a transaction of its
    /// own, or says why not. Connections go through
    /// [`crate::group_commit::Appender`], which commits many at once.
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
        match self.write_batch(std::slice::from_ref(&write)).await.pop() {
            Some(Written::Append(outcome)) => outcome,
            _ => Err(StoreError::NotCommitted(
                "the write produced no outcome".into(),
            )),
        }
    }

    /// Writes `writes` in one transaction, each inside a savepoint of its
    /// own so that a rejection or an error undoes that write alone, and
    /// commits once: one fsync for the whole batch. Outcomes come back in
    /// the order of `writes`; an append is reported accepted only if the
    /// commit succeeded.
    pub(crate) async fn write_batch(&self, writes: &[Write]) -> Vec<Written> {
        let attempt = on_pool!(self, pool => {
            async {
                let mut tx = pool.begin_write().await?;
                // A write alone in its transaction needs no savepoint: if it
                // is not kept, the whole transaction is undone. That saves
                // two round trips whenever the relay is not busy.
                let lone = writes.len() == 1;
                let mut outcomes = Vec::with_capacity(writes.len());
                for write in writes {
                    let mut attempts = 0;
                    let outcome = loop {
                        attempts += 1;
                        if !lone {
                            sqlx::query("SAVEPOINT write").execute(&mut *tx).await?;
                        }
                        let outcome = match write {
                            Write::Append { sender, submission, now } => {
                                Written::Append(append_within!(self, tx, *sender, submission, *now))
                            }
                            Write::Acknowledge { device, group, seq } => {
                                Written::Acknowledged(acknowledge_within!(tx, *device, *group, *seq))
                            }
                        };
                        let keep = matches!(
                            outcome,
                            Written::Append(Ok(Ok(_))) | Written::Acknowledged(Ok(()))
                        );
                        if keep {
                            if !lone {
                                sqlx::query("RELEASE SAVEPOINT write").execute(&mut *tx).await?;
                            }
                            break outcome;
                        }
                        // Two devices created the same group or committed the
                        // same epoch at the same instant (relay processes
                        // sharing PostgreSQL): this write hit a unique index.
                        // Read again; the answer is now a clean rejection or
                        // a resend. A violation that persists is a bug,
                        // reported rather than retried for ever.
                        let retry = matches!(
                            &outcome,
                            Written::Append(Err(StoreError::Query(error)))
                                if is_unique_violation(error) && attempts < 5
                        );
                        if lone {
                            tx.rollback().await?;
                            if retry {
                                tx = pool.begin_write().await?;
                                continue;
                            }
                            return Ok(vec![outcome]);
                        }
                        sqlx::query("ROLLBACK TO SAVEPOINT write").execute(&mut *tx).await?;
                        sqlx::query("RELEASE SAVEPOINT write").execute(&mut *tx).await?;
                        if !retry {
                            break outcome;
                        }
                    };
                    outcomes.push(outcome);
                }
                // Acknowledged only once this returns: the commit is durable.
                tx.commit().await?;
                Ok::<_, StoreError>(outcomes)
            }
            .await
        });
        match attempt {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // Nothing in the batch was committed, so nothing in it is
                // acknowledged: every device sends its message again, with
                // the same id, and is answered then.
                let reason = error.to_string();
                writes
                    .iter()
                    .map(|write| match write {
                        Write::Append { .. } => {
                            Written::Append(Err(StoreError::NotCommitted(reason.clone())))
                        }
                        Write::Acknowledge { .. } => {
                            Written::Acknowledged(Err(StoreError::NotCommitted(reason.clone())))
                        }
                    })
                    .collect()
            }
        }
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
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT l.seq, l.kind, l.epoch, l.sender, l.client_msg, l.expires_at, l.payload
                 FROM log l JOIN members m ON m.group_id = l.group_id AND m.device_id = $2
                 WHERE l.group_id = $1 AND l.seq > $3 AND l.seq > m.joined_seq
                   AND (m.removed_seq IS NULL OR l.seq <= m.removed_seq)
                   AND (l.expires_at IS NULL OR l.expires_at > $4)
                 ORDER BY l.seq LIMIT $5",
            )
            .bind(&group.as_bytes()[..])
            .bind(&device.as_bytes()[..])
            .bind(to_i64(after_seq))
            .bind(to_i64(now.0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    let kind: String = row.try_get(1)?;
                    let sender: Vec<u8> = row.try_get(3)?;
                    let client_msg: Vec<u8> = row.try_get(4)?;
                    let expires_at: Option<i64> = row.try_get(5)?;
                    Ok(LogEntry {
                        group,
                        seq: to_u64(row.try_get(0)?),
                        epoch: to_u64(row.try_get(2)?),
                        sender: DeviceId::from_bytes(id16(&sender)?),
                        client_msg: ClientMessageId::from_bytes(id16(&client_msg)?),
                        kind: if kind == "commit" { EntryKind::Commit } else { EntryKind::Application },
                        expires_at: expires_at.map(|e| UnixMillis(to_u64(e))),
                        payload: row.try_get(6)?,
                    })
                })
                .collect()
        })
    }

    /// The groups a device belongs to (including one it was just removed
    /// from, until it has read its removal).
    pub async fn groups_of(&self, device: DeviceId) -> Result<Vec<GroupId>, StoreError> {
        on_pool!(self, pool => {
            let ids: Vec<Vec<u8>> = sqlx::query_scalar("SELECT group_id FROM members WHERE device_id = $1 ORDER BY group_id")
                .bind(&device.as_bytes()[..])
                .fetch_all(pool)
                .await?;
            ids.iter().map(|id| Ok(GroupId::from_bytes(id16(id)?))).collect()
        })
    }

    /// The current members of a group, who receive its new entries.
    pub async fn recipients(&self, group: GroupId, seq: u64) -> Result<Vec<DeviceId>, StoreError> {
        on_pool!(self, pool => {
            let ids: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT device_id FROM members WHERE group_id = $1 AND joined_seq < $2 AND (removed_seq IS NULL OR removed_seq >= $2)",
            )
            .bind(&group.as_bytes()[..])
            .bind(to_i64(seq))
            .fetch_all(pool)
            .await?;
            ids.iter().map(|id| Ok(DeviceId::from_bytes(id16(id)?))).collect()
        })
    }

    /// Welcomes waiting for a device.
    pub async fn welcomes_for(&self, device: DeviceId) -> Result<Vec<PendingWelcome>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT w.group_id, w.seq, g.kind, g.retention_secs, w.welcome FROM welcomes w JOIN groups g ON g.id = w.group_id WHERE w.device_id = $1 ORDER BY w.seq",
            )
            .bind(&device.as_bytes()[..])
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    let group: Vec<u8> = row.try_get(0)?;
                    let kind: String = row.try_get(2)?;
                    let kind = kind_from_name(&kind).ok_or_else(|| StoreError::Query(sqlx::Error::Protocol("unknown group kind".into())))?;
                    Ok(PendingWelcome {
                        group: GroupId::from_bytes(id16(&group)?),
                        seq: to_u64(row.try_get(1)?),
                        spec: GroupSpec { kind, retention: RetentionSecs(to_u64(row.try_get(3)?)) },
                        welcome: row.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    /// A device has joined: its welcome is no longer needed.
    pub async fn welcome_used(&self, device: DeviceId, group: GroupId) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM welcomes WHERE device_id = $1 AND group_id = $2")
                .bind(&device.as_bytes()[..])
                .bind(&group.as_bytes()[..])
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes every application message whose expiry has passed; returns how many.
    pub async fn sweep_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM log WHERE expires_at IS NOT NULL AND expires_at <= $1")
                .bind(to_i64(now.0))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}

/// How many unclaimed single-use key packages a device may keep on the relay.
pub const MAX_KEY_PACKAGES_PER_DEVICE: i64 = 100;

impl Store {
    /// Stores a device's key packages; a new last-resort package replaces the old one.
    pub async fn publish_key_packages(
        &self,
        device: DeviceId,
        key_packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let device = &device.as_bytes()[..];
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for data in key_packages {
                sqlx::query("INSERT INTO key_packages (device_id, last_resort, data) VALUES ($1, 0, $2)")
                    .bind(device)
                    .bind(data.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(data) = last_resort {
                sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 1")
                    .bind(device)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO key_packages (device_id, last_resort, data) VALUES ($1, 1, $2)")
                    .bind(device)
                    .bind(data)
                    .execute(&mut *tx)
                    .await?;
            }
            // Keep only the newest packages: a device cannot fill the disk.
            sqlx::query(
                "DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 0 AND id NOT IN
                 (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id DESC LIMIT $2)",
            )
            .bind(device)
            .bind(MAX_KEY_PACKAGES_PER_DEVICE)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// One key package for each current device of each person: a
    /// single-use one (deleted as it is handed out) or the last-resort one.
    pub async fn claim_key_packages(
        &self,
        users: &[UserId],
    ) -> Result<Vec<huddle_core::wire::ClaimedKeyPackage>, StoreError> {
        let mut claimed = Vec::new();
        // Two devices claiming at once must each get a different single-use
        // package. SQLite serialises writers; on PostgreSQL the second would
        // wait for the first's row and then find it gone, so it skips rows
        // another claim holds and takes the next.
        let take_single_use = match self {
            Store::Sqlite(_) => {
                "DELETE FROM key_packages WHERE id =
                 (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id LIMIT 1)
                 RETURNING data"
            }
            Store::Postgres(_) => {
                "DELETE FROM key_packages WHERE id =
                 (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id LIMIT 1
                  FOR UPDATE SKIP LOCKED)
                 RETURNING data"
            }
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for user in users {
                let devices: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT id FROM devices WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
                )
                .bind(&user.as_bytes()[..])
                .fetch_all(&mut *tx)
                .await?;
                for device in devices {
                    let single: Option<Vec<u8>> = sqlx::query_scalar(take_single_use)
                    .bind(device.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let data = match single {
                        Some(data) => Some(data),
                        None => sqlx::query_scalar(
                            "SELECT data FROM key_packages WHERE device_id = $1 AND last_resort = 1",
                        )
                        .bind(device.as_slice())
                        .fetch_optional(&mut *tx)
                        .await?,
                    };
                    if let Some(key_package) = data {
                        claimed.push(huddle_core::wire::ClaimedKeyPackage {
                            user: *user,
                            device: DeviceId::from_bytes(id16(&device)?),
                            key_package,
                        });
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(claimed)
    }

    /// This relay's organisation id, made on first use and kept in
    /// `relay_info` (one organisation per installation).
    pub async fn org_id(&self, fresh: [u8; 16]) -> Result<huddle_core::ids::OrgId, StoreError> {
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let stored: String = on_pool!(self, pool => {
            sqlx::query("INSERT INTO relay_info (key, value) VALUES ('org_id', $1) ON CONFLICT (key) DO NOTHING")
                .bind(&hex)
                .execute(pool)
                .await?;
            sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'org_id'")
                .fetch_one(pool)
                .await?
        });
        stored.parse().map_err(|_| {
            StoreError::Query(sqlx::Error::Protocol(
                "relay_info.org_id is not an id".into(),
            ))
        })
    }
}

/// How often expired messages are deleted. Expired messages are never
/// served in between (the backlog query filters them); this bounds how long
/// their ciphertext stays on disk.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Deletes expired application messages every [`SWEEP_INTERVAL`], for as long as the relay runs.
pub async fn run_sweeper(store: Store) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        match store.sweep_expired(crate::socket::now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired messages deleted"),
            Err(error) => tracing::warn!(%error, "could not delete expired messages"),
        }
        match store.sweep_handshakes(crate::socket::now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "handshakes everyone has passed deleted"),
            Err(error) => tracing::warn!(%error, "could not delete old handshakes"),
        }
    }
}

impl Store {
    /// The entry at `seq` of `group`, with the welcomes it carried: what a
    /// relay process rebuilds to deliver an entry another process stored.
    pub async fn appended_at(
        &self,
        group: GroupId,
        seq: u64,
    ) -> Result<Option<Appended>, StoreError> {
        type EntryRow = (
            String,
            i64,
            Vec<u8>,
            Vec<u8>,
            Option<i64>,
            Vec<u8>,
            String,
            i64,
        );
        let row: Option<EntryRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT l.kind, l.epoch, l.sender, l.client_msg, l.expires_at, l.payload, g.kind, g.retention_secs
                 FROM log l JOIN groups g ON g.id = l.group_id WHERE l.group_id = $1 AND l.seq = $2",
            )
            .bind(&group.as_bytes()[..])
            .bind(to_i64(seq))
            .fetch_optional(pool)
            .await?
        });
        let Some((kind, epoch, sender, client_msg, expires_at, payload, group_kind, retention)) =
            row
        else {
            return Ok(None);
        };
        let spec = GroupSpec {
            kind: kind_from_name(&group_kind).ok_or_else(|| {
                StoreError::Query(sqlx::Error::Protocol("unknown group kind".into()))
            })?,
            retention: RetentionSecs(to_u64(retention)),
        };
        let welcomes: Vec<(Vec<u8>, Vec<u8>)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT device_id, welcome FROM welcomes WHERE group_id = $1 AND seq = $2")
                .bind(&group.as_bytes()[..])
                .bind(to_i64(seq))
                .fetch_all(pool)
                .await?
        });
        Ok(Some(Appended {
            entry: LogEntry {
                group,
                seq,
                epoch: to_u64(epoch),
                sender: DeviceId::from_bytes(id16(&sender)?),
                client_msg: ClientMessageId::from_bytes(id16(&client_msg)?),
                kind: if kind == "commit" {
                    EntryKind::Commit
                } else {
                    EntryKind::Application
                },
                expires_at: expires_at.map(|e| UnixMillis(to_u64(e))),
                payload,
            },
            fresh: true,
            welcomes: welcomes
                .into_iter()
                .map(|(device, welcome)| Ok((DeviceId::from_bytes(id16(&device)?), welcome)))
                .collect::<Result<_, StoreError>>()?,
            spec,
        }))
    }
}

/// Delivers entries stored by other relay processes on the same PostgreSQL
/// database to this process's connections, for as long as the relay runs.
/// A process also hears its own announcements: the hub remembers what it
/// delivered, and each connection skips sequence numbers it already sent.
pub async fn run_listener(store: Store, hub: std::sync::Arc<crate::hub::Hub>) {
    let Store::Postgres(pool) = &store else {
        return;
    };
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "could not listen for other relays' messages; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen_all([LOG_CHANNEL, REVOKED_CHANNEL]).await {
            tracing::warn!(%error, "could not listen for other relays' messages; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        loop {
            let notification = match listener.recv().await {
                Ok(notification) => notification,
                Err(error) => {
                    // Devices catch up on anything missed when they next sync.
                    tracing::warn!(%error, "lost the connection for other relays' messages");
                    break;
                }
            };
            let Some((group, seq)) = notification.payload().split_once(':') else {
                continue;
            };
            let (Ok(group), Ok(seq)) = (group.parse::<GroupId>(), seq.parse::<u64>()) else {
                continue;
            };
            if hub.already_delivered(group, seq) {
                continue;
            }
            match store.appended_at(group, seq).await {
                Ok(Some(appended)) => hub.fan_out(&store, appended).await,
                Ok(None) => {} // expired and swept already
                Err(error) => tracing::warn!(%error, "could not read an announced entry"),
            }
        }
    }
}

impl Store {
    /// Tells the other relay processes on this PostgreSQL database to end a
    /// revoked device's connections (a no-op on SQLite: one process).
    pub async fn announce_revoked(&self, device: DeviceId) {
        if let Store::Postgres(pool) = self {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVOKED_CHANNEL)
                .bind(device.to_string())
                .execute(pool)
                .await;
            if let Err(error) = sent {
                tracing::warn!(%error, "could not announce a revoked device to other relays");
            }
        }
    }
}

impl Store {
    /// The last sequence number of `group` that `device` may read: the end
    /// of the log, or the entry that removed it. 0 if it is not a member.
    pub async fn readable_end(&self, group: GroupId, device: DeviceId) -> Result<u64, StoreError> {
        let row: Option<(i64, Option<i64>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT g.last_seq, m.removed_seq FROM groups g JOIN members m ON m.group_id = g.id
                 WHERE g.id = $1 AND m.device_id = $2",
            )
            .bind(&group.as_bytes()[..])
            .bind(&device.as_bytes()[..])
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map_or(0, |(last, removed)| {
            to_u64(removed.map_or(last, |r| r.min(last)))
        }))
    }
}

/// How long handshake messages (commits) are kept at most, even if some
/// member device never came back to pass them.
pub const HANDSHAKE_RETENTION_MILLIS: u64 = 30 * 24 * 60 * 60 * 1000;

impl Store {
    /// Records that `device` has processed `group` up to `seq` (never moves
    /// back), in a transaction of its own. Connections go through
    /// [`crate::group_commit::Appender`].
    pub async fn acknowledge(
        &self,
        device: DeviceId,
        group: GroupId,
        seq: u64,
    ) -> Result<(), StoreError> {
        let write = Write::Acknowledge { device, group, seq };
        match self.write_batch(std::slice::from_ref(&write)).await.pop() {
            Some(Written::Acknowledged(outcome)) => outcome,
            _ => Err(StoreError::NotCommitted(
                "the write produced no outcome".into(),
            )),
        }
    }

    /// Deletes commits that every current member device has passed, and any
    /// older than [`HANDSHAKE_RETENTION_MILLIS`]; returns how many.
    pub async fn sweep_handshakes(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let cap = to_i64(now.0.saturating_sub(HANDSHAKE_RETENTION_MILLIS));
        let deleted = on_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM log WHERE kind = 'commit' AND (stored_at < $1 OR seq <= (
                    SELECT MIN(COALESCE(c.seq, m.joined_seq)) FROM members m
                    LEFT JOIN cursors c ON c.device_id = m.device_id AND c.group_id = m.group_id
                    WHERE m.group_id = log.group_id AND m.removed_seq IS NULL))",
            )
            .bind(cap)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(deleted)
    }
}
