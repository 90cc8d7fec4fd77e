//! Checking many P-384 signatures at once with the browser's WebCrypto, before an operation that would otherwise check them one by one in wasm.
//!
//! In wasm, RustCrypto verifies one P-384 signature in about 8 ms; the
//! browser verifies the same signature natively, off the worker's thread,
//! and many at a time. [`MlsDevice::signatures_to_join`] lists what a join
//! would check; [`verify_together`] checks them all; the valid ones are
//! remembered and the real join finds them there (see
//! [`crate::provider::SignatureMemo`]). Outside a browser, or if WebCrypto
//! is missing or refuses a key, nothing is pre-checked and the join
//! verifies every signature itself, as before.

use crate::device::{MlsDevice, MlsError};
use crate::identity::verify_device_signature;
use crate::provider::SignatureCheck;
use huddle_core::crypto_worker::{Incoming, JoinedGroup};
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::MembershipChange;

/// Joins from a welcome, having checked its signatures together first.
pub async fn join(device: &mut MlsDevice, welcome: &[u8]) -> Result<JoinedGroup, MlsError> {
    let checks = device.signatures_to_join(welcome);
    device.remember_valid(&confirmed(checks).await);
    device.join(welcome)
}

/// Opens a message, checking its signature with WebCrypto after
/// decrypting it (see [`MlsDevice::open_checking_later`]): one P-384
/// verification is most of the cost of opening a message in wasm.
pub async fn open(
    device: &mut MlsDevice,
    group: GroupId,
    bytes: &[u8],
    relay_sender: DeviceId,
    declared: Option<&MembershipChange>,
    now: UnixMillis,
) -> Result<Incoming, MlsError> {
    let (opened, skipped) = device.open_checking_later(group, bytes, relay_sender, declared, now);
    if all_valid(skipped).await {
        opened
    } else {
        Err(MlsError::Rejected("the signature is not valid".into()))
    }
}

/// Whether every signature is valid: WebCrypto's word where it gives one,
/// RustCrypto's for the rest.
pub async fn all_valid(checks: Vec<SignatureCheck>) -> bool {
    let valid = verify_together(&checks).await;
    checks.iter().zip(valid).all(|(check, confirmed)| {
        confirmed || verify_device_signature(&check.public_key, &check.message, &check.signature)
    })
}

/// The signatures among `checks` that WebCrypto confirmed as valid.
pub async fn confirmed(checks: Vec<SignatureCheck>) -> Vec<SignatureCheck> {
    let valid = verify_together(&checks).await;
    checks
        .into_iter()
        .zip(valid)
        .filter_map(|(check, valid)| valid.then_some(check))
        .collect()
}

/// Whether each signature is valid, as far as WebCrypto can tell: `false`
/// means "not confirmed" (invalid, or not checked here), never "checked".
#[cfg(not(target_arch = "wasm32"))]
pub async fn verify_together(checks: &[SignatureCheck]) -> Vec<bool> {
    vec![false; checks.len()]
}

/// Whether each signature is valid, as far as WebCrypto can tell: `false`
/// means "not confirmed" (invalid, or not checked here), never "checked".
#[cfg(target_arch = "wasm32")]
pub async fn verify_together(checks: &[SignatureCheck]) -> Vec<bool> {
    browser::verify_together(checks)
        .await
        .unwrap_or_else(|_| vec![false; checks.len()])
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::SignatureCheck;
    use js_sys::{Array, Promise, Reflect, Uint8Array};
    use std::collections::HashMap;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{CryptoKey, EcKeyImportParams, EcdsaParams, SubtleCrypto};

    /// The page's or the worker's `crypto.subtle`.
    fn subtle() -> Result<SubtleCrypto, JsValue> {
        let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
        Reflect::get(&crypto, &"subtle".into())?.dyn_into::<SubtleCrypto>()
    }

    /// Imports each distinct key once; a key WebCrypto refuses maps to `None`.
    async fn import_keys(
        subtle: &SubtleCrypto,
        checks: &[SignatureCheck],
    ) -> Result<HashMap<Vec<u8>, Option<CryptoKey>>, JsValue> {
        let algorithm = EcKeyImportParams::new("ECDSA");
        algorithm.set_named_curve("P-384");
        let usages = Array::of1(&"verify".into());
        let mut distinct: Vec<&[u8]> = checks.iter().map(|c| c.public_key.as_slice()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let imports = Array::new();
        for key in &distinct {
            let raw = Uint8Array::from(*key);
            let promise = subtle
                .import_key_with_object("raw", &raw, &algorithm, false, &usages)
                // A key that cannot be imported is simply not pre-checked.
                .unwrap_or_else(|_| Promise::resolve(&JsValue::NULL));
            imports.push(&promise);
        }
        let imported = settled(&imports).await?;
        Ok(distinct
            .into_iter()
            .zip(imported)
            .map(|(key, value)| (key.to_vec(), value.and_then(|v| v.dyn_into().ok())))
            .collect())
    }

    /// Awaits every promise; each one's value, or `None` where it failed.
    async fn settled(promises: &Array) -> Result<Vec<Option<JsValue>>, JsValue> {
        let outcomes: Array = JsFuture::from(Promise::all_settled(promises))
            .await?
            .unchecked_into();
        Ok(outcomes
            .iter()
            .map(|outcome| {
                let fulfilled = Reflect::get(&outcome, &"status".into())
                    .ok()
                    .and_then(|s| s.as_string())
                    .is_some_and(|s| s == "fulfilled");
                fulfilled
                    .then(|| Reflect::get(&outcome, &"value".into()).ok())
                    .flatten()
            })
            .collect())
    }

    pub async fn verify_together(checks: &[SignatureCheck]) -> Result<Vec<bool>, JsValue> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let subtle = subtle()?;
        let keys = import_keys(&subtle, checks).await?;
        let algorithm = EcdsaParams::new_with_str("ECDSA", "SHA-384");
        let verifications = Array::new();
        for check in checks {
            let key = keys.get(&check.public_key).and_then(Option::as_ref);
            // WebCrypto takes the fixed-size form (r || s), not DER.
            let raw_signature = p384::ecdsa::Signature::from_der(&check.signature)
                .ok()
                .map(|s| s.to_bytes());
            let promise = match (key, raw_signature) {
                (Some(key), Some(signature)) => subtle
                    .verify_with_object_and_u8_array_and_u8_array(
                        &algorithm,
                        key,
                        &signature,
                        &check.message,
                    )
                    .unwrap_or_else(|_| Promise::resolve(&JsValue::FALSE)),
                _ => Promise::resolve(&JsValue::FALSE),
            };
            verifications.push(&promise);
        }
        Ok(settled(&verifications)
            .await?
            .into_iter()
            .map(|value| value.and_then(|v| v.as_bool()) == Some(true))
            .collect())
    }
}
