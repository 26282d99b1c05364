/* AVX2 (+F16C) dequantizers for the block types that real models use most
 * (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, and NF4 also with AVX-512). Chosen at run time from the
 * CPU's features, so a portable build (NATIVE=0) still gets them. Each one does
 * exactly the arithmetic of its scalar reference in quant.c (multiply, then add: no
 * FMA), so the results are bit-identical; tests/test_quant.c checks that. */
#include "core/core.h"
#include "core/quant.h"
#include "core/nf4.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <cpuid.h>

#define AVX2 __attribute__((target("avx2,f16c")))

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
/* Exact f16 -> f32 (same value as tk_f16_to_f32, including subnormals). */
AVX2 static inline float h2f(const uint8_t *p) { return _cvtsh_ss(rd16(p)); }

/* 8 bytes at p (unsigned or signed) -> 8 floats. */
AVX2 static inline __m256 u8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
AVX2 static inline __m256 i8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

AVX2 static void f16_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) y[i] = h2f(p + 2 * i);
}

AVX2 static void bf16_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) y[i] = tk_bf16_to_f32(rd16(p + 2 * i));
}

AVX2 static void q8_0_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 34, y += TK_QK) {
        const __m256 d = _mm256_set1_ps(h2f(b));
        for (int k = 0; k < 4; k++) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(b + 2 + 8 * k));
            _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(i8x8_ps(q), d));
        }
    }
}

/* Stores 16 signed bytes v times d (+ m when add) at y. */
AVX2 static inline void store16(float *y, __m128i v, __m256 d) {
    _mm256_storeu_ps(y, _mm256_mul_ps(i8x8_ps(v), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(i8x8_ps(_mm_srli_si128(v, 8)), d));
}
AVX2 static inline void store16_add(float *y, __m128i v, __m256 d, __m256 m) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(u8x8_ps(v), d), m));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(u8x8_ps(_mm_srli_si128(v, 8)), d), m));
}

AVX2 static void q4_0_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m128i mask = _mm_set1_epi8(0xF), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / TK_QK; i++, b += 18, y += TK_QK) {
        const __m256 d = _mm256_set1_ps(h2f(b));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(b + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, mask), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight);
        store16(y, lo, d);
        store16(y + 16, hi, d);
    }
}

AVX2 static void q4_1_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m128i mask = _mm_set1_epi8(0xF);
    for (int64_t i = 0; i < n / TK_QK; i++, b += 20, y += TK_QK) {
        const __m256 d = _mm256_set1_ps(h2f(b)), m = _mm256_set1_ps(h2f(b + 2));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(b + 4));
        store16_add(y, _mm_and_si128(raw, mask), d, m);
        store16_add(y + 16, _mm_and_si128(_mm_srli_epi16(raw, 4), mask), d, m);
    }
}

/* Spreads the 32 bits of qh into 32 bytes: byte k = 0x10 if bit k is set, else 0. */
AVX2 static inline __m256i q5_high_bits(uint32_t qh) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* The 32 5-bit values of a Q5 block as bytes, in element order. */
AVX2 static inline __m256i q5_values(const uint8_t *qs, uint32_t qh) {
    const __m128i mask = _mm_set1_epi8(0xF);
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), _mm_and_si128(raw, mask));
    return _mm256_or_si256(nib, q5_high_bits(qh));
}

AVX2 static void q5_0_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 22, y += TK_QK) {
        const __m256 d = _mm256_set1_ps(h2f(b));
        const __m256i q = _mm256_sub_epi8(q5_values(b + 6, rd32(b + 2)), _mm256_set1_epi8(16));
        store16(y, _mm256_castsi256_si128(q), d);
        store16(y + 16, _mm256_extracti128_si256(q, 1), d);
    }
}

AVX2 static void q5_1_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 24, y += TK_QK) {
        const __m256 d = _mm256_set1_ps(h2f(b)), m = _mm256_set1_ps(h2f(b + 2));
        const __m256i q = q5_values(b + 8, rd32(b + 4));
        store16_add(y, _mm256_castsi256_si128(q), d, m);
        store16_add(y + 16, _mm256_extracti128_si256(q, 1), d, m);
    }
}

/* 32 unsigned bytes v -> y[0..31] = v * d - m. */
AVX2 static inline void store32_sub(float *y, __m256i v, __m256 d, __m256 m) {
    const __m128i a = _mm256_castsi256_si128(v), c = _mm256_extracti128_si256(v, 1);
    _mm256_storeu_ps(y + 0, _mm256_sub_ps(_mm256_mul_ps(u8x8_ps(a), d), m));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(u8x8_ps(_mm_srli_si128(a, 8)), d), m));
    _mm256_storeu_ps(y + 16, _mm256_sub_ps(_mm256_mul_ps(u8x8_ps(c), d), m));
    _mm256_storeu_ps(y + 24, _mm256_sub_ps(_mm256_mul_ps(u8x8_ps(_mm_srli_si128(c, 8)), d), m));
}

/* 16 unsigned bytes v -> y[0..15] = v * d - m. */
AVX2 static inline void store16_sub(float *y, __m128i v, __m256 d, __m256 m) {
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(u8x8_ps(v), d), m));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(u8x8_ps(_mm_srli_si128(v, 8)), d), m));
}

AVX2 static void q2_k_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i three = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 84) {
        const uint8_t *sc = b;
        const float d = h2f(b + 80), dmin = h2f(b + 82);
        for (int half = 0; half < 2; half++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * half));
            for (int j = 0; j < 4; j++, y += 32, sc += 2) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), three);
                store16_sub(y, _mm256_castsi256_si128(v), _mm256_set1_ps(d * (float)(sc[0] & 0xF)),
                            _mm256_set1_ps(dmin * (float)(sc[0] >> 4)));
                store16_sub(y + 16, _mm256_extracti128_si256(v, 1), _mm256_set1_ps(d * (float)(sc[1] & 0xF)),
                            _mm256_set1_ps(dmin * (float)(sc[1] >> 4)));
            }
        }
    }
}

AVX2 static void q3_k_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 110) {
        const uint8_t *s = b + 96;
        const float d = h2f(b + 108);
        int8_t scales[16];
        for (int k = 0; k < 16; k++) {
            const int lo = k < 8 ? (s[k] & 0xF) : (s[k - 8] >> 4);
            const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
            scales[k] = (int8_t)((lo | (hi << 4)) - 32);
        }
        const __m256i hm = _mm256_loadu_si256((const __m256i *)b);
        int is = 0;
        for (int half = 0; half < 2; half++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * half));
            for (int j = 0; j < 4; j++, y += 32, is += 2) {
                const __m256i m = _mm256_set1_epi8((char)(1 << (4 * half + j)));
                const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, m), m);
                const __m256i v = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), three),
                                                  _mm256_andnot_si256(set, four));
                store16(y, _mm256_castsi256_si128(v), _mm256_set1_ps(d * (float)scales[is]));
                store16(y + 16, _mm256_extracti128_si256(v, 1), _mm256_set1_ps(d * (float)scales[is + 1]));
            }
        }
    }
}

AVX2 static void q4_k_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i mask = _mm256_set1_epi8(0xF);
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 144) {
        const float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *scales = b + 4, *q = b + 16;
        for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, scales, &sc, &m);
            const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(dmin * (float)m);
            tk_q4k_scale_min(j + 1, scales, &sc, &m);
            const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(dmin * (float)m);
            const __m256i raw = _mm256_loadu_si256((const __m256i *)q);
            store32_sub(y, _mm256_and_si256(raw, mask), d1, m1);
            store32_sub(y + 32, _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask), d2, m2);
        }
    }
}

AVX2 static void q5_k_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i mask = _mm256_set1_epi8(0xF), sixteen = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 176) {
        const float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *scales = b + 4, *ql = b + 48;
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
        for (int j = 0; j < 8; j += 2, ql += 32, y += 64) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, scales, &sc, &m);
            const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(dmin * (float)m);
            tk_q4k_scale_min(j + 1, scales, &sc, &m);
            const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(dmin * (float)m);
            /* sub-block j takes its 5th bit from bit j of qh, sub-block j+1 from bit j+1 */
            const __m256i u1 = _mm256_set1_epi8((char)(1 << j)), u2 = _mm256_set1_epi8((char)(2 << j));
            const __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, u1), u1), sixteen);
            const __m256i h2 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, u2), u2), sixteen);
            const __m256i raw = _mm256_loadu_si256((const __m256i *)ql);
            store32_sub(y, _mm256_or_si256(_mm256_and_si256(raw, mask), h1), d1, m1);
            store32_sub(y + 32, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), mask), h2), d2, m2);
        }
    }
}

AVX2 static void q6_k_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m128i m4 = _mm_set1_epi8(0xF), m2 = _mm_set1_epi8(3), off = _mm_set1_epi8(32);
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 210) {
        const float d = h2f(b + 208);
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l0 = 0; l0 < 32; l0 += 16) {
                const int is = l0 / 16;
                const __m128i a = _mm_loadu_si128((const __m128i *)(ql + l0));
                const __m128i c = _mm_loadu_si128((const __m128i *)(ql + 32 + l0));
                const __m128i h = _mm_loadu_si128((const __m128i *)(qh + l0));
                const __m128i h0 = _mm_slli_epi16(_mm_and_si128(h, m2), 4);
                const __m128i h1 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 2), m2), 4);
                const __m128i h2 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 4), m2), 4);
                const __m128i h3 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 6), m2), 4);
                const __m128i q1 = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(a, m4), h0), off);
                const __m128i q2 = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(c, m4), h1), off);
                const __m128i q3 = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), m4), h2), off);
                const __m128i q4 = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), m4), h3), off);
                store16(y + l0 + 0, q1, _mm256_set1_ps(d * (float)sc[is + 0]));
                store16(y + l0 + 32, q2, _mm256_set1_ps(d * (float)sc[is + 2]));
                store16(y + l0 + 64, q3, _mm256_set1_ps(d * (float)sc[is + 4]));
                store16(y + l0 + 96, q4, _mm256_set1_ps(d * (float)sc[is + 6]));
            }
        }
    }
}

/* NF4: per block, the 32 code bytes are split into high and low nibbles and interleaved
 * into element order (x[2j] = high nibble of byte j), then each nibble picks its level from
 * the 16-entry table and is multiplied by the block's f32 scale (code * d, as the scalar). */
AVX2 static inline __m256 nf4_lut8(__m256i idx, __m256 lo, __m256 hi) {
    const __m256 a = _mm256_permutevar8x32_ps(lo, idx), b = _mm256_permutevar8x32_ps(hi, idx);
    const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
    return _mm256_blendv_ps(a, b, upper);
}
AVX2 static void nf4_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256 lo = _mm256_loadu_ps(tk_nf4_code), hi = _mm256_loadu_ps(tk_nf4_code + 8);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / TK_NF4_BLOCK; i++, b += sizeof(tk_block_nf4), y += TK_NF4_BLOCK) {
        float df;
        memcpy(&df, b, 4);
        const __m256 d = _mm256_set1_ps(df);
        for (int k = 0; k < 2; k++) {
            const __m128i q = _mm_loadu_si128((const __m128i *)(b + 4 + 16 * k));
            const __m128i h = _mm_and_si128(_mm_srli_epi16(q, 4), m4), l = _mm_and_si128(q, m4);
            const __m128i e0 = _mm_unpacklo_epi8(h, l), e1 = _mm_unpackhi_epi8(h, l); /* 32 codes in element order */
            const __m128i parts[4] = {e0, _mm_srli_si128(e0, 8), e1, _mm_srli_si128(e1, 8)};
            for (int p = 0; p < 4; p++)
                _mm256_storeu_ps(y + 32 * k + 8 * p, _mm256_mul_ps(nf4_lut8(_mm256_cvtepu8_epi32(parts[p]), lo, hi), d));
        }
    }
}

#define AVX512 __attribute__((target("avx512f,avx512bw")))
/* AVX-512: one vpermps over the whole 16-entry table per 16 values. */
AVX512 static void nf4_avx512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512 lut = _mm512_loadu_ps(tk_nf4_code);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / TK_NF4_BLOCK; i++, b += sizeof(tk_block_nf4), y += TK_NF4_BLOCK) {
        float df;
        memcpy(&df, b, 4);
        const __m512 d = _mm512_set1_ps(df);
        for (int k = 0; k < 2; k++) {
            const __m128i q = _mm_loadu_si128((const __m128i *)(b + 4 + 16 * k));
            const __m128i h = _mm_and_si128(_mm_srli_epi16(q, 4), m4), l = _mm_and_si128(q, m4);
            const __m128i e0 = _mm_unpacklo_epi8(h, l), e1 = _mm_unpackhi_epi8(h, l);
            _mm512_storeu_ps(y + 32 * k, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(e0), lut), d));
            _mm512_storeu_ps(y + 32 * k + 16, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(e1), lut), d));
        }
    }
}

/* AVX-512F usable: CPU flag and the OS saves the zmm state (XCR0 bits 5..7); off under TK_NO_SIMD. */
static int cpu_has_avx512f(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    unsigned a, b, c, d;
    int ok = 0;
    const char *off = getenv("TK_NO_SIMD");
    if (!(off && *off && *off != '0') && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE)) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        if ((lo & 0xE6) == 0xE6 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) && (b & bit_AVX512BW)) ok = 1;
    }
    __atomic_store_n(&cached, ok, __ATOMIC_RELAXED);
    return ok;
}

static int cpu_has_avx2_f16c(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    unsigned a, b, c, d;
    int ok = 0;
    const char *off = getenv("TK_NO_SIMD"); /* read once: lets tests and users force the scalar path */
    if (off && *off && *off != '0') goto done;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_OSXSAVE) && (c & bit_AVX)) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        if ((lo & 6) == 6 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2)) ok = 1;
    }
done:
    __atomic_store_n(&cached, ok, __ATOMIC_RELAXED);
    return ok;
}

tk_nf4_row_fn tk_nf4_dequant_row_simd(int isa) {
    if (isa == 512) return cpu_has_avx512f() ? nf4_avx512 : NULL;
    return isa == 2 && cpu_has_avx2_f16c() ? nf4_avx2 : NULL;
}

tk_dequant_row_fn tk_dequant_row_fn_simd(tk_dtype t) {
    if (!cpu_has_avx2_f16c()) return NULL;
    switch (t) {
    case TK_F16: return f16_avx2;
    case TK_BF16: return bf16_avx2;
    case TK_Q8_0: return q8_0_avx2;
    case TK_Q4_0: return q4_0_avx2;
    case TK_Q4_1: return q4_1_avx2;
    case TK_Q5_0: return q5_0_avx2;
    case TK_Q5_1: return q5_1_avx2;
    case TK_Q2_K: return q2_k_avx2;
    case TK_Q3_K: return q3_k_avx2;
    case TK_Q4_K: return q4_k_avx2;
    case TK_Q5_K: return q5_k_avx2;
    case TK_Q6_K: return q6_k_avx2;
    case TK_NF4: return cpu_has_avx512f() ? nf4_avx512 : nf4_avx2;
    default: return NULL;
    }
}

#else
tk_dequant_row_fn tk_dequant_row_fn_simd(tk_dtype t) { (void)t; return NULL; }
tk_nf4_row_fn tk_nf4_dequant_row_simd(int isa) { (void)isa; return NULL; }
#endif
