#!/usr/bin/env bash
# Installs (from PyPI, idempotent) the client the tests drive `takumi serve` with: the official
# `openai` Python SDK, pinned (tests/serve_openai.py). Run by tests/run-all.sh, so CI has it.
set -euo pipefail
PKG=openai==3.63.0
name=${PKG%%==*} want=${PKG##*==}
have=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$have" != "$want" ]; then
    echo "installing: $PKG" >&2
    python3 -m pip install -q "$PKG" 2>/dev/null || python3 -m pip install -q --break-system-packages "$PKG"
fi
python3 -c 'import openai' && echo "openai SDK $want: ok"
