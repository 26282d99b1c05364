#!/usr/bin/env python3
"""PyTorch + HF PEFT reference for takumi's AdaLoRA on the real default model (tests/test_peft_adalora_smollm2.c).

SmolLM2-135M-Instruct (models/SmolLM2-135M-Instruct.Q4_1.gguf, dequantized to float32 by transformers' GGUF
loader, eager attention), AdaLoraConfig(init_r=4, target_r=2, tinit=2, tfinal=3, deltaT=2, total_step=10,
lora_alpha=8, lora_dropout=0, orth_reg_weight=0.5) on q_proj and v_proj, every tensor initialised from its
name by make_train_reference.hash_init (A: bound 1/sqrt(in), B: 0.02, E: 1/sqrt(1) = 1, as
tests/smollm2_lora.h computes). Two real chat-template rows about the example bicycle shop (the model's
tokenizer), the loss the weighted cross-entropy of the answers plus PEFT's orthogonal penalty (the model's
forward wrapped as in make_adalora_reference.py, so PEFT's own code adds it). Ten AdamW steps (lr 1e-3,
weight decay 0.1 on lora_A/lora_B, clip 1) each followed by update_and_allocate(step) (PEFT's loop).

Written into tests/fixtures/train/smollm2_adalora.safetensors: ids/target/weight, "grad.<name>" for
layer 29's tensors (HF row order), "keep" [10 x 60*4] (as make_adalora_reference.py), metadata
loss (penalty included), reg, losses (10 steps + after the last update), gnorm (name -> norm of every
gradient) and the configuration.
Usage: HF_HUB_OFFLINE=1 python3 tools/make_adalora_smollm2_reference.py
"""
import json
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, N_STEPS, WD, ROOT, OUT, batch_tensors, hash_init  # noqa: E402
from make_adalora_reference import keep_row, peft_loop, weighted_ce_forward  # noqa: E402

MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TARGETS = ["q_proj", "v_proj"]
INIT_R = 4
USER = "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n"
ROWS = [(USER % "When is the shop open on Saturdays?", "On Saturdays we are open from 10am to 4pm.<|im_end|>"),
        (USER % "Do you repair electric bikes?", "Yes, our workshop repairs electric bikes of every brand.<|im_end|>")]


def main():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import AdaLoraConfig, get_peft_model
    torch.set_num_threads(2)
    d, f = os.path.split(MODEL)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    seqs = [(enc(p), enc(a)) for p, a in ROWS]
    T = max(len(p) + len(a) for p, a in seqs)
    ids_l, w_l = [], []
    for p, a in seqs:
        s = p + a
        pad = T - len(s)
        ids_l.append(s + [tok.pad_token_id or 0] * pad)
        # weight on the tokens that predict the answer (position t predicts t+1)
        w_l.append([1.0 if len(p) - 1 <= t < len(s) - 1 else 0.0 for t in range(T)])
    ids, target, weight = batch_tensors(ids_l, w_l)
    for r, (p, a) in enumerate(seqs):
        target[r, len(p) + len(a) - 1:] = -1
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    cfg = AdaLoraConfig(init_r=INIT_R, target_r=2, tinit=2, tfinal=3, deltaT=2, total_step=N_STEPS, lora_alpha=8, lora_dropout=0.0,
                        orth_reg_weight=0.5, target_modules=TARGETS, task_type="CAUSAL_LM")
    meta = {"source": "transformers %s, peft %s, torch %s, float64 (Q4_1 dequantized), eager attention" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS),
        "init_r": "4", "target_r": "2", "tinit": "2", "tfinal": "3", "deltaT": "2", "orth_reg": "0.5", "alpha": "8"}
    # float64: the truth takumi's float32 is measured against, as make_smollm2_objectives_reference.py
    base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float64, attn_implementation="eager")
    n_layers = base.config.num_hidden_layers
    model = get_peft_model(base, cfg)
    weighted_ce_forward(model.base_model.model, (ids, target, weight))
    for n, p in model.named_parameters():   # PEFT's cast to float64 re-creates ranknum as a trainable Parameter
        if "ranknum" in n:
            p.requires_grad_(False)
    named = [(n.replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(named) == 180, len(named)
    with torch.no_grad():
        for n, p in named:
            bound = 1.0 / math.sqrt(p.shape[1]) if "lora_A" in n else 0.02 if "lora_B" in n else 1.0 / math.sqrt(p.shape[-1])
            p.copy_(hash_init(n, tuple(p.shape), bound))
    out = model(input_ids=ids)
    out.loss.backward()
    with torch.no_grad():
        import torch.nn.functional as F
        V = out.logits.shape[-1]
        ce = F.cross_entropy(out.logits.reshape(-1, V), target.reshape(-1).clamp(min=0), reduction="none")
        w = weight.reshape(-1) * (target.reshape(-1) >= 0).float()
        reg = float(out.loss) - float((ce * w).sum() / w.sum())
    meta["loss"] = repr(float(out.loss))
    meta["reg"] = repr(reg)
    meta["gnorm"] = json.dumps({n: float(p.grad.norm()) for n, p in named})
    for n, p in named:
        if ".layers.29." in n:
            tensors["grad." + n] = p.grad.detach().float().clone()
    model.zero_grad()
    losses, keeps = peft_loop(model, named, ids, lambda cfg: keep_row(cfg, n_layers, TARGETS))
    meta["losses"] = json.dumps(losses)
    tensors["keep"] = torch.tensor(keeps, dtype=torch.float32)
    print("smollm2 adalora: %d tensors, loss %s (penalty %.6f), steps %s" % (len(named), meta["loss"], reg, meta["losses"]), file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "smollm2_adalora.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
