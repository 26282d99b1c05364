/* PEFT methods: how an adapter enters a base model's forward and backward, and how a
 * request chooses adapters.
 *
 * A method (LoRA today; DoRA, IA3, bottleneck adapters … implement the same table) is a
 * table of entry points. An adapter is an instance of a method attached to one base model:
 * {method, state}. The base model never owns an adapter: a forward workspace or a
 * generation session is given a list of adapters, each with a scale, and applies them in
 * list order at the points the method implements:
 *
 *   linear   after a linear layer's base product (and bias), before RoPE for q/k: the
 *            method sees the input x, the output y (which it may add to) and the frozen
 *            weight W (any dtype), so methods that need W (DoRA) or scale outputs (IA3) fit;
 *   block    a block's output before it joins the residual stream (the attention block's
 *            o-proj output, the MLP's down-proj output), or the layer's output after the
 *            MLP's residual add (TK_BLOCK_LAYER), modified in place (bottleneck adapters);
 *   attention extra keys and values per layer that every non-padding query attends to
 *            besides its sequence (prefix tuning): the model asks each adapter for its
 *            prefix of a layer, concatenates them in list order and runs attention over
 *            prefix + sequence in one softmax; in the backward it hands the gradients of
 *            the prefix keys/values back;
 *   embedding virtual tokens before every sequence (prompt tuning): P rows of input embeddings that
 *            the model runs through its layers; their keys/values join the attention prefix, and
 *            the backward hands the gradient of the rows back.
 *
 * Thread safety: a method's inference entry points (call->training false) must be safe to
 * call concurrently on the same state from different workspaces: per-call memory comes from
 * call->scratch, owned by the workspace. Training entry points are called by one training
 * context at a time and may keep per-forward state (dropout masks, saved products).
 *
 * Gradient convention (as in src/ops/ops.h): parameter gradients accumulate (+=), input
 * gradients add into dx (+=). */
#ifndef TAKUMI_PEFT_H
#define TAKUMI_PEFT_H
#include "takumi/core.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct tk_model tk_model;

/* The linear layers of a transformer block, by role (HF names: q_proj … down_proj). */
typedef enum tk_linear_id {
    TK_LIN_Q = 0, TK_LIN_K, TK_LIN_V, TK_LIN_O, TK_LIN_GATE, TK_LIN_UP, TK_LIN_DOWN, TK_LIN_COUNT
} tk_linear_id;

/* Block outputs a method may transform: attention (o-proj output) and MLP (down-proj output), each before it
 * joins the residual stream; and the layer's output (the residual stream after the MLP's add, the next layer's
 * input), for methods that read and add to the stream itself (Pfeiffer bottleneck adapters). */
typedef enum tk_block_site { TK_BLOCK_ATTN = 0, TK_BLOCK_MLP = 1, TK_BLOCK_LAYER = 2, TK_BLOCK_COUNT } tk_block_site;

/* A growable f32 scratch buffer owned by a workspace (grows on first use, then reused). */
typedef struct tk_scratch { float *p; size_t n; } tk_scratch;
/* Returns a buffer of at least n floats (NULL when out of memory). Not thread-safe per scratch. */
float *tk_scratch_get(tk_scratch *s, size_t n);
/* Frees the buffer; the scratch may be reused. */
void tk_scratch_free(tk_scratch *s);

/* What the model passes with each call. */
typedef struct tk_peft_call {
    float scale;          /* the request's scale for this adapter (1 = as trained) */
    bool training;        /* a training forward/backward (dropout on, state saved for the backward) */
    tk_scratch *scratch;  /* per-workspace memory for the call */
} tk_peft_call;

typedef struct tk_peft_method {
    const char *name;     /* "lora", … */
    /* Does the adapter act on linear `which` of `layer`? (lets the model skip calls) */
    bool (*has_linear)(const void *state, int32_t layer, tk_linear_id which);
    /* Linear forward: y[n x N] may be changed given x[n x K] and the frozen weight w ({K, N}). NULL = none. */
    tk_status (*linear_fwd)(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                            const float *x, float *y, int64_t n);
    /* Linear backward of the last training forward: from dy[n x N] accumulate parameter gradients and add the
     * adapter's input gradient into dx[n x K] (NULL = not needed). NULL = none. */
    tk_status (*linear_bwd)(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                            const float *x, const float *dy, float *dx, int64_t n);
    /* Does the adapter act on block output `site` of `layer`? NULL = never. */
    bool (*has_block)(const void *state, int32_t layer, tk_block_site site);
    /* Block forward: h[n x C] transformed in place. NULL = none. */
    tk_status (*block_fwd)(void *state, const tk_peft_call *c, int32_t layer, tk_block_site site, float *h, int64_t n);
    /* Block backward of the last training forward: dh[n x C] holds d loss / d (transformed h); replace it in place
     * by d loss / d (h before the transform) and accumulate parameter gradients. NULL = none. */
    tk_status (*block_bwd)(void *state, const tk_peft_call *c, int32_t layer, tk_block_site site, float *dh, int64_t n);
    /* Attention prefix of `layer`: sets *k, *v to P extra keys/values [P x KH*D] (row-major, KH*D = the
     * model's n_kv_heads * head_dim) and returns P (0 = none for this layer; < 0 = error, message set).
     * They are used as given, after RoPE (they get no rotation), by every non-padding query of the layer
     * on top of its own sequence (no causal or window mask), in the same softmax; with a KV cache, at
     * every decode step. The memory belongs to the adapter and must stay valid and unchanged until the
     * next call for this layer; at inference it is only read (concurrent workspaces may call this at
     * once). A training backward calls it again for the same layer (c->training true) and needs the
     * same P, keys and values as the forward. Positions: the sequence keeps positions 0..T-1 (HF PEFT's
     * prefix tuning passes the prefix as past_key_values, so HF places the tokens at P..P+T-1; a method
     * that must match PEFT exactly needs that offset, which this seam does not apply; RoPE being relative,
     * src/peft/prefix.c gets it by returning its keys rotated to position -P). NULL = never. */
    int64_t (*attn_prefix)(void *state, const tk_peft_call *c, int32_t layer, const float **k, const float **v);
    /* Prefix backward of the last training forward: dk/dv [P x KH*D] = d loss / d (this adapter's prefix
     * keys/values of `layer`, as returned by attn_prefix); accumulate into the parameter gradients.
     * NULL = the prefix is not trained. */
    tk_status (*attn_prefix_bwd)(void *state, const tk_peft_call *c, int32_t layer, const float *dk, const float *dv);
    /* Input-embedding prefix (prompt tuning): sets *e to P rows of input embeddings [P x C] (C = the model's
     * width; used as given: no embedding scale) and returns P (0 = none; < 0 = error, message set). They act
     * as P virtual tokens before every sequence (each packed segment, each KV-cache session): the model runs
     * them through its layers alone (causal among themselves, base weights only: no adapter acts on them) at
     * positions -P..-1, and their keys/values join every layer's attention prefix (as attn_prefix's do), so
     * the sequence keeps positions 0..T-1 and sees the same relative positions as in HF PEFT, which places
     * the virtual tokens at 0..P-1 and the sequence at P..P+T-1. The memory belongs to the adapter, valid
     * and unchanged until the next call; at inference only read (concurrent workspaces may call this at
     * once; a workspace recomputes the virtual tokens only when the rows change). At most one adapter of a
     * list has one. NULL = never. */
    int64_t (*embed_prefix)(void *state, const tk_peft_call *c, const float **e);
    /* Embedding-prefix backward of the last training forward: de [P x C] = d loss / d (the rows embed_prefix
     * returned); accumulate into the parameter gradients. NULL = not trained. */
    tk_status (*embed_prefix_bwd)(void *state, const tk_peft_call *c, const float *de);
    /* Training on/off and the step counter that seeds per-step randomness (dropout masks); called
     * by the training context around each training forward+backward. NULL = nothing to do. */
    void (*set_training)(void *state, bool on, uint64_t counter);
    /* A regularizer of the adapter's own parameters that joins the training loss once per optimizer step
     * (AdaLoRA's orthogonality penalty): *loss = its value (already weighted); with grad, its gradient is
     * accumulated (+=) into the parameters' gradients. Called by the training loop after a step's
     * micro-batches, before the optimizer. NULL = none. Not thread-safe. */
    tk_status (*reg_loss)(void *state, bool grad, double *loss);
    /* After the optimizer update of step `step` (0-based), the step's gradients still in place:
     * grad_scale is the factor the optimizer applied to them (global-norm clipping, 1 = none), so
     * grad_scale * g is the gradient the update used (AdaLoRA's rank allocator reads it, as PEFT's
     * update_and_allocate reads p.grad after a clipped step). NULL = nothing to do. Not thread-safe. */
    tk_status (*after_update)(void *state, int64_t step, float grad_scale);
    /* The method's state besides its parameters that training changes (AdaLoRA's importance estimates and
     * rank pattern) as one f32 array of *n values, owned by the adapter: a checkpoint saves it and a resume
     * writes it back, so that a resumed run continues exactly. NULL (or *n = 0) = none. Not thread-safe. */
    float *(*extra_state)(void *state, int64_t *n);
    /* Merges the adapter into a frozen linear's f32 weight where the math allows:
     * W[N x K] (torch layout) += scale * the adapter's delta. NULL = cannot be merged. */
    tk_status (*merge_linear)(const void *state, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K, float scale);
    /* Writes the adapter as an HF PEFT folder (adapter_config.json + adapter_model.safetensors) /
     * as a llama.cpp GGUF adapter. NULL = the method has no such layout. */
    tk_status (*save_peft)(void *state, const tk_model *m, const char *dir, const char *base_model);
    tk_status (*save_gguf)(void *state, const tk_model *m, const char *path);
} tk_peft_method;

/* An adapter: a method instance attached to one base model (the state is the method's). */
typedef struct tk_peft { const tk_peft_method *method; void *state; } tk_peft;

/* One adapter chosen for a request, with its scale (LoRA: multiplies scale * B A). */
typedef struct tk_adapter_use { const tk_peft *peft; float scale; } tk_adapter_use;

/* Most adapters one forward applies at once. */
#define TK_MAX_ADAPTERS 8

#ifdef __cplusplus
}
#endif
#endif
