//! Links the page's wasm with its relocations kept, which `cargo xtask split` needs to cut it into modules.
#![forbid(unsafe_code)]

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-bin=huddle=--emit-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
