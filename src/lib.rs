//! Huddle's web app: a Leptos single-page app for phones, with the browser behind `platform`.
//!
//! Layers, one way only: `pages` and `components` render `state`; `state` is
//! plain Rust tested natively; `platform` is the only module that touches the
//! browser (web-sys, js-sys, gloo, rexie, wasm-bindgen).
#![forbid(unsafe_code)]

pub mod components;
pub mod pages;
pub mod platform;
pub mod state;

use leptos::prelude::*;

/// Starts the app in the browser: replaces the static shell with the live app
/// and registers the service worker that lets the app open offline.
pub fn start() {
    platform::install_panic_hook();
    let Some(root) = platform::dom::take_app_root() else {
        platform::log::error("Huddle could not find its place on the page (#app).");
        return;
    };
    leptos::mount::mount_to(root, App).forget();
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <components::AppBar />
        <pages::WelcomePage />
    }
}
