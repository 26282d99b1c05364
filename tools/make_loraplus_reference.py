#!/usr/bin/env python3
"""PyTorch + HF PEFT reference for takumi's --lora-plus-ratio (tests/test_loraplus.c).

stories260K (../shared/models/stories260K/hf, float32, eager attention), the batch of
tools/make_peft_methods_reference.py, LoraConfig(r=4, lora_alpha=8, lora_dropout=0, all seven
linears), PEFT's own initialisation (A kaiming-uniform under torch seed 1234, B = 0), and
PEFT's create_loraplus_optimizer(AdamW, lr 1e-3, loraplus_lr_ratio 16, loraplus_weight_decay 0.1,
betas 0.9/0.999, eps 1e-8) with global-norm clipping at 1: 3 steps, then the loss after the last
update. Written into tests/fixtures/train/stories260k_loraplus.safetensors: ids/target/weight,
"init.<name>" for every trainable tensor, metadata lr, weight_decay, clip, steps, ratio and
losses.

Usage: HF_HUB_OFFLINE=1 python3 tools/make_loraplus_reference.py
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, SHARED, TARGETS, WD, batch_tensors, loss_fn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "train")
STEPS, RATIO = 3, 16.0


def main():
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    from peft.optimizers import create_loraplus_optimizer
    torch.set_num_threads(2)
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids, target, weight = batch_tensors([seq[:16], seq[16:32]], [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8])
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    torch.manual_seed(1234)
    base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, bias="none"))
    named = [(n.replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    for n, p in named:
        tensors["init." + n] = p.detach().clone()
    opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=LR, loraplus_lr_ratio=RATIO, loraplus_weight_decay=WD,
                                    betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss, _ = loss_fn(model, ids, target, weight)
        losses.append(float(loss))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], CLIP)
        opt.step()
    with torch.no_grad():
        losses.append(float(loss_fn(model, ids, target, weight)[0]))
    meta = {"source": "transformers %s, peft %s, torch %s, float32, eager attention" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(STEPS), "ratio": repr(RATIO),
        "losses": json.dumps(losses)}
    print("loraplus: %d tensors, losses %s" % (len(named), meta["losses"]), file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stories260k_loraplus.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
