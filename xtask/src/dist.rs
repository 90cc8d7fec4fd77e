//! Post-processing of Trunk's `dist`: the inline loader moved to a file, the service worker's precache list, precompression and the size report.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// File kinds worth compressing (images are compressed already).
const COMPRESSIBLE: &[&str] = &["html", "js", "css", "wasm", "webmanifest", "svg", "json"];

/// The line of `sw.js` that the build replaces with the real precache list.
const PRECACHE_LINE_START: &str = "const PRECACHE_MANIFEST = ";

/// Runs every step, in order, on the folder Trunk built.
pub fn run(dist: &Path, report_dir: &Path) -> Result<SizeReport> {
    if !dist.join("index.html").is_file() {
        bail!(
            "{} has no index.html: run `trunk build --release` first",
            dist.display()
        );
    }
    remove_compressed(dist)?;
    move_inline_scripts(dist)?;
    write_precache_manifest(dist)?;
    compress_all(dist)?;
    let report = SizeReport::measure(dist)?;
    std::fs::create_dir_all(report_dir)?;
    let path = report_dir.join("size.json");
    std::fs::write(&path, report.to_json())?;
    print!("{}", report.table());
    println!("(written to {})", path.display());
    Ok(report)
}

/// Removes `.br` and `.gz` files left by an earlier run, so that none is stale.
fn remove_compressed(dist: &Path) -> Result<()> {
    for file in files(dist)? {
        if matches!(extension(&file), "br" | "gz") {
            std::fs::remove_file(&file)?;
        }
    }
    Ok(())
}

/// Trunk writes its wasm loader as an inline `<script type="module">`. A
/// Content Security Policy without `unsafe-inline` refuses it, so each inline
/// script moves to a file named by its hash, loaded with an integrity check.
pub fn move_inline_scripts(dist: &Path) -> Result<()> {
    let index_path = dist.join("index.html");
    let mut html = std::fs::read_to_string(&index_path)?;
    let mut search_from = 0;
    while let Some(offset) = html[search_from..].find("<script") {
        let start = search_from + offset;
        let open_end = start + html[start..].find('>').context("unclosed <script> tag")? + 1;
        let open_tag = &html[start..open_end];
        let close = open_end + html[open_end..].find("</script>").context("no </script>")?;
        let body = html[open_end..close].to_owned();
        if open_tag.contains(" src=") || body.trim().is_empty() {
            search_from = close;
            continue;
        }
        let digest = Sha256::digest(body.as_bytes());
        let name = format!("boot-{}.js", &huddle_core::hex::encode(&digest)[..16]);
        std::fs::write(dist.join(&name), &body)?;
        let integrity = format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha384::digest(body.as_bytes()))
        );
        let module = if open_tag.contains("type=\"module\"") {
            " type=\"module\""
        } else {
            ""
        };
        let replacement =
            format!("<script{module} src=\"/{name}\" integrity=\"{integrity}\"></script>");
        html.replace_range(start..close + "</script>".len(), &replacement);
        search_from = start + replacement.len();
    }
    std::fs::write(&index_path, html)?;
    Ok(())
}

/// Writes the list of files to precache, and a build id derived from their
/// contents, into `sw.js`.
fn write_precache_manifest(dist: &Path) -> Result<()> {
    let sw_path = dist.join("sw.js");
    let sw = std::fs::read_to_string(&sw_path).context("dist has no sw.js")?;
    let mut urls = Vec::new();
    let mut build = Sha256::new();
    for file in files(dist)? {
        let url = url_of(dist, &file);
        if url == "/sw.js" {
            continue;
        }
        build.update(url.as_bytes());
        build.update(std::fs::read(&file)?);
        urls.push(url);
    }
    urls.sort();
    let manifest = serde_json::json!({ "build": &huddle_core::hex::encode(&build.finalize())[..16], "files": urls });
    let mut replaced = false;
    let rewritten: Vec<String> = sw
        .lines()
        .map(|line| {
            if line.starts_with(PRECACHE_LINE_START) {
                replaced = true;
                format!("{PRECACHE_LINE_START}{manifest};")
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !replaced {
        bail!("sw.js has no line starting `{PRECACHE_LINE_START}`");
    }
    std::fs::write(&sw_path, rewritten.join("\n") + "\n")?;
    Ok(())
}

/// Writes `NAME.br` (brotli, best) and `NAME.gz` (gzip, best) next to every
/// compressible file, for the relay to serve by `Accept-Encoding`.
fn compress_all(dist: &Path) -> Result<()> {
    for file in files(dist)? {
        if !COMPRESSIBLE.contains(&extension(&file)) {
            continue;
        }
        let bytes = std::fs::read(&file)?;
        std::fs::write(with_suffix(&file, "br"), brotli_bytes(&bytes)?)?;
        std::fs::write(with_suffix(&file, "gz"), gzip_bytes(&bytes)?)?;
    }
    Ok(())
}

pub fn brotli_bytes(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 11, 22);
        writer.write_all(bytes)?;
    }
    Ok(out)
}

pub fn gzip_bytes(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Transfer sizes (brotli) of what a phone downloads.
#[derive(Debug)]
pub struct SizeReport {
    /// What the first screen needs: page, styles, loader, JS glue, main wasm.
    pub critical_path: Vec<(String, u64, u64)>,
    /// The crypto worker: its loader, glue and wasm.
    pub worker: Vec<(String, u64, u64)>,
    /// The page's modules fetched when first used (`xtask split`).
    pub on_demand: Vec<(String, u64, u64)>,
}

impl SizeReport {
    fn measure(dist: &Path) -> Result<Self> {
        let mut critical_path = Vec::new();
        let mut worker = Vec::new();
        let mut on_demand = Vec::new();
        for file in files(dist)? {
            let url = url_of(dist, &file);
            let name = url.trim_start_matches('/');
            let kind = extension(&file);
            if !matches!(kind, "html" | "css" | "js" | "wasm") || name == "sw.js" {
                continue;
            }
            let raw = std::fs::metadata(&file)?.len();
            let brotli = std::fs::metadata(with_suffix(&file, "br"))?.len();
            let entry = (url.clone(), raw, brotli);
            if name.starts_with("huddle-worker") {
                worker.push(entry);
            } else if name.starts_with("on-demand-") {
                on_demand.push(entry);
            } else {
                critical_path.push(entry);
            }
        }
        critical_path.sort();
        worker.sort();
        on_demand.sort();
        Ok(Self {
            critical_path,
            worker,
            on_demand,
        })
    }

    pub fn total_brotli(entries: &[(String, u64, u64)]) -> u64 {
        entries.iter().map(|e| e.2).sum()
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<48} {:>12} {:>12}",
            "file", "raw bytes", "brotli bytes"
        );
        for (title, entries) in [
            ("critical path", &self.critical_path),
            ("crypto worker", &self.worker),
            ("page modules fetched on first use", &self.on_demand),
        ] {
            for (url, raw, brotli) in entries {
                let _ = writeln!(out, "{url:<48} {raw:>12} {brotli:>12}");
            }
            let raw: u64 = entries.iter().map(|e| e.1).sum();
            let _ = writeln!(
                out,
                "{:<48} {raw:>12} {:>12}",
                format!("= {title}"),
                Self::total_brotli(entries)
            );
        }
        out
    }

    pub fn to_json(&self) -> String {
        let list = |entries: &[(String, u64, u64)]| {
            entries
                .iter()
                .map(|(url, raw, brotli)| serde_json::json!({ "file": url, "raw_bytes": raw, "brotli_bytes": brotli }))
                .collect::<Vec<_>>()
        };
        serde_json::to_string_pretty(&serde_json::json!({
            "critical_path_brotli_bytes": Self::total_brotli(&self.critical_path),
            "worker_brotli_bytes": Self::total_brotli(&self.worker),
            "on_demand_brotli_bytes": Self::total_brotli(&self.on_demand),
            "critical_path": list(&self.critical_path),
            "worker": list(&self.worker),
            "on_demand": list(&self.on_demand),
        }))
        .unwrap_or_default()
    }
}

/// Every file under `dir`, recursively, in a stable order; Trunk's staging
/// folder is skipped.
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn url_of(dist: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(dist).unwrap_or(file);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_module_scripts_move_to_hashed_files_and_others_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let html = "<html><head><script src=\"/x.js\"></script>\
<script type=\"module\">import init from '/huddle-0123456789abcdef.js';\nawait init();</script>\
</head><body><script>console.log(1)</script></body></html>";
        std::fs::write(dir.path().join("index.html"), html).expect("write");
        move_inline_scripts(dir.path()).expect("move");
        let out = std::fs::read_to_string(dir.path().join("index.html")).expect("read");
        assert!(out.contains("<script src=\"/x.js\"></script>"), "{out}");
        assert!(!out.contains("await init()"), "{out}");
        assert!(!out.contains("console.log"), "{out}");
        let boots: Vec<String> = files(dir.path())
            .expect("files")
            .iter()
            .map(|f| url_of(dir.path(), f))
            .filter(|u| u.starts_with("/boot-"))
            .collect();
        assert_eq!(boots.len(), 2, "{boots:?}");
        for boot in &boots {
            assert!(
                out.contains(&format!("src=\"{boot}\" integrity=\"sha384-")),
                "{out}"
            );
        }
        assert!(
            out.contains("<script type=\"module\" src=\"/boot-"),
            "{out}"
        );
    }

    #[test]
    fn compression_round_trips() {
        let text = "Huddle ".repeat(1000);
        let gz = gzip_bytes(text.as_bytes()).expect("gzip");
        let mut decoded = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut decoded)
            .expect("gunzip");
        assert_eq!(decoded, text);
        let br = brotli_bytes(text.as_bytes()).expect("brotli");
        let mut decoded = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut decoded).expect("unbrotli");
        assert_eq!(decoded, text.as_bytes());
        assert!(br.len() < 100 && gz.len() < 200);
    }
}
