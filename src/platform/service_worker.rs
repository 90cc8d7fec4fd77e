//! Registers `sw.js`, the service worker that keeps the app shell so that Huddle opens offline.

use crate::state::words::ServiceWorkerError;
use wasm_bindgen_futures::JsFuture;

/// Where the service worker is served; its scope is the whole app.
pub const SERVICE_WORKER_PATH: &str = "/sw.js";

/// Registers the service worker. Resolves once the browser has accepted it;
/// installation carries on in the background.
pub async fn register() -> Result<(), ServiceWorkerError> {
    let window = web_sys::window().ok_or(ServiceWorkerError::Unsupported)?;
    let navigator = window.navigator();
    // `navigator.serviceWorker` is missing on insecure origins and in some
    // private modes; web-sys would return an undefined object, so ask first.
    let has_container = js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false);
    if !has_container {
        return Err(ServiceWorkerError::Unsupported);
    }
    JsFuture::from(navigator.service_worker().register(SERVICE_WORKER_PATH))
        .await
        .map(|_| ())
        .map_err(|_| ServiceWorkerError::RegistrationFailed)
}
