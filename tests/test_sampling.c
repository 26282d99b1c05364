/* Samplers on hand-made logits: greedy (ties -> lowest id), repetition penalty (sign
 * rule, window, each distinct token once), top-k, top-p, min-p, temperature (empirical
 * frequencies vs the expected distribution), seeds (same seed -> same tokens), and a
 * large vocabulary where the top-p fast path (best 64 first) must equal a brute-force
 * reference. Expected sets and probabilities are computed here from the definitions. */
#include "test.h"

static const float *g_l;
static int by_logit(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    if (g_l[a] != g_l[b]) return g_l[a] > g_l[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

static tk_sampler *mk(float temp, int k, float p, float minp, float pen, int last_n, uint64_t seed, int V) {
    tk_sampler_params sp = {.temperature = temp, .top_k = k, .top_p = p, .min_p = minp,
                            .repeat_penalty = pen, .repeat_last_n = last_n, .seed = seed};
    tk_sampler *s = NULL;
    CHECK_OK(tk_sampler_new(&sp, V, &s));
    return s;
}

/* Draws n samples from fixed logits; counts[V]. */
static void draw(tk_sampler *s, const float *logits, int V, int n, int *counts) {
    float *tmp = malloc(sizeof(float) * (size_t)V);
    memset(counts, 0, sizeof(int) * (size_t)V);
    for (int i = 0; i < n; i++) {
        memcpy(tmp, logits, sizeof(float) * (size_t)V);
        int id = tk_sampler_sample(s, tmp, V, NULL, 0);
        if (id >= 0 && id < V) counts[id]++;
    }
    free(tmp);
}

/* Checks empirical frequencies against probabilities p (0 = must never appear). */
static void check_freq(const char *what, const int *counts, const double *p, int V, int n) {
    for (int v = 0; v < V; v++) {
        double f = (double)counts[v] / n;
        if (p[v] == 0) CHECK(counts[v] == 0, "%s: token %d drawn %d times, expected never", what, v, counts[v]);
        else {
            double sd = sqrt(p[v] * (1 - p[v]) / n);
            CHECK(fabs(f - p[v]) <= 5 * sd + 1e-9, "%s: token %d frequency %.4f, expected %.4f", what, v, f, p[v]);
        }
    }
}

/* softmax of logits/temp restricted to keep[] */
static void softmax_keep(const float *l, const int *keep, int V, double temp, double *p) {
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) if (keep[v] && l[v] > mx) mx = l[v];
    for (int v = 0; v < V; v++) { p[v] = keep[v] ? exp((l[v] - mx) / temp) : 0; z += p[v]; }
    for (int v = 0; v < V; v++) p[v] /= z;
}

int main(void) {
    enum { V = 6, N = 10000 };
    /* probabilities at T=1: 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.03125 */
    const float L[V] = {logf(0.5f), logf(0.25f), logf(0.125f), logf(0.0625f), logf(0.03125f), logf(0.03125f)};
    int counts[V];
    double p[V];

    /* greedy: argmax, ties to the lowest id, temperature <= 0 */
    {
        tk_sampler *s = mk(0, 0, 1, 0, 1, 0, 1, V);
        float l[V] = {0.1f, 2.0f, -1.0f, 2.0f, 0.0f, 1.9f};
        CHECK(tk_sampler_sample(s, l, V, NULL, 0) == 1, "greedy tie");
        float l2[V] = {-5, -4, -3, -2, -1, -0.5f};
        CHECK(tk_sampler_sample(s, l2, V, NULL, 0) == 5, "greedy all negative");
        tk_sampler_free(s);
    }
    /* repetition penalty: positive logits divided, negative multiplied; each distinct token once; window */
    {
        tk_sampler *s = mk(0, 0, 1, 0, 2.0f, 3, 1, V);
        float l[V] = {4.0f, 3.0f, -1.0f, 0.5f, 2.5f, 0.0f};
        const int32_t hist[] = {1, 0, 0, 2, 0, 2}; /* window of 3: {2, 0, 2} -> tokens 0 and 2 */
        int id = tk_sampler_sample(s, l, V, hist, 6);
        CHECK_NEAR(l[0], 2.0, 0);   /* 4 / 2, once although it appears twice */
        CHECK_NEAR(l[1], 3.0, 0);   /* outside the window */
        CHECK_NEAR(l[2], -2.0, 0);  /* -1 * 2 */
        CHECK_NEAR(l[3], 0.5, 0);
        CHECK(id == 1, "penalised greedy picks %d, expected 1", id);
        tk_sampler_free(s);
        /* last_n = -1: the whole history; 0: none */
        s = mk(0, 0, 1, 0, 2.0f, -1, 1, V);
        float l3[V] = {4.0f, 3.0f, -1.0f, 0.5f, 2.5f, 0.0f};
        tk_sampler_sample(s, l3, V, hist, 6);
        CHECK_NEAR(l3[1], 1.5, 0);
        tk_sampler_free(s);
        s = mk(0, 0, 1, 0, 2.0f, 0, 1, V);
        float l4[V] = {4.0f, 3.0f, -1.0f, 0.5f, 2.5f, 0.0f};
        tk_sampler_sample(s, l4, V, hist, 6);
        CHECK_NEAR(l4[0], 4.0, 0);
        tk_sampler_free(s);
    }
    /* temperature 1, no filters: the softmax */
    {
        tk_sampler *s = mk(1, 0, 1, 0, 1, 0, 7, V);
        draw(s, L, V, N, counts);
        int keep[V] = {1, 1, 1, 1, 1, 1};
        softmax_keep(L, keep, V, 1, p);
        check_freq("T=1", counts, p, V, N);
        tk_sampler_free(s);
    }
    /* temperature 2 flattens: p ~ exp(l / 2) */
    {
        tk_sampler *s = mk(2, 0, 1, 0, 1, 0, 8, V);
        draw(s, L, V, N, counts);
        int keep[V] = {1, 1, 1, 1, 1, 1};
        softmax_keep(L, keep, V, 2, p);
        check_freq("T=2", counts, p, V, N);
        tk_sampler_free(s);
    }
    /* top-k = 2 */
    {
        tk_sampler *s = mk(1, 2, 1, 0, 1, 0, 9, V);
        draw(s, L, V, N, counts);
        int keep[V] = {1, 1, 0, 0, 0, 0};
        softmax_keep(L, keep, V, 1, p);
        check_freq("top-k 2", counts, p, V, N);
        tk_sampler_free(s);
    }
    /* top-p = 0.8: cumulative 0.5, 0.75, 0.875 -> keeps the first three */
    {
        tk_sampler *s = mk(1, 0, 0.8f, 0, 1, 0, 10, V);
        draw(s, L, V, N, counts);
        int keep[V] = {1, 1, 1, 0, 0, 0};
        softmax_keep(L, keep, V, 1, p);
        check_freq("top-p 0.8", counts, p, V, N);
        tk_sampler_free(s);
    }
    /* min-p = 0.2: threshold 0.1 -> keeps 0.5, 0.25, 0.125 */
    {
        tk_sampler *s = mk(1, 0, 1, 0.2f, 1, 0, 11, V);
        draw(s, L, V, N, counts);
        int keep[V] = {1, 1, 1, 0, 0, 0};
        softmax_keep(L, keep, V, 1, p);
        check_freq("min-p 0.2", counts, p, V, N);
        tk_sampler_free(s);
    }
    /* chain: top-k 4, then top-p 0.7 on the renormalised 4 (0.533, 0.267, ...: keeps 2),
     * then temperature 0.5 on the survivors */
    {
        tk_sampler *s = mk(0.5f, 4, 0.7f, 0, 1, 0, 12, V);
        draw(s, L, V, N, counts);
        int keep[V] = {1, 1, 0, 0, 0, 0};
        softmax_keep(L, keep, V, 0.5, p);
        check_freq("chain", counts, p, V, N);
        tk_sampler_free(s);
    }
    /* a tiny temperature is greedy in effect */
    {
        tk_sampler *s = mk(1e-3f, 0, 1, 0, 1, 0, 13, V);
        draw(s, L, V, 200, counts);
        CHECK(counts[0] == 200, "T=1e-3 picked the argmax %d/200 times", counts[0]);
        tk_sampler_free(s);
    }
    /* seeds: same seed -> same sequence; another seed -> a different one */
    {
        int a[64], b[64], c[64];
        tk_sampler *s1 = mk(1, 0, 1, 0, 1, 0, 42, V), *s2 = mk(1, 0, 1, 0, 1, 0, 42, V), *s3 = mk(1, 0, 1, 0, 1, 0, 43, V);
        for (int i = 0; i < 64; i++) {
            float t1[V], t2[V], t3[V];
            memcpy(t1, L, sizeof t1); memcpy(t2, L, sizeof t2); memcpy(t3, L, sizeof t3);
            a[i] = tk_sampler_sample(s1, t1, V, NULL, 0);
            b[i] = tk_sampler_sample(s2, t2, V, NULL, 0);
            c[i] = tk_sampler_sample(s3, t3, V, NULL, 0);
        }
        CHECK(!memcmp(a, b, sizeof a), "same seed, different tokens");
        CHECK(memcmp(a, c, sizeof a) != 0, "different seeds, same 64 tokens");
        tk_sampler_free(s1); tk_sampler_free(s2); tk_sampler_free(s3);
    }
    /* large vocabulary: top-p over a flat-ish distribution needs more than the best 64;
     * every draw must lie in the brute-force nucleus (computed by a full sort here) */
    {
        enum { BV = 50000 };
        float *l = malloc(sizeof(float) * BV), *tmp = malloc(sizeof(float) * BV);
        uint64_t x = 12345;
        for (int v = 0; v < BV; v++) { x = x * 6364136223846793005ULL + 1442695040888963407ULL; l[v] = (float)((x >> 40) % 1000) / 250.0f; }
        const float tp = 0.5f;
        /* brute force: sort ids by (logit desc, id asc), accumulate */
        int *ord = malloc(sizeof(int) * BV);
        for (int v = 0; v < BV; v++) ord[v] = v;
        g_l = l;
        qsort(ord, BV, sizeof(int), by_logit);
        double mx = l[ord[0]], z = 0, cum = 0;
        for (int v = 0; v < BV; v++) z += exp(l[v] - mx);
        char *in = calloc(BV, 1);
        int nk = 0;
        for (int i = 0; i < BV; i++) { cum += exp(l[ord[i]] - mx) / z; in[ord[i]] = 1; nk++; if (cum >= tp) break; }
        CHECK(nk > 64, "test setup: nucleus of %d tokens should exceed 64", nk);
        tk_sampler *s = mk(1, 0, tp, 0, 1, 0, 14, BV);
        int outside = 0;
        for (int i = 0; i < 100; i++) {
            memcpy(tmp, l, sizeof(float) * BV);
            int id = tk_sampler_sample(s, tmp, BV, NULL, 0);
            outside += !(id >= 0 && id < BV && in[id]);
        }
        CHECK(outside == 0, "top-p: %d draws outside the nucleus of %d tokens", outside, nk);
        tk_sampler_free(s);
        /* top-k 100 on the same logits: draws within the 100 best */
        s = mk(1, 100, 1, 0, 1, 0, 15, BV);
        memset(in, 0, BV);
        for (int i = 0; i < 100; i++) in[ord[i]] = 1;
        outside = 0;
        for (int i = 0; i < 100; i++) {
            memcpy(tmp, l, sizeof(float) * BV);
            int id = tk_sampler_sample(s, tmp, BV, NULL, 0);
            outside += !(id >= 0 && id < BV && in[id]);
        }
        CHECK(outside == 0, "top-k: %d draws outside the best 100", outside);
        tk_sampler_free(s);
        free(l); free(tmp); free(ord); free(in);
    }
    /* bad parameters are refused */
    {
        tk_sampler_params sp = tk_sampler_default_params();
        tk_sampler *s = NULL;
        sp.repeat_penalty = 0;
        CHECK(tk_sampler_new(&sp, V, &s) == TK_ERR_ARG && !s, "penalty 0 accepted");
        sp = tk_sampler_default_params();
        CHECK(tk_sampler_new(&sp, 0, &s) == TK_ERR_ARG && !s, "empty vocabulary accepted");
    }
    return tk_test_done("test_sampling");
}
