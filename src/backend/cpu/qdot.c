/* Fused quantized-weight x quantized-activation dot products for few-row products
 * (decode). The activation row is quantized once per matmul to 32-element int8 blocks
 * (tk_q8x); each weight block is dotted in integers and scaled once, as llama.cpp
 * does, so the weights are read exactly once, straight from the mapped file.
 * This file: the activation quantizer, the scalar references and the table of variants
 * (scalar; avx2 in qdot_avx2.c; avx512vnni in qdot_avx512.c), one chosen at the first call
 * from CPUID, TK_QDOT=scalar|avx2|avx512vnni forcing one the CPU runs (tests, benches).
 * Each variant also has a multi-row form (tk_cpu_qdot_rows: one weight row against several activation rows, each
 * weight block unpacked once per group of rows) whose every value is bit-identical to the variant's one-row dot.
 * tests/test_matmul.c checks every runnable variant against the scalar reference, and the multi-row forms bit for bit. */
#include "backend/cpu/kernels.h"
#include "core/core.h"
#include "core/quant.h"
#include <math.h>
#include <pthread.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

static inline float f16(uint16_t h) {
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    return tk_f16_to_f32(h);
#endif
}

void tk_cpu_quantize_q8x_ref(const float *x, tk_q8x *out, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            int q = (int)lrintf(xb[i] * id);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            out[b].q[i] = (int8_t)q;
            sum += q;
        }
        out[b].d = d;
        out[b].s = d * (float)sum;
    }
}

/* The AVX2 quantizer gives bit-identical blocks to the reference: same amax, same d and
 * 1/d, cvtps rounds to nearest even as lrintf does in the default rounding mode (decode
 * quantizes ~10 rows per layer, so the scalar version with libm calls was ~6% of a token). */
void tk_cpu_quantize_q8x(const float *x, tk_q8x *out, int64_t n) {
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(xb + 8 * j);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i qi[4];
        for (int j = 0; j < 4; j++) /* clamp in float: same result as clamping the rounded int */
            qi[j] = _mm256_cvtps_epi32(_mm256_min_ps(lim, _mm256_max_ps(nlim, _mm256_mul_ps(v[j], vid))));
        __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        int sum = _mm_cvtsi128_si32(s4);
        /* int32 -> int8 keeping element order: packs work per 128-bit lane, then fix lanes */
        __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].q, p8);
        out[b].d = d;
        out[b].s = d * (float)sum;
    }
#else
    tk_cpu_quantize_q8x_ref(x, out, n);
#endif
}

bool tk_cpu_has_qdot(tk_dtype t) {
    return t == TK_Q4_0 || t == TK_Q4_1 || t == TK_Q5_0 || t == TK_Q5_1 || t == TK_Q8_0 || t == TK_Q4_K || t == TK_Q6_K;
}

/* ---------------------------------------------------------------- scalar references */

static float ref_q4_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q4_0 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (b[i].qs[j] & 0xF) * x[i].q[j] + (b[i].qs[j] >> 4) * x[i].q[j + 16];
        float d = f16(b[i].d);
        acc += (double)(d * x[i].d) * isum - 8.0 * d * x[i].s;
    }
    return (float)acc;
}

static float ref_q4_1(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q4_1 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (b[i].qs[j] & 0xF) * x[i].q[j] + (b[i].qs[j] >> 4) * x[i].q[j + 16];
        acc += (double)(f16(b[i].d) * x[i].d) * isum + (double)f16(b[i].m) * x[i].s;
    }
    return (float)acc;
}

/* Q5_0 / Q5_1: q = nibble | fifth bit (qh bit j for element j) << 4; Q5_0: w = d*(q - 16), Q5_1: w = d*q + m. */
static int q5_isum(const uint8_t *qs, const uint8_t *qh4, const int8_t *x) {
    uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 | (uint32_t)qh4[3] << 24;
    int isum = 0;
    for (int j = 0; j < 16; j++)
        isum += ((qs[j] & 0xF) | ((qh >> j) & 1) << 4) * x[j] + ((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) * x[j + 16];
    return isum;
}
static float ref_q5_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q5_0 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        float d = f16(b[i].d);
        acc += (double)(d * x[i].d) * q5_isum(b[i].qs, b[i].qh, x[i].q) - 16.0 * d * x[i].s;
    }
    return (float)acc;
}
static float ref_q5_1(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q5_1 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++)
        acc += (double)(f16(b[i].d) * x[i].d) * q5_isum(b[i].qs, b[i].qh, x[i].q) + (double)f16(b[i].m) * x[i].s;
    return (float)acc;
}

static float ref_q8_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q8_0 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += b[i].qs[j] * x[i].q[j];
        acc += (double)(f16(b[i].d) * x[i].d) * isum;
    }
    return (float)acc;
}

static float ref_q4_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q4_k *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16(b[i].d), dmin = f16(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, b[i].scales, &sc, &m);
            const uint8_t *q = b[i].qs + (j / 2) * 32;
            const tk_q8x *xb = x + i * 8 + j;
            int isum = 0;
            for (int l = 0; l < 32; l++) isum += ((j & 1) ? q[l] >> 4 : q[l] & 0xF) * xb->q[l];
            acc += (double)(d * sc * xb->d) * isum - (double)(dmin * m) * xb->s;
        }
    }
    return (float)acc;
}

static float ref_q6_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q6_k *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16(b[i].d);
        for (int h = 0; h < 2; h++) {           /* two halves of 128 */
            const uint8_t *ql = b[i].ql + h * 64, *qh = b[i].qh + h * 32;
            const int8_t *sc = b[i].scales + h * 8;
            for (int g = 0; g < 4; g++) {       /* 32-element groups */
                const tk_q8x *xb = x + i * 8 + h * 4 + g;
                int s0 = 0, s1 = 0;
                for (int l = 0; l < 32; l++) {
                    int lo = (g & 1) ? ql[l + 32] : ql[l];
                    int q = ((g & 2) ? lo >> 4 : lo & 0xF) | (((qh[l] >> (2 * g)) & 3) << 4);
                    if (l < 16) s0 += (q - 32) * xb->q[l];
                    else s1 += (q - 32) * xb->q[l];
                }
                acc += (double)(d * xb->d) * ((double)sc[2 * g] * s0 + (double)sc[2 * g + 1] * s1);
            }
        }
    }
    return (float)acc;
}

float tk_cpu_qdot_ref(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) {
    switch (t) {
    case TK_Q4_0: return ref_q4_0(w, x, n / 32);
    case TK_Q4_1: return ref_q4_1(w, x, n / 32);
    case TK_Q5_0: return ref_q5_0(w, x, n / 32);
    case TK_Q5_1: return ref_q5_1(w, x, n / 32);
    case TK_Q8_0: return ref_q8_0(w, x, n / 32);
    case TK_Q4_K: return ref_q4_k(w, x, n / 256);
    case TK_Q6_K: return ref_q6_k(w, x, n / 256);
    default: return 0.0f;
    }
}

/* ---------------------------------------------------------------- variants */
static float qdot_scalar(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) { return tk_cpu_qdot_ref(t, w, x, n); }
/* The scalar references keep double sums per row: nothing to share between rows but the call. */
static void qdot_rows_scalar(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out) {
    for (int64_t r = 0; r < T; r++) out[r] = tk_cpu_qdot_ref(t, w, x + r * xs, n);
}
static bool cpu_any(void) { return true; }
#if defined(__x86_64__) || defined(__i386__)
#define TK_X86 1
#include <cpuid.h>
/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c" (the fuzz build is clang's). */
static bool cpu_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
static bool cpu_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_f16c(); }
static bool cpu_avx512vnni(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni") && cpu_avx2();
}
#endif

static const tk_qdot_kernel qkernels[] = {
    {"scalar", NULL, qdot_scalar, qdot_rows_scalar, cpu_any},
#ifdef TK_X86
    {"avx2", "CPU lacks avx2+fma+f16c", tk_cpu_qdot_avx2, tk_cpu_qdot_rows_avx2, cpu_avx2},
    {"avx512vnni", "CPU lacks avx512f+avx512bw+avx512vl+avx512vnni", tk_cpu_qdot_avx512vnni, tk_cpu_qdot_rows_avx512vnni,
     cpu_avx512vnni},
#endif
};

const tk_qdot_kernel *tk_cpu_qdot_kernels(int *n) {
    *n = (int)(sizeof qkernels / sizeof qkernels[0]);
    return qkernels;
}

const tk_qdot_kernel *tk_cpu_qdot_find(const char *name) {
    for (size_t i = 0; name && i < sizeof qkernels / sizeof qkernels[0]; i++)
        if (!strcmp(qkernels[i].name, name)) return &qkernels[i];
    return NULL;
}

const char *tk_cpu_qdot_unsupported(const tk_qdot_kernel *k) {
    if (!k) return "no such qdot kernel";
#ifdef TK_X86
    __builtin_cpu_init(); /* (callable before constructors have run) */
#endif
    return k->cpu_has() ? NULL : k->lacks;
}

/* Chosen once: TK_QDOT if it names a variant this CPU runs, else the last (fastest) runnable row. */
static const tk_qdot_kernel *qactive;
static pthread_once_t qactive_once = PTHREAD_ONCE_INIT;
static void qchoose(void) {
    int n;
    const tk_qdot_kernel *ks = tk_cpu_qdot_kernels(&n);
    qactive = &ks[0];
    for (int i = 0; i < n; i++)
        if (!tk_cpu_qdot_unsupported(&ks[i])) qactive = &ks[i];
    const tk_qdot_kernel *k = tk_cpu_qdot_find(getenv("TK_QDOT"));
    if (k && !tk_cpu_qdot_unsupported(k)) qactive = k;
}

const tk_qdot_kernel *tk_cpu_qdot_active(void) {
    pthread_once(&qactive_once, qchoose);
    return qactive;
}

float tk_cpu_qdot(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) { return tk_cpu_qdot_active()->dot(t, w, x, n); }

void tk_cpu_qdot_rows(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out) {
    tk_cpu_qdot_active()->dot_rows(t, w, x, xs, n, T, out);
}

const char *tk_cpu_qdot_isa(void) { return tk_cpu_qdot_active()->name; }
