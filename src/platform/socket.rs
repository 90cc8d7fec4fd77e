//! The WebSocket to the relay: binary frames in and out, open and close reported as events; the session's `Transport`.
//!
//! A socket that has been replaced can still fire its `close` later; each
//! connection reports to its own sink, which the session ignores once the
//! connection is replaced.

use huddle_session::{SocketEvent, SocketEvents, Transport};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, WebSocket};

type Handler = Rc<SocketEvents>;

/// An open (or opening) WebSocket. Dropping it closes it.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
}

/// The relay's WebSocket address on the origin the app was served from.
pub fn relay_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/api/ws", location.host().ok()?))
}

impl Socket {
    /// Starts connecting; `handler` hears what happens to it.
    pub fn connect(url: &str, handler: Handler) -> Option<Socket> {
        let ws = WebSocket::new(url).ok()?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_open = {
            let handler = handler.clone();
            Closure::<dyn FnMut()>::new(move || handler(SocketEvent::Opened))
        };
        let on_message = {
            let handler = handler.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
                    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                    handler(SocketEvent::Frame(bytes));
                }
            })
        };
        // `error` is always followed by `close`, so only `close` is reported.
        let on_close = Closure::<dyn FnMut()>::new(move || handler(SocketEvent::Closed));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Some(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends one frame; false if the socket is not open.
    pub fn send(&self, bytes: &[u8]) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_u8_array(bytes).is_ok()
    }

    pub fn close(&self) {
        let _ = self.ws.close();
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// The session's connection to the relay: one socket at a time.
#[derive(Default)]
pub struct WsTransport {
    socket: RefCell<Option<Socket>>,
}

impl Transport for WsTransport {
    fn connect(&self, events: SocketEvents) -> bool {
        let socket = relay_url().and_then(|url| Socket::connect(&url, Rc::new(events)));
        let connected = socket.is_some();
        // Replacing the old socket drops (and closes) it.
        *self.socket.borrow_mut() = socket;
        connected
    }

    fn send(&self, frame: &[u8]) -> bool {
        self.socket.borrow().as_ref().is_some_and(|s| s.send(frame))
    }

    fn disconnect(&self) {
        self.socket.borrow_mut().take();
    }

    fn is_online(&self) -> bool {
        super::browser::is_online()
    }
}
