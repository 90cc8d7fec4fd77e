//! The data key of a database, and other secrets kept the same way: wrapped by a non-extractable WebCrypto AES-GCM key stored beside them, so that script can use them but never read the wrapping key.
//!
//! Until a passcode is set, a database's data key is kept like this (the
//! `storage-key` entry). Once it is set, that entry is deleted
//! ([`forget_data_key`]) and the data key exists only wrapped under the
//! passcode's unlock key, in the crypto worker's lock record; the lock key
//! that signs unlock requests is still kept like this ([`store_secret`]).

use crate::IdbError;
use huddle_core::at_rest::{DataKey, KEY_LEN, NONCE_LEN};
use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{Transaction, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use zeroize::Zeroizing;

/// Opens a transaction on the one store a function here works in (the
/// caller's connection stays the caller's).
pub type OpenTransaction<'a> = &'a dyn Fn(&str, TransactionMode) -> Result<Transaction, IdbError>;

/// The id of the wrapped data key's entry in the keys store.
pub const DATA_KEY_ID: &str = "storage-key";

/// The data key unwrapped from `keys_store`, or made (and stored wrapped)
/// the first time.
pub async fn load_or_create(
    tx: OpenTransaction<'_>,
    keys_store: &str,
) -> Result<DataKey, IdbError> {
    if let Some(bytes) = load_secret(tx, keys_store, DATA_KEY_ID).await? {
        let bytes: [u8; KEY_LEN] = bytes[..].try_into().map_err(|_| IdbError::Damaged)?;
        return Ok(DataKey::from_bytes(bytes));
    }
    let mut key_bytes = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::getrandom(&mut key_bytes[..]).map_err(|_| IdbError::Crypto)?;
    store_secret(tx, keys_store, DATA_KEY_ID, &key_bytes[..]).await?;
    Ok(DataKey::from_bytes(*key_bytes))
}

/// Whether the data key is kept here (not yet under a passcode).
pub async fn has_data_key(tx: OpenTransaction<'_>, keys_store: &str) -> Result<bool, IdbError> {
    let tx = tx(keys_store, TransactionMode::ReadOnly)?;
    let found = tx
        .store(keys_store)
        .map_err(|_| IdbError::Transaction)?
        .get(DATA_KEY_ID.into())
        .await
        .map_err(|_| IdbError::Open)?;
    tx.done().await.map_err(|_| IdbError::Open)?;
    Ok(found.is_some_and(|v| v.is_object()))
}

/// Deletes the data key kept here: from now on it exists only where the
/// caller has put it (under the passcode's unlock key).
pub async fn forget_data_key(tx: OpenTransaction<'_>, keys_store: &str) -> Result<(), IdbError> {
    let tx = tx(keys_store, TransactionMode::ReadWrite)?;
    tx.store(keys_store)
        .map_err(|_| IdbError::Transaction)?
        .delete(DATA_KEY_ID.into())
        .await
        .map_err(|_| IdbError::Transaction)?;
    match tx.done().await {
        Ok(rexie::TransactionResult::Committed) => Ok(()),
        _ => Err(IdbError::Transaction),
    }
}

fn subtle() -> Result<web_sys::SubtleCrypto, IdbError> {
    let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .map_err(|_| IdbError::Crypto)?
        .dyn_into()
        .map_err(|_| IdbError::Crypto)?;
    Ok(crypto.subtle())
}

async fn promise(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, IdbError> {
    JsFuture::from(promise.map_err(|_| IdbError::Crypto)?)
        .await
        .map_err(|_| IdbError::Crypto)
}

/// The secret stored under `id` by [`store_secret`], unwrapped; `None` if
/// there is none.
pub async fn load_secret(
    tx: OpenTransaction<'_>,
    store: &str,
    id: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, IdbError> {
    let tx = tx(store, TransactionMode::ReadOnly)?;
    let entry = tx
        .store(store)
        .map_err(|_| IdbError::Transaction)?
        .get(id.into())
        .await
        .map_err(|_| IdbError::Open)?;
    tx.done().await.map_err(|_| IdbError::Open)?;
    let Some(entry) = entry.filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let field = |name: &str| Reflect::get(&entry, &name.into()).ok();
    let wrapping: web_sys::CryptoKey = field("wrappingKey")
        .and_then(|v| v.dyn_into().ok())
        .ok_or(IdbError::Damaged)?;
    let iv: Uint8Array = field("iv")
        .and_then(|v| v.dyn_into().ok())
        .ok_or(IdbError::Damaged)?;
    let wrapped: Uint8Array = field("wrapped")
        .and_then(|v| v.dyn_into().ok())
        .ok_or(IdbError::Damaged)?;
    let params = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &iv);
    let plain =
        promise(subtle()?.decrypt_with_object_and_js_u8_array(&params, &wrapping, &wrapped))
            .await?;
    let array = Uint8Array::new(&plain);
    let bytes = Zeroizing::new(array.to_vec());
    // The JavaScript copy cannot be wiped from Rust; overwrite it instead.
    array.fill(0, 0, array.length());
    Ok(Some(bytes))
}

/// Stores `secret` under `id`, wrapped by a new non-extractable WebCrypto
/// key kept beside it.
pub async fn store_secret(
    tx: OpenTransaction<'_>,
    store: &str,
    id: &str,
    secret: &[u8],
) -> Result<(), IdbError> {
    let entry = wrap_secret(secret).await?;
    let tx = tx(store, TransactionMode::ReadWrite)?;
    tx.store(store)
        .map_err(|_| IdbError::Transaction)?
        .put(&entry, Some(&id.into()))
        .await
        .map_err(|_| IdbError::Transaction)?;
    match tx.done().await {
        Ok(rexie::TransactionResult::Committed) => Ok(()),
        _ => Err(IdbError::Transaction),
    }
}

/// `secret` wrapped by a new non-extractable WebCrypto key, as the entry to
/// store (with the key itself); for a caller that stores it together with
/// other changes.
pub async fn wrap_secret(secret: &[u8]) -> Result<JsValue, IdbError> {
    let subtle = subtle()?;
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let wrapping: web_sys::CryptoKey = promise(subtle.generate_key_with_object(
        &web_sys::AesKeyGenParams::new("AES-GCM", 256),
        false, // non-extractable: usable, never readable
        &usages,
    ))
    .await?
    .dyn_into()
    .map_err(|_| IdbError::Crypto)?;
    let mut iv = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut iv).map_err(|_| IdbError::Crypto)?;
    let iv = Uint8Array::from(&iv[..]);
    let plain = Uint8Array::from(secret);
    let params = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &iv);
    let wrapped =
        promise(subtle.encrypt_with_object_and_js_u8_array(&params, &wrapping, &plain)).await;
    plain.fill(0, 0, plain.length());
    let wrapped = wrapped?;
    let entry = Object::new();
    let set = |name: &str, value: &JsValue| Reflect::set(&entry, &name.into(), value);
    set("wrappingKey", &wrapping)
        .and_then(|_| set("iv", &iv))
        .and_then(|_| set("wrapped", &Uint8Array::new(&wrapped)))
        .map_err(|_| IdbError::Crypto)?;
    Ok(entry.into())
}
