//! One authenticated device's session: its frames in, its answers and live traffic out, in one loop that no other connection waits for.

use super::admin::{administer, AdminRequest, Sorted};
use super::connection::{CloseCode, Connection, Incoming};
use super::internal_error;
use super::limits::frame_work;
use super::sync::sync;
use crate::clock::now;
use crate::live::hub::{LiveFrame, Registration};
use crate::mls_framing;
use crate::store::keys::{check_claim, check_publication};
use crate::store::log::AppendOutcome;
use crate::AppState;
use axum::extract::ws::Message;
use futures::stream::FuturesOrdered;
use futures::{Sink, Stream, StreamExt};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::wire::{ClientFrame, ErrorCode, Payload, Rejection, ServerFrame};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tokio::time::{Instant, MissedTickBehavior};

/// Submissions from one device that may wait for their commit at once: a
/// phone flushing its outbox fills a batch, and one device cannot queue
/// without limit.
const MAX_SUBMISSIONS_IN_FLIGHT: usize = 64;

/// Frames refused in a row for the rate limit before the connection is
/// closed. A phone that listens to "try again in N ms" never gets near it
/// (at most one refusal per message in flight); a flood gets there in a
/// moment. Its bucket is kept, so reconnecting does not help.
const MAX_REFUSALS_IN_A_ROW: u32 = 256;

/// A submission handed to the writers, waiting for its commit.
type Pending = Pin<Box<dyn Future<Output = (ClientMessageId, GroupId, AppendOutcome)> + Send>>;

/// What the relay keeps about one connected device.
pub struct DeviceSession {
    device: DeviceId,
    /// The newest entry of each group sent on this connection: the same
    /// entry can arrive from the backlog and live, and goes out once.
    sent_up_to: HashMap<GroupId, u64>,
    welcomed: HashMap<GroupId, u64>,
    /// Submissions waiting for their commit, answered in the order they came.
    submitted: FuturesOrdered<Pending>,
    /// Frames refused for the rate limit since the last one allowed.
    refused_in_a_row: u32,
    /// A junk commit from this connection is already in the audit log
    /// (one line per connection: a flood must not become a flood of writes).
    flagged_junk: bool,
    /// Likewise for key packages signed with another phone's key.
    flagged_key_packages: bool,
}

/// The rate limiter's verdict on one frame.
enum Allowed {
    Yes,
    /// Over the limit; `first` when it is the first refusal in a row (the
    /// only one answered, for frames that need no answer of their own).
    No {
        retry_after_ms: u32,
        first: bool,
    },
    /// Far over the limit: the connection ends.
    Close,
}

impl DeviceSession {
    pub fn new(device: DeviceId) -> Self {
        DeviceSession {
            device,
            sent_up_to: HashMap::new(),
            welcomed: HashMap::new(),
            submitted: FuturesOrdered::new(),
            refused_in_a_row: 0,
            flagged_junk: false,
            flagged_key_packages: false,
        }
    }

    /// Serves the device until it goes, stops answering, is revoked or
    /// falls behind.
    pub async fn run<S>(mut self, connection: &mut Connection<S>, state: &AppState)
    where
        S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
    {
        let device = self.device;
        let Registration {
            handle,
            mut frames,
            revoked,
        } = state.hub.register(device);
        let ping_every = state.ping_interval;
        let mut pings =
            tokio::time::interval_at(Instant::now() + first_ping_after(ping_every), ping_every);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut pinged_at, mut unanswered): (Option<Instant>, u32) = (None, 0);
        tracing::info!(device = %device, "device connected");
        // Registered first, so that a revocation from now on is told live.
        if !tell_revoked_members(connection, state, device).await {
            state.hub.unregister(device, &handle);
            return;
        }
        loop {
            tokio::select! {
                // A revocation first: a revoked device is cut off at once,
                // however fast it sends.
                biased;
                () = revoked.notified() => {
                    let told = connection
                        .send(&ServerFrame::Error {
                            code: ErrorCode::Revoked,
                            message: "This device was signed out of Huddle.".into(),
                        })
                        .await;
                    connection.close(CloseCode::Policy, "device revoked").await;
                    // Signed in with its key: the phone itself was told.
                    if told {
                        super::note_told_to_wipe(state, device).await;
                    }
                    break;
                }
                // Answers next: a device hears "accepted" as soon as it can,
                // and before its own entry comes back to it.
                Some((client_msg, group, outcome)) = self.submitted.next(), if !self.submitted.is_empty() => {
                    if !answer_submission(connection, client_msg, group, outcome).await {
                        break;
                    }
                }
                // Then live frames.
                frame = frames.recv() => {
                    if !self.live(connection, state, frame).await {
                        break;
                    }
                }
                _ = pings.tick() => {
                    // A phone that lost its network sends no close: only
                    // silence says it is gone. Two pings in a row with
                    // nothing heard after them end it.
                    match pinged_at {
                        Some(at) if connection.last_heard() < at => unanswered += 1,
                        _ => unanswered = 0,
                    }
                    if unanswered >= 2 {
                        tracing::info!(device = %device, "device stopped answering");
                        connection.close(CloseCode::GoingAway, "no answer to pings").await;
                        break;
                    }
                    pinged_at = None;
                    if connection.last_heard().elapsed() >= ping_every / 2 {
                        if !connection.ping().await {
                            break;
                        }
                        pinged_at = Some(Instant::now());
                    }
                }
                // A device with many submissions waiting is not read further
                // until some are answered: back-pressure, not an unbounded queue.
                incoming = connection.receive(), if self.submitted.len() < MAX_SUBMISSIONS_IN_FLIGHT => {
                    if !self.incoming(connection, state, incoming).await {
                        break;
                    }
                }
            }
        }
        state.hub.unregister(device, &handle);
        // Submissions still waiting for their commit are committed and
        // delivered by the writer all the same; the device hears "accepted"
        // when it sends them again.
        tracing::info!(device = %device, "device disconnected");
    }

    /// Counts what came in against the device's limit, then handles it;
    /// false ends the connection.
    async fn incoming<S>(
        &mut self,
        connection: &mut Connection<S>,
        state: &AppState,
        incoming: Incoming,
    ) -> bool
    where
        S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
    {
        let frame = match incoming {
            Incoming::Gone => return false,
            Incoming::Frame(frame) => frame,
            // Unreadable frames and pings cost like any other frame: a
            // device cannot make the relay work for it outside its limit.
            Incoming::Bad(code, message) => {
                return match self.allow(state, 0) {
                    Allowed::Yes => {
                        tracing::debug!(device = %self.device, ?code, "unreadable frame");
                        connection.send(&ServerFrame::Error { code, message }).await
                    }
                    Allowed::No {
                        retry_after_ms,
                        first,
                    } => !first || connection.send(&rate_limited(retry_after_ms)).await,
                    Allowed::Close => close_for_flooding(connection, self.device).await,
                };
            }
            Incoming::Control => {
                return match self.allow(state, 0) {
                    Allowed::Yes => true,
                    Allowed::No {
                        retry_after_ms,
                        first,
                    } => !first || connection.send(&rate_limited(retry_after_ms)).await,
                    Allowed::Close => close_for_flooding(connection, self.device).await,
                };
            }
        };
        match self.allow(state, frame_work(&frame)) {
            Allowed::Yes => self.frame(connection, state, frame).await,
            Allowed::No {
                retry_after_ms,
                first,
            } => match frame {
                // Every submission is answered: the phone keeps it and
                // sends it again after the wait.
                ClientFrame::Submit(submission) => {
                    connection
                        .send(&ServerFrame::Rejected {
                            client_msg: submission.client_msg,
                            group: submission.group,
                            reason: Rejection::RateLimited { retry_after_ms },
                        })
                        .await
                }
                _ => !first || connection.send(&rate_limited(retry_after_ms)).await,
            },
            Allowed::Close => close_for_flooding(connection, self.device).await,
        }
    }

    /// Pays for one frame asking for `work` rows of the writer's work.
    fn allow(&mut self, state: &AppState, work: u32) -> Allowed {
        let at = now().0;
        let paid = state.frame_limiter.take(self.device, at, 1).and_then(|()| {
            if work == 0 {
                Ok(())
            } else {
                state.work_limiter.take(self.device, at, work)
            }
        });
        match paid {
            Ok(()) => {
                self.refused_in_a_row = 0;
                Allowed::Yes
            }
            Err(retry_after_ms) => {
                self.refused_in_a_row = self.refused_in_a_row.saturating_add(1);
                if self.refused_in_a_row > MAX_REFUSALS_IN_A_ROW {
                    Allowed::Close
                } else {
                    Allowed::No {
                        retry_after_ms,
                        first: self.refused_in_a_row == 1,
                    }
                }
            }
        }
    }

    /// Passes on a frame from the hub; false ends the connection.
    async fn live<S>(
        &mut self,
        connection: &mut Connection<S>,
        state: &AppState,
        frame: Option<LiveFrame>,
    ) -> bool
    where
        S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
    {
        match frame {
            Some(LiveFrame::MembersRevoked) => {
                tell_revoked_members(connection, state, self.device).await
            }
            Some(LiveFrame::Entry { group, seq, frame }) => {
                if self.sent_up_to.get(&group).is_some_and(|sent| seq <= *sent) {
                    return true;
                }
                self.sent_up_to.insert(group, seq);
                connection.send_encoded(frame).await
            }
            Some(LiveFrame::Welcome { group, seq, frame }) => {
                if self.welcomed.get(&group).is_some_and(|sent| seq <= *sent) {
                    return true;
                }
                self.welcomed.insert(group, seq);
                connection.send_encoded(frame).await
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
                if let Payload::Commit { commit, .. } = &submission.payload {
                    if let Err(problem) = mls_framing::check_commit(commit, group, submission.epoch)
                    {
                        // Junk no member could open: refused here (in its
                        // turn among the device's answers), and the sender
                        // is flagged for the administrators.
                        let reason =
                            Rejection::InvalidCommit(format!("the commit is not one: {problem}"));
                        self.submitted.push_back(Box::pin(async move {
                            (client_msg, group, Ok(Err(reason)))
                        }));
                        if !self.flagged_junk {
                            self.flagged_junk = true;
                            flag_junk_commit(state, device, group, &problem).await;
                        }
                        return true;
                    }
                }
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
            ClientFrame::ReportRefused {
                group,
                seq,
                sender,
                refusal,
            } => {
                if let Err(error) = state
                    .store
                    .report_refused(device, group, seq, sender, refusal, now())
                    .await
                {
                    tracing::error!(%error, "could not record a member's refusal");
                }
                true
            }
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
                if let Err(refusal) = check_publication(&key_packages, last_resort.as_deref()) {
                    return connection.send(&malformed(refusal.to_string())).await;
                }
                // A phone publishes only its own key packages: one signed
                // with another key (another phone's, copied by a modified
                // app to pass itself off as that phone's person) is refused,
                // and the audit log is told once per connection.
                let own =
                    key_packages_are_own(state, device, &key_packages, last_resort.as_deref())
                        .await;
                if !own {
                    if !self.flagged_key_packages {
                        self.flagged_key_packages = true;
                        flag_key_packages(state, device).await;
                    }
                    return connection
                        .send(&malformed(
                            "a key package must be signed with this phone's own key".into(),
                        ))
                        .await;
                }
                match state
                    .appender
                    .publish_key_packages(device, key_packages, last_resort)
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
                if let Err(refusal) = check_claim(&users) {
                    return connection.send(&malformed(refusal.to_string())).await;
                }
                match state.appender.claim_key_packages(users).await {
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
            | ClientFrame::ReadAudit { .. }
            | ClientFrame::AttachInviteCertificate { .. }
            | ClientFrame::CreateInviteFor { .. }
            | ClientFrame::PublishCertificate { .. }
            | ClientFrame::Identities { .. }
            | ClientFrame::Attest { .. }
            | ClientFrame::SetPasscodeLock { .. }
            | ClientFrame::Devices { .. }
            | ClientFrame::SignedOutPhones { .. }
            | ClientFrame::CreateInviteEnding { .. }
            | ClientFrame::SetAccessEnds { .. }
            | ClientFrame::AccessEnds { .. }
            | ClientFrame::ReviewsDue { .. }
            | ClientFrame::MembersReviewed { .. } => true,
        }
    }
}

/// Tells the device what became of a submission. (Its delivery to the
/// group is the writer's business: see `live/publisher.rs`.)
async fn answer_submission<S>(
    connection: &mut Connection<S>,
    client_msg: ClientMessageId,
    group: GroupId,
    outcome: AppendOutcome,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let answer = match outcome {
        Ok(Ok(appended)) => ServerFrame::Accepted {
            client_msg,
            group,
            seq: appended.entry.seq,
        },
        Ok(Err(reason)) => ServerFrame::Rejected {
            client_msg,
            group,
            reason,
        },
        Err(error) => {
            // Not acknowledged: the device keeps the message and sends it
            // again with the same id.
            tracing::error!(%error, "could not store a submission");
            ServerFrame::Error {
                code: ErrorCode::Internal,
                message: "The relay could not store the message; it will be sent again.".into(),
            }
        }
    };
    connection.send(&answer).await
}

fn rate_limited(retry_after_ms: u32) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: format!("Too many requests; try again in {retry_after_ms} ms."),
    }
}

fn malformed(message: String) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::Malformed,
        message,
    }
}

/// Ends the connection of a device far over its limit; always false.
async fn close_for_flooding<S>(connection: &mut Connection<S>, device: DeviceId) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    tracing::warn!(device = %device, "closing a device that kept sending over its limit");
    connection
        .close(CloseCode::Policy, "too many frames; slow down")
        .await;
    false
}

/// Whether every key package is signed with `device`'s registered key.
async fn key_packages_are_own(
    state: &AppState,
    device: DeviceId,
    key_packages: &[Vec<u8>],
    last_resort: Option<&[u8]>,
) -> bool {
    let registered = match state.store.device(device).await {
        Ok(Some(row)) => row.public_key,
        Ok(None) => return false,
        Err(error) => {
            tracing::error!(%error, "could not read a device's key");
            return false;
        }
    };
    let registered = p384::ecdsa::VerifyingKey::from_sec1_bytes(&registered).ok();
    let is_own = |package: &[u8]| {
        let Ok(signing) = mls_framing::key_package_signature_key(package) else {
            return false;
        };
        let signing = p384::ecdsa::VerifyingKey::from_sec1_bytes(signing).ok();
        signing.is_some() && signing == registered
    };
    key_packages.iter().all(|package| is_own(package)) && last_resort.is_none_or(is_own)
}

/// Records in the audit log that `device` sent something refused (ids and
/// the kind of problem only), under its person's name when it has one.
async fn audit_refused(state: &AppState, device: DeviceId, action: &str, subject: &str) {
    let actor = match state.store.role_of(device).await {
        Ok(found) => found.map(|(user, _)| user),
        Err(error) => {
            tracing::error!(%error, action, "could not look up who sent what was refused");
            None
        }
    };
    if let Err(error) = state.store.audit(now(), actor, action, subject).await {
        tracing::error!(%error, action, "could not record a refusal");
    }
}

async fn flag_key_packages(state: &AppState, device: DeviceId) {
    let subject = format!("from device {device}: signed with another phone's key");
    audit_refused(
        state,
        device,
        "key package of another phone refused",
        &subject,
    )
    .await;
}

async fn flag_junk_commit(
    state: &AppState,
    device: DeviceId,
    group: GroupId,
    problem: &mls_framing::FramingError,
) {
    let subject = format!("group {group}, from device {device}: {problem}");
    audit_refused(state, device, "junk commit refused", &subject).await;
}

/// When a new connection is first pinged: somewhere in the second half of
/// the interval, at random. Phones that connected together (ten thousand
/// after a relay restart) are then pinged spread over the interval rather
/// than all in the same instant, which stalled every other connection
/// (the load generator's one-to-one p99 went from 20 ms to 620 ms). Never
/// later than the interval, so a dead phone is found as soon as before.
pub(crate) fn first_ping_after(every: std::time::Duration) -> std::time::Duration {
    let mut random = [0u8; 8];
    // Without randomness the phase is the connection's own moment: no worse
    // than before.
    let _ = getrandom::getrandom(&mut random);
    spread(every, u64::from_le_bytes(random))
}

/// `every` scaled into [1/2, 1) by `random` (uniform over `u64`).
fn spread(every: std::time::Duration, random: u64) -> std::time::Duration {
    let fraction = 0.5 + (random as f64 / u64::MAX as f64) * 0.5;
    every.mul_f64(fraction.min(0.999_999))
}

/// Tells the device which revoked devices are still members of its groups,
/// if any; false ends the connection.
async fn tell_revoked_members<S>(
    connection: &mut Connection<S>,
    state: &AppState,
    device: DeviceId,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    match state.store.revoked_members(device).await {
        Ok(groups) if groups.is_empty() => true,
        Ok(groups) => {
            connection
                .send(&ServerFrame::RevokedMembers { groups })
                .await
        }
        // Told at its next sign-in, or the next revocation.
        Err(error) => {
            tracing::warn!(%error, "could not read a device's revoked fellow members");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_pings_spread_over_the_second_half_of_the_interval() {
        let every = Duration::from_secs(15);
        assert_eq!(spread(every, 0), Duration::from_millis(7_500));
        assert!(spread(every, u64::MAX) < every);
        assert!(spread(every, u64::MAX / 2) > Duration::from_millis(11_000));
        // Ten thousand connections made in the same instant: no second of
        // the interval's second half gets much more than its share.
        let mut per_second = [0u32; 15];
        for _ in 0..10_000 {
            per_second[first_ping_after(every).as_secs() as usize] += 1;
        }
        assert!(per_second[..7].iter().all(|n| *n == 0), "{per_second:?}");
        assert!(per_second[7..].iter().all(|n| *n < 2_000), "{per_second:?}");
    }
}
