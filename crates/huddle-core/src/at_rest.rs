//! At-rest encryption: every record the app or the crypto worker stores is sealed with AES-256-GCM under the device data key.
//!
//! A sealed record is `version (1 byte) || nonce (12 bytes) || ciphertext ||
//! tag (16 bytes)`. The store name and the record id are bound as
//! associated data, so a record copied to another key or another store does
//! not open. The nonce is random and passed in by the caller (this crate
//! draws no random numbers); with 96-bit random nonces, a device can seal
//! billions of records under one key before the collision risk matters.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// The sealed-record format this version writes.
pub const RECORD_VERSION: u8 = 1;

/// The device data key. Wiped from memory when dropped; never printed.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(Zeroizing::new(bytes))
    }

    /// The key's bytes, to wrap it under another key (the passcode's
    /// unlock key) and nothing else.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.0.clone()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.as_ref().into())
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

/// Why a record did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    #[error("the stored record is damaged or was stored under another key or name")]
    Unauthentic,
    #[error("the stored record is too short")]
    Truncated,
    #[error("the stored record has format version {0}, which this version cannot read")]
    UnknownVersion(u8),
}

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag: returns `ciphertext || tag`.
pub fn encrypt(key: &DataKey, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    key.cipher()
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Encryption fails only for inputs over 64 GiB, which no record is.
        .unwrap_or_default()
}

/// The inverse of [`encrypt`]; any change to key, nonce, data or tag fails.
pub fn decrypt(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AtRestError> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(AtRestError::Truncated);
    }
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext_and_tag,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| AtRestError::Unauthentic)
}

fn record_aad(store: &str, record_id: &[u8]) -> Vec<u8> {
    const LABEL: &[u8] = b"huddle record v1";
    let mut aad = Vec::with_capacity(LABEL.len() + 2 + store.len() + record_id.len());
    aad.extend_from_slice(LABEL);
    // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
    aad.extend_from_slice(&(store.len() as u16).to_be_bytes());
    aad.extend_from_slice(store.as_bytes());
    aad.extend_from_slice(record_id);
    aad
}

/// Seals one record of `store` with id `record_id`.
pub fn seal_record(
    key: &DataKey,
    nonce: [u8; NONCE_LEN],
    store: &str,
    record_id: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    sealed.push(RECORD_VERSION);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&encrypt(
        key,
        &nonce,
        &record_aad(store, record_id),
        plaintext,
    ));
    sealed
}

/// Opens a record sealed by [`seal_record`] for the same store and id. The
/// plaintext is wiped from memory when the caller drops it.
pub fn open_record(
    key: &DataKey,
    store: &str,
    record_id: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AtRestError> {
    let (&version, rest) = sealed.split_first().ok_or(AtRestError::Truncated)?;
    if version != RECORD_VERSION {
        return Err(AtRestError::UnknownVersion(version));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(AtRestError::Truncated);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| AtRestError::Truncated)?;
    decrypt(key, nonce, &record_aad(store, record_id), ciphertext)
}

#[cfg(test)]
mod tests;
