/* The objective seam (src/objective/): SFT through the objective table bit-identical to
 * tk_lmhead_xent; per-sequence log-probabilities, teacher logits and distillation against a
 * direct full-logits computation in double; every gradient (dh and the head's dW) against
 * central finite differences of that double reference; chunking invariance (1, 2, 5 rows per
 * chunk vs automatic); the DPO objective (src/objective/dpo.c; every loss type in test_dpo.c)
 * and the distillation losses against PyTorch (fixture written by
 * tools/make_objective_reference.py); edge cases (nothing counted, top-k ties, bit-identical
 * reruns); bad arguments fail with a message naming the field/row. */
#include "test.h"
#include "core/core.h"
#include "core/quant.h"
#include "ops/ops.h"
#include "objective/objective.h"
#include "objective/logp.h"
#include "objective/teacher.h"
#include "objective/distill.h"
#include "objective/dpo.h"
#include "takumi/safetensors.h"

static tk_rng rng;

/* A small random problem: packed batch of T rows, C dims, V vocabulary, S sequences. */
typedef struct prob {
    int64_t T, C, V, Ct;
    int32_t S;
    float *h, *w, *th, *tw, *wt;   /* h [T x C], w [V x C], teacher th [T x Ct], tw [V x Ct], weights [T] */
    int32_t *target, *seq;
    int64_t *rows, n_rows;         /* distillation rows */
    tk_tensor_ref hw, thw;         /* head weights {C, V}, {Ct, V} */
    tk_lm_head head, thead;        /* the heads (soft-cap 0 unless a check sets one) */
} prob;

static float *randv(int64_t n, float scale) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = scale * tk_rng_normal(&rng);
    return v;
}
static tk_tensor_ref ref_f32(const float *w, int64_t C, int64_t V) {
    return (tk_tensor_ref){.name = "head", .dtype = TK_F32, .n_dims = 2, .ne = {C, V, 1, 1}, .data = w,
                           .nbytes = (size_t)(C * V) * sizeof(float)};
}

static void prob_init(prob *p, int64_t T, int64_t C, int64_t V, int32_t S) {
    memset(p, 0, sizeof(*p));
    p->T = T; p->C = C; p->V = V; p->Ct = 12; p->S = S;
    p->h = randv(T * C, 1.0f);
    p->w = randv(V * C, 0.5f);
    p->th = randv(T * p->Ct, 1.0f);
    p->tw = randv(V * p->Ct, 0.5f);
    p->wt = malloc((size_t)T * sizeof(float));
    p->target = malloc((size_t)T * sizeof(int32_t));
    p->seq = malloc((size_t)T * sizeof(int32_t));
    p->rows = malloc((size_t)T * sizeof(int64_t));
    /* packing: sequences in contiguous spans with gaps (-1: prompts), a few masked targets */
    for (int64_t t = 0; t < T; t++) {
        p->target[t] = (int32_t)(tk_rng_u64(&rng) % (uint64_t)V);
        p->seq[t] = (int32_t)((t * S) / T);
        if (t % 5 == 0) p->seq[t] = -1;
        if (t % 7 == 3) p->target[t] = -1;
        p->wt[t] = 0.25f + tk_rng_uniform(&rng);
    }
    p->wt[1] = 0.0f;
    p->n_rows = 0;
    for (int64_t t = T - 1; t >= 0; t -= 2) p->rows[p->n_rows++] = t; /* unsorted on purpose */
    p->rows[p->n_rows++] = 1;    /* weight 0 */
    p->rows[p->n_rows++] = T - 1; /* a repeated row adds up */
    p->hw = ref_f32(p->w, C, V);
    p->thw = ref_f32(p->tw, p->Ct, V);
    p->head = (tk_lm_head){&p->hw, 0.0f};
    p->thead = (tk_lm_head){&p->thw, 0.0f};
}
static void prob_free(prob *p) {
    free(p->h); free(p->w); free(p->th); free(p->tw); free(p->wt); free(p->target); free(p->seq); free(p->rows);
}

/* ---- the double reference: full logits ---- */
static double g_cap; /* > 0: the reference heads soft-cap their logits (c * tanh(z / c)) */
static void logsoftmax_d(double *out, const double *h, const double *w, int64_t C, int64_t V, double inv_tau) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < V; j++) {
        double z = 0;
        for (int64_t c = 0; c < C; c++) z += h[c] * w[j * C + c];
        if (g_cap > 0) z = g_cap * tanh(z / g_cap);
        out[j] = z * inv_tau;
        mx = fmax(mx, out[j]);
    }
    double se = 0;
    for (int64_t j = 0; j < V; j++) se += exp(out[j] - mx);
    double lse = mx + log(se);
    for (int64_t j = 0; j < V; j++) out[j] -= lse;
}
static double *tod(const float *x, int64_t n) {
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Reference seq logp: sums, means, counts, token; and L = sum a*sum + b*mean + c.token when a/b/c given. */
static double ref_logp(const prob *p, const double *h, const double *w, double *sum, double *mean, int64_t *count,
                       double *token, const double *a, const double *b, const double *c) {
    double *ls = malloc((size_t)p->V * sizeof(double)), *s = calloc((size_t)p->S, sizeof(double));
    int64_t *k = calloc((size_t)p->S, sizeof(int64_t));
    double L = 0;
    for (int64_t t = 0; t < p->T; t++) {
        double lp = 0;
        if (p->seq[t] >= 0 && p->target[t] >= 0) {
            logsoftmax_d(ls, h + t * p->C, w, p->C, p->V, 1.0);
            lp = ls[p->target[t]];
            s[p->seq[t]] += lp;
            k[p->seq[t]]++;
            if (c) L += c[t] * lp;
        }
        if (token) token[t] = lp;
    }
    for (int32_t q = 0; q < p->S; q++) {
        double m = k[q] ? s[q] / (double)k[q] : 0;
        if (sum) sum[q] = s[q];
        if (mean) mean[q] = m;
        if (count) count[q] = k[q];
        if (a) L += a[q] * s[q];
        if (b) L += b[q] * m;
    }
    free(ls); free(s); free(k);
    return L;
}

/* Reference distillation loss_sum. */
static double ref_distill(const prob *p, const double *h, const double *w, const double *th, const double *tw,
                          tk_distill_kind kind, double tau) {
    double *lq = malloc((size_t)p->V * sizeof(double)), *lp = malloc((size_t)p->V * sizeof(double));
    double L = 0;
    for (int64_t i = 0; i < p->n_rows; i++) {
        int64_t t = p->rows[i];
        logsoftmax_d(lq, h + t * p->C, w, p->C, p->V, 1.0 / tau);
        logsoftmax_d(lp, th + t * p->Ct, tw, p->Ct, p->V, 1.0 / tau);
        double D = 0;
        for (int64_t j = 0; j < p->V; j++) {
            if (kind == TK_DISTILL_FORWARD_KL) D += exp(lp[j]) * (lp[j] - lq[j]);
            else if (kind == TK_DISTILL_REVERSE_KL) D += exp(lq[j]) * (lq[j] - lp[j]);
            else D -= exp(lp[j]) * lq[j];
        }
        L += p->wt[t] * D;
    }
    free(lq); free(lp);
    return L;
}

/* max |a - b| / max |b| */
static double rel_err_f(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs(b[i])); }
    return md / (mb > 0 ? mb : 1);
}
static double rel_err_d(const double *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs(b[i])); }
    return md / (mb > 0 ? mb : 1);
}

/* Central finite differences of a double loss over every element of x (n). */
typedef double (*loss_fn)(void *ctx);
static void fd_grad(double *g, double *x, int64_t n, loss_fn f, void *ctx) {
    const double eps = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + eps; double lp = f(ctx);
        x[i] = x0 - eps; double lm = f(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * eps);
    }
}

/* ---- SFT: the objective table vs tk_lmhead_xent, bit for bit ---- */
static void check_sft(void) {
    prob p;
    prob_init(&p, 19, 16, 50, 3);
    CHECK(tk_objective_find("sft") == &tk_objective_sft, "sft is registered");
    CHECK(tk_objective_find("nope") == NULL, "unknown objective");
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_sft, NULL, &o));
    const int64_t n = p.T * p.C, nw = p.V * p.C;
    float *dh1 = malloc(n * sizeof(float)), *dh2 = malloc(n * sizeof(float));
    float *dw0 = randv(nw, 0.1f), *dw1 = malloc(nw * sizeof(float)), *dw2 = malloc(nw * sizeof(float));
    int64_t chunks[] = {0, 3};
    for (int ci = 0; ci < 2; ci++) {
        tk_lmhead_xent_chunk_rows(chunks[ci]);
        for (int wmode = 0; wmode < 2; wmode++) {
            const float *wt = wmode ? p.wt : NULL;
            memcpy(dw1, dw0, nw * sizeof(float));
            memcpy(dw2, dw0, nw * sizeof(float));
            for (int64_t i = 0; i < n; i++) dh1[i] = dh2[i] = 7.0f; /* dh is written (=) */
            double ls, ws;
            CHECK_OK(tk_lmhead_xent(p.h, &p.head, p.target, wt, p.T, 0.125f, &ls, &ws, dh1, dw1));
            tk_obj_batch b = {.T = p.T, .C = p.C, .h = p.h, .head = &p.head, .target = p.target, .weight = wt};
            tk_obj_result r;
            CHECK_OK(tk_objective_loss_and_grad(o, &b, 0.125f, dh2, dw2, &r));
            CHECK(r.loss_sum == ls && r.norm == ws, "sft loss %.17g/%.17g vs xent %.17g/%.17g", r.loss_sum, r.norm, ls, ws);
            CHECK(!memcmp(dh1, dh2, n * sizeof(float)), "sft dh bit-identical to tk_lmhead_xent (chunk %lld)", (long long)chunks[ci]);
            CHECK(!memcmp(dw1, dw2, nw * sizeof(float)), "sft dw bit-identical to tk_lmhead_xent (chunk %lld)", (long long)chunks[ci]);
            CHECK(ls > 0 && ws > 0, "non-trivial sft case");
            /* evaluation only: no gradient, same loss */
            CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r));
            CHECK(r.loss_sum == ls && r.norm == ws, "sft loss without gradient");
        }
    }
    tk_lmhead_xent_chunk_rows(0);
    tk_objective_free(o);
    free(dh1); free(dh2); free(dw0); free(dw1); free(dw2);
    prob_free(&p);
}

/* ---- seq logp: values and gradients ---- */
typedef struct lctx { const prob *p; double *h, *w; const double *a, *b, *c; } lctx;
static double logp_L(void *v) { lctx *c = v; return ref_logp(c->p, c->h, c->w, NULL, NULL, NULL, NULL, c->a, c->b, c->c); }

static void check_logp(void) {
    prob p;
    prob_init(&p, 23, 16, 50, 4);
    double sum[4], mean[4], rsum[4], rmean[4], token[23], rtoken[23];
    int64_t count[4], rcount[4];
    double *hd = tod(p.h, p.T * p.C), *wd = tod(p.w, p.V * p.C);
    CHECK_OK(tk_seq_logp_forward(p.h, &p.head, p.T, p.target, p.seq, p.S, sum, mean, count, token));
    ref_logp(&p, hd, wd, rsum, rmean, rcount, rtoken, NULL, NULL, NULL);
    CHECK(rel_err_d(sum, rsum, p.S) < 1e-6, "logp sums vs double reference: %g", rel_err_d(sum, rsum, p.S));
    CHECK(rel_err_d(mean, rmean, p.S) < 1e-6, "logp means: %g", rel_err_d(mean, rmean, p.S));
    CHECK(rel_err_d(token, rtoken, p.T) < 1e-6, "per-token logp: %g", rel_err_d(token, rtoken, p.T));
    CHECK(!memcmp(count, rcount, sizeof count), "counts");
    CHECK(rcount[0] > 2 && rcount[3] > 2, "sequences are not empty");

    /* gradient of L = a.sum + b.mean + c.token, dh and dw accumulate into non-zero buffers */
    double a[4], b[4], *c = malloc(p.T * sizeof(double));
    for (int i = 0; i < 4; i++) { a[i] = tk_rng_normal(&rng); b[i] = tk_rng_normal(&rng); }
    for (int64_t t = 0; t < p.T; t++) c[t] = t % 3 ? tk_rng_normal(&rng) : 0.0;
    const int64_t n = p.T * p.C, nw = p.V * p.C;
    float *dh0 = randv(n, 1.0f), *dw0 = randv(nw, 1.0f), *dh = malloc(n * sizeof(float)), *dw = malloc(nw * sizeof(float));
    memcpy(dh, dh0, n * sizeof(float));
    memcpy(dw, dw0, nw * sizeof(float));
    CHECK_OK(tk_seq_logp_backward(p.h, &p.head, p.T, p.target, p.seq, p.S, a, b, c, dh, dw));
    for (int64_t i = 0; i < n; i++) dh[i] -= dh0[i];
    for (int64_t i = 0; i < nw; i++) dw[i] -= dw0[i];
    double *gh = malloc(n * sizeof(double)), *gw = malloc(nw * sizeof(double));
    lctx lc = {&p, hd, wd, a, b, c};
    fd_grad(gh, hd, n, logp_L, &lc);
    fd_grad(gw, wd, nw, logp_L, &lc);
    double eh = rel_err_f(dh, gh, n), ew = rel_err_f(dw, gw, nw);
    printf("seq logp backward vs finite differences: dh %.2e, dw %.2e\n", eh, ew);
    CHECK(eh < 1e-5, "seq logp dh vs FD: %g", eh);
    CHECK(ew < 1e-5, "seq logp dw vs FD: %g", ew);
    /* rows outside every sequence get no gradient */
    for (int64_t t = 0; t < p.T; t++)
        if (p.seq[t] < 0 || p.target[t] < 0)
            for (int64_t j = 0; j < p.C; j++) CHECK(dh[t * p.C + j] == 0.0f, "row %lld has no gradient", (long long)t);

    /* chunking invariance */
    float *dhk = malloc(n * sizeof(float)), *dwk = malloc(nw * sizeof(float));
    int64_t chunks[] = {1, 2, 5};
    for (int k = 0; k < 3; k++) {
        tk_lmhead_xent_chunk_rows(chunks[k]);
        double s2[4], t2[23];
        CHECK_OK(tk_seq_logp_forward(p.h, &p.head, p.T, p.target, p.seq, p.S, s2, NULL, NULL, t2));
        memset(dhk, 0, n * sizeof(float));
        memset(dwk, 0, nw * sizeof(float));
        CHECK_OK(tk_seq_logp_backward(p.h, &p.head, p.T, p.target, p.seq, p.S, a, b, c, dhk, dwk));
        tk_lmhead_xent_chunk_rows(0);
        CHECK(rel_err_d(s2, sum, p.S) < 1e-6 && rel_err_d(t2, token, p.T) < 1e-6, "logp chunk %lld", (long long)chunks[k]);
        double *dd = tod(dh, n), *dwd = tod(dw, nw);
        CHECK(rel_err_f(dhk, dd, n) < 1e-6, "logp dh chunk %lld: %g", (long long)chunks[k], rel_err_f(dhk, dd, n));
        CHECK(rel_err_f(dwk, dwd, nw) < 1e-6, "logp dw chunk %lld: %g", (long long)chunks[k], rel_err_f(dwk, dwd, nw));
        free(dd); free(dwd);
    }

    /* a quantized head (Q8_0, C = 32): values against the dequantized weights */
    prob q;
    prob_init(&q, 11, 32, 40, 2);
    size_t nb;
    tk_dtype_nbytes(TK_Q8_0, q.V * q.C, &nb);
    void *wq = malloc(nb);
    CHECK_OK(tk_quantize(TK_Q8_0, q.w, wq, q.V * q.C));
    CHECK_OK(tk_dequantize(TK_Q8_0, wq, q.w, q.V * q.C));
    tk_tensor_ref hq = {.name = "head_q8", .dtype = TK_Q8_0, .n_dims = 2, .ne = {q.C, q.V, 1, 1}, .data = wq, .nbytes = nb};
    double qs[2], qr[2];
    double *qh = tod(q.h, q.T * q.C), *qw = tod(q.w, q.V * q.C);
    tk_lm_head hqh = {&hq, 0.0f};
    CHECK_OK(tk_seq_logp_forward(q.h, &hqh, q.T, q.target, q.seq, q.S, qs, NULL, NULL, NULL));
    ref_logp(&q, qh, qw, qr, NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK(rel_err_d(qs, qr, 2) < 1e-5, "q8_0 head logp: %g", rel_err_d(qs, qr, 2));
    free(wq); free(qh); free(qw);
    prob_free(&q);

    free(c); free(dh0); free(dw0); free(dh); free(dw); free(gh); free(gw); free(dhk); free(dwk); free(hd); free(wd);
    prob_free(&p);
}

/* ---- a soft-capped head (Gemma 2): logp values and gradients, distillation between capped heads ---- */
static void check_softcap(void) {
    prob p;
    prob_init(&p, 17, 16, 40, 3);
    g_cap = 1.5; /* logits of h (unit normal, C 16) through w (0.5 normal) reach about 6: the cap bends them */
    p.head.softcap = p.thead.softcap = 1.5f;
    double sum[3], rsum[3];
    double *hd = tod(p.h, p.T * p.C), *wd = tod(p.w, p.V * p.C);
    CHECK_OK(tk_seq_logp_forward(p.h, &p.head, p.T, p.target, p.seq, p.S, sum, NULL, NULL, NULL));
    ref_logp(&p, hd, wd, rsum, NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK(rel_err_d(sum, rsum, p.S) < 1e-6, "capped logp sums vs double reference: %g", rel_err_d(sum, rsum, p.S));
    double a[3] = {0.7, -1.1, 0.4};
    const int64_t n = p.T * p.C, nw = p.V * p.C;
    float *dh = calloc(n, sizeof(float)), *dw = calloc(nw, sizeof(float));
    CHECK_OK(tk_seq_logp_backward(p.h, &p.head, p.T, p.target, p.seq, p.S, a, NULL, NULL, dh, dw));
    double *gh = malloc(n * sizeof(double)), *gw = malloc(nw * sizeof(double));
    lctx lc = {&p, hd, wd, a, NULL, NULL};
    fd_grad(gh, hd, n, logp_L, &lc);
    fd_grad(gw, wd, nw, logp_L, &lc);
    double eh = rel_err_f(dh, gh, n), ew = rel_err_f(dw, gw, nw);
    printf("capped head: seq logp backward vs finite differences: dh %.2e, dw %.2e\n", eh, ew);
    CHECK(eh < 1e-5 && ew < 1e-5, "capped logp gradients vs FD: dh %g, dw %g", eh, ew);
    /* SFT's xent on the capped head: loss = -sum of the reference log-probabilities of counted rows */
    double ls, ws, want = 0;
    CHECK_OK(tk_lmhead_xent(p.h, &p.head, p.target, NULL, p.T, 1.0f, &ls, &ws, NULL, NULL));
    double *lsm = malloc((size_t)p.V * sizeof(double));
    for (int64_t t = 0; t < p.T; t++)
        if (p.target[t] >= 0) { logsoftmax_d(lsm, hd + t * p.C, wd, p.C, p.V, 1.0); want -= lsm[p.target[t]]; }
    CHECK(fabs(ls - want) < 1e-5 * fabs(want), "capped xent loss %.9g vs reference %.9g", ls, want);
    /* distillation between two capped heads (teacher logits through tk_lm_head_logits) */
    double *thd = tod(p.th, p.T * p.Ct), *twd = tod(p.tw, p.V * p.Ct);
    tk_teacher th = {.h = p.th, .head = &p.thead};
    CHECK_OK(tk_distill(p.h, &p.head, &th, p.rows, p.n_rows, p.T, p.wt, TK_DISTILL_FORWARD_KL, 1.0f, 1.0f, &ls, &ws, NULL, NULL));
    double rd = ref_distill(&p, hd, wd, thd, twd, TK_DISTILL_FORWARD_KL, 1.0);
    CHECK(fabs(ls - rd) < 1e-5 * fabs(rd), "capped distillation %.9g vs reference %.9g", ls, rd);
    g_cap = 0;
    free(dh); free(dw); free(gh); free(gw); free(hd); free(wd); free(lsm); free(thd); free(twd);
    prob_free(&p);
}

/* ---- teacher logits in chunks ---- */
typedef struct collect { int64_t V, k, n, chunks; float *vals; int32_t *ids; int64_t *rows; } collect;
static tk_status collect_fn(void *v, const tk_logit_chunk *ch) {
    collect *c = v;
    if (ch->V != c->V || ch->k != c->k || ch->c0 != c->n) return tk_fail(TK_ERR_INTERNAL, "chunk shape");
    memcpy(c->vals + c->n * c->k, ch->values, (size_t)(ch->n * ch->k) * sizeof(float));
    if (ch->ids) memcpy(c->ids + c->n * c->k, ch->ids, (size_t)(ch->n * ch->k) * sizeof(int32_t));
    memcpy(c->rows + c->n, ch->rows, (size_t)ch->n * sizeof(int64_t));
    c->n += ch->n;
    c->chunks++;
    return TK_OK;
}
/* A callback teacher: logits from th/tw by plain loops (stands for logits computed elsewhere). */
static tk_status teacher_cb(void *v, const int64_t *rows, int64_t n, float *out) {
    const prob *p = v;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < p->V; j++) {
            float z = 0;
            for (int64_t c = 0; c < p->Ct; c++) z += p->th[rows[i] * p->Ct + c] * p->tw[j * p->Ct + c];
            out[i * p->V + j] = z;
        }
    return TK_OK;
}
static tk_status failing_cb(void *v, const int64_t *rows, int64_t n, float *out) {
    return tk_fail(TK_ERR_IO, "teacher file truncated");
}

static void check_teacher(void) {
    prob p;
    prob_init(&p, 17, 16, 50, 2);
    const int64_t V = p.V, n = p.n_rows;
    tk_teacher th = {.h = p.th, .head = &p.thead};
    tk_teacher cb = {.logits = teacher_cb, .ctx = &p, .V = V};
    double *thd = tod(p.th, p.T * p.Ct), *twd = tod(p.tw, V * p.Ct), *ls = malloc(V * sizeof(double));
    collect c = {V, V, 0, 0, malloc(n * V * sizeof(float)), malloc(n * V * sizeof(int32_t)), malloc(n * sizeof(int64_t))};
    for (int mode = 0; mode < 3; mode++) {
        tk_teacher_view v = {mode == 0 ? 1.0f : 2.0f, mode >= 1, mode == 2 ? 5 : 0};
        for (int src = 0; src < 2; src++) {
            tk_lmhead_xent_chunk_rows(3);
            c.n = c.chunks = 0;
            c.k = v.top_k ? v.top_k : V;
            CHECK_OK(tk_teacher_logits(src ? &cb : &th, p.rows, n, p.T, &v, collect_fn, &c));
            tk_lmhead_xent_chunk_rows(0);
            CHECK(c.n == n && c.chunks == (n + 2) / 3, "teacher chunks: %lld rows in %lld chunks", (long long)c.n, (long long)c.chunks);
            CHECK(!memcmp(c.rows, p.rows, n * sizeof(int64_t)), "teacher chunk rows in order");
            double md = 0;
            for (int64_t i = 0; i < n; i++) {
                /* reference: logits/tau or their log-softmax */
                const double *hr = thd + p.rows[i] * p.Ct;
                if (v.log_softmax) logsoftmax_d(ls, hr, twd, p.Ct, V, 1.0 / v.temperature);
                else for (int64_t j = 0; j < V; j++) {
                    double z = 0;
                    for (int64_t k = 0; k < p.Ct; k++) z += hr[k] * twd[j * p.Ct + k];
                    ls[j] = z / v.temperature;
                }
                if (!v.top_k) {
                    for (int64_t j = 0; j < V; j++) md = fmax(md, fabs(c.vals[i * V + j] - ls[j]));
                } else {
                    for (int64_t k = 0; k < v.top_k; k++) { /* the k-th largest, and in order */
                        int32_t id = c.ids[i * v.top_k + k];
                        CHECK(id >= 0 && id < V, "top-k id");
                        md = fmax(md, fabs(c.vals[i * v.top_k + k] - ls[id]));
                        int64_t above = 0;
                        for (int64_t j = 0; j < V; j++) above += ls[j] > ls[id];
                        CHECK(above == k, "top-k entry %lld of row %lld has %lld larger entries", (long long)k, (long long)i, (long long)above);
                    }
                }
            }
            CHECK(md < 1e-5, "teacher logits (mode %d, %s): %g", mode, src ? "callback" : "head", md);
        }
    }
    /* errors: bad rows, temperature, top_k, callback failure */
    int64_t bad = p.T;
    tk_teacher_view v1 = {1.0f, false, 0}, v0 = {0.0f, false, 0}, vk = {1.0f, false, 51};
    CHECK(tk_teacher_logits(&th, &bad, 1, p.T, &v1, collect_fn, &c) == TK_ERR_RANGE, "row outside the batch");
    CHECK(strstr(tk_last_error(), "row 17") != NULL, "message names the row: %s", tk_last_error());
    CHECK(tk_teacher_logits(&th, p.rows, n, p.T, &v0, collect_fn, &c) == TK_ERR_ARG, "temperature 0");
    CHECK(tk_teacher_logits(&th, p.rows, n, p.T, &vk, collect_fn, &c) == TK_ERR_ARG, "top_k > V");
    CHECK(strstr(tk_last_error(), "top_k") != NULL, "message names top_k: %s", tk_last_error());
    tk_teacher fcb = {.logits = failing_cb, .V = V}, none = {0};
    c.n = c.chunks = 0; c.k = V;
    CHECK(tk_teacher_logits(&fcb, p.rows, n, p.T, NULL, collect_fn, &c) == TK_ERR_IO, "callback failure passes through");
    CHECK(strstr(tk_last_error(), "truncated") != NULL, "callback message kept: %s", tk_last_error());
    CHECK(tk_teacher_logits(&none, p.rows, n, p.T, NULL, collect_fn, &c) == TK_ERR_ARG, "empty teacher");
    free(c.vals); free(c.ids); free(c.rows); free(thd); free(twd); free(ls);
    prob_free(&p);
}

/* ---- distillation ---- */
typedef struct dfd { const prob *p; double *h, *w, *th, *tw; tk_distill_kind kind; double tau; } dfd;
static double distill_L(void *v) { dfd *c = v; return ref_distill(c->p, c->h, c->w, c->th, c->tw, c->kind, c->tau); }

static void check_distill(void) {
    prob p;
    prob_init(&p, 21, 16, 50, 2);
    const int64_t n = p.T * p.C, nw = p.V * p.C;
    double *hd = tod(p.h, n), *wd = tod(p.w, nw), *thd = tod(p.th, p.T * p.Ct), *twd = tod(p.tw, p.V * p.Ct);
    double *gh = malloc(n * sizeof(double)), *gw = malloc(nw * sizeof(double));
    float *dh = malloc(n * sizeof(float)), *dw = malloc(nw * sizeof(float)), *dh2 = malloc(n * sizeof(float)), *dw2 = malloc(nw * sizeof(float));
    tk_teacher th = {.h = p.th, .head = &p.thead};
    tk_teacher cb = {.logits = teacher_cb, .ctx = &p, .V = p.V};
    tk_distill_kind kinds[] = {TK_DISTILL_FORWARD_KL, TK_DISTILL_REVERSE_KL, TK_DISTILL_CROSS_ENTROPY};
    for (int k = 0; k < 3; k++) {
        float tau = k == 1 ? 1.0f : 2.0f;
        double ls, ws;
        memset(dh, 0, n * sizeof(float));
        memset(dw, 0, nw * sizeof(float));
        CHECK_OK(tk_distill(p.h, &p.head, &th, p.rows, p.n_rows, p.T, p.wt, kinds[k], tau, 1.0f, &ls, &ws, dh, dw));
        dfd c = {&p, hd, wd, thd, twd, kinds[k], tau};
        double rl = distill_L(&c), rw = 0;
        for (int64_t i = 0; i < p.n_rows; i++) rw += p.wt[p.rows[i]];
        CHECK(fabs(ls - rl) <= 1e-5 * fabs(rl), "%s loss %.9g vs reference %.9g", tk_distill_kind_name(kinds[k]), ls, rl);
        CHECK(fabs(ws - rw) <= 1e-6 * rw, "%s weight sum", tk_distill_kind_name(kinds[k]));
        fd_grad(gh, hd, n, distill_L, &c);
        fd_grad(gw, wd, nw, distill_L, &c);
        double eh = rel_err_f(dh, gh, n), ew = rel_err_f(dw, gw, nw);
        printf("distill %s (tau %g) vs finite differences: dh %.2e, dw %.2e\n", tk_distill_kind_name(kinds[k]), tau, eh, ew);
        CHECK(eh < 1e-5 && ew < 1e-5, "%s gradient vs FD: dh %g dw %g", tk_distill_kind_name(kinds[k]), eh, ew);
        /* callback teacher and tiny chunks: same results up to float rounding; grad_scale scales */
        int64_t chunks[] = {1, 2, 5};
        for (int ci = 0; ci < 3; ci++) {
            tk_lmhead_xent_chunk_rows(chunks[ci]);
            double ls2, ws2;
            memset(dh2, 0, n * sizeof(float));
            memset(dw2, 0, nw * sizeof(float));
            CHECK_OK(tk_distill(p.h, &p.head, ci == 1 ? &cb : &th, p.rows, p.n_rows, p.T, p.wt, kinds[k], tau, 0.5f, &ls2, &ws2, dh2, dw2));
            tk_lmhead_xent_chunk_rows(0);
            for (int64_t i = 0; i < n; i++) dh2[i] *= 2;
            for (int64_t i = 0; i < nw; i++) dw2[i] *= 2;
            double *dd = tod(dh, n), *dwd = tod(dw, nw);
            CHECK(fabs(ls2 - ls) <= 1e-6 * fabs(ls) && ws2 == ws, "distill loss chunk %lld", (long long)chunks[ci]);
            CHECK(rel_err_f(dh2, dd, n) < 1e-5 && rel_err_f(dw2, dwd, nw) < 1e-5, "distill grads chunk %lld: %g %g",
                  (long long)chunks[ci], rel_err_f(dh2, dd, n), rel_err_f(dw2, dwd, nw));
            free(dd); free(dwd);
        }
    }
    /* errors */
    double ls, ws;
    tk_tensor_ref smallw = ref_f32(p.tw, p.Ct, p.V - 1);
    tk_lm_head small = {&smallw, 0.0f};
    tk_teacher thv = {.h = p.th, .head = &small};
    CHECK(tk_distill(p.h, &p.head, &thv, p.rows, p.n_rows, p.T, NULL, TK_DISTILL_FORWARD_KL, 1.0f, 1.0f, &ls, &ws, NULL, NULL) == TK_ERR_ARG,
          "vocabulary mismatch");
    CHECK(strstr(tk_last_error(), "vocabulary") != NULL, "message: %s", tk_last_error());
    CHECK(tk_distill(p.h, &p.head, &th, p.rows, p.n_rows, p.T, NULL, TK_DISTILL_FORWARD_KL, -1.0f, 1.0f, &ls, &ws, NULL, NULL) == TK_ERR_ARG,
          "negative temperature");
    CHECK(tk_distill(p.h, &p.head, &th, p.rows, p.n_rows, p.T, NULL, (tk_distill_kind)7, 1.0f, 1.0f, &ls, &ws, NULL, NULL) == TK_ERR_ARG,
          "unknown kind");
    int64_t bad[] = {0, -3};
    CHECK(tk_distill(p.h, &p.head, &th, bad, 2, p.T, NULL, TK_DISTILL_FORWARD_KL, 1.0f, 1.0f, &ls, &ws, NULL, NULL) == TK_ERR_RANGE,
          "negative row");
    CHECK(strstr(tk_last_error(), "entry 1") != NULL, "message names the entry: %s", tk_last_error());
    free(hd); free(wd); free(thd); free(twd); free(gh); free(gw); free(dh); free(dw); free(dh2); free(dw2);
    prob_free(&p);
}

static double meta_num(const tk_safetensors *st, const char *key) {
    const char *s = tk_st_metadata(st, key);
    CHECK(s != NULL, "fixture metadata %s", key);
    return s ? strtod(s, NULL) : NAN;
}
static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    CHECK(t && t->dtype == dt && tk_tensor_nelems(t) == n, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return t && t->dtype == dt && tk_tensor_nelems(t) == n ? t->data : NULL;
}
static double rel_ff(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mb = fmax(mb, fabs((double)b[i])); }
    return md / (mb > 0 ? mb : 1);
}
static double rel_df(const double *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs((double)b[i])); }
    return md / (mb > 0 ? mb : 1);
}

static void check_pytorch(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/objective/objective_ref.safetensors", &st));
    if (!st) return;
    const tk_tensor_ref *wt = tk_st_find(st, "w"), *ht = tk_st_find(st, "h"), *tht = tk_st_find(st, "teacher_w"), *rt = tk_st_find(st, "distill_rows");
    const tk_tensor_ref *gt = tk_st_find(st, "seq_group");
    CHECK(wt && ht && tht && rt && gt, "fixture tensors w, h, teacher_w, distill_rows, seq_group");
    if (!wt || !ht || !tht || !rt || !gt) { tk_st_close(st); return; }
    const int64_t V = wt->ne[1], C = wt->ne[0], T = ht->ne[1], Ct = tht->ne[0], N = rt->ne[0];
    const int32_t S = (int32_t)gt->ne[0];
    const float *h = fx(st, "h", TK_F32, T * C), *href = fx(st, "h_ref", TK_F32, T * C), *th = fx(st, "teacher_h", TK_F32, T * Ct);
    const float *w = fx(st, "w", TK_F32, V * C), *tw = fx(st, "teacher_w", TK_F32, V * Ct), *dwt = fx(st, "distill_weight", TK_F32, T);
    const int32_t *target = fx(st, "target", TK_I32, T), *seq = fx(st, "seq", TK_I32, T), *grp = fx(st, "seq_group", TK_I32, S);
    const int32_t *rows32 = fx(st, "distill_rows", TK_I32, N);
    const float *val = fx(st, "seq_value", TK_F32, S);
    if (!h || !href || !th || !w || !tw || !dwt || !target || !seq || !grp || !rows32 || !val) { tk_st_close(st); return; }
    tk_tensor_ref headw = *wt, theadw = *tht;
    tk_lm_head head = {&headw, 0.0f}, thead = {&theadw, 0.0f};

    /* per-sequence log-probs, policy and reference */
    double ps[16], pm[16], rs[16], rm[16];
    CHECK(S <= 16, "fixture sequences");
    CHECK_OK(tk_seq_logp_forward(h, &head, T, target, seq, S, ps, pm, NULL, NULL));
    CHECK_OK(tk_seq_logp_forward(href, &head, T, target, seq, S, rs, rm, NULL, NULL));
    double e1 = rel_df(ps, fx(st, "logp_sum", TK_F32, S), S), e2 = rel_df(pm, fx(st, "logp_mean", TK_F32, S), S);
    double e3 = rel_df(rs, fx(st, "ref_logp_sum", TK_F32, S), S), e4 = rel_df(rm, fx(st, "ref_logp_mean", TK_F32, S), S);
    printf("vs PyTorch: logp sums %.1e, means %.1e, reference sums %.1e, means %.1e\n", e1, e2, e3, e4);
    CHECK(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5 && e4 < 1e-5, "logp vs PyTorch: %g %g %g %g", e1, e2, e3, e4);

    /* DPO through the objective table; the fixture's loss is the mean over pairs */
    int32_t G = 0;
    for (int32_t q = 0; q < S; q++) G = grp[q] + 1 > G ? grp[q] + 1 : G;
    tk_dpo_params dp = tk_dpo_default_params();
    dp.beta = meta_num(st, "beta");
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_dpo, &dp, &o));
    float *dh = malloc(T * C * sizeof(float)), *dw = calloc(V * C, sizeof(float));
    tk_obj_batch b = {.T = T, .C = C, .h = h, .head = &head, .target = target, .seq = seq, .n_seq = S,
                      .seq_group = grp, .n_group = G, .seq_value = val, .ref_h = href};
    tk_obj_result r;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f / G, dh, dw, &r));
    double loss = r.loss_sum / r.norm, rl = meta_num(st, "dpo_loss");
    double eh = rel_ff(dh, fx(st, "dpo_dh", TK_F32, T * C), T * C), ew = rel_ff(dw, fx(st, "dpo_dw", TK_F32, V * C), V * C);
    printf("vs PyTorch: DPO loss %.9f (torch %.9f), dh %.1e, dw %.1e; accuracy %g, margin %g\n", loss, rl, eh, ew,
           r.metrics[2] / r.norm, r.metrics[3] / r.norm);
    CHECK(fabs(loss - rl) <= 1e-5 * fabs(rl), "DPO loss %.9g vs %.9g", loss, rl);
    CHECK(eh < 1e-5 && ew < 1e-5, "DPO gradients vs PyTorch: dh %g dw %g", eh, ew);
    CHECK(r.norm == 2 && tk_objective_get_ops(o)->n_metrics == 6, "two pairs, six metrics");
    /* precomputed reference log-probs give the same loss */
    tk_obj_batch b2 = b;
    b2.ref_h = NULL;
    b2.ref_logp = rs;
    tk_obj_result r2;
    CHECK_OK(tk_objective_loss_and_grad(o, &b2, 1.0f / G, NULL, NULL, &r2));
    CHECK(r2.loss_sum == r.loss_sum, "ref_logp vs ref_h");
    /* the generic checks: a DPO batch without sequences or reference fails, naming the field */
    b2 = b; b2.seq = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b2, 1.0f, dh, NULL, &r2) == TK_ERR_ARG && strstr(tk_last_error(), "batch.seq"),
          "missing seq: %s", tk_last_error());
    b2 = b; b2.ref_h = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b2, 1.0f, dh, NULL, &r2) == TK_ERR_ARG && strstr(tk_last_error(), "batch.ref_h"),
          "missing reference: %s", tk_last_error());
    tk_objective_free(o);
    dp.beta = -1;
    CHECK(tk_objective_new(&tk_objective_dpo, &dp, &o) == TK_ERR_ARG && o == NULL && strstr(tk_last_error(), "objective dpo"),
          "create failure: %s", tk_last_error());

    /* distillation against PyTorch */
    int64_t *rows = malloc(N * sizeof(int64_t));
    for (int64_t i = 0; i < N; i++) rows[i] = rows32[i];
    tk_teacher teacher = {.h = th, .head = &thead};
    const char *names[] = {"forward_kl", "reverse_kl", "cross_entropy"};
    for (int k = 0; k < 3; k++) {
        double ls, ws;
        char key[64];
        float *dh2 = calloc(T * C, sizeof(float)), *dw2 = calloc(V * C, sizeof(float));
        CHECK_OK(tk_distill(h, &head, &teacher, rows, N, T, dwt, (tk_distill_kind)k, (float)meta_num(st, "tau"), 1.0f, &ls, &ws, dh2, dw2));
        snprintf(key, sizeof key, "%s_loss_sum", names[k]);
        double rk = meta_num(st, key);
        snprintf(key, sizeof key, "%s_dh", names[k]);
        double ek = rel_ff(dh2, fx(st, key, TK_F32, T * C), T * C);
        snprintf(key, sizeof key, "%s_dw", names[k]);
        double ekw = rel_ff(dw2, fx(st, key, TK_F32, V * C), V * C);
        printf("vs PyTorch: distill %s loss %.9f (torch %.9f), dh %.1e, dw %.1e\n", names[k], ls, rk, ek, ekw);
        CHECK(!strcmp(tk_distill_kind_name((tk_distill_kind)k), names[k]), "kind name");
        CHECK(fabs(ls - rk) <= 1e-5 * fabs(rk), "%s loss %.9g vs %.9g", names[k], ls, rk);
        CHECK(ek < 1e-5 && ekw < 1e-5, "%s gradients vs PyTorch: dh %g dw %g", names[k], ek, ekw);
        free(dh2); free(dw2);
    }
    free(rows); free(dh); free(dw);
    tk_st_close(st);
}

/* ---- edge cases: nothing counted, ties in top-k, run-to-run determinism ---- */
static tk_status tie_cb(void *v, const int64_t *rows, int64_t n, float *out) {
    const int64_t V = *(const int64_t *)v;
    for (int64_t i = 0; i < n * V; i++) out[i] = (float)((i % V) % 3 == 1); /* ones at ids 1, 4, 7, ... */
    return TK_OK;
}
static void check_edges(void) {
    prob p;
    prob_init(&p, 13, 16, 50, 3);
    const int64_t n = p.T * p.C, nw = p.V * p.C;
    /* no counted row: zeros, and the backward leaves dh/dw alone */
    int32_t *none = malloc(p.T * sizeof(int32_t));
    for (int64_t t = 0; t < p.T; t++) none[t] = -1;
    double sum[3] = {9, 9, 9}, mean[3] = {9, 9, 9}, d1[3] = {1, 1, 1};
    int64_t count[3] = {9, 9, 9};
    CHECK_OK(tk_seq_logp_forward(p.h, &p.head, p.T, p.target, none, p.S, sum, mean, count, NULL));
    CHECK(sum[2] == 0 && mean[2] == 0 && count[2] == 0, "empty sequences");
    float *dh = randv(n, 1.0f), *dh0 = malloc(n * sizeof(float));
    memcpy(dh0, dh, n * sizeof(float));
    CHECK_OK(tk_seq_logp_backward(p.h, &p.head, p.T, p.target, none, p.S, d1, d1, NULL, dh, NULL));
    CHECK(!memcmp(dh, dh0, n * sizeof(float)), "nothing counted: dh untouched");
    double ls = 5, ws = 5;
    tk_teacher th = {.h = p.th, .head = &p.thead};
    CHECK_OK(tk_distill(p.h, &p.head, &th, p.rows, 0, p.T, NULL, TK_DISTILL_FORWARD_KL, 1.0f, 1.0f, &ls, &ws, dh, NULL));
    CHECK(ls == 0 && ws == 0 && !memcmp(dh, dh0, n * sizeof(float)), "no rows: zero loss, dh untouched");
    /* ties in top-k go to the lower id */
    int64_t V = p.V;
    tk_teacher tie = {.logits = tie_cb, .ctx = &V, .V = V};
    tk_teacher_view v = {1.0f, true, 4};
    collect c = {V, 4, 0, 0, malloc(p.n_rows * 4 * sizeof(float)), malloc(p.n_rows * 4 * sizeof(int32_t)), malloc(p.n_rows * sizeof(int64_t))};
    CHECK_OK(tk_teacher_logits(&tie, p.rows, p.n_rows, p.T, &v, collect_fn, &c));
    CHECK(c.ids[0] == 1 && c.ids[1] == 4 && c.ids[2] == 7 && c.ids[3] == 10, "top-k ties: %d %d %d %d", c.ids[0], c.ids[1], c.ids[2], c.ids[3]);
    CHECK(c.vals[0] == c.vals[3], "tied values");
    /* determinism: the same call twice gives the same bits */
    float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float)), *wa = calloc(nw, sizeof(float)), *wb = calloc(nw, sizeof(float));
    double la, lb, s1[3], s2[3];
    for (int k = 0; k < 2; k++) {
        CHECK_OK(tk_distill(p.h, &p.head, &th, p.rows, p.n_rows, p.T, p.wt, TK_DISTILL_REVERSE_KL, 1.5f, 1.0f, k ? &lb : &la, &ws, k ? b : a, k ? wb : wa));
        CHECK_OK(tk_seq_logp_forward(p.h, &p.head, p.T, p.target, p.seq, p.S, k ? s2 : s1, NULL, NULL, NULL));
    }
    CHECK(la == lb && !memcmp(a, b, n * sizeof(float)) && !memcmp(wa, wb, nw * sizeof(float)) && !memcmp(s1, s2, sizeof s1),
          "bit-identical reruns");
    free(none); free(dh); free(dh0); free(c.vals); free(c.ids); free(c.rows); free(a); free(b); free(wa); free(wb);
    prob_free(&p);
}

/* ---- bad arguments: a status and a message naming the row / field, never a crash ---- */
static void check_errors(void) {
    prob p;
    prob_init(&p, 9, 16, 50, 2);
    double s[2];
    int32_t keep = p.target[4];
    int32_t keep_seq = p.seq[4];
    p.target[4] = 50; p.seq[4] = 0;
    CHECK(tk_seq_logp_forward(p.h, &p.head, p.T, p.target, p.seq, p.S, s, NULL, NULL, NULL) == TK_ERR_RANGE, "target >= V");
    CHECK(strstr(tk_last_error(), "row 4") && strstr(tk_last_error(), "vocabulary"), "message: %s", tk_last_error());
    p.target[4] = keep;
    p.seq[4] = 2;
    CHECK(tk_seq_logp_backward(p.h, &p.head, p.T, p.target, p.seq, p.S, s, NULL, NULL, NULL, NULL) == TK_ERR_RANGE, "seq >= n_seq");
    CHECK(strstr(tk_last_error(), "row 4") && strstr(tk_last_error(), "sequence id"), "message: %s", tk_last_error());
    p.seq[4] = keep_seq;
    CHECK(tk_seq_logp_forward(NULL, &p.head, p.T, p.target, p.seq, p.S, s, NULL, NULL, NULL) == TK_ERR_ARG, "NULL h");
    tk_tensor_ref badw = p.hw;
    badw.ne[2] = 2;
    tk_lm_head bad = {&badw, 0.0f};
    CHECK(tk_seq_logp_forward(p.h, &bad, p.T, p.target, p.seq, p.S, s, NULL, NULL, NULL) == TK_ERR_ARG, "3-D head");
    CHECK(tk_seq_logp_forward(p.h, NULL, p.T, p.target, p.seq, p.S, s, NULL, NULL, NULL) == TK_ERR_ARG, "no head");

    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_sft, NULL, &o));
    tk_obj_result r;
    tk_obj_batch b = {.T = p.T, .C = p.C, .h = p.h, .head = &p.head, .target = p.target};
    p.target[6] = -5;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_RANGE && strstr(tk_last_error(), "row 6"),
          "negative target: %s", tk_last_error());
    p.target[6] = 50;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_RANGE && strstr(tk_last_error(), "row 6"),
          "target >= V: %s", tk_last_error());
    p.target[6] = 1;
    b.C = 8;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "hidden size"),
          "head width: %s", tk_last_error());
    b.C = p.C; b.target = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "batch.target"),
          "no targets: %s", tk_last_error());
    b.target = p.target;
    CHECK(tk_objective_loss_and_grad(o, &b, NAN, NULL, NULL, &r) == TK_ERR_ARG, "NaN grad_scale");
    CHECK(tk_objective_loss_and_grad(o, NULL, 1.0f, NULL, NULL, &r) == TK_ERR_ARG, "NULL batch");
    tk_objective_free(o);
    tk_objective_free(NULL);
    static const char *const many[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    tk_objective_ops too_many = tk_objective_sft;
    too_many.n_metrics = 9;
    too_many.metric_names = many;
    CHECK(tk_objective_new(&too_many, NULL, &o) == TK_ERR_ARG, "too many metrics");
    CHECK(tk_objective_new(NULL, NULL, &o) == TK_ERR_ARG, "no table");
    prob_free(&p);
}

int main(void) {
    tk_rng_seed(&rng, 20261206);
    check_sft();
    check_logp();
    check_softcap();
    check_teacher();
    check_distill();
    check_pytorch();
    check_edges();
    check_errors();
    return tk_test_done("test_objective");
}
