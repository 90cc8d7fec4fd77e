//! Well-behaved devices: they sign in, sync, send messages that carry their send time, and report each delivery and acceptance.

use crate::relay::device_id;
use futures::{SinkExt, StreamExt};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::{
    auth_transcript, ClientFrame, GroupSpec, MembershipChange, Payload, ServerFrame, Submission,
};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};
use tokio_tungstenite::tungstenite::Message;

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Each received `Deliver`: the device that got it, the send time it
/// carries (micros since the run's origin) and when it arrived.
pub type Deliveries = mpsc::UnboundedSender<(usize, u64, Instant)>;

pub struct Client {
    sink: Arc<Mutex<Sink>>,
}

/// Signs device `n` in and syncs it; its deliveries and acceptances are
/// reported on the channels from then on.
pub async fn connect(
    addr: &str,
    n: usize,
    key: &SigningKey,
    deliveries: Deliveries,
    accepted: mpsc::UnboundedSender<u64>,
) -> Option<Client> {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .ok()?;
    let (mut sink, mut stream) = socket.split();
    let read = |message: Message| match message {
        Message::Binary(bytes) => ServerFrame::decode(&bytes).ok(),
        _ => None,
    };
    let Some(ServerFrame::Challenge { nonce, .. }) = read(stream.next().await?.ok()?) else {
        return None;
    };
    let signature: Signature = key.sign(&auth_transcript(&nonce, device_id(n)));
    let auth = ClientFrame::Authenticate {
        device: device_id(n),
        signature: signature.to_der().as_bytes().to_vec(),
    };
    sink.send(Message::Binary(auth.encode().into()))
        .await
        .ok()?;
    let Some(ServerFrame::Ready { .. }) = read(stream.next().await?.ok()?) else {
        return None;
    };
    sink.send(Message::Binary(
        ClientFrame::Sync { cursors: vec![] }.encode().into(),
    ))
    .await
    .ok()?;
    tokio::spawn(async move {
        // Reading continuously also answers the relay's pings.
        while let Some(Ok(message)) = stream.next().await {
            match read(message) {
                Some(ServerFrame::Deliver(entry)) => {
                    let sent_at = u64::from_be_bytes(
                        entry
                            .payload
                            .get(..8)
                            .and_then(|b| b.try_into().ok())
                            .unwrap_or([0; 8]),
                    );
                    let _ = deliveries.send((n, sent_at, Instant::now()));
                }
                Some(ServerFrame::Accepted { seq, .. }) => {
                    let _ = accepted.send(seq);
                }
                _ => {}
            }
        }
    });
    Some(Client {
        sink: Arc::new(Mutex::new(sink)),
    })
}

impl Client {
    pub async fn submit(&self, submission: Submission) {
        self.send(ClientFrame::Submit(submission)).await;
    }

    pub async fn send(&self, frame: ClientFrame) {
        let _ = self
            .sink
            .lock()
            .await
            .send(Message::Binary(frame.encode().into()))
            .await;
    }
}

/// The first commit of a group with `members` added.
pub fn create(group: GroupId, n: u64, members: Vec<DeviceId>) -> Submission {
    Submission {
        client_msg: ClientMessageId::from_bytes(*group.as_bytes()),
        group,
        epoch: 0,
        expires_at: None,
        payload: Payload::Commit {
            commit: huddle_relay::mls_framing::framed_commit(group, 0, &n.to_be_bytes()),
            welcome: Some(vec![0; 64]),
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind: GroupKind::Operational,
                    retention: RetentionSecs::days(7),
                }),
                add: members,
                remove: vec![],
            },
        },
    }
}

/// A 256-byte message numbered `counter` in `group`, carrying its send
/// time (as ciphertext would carry nothing the relay can read), expiring
/// after `lifetime`.
pub fn message(group: GroupId, counter: u64, origin: Instant, lifetime: Duration) -> Submission {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&counter.to_be_bytes());
    id[8..].copy_from_slice(&group.as_bytes()[..8]);
    let mut payload = (origin.elapsed().as_micros() as u64).to_be_bytes().to_vec();
    payload.resize(256, 0xab);
    let lifetime = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
    Submission {
        client_msg: ClientMessageId::from_bytes(id),
        group,
        epoch: 1,
        expires_at: Some(UnixMillis(
            huddle_relay::clock::now().0.saturating_add(lifetime),
        )),
        payload: Payload::Application {
            ciphertext: payload,
        },
    }
}

/// The group of pair `p` (devices 2p and 2p+1).
pub fn pair_group(p: usize) -> GroupId {
    let mut bytes = [0x11u8; 16];
    bytes[..8].copy_from_slice(&(p as u64).to_be_bytes());
    GroupId::from_bytes(bytes)
}

/// The latency of a delivery in milliseconds.
pub fn latency_ms(origin: Instant, sent_micros: u64, at: Instant) -> f64 {
    at.duration_since(origin)
        .as_micros()
        .saturating_sub(u128::from(sent_micros)) as f64
        / 1000.0
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
