//! Small doors to the browser: the clock, randomness, the address bar, visibility, connectivity, storage persistence, HTTP and the clipboard.

use huddle_core::retention::UnixMillis;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub fn now() -> UnixMillis {
    UnixMillis(js_sys::Date::now().max(0.0) as u64)
}

/// Milliseconds since the page started, from `performance.now()`: it never
/// goes backwards, whatever is done to the phone's clock.
pub fn monotonic_millis() -> u64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0, |performance| performance.now().max(0.0) as u64)
}

/// Minutes east of UTC, for clock times.
pub fn utc_offset_minutes() -> i64 {
    -(js_sys::Date::new_0().get_timezone_offset() as i64)
}

/// The phone's offset from UTC at `at`, which differs from today's across a
/// change of the clocks.
pub fn utc_offset_minutes_at(at: UnixMillis) -> i64 {
    let date = js_sys::Date::new(&JsValue::from_f64(at.0 as f64));
    -(date.get_timezone_offset() as i64)
}

/// The instant a day and a clock time on the phone's calendar name, with
/// the offset in force then (so 20:00 on the day after the clocks change
/// is 20:00 on the wall, not an hour off).
pub fn local_instant(day: u32, minutes: u16) -> UnixMillis {
    let first = crate::state::time::local_instant(day, minutes, utc_offset_minutes());
    crate::state::time::local_instant(day, minutes, utc_offset_minutes_at(first))
}

/// A number in [0, 1) for reconnect jitter.
pub fn jitter() -> f64 {
    js_sys::Math::random()
}

/// 16 random bytes for a new id.
pub fn random_id() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Only a browser without WebCrypto fails here, and Huddle's checks
        // refuse to run on one; mix in the clock rather than return zeros.
        let seed = js_sys::Date::now().to_bits().to_le_bytes();
        bytes[..8].copy_from_slice(&seed);
    }
    bytes
}

/// The address bar's path and fragment.
pub fn location() -> (String, String) {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return ("/".into(), String::new());
    };
    (
        location.pathname().unwrap_or_else(|_| "/".into()),
        location.hash().unwrap_or_default(),
    )
}

pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Shows `path` in the address bar; `replace` leaves no history entry (used
/// to take link secrets out of the address bar).
pub fn set_path(path: &str, replace: bool) {
    let Some(history) = web_sys::window().and_then(|w| w.history().ok()) else {
        return;
    };
    let _ = if replace {
        history.replace_state_with_url(&JsValue::NULL, "", Some(path))
    } else {
        history.push_state_with_url(&JsValue::NULL, "", Some(path))
    };
}

/// Calls `f` for the lifetime of the page whenever `event` fires on `target`.
fn listen(target: &web_sys::EventTarget, event: &str, f: impl Fn() + 'static) {
    let closure = Closure::<dyn Fn()>::new(f);
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    closure.forget(); // page-lifetime listener
}

pub fn on_back(f: impl Fn() + 'static) {
    if let Some(window) = web_sys::window() {
        listen(&window, "popstate", f);
    }
}

pub fn on_online(f: impl Fn() + 'static) {
    if let Some(window) = web_sys::window() {
        listen(&window, "online", f);
    }
}

pub fn on_offline(f: impl Fn() + 'static) {
    if let Some(window) = web_sys::window() {
        listen(&window, "offline", f);
    }
}

/// `f(hidden)` when the page is hidden (another app, a locked phone) or shown.
pub fn on_visibility(f: impl Fn(bool) + 'static) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let doc = document.clone();
    listen(&document, "visibilitychange", move || f(doc.hidden()));
}

/// `f(covered)`: whether the app should be covered, so that the app
/// switcher and anyone glancing at the screen see nothing. Covered when the
/// page is hidden or being left (`pagehide`), and as soon as the window
/// loses focus (`blur` comes first when a phone switches apps); uncovered
/// when it is shown and focused again.
pub fn on_cover(f: impl Fn(bool) + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Some(document) = window.document() else {
        return;
    };
    let f = std::rc::Rc::new(f);
    let shown = {
        let (f, document) = (f.clone(), document.clone());
        move || f(document.hidden())
    };
    listen(&document, "visibilitychange", shown.clone());
    listen(&window, "pageshow", shown.clone());
    listen(&window, "focus", shown);
    for leaving in ["pagehide", "blur"] {
        let f = f.clone();
        listen(&window, leaving, move || f(true));
    }
}

/// Reloads the page (the lock: everything in memory goes).
pub fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

pub fn is_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

pub fn is_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Asks the browser not to clear Huddle's storage under pressure.
pub async fn persist_storage() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let Ok(promise) = window.navigator().storage().persist() else {
        return false;
    };
    JsFuture::from(promise)
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Whether the app runs from the home screen (installed).
pub fn is_installed() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(display-mode: standalone)").ok().flatten())
        .is_some_and(|m| m.matches())
}

/// Whether the phone is an iPhone or iPad (which has no install prompt).
pub fn is_apple_mobile() -> bool {
    web_sys::window()
        .and_then(|w| w.navigator().user_agent().ok())
        .is_some_and(|ua| ua.contains("iPhone") || ua.contains("iPad"))
}

/// Sends `body` as JSON to `path` and returns the status and the response text.
pub async fn post_json(path: &str, body: &str) -> Result<(u16, String), ()> {
    let window = web_sys::window().ok_or(())?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let headers = web_sys::Headers::new().map_err(|_| ())?;
    headers
        .set("Content-Type", "application/json")
        .map_err(|_| ())?;
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(path, &init).map_err(|_| ())?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    let text = JsFuture::from(response.text().map_err(|_| ())?)
        .await
        .map_err(|_| ())?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}

pub async fn copy_text(text: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    JsFuture::from(window.navigator().clipboard().write_text(text))
        .await
        .is_ok()
}

/// Hands `text` to the browser as a file called `name` to save or share
/// (on a phone: its downloads, or the share sheet). Made on the phone; it
/// never passes through the relay.
pub fn download(name: &str, mime: &str, text: &str) -> bool {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return false;
    };
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return false;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return false;
    };
    let Some(anchor) = document
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    else {
        let _ = web_sys::Url::revoke_object_url(&url);
        return false;
    };
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // The browser has taken its copy by then; the page's goes.
    after(60_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    true
}

/// Calls `f` every `millis` for the lifetime of the page.
pub fn every(millis: i32, f: impl Fn() + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let closure = Closure::<dyn Fn()>::new(f);
    let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
        closure.as_ref().unchecked_ref(),
        millis,
    );
    closure.forget(); // page-lifetime timer
}

/// Calls `f` once after `millis`.
pub fn after(millis: i32, f: impl FnOnce() + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let closure = Closure::once_into_js(f);
    let _ = window
        .set_timeout_with_callback_and_timeout_and_arguments_0(closure.unchecked_ref(), millis);
}

/// A named point on the page's performance timeline (read by the start-up
/// benchmark; costs nothing otherwise).
pub fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}

/// Records how long passed since the mark `start`, under `name` (read by
/// the benchmarks).
pub fn measure_since(name: &str, start: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.measure_with_start_mark(name, start);
    }
}

/// Marks `name` once the current render has reached the page: after the
/// reactive updates queued so far, in the next task.
pub fn mark_after_render(name: &'static str) {
    after(0, move || mark(name));
}
