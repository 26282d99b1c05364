#!/usr/bin/env python3
"""Compares takumi's token ids with two references for the real Gemma-3-270M GGUF.

All read the same file, models/gemma-3-270m-q4_k_m.gguf (scripts/fetch-gemma.sh):
- Google's own tokenizer library, SentencePiece, on a model rebuilt from the GGUF's pieces,
  scores and types (BPE, byte fallback, identity normalizer, no dummy prefix, spaces escaped
  to U+2581); llama.cpp's converter wrote the user-defined whitespace pieces with their
  U+2581 turned into spaces ("pre-normalized"), so they are turned back here. SentencePiece
  does not parse control tokens in text, so the text is first split at control-token texts
  (what HF and llama.cpp do with parse_special). The primary reference, with llama.cpp where
  the two differ (a literal U+2581 next to spaces: see the agreement file);
- HF transformers AutoTokenizer.from_pretrained(folder, gguf_file=name) (offline): its GGUF
  converter builds a GemmaTokenizer (BPE over the SentencePiece pieces, spaces -> U+2581,
  byte fallback, no dummy prefix) with the control and user-defined pieces as added tokens;
- llama.cpp's own tokenizer (llama-tokenize, built by bench/build-peers.sh into the
  git-ignored bench/.peers/), run once per string (--no-escape), on a subset (about --llama-n
  strings, plus every string where takumi and SentencePiece differ) since each run loads the
  262k-piece vocabulary again; skipped with a note when not built;
- takumi through `takumi tokenize --jsonl` (batch mode, GGUF loader), and again through its
  tokenizer.json loader on the tokenizer.json that transformers writes.

The strings are those of tools/compare_tokenizer_hf.py (alpaca en/zh, dolly15k-ja, gsm8k,
tinyshakespeare, takumi's own code, emoji, whitespace, unicode, numbers) plus Gemma's own
pieces: control tokens (<start_of_turn>, <bos>, ...), the user-defined whitespace runs
(spaces, tabs, newlines up to 31) and HTML tags, mixed into text. HF's encode parses added
tokens, so takumi runs with --parse-special and llama.cpp with parse_special (its default);
nobody adds BOS/EOS.

Writes tests/fixtures/tokenizer/gemma3_agreement.txt (summary, per source, mismatches) and
tests/fixtures/tokenizer/gemma3_ref.jsonl (a small sample of strings with SentencePiece's ids,
read by tests/test_tokenizer.c).

usage: python3 tools/compare_tokenizer_gemma3.py [--model models/gemma-3-270m-q4_k_m.gguf]
"""
import argparse
import json
import os
import random
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_tokenizer_hf import ROOT, gather, run_takumi  # noqa: E402


def gemma_strings(rng):
    out = []
    ctrl = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<mask>", "<unk>", "<unused0>",
            "<start_of_image>", "<end_of_image>", "[multimodal]"]
    words = ["user\n", "model\n", " Hi there", "こんにちは", "\n", "text ", " ", "<b>bold</b>", "x"]
    for _ in range(150):
        parts = [rng.choice(ctrl) if rng.random() < 0.4 else rng.choice(words) for _ in range(rng.randint(1, 8))]
        out.append(("gemma_special", "".join(parts)))
    tags = ["<table>", "</table>", "<tr>", "<td>", "</td>", "<h1>", "</h1>", "<strong>", "<em>", "<s>", "</s>",
            "<code>", "</code>", "<a>", "<div>", "</div>", "<li>", "<bbox>", "<span >", "< td>", "<TD>"]
    for _ in range(150):
        parts = [rng.choice(tags) if rng.random() < 0.5 else rng.choice(["Hello", " world", "1", "\n", "  ", "表"])
                 for _ in range(rng.randint(1, 10))]
        out.append(("gemma_html", "".join(parts)))
    runs = [" ", "\t", "\n", "\r\n", "\u3000"]
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.6:
                parts.append(rng.choice(runs) * rng.randint(1, 40))
            else:
                parts.append(rng.choice(["def f():", "x = 1", "return y", "▁", "word", "日本", "🦙", "#"]))
        out.append(("gemma_ws_runs", "".join(parts)))
    out.append(("gemma_ws_runs", " " * 31 + "a" + " " * 32 + "b" + " " * 100))
    out.append(("gemma_ws_runs", "\t" * 31 + "\t" * 33 + "\n" * 31 + "\n" * 70))
    out.append(("gemma_ws_runs", "▁▁ ▁ already-escaped ▁text"))
    return out


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _field(num, wire, payload):
    if wire == 0:
        return _varint(num << 3) + _varint(payload)
    if wire == 5:
        return _varint(num << 3 | 5) + struct.pack("<f", payload)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def spm_from_gguf(path):
    """A SentencePiece ModelProto (serialized; field numbers from sentencepiece_model.proto) from
    the GGUF's tokenizer.ggml.* arrays, and the list of control-token texts."""
    from gguf import GGUFReader
    r = GGUFReader(path)

    def arr(k, conv):
        f = r.fields[k]
        return [conv(f.parts[i]) for i in f.data]
    toks = arr("tokenizer.ggml.tokens", lambda p: bytes(p).decode("utf-8"))
    scores = arr("tokenizer.ggml.scores", lambda p: float(p[0]))
    types = arr("tokenizer.ggml.token_type", lambda p: int(p[0]))
    out = bytearray()
    for t, sc, ty in zip(toks, scores, types):  # SentencePiece: piece 1, score 2, type 3
        if ty == 4:  # USER_DEFINED: undo the converter's "pre-normalized" spaces
            t = t.replace(" ", "\u2581")
        out += _field(1, 2, _field(1, 2, t.encode("utf-8")) + _field(2, 5, sc) + _field(3, 0, ty))
    ids = {k: int(r.fields["tokenizer.ggml.%s_token_id" % k].contents()) for k in ("unknown", "bos", "eos", "padding")}
    # TrainerSpec: model_type 3 (BPE = 2), byte_fallback 35, unk/bos/eos/pad ids 40..43
    out += _field(2, 2, _field(3, 0, 2) + _field(35, 0, 1) + _field(40, 0, ids["unknown"]) + _field(41, 0, ids["bos"])
                  + _field(42, 0, ids["eos"]) + _field(43, 0, ids["padding"]))
    # NormalizerSpec: name 1, add_dummy_prefix 3, remove_extra_whitespaces 4, escape_whitespaces 5
    add_prefix = bool(r.fields["tokenizer.ggml.add_space_prefix"].contents())
    out += _field(3, 2, _field(1, 2, b"identity") + _field(3, 0, int(add_prefix)) + _field(4, 0, 0) + _field(5, 0, 1))
    control = {t: i for i, (t, ty) in enumerate(zip(toks, types)) if ty == 3}
    return bytes(out), control


def run_spm(model_bytes, control, texts):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    pat = re.compile("|".join(re.escape(t) for t in sorted(control, key=len, reverse=True)))
    res = []
    for s in texts:
        ids, pos = [], 0
        for m in pat.finditer(s):
            if m.start() > pos:
                ids += sp.encode(s[pos:m.start()])
            ids.append(control[m.group(0)])
            pos = m.end()
        if pos < len(s):
            ids += sp.encode(s[pos:])
        res.append(ids)
    return res


def run_llama(binary, model, texts):
    res = []
    for s in texts:
        r = subprocess.run([binary, "-m", model, "--stdin", "--ids", "--no-bos", "--no-escape", "--log-disable"],
                           input=s.encode("utf-8"), capture_output=True, check=True)
        line = [l for l in r.stdout.decode("utf-8", "replace").split("\n") if l.startswith("[")]
        if len(line) != 1:
            sys.exit("llama-tokenize printed no id list for %r: %s" % (s[:60], r.stdout[-300:]))
        res.append(json.loads(line[0]))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--takumi", default=os.path.join(ROOT, "build", "takumi"))
    ap.add_argument("--llama-tokenize", default=os.path.join(ROOT, "bench", ".peers", "llama.cpp-build", "bin", "llama-tokenize"))
    ap.add_argument("--llama-n", type=int, default=600, help="about this many strings are checked against llama.cpp")
    ap.add_argument("--hf-dir", default="/tmp/gemma3_hf")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer", "gemma3_agreement.txt"))
    ap.add_argument("--sample", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer", "gemma3_ref.jsonl"))
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import sentencepiece
    import transformers
    from transformers import AutoTokenizer
    rng = random.Random(a.seed)
    items = gather(rng) + gemma_strings(rng)
    texts = [s for _, s in items]
    N = len(texts)
    model_bytes, control = spm_from_gguf(a.model)
    ref = run_spm(model_bytes, control, texts)
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(a.model)), gguf_file=os.path.basename(a.model))
    hf = tok(texts, add_special_tokens=False)["input_ids"]
    tok.save_pretrained(a.hf_dir)

    tk = run_takumi(a.takumi, ["--model", a.model], texts)
    tkj = run_takumi(a.takumi, ["--tokenizer", os.path.join(a.hf_dir, "tokenizer.json")], texts)

    llama_idx, llama, step = [], [], 0
    if os.access(a.llama_tokenize, os.X_OK):
        step = max(1, N // max(1, a.llama_n))
        # every step-th string, and every string where takumi and SentencePiece differ
        llama_idx = sorted(set(range(0, N, step)) | {i for i in range(N) if tk[i] != ref[i]})
        llama = run_llama(a.llama_tokenize, a.model, [texts[i] for i in llama_idx])
    lmap = dict(zip(llama_idx, llama))

    def per_source(x, y, idx=None):
        by = {}
        for i in (idx if idx is not None else range(N)):
            n, m = by.get(items[i][0], (0, 0))
            by[items[i][0]] = (n + (x[i] == y[i]), m + 1)
        return by

    def total(by):
        return sum(v[0] for v in by.values()), sum(v[1] for v in by.values())

    llama_full = [lmap.get(i) for i in range(N)]
    cmp = [("takumi vs SentencePiece", per_source(tk, ref)),
           ("HF vs SentencePiece", per_source(hf, ref)),
           ("takumi vs HF", per_source(tk, hf))]
    if llama:
        cmp += [("takumi vs llama.cpp", per_source(tk, llama_full, llama_idx)),
                ("SentencePiece vs llama.cpp", per_source(ref, llama_full, llama_idx)),
                ("HF vs llama.cpp", per_source(hf, llama_full, llama_idx))]
    n_bytes = sum(len(s.encode("utf-8")) for s in texts)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("Gemma-3-270M tokenizer (%s), %d strings, %d bytes, seed %d; no BOS/EOS; control-token text parsed\n"
                % (os.path.basename(a.model), N, n_bytes, a.seed))
        for name, by in cmp:
            f.write("%-28s %d/%d\n" % (name + ":", *total(by)))
        f.write("takumi tokenizer.json loader vs HF (on the tokenizer.json transformers writes): %d/%d\n"
                % (sum(1 for p, q in zip(tkj, hf) if p == q), N))
        f.write("references: SentencePiece %s (model rebuilt from the GGUF), HF transformers %s "
                "AutoTokenizer(gguf_file=...), llama.cpp %s\n"
                % (sentencepiece.__version__, transformers.__version__,
                   "llama-tokenize (every %d-th string + those where takumi and SentencePiece differ)" % step if llama else "not run (llama-tokenize not built)"))
        f.write("generated by tools/compare_tokenizer_gemma3.py\n\nper source:\n")
        f.write("  %-16s" % "" + "".join("%14s" % n.replace(" vs ", "/").replace("SentencePiece", "spm")
                                         .replace("llama.cpp", "llama") for n, _ in cmp) + "\n")
        for src in sorted({s for s, _ in items}):
            f.write("  %-16s" % src + "".join("%14s" % ("%d/%d" % by[src] if src in by else "-") for _, by in cmp) + "\n")
        diffs = [i for i in range(N) if tk[i] != ref[i] or (i in lmap and lmap[i] != tk[i])]
        f.write("\nstrings where takumi differs from SentencePiece or llama.cpp: %d\n" % len(diffs))
        f.write("(takumi follows llama.cpp: the GGUF stores Gemma's whitespace pieces with spaces where the\n"
                "SentencePiece model has U+2581, so a literal U+2581 in the text next to spaces cannot join them;\n"
                "SentencePiece and HF see one run of U+2581)\n")
        for i in diffs[:30]:
            f.write("- [%s] %s\n  spm:    %s\n  takumi: %s\n" % (items[i][0], json.dumps(texts[i], ensure_ascii=False)[:200],
                                                           ref[i][:40], tk[i][:40]))
            if i in lmap:
                f.write("  llama:  %s\n" % lmap[i][:40])
            f.write("  hf:     %s\n" % hf[i][:40])
        hd = [i for i in range(N) if hf[i] != ref[i]]
        f.write("\nstrings where HF differs from SentencePiece: %d (first 5)\n" % len(hd))
        for i in hd[:5]:
            f.write("- [%s] %s\n  spm: %s\n  hf:  %s\n" % (items[i][0], json.dumps(texts[i], ensure_ascii=False)[:200],
                                                       ref[i][:40], hf[i][:40]))
    # Regression sample for the C test: short strings from every source with SentencePiece's ids,
    # where llama.cpp (where it ran) gives the same ids; strings with a literal U+2581 only where
    # llama.cpp confirmed them (the GGUF cannot tell it from a space in whitespace pieces, and
    # llama.cpp and SentencePiece differ there).
    sample = []
    for src in sorted({s for s, _ in items}):
        picks = [i for i in range(N) if items[i][0] == src and len(texts[i]) <= 300 and lmap.get(i, ref[i]) == ref[i]
                 and (i in lmap or "\u2581" not in texts[i])][:6]
        sample += [{"source": src, "text": texts[i], "ids": ref[i]} for i in picks]
    with open(a.sample, "w", encoding="utf-8") as f:
        for r in sample:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(open(a.out, encoding="utf-8").read().split("\n\n")[0])
    print("per-source counts and differences in", a.out)
    # pass: takumi equals llama.cpp wherever it ran, and every difference from SentencePiece was
    # checked against llama.cpp (without llama.cpp: takumi equals SentencePiece everywhere)
    if llama:
        ok = all(tk[i] == l for i, l in lmap.items()) and all(i in lmap for i in range(N) if tk[i] != ref[i])
    else:
        ok = total(cmp[0][1])[0] == N
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
