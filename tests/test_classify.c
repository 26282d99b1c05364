/* Classification and regression heads (src/objective/classify.c, classify_head.c):
 *  - the objective on random hidden states: loss against a direct double computation, dh and the
 *    head's gradient against central finite differences (classify and regress, last-token and mean
 *    pooling, sequences packed two to a row); bad batches; label lists;
 *  - through stories260K with LoRA: finite differences of the loss in LoRA and head parameters
 *    (mean pooling too, which transformers lacks);
 *  - against transformers' LlamaForSequenceClassification + PEFT LoRA (fixture written by
 *    tools/make_classify_reference.py): logits, loss, every trainable gradient and the 10-step AdamW
 *    loss curve for a 3-label classifier, a regression head and a head alone (--method head). */
#include "test.h"
#include "train/step.h"
#include "objective/classify.h"
#include "core/core.h"
#include <cjson/cJSON.h>

/* ---- the objective on random hidden states ---------------------------------------- */

enum { T = 10, C = 6, S = 3 };
/* rows 0-4: sequence 0 (t 0-2) and 1 (t 3-4); rows 5-9: sequence 2 (t 5-8), padding (t 9) */
static const int32_t k_seq[T] = {0, 0, 0, 1, 1, 2, 2, 2, 2, -1};
/* an LM head the objective checks but never reads: {C, 2} */
static float k_lmw[C * 2];
static const tk_tensor_ref k_lmref = {.dtype = TK_F32, .n_dims = 2, .ne = {C, 2, 1, 1}, .data = k_lmw, .nbytes = sizeof k_lmw};
static const tk_lm_head k_lm = {&k_lmref, 0.0f};

static double loss_of(tk_objective *o, const float *h, int K, const float *y) {
    tk_obj_batch b = {.T = T, .C = C, .h = h, .head = &k_lm, .seq = k_seq, .n_seq = S, .seq_value = y};
    tk_obj_result r;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r));
    (void)K;
    return r.loss_sum;
}

/* The loss in double, directly from the definition. */
static double direct_loss(const float *h, const float *w, int K, const float *y, bool regress, tk_pooling pool) {
    double total = 0;
    for (int q = 0; q < S; q++) {
        double x[C] = {0}, z[8];
        int cnt = 0, last = -1;
        for (int t = 0; t < T; t++)
            if (k_seq[t] == q) { cnt++; last = t; for (int c = 0; c < C; c++) x[c] += h[t * C + c]; }
        for (int c = 0; c < C; c++) x[c] = pool == TK_POOL_MEAN ? x[c] / cnt : h[last * C + c];
        for (int k = 0; k < K; k++) { z[k] = 0; for (int c = 0; c < C; c++) z[k] += (double)w[k * C + c] * x[c]; }
        if (regress) { total += (z[0] - y[q]) * (z[0] - y[q]); continue; }
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(z[k]);
        total += log(s) - z[(int)y[q]];
    }
    return total;
}

static void head_case(bool regress, tk_pooling pool) {
    const int K = regress ? 1 : 4;
    tk_classify_params cp = tk_classify_default_params();
    cp.n_labels = K;
    cp.pooling = pool;
    cp.init_std = 0.5;
    tk_objective *o = NULL;
    tk_param_set ps = {0};
    CHECK_OK(tk_objective_new(regress ? &tk_objective_regress : &tk_objective_classify, &cp, &o));
    CHECK_OK(tk_objective_add_params(o, C, 7, "", &ps));
    CHECK(ps.n == 1 && !strcmp(ps.p[0].name, "score.weight") && ps.p[0].ne[0] == C && ps.p[0].ne[1] == K, "head parameter [K x C]");
    float h[T * C], y[S] = {regress ? 0.3f : 3, regress ? -1.2f : 0, regress ? 2.0f : 2}, dh[T * C];
    tk_rng rng;
    tk_rng_seed(&rng, 11);
    for (int i = 0; i < T * C; i++) h[i] = (float)tk_rng_normal(&rng);
    float *w = ps.p[0].w, *g = ps.p[0].g;
    tk_obj_batch b = {.T = T, .C = C, .h = h, .head = &k_lm, .seq = k_seq, .n_seq = S, .seq_value = y};
    tk_obj_result r;
    const float gs = 0.37f;
    memset(g, 0, (size_t)K * C * sizeof *g);
    CHECK_OK(tk_objective_loss_and_grad(o, &b, gs, dh, NULL, &r));
    double want = direct_loss(h, w, K, y, regress, pool);
    CHECK(fabs(r.loss_sum - want) <= 1e-9 * fmax(1, fabs(want)) && r.norm == S, "%s loss %.12g vs direct %.12g", regress ? "regress" : "classify",
          r.loss_sum, want);
    double worst = 0;
    const double eps = 1e-3;
    for (int i = 0; i < T * C; i++) {   /* dh: the padding row gets none */
        float keep = h[i];
        h[i] = keep + (float)eps; double lp = loss_of(o, h, K, y);
        h[i] = keep - (float)eps; double lm = loss_of(o, h, K, y);
        h[i] = keep;
        double fd = gs * (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - dh[i]) / fmax(1e-2, fabs(fd)));
        if (i / C == T - 1) CHECK(dh[i] == 0, "padding row gets no gradient");
    }
    for (int i = 0; i < K * C; i++) {
        float keep = w[i];
        w[i] = keep + (float)eps; double lp = loss_of(o, h, K, y);
        w[i] = keep - (float)eps; double lm = loss_of(o, h, K, y);
        w[i] = keep;
        double fd = gs * (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - g[i]) / fmax(1e-2, fabs(fd)));
    }
    printf("%s head (%s pooling, %d outputs, packed rows): loss %.6f, dh and dW vs finite differences: max rel err %.2e\n",
           regress ? "regression" : "classification", pool == TK_POOL_MEAN ? "mean" : "last", K, r.loss_sum / r.norm, worst);
    CHECK(worst < 2e-3, "finite differences: %.3e", worst);
    /* metrics: accuracy (argmax == label) or |error| */
    double z[S * 4];
    CHECK_OK(tk_classify_logits(o, &b, z));
    double m = 0;
    for (int q = 0; q < S; q++) {
        if (regress) { m += fabs(z[q] - y[q]); continue; }
        int best = 0;
        for (int k = 1; k < K; k++) best = z[q * K + k] > z[q * K + best] ? k : best;
        m += best == (int)y[q];
    }
    CHECK(fabs(r.metrics[0] - m) < 1e-9, "metric %g vs %g", r.metrics[0], m);
    /* bad batches name what is wrong */
    float bad[S] = {0, 4, 1};
    b.seq_value = regress ? NULL : bad;
    CHECK(tk_objective_loss_and_grad(o, &b, 1, NULL, NULL, &r) == TK_ERR_ARG &&
              strstr(tk_last_error(), regress ? "no labels" : "sequence 1 has label 4"), "bad label: %s", tk_last_error());
    tk_objective_free(o);
    tk_params_free(&ps);
}

static void labels_cases(void) {
    char **v = NULL;
    int32_t n = 0;
    CHECK_OK(tk_labels_parse("neg,pos,neutral", "--labels", &v, &n));
    CHECK(n == 3 && !strcmp(v[2], "neutral"), "three labels");
    CHECK(tk_label_index("pos", 3, v, n) == 1 && tk_label_index("2", 1, v, n) == 2 && tk_label_index("3", 1, v, n) == -1 &&
              tk_label_index("po", 2, v, n) == -1 && tk_label_index("-1", 2, v, n) == -1, "label names and indices");
    tk_labels_free(v, n);
    CHECK(tk_labels_parse("a,,b", "--labels", &v, &n) == TK_ERR_ARG && strstr(tk_last_error(), "label 2 is empty"), "%s", tk_last_error());
    CHECK(tk_labels_parse("a,b,a", "--labels", &v, &n) == TK_ERR_ARG && strstr(tk_last_error(), "\"a\" is given twice"), "%s", tk_last_error());
    CHECK(tk_labels_parse("", "--labels", &v, &n) == TK_ERR_ARG, "empty list");
}

/* ---- through stories260K ---------------------------------------------------------- */

typedef struct rows {
    int32_t B, Tc;
    int32_t *pos;
    const int32_t *ids, *seg, *seq;
    tk_batch b;
} rows;

static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

static double model_loss(tk_train_ctx *tc, rows *r, const float *y, float scale) {
    tk_obj_batch x = {.seq = r->seq, .n_seq = r->B, .seq_value = y};
    tk_obj_result res;
    if (scale > 0) CHECK_OK(tk_train_step_objective(tc, &r->b, &x, scale, &res));
    else CHECK_OK(tk_train_eval_objective(tc, &r->b, &x, &res));
    return res.norm > 0 ? res.loss_sum / res.norm : NAN;
}

static tk_train_ctx *new_ctx(tk_model *m, rows *r, int K, bool regress, tk_pooling pool, bool lora) {
    tk_classify_params cp = tk_classify_default_params();
    cp.n_labels = K;
    cp.pooling = pool;
    tk_train_params p = tk_train_default_params();
    p.method = lora ? TK_TRAIN_LORA : TK_TRAIN_HEAD;
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    p.max_rows = r->B;
    p.max_cols = r->Tc;
    p.objective = regress ? &tk_objective_regress : &tk_objective_classify;
    p.objective_params = &cp;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    return tc;
}

static void set_init(tk_train_ctx *tc, const tk_safetensors *st, const char *pre) {
    tk_param_set *ps = tk_train_param_set(tc);
    char name[240];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "%s.init.%s", pre, ps->p[i].name);
        const float *v = fx(st, name, TK_F32, ps->p[i].n);
        if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
    }
}

/* Finite differences through the model: a few entries of every parameter tensor (LoRA A, B and the head). */
static void model_fd(tk_model *m, const tk_safetensors *st, rows *r, tk_pooling pool) {
    tk_train_ctx *tc = new_ctx(m, r, 3, false, pool, true);
    if (!tc) return;
    set_init(tc, st, "cls");
    const float *y = fx(st, "cls.seq_value", TK_F32, r->B);
    tk_param_set *ps = tk_train_param_set(tc);
    tk_params_zero_grad(ps);
    model_loss(tc, r, y, 1.0f / (float)r->B);
    double worst = 0;
    int n = 0;
    const double eps = 1e-2;
    for (int64_t i = 0; i < ps->n; i += 5) {   /* every fifth tensor, the head (last) included */
        tk_param *p = &ps->p[i == ps->n - 1 || i + 5 < ps->n ? i : ps->n - 1];
        for (int64_t k = 0; k < p->n; k += p->n / 3 + 1) {
            float keep = p->w[k];
            p->w[k] = keep + (float)eps; double lp = model_loss(tc, r, y, 0);
            p->w[k] = keep - (float)eps; double lm = model_loss(tc, r, y, 0);
            p->w[k] = keep;
            double fd = (lp - lm) / (2 * eps);
            worst = fmax(worst, fabs(fd - p->g[k]) / fmax(2e-2, fabs(fd)));
            n++;
        }
        if (p == &ps->p[ps->n - 1]) break;
    }
    printf("stories260K LoRA + classification head (%s pooling): %d gradient entries vs finite differences, max rel err %.2e\n",
           pool == TK_POOL_MEAN ? "mean" : "last", n, worst);
    CHECK(n >= 6 && worst < 2e-2, "finite differences through the model: %.3e", worst);
    tk_train_ctx_free(tc);
}

static void hf_case(tk_model *m, const tk_safetensors *st, rows *r, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    const int K = cJSON_GetObjectItem(j, "labels")->valueint;
    const bool regress = cJSON_IsTrue(cJSON_GetObjectItem(j, "regress")), lora = cJSON_IsTrue(cJSON_GetObjectItem(j, "lora"));
    char key[260];
    snprintf(key, sizeof key, "%s.seq_value", name);
    const float *y = fx(st, key, TK_F32, r->B);
    tk_train_ctx *tc = new_ctx(m, r, K, regress, TK_POOL_LAST, lora);
    if (!tc || !y) { cJSON_Delete(j); tk_train_ctx_free(tc); return; }
    set_init(tc, st, name);
    tk_param_set *ps = tk_train_param_set(tc);
    tk_params_zero_grad(ps);
    double loss = model_loss(tc, r, y, 1.0f / (float)r->B), tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    /* logits: a forward with the context's adapters, then the head (the parameter the context trains) */
    snprintf(key, sizeof key, "%s.logits", name);
    const float *want_z = fx(st, key, TK_F32, (int64_t)r->B * K);
    const tk_param *hp = ps->p + ps->n - 1;
    tk_score_head sh = {.C = tk_model_get_config(m)->dim, .K = K, .pooling = TK_POOL_LAST, .w = hp->w};
    double z[16 * 4], zerr = 0;
    tk_forward *f = NULL;
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(tc, &n_ads);
    CHECK_OK(tk_forward_new(m, r->B, r->Tc, 0, &f));
    if (f) CHECK_OK(tk_forward_set_adapters(f, ads, n_ads));
    if (f) CHECK_OK(tk_forward_run(f, &r->b, NULL, 0, NULL));
    tk_obj_batch xb = {.T = (int64_t)r->B * r->Tc, .C = sh.C, .h = f ? tk_forward_hidden(f) : NULL, .seq = r->seq, .n_seq = r->B};
    CHECK(strstr(hp->name, "score.weight") != NULL, "the head is the last parameter (%s)", hp->name);
    if (f && want_z) {
        CHECK_OK(tk_score_head_forward(&sh, &xb, NULL, z));
        for (int i = 0; i < r->B * K; i++) zerr = fmax(zerr, fabs(z[i] - want_z[i]) / fmax(1e-2, fabs(want_z[i])));
    }
    tk_forward_free(f);
    CHECK(zerr <= 1e-5, "%s logits differ from transformers' (max rel %.3e)", name, zerr);
    double worst = 0;
    int found = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(key, sizeof key, "%s.grad.%s", name, ps->p[i].name);
        const float *g = fx(st, key, TK_F32, ps->p[i].n);
        if (!g) continue;
        found++;
        double md = 0, mb = 0;
        for (int64_t k = 0; k < ps->p[i].n; k++) { md = fmax(md, fabs(ps->p[i].g[k] - g[k])); mb = fmax(mb, fabs(g[k])); }
        double e = md / (mb > 0 ? mb : 1);
        CHECK(e <= 1e-4, "%s gradient %s: max rel err %.3e", name, ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    CHECK(found == ps->n && found >= 1, "%s: %d of %lld parameters in the fixture", name, found, (long long)ps->n);
    printf("stories260K %-8s (%s, %d output%s): logits max rel err %.2e, loss %.7f (transformers %.7f), %d gradient tensors: max rel "
           "err %.2e\n", name, lora ? "LoRA + head" : "head only", K, K == 1 ? "" : "s", zerr, loss, tl, found, worst);
    CHECK(fabs(loss - tl) <= 1e-5 * fmax(1, fabs(tl)), "%s loss %.9g vs transformers %.9g", name, loss, tl);
    const cJSON *curve = cJSON_GetObjectItem(j, "curve");
    set_init(tc, st, name);
    tk_adamw o = tk_adamw_default();
    o.lr = (float)strtod(tk_st_metadata(st, "lr"), NULL);
    o.weight_decay = (float)strtod(tk_st_metadata(st, "weight_decay"), NULL);
    o.clip = (float)strtod(tk_st_metadata(st, "clip"), NULL);
    o.sched = TK_SCHED_CONSTANT;
    o.warmup = 0;
    int steps = cJSON_GetArraySize(curve) - 1;
    double worst_c = 0, got = 0, want = 0, first = 0;
    for (int s = 0; s <= steps; s++) {
        tk_params_zero_grad(ps);
        got = model_loss(tc, r, y, s < steps ? 1.0f / (float)r->B : 0.0f);
        if (s == 0) first = got;
        want = cJSON_GetArrayItem(curve, s)->valuedouble;
        worst_c = fmax(worst_c, fabs(got - want) / fmax(fabs(want), 1e-3));
        if (s < steps) tk_adamw_step(&o, ps, s, NULL);
    }
    printf("  %s loss curve over %d steps: %.5f -> %.5f (transformers %.5f -> %.5f), max rel diff %.2e\n", name, steps, first, got,
           cJSON_GetArrayItem(curve, 0)->valuedouble, want, worst_c);
    CHECK(steps == 10 && worst_c <= 1e-3, "%s loss curve differs from transformers (max rel %.3e)", name, worst_c);
    tk_train_ctx_free(tc);
    cJSON_Delete(j);
}

int main(void) {
    tk_set_threads(2);
    head_case(false, TK_POOL_LAST);
    head_case(false, TK_POOL_MEAN);
    head_case(true, TK_POOL_LAST);
    head_case(true, TK_POOL_MEAN);
    labels_cases();
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return tk_test_done("test_classify");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_classify_ref.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    if (st) CHECK_OK(tk_model_load(mp, &mpar, &m));
    const tk_tensor_ref *ids = st ? tk_st_find(st, "ids") : NULL;
    if (m && ids) {
        rows r = {.Tc = (int32_t)ids->ne[0], .B = (int32_t)ids->ne[1]};
        int64_t n = (int64_t)r.B * r.Tc;
        r.ids = fx(st, "ids", TK_I32, n);
        r.seg = fx(st, "seg", TK_I32, n);
        r.seq = fx(st, "seq", TK_I32, n);
        r.pos = malloc((size_t)n * sizeof *r.pos);
        for (int64_t t = 0; t < n; t++) r.pos[t] = (int32_t)(t % r.Tc);
        r.b = (tk_batch){.n_rows = r.B, .n_cols = r.Tc, .ids = r.ids, .pos = r.pos, .seg = r.seg};
        hf_case(m, st, &r, "cls");
        hf_case(m, st, &r, "reg");
        hf_case(m, st, &r, "cls_head");
        model_fd(m, st, &r, TK_POOL_LAST);
        model_fd(m, st, &r, TK_POOL_MEAN);
        free(r.pos);
    } else CHECK(0, "model and fixture rows");
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_classify");
}
