//! The web app's entry point: mounts the Leptos app over the static shell in `index.html`.
#![forbid(unsafe_code)]

fn main() {
    huddle::start();
}
