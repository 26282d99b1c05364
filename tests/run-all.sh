#!/usr/bin/env bash
# The whole test suite: installs dependencies, fetches the default model, builds,
# runs every test in the normal build, then again under ASan+UBSan, then the
# fuzz targets for a bounded time each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/deps-client.sh         # the openai SDK tests/serve_cli.sh drives takumi serve with
bash scripts/fetch-model.sh
bash scripts/fetch-gemma.sh
make -j2 tests
make -j2 FAULT=1 > /dev/null      # the fault-injection build tests/fault.sh walks
BUILD=build bash tests/run.sh
echo "== ASan + UBSan build =="
make -j2 SANITIZE=1 tests >/dev/null
ASAN_OPTIONS=detect_leaks=1 BUILD=build-asan bash tests/run.sh
echo "== fuzz (bounded) =="
bash tests/fuzz/run.sh
