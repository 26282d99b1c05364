/* The sequence classification / regression objective and label lists (see classify.h). */
#include "objective/classify.h"
#include "core/core.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>

static const char *const k_cls_metrics[] = {"accuracy"};
static const char *const k_reg_metrics[] = {"abs_error"};

typedef struct cls_state {
    tk_classify_params p;
    tk_score_head head;
} cls_state;

tk_classify_params tk_classify_default_params(void) {
    tk_classify_params p = {.n_labels = 2, .regress = false, .pooling = TK_POOL_LAST, .init_std = 0.02};
    return p;
}

/* The classify and regress tables differ in their metric only; each forces its kind. */
static tk_status create(const void *params, bool regress, void **state) {
    tk_classify_params p = params ? *(const tk_classify_params *)params : tk_classify_default_params();
    if (!params && regress) p.n_labels = 1;
    p.regress = regress;
    if (p.n_labels < 1) return tk_fail(TK_ERR_ARG, "classify: %d labels", (int)p.n_labels);
    if (p.regress && p.n_labels != 1) return tk_fail(TK_ERR_ARG, "regress: one output, not %d", (int)p.n_labels);
    if (!(p.init_std > 0) || !isfinite(p.init_std)) return tk_fail(TK_ERR_ARG, "init_std %g must be > 0", p.init_std);
    if (p.pooling != TK_POOL_LAST && p.pooling != TK_POOL_MEAN) return tk_fail(TK_ERR_ARG, "classify: unknown pooling %d", (int)p.pooling);
    cls_state *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->p = p;
    *state = s;
    return TK_OK;
}
static tk_status cls_create(const void *params, void **state) { return create(params, false, state); }
static tk_status reg_create(const void *params, void **state) { return create(params, true, state); }
static void cls_free(void *state) { free(state); }

static tk_status cls_add_params(void *state, int64_t C, uint64_t seed, const char *prefix, tk_param_set *ps) {
    cls_state *s = state;
    return tk_score_head_add(&s->head, C, s->p.n_labels, s->p.pooling, s->p.init_std, seed, prefix, ps);
}

tk_status tk_classify_logits(tk_objective *o, const tk_obj_batch *b, double *logits) {
    const tk_objective_ops *ops = tk_objective_get_ops(o);
    if ((ops != &tk_objective_classify && ops != &tk_objective_regress) || !b || !logits)
        return tk_fail(TK_ERR_ARG, "classify logits: not a classify or regress objective, or NULL batch");
    const cls_state *s = tk_objective_state(o);
    return tk_score_head_forward(&s->head, b, NULL, logits);
}

static tk_status cls_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    (void)dw;   /* the LM head is not part of a classifier */
    cls_state *s = state;
    const int32_t S = b->n_seq, K = s->p.n_labels;
    if (!b->seq_value) return tk_fail(TK_ERR_ARG, "classify: the batch has no labels (seq_value)");
    for (int32_t q = 0; q < S; q++) {
        double y = b->seq_value[q];
        if (!isfinite(y) || (!s->p.regress && (y < 0 || y >= K || y != floor(y))))
            return tk_fail(TK_ERR_ARG, "classify: sequence %d has label %g, not %s", (int)q, y,
                           s->p.regress ? "a finite number" : "a label index");
    }
    size_t ns = (size_t)(S ? S : 1);
    double *x = dh ? tk_malloc(ns * (size_t)b->C * sizeof *x) : NULL, *z = tk_malloc(2 * ns * (size_t)K * sizeof *z);
    if ((dh && !x) || !z) { free(x); free(z); return TK_ERR_NOMEM; }
    double *dz = z + ns * K;
    tk_status st = tk_score_head_forward(&s->head, b, x, z);
    for (int32_t q = 0; !st && q < S; q++) {
        const double *zq = z + q * K;
        double *d = dz + q * K, y = b->seq_value[q];
        if (s->p.regress) {
            double e = zq[0] - y;
            res->loss_sum += e * e;
            res->metrics[0] += fabs(e);
            d[0] = grad_scale * 2 * e;
            continue;
        }
        int32_t yi = (int32_t)y, arg = 0;
        double mx = zq[0], sum = 0;
        for (int32_t k = 1; k < K; k++)
            if (zq[k] > mx) mx = zq[k], arg = k;
        for (int32_t k = 0; k < K; k++) sum += exp(zq[k] - mx);
        double lse = mx + log(sum);
        res->loss_sum += lse - zq[yi];
        res->metrics[0] += arg == yi;
        for (int32_t k = 0; k < K; k++) d[k] = grad_scale * (exp(zq[k] - lse) - (k == yi));
    }
    res->norm = S;
    if (!st && dh) st = tk_score_head_backward(&s->head, b, x, dz, dh);
    free(x);
    free(z);
    return st;
}

const tk_objective_ops tk_objective_classify = {
    .name = "classify", .needs = TK_OBJ_NEED_SEQ, .n_metrics = 1, .metric_names = k_cls_metrics,
    .create = cls_create, .free = cls_free, .loss_and_grad = cls_loss_and_grad, .add_params = cls_add_params,
};
const tk_objective_ops tk_objective_regress = {
    .name = "regress", .needs = TK_OBJ_NEED_SEQ, .n_metrics = 1, .metric_names = k_reg_metrics,
    .create = reg_create, .free = cls_free, .loss_and_grad = cls_loss_and_grad, .add_params = cls_add_params,
};

/* ---- labels ---------------------------------------------------------------------------- */
void tk_labels_free(char **names, int32_t n) {
    for (int32_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

tk_status tk_labels_parse(const char *list, const char *opt, char ***names, int32_t *n) {
    *names = NULL;
    *n = 0;
    if (!list || !*list) return tk_fail(TK_ERR_ARG, "%s: no labels (give the names in index order: %s neg,pos)", opt, opt);
    char **v = NULL;
    int32_t k = 0;
    tk_status st = TK_OK;
    for (const char *p = list; !st;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!len) { st = tk_fail(TK_ERR_ARG, "%s: label %d is empty (\"%s\")", opt, (int)k + 1, list); break; }
        for (int32_t i = 0; i < k && !st; i++)
            if (strlen(v[i]) == len && !strncmp(v[i], p, len)) st = tk_fail(TK_ERR_ARG, "%s: label \"%.*s\" is given twice", opt, (int)len, p);
        char **nv = st ? NULL : tk_realloc(v, (size_t)(k + 1) * sizeof *nv);
        if (!st && !nv) st = TK_ERR_NOMEM;
        if (st) break;
        v = nv;
        if (!(v[k] = tk_malloc(len + 1))) { st = TK_ERR_NOMEM; break; }
        memcpy(v[k], p, len);
        v[k++][len] = 0;
        if (!e) break;
        p = e + 1;
    }
    if (st) { tk_labels_free(v, k); return st; }
    *names = v;
    *n = k;
    return TK_OK;
}

int32_t tk_label_index(const char *label, size_t len, char *const *names, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], label, len)) return i;
    if (len == 0 || len > 9) return -1;
    int32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (label[i] < '0' || label[i] > '9') return -1;
        v = v * 10 + (label[i] - '0');
    }
    return v < n ? v : -1;
}
