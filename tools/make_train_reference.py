#!/usr/bin/env python3
"""PyTorch reference for takumi's training step (tests/test_train_ref.c).

Builds the same models from the same weights with HF transformers (float32, eager
attention) and HF PEFT, runs the same batch with the same LoRA initialisation (dropout 0)
and writes, per model, one safetensors file into tests/fixtures/train/:

  stories260k_ref.safetensors  (../shared/models/stories260K/hf, tied head, HF q/k order)
    ids/target/weight [B x T], logits[:, :, :64], loss; LoRA (r=4, alpha=8, all seven
    targets): the A/B initialisation (PEFT's kaiming-uniform A, random B so that dA is
    not trivially zero), every LoRA gradient, 10 AdamW-step losses; full fine-tuning:
    every weight gradient (2-D tensors: every 8th row, to keep the file small; 1-D whole)
    and 10 AdamW-step losses.
  smollm2_ref.safetensors      (models/SmolLM2-135M-Instruct.Q4_1.gguf, dequantized by
    transformers' GGUF loader, which also un-permutes llama.cpp's q/k rows into HF order:
    takumi keeps GGUF order, so the C test permutes q/k lora_B rows on the way in and
    back on the way out). LoRA r=4, alpha=8, rsLoRA, all seven targets, on every layer;
    A/B initialised by a counter hash both sides compute identically (storing 30 layers of
    init would be 5 MB); gradients of layers 0 and 29; loss, logits[:, :32]; 10 AdamW steps.
    Computed in float64 (the truth takumi's float32 is measured against).

Loss = sum_t weight[t] * CE(logits[t], target[t]) / sum_t weight[t] (target -1 = none).
AdamW: lr 1e-3, betas 0.9/0.999, eps 1e-8, weight_decay 0.1 on matrices (not on norms /
biases, as takumi), constant schedule, global-norm clipping at 1.0 (torch's
clip_grad_norm_ formula: max_norm / (norm + 1e-6)).

Scalars go to the safetensors __metadata__ as repr() strings.
Usage: HF_HUB_OFFLINE=1 python3 tools/make_train_reference.py [--only stories260k|smollm2]
"""
import json
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "train")
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
N_STEPS = 10
LR, WD, CLIP = 1e-3, 0.1, 1.0


def mask64(x):
    return x & np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix(x):
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hash_init(name, shape, bound):
    """Uniform(-bound, bound) values from (name, index): u = (splitmix(fnv1a(name) + i) >> 40) / 2^24,
    value = float32(2u - 1) * float32(bound) (exact steps, then one float32 multiply; the C test
    computes the same)."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        h = splitmix(np.uint64(fnv1a(name)) + np.arange(n, dtype=np.uint64))
    u = (h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    v = (np.float32(2.0) * u - np.float32(1.0)) * np.float32(bound)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def loss_fn(model, ids, target, weight):
    logits = model(input_ids=ids).logits
    V = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, V), target.reshape(-1).clamp(min=0), reduction="none")
    w = weight.reshape(-1) * (target.reshape(-1) >= 0).float()
    return (ce * w).sum() / w.sum(), logits


def make_opt(params_named):
    decay = [p for n, p in params_named if p.ndim >= 2]
    no_decay = [p for n, p in params_named if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=LR, betas=(0.9, 0.999), eps=1e-8)


def train_losses(model, params_named, ids, target, weight):
    opt = make_opt(params_named)
    losses = []
    for _ in range(N_STEPS):
        opt.zero_grad()
        loss, _ = loss_fn(model, ids, target, weight)
        losses.append(float(loss))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params_named], CLIP)
        opt.step()
    with torch.no_grad():
        loss, _ = loss_fn(model, ids, target, weight)
    losses.append(float(loss))
    return losses


def lora_model(base, r, alpha, rslora, init):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=TARGETS, use_rslora=rslora, bias="none")
    model = get_peft_model(base, cfg)
    named = [(n.replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():
        for n, p in named:
            init(n, p)
    return model, named


def batch_tensors(ids, weight):
    ids = torch.tensor(ids, dtype=torch.long)
    B, T = ids.shape
    target = torch.full((B, T), -1, dtype=torch.long)
    target[:, :-1] = ids[:, 1:]
    return ids, target, torch.tensor(weight, dtype=torch.float32)


def stories():
    from transformers import AutoModelForCausalLM
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids = [seq[:16], seq[16:32]]
    weight = [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8]
    ids, target, weight = batch_tensors(ids, weight)
    tensors, meta = {}, {}

    def load():
        return AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")

    # ---- LoRA ----
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(99)

    def init(n, p):
        if "lora_B" in n:
            p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        tensors["init." + n] = p.detach().clone()  # A: PEFT's own kaiming-uniform init

    model, named = lora_model(load(), 4, 8, False, init)
    loss, logits = loss_fn(model, ids, target, weight)
    loss.backward()
    meta["lora_loss"] = repr(float(loss))
    tensors["logits"] = logits[:, :, :64].detach().contiguous()
    for n, p in named:
        tensors["grad." + n] = p.grad.detach().clone()
    model.zero_grad()
    meta["lora_losses"] = json.dumps(train_losses(model, named, ids, target, weight))

    # ---- full fine-tuning ----
    model = load()
    named = [(n, p) for n, p in model.named_parameters()]
    loss, _ = loss_fn(model, ids, target, weight)
    loss.backward()
    meta["full_loss"] = repr(float(loss))
    for n, p in named:
        g = p.grad.detach()
        tensors["fgrad." + n] = (g[::8] if g.ndim == 2 else g).contiguous().clone()
    model.zero_grad()
    meta["full_losses"] = json.dumps(train_losses(model, named, ids, target, weight))
    meta["full_grad_row_stride"] = "8"
    return tensors, meta, ids, target, weight


def smollm2_batch(tok):
    """The one-row SmolLM2 chat batch: (ids, target, weight), loss on the answer's tokens."""
    prompt = "<|im_start|>user\nWhen is the shop open on Saturdays?<|im_end|>\n<|im_start|>assistant\n"
    answer = "On Saturdays we are open from 10am to 4pm.<|im_end|>\n"
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tok(answer, add_special_tokens=False)["input_ids"]
    seq = p_ids + a_ids
    # weight on the tokens whose target is part of the answer (the last target predicts the trailing "\n": no loss)
    w = [0.0] * len(seq)
    for t in range(len(p_ids) - 1, len(seq) - 2):
        w[t] = 1.0
    return batch_tensors([seq], [w])


def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    ids, target, weight = smollm2_batch(tok)
    # float64: the truth takumi's float32 is measured against (PyTorch's own float32 cross-entropy loses ~2e-4 of
    # these gradients to 1 - p rounding on the confidently predicted chat-template tokens)
    base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float64, attn_implementation="eager")
    tensors, meta = {}, {}
    r = 4

    def init(n, p):
        if "lora_A" in n:
            p.copy_(hash_init(n, tuple(p.shape), 1.0 / math.sqrt(p.shape[1])))
        else:
            p.copy_(hash_init(n, tuple(p.shape), 0.02))

    model, named = lora_model(base, r, 8, True, init)
    loss, logits = loss_fn(model, ids, target, weight)
    loss.backward()
    meta["lora_loss"] = repr(float(loss))
    tensors["logits"] = logits[:, :, :32].detach().float().contiguous()
    keep = ("layers.0.", "layers.29.")
    for n, p in named:
        if any(k in n for k in keep):
            tensors["grad." + n] = p.grad.detach().float().clone()
    model.zero_grad()
    meta["lora_losses"] = json.dumps(train_losses(model, named, ids, target, weight))
    return tensors, meta, ids, target, weight


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    versions = "transformers %s, peft %s, torch %s, float32, eager attention" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__)
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    for name, fn in (("stories260k", stories), ("smollm2", smollm2)):
        if only and name != only:
            continue
        tensors, meta, ids, target, weight = fn()
        tensors["ids"] = ids.to(torch.int32).contiguous()
        tensors["target"] = target.to(torch.int32).contiguous()
        tensors["weight"] = weight.contiguous()
        meta.update({"source": versions, "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP),
                     "steps": str(N_STEPS)})
        path = os.path.join(OUT, name + "_ref.safetensors")
        save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
        print("%s: loss %s, lora steps %s, %d tensors, %d bytes" % (
            name, meta["lora_loss"], meta["lora_losses"], len(tensors), os.path.getsize(path)), file=sys.stderr)
        if "full_losses" in meta:
            print("  full: loss %s, steps %s" % (meta["full_loss"], meta["full_losses"]), file=sys.stderr)


if __name__ == "__main__":
    main()
