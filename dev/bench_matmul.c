/* Kernel speed probe (dev/, not a test): sgemm GFLOP/s (OpenBLAS and built-in),
 * prefill-shaped matmuls over Q4_1/Q8_0 weights (panel dequant + sgemm), and a
 * decode-shaped pass over weights laid out like SmolLM2-135M Q4_1 (30 layers of
 * q,k,v,o,gate,up,down in Q4_1 + the tied Q8_0 head: ~96 MB per token), reporting
 * tokens/s and GB/s of weights streamed. Weights are random (speed does not depend on
 * values). Build and run: dev/bench_matmul.sh [threads]. */
#include "takumi.h"
#include "core/core.h"
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static tk_rng rng;
static void *rand_bytes(size_t n, tk_dtype t, int64_t nblk) {
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)tk_rng_u64(&rng);
    size_t bb = tk_dtype_block_bytes(t);
    if (t != TK_F32)
        for (int64_t b = 0; b < nblk; b++) { uint16_t h = tk_f32_to_f16(0.01f); memcpy(p + b * bb, &h, 2); if (t == TK_Q4_1) memcpy(p + b * bb + 2, &h, 2); }
    else for (size_t i = 0; i < n / 4; i++) ((float *)p)[i] = tk_rng_normal(&rng);
    return p;
}
static tk_tensor_ref mk(tk_dtype t, int64_t N, int64_t K) {
    size_t nb;
    tk_dtype_nbytes(t, N * K, &nb);
    tk_tensor_ref r = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .nbytes = nb};
    r.data = rand_bytes(nb, t, N * K / tk_dtype_block_elems(t));
    return r;
}
static float *randf(int64_t n) {
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) v[i] = tk_rng_normal(&rng);
    return v;
}

/* Wall time, or with BENCH_CPU=1 the process CPU time (robust on a loaded machine when
 * run with 1 thread: it excludes time spent descheduled). */
static double now(void) {
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("BENCH_CPU") && atoi(getenv("BENCH_CPU"));
    if (!cpu) return tk_time_s();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double best_time(void (*f)(void *), void *arg, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        f(arg);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

typedef struct { int64_t M, N, K; float *A, *B, *C; int builtin; tk_tensor_ref w; int64_t T; int dx; } job;
static void run_sgemm(void *p) {
    job *j = p;
    if (j->builtin) tk_sgemm_builtin(false, true, j->M, j->N, j->K, 1, j->A, j->K, j->B, j->K, 0, j->C, j->N);
    else tk_sgemm(false, true, j->M, j->N, j->K, 1, j->A, j->K, j->B, j->K, 0, j->C, j->N);
}
static void run_matmul(void *p) {
    job *j = p;
    if (j->dx) tk_matmul_dx(j->A, j->C, &j->w, j->T, false);
    else tk_matmul(j->C, j->A, &j->w, j->T, false);
}

/* SmolLM2-135M: C=576, F=1536, KV=192, 30 layers, V=49152 */
typedef struct { tk_tensor_ref w[30][7], head; float *x, *y; int64_t T; int flags; } model;
static void run_decode(void *p) {
    model *m = p;
    for (int l = 0; l < 30; l++)
        for (int i = 0; i < 7; i++) tk_matmul_ex(m->y, m->x, &m->w[l][i], m->T, false, m->flags);
    tk_matmul_ex(m->y, m->x, &m->head, m->T, false, m->flags);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    if (threads) tk_set_threads(threads);
    tk_rng_seed(&rng, 1);
    printf("threads %d, qdot %s\n", tk_get_threads(), tk_cpu_qdot_isa());
    int64_t shapes[][3] = {{512, 576, 576}, {512, 1536, 576}, {512, 576, 1536}, {512, 4096, 4096}};
    for (int s = 0; s < 4; s++) {
        job j = {.M = shapes[s][0], .N = shapes[s][1], .K = shapes[s][2]};
        j.A = randf(j.M * j.K); j.B = randf(j.N * j.K); j.C = randf(j.M * j.N);
        double fl = 2.0 * j.M * j.N * j.K;
        for (int b = 0; b < 2; b++) {
            j.builtin = b;
            run_sgemm(&j);
            double t = best_time(run_sgemm, &j, s == 3 ? 2 : 5);
            printf("sgemm %-8s M=%lld N=%lld K=%lld: %.1f GFLOP/s\n", b ? "builtin" : "blas", (long long)j.M, (long long)j.N,
                   (long long)j.K, fl / t * 1e-9);
        }
        free(j.A); free(j.B); free(j.C);
    }
    /* prefill-shaped: T=512 through quantized weights (panel path), forward and dx */
    tk_dtype qt[] = {TK_F32, TK_Q4_1, TK_Q8_0, TK_Q4_K, TK_Q6_K};
    for (int q = 0; q < 5; q++)
        for (int s = 0; s < 3; s++) {
            job j = {.T = 512, .N = shapes[s][1], .K = shapes[s][2]};
            if (j.K % tk_dtype_block_elems(qt[q])) continue; /* K-quants need K % 256 == 0 */
            j.w = mk(qt[q], j.N, j.K);
            j.A = randf(j.T * j.K); j.C = randf(j.T * j.N);
            double fl = 2.0 * j.T * j.N * j.K;
            for (int dx = 0; dx < 2; dx++) {
                j.dx = dx;
                run_matmul(&j);
                double t = best_time(run_matmul, &j, 5);
                printf("matmul%s %-5s T=512 N=%lld K=%lld: %.1f GFLOP/s\n", dx ? "_dx" : "   ", tk_dtype_name(qt[q]),
                       (long long)j.N, (long long)j.K, fl / t * 1e-9);
            }
            free((void *)j.w.data); free(j.A); free(j.C);
        }
    /* decode-shaped pass */
    model m;
    int64_t dims[7][2] = {{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}};
    double bytes = 0;
    for (int l = 0; l < 30; l++)
        for (int i = 0; i < 7; i++) { m.w[l][i] = mk(TK_Q4_1, dims[i][0], dims[i][1]); bytes += m.w[l][i].nbytes; }
    m.head = mk(TK_Q8_0, 49152, 576);
    bytes += m.head.nbytes;
    m.x = randf(4 * 1536); m.y = malloc(4 * 49152 * 4);
    for (int flags = 0; flags < 2; flags++)
        for (int T = 1; T <= 4; T *= 2) {
            m.T = T;
            m.flags = flags ? TK_MATMUL_EXACT : 0;
            run_decode(&m);
            double t = best_time(run_decode, &m, 10);
            printf("decode-shaped %s T=%d (SmolLM2-135M Q4_1 + Q8_0 head, %.1f MB): %.2f ms/pass = %.1f passes/s, %.1f GB/s of weights\n",
                   flags ? "exact f32" : "int8     ", T, bytes / 1e6, t * 1e3, 1 / t, bytes / t / 1e9);
        }
    return 0;
}
