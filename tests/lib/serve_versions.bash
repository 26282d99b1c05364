# Sourced by tests/serve_deploy.sh and tests/serve_dashboard.sh: their data on stories260K and two model versions.
# serve_versions_data DIR: DIR/d.jsonl (24 prompt/completion records) and DIR/big.jsonl (400 chat records).
# serve_versions_train BIN S DIR: LoRAs v1 (2 epochs on d.jsonl, seed 5) and v2 (3 epochs, seed 6) into DIR/v1, DIR/v2
# (as tests/serve_cli.sh); exits the test with FAIL on an error.
serve_versions_data() {
    local names=(Lily Tom Sue Ben Max Mia Sam Ann) things=(ball cat dog tree cake car boat kite) i n t
    for i in $(seq 0 23); do
        n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
        printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
    done > "$1/d.jsonl"
    for i in $(seq 0 399); do
        printf '{"messages":[{"role":"user","content":"Tell me about %s, number %d."},{"role":"assistant","content":"%s had a %s and it was %d."}]}\n' \
            "${names[$((i % 8))]}" "$i" "${names[$(((i + 3) % 8))]}" "${things[$((i % 8))]}" "$i"
    done > "$1/big.jsonl"
}
serve_versions_train() {
    local v
    for v in 1 2; do
        "$1" train --model "$2/hf" --tokenizer "$2/llama2c/tok512.bin" --data "$3/d.jsonl" --max-seq-len 160 --samples 0 --threads 1 \
            --seed $((4 + v)) --epochs $((1 + v)) --lr 5e-3 --out "$3/v$v" > "$3/train$v.out" 2>&1 || { echo "FAIL: train v$v: $(tail -2 "$3/train$v.out")"; exit 1; }
    done
}
