//! The OpenMLS provider: RustCrypto's primitives, advertised for ciphersuite 0x0007 only.
//!
//! `openmls_rust_crypto` implements every primitive that
//! `MLS_256_DHKEMP384_AES256GCM_SHA384_P384` needs (P-384 ECDSA, HPKE with
//! DHKEM P-384, HKDF-SHA384, AES-256-GCM) but does not list the suite as
//! supported. [`HuddleCrypto`] delegates every call and answers `supports` for
//! 0x0007 alone, so that no weaker suite can ever be negotiated.

use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig,
    HpkeKeyPair, KemOutput, SignatureScheme,
};
use openmls_traits::OpenMlsProvider;
use sha2::{Digest, Sha384};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tls_codec::SecretVLBytes;

/// The only ciphersuite Huddle speaks: AES-256-GCM, the NHS encryption standard.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_256_DHKEMP384_AES256GCM_SHA384_P384;

/// RustCrypto's primitives, restricted to [`CIPHERSUITE`], with a memory of
/// the signatures already found valid (see [`SignatureMemo`]).
#[derive(Debug, Default)]
pub struct HuddleCrypto {
    inner: RustCrypto,
    memo: Arc<SignatureMemo>,
}

impl HuddleCrypto {
    /// The memory of valid signatures this provider consults, to share with
    /// the certificate verifier and to fill from a faster verifier.
    pub fn memo(&self) -> Arc<SignatureMemo> {
        self.memo.clone()
    }
}

/// One signature an operation checks: who signed (a SEC1 P-384 public key),
/// what, and the DER signature. All three are public.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    pub public_key: Vec<u8>,
    pub message: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SignatureCheck {
    fn digest(&self) -> [u8; 48] {
        signature_digest(&self.public_key, &self.message, &self.signature)
    }
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SignatureCheck(key {} bytes, message {} bytes)",
            self.public_key.len(),
            self.message.len()
        )
    }
}

fn signature_digest(public_key: &[u8], message: &[u8], signature: &[u8]) -> [u8; 48] {
    let mut digest = [0u8; 48];
    let hash = Sha384::new()
        .chain_update((public_key.len() as u32).to_be_bytes())
        .chain_update(public_key)
        .chain_update((signature.len() as u32).to_be_bytes())
        .chain_update(signature)
        .chain_update(message)
        .finalize();
    digest.copy_from_slice(&hash);
    digest
}

/// P-384 signatures already found valid, and, during a dry run, the
/// signatures an operation asks about.
///
/// In wasm one P-384 verification costs about 8 ms, and joining a group of
/// 200 checks about 600 (every member's leaf and certificate chain). The
/// browser's WebCrypto verifies the same signatures natively and in
/// parallel. So the worker first runs the operation as a dry run that only
/// records which signatures it would check ([`SignatureMemo::record`]),
/// verifies them all with WebCrypto, remembers the valid ones, and then
/// runs the operation for real, which finds them here. A signature the
/// faster verifier did not confirm is verified here as always: the memo
/// can only save work, never accept a signature nobody checked.
#[derive(Default)]
pub struct SignatureMemo {
    state: Mutex<MemoState>,
}

#[derive(Default)]
struct MemoState {
    valid: HashSet<[u8; 48]>,
    recording: Option<Vec<SignatureCheck>>,
}

/// How many valid signatures are remembered before the memory is cleared.
const REMEMBERED_SIGNATURES: usize = 20_000;

impl SignatureMemo {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoState> {
        // A poisoned lock means a panic while inserting into a set of
        // digests; the set is still a set.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the signature is valid: remembered, or checked by `verify`
    /// (and then remembered if it held). While recording, every signature
    /// is noted and answered as valid; nothing recorded is remembered.
    pub fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
        verify: impl FnOnce() -> bool,
    ) -> bool {
        let digest = signature_digest(public_key, message, signature);
        {
            let mut state = self.state();
            if state.valid.contains(&digest) {
                return true;
            }
            if let Some(recording) = state.recording.as_mut() {
                recording.push(SignatureCheck {
                    public_key: public_key.to_vec(),
                    message: message.to_vec(),
                    signature: signature.to_vec(),
                });
                return true;
            }
        }
        let valid = verify();
        if valid {
            self.insert(digest);
        }
        valid
    }

    fn insert(&self, digest: [u8; 48]) {
        let mut state = self.state();
        if state.valid.len() >= REMEMBERED_SIGNATURES {
            state.valid.clear();
        }
        state.valid.insert(digest);
    }

    /// Remembers signatures that a trusted verifier (WebCrypto) found valid.
    pub fn remember_valid<'a>(&self, checks: impl IntoIterator<Item = &'a SignatureCheck>) {
        for check in checks {
            self.insert(check.digest());
        }
    }

    /// Runs `dry_run` with every signature answered as valid and noted;
    /// returns what it asked about, once each. The caller must undo
    /// whatever `dry_run` changed: its results rest on unchecked answers.
    pub fn record<T>(&self, dry_run: impl FnOnce() -> T) -> (T, Vec<SignatureCheck>) {
        self.state().recording = Some(Vec::new());
        let result = dry_run();
        let mut checks = self.state().recording.take().unwrap_or_default();
        let mut seen = HashSet::new();
        checks.retain(|check| seen.insert(check.digest()));
        (result, checks)
    }

    /// How many valid signatures are remembered (tests and diagnostics).
    pub fn remembered(&self) -> usize {
        self.state().valid.len()
    }
}

impl std::fmt::Debug for SignatureMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureMemo({} remembered)", self.remembered())
    }
}

impl OpenMlsCrypto for HuddleCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        if ciphersuite == CIPHERSUITE {
            Ok(())
        } else {
            Err(CryptoError::UnsupportedCiphersuite)
        }
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        vec![CIPHERSUITE]
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hkdf_extract(hash_type, salt, ikm)
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hkdf_expand(hash_type, prk, info, okm_len)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.hash(hash_type, data)
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_encrypt(alg, key, data, nonce, aad)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.inner.signature_key_gen(alg)
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if alg != SignatureScheme::ECDSA_SECP384R1_SHA384 {
            return self.inner.verify_signature(alg, data, pk, signature);
        }
        let valid = self.memo.verify(pk, data, signature, || {
            self.inner
                .verify_signature(alg, data, pk, signature)
                .is_ok()
        });
        if valid {
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(alg, data, key)
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        self.inner.hpke_seal(config, pk_r, info, aad, ptxt)
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.hpke_open(config, input, sk_r, info, aad)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        self.inner.hpke_setup_sender_and_export(
            config,
            pk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        self.inner.hpke_setup_receiver_and_export(
            config,
            enc,
            sk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        self.inner.derive_hpke_keypair(config, ikm)
    }
}

/// Everything OpenMLS needs from one device: crypto, randomness and a store
/// for group state. The store is generic so that the worker can back it with
/// encrypted IndexedDB and the tests with memory.
#[derive(Debug, Default)]
pub struct HuddleProvider<S = openmls_memory_storage::MemoryStorage> {
    crypto: HuddleCrypto,
    storage: S,
}

impl<S> HuddleProvider<S> {
    pub fn with_storage(storage: S) -> Self {
        Self {
            crypto: HuddleCrypto::default(),
            storage,
        }
    }
}

impl<S> OpenMlsProvider for HuddleProvider<S>
where
    S: openmls_traits::storage::StorageProvider<{ openmls_traits::storage::CURRENT_VERSION }>,
{
    type CryptoProvider = HuddleCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = S;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        // RustCrypto's generator is seeded from the operating system (or, in
        // a browser, from `crypto.getRandomValues`).
        &self.crypto.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{verify_device_signature, DeviceSigner};
    use openmls_traits::signatures::Signer;

    fn check(signer: &DeviceSigner, message: &[u8]) -> SignatureCheck {
        SignatureCheck {
            public_key: signer.public_key().to_vec(),
            message: message.to_vec(),
            signature: signer.sign(message).unwrap(),
        }
    }

    fn verify(memo: &SignatureMemo, c: &SignatureCheck) -> bool {
        memo.verify(&c.public_key, &c.message, &c.signature, || {
            verify_device_signature(&c.public_key, &c.message, &c.signature)
        })
    }

    #[test]
    fn a_dry_run_lists_each_signature_once_and_leaves_nothing_remembered() {
        let signer = DeviceSigner::generate().unwrap();
        let memo = SignatureMemo::default();
        let good = check(&signer, b"one");
        let mut forged = check(&signer, b"two");
        forged.message = b"three".to_vec();
        let (answers, checks) = memo.record(|| {
            [
                verify(&memo, &good),
                verify(&memo, &forged),
                verify(&memo, &good),
            ]
        });
        assert_eq!(
            answers,
            [true, true, true],
            "a dry run answers everything as valid"
        );
        assert_eq!(checks, vec![good.clone(), forged.clone()]);
        assert_eq!(memo.remembered(), 0);
        // Outside the dry run, answers are real again.
        assert!(verify(&memo, &good));
        assert!(!verify(&memo, &forged));
        assert_eq!(memo.remembered(), 1, "only what held is remembered");
    }

    #[test]
    fn the_provider_finds_what_was_confirmed_ahead_and_still_refuses_the_rest() {
        let signer = DeviceSigner::generate().unwrap();
        let crypto = HuddleCrypto::default();
        let good = check(&signer, b"leaf");
        crypto.memo().remember_valid([&good]);
        assert_eq!(crypto.memo().remembered(), 1);
        let verify = |c: &SignatureCheck| {
            crypto
                .verify_signature(
                    SignatureScheme::ECDSA_SECP384R1_SHA384,
                    &c.message,
                    &c.public_key,
                    &c.signature,
                )
                .is_ok()
        };
        assert!(verify(&good));
        let mut bad = good.clone();
        bad.message = b"leaf, changed".to_vec();
        assert!(!verify(&bad));
        assert_eq!(crypto.memo().remembered(), 1);
        assert!(!format!("{good:?}").contains("leaf"));
    }
}
