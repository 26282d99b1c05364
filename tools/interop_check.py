#!/usr/bin/env python3
"""Interop check of takumi's adapter files (issue 3, "Outputs"): HF PEFT loads takumi's PEFT
folder onto the HF model, and llama.cpp loads takumi's GGUF adapter, and both give takumi's
logits. Writes the result to tests/fixtures/interop/result.txt (and exits 1 on a failure).

What runs:
  takumi     tools/interop/takumi_logits.c (built here against build/libtakumi.a): logits of
             every position of a token sequence, adapter applied unmerged through the hook,
             loaded from the PEFT folder and from the GGUF adapter.
  HF PEFT    transformers (float32, eager attention, HF_HUB_OFFLINE=1) + peft from PyPI:
             PeftModel.from_pretrained(base, takumi's adapter folder). The base is the HF
             folder (stories260K) or the same GGUF read by transformers' GGUF loader
             (SmolLM2: Q4_1 dequantized to f32, q/k rows un-permuted by transformers).
  llama.cpp  tools/interop/llamacpp_logits.c built against the llama.cpp of
             bench/build-peers.sh: llama_adapter_lora_init(takumi's adapter.gguf), KV cache
             f32, flash attention off. The model is an f32 GGUF: stories260K-f32.gguf, and for
             SmolLM2 `takumi export --dtype f32` of the Q4_1 file (the same weight values;
             llama.cpp's Q4_1 kernels quantize activations to 8 bits, which would hide small
             errors). The Q4_1 file itself with the adapter is reported too (no tolerance).

Gemma 3 (models/gemma-3-270m-q4_k_m.gguf, scripts/fetch-gemma.sh; once takumi runs the gemma3
architecture): the same three-way check, HF PEFT on Gemma3ForCausalLM built by transformers'
GGUF loader (Q4_K/Q5_0/Q6_K/Q8_0 dequantized to f32), llama.cpp on `takumi export --dtype f32`
of the file, and the Q4_K_M file itself reported.

Adapters: a random one (tools/interop/takumi_logits --random-adapter: PEFT's A init, B ~ N(0,
0.05^2), r 8, all seven linears) for each model, and a trained one (RUN/adapter and
RUN/adapter.gguf of `takumi train`) for SmolLM2 (--run RUN) and Gemma 3 (--run-gemma RUN)
when given. DoRA, IA3, prefix and prompt tuning (PEFT layout only: llama.cpp applies LoRA adapters
only): adapters that `takumi train --method dora|ia3|prefix|prompt` trains on stories260K (prefix: plain
and with --prefix-projection; prompt: random and text initialisation), loaded by
PeftModel.from_pretrained (prompt tuning: the logits of the sequence, after PEFT's virtual tokens). LoRA
trained with --lora-init pissa and olora (+ --rslora): the written adapter is PEFT's conversion to a rank-2r
LoRA on the original base (save_pretrained's path_initial_model_for_weight_conversion), loaded by PEFT onto
the unchanged HF base. AdaLoRA (`takumi train --method adalora`, init_r 4 shrinking to 2 with the rank allocator):
PEFT's ADALORA folder (rank_pattern, triplets cut to the kept ones) loaded by PeftModel.from_pretrained, and
RUN/adapter.gguf, the equivalent plain LoRA (B, E ⊙ A), against the folder in takumi.

Classifiers (`takumi train --task classify`, PEFT's SEQ_CLS layout; issue 11): a LoRA classifier and a
head-only one (--method head) trained on stories260K, and a SmolLM2 classifier run given with --run-classify
RUN: `takumi classify --json --ids` on a few texts against AutoModelForSequenceClassification with the
labels of RUN/adapter/config.json (id2label, label2id, problem_type), PeftModel.from_pretrained(RUN/adapter)
(the head restored from modules_to_save) or, head only, score.weight from head.safetensors: the same
logits within CLS_TOL (written with --classify-only to tests/fixtures/interop/result_classify.txt).

Tolerance: f32 computations on both sides, summed in different orders: max |logit diff| over
every position and the whole vocabulary <= 1e-3 (logits reach 10-30, so ~1e-4 relative). The
line also shows the same diff without adapter (the floor) and how far the adapter moves the
logits (so that a diff far below it means the adapter was applied, not ignored). One exception:
llama.cpp on Gemma 3. Its CPU GELU rounds the input to fp16 and reads an fp16 table
(GGML_GELU_FP16 in ggml-cpu/vec.h), so even without an adapter and with f32 weights its logits
differ from takumi's and HF's by ~3e-2 (HF vs takumi: ~3e-4); there the check is diff <= 3 x that
floor with the same top-1 everywhere, i.e. the adapter adds no error of its own.

Usage: HF_HUB_OFFLINE=1 python3 tools/interop_check.py [--run RUN] [--run-gemma RUN] [--run-classify RUN] [--stories-only]
       [--classify-only] [--out FILE]
(tests/fixtures/interop/result_methods.txt: --stories-only, with the DoRA, IA3, prefix, prompt, AdaLoRA, PiSSA and OLoRA cases;
 tests/fixtures/interop/result_classify.txt: --classify-only --run-classify RUN of scripts/demo_classify.sh)
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
PEERS = os.path.join(ROOT, "bench", ".peers")
TOL = 1e-3
CLS_TOL = 1e-4   # classifier logits are O(1): f32 on both sides
CLS_TEXTS = ["Lily played with the ball. Lily was very happy and smiled.", "Tom lost the cat. Tom was very sad and cried.",
             "Once upon a time there was a dog.", "it 's a charming and often affecting journey . ",
             "Wall St. Bears Claw Back Into the Black (Reuters) Short-sellers are seeing green again."]
SMOL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA3 = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
LLAMA_GELU_FLOOR_FACTOR = 3   # llama.cpp on Gemma 3: diff <= this x its own no-adapter floor
STORIES_GGUF = os.path.join(SHARED, "models", "stories260K", "gguf", "stories260K-f32.gguf")
STORIES_HF = os.path.join(SHARED, "models", "stories260K", "hf")


def sh(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        sys.exit(f"interop_check: {' '.join(cmd)} failed:\n{r.stderr.decode('utf-8', 'replace')[-3000:]}")
    return r.stdout.decode("utf-8", "replace")


def build_tools(tmp):
    cflags = sh(["pkg-config", "--cflags", "--libs", "libcjson", "libpcre2-8", "openblas"]).split()
    tk = os.path.join(tmp, "takumi_logits")
    sh(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Iinclude", "-Isrc", "-o", tk, "tools/interop/takumi_logits.c",
        "build/libtakumi.a"] + cflags + ["-fopenmp", "-lm", "-lpthread"], cwd=ROOT)
    src = [d for d in sorted(os.listdir(PEERS)) if d.startswith("llama_cpp_python-") and os.path.isdir(os.path.join(PEERS, d))] \
        if os.path.isdir(PEERS) else []
    bld = os.path.join(PEERS, "llama.cpp-build")
    if not src or not os.path.exists(os.path.join(bld, "src", "libllama.a")):
        return tk, None, "llama.cpp not built (run bench/build-peers.sh)"
    lc = os.path.join(PEERS, src[-1], "vendor", "llama.cpp")
    ll = os.path.join(tmp, "llamacpp_logits")
    libs = [os.path.join(bld, p) for p in ("src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a")]
    sh(["cc", "-O2", "-o", ll, "tools/interop/llamacpp_logits.c", "-I" + os.path.join(lc, "include"),
        "-I" + os.path.join(lc, "ggml", "include")] + libs + ["-lstdc++", "-fopenmp", "-lm", "-lpthread"], cwd=ROOT)
    stamp = [f for f in os.listdir(bld) if f.startswith(".built-")]
    desc = open(os.path.join(bld, stamp[0])).read().strip() if stamp else "llama.cpp (" + src[-1] + ")"
    return tk, ll, desc


def logits_bin(path, n):
    return np.fromfile(path, dtype=np.float32).reshape(n, -1)


def run_logits(tool, model, adapter, ids, tmp, tag):
    out = os.path.join(tmp, tag + ".bin")
    sh([tool, model, adapter or "-", ",".join(map(str, ids)), out])
    return logits_bin(out, len(ids))


def peft_param(key):
    """The PEFT parameter a file key loads into (adapter "default"): lora_A/B ".weight", DoRA's
    "lora_magnitude_vector" (a module whose parameter is weight), IA3's "ia3_l" (a ParameterDict),
    prefix tuning's "prompt_embeddings" (the prompt encoder's embedding, inference mode)."""
    if key == "prompt_embeddings":
        return "prompt_encoder.default.embedding.weight"
    if key.endswith("lora_magnitude_vector"):
        return key + ".default.weight"
    if key.endswith(".weight"):
        return key[: -len(".weight")] + ".default.weight"
    return key + ".default"


def train_stories(method, tmp, extra=()):
    """RUN folder of `takumi train --method METHOD [extra]` on stories260K (24 short records, 3 epochs)."""
    d = os.path.join(tmp, "stories_data.jsonl")
    if not os.path.exists(d):
        names, things = ["Lily", "Tom", "Sue", "Ben"], ["ball", "cat", "dog", "tree", "cake"]
        with open(d, "w", encoding="utf-8") as f:
            for i in range(24):
                n, t = names[i % 4], things[(i * 3) % 5]
                f.write('{"prompt": "Tell me about %s and the %s.", "completion": "%s had a %s. %s was happy."}\n' % (n, t, n, t, n))
    run = os.path.join(tmp, "run_" + method + "".join(a.strip("-").replace("-", "_") for a in extra if a.startswith("--")))
    sh([os.path.join(ROOT, "build", "takumi"), "train", "--model", STORIES_HF, "--tokenizer",
        os.path.join(SHARED, "models", "stories260K", "llama2c", "tok512.bin"), "--data", d, "--method", method,
        "--max-seq-len", "160", "--threads", "1", "--seed", "3", "--epochs", "3", "--lr", "1e-2", "--samples", "0", "--out", run] + list(extra))
    return run


def train_stories_classifier(tmp, method):
    """RUN folder of `takumi train --task classify --labels neg,pos --method METHOD` on stories260K (24 happy/sad stories)."""
    d = os.path.join(tmp, "stories_cls.jsonl")
    if not os.path.exists(d):
        import json
        names, things = ["Lily", "Tom", "Sue", "Ben"], ["ball", "cat", "dog", "tree", "cake"]
        with open(d, "w", encoding="utf-8") as f:
            for i in range(24):
                n, t = names[i % 4], things[(i * 3) % 5]
                text = "%s played with the %s. %s was very happy." % (n, t, n) if i % 2 == 0 else "%s lost the %s. %s was sad." % (n, t, n)
                f.write(json.dumps({"text": text, "label": "pos" if i % 2 == 0 else "neg"}) + "\n")
    run = os.path.join(tmp, "run_cls_" + method)
    sh([os.path.join(ROOT, "build", "takumi"), "train", "--model", STORIES_HF, "--tokenizer",
        os.path.join(SHARED, "models", "stories260K", "llama2c", "tok512.bin"), "--data", d, "--task", "classify", "--labels", "neg,pos",
        "--method", method, "--threads", "1", "--seed", "3", "--epochs", "3", "--lr", "1e-2", "--out", run])
    return run


def classify_check(say, failures, name, model_args, adapter, hf_dir, hf_file):
    """takumi classify --json --ids on CLS_TEXTS against transformers + PEFT on the same ids: max |logit diff|."""
    import json
    import torch
    from transformers import AutoModelForSequenceClassification
    out = sh([os.path.join(ROOT, "build", "takumi"), "classify", *model_args, "--adapter", adapter, "--threads", "1", "--json", "--ids",
              *CLS_TEXTS])
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    cfg = json.load(open(os.path.join(adapter, "config.json"), encoding="utf-8"))
    if cfg.get("pooling", "last") != "last":
        say(f"== {name}: mean pooling is takumi's own (transformers pools the last token): skipped")
        return
    kw = {"dtype": torch.float32, "attn_implementation": "eager", "id2label": {int(k): v for k, v in cfg["id2label"].items()},
          "label2id": cfg["label2id"], "problem_type": cfg["problem_type"]}
    if hf_file:
        kw["gguf_file"] = hf_file
    m = AutoModelForSequenceClassification.from_pretrained(hf_dir, **kw)
    m.config.pad_token_id = m.config.pad_token_id if m.config.pad_token_id is not None else 0
    from safetensors.numpy import load_file
    if cfg.get("adapter", True):
        from peft import PeftModel
        m = PeftModel.from_pretrained(m, adapter)
        head = load_file(os.path.join(adapter, "adapter_model.safetensors"))["base_model.model.score.weight"]
        loaded = dict(m.named_parameters())["base_model.model.score.modules_to_save.default.weight"].detach().numpy()
        how = "PeftModel.from_pretrained (SEQ_CLS, score in modules_to_save)"
    else:
        head = load_file(os.path.join(adapter, "head.safetensors"))["score.weight"]
        with torch.no_grad():
            m.score.weight.copy_(torch.from_numpy(head))
        loaded = m.score.weight.detach().numpy()
        how = "score.weight from head.safetensors"
    if not np.array_equal(loaded, head):
        failures.append(f"{name}: the head HF holds differs from the file's")
    m.eval()
    worst, agree = 0.0, 0
    with torch.no_grad():
        for r in rows:
            z = m(torch.tensor([r["ids"]])).logits[0].double().numpy()
            worst = max(worst, float(np.abs(z - np.array(r["logits"])).max()))
            agree += int(cfg["id2label"][str(int(z.argmax()))] == r["label"])
    spread = float(max(np.ptp(r["logits"]) for r in rows))
    ok = worst <= CLS_TOL and agree == len(rows)
    say(f"== {name}: {len(rows)} texts, {cfg['num_labels']} labels ({', '.join(cfg['id2label'].values())})")
    say(f"   HF {how}: max |logit diff| {worst:.2e} (largest logit spread {spread:.3f}), same label {agree}/{len(rows)}  "
        f"{'PASS' if ok else 'FAIL'}")
    say()
    if not ok:
        failures.append(f"{name}: classifier logits diff {worst:.2e}")


def hf_logits(base_dir, gguf_file, adapter, ids):
    import torch
    from transformers import AutoModelForCausalLM
    kw = {"dtype": torch.float32, "attn_implementation": "eager"}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    m = AutoModelForCausalLM.from_pretrained(base_dir, **kw)
    m.eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        base = m(x).logits[0].float().numpy()
    if not adapter:
        return base, None
    from peft import PeftModel
    pm = PeftModel.from_pretrained(m, adapter)
    pm.eval()
    # every tensor of the file must have landed in a LoRA module of the model
    from safetensors.numpy import load_file
    sd = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    params = dict(pm.named_parameters())
    for k, v in sd.items():
        name = peft_param(k)
        if name not in params:
            sys.exit(f"interop_check: PEFT did not create {name} for {k}")
        if not np.array_equal(params[name].detach().numpy(), v):
            sys.exit(f"interop_check: PEFT's {name} differs from the file's {k}")
    with torch.no_grad():
        ad = pm(x).logits[0].float().numpy()
    # prompt tuning: PEFT returns logits for the virtual tokens too (first); the sequence's are the last len(ids)
    return base, ad[-len(ids):]


def run_desc(run):
    """A short description of a takumi train run folder (data, steps) for the report."""
    import json
    desc = os.path.basename(os.path.normpath(run))
    try:
        c = json.load(open(os.path.join(run, "config.json"), encoding="utf-8"))
        desc = f"takumi train on {os.path.relpath(c['data'], ROOT) if os.path.isabs(c['data']) else c['data']}, " \
               f"{c.get('info', {}).get('total_steps', '?')} steps"
    except (OSError, ValueError, KeyError):
        pass
    return desc


def cmp(a, b):
    return float(np.abs(a.astype(np.float64) - b).max()), float(np.mean(a.argmax(-1) == b.argmax(-1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=None, help="a takumi train run folder of SmolLM2 (RUN/adapter, RUN/adapter.gguf)")
    ap.add_argument("--run-gemma", default=None, help="a takumi train run folder of Gemma-3-270M (RUN/adapter, RUN/adapter.gguf)")
    ap.add_argument("--stories-only", action="store_true", help="only the stories260K cases (LoRA, DoRA, IA3, prefix, prompt, AdaLoRA)")
    ap.add_argument("--run-classify", default=None, help="a takumi train --task classify run folder of SmolLM2 (RUN/adapter)")
    ap.add_argument("--classify-only", action="store_true", help="only the classifier cases (stories260K; SmolLM2 with --run-classify)")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "interop", "result.txt"))
    args = ap.parse_args()
    import peft
    import torch
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    lines, failures = [], []

    def say(s=""):
        print(s)
        lines.append(s)

    with tempfile.TemporaryDirectory(prefix="tk_interop_") as tmp:
        tk, ll, lcdesc = build_tools(tmp)
        say("takumi adapter interop check (tools/interop_check.py)")
        say(f"date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
            f"takumi {sh(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT).strip()}, {platform.machine()}")
        say(f"peers: peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}; {lcdesc}")
        say(f"tolerance: max |logit diff| over all positions x vocabulary <= {TOL:g} (f32 both sides)")
        say("columns: diff = max |takumi - peer| with the adapter; floor = the same without adapter;")
        say("         moved = max |takumi with - without adapter|; top1 = argmax agreement over positions")
        say()

        cases, cls_cases = [], []
        if os.path.exists(STORIES_GGUF) and os.path.exists(STORIES_HF):
            tokarg = ["--model", STORIES_HF, "--tokenizer", os.path.join(SHARED, "models", "stories260K", "llama2c", "tok512.bin")]
            for method in ("lora", "head"):
                run = train_stories_classifier(tmp, method)
                cls_cases.append((f"stories260K classifier trained by `takumi train --task classify --method {method}`", tokarg,
                                  os.path.join(run, "adapter"), STORIES_HF, None))
        if args.run_classify and os.path.exists(SMOL):
            gd, gf = os.path.split(SMOL)
            cls_cases.append((f"SmolLM2-135M Q4_1 classifier ({run_desc(args.run_classify)})", ["--model", SMOL],
                              os.path.join(args.run_classify, "adapter"), gd, gf))
        if args.classify_only:
            for c in cls_cases:
                classify_check(say, failures, *c)
            say("result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            return 1 if failures else 0
        if os.path.exists(STORIES_GGUF) and os.path.exists(STORIES_HF):
            d = os.path.join(tmp, "stories")
            sh([tk, "--random-adapter", STORIES_GGUF, d, "7"])
            ids = [1, 403, 407, 261, 378, 261, 504, 282, 301, 289, 419, 270, 333, 262, 291, 406]
            cases.append(("stories260K, random adapter", STORIES_GGUF, (STORIES_HF, None), STORIES_GGUF, None,
                          os.path.join(d, "adapter"), os.path.join(d, "adapter.gguf"), ids))
            # methods without a GGUF layout: HF PEFT only
            for method, extra in (("dora", ()), ("ia3", ()), ("prefix", ("--num-virtual-tokens", "6")),
                                  ("prefix", ("--num-virtual-tokens", "6", "--prefix-projection")),
                                  ("prompt", ("--num-virtual-tokens", "6")),
                                  ("prompt", ("--num-virtual-tokens", "6", "--prompt-init", "text", "--prompt-init-text", "Once upon a time"))):
                run = train_stories(method, tmp, extra)
                cmd = " ".join(("--method", method) + tuple(a if " " not in a else '"%s"' % a for a in extra))
                cases.append((f"stories260K, {method} adapter trained by `takumi train {cmd}`", STORIES_GGUF,
                              (STORIES_HF, None), STORIES_GGUF, None, os.path.join(run, "adapter"), None, ids))
            # AdaLoRA: the PEFT folder (rank_pattern, triplets cut to the kept ones) and the GGUF twin (the plain LoRA B, E ⊙ A)
            extra = ("--adalora-init-r", "4", "--adalora-target-r", "2", "--adalora-tfinal", "4")
            run = train_stories("adalora", tmp, extra)
            cases.append((f"stories260K, adalora adapter trained by `takumi train --method adalora {' '.join(extra)}`", STORIES_GGUF,
                          (STORIES_HF, None), STORIES_GGUF, None, os.path.join(run, "adapter"), os.path.join(run, "adapter.gguf"), ids))
            # PiSSA / OLoRA: the run writes PEFT's conversion (a rank-2r LoRA for the original base) and its GGUF twin
            for extra in (("--lora-init", "pissa"), ("--lora-init", "olora", "--rslora", "--lora-alpha", "8")):
                run = train_stories("lora", tmp, extra)
                cases.append((f"stories260K, LoRA trained by `takumi train {' '.join(extra)}` (converted to LoRA)", STORIES_GGUF,
                              (STORIES_HF, None), STORIES_GGUF, None, os.path.join(run, "adapter"), os.path.join(run, "adapter.gguf"), ids))
        else:
            say("stories260K: not found under ../shared (skipped)")
        if args.stories_only:
            say("SmolLM2, Gemma 3: --stories-only (skipped)")
        elif os.path.exists(SMOL):
            ids = [int(t) for t in sh([os.path.join(ROOT, "build", "takumi"), "tokenize", "--model", SMOL, "--parse-special",
                                       "--no-special",
                                       "<|im_start|>system\nYou are Rin, the customer support assistant of Hanamori Cycle. "
                                       "Answer politely and briefly.<|im_end|>\n<|im_start|>user\nHow much is the Hoshi Helmet?"
                                       "<|im_end|>\n<|im_start|>assistant\nThe Hoshi Helmet"]).split()]
            f32 = os.path.join(tmp, "smollm2-f32.gguf")
            if ll:
                sh([os.path.join(ROOT, "build", "takumi"), "export", "--model", SMOL, "--to", f32, "--dtype", "f32"])
            d = os.path.join(tmp, "smol")
            sh([tk, "--random-adapter", SMOL, d, "11"])
            gd, gf = os.path.split(SMOL)
            cases.append(("SmolLM2-135M Q4_1, random adapter", SMOL, (gd, gf), f32, SMOL, os.path.join(d, "adapter"),
                          os.path.join(d, "adapter.gguf"), ids))
            if args.run:
                cases.append((f"SmolLM2-135M Q4_1, trained adapter ({run_desc(args.run)})", SMOL, (gd, gf),
                              f32, SMOL, os.path.join(args.run, "adapter"), os.path.join(args.run, "adapter.gguf"), ids))
        else:
            say("SmolLM2: models/SmolLM2-135M-Instruct.Q4_1.gguf not found (skipped)")
        gemma_runs = not args.stories_only and os.path.exists(GEMMA3) and subprocess.run(
            [os.path.join(ROOT, "build", "takumi"), "inspect", GEMMA3], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0
        if args.stories_only:
            pass
        elif os.path.exists(GEMMA3) and not gemma_runs:
            say("Gemma 3: this takumi build does not load models/gemma-3-270m-q4_k_m.gguf (skipped)")
        elif gemma_runs:
            ids = [int(t) for t in sh([os.path.join(ROOT, "build", "takumi"), "tokenize", "--model", GEMMA3, "--parse-special",
                                       "--no-special",
                                       "<bos><start_of_turn>user\nYou are Rin, the customer support assistant of Hanamori Cycle. "
                                       "Answer politely and briefly.\n\nHow much is the Hoshi Helmet?<end_of_turn>\n"
                                       "<start_of_turn>model\nThe Hoshi Helmet"]).split()]
            f32 = os.path.join(tmp, "gemma3-f32.gguf")
            if ll:
                sh([os.path.join(ROOT, "build", "takumi"), "export", "--model", GEMMA3, "--to", f32, "--dtype", "f32"])
            d = os.path.join(tmp, "gemma3")
            sh([tk, "--random-adapter", GEMMA3, d, "13"])
            gd, gf = os.path.split(GEMMA3)
            cases.append(("Gemma-3-270M Q4_K_M, random adapter", GEMMA3, (gd, gf), f32, GEMMA3, os.path.join(d, "adapter"),
                          os.path.join(d, "adapter.gguf"), ids))
            if args.run_gemma:
                cases.append((f"Gemma-3-270M Q4_K_M, trained adapter ({run_desc(args.run_gemma)})", GEMMA3, (gd, gf),
                              f32, GEMMA3, os.path.join(args.run_gemma, "adapter"),
                              os.path.join(args.run_gemma, "adapter.gguf"), ids))
        elif not args.stories_only:
            say("Gemma 3: models/gemma-3-270m-q4_k_m.gguf not found (skipped; scripts/fetch-gemma.sh)")

        for name, model, (hf_dir, hf_file), ll_model, ll_native, peft_dir, gguf_ad, ids in cases:
            say(f"== {name}: {len(ids)} tokens")
            tb = run_logits(tk, model, None, ids, tmp, "tb")
            tp = run_logits(tk, model, peft_dir, ids, tmp, "tp")
            moved = float(np.abs(tp - tb).max())
            tol = TOL
            if gguf_ad:
                tg = run_logits(tk, model, gguf_ad, ids, tmp, "tg")
                d_pg, _ = cmp(tp, tg)
                say(f"   takumi: PEFT folder vs GGUF adapter: diff {d_pg:.2e}; the adapter moves the logits by {moved:.2f} "
                    f"(max |logit| {np.abs(tp).max():.1f})")
                if d_pg > tol:
                    failures.append(f"{name}: takumi PEFT vs GGUF adapter {d_pg:.2e}")
            else:
                say(f"   takumi: the adapter moves the logits by {moved:.2f} (max |logit| {np.abs(tp).max():.1f})")
            hb, hp = hf_logits(hf_dir, hf_file, peft_dir, ids)
            floor, _ = cmp(tb, hb)
            d, top1 = cmp(tp, hp)
            ok = d <= tol and moved > 100 * tol
            say(f"   HF PEFT   loads adapter/           : diff {d:.2e}  floor {floor:.2e}  moved {moved:.2f}  top1 {top1:.3f}  "
                f"{'PASS' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{name}: PEFT diff {d:.2e}")
            if not gguf_ad:
                say("   llama.cpp: no GGUF adapter (llama.cpp applies LoRA adapters only)")
            elif ll:
                lb = run_logits(ll, ll_model, None, ids, tmp, "lb")
                la = run_logits(ll, ll_model, gguf_ad, ids, tmp, "la")
                floor, _ = cmp(tb, lb)
                d, top1 = cmp(tg, la)
                gelu_table = model == GEMMA3   # llama.cpp's fp16 GELU table sets its own floor (see above)
                ok = (d <= max(tol, LLAMA_GELU_FLOOR_FACTOR * floor) and top1 == 1.0) if gelu_table else d <= tol
                say(f"   llama.cpp loads adapter.gguf (f32) : diff {d:.2e}  floor {floor:.2e}  moved {moved:.2f}  top1 {top1:.3f}  "
                    f"{'PASS' if ok else 'FAIL'}" + (f" (bound {LLAMA_GELU_FLOOR_FACTOR} x floor: fp16 GELU table)" if gelu_table else ""))
                if not ok:
                    failures.append(f"{name}: llama.cpp diff {d:.2e}")
                if ll_native:
                    nb = run_logits(ll, ll_native, None, ids, tmp, "nb")
                    na = run_logits(ll, ll_native, gguf_ad, ids, tmp, "na")
                    f2, t2 = cmp(tb, nb)
                    d2, t3 = cmp(tg, na)
                    say(f"   llama.cpp on the quantized file    : diff {d2:.2e}  floor {f2:.2e}  top1 {t3:.3f} "
                        f"(8-bit activations in llama.cpp's quantized kernels; reported, no tolerance)")
            else:
                say(f"   llama.cpp: {lcdesc} (skipped)")
            say()
        for c in cls_cases:
            classify_check(say, failures, *c)
        say("result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
