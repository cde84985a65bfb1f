#!/usr/bin/env bash
# Browser tests of the npm package, the demo and chat, in real headless Chromium (WebGPU;
# SwiftShader when there is no GPU). Idempotent: installs Debian's chromium and playwright-core
# (npm ci, never a downloaded browser), builds web/pkg with web/build.sh, writes the chat test
# model (target/test-models/sdar-chat, `cargo run --example make_test_sdar`), runs
# `node --test web/test/` and ends with a line "N passed, M failed".
# Usage: web/test.sh        env: SKIP_BUILD=1 (reuse web/pkg), BLOCKDIFF_TEST_MODEL=/url/path/
#                                (a model directory under the repository; default the bundled
#                                /models/bd3lm-shakespeare-tiny/), CHROMIUM=/path/to/chromium
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/env.sh   # need_apt (the same helper the other scripts use)

if [ -z "${CHROMIUM:-}" ]; then need_apt chromium; fi
command -v node >/dev/null || need_apt nodejs npm

# playwright-core only (it drives the system Chromium; `playwright install` is never run).
want=$(node -p "require('./web/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./web/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
    echo "== npm ci (playwright-core $want)"
    (cd web && npm ci --no-audit --no-fund)
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    web/build.sh
fi

# The tiny random SDAR model of chat.test.mjs: Qwen3's tokenizer and chat template over random
# weights, written by a native example (deterministic; SKIP_BUILD=1 reuses an existing one).
CHAT_MODEL=target/test-models/sdar-chat
if [ -z "${SKIP_BUILD:-}" ] || [ ! -s "$CHAT_MODEL/model.safetensors" ]; then
    echo "== chat test model ($CHAT_MODEL)"
    scripts/fetch-qwen-tokenizer.sh
    CARGO_TERM_COLOR=never cargo run --quiet --example make_test_sdar -- "$CHAT_MODEL"
fi

# The q4 copy of the demo model that quant.test.mjs loads (blockdiff convert).
Q4_MODEL=target/test-models/demo-q4
if [ -z "${SKIP_BUILD:-}" ] || [ ! -s "$Q4_MODEL/model.safetensors" ]; then
    echo "== q4 test model ($Q4_MODEL)"
    CARGO_TERM_COLOR=never cargo run --quiet --bin blockdiff -- convert models/bd3lm-shakespeare-tiny "$Q4_MODEL" --to q4
fi

mkdir -p web/test/artifacts
TAP=web/test/artifacts/results.tap
echo "== node --test web/test/"
set +e
(cd web && node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="test/artifacts/results.tap" \
    test/*.test.mjs)
rc=$?
set -e
pass=$(awk '/^# pass /{print $3}' "$TAP" | tail -1)
fail=$(awk '/^# fail /{print $3}' "$TAP" | tail -1)
skipped=$(awk '/^# skipped /{print $3}' "$TAP" | tail -1)
cancelled=$(awk '/^# cancelled /{print $3}' "$TAP" | tail -1)
fail=$((${fail:-0} + ${cancelled:-0}))
echo "${pass:-0} passed, ${fail} failed${skipped:+, $skipped skipped}"
echo "artifacts: web/test/artifacts/ (demo.png, denoising.png, metrics.json, browser.log, chat-metrics.json, chat-browser.log)"
exit $rc
