/* Distillation losses and their student gradient (see distill.h). Per chunk of rows: the
 * student logits (chunks.c), the teacher logits for the same rows (teacher.c), then per row
 * both log-softmaxes, the divergence (double sums) and d D / d student logits, which
 * chunks.c pushes back through the student head. */
#include "objective/distill.h"
#include "objective/chunks.h"
#include "core/core.h"
#include "ops/ops.h"
#include "backend/backend.h"
#include <math.h>

const char *tk_distill_kind_name(tk_distill_kind k) {
    switch (k) {
    case TK_DISTILL_FORWARD_KL: return "forward_kl";
    case TK_DISTILL_REVERSE_KL: return "reverse_kl";
    case TK_DISTILL_CROSS_ENTROPY: return "cross_entropy";
    case TK_DISTILL_JSD: return "jsd";
    }
    return "?";
}

typedef struct dctx {
    const tk_teacher *teacher;
    const int64_t *rows;
    const float *weight;
    int64_t V;
    tk_distill_kind kind;
    float inv_tau, grad_scale;
    double beta, log_b, log_1mb;  /* JSD: beta, log beta, log(1 - beta) */
    bool grad;
    int64_t R;                  /* rows the scratch below holds */
    float *tl, *hbuf, *es, *et; /* [R x V] teacher logits, [R x Ct], [R x V] softmax (student, teacher) */
    double *d;                  /* [n] D_i */
} dctx;

/* Scales l by inv_tau in place, leaves softmax(l) in e and returns log-sum-exp (double). */
static double softmax_row(float *l, float *e, int64_t V, float inv_tau) {
    if (inv_tau != 1.0f)
        for (int64_t j = 0; j < V; j++) l[j] *= inv_tau;
    float mx = l[0];
    for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
    tk_vexp_sum(e, l, mx, V);
    double se = tk_sum_f64(e, V); /* in double: D and its gradient are differences of nearby log-softmaxes */
    float r = (float)(1.0 / se);
    for (int64_t j = 0; j < V; j++) e[j] *= r;
    return (double)mx + log(se);
}

/* log(e^a + e^b) without overflow. */
static inline double log_add(double a, double b) {
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

static tk_status chunk(void *vctx, int64_t c0, int64_t r, float *logits) {
    dctx *c = vctx;
    const int64_t V = c->V;
    if (r > c->R) /* the chunk size changed under us (tk_lmhead_xent_chunk_rows is not thread-safe) */
        return tk_fail(TK_ERR_INTERNAL, "distill: chunk of %lld rows exceeds the scratch (%lld)", (long long)r, (long long)c->R);
    tk_status st = tk_teacher_chunk(c->teacher, c->rows + c0, r, c->tl, c->hbuf);
    if (st) return st;
    #pragma omp parallel for schedule(static) if (r * V > 65536)
    for (int64_t i = 0; i < r; i++) {
        float *s = logits + i * V, *t = c->tl + i * V, *q = c->es + i * V, *p = c->et + i * V;
        double ls = softmax_row(s, q, V, c->inv_tau), lt = softmax_row(t, p, V, c->inv_tau);
        /* log q_j = s_j - ls and log p_j = t_j - lt in the log domain (no log of an underflowed
         * probability); q_j, p_j from the softmax rows */
        double D = 0;
        if (c->kind == TK_DISTILL_REVERSE_KL)
            for (int64_t j = 0; j < V; j++) D += q[j] * (((double)s[j] - ls) - ((double)t[j] - lt));
        else if (c->kind == TK_DISTILL_FORWARD_KL)
            for (int64_t j = 0; j < V; j++) D += p[j] * (((double)t[j] - lt) - ((double)s[j] - ls));
        else if (c->kind == TK_DISTILL_CROSS_ENTROPY)
            for (int64_t j = 0; j < V; j++) D -= p[j] * ((double)s[j] - ls);
        double klq = 0;   /* JSD: KL(q || m) */
        if (c->kind == TK_DISTILL_JSD) {
            /* log m_j = logsumexp(log q_j + log(1 - beta), log p_j + log beta), as TRL */
            double klp = 0;
            for (int64_t j = 0; j < V; j++) {
                double lq = (double)s[j] - ls, lp = (double)t[j] - lt, lm = log_add(lq + c->log_1mb, lp + c->log_b);
                klp += p[j] * (lp - lm);
                klq += q[j] * (lq - lm);
            }
            D = c->beta * klp + (1 - c->beta) * klq;
        }
        c->d[c0 + i] = D;
        if (!c->grad) continue;
        /* d D / d z_j (z = raw student logits) = g_j / tau with
         *   forward KL, cross-entropy: g_j = q_j - p_j;   reverse KL: g_j = q_j (log q_j - log p_j - D) */
        float w = c->weight ? c->weight[c->rows[c0 + i]] : 1.0f;
        float f = w * c->grad_scale * c->inv_tau;
        if (c->kind == TK_DISTILL_REVERSE_KL) {
            float sl = (float)(lt - ls - D);
            for (int64_t j = 0; j < V; j++) s[j] = f * q[j] * ((s[j] - t[j]) + sl);
        } else if (c->kind == TK_DISTILL_JSD) {
            /* d JSD / d q_j = (1 - beta) log(q_j / m_j) (the p / m terms cancel), through the softmax:
             * g_j = (1 - beta) q_j (log q_j - log m_j - KL(q || m)) */
            float fb = f * (float)(1 - c->beta);
            for (int64_t j = 0; j < V; j++) {
                double lq = (double)s[j] - ls, lp = (double)t[j] - lt, lm = log_add(lq + c->log_1mb, lp + c->log_b);
                s[j] = fb * q[j] * (float)(lq - lm - klq);
            }
        } else {
            for (int64_t j = 0; j < V; j++) s[j] = f * (q[j] - p[j]);
        }
    }
    return TK_OK;
}

tk_status tk_distill(const float *h, const tk_lm_head *head, const tk_teacher *teacher, const int64_t *rows, int64_t n,
                     int64_t T, const float *weight, tk_distill_kind kind, float temperature, float grad_scale,
                     double *loss_sum, double *weight_sum, float *dh, float *dw) {
    tk_distill_params p = tk_distill_default_params();
    p.kind = kind;
    p.temperature = temperature;
    return tk_distill_p(h, head, teacher, rows, n, T, weight, &p, grad_scale, loss_sum, weight_sum, dh, dw);
}

tk_status tk_distill_p(const float *h, const tk_lm_head *head, const tk_teacher *teacher, const int64_t *rows, int64_t n,
                       int64_t T, const float *weight, const tk_distill_params *dp, float grad_scale, double *loss_sum,
                       double *weight_sum, float *dh, float *dw) {
    if (!dp) return tk_fail(TK_ERR_ARG, "distill: NULL parameters");
    tk_distill_kind kind = dp->kind;
    const float temperature = dp->temperature;
    const double beta = dp->beta;
    if (!h || !loss_sum || !weight_sum) return tk_fail(TK_ERR_ARG, "distill: NULL hidden states or outputs");
    tk_status st = tk_head_check(head, "distill: student");
    if (st) return st;
    if ((st = tk_teacher_check(teacher, rows, n, T))) return tk_fail_ctx(st, "distill: ");
    const int64_t V = head->w->ne[1];
    if (tk_teacher_vocab(teacher) != V)
        return tk_fail(TK_ERR_ARG, "distill: teacher vocabulary %lld differs from the student's %lld",
                       (long long)tk_teacher_vocab(teacher), (long long)V);
    if (kind != TK_DISTILL_FORWARD_KL && kind != TK_DISTILL_REVERSE_KL && kind != TK_DISTILL_CROSS_ENTROPY && kind != TK_DISTILL_JSD)
        return tk_fail(TK_ERR_ARG, "distill: unknown kind %d", (int)kind);
    if (kind == TK_DISTILL_JSD && !(beta >= 0 && beta <= 1))
        return tk_fail(TK_ERR_ARG, "distill: jsd beta %g must be in [0, 1]", beta);
    /* TRL's special cases: beta 0 is KL(p || q), beta 1 KL(q || p) (the mixture formula would give 0) */
    if (kind == TK_DISTILL_JSD && beta == 0) kind = TK_DISTILL_FORWARD_KL;
    if (kind == TK_DISTILL_JSD && beta == 1) kind = TK_DISTILL_REVERSE_KL;
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return tk_fail(TK_ERR_ARG, "distill: temperature %g must be a positive number", (double)temperature);
    *loss_sum = 0;
    *weight_sum = 0;
    /* rows with weight 0 contribute nothing: drop them (no head product for them) */
    int64_t *sel = tk_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!sel) return tk_fail(TK_ERR_NOMEM, "distill: out of memory");
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!weight || weight[rows[i]] != 0.0f) sel[m++] = rows[i];
    int64_t R = tk_lmhead_chunk_rows(V);
    if (R > m) R = m;
    dctx c = {teacher, sel, weight, V, kind, 1.0f / temperature, grad_scale, beta, log(beta), log1p(-beta), dh || dw, R,
              NULL, NULL, NULL, NULL, NULL};
    if (m > 0) {
        c.tl = tk_malloc((size_t)R * V * sizeof(float));
        c.es = tk_malloc((size_t)R * V * sizeof(float));
        c.et = tk_malloc((size_t)R * V * sizeof(float));
        c.hbuf = teacher->h ? tk_malloc((size_t)R * teacher->head->w->ne[0] * sizeof(float)) : NULL;
        c.d = tk_malloc((size_t)m * sizeof(double));
        if (!c.tl || !c.es || !c.et || !c.d || (teacher->h && !c.hbuf)) { st = tk_fail(TK_ERR_NOMEM, "distill: out of memory"); goto done; }
        if ((st = tk_head_chunks(h, head, sel, m, chunk, &c, dh, dw))) goto done;
        double ls = 0, ws = 0;
        for (int64_t i = 0; i < m; i++) { /* row order: deterministic */
            double w = weight ? weight[sel[i]] : 1.0;
            ls += w * c.d[i];
            ws += w;
        }
        *loss_sum = ls;
        *weight_sum = ws;
    }
done:
    free(sel);
    free(c.tl);
    free(c.es);
    free(c.et);
    free(c.hbuf);
    free(c.d);
    return st;
}
