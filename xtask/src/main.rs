//! Huddle's build chores, in Rust so that they run the same everywhere: `cargo xtask dist [DIST] [REPORT_DIR]`.
#![forbid(unsafe_code)]

#[cfg(not(target_arch = "wasm32"))]
mod dist;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dist") => {
            let dist = args.get(1).map_or("dist", String::as_str);
            let reports = args.get(2).map_or("reports", String::as_str);
            match dist::run(std::path::Path::new(dist), std::path::Path::new(reports)) {
                Ok(_) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("xtask dist: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: cargo xtask dist [DIST] [REPORT_DIR]\n  \
                 post-processes the app Trunk built in DIST (default dist): moves inline scripts to files,\n  \
                 writes the service worker's precache list, precompresses with brotli and gzip, and\n  \
                 writes the size report to REPORT_DIR/size.json (default reports)"
            );
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
