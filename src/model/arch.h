/* Architectures as descriptions. A tk_arch says how a family differs from the Llama
 * block — names in GGUF and HF, norm placement and form, the gated activation,
 * attention features, fused weights — and the one generic block (src/model/llama.c,
 * backward in src/model/backward.c) reads its flags. One file per family
 * (src/model/arch_*.c) holds the descriptions; tk_arch_by_* replace string compares.
 *
 * Block, with the optional parts in brackets (sandwich = Gemma 2/3):
 *   h = x * embed_scale
 *   a = attn_norm(h);  q,k,v = W a (+ bias) [fused: one qkv product split];
 *   [q,k = per-head RMSNorm];  RoPE (per-layer base);  attention (query scale, [window]);
 *   o = Wo attn;  [o = post_attention_norm(o)];  h += o
 *   f = ffn_norm(h);  g,u = W f [fused: one gate_up product split];  d = Wd act(g) * u;
 *   [d = post_ffw_norm(d)];  h += d
 * Norm weights are held as the multiplier: families whose HF checkpoints store w for
 * (1 + w) (Gemma) get 1 added at HF load (llama.cpp's converter writes 1 + w already). */
#ifndef TK_MODEL_ARCH_H
#define TK_MODEL_ARCH_H
#include "takumi/model.h"

/* A GGUF name <-> HF name override for one per-layer key (see tk_hf_weight_name). */
typedef struct tk_arch_name { const char *key, *hf; } tk_arch_name;

typedef struct tk_arch {
    const char *name;                    /* cfg.arch: "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3" */
    const char *gguf;                    /* general.architecture this family is stored under in GGUF */
    const char *hf_class;                /* config.json "architectures"[0] */
    const char *const *hf_model_types;   /* config.json "model_type" values (NULL-terminated) */
    /* HF config defaults where the config.json omits a field (as transformers' config class) */
    int32_t hf_kv_heads;                 /* 0 = num_attention_heads */
    int32_t hf_max_pos;
    float hf_rms_eps;
    bool hf_tied;                        /* tie_word_embeddings default */
    int32_t hf_head_dim;                 /* 0 = hidden / heads */
    /* layout of the stored weights */
    bool gguf_qk_permuted;               /* GGUF q/k rows are permuted for interleaved RoPE (llama.cpp's Llama converter) */
    bool qkv_bias;                       /* q/k/v biases always present (Qwen2) */
    bool fused_qkv;                      /* one q|k|v projection (Phi-3: qkv_proj / attn_qkv); TK_LIN_Q names it */
    bool fused_gate_up;                  /* one gate|up projection (Phi-3: gate_up_proj / ffn_up); TK_LIN_UP names it */
    bool hf_norm_plus_one;               /* HF norms multiply by (1 + w) (Gemma) */
    /* block features */
    bool qk_norm;                        /* RMSNorm per q/k head before RoPE (Qwen3, Gemma 3) */
    bool sandwich_norm;                  /* post_attention_norm / post_ffw_norm around the sub-blocks (Gemma 3) */
    tk_act_kind act;
    bool embed_scale_sqrt;               /* embeddings times sqrt(C) (Gemma) */
    int32_t swa_period;                  /* sliding layers: all but every swa_period-th (Gemma 3: 6); 0 = every layer when a window is set */
    float rope_theta_local;              /* RoPE base of sliding layers (Gemma 3: 10000); 0 = rope_theta */
    /* Gemma-style config.json (hidden_activation, query_pre_attn_scalar, sliding_window with
     * layer_types, rope_parameters per layer type where the family has local bases) */
    bool gemma_config;
    /* logit soft-capping: whether the family's HF modeling applies attn/final_logit_softcapping
     * (elsewhere a set value is refused), and transformers' defaults when config.json omits them */
    bool softcap;
    float hf_attn_softcap, hf_final_softcap;
    int32_t gguf_wide_scale_layers;      /* llama.cpp: a model of this many layers scales queries by 1/sqrt(C/H) (Gemma 27B) */
    const tk_arch_name *hf_names;        /* per-layer HF name overrides ({NULL, NULL}-terminated), or NULL */
    const char *lin_hf[TK_LIN_COUNT];    /* HF module of each linear ("q_proj"…); NULL = none in this family */
    const char *lin_gguf[TK_LIN_COUNT];  /* GGUF base name ("attn_q"…); NULL = none */
} tk_arch;

/* The description of cfg.arch / a GGUF general.architecture / an HF class or model_type;
 * NULL when takumi does not run it. Thread-safe (static tables). */
const tk_arch *tk_arch_by_name(const char *name);
const tk_arch *tk_arch_by_gguf(const char *gguf_arch);
const tk_arch *tk_arch_by_hf(const char *hf_class, const char *model_type);
/* The HF name of a weight key (as tk_hf_weight_name: "attn_q.weight", layer 3 ->
 * "model.layers.3.self_attn.q_proj.weight") in family a (NULL = the generic table), with
 * the family's overrides (Gemma's norms, Phi-3's fused weights). Returns buf or NULL. */
const char *tk_arch_hf_weight_name(const tk_arch *a, char *buf, size_t n, const char *key, int layer);
/* "llama (…), mistral, qwen2, …" / "LlamaForCausalLM, …" for messages. */
const char *tk_arch_list(void);
const char *tk_arch_hf_list(void);

/* Gemma's per-layer norm names (pre/post feed-forward, post attention), shared by Gemma 2 and 3. */
extern const tk_arch_name tk_gemma_norm_names[];

/* The families (src/model/arch_*.c). */
extern const tk_arch tk_arch_llama, tk_arch_mistral, tk_arch_qwen2, tk_arch_qwen3, tk_arch_gemma2, tk_arch_gemma3, tk_arch_phi3;
#endif
