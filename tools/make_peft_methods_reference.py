#!/usr/bin/env python3
"""PyTorch + HF PEFT reference for takumi's DoRA and IA3 (tests/test_peft_ref.c) and prefix tuning
(tests/test_peft_prefix_method.c).

stories260K (../shared/models/stories260K/hf, float32, eager attention), the batch of
tools/make_train_reference.py, and per method the same initialisation on both sides:
  DoRA  LoraConfig(r=4, lora_alpha=8, lora_dropout=0, use_dora=True, all seven linears):
        PEFT's A (kaiming-uniform) and m (= ||W||_row, dora_init), B = 0.05 * randn (seed 99)
        so that every gradient is non-trivial (m / ||W + s B A|| != 1);
  IA3   IA3Config(target_modules k/v/down, feedforward_modules down): ia3_l = 1 + 0.1 * randn
        (seed 7).
Written into tests/fixtures/train/stories260k_peft_methods.safetensors: ids/target/weight,
"<method>.init.<name>" and "<method>.grad.<name>" for every trainable tensor (names as takumi's
parameters: PEFT's without the adapter name, DoRA's magnitude without ".weight"),
"<method>.logits" (first 64 vocabulary entries), and metadata <method>_loss and <method>_losses
(10 AdamW steps, then the loss after the last update).
AdamW: lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.1 on lora_A/lora_B only (takumi
decays matrices, not the magnitude or IA3 vectors), constant schedule, global-norm clipping at 1.

Prefix tuning (argument "prefix", written into tests/fixtures/train/stories260k_peft_prefix.safetensors,
same keys): PrefixTuningConfig(num_virtual_tokens=4) as "prefix" and, with prefix_projection=True and
encoder_hidden_size=16, as "prefix_proj", PEFT's own initialisation (torch seed 1234; nn.Embedding
N(0, 1), nn.Linear uniform); AdamW as make_train_reference (decay on matrices: the embedding and the
projection's weights, not its biases). "<method>.saved" is what save_pretrained writes
(prompt_embeddings, the projection applied) after the first forward.

Usage: HF_HUB_OFFLINE=1 python3 tools/make_peft_methods_reference.py [prefix]
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, N_STEPS, SHARED, TARGETS, WD, batch_tensors, loss_fn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "train")


def takumi_name(n):
    n = n.replace(".default", "")
    return n[: -len(".weight")] if n.endswith("lora_magnitude_vector.weight") else n


def train_losses(model, named, ids, target, weight):
    decay = [p for n, p in named if "lora_A" in n or "lora_B" in n]
    rest = [p for n, p in named if not ("lora_A" in n or "lora_B" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(N_STEPS):
        opt.zero_grad()
        loss, _ = loss_fn(model, ids, target, weight)
        losses.append(float(loss))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], CLIP)
        opt.step()
    with torch.no_grad():
        loss, _ = loss_fn(model, ids, target, weight)
    losses.append(float(loss))
    return losses


def record(method, model, named, batch, tensors, meta, train, extra=None):
    """The case's initial parameters, loss, logits, gradients (extra(model): more tensors) and loss curve."""
    ids, target, weight = batch
    for n, p in named:
        tensors[method + ".init." + n] = p.detach().clone()
    loss, logits = loss_fn(model, ids, target, weight)
    loss.backward()
    meta[method + "_loss"] = repr(float(loss))
    tensors[method + ".logits"] = logits[:, :, :64].detach().contiguous()
    if extra:
        tensors.update(extra(model))
    for n, p in named:
        tensors[method + ".grad." + n] = p.grad.detach().clone()
    model.zero_grad()
    meta[method + "_losses"] = json.dumps(train(model, named, ids, target, weight))
    print("%s: %d tensors, loss %s, steps %s" % (method, len(named), meta[method + "_loss"], meta[method + "_losses"]),
          file=sys.stderr)


def prefix_main(folder, ids, target, weight, tensors, meta):
    from transformers import AutoModelForCausalLM
    from make_train_reference import train_losses as train_losses_ndim
    from peft import PrefixTuningConfig, get_peft_model
    configs = {
        "prefix": PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        "prefix_proj": PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4, prefix_projection=True, encoder_hidden_size=16),
    }
    for method, cfg in configs.items():
        torch.manual_seed(1234)
        base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        model = get_peft_model(base, cfg)
        named = [(takumi_name(n), p) for n, p in model.named_parameters() if p.requires_grad]
        record(method, model, named, (ids, target, weight), tensors, meta, train_losses_ndim,
               lambda mo, m=method: {m + ".saved": mo.get_prompt_embedding_to_save("default").contiguous()})


def main():
    from transformers import AutoModelForCausalLM
    from peft import IA3Config, LoraConfig, get_peft_model
    torch.set_num_threads(2)
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids, target, weight = batch_tensors([seq[:16], seq[16:32]], [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8])
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    meta = {"source": "transformers %s, peft %s, torch %s, float32, eager attention" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)}
    if sys.argv[1:] == ["prefix"]:
        prefix_main(folder, ids, target, weight, tensors, meta)
        path = os.path.join(OUT, "stories260k_peft_prefix.safetensors")
        save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
        print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)
        return
    configs = {
        "dora": LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, use_dora=True, bias="none"),
        "ia3": IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]),
    }
    for method, cfg in configs.items():
        torch.manual_seed(1234)
        base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        model = get_peft_model(base, cfg)
        named = [(takumi_name(n), p) for n, p in model.named_parameters() if p.requires_grad]
        gen = torch.Generator().manual_seed(99 if method == "dora" else 7)
        with torch.no_grad():
            for n, p in named:
                if "lora_B" in n:
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
                if "ia3_l" in n:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
        record(method, model, named, (ids, target, weight), tensors, meta, train_losses)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stories260k_peft_methods.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
