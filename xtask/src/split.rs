//! Cuts the page's wasm into the module the first screen needs and modules fetched on demand (run by Trunk after each build).
//!
//! Trunk builds the page (`huddle`) as one wasm module. The functions marked
//! `#[wasm_split]` in `src/on_demand.rs` import their bodies from a
//! placeholder module; this step, run as Trunk's `post_build` hook on its
//! staging folder, replaces Trunk's output for the page with:
//!
//! - `huddle-ID.js` and `huddle_bg-ID.wasm`: the page module, with
//!   wasm-bindgen's glue, which is all a phone downloads before it can paint;
//! - `huddle-split-ID.js`: the loader of the other modules, imported by the glue;
//! - `on-demand-NAME-ID.wasm`: the modules fetched the first time one of their
//!   functions is called.
//!
//! ID is one hash of every file produced here, so the names change together:
//! a phone that loaded the page module of one build can never fetch another
//! build's module (which would not fit it), and every file can be cached for
//! ever. The page's `index.html` is rewritten to the new names with fresh
//! integrity hashes.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The page's package and binary, as Trunk names its output.
const PAGE: &str = "huddle";

/// Where the split modules' loader is imported from in the page's glue,
/// before it gets its final name.
const LINK_PLACEHOLDER: &str = "./__wasm_split.js";

/// Where the loader imports the page's glue from, before it gets its final name.
const MAIN_PLACEHOLDER: &str = "./__huddle_main.js";

/// Runs the split on Trunk's staging folder, for Trunk's profile.
pub fn run(staging: &Path, profile: &str, target_dir: &Path) -> Result<()> {
    let raw_wasm = target_dir
        .join("wasm32-unknown-unknown")
        .join(profile)
        .join(format!("{PAGE}.wasm"));
    let input = std::fs::read(&raw_wasm)
        .with_context(|| format!("reading the page's wasm at {}", raw_wasm.display()))?;
    let work = tempfile::tempdir()?;
    let out = work.path();

    let main_wasm = out.join("main.wasm");
    {
        let mut options = wasm_split_cli_support::Options::new(&input);
        options.output_dir = out;
        options.main_out_path = &main_wasm;
        options.link_name = LINK_PLACEHOLDER;
        options.main_module = MAIN_PLACEHOLDER;
        wasm_split_cli_support::transform(options)
            .map_err(|e| anyhow::anyhow!("splitting the page's wasm: {e:#}"))?;
    }

    // For size work: `HUDDLE_SPLIT_KEEP=DIR` keeps the modules as split,
    // before wasm-bindgen and wasm-opt, with their function names (read
    // them with `twiggy top DIR/main.wasm`).
    if let Some(keep) = std::env::var_os("HUDDLE_SPLIT_KEEP") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep)?;
        for entry in std::fs::read_dir(out)? {
            let path = entry?.path();
            if let Some(name) = path.file_name().filter(|_| wasm_stem(&path).is_some()) {
                std::fs::copy(&path, keep.join(name))?;
            }
        }
    }

    let bindgen_out = out.join("bindgen");
    run_tool(
        Command::new("wasm-bindgen")
            .arg(&main_wasm)
            .arg("--out-dir")
            .arg(&bindgen_out)
            .args(["--out-name", PAGE, "--target", "web", "--no-typescript"])
            .arg("--keep-lld-exports"),
        "wasm-bindgen",
    )?;

    // The modules, each as (name it has now, what it becomes).
    let mut modules = vec![(
        bindgen_out.join(format!("{PAGE}_bg.wasm")),
        "main".to_owned(),
    )];
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let Some(stem) = wasm_stem(&path) else {
            continue;
        };
        if stem != "main" {
            modules.push((path.clone(), stem.to_owned()));
        }
    }
    if modules.len() < 2 {
        bail!("the page's wasm has no split points: is `src/on_demand.rs` still in use?");
    }
    if profile == "release" {
        for (path, _) in &modules {
            optimise(path)?;
        }
    }

    let glue = std::fs::read_to_string(bindgen_out.join(format!("{PAGE}.js")))?;
    let loader = std::fs::read_to_string(out.join("__wasm_split.js"))?;
    let mut build = Sha256::new();
    build.update(glue.as_bytes());
    build.update(loader.as_bytes());
    let mut module_bytes = Vec::new();
    for (path, stem) in &modules {
        let bytes = std::fs::read(path)?;
        build.update(stem.as_bytes());
        build.update(&bytes);
        module_bytes.push((stem.clone(), bytes));
    }
    let id = &huddle_core::hex::encode(&build.finalize())[..16];

    let glue_name = format!("{PAGE}-{id}.js");
    let loader_name = format!("{PAGE}-split-{id}.js");
    let main_wasm_name = format!("{PAGE}_bg-{id}.wasm");
    // Only the JS imports change: the wasm module still names its imports
    // by the placeholder, and the glue's import object keeps that key.
    let link_import = format!("from \"{LINK_PLACEHOLDER}\"");
    if !glue.contains(&link_import) {
        bail!("wasm-bindgen's glue does not import {LINK_PLACEHOLDER}");
    }
    let glue = glue.replace(&link_import, &format!("from \"./{loader_name}\""));
    let mut loader = loader.replace(MAIN_PLACEHOLDER, &format!("./{glue_name}"));
    for (stem, bytes) in &module_bytes {
        let name = if stem == "main" {
            main_wasm_name.clone()
        } else {
            let part = stem
                .strip_prefix("split_")
                .unwrap_or(stem)
                .replace('_', "-");
            let name = format!("on-demand-{part}-{id}.wasm");
            let reference = format!("\"./{stem}.wasm\"");
            if !loader.contains(&reference) {
                bail!("the split loader does not fetch {stem}.wasm");
            }
            loader = loader.replace(&reference, &format!("\"./{name}\""));
            name
        };
        std::fs::write(staging.join(&name), bytes)?;
    }
    std::fs::write(staging.join(&glue_name), &glue)?;
    std::fs::write(staging.join(&loader_name), &loader)?;

    rewrite_index(staging, &glue_name, &main_wasm_name, &loader_name, &loader)?;
    println!(
        "xtask split: {} modules with build id {id} ({profile})",
        module_bytes.len()
    );
    Ok(())
}

/// Points `index.html` at the new files: Trunk's glue and wasm links and its
/// loader script are renamed, their integrity hashes recomputed, and the
/// split loader preloaded (the glue imports it before it can start).
fn rewrite_index(
    staging: &Path,
    glue_name: &str,
    main_wasm_name: &str,
    loader_name: &str,
    loader: &str,
) -> Result<()> {
    let index_path = staging.join("index.html");
    let mut html = std::fs::read_to_string(&index_path)?;
    let trunk_glue = find_asset(&html, &format!("/{PAGE}-"), ".js")?;
    let trunk_wasm = find_asset(&html, &format!("/{PAGE}-"), "_bg.wasm")?;
    for old in [&trunk_glue, &trunk_wasm] {
        let path = staging.join(old.trim_start_matches('/'));
        if path.is_file() {
            std::fs::remove_file(path)?;
        }
    }
    html = html.replace(&trunk_glue, &format!("/{glue_name}"));
    html = html.replace(&trunk_wasm, &format!("/{main_wasm_name}"));
    for name in [glue_name, main_wasm_name] {
        html = set_integrity(
            &html,
            &format!("/{name}"),
            &std::fs::read(staging.join(name))?,
        )?;
    }
    let preload = format!(
        "<link rel=\"modulepreload\" href=\"/{loader_name}\" crossorigin=\"anonymous\" integrity=\"{}\">",
        integrity(loader.as_bytes())
    );
    let head_end = html.find("</head>").context("index.html has no </head>")?;
    html.insert_str(head_end, &preload);
    std::fs::write(&index_path, html)?;
    Ok(())
}

/// The first `"PREFIX…SUFFIX"` attribute value in the page.
fn find_asset(html: &str, prefix: &str, suffix: &str) -> Result<String> {
    let mut from = 0;
    while let Some(offset) = html[from..].find(prefix) {
        let start = from + offset;
        let end = start
            + html[start..]
                .find(['"', '\''])
                .context("unterminated attribute in index.html")?;
        let candidate = &html[start..end];
        if candidate.ends_with(suffix) && !candidate.contains("worker") {
            return Ok(candidate.to_owned());
        }
        from = end;
    }
    bail!("index.html links no {prefix}…{suffix}: did Trunk build the page?")
}

/// Sets the `integrity` attribute of the tag whose `href` is `href`.
fn set_integrity(html: &str, href: &str, bytes: &[u8]) -> Result<String> {
    let attribute = format!("href=\"{href}\"");
    let at = html
        .find(&attribute)
        .with_context(|| format!("index.html has no tag with {attribute}"))?;
    let tag_start = html[..at].rfind('<').context("malformed index.html")?;
    let tag_end = at + html[at..].find('>').context("malformed index.html")?;
    let tag = &html[tag_start..tag_end];
    let Some(integrity_at) = tag.find("integrity=\"") else {
        return Ok(html.to_owned());
    };
    let value_start = tag_start + integrity_at + "integrity=\"".len();
    let value_end = value_start
        + html[value_start..]
            .find('"')
            .context("malformed index.html")?;
    let mut rewritten = html.to_owned();
    rewritten.replace_range(value_start..value_end, &integrity(bytes));
    Ok(rewritten)
}

fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// Optimises a module for size, as Trunk does for a release build.
fn optimise(path: &Path) -> Result<()> {
    run_tool(
        Command::new(wasm_opt())
            .arg("-Oz")
            .arg("--strip-debug")
            .arg(path)
            .arg("-o")
            .arg(path),
        "wasm-opt",
    )
}

/// The binaryen `wasm-opt` that `scripts/setup.sh` installs with npm, or the
/// one on the path.
fn wasm_opt() -> PathBuf {
    let from_npm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/wasm-opt");
    if from_npm.is_file() {
        from_npm
    } else {
        PathBuf::from("wasm-opt")
    }
}

fn run_tool(command: &mut Command, name: &str) -> Result<()> {
    let output = command.output().with_context(|| {
        format!("running {name}: is it installed? scripts/setup.sh installs it")
    })?;
    if !output.status.success() {
        bail!(
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn wasm_stem(path: &Path) -> Option<&str> {
    if path.extension()? != "wasm" {
        return None;
    }
    path.file_stem()?.to_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUNK_HEAD: &str = concat!(
        "<head><link rel=\"modulepreload\" href=\"/huddle-0123456789abcdef.js\" integrity=\"sha384-old\">",
        "<link rel=\"preload\" href=\"/huddle-0123456789abcdef_bg.wasm\" integrity=\"sha384-old\" as=\"fetch\">",
        "<link rel=\"preload\" href=\"/huddle-worker-aaaaaaaaaaaaaaaa_bg.wasm\" as=\"fetch\"></head>"
    );

    #[test]
    fn finds_the_page_glue_and_wasm_but_not_the_workers() {
        assert_eq!(
            find_asset(TRUNK_HEAD, "/huddle-", ".js").unwrap(),
            "/huddle-0123456789abcdef.js"
        );
        assert_eq!(
            find_asset(TRUNK_HEAD, "/huddle-", "_bg.wasm").unwrap(),
            "/huddle-0123456789abcdef_bg.wasm"
        );
        assert!(find_asset("<head></head>", "/huddle-", ".js").is_err());
    }

    #[test]
    fn integrity_is_replaced_on_the_named_tag_only() {
        let html = set_integrity(TRUNK_HEAD, "/huddle-0123456789abcdef.js", b"glue").unwrap();
        assert!(html.contains(&format!(
            "href=\"/huddle-0123456789abcdef.js\" integrity=\"{}\"",
            integrity(b"glue")
        )));
        assert!(html.contains("_bg.wasm\" integrity=\"sha384-old\""));
    }
}
