/* Decoder-only models (Llama 2/3, Mistral, Qwen2/3, SmolLM2, TinyLlama, Gemma 3, Phi-3; each
 * family described in src/model/arch_*.c): loading from
 * GGUF, HF safetensors folders and llama2.c checkpoints into one internal weight map;
 * batched forward (padding + packing masks); KV-cache sessions, sampling and
 * generation.
 *
 * Dimension legend (used in every shape comment below): V vocabulary, C model dim,
 * L layers, H query heads, KH key/value heads, D head dim, F SwiGLU hidden,
 * B batch rows, T tokens per row, S cached keys. Weight shapes are written in ggml
 * order {ne0, ne1}: ne0 is the contiguous (input) dimension, so a linear weight
 * mapping K inputs to N outputs is {K, N} (= torch [N x K]). */
#ifndef TAKUMI_MODEL_H
#define TAKUMI_MODEL_H
#include "takumi/core.h"
#include "takumi/tokenizer.h"
#include "takumi/peft.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum tk_rope_scaling { TK_ROPE_SCALING_NONE = 0, TK_ROPE_SCALING_LINEAR, TK_ROPE_SCALING_LLAMA3 } tk_rope_scaling;
/* The gated MLP's activation: down(act(gate) * up). */
typedef enum tk_act_kind { TK_ACT_SILU = 0, TK_ACT_GELU_TANH } tk_act_kind;

typedef struct tk_model_config {
    char arch[32];          /* "llama", "qwen2", … */
    char name[128];         /* general.name or folder name */
    int32_t n_vocab;        /* V */
    int32_t dim;            /* C: embedding size */
    int32_t n_layers;       /* L */
    int32_t n_heads;        /* H */
    int32_t n_kv_heads;     /* KH (GQA when < H) */
    int32_t head_dim;       /* D = C / H unless the model says otherwise */
    int32_t hidden_dim;     /* F: SwiGLU inner size */
    int32_t max_seq;        /* context length the model was trained for */
    float rms_eps;
    float rope_theta;
    /* 1: rotate adjacent pairs (2i, 2i+1) — Meta / llama2.c / llama.cpp "norm" mode, used with
     *    llama.cpp's permuted q/k rows in Llama GGUFs;
     * 0: rotate halves (i, i + D/2) — HF / NeoX convention (HF folders, Qwen2 GGUFs). */
    int32_t rope_interleaved;
    tk_rope_scaling rope_scaling;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int32_t rope_orig_max_seq;
    bool tied_embeddings;   /* output projection shares tok_embd */
    bool qkv_bias;          /* Qwen2 */
    /* Block features, from the family's description (src/model/arch.h) and the file's config;
     * all zero = the Llama block. */
    bool qk_norm;           /* RMSNorm over each q/k head (weights {D}) before RoPE: Qwen3, Gemma 3 */
    bool sandwich_norm;     /* norms after attention and after the MLP, before the residual add: Gemma 3 */
    bool fused_qkv;         /* one q|k|v weight {C, (H+2KH)*D} (Phi-3); held in wq, wk/wv absent */
    bool fused_gate_up;     /* one gate|up weight {C, 2F} (Phi-3); held in w_up, w_gate absent */
    tk_act_kind act;        /* gated MLP activation */
    float embed_scale;      /* embeddings are multiplied by it (Gemma: sqrt(C)); 0 = 1 */
    float attn_scale;       /* attention query scale; 0 = 1/sqrt(D) (Gemma: query_pre_attn_scalar^-1/2) */
    int32_t sliding_window; /* W > 0: on sliding layers a query at position p sees keys at p - W < pos <= p */
    int32_t swa_period;     /* with W: every swa_period-th layer ((l+1) % P == 0) attends globally; 0 = all slide */
    float rope_theta_local; /* RoPE base of sliding layers, no scaling (Gemma 3); 0 = the global RoPE everywhere */
    float attn_softcap;     /* > 0: attention scores s become c * tanh(s / c) before the softmax (Gemma 2); 0 = off */
    float final_softcap;    /* > 0: the LM head's logits z become c * tanh(z / c) (Gemma 2); 0 = off */
} tk_model_config;

/* Whether layer l of a model with config c uses the sliding window. */
static inline bool tk_layer_sliding(const tk_model_config *c, int32_t l) {
    return c->sliding_window > 0 && (c->swa_period <= 0 || (l + 1) % c->swa_period != 0);
}

/* Checks a config for consistency (positive sizes, H divisible by KH, even D, sane
 * rope parameters); the message names `where` (a file) and the bad field. */
tk_status tk_model_config_validate(const tk_model_config *cfg, const char *where);

/* ---- weight map ------------------------------------------------------------
 * Every weight is a view (tk_tensor_ref) into the container's mapping, in its stored
 * dtype (quantized weights stay quantized; the matmul dequantizes per block). Only
 * small vectors (norms, biases) that are not stored as F32 are converted once at
 * load into f32 copies owned by the model. An absent optional weight has data NULL. */
typedef struct tk_layer_weights {
    tk_tensor_ref attn_norm;  /* {C} f32 */
    tk_tensor_ref wq;         /* {C, H*D}; with cfg.fused_qkv the fused {C, (H+2KH)*D} */
    tk_tensor_ref wk;         /* {C, KH*D} */
    tk_tensor_ref wv;         /* {C, KH*D} */
    tk_tensor_ref wo;         /* {H*D, C} */
    tk_tensor_ref bq, bk, bv; /* {H*D}, {KH*D}, {KH*D} f32; data NULL unless cfg.qkv_bias */
    tk_tensor_ref q_norm, k_norm; /* {D} f32 per-head norms; data NULL unless cfg.qk_norm */
    tk_tensor_ref post_attn_norm, post_ffn_norm; /* {C} f32; data NULL unless cfg.sandwich_norm */
    tk_tensor_ref ffn_norm;   /* {C} f32 */
    tk_tensor_ref w_gate;     /* {C, F} */
    tk_tensor_ref w_up;       /* {C, F}; with cfg.fused_gate_up the fused {C, 2F} (gate rows first) */
    tk_tensor_ref w_down;     /* {F, C} */
} tk_layer_weights;

typedef struct tk_weights {
    tk_tensor_ref tok_embd;   /* {C, V} */
    tk_layer_weights *layers; /* [L] */
    tk_tensor_ref out_norm;   /* {C} f32 */
    tk_tensor_ref output;     /* {C, V}; equals tok_embd when tied */
} tk_weights;

typedef struct tk_model tk_model;

typedef enum tk_tokenizer_mode {
    TK_TOKENIZER_REQUIRED = 0,   /* loading fails without a tokenizer */
    TK_TOKENIZER_IF_PRESENT,     /* load one when the model has one (inspect) */
    TK_TOKENIZER_NONE,           /* do not load a tokenizer */
} tk_tokenizer_mode;

typedef struct tk_model_params {
    const char *tokenizer_path; /* tokenizer.bin / tokenizer.json / .gguf to use instead of the model's own (needed for llama2.c and tokenizer-less HF folders); NULL = auto */
    int32_t n_ctx;              /* overrides the context length the file states (0 = keep) */
    tk_tokenizer_mode tokenizer;
    tk_dtype quantize_base;     /* QLoRA: quantize the f32/f16/bf16 base at load to TK_Q8_0, TK_Q4_K or TK_NF4; TK_F32 (0) = keep */
} tk_model_params;

/* Returns the defaults (all zero): no tokenizer override, the file's context, tokenizer required. */
tk_model_params tk_model_default_params(void);
/* Loads a model: a directory is an HF folder (config.json + safetensors), a file with
 * the GGUF magic a GGUF, anything else a llama2.c checkpoint (then params->tokenizer_path
 * names its tokenizer.bin, or a tok*.bin / tokenizer.bin beside it is used). Checks every
 * tensor's presence and shape. params may be NULL (defaults). Free with tk_model_free. */
tk_status tk_model_load(const char *path, const tk_model_params *params, tk_model **out);
/* Frees the model, its mappings and its tokenizer; accepts NULL. */
void tk_model_free(tk_model *m);

/* Accessors (the model owns everything returned). */
const tk_model_config *tk_model_get_config(const tk_model *m);
const tk_tokenizer *tk_model_tokenizer(const tk_model *m);   /* NULL when not loaded */
const char *tk_model_path(const tk_model *m);
const char *tk_model_format(const tk_model *m);               /* "gguf", "hf" or "llama2c" */
/* The weight map. Mutable so that a trainer may point weights at its own f32 copies
 * (full fine-tuning); the refs must keep their shapes. */
tk_weights *tk_model_weights(tk_model *m);
/* Returns the weight of linear `which` in `layer` (NULL if out of range). In families with
 * fused weights (cfg.fused_qkv / fused_gate_up: Phi-3) TK_LIN_Q is the fused q|k|v and
 * TK_LIN_UP the fused gate|up, and TK_LIN_K / V / GATE have data NULL. */
const tk_tensor_ref *tk_model_linear(const tk_model *m, int32_t layer, tk_linear_id which);
/* Name of a linear as in HF ("q_proj", … "down_proj"). */
const char *tk_linear_name(tk_linear_id which);
/* Name of a block site for messages ("attention", "MLP", "layer output"). Thread-safe. */
const char *tk_block_site_name(tk_block_site site);
/* The HF module name of linear `which` in m's family ("qkv_proj" for TK_LIN_Q of Phi-3);
 * NULL when the family has no such linear (Phi-3's k/v/gate live in the fused weights). */
const char *tk_model_linear_name(const tk_model *m, tk_linear_id which);
/* Number of parameters (a tied output counted once). */
int64_t tk_model_n_params(const tk_model *m);
/* The model's identity: a 64-bit hash of its architecture and sizes and of its tensor table
 * (name, dtype, shape and the first 4 KiB of each tensor's data), so that two files of
 * different weights, dtypes or shapes differ (a training run records it to refuse resuming
 * on another base). Thread-safe (reads only). */
uint64_t tk_model_identity(const tk_model *m);
/* Bytes of weights as stored in the container (mapped, not copied). */
size_t tk_model_weight_bytes(const tk_model *m);
/* Bytes the model allocated itself (converted norms, tables); excludes the mappings. */
size_t tk_model_owned_bytes(const tk_model *m);
/* The weights as stored in the file (name, dtype, shape, bytes), in load order (a tied output is not listed). */
int64_t tk_model_n_tensors(const tk_model *m);
const tk_tensor_ref *tk_model_tensor(const tk_model *m, int64_t i);

/* ---- adapters --------------------------------------------------------------
 * Adapters are not a property of the model: each forward workspace (tk_forward) and each
 * generation session (tk_session) has its own list of adapters with scales (takumi/peft.h),
 * so one loaded base serves different adapters to concurrent requests, and an adapter costs
 * only its own parameters. */

/* ---- batched forward -------------------------------------------------------- */
typedef struct tk_batch {
    int32_t n_rows;      /* B */
    int32_t n_cols;      /* T: tokens per row; ids are [B x T] row-major */
    const int32_t *ids;  /* [B*T] */
    const int32_t *pos;  /* [B*T] positions (restart per packed segment); NULL = 0..T-1 in every row */
    const int32_t *seg;  /* [B*T] segment ids: a token attends to earlier tokens of its own row and
                            segment; -1 marks padding (attends to nothing). NULL = one segment per row */
} tk_batch;

/* A forward workspace sized once for batches up to max_rows x max_cols; no allocation
 * happens inside a forward. With TK_FWD_KEEP_ACTS every layer's activations are kept
 * for a backward pass (see src/model/llama.h); without it, buffers are reused per layer.
 * TK_FWD_KEEP_ATT_PROBS (with KEEP_ACTS) also keeps the attention probabilities
 * [L x B x H x T x T] instead of recomputing them in the backward. */
typedef struct tk_forward tk_forward;
enum { TK_FWD_KEEP_ACTS = 1 << 0, TK_FWD_KEEP_ATT_PROBS = 1 << 1 };
/* Creates a workspace for m (which must outlive it). Free with tk_forward_free. */
tk_status tk_forward_new(tk_model *m, int32_t max_rows, int32_t max_cols, int flags, tk_forward **out);
void tk_forward_free(tk_forward *f);
/* Runs the batch. Logits are written for the n_out flattened token indices out_idx
 * (into [B*T]) as logits[n_out x V]; out_idx NULL means all B*T tokens in order; n_out 0
 * (logits may be NULL) computes only the final hidden states. */
tk_status tk_forward_run(tk_forward *f, const tk_batch *b, const int64_t *out_idx, int64_t n_out, float *logits);
/* Sets the adapters every later run of f applies (n <= TK_MAX_ADAPTERS; n 0 = the bare base),
 * in list order, each with its scale. The list is copied; the adapters must outlive their use
 * and have been attached to f's model. Not thread-safe with a run of f in progress. */
tk_status tk_forward_set_adapters(tk_forward *f, const tk_adapter_use *ads, int n);
/* Final RMS-normed hidden states of the last run, [B*T x C] (valid until the next run). */
const float *tk_forward_hidden(const tk_forward *f);
/* Runs the batch and the chunked LM head + cross-entropy without materialising the
 * [B*T x V] logits: target[B*T] (-1 = no loss), weight may be NULL. Adds sum of losses and
 * of weights (as in tk_lmhead_xent) to *loss_sum / *weight_sum. */
tk_status tk_forward_nll(tk_forward *f, const tk_batch *b, const int32_t *target, const float *weight,
                         double *loss_sum, double *weight_sum);

/* ---- generation sessions (KV cache) --------------------------------------- */
typedef struct tk_session tk_session;
/* A single-sequence session with an f32 KV cache [L x S x KH x D] that grows as needed
 * up to n_ctx tokens (0 = the model's context). Free with tk_session_free. */
tk_status tk_session_new(tk_model *m, int32_t n_ctx, tk_session **out);
void tk_session_free(tk_session *s);
/* Sets the adapters of the session's later evaluations (as tk_forward_set_adapters). When the
 * list differs from the current one the cache is emptied (its keys/values were computed with
 * the other adapters). Not thread-safe with an evaluation of s. */
tk_status tk_session_set_adapters(tk_session *s, const tk_adapter_use *ads, int n);
/* Inference precision. Default (true): activations stay f32 in every product (quantized
 * weight rows are dequantized per block and dotted with f32 x), as the fp32
 * compute and the reference implementations. false (what takumi generate/chat/serve/eval
 * use unless --exact): few-token products with quantized weights quantize the activations
 * to 8 bits per 32-block for the fused integer kernels, as llama.cpp does, and prefill
 * chunks of 8+ tokens run their products in bf16 with fp32 sums where the CPU has
 * AVX512-BF16 — faster; perplexity stays within 0.5% of the exact path (README,
 * Performance), but single logits move and close greedy choices can flip. tk_forward is
 * always f32. Not thread-safe with an evaluation of s. */
void tk_session_set_exact(tk_session *s, bool exact);
/* Tokens currently in the cache and their count. */
int32_t tk_session_n_past(const tk_session *s);
const int32_t *tk_session_tokens(const tk_session *s);
int32_t tk_session_n_ctx(const tk_session *s);
/* Forgets cached tokens from index n on (n <= n_past), keeping the prefix. */
void tk_session_truncate(tk_session *s, int32_t n);
/* Appends ids to the sequence (prefill in chunks when n > 1, decode when n == 1) and
 * writes the logits of the last one into logits[V] (may be NULL). Fails with
 * TK_ERR_RANGE when the context would overflow. */
tk_status tk_session_eval(tk_session *s, const int32_t *ids, int64_t n, float *logits);
/* Makes the cache hold exactly ids[0..n) reusing the longest cached common prefix
 * (chat turns), evaluating only the rest (at least the last token, for its logits).
 * *n_reused (may be NULL) gets the number of tokens taken from the cache. */
tk_status tk_session_eval_reuse(tk_session *s, const int32_t *ids, int64_t n, float *logits, int64_t *n_reused);

/* ---- sampling ------------------------------------------------------------- */
typedef struct tk_sampler_params {
    float temperature;     /* <= 0: greedy (argmax) */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off; keeps tokens with p >= min_p * p_max */
    float repeat_penalty;  /* 1: off; logits of recent tokens: > 0 divided, < 0 multiplied */
    int32_t repeat_last_n; /* window of recent tokens for the penalty (0: none, -1: all) */
    uint64_t seed;
} tk_sampler_params;
/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1, last_n 64, seed 0. */
tk_sampler_params tk_sampler_default_params(void);

typedef struct tk_sampler tk_sampler;
/* Creates a sampler for vocabularies up to n_vocab (RNG seeded from params.seed). */
tk_status tk_sampler_new(const tk_sampler_params *p, int32_t n_vocab, tk_sampler **out);
void tk_sampler_free(tk_sampler *s);
/* Picks the next token from logits[n_vocab] (modified in place by the penalty) given the
 * recent history (may be empty). Order: repetition penalty, top-k, top-p, min-p (all on
 * the temperature-1 distribution, as llama.cpp's default chain), then temperature and a
 * draw from the seeded RNG. Greedy ignores everything but the penalty. */
int32_t tk_sampler_sample(tk_sampler *s, float *logits, int32_t n_vocab, const int32_t *history, size_t n_history);

/* ---- generation ----------------------------------------------------------- */
typedef struct tk_gen_params {
    tk_sampler_params sampler;
    int32_t max_tokens;        /* tokens to generate at most (<= 0: until context end) */
    const char *const *stop;   /* stop strings (matched on decoded text, across token boundaries; not emitted) */
    int32_t n_stop;
    bool stop_at_eos;          /* stop at end-of-generation tokens: EOS, end-of-turn (tk_tokenizer_is_eog; not emitted); default true */
    bool exact;                /* tk_generate_batch: f32 activations in its products (default true); false: few-token products with
                                  quantized weights quantize activations to 8 bits, as tk_session_set_exact(s, false) (tk_generate
                                  follows its session's setting instead) */
} tk_gen_params;
/* Defaults: default sampler, max_tokens 256, no stop strings, stop at EOS/EOT, exact. */
tk_gen_params tk_gen_default_params(void);

typedef enum tk_gen_stop { TK_GEN_STOP_MAX_TOKENS = 0, TK_GEN_STOP_EOS, TK_GEN_STOP_STRING, TK_GEN_STOP_CONTEXT, TK_GEN_STOP_CALLBACK } tk_gen_stop;
typedef struct tk_gen_stats {
    int64_t n_prompt, n_reused, n_generated;  /* prompt tokens evaluated / taken from the cache / generated */
    double prefill_s, decode_s;               /* wall time of prompt evaluation and of decoding */
    tk_gen_stop stop;
} tk_gen_stats;
/* Receives text as it is produced (complete UTF-8 only); return false to stop. */
typedef bool (*tk_gen_text_fn)(void *ud, const char *text, size_t len);

/* Generates a continuation of prompt[0..n) in session s (reusing its cached prefix),
 * streaming the text to on_text (may be NULL). The sampled ids (including a final EOS /
 * end-of-turn that stopped generation, which is not emitted as text) are appended to
 * *out_ids when non-NULL. The cache then holds the prompt and every sampled id but the
 * last (never evaluated), so the next chat turn's tk_session_eval_reuse recomputes little. */
tk_status tk_generate(tk_session *s, const tk_tokenizer *tok, const int32_t *prompt, int64_t n,
                      const tk_gen_params *p, tk_gen_text_fn on_text, void *ud,
                      tk_ivec *out_ids, tk_gen_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
