//! The device WebSocket: challenge authentication, then sync, submissions and live delivery, with limits that keep one bad connection from hurting the others.
//!
//! One socket per device, binary frames from `huddle_core::wire`. The relay
//! sends a challenge; the device signs it with its P-384 key; then the device
//! says where it is in its groups (`Sync`), receives each backlog and
//! `Synced`, and from then on live traffic. Frames the relay cannot read get
//! an `Error` frame and the connection carries on; a frame over the size
//! limit closes it with 1009, a device that does not authenticate in time
//! with 1008.

use crate::delivery::AppendOutcome;
use crate::hub::LiveFrame;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{
    auth_transcript, ClientFrame, ErrorCode, GroupCursor, ServerFrame, WireError, MAX_FRAME_BYTES,
};
use std::collections::HashMap;
use std::time::Duration;

/// How long a device has to answer the challenge.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The read buffer each connection starts with.
const IDLE_READ_BUFFER: usize = 4 * 1024;

/// How many backlog entries are read from the database at a time.
const BACKLOG_PAGE: u32 = 500;

/// Submissions from one device that may wait for their commit at once: a
/// phone flushing its outbox fills a batch, and one device cannot queue
/// without limit.
const MAX_SUBMISSIONS_IN_FLIGHT: usize = 64;

/// WebSocket close codes (RFC 6455).
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL: u16 = 1011;
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

pub fn now() -> UnixMillis {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    UnixMillis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Accepts the upgrade if the page comes from this relay (or the client is
/// not a browser, which sends no Origin).
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "This page may not connect to this relay.",
        )
            .into_response();
    }
    upgrade
        // A little room above the frame limit so that an oversized frame is
        // read whole and answered with 1009 rather than a broken socket.
        .max_message_size(MAX_FRAME_BYTES + 1024)
        // The defaults (128 KiB read buffer allocated up front) cost about
        // 140 KiB per idle device; thousands of phones sit idle most of the
        // time. Small buffers grow while a large frame is read.
        .read_buffer_size(IDLE_READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, state))
}

fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get("host").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

fn random_nonce() -> Option<[u8; 32]> {
    let mut nonce = [0u8; 32];
    getrandom::getrandom(&mut nonce).ok()?;
    Some(nonce)
}

/// Checks a DER-encoded ECDSA P-384 signature over `message`.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use p384::ecdsa::signature::Verifier;
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = p384::ecdsa::Signature::from_der(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

struct Connection {
    socket: WebSocket,
}

enum Incoming {
    Frame(ClientFrame),
    /// A frame that could not be read; the connection carries on.
    Bad(ErrorCode, String),
    /// The connection is over (closed, broken, or closed by us).
    Gone,
}

impl Connection {
    async fn send(&mut self, frame: &ServerFrame) -> bool {
        self.socket
            .send(Message::Binary(frame.encode().into()))
            .await
            .is_ok()
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }

    async fn receive(&mut self) -> Incoming {
        loop {
            let Some(message) = self.socket.next().await else {
                return Incoming::Gone;
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    if error.to_string().to_ascii_lowercase().contains("too long")
                        || error.to_string().to_ascii_lowercase().contains("size")
                    {
                        self.close(CLOSE_TOO_BIG, "frame too large").await;
                    }
                    return Incoming::Gone;
                }
            };
            return match message {
                Message::Binary(bytes) => {
                    if bytes.len() > MAX_FRAME_BYTES {
                        self.close(CLOSE_TOO_BIG, "frame too large").await;
                        return Incoming::Gone;
                    }
                    match ClientFrame::decode(&bytes) {
                        Ok(frame) => Incoming::Frame(frame),
                        Err(WireError::UnsupportedVersion(v)) => Incoming::Bad(
                            ErrorCode::UnsupportedVersion,
                            format!("frame version {v} is not supported; update Huddle"),
                        ),
                        Err(error) => Incoming::Bad(ErrorCode::Malformed, error.to_string()),
                    }
                }
                Message::Text(_) => Incoming::Bad(
                    ErrorCode::Malformed,
                    "frames are binary; text frames are not understood".into(),
                ),
                Message::Close(_) => Incoming::Gone,
                // Pings are answered by the WebSocket layer.
                Message::Ping(_) | Message::Pong(_) => continue,
            };
        }
    }
}

async fn serve(socket: WebSocket, state: AppState) {
    let mut connection = Connection { socket };
    let Some(device) = authenticate(&mut connection, &state).await else {
        return;
    };
    let (live, mut live_frames) = state.hub.register(device);
    tracing::info!(device = %device, "device connected");
    let mut sent_up_to: HashMap<GroupId, u64> = HashMap::new();
    let mut welcomed: HashMap<GroupId, u64> = HashMap::new();
    // Submissions waiting for their commit, answered in the order they came.
    let mut submitted = FuturesOrdered::new();
    loop {
        tokio::select! {
            // Answers first: a device hears "accepted" as soon as it can.
            // (With several relay processes its own copy of the entry may
            // still arrive first, through PostgreSQL; devices take either as
            // the acceptance.)
            biased;
            Some((client_msg, group, outcome)) = submitted.next(), if !submitted.is_empty() => {
                if !answer_submission(&mut connection, &state, client_msg, group, outcome).await {
                    break;
                }
            }
            // A device with many submissions waiting is not read further
            // until some are answered: back-pressure, not an unbounded queue.
            incoming = connection.receive(), if submitted.len() < MAX_SUBMISSIONS_IN_FLIGHT => match incoming {
                Incoming::Frame(frame) => {
                    if let Err(retry_after_ms) = state.rate_limiter.take(device, state.rate_limit, now().0) {
                        if !refuse_for_rate(&mut connection, frame, retry_after_ms).await {
                            break;
                        }
                        continue;
                    }
                    if let ClientFrame::Submit(submission) = frame {
                        // Enqueued here, in the order the device sent them,
                        // so that its messages keep their order in the log.
                        let (client_msg, group) = (submission.client_msg, submission.group);
                        let pending = state.appender.enqueue(device, submission, now()).await;
                        submitted.push_back(async move { (client_msg, group, pending.outcome().await) });
                    } else if !handle_frame(&mut connection, &state, device, frame, &mut sent_up_to).await {
                        break;
                    }
                }
                Incoming::Bad(code, message) => {
                    tracing::debug!(device = %device, ?code, "unreadable frame");
                    if !connection.send(&ServerFrame::Error { code, message }).await {
                        break;
                    }
                }
                Incoming::Gone => break,
            },
            frame = live_frames.recv() => match frame {
                Some(LiveFrame::Frame(frame)) => {
                    // The same entry can arrive twice: from the backlog and
                    // live, or from this process and from its own PostgreSQL
                    // announcement. Each is sent once.
                    match &frame {
                        ServerFrame::Deliver(entry) => {
                            if sent_up_to.get(&entry.group).is_some_and(|seq| entry.seq <= *seq) {
                                continue;
                            }
                            sent_up_to.insert(entry.group, entry.seq);
                        }
                        ServerFrame::Welcome { group, seq, .. } => {
                            if welcomed.get(group).is_some_and(|sent| seq <= sent) {
                                continue;
                            }
                            welcomed.insert(*group, *seq);
                        }
                        _ => {}
                    }
                    if !connection.send(&frame).await {
                        break;
                    }
                }
                None => {
                    // This device fell behind and the hub let it go; it
                    // resyncs from its cursor when it reconnects, and nobody
                    // else waited for it.
                    connection.close(CLOSE_TRY_AGAIN_LATER, "fell behind; reconnect").await;
                    break;
                }
                Some(LiveFrame::Revoked) => {
                    let _ = connection.send(&ServerFrame::Error {
                        code: ErrorCode::Revoked,
                        message: "This device was removed by an administrator.".into(),
                    }).await;
                    connection.close(CLOSE_POLICY, "device revoked").await;
                    break;
                }
            },
        }
    }
    state.hub.unregister(device, &live);
    if !submitted.is_empty() {
        // The device went while some of its messages waited for their
        // commit. The writer still commits them, and they must still reach
        // everyone online; the device hears "accepted" when it resends.
        let state = state.clone();
        tokio::spawn(async move {
            while let Some((_, _, outcome)) = submitted.next().await {
                if let Ok(Ok(appended)) = outcome {
                    if appended.fresh {
                        state.hub.fan_out(&state.store, appended).await;
                    }
                }
            }
        });
    }
    if !state.hub.is_connected(device) {
        state.rate_limiter.forget(device);
    }
    tracing::info!(device = %device, "device disconnected");
}

/// Tells the device what became of a submission, and on acceptance delivers
/// the entry to everyone else in the group.
async fn answer_submission(
    connection: &mut Connection,
    state: &AppState,
    client_msg: ClientMessageId,
    group: GroupId,
    outcome: AppendOutcome,
) -> bool {
    match outcome {
        Ok(Ok(appended)) => {
            let seq = appended.entry.seq;
            let answered = connection
                .send(&ServerFrame::Accepted {
                    client_msg,
                    group,
                    seq,
                })
                .await;
            if appended.fresh {
                state.hub.fan_out(&state.store, appended).await;
            }
            answered
        }
        Ok(Err(reason)) => {
            connection
                .send(&ServerFrame::Rejected {
                    client_msg,
                    group,
                    reason,
                })
                .await
        }
        Err(error) => {
            // Not acknowledged: the device keeps the message and sends it
            // again with the same id.
            tracing::error!(%error, "could not store a submission");
            connection
                .send(&ServerFrame::Error {
                    code: ErrorCode::Internal,
                    message: "The relay could not store the message; it will be sent again.".into(),
                })
                .await
        }
    }
}

async fn authenticate(connection: &mut Connection, state: &AppState) -> Option<DeviceId> {
    let Some(nonce) = random_nonce() else {
        connection.close(CLOSE_INTERNAL, "no randomness").await;
        return None;
    };
    let challenge = ServerFrame::Challenge {
        nonce,
        relay_time: now(),
    };
    if !connection.send(&challenge).await {
        return None;
    }
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, connection.receive()).await;
    let (device, signature) = match answer {
        Err(_) => {
            connection
                .close(CLOSE_POLICY, "authentication timed out")
                .await;
            return None;
        }
        Ok(Incoming::Frame(ClientFrame::Authenticate { device, signature })) => (device, signature),
        Ok(Incoming::Gone) => return None,
        Ok(_) => {
            let _ = connection
                .send(&ServerFrame::Error {
                    code: ErrorCode::NotAuthenticated,
                    message: "authenticate first".into(),
                })
                .await;
            connection.close(CLOSE_POLICY, "not authenticated").await;
            return None;
        }
    };
    let refuse = |code: ErrorCode, message: &str| ServerFrame::Error {
        code,
        message: message.to_owned(),
    };
    let row = match state.store.device(device).await {
        Ok(row) => row,
        Err(error) => {
            tracing::error!(%error, "could not look up a device");
            connection
                .close(CLOSE_INTERNAL, "database unavailable")
                .await;
            return None;
        }
    };
    let Some(row) = row else {
        let _ = connection
            .send(&refuse(
                ErrorCode::AuthenticationFailed,
                "This device is not registered with this relay.",
            ))
            .await;
        connection.close(CLOSE_POLICY, "unknown device").await;
        return None;
    };
    let person_active = matches!(state.store.role_of(device).await, Ok(Some(_)));
    if row.revoked || !person_active {
        let _ = connection
            .send(&refuse(
                ErrorCode::Revoked,
                "This device was removed by an administrator.",
            ))
            .await;
        connection.close(CLOSE_POLICY, "device revoked").await;
        return None;
    }
    if !verify_signature(
        &row.public_key,
        &auth_transcript(&nonce, device),
        &signature,
    ) {
        tracing::warn!(device = %device, "authentication failed: bad signature");
        let _ = connection
            .send(&refuse(
                ErrorCode::AuthenticationFailed,
                "The device's signature did not verify.",
            ))
            .await;
        connection.close(CLOSE_POLICY, "bad signature").await;
        return None;
    }
    let ready = ServerFrame::Ready {
        org: state.org,
        user: row.user,
        device,
    };
    connection.send(&ready).await.then_some(device)
}

/// Handles one frame; false ends the connection.
async fn handle_frame(
    connection: &mut Connection,
    state: &AppState,
    device: DeviceId,
    frame: ClientFrame,
    sent_up_to: &mut HashMap<GroupId, u64>,
) -> bool {
    match frame {
        ClientFrame::Authenticate { .. } => {
            connection
                .send(&ServerFrame::Error {
                    code: ErrorCode::Malformed,
                    message: "already authenticated".into(),
                })
                .await
        }
        ClientFrame::Ping { nonce } => connection.send(&ServerFrame::Pong { nonce }).await,
        ClientFrame::Sync { cursors } => sync(connection, state, device, cursors, sent_up_to).await,
        ClientFrame::Submit(submission) => {
            // `serve` hands submissions to the writers itself, so that
            // several can wait for one commit; answered here only if called
            // directly.
            let (client_msg, group) = (submission.client_msg, submission.group);
            let outcome = state.appender.append(device, submission, now()).await;
            answer_submission(connection, state, client_msg, group, outcome).await
        }
        ClientFrame::Ack { group, seq } => {
            // Only handshake clean-up depends on this; nothing is lost if
            // it fails, so the connection does not wait for the commit.
            state.appender.acknowledge(device, group, seq).await;
            true
        }
        frame @ (ClientFrame::CreateInvite { .. }
        | ClientFrame::RevokeInvite { .. }
        | ClientFrame::RevokeDevice { .. }
        | ClientFrame::RevokeUser { .. }
        | ClientFrame::Directory { .. }
        | ClientFrame::ReadAudit { .. }) => administer(connection, state, device, frame).await,
        ClientFrame::PublishKeyPackages {
            request,
            key_packages,
            last_resort,
        } => {
            match state
                .store
                .publish_key_packages(device, &key_packages, last_resort.as_deref())
                .await
            {
                Ok(()) => {
                    connection
                        .send(&ServerFrame::KeyPackagesPublished { request })
                        .await
                }
                Err(error) => {
                    tracing::error!(%error, "could not store key packages");
                    connection.send(&internal_error()).await
                }
            }
        }
        ClientFrame::ClaimKeyPackages { request, users } => {
            if users.len() > 100 {
                return connection
                    .send(&ServerFrame::Error {
                        code: ErrorCode::Malformed,
                        message: "ask for at most 100 people at a time".into(),
                    })
                    .await;
            }
            match state.store.claim_key_packages(&users).await {
                Ok(key_packages) => {
                    connection
                        .send(&ServerFrame::KeyPackages {
                            request,
                            key_packages,
                        })
                        .await
                }
                Err(error) => {
                    tracing::error!(%error, "could not claim key packages");
                    connection.send(&internal_error()).await
                }
            }
        }
    }
}

/// Administration frames: only administrators may act, except for reading
/// the directory.
async fn administer(
    connection: &mut Connection,
    state: &AppState,
    device: DeviceId,
    frame: ClientFrame,
) -> bool {
    use crate::people::{clean_name, MAX_INVITE_SECS};
    let request = match &frame {
        ClientFrame::CreateInvite { request, .. }
        | ClientFrame::RevokeInvite { request, .. }
        | ClientFrame::RevokeDevice { request, .. }
        | ClientFrame::RevokeUser { request, .. }
        | ClientFrame::Directory { request }
        | ClientFrame::ReadAudit { request, .. } => *request,
        _ => return true,
    };
    let refuse = |reason: &str| ServerFrame::Refused {
        request,
        reason: reason.to_owned(),
    };
    let actor = match state.store.role_of(device).await {
        Ok(Some(actor)) => actor,
        Ok(None) => {
            return connection
                .send(&refuse("This device is no longer registered."))
                .await
        }
        Err(error) => {
            tracing::error!(%error, "could not look up a role");
            return connection.send(&internal_error()).await;
        }
    };
    let is_admin = actor.1 == huddle_core::wire::Role::Administrator;
    if !is_admin && !matches!(frame, ClientFrame::Directory { .. }) {
        return connection
            .send(&refuse("Only administrators can do this."))
            .await;
    }
    let now = now();
    let answer: Result<ServerFrame, crate::store::StoreError> = async {
        Ok(match frame {
            ClientFrame::CreateInvite {
                display_name,
                role,
                valid_for_secs,
                ..
            } => {
                let Some(display_name) = clean_name(&display_name) else {
                    return Ok(refuse("Names need 1 to 80 characters."));
                };
                if !(60..=MAX_INVITE_SECS).contains(&valid_for_secs) {
                    return Ok(refuse("An invite lasts between a minute and 30 days."));
                }
                let (Some(secret), Some(user)) = (random_nonce(), random_nonce()) else {
                    return Ok(internal_error());
                };
                let mut user_id = [0u8; 16];
                user_id.copy_from_slice(&user[..16]);
                let user = huddle_core::ids::UserId::from_bytes(user_id);
                let expires_at = now.saturating_add_millis(valid_for_secs.saturating_mul(1000));
                state
                    .store
                    .create_invite(actor.0, user, &secret, &display_name, role, expires_at, now)
                    .await?;
                ServerFrame::InviteCreated {
                    request,
                    user,
                    secret,
                    expires_at,
                }
            }
            ClientFrame::RevokeInvite { user, .. } => {
                if state.store.revoke_invite(actor.0, user, now).await? {
                    ServerFrame::Done { request }
                } else {
                    refuse("There is no unused invite for that person.")
                }
            }
            ClientFrame::RevokeDevice { device: target, .. } => {
                if state.store.revoke_device(actor.0, target, now).await? {
                    state.hub.revoke(target);
                    state.store.announce_revoked(target).await;
                    ServerFrame::Done { request }
                } else {
                    refuse("That device is unknown or already revoked.")
                }
            }
            ClientFrame::RevokeUser { user, .. } => {
                match state.store.revoke_user(actor.0, user, now).await? {
                    Some(devices) => {
                        for target in devices {
                            state.hub.revoke(target);
                            state.store.announce_revoked(target).await;
                        }
                        ServerFrame::Done { request }
                    }
                    None => refuse("That person is unknown or already revoked."),
                }
            }
            ClientFrame::Directory { .. } => ServerFrame::People {
                request,
                people: state.store.directory().await?,
            },
            ClientFrame::ReadAudit { before, limit, .. } => ServerFrame::Audit {
                request,
                entries: state.store.read_audit(before, limit).await?,
            },
            _ => return Ok(internal_error()),
        })
    }
    .await;
    match answer {
        Ok(frame) => connection.send(&frame).await,
        Err(error) => {
            tracing::error!(%error, "an administration request failed");
            connection.send(&internal_error()).await
        }
    }
}

/// Answers a frame over the device's rate limit: a submission is rejected
/// as retryable (the outbox tries again later), anything else gets an error.
async fn refuse_for_rate(
    connection: &mut Connection,
    frame: ClientFrame,
    retry_after_ms: u32,
) -> bool {
    let answer = match frame {
        ClientFrame::Submit(submission) => ServerFrame::Rejected {
            client_msg: submission.client_msg,
            group: submission.group,
            reason: huddle_core::wire::Rejection::RateLimited { retry_after_ms },
        },
        _ => ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: format!("Too many requests; try again in {retry_after_ms} ms."),
        },
    };
    connection.send(&answer).await
}

fn internal_error() -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::Internal,
        message: "The relay could not read or write its database; try again.".into(),
    }
}

/// Sends each group's backlog after the device's cursor, its waiting
/// welcomes, then `Synced`.
async fn sync(
    connection: &mut Connection,
    state: &AppState,
    device: DeviceId,
    cursors: Vec<GroupCursor>,
    sent_up_to: &mut HashMap<GroupId, u64>,
) -> bool {
    let asked: HashMap<GroupId, u64> = cursors.iter().map(|c| (c.group, c.seq)).collect();
    let groups = match state.store.groups_of(device).await {
        Ok(groups) => groups,
        Err(error) => {
            tracing::error!(%error, "could not list a device's groups");
            return connection
                .send(&ServerFrame::Error {
                    code: ErrorCode::Internal,
                    message: "The relay could not read its database; try again.".into(),
                })
                .await;
        }
    };
    let welcomes = match state.store.welcomes_for(device).await {
        Ok(welcomes) => welcomes,
        Err(error) => {
            tracing::error!(%error, "could not read welcomes");
            Vec::new()
        }
    };
    for welcome in welcomes {
        if asked.contains_key(&welcome.group) {
            continue; // already joined
        }
        let frame = ServerFrame::Welcome {
            group: welcome.group,
            seq: welcome.seq,
            spec: welcome.spec,
            welcome: welcome.welcome,
        };
        if !connection.send(&frame).await {
            return false;
        }
    }
    for group in groups {
        // Groups the device has not joined yet start after their welcome.
        let Some(mut after) = asked.get(&group).copied() else {
            continue;
        };
        let end = match state.store.readable_end(group, device).await {
            Ok(end) => end,
            Err(error) => {
                tracing::error!(%error, "could not read a group's end");
                continue;
            }
        };
        loop {
            let page = match state
                .store
                .backlog(group, device, after, BACKLOG_PAGE, now())
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, "could not read a backlog");
                    break;
                }
            };
            let full = page.len() == BACKLOG_PAGE as usize;
            for entry in page {
                // Entries deleted since the cursor (expired messages) leave a
                // gap; say so, so the device does not wait for them.
                if entry.seq > after + 1 {
                    let skipped = ServerFrame::Skipped {
                        group,
                        up_to: entry.seq - 1,
                    };
                    if !connection.send(&skipped).await {
                        return false;
                    }
                }
                after = entry.seq;
                sent_up_to.insert(group, entry.seq);
                if !connection.send(&ServerFrame::Deliver(entry)).await {
                    return false;
                }
            }
            if !full {
                break;
            }
        }
        if end > after {
            sent_up_to.insert(group, end);
            if !connection
                .send(&ServerFrame::Skipped { group, up_to: end })
                .await
            {
                return false;
            }
        }
    }
    connection.send(&ServerFrame::Synced).await
}
