/* Internal quantization API: ggml-compatible block layouts and per-row converters
 * without error paths, for kernels (matmul, ops) that have already validated the
 * dtype and the element count. The public, checked entry points are tk_dequantize
 * and tk_quantize in takumi/core.h. Layouts follow ggml (ggml-common.h): every
 * multi-byte field is little-endian and blocks are packed (no padding), so a row of
 * n elements is n / block_elems consecutive blocks. */
#ifndef TK_CORE_QUANT_H
#define TK_CORE_QUANT_H
#include "takumi/core.h"

#define TK_QK 32    /* elements per block of the *_0 / *_1 types */
#define TK_QK_K 256 /* elements per super-block of the K types */

/* f16 fields are raw IEEE half bits (uint16_t). */
typedef struct { uint16_t d; uint8_t qs[16]; } tk_block_q4_0;            /* x = d * (q - 8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } tk_block_q4_1;         /* x = d * q + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } tk_block_q5_0; /* x = d * (q - 16), 5th bit in qh */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } tk_block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } tk_block_q8_0;             /* x = d * q */
typedef struct { uint16_t d, s; int8_t qs[32]; } tk_block_q8_1;          /* s = d * sum(q) */
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } tk_block_q2_k;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } tk_block_q3_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } tk_block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } tk_block_q5_k;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } tk_block_q6_k;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } tk_block_q8_k; /* bsums[i] = sum of qs[16i..16i+15] */

_Static_assert(sizeof(tk_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(tk_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(tk_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(tk_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(tk_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(tk_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(tk_block_q2_k) == 84, "q2_k layout");
_Static_assert(sizeof(tk_block_q3_k) == 110, "q3_k layout");
_Static_assert(sizeof(tk_block_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(tk_block_q5_k) == 176, "q5_k layout");
_Static_assert(sizeof(tk_block_q6_k) == 210, "q6_k layout");
_Static_assert(sizeof(tk_block_q8_k) == 292, "q8_k layout");

/* A row converter: n elements (a multiple of the dtype's block size) from src to dst.
 * No checks, no errors; thread-safe; src needs no alignment. */
typedef void (*tk_dequant_row_fn)(const void *src, float *dst, int64_t n);
typedef void (*tk_quant_row_fn)(const float *src, void *dst, int64_t n);

/* Returns the dequantizer for t (SIMD when built for a CPU that has it), or NULL when t has none. */
tk_dequant_row_fn tk_dequant_row_fn_for(tk_dtype t);
/* Returns the reference quantizer for t, or NULL when takumi cannot quantize to t. */
tk_quant_row_fn tk_quant_row_fn_for(tk_dtype t);
/* Dequantizes n elements of dtype t (caller validated t and n). Same as tk_dequant_row_fn_for(t)(src, dst, n). */
void tk_dequant_row(tk_dtype t, const void *src, float *dst, int64_t n);
/* Quantizes n f32 values to dtype t (caller validated t and n; t must have a quantizer). */
void tk_quant_row(tk_dtype t, const float *src, void *dst, int64_t n);

/* The portable scalar dequantizer for t (the reference every SIMD path is tested against), or NULL. */
tk_dequant_row_fn tk_dequant_row_fn_scalar(tk_dtype t);

/* Decodes the 6-bit scale and min of sub-block j (0..7) from a Q4_K/Q5_K scales[12] field. */
static inline void tk_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
