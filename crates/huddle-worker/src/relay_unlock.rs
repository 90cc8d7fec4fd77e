//! Asking the relay for the share: the worker's own two requests to `/api/unlock/nonce` and `/api/unlock`, signed with the lock key, made before the phone can sign in.

use huddle_core::hex;
use huddle_core::ids::DeviceId;
use huddle_core::passcode::{
    nonce_request_transcript, unlock_transcript, NonceAnswer, NonceRequest, Share, Stretched,
    UnlockAnswer, UnlockRequest, NONCE_LEN_UNLOCK, SHARE_LEN,
};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::PhonePolicy;
use huddle_mls::identity::DeviceSigner;
use js_sys::{Function, Object, Reflect};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// How long each request may take: on bad Wi-Fi the person should hear
/// that the relay cannot be reached, not wait.
const REQUEST_TIMEOUT_MILLIS: u32 = 10_000;

/// What the relay said.
pub enum RelayAnswer {
    Share(Share, PhonePolicy),
    Wrong {
        left: u32,
    },
    /// Ten wrong passcodes: the share is gone.
    Wiped,
    /// The phone was signed out.
    SignedOut,
    /// The phone's clock is too far from the relay's (which the relay
    /// tells, when it does).
    ClockWrong {
        relay_time: Option<UnixMillis>,
    },
    /// The relay keeps no lock for this phone.
    NoLock,
    /// No answer the phone can use: no network, a timeout, something other
    /// than the relay answering, the relay too busy (a flood from the same
    /// network) or failing. The offline copy may still open the phone.
    Unreachable,
}

/// The longest answer read: the relay's are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 4096;

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    /// With `clock`: the relay's time.
    #[serde(default)]
    relay_time: Option<u64>,
}

/// One request; `Err` if nothing readable came back.
async fn post(path: &str, body: String) -> Result<(u16, String), ()> {
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into())
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let headers = Object::new();
    Reflect::set(&headers, &"content-type".into(), &"application/json".into()).map_err(|_| ())?;
    init.set_headers(&headers);
    if let Some(signal) = timeout_signal() {
        init.set_signal(Some(&signal));
    }
    let promise: js_sys::Promise = fetch
        .call2(&global, &JsValue::from_str(path), &init)
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    let declared = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|length| length.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_ANSWER_BYTES) {
        return Err(());
    }
    let text = JsFuture::from(response.text().map_err(|_| ())?)
        .await
        .map_err(|_| ())?
        .as_string()
        .ok_or(())?;
    if text.len() > MAX_ANSWER_BYTES {
        return Err(());
    }
    Ok((response.status(), text))
}

/// A signal that aborts a request after the timeout, where the browser
/// has `AbortSignal.timeout` (elsewhere the request waits as long as the
/// browser lets it).
fn timeout_signal() -> Option<web_sys::AbortSignal> {
    let class = Reflect::get(&js_sys::global(), &"AbortSignal".into()).ok()?;
    let timeout: Function = Reflect::get(&class, &"timeout".into())
        .ok()?
        .dyn_into()
        .ok()?;
    timeout
        .call1(&class, &JsValue::from(REQUEST_TIMEOUT_MILLIS))
        .ok()?
        .dyn_into()
        .ok()
}

/// A refusal the relay explained, by its code (the person is told in the
/// app's own words); anything else counts as no answer.
fn refusal(body: &str) -> RelayAnswer {
    match serde_json::from_str::<ErrorAnswer>(body) {
        Ok(answer) => match answer.error.as_str() {
            "revoked" => RelayAnswer::SignedOut,
            "clock" => RelayAnswer::ClockWrong {
                relay_time: answer.relay_time.map(UnixMillis),
            },
            "no_lock" => RelayAnswer::NoLock,
            _ => RelayAnswer::Unreachable,
        },
        Err(_) => RelayAnswer::Unreachable,
    }
}

/// Asks for the nonce the unlock must answer, signing the time `at`.
async fn ask_nonce(
    signer: &DeviceSigner,
    device: DeviceId,
    at: UnixMillis,
) -> Result<[u8; NONCE_LEN_UNLOCK], RelayAnswer> {
    let Ok(signature) = signer.sign_challenge(&nonce_request_transcript(device, at.0)) else {
        return Err(RelayAnswer::Unreachable);
    };
    let request = NonceRequest {
        device,
        at: at.0,
        signature: hex::encode(&signature),
    };
    let Ok(body) = serde_json::to_string(&request) else {
        return Err(RelayAnswer::Unreachable);
    };
    match post("/api/unlock/nonce", body).await {
        Err(()) => Err(RelayAnswer::Unreachable),
        Ok((200, text)) => serde_json::from_str::<NonceAnswer>(&text)
            .ok()
            .and_then(|answer| hex::decode(&answer.nonce))
            .and_then(|bytes| <[u8; NONCE_LEN_UNLOCK]>::try_from(bytes).ok())
            .ok_or(RelayAnswer::Unreachable),
        Ok((_, text)) => Err(refusal(&text)),
    }
}

/// Asks for a nonce, then answers it with the proof of the passcode.
pub async fn ask(
    signer: &DeviceSigner,
    device: DeviceId,
    stretched: &Stretched,
    now: UnixMillis,
) -> RelayAnswer {
    let nonce = match ask_nonce(signer, device, now).await {
        Ok(nonce) => nonce,
        // A phone whose clock is wrong asks once more at the relay's time,
        // which is what the signed time is checked against: the person
        // need not set her clock to open Huddle, and the relay learns
        // nothing it did not say. The relay's time is used for this request
        // only: the lock record goes on by the phone's own clock (and the
        // latest time it has seen), so that a relay that lies about the
        // time cannot stretch the offline grace period or the self-wipe.
        // (Expiry goes by the later of the phone's clock and the relay's.)
        Err(RelayAnswer::ClockWrong {
            relay_time: Some(relay_time),
        }) if relay_time != now => match ask_nonce(signer, device, relay_time).await {
            Ok(nonce) => nonce,
            Err(answer) => return answer,
        },
        Err(answer) => return answer,
    };
    let proof = stretched.verifier().proof(&nonce, device);
    let Ok(signature) = signer.sign_challenge(&unlock_transcript(device, &nonce, &proof)) else {
        return RelayAnswer::Unreachable;
    };
    let request = UnlockRequest {
        device,
        nonce: hex::encode(&nonce),
        proof: hex::encode(&proof),
        signature: hex::encode(&signature),
    };
    let Ok(body) = serde_json::to_string(&request) else {
        return RelayAnswer::Unreachable;
    };
    match post("/api/unlock", body).await {
        Err(()) => RelayAnswer::Unreachable,
        Ok((200, text)) => match serde_json::from_str::<UnlockAnswer>(&text) {
            Ok(UnlockAnswer::Unlocked { share, policy }) => {
                match hex::decode(&share).and_then(|b| <[u8; SHARE_LEN]>::try_from(b).ok()) {
                    Some(share) => RelayAnswer::Share(Share::from_bytes(share), policy),
                    None => RelayAnswer::Unreachable,
                }
            }
            Ok(UnlockAnswer::WrongPasscode { left }) => RelayAnswer::Wrong { left },
            Ok(UnlockAnswer::Wiped) => RelayAnswer::Wiped,
            Err(_) => RelayAnswer::Unreachable,
        },
        Ok((_, text)) => refusal(&text),
    }
}
