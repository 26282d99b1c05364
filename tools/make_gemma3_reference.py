#!/usr/bin/env python3
"""Reference numbers for the real Gemma-3-270M (models/gemma-3-270m-q4_k_m.gguf, fetched by
scripts/fetch-gemma.sh), for tests/test_model_gemma3.c.

1. HF transformers logits on the SAME GGUF: AutoModelForCausalLM.from_pretrained(dir,
   gguf_file=name, torch_dtype=float32) builds Gemma3ForCausalLM (text) and dequantizes every
   tensor to float32 with the `gguf` package; the forward runs in float32 (eager attention,
   sliding window 512 on 5 of every 6 layers, local RoPE base 10000, global 1e6). For each
   prompt: token ids, per stored position the top-32 ids/logits, the logsumexp and the largest
   |logit| over the whole vocabulary, and 20 greedy ids (HF generate, KV cache) with the
   smallest top-1/top-2 logit gap met on the way. Prompts: a Gemma 3 chat turn (the official
   template, tools/make_chat_fixtures.py GEMMA3), English prose, and a tinyshakespeare passage
   longer than the 512-token sliding window (there only every 8th position and the last 4 are
   stored, to keep the fixture small).
2. Perplexity on a fixed text (the first --ppl-bytes bytes of ../shared/data/tinyshakespeare/
   input.txt) by llama.cpp's method (llama-perplexity): tokens with BOS, chunks of --ctx tokens,
   each chunk's first token replaced by BOS, only the second half of each chunk scored; computed
   here with HF on the float32 model, and with llama.cpp's own llama-perplexity when it is built
   (bench/build-peers.sh -> bench/.peers/llama.cpp-build/bin), whose exact command and output
   line are recorded.

Writes tests/fixtures/model/gemma3_ref.json.

usage: HF_HUB_OFFLINE=1 python3 tools/make_gemma3_reference.py [--model M] [--ctx 512] [--ppl-bytes 10000]
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_chat_fixtures import GEMMA3  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED") or os.path.join(ROOT, "..", "shared")
N_TOP = 32
N_GREEDY = 20


def r6(x):
    return round(float(x), 6)


def hf_ppl(model, ids, ctx, bos):
    """llama-perplexity's method on a float32 HF model: returns (ppl, mean nll, scored tokens, chunks, per-chunk nll sums)."""
    first = ctx // 2
    n_chunk = len(ids) // ctx
    nll, count, per = 0.0, 0, []
    for c in range(n_chunk):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        chunk[0] = bos
        with torch.no_grad():
            logits = model(torch.tensor([chunk])).logits[0].double()
        lp = torch.log_softmax(logits, dim=-1)
        s = 0.0
        for t in range(first, ctx - 1):
            s -= float(lp[t, ids[c * ctx + t + 1]])
            count += 1
        per.append(s)
        nll += s
    return math.exp(nll / count), nll / count, count, n_chunk, per


def llama_ppl(binary, model, text_path, ctx, threads):
    cmd = [binary, "-m", model, "-f", text_path, "-c", str(ctx), "-b", str(ctx), "-t", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    out = r.stdout + r.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    if r.returncode != 0 or not m:
        sys.exit("llama-perplexity failed:\n" + out[-2000:])
    chunks = re.search(r"calculating perplexity over (\d+) chunks", out)
    bld = os.path.dirname(os.path.dirname(binary))
    stamp = [f for f in os.listdir(bld) if f.startswith(".built-")]
    return {"command": " ".join(["llama-perplexity", "-m", os.path.relpath(model, ROOT), "-f", "<text>"] + cmd[5:]),
            "ppl": float(m.group(1)), "ppl_stderr": float(m.group(2)),
            "chunks": int(chunks.group(1)) if chunks else None,
            "build": open(os.path.join(bld, stamp[0])).read().strip() if stamp else None,
            "final_line": m.group(0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "model", "gemma3_ref.json"))
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--ppl-bytes", type=int, default=10000)
    ap.add_argument("--llama-perplexity", default=os.path.join(ROOT, "bench", ".peers", "llama.cpp-build", "bin", "llama-perplexity"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    d, f = os.path.split(os.path.abspath(a.model))
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    assert next(model.parameters()).dtype == torch.float32
    cfg = model.config
    print("config:", cfg.model_type, cfg.layer_types[:6], cfg.sliding_window, cfg.rope_parameters, file=sys.stderr)

    chat, _ = render_jinja_template(
        conversations=[[{"role": "system", "content": "You answer briefly."},
                        {"role": "user", "content": "What is the capital of France?"}]],
        chat_template=GEMMA3, add_generation_prompt=True, bos_token="<bos>", eos_token="<eos>")
    shakes = open(os.path.join(SHARED, "data", "tinyshakespeare", "input.txt"), encoding="utf-8").read()
    long_text = shakes[60000:62600]
    # Prompts whose 20 greedy steps never meet a near-tie (smallest top-1/top-2 gap >= 0.08, i.e.
    # several times the 1e-3 x max|logit| tolerance), so that greedy equality is a fair test.
    prompts = [
        # name, text, add BOS (the chat text has its own <bos>), store every k-th position
        ("chat", chat[0], False, 1),
        ("english", "Water boils at 100 degrees Celsius at sea level. The boiling point decreases as altitude "
                    "increases because", True, 1),
        ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n",
         True, 1),
        ("long", long_text, True, 8),
    ]
    import transformers
    out = {"model": f,
           "source": "transformers %s, torch %s, float32, GGUF dequantized by transformers/gguf, eager attention"
                     % (transformers.__version__, torch.__version__),
           "n_top": N_TOP, "prompts": []}
    for name, text, add_bos, every in prompts:
        ids = tok(text, add_special_tokens=add_bos)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        T = len(ids)
        pos = [t for t in range(T) if t % every == 0 or t >= T - 4]
        lg = logits[pos]
        top = torch.topk(lg, N_TOP, dim=-1)
        entry = {"name": name, "text": text, "add_bos": add_bos, "ids": ids, "positions": pos,
                 "top_ids": top.indices.tolist(),
                 "top_logits": [[r6(x) for x in row] for row in top.values],
                 "logsumexp": [r6(x) for x in torch.logsumexp(lg, dim=-1)],
                 "max_abs_logit": [r6(x) for x in lg.abs().max(dim=-1).values]}
        with torch.no_grad():
            g = model.generate(torch.tensor([ids]), max_new_tokens=N_GREEDY, do_sample=False, output_scores=True,
                               return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
        greedy = g.sequences[0, T:].tolist()
        gaps = [float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in g.scores]
        entry["greedy_ids"] = greedy
        entry["greedy_text"] = tok.decode(greedy)
        entry["greedy_min_gap"] = r6(min(gaps))
        out["prompts"].append(entry)
        print(f"{name}: {T} tokens, {len(pos)} positions stored, greedy (min gap {min(gaps):.3f}): "
              f"{entry['greedy_text']!r}", file=sys.stderr)

    text = open(os.path.join(SHARED, "data", "tinyshakespeare", "input.txt"), "rb").read()[:a.ppl_bytes]
    ids = tok(text.decode("utf-8"), add_special_tokens=True)["input_ids"]
    ppl, mnll, count, n_chunk, per = hf_ppl(model, ids, a.ctx, tok.bos_token_id)
    P = {"text": "../shared/data/tinyshakespeare/input.txt", "bytes": a.ppl_bytes, "n_tokens": len(ids),
         "first_ids": ids[:8], "last_ids": ids[-8:], "ctx": a.ctx, "chunks": n_chunk, "scored": count,
         "method": "llama-perplexity: BOS-prefixed tokens, chunks of ctx tokens whose first token is set to BOS, "
                   "tokens ctx/2+1 .. ctx-1 of each chunk scored",
         "hf": {"ppl": r6(ppl), "mean_nll": r6(mnll), "chunk_nll_sums": [r6(x) for x in per]}}
    print(f"perplexity (HF float32, {n_chunk} chunks of {a.ctx}, {count} scored): {ppl:.4f}", file=sys.stderr)
    if os.access(a.llama_perplexity, os.X_OK):
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as t:
            t.write(text)
        try:
            P["llama_cpp"] = llama_ppl(a.llama_perplexity, a.model, t.name, a.ctx, a.threads)
        finally:
            os.unlink(t.name)
        print("llama.cpp:", P["llama_cpp"]["final_line"], file=sys.stderr)
    else:
        print("llama-perplexity not built (bench/build-peers.sh): llama.cpp number not recorded", file=sys.stderr)
    out["perplexity"] = P
    with open(a.out, "w", encoding="utf-8") as fo:
        json.dump(out, fo, ensure_ascii=False)
        fo.write("\n")
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
