//! Benchmark-only entry points (the `bench` feature, never in a shipped build): seeding the phone's cache with thousands of messages.
//!
//! `tests/bench/conversation.mjs` builds the app with this feature, sets a
//! phone up through the real screens, then calls `huddleBenchSeed` (through
//! `window.wasmBindings`) to fill one conversation of its encrypted cache,
//! and measures the real app opening it and sweeping it, in the DOM, on a
//! slowed CPU.

use crate::platform::AppPhone;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_session::{CacheWrite, MessageBody, MessageRecord};

thread_local! {
    /// The phone once loaded (unlocked), for the seeding hook.
    static PHONE: std::cell::Cell<Option<&'static AppPhone>> = const { std::cell::Cell::new(None) };
}

/// Remembers the loaded phone for [`seed`].
pub fn loaded(phone: &'static AppPhone) {
    PHONE.with(|slot| slot.set(Some(phone)));
}
use wasm_bindgen::prelude::*;

/// Writes `count` messages to `group` in this phone's encrypted cache, sent
/// one second apart and ending now, each expiring `expires_in_ms` from now.
#[wasm_bindgen(js_name = huddleBenchSeed)]
pub async fn seed(group: String, count: u32, expires_in_ms: f64) -> Result<(), JsValue> {
    let group: GroupId = group
        .parse()
        .map_err(|_| JsValue::from_str("not a group id"))?;
    let now = crate::platform::browser::now().0;
    let expires_at = now.saturating_add(expires_in_ms.max(0.0) as u64);
    let messages: Vec<MessageRecord> = (0..count)
        .map(|n| {
            let mut id = [0xbe; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            MessageRecord {
                group,
                client_msg: ClientMessageId::from_bytes(id),
                sender: UserId::from_bytes([(n % 7) as u8 + 1; 16]),
                sender_device: DeviceId::from_bytes([1; 16]),
                sent_at: UnixMillis(now - u64::from(count - n) * 1_000),
                expires_at: UnixMillis(expires_at + u64::from(n)),
                body: MessageBody::Text(format!(
                    "Handover note {n}: bay 3 is short of gloves, more due at six."
                )),
            }
        })
        .collect();
    // Through the running phone's own cache: a passcode wraps its key, so
    // nothing else can open it.
    let phone = PHONE
        .with(|phone| phone.get())
        .ok_or_else(|| JsValue::from_str("the phone is locked or not loaded"))?;
    for batch in messages.chunks(1_000) {
        let writes = batch.iter().cloned().map(CacheWrite::Message).collect();
        phone
            .write_cache(writes)
            .await
            .map_err(|e| JsValue::from_str(&e.to_string()))?;
    }
    Ok(())
}
