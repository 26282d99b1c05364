#!/usr/bin/env bash
# Installs (from PyPI, idempotent) the Python packages of the reference scripts in tools/ (the
# fixtures the tests compare against: PyTorch, transformers, PEFT, TRL, sacrebleu, rouge-score,
# rapidfuzz, gguf) and of the peers in bench/ (PyTorch + PEFT / TRL). The tests themselves need only
# python3's standard library; these versions are the ones the recorded fixtures and benchmark
# numbers were made with.
set -euo pipefail
PKGS=(torch==2.15.0 transformers==5.25.0 peft==0.21.2 trl==1.16.0 sacrebleu==2.6.0 rouge-score==0.1.2 rapidfuzz==3.14.6
      gguf==0.19.0 safetensors==0.8.0 websocket-client==1.9.2)
missing=()
for p in "${PKGS[@]}"; do
    name=${p%%==*} want=${p##*==}
    have=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
    [ "$have" = "$want" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    python3 -m pip install -q "${missing[@]}"
fi
python3 -c 'import torch, transformers, peft, trl, sacrebleu, rouge_score, rapidfuzz, gguf' && echo "python reference packages: ok"
