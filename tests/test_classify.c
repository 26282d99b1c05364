/* Classification and regression heads (src/objective/classify.c, classify_head.c):
 *  - the objective on random hidden states: loss against a direct double computation, dh and the
 *    head's gradient against central finite differences (classify and regress, last-token and mean
 *    pooling, sequences packed two to a row); bad batches; label lists;
 *  - through stories260K with LoRA: finite differences of the loss in LoRA and head parameters, classify and regress
 *    (mean pooling too, which transformers lacks);
 *  - against transformers' LlamaForSequenceClassification + PEFT LoRA (fixture written by
 *    tools/make_classify_reference.py): logits, loss, every trainable gradient and the 10-step AdamW
 *    loss curve for a 3-label classifier, a regression head and a head alone (--method head). */
#include "objective_ref.h"
#include "objective/classify.h"
#include "core/core.h"

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
    const float *y;
    tk_batch b;
    tk_train_ctx *tc;
} rows;

static bool load_rows(const tk_safetensors *st, rows *r) {
    const tk_tensor_ref *ids = tk_st_find(st, "ids");
    if (!ids) return false;
    r->Tc = (int32_t)ids->ne[0];
    r->B = (int32_t)ids->ne[1];
    int64_t n = (int64_t)r->B * r->Tc;
    r->ids = fx(st, "ids", TK_I32, n);
    r->seg = fx(st, "seg", TK_I32, n);
    r->seq = fx(st, "seq", TK_I32, n);
    r->y = fx(st, "seq_value", TK_F32, r->B);
    r->pos = malloc((size_t)n * sizeof *r->pos);
    for (int64_t t = 0; t < n; t++) r->pos[t] = (int32_t)(t % r->Tc);
    r->b = (tk_batch){.n_rows = r->B, .n_cols = r->Tc, .ids = r->ids, .pos = r->pos, .seg = r->seg};
    return r->ids && r->seg && r->seq && r->y;
}

/* The mean loss of the rows; with grad, the gradients of the step (1 / sequences) accumulate. */
static double rows_loss(void *ctx, bool grad) {
    rows *r = ctx;
    tk_obj_batch x = {.seq = r->seq, .n_seq = r->B, .seq_value = r->y};
    tk_obj_result res;
    if (grad) CHECK_OK(tk_train_step_objective(r->tc, &r->b, &x, 1.0f / (float)r->B, &res));
    else CHECK_OK(tk_train_eval_objective(r->tc, &r->b, &x, &res));
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

/* The logits of the rows: a forward with the context's adapters, then the head (the parameter the context trains). */
static double logits_err(tk_model *m, rows *r, int K, const float *want) {
    tk_param_set *ps = tk_train_param_set(r->tc);
    const tk_param *hp = ps->p + ps->n - 1;
    CHECK(strstr(hp->name, "score.weight") != NULL, "the head is the last parameter (%s)", hp->name);
    tk_score_head sh = {.C = tk_model_get_config(m)->dim, .K = K, .pooling = TK_POOL_LAST, .w = hp->w};
    double z[16 * 4], err = INFINITY;
    tk_forward *f = NULL;
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads);
    CHECK_OK(tk_forward_new(m, r->B, r->Tc, 0, &f));
    if (f && want && r->B * K <= 64 && !tk_forward_set_adapters(f, ads, n_ads) && !tk_forward_run(f, &r->b, NULL, 0, NULL)) {
        tk_obj_batch xb = {.T = (int64_t)r->B * r->Tc, .C = sh.C, .h = tk_forward_hidden(f), .seq = r->seq, .n_seq = r->B};
        CHECK_OK(tk_score_head_forward(&sh, &xb, NULL, z));
        err = rel_fd(want, z, (int64_t)r->B * K);
    }
    tk_forward_free(f);
    return err;
}

/* One fixture case of tools/make_classify_reference.py: logits, loss, every gradient and the loss curve. */
static void hf_case(const char *path) {
    tk_safetensors *st = NULL;
    tk_model *m = NULL;
    rows r = {0};
    if (!open_stories(path, &st, &m)) return;
    cJSON *j = st ? cJSON_Parse(tk_st_metadata(st, "case") ? tk_st_metadata(st, "case") : "") : NULL;
    if (m && j && load_rows(st, &r)) {
        const char *name = cJSON_GetObjectItem(j, "name")->valuestring;
        const int K = cJSON_GetObjectItem(j, "labels")->valueint;
        const bool regress = cJSON_IsTrue(cJSON_GetObjectItem(j, "regress")), lora = cJSON_IsTrue(cJSON_GetObjectItem(j, "lora"));
        if ((r.tc = new_ctx(m, &r, K, regress, TK_POOL_LAST, lora))) {
            set_init(r.tc, st);
            tk_param_set *ps = tk_train_param_set(r.tc);
            tk_params_zero_grad(ps);
            double loss = rows_loss(&r, true), tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
            double gerr = grads_vs_fixture(ps, st, name, 1e-4), zerr = logits_err(m, &r, K, fx(st, "logits", TK_F32, (int64_t)r.B * K));
            printf("stories260K %-8s (%s, %d output%s): logits max rel err %.2e, loss %.7f (transformers %.7f), %lld gradient tensors: "
                   "max rel err %.2e\n", name, lora ? "LoRA + head" : "head only", K, K == 1 ? "" : "s", zerr, loss, tl, (long long)ps->n, gerr);
            CHECK(zerr <= 1e-5, "%s logits differ from transformers' (max rel %.3e)", name, zerr);
            CHECK(fabs(loss - tl) <= 1e-5 * fmax(1, fabs(tl)), "%s loss %.9g vs transformers %.9g", name, loss, tl);
            curve_vs_fixture(r.tc, st, cJSON_GetObjectItem(j, "curve"), rows_loss, &r, name);
            /* finite differences through the model, last and mean pooling: a few entries of every fifth tensor and the head */
            for (int pool = 0; lora && pool < 2; pool++) {
                tk_train_ctx *tc = new_ctx(m, &r, K, regress, (tk_pooling)pool, true);
                if (!tc) break;
                tk_train_ctx_free(r.tc);
                r.tc = tc;
                set_init(tc, st);
                ps = tk_train_param_set(tc);
                tk_params_zero_grad(ps);
                rows_loss(&r, true);
                double worst = 0;
                int n = 0;
                const double eps = 1e-2;
                for (int64_t i = 0; i < ps->n; i = i + 5 < ps->n || i == ps->n - 1 ? i + 5 : ps->n - 1) {
                    tk_param *p = &ps->p[i];
                    for (int64_t k = 0; k < p->n; k += p->n / 3 + 1, n++) {
                        float keep = p->w[k];
                        p->w[k] = keep + (float)eps; double lp = rows_loss(&r, false);
                        p->w[k] = keep - (float)eps; double lm = rows_loss(&r, false);
                        p->w[k] = keep;
                        double fd = (lp - lm) / (2 * eps);
                        worst = fmax(worst, fabs(fd - p->g[k]) / fmax(2e-2, fabs(fd)));
                    }
                }
                printf("  %s through the model (%s pooling): %d gradient entries vs finite differences, max rel err %.2e\n", name,
                       pool ? "mean" : "last", n, worst);
                CHECK(n >= 6 && worst < 2e-2, "%s: finite differences through the model: %.3e", name, worst);
            }
        }
    } else CHECK(0, "fixture %s: case and rows", path);
    tk_train_ctx_free(r.tc);
    free(r.pos);
    cJSON_Delete(j);
    tk_model_free(m);
    tk_st_close(st);
}

int main(void) {
    tk_set_threads(2);
    head_case(false, TK_POOL_LAST);
    head_case(false, TK_POOL_MEAN);
    head_case(true, TK_POOL_LAST);
    head_case(true, TK_POOL_MEAN);
    labels_cases();
    hf_case("tests/fixtures/train/stories260k_classify_cls_ref.safetensors");
    hf_case("tests/fixtures/train/stories260k_classify_reg_ref.safetensors");
    hf_case("tests/fixtures/train/stories260k_classify_cls_head_ref.safetensors");
    return tk_test_done("test_classify");
}
