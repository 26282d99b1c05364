/* Per-sequence log-probabilities of the targets, chunked over rows: the building block of
 * sequence-level objectives (DPO family, reward-weighted, GRPO), computed for a policy and
 * for a frozen reference alike (the functions only see hidden states and a head).
 * Dimension legend: T batch rows (B x Tc packed, flattened), C model dim, V vocabulary,
 * S sequences. A row t is counted in sequence seq[t] when seq[t] >= 0 and target[t] >= 0;
 * seq[t] = -1 leaves it out (prompt tokens, padding, a packed segment's last token).
 * logp_t = log softmax(h_t · W^T)[target[t]], natural log, computed per row in float logits
 * with the log-sum-exp in double; sums over rows in double, in row order (deterministic for
 * a given thread count, and equal for any chunk size up to the head product's rounding).
 * Gradient convention: dh and dw are accumulated (+=), so terms of one loss add up. */
#ifndef TK_OBJECTIVE_LOGP_H
#define TK_OBJECTIVE_LOGP_H
#include "takumi/core.h"
#include "ops/ops.h"

/* Forward: for each sequence s in [0, n_seq): sum[s] = sum of logp_t over its counted rows,
 * count[s] = their number, mean[s] = sum[s] / count[s] (0 when count is 0); token[t] = logp_t
 * on counted rows and 0 elsewhere. Outputs (=) may each be NULL. h [T x C], head ggml {C, V}
 * (any dtype). Fails with a message naming the row when target[t] >= V or seq[t] >= n_seq.
 * Reentrant (no shared state besides the chunk-size setting). */
tk_status tk_seq_logp_forward(const float *h, const tk_lm_head *head, int64_t T, const int32_t *target,
                              const int32_t *seq, int32_t n_seq, double *sum, double *mean, int64_t *count,
                              double *token);

/* Backward of tk_seq_logp_forward for the scalar
 *   L = sum_s d_sum[s] * sum[s] + d_mean[s] * mean[s] + sum_t d_token[t] * token[t]
 * (each coefficient array may be NULL = 0): dh [T x C] += dL/dh, dw (f32 [V x C], NULL for a
 * frozen head) += dL/dW. Rows whose coefficient is 0 cost nothing. Recomputes the logits of
 * the rows it needs (chunked). Same argument checks and thread safety as the forward. */
tk_status tk_seq_logp_backward(const float *h, const tk_lm_head *head, int64_t T, const int32_t *target,
                               const int32_t *seq, int32_t n_seq, const double *d_sum, const double *d_mean,
                               const double *d_token, float *dh, float *dw);
#endif
