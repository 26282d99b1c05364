/* The cost per sampled token of a row that asks for logprobs (src/infer/logprobs.c, as the batcher runs it: a copy
 * of the logits, then tk_logprobs_compute) over a vocabulary of V (SmolLM2's 49152 by default), for top_logprobs
 * k = 0, 1, 5 and 20; model-like logits (normal, sigma 3, a few strong ones). Timed by the thread's CPU time, which a
 * shared machine does not distort; best of --reps rounds of 1000 calls. Usage: logprobs [--vocab V] [--reps R] */
#include "infer/logprobs.h"
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int32_t V = 49152;
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--vocab")) V = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: logprobs [--vocab V] [--reps R]\n"); return 1; }
    }
    if (V < 1 || reps < 1) { fprintf(stderr, "logprobs: --vocab and --reps must be positive\n"); return 1; }
    float *l = malloc((size_t)V * sizeof *l), *w = malloc((size_t)V * sizeof *w);
    if (!l || !w) return 1;
    uint64_t s = 12345;
    for (int32_t i = 0; i < V; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((double)(s >> 11) + 1) / 9007199254740993.0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (double)(s >> 11) / 9007199254740992.0;
        l[i] = (float)(3.0 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
    l[V / 3] = 14.0f;
    l[V / 7] = 13.5f;
    const int ks[] = {0, 1, 5, 20};
    printf("vocabulary %d, best of %d x 1000 calls, thread CPU time\n", V, reps);
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
        double best = 1e30;
        tk_token_logprobs out;
        for (int r = 0; r < reps; r++) {
            double t0 = cpu_s();
            for (int c = 0; c < 1000; c++) {
                memcpy(w, l, (size_t)V * sizeof *w);
                tk_logprobs_compute(w, V, (c * 7919) % V, ks[q], &out);
            }
            double t = (cpu_s() - t0) / 1000;
            if (t < best) best = t;
        }
        printf("top_logprobs %2d: %6.1f us per token\n", ks[q], best * 1e6);
    }
    free(l);
    free(w);
    return 0;
}
