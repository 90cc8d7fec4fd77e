//! A minimal device for the relay's tests: a WebSocket that sends client frames, reads server frames and signs in with a P-384 key.

use futures::{SinkExt, StreamExt};
use huddle_core::ids::DeviceId;
use huddle_core::wire::{auth_transcript, ClientFrame, LogEntry, ServerFrame};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to the relay's device endpoint, not yet signed in.
pub async fn raw_socket(relay: &huddle_relay::RunningRelay) -> Socket {
    raw_socket_at(relay.local_addr).await
}

pub async fn raw_socket_at(addr: std::net::SocketAddr) -> Socket {
    tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .expect("connect")
        .0
}

pub async fn send(socket: &mut Socket, frame: ClientFrame) {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .expect("send");
}

/// The next server frame; fails the test after 10 s or on anything else.
/// Reads the receiving half of a split socket until `count` submissions
/// are accepted (other frames skipped), so that its sender can stay open
/// until then; panics if the socket ends first.
pub async fn until_accepted(stream: &mut futures::stream::SplitStream<Socket>, count: usize) {
    let mut accepted = 0;
    while accepted < count {
        match stream.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                if let Ok(ServerFrame::Accepted { .. }) = ServerFrame::decode(&bytes) {
                    accepted += 1;
                }
            }
            Some(_) => {}
            None => panic!("the socket ended after {accepted} of {count} acceptances"),
        }
    }
}

pub async fn next(socket: &mut Socket) -> ServerFrame {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a readable message");
        match message {
            Message::Binary(bytes) => return ServerFrame::decode(&bytes).expect("a server frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The sender's answers to a fresh submission: `Accepted`, and its own copy
/// of the entry, in whichever order they come (relays sharing PostgreSQL
/// can deliver the copy first).
pub async fn accepted_with_own_copy(socket: &mut Socket) -> (ServerFrame, LogEntry) {
    let (mut accepted, mut copy) = (None, None);
    while accepted.is_none() || copy.is_none() {
        match next(socket).await {
            ServerFrame::Deliver(entry) | ServerFrame::DeliverCommit { entry, .. }
                if copy.is_none() =>
            {
                copy = Some(entry)
            }
            frame @ ServerFrame::Accepted { .. } if accepted.is_none() => accepted = Some(frame),
            other => panic!("expected Accepted and the sender's copy, got {other:?}"),
        }
    }
    match (accepted, copy) {
        (Some(accepted), Some(copy)) => (accepted, copy),
        _ => unreachable!("the loop ends only with both"),
    }
}

/// The close code the relay ends the connection with.
pub async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .ok()??
        {
            Ok(Message::Close(Some(frame))) => return Some(frame.code.into()),
            Ok(Message::Close(None)) => return None,
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Answers the relay's challenge as `device`; returns the socket and the
/// relay's answer (`Ready`, or an error frame).
pub async fn sign_in(
    relay: &huddle_relay::RunningRelay,
    device: DeviceId,
    key: &SigningKey,
) -> (Socket, ServerFrame) {
    sign_in_at(relay.local_addr, device, key).await
}

pub async fn sign_in_at(
    addr: std::net::SocketAddr,
    device: DeviceId,
    key: &SigningKey,
) -> (Socket, ServerFrame) {
    let mut socket = raw_socket_at(addr).await;
    let ServerFrame::Challenge { nonce, .. } = next(&mut socket).await else {
        panic!("expected a challenge");
    };
    let signature: Signature = key.sign(&auth_transcript(&nonce, device));
    send(
        &mut socket,
        ClientFrame::Authenticate {
            device,
            signature: signature.to_der().as_bytes().to_vec(),
        },
    )
    .await;
    let answer = next(&mut socket).await;
    (socket, answer)
}
