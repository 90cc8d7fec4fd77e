//! Huddle's shared core: the formats and rules every part of Huddle agrees on, without any IO.
//!
//! This crate is pure Rust. It never touches the network, the disk, the
//! browser or a clock: time and randomness come in as arguments, so that
//! everything here is tested natively and behaves the same in the relay, the
//! web app and the crypto worker.
#![forbid(unsafe_code)]

pub mod at_rest;
pub mod attestation;
pub mod broadcast;
pub mod calendar;
pub mod certificate;
pub mod crypto_worker;
pub mod envelope;
pub mod group;
pub mod hex;
pub mod identity;
pub mod ids;
pub mod passcode;
pub mod patient_data;
pub mod receipt;
pub mod removal;
pub mod retention;
pub mod shift;
pub mod sync;
pub mod wire;

pub use envelope::{Envelope, EnvelopeBody};
pub use group::GroupProfile;
pub use identity::{DeviceIdentity, Fingerprint, SafetyNumber};
pub use ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
pub use retention::{GroupKind, RetentionPolicy, RetentionSecs, UnixMillis};
