/* Backward pass of the Llama-family model (src/model/backward.c): from a forward run with
 * kept activations (tk_acts with TK_FWD_KEEP_ACTS), the chunked LM head + cross-entropy
 * and the gradients of every trainable tensor, down to the lowest trainable layer.
 * Dimension legend as in takumi/model.h (V, C, L, H, KH, D, F; T = B x Tc tokens).
 * Gradient convention (as in src/ops/ops.h): parameter gradients are accumulated (+=). */
#ifndef TK_MODEL_BACKWARD_H
#define TK_MODEL_BACKWARD_H
#include "model/llama.h"

/* f32 gradient buffers of one layer, shaped like the weights (torch order [N x K]);
 * NULL = that tensor is frozen (no gradient is computed for it). */
typedef struct tk_layer_grads {
    float *attn_norm;          /* [C] */
    float *wq, *wk, *wv, *wo;  /* [H*D x C], [KH*D x C], [KH*D x C], [C x H*D] */
    float *bq, *bk, *bv;       /* [H*D], [KH*D], [KH*D] (only with cfg.qkv_bias) */
    float *ffn_norm;           /* [C] */
    float *w_gate, *w_up;      /* [F x C] */
    float *w_down;             /* [C x F] */
    float *q_norm, *k_norm;    /* [D] (cfg.qk_norm) */
    float *post_attn_norm, *post_ffn_norm; /* [C] (cfg.sandwich_norm) */
    /* fused weights (cfg.fused_qkv / fused_gate_up): wq is [(H+2KH)*D x C], w_up [2F x C]; wk, wv, w_gate unused */
} tk_layer_grads;

typedef struct tk_model_grads {
    float *tok_embd;           /* [V x C] or NULL */
    float *out_norm;           /* [C] or NULL */
    float *output;             /* [V x C] or NULL; for a tied head the same buffer as tok_embd (gradients add up) */
    tk_layer_grads *layers;    /* [L] (NULL = no layer has weight gradients) */
    int32_t stop_layer;        /* the backward runs through layers L-1 .. stop_layer only: nothing below
                                  stop_layer (incl. the embedding when stop_layer > 0) is trainable */
} tk_model_grads;

/* The adapter side of the backward: for each linear (top to bottom), given its input x
 * [n x K] and output gradient dy [n x N], accumulate the adapter's parameter gradients and
 * add its input gradient into dx (+=; dx NULL when no input gradient is needed). */
typedef struct tk_adapter_bwd {
    tk_status (*linear)(void *ctx, int32_t layer, tk_linear_id which, const float *x, const float *dy, float *dx, int64_t n);
    /* block outputs (takumi/peft.h tk_block_site): dh[n x C] = d loss / d (adapted block output), replaced in
     * place by d loss / d (block output before the adapters); NULL when no adapter acts on block outputs */
    tk_status (*block)(void *ctx, int32_t layer, tk_block_site site, float *dh, int64_t n);
    /* attention prefix (takumi/peft.h attn_prefix): dk/dv [P x KH*D] = d loss / d (layer's prefix keys/values,
     * the adapters' prefixes concatenated in list order as tk_acts_prefix gives them); NULL = not trained */
    tk_status (*attn_prefix)(void *ctx, int32_t layer, const float *dk, const float *dv, int64_t P);
    /* input-embedding prefix (takumi/peft.h embed_prefix, the workspace's virtual tokens a->vt): de [P x C] =
     * d loss / d (the rows); called once, after the layers; NULL = not trained */
    tk_status (*embed_prefix)(void *ctx, const float *de, int64_t P);
    void *ctx;
} tk_adapter_bwd;

/* Scratch of the backward, allocated once for up to max_T tokens. */
typedef struct tk_bwd_ws {
    int64_t max_T;
    float *dres;               /* [T x C] gradient of the residual stream */
    float *dxn;                /* [T x C] gradient of a norm output (input of q/k/v or gate/up) */
    float *dnorm;              /* [T x C] a norm's input gradient before it joins dres */
    float *dq, *dattn;         /* [T x H*D] */
    float *dk, *dv;            /* [T x KH*D] */
    float *dgate, *dup, *dffh; /* [T x F] */
    float *dfused;             /* [T x max((H+2KH)*D, 2F)] gradient of a fused product (cfg.fused_*), else NULL */
    tk_scratch dpfx;           /* [2 x P x KH*D] one layer's attention-prefix gradients (grown on first use) */
    struct tk_bwd_ws *vws;     /* the virtual tokens' backward (a->vt; made on first use) */
    tk_scratch dvt;            /* [P x C] their rows' gradient */
    float *base;
    size_t bytes;
} tk_bwd_ws;
tk_status tk_bwd_ws_init(tk_bwd_ws *ws, const tk_model *m, int64_t max_T);
void tk_bwd_ws_free(tk_bwd_ws *ws);

/* Per-layer hooks of the backward (the struct may be NULL): `layer`, before layer l's backward, re-runs its
 * forward into a's slots (activation recomputation; NULL when every layer's activations were kept);
 * `done`, after layer l's backward, says that the layer's parameter gradients (its weights' and its
 * adapters') are complete for this backward (data-parallel training starts summing them; NULL = none). */
typedef struct tk_recompute_hook {
    tk_status (*layer)(void *ctx, int32_t layer);
    tk_status (*done)(void *ctx, int32_t layer);
    void *ctx;
} tk_recompute_hook;

/* LM head + cross-entropy on the last forward's final hidden states (a->hn), then the
 * backward through the final norm and layers L-1 .. g->stop_layer (and the embedding when
 * g->tok_embd is set). b, target[T] (-1 = no loss) and weight[T] (NULL = 1) as in
 * tk_lmhead_xent; the gradients are those of grad_scale * sum_t weight[t] * loss_t.
 * *loss_sum / *weight_sum receive (=) this batch's sums. ad and rc may be NULL.
 * *head_s (may be NULL) receives the seconds spent in the LM head + loss. */
/* The backward from the gradient of the final normed hidden states: dh [T x C] = d loss /
 * d a->hn (read only), then the final norm, layers L-1 .. g->stop_layer and the embedding
 * (when g->tok_embd is set), with the same conventions as tk_llama_backward (which is the
 * LM head + loss followed by this). With virtual tokens (a->vt live) and ad->embed_prefix,
 * their backward follows, from the sequence's gradients of their keys/values, down to the
 * gradient of their rows. ad and rc may be NULL. */
tk_status tk_llama_backward_hidden(tk_model *m, tk_acts *a, tk_bwd_ws *ws, const tk_batch *b, const float *dh,
                                   const tk_model_grads *g, const tk_adapter_bwd *ad, const tk_recompute_hook *rc);

tk_status tk_llama_backward(tk_model *m, tk_acts *a, tk_bwd_ws *ws, const tk_batch *b, const int32_t *target,
                            const float *weight, float grad_scale, const tk_model_grads *g, const tk_adapter_bwd *ad,
                            const tk_recompute_hook *rc, double *loss_sum, double *weight_sum, double *head_s);
#endif
