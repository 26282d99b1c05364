#!/usr/bin/env bash
# The library's layers (docs/ARCHITECTURE.md) depend only downwards: a file in src/<layer>/
# includes headers of its own layer and of the layers listed before it, never of a later one
# (public headers in include/takumi/ are open to all), and only src/backend/ includes a
# backend's own headers (backend/cpu/…). Prints each offending include.
set -u
cd "$(dirname "$0")/.."
order=(core dist backend io tokenizer ops model peft objective infer data eval train serve)
checks=0 failures=0
for ((i = 0; i < ${#order[@]}; i++)); do
    layer=${order[$i]}
    [ -d "src/$layer" ] || { echo "FAIL: src/$layer missing (update tests/layers.sh and docs/ARCHITECTURE.md)"; failures=$((failures + 1)); continue; }
    later=("${order[@]:$((i + 1))}")
    [ ${#later[@]} -eq 0 ] && continue
    pat=$(IFS='|'; echo "${later[*]}")
    while IFS= read -r hit; do
        [ -n "$hit" ] || continue
        failures=$((failures + 1)); echo "FAIL: upward include (src/$layer may not use a later layer): $hit"
    done < <(grep -rnE "#include \"($pat)/" "src/$layer" 2>/dev/null)
    checks=$((checks + 1))
done
# only the backend layer knows a backend's own kernels: everything else calls the dispatchers
checks=$((checks + 1))
while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    failures=$((failures + 1)); echo "FAIL: backend bypassed (use backend/backend.h or ops/ops.h): $hit"
done < <(grep -rnE '#include "backend/[a-z]+/' src | grep -v '^src/backend/')
# every folder of src/ is a known layer
for d in src/*/; do
    d=${d#src/}; d=${d%/}
    checks=$((checks + 1))
    case " ${order[*]} " in *" $d "*) ;; *) failures=$((failures + 1)); echo "FAIL: src/$d is not in the layer order" ;; esac
done
echo "layers: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
