/* The GEMM micro-kernels and their packers (the table of src/backend/cpu/sgemm.h):
 *   scalar      4 x 16, plain C (what any CPU runs)
 *   avx2        6 x 16, 12 ymm accumulators, vfmadd231ps ymm          (AVX2 + FMA)
 *   avx512     12 x 32, 24 zmm accumulators, vfmadd231ps zmm          (AVX-512F)
 *   avx512bf16 12 x 32, 24 zmm accumulators, vdpbf16ps on bf16 pairs  (AVX-512F + AVX512-BF16)
 * fp32 panels: A as [kc][mr], B as [kc][nr]. bf16 panels hold k in pairs (vdpbf16ps multiplies
 * and adds two consecutive k per fp32 lane): A as [kc/2][mr][2], B as [kc/2][nr][2], an odd kc
 * padded with a zero k. Each SIMD function carries its target attribute, so the file compiles on
 * any x86-64 build (no -march needed) and the dispatcher calls only what CPUID allows. */
#include "backend/cpu/sgemm.h"
#include "core/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TK_X86 1
#endif

/* The fp32 packer, width (mr or nr) as a parameter: dst[k * width + c] = S(k0 + k, j0 + c) for c < w, zero
 * for w <= c < width, where S(k, j) = trans ? S[j * ld + k] : S[k * ld + j]. op(B) is S = B with trans_b;
 * op(A) is the same with rows for columns: S = A, trans = !trans_a, (k0, j0) = (k0, i0). Loops in the
 * order that reads S contiguously. */
static inline void pack_f32(float *dst, int width, const float *S, bool trans, int64_t ld, int64_t k0, int64_t kc, int64_t j0,
                            int64_t w) {
    if (trans)
        for (int64_t c = 0; c < w; c++)
            for (int64_t k = 0; k < kc; k++) dst[k * width + c] = S[(j0 + c) * ld + k0 + k];
    else
        for (int64_t k = 0; k < kc; k++)
            for (int64_t c = 0; c < w; c++) dst[k * width + c] = S[(k0 + k) * ld + j0 + c];
    for (int64_t k = 0; k < kc; k++)
        for (int64_t c = w; c < width; c++) dst[k * width + c] = 0;
}

#define PACKERS(name, MR, NR)                                                                                                  \
    static void name##_pack_b(void *dst, const float *B, bool tb, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t w) { \
        pack_f32(dst, NR, B, tb, ldb, k0, kc, j0, w);                                                                           \
    }                                                                                                                           \
    static void name##_pack_a(void *dst, const float *A, bool ta, int64_t lda, int64_t i0, int64_t k0, int64_t kc, int64_t h) { \
        pack_f32(dst, MR, A, !ta, lda, k0, kc, i0, h);                                                                          \
    }

/* C[h x w] += alpha * acc[h x nr] (the edge tiles; full ones are updated in registers). */
static void add_edge(const float *acc, int nr, float *C, int64_t ldc, float alpha, int h, int w) {
    for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++) C[r * ldc + q] += alpha * acc[r * nr + q];
}

/* --- scalar ------------------------------------------------------------------------------ */
static void scalar_micro(int64_t kc, const void *ap, const void *bp, float *C, int64_t ldc, float alpha, int h, int w) {
    const float *a = ap, *b = bp;
    float acc[4 * 16] = {0};
    for (int64_t k = 0; k < kc; k++, a += 4, b += 16)
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 16; c++) acc[r * 16 + c] += a[r] * b[c];
    add_edge(acc, 16, C, ldc, alpha, h, w);
}
PACKERS(scalar, 4, 16)
static bool cpu_any(void) { return true; }

#ifdef TK_X86
/* --- AVX2 + FMA: 6 x 16 ------------------------------------------------------------------ */
__attribute__((target("avx2,fma"))) static void avx2_micro(int64_t kc, const void *ap, const void *bp, float *C, int64_t ldc, float alpha, int h,
                                                        int w) {
    const float *a = ap, *b = bp;
    __m256 c[6][2];
    _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++) {
            __m256 x = _mm256_broadcast_ss(a + r);
            c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
        }
    }
    if (h == 6 && w == 16) {
        __m256 al = _mm256_set1_ps(alpha);
        _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++) {
            float *cr = C + r * ldc;
            _mm256_storeu_ps(cr, _mm256_fmadd_ps(al, c[r][0], _mm256_loadu_ps(cr)));
            _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(al, c[r][1], _mm256_loadu_ps(cr + 8)));
        }
        return;
    }
    float acc[6 * 16];
    _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++) _mm256_storeu_ps(acc + r * 16, c[r][0]), _mm256_storeu_ps(acc + r * 16 + 8, c[r][1]);
    add_edge(acc, 16, C, ldc, alpha, h, w);
}
PACKERS(avx2, 6, 16)
static bool cpu_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

/* --- AVX-512 packing: 16 x 16 blocks transposed in registers ------------------------------- */
#define AVX512_TARGET __attribute__((target("avx512f")))
/* r[j][i] <- r[i][j] (a 16 x 16 block of 32-bit elements). */
AVX512_TARGET static inline void tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]), t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88), t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88), t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88), r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
}
static inline __mmask16 lanes(int64_t n) { return (__mmask16)(n >= 16 ? 0xffff : n <= 0 ? 0 : (1u << n) - 1); }
/* dst[k * stride + r] = src[r * ld + k] for r < h, k < n; zero for h <= r < width (h, width <= 16). */
AVX512_TARGET static void rows_to_cols(float *dst, int64_t stride, int width, const float *src, int64_t ld, int64_t h, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        int64_t m = n - k < 16 ? n - k : 16;
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < h ? _mm512_maskz_loadu_ps(lanes(m), src + i * ld + k) : _mm512_setzero_ps();
        tr16(r);
        for (int64_t q = 0; q < m; q++) _mm512_mask_storeu_ps(dst + (k + q) * stride, lanes(width), r[q]);
    }
}

/* --- AVX-512F: 12 x 32 ------------------------------------------------------------------- */
__attribute__((target("avx512f"))) static void avx512_micro(int64_t kc, const void *ap, const void *bp, float *C, int64_t ldc, float alpha, int h,
                                                        int w) {
    const float *a = ap, *b = bp;
    __m512 c[12][2];
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += 12, b += 32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) {
            __m512 x = _mm512_set1_ps(a[r]);
            c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
    __mmask16 m0 = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1), m1 = (__mmask16)(w >= 32 ? 0xffff : w > 16 ? (1u << (w - 16)) - 1 : 0);
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) {
        if (r >= h) break;
        float *cr = C + r * ldc;
        _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(al, c[r][0], _mm512_maskz_loadu_ps(m0, cr)));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(al, c[r][1], _mm512_maskz_loadu_ps(m1, cr + 16)));
    }
}
/* pack_f32 with the transposing case (S's rows become columns) through 16 x 16 register transposes. */
AVX512_TARGET static void pack512(float *dst, int width, const float *S, bool trans, int64_t ld, int64_t k0, int64_t kc, int64_t j0,
                                  int64_t w) {
    if (!trans) { pack_f32(dst, width, S, false, ld, k0, kc, j0, w); return; }
    for (int g = 0; g * 16 < width; g++)
        rows_to_cols(dst + 16 * g, width, width - 16 * g < 16 ? width - 16 * g : 16, S + (j0 + 16 * g) * ld + k0, ld, w - 16 * g, kc);
}
AVX512_TARGET static void avx512_pack_b(void *dst, const float *B, bool tb, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t w) {
    pack512(dst, 32, B, tb, ldb, k0, kc, j0, w);
}
AVX512_TARGET static void avx512_pack_a(void *dst, const float *A, bool ta, int64_t lda, int64_t i0, int64_t k0, int64_t kc, int64_t h) {
    pack512(dst, 12, A, !ta, lda, k0, kc, i0, h);
}
static bool cpu_avx512(void) { return __builtin_cpu_supports("avx512f"); }

/* --- AVX512-BF16: 12 x 32 on bf16 pairs --------------------------------------------------- */
#define BF16_TARGET __attribute__((target("avx512f,avx512bf16")))
/* dst32[p * stride + r] = (bf16 src[r * ld + 2p], bf16 src[r * ld + 2p + 1]) for r < h, 2p < n (an odd n's last
 * pair padded with zero); zero for h <= r < width (h, width <= 16). */
BF16_TARGET static void rows_to_pairs(uint32_t *dst, int64_t stride, int width, const float *src, int64_t ld, int64_t h, int64_t n) {
    for (int64_t k = 0; k < n; k += 32) {
        int64_t m = n - k < 32 ? n - k : 32;
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < h ? (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(lanes(m - 16), src + i * ld + k + 16),
                                                       _mm512_maskz_loadu_ps(lanes(m), src + i * ld + k))
                         : _mm512_setzero_ps();
        tr16(r);
        for (int64_t q = 0; q < (m + 1) / 2; q++) _mm512_mask_storeu_ps((float *)(dst + (k / 2 + q) * stride), lanes(width), r[q]);
    }
}
/* dst32[r] = (bf16 lo[r], bf16 hi[r]) for r < h (h <= width; hi NULL: zeros), zero for h <= r < width. */
BF16_TARGET static void interleave(uint32_t *dst, int width, const float *lo, const float *hi, int64_t h) {
    for (int r = 0; r < width; r += 16) {
        int64_t m = h - r < 0 ? 0 : h - r < 16 ? h - r : 16;
        __mmask16 lm = (__mmask16)((1u << m) - 1), sm = (__mmask16)((1u << (width - r < 16 ? width - r : 16)) - 1);
        __m512i x = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lm, lo + r)));
        if (hi) {
            __m512i y = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lm, hi + r)));
            x = _mm512_or_si512(x, _mm512_slli_epi32(y, 16));
        }
        _mm512_mask_storeu_epi32(dst + r, sm, x);
    }
}
/* The bf16 packer in pack_f32's terms: (k, c) as the 32-bit pair [k/2][c] of dst (width 12 or 32). */
BF16_TARGET static void pack_bf16(uint32_t *d, int width, const float *S, bool trans, int64_t ld, int64_t k0, int64_t kc, int64_t j0,
                                  int64_t w) {
    if (trans)
        for (int g = 0; g * 16 < width; g++)
            rows_to_pairs(d + 16 * g, width, width - 16 * g < 16 ? width - 16 * g : 16, S + (j0 + 16 * g) * ld + k0, ld, w - 16 * g, kc);
    else
        for (int64_t p = 0; p < (kc + 1) / 2; p++)
            interleave(d + p * width, width, S + (k0 + 2 * p) * ld + j0, 2 * p + 1 < kc ? S + (k0 + 2 * p + 1) * ld + j0 : NULL, w);
}
BF16_TARGET static void bf16_pack_b(void *dst, const float *B, bool tb, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t w) {
    pack_bf16(dst, 32, B, tb, ldb, k0, kc, j0, w);
}
BF16_TARGET static void bf16_pack_a(void *dst, const float *A, bool ta, int64_t lda, int64_t i0, int64_t k0, int64_t kc, int64_t h) {
    pack_bf16(dst, 12, A, !ta, lda, k0, kc, i0, h);
}
BF16_TARGET static void bf16_micro(int64_t kc, const void *ap, const void *bp, float *C, int64_t ldc, float alpha, int h, int w) {
    const int32_t *a = ap;        /* one (k, k+1) pair of bf16 per row */
    const uint16_t *b = bp;
    __m512 c[12][2];
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k += 2, a += 12, b += 64) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 32);
        _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32(a[r]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], x, b0);
            c[r][1] = _mm512_dpbf16_ps(c[r][1], x, b1);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
    __mmask16 m0 = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1), m1 = (__mmask16)(w >= 32 ? 0xffff : w > 16 ? (1u << (w - 16)) - 1 : 0);
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) {
        if (r >= h) break;
        float *cr = C + r * ldc;
        _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(al, c[r][0], _mm512_maskz_loadu_ps(m0, cr)));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(al, c[r][1], _mm512_maskz_loadu_ps(m1, cr + 16)));
    }
}
static bool cpu_avx512bf16(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"); }
#endif

static const tk_sgemm_kernel kernels[] = {
    {"scalar", NULL, 4, 16, 256, 96, false, scalar_micro, scalar_pack_b, scalar_pack_a, cpu_any},
#ifdef TK_X86
    {"avx2", "CPU lacks avx2+fma", 6, 16, 256, 96, false, avx2_micro, avx2_pack_b, avx2_pack_a, cpu_avx2},
    {"avx512", "CPU lacks avx512f", 12, 32, 192, 96, false, avx512_micro, avx512_pack_b, avx512_pack_a, cpu_avx512},
    {"avx512bf16", "CPU lacks avx512f+avx512bf16", 12, 32, 384, 96, true, bf16_micro, bf16_pack_b, bf16_pack_a, cpu_avx512bf16},
#endif
};

const tk_sgemm_kernel *tk_sgemm_kernels(int *n) {
    *n = (int)(sizeof kernels / sizeof kernels[0]);
    return kernels;
}

const tk_sgemm_kernel *tk_sgemm_kernel_find(const char *name) {
    for (size_t i = 0; name && i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcmp(kernels[i].name, name)) return &kernels[i];
    return NULL;
}

const char *tk_sgemm_kernel_unsupported(const tk_sgemm_kernel *k) {
    if (!k) return "no such kernel";
#ifdef TK_X86
    __builtin_cpu_init(); /* (callable before constructors have run) */
#endif
    return k->cpu_has() ? NULL : k->lacks;
}
