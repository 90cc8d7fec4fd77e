//! Registers `sw.js`, the service worker that keeps the app shell so that Huddle opens offline.

use crate::state::words::ServiceWorkerError;
use wasm_bindgen::{JsCast, JsValue};
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

/// Deletes what the app keeps outside its databases: the service worker's
/// copy of the app (Cache Storage) and the service worker itself. Part of a
/// wipe; best effort, since a browser may lack either.
pub async fn forget_everything() {
    let global = js_sys::global();
    if let Some(caches) = property(&global, "caches") {
        if let Some(names) = awaited(&caches, "keys", &[]).await {
            for name in js_sys::Array::from(&names).iter() {
                let _ = awaited(&caches, "delete", &[name]).await;
            }
        }
    }
    let container = property(&global, "navigator").and_then(|n| property(&n, "serviceWorker"));
    if let Some(container) = container {
        if let Some(registrations) = awaited(&container, "getRegistrations", &[]).await {
            for registration in js_sys::Array::from(&registrations).iter() {
                let _ = awaited(&registration, "unregister", &[]).await;
            }
        }
    }
}

/// `object[name]`, if it is there.
fn property(object: &JsValue, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(object, &name.into())
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}

/// Calls the method `name` of `object` and awaits the promise it returns.
async fn awaited(object: &JsValue, name: &str, args: &[JsValue]) -> Option<JsValue> {
    let method: js_sys::Function = property(object, name)?.dyn_into().ok()?;
    let args: js_sys::Array = args.iter().collect();
    let promise: js_sys::Promise = method.apply(object, &args).ok()?.dyn_into().ok()?;
    JsFuture::from(promise).await.ok()
}
