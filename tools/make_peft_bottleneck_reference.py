#!/usr/bin/env python3
"""PyTorch reference for takumi's bottleneck adapters (`--method adapter`, tests/test_peft_bottleneck_ref.c).

HF PEFT has no bottleneck adapters, and AdapterHub's `adapters` package (PyPI) does not support
transformers 5.x, so the adapters are written here by hand as AdapterHub defines them and hooked
into transformers' own LlamaForCausalLM (stories260K, float32, eager attention):

  adapter A(u) = adapter_up(f(adapter_down(u)))   nn.Linear(C, R) -> f -> nn.Linear(R, C), R = C // reduction
  pfeiffer (AdapterHub SeqBnConfig on its Llama layers: output_adapter, original_ln_before=True,
           residual_before_ln=True, no layer norm passed): the decoder layer's output s = x + mlp(...)
           becomes s + A(s)  (a forward hook on each LlamaDecoderLayer)
  houlsby  (DoubleSeqBnConfig: mh_adapter and output_adapter, original_ln_before=False): the
           attention output h becomes h + A(h) and the MLP output m becomes m + A(m), each before
           its residual add (forward hooks on self_attn and mlp)
  f: relu (pfeiffer's default), swish = SiLU (houlsby's), gelu (exact erf) as transformers' get_activation.

Cases (stories260K width 64): "pfeiffer" (relu, reduction 16: R = 4), "houlsby" (swish, reduction 32:
R = 2), "pfeiffer_gelu" (gelu, reduction 64: R = 1); small reductions keep the fixture small. The adapter weights are drawn N(0, 0.1) and the biases
N(0, 0.05) (seed 11; larger than AdapterHub's "bert" init N(0, 0.02), zero biases, so that every
gradient is well above rounding). Written into tests/fixtures/train/stories260k_peft_bottleneck.safetensors
with the keys of tools/make_peft_methods_reference.py: ids/target/weight, "<case>.init.<name>",
"<case>.grad.<name>" (names as takumi's parameters:
model.layers.{i}.{attention|output}_adapters.adapter_{down|up}.{weight|bias}), "<case>.logits"
(first 64 vocabulary entries), metadata <case>_loss and <case>_losses (10 AdamW steps as
make_train_reference: lr 1e-3, weight decay 0.1 on the weight matrices only, clipping at 1).

SmolLM2-135M-Instruct (models/SmolLM2-135M-Instruct.Q4_1.gguf, dequantized by transformers' GGUF loader;
the one-row chat batch of make_train_reference), written into tests/fixtures/train/smollm2_peft_bottleneck.safetensors:
cases "pfeiffer" (relu) and "houlsby" (swish), reduction 64 (R = 9); weights and biases from
make_train_reference's hash_init (bound 0.02 / 0.01, the scale of AdapterHub's init: the C test computes the same, nothing stored); loss,
logits[:, :, :32], the gradients of layers 0 and 29 (biases whole, weight matrices every 8th row:
"<case>.grad.<name>"), and the 10-step curve.

Usage: HF_HUB_OFFLINE=1 python3 tools/make_peft_bottleneck_reference.py [smollm2]
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, N_STEPS, ROOT, SHARED, WD, batch_tensors, hash_init, loss_fn, smollm2_batch, train_losses  # noqa: E402
from make_peft_methods_reference import OUT, record  # noqa: E402

ACTS = {"relu": torch.nn.ReLU, "swish": torch.nn.SiLU, "gelu": torch.nn.GELU}
CASES = {"pfeiffer": ("pfeiffer", "relu", 16), "houlsby": ("houlsby", "swish", 32), "pfeiffer_gelu": ("pfeiffer", "gelu", 64)}


class Bottleneck(torch.nn.Module):
    """AdapterHub's Adapter without layer norms, gating, dropout or scaling: u + up(f(down(u)))."""

    def __init__(self, c, r, act):
        super().__init__()
        self.adapter_down = torch.nn.Linear(c, r)
        self.act = ACTS[act]()
        self.adapter_up = torch.nn.Linear(r, c)

    def forward(self, u):
        return u + self.adapter_up(self.act(self.adapter_down(u)))


def replace_output(module_out, fn):
    """A module's output with its first tensor passed through fn (a tensor or a tuple)."""
    if isinstance(module_out, tuple):
        return (fn(module_out[0]),) + tuple(module_out[1:])
    return fn(module_out)


def add_adapters(model, placement, act, reduction):
    """Freezes the model and hooks the adapters in; returns [(takumi name, parameter)]."""
    for p in model.parameters():
        p.requires_grad_(False)
    c = model.config.hidden_size
    r = max(1, c // reduction)
    named = []
    for i, layer in enumerate(model.model.layers):
        sites = [("output_adapters", layer)] if placement == "pfeiffer" else [("attention_adapters", layer.self_attn), ("output_adapters", layer.mlp)]
        for key, mod in sites:
            a = Bottleneck(c, r, act)
            setattr(layer, key, a)   # registered as a submodule: parameters train, hooks see it
            mod.register_forward_hook(lambda m, args, out, a=a: replace_output(out, a))
            for part in ("adapter_down", "adapter_up"):
                lin = getattr(a, part)
                named.append(("model.layers.%d.%s.%s.weight" % (i, key, part), lin.weight))
                named.append(("model.layers.%d.%s.%s.bias" % (i, key, part), lin.bias))
    return named


ROW_STRIDE = 8


def smollm2_main():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    ids, target, weight = smollm2_batch(tok)
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    meta = {"source": "transformers %s, torch %s, float64, eager attention, SmolLM2-135M-Instruct Q4_1 dequantized; adapters "
                      "written by hand (tools/make_peft_bottleneck_reference.py smollm2)" % (__import__("transformers").__version__, torch.__version__),
            "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS), "grad_row_stride": str(ROW_STRIDE)}
    for case, act in (("pfeiffer", "relu"), ("houlsby", "swish")):
        # float64: the truth takumi's float32 is measured against (PyTorch's float32 cross-entropy alone is off
        # by ~2e-4 in these gradients: 1 - p rounding on the confidently predicted chat-template tokens)
        base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float64, attn_implementation="eager")
        named = add_adapters(base, case, act, 64)
        base.to(torch.float64)   # the adapters' Linear layers (in place: named keeps the same Parameters)
        with torch.no_grad():
            for n, p in named:
                p.copy_(hash_init(n, tuple(p.shape), 0.02 if n.endswith("weight") else 0.01))
        loss, logits = loss_fn(base, ids, target, weight)
        loss.backward()
        meta[case + "_loss"] = repr(float(loss.detach()))
        tensors[case + ".logits"] = logits[:, :, :32].detach().float().contiguous()
        for n, p in named:
            if n.startswith("model.layers.0.") or n.startswith("model.layers.29."):
                g = p.grad.detach()
                tensors[case + ".grad." + n] = (g[::ROW_STRIDE] if g.ndim == 2 else g).float().clone().contiguous()
        base.zero_grad()
        meta[case + "_losses"] = json.dumps(train_losses(base, named, ids, target, weight))
        print("SmolLM2 %s: loss %s, steps %s" % (case, meta[case + "_loss"], meta[case + "_losses"]), file=sys.stderr)
    path = os.path.join(OUT, "smollm2_peft_bottleneck.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


def main():
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(2)
    if sys.argv[1:] == ["smollm2"]:
        smollm2_main()
        return
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids, target, weight = batch_tensors([seq[:16], seq[16:32]], [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8])
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    meta = {"source": "transformers %s, torch %s, float32, eager attention; adapters written by hand as AdapterHub's "
                      "SeqBnConfig / DoubleSeqBnConfig on Llama (tools/make_peft_bottleneck_reference.py)" % (
                          __import__("transformers").__version__, torch.__version__),
            "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)}
    for case, (placement, act, reduction) in CASES.items():
        meta[case + "_config"] = json.dumps({"placement": placement, "act": act, "reduction": reduction})
        torch.manual_seed(1234)
        model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        named = add_adapters(model, placement, act, reduction)
        gen = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for n, p in named:
                p.copy_((0.1 if n.endswith("weight") else 0.05) * torch.randn(p.shape, generator=gen))
        record(case, model, named, (ids, target, weight), tensors, meta, train_losses)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stories260k_peft_bottleneck.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
