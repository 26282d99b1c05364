#!/usr/bin/env python3
"""PyTorch + HF PEFT reference for takumi's AdaLoRA (tests/test_peft_adalora.c).

stories260K (../shared/models/stories260K/hf, float32, eager attention), the batch of
tools/make_peft_methods_reference.py, AdaLoraConfig(init_r=4, target_r=2, tinit=2, tfinal=3,
deltaT=2, total_step=10, lora_alpha=8, lora_dropout=0, orth_reg_weight=0.5, all seven linears):
PEFT's initialisation (torch seed 1234: A, B ~ N(0, 0.02^2)) with E = 0.1 * randn (seed 5) instead
of zeros so that every gradient is non-trivial.

The loss is PEFT's own: AdaLoraModel.forward adds orth_reg_weight * mean ||A A^T - I||_F,
||B^T B - I||_F to the model output's loss, here the weighted cross-entropy of the batch (the HF
model's forward is wrapped to return it as its loss, so PEFT's code adds the penalty).
Ten AdamW steps (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.1 on lora_A/lora_B, none on
lora_E as takumi decays matrices only; global-norm clipping at 1, in place as torch does), each
followed by model.base_model.update_and_allocate(step) before zero_grad (PEFT's documented loop,
step 0-based), so the rank allocator masks at steps 4 and 6 (cubic budget), fixes the final
pattern at step 7 (= total_step - tfinal) and re-applies it at 8 and 9.

Written into tests/fixtures/train/stories260k_adalora.safetensors: ids/target/weight,
"adalora.init.<name>", "adalora.grad.<name>" (names without the adapter name), "adalora.logits"
(first 64 vocabulary entries), "adalora.keep" [10 x modules*init_r] (after each step's allocation:
1 kept, 0 masked, -1 no rank_pattern yet; modules by layer, then q,k,v,o,gate,up,down), metadata
adalora_loss (with the penalty), adalora_reg (the penalty alone) and adalora_losses (the 10 steps'
losses, then the loss after the last update, penalty included).

Usage: HF_HUB_OFFLINE=1 python3 tools/make_adalora_reference.py
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, N_STEPS, SHARED, TARGETS, WD, batch_tensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "train")
INIT_R = 4


def weighted_ce_forward(hf_model, batch):
    """The HF model's forward, its loss the batch's weighted cross-entropy (PEFT adds its penalty to it)."""
    orig = hf_model.forward
    ids_, target, weight = batch

    def fwd(*args, **kwargs):
        out = orig(*args, **kwargs)
        logits = out.logits   # the model's dtype (float64 for the SmolLM2 reference)
        V = logits.shape[-1]
        ce = F.cross_entropy(logits.reshape(-1, V), target.reshape(-1).clamp(min=0), reduction="none")
        w = weight.reshape(-1) * (target.reshape(-1) >= 0).float()
        out.loss = (ce * w).sum() / w.sum()
        return out
    hf_model.forward = fwd


def keep_row(cfg, n_layers, targets=TARGETS):
    """The kept triplets after an allocation, module by module (layer, then targets' order): 1 kept, 0 masked, -1 no pattern yet."""
    pat = cfg.rank_pattern
    row = []
    for i in range(n_layers):
        for t in targets:
            grp = "self_attn" if t in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            key = "model.layers.%d.%s.%s.lora_E" % (i, grp, t)
            if not pat:
                row += [-1.0] * INIT_R
                continue
            v = pat.get(key + ".default", pat.get(key))
            row += [1.0 if b else 0.0 for b in v]
    return row


def peft_loop(model, named, ids, keep_of):
    """PEFT's documented AdaLoRA loop for N_STEPS: AdamW (weight decay on lora_A/lora_B only, as takumi decays
    matrices), global-norm clipping, update_and_allocate(step) before zero_grad. Returns the losses (then the
    loss after the last update) and keep_of(config) after every step's allocation."""
    decay = [p for n, p in named if "lora_A" in n or "lora_B" in n]
    rest = [p for n, p in named if not ("lora_A" in n or "lora_B" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    losses, keeps = [], []
    pc = model.peft_config["default"]
    for step in range(N_STEPS):
        opt.zero_grad()
        loss = model(input_ids=ids).loss
        losses.append(float(loss))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], CLIP)
        opt.step()
        model.base_model.update_and_allocate(step)
        keeps.append(keep_of(pc))
    with torch.no_grad():
        losses.append(float(model(input_ids=ids).loss))
    return losses, keeps


def main():
    from transformers import AutoModelForCausalLM
    from peft import AdaLoraConfig, get_peft_model
    torch.set_num_threads(2)
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids, target, weight = batch_tensors([seq[:16], seq[16:32]], [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8])
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    cfg = AdaLoraConfig(init_r=INIT_R, target_r=2, tinit=2, tfinal=3, deltaT=2, total_step=N_STEPS, lora_alpha=8, lora_dropout=0.0,
                        orth_reg_weight=0.5, target_modules=TARGETS, task_type="CAUSAL_LM")
    meta = {"source": "transformers %s, peft %s, torch %s, float32, eager attention" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS),
        "init_r": "4", "target_r": "2", "tinit": "2", "tfinal": "3", "deltaT": "2", "orth_reg": "0.5", "alpha": "8"}
    torch.manual_seed(1234)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    n_layers = base.config.num_hidden_layers
    model = get_peft_model(base, cfg)
    weighted_ce_forward(model.base_model.model, (ids, target, weight))
    named = [(n.replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for n, p in named:
            if "lora_E" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    for n, p in named:
        tensors["adalora.init." + n] = p.detach().clone()
    out = model(input_ids=ids)
    with torch.no_grad():
        V = out.logits.shape[-1]
        ce = F.cross_entropy(out.logits.reshape(-1, V), target.reshape(-1).clamp(min=0), reduction="none")
        w = weight.reshape(-1) * (target.reshape(-1) >= 0).float()
        reg = float(out.loss) - float((ce * w).sum() / w.sum())
    out.loss.backward()
    meta["adalora_loss"] = repr(float(out.loss))
    meta["adalora_reg"] = repr(reg)
    tensors["adalora.logits"] = out.logits[:, :, :64].detach().contiguous()
    for n, p in named:
        tensors["adalora.grad." + n] = p.grad.detach().clone()
    model.zero_grad()

    losses, keeps = peft_loop(model, named, ids, lambda cfg: keep_row(cfg, n_layers))
    meta["adalora_losses"] = json.dumps(losses)
    tensors["adalora.keep"] = torch.tensor(keeps, dtype=torch.float32)
    print("adalora: %d tensors, loss %s (penalty %.6f), steps %s, kept at the end %d of %d" % (
        len(named), meta["adalora_loss"], reg, meta["adalora_losses"], int(sum(1 for v in keeps[-1] if v > 0)), len(keeps[-1])),
        file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stories260k_adalora.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
