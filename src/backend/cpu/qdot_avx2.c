/* The AVX2 + FMA variant of tk_cpu_qdot (the "avx2" row of the table in qdot.c): u8 x s8 products
 * with vpmaddubsw + vpmaddwd on ymm, one fp32 scale per 32-block. Every function carries its target
 * attribute, so the file compiles on any x86-64 build and qdot.c calls it only where CPUID allows. */
#include "backend/cpu/kernels.h"
#include "core/quant.h"
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float tk_f16_x86(uint16_t h) { return _cvtsh_ss(h); }
AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* 16 bytes of nibbles -> 32 u8: low nibbles in the low 128 bits (elements 0..15), high in the top (16..31). */
AVX2 static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i raw = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
}
/* u8 x s8 -> 8 int32 partial sums, lane i = elements 4i..4i+3 (no pair sum can saturate int16 here:
 * |u| <= 128, |s| <= 127, 2*128*127 < 32768). */
AVX2 static inline __m256i dot_us(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* 32 bits (a block's fifth bits, element j = bit j) -> 32 bytes, 0x10 where the bit is set. */
AVX2 static inline __m256i bits32(const uint8_t *qh) {
    uint32_t v;
    memcpy(&v, qh, sizeof v);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                                                   0x0303030303030303LL));
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL)); /* every bit but the element's own set */
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}
AVX2 static inline float f16at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* Q4_0, Q4_1, Q5_0, Q5_1 share the loop: w = d*q + m, the 4-bit nibbles at qoff, the fifth bits at hoff (-1:
 * none), m the fp16 at moff, or mmul*d when moff < 0 (Q4_0: -8, Q5_0: -16); sum(m * x) = m * x.s. */
AVX2 static inline __attribute__((always_inline)) float avx2_qn(const void *w, size_t bsz, int qoff, int hoff, int moff, float mmul,
                                                               const tk_q8x *x, int64_t nb) {
    const uint8_t *base = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float macc = 0;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = base + (size_t)i * bsz;
        __m256i q = nibbles32(b + qoff);
        if (hoff >= 0) q = _mm256_or_si256(q, bits32(b + hoff));
        float d = f16at(b);
        __m256i p = dot_us(q, _mm256_loadu_si256((const __m256i *)x[i].q));
        if (i & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * x[i].d), acc1);
        else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * x[i].d), acc0);
        macc += (moff >= 0 ? f16at(b + moff) : mmul * d) * x[i].s;
    }
    return hsum8(_mm256_add_ps(acc0, acc1)) + macc;
}
AVX2 static float avx2_q4_0(const void *w, const tk_q8x *x, int64_t nb) {
    return avx2_qn(w, sizeof(tk_block_q4_0), offsetof(tk_block_q4_0, qs), -1, -1, -8.0f, x, nb);
}
AVX2 static float avx2_q4_1(const void *w, const tk_q8x *x, int64_t nb) {
    return avx2_qn(w, sizeof(tk_block_q4_1), offsetof(tk_block_q4_1, qs), -1, offsetof(tk_block_q4_1, m), 0, x, nb);
}
AVX2 static float avx2_q5_0(const void *w, const tk_q8x *x, int64_t nb) {
    return avx2_qn(w, sizeof(tk_block_q5_0), offsetof(tk_block_q5_0, qs), offsetof(tk_block_q5_0, qh), -1, -16.0f, x, nb);
}
AVX2 static float avx2_q5_1(const void *w, const tk_q8x *x, int64_t nb) {
    return avx2_qn(w, sizeof(tk_block_q5_1), offsetof(tk_block_q5_1, qs), offsetof(tk_block_q5_1, qh), offsetof(tk_block_q5_1, m), 0, x,
                   nb);
}

AVX2 static inline __m256i dot_ss(__m256i a, __m256i s) { /* s8 x s8 via |a| and sign(s, a) */
    return dot_us(_mm256_sign_epi8(a, a), _mm256_sign_epi8(s, a));
}

AVX2 static float avx2_q8_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q8_0 *b = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m256i p0 = dot_ss(_mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        __m256i p1 = dot_ss(_mm256_loadu_si256((const __m256i *)b[i + 1].qs), _mm256_loadu_si256((const __m256i *)x[i + 1].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(tk_f16_x86(b[i].d) * x[i].d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(tk_f16_x86(b[i + 1].d) * x[i + 1].d), acc1);
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_ss(_mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(tk_f16_x86(b[i].d) * x[i].d), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

AVX2 static float avx2_q4_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q4_k *b = w;
    __m256 acc = _mm256_setzero_ps();
    float macc = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nsb; i++) {
        float d = tk_f16_x86(b[i].d), dmin = tk_f16_x86(b[i].dmin);
        const tk_q8x *xb = x + i * 8;
        for (int j = 0; j < 4; j++) {
            uint8_t sc0, m0, sc1, m1;
            tk_q4k_scale_min(2 * j, b[i].scales, &sc0, &m0);
            tk_q4k_scale_min(2 * j + 1, b[i].scales, &sc1, &m1);
            __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * j));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i p0 = dot_us(lo, _mm256_loadu_si256((const __m256i *)xb[2 * j].q));
            __m256i p1 = dot_us(hi, _mm256_loadu_si256((const __m256i *)xb[2 * j + 1].q));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d * sc0 * xb[2 * j].d), acc);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d * sc1 * xb[2 * j + 1].d), acc);
            macc -= dmin * (m0 * xb[2 * j].s + m1 * xb[2 * j + 1].s);
        }
    }
    return hsum8(acc) + macc;
}

/* One Q6_K half (ql's 64 bytes, qh's 32) -> its four 32-element groups as u8 q (0..63): low nibbles of ql[0:32] |
 * ql[32:64], then the high ones, each with its two bits of qh. */
AVX2 static inline void q6_groups(const uint8_t *ql, const uint8_t *qhp, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
}

AVX2 static float avx2_q6_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q6_k *b = w;
    __m256 acc = _mm256_setzero_ps();
    const __m256i k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nsb; i++) {
        float d = tk_f16_x86(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + h * 64, *qhp = b[i].qh + h * 32;
            const int8_t *sc = b[i].scales + h * 8;
            __m256i q[4];
            q6_groups(ql, qhp, q);
            for (int g = 0; g < 4; g++) {
                const tk_q8x *xb = x + i * 8 + h * 4 + g;
                __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);
                __m256i p = _mm256_sub_epi32(dot_us(q[g], xq), dot_us(k32, xq)); /* sum((q - 32) * x) per 4 */
                float s0 = d * xb->d * sc[2 * g], s1 = d * xb->d * sc[2 * g + 1];
                __m256 sv = _mm256_setr_ps(s0, s0, s0, s0, s1, s1, s1, s1);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sv, acc);
            }
        }
    }
    return hsum8(acc);
}

/* ---------------------------------------------------------------- multi-row forms
 * Each is its one-row kernel above with the weight-block work (loads, unpacking, fp16 scales) hoisted out of a
 * loop over R activation rows (R a compile-time 1..4: the accumulators stay in registers). Per row, the float
 * operations and their order are the one-row kernel's, so every value is bit-identical to it. */
#define RMAX TK_QDOT_GROUP
#define ROWS_LOOP _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)

AVX2 static inline __attribute__((always_inline)) void avx2_qn_rows(const void *w, size_t bsz, int qoff, int hoff, int moff, float mmul,
                                                                   const tk_q8x *x, int64_t xs, int64_t nb, int R, float *out) {
    const uint8_t *base = w;
    __m256 acc0[RMAX], acc1[RMAX];
    float macc[RMAX];
    ROWS_LOOP { acc0[r] = acc1[r] = _mm256_setzero_ps(); macc[r] = 0; }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = base + (size_t)i * bsz;
        __m256i q = nibbles32(b + qoff);
        if (hoff >= 0) q = _mm256_or_si256(q, bits32(b + hoff));
        float d = f16at(b), m = moff >= 0 ? f16at(b + moff) : mmul * d;
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs + i;
            __m256i p = dot_us(q, _mm256_loadu_si256((const __m256i *)xr->q));
            if (i & 1) acc1[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * xr->d), acc1[r]);
            else acc0[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * xr->d), acc0[r]);
            macc[r] += m * xr->s;
        }
    }
    ROWS_LOOP out[r] = hsum8(_mm256_add_ps(acc0[r], acc1[r])) + macc[r];
}

AVX2 static inline __attribute__((always_inline)) void avx2_q8_0_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int R,
                                                                     float *out) {
    const tk_block_q8_0 *b = w;
    __m256 acc0[RMAX], acc1[RMAX];
    ROWS_LOOP acc0[r] = acc1[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)b[i].qs), a1 = _mm256_loadu_si256((const __m256i *)b[i + 1].qs);
        __m256i u0 = _mm256_sign_epi8(a0, a0), u1 = _mm256_sign_epi8(a1, a1); /* dot_ss's |a| */
        float d0 = tk_f16_x86(b[i].d), d1 = tk_f16_x86(b[i + 1].d);
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs + i;
            __m256i p0 = dot_us(u0, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xr[0].q), a0));
            __m256i p1 = dot_us(u1, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xr[1].q), a1));
            acc0[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * xr[0].d), acc0[r]);
            acc1[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d1 * xr[1].d), acc1[r]);
        }
    }
    for (; i < nb; i++) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)b[i].qs), u0 = _mm256_sign_epi8(a0, a0);
        float d0 = tk_f16_x86(b[i].d);
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs + i;
            __m256i p0 = dot_us(u0, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xr->q), a0));
            acc0[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * xr->d), acc0[r]);
        }
    }
    ROWS_LOOP out[r] = hsum8(_mm256_add_ps(acc0[r], acc1[r]));
}

AVX2 static inline __attribute__((always_inline)) void avx2_q4_k_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nsb, int R,
                                                                     float *out) {
    const tk_block_q4_k *b = w;
    __m256 acc[RMAX];
    float macc[RMAX];
    ROWS_LOOP { acc[r] = _mm256_setzero_ps(); macc[r] = 0; }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nsb; i++) {
        float d = tk_f16_x86(b[i].d), dmin = tk_f16_x86(b[i].dmin);
        for (int j = 0; j < 4; j++) {
            uint8_t sc0, m0, sc1, m1;
            tk_q4k_scale_min(2 * j, b[i].scales, &sc0, &m0);
            tk_q4k_scale_min(2 * j + 1, b[i].scales, &sc1, &m1);
            __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * j));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            ROWS_LOOP {
                const tk_q8x *xb = x + r * xs + i * 8;
                __m256i p0 = dot_us(lo, _mm256_loadu_si256((const __m256i *)xb[2 * j].q));
                __m256i p1 = dot_us(hi, _mm256_loadu_si256((const __m256i *)xb[2 * j + 1].q));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d * sc0 * xb[2 * j].d), acc[r]);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d * sc1 * xb[2 * j + 1].d), acc[r]);
                macc[r] -= dmin * (m0 * xb[2 * j].s + m1 * xb[2 * j + 1].s);
            }
        }
    }
    ROWS_LOOP out[r] = hsum8(acc[r]) + macc[r];
}

AVX2 static inline __attribute__((always_inline)) void avx2_q6_k_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nsb, int R,
                                                                     float *out) {
    const tk_block_q6_k *b = w;
    __m256 acc[RMAX];
    ROWS_LOOP acc[r] = _mm256_setzero_ps();
    const __m256i k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nsb; i++) {
        float d = tk_f16_x86(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + h * 64, *qhp = b[i].qh + h * 32;
            const int8_t *sc = b[i].scales + h * 8;
            __m256i q[4];
            q6_groups(ql, qhp, q);
            for (int g = 0; g < 4; g++)
                ROWS_LOOP {
                    const tk_q8x *xb = x + r * xs + i * 8 + h * 4 + g;
                    __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);
                    __m256i p = _mm256_sub_epi32(dot_us(q[g], xq), dot_us(k32, xq));
                    float s0 = d * xb->d * sc[2 * g], s1 = d * xb->d * sc[2 * g + 1];
                    __m256 sv = _mm256_setr_ps(s0, s0, s0, s0, s1, s1, s1, s1);
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sv, acc[r]);
                }
        }
    }
    ROWS_LOOP out[r] = hsum8(acc[r]);
}

#define QN_CALL(R) avx2_qn_rows(w, bsz, qoff, hoff, moff, mmul, x + t0 * xs, xs, nb, R, out + t0)
AVX2 static void avx2_q4_0_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) {
    const size_t bsz = sizeof(tk_block_q4_0);
    const int qoff = offsetof(tk_block_q4_0, qs), hoff = -1, moff = -1;
    const float mmul = -8.0f;
    TK_QDOT_ROW_GROUPS(T, t0, QN_CALL);
}
AVX2 static void avx2_q4_1_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) {
    const size_t bsz = sizeof(tk_block_q4_1);
    const int qoff = offsetof(tk_block_q4_1, qs), hoff = -1, moff = offsetof(tk_block_q4_1, m);
    const float mmul = 0;
    TK_QDOT_ROW_GROUPS(T, t0, QN_CALL);
}
AVX2 static void avx2_q5_0_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) {
    const size_t bsz = sizeof(tk_block_q5_0);
    const int qoff = offsetof(tk_block_q5_0, qs), hoff = offsetof(tk_block_q5_0, qh), moff = -1;
    const float mmul = -16.0f;
    TK_QDOT_ROW_GROUPS(T, t0, QN_CALL);
}
AVX2 static void avx2_q5_1_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) {
    const size_t bsz = sizeof(tk_block_q5_1);
    const int qoff = offsetof(tk_block_q5_1, qs), hoff = offsetof(tk_block_q5_1, qh), moff = offsetof(tk_block_q5_1, m);
    const float mmul = 0;
    TK_QDOT_ROW_GROUPS(T, t0, QN_CALL);
}
#undef QN_CALL
#define Q8_CALL(R) avx2_q8_0_rows(w, x + t0 * xs, xs, nb, R, out + t0)
AVX2 static void avx2_q8_0_rows_all(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q8_CALL); }
#define Q4K_CALL(R) avx2_q4_k_rows(w, x + t0 * xs, xs, nsb, R, out + t0)
AVX2 static void avx2_q4_k_rows_all(const void *w, const tk_q8x *x, int64_t xs, int64_t nsb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q4K_CALL); }
#define Q6K_CALL(R) avx2_q6_k_rows(w, x + t0 * xs, xs, nsb, R, out + t0)
AVX2 static void avx2_q6_k_rows_all(const void *w, const tk_q8x *x, int64_t xs, int64_t nsb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q6K_CALL); }

void tk_cpu_qdot_rows_avx2(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out) {
    switch (t) {
    case TK_Q4_0: avx2_q4_0_rows(w, x, xs, n / 32, T, out); return;
    case TK_Q4_1: avx2_q4_1_rows(w, x, xs, n / 32, T, out); return;
    case TK_Q5_0: avx2_q5_0_rows(w, x, xs, n / 32, T, out); return;
    case TK_Q5_1: avx2_q5_1_rows(w, x, xs, n / 32, T, out); return;
    case TK_Q8_0: avx2_q8_0_rows_all(w, x, xs, n / 32, T, out); return;
    case TK_Q4_K: avx2_q4_k_rows_all(w, x, xs, n / 256, T, out); return;
    case TK_Q6_K: avx2_q6_k_rows_all(w, x, xs, n / 256, T, out); return;
    default: for (int64_t r = 0; r < T; r++) out[r] = 0.0f; /* as tk_cpu_qdot_avx2: no kernel for t */
    }
}

float tk_cpu_qdot_avx2(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) {
    switch (t) {
    case TK_Q4_0: return avx2_q4_0(w, x, n / 32);
    case TK_Q4_1: return avx2_q4_1(w, x, n / 32);
    case TK_Q5_0: return avx2_q5_0(w, x, n / 32);
    case TK_Q5_1: return avx2_q5_1(w, x, n / 32);
    case TK_Q8_0: return avx2_q8_0(w, x, n / 32);
    case TK_Q4_K: return avx2_q4_k(w, x, n / 256);
    case TK_Q6_K: return avx2_q6_k(w, x, n / 256);
    default: return 0.0f;
    }
}
#endif
