//! One WebSocket, as the relay uses it: binary frames in and out, typed reasons for what could not be read, and close codes. Generic over the socket, so that a test can drive it with channels.

use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use huddle_core::wire::{ClientFrame, ErrorCode, ServerFrame, WireError, MAX_FRAME_BYTES};

/// WebSocket close codes (RFC 6455) the relay ends connections with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// Not authenticated in time, revoked, or broke the protocol.
    Policy = 1008,
    /// A frame over the size limit.
    TooBig = 1009,
    /// The relay failed (no randomness, no database).
    Internal = 1011,
    /// Fell behind reading live traffic: reconnect and resync.
    TryAgainLater = 1013,
}

/// What came in.
pub enum Incoming {
    Frame(ClientFrame),
    /// A frame that could not be read; the connection carries on.
    Bad(ErrorCode, String),
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
}

impl<S> Connection<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    pub fn new(socket: S) -> Self {
        Connection { socket }
    }

    /// Sends one frame; false once the connection is gone.
    pub async fn send(&mut self, frame: &ServerFrame) -> bool {
        self.socket
            .send(Message::Binary(frame.encode().into()))
            .await
            .is_ok()
    }

    pub async fn close(&mut self, code: CloseCode, reason: &'static str) {
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code: code as u16,
                reason: reason.into(),
            })))
            .await;
    }

    /// The next frame, or why there is none.
    pub async fn receive(&mut self) -> Incoming {
        loop {
            let message = match self.socket.next().await {
                None => return Incoming::Gone,
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    if ReadError::from(error) == ReadError::TooBig {
                        self.close(CloseCode::TooBig, "frame too large").await;
                    }
                    return Incoming::Gone;
                }
            };
            return match message {
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
                // Pings are answered by the WebSocket layer.
                Message::Ping(_) | Message::Pong(_) => continue,
            };
        }
    }
}
