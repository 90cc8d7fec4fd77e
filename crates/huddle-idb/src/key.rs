//! The data key of a database: random, kept only wrapped by a non-extractable WebCrypto AES-GCM key stored beside it, so that script can use it but never read it.

use crate::IdbError;
use huddle_core::at_rest::{DataKey, KEY_LEN, NONCE_LEN};
use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use zeroize::Zeroizing;

/// The id of the wrapped key's entry in the keys store.
const DATA_KEY_ID: &str = "storage-key";

/// The data key unwrapped from `keys_store`, or made (and stored wrapped)
/// the first time.
pub async fn load_or_create(db: &Rexie, keys_store: &str) -> Result<DataKey, IdbError> {
    match unwrap(db, keys_store).await? {
        Some(key) => Ok(key),
        None => create(db, keys_store).await,
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

async fn unwrap(db: &Rexie, keys_store: &str) -> Result<Option<DataKey>, IdbError> {
    let tx = db
        .transaction(&[keys_store], TransactionMode::ReadOnly)
        .map_err(|_| IdbError::Open)?;
    let entry = tx
        .store(keys_store)
        .map_err(|_| IdbError::Open)?
        .get(DATA_KEY_ID.into())
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
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    if array.length() as usize != KEY_LEN {
        return Err(IdbError::Damaged);
    }
    array.copy_to(&mut bytes[..]);
    // The JavaScript copy cannot be wiped from Rust; overwrite it instead.
    array.fill(0, 0, KEY_LEN as u32);
    Ok(Some(DataKey::from_bytes(*bytes)))
}

async fn create(db: &Rexie, keys_store: &str) -> Result<DataKey, IdbError> {
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
    let mut key_bytes = Zeroizing::new([0u8; KEY_LEN]);
    let mut iv = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut key_bytes[..]).map_err(|_| IdbError::Crypto)?;
    getrandom::getrandom(&mut iv).map_err(|_| IdbError::Crypto)?;
    let iv = Uint8Array::from(&iv[..]);
    let plain = Uint8Array::from(&key_bytes[..]);
    let params = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &iv);
    let wrapped =
        promise(subtle.encrypt_with_object_and_js_u8_array(&params, &wrapping, &plain)).await;
    plain.fill(0, 0, KEY_LEN as u32);
    let wrapped = wrapped?;
    let entry = Object::new();
    let set = |name: &str, value: &JsValue| Reflect::set(&entry, &name.into(), value);
    set("wrappingKey", &wrapping)
        .and_then(|_| set("iv", &iv))
        .and_then(|_| set("wrapped", &Uint8Array::new(&wrapped)))
        .map_err(|_| IdbError::Crypto)?;
    let tx = db
        .transaction(&[keys_store], TransactionMode::ReadWrite)
        .map_err(|_| IdbError::Transaction)?;
    tx.store(keys_store)
        .map_err(|_| IdbError::Transaction)?
        .put(&entry, Some(&DATA_KEY_ID.into()))
        .await
        .map_err(|_| IdbError::Transaction)?;
    match tx.done().await {
        Ok(rexie::TransactionResult::Committed) => Ok(DataKey::from_bytes(*key_bytes)),
        _ => Err(IdbError::Transaction),
    }
}
