/* NF4, the 4-bit NormalFloat of QLoRA as bitsandbytes defines it (quantize_4bit with
 * quant_type "nf4", blocksize 64, compress_statistics = True): each run of 64 values is
 * scaled by its absmax and every value rounded to the nearest of the 16 NF4 levels; the
 * absmax values are double-quantized: their mean (the offset) is subtracted and the rest
 * quantized to 8 bits with bitsandbytes' signed dynamic map, in groups of 256 blocks that
 * each keep an f32 scale. A tensor is quantized whole (blocks run over the flattened
 * tensor, as bitsandbytes does), into tk_nf4_state: bitsandbytes' own representation.
 *
 * For matmuls takumi stores each block with its scale resolved (tk_block_nf4, dtype
 * TK_NF4): the values are exactly bitsandbytes' dequantized values, and every row of a
 * weight is addressable on its own like any ggml block type. */
#ifndef TK_CORE_NF4_H
#define TK_CORE_NF4_H
#include "takumi/core.h"

#define TK_NF4_BLOCK 64  /* values per block */
#define TK_NF4_GROUP 256 /* blocks per second-level group of the double quantization */

/* x[2j] = tk_nf4_code[qs[j] >> 4] * d, x[2j+1] = tk_nf4_code[qs[j] & 15] * d (bitsandbytes' packing). */
typedef struct { float d; uint8_t qs[32]; } tk_block_nf4;
_Static_assert(sizeof(tk_block_nf4) == 36, "nf4 layout");

extern const float tk_nf4_code[16];     /* the NF4 levels, ascending, -1 .. 1 */
extern const float tk_nf4_dq_code[256]; /* bitsandbytes' create_dynamic_map(signed=True), ascending */

/* bitsandbytes' QuantState for one tensor of n values (n a multiple of 64). */
typedef struct tk_nf4_state {
    int64_t n;
    uint8_t *codes;    /* n/2 bytes: two 4-bit codes per byte, the first value in the high nibble */
    uint8_t *absmax_q; /* n/64 8-bit codes of the block scales (minus offset) */
    float *absmax2;    /* ceil(n/64/256) second-level scales */
    float offset;      /* mean of the block absmax values */
} tk_nf4_state;

/* Quantizes x[0..n) as bitsandbytes quantize_4bit(nf4, 64, compress_statistics) into *out
 * (allocated here; free with tk_nf4_state_free). n must be a positive multiple of 64.
 * Thread-safe (no shared state). */
tk_status tk_nf4_quantize(const float *x, int64_t n, tk_nf4_state *out);
/* Frees what tk_nf4_quantize allocated and zeroes *s; accepts a zeroed state. Thread-safe. */
void tk_nf4_state_free(tk_nf4_state *s);
/* Returns block b's scale after undoing the double quantization (dynamic_map[q] * absmax2 + offset in f32). Thread-safe. */
float tk_nf4_state_scale(const tk_nf4_state *s, int64_t b);
/* Writes the n/64 tk_block_nf4 of s into dst (the TK_NF4 layout). Thread-safe. */
void tk_nf4_state_to_blocks(const tk_nf4_state *s, void *dst);
/* Quantizes n values (a multiple of 64) as ONE bitsandbytes tensor straight to n/64 tk_block_nf4
 * at dst (any alignment; no allocation): the TK_NF4 quantizer of tk_quantize. Thread-safe. */
void tk_nf4_quantize_row(const float *x, void *dst, int64_t n);
/* tk_nf4_quantize_row in two passes, so that a tensor can be read chunk by chunk: the first writes
 * n values' (a multiple of 64) n/64 blocks at dst with their codes and raw absmax (a block's codes
 * depend on its own values only); call it for consecutive chunks of one tensor. Thread-safe. */
void tk_nf4_quantize_blocks(const float *x, void *dst, int64_t n);
/* The second pass over all nb blocks of the tensor at dst: the absmax values double-quantized as
 * one bitsandbytes tensor, each block's resolved scale stored in place. Thread-safe. */
void tk_nf4_resolve_scales(void *dst, int64_t nb);

/* The scalar TK_NF4 row dequantizer (the reference of the SIMD ones). Thread-safe. */
void tk_nf4_dequant_row_scalar(const void *src, float *dst, int64_t n);
/* One SIMD TK_NF4 dequantizer (same signature as tk_dequant_row_fn): isa 2 = AVX2, 512 = AVX-512;
 * NULL when this CPU (or this build) lacks it. tk_dequant_row_fn_for(TK_NF4) picks the widest. Thread-safe. */
typedef void (*tk_nf4_row_fn)(const void *src, float *dst, int64_t n);
tk_nf4_row_fn tk_nf4_dequant_row_simd(int isa);

#endif
