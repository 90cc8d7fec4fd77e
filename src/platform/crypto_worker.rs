//! The page's handle on the crypto worker: spawns it and pairs each request with its answer.

use futures::channel::oneshot;
use futures::future::{select, Either};
use gloo_worker::{Spawnable, WorkerBridge};
use huddle_worker::{
    CryptoWorker, RequestEnvelope, ResponseEnvelope, WorkerError, WorkerRequest, WorkerResponse,
    WORKER_LOADER_PATH,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// How long the worker may take to load and answer on a slow phone over 3G;
/// also longer than any single MLS operation (joining a 1,000-member group).
const REQUEST_TIMEOUT_MS: u32 = 30_000;

#[derive(Debug, thiserror::Error)]
pub enum CryptoWorkerError {
    #[error(
        "This browser cannot run Huddle's encryption. Update your browser, then reload the page."
    )]
    Unsupported,
    #[error(
        "Huddle's encryption did not start in time. Check your connection, then reload the page."
    )]
    TimedOut,
    #[error("Huddle's encryption stopped unexpectedly. Reload the page.")]
    Stopped,
}

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<ResponseEnvelope>>>>;

/// A running crypto worker. Dropping the last handle stops it.
pub struct CryptoWorkerClient {
    bridge: WorkerBridge<CryptoWorker>,
    pending: Pending,
    next_id: Cell<u32>,
}

impl CryptoWorkerClient {
    pub fn spawn() -> Result<Self, CryptoWorkerError> {
        let global = js_sys::global();
        if !js_sys::Reflect::has(&global, &"Worker".into()).unwrap_or(false) {
            return Err(CryptoWorkerError::Unsupported);
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
        let bridge = CryptoWorker::spawner()
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

    /// Sends one request and waits for its answer. The worker answers in
    /// order; the timeout covers a worker that never loaded.
    pub async fn request(
        &self,
        request: WorkerRequest,
    ) -> Result<Result<WorkerResponse, WorkerError>, CryptoWorkerError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (reply, answer) = oneshot::channel();
        self.pending.borrow_mut().insert(id, reply);
        self.bridge.send(RequestEnvelope { id, request });

        let timeout = gloo_timers::future::TimeoutFuture::new(REQUEST_TIMEOUT_MS);
        match select(answer, timeout).await {
            Either::Left((Ok(response), _)) => Ok(response.result),
            Either::Left((Err(_), _)) => Err(CryptoWorkerError::Stopped),
            Either::Right(_) => {
                self.pending.borrow_mut().remove(&id);
                Err(CryptoWorkerError::TimedOut)
            }
        }
    }

    /// Asks the worker whether it is running, and which ciphersuite it speaks.
    pub async fn ping(&self) -> Result<WorkerResponse, CryptoWorkerError> {
        match self.request(WorkerRequest::Ping).await? {
            Ok(response) => Ok(response),
            Err(_) => Err(CryptoWorkerError::Stopped),
        }
    }
}
