/* The LM head in chunks of rows, shared by the objective building blocks (logp.c,
 * teacher.c, distill.c): selected rows of the hidden states go through the head a few at
 * a time (tk_lmhead_chunk_rows, ~8 MiB of logits), so the [T x V] logits never exist
 * whole; a per-chunk callback reads the logits and may turn them into d loss / d logits,
 * which are then pushed back through the head into dh and (trainable head) dW.
 * Dimension legend: T batch rows, C model dim, V vocabulary, r rows of a chunk.
 * Not public API. */
#ifndef TK_OBJECTIVE_CHUNKS_H
#define TK_OBJECTIVE_CHUNKS_H
#include "takumi/core.h"
#include "ops/ops.h"

/* Called once per chunk, in row order: rows[c0 .. c0+r) of the caller's row list,
 * logits [r x V] (f32, = the head applied to h[rows], soft-capped when the head is). With a gradient wanted the callback overwrites
 * logits with d loss / d logits (every row: zero rows are fine). */
typedef tk_status (*tk_head_chunk_fn)(void *ctx, int64_t c0, int64_t r, float *logits);

/* Runs h[rows[i]] ([T x C] rows, C = head->w->ne[0]) through the head (W ggml {C, V}, any
 * dtype; soft-capped when head->softcap > 0) in chunks, calling fn on each chunk's logits.
 * When dh or dw is non-NULL the callback's logit gradient is pushed back (through the cap):
 * dh[rows[i]] += dz_i · W (+=, so repeated rows add up;
 * rows not listed are untouched) and dw (f32 [V x C]) += dz^T · h[rows], z = h W^T.
 * rows must lie in [0, T) (the caller checks). Products use TK_MATMUL_EXACT (smooth in h).
 * Thread-safe for distinct outputs; deterministic for a given thread count. */
tk_status tk_head_chunks(const float *h, const tk_lm_head *head, const int64_t *rows, int64_t n,
                         tk_head_chunk_fn fn, void *ctx, float *dh, float *dw);

/* Gathers h[rows[i]] (rows of C floats) into out [n x C]. Reentrant. */
void tk_head_gather(float *out, const float *h, const int64_t *rows, int64_t n, int64_t C);

/* Checks a head: its weight 2-D (ne[2] = ne[3] = 1), C = ne[0] > 0, V = ne[1] > 0, data
 * present; softcap finite and >= 0. what names it in the message ("policy head"). Thread-safe. */
tk_status tk_head_check(const tk_lm_head *head, const char *what);
#endif
