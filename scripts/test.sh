#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, the wasm build, all Rust tests (GPU tests on
# lavapipe when no GPU is present), the desktop example under Xvfb, and the browser tests in
# Debian's Chromium. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "== wasm32 build"
cargo build --target wasm32-unknown-unknown --no-default-features --features web --lib
echo "== cargo test"
./scripts/fetch-qwen-tokenizer.sh
cargo test --all-targets
echo "== desktop example under Xvfb (lavapipe)"
./scripts/desktop-test.sh
echo "== browser: npm package, demo page, Chromium WebGPU tests"
./web/test.sh
