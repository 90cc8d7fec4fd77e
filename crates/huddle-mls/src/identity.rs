//! A device's signing identity: a P-384 key pair that signs every MLS message the device sends.

use crate::provider::{HuddleCrypto, CIPHERSUITE};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;
use std::fmt;
use zeroize::Zeroizing;

/// The signature scheme of [`CIPHERSUITE`].
pub const SIGNATURE_SCHEME: SignatureScheme = SignatureScheme::ECDSA_SECP384R1_SHA384;

/// A device's P-384 signing key. The private half never leaves the crypto
/// worker; it is wiped from memory when dropped and never printed.
pub struct DeviceSigner {
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
    crypto: HuddleCrypto,
}

#[derive(Debug, thiserror::Error)]
#[error("could not create a device key: {0:?}")]
pub struct KeyGenError(openmls_traits::types::CryptoError);

impl DeviceSigner {
    /// Creates a fresh random key pair.
    pub fn generate() -> Result<Self, KeyGenError> {
        debug_assert_eq!(CIPHERSUITE.signature_algorithm(), SIGNATURE_SCHEME);
        let crypto = HuddleCrypto::default();
        let (private, public) = crypto
            .signature_key_gen(SIGNATURE_SCHEME)
            .map_err(KeyGenError)?;
        Ok(Self {
            private: Zeroizing::new(private),
            public,
            crypto,
        })
    }

    /// The public key, as other devices see it in credentials.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }
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
