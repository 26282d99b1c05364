#!/usr/bin/env python3
"""Tiny random Gemma 3, Qwen3, Phi-3 and Gemma 2 models and their PyTorch references for
tests/test_arch.c.

For each architecture, tests/fixtures/arch/<name>/ receives:
  config.json + model.safetensors  the HF model (float32, seeded random weights — norms
                                   included, so that (1 + w) and per-head norms matter)
  ref.safetensors                  ids/target/weight [B x T]; logits [B x T x V] (eager
                                   attention, float32); greedy_prompt / greedy_ids (HF
                                   generate(do_sample=False)); LoRA (PEFT, r=4, alpha=8,
                                   dropout 0, every linear module of the family — Phi-3's
                                   fused qkv_proj / gate_up_proj as PEFT sees them): the A/B
                                   initialisation (A: PEFT's, B: seeded random) and every
                                   gradient; full fine-tuning: every weight gradient.
Loss = sum_t weight[t] * CE(logits[t], target[t]) / sum_t weight[t] (target -1 = none).
The Gemma 3 model has sliding and global layers (layer_types sliding, full, sliding), a
window (5) shorter than the sequence (12), a query scale unlike 1/sqrt(head_dim), a local
RoPE base unlike the global one and linear RoPE scaling on the global layers.
The Gemma 2 model has logit soft-capping on attention scores (cap 1.0) and on the final
logits (cap 1.5), both small enough against this model's scores (up to ~1.7) and logits
(up to ~2) that tanh bends them, alternating sliding/global layers with window 5.
The Phi-3 model sets sliding_window 7 (every layer slides, as transformers' Phi-3 does).
For Qwen3, Phi-3 and Gemma 2 the same weights also go to model.gguf (f32, llama.cpp's tensor
names and metadata: attn_q_norm/attn_k_norm; Phi-3's fused attn_qkv and ffn_up = gate|up;
Gemma 2's norms stored as 1 + w and its soft-caps as gemma2.*_logit_softcapping), so the
GGUF loaders are checked against the same reference. (Gemma 3's GGUF form fixes constants
this tiny model varies — every 6th layer global, local base 10000, query scale
1/sqrt(head_dim) — so its GGUF path is checked on the real Gemma-3-270M instead.)
Scalars go to the safetensors __metadata__.
Usage: python3 tools/make_arch_fixtures.py [NAME ...]   (default: every model)
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "arch")
V, B, T = 128, 2, 12


def configs():
    from transformers import Gemma2Config, Gemma3TextConfig, Phi3Config, Qwen3Config
    common = dict(vocab_size=V, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, bos_token_id=1,
                  eos_token_id=2, pad_token_id=0)
    return {
        "gemma3": Gemma3TextConfig(
            **common, intermediate_size=48, num_hidden_layers=3, head_dim=8, query_pre_attn_scalar=12,
            sliding_window=5, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True,
            rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 50000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
            architectures=["Gemma3ForCausalLM"]),
        "qwen3": Qwen3Config(**common, intermediate_size=48, num_hidden_layers=2, head_dim=12,
                             max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
                             architectures=["Qwen3ForCausalLM"]),
        "phi3": Phi3Config(**common, intermediate_size=48, num_hidden_layers=2, max_position_embeddings=256,
                           original_max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=7,
                           architectures=["Phi3ForCausalLM"]),
        # query_pre_attn_scalar = head_dim and one rope_theta: the constants llama.cpp assumes, so
        # the GGUF form is checked against the same reference
        "gemma2": Gemma2Config(**common, intermediate_size=48, num_hidden_layers=3, head_dim=8, query_pre_attn_scalar=8,
                               sliding_window=5, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True,
                               attn_logit_softcapping=1.0, final_logit_softcapping=1.5, architectures=["Gemma2ForCausalLM"]),
    }


LORA_TARGETS = {
    "gemma3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
GEMMA = ("gemma2", "gemma3")
WEIGHT_SCALE = {"gemma3": 0.05, "gemma2": 0.1}


def loss_fn(model, ids, target, weight):
    logits = model(input_ids=ids).logits.float()
    ce = F.cross_entropy(logits.reshape(-1, V), target.reshape(-1).clamp(min=0), reduction="none")
    w = weight.reshape(-1) * (target.reshape(-1) >= 0).float()
    return (ce * w).sum() / w.sum(), logits


def build(name, cfg, seed):
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim == 1:   # norms: random around their identity (Gemma: w around 0, others around 1)
                base = 0.0 if name in GEMMA else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape))
            else:  # Gemma's sqrt(C) embedding scale makes larger weights collapse greedy decoding to one token
                p.copy_(WEIGHT_SCALE.get(name, 0.15) * torch.randn(p.shape))
    model.eval()
    return model


def write_gguf(name, cfg, model, path):
    import gguf
    w = gguf.GGUFWriter(path, name)
    a = name
    w.add_string("general.name", f"tiny {name}")
    w.add_uint32(f"{a}.context_length", cfg.max_position_embeddings)
    w.add_uint32(f"{a}.embedding_length", cfg.hidden_size)
    w.add_uint32(f"{a}.block_count", cfg.num_hidden_layers)
    w.add_uint32(f"{a}.feed_forward_length", cfg.intermediate_size)
    w.add_uint32(f"{a}.attention.head_count", cfg.num_attention_heads)
    w.add_uint32(f"{a}.attention.head_count_kv", cfg.num_key_value_heads)
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w.add_uint32(f"{a}.attention.key_length", hd)
    w.add_uint32(f"{a}.attention.value_length", hd)
    w.add_uint32(f"{a}.rope.dimension_count", hd)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", cfg.rms_norm_eps)
    w.add_float32(f"{a}.rope.freq_base", 10000.0)
    w.add_uint32(f"{a}.vocab_size", cfg.vocab_size)
    if getattr(cfg, "sliding_window", None):
        w.add_uint32(f"{a}.attention.sliding_window", cfg.sliding_window)
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if getattr(cfg, key, None):
            w.add_float32(f"{a}.{key}", getattr(cfg, key))
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    layer = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "self_attn.qkv_proj": "attn_qkv", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.gate_up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    if name in GEMMA:  # sandwich norms, and llama.cpp's converter stores Gemma's norms as 1 + w
        layer.update({"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
                      "post_feedforward_layernorm": "post_ffw_norm"})
    for n, p in model.state_dict().items():
        if n == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # a tied head is the embedding (llama.cpp writes no output.weight)
        if name in GEMMA and p.ndim == 1:
            p = p + 1.0
        if n in names:
            gn = names[n]
        else:
            parts = n.split(".")  # model.layers.{i}.{module...}.weight
            gn = f"blk.{parts[2]}.{layer['.'.join(parts[3:-1])]}.weight"
        w.add_tensor(gn, p.detach().float().numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    for i, (name, cfg) in enumerate(configs().items()):
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        model = build(name, cfg, 1000 + i)
        model.save_pretrained(folder, safe_serialization=True)
        for f in os.listdir(folder):
            if f not in ("config.json", "model.safetensors", "model.gguf"):
                os.remove(os.path.join(folder, f))
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        if name != "gemma3":
            write_gguf(name, cfg, model, os.path.join(folder, "model.gguf"))
        g = torch.Generator().manual_seed(7 + i)
        ids = torch.randint(3, V, (B, T), generator=g)
        target = torch.full((B, T), -1, dtype=torch.long)
        target[:, :-1] = ids[:, 1:]
        weight = torch.ones(B, T)
        weight[0, :3] = 0.0
        weight[1, 5] = 0.5
        tensors, meta = {}, {"arch": name}
        tensors["ids"] = ids.to(torch.int32)
        tensors["target"] = target.to(torch.int32)
        tensors["weight"] = weight

        # forward + greedy continuation
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
            tensors["logits"] = logits.contiguous()
            prompt = ids[:1, :6]
            out = model.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0, eos_token_id=None,
                                 output_logits=True, return_dict_in_generate=True)
            margin = min(float(l[0].topk(2).values[0] - l[0].topk(2).values[1]) for l in out.logits)
            meta["greedy_min_margin"] = repr(margin)  # top-1 minus top-2 logit: far above float noise
            out = out.sequences
        tensors["greedy_prompt"] = prompt[0].to(torch.int32).contiguous()
        tensors["greedy_ids"] = out[0, prompt.shape[1]:].to(torch.int32).contiguous()

        # full fine-tuning gradients
        model.zero_grad()
        loss, _ = loss_fn(model, ids, target, weight)
        loss.backward()
        meta["full_loss"] = repr(float(loss))
        for n, p in model.named_parameters():
            tensors["fgrad." + n] = p.grad.detach().clone().contiguous()
        model.zero_grad()

        # LoRA gradients
        base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
        torch.manual_seed(1234)
        lcfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS[name], bias="none")
        pm = get_peft_model(base, lcfg)
        named = [(n.replace(".default", ""), p) for n, p in pm.named_parameters() if p.requires_grad]
        gen = torch.Generator().manual_seed(99 + i)
        with torch.no_grad():
            for n, p in named:
                if "lora_B" in n:
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
                tensors["init." + n] = p.detach().clone().contiguous()
        loss, _ = loss_fn(pm, ids, target, weight)
        loss.backward()
        meta["lora_loss"] = repr(float(loss))
        meta["lora_n"] = str(len(named))
        for n, p in named:
            tensors["grad." + n] = p.grad.detach().clone().contiguous()
        save_file(tensors, os.path.join(folder, "ref.safetensors"), metadata=meta)
        sz = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{name}: {sz} bytes, full loss {meta['full_loss']}, lora loss {meta['lora_loss']}, "
              f"greedy {tensors['greedy_ids'].tolist()} (min margin {meta['greedy_min_margin']})")


if __name__ == "__main__":
    main()
