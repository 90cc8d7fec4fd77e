//! The crypto worker's entry point: registers [`CryptoWorker`] in the Web Worker's global scope.
#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
fn main() {
    use gloo_worker::Registrable;
    huddle_worker::CryptoWorker::registrar().register();
}

// The worker only runs in a browser; natively there is nothing to start.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("huddle-worker runs in a browser; build it for wasm32-unknown-unknown with Trunk");
    std::process::exit(2);
}
