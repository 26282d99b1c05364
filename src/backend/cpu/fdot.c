/* Exact few-row kernels: one weight row (half or quantized) dotted with an f32
 * activation row, dequantizing in registers (no row buffer, x never quantized). For
 * the block types the scale is applied once per block: w·x = d·Σq·x + m·Σx, with the
 * per-32 sums Σx of the activation row computed once per matmul. This is the
 * TK_MATMUL_EXACT decode path: within a few float roundings of the dequantize-then-dot
 * reference (tests/test_matmul.c), at close to the speed of the int8 path. */
#include "backend/cpu/kernels.h"
#include "core/core.h"
#include "core/quant.h"
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define TK_FDOT_AVX2 1
#endif

bool tk_cpu_has_fdot(tk_dtype t) {
#ifdef TK_FDOT_AVX2
    return t == TK_Q4_0 || t == TK_Q4_1 || t == TK_Q8_0 || t == TK_F16 || t == TK_BF16 || t == TK_F32;
#else
    (void)t;
    return false;
#endif
}

void tk_cpu_block_sums(const float *x, float *sums, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        float s = 0;
        for (int i = 0; i < 32; i++) s += x[b * 32 + i];
        sums[b] = s;
    }
}

void tk_cpu_fdot_prepare(tk_dtype t, const float *x, float *xp, float *sums, int64_t n) {
    tk_cpu_block_sums(x, sums, n);
    if (t != TK_Q4_0 && t != TK_Q4_1) {
        memcpy(xp, x, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t b = 0; b < n / 32; b++) /* group j: elements 4j..4j+3, then 16+4j..16+4j+3 */
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 4; i++) {
                xp[b * 32 + 8 * j + i] = x[b * 32 + 4 * j + i];
                xp[b * 32 + 8 * j + 4 + i] = x[b * 32 + 16 + 4 * j + i];
            }
}

#ifdef TK_FDOT_AVX2
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline __m256 u8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
static inline __m256 s8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* Σ q·x over one 32-block of nibbles against x in the fdot_prepare order. The 16 bytes
 * are broadcast to both 128-bit lanes; the low lane keeps the low nibbles (elements
 * 0..15), the high lane the high ones (16..31); an in-lane byte shuffle then spreads
 * four bytes per lane into dwords: group j = elements 4j..4j+3 and 16+4j..16+4j+3, the
 * order tk_cpu_fdot_prepare lays x out in. In-lane shuffles instead of cross-lane byte
 * widening: the widening was the bottleneck of this kernel. */
static inline void nib_floats(const uint8_t *qs, __m256 q[4]) {
    const __m256i m = _mm256_set1_epi8(0x0F);
    __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    __m256i v = _mm256_and_si256(_mm256_blend_epi32(raw, _mm256_srli_epi16(raw, 4), 0xF0), m);
#define Z (char)0x80
#define SH(j) _mm256_setr_epi8(4 * j, Z, Z, Z, 4 * j + 1, Z, Z, Z, 4 * j + 2, Z, Z, Z, 4 * j + 3, Z, Z, Z, \
                               4 * j, Z, Z, Z, 4 * j + 1, Z, Z, Z, 4 * j + 2, Z, Z, Z, 4 * j + 3, Z, Z, Z)
    q[0] = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, SH(0)));
    q[1] = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, SH(1)));
    q[2] = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, SH(2)));
    q[3] = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, SH(3)));
#undef SH
#undef Z
}
/* Σ q·x of one 32-block whose weights are decoded into q[4] (groups of 8, in the x order of xp). */
static inline __m256 block_dot(const __m256 q[4], const float *xp) {
    __m256 a = _mm256_mul_ps(q[0], _mm256_loadu_ps(xp));
    __m256 b = _mm256_mul_ps(q[1], _mm256_loadu_ps(xp + 8));
    a = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xp + 16), a);
    b = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xp + 24), b);
    return _mm256_add_ps(a, b);
}
static inline __m256 nib_dot(const uint8_t *qs, const float *xp) {
    __m256 q[4];
    nib_floats(qs, q);
    return block_dot(q, xp);
}
static inline void q8_floats(const uint8_t *qs, __m256 q[4]) {
    for (int j = 0; j < 4; j++) q[j] = s8f(_mm_loadl_epi64((const __m128i *)(qs + 8 * j)));
}

static float fdot_q4(const uint8_t *w, const float *x, const float *xs, int64_t nb, bool has_m) {
    __m256 acc = _mm256_setzero_ps();
    float macc = 0;
    size_t bb = has_m ? sizeof(tk_block_q4_1) : sizeof(tk_block_q4_0);
    for (int64_t i = 0; i < nb; i++, w += bb) {
        uint16_t dh, mh = 0;
        memcpy(&dh, w, 2);
        if (has_m) memcpy(&mh, w + 2, 2);
        float d = _cvtsh_ss(dh), m = has_m ? _cvtsh_ss(mh) : -8.0f * d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), nib_dot(w + (has_m ? 4 : 2), x + i * 32), acc);
        macc += m * xs[i];
    }
    return hsum8(acc) + macc;
}

static float fdot_q8_0(const uint8_t *w, const float *x, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += sizeof(tk_block_q8_0)) {
        uint16_t dh;
        memcpy(&dh, w, 2);
        __m256 q[4];
        q8_floats(w + 2, q);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(dh)), block_dot(q, x + i * 32), acc);
    }
    return hsum8(acc);
}

/* Four activation rows against one weight row of Q4_0/Q4_1/Q8_0: each block is decoded once for
 * the four; per row the same operations in the same order as fdot_q4 / fdot_q8_0. */
static void fdot4_blocks(tk_dtype t, const uint8_t *w, const float *x, int64_t xstride, const float *xs, int64_t sstride,
                         int64_t nb, float out[4]) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float macc[4] = {0, 0, 0, 0};
    const bool q8 = t == TK_Q8_0, has_m = t == TK_Q4_1;
    const size_t bb = q8 ? sizeof(tk_block_q8_0) : has_m ? sizeof(tk_block_q4_1) : sizeof(tk_block_q4_0);
    for (int64_t i = 0; i < nb; i++, w += bb) {
        uint16_t dh, mh = 0;
        memcpy(&dh, w, 2);
        if (has_m) memcpy(&mh, w + 2, 2);
        float d = _cvtsh_ss(dh), m = has_m ? _cvtsh_ss(mh) : -8.0f * d;
        __m256 q[4], dv = _mm256_set1_ps(d);
        if (q8) q8_floats(w + 2, q);
        else nib_floats(w + (has_m ? 4 : 2), q);
        for (int j = 0; j < 4; j++) {
            acc[j] = _mm256_fmadd_ps(dv, block_dot(q, x + j * xstride + i * 32), acc[j]);
            if (!q8) macc[j] += m * xs[j * sstride + i];
        }
    }
    for (int j = 0; j < 4; j++) out[j] = q8 ? hsum8(acc[j]) : hsum8(acc[j]) + macc[j];
}

static float fdot_f16(const uint16_t *w, const float *x, int64_t n) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a);
        b = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8), b);
    }
    float s = hsum8(_mm256_add_ps(a, b));
    for (; i < n; i++) s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

static inline __m256 bf8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
static float fdot_bf16(const uint16_t *w, const float *x, int64_t n) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_fmadd_ps(bf8(w + i), _mm256_loadu_ps(x + i), a);
        b = _mm256_fmadd_ps(bf8(w + i + 8), _mm256_loadu_ps(x + i + 8), b);
    }
    float s = hsum8(_mm256_add_ps(a, b));
    for (; i < n; i++) s += tk_bf16_to_f32(w[i]) * x[i];
    return s;
}

static float fdot_f32(const float *w, const float *x, int64_t n) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a);
        b = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), b);
    }
    float s = hsum8(_mm256_add_ps(a, b));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}
#endif

void tk_cpu_fdot4(tk_dtype t, const void *w, const float *x, int64_t xstride, const float *xsums, int64_t sstride, int64_t n,
                  float out[4]) {
#ifdef TK_FDOT_AVX2
    if (t == TK_Q4_0 || t == TK_Q4_1 || t == TK_Q8_0) {
        fdot4_blocks(t, w, x, xstride, xsums, sstride, n / 32, out);
        return;
    }
#endif
    for (int j = 0; j < 4; j++) out[j] = tk_cpu_fdot(t, w, x + j * xstride, xsums + j * sstride, n);
}

float tk_cpu_fdot(tk_dtype t, const void *w, const float *x, const float *xsums, int64_t n) {
#ifdef TK_FDOT_AVX2
    switch (t) {
    case TK_Q4_0: return fdot_q4(w, x, xsums, n / 32, false);
    case TK_Q4_1: return fdot_q4(w, x, xsums, n / 32, true);
    case TK_Q8_0: return fdot_q8_0(w, x, n / 32);
    case TK_F16: return fdot_f16(w, x, n);
    case TK_BF16: return fdot_bf16(w, x, n);
    case TK_F32: return fdot_f32(w, x, n);
    default: break;
    }
#endif
    (void)t; (void)w; (void)x; (void)xsums; (void)n;
    return 0.0f;
}
