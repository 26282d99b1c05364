/* PiSSA and OLoRA: LoRA initialised from the base weight (PEFT's init_lora_weights="pissa" /
 * "olora", peft/tuners/lora/layer.py pissa_init / olora_init), and the conversion PEFT applies
 * at save time (save_pretrained(path_initial_model_for_weight_conversion=...)) so that the
 * adapter file loads on the ORIGINAL base.
 *
 * For a linear with weight W [N x K] (out x in, torch layout) and LoRA scale s:
 *   pissa: W = U S V^T (exact SVD), A0 = sqrt(S_r / s) V_r^T [r x K], B0 = U_r sqrt(S_r / s) [N x r]
 *   olora: W = Q R (Householder QR, LAPACK's sign convention: R's diagonal is -sign(pivot)·norm),
 *          A0 = R[:r] [r x K], B0 = Q[:, :r] [N x r] (no division by s, as PEFT)
 * and PEFT replaces the base by the residual W - s B0 A0. takumi keeps the base as loaded and
 * keeps A0, B0 beside the trained A, B: each adapted linear adds s (x A^T) B^T - s (x A0^T) B0^T
 * (the second product on the input before dropout, as the base sees it), which is the residual
 * base plus the adapter in exact arithmetic for every base dtype (quantized bases included, at
 * no memory cost beyond A0 and B0), and is at the same time the rank-2r LoRA
 *   A' = [A; A0] [2r x K],  B' = [B, -B0] [N x 2r],  alpha' = 2 alpha (rsLoRA: sqrt(2) alpha)
 * that PEFT's conversion writes. A0/B0 are recomputed from the base (deterministically) when a
 * run is resumed: checkpoints hold only A and B. */
#ifndef TK_PEFT_LORA_INIT_H
#define TK_PEFT_LORA_INIT_H
#include "peft/lora.h"

/* Is `init` available in this build? (PiSSA needs LAPACK's dgesdd: builds with OpenBLAS.) Thread-safe. */
bool tk_lora_init_available(tk_lora_init init);

/* From W [N x K] (f32, row-major, q/k rows in HF order), rank r <= min(N, K) and LoRA scale s > 0,
 * writes A0 [r x K] and B0 [N x r] (f32, row-major) per PEFT's pissa_init (exact SVD in double)
 * or olora_init (r Householder reflections in double). Thread-safe (allocates its own work). */
tk_status tk_lora_pissa(const float *W, int64_t N, int64_t K, int64_t r, float s, float *A0, float *B0);
tk_status tk_lora_olora(const float *W, int64_t N, int64_t K, int64_t r, float s, float *A0, float *B0);

/* The rank an adapter file of l holds: r, or 2r for PiSSA/OLoRA (the converted LoRA). Thread-safe. */
int64_t tk_lora_written_rank(const tk_lora *l);
/* The lora_alpha an adapter file of l says: alpha, or PEFT's converted 2 alpha (rsLoRA: sqrt(2) alpha). */
float tk_lora_written_alpha(const tk_lora *l);
/* Module (layer, which) as an adapter file holds it, q/k rows in the model's order: a [rr x K] and
 * b [N x rr] (rr = tk_lora_written_rank; caller's buffers) = A and B, or [A; A0] and [B, -B0].
 * False when l has no adapter there. Not thread-safe against training steps of l. */
bool tk_lora_written_module(tk_lora *l, int32_t layer, tk_linear_id which, float *a, float *b);
#endif
