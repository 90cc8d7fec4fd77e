//! One WebSocket, as the relay uses it: binary frames in and out, typed reasons for what could not be read, and close codes. Generic over the socket, so that a test can drive it with channels.

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use huddle_core::wire::{ClientFrame, ErrorCode, ServerFrame, WireError, MAX_FRAME_BYTES};
use tokio::time::Instant;

/// How long a closing connection waits for the peer's close.
pub const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// WebSocket close codes (RFC 6455) the relay ends connections with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// Not authenticated in time, revoked, or broke the protocol.
    Policy = 1008,
    /// A frame over the size limit.
    TooBig = 1009,
    /// The relay failed (no randomness, no database).
    Internal = 1011,
    /// Fell behind reading live traffic, or the relay is full: reconnect
    /// later (and resync).
    TryAgainLater = 1013,
    /// Stopped answering pings.
    GoingAway = 1001,
}

/// What came in.
pub enum Incoming {
    Frame(ClientFrame),
    /// A frame that could not be read; the connection carries on.
    Bad(ErrorCode, String),
    /// A ping or pong: answered (a ping) by the WebSocket layer, but it
    /// still counts against the device's limits.
    Control,
    /// The connection is over (closed, broken, or closed by us).
    Gone,
}

/// Why reading failed, from the WebSocket layer's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// A frame or message over the size limit.
    TooBig,
    /// Anything else: the connection is broken.
    Broken,
}

impl From<axum::Error> for ReadError {
    fn from(error: axum::Error) -> Self {
        let inner = error.into_inner();
        match inner.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => ReadError::TooBig,
            _ => ReadError::Broken,
        }
    }
}

/// A device's WebSocket.
pub struct Connection<S> {
    socket: S,
    /// When anything last arrived: a peer silent for too long is dead.
    last_heard: Instant,
}

impl<S> Connection<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    pub fn new(socket: S) -> Self {
        Connection {
            socket,
            last_heard: Instant::now(),
        }
    }

    /// Sends one frame; false once the connection is gone.
    pub async fn send(&mut self, frame: &ServerFrame) -> bool {
        self.send_encoded(frame.encode().into()).await
    }

    /// Sends a frame encoded already (shared by every connection it goes to).
    pub async fn send_encoded(&mut self, frame: Bytes) -> bool {
        self.socket.send(Message::Binary(frame)).await.is_ok()
    }

    /// Sends a WebSocket ping; the peer's WebSocket layer answers it.
    pub async fn ping(&mut self) -> bool {
        self.socket.send(Message::Ping(Bytes::new())).await.is_ok()
    }

    /// When anything last arrived from the peer.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Sends a close frame, then reads (and drops) what the peer still
    /// sends until it closes too, for at most [`CLOSE_LINGER`]. Dropping a
    /// socket with unread data makes the kernel reset the connection, and a
    /// reset throws away what the peer has not read yet: the frame saying
    /// why it was closed. A device that floods until the end still gets it.
    pub async fn close(&mut self, code: CloseCode, reason: &'static str) {
        let sent = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code: code as u16,
                reason: reason.into(),
            })))
            .await;
        if sent.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(message)) = self.socket.next().await {
                if let Message::Close(_) = message {
                    break;
                }
            }
        })
        .await;
    }

    /// The next frame, or why there is none.
    pub async fn receive(&mut self) -> Incoming {
        let message = match self.socket.next().await {
            None => return Incoming::Gone,
            Some(Ok(message)) => {
                self.last_heard = Instant::now();
                message
            }
            Some(Err(error)) => {
                if ReadError::from(error) == ReadError::TooBig {
                    self.close(CloseCode::TooBig, "frame too large").await;
                }
                return Incoming::Gone;
            }
        };
        match message {
            Message::Binary(bytes) => {
                if bytes.len() > MAX_FRAME_BYTES {
                    self.close(CloseCode::TooBig, "frame too large").await;
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
            Message::Ping(_) | Message::Pong(_) => Incoming::Control,
        }
    }
}
