/* Per-sequence log-probabilities and their backward (see logp.h). Both passes run the
 * selected rows through the head in chunks (chunks.c); the backward recomputes the logits
 * rather than keeping [T x V] from the forward. */
#include "objective/logp.h"
#include "objective/chunks.h"
#include "ops/ops.h"
#include "core/core.h"
#include "backend/backend.h"
#include <math.h>

/* Checks the arguments; fills rows[] with the counted rows (ascending) and returns their number in *n. */
static tk_status collect_rows(const char *fn, const float *h, const tk_lm_head *head, int64_t T, const int32_t *target,
                              const int32_t *seq, int32_t n_seq, int64_t **rows, int64_t *n) {
    *rows = NULL;
    *n = 0;
    if (!h || !target || !seq || T < 0 || n_seq < 0)
        return tk_fail(TK_ERR_ARG, "%s: NULL hidden states, targets or sequence ids, or a negative size", fn);
    tk_status st = tk_head_check(head, fn);
    if (st) return st;
    const int64_t V = head->w->ne[1];
    int64_t *r = tk_malloc((size_t)(T ? T : 1) * sizeof(int64_t));
    if (!r) return tk_fail(TK_ERR_NOMEM, "%s: out of memory", fn);
    int64_t k = 0;
    for (int64_t t = 0; t < T; t++) {
        if (seq[t] < -1 || seq[t] >= n_seq) {
            free(r);
            return tk_fail(TK_ERR_RANGE, "%s: sequence id %d at row %lld is outside [-1, %d)", fn, (int)seq[t], (long long)t, (int)n_seq);
        }
        if (seq[t] < 0 || target[t] < 0) continue;
        if (target[t] >= V) {
            free(r);
            return tk_fail(TK_ERR_RANGE, "%s: target %d at row %lld is outside the vocabulary (%lld)", fn, (int)target[t],
                           (long long)t, (long long)V);
        }
        r[k++] = t;
    }
    *rows = r;
    *n = k;
    return TK_OK;
}

typedef struct fwd_ctx {
    const int64_t *rows;
    const int32_t *target;
    int64_t V;
    double *lp; /* [n] per counted row */
} fwd_ctx;

static tk_status fwd_chunk(void *vctx, int64_t c0, int64_t r, float *logits) {
    fwd_ctx *c = vctx;
    const int64_t V = c->V;
    #pragma omp parallel for schedule(static) if (r * V > 65536)
    for (int64_t i = 0; i < r; i++) {
        float *l = logits + i * V;
        float mx = l[0];
        for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        int32_t t = c->target[c->rows[c0 + i]];
        float lt_mx = l[t] - mx;
        tk_vexp_sum(l, l, mx, V);
        c->lp[c0 + i] = tk_softmax_at_target(l, V, t, lt_mx).logp;
    }
    return TK_OK;
}

tk_status tk_seq_logp_forward(const float *h, const tk_lm_head *head, int64_t T, const int32_t *target,
                              const int32_t *seq, int32_t n_seq, double *sum, double *mean, int64_t *count,
                              double *token) {
    int64_t *rows, n;
    tk_status st = collect_rows("seq_logp", h, head, T, target, seq, n_seq, &rows, &n);
    if (st) return st;
    double *lp = tk_malloc((size_t)(n ? n : 1) * sizeof(double));
    double *s = tk_calloc((size_t)(n_seq ? n_seq : 1), sizeof(double));
    int64_t *k = tk_calloc((size_t)(n_seq ? n_seq : 1), sizeof(int64_t));
    if (!lp || !s || !k) { st = tk_fail(TK_ERR_NOMEM, "seq_logp: out of memory"); goto done; }
    fwd_ctx c = {rows, target, head->w->ne[1], lp};
    if ((st = tk_head_chunks(h, head, rows, n, fwd_chunk, &c, NULL, NULL))) goto done;
    for (int64_t i = 0; i < n; i++) { /* row order: deterministic */
        s[seq[rows[i]]] += lp[i];
        k[seq[rows[i]]]++;
    }
    for (int32_t q = 0; q < n_seq; q++) {
        if (sum) sum[q] = s[q];
        if (count) count[q] = k[q];
        if (mean) mean[q] = k[q] ? s[q] / (double)k[q] : 0.0;
    }
    if (token) {
        memset(token, 0, (size_t)T * sizeof(double));
        for (int64_t i = 0; i < n; i++) token[rows[i]] = lp[i];
    }
done:
    free(rows);
    free(lp);
    free(s);
    free(k);
    return st;
}

typedef struct bwd_ctx {
    const int64_t *rows;
    const int32_t *target;
    const double *g; /* [n] dL/dlogp per row */
    int64_t V;
} bwd_ctx;

/* d logp_t / d logits = onehot(target) - softmax; times the row's coefficient g. */
static tk_status bwd_chunk(void *vctx, int64_t c0, int64_t r, float *logits) {
    bwd_ctx *c = vctx;
    const int64_t V = c->V;
    #pragma omp parallel for schedule(static) if (r * V > 65536)
    for (int64_t i = 0; i < r; i++) {
        float *l = logits + i * V;
        float mx = l[0];
        for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        int32_t t = c->target[c->rows[c0 + i]];
        tk_vexp_sum(l, l, mx, V);
        tk_softmax_at sm = tk_softmax_at_target(l, V, t, 0.0f);
        double g = c->g[c0 + i];
        float f = (float)(-g / sm.sum);
        for (int64_t j = 0; j < V; j++) l[j] *= f;
        l[t] = (float)(g * sm.rest / sm.sum); /* g (1 - p_t), without the cancellation */
    }
    return TK_OK;
}

tk_status tk_seq_logp_backward(const float *h, const tk_lm_head *head, int64_t T, const int32_t *target,
                               const int32_t *seq, int32_t n_seq, const double *d_sum, const double *d_mean,
                               const double *d_token, float *dh, float *dw) {
    int64_t *rows, n;
    tk_status st = collect_rows("seq_logp backward", h, head, T, target, seq, n_seq, &rows, &n);
    if (st) return st;
    if (!dh && !dw) { free(rows); return TK_OK; }
    int64_t *k = tk_calloc((size_t)(n_seq ? n_seq : 1), sizeof(int64_t));
    double *g = tk_malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!k || !g) { st = tk_fail(TK_ERR_NOMEM, "seq_logp backward: out of memory"); goto done; }
    for (int64_t i = 0; i < n; i++) k[seq[rows[i]]]++;
    int64_t m = 0; /* keep only rows with a non-zero coefficient (compacting rows[] in place) */
    for (int64_t i = 0; i < n; i++) {
        int64_t t = rows[i];
        int32_t s = seq[t];
        double gi = (d_sum ? d_sum[s] : 0.0) + (d_mean ? d_mean[s] / (double)k[s] : 0.0) + (d_token ? d_token[t] : 0.0);
        if (gi == 0.0) continue;
        rows[m] = t;
        g[m++] = gi;
    }
    bwd_ctx c = {rows, target, g, head->w->ne[1]};
    st = tk_head_chunks(h, head, rows, m, bwd_chunk, &c, dh, dw);
done:
    free(rows);
    free(k);
    free(g);
    return st;
}
