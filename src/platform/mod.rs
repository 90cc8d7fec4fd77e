//! The only door to the browser: everything that touches web-sys, js-sys, gloo, rexie or wasm-bindgen lives here.

pub mod browser;
pub mod client;
pub mod crypto_worker;
pub mod dom;
pub mod idb;
pub mod log;
pub mod registration;
pub mod service_worker;
pub mod socket;

/// Sends Rust panics to the browser console with their message, instead of
/// an opaque "unreachable executed".
pub fn install_panic_hook() {
    console_error_panic_hook::set_once();
}
