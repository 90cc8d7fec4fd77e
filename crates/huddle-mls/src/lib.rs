//! Huddle's end-to-end encryption: MLS (RFC 9420) groups with ciphersuite 0x0007, on OpenMLS.
//!
//! Nothing of OpenMLS is meant to leak past this crate's API; the crypto
//! worker is its only user in the browser, so that MLS secrets never reach the
//! page's main thread.
#![forbid(unsafe_code)]

pub mod identity;
pub mod provider;

pub use identity::DeviceSigner;
pub use provider::{HuddleProvider, CIPHERSUITE};

/// The ciphersuite's name as people and logs see it.
pub fn ciphersuite_name() -> &'static str {
    "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
}

#[cfg(test)]
mod tests;
