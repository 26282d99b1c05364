/* GEMM kernels benchmark: GFLOP/s of every built-in tk_sgemm variant the CPU runs, OpenBLAS's
 * cblas_sgemm and (built with -DTK_BENCH_DNNL -ldnnl) oneDNN's dnnl_sgemm and its bf16 matmul
 * primitive ("onednn-bf16": bf16 inputs converted once outside the timing, fp32 output; the
 * built-in bf16 variant converts inside its packing, timed), on the products of a
 * SmolLM2-135M training step at T tokens: for each linear W [N x K] (q/o 576x576, k/v 192x576,
 * gate/up 1536x576, down 576x1536, an LM-head chunk 4096x576)
 *   fwd  Y = X W^T   sgemm(N,T: T x N x K)
 *   dx   dX = dY W   sgemm(N,N: T x K x N)
 *   dw   dW = dY^T X sgemm(T,N: N x K x T)
 * Each figure is the best of --reps timed calls (after one warm-up; the runners take turns), 2*M*N*K / time. With
 * --peak-fp32 G and --peak-bf16 G (from bench/peak.c) it prints the fraction of peak (bf16
 * against the bf16 peak, the others against fp32). bench/kernels.sh runs the probe and this.
 * --cpu-time (1 thread only; OMP_NUM_THREADS=1 too, which OpenBLAS reads at start): times by the
 * process's CPU time, the figure a shared machine does not distort; otherwise the wall clock.
 * Usage: kernels [--threads N] [--tokens T] [--reps R] [--peak-fp32 G] [--peak-bf16 G] [--variants a,b]
 *               [--csv] [--cpu-time] */
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm.h"
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef TK_BENCH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

static int use_cpu_time; /* 1 thread only: the process's CPU time, which other processes do not stretch */
static double now(void) {
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct { const char *layer; int64_t n, k; } linear;
enum { OP_FWD, OP_DX, OP_DW };

/* A runner: name and call; the built-in variants go through tk_sgemm_with. */
/* kind 0 built-in, 1 openblas, 2 onednn sgemm, 3 onednn bf16 matmul (prim: the shape's primitive) */
typedef struct { const char *name; const tk_sgemm_kernel *k; int kind; void *prim; } runner;

#ifdef TK_BENCH_DNNL
static dnnl_engine_t eng;
static dnnl_stream_t stream;
static uint16_t *Xh, *Wh; /* X and W in bf16 */
/* The bf16 matmul primitive C[M x N] (f32) = op(A) op(B) for dense bf16 A, B; NULL on failure. */
static dnnl_primitive_t dnnl_bf16_prim(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p = NULL;
    if (dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, ta ? dnnl_ba : dnnl_ab) || dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, tb ? dnnl_ba : dnnl_ab) ||
        dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab) || dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) ||
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL))
        return NULL;
    if (dnnl_primitive_create(&p, pd)) p = NULL;
    dnnl_primitive_desc_destroy(pd);
    return p;
}
static void dnnl_bf16_run(dnnl_primitive_t p, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float *C) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_memory_t am, bm, cm;
    dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, ta ? dnnl_ba : dnnl_ab);
    dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, tb ? dnnl_ba : dnnl_ab);
    dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab);
    dnnl_memory_create(&am, &a, eng, Xh), dnnl_memory_create(&bm, &b, eng, Wh), dnnl_memory_create(&cm, &c, eng, C);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    dnnl_primitive_execute(p, stream, 3, args);
    dnnl_stream_wait(stream);
    dnnl_memory_destroy(am), dnnl_memory_destroy(bm), dnnl_memory_destroy(cm);
}
#endif

static void call(const runner *r, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc) {
    if (r->kind == 0) tk_sgemm_with(r->k, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    else if (r->kind == 1)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                    (blasint)K, 1.0f, A, (blasint)lda, B, (blasint)ldb, 0.0f, C, (blasint)ldc);
#ifdef TK_BENCH_DNNL
    else if (r->kind == 2) dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    else dnnl_bf16_run(r->prim, ta, tb, M, N, K, C);
#endif
}

int main(int argc, char **argv) {
    int threads = 0, reps = 3, csv = 0;
    int64_t T = 512;
    double peak32 = 0, peak16 = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) T = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peak-fp32") && i + 1 < argc) peak32 = atof(argv[++i]);
        else if (!strcmp(argv[i], "--peak-bf16") && i + 1 < argc) peak16 = atof(argv[++i]);
        else if (!strcmp(argv[i], "--variants") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--csv")) csv = 1;
        else if (!strcmp(argv[i], "--cpu-time")) use_cpu_time = 1;
        else {
            fprintf(stderr, "usage: kernels [--threads N] [--tokens T] [--reps R] [--peak-fp32 G] [--peak-bf16 G] [--variants a,b] [--csv] [--cpu-time]\n");
            return 2;
        }
    }
    if (T <= 0 || reps <= 0) { fprintf(stderr, "kernels: --tokens and --reps must be > 0\n"); return 2; }
    if (threads > 0) omp_set_num_threads(threads);
    if (use_cpu_time && omp_get_max_threads() != 1) { fprintf(stderr, "kernels: --cpu-time needs 1 thread\n"); return 2; }
    runner rs[8];
    int nr = 0, nk;
    const tk_sgemm_kernel *ks = tk_sgemm_kernels(&nk);
    char want[256];
    snprintf(want, sizeof want, ",%s,", only ? only : "avx2,avx512,avx512bf16,openblas,onednn,onednn-bf16");
    for (int i = 0; i < nk; i++) {
        char key[64];
        snprintf(key, sizeof key, ",%s,", ks[i].name);
        if (!strstr(want, key)) continue;
        const char *why = tk_sgemm_kernel_unsupported(&ks[i]);
        if (why) fprintf(stderr, "SKIP %s: %s\n", ks[i].name, why);
        else rs[nr++] = (runner){ks[i].name, &ks[i], 0, NULL};
    }
    if (strstr(want, ",openblas,")) rs[nr++] = (runner){"openblas", NULL, 1, NULL};
#ifdef TK_BENCH_DNNL
    if (strstr(want, ",onednn,")) rs[nr++] = (runner){"onednn", NULL, 2, NULL};
    if (strstr(want, ",onednn-bf16,")) {
        if (dnnl_engine_create(&eng, dnnl_cpu, 0) || dnnl_stream_create(&stream, eng, dnnl_stream_default_flags))
            fprintf(stderr, "SKIP onednn-bf16: no oneDNN CPU engine\n");
        else rs[nr++] = (runner){"onednn-bf16", NULL, 3, NULL};
    }
#endif
    const linear ls[] = {{"q/o", 576, 576}, {"k/v", 192, 576}, {"gate/up", 1536, 576}, {"down", 576, 1536}, {"lm-head", 4096, 576}};
    const char *ops[] = {"fwd", "dx", "dw"};
    size_t cap = (size_t)(T * 4096 + 4096 * 1536) * 4;
    float *X = malloc(cap), *W = malloc(cap), *C = malloc(cap);
    if (!X || !W || !C) { fprintf(stderr, "kernels: out of memory\n"); return 1; }
    for (size_t i = 0; i < cap / 4; i++) X[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f, W[i] = X[i] * 0.5f;
#ifdef TK_BENCH_DNNL
    Xh = malloc(cap / 2), Wh = malloc(cap / 2);
    if (!Xh || !Wh) { fprintf(stderr, "kernels: out of memory\n"); return 1; }
    for (size_t i = 0; i < cap / 4; i++) Xh[i] = tk_f32_to_bf16(X[i]), Wh[i] = tk_f32_to_bf16(W[i]);
#endif
    printf(csv ? "layer,op,M,N,K" : "| layer | op | M x N x K |");
    for (int r = 0; r < nr; r++) printf(csv ? ",%s" : " %s |", rs[r].name);
    printf(csv ? "\n" : "\n|---|---|---|");
    if (!csv) { for (int r = 0; r < nr; r++) printf("---:|"); printf("\n"); }
    for (size_t l = 0; l < sizeof ls / sizeof ls[0]; l++)
        for (int op = 0; op < 3; op++) {
            int64_t n = ls[l].n, k = ls[l].k, M, N, K;
            bool ta = false, tb = false;
            if (op == OP_FWD) M = T, N = n, K = k, tb = true;     /* X[T x k] W[n x k]^T */
            else if (op == OP_DX) M = T, N = k, K = n;            /* dY[T x n] W[n x k] */
            else M = n, N = k, K = T, ta = true;                  /* dY[T x n]^T X[T x k] */
            int64_t lda = ta ? M : K, ldb = tb ? K : N;
            printf(csv ? "%s,%s,%lld,%lld,%lld" : "| %s | %s | %lld x %lld x %lld |", ls[l].layer, ops[op], (long long)M,
                   (long long)N, (long long)K);
            double best[8];
            for (int r = 0; r < nr; r++) best[r] = 1e30;
#ifdef TK_BENCH_DNNL
            for (int r = 0; r < nr; r++)
                if (rs[r].kind == 3) rs[r].prim = dnnl_bf16_prim(ta, tb, M, N, K);
#endif
            for (int rep = 0; rep <= reps; rep++) /* runners interleaved, so load from other processes hits all alike */
                for (int r = 0; r < nr; r++) {
                    if (rs[r].kind == 3 && !rs[r].prim) continue;
                    double t0 = now();
                    call(&rs[r], ta, tb, M, N, K, X, lda, W, ldb, C, N);
                    double dt = now() - t0;
                    if (rep > 0 && dt < best[r]) best[r] = dt;
                }
            for (int r = 0; r < nr; r++) {
                double gf = 2.0 * (double)M * N * K / best[r] * 1e-9;
                double pk = (rs[r].k && rs[r].k->bf16) || rs[r].kind == 3 ? peak16 : peak32;
#ifdef TK_BENCH_DNNL
                if (rs[r].kind == 3) dnnl_primitive_destroy(rs[r].prim), rs[r].prim = NULL;
#endif
                if (best[r] >= 1e30) { printf(csv ? "," : " - |"); continue; }
                if (csv) printf(",%.1f", gf);
                else if (pk > 0) printf(" %.1f (%.0f%%) |", gf, 100.0 * gf / pk);
                else printf(" %.1f |", gf);
            }
            printf("\n");
        }
    free(X), free(W), free(C);
    return 0;
}
