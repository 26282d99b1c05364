#!/usr/bin/env python3
"""PyTorch + HF PEFT reference for takumi's --lora-init pissa / olora (tests/test_lora_init.c).

stories260K (../shared/models/stories260K/hf, float32, eager attention), the batch of
tools/make_loraplus_reference.py, LoraConfig(r=4, lora_alpha=8, lora_dropout=0, all seven linears,
init_lora_weights="pissa" | "olora"; olora with use_rslora=True so that the rsLoRA scale enters
the residual and the converted alpha). For each method, written into
tests/fixtures/train/stories260k_lora_init.safetensors:
  "<m>.init.<name>"      PEFT's initial lora_A / lora_B of layers 0 and 4, q_proj, k_proj, down_proj
  "<m>.grad.<name>"      their gradients of the mean loss at the initialisation
  "<m>.residual.<mod>"   the residual base weight PEFT wrote into layers.0.self_attn.k_proj
  "<m>.logits"           the first 64 vocabulary logits of every token at the initialisation
  metadata <m>_loss, <m>_losses (10 AdamW steps, lr 1e-3, weight decay 0.1, clip 1, then the loss
  after the last update), <m>_final_logits_max (max |logit| after training, for scale)
  "<m>.final_logits"     the first 64 logits after the 10 steps
PEFT's own conversion (save_pretrained(path_initial_model_for_weight_conversion=...)) is what takumi's
writer mirrors (tools/interop_check.py loads takumi's files into PEFT). The other way round: an adapter
PEFT saved WITHOUT the conversion (init_lora_weights "pissa"/"olora" kept in adapter_config.json), which
PEFT loads by re-running the initialisation on the base it is given. For each method a small one (q_proj
and v_proj, r 4, alpha 8, 3 AdamW steps) is saved by save_pretrained into
tests/fixtures/train/peft_<m>_unconverted/, and "<m>.unconverted_logits" holds the first 64 logits of
PeftModel.from_pretrained(original base, that folder).

Usage: HF_HUB_OFFLINE=1 python3 tools/make_lora_init_reference.py
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, N_STEPS, SHARED, TARGETS, WD, batch_tensors, loss_fn, train_losses  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "train")
KEEP_LAYERS, KEEP_MODS = ("layers.0.", "layers.4."), ("q_proj", "k_proj", "down_proj")
CASES = (("pissa", False), ("olora", True))


def kept(name):
    return any(l in name for l in KEEP_LAYERS) and any(m in name for m in KEEP_MODS)


def main():
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    torch.set_num_threads(2)
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids, target, weight = batch_tensors([seq[:16], seq[16:32]], [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8])
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    meta = {"source": "transformers %s, peft %s, torch %s, float32, eager attention" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)}
    for method, rslora in CASES:
        base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                                                use_rslora=rslora, init_lora_weights=method))
        named = [(n.replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
        for n, p in named:
            if kept(n):
                tensors["%s.init.%s" % (method, n)] = p.detach().clone()
        k0 = model.base_model.model.model.layers[0].self_attn.k_proj.base_layer.weight
        tensors["%s.residual.layers.0.self_attn.k_proj" % method] = k0.detach().clone()
        loss, logits = loss_fn(model, ids, target, weight)
        loss.backward()
        for n, p in named:
            if kept(n):
                tensors["%s.grad.%s" % (method, n)] = p.grad.detach().clone()
        tensors["%s.logits" % method] = logits.detach()[..., :64].reshape(-1, 64).contiguous()
        meta["%s_loss" % method] = repr(float(loss))
        for _, p in named:
            p.grad = None
        losses = train_losses(model, named, ids, target, weight)
        meta["%s_losses" % method] = json.dumps(losses)
        with torch.no_grad():
            _, fl = loss_fn(model, ids, target, weight)
        tensors["%s.final_logits" % method] = fl[..., :64].reshape(-1, 64).contiguous()
        print("%s: loss %.6f, curve %s" % (method, float(loss), meta["%s_losses" % method]), file=sys.stderr)
    from peft import PeftModel
    for method, _ in CASES:
        base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none",
                                                init_lora_weights=method))
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        opt = torch.optim.AdamW([p for _, p in named], lr=1e-2, weight_decay=0.0)
        for _ in range(3):
            opt.zero_grad()
            loss, _ = loss_fn(model, ids, target, weight)
            loss.backward()
            opt.step()
        d = os.path.join(OUT, "peft_%s_unconverted" % method)
        model.save_pretrained(d)
        if os.path.exists(os.path.join(d, "README.md")):
            os.remove(os.path.join(d, "README.md"))
        cfg_path = os.path.join(d, "adapter_config.json")
        cfg = json.load(open(cfg_path))
        cfg["base_model_name_or_path"] = "models/stories260K/hf"  # not this machine's path
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        fresh = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        loaded = PeftModel.from_pretrained(fresh, d)
        with torch.no_grad():
            _, lg = loss_fn(loaded, ids, target, weight)
            _, lt = loss_fn(model, ids, target, weight)
        tensors["%s.unconverted_logits" % method] = lg[..., :64].reshape(-1, 64).contiguous()
        print("%s unconverted: PEFT reloaded vs trained max |logit diff| %.2e" % (method, float((lg - lt).abs().max())), file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stories260k_lora_init.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
