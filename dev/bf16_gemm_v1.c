/* Experiment (dev/, not in the library): an AVX512-BF16 GEMM kernel, C[M x N] = A[M x K] ·
 * B[N x K]^T with A and B in bf16 and C in f32, against OpenBLAS sgemm on the same
 * (f32) data. B is packed into k-pairs x 32 columns (vdpbf16ps consumes pairs), A is
 * broadcast a pair at a time; 8 x 32 register tile (16 zmm accumulators).
 * Validated against a double reference of the bf16-rounded inputs before timing.
 * On a CPU without AVX512-BF16 it says so and exits 0 (nothing to measure).
 * Build: cc -O2 -march=native -fopenmp -Iinclude -Isrc dev/bf16_gemm_v1.c build/libtakumi.a \
 *        $(pkg-config --libs openblas libpcre2-8 libcjson) -lm -o build/bf16_gemm && build/bf16_gemm */
#include "takumi.h"
#include "core/core.h"
#include "backend/backend.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MR 8
#define NR 32
#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* Packs B[N x K] (bf16 bits) into panels of 32 columns: for each k-pair, 32 (b[k][j], b[k+1][j]) pairs. */
static void pack_b(const uint16_t *B, int64_t N, int64_t K, uint16_t *Bp) {
    int64_t np = (N + NR - 1) / NR, kp = K / 2;
    for (int64_t p = 0; p < np; p++)
        for (int64_t k = 0; k < kp; k++)
            for (int64_t j = 0; j < NR; j++) {
                int64_t n = p * NR + j;
                uint16_t *d = Bp + ((p * kp + k) * NR + j) * 2;
                d[0] = n < N ? B[n * K + 2 * k] : 0;
                d[1] = n < N ? B[n * K + 2 * k + 1] : 0;
            }
}

TGT static void kernel(int64_t kp, const uint16_t *a, int64_t lda, const uint16_t *bp, float *c, int64_t ldc, int64_t mr, int64_t nr) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kp; k++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + k * NR * 2), b1 = (__m512bh)_mm512_loadu_si512(bp + k * NR * 2 + 32);
        for (int r = 0; r < MR; r++) {
            uint32_t pair;
            memcpy(&pair, a + r * lda + 2 * k, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    for (int r = 0; r < mr; r++) {
        float tmp[NR];
        _mm512_storeu_ps(tmp, acc[r][0]);
        _mm512_storeu_ps(tmp + 16, acc[r][1]);
        memcpy(c + r * ldc, tmp, (size_t)nr * 4);
    }
}

/* A must have MR-row padding (rows past M readable). */
TGT static void bf16_gemm(const uint16_t *A, int64_t M, int64_t K, const uint16_t *Bp, int64_t N, float *C) {
    int64_t np = (N + NR - 1) / NR, kp = K / 2;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int64_t p = 0; p < np; p++)
        for (int64_t i0 = 0; i0 < M; i0 += MR) {
            int64_t mr = M - i0 < MR ? M - i0 : MR, nr = N - p * NR < NR ? N - p * NR : NR;
            kernel(kp, A + i0 * K, K, Bp + p * kp * NR * 2, C + i0 * N + p * NR, N, mr, nr);
        }
}

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("bf16_gemm_v1: this CPU has no AVX512-BF16; nothing to measure\n");
        return 0;
    }
    tk_rng r;
    tk_rng_seed(&r, 7);
    int64_t shapes[][3] = {{512, 576, 576}, {512, 1536, 576}, {512, 576, 1536}, {2048, 2048, 2048}};
    for (int s = 0; s < 4; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *Af = malloc((size_t)((M + MR) * K) * 4), *Bf = malloc((size_t)(N * K) * 4), *C = malloc((size_t)(M * N) * 4);
        uint16_t *A = calloc((size_t)((M + MR) * K), 2), *B = malloc((size_t)(N * K) * 2), *Bp = malloc((size_t)(((N + NR - 1) / NR) * NR * K) * 2);
        for (int64_t i = 0; i < M * K; i++) { A[i] = tk_f32_to_bf16(tk_rng_normal(&r)); Af[i] = tk_bf16_to_f32(A[i]); }
        for (int64_t i = 0; i < N * K; i++) { B[i] = tk_f32_to_bf16(tk_rng_normal(&r)); Bf[i] = tk_bf16_to_f32(B[i]); }
        pack_b(B, N, K, Bp);
        bf16_gemm(A, M, K, Bp, N, C);
        double worst = 0;
        for (int64_t t = 0; t < 200; t++) {
            int64_t i = (int64_t)(tk_rng_u64(&r) % (uint64_t)M), j = (int64_t)(tk_rng_u64(&r) % (uint64_t)N);
            double ref = 0, sa = 0;
            for (int64_t k = 0; k < K; k++) { ref += (double)Af[i * K + k] * Bf[j * K + k]; sa += fabs((double)Af[i * K + k] * Bf[j * K + k]); }
            worst = fmax(worst, fabs(C[i * N + j] - ref) / (sa * 1e-5 + 1e-6));
        }
        double fl = 2.0 * M * N * K, tb = 1e30, ts = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = tk_time_s();
            bf16_gemm(A, M, K, Bp, N, C);
            tb = fmin(tb, tk_time_s() - t0);
            t0 = tk_time_s();
            tk_sgemm(false, true, M, N, K, 1, Af, K, Bf, K, 0, C, N);
            ts = fmin(ts, tk_time_s() - t0);
        }
        printf("M=%lld N=%lld K=%lld: bf16 %.1f GFLOP/s, sgemm %.1f GFLOP/s, ratio %.2fx, check %s (%.2g x tol)\n", (long long)M,
               (long long)N, (long long)K, fl / tb * 1e-9, fl / ts * 1e-9, ts / tb, worst <= 1 ? "ok" : "FAILED", worst);
        free(Af); free(Bf); free(C); free(A); free(B); free(Bp);
    }
    return 0;
}
