//! Abusive connections: devices that flood garbage, text and costly requests (key packages, claims, huge commits) and come back each time they are cut off, and strangers who open sockets only to declare frames far over the limit, or to hold a frame half-sent.

use crate::relay::device_id;
use futures::{SinkExt, StreamExt};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs};
use huddle_core::wire::{
    auth_transcript, ClientFrame, GroupSpec, MembershipChange, Payload, ServerFrame, Submission,
};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// What the abusers did, for the report.
#[derive(Default)]
pub struct AbuseCounts {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub reconnects: AtomicU64,
    /// While set, abusers hold their connections but send nothing: the
    /// soak alternates windows with and without them, so that whatever else
    /// the machine is doing falls on both alike.
    pub paused: AtomicBool,
}

/// The most bytes a second one abuser sends: a fast phone's uplink. (On
/// this machine the generator shares the relay's cores; an unthrottled
/// flood would measure the generator.)
const BYTES_PER_SECOND: u64 = 1_000_000;

/// Different frames each abuser cycles through.
const FRAME_VARIANTS: u64 = 64;

/// The kinds of abuse, one per abuser in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Undecodable binary frames.
    Garbage,
    /// Text frames, which the relay does not speak.
    Text,
    /// Full frames of key packages.
    KeyPackages,
    /// Strangers declaring 16 MiB frames.
    Oversized,
    /// Claims of a hundred people, and new groups of a thousand.
    Commits,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Garbage,
        Kind::Text,
        Kind::KeyPackages,
        Kind::Oversized,
        Kind::Commits,
    ];

    /// From its name on the command line (`--abuse-kinds garbage,text`).
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "garbage" => Kind::Garbage,
            "text" => Kind::Text,
            "keys" | "key-packages" => Kind::KeyPackages,
            "oversized" => Kind::Oversized,
            "commits" => Kind::Commits,
            _ => return None,
        })
    }
}

/// Runs one abuser of `kind` (device `device`, signing with `key`) until
/// the task is aborted, sending at most `frames_per_second`.
pub async fn run(
    addr: String,
    kind: Kind,
    device: usize,
    key: SigningKey,
    frames_per_second: u32,
    counts: Arc<AbuseCounts>,
) {
    let pace = Duration::from_secs_f64(1.0 / f64::from(frames_per_second.max(1)));
    // Enough different frames that the few a device's allowance lets
    // through each ask for new work (a new group, new key packages).
    let frames: Vec<Message> = (0..FRAME_VARIANTS)
        .map(|n| frame(kind, device, n))
        .collect();
    let mut n = 0u64;
    loop {
        if counts.paused.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        match kind {
            Kind::Oversized => oversized(&addr, &counts).await,
            _ => {
                if let Some(socket) = sign_in(&addr, device, &key).await {
                    flood(socket, &frames, &mut n, pace, &counts).await;
                }
            }
        }
        counts.reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn sign_in(addr: &str, n: usize, key: &SigningKey) -> Option<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .ok()?;
    let Some(Ok(Message::Binary(bytes))) = socket.next().await else {
        return None;
    };
    let Ok(ServerFrame::Challenge { nonce, .. }) = ServerFrame::decode(&bytes) else {
        return None;
    };
    let signature: Signature = key.sign(&auth_transcript(&nonce, device_id(n)));
    let auth = ClientFrame::Authenticate {
        device: device_id(n),
        signature: signature.to_der().as_bytes().to_vec(),
    };
    socket
        .send(Message::Binary(auth.encode().into()))
        .await
        .ok()?;
    Some(socket)
}

/// Floods one kind of frame until the relay closes the connection.
async fn flood(
    socket: Socket,
    frames: &[Message],
    n: &mut u64,
    pace: Duration,
    counts: &AbuseCounts,
) {
    let (mut sink, mut stream) = socket.split();
    // Read (and drop) whatever comes back, as a client would.
    let reading = tokio::spawn(async move { while stream.next().await.is_some() {} });
    loop {
        while counts.paused.load(Ordering::Relaxed) && !reading.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        *n += 1;
        // Cheap to clone: the generator shares the relay's cores, and should
        // spend them on sending, not on encoding.
        let message = frames[(*n as usize) % frames.len()].clone();
        let len = message.len() as u64;
        if sink.send(message).await.is_err() {
            break;
        }
        counts.frames.fetch_add(1, Ordering::Relaxed);
        counts.bytes.fetch_add(len, Ordering::Relaxed);
        let wait = pace.max(Duration::from_secs_f64(
            len as f64 / BYTES_PER_SECOND as f64,
        ));
        tokio::time::sleep(wait).await;
        if reading.is_finished() {
            break;
        }
    }
    reading.abort();
}

/// The `n`th frame of a flood of `kind` from `device`.
fn frame(kind: Kind, device: usize, n: u64) -> Message {
    match kind {
        Kind::Garbage => Message::Binary(
            (0..64)
                .map(|i| (n as u8).wrapping_mul(31) ^ i)
                .collect::<Vec<u8>>()
                .into(),
        ),
        Kind::Text => Message::Text(format!("hello {n}").into()),
        Kind::KeyPackages => Message::Binary(
            ClientFrame::PublishKeyPackages {
                request: n as u32,
                key_packages: vec![vec![0x4b; 256]; 100],
                last_resort: None,
            }
            .encode()
            .into(),
        ),
        Kind::Commits if n.is_multiple_of(2) => Message::Binary(
            ClientFrame::ClaimKeyPackages {
                request: n as u32,
                users: (0..100)
                    .map(|u| UserId::from_bytes(*device_id(u).as_bytes()))
                    .collect(),
            }
            .encode()
            .into(),
        ),
        _ => {
            let mut group = [0x77; 16];
            group[..8].copy_from_slice(&n.to_be_bytes());
            group[8..10].copy_from_slice(&(device as u16).to_be_bytes());
            let add: Vec<DeviceId> = (0..1_000u64)
                .map(|m| {
                    let mut bytes = [0x99; 16];
                    bytes[..8].copy_from_slice(&(n * 1_000 + m).to_be_bytes());
                    DeviceId::from_bytes(bytes)
                })
                .collect();
            Message::Binary(
                ClientFrame::Submit(Submission {
                    client_msg: ClientMessageId::from_bytes(group),
                    group: GroupId::from_bytes(group),
                    epoch: 0,
                    expires_at: None,
                    payload: Payload::Commit {
                        commit: huddle_relay::mls_framing::framed_commit(
                            GroupId::from_bytes(group),
                            0,
                            &[0; 64],
                        ),
                        welcome: Some(vec![0; 1024]),
                        change: MembershipChange {
                            create: Some(GroupSpec {
                                kind: GroupKind::Social,
                                retention: RetentionSecs::days(7),
                            }),
                            add,
                            remove: vec![],
                        },
                    },
                })
                .encode()
                .into(),
            )
        }
    }
}

/// A WebSocket opened by hand, so that a frame's header can claim any length.
pub async fn hand_made_socket(addr: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "GET /api/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.ok()?;
        head.push(byte[0]);
        if head.len() > 4096 {
            return None;
        }
    }
    head.starts_with(b"HTTP/1.1 101").then_some(stream)
}

/// The header of a masked binary frame claiming `len` bytes.
pub fn frame_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    header
}

/// A stranger who declares a 16 MiB frame and sends its first kilobytes,
/// until the relay closes the socket.
async fn oversized(addr: &str, counts: &AbuseCounts) {
    let Some(mut stream) = hand_made_socket(addr).await else {
        return;
    };
    let mut frame = frame_header(16 * 1024 * 1024);
    frame.extend_from_slice(&[0u8; 4096]);
    if stream.write_all(&frame).await.is_ok() {
        counts.frames.fetch_add(1, Ordering::Relaxed);
        counts
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
    }
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(read) = stream.read(&mut buf).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}
