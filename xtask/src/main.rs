//! Huddle's build chores, in Rust so that they run the same everywhere: `cargo xtask split` (Trunk's hook) and `cargo xtask dist [DIST] [REPORT_DIR]`.
#![forbid(unsafe_code)]

#[cfg(not(target_arch = "wasm32"))]
mod dist;
#[cfg(not(target_arch = "wasm32"))]
mod split;

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
        Some("split") => {
            // Run by Trunk as its `post_build` hook (Trunk.toml), which names
            // the staging folder and the profile.
            let (Ok(staging), Ok(profile)) = (
                std::env::var("TRUNK_STAGING_DIR"),
                std::env::var("TRUNK_PROFILE"),
            ) else {
                eprintln!("xtask split: run by Trunk's post_build hook (TRUNK_STAGING_DIR, TRUNK_PROFILE)");
                return std::process::ExitCode::from(2);
            };
            let target_dir = std::env::var("CARGO_TARGET_DIR")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_owned());
            match split::run(
                std::path::Path::new(&staging),
                &profile,
                std::path::Path::new(&target_dir),
            ) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("xtask split: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: cargo xtask split | dist [DIST] [REPORT_DIR]\n  \
                 split: run by Trunk after each build; cuts the page's wasm into the module the first\n  \
                 screen needs and modules fetched on demand (TRUNK_STAGING_DIR, TRUNK_PROFILE)\n  \
                 dist: \
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
