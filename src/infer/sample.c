/* Token samplers: repetition penalty, greedy, top-k, top-p, min-p, temperature, with a
 * seeded RNG (same seed and logits -> same tokens). The chain follows llama.cpp's default
 * order (penalty, top-k, top-p, min-p, temperature): the filters see the temperature-1
 * distribution, the temperature shapes only the final draw. Candidates are ordered by
 * logit descending and then id ascending, a total order, so results do not depend on
 * the selection algorithm. */
#include "takumi/model.h"
#include "core/core.h"
#include <math.h>

struct tk_sampler {
    tk_sampler_params p;
    tk_rng rng;
    int32_t n_vocab;
    int32_t *id;       /* [V] candidates */
    float *logit;      /* [V] their logits */
    uint32_t *stamp;   /* [V] marks tokens already penalised in this call */
    uint32_t gen;
};

tk_sampler_params tk_sampler_default_params(void) {
    tk_sampler_params p = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                           .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
    return p;
}

tk_status tk_sampler_new(const tk_sampler_params *p, int32_t n_vocab, tk_sampler **out) {
    *out = NULL;
    if (n_vocab <= 0) return tk_fail(TK_ERR_ARG, "sampler: vocabulary size %d", n_vocab);
    if (!(p->repeat_penalty > 0) || !isfinite(p->repeat_penalty))
        return tk_fail(TK_ERR_ARG, "sampler: repeat penalty %g must be positive", (double)p->repeat_penalty);
    if (isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p))
        return tk_fail(TK_ERR_ARG, "sampler: NaN parameter");
    tk_sampler *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->id = tk_malloc((size_t)n_vocab * sizeof *s->id);
    s->logit = tk_malloc((size_t)n_vocab * sizeof *s->logit);
    s->stamp = tk_calloc((size_t)n_vocab, sizeof *s->stamp);
    if (!s->id || !s->logit || !s->stamp) { tk_sampler_free(s); return TK_ERR_NOMEM; }
    tk_rng_seed(&s->rng, p->seed);
    *out = s;
    return TK_OK;
}

void tk_sampler_free(tk_sampler *s) {
    if (!s) return;
    free(s->id);
    free(s->logit);
    free(s->stamp);
    free(s);
}

/* a ranks before b: larger logit, then smaller id. */
static inline bool before(float la, int32_t ia, float lb, int32_t ib) { return la > lb || (la == lb && ia < ib); }

static inline void swap(tk_sampler *s, int64_t i, int64_t j) {
    int32_t ti = s->id[i]; s->id[i] = s->id[j]; s->id[j] = ti;
    float tl = s->logit[i]; s->logit[i] = s->logit[j]; s->logit[j] = tl;
}

/* Rearranges candidates [lo, hi) so the first k (in the total order) come first (unsorted). */
static void select_top(tk_sampler *s, int64_t lo, int64_t hi, int64_t k) {
    while (hi - lo > 1 && k > lo && k < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        swap(s, mid, hi - 1);
        float pl = s->logit[hi - 1];
        int32_t pi = s->id[hi - 1];
        int64_t store = lo;
        for (int64_t i = lo; i < hi - 1; i++)
            if (before(s->logit[i], s->id[i], pl, pi)) swap(s, i, store++);
        swap(s, store, hi - 1);
        if (store == k || store + 1 == k) return;
        if (store > k) hi = store;
        else lo = store + 1;
    }
}

/* Heap sort of [0, n) into the total order (O(n log n), no recursion). */
static void sift(tk_sampler *s, int64_t root, int64_t n) {
    for (;;) {
        int64_t c = 2 * root + 1;
        if (c >= n) return;
        /* a min-heap in the total order puts the "last" element on top */
        if (c + 1 < n && before(s->logit[c], s->id[c], s->logit[c + 1], s->id[c + 1])) c++;
        if (!before(s->logit[root], s->id[root], s->logit[c], s->id[c])) return;
        swap(s, root, c);
        root = c;
    }
}
static void sort_prefix(tk_sampler *s, int64_t n) {
    /* heap whose top is the element that ranks last; repeatedly move it to the end */
    for (int64_t i = n / 2 - 1; i >= 0; i--) sift(s, i, n);
    for (int64_t end = n - 1; end > 0; end--) { swap(s, 0, end); sift(s, 0, end); }
}

/* Sorts the best k of [0, n) into [0, k) (descending). */
static void top_sorted(tk_sampler *s, int64_t n, int64_t k) {
    if (k < n) select_top(s, 0, n, k);
    sort_prefix(s, k);
}

static void penalize(tk_sampler *s, float *logits, int32_t n_vocab, const int32_t *hist, size_t nh) {
    if (s->p.repeat_penalty == 1.0f || s->p.repeat_last_n == 0 || !hist || !nh) return;
    size_t from = 0;
    if (s->p.repeat_last_n > 0 && nh > (size_t)s->p.repeat_last_n) from = nh - (size_t)s->p.repeat_last_n;
    if (++s->gen == 0) { memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp); s->gen = 1; }
    for (size_t i = from; i < nh; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= n_vocab || s->stamp[t] == s->gen) continue; /* each distinct token once */
        s->stamp[t] = s->gen;
        float l = logits[t];
        logits[t] = l > 0 ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
    }
}

int32_t tk_sampler_sample(tk_sampler *s, float *logits, int32_t n_vocab, const int32_t *history, size_t n_history) {
    if (n_vocab > s->n_vocab) n_vocab = s->n_vocab;
    penalize(s, logits, n_vocab, history, n_history);
    if (!(s->p.temperature > 0)) {
        int32_t best = 0;
        for (int32_t i = 1; i < n_vocab; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    int64_t n = n_vocab;
    for (int64_t i = 0; i < n; i++) { s->id[i] = (int32_t)i; s->logit[i] = logits[i]; }
    /* NaN logits would break the order: treat them as impossible */
    for (int64_t i = 0; i < n; i++) if (isnan(s->logit[i])) s->logit[i] = -INFINITY;
    int64_t sorted = 0; /* [0, sorted) is in descending order */
    if (s->p.top_k > 0 && s->p.top_k < n) {
        top_sorted(s, n, s->p.top_k);
        n = sorted = s->p.top_k;
    }
    if (s->p.top_p < 1.0f) {
        /* Smallest prefix whose probability reaches top_p. Sort only the best 64, then 512,
         * 4096… until the prefix reaches top_p: usually far cheaper than sorting the whole
         * vocabulary (a selection is O(V), the sort O(k log k)). */
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) if (s->logit[i] > mx) mx = s->logit[i];
        double z = 0;
        for (int64_t i = 0; i < n; i++) z += exp((double)s->logit[i] - mx);
        for (int64_t try_k = n < 64 ? n : 64;; try_k = try_k * 8 < n ? try_k * 8 : n) {
            if (sorted < try_k) { top_sorted(s, n, try_k); sorted = try_k; }
            double cum = 0;
            int64_t keep = -1;
            for (int64_t i = 0; i < sorted; i++) {
                cum += exp((double)s->logit[i] - mx) / z;
                if (cum >= s->p.top_p) { keep = i + 1; break; }
            }
            if (keep > 0) { n = keep; break; }
            if (try_k == n) break; /* rounding: keep everything */
        }
        if (sorted > n) sorted = n;
    }
    if (s->p.min_p > 0.0f) {
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) if (s->logit[i] > mx) mx = s->logit[i];
        float thr = mx + logf(s->p.min_p); /* p_i >= min_p * p_max  <=>  l_i >= l_max + log(min_p) */
        int64_t w = 0;
        for (int64_t i = 0; i < n; i++)
            if (s->logit[i] >= thr) { s->id[w] = s->id[i]; s->logit[w] = s->logit[i]; w++; }
        n = w; /* the max always survives, so n >= 1 */
    }
    /* temperature, then one draw */
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (s->logit[i] > mx) mx = s->logit[i];
    if (mx == -INFINITY) return s->id[0];
    double z = 0;
    for (int64_t i = 0; i < n; i++) z += exp(((double)s->logit[i] - mx) / s->p.temperature);
    double u = (double)tk_rng_uniform(&s->rng) * z, cum = 0;
    for (int64_t i = 0; i < n; i++) {
        cum += exp(((double)s->logit[i] - mx) / s->p.temperature);
        if (u < cum) return s->id[i];
    }
    /* rounding: the last candidate with non-zero weight */
    for (int64_t i = n - 1; i >= 0; i--)
        if (s->logit[i] > -INFINITY) return s->id[i];
    return s->id[0];
}
