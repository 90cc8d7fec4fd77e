//! Huddle's crypto worker: the Web Worker that owns every MLS secret and answers the page over typed messages.
//!
//! The page spawns the worker and talks to it through [`CryptoWorker`]'s
//! `Input` and `Output` types; only the worker binary ever runs its `received`
//! handler, so the page's bundle carries the message types and none of MLS.
#![forbid(unsafe_code)]

pub mod protocol;

use gloo_worker::{HandlerId, Worker, WorkerScope};
pub use protocol::{WorkerRequest, WorkerResponse};

/// The path the page loads the worker from (Trunk's loader shim for the
/// `huddle-worker` binary).
pub const WORKER_LOADER_PATH: &str = "/huddle-worker_loader.js";

/// The worker's state: one per browser tab.
pub struct CryptoWorker;

/// Answers one request. Kept apart from the `Worker` plumbing so that it is
/// tested natively.
pub fn answer(request: WorkerRequest) -> WorkerResponse {
    match request {
        WorkerRequest::Ping { nonce } => WorkerResponse::Pong {
            nonce,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ciphersuite: huddle_mls::ciphersuite_name().to_owned(),
        },
    }
}

impl Worker for CryptoWorker {
    type Message = ();
    type Input = WorkerRequest;
    type Output = WorkerResponse;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        CryptoWorker
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _msg: Self::Message) {}

    fn received(&mut self, scope: &WorkerScope<Self>, request: Self::Input, from: HandlerId) {
        scope.respond(from, answer(request));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_is_answered_with_the_same_nonce_and_the_ciphersuite() {
        let WorkerResponse::Pong {
            nonce, ciphersuite, ..
        } = answer(WorkerRequest::Ping { nonce: 42 });
        assert_eq!(nonce, 42);
        assert_eq!(ciphersuite, "MLS_256_DHKEMP384_AES256GCM_SHA384_P384");
    }
}
