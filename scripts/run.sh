#!/usr/bin/env bash
# The main job: block diffusion text generation with the bundled demo model on the GPU (lavapipe
# when no GPU is present). Extra arguments go to `blockdiff`, e.g. ./scripts/run.sh generate --prompt "To be"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ $# -eq 0 ]; then set -- generate --prompt "ROMEO:" --max-tokens 120 --strategy confidence --top-p 0.9; fi
cargo run --release --quiet --bin blockdiff -- "$@"
