//! The page's handle on the crypto worker: spawns it, pairs each request with its answer, and gives the session its `Crypto`.

use futures::channel::oneshot;
use futures::future::{select, Either};
use gloo_worker::{HandlerId, Spawnable, Worker, WorkerBridge, WorkerScope};
use huddle_core::crypto_worker::{
    RequestEnvelope, ResponseEnvelope, WorkerRequest, WorkerResponse,
};
use huddle_session::{Crypto, CryptoError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The path the page loads the worker from (Trunk's loader shim for the
/// `huddle-worker` binary).
const WORKER_LOADER_PATH: &str = "/huddle-worker_loader.js";

/// How long the worker may take to load and answer on a slow phone over 3G;
/// also longer than any single MLS operation (joining a 1,000-member group).
const REQUEST_TIMEOUT_MS: u32 = 30_000;

/// The crypto worker as the page's bridge sees it: the types of its
/// messages. The worker itself is the `huddle-worker` binary, which
/// registers its own implementation; this one only names the messages, so
/// that the page links neither the worker nor MLS, and none of its methods
/// runs on the page.
pub struct RemoteCryptoWorker;

impl Worker for RemoteCryptoWorker {
    type Message = ();
    type Input = RequestEnvelope;
    type Output = ResponseEnvelope;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        RemoteCryptoWorker
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _message: Self::Message) {}

    fn received(&mut self, _scope: &WorkerScope<Self>, _request: Self::Input, _from: HandlerId) {}
}

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<ResponseEnvelope>>>>;

/// A running crypto worker. Dropping the last handle stops it.
pub struct WorkerCrypto {
    bridge: WorkerBridge<RemoteCryptoWorker>,
    pending: Pending,
    next_id: Cell<u32>,
}

impl WorkerCrypto {
    pub fn spawn() -> Result<Self, CryptoError> {
        let global = js_sys::global();
        if !js_sys::Reflect::has(&global, &"Worker".into()).unwrap_or(false) {
            return Err(CryptoError::Unsupported);
        }
        let pending: Pending = Rc::default();
        let on_response = {
            let pending = pending.clone();
            move |response: ResponseEnvelope| {
                if let Some(reply) = pending.borrow_mut().remove(&response.id) {
                    // The asker may have given up waiting; that is fine.
                    let _ = reply.send(response);
                }
            }
        };
        let bridge = RemoteCryptoWorker::spawner()
            .callback(on_response)
            // Trunk's loader shim is a same-origin file, so the worker needs
            // no `blob:` exception in the Content Security Policy.
            .with_loader(true)
            .as_module(false)
            .spawn(WORKER_LOADER_PATH);
        Ok(Self {
            bridge,
            pending,
            next_id: Cell::new(1),
        })
    }

    /// Asks the worker whether it is running.
    pub async fn ping(&self) -> Result<(), CryptoError> {
        self.request(WorkerRequest::Ping).await.map(|_| ())
    }
}

impl Crypto for WorkerCrypto {
    /// Sends one request and waits for its answer. The worker answers in
    /// order; the timeout covers a worker that never loaded.
    async fn request(&self, request: WorkerRequest) -> Result<WorkerResponse, CryptoError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (reply, answer) = oneshot::channel();
        self.pending.borrow_mut().insert(id, reply);
        self.bridge.send(RequestEnvelope { id, request });
        let timeout = gloo_timers::future::TimeoutFuture::new(REQUEST_TIMEOUT_MS);
        match select(answer, timeout).await {
            Either::Left((Ok(response), _)) => response.result.map_err(CryptoError::Refused),
            Either::Left((Err(_), _)) => Err(CryptoError::Stopped),
            Either::Right(_) => {
                self.pending.borrow_mut().remove(&id);
                Err(CryptoError::TimedOut)
            }
        }
    }
}
