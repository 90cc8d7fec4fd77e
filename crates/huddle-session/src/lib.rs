//! What a Huddle phone does, without the browser: load and paint from the cache, compose, receive, the outbox, expiry, wipe, and questions to the relay.
//!
//! The session is generic over small traits ([`platform`]): the cache, the
//! crypto worker, the connection, a clock, randomness, the screen, tasks and
//! a log. The web app implements them for the browser in `src/platform/`
//! and applies the [`Update`]s it gets to its screens; the native tests here
//! implement them in memory, with the real crypto worker logic (real MLS) in
//! process. No browser type can reach this crate: it does not depend on any.
//!
//! The sync engine that decides what to send and when is
//! `huddle_core::sync` (sans-IO); this crate carries out what it asks.
#![forbid(unsafe_code)]

pub mod broadcasts;
mod driver;
pub mod error;
pub mod outgoing;
mod phone;
pub mod platform;
pub mod receipts;
pub mod records;
mod relay;
pub mod shifts;
pub mod update;

pub use driver::RECEIPT_DELAY_MS;
pub use error::SessionError;
pub use phone::{Phone, PAGE, SWEEP_EVERY_MS};
pub use platform::{
    Cache, CacheError, CacheWrite, Clock, Crypto, CryptoError, Log, Parts, Platform, Randomness,
    Screen, SocketEvent, SocketEvents, Tasks, Transport,
};
pub use records::{
    ConversationRecord, Delivery, Directory, Enrolment, Intent, MessageBody, MessageRecord,
    OutboxRecord, Standing,
};
pub use relay::{Invite, ASK_TIMEOUT_MS};
pub use update::{
    ConnectionStatus, ConversationEntry, PinnedBroadcast, Problem, ShownMessage, SignOut, Update,
};

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
