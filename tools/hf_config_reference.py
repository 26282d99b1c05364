#!/usr/bin/env python3
"""Reference for takumi's HF config.json reader (src/model/hfconfig.c).

For a set of real and minimal config.json dicts (Llama 2/3.1, SmolLM2, TinyLlama,
Mistral, Qwen2.5, configs relying on defaults, configs saved by this transformers
version), asks transformers itself what they mean: the resolved sizes and RoPE
settings from the config class, and — from the model built on the meta device (no
memory) — which parameters exist (biases, a separate lm_head or tied embeddings).
Writes tests/fixtures/hf/configs.json, read by tests/test_hfconfig.c.

Usage: python3 tools/hf_config_reference.py   (needs torch + transformers)
"""
import json
import os

import torch
import transformers
from transformers import AutoModelForCausalLM, CONFIG_MAPPING

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "hf", "configs.json")

INPUTS = {
    # meta-llama/Llama-3.1-8B-Instruct config.json (values as published)
    "llama31_8b": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "use_cache": True, "vocab_size": 128256},
    # HuggingFaceTB/SmolLM2-135M-Instruct
    "smollm2_135m": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1,
        "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536,
        "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9,
        "num_hidden_layers": 30, "num_key_value_heads": 3, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "rope_theta": 100000, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "vocab_size": 49152},
    # TinyLlama/TinyLlama-1.1B-Chat-v1.0
    "tinyllama": {
        "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 5632,
        "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32,
        "num_hidden_layers": 22, "num_key_value_heads": 4, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "vocab_size": 32000},
    # mistralai/Mistral-7B-v0.1
    "mistral_7b_v01": {
        "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
        "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "vocab_size": 32000},
    # a Mistral-Nemo-like config: head_dim larger than hidden/heads, no sliding window
    "mistral_headdim": {
        "architectures": ["MistralForCausalLM"], "hidden_size": 5120, "head_dim": 128,
        "intermediate_size": 14336, "max_position_embeddings": 1024000, "model_type": "mistral",
        "num_attention_heads": 32, "num_hidden_layers": 40, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": None, "vocab_size": 131072},
    # Qwen/Qwen2.5-0.5B-Instruct
    "qwen25_05b": {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
        "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
        "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
    # minimal configs: everything optional comes from the class defaults
    "llama_min": {"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
                  "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
    "mistral_min": {"model_type": "mistral", "vocab_size": 100, "hidden_size": 256,
                    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 32},
    "qwen2_min": {"model_type": "qwen2", "vocab_size": 100, "hidden_size": 256,
                  "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 32},
    # the old "type" key, linear scaling, attention_bias (q/k/v/o biases)
    "llama_linear_bias": {"architectures": ["LlamaForCausalLM"], "vocab_size": 100,
                          "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2,
                          "rope_scaling": {"type": "linear", "factor": 4.0},
                          "attention_bias": True, "tie_word_embeddings": True},
}


def saved_by_this_transformers():
    """Configs as save_pretrained of the installed transformers writes them."""
    out = {}
    c = CONFIG_MAPPING["llama"](vocab_size=300, hidden_size=128, intermediate_size=256,
                                num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
                                rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 8192},
                                rope_theta=500000.0, max_position_embeddings=131072)
    out["llama_saved"] = json.loads(c.to_json_string())
    c = CONFIG_MAPPING["qwen2"](vocab_size=300, hidden_size=128, intermediate_size=256,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                tie_word_embeddings=True, rope_theta=1000000.0)
    out["qwen2_saved"] = json.loads(c.to_json_string())
    return out


def rope_of(c):
    rp = getattr(c, "rope_parameters", None)
    if rp is None:  # transformers 4.x
        rp = dict(getattr(c, "rope_scaling", None) or {})
        rp["rope_theta"] = c.rope_theta
    t = rp.get("rope_type", rp.get("type", "default"))
    r = {"rope_theta": float(rp["rope_theta"]), "rope_scaling": "none" if t == "default" else t,
         "rope_factor": float(rp.get("factor", 1.0)) if t != "default" else 1.0}
    if t == "llama3":
        r.update(rope_low=float(rp["low_freq_factor"]), rope_high=float(rp["high_freq_factor"]),
                 rope_orig=int(rp["original_max_position_embeddings"]))
    return r


def expect(d):
    # like transformers' AutoConfig: architectures decide when model_type is absent
    arch_types = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}
    mt = d.get("model_type") or arch_types[d["architectures"][0]]
    c = CONFIG_MAPPING[mt].from_dict(d)
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    with torch.device("meta"):
        m = AutoModelForCausalLM.from_config(c)
    names = [n for n, _ in m.named_parameters()]  # tied lm_head is listed once (as embed_tokens)
    keep = sorted(n for n in names if ".layers." not in n or ".layers.0." in n)
    sw = getattr(c, "sliding_window", None) or 0
    if mt == "qwen2" and not getattr(c, "use_sliding_window", False):
        sw = 0
    if mt == "llama":
        sw = 0
    e = {"arch": mt, "n_vocab": c.vocab_size, "dim": c.hidden_size, "n_layers": c.num_hidden_layers,
         "n_heads": c.num_attention_heads, "n_kv_heads": c.num_key_value_heads, "head_dim": hd,
         "hidden_dim": c.intermediate_size, "max_seq": c.max_position_embeddings,
         "rms_eps": float(c.rms_norm_eps), "tied": "lm_head.weight" not in names,
         "qkv_bias": "model.layers.0.self_attn.q_proj.bias" in names,
         "o_bias": "model.layers.0.self_attn.o_proj.bias" in names,
         "sliding_window": sw, "tensors": keep}
    e.update(rope_of(c))
    return e


def main():
    inputs = dict(INPUTS)
    inputs.update(saved_by_this_transformers())
    cases = [{"name": k, "config": v, "expect": expect(v)} for k, v in inputs.items()]
    doc = {"generator": "tools/hf_config_reference.py", "transformers": transformers.__version__,
           "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} configs (transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
