#!/usr/bin/env bash
# Installs what Huddle's two commands need, once: each step says what it
# installs and is skipped when the tool is already there. Sourced by
# scripts/run and scripts/test.

TRUNK_VERSION=0.21.14
CARGO_DENY_VERSION=0.20.2
WASM_BINDGEN_VERSION=0.2.130 # must equal the wasm-bindgen version in Cargo.lock

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_command() { # NAME SENTENCE
  command -v "$1" >/dev/null 2>&1 || die "$2"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    die "installing system packages needs root: run 'apt-get install -y chromium chromium-driver postgresql' as root, then try again"
  fi
}

# Keep Cargo's build output outside the clone, so that a fresh clone (as CI
# makes) still builds incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/huddle/target}"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

setup_build_tools() {
  need_command cargo "Huddle is built with Rust: install rustup from rustup.rs (it brings cargo), then try again."
  need_command rustup "Huddle needs rustup to add the WebAssembly target: install it from rustup.rs, then try again."
  need_command npm "Huddle's build uses npm for wasm-opt and Playwright: install Node.js 20 or newer with npm, then try again."

  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "Installing the Rust WebAssembly target (wasm32-unknown-unknown)"
    rustup target add wasm32-unknown-unknown
  fi
  if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
    say "Installing Trunk $TRUNK_VERSION (builds the web app; about 10 minutes, once)"
    cargo install trunk --version "$TRUNK_VERSION" --locked
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION" \
     || ! command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
    say "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once)"
    # Not --locked: that lockfile names a crate version the registry lacks.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] || [ ! -d "$ROOT/node_modules/playwright-core" ] \
     || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    say "Installing npm packages (wasm-opt from binaryen, playwright-core)"
    (cd "$ROOT" && npm ci --no-audit --no-fund)
  fi
}

apt_install() { # PACKAGE...
  say "Installing $* with apt-get"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

setup_test_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    need_command apt-get "The tests need ${missing[*]}: install them with your package manager, then try again."
    apt_install "${missing[@]}"
  fi
}

setup_check_tools() {
  if ! rustup component list --installed | grep -q '^clippy'; then
    say "Installing clippy"
    rustup component add clippy
  fi
  if ! rustup component list --installed | grep -q '^rustfmt'; then
    say "Installing rustfmt"
    rustup component add rustfmt
  fi
  if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    say "Installing cargo-deny $CARGO_DENY_VERSION (checks licences and sources; a few minutes, once)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
  fi
}

build_app() {
  say "Building the web app (trunk build --release)"
  (cd "$ROOT" && trunk build --release)
  say "Compressing the app and measuring its size"
  (cd "$ROOT" && cargo xtask dist dist reports)
}
