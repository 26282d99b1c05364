/* Random but valid weight bytes of any dtype for the matmul tests: random quants, scale fields set
 * to moderate halves (so every block type, K-quants included, can be made without a quantizer). */
#ifndef TK_TESTS_RANDOM_WEIGHT_H
#define TK_TESTS_RANDOM_WEIGHT_H
#include "test.h"
#include "core/core.h"
#include "core/quant.h"

/* [N x K] of dtype t (K a whole number of blocks); *nbytes gets the size. Free with free(). */
static void *random_weight(tk_rng *rng, tk_dtype t, int64_t N, int64_t K, size_t *nbytes) {
    size_t rb;
    tk_dtype_nbytes(t, K, &rb);
    *nbytes = rb * (size_t)N;
    uint8_t *w = malloc(*nbytes);
    for (size_t i = 0; i < *nbytes; i++) w[i] = (uint8_t)tk_rng_u64(rng);
    int64_t nblk = N * (K / tk_dtype_block_elems(t));
    size_t bb = tk_dtype_block_bytes(t);
    #define H(s) tk_f32_to_f16(s * (0.5f + tk_rng_uniform(rng)))
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *p = w + (size_t)b * bb;
        switch (t) {
        case TK_F32: { float f = tk_rng_normal(rng); memcpy(p, &f, 4); } break;
        case TK_F16: { uint16_t h = tk_f32_to_f16(tk_rng_normal(rng)); memcpy(p, &h, 2); } break;
        case TK_BF16: { uint16_t h = tk_f32_to_bf16(tk_rng_normal(rng)); memcpy(p, &h, 2); } break;
        case TK_Q4_0: ((tk_block_q4_0 *)p)->d = H(0.1f); break;
        case TK_Q4_1: ((tk_block_q4_1 *)p)->d = H(0.1f); ((tk_block_q4_1 *)p)->m = H(-0.5f); break;
        case TK_Q5_0: ((tk_block_q5_0 *)p)->d = H(0.05f); break;
        case TK_Q5_1: ((tk_block_q5_1 *)p)->d = H(0.05f); ((tk_block_q5_1 *)p)->m = H(-0.5f); break;
        case TK_Q8_0: ((tk_block_q8_0 *)p)->d = H(0.01f); break;
        case TK_Q2_K: ((tk_block_q2_k *)p)->d = H(0.02f); ((tk_block_q2_k *)p)->dmin = H(0.01f); break;
        case TK_Q3_K: ((tk_block_q3_k *)p)->d = H(0.02f); break;
        case TK_Q4_K: ((tk_block_q4_k *)p)->d = H(0.01f); ((tk_block_q4_k *)p)->dmin = H(0.01f); break;
        case TK_Q5_K: ((tk_block_q5_k *)p)->d = H(0.01f); ((tk_block_q5_k *)p)->dmin = H(0.01f); break;
        case TK_Q6_K: ((tk_block_q6_k *)p)->d = H(0.002f); break;
        case TK_NF4: { float d = 0.1f * (0.5f + tk_rng_uniform(rng)); memcpy(p, &d, 4); } break;
        default: break;
        }
    }
    #undef H
    return w;
}

/* Every weight dtype the matmuls take. */
static const tk_dtype k_weight_types[] = {TK_F32, TK_F16, TK_BF16, TK_Q8_0, TK_Q4_0, TK_Q4_1, TK_Q5_0, TK_Q5_1,
                                          TK_Q2_K, TK_Q3_K, TK_Q4_K, TK_Q5_K, TK_Q6_K, TK_NF4};
#define N_WEIGHT_TYPES (int)(sizeof k_weight_types / sizeof k_weight_types[0])
#endif
