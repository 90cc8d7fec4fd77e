//! A device's P-384 signing key: made, restored, used for MLS and for the relay's challenge, and never printed.
//!
//! What the key stands for (the credential naming organisation, person and
//! device, and the safety number) holds no secret and lives in
//! `huddle_core::identity`, so that the page can use it without MLS.

use crate::provider::{HuddleCrypto, CIPHERSUITE};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;
use std::fmt;
use zeroize::Zeroizing;

/// The signature scheme of [`CIPHERSUITE`].
pub const SIGNATURE_SCHEME: SignatureScheme = SignatureScheme::ECDSA_SECP384R1_SHA384;

const P384_PRIVATE_KEY_LEN: usize = 48;
const P384_PUBLIC_KEY_LEN: usize = 97;

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
    use p384::ecdsa::signature::Verifier as _;
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = p384::ecdsa::Signature::from_der(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
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

#[cfg(test)]
mod tests;
