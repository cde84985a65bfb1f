#!/usr/bin/env bash
# Desktop example end to end: builds `examples/desktop.rs`, runs it under Xvfb (wgpu on Vulkan,
# Mesa's lavapipe when there is no GPU) in its headless mode, which loads a model, generates a
# few tokens, saves a screenshot of the window and exits; then checks that the PNG is not blank.
#
#   ./scripts/desktop-test.sh                 # the demo model, or the random golden checkpoint
#   DESKTOP_MODEL=DIR ./scripts/desktop-test.sh
#
# Ends with `desktop: 1 passed, 0 failed` (exit 0) or `desktop: 0 passed, 1 failed` (exit 1).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=env.sh
. scripts/env.sh
# Xvfb, xauth (xvfb-run), and the libraries winit opens at run time on X11.
need_apt xvfb xauth mesa-vulkan-drivers libvulkan1 libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 \
    libxkbcommon0 libxkbcommon-x11-0

fail() {
    echo "desktop: $*" >&2
    echo "desktop: 0 passed, 1 failed"
    exit 1
}

# The model: $DESKTOP_MODEL, else the bundled demo model, else a temporary directory (outside the
# repository) with the random-weight golden checkpoint and the GPT-2 tokenizer (gibberish output).
MODEL=${DESKTOP_MODEL:-}
TMP=""
if [ -z "$MODEL" ]; then
    if [ -f models/bd3lm-shakespeare-tiny/config.json ]; then
        MODEL=$ROOT/models/bd3lm-shakespeare-tiny
    else
        SHARED=$ROOT/../shared
        [ -f "$SHARED/golden/bd3lm-tiny-random/model.safetensors" ] \
            || fail "no model: models/bd3lm-shakespeare-tiny/ is missing and so is $SHARED/golden"
        TMP=$(mktemp -d)
        trap 'rm -rf "$TMP"' EXIT
        cp "$SHARED/golden/bd3lm-tiny-random/config.json" "$SHARED/golden/bd3lm-tiny-random/model.safetensors" \
            "$SHARED/tokenizers/gpt2/tokenizer.json" "$TMP/"
        MODEL=$TMP
    fi
fi
echo "desktop: model $MODEL"

start=$(date +%s)
cargo build --example desktop --features desktop || fail "build failed"
echo "desktop: build took $(($(date +%s) - start)) s"
BIN=target/debug/examples/desktop
SHOT=target/desktop-screenshot.png
rm -f "$SHOT"

# winit picks X11 here (DISPLAY is set by xvfb-run, WAYLAND_DISPLAY is unset for the run).
start=$(date +%s)
env -u WAYLAND_DISPLAY timeout 600 xvfb-run -a -s "-screen 0 1280x800x24" \
    "$BIN" --model "$MODEL" --prompt "ROMEO: What light" --max-tokens 24 --seed 1 \
    --screenshot "$SHOT" --exit-after-generate
rc=$?
echo "desktop: window run took $(($(date +%s) - start)) s (exit code $rc)"
[ "$rc" = 0 ] || fail "the example exited with code $rc"
[ -s "$SHOT" ] || fail "no screenshot at $SHOT"
"$BIN" --check-png "$SHOT" || fail "the screenshot looks blank"
echo "desktop: 1 passed, 0 failed"
