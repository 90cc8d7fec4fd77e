//! The typed messages between the page's main thread and the crypto worker.
//!
//! Only requests and results cross this boundary; keys and group state stay on
//! the worker's side.

use serde::{Deserialize, Serialize};

/// What the main thread asks of the crypto worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Is the worker loaded and able to answer? The nonce pairs the answer
    /// with the question.
    Ping { nonce: u32 },
}

/// What the crypto worker answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerResponse {
    Pong {
        nonce: u32,
        /// The worker's build, so that the page can tell a stale worker.
        version: String,
        /// The MLS ciphersuite the worker speaks.
        ciphersuite: String,
    },
}
