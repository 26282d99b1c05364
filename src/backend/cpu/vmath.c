/* Vectorized exp for softmax, cross-entropy and SiLU (libm's expf is scalar and was
 * ~15-20% of a training step). Cephes-style: n = round(x log2 e), r = x - n ln2 (split
 * constant), degree-6 polynomial, scale by 2^n as two exact powers of two (n reaches 128
 * near FLT_MAX); within a few
 * ulp of expf over the float range (checked in tests/test_matmul.c). exp(-inf) = 0 and
 * results below FLT_MIN flush to 0, so masked scores vanish exactly. */
#include "backend/cpu/kernels.h"
#include <math.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TK_VEXP_AVX2 1
#endif

#define EXP_HI 88.7228391f /* ln(FLT_MAX): above -> inf */
#define EXP_LO -87.3365447504f /* below: result would be subnormal -> 0 */

/* Scalar twin of the vector code (same polynomial), used for tails and as the non-AVX2 path. */
static inline float exp1(float x) {
    if (!(x >= EXP_LO)) return x != x ? x : 0.0f; /* NaN stays NaN; -inf and tiny -> 0 */
    if (x > EXP_HI) return INFINITY;
    float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500E-4f;
    p = fmaf(p, r, 1.3981999507E-3f);
    p = fmaf(p, r, 8.3334519073E-3f);
    p = fmaf(p, r, 4.1665795894E-2f);
    p = fmaf(p, r, 1.6666665459E-1f);
    p = fmaf(p, r, 5.0000001201E-1f);
    float y = fmaf(p, r * r, r) + 1.0f;
    int32_t e = (int32_t)n, e1 = e >> 1, e2 = e - e1;
    uint32_t b1 = (uint32_t)(e1 + 127) << 23, b2 = (uint32_t)(e2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    return y * s1 * s2;
}

#ifdef TK_VEXP_AVX2
static inline __m256 exp8(__m256 x) {
    __m256 lo_mask = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_NGE_UQ); /* x < lo or NaN */
    __m256 nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 hi_mask = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_HI), _CMP_GT_OQ);
    __m256 xc = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(EXP_HI)), _mm256_set1_ps(EXP_LO));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_cvtps_epi32(n), e1 = _mm256_srai_epi32(e, 1), e2 = _mm256_sub_epi32(e, e1), bias = _mm256_set1_epi32(127);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e1, bias), 23)));
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e2, bias), 23)));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), hi_mask);
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), lo_mask);
    return _mm256_blendv_ps(y, x, nan_mask);
}
#endif

float tk_cpu_exp_ref(float x) { return exp1(x); }

void tk_cpu_vexp(float *y, const float *x, int64_t n) {
    int64_t i = 0;
#ifdef TK_VEXP_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = exp1(x[i]);
}

float tk_cpu_vexp_sum(float *y, const float *x, float shift, int64_t n) {
    int64_t i = 0;
    float sum = 0;
#ifdef TK_VEXP_AVX2
    __m256 acc = _mm256_setzero_ps(), s = _mm256_set1_ps(shift);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    for (int k = 0; k < 8; k++) sum += lanes[k];
#endif
    for (; i < n; i++) {
        y[i] = exp1(x[i] - shift);
        sum += y[i];
    }
    return sum;
}
