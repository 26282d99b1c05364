#!/usr/bin/env bash
# The model-level tests that check against reference numbers (llama2.c logits and greedy ids, PyTorch / Hugging
# Face fixtures of tiny models, finite differences through whole models, LoRA and prefix tuning) run again with
# TAKUMI_BACKEND=ref, the portable reference backend, and must pass there too: every tensor op of the library
# reaches a backend through the table (src/backend/backend.h), and ref fills the whole table. (test_backend,
# first, checks that the variable really selected ref.) Skipped when the build has no ref (BACKENDS without ref).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if ! nm -g "$BUILD/libtakumi.a" 2>/dev/null | grep -q ' tk_ref_backend$'; then
    echo "SKIP: $BUILD/libtakumi.a has no ref backend (built with BACKENDS without ref)"
    exit 0
fi
export TAKUMI_BACKEND=ref OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
checks=0 failures=0
for t in test_backend test_model_stories test_model_arch test_arch test_backward test_lora test_peft_prefix; do
    checks=$((checks + 1))
    if ! out=$("$BUILD/tests/$t" 2>&1); then
        failures=$((failures + 1))
        echo "FAIL: $t on the ref backend:"
        echo "$out" | tail -n 20 | sed 's/^/    /'
    else
        echo "ok: $t on ref: $(echo "$out" | tail -n 1)"
    fi
done
echo "backend_ref: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
