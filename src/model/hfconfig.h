/* Hugging Face model folders: config.json -> tk_model_config, the HF tensor names of
 * every Llama-family weight, and the q/k row permutation between Meta/llama.cpp
 * (interleaved RoPE pairs) and HF (rotate-half) layouts. Internal API for src/model. */
#ifndef TK_IO_HFCONFIG_H
#define TK_IO_HFCONFIG_H
#include "takumi/model.h"

/* What config.json says beyond tk_model_config (kept here so that the public struct
 * only grows when the model layer uses a field). */
typedef struct tk_hf_config_extra {
    int32_t bos_id;          /* bos_token_id; -1 when absent or null */
    int32_t eos_id;          /* first of eos_token_id (int or list); -1 when absent */
    int32_t n_eos_ids;       /* every eos_token_id listed (at most 8 kept) */
    int32_t eos_ids[8];
    bool o_bias;             /* o_proj has a bias (Llama/Mistral attention_bias=true; never Qwen2) */
    int32_t sliding_window;  /* Mistral / Qwen2(use_sliding_window) local attention window; 0 = none */
    char torch_dtype[16];    /* "float32", "bfloat16", … or "" */
} tk_hf_config_extra;

/* Parses config.json text json[0..len) into *cfg (fully overwritten; rope_interleaved = 0,
 * cfg->name = "_name_or_path" if present, else empty) and *extra (may be NULL).
 * Supports the families of src/model/arch.h (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM, or their
 * model_type when "architectures" is absent) and fills cfg's block features from the
 * family's description and the config (Gemma 3: query_pre_attn_scalar, sliding_window,
 * layer_types / sliding_window_pattern, the local RoPE base); applies HF's defaults for optional
 * fields (as transformers' config classes do) and validates every value. RoPE comes from
 * "rope_theta" + "rope_scaling" (transformers 4) or "rope_parameters" (transformers 5);
 * scaling types default, linear and llama3 are supported. Duplicate top-level keys are
 * rejected (cJSON and Python's json would disagree on them). Errors (TK_ERR_FORMAT for missing/mistyped fields,
 * TK_ERR_RANGE for bad values, TK_ERR_UNSUPPORTED for architectures, activations or RoPE
 * scalings takumi lacks) name `name` and the field. */
tk_status tk_hf_config_parse(const char *json, size_t len, const char *name, tk_model_config *cfg, tk_hf_config_extra *extra);
/* Reads path (a config.json file, or a folder holding one) and parses it as above;
 * cfg->name becomes the folder's name when config.json has no "_name_or_path". */
tk_status tk_hf_config_load(const char *path, tk_model_config *cfg, tk_hf_config_extra *extra);

/* Weight keys are llama.cpp's tensor base names plus ".weight"/".bias":
 *   global:    "token_embd.weight", "output_norm.weight", "output.weight"
 *   per layer: "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
 *              "attn_output.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias",
 *              "attn_output.bias", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
 *              "ffn_down.weight"
 * (the GGUF name of a per-layer key is "blk.<layer>.<key>").
 * Writes the HF name of key (layer >= 0 for per-layer keys, -1 for global ones) into
 * buf[n], e.g. ("attn_q.weight", 3) -> "model.layers.3.self_attn.q_proj.weight".
 * Returns buf, or NULL when the key is unknown, the layer does not fit the key, or buf
 * is too small. */
const char *tk_hf_weight_name(char *buf, size_t n, const char *key, int layer);
/* The inverse: HF name -> key (written into key[n]) and *layer (-1 for global weights).
 * Also accepts names without the leading "model." (checkpoints saved from the bare
 * LlamaModel). Returns TK_OK, or TK_ERR_NOT_FOUND (no message set) for names that are not
 * Llama-family weights (e.g. rotary_emb.inv_freq). */
tk_status tk_hf_weight_key(const char *hf_name, char *key, size_t n, int *layer);

/* q/k projection rows. A projection {C, n_heads*head_dim} (torch [n_heads*head_dim x C])
 * has n_heads*head_dim rows of row_bytes bytes each (any dtype, quantized rows too;
 * row_bytes = element size for a bias vector). Within each head of head_dim rows:
 *   Meta / llama2.c / llama.cpp-Llama-GGUF row 2i and 2i+1 rotate together (interleaved);
 *   HF row i and i + head_dim/2 rotate together (rotate_half).
 * HF's convert_llama_weights_to_hf.py maps Meta -> HF by taking, per head, the even Meta
 * rows first, then the odd ones: HF row j = Meta row 2j (j < D/2), HF row D/2 + j =
 * Meta row 2j + 1. llama.cpp's convert_hf_to_gguf applies the inverse for Llama GGUFs.
 * dst and src must not overlap; head_dim must be even. */
void tk_permute_qk_rows_to_hf(void *dst, const void *src, int n_heads, int head_dim, size_t row_bytes);
/* The inverse of tk_permute_qk_rows_to_hf (HF rotate-half rows -> Meta interleaved rows). */
void tk_permute_qk_rows_from_hf(void *dst, const void *src, int n_heads, int head_dim, size_t row_bytes);

#endif
