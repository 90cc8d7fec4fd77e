//! Huddle's end-to-end encryption: MLS (RFC 9420) groups with ciphersuite 0x0007, on OpenMLS.
//!
//! [`MlsDevice`] is the API: a device's identity and key, its key packages,
//! and every group operation, with bytes in and Huddle types out. Nothing of
//! OpenMLS leaks past it. The crypto worker is its only user in the browser,
//! so that MLS secrets never reach the page's main thread.
#![forbid(unsafe_code)]

pub mod bench;
pub mod device;
pub mod fast_checks;
pub mod fixtures;
pub mod identity;
pub mod profile;
pub mod provider;
pub mod state;
pub mod trust;

pub use device::{MessageAad, MlsDevice, MlsError};
pub use huddle_core::crypto_worker::{CommitOut, Incoming, JoinedGroup, Plaintext, Sealed};
pub use huddle_core::identity::{DeviceIdentity, Fingerprint, SafetyNumber};
pub use huddle_core::GroupProfile;
pub use identity::DeviceSigner;
pub use provider::{HuddleProvider, CIPHERSUITE};
pub use state::StateChange;
pub use trust::{Trust, TrustError};

/// The ciphersuite's name as people and logs see it.
pub fn ciphersuite_name() -> &'static str {
    "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
}

#[cfg(test)]
mod tests;
