//! Who is on the other end of a connection: a device proves it holds the key it registered by signing the relay's challenge (ECDSA P-384), and must not be revoked.

use crate::store::{Store, StoreError};
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::auth_transcript;

/// A fresh challenge nonce; `None` if the system has no randomness.
pub fn random_nonce() -> Option<[u8; 32]> {
    let mut nonce = [0u8; 32];
    getrandom::getrandom(&mut nonce).ok()?;
    Some(nonce)
}

/// Checks a DER-encoded ECDSA P-384 signature over `message`.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use p384::ecdsa::signature::Verifier;
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = p384::ecdsa::Signature::from_der(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

/// Why a device was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The relay has never heard of it (or its database was restored from
    /// before it registered).
    UnknownDevice,
    /// It, or its person, was revoked; `proven` when the answer was signed
    /// with its key, so that the phone itself is the one told to wipe.
    Revoked { proven: bool },
    /// Its signature does not verify with its key.
    BadSignature,
}

/// Checks a device's answer to the challenge `nonce`: it exists, is not
/// revoked, and signed with its own key. Returns its person.
pub async fn check(
    store: &Store,
    device: DeviceId,
    nonce: &[u8; 32],
    signature: &[u8],
) -> Result<Result<UserId, Refusal>, StoreError> {
    let Some(row) = store.device(device).await? else {
        return Ok(Err(Refusal::UnknownDevice));
    };
    let person_active = store.role_of(device).await?.is_some();
    // A millisecond of arithmetic: off the threads that serve connections,
    // so that a crowd reconnecting at once does not hold up live traffic.
    let transcript = auth_transcript(nonce, device);
    let signature = signature.to_vec();
    let verified = tokio::task::spawn_blocking(move || {
        verify_signature(&row.public_key, &transcript, &signature)
    })
    .await
    .unwrap_or(false);
    if row.revoked || !person_active {
        return Ok(Err(Refusal::Revoked { proven: verified }));
    }
    if !verified {
        return Ok(Err(Refusal::BadSignature));
    }
    Ok(Ok(row.user))
}
