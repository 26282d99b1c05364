/* Ops of the transformer block, forward and backward: the kernels (embedding, RMSNorm, RoPE
 * rotation, attention, SwiGLU/GeGLU) dispatch to the active backend (src/ops/dispatch.c ->
 * backend/backend.h; the CPU's are in src/backend/cpu/); composite ops (linear, the chunked LM
 * head + cross-entropy, RoPE tables) live in src/ops/ and call the backend's matmul. Dimension legend: T rows (tokens, batch x sequence flattened),
 * C model dim, H query heads, KH key/value heads, D head dim, F SwiGLU hidden,
 * V vocabulary, S key length (cache length at inference).
 * Gradient convention: parameter gradients are accumulated (+=), activation
 * gradients are written (=), unless a function says otherwise. */
#ifndef TK_OPS_H
#define TK_OPS_H
#include "takumi/core.h"
#include "backend/backend.h"

/* out[T x C] = rows ids[t] of table [V x C] (any dtype). Fails on an id outside [0, V). */
tk_status tk_embedding_forward(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table);
/* dtable[V x C] += scatter of dout rows (f32 table gradient). */
void tk_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C);

/* out = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps); rstd[T] saved when non-NULL. out may alias x. */
void tk_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps);
/* dx = ...; dw += ... (dw may be NULL for a frozen norm). */
void tk_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int64_t T, int64_t C);

/* RoPE tables (tk_rope, backend/backend.h): cos/sin for positions [0, n_pos) and D/2 frequencies (Llama-3 / linear scaling applied). */
/* Builds the tables (theta, scaling from the model config); free with tk_rope_free. */
struct tk_model_config;
tk_status tk_rope_init(tk_rope *r, const struct tk_model_config *cfg, int64_t n_pos);
void tk_rope_free(tk_rope *r);
/* Rotates x[T x NH x D] in place by the angle of pos[t] (first 2*half dims of each head).
 * Positions outside [0, n_pos) are valid but computed on the fly (slow). */
void tk_rope_forward(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
/* Backward of the rotation (rotation by -angle), in place on dx. */
void tk_rope_backward(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);

/* Causal grouped-query attention for one sequence block (tk_attn_args, backend/backend.h).
 * q[Tq x H x D], k/v[S x KH x D], optional prefix a->pk/pv [P x KH x D]; out[Tq x H x D].
 * att (optional, [H x Tq x (P + S)]) keeps the probabilities for backward. */
tk_status tk_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a);
/* dq = ..., dk/dv written (=) from dout, the saved att (or NULL: recomputed) and q, k, v;
 * with a prefix, a->dpk/dpv (when set) accumulate (+=) its gradients. */
tk_status tk_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                                const float *q, const float *k, const float *v, const tk_attn_args *a);

/* out[n] = gelu_tanh(gate) * up, gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Gemma). */
void tk_geglu_forward(float *out, const float *gate, const float *up, int64_t n);
/* dgate, dup written from dout. */
void tk_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);

/* out[n] = silu(gate) * up. */
void tk_swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
/* dgate, dup written from dout. */
void tk_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);

/* Linear: y[T x N] = x[T x K] W^T + b (b may be NULL). See backend/backend.h. */
tk_status tk_linear_forward(float *y, const float *x, const tk_tensor_ref *w, const float *b, int64_t T);
/* Backward of tk_linear_forward: dx[T x K] = dy·W written (any weight dtype; skipped when NULL);
 * dw[N x K] += dy^T·x and db[N] += column sums of dy (each skipped when NULL, e.g. a frozen base). */
tk_status tk_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const tk_tensor_ref *w, int64_t T);

/* The LM head: logits z = h · W^T (W ggml {C, V}, any dtype), then, when softcap = c > 0,
 * c * tanh(z / c) (Gemma 2's final_logit_softcapping). A view: w is borrowed. */
typedef struct tk_lm_head { const tk_tensor_ref *w; float softcap; } tk_lm_head;
/* x[i] = c * tanh(x[i] / c) for i < n (c > 0). Reentrant. */
void tk_softcap_forward(float *x, int64_t n, float c);
/* dx[i] *= 1 - (y[i] / c)^2 for i < n, y the capped values: the gradient through the cap. Reentrant. */
void tk_softcap_backward(float *dx, const float *y, int64_t n, float c);
/* logits [T x V] = the head applied to h [T x C] (flags as tk_matmul_ex). */
tk_status tk_lm_head_logits(float *logits, const float *h, const tk_lm_head *head, int64_t T, int flags);

/* Chunked LM head + cross-entropy: logits of h[T x C] through the head never exist whole.
 * For each row t with target[t] >= 0 and weight[t] != 0 (weight may be NULL = 1):
 * loss_t = logsumexp(logits_t) - logits_t[target]. Returns sum of weight*loss in *loss_sum and
 * sum of weights in *weight_sum. When dh != NULL also writes dh = d(loss_sum * grad_scale)/dh,
 * and dW (f32 [V x C], may be NULL for a frozen head) accumulates the head gradient. */
tk_status tk_lmhead_xent(const float *h, const tk_lm_head *head, const int32_t *target, const float *weight,
                         int64_t T, float grad_scale, double *loss_sum, double *weight_sum, float *dh, float *dw);
/* One row's softmax at its target from e = exp(logit - max) (V entries, as tk_vexp_sum leaves them) and
 * lt_mx = logit[t] - max: the normaliser in double, the mass off the target (rest = sum over j != t, so
 * 1 - p_t = rest / sum without the cancellation of 1 - e_t / sum) and log p_t (as -log1p(rest / e_t) when
 * the target holds most of the mass). Thread-safe. */
/* sum of x[0..n) accumulated in double. Thread-safe. */
double tk_sum_f64(const float *x, int64_t n);
typedef struct tk_softmax_at {
    double sum, rest, logp;
} tk_softmax_at;
tk_softmax_at tk_softmax_at_target(const float *e, int64_t V, int32_t t, float lt_mx);
/* The same from the row's normaliser sum = sum_j e[j] (double) and et = e[t]: a row's sum computed once serves
 * every target of it (log-probabilities of several ids). Thread-safe. */
tk_softmax_at tk_softmax_at_sum(double sum, float et, float lt_mx);
/* Tests: force the number of rows per chunk of tk_lmhead_xent (0 = automatic, ~8 MiB of logits). Not thread-safe. */
void tk_lmhead_xent_chunk_rows(int64_t rows);
/* Rows per chunk for a head of vocabulary V: the count forced by tk_lmhead_xent_chunk_rows, else about
 * 8 MiB of f32 logits (at least 8). tk_lmhead_xent and the objective kernels (src/objective/) share it. */
int64_t tk_lmhead_chunk_rows(int64_t V);
#endif
