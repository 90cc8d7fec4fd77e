//! The page's document: finding where the app mounts.

use wasm_bindgen::JsCast;

/// Finds the `#app` element, clears the static shell inside it and returns it
/// for the app to mount into.
pub fn take_app_root() -> Option<web_sys::HtmlElement> {
    let root = web_sys::window()?
        .document()?
        .get_element_by_id("app")?
        .dyn_into::<web_sys::HtmlElement>()
        .ok()?;
    root.set_inner_html("");
    Some(root)
}
