//! A device's identity: its P-384 signing key, the credential naming organisation, person and device, and the safety number people compare.

use crate::provider::{HuddleCrypto, CIPHERSUITE};
use huddle_core::ids::{DeviceId, OrgId, UserId};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;
use sha2::{Digest, Sha384};
use std::fmt;
use zeroize::Zeroizing;

/// The signature scheme of [`CIPHERSUITE`].
pub const SIGNATURE_SCHEME: SignatureScheme = SignatureScheme::ECDSA_SECP384R1_SHA384;

const P384_PRIVATE_KEY_LEN: usize = 48;
const P384_PUBLIC_KEY_LEN: usize = 97;

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

/// A device's P-384 signing key. The private half never leaves the crypto
/// worker (and its encrypted store); it is wiped from memory when dropped
/// and never printed.
pub struct DeviceSigner {
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
    crypto: HuddleCrypto,
}

/// The device key could not be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not create a device key")]
    Generate,
    #[error("the stored device key is damaged")]
    Damaged,
}

impl DeviceSigner {
    /// Creates a fresh random key pair.
    pub fn generate() -> Result<Self, KeyError> {
        debug_assert_eq!(CIPHERSUITE.signature_algorithm(), SIGNATURE_SCHEME);
        let crypto = HuddleCrypto::default();
        let (private, public) = crypto
            .signature_key_gen(SIGNATURE_SCHEME)
            .map_err(|_| KeyError::Generate)?;
        Ok(Self {
            private: Zeroizing::new(private),
            public,
            crypto,
        })
    }

    /// Restores a key pair saved with [`DeviceSigner::export`], checking that
    /// the halves belong together.
    pub fn restore(private: &[u8], public: &[u8]) -> Result<Self, KeyError> {
        // The signing code expects a 48-byte scalar and a 97-byte SEC1 point
        // and asserts on other lengths: check them here, where it is an error.
        if private.len() != P384_PRIVATE_KEY_LEN || public.len() != P384_PUBLIC_KEY_LEN {
            return Err(KeyError::Damaged);
        }
        let signer = Self {
            private: Zeroizing::new(private.to_vec()),
            public: public.to_vec(),
            crypto: HuddleCrypto::default(),
        };
        let probe = b"huddle device key check";
        let signature = signer.sign(probe).map_err(|_| KeyError::Damaged)?;
        signer
            .crypto
            .verify_signature(SIGNATURE_SCHEME, probe, public, &signature)
            .map_err(|_| KeyError::Damaged)?;
        Ok(signer)
    }

    /// The private and public halves, for the worker's encrypted store only.
    pub fn export(&self) -> (Zeroizing<Vec<u8>>, Vec<u8>) {
        (self.private.clone(), self.public.clone())
    }

    /// The public key, as other devices see it in credentials.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Signs the relay's authentication transcript.
    pub fn sign_challenge(&self, transcript: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.sign(transcript)
    }
}

/// Checks a signature made by [`DeviceSigner`]; the relay uses the same
/// algorithm (ECDSA P-384 with SHA-384, DER signature).
pub fn verify_device_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    HuddleCrypto::default()
        .verify_signature(SIGNATURE_SCHEME, message, public_key, signature)
        .is_ok()
}

impl fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSigner")
            .field("private", &"***")
            .field("public_len", &self.public.len())
            .finish()
    }
}

impl Signer for DeviceSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.crypto
            .sign(SIGNATURE_SCHEME, payload, &self.private)
            .map_err(SignerError::CryptoError)
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SIGNATURE_SCHEME
    }
}

/// How many times the fingerprint hash is iterated: it makes searching for
/// a key with a look-alike number expensive, as Signal's safety numbers do.
const FINGERPRINT_ITERATIONS: usize = 1024;

/// Thirty digits that stand for one device's identity and key. Two people
/// compare the combined [`SafetyNumber`] in person or by scanning a QR code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

    /// The bytes encoded in a QR code: the six groups as big-endian numbers.
    fn to_bytes(self) -> [u8; 24] {
        let mut out = [0u8; 24];
        for (chunk, group) in out.chunks_exact_mut(4).zip(self.0) {
            chunk.copy_from_slice(&group.to_be_bytes());
        }
        out
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
    pub fn between(a: Fingerprint, b: Fingerprint) -> SafetyNumber {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        SafetyNumber { first, second }
    }

    /// The content of the QR code one phone shows and the other scans.
    pub fn qr_payload(&self) -> Vec<u8> {
        let mut payload = b"huddle-safety-number:1:".to_vec();
        payload.extend_from_slice(&self.first.to_bytes());
        payload.extend_from_slice(&self.second.to_bytes());
        payload
    }

    /// Whether a scanned QR code shows the same number.
    pub fn matches_qr(&self, scanned: &[u8]) -> bool {
        scanned == self.qr_payload().as_slice()
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.first, self.second)
    }
}

#[cfg(test)]
mod tests;
