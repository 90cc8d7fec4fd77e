//! The device WebSocket: the upgrade (origin and size limits), challenge authentication, then the device's session (`session.rs`): sync, submissions, live delivery and administration.
//!
//! One socket per device, binary frames from `huddle_core::wire`. The relay
//! sends a challenge; the device signs it with its P-384 key; then the
//! device says where it is in its groups (`Sync`), receives each backlog and
//! `Synced`, and from then on live traffic. Frames the relay cannot read get
//! an `Error` frame and the connection carries on; a frame over the size
//! limit closes it with 1009, a device that does not authenticate in time
//! with 1008, and a socket beyond the cap of those still authenticating
//! with 1013.

pub mod admin;
pub mod connection;
pub mod limits;
pub mod session;
pub mod sync;

use crate::auth::{self, random_nonce, Refusal};
use crate::clock::now;
use crate::AppState;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use connection::{CloseCode, Connection, Incoming};
use futures::{Sink, Stream};
use huddle_core::ids::DeviceId;
use huddle_core::wire::{ClientFrame, ErrorCode, ServerFrame, MAX_FRAME_BYTES};
use std::time::Duration;

/// How long a device has to answer the challenge.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The read buffer each connection starts with.
const IDLE_READ_BUFFER: usize = 4 * 1024;

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
        .max_frame_size(MAX_FRAME_BYTES + 1024)
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

/// Serves one device's socket from challenge to close.
pub async fn serve<S>(socket: S, state: AppState)
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let mut connection = Connection::new(socket);
    // Sockets still proving who they are cost the relay without telling it
    // whose they are: only so many at once.
    let Some(proving) = state.unauthenticated.try_enter() else {
        connection
            .close(CloseCode::TryAgainLater, "the relay is busy; try again")
            .await;
        return;
    };
    let device = authenticate(&mut connection, &state).await;
    drop(proving);
    if let Some(device) = device {
        session::DeviceSession::new(device)
            .run(&mut connection, &state)
            .await;
    }
}

/// Notes that a signed-out phone, proven to be itself, was told to wipe:
/// for its administrator's list of signed-out phones. A failure costs only
/// that line.
pub(crate) async fn note_told_to_wipe(state: &AppState, device: DeviceId) {
    if let Err(error) = state.store.told_to_wipe(device, now()).await {
        tracing::warn!(%error, "could not note a signed-out phone's wipe");
    }
}

/// The answer to a frame the relay could not handle for want of its database.
pub(crate) fn internal_error() -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::Internal,
        message: "The relay could not read or write its database; try again.".into(),
    }
}

/// Challenges the device and checks its answer; its id once it is in.
async fn authenticate<S>(connection: &mut Connection<S>, state: &AppState) -> Option<DeviceId>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let Some(nonce) = random_nonce() else {
        connection.close(CloseCode::Internal, "no randomness").await;
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
                .close(CloseCode::Policy, "authentication timed out")
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
            connection
                .close(CloseCode::Policy, "not authenticated")
                .await;
            return None;
        }
    };
    let refused = |code: ErrorCode, message: &str| ServerFrame::Error {
        code,
        message: message.to_owned(),
    };
    let user = match auth::check(&state.store, device, &nonce, &signature).await {
        Ok(Ok(user)) => user,
        Ok(Err(Refusal::UnknownDevice)) => {
            let _ = connection
                .send(&refused(
                    ErrorCode::AuthenticationFailed,
                    "This device is not registered with this relay.",
                ))
                .await;
            connection.close(CloseCode::Policy, "unknown device").await;
            return None;
        }
        Ok(Err(Refusal::Revoked { proven })) => {
            let told = connection
                .send(&refused(
                    ErrorCode::Revoked,
                    "This device was signed out of Huddle.",
                ))
                .await;
            connection.close(CloseCode::Policy, "device revoked").await;
            // The phone wipes itself on hearing it; its administrator is
            // told so only when it was the phone that asked.
            if told && proven {
                note_told_to_wipe(state, device).await;
            }
            return None;
        }
        Ok(Err(Refusal::BadSignature)) => {
            tracing::warn!(device = %device, "authentication failed: bad signature");
            let _ = connection
                .send(&refused(
                    ErrorCode::AuthenticationFailed,
                    "The device's signature did not verify.",
                ))
                .await;
            connection.close(CloseCode::Policy, "bad signature").await;
            return None;
        }
        Err(error) => {
            tracing::error!(%error, "could not look up a device");
            connection
                .close(CloseCode::Internal, "database unavailable")
                .await;
            return None;
        }
    };
    // For its owner's list of phones; a failure here costs only that.
    if let Err(error) = state.store.saw_device(device, now()).await {
        tracing::warn!(%error, "could not note a sign-in");
    }
    let ready = ServerFrame::Ready {
        org: state.org,
        user,
        device,
        policy: state.phone_policy,
    };
    connection.send(&ready).await.then_some(device)
}
