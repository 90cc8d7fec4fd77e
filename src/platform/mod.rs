//! The only door to the browser: everything that touches web-sys, js-sys, gloo, rexie or wasm-bindgen lives here, most of it as the session's traits.

#[cfg(feature = "bench")]
pub mod bench_hooks;
pub mod browser;
pub mod cache;
pub mod camera;
pub mod crypto_worker;
pub mod dom;
pub mod lock;
pub mod log;
pub mod phone;
pub mod registration;
pub mod runtime;
pub mod service_worker;
pub mod socket;

pub use phone::AppPhone;

/// Sends Rust panics to the browser console with their message, instead of
/// an opaque "unreachable executed".
pub fn install_panic_hook() {
    console_error_panic_hook::set_once();
}
