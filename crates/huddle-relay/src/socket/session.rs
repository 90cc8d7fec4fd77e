//! One authenticated device's session: its frames in, its answers and live traffic out, in one loop that no other connection waits for.

use super::admin::{administer, AdminRequest, Sorted};
use super::connection::{CloseCode, Connection, Incoming};
use super::internal_error;
use super::sync::sync;
use crate::clock::now;
use crate::live::hub::LiveFrame;
use crate::store::log::AppendOutcome;
use crate::AppState;
use axum::extract::ws::Message;
use futures::stream::FuturesOrdered;
use futures::{Sink, Stream, StreamExt};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::wire::{ClientFrame, ErrorCode, Rejection, ServerFrame};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// Submissions from one device that may wait for their commit at once: a
/// phone flushing its outbox fills a batch, and one device cannot queue
/// without limit.
const MAX_SUBMISSIONS_IN_FLIGHT: usize = 64;

/// A submission handed to the writers, waiting for its commit.
type Pending = Pin<Box<dyn Future<Output = (ClientMessageId, GroupId, AppendOutcome)> + Send>>;

/// What the relay keeps about one connected device.
pub struct DeviceSession {
    device: DeviceId,
    /// The newest entry of each group sent on this connection: the same
    /// entry can arrive from the backlog and live, or from this process and
    /// from its own PostgreSQL announcement, and goes out once.
    sent_up_to: HashMap<GroupId, u64>,
    welcomed: HashMap<GroupId, u64>,
    /// Submissions waiting for their commit, answered in the order they came.
    submitted: FuturesOrdered<Pending>,
}

impl DeviceSession {
    pub fn new(device: DeviceId) -> Self {
        DeviceSession {
            device,
            sent_up_to: HashMap::new(),
            welcomed: HashMap::new(),
            submitted: FuturesOrdered::new(),
        }
    }

    /// Serves the device until it goes, is revoked or falls behind.
    pub async fn run<S>(mut self, connection: &mut Connection<S>, state: &AppState)
    where
        S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
    {
        let device = self.device;
        let (live, mut live_frames) = state.hub.register(device);
        tracing::info!(device = %device, "device connected");
        loop {
            tokio::select! {
                // Live frames first: a revocation ends the connection at
                // once, however fast the device sends.
                biased;
                frame = live_frames.recv() => {
                    if !self.live(connection, frame).await {
                        break;
                    }
                }
                // Answers next: a device hears "accepted" as soon as it can.
                // (With several relay processes its own copy of the entry may
                // still arrive first, through PostgreSQL; devices take either
                // as the acceptance.)
                Some((client_msg, group, outcome)) = self.submitted.next(), if !self.submitted.is_empty() => {
                    if !answer_submission(connection, state, client_msg, group, outcome).await {
                        break;
                    }
                }
                // A device with many submissions waiting is not read further
                // until some are answered: back-pressure, not an unbounded queue.
                incoming = connection.receive(), if self.submitted.len() < MAX_SUBMISSIONS_IN_FLIGHT => {
                    let keep_going = match incoming {
                        Incoming::Frame(frame) => self.frame(connection, state, frame).await,
                        Incoming::Bad(code, message) => {
                            tracing::debug!(device = %device, ?code, "unreadable frame");
                            connection.send(&ServerFrame::Error { code, message }).await
                        }
                        Incoming::Gone => false,
                    };
                    if !keep_going {
                        break;
                    }
                }
            }
        }
        state.hub.unregister(device, &live);
        if !self.submitted.is_empty() {
            // The device went while some of its messages waited for their
            // commit. The writer still commits them, and they must still
            // reach everyone online; the device hears "accepted" when it
            // resends.
            let state = state.clone();
            let mut submitted = std::mem::take(&mut self.submitted);
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

    /// Passes on a frame from the hub; false ends the connection.
    async fn live<S>(&mut self, connection: &mut Connection<S>, frame: Option<LiveFrame>) -> bool
    where
        S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
    {
        match frame {
            Some(LiveFrame::Frame(frame)) => {
                match &frame {
                    ServerFrame::Deliver(entry) => {
                        if self
                            .sent_up_to
                            .get(&entry.group)
                            .is_some_and(|seq| entry.seq <= *seq)
                        {
                            return true;
                        }
                        self.sent_up_to.insert(entry.group, entry.seq);
                    }
                    ServerFrame::Welcome { group, seq, .. } => {
                        if self.welcomed.get(group).is_some_and(|sent| seq <= sent) {
                            return true;
                        }
                        self.welcomed.insert(*group, *seq);
                    }
                    _ => {}
                }
                connection.send(&frame).await
            }
            None => {
                // This device fell behind and the hub let it go; it resyncs
                // from its cursor when it reconnects, and nobody else waited
                // for it.
                connection
                    .close(CloseCode::TryAgainLater, "fell behind; reconnect")
                    .await;
                false
            }
            Some(LiveFrame::Revoked) => {
                let _ = connection
                    .send(&ServerFrame::Error {
                        code: ErrorCode::Revoked,
                        message: "This device was removed by an administrator.".into(),
                    })
                    .await;
                connection.close(CloseCode::Policy, "device revoked").await;
                false
            }
        }
    }

    /// Handles one frame from the device; false ends the connection.
    async fn frame<S>(
        &mut self,
        connection: &mut Connection<S>,
        state: &AppState,
        frame: ClientFrame,
    ) -> bool
    where
        S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
    {
        let device = self.device;
        if let Err(retry_after_ms) = state.rate_limiter.take(device, state.rate_limit, now().0) {
            return refuse_for_rate(connection, frame, retry_after_ms).await;
        }
        let frame = match AdminRequest::sort(frame) {
            Sorted::Admin(request, admin) => {
                return administer(connection, state, device, request, admin).await
            }
            Sorted::Device(frame) => frame,
        };
        match frame {
            ClientFrame::Submit(submission) => {
                // Enqueued here, in the order the device sent them, so that
                // its messages keep their order in the log.
                let (client_msg, group) = (submission.client_msg, submission.group);
                let pending = state.appender.enqueue(device, submission, now()).await;
                self.submitted.push_back(Box::pin(async move {
                    (client_msg, group, pending.outcome().await)
                }));
                true
            }
            ClientFrame::Authenticate { .. } => {
                connection
                    .send(&ServerFrame::Error {
                        code: ErrorCode::Malformed,
                        message: "already authenticated".into(),
                    })
                    .await
            }
            ClientFrame::Ping { nonce } => connection.send(&ServerFrame::Pong { nonce }).await,
            ClientFrame::Sync { cursors } => {
                sync(connection, state, device, cursors, &mut self.sent_up_to).await
            }
            ClientFrame::Ack { group, seq } => {
                // Only handshake clean-up depends on this; nothing is lost if
                // it fails, so the connection does not wait for the commit.
                state.appender.acknowledge(device, group, seq).await;
                true
            }
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
            // The administration frames were taken above.
            ClientFrame::CreateInvite { .. }
            | ClientFrame::RevokeInvite { .. }
            | ClientFrame::RevokeDevice { .. }
            | ClientFrame::RevokeUser { .. }
            | ClientFrame::Directory { .. }
            | ClientFrame::ReadAudit { .. } => true,
        }
    }
}

/// Tells the device what became of a submission, and on acceptance delivers
/// the entry to everyone else in the group.
async fn answer_submission<S>(
    connection: &mut Connection<S>,
    state: &AppState,
    client_msg: ClientMessageId,
    group: GroupId,
    outcome: AppendOutcome,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
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

/// Answers a frame over the device's rate limit: a submission is rejected
/// as retryable (the outbox tries again later), anything else gets an error.
async fn refuse_for_rate<S>(
    connection: &mut Connection<S>,
    frame: ClientFrame,
    retry_after_ms: u32,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let answer = match frame {
        ClientFrame::Submit(submission) => ServerFrame::Rejected {
            client_msg: submission.client_msg,
            group: submission.group,
            reason: Rejection::RateLimited { retry_after_ms },
        },
        _ => ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: format!("Too many requests; try again in {retry_after_ms} ms."),
        },
    };
    connection.send(&answer).await
}
