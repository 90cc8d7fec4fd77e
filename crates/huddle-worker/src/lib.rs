//! Huddle's crypto worker: the Web Worker that owns every MLS secret and answers the page over typed messages.
//!
//! The page spawns the worker and talks to it through [`CryptoWorker`]'s
//! `Input` and `Output` types ([`RequestEnvelope`], [`ResponseEnvelope`]).
//! Only the worker binary runs the `received` handler; the page's bundle
//! carries the message types, and the linker leaves MLS out of it.
#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
pub mod browser;
pub mod core;
pub mod lock;
#[cfg(target_arch = "wasm32")]
mod relay_unlock;

use gloo_worker::{HandlerId, Worker, WorkerScope};
pub use huddle_core::crypto_worker::{
    RequestEnvelope, ResponseEnvelope, WorkerError, WorkerErrorKind, WorkerRequest, WorkerResponse,
};

/// The path the page loads the worker from (Trunk's loader shim for the
/// `huddle-worker` binary).
pub const WORKER_LOADER_PATH: &str = "/huddle-worker_loader.js";

/// The worker: a queue that hands requests, in order, to one handler.
pub struct CryptoWorker {
    #[cfg(target_arch = "wasm32")]
    queue: futures::channel::mpsc::UnboundedSender<(RequestEnvelope, HandlerId)>,
}

impl Worker for CryptoWorker {
    type Message = ();
    type Input = RequestEnvelope;
    type Output = ResponseEnvelope;

    #[cfg(target_arch = "wasm32")]
    fn create(scope: &WorkerScope<Self>) -> Self {
        use futures::StreamExt;
        let (queue, mut requests) = futures::channel::mpsc::unbounded();
        let scope = scope.clone();
        // One task, one request at a time: MLS operations must not interleave,
        // and each answer leaves only after its state is saved.
        wasm_bindgen_futures::spawn_local(async move {
            let mut handler = browser::RequestHandler::default();
            while let Some((envelope, from)) = requests.next().await {
                let response = handler.handle(envelope).await;
                scope.respond(from, response);
            }
        });
        CryptoWorker { queue }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn create(_scope: &WorkerScope<Self>) -> Self {
        CryptoWorker {}
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _msg: Self::Message) {}

    #[cfg(target_arch = "wasm32")]
    fn received(&mut self, _scope: &WorkerScope<Self>, request: Self::Input, from: HandlerId) {
        // The queue lives as long as the worker; a send can only fail after
        // the worker is shutting down, when there is no one left to answer.
        let _ = self.queue.unbounded_send((request, from));
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn received(&mut self, scope: &WorkerScope<Self>, request: Self::Input, from: HandlerId) {
        let mut core = core::WorkerCore::default();
        scope.respond(
            from,
            ResponseEnvelope {
                id: request.id,
                result: core.handle(request.request),
            },
        );
    }
}
