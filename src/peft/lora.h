/* LoRA adapters on the linear layers of a Llama-family model (HF PEFT semantics):
 *   y = x W^T (+ b) + scale * (dropout(x) A^T) B^T,   scale = alpha / r (rsLoRA: alpha / sqrt(r))
 * with A [r x in] (ggml ne {in, r}) initialised kaiming-uniform as PEFT does
 * (bound = 1/sqrt(in)) from a seeded tk_rng and B [out x r] zero. A and B live as f32
 * parameters in a tk_param_set (named with HF PEFT keys, so an adapter writer only copies
 * them); the base weights are never touched and keep their stored dtype (quantized bases
 * stay quantized: the base product dequantizes per block inside the matmul). PiSSA/OLoRA
 * (lora_init.h) also keep a frozen pair A0, B0 per linear and subtract scale * (x A0^T) B0^T: the
 * residual base, without rewriting it.
 * The adapter is a PEFT method instance (takumi/peft.h: tk_lora_peft) that a forward
 * workspace or session applies per request; it leaves the backward through
 * tk_lora_backward_linear (the method's linear_bwd).
 *
 * q/k row order: a Llama GGUF stores q/k rows permuted for interleaved RoPE (llama.cpp
 * convention) and takumi runs them in that order; the lora_B rows of q_proj/k_proj then
 * are in the same permuted order. tk_lora_qk_permuted() says so; whoever writes a PEFT
 * file must un-permute those B rows with tk_permute_qk_rows_to_hf (src/model/hfconfig.h;
 * row_bytes = r * 4, n_heads = H for q, KH for k). A's rows are unaffected. */
#ifndef TK_PEFT_LORA_H
#define TK_PEFT_LORA_H
#include "takumi/model.h"
#include "core/param.h"

#define TK_LORA_ALL_TARGETS ((1u << TK_LIN_COUNT) - 1u)

/* Initialisation (PEFT init_lora_weights): kaiming-uniform A (True, the default) or "gaussian" A
 * (A ~ N(0, (1/r)^2)), B zero in both; or "pissa" / "olora": A and B from the SVD / QR of the base
 * weight with the base's residual kept as a second, frozen factor pair (src/peft/lora_init.h). */
typedef enum tk_lora_init { TK_LORA_INIT_KAIMING = 0, TK_LORA_INIT_GAUSSIAN, TK_LORA_INIT_PISSA, TK_LORA_INIT_OLORA } tk_lora_init;

typedef struct tk_lora_config {
    int32_t r;            /* rank (default 8) */
    float alpha;          /* lora_alpha (default 16) */
    float dropout;        /* lora_dropout on the adapter input, [0, 1); 0 = off (default 0.05) */
    bool rslora;          /* use_rslora: scale = alpha / sqrt(r) */
    uint32_t targets;     /* bit (1u << tk_linear_id) per adapted linear; 0 = all seven (default) */
    int32_t first_layer;  /* adapters only on layers >= first_layer (freeze_layers); default 0 */
    uint64_t seed;        /* A initialisation and dropout masks */
    tk_lora_init init;    /* A initialisation (default kaiming-uniform) */
    float plus_ratio;     /* LoRA+ (PEFT create_loraplus_optimizer): lr_mult of every B (and DoRA magnitude); 0 = off */
} tk_lora_config;

/* Defaults: r 8, alpha 16, dropout 0.05, no rsLoRA, all targets, first layer 0, seed 0. */
tk_lora_config tk_lora_default_config(void);

typedef struct tk_lora tk_lora;

/* Creates adapters for m per cfg and adds their A/B parameters to ps (A initialised,
 * B zero; names "base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight" …,
 * mlp.{gate,up,down}_proj). Apply it with tk_forward_set_adapters / tk_session_set_adapters
 * and tk_lora_peft. m and ps must
 * outlive the adapter set. Free with tk_lora_free (ps keeps its params). */
tk_status tk_lora_new(tk_model *m, const tk_lora_config *cfg, tk_param_set *ps, tk_lora **out);
void tk_lora_free(tk_lora *l);

/* The adapter as a PEFT method instance (owned by l): give it to tk_forward_set_adapters /
 * tk_session_set_adapters. Its inference path is thread-safe (per-workspace scratch). */
const tk_peft *tk_lora_peft(tk_lora *l);
/* The LoRA set of a PEFT method instance, or NULL when p is NULL or another method's. Thread-safe. */
tk_lora *tk_lora_of(const tk_peft *p);
/* Training mode (for forwards whose workspace is in training, tk_acts.training): dropout is
 * applied with masks drawn from (seed, counter, layer, linear) and each forward saves what the backward needs (the rank-r products
 * x A^T per linear, for up to max_tokens tokens; buffers grow on demand). Off (default):
 * no dropout, nothing saved — inference, evaluation, generation. */
void tk_lora_set_training(tk_lora *l, bool on, uint64_t counter);
/* Backward of one adapted linear: given its input x [n x in] and output gradient dy
 * [n x out] of the last training forward, accumulates dA, dB (+=) into the param set and
 * adds the adapter's input gradient into dx [n x in] (+=; dx NULL = not needed). A
 * linear without an adapter is a no-op. */
tk_status tk_lora_backward_linear(tk_lora *l, int32_t layer, tk_linear_id which, const float *x, const float *dy,
                                  float *dx, int64_t n);

/* For methods built on LoRA's direction (DoRA): after a training forward of (layer, which), the
 * input as the adapter saw it (x with that forward's dropout mask applied, in an adapter buffer
 * valid until the next forward or backward call; x itself without dropout or outside training),
 * and dx[n x in] += the dropout's backward of g[n x in] (mask / (1 - p), or g itself). */
const float *tk_lora_dropped_input(tk_lora *l, int32_t layer, tk_linear_id which, const float *x, int64_t n);
void tk_lora_dropout_add(tk_lora *l, int32_t layer, tk_linear_id which, float *dx, const float *g, int64_t n);

/* Bytes the adapter holds besides its parameters (module table; training buffers once a training
 * forward ran). Inference adds nothing: its per-call memory is the workspace's scratch. */
size_t tk_lora_state_bytes(const tk_lora *l);

/* Inspection (for adapter writers and reports). */
const tk_lora_config *tk_lora_get_config(const tk_lora *l); /* targets resolved (never 0) */
float tk_lora_scale(const tk_lora *l);
/* True when q/k rows (hence q_proj/k_proj lora_B rows) are in llama.cpp's permuted order. */
bool tk_lora_qk_permuted(const tk_lora *l);
/* The A/B parameters of (layer, which), or false when that linear has no adapter. The
 * pointers stay valid until the param set grows. */
bool tk_lora_module(tk_lora *l, int32_t layer, tk_linear_id which, tk_param **A, tk_param **B);
/* PiSSA/OLoRA: the initial A0 [r x K] and B0 [N x r] of (layer, which) (B0's q/k rows in the model's
 * order), whose product the adapter subtracts (lora_init.h); false when l has none there. Thread-safe. */
bool tk_lora_init_pair(const tk_lora *l, int32_t layer, tk_linear_id which, const float **A0, const float **B0);
#endif
