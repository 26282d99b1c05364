# Shared harness of the `takumi serve` tests (sourced from the repository root with NAME set): BIN, need (SKIP, or FAIL in
# CI), a temporary folder $tmp with the data folder D=$tmp/data, the server's PID stopped (up to 10 s: on SIGTERM it pauses a
# running job at a checkpoint) before $tmp is removed at exit, expect (a check: a condition and the failure's text, both
# eval'd), and serve_start N ARGS... (starts `takumi serve --port 0 ARGS...` logging to $tmp/server.log and sets PID and
# PORT from the Nth start's "listening on" line; exits with FAIL when it does not start); more helpers below.
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
need() {
    if [ "${CI:-}" = true ]; then echo "FAIL: required in CI: $1"; exit 1; fi
    echo "SKIP: $1"; exit 0
}
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d "/tmp/takumi_${NAME}_XXXXXX")
D=$tmp/data
PID=
serve_cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    rm -rf "$tmp"
}
trap serve_cleanup EXIT
checks=0 failures=0
expect() { checks=$((checks + 1)); if ! eval "$1"; then failures=$((failures + 1)); echo "FAIL: $(eval "echo \"$2\"")" >&2; fi; }
serve_start() {
    local n=$1; shift
    "$BIN" serve --port 0 "$@" 2>> "$tmp/server.log" &
    PID=$!; PORT=
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | sed -n "${n}p")
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "FAIL: the server did not start: $(tail -3 "$tmp/server.log")"; exit 1
}
# serve_state KEY: the value of KEY in $tmp/state.json (what the test's SDK client keeps between phases), "" if none.
serve_state() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2],""))' "$tmp/state.json" "$1"; }
# serve_kill9_at_checkpoint JOB: waits (up to 60 s) for a complete checkpoint of JOB's run folder, then kill -9 the server.
serve_kill9_at_checkpoint() {
    for _ in $(seq 1 1200); do ls "$D/jobs/$1/checkpoints" 2>/dev/null | grep -qx 'step-[0-9]*' && break; sleep 0.05; done
    kill -9 "$PID"; wait "$PID" 2>/dev/null; PID=
}
# serve_stop: SIGTERM, and a check that the server exited with 0.
serve_stop() {
    kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=
    expect "[ $rc = 0 ]" "exit status after SIGTERM: $rc"
}
# serve_finish LABEL: on failures the server log's last lines; "LABEL: N checks passed, N failed"; the exit status.
serve_finish() {
    [ "$failures" -eq 0 ] || { echo "server log (last 30 lines):"; grep -v '" 200 ' "$tmp/server.log" | tail -30; }
    echo "$1: $((checks - failures)) checks passed, $failures failed"
    [ "$failures" -eq 0 ]
}
