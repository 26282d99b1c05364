/* Attention forward/backward speed probe (dev/): SmolLM2-135M shapes (H 9, KH 3, D 64),
 * one causal sequence of T tokens, optionally packed. GFLOP/s counts only the visible
 * (causal) half. BENCH_CPU=1 reports CPU time (use with 1 thread on a loaded machine).
 * Build and run: cc -O2 -march=native -fopenmp -Iinclude -Isrc dev/bench_attention.c build/libtakumi.a \
 *   $(pkg-config --libs openblas libpcre2-8 libcjson) -lm -o build/bench_attention && build/bench_attention [T] [threads] */
#include "takumi.h"
#include "core/core.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    if (!getenv("BENCH_CPU")) return tk_time_s();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    int64_t T = argc > 1 ? atoll(argv[1]) : 512, H = 9, KH = 3, D = 64;
    if (argc > 2) tk_set_threads(atoi(argv[2]));
    tk_rng r;
    tk_rng_seed(&r, 3);
    size_t nq = (size_t)(T * H * D), nk = (size_t)(T * KH * D);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *o = malloc(nq * 4), *att = malloc((size_t)(H * T * T) * 4);
    float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
    int32_t *pos = malloc((size_t)T * 4);
    for (size_t i = 0; i < nq; i++) { q[i] = tk_rng_normal(&r); o[i] = tk_rng_normal(&r); }
    for (size_t i = 0; i < nk; i++) { k[i] = tk_rng_normal(&r); v[i] = tk_rng_normal(&r); }
    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)t;
    tk_attn_args a = {.Tq = T, .S = T, .H = H, .KH = KH, .D = D, .pos_q = pos, .pos_k = pos, .scale = 0.125f};
    double flops = 2.0 * 2 * H * D * (double)T * (T + 1) / 2; /* QK^T and PV over the causal half */
    double bf = 1e30, bb = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        tk_attention_forward(o, att, q, k, v, &a);
        double t1 = now();
        tk_attention_backward(dq, dk, dv, o, att, q, k, v, &a);
        double t2 = now();
        if (t1 - t0 < bf) bf = t1 - t0;
        if (t2 - t1 < bb) bb = t2 - t1;
    }
    printf("attention T=%lld H=%lld KH=%lld D=%lld threads=%d: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms (%.1f GFLOP/s)\n",
           (long long)T, (long long)H, (long long)KH, (long long)D, tk_get_threads(), bf * 1e3, flops / bf * 1e-9, bb * 1e3,
           2 * flops / bb * 1e-9);
    return 0;
}
