//! Who a device is, in words every part of Huddle can check without MLS: the credential naming organisation, person and device, and the safety number people compare.
//!
//! These types hold no secret. The signing key that goes with an identity
//! lives in the crypto worker (`huddle-mls`); what is here can be shown on a
//! screen, sent to the relay or compared by two people.

use crate::ids::{DeviceId, OrgId, UserId};
use sha2::{Digest, Sha384};
use std::fmt;

/// Who a device belongs to: the content of its MLS credential.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct DeviceIdentity {
    pub org: OrgId,
    pub user: UserId,
    pub device: DeviceId,
}

/// The first bytes of every Huddle credential, so that nothing else is
/// mistaken for one.
const CREDENTIAL_MAGIC: &[u8; 4] = b"HDL1";
const CREDENTIAL_LEN: usize = 4 + 16 * 3;

impl DeviceIdentity {
    /// The bytes carried in the MLS basic credential.
    pub fn to_credential_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(CREDENTIAL_LEN);
        bytes.extend_from_slice(CREDENTIAL_MAGIC);
        bytes.extend_from_slice(self.org.as_bytes());
        bytes.extend_from_slice(self.user.as_bytes());
        bytes.extend_from_slice(self.device.as_bytes());
        bytes
    }

    /// Reads a credential; `None` for anything that is not a Huddle credential.
    pub fn from_credential_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != CREDENTIAL_LEN || !bytes.starts_with(CREDENTIAL_MAGIC) {
            return None;
        }
        let id = |at: usize| -> Option<[u8; 16]> { bytes.get(at..at + 16)?.try_into().ok() };
        Some(DeviceIdentity {
            org: OrgId::from_bytes(id(4)?),
            user: UserId::from_bytes(id(20)?),
            device: DeviceId::from_bytes(id(36)?),
        })
    }
}

/// How many times the fingerprint hash is iterated: it makes searching for
/// a key with a look-alike number expensive, as Signal's safety numbers do.
const FINGERPRINT_ITERATIONS: usize = 1024;

/// Thirty digits that stand for one device's identity and key. Two people
/// compare the combined [`SafetyNumber`] in person or by scanning a QR code.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Fingerprint([u32; 6]);

impl Fingerprint {
    pub fn of(identity: &DeviceIdentity, public_key: &[u8]) -> Fingerprint {
        let credential = identity.to_credential_bytes();
        let mut hash = Sha384::new()
            .chain_update(b"huddle fingerprint v1")
            .chain_update(&credential)
            .chain_update(public_key)
            .finalize();
        for _ in 1..FINGERPRINT_ITERATIONS {
            hash = Sha384::new()
                .chain_update(hash)
                .chain_update(public_key)
                .finalize();
        }
        let mut groups = [0u32; 6];
        for (group, chunk) in groups.iter_mut().zip(hash.chunks_exact(5)) {
            let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            *group = (value % 100_000) as u32;
        }
        Fingerprint(groups)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|g| format!("{g:05}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// The number two people compare to know they talk to each other's devices:
/// both fingerprints, in a fixed order so that both see the same 60 digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SafetyNumber {
    first: Fingerprint,
    second: Fingerprint,
}

impl SafetyNumber {
    /// How every safety-number code begins (version 1).
    pub const QR_PREFIX: &'static str = "HUDDLE-SN1:";

    pub fn between(a: Fingerprint, b: Fingerprint) -> SafetyNumber {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        SafetyNumber { first, second }
    }

    /// The content of the QR code one phone shows and the other scans:
    /// text in the QR alphanumeric set (so that a camera's barcode reader,
    /// which answers in text, reads it back exactly), both fingerprints'
    /// digits in the order both phones agree on.
    pub fn qr_payload(&self) -> String {
        let digits =
            |f: &Fingerprint| -> String { f.0.iter().map(|g| format!("{g:05}")).collect() };
        format!(
            "{}{}{}",
            Self::QR_PREFIX,
            digits(&self.first),
            digits(&self.second)
        )
    }

    /// Whether a scanned QR code shows the same number.
    pub fn matches_qr(&self, scanned: &str) -> bool {
        scanned.trim() == self.qr_payload()
    }

    /// The 60 digits in twelve groups of five, as people read them aloud.
    pub fn groups(&self) -> Vec<String> {
        self.first
            .0
            .iter()
            .chain(self.second.0.iter())
            .map(|g| format!("{g:05}"))
            .collect()
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.first, self.second)
    }
}

#[cfg(test)]
mod tests;
