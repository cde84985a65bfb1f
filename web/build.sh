#!/usr/bin/env bash
# Builds the npm package into web/pkg: the release wasm (features `web`), wasm-bindgen's JS glue
# (--target web), wasm-opt when available, the hand-written wrapper (web/js), package.json and
# README. Idempotent: wasm-bindgen-cli is installed once into a cache directory.
# Usage: web/build.sh            (env: BLOCKDIFF_TOOLS=dir for the tool cache, NO_WASM_OPT=1)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKG=web/pkg
TARGET=wasm32-unknown-unknown
export CARGO_TERM_COLOR=never

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"

# Size over speed for the wasm (the GPU does the heavy work): LTO, one codegen unit, opt-level s.
# Environment overrides of the release profile, so Cargo.toml's native profile stays as it is.
export CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO:-true}
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}

echo "== cargo build --release (wasm32, features web, lto, opt-level $CARGO_PROFILE_RELEASE_OPT_LEVEL)"
cargo build --release --target "$TARGET" --no-default-features --features web --lib

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WB_VERSION" ] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
TOOLS=${BLOCKDIFF_TOOLS:-$HOME/.cache/blockdiff}
WB_ROOT=$TOOLS/wasm-bindgen-$WB_VERSION
WASM_BINDGEN=""
if command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version | awk '{print $2}')" = "$WB_VERSION" ]; then
    WASM_BINDGEN=$(command -v wasm-bindgen)
elif [ -x "$WB_ROOT/bin/wasm-bindgen" ]; then
    WASM_BINDGEN=$WB_ROOT/bin/wasm-bindgen
else
    echo "== installing wasm-bindgen-cli $WB_VERSION into $WB_ROOT (once; several minutes)"
    # Without --locked: with it, a locked dependency of the CLI is missing from the registry.
    cargo install wasm-bindgen-cli --version "$WB_VERSION" --root "$WB_ROOT"
    WASM_BINDGEN=$WB_ROOT/bin/wasm-bindgen
fi

RAW_WASM=target/$TARGET/release/blockdiff.wasm
BINDGEN_INPUT=$RAW_WASM
OPT_NOTE="wasm-opt not run"
# wasm-opt runs on rustc's module, BEFORE wasm-bindgen: binaryen 108 (Debian) turns the externref
# table that wasm-bindgen emits into a funcref table when it runs afterwards, which fails at
# instantiation ("WebAssembly.Table.set(): Argument 1 is invalid for table").
if [ -z "${NO_WASM_OPT:-}" ]; then
    if ! command -v wasm-opt >/dev/null; then
        { as_root apt-get install -y -qq binaryen >/dev/null 2>&1 ||
            { as_root apt-get update -qq >/dev/null 2>&1 && as_root apt-get install -y -qq binaryen >/dev/null 2>&1; }; } ||
            true
    fi
    if command -v wasm-opt >/dev/null; then
        echo "== $(wasm-opt --version) -O"
        OPT_WASM=target/$TARGET/release/blockdiff.opt.wasm
        # The features rustc enables by default for wasm32-unknown-unknown.
        if wasm-opt -O --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
            --enable-mutable-globals --enable-reference-types --enable-multivalue \
            "$RAW_WASM" -o "$OPT_WASM" 2>target/wasm-opt.log; then
            BINDGEN_INPUT=$OPT_WASM
            OPT_NOTE="wasm-opt -O: $(stat -c %s "$RAW_WASM") -> $(stat -c %s "$OPT_WASM") bytes before wasm-bindgen"
        else
            echo "wasm-opt failed (using the unoptimised module):" >&2
            tail -5 target/wasm-opt.log >&2
        fi
    else
        echo "== wasm-opt not available: skipped (apt-get install binaryen)"
    fi
fi

echo "== wasm-bindgen $WB_VERSION --target web"
rm -rf "$PKG"
mkdir -p "$PKG"
if ! "$WASM_BINDGEN" "$BINDGEN_INPUT" --target web --out-dir "$PKG" --out-name blockdiff_core; then
    [ "$BINDGEN_INPUT" != "$RAW_WASM" ] || exit 1
    echo "wasm-bindgen failed on the optimised module; using the unoptimised one" >&2
    OPT_NOTE="wasm-opt output rejected by wasm-bindgen"
    "$WASM_BINDGEN" "$RAW_WASM" --target web --out-dir "$PKG" --out-name blockdiff_core
fi
WASM=$PKG/blockdiff_core_bg.wasm

echo "== package files"
cp web/js/index.js web/js/index.d.ts web/js/README.md "$PKG/"
rm -f "$PKG/.gitignore"
VERSION=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
LICENSE=$(awk -F'"' '/^license = / { print $2; exit }' Cargo.toml)
DESCRIPTION=$(awk -F'"' '/^description = / { print $2; exit }' Cargo.toml)
VERSION=$VERSION LICENSE=$LICENSE DESCRIPTION=$DESCRIPTION node - "$PKG/package.json" <<'EOF'
const fs = require('fs');
const pkg = {
  name: 'blockdiff',
  version: process.env.VERSION,
  description: process.env.DESCRIPTION,
  license: process.env.LICENSE,
  type: 'module',
  main: './index.js',
  module: './index.js',
  types: './index.d.ts',
  exports: {
    '.': { types: './index.d.ts', default: './index.js' },
    './core': { types: './blockdiff_core.d.ts', default: './blockdiff_core.js' },
    './blockdiff_core_bg.wasm': './blockdiff_core_bg.wasm',
    './package.json': './package.json',
  },
  files: [
    'index.js', 'index.d.ts', 'blockdiff_core.js', 'blockdiff_core.d.ts',
    'blockdiff_core_bg.wasm', 'blockdiff_core_bg.wasm.d.ts', 'README.md',
  ],
  sideEffects: false,
  keywords: ['webgpu', 'wasm', 'diffusion', 'language-model', 'bd3lm', 'llm'],
  engines: { node: '>=18' },
};
fs.writeFileSync(process.argv[2], JSON.stringify(pkg, null, 2) + '\n');
EOF
for f in index.js index.d.ts blockdiff_core.js blockdiff_core.d.ts blockdiff_core_bg.wasm README.md package.json; do
    [ -f "$PKG/$f" ] || { echo "missing $PKG/$f" >&2; exit 1; }
done

RAW=$(stat -c %s "$WASM")
GZ=$(gzip -9 -c "$WASM" | wc -c)
echo "wasm: $WASM raw $RAW bytes ($((RAW / 1024)) KiB), gzip -9 $GZ bytes ($((GZ / 1024)) KiB); $OPT_NOTE"
echo "package: $ROOT/$PKG (blockdiff@$VERSION)"
