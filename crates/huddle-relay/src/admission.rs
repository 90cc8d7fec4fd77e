//! Admission control at the connection level: how many connections the relay holds at once (and how many WebSockets are still proving who they are), how long a new connection may stay silent, and security headers on the replies hyper writes by itself.
//!
//! Every accepted TCP connection takes a place at the [`Gate`] for as long
//! as it is open; past the cap, new connections are closed at once, before
//! a byte is read (the phone retries with back-off). A connection must send
//! its first byte within the header timeout: hyper's own header timeout
//! starts only once the first byte has shown which HTTP version it speaks.

use axum_server::accept::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A count of places taken, with a cap.
#[derive(Debug)]
pub struct Gate {
    taken: AtomicUsize,
    max: usize,
}

/// One place at a [`Gate`], given back when dropped.
#[derive(Debug)]
pub struct Pass(Arc<Gate>);

impl Gate {
    pub fn new(max: usize) -> Arc<Gate> {
        Arc::new(Gate {
            taken: AtomicUsize::new(0),
            max,
        })
    }

    /// A place, if one is free.
    pub fn try_enter(self: &Arc<Self>) -> Option<Pass> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < self.max).then_some(taken + 1)
            })
            .ok()
            .map(|_| Pass(self.clone()))
    }

    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The acceptor: takes a place at the gate, then hands the connection to
/// `inner` (TLS, or nothing), then guards what comes out.
#[derive(Clone, Debug)]
pub struct Admission<A> {
    inner: A,
    gate: Arc<Gate>,
    first_byte_within: Duration,
    /// Whether connections are HTTPS (hyper's own replies then get HSTS too).
    tls: bool,
}

impl<A> Admission<A> {
    pub fn new(inner: A, gate: Arc<Gate>, first_byte_within: Duration, tls: bool) -> Self {
        Admission {
            inner,
            gate,
            first_byte_within,
            tls,
        }
    }
}

type Accepted<T, S> = Pin<Box<dyn Future<Output = io::Result<(Guarded<T>, S)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for Admission<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Some(pass) = self.gate.try_enter() else {
            // Dropping the stream closes it.
            return Box::pin(async {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the relay has as many connections as it takes",
                ))
            });
        };
        // Small frames (a message, an acknowledgement) go out at once rather
        // than waiting to be merged with the next.
        let _ = stream.set_nodelay(true);
        let accepting = self.inner.accept(stream, service);
        let (first_byte_within, tls) = (self.first_byte_within, self.tls);
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            Ok((Guarded::new(stream, pass, first_byte_within, tls), service))
        })
    }
}

/// An admitted connection: holds its place at the gate, closes if it stays
/// silent from the start, and adds the security headers to the bare error
/// replies hyper writes when it cannot parse a request.
pub struct Guarded<T> {
    inner: T,
    _pass: Pass,
    /// Until the first byte arrives.
    silence_deadline: Option<Pin<Box<Sleep>>>,
    tls: bool,
    /// The rest of a rewritten reply still to be written.
    pending: Vec<u8>,
}

impl<T> Guarded<T> {
    fn new(inner: T, pass: Pass, first_byte_within: Duration, tls: bool) -> Self {
        Guarded {
            inner,
            _pass: pass,
            silence_deadline: Some(Box::pin(tokio::time::sleep(first_byte_within))),
            tls,
            pending: Vec::new(),
        }
    }
}

impl<T: AsyncWrite + Unpin> Guarded<T> {
    /// Writes out what is left of a rewritten reply.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written =
                std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let filled = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.silence_deadline.is_some() {
            if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > filled {
                self.silence_deadline = None;
            } else if let Some(deadline) = self.silence_deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the connection sent nothing",
                    )));
                }
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        if let Some(reply) = with_security_headers(buf, self.tls) {
            // Taken whole; written out before anything else.
            self.pending = reply;
            // The first bytes go now if they can; the rest on the next call.
            return match self.poll_pending(cx) {
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// One buffer at a time, so that a reply's head arrives here whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// The statuses hyper answers by itself, without asking the relay, when it
/// cannot parse a request (bad request, URI too long, headers too large).
const HYPER_OWN_STATUSES: [&str; 3] = ["400", "414", "431"];

/// The headers hyper puts on those replies; a reply with any other header
/// came from the relay, which sets its own security headers.
const HYPER_OWN_HEADERS: [&str; 3] = ["content-length", "date", "connection"];

/// If `buf` is exactly one of hyper's bare error replies (a status line and
/// only hyper's own headers, no body), the same reply with the relay's
/// security headers added.
fn with_security_headers(buf: &[u8], tls: bool) -> Option<Vec<u8>> {
    if buf.len() > 512 {
        return None;
    }
    let text = std::str::from_utf8(buf).ok()?;
    let head = text.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    if !HYPER_OWN_STATUSES.contains(&status) {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    let only_hyper_own = headers.iter().all(|line| {
        line.split_once(':').is_some_and(|(name, _)| {
            HYPER_OWN_HEADERS
                .iter()
                .any(|own| own.eq_ignore_ascii_case(name.trim()))
        })
    });
    if !only_hyper_own {
        return None;
    }
    let mut reply = String::with_capacity(1024);
    reply.push_str(status_line);
    reply.push_str("\r\n");
    for (name, value) in crate::web_app::security_headers(tls) {
        reply.push_str(name);
        reply.push_str(": ");
        reply.push_str(value);
        reply.push_str("\r\n");
    }
    reply.push_str("cache-control: no-store\r\n");
    for line in headers {
        reply.push_str(line);
        reply.push_str("\r\n");
    }
    reply.push_str("\r\n");
    Some(reply.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_up_to_its_cap_and_frees_places_as_passes_drop() {
        let gate = Gate::new(2);
        let first = gate.try_enter();
        let second = gate.try_enter();
        assert!(first.is_some() && second.is_some());
        assert!(gate.try_enter().is_none());
        drop(first);
        assert_eq!(gate.taken(), 1);
        assert!(gate.try_enter().is_some());
    }

    #[test]
    fn only_hyper_own_bare_error_replies_are_rewritten() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 21:00:00 GMT\r\n\r\n";
        let rewritten = String::from_utf8(with_security_headers(bare, false).expect("rewritten"))
            .expect("text");
        assert!(rewritten.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(rewritten.contains("x-content-type-options: nosniff\r\n"));
        assert!(rewritten.contains("content-security-policy: "));
        assert!(rewritten.contains("content-length: 0\r\n"));
        assert!(rewritten.ends_with("\r\n\r\n"));
        assert!(!rewritten.contains("strict-transport-security"));
        let over_tls = with_security_headers(bare, true).expect("rewritten");
        assert!(String::from_utf8_lossy(&over_tls).contains("strict-transport-security: "));

        // The relay's own replies, other statuses, bodies and partial heads
        // pass untouched.
        for untouched in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-content-type-options: nosniff\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nhi",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"<!doctype html>",
        ] {
            assert_eq!(with_security_headers(untouched, false), None);
        }
    }
}
