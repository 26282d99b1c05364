/* src/infer/logprobs.c against a double-precision reference: the log-softmax of the raw logits at the sampled id
 * and the k most likely ids (a full sort in double, ties broken by the lower id), over SmolLM2's vocabulary size
 * and small ones, with ties, -inf and NaN logits, a peaked row (p ~ 1, where log p must keep its precision),
 * k = 0, 20 and k > V. */
#include "test.h"
#include "infer/logprobs.h"
#include "core/core.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

static const float *g_sort;
static int by_logit(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float lx = g_sort[x], ly = g_sort[y];
    if (isnan(lx)) lx = -INFINITY;
    if (isnan(ly)) ly = -INFINITY;
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Checks tk_logprobs_compute on logits[0..V) for id and k against the reference; tol: absolute, on log p. */
static void check_row(const char *what, const float *logits, int32_t V, int32_t id, int32_t k, double tol) {
    float *w = tk_malloc((size_t)V * sizeof *w);
    int32_t *order = tk_malloc((size_t)V * sizeof *order);
    memcpy(w, logits, (size_t)V * sizeof *w);
    tk_token_logprobs out;
    memset(&out, 0xA5, sizeof out);
    tk_logprobs_compute(w, V, id, k, &out);
    /* reference: log-softmax in double */
    double mx = -INFINITY, sum = 0;
    for (int32_t i = 0; i < V; i++) if (!isnan(logits[i]) && logits[i] > mx) mx = logits[i];
    for (int32_t i = 0; i < V; i++) if (!isnan(logits[i])) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (int32_t i = 0; i < V; i++) order[i] = i;
    g_sort = logits;
    qsort(order, (size_t)V, sizeof *order, by_logit);
    int32_t want_n = k < V ? k : V;
    CHECK(out.id == id, "%s: id %d", what, out.id);
    double ref = isnan(logits[id]) ? -INFINITY : (double)logits[id] - lse;
    if (ref == -INFINITY) CHECK(out.logprob == -INFINITY, "%s: logprob %g (want -inf)", what, out.logprob);
    else CHECK(fabs(out.logprob - ref) <= tol, "%s: logprob %.10g vs %.10g", what, out.logprob, ref);
    CHECK(out.n_top == want_n, "%s: n_top %d vs %d", what, out.n_top, want_n);
    for (int32_t j = 0; j < want_n && j < out.n_top; j++) {
        int32_t t = order[j];
        CHECK(out.top_id[j] == t, "%s: top[%d] id %d vs %d", what, j, out.top_id[j], t);
        double r = isnan(logits[t]) || logits[t] == -INFINITY ? -INFINITY : (double)logits[t] - lse;
        if (r == -INFINITY) CHECK(out.top_logprob[j] == -INFINITY, "%s: top[%d] %g (want -inf)", what, j, out.top_logprob[j]);
        else CHECK(fabs(out.top_logprob[j] - r) <= tol, "%s: top[%d] %.10g vs %.10g", what, j, out.top_logprob[j], r);
        if (out.top_id[j] == id) CHECK(out.top_logprob[j] == out.logprob, "%s: the sampled id's two values differ", what);
    }
    free(w);
    free(order);
}

int main(void) {
    const int32_t V = 49152;
    float *l = tk_malloc((size_t)V * sizeof *l);
    /* a model-like row: logits ~ N(0, 3) with a few strong ones */
    for (int32_t i = 0; i < V; i++) l[i] = (float)(3.0 * sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()));
    l[123] = 14.0f; l[4567] = 13.5f; l[40000] = 13.9f;
    check_row("normal k=20 id=top", l, V, 123, 20, 2e-6);
    check_row("normal k=5 id=tail", l, V, 777, 5, 2e-6);
    check_row("normal k=0", l, V, 4567, 0, 2e-6);
    check_row("normal k=1", l, V, 40000, 1, 2e-6);
    /* ties: equal logits keep the lower id first */
    for (int32_t i = 0; i < V; i++) l[i] = (float)(i % 7);
    check_row("ties k=20", l, V, 6, 20, 2e-6);
    /* peaked: p(top) = 1 - ~1e-9: log p ~ -1e-9 must be right to a few percent of itself */
    for (int32_t i = 0; i < V; i++) l[i] = -10.0f;
    l[42] = 20.0f + logf((float)V) - 10.0f; /* rest mass = V * e^-10 / e^(20 + log V - 10) = e^-20 */
    {
        float *w = tk_malloc((size_t)V * sizeof *w);
        memcpy(w, l, (size_t)V * sizeof *w);
        tk_token_logprobs out;
        tk_logprobs_compute(w, V, 42, 3, &out);
        double rest = (double)V * exp(-10.0 - (double)l[42]), ref = -log1p(rest);
        CHECK(fabs(out.logprob - ref) <= 1e-3 * fabs(ref), "peaked: %.6g vs %.6g", out.logprob, ref);
        CHECK(out.logprob < 0 && out.logprob > -1e-8, "peaked: %g", out.logprob);
        free(w);
    }
    check_row("peaked", l, V, 42, 3, 1e-6);
    /* -inf (masked) and NaN logits: impossible, never in the top when others are possible */
    for (int32_t i = 0; i < V; i++) l[i] = (float)(urand() * 4 - 2);
    for (int32_t i = 0; i < V; i += 3) l[i] = -INFINITY;
    l[1] = NAN; l[2] = 50.0f;
    check_row("masked k=20", l, V, 2, 20, 2e-6);
    check_row("masked id=-inf", l, V, 3, 4, 2e-6);
    /* a small vocabulary: k larger than V, and every id possible */
    float s[5] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
    check_row("V=5 k=20", s, 5, 4, 20, 1e-6);
    check_row("V=5 k=2", s, 5, 2, 2, 1e-6);
    /* everything impossible: -inf everywhere, no crash */
    float z[3] = {-INFINITY, -INFINITY, NAN};
    tk_token_logprobs out;
    tk_logprobs_compute(z, 3, 1, 2, &out);
    CHECK(out.logprob == -INFINITY && out.n_top == 2 && out.top_logprob[0] == -INFINITY, "all impossible: %g %d", out.logprob, out.n_top);
    free(l);
    return tk_test_done("test_logprobs");
}
