/* What the objective tests against TRL fixtures share (test_grpo, test_train_grpo, test_classify,
 * test_objectives_smollm2): typed fixture tensors, relative errors, and for whole-model fixtures the LoRA
 * initialisation, every gradient against the fixture's, the AdamW loss curve and batch rows. */
#ifndef TK_TESTS_OBJECTIVE_REF_H
#define TK_TESTS_OBJECTIVE_REF_H
#include "test.h"
#include "train/step.h"
#include "objective/grpo.h"
#include <cjson/cJSON.h>

/* Tensor name of st with dtype dt and n elements (CHECKed), or NULL. */
static inline const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

/* max |a - b| / max |b| (b = 0 everywhere: the absolute difference). */
static inline double rel_ff(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mb = fmax(mb, fabs((double)b[i])); }
    return md / (mb > 0 ? mb : 1);
}
static inline double rel_fd(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs(b[i])); }
    return md / (mb > 0 ? mb : 1);
}

/* The fixture's initial values ("init.<name>") into every trainable parameter of tc. */
static inline void set_init(tk_train_ctx *tc, const tk_safetensors *st) {
    tk_param_set *ps = tk_train_param_set(tc);
    char name[200];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "init.%s", ps->p[i].name);
        const float *v = fx(st, name, TK_F32, ps->p[i].n);
        if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
    }
}

/* Every gradient of ps against the fixture's "grad.<what>.<name>" within tol (CHECKed); the worst ratio. */
static inline double grads_vs_fixture(const tk_param_set *ps, const tk_safetensors *st, const char *what, double tol) {
    double worst = 0;
    char key[240];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(key, sizeof key, "grad.%s.%s", what, ps->p[i].name);
        const float *g = fx(st, key, TK_F32, ps->p[i].n);
        if (!g) continue;
        double e = rel_ff(ps->p[i].g, g, ps->p[i].n);
        CHECK(e <= tol, "%s gradient %s: max rel err %.3e", what, ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    return worst;
}

/* The fixture's AdamW loss curve (metadata lr, weight_decay, clip; test_train_ref's settings) from the
 * values tc holds now: step(ctx, grad) returns the loss and, when grad, accumulates the step's gradients.
 * Runs the curve's first `run` steps (<= 0: all of them) and CHECKs that it has want_steps. */
static inline void curve_run(tk_train_ctx *tc, const tk_safetensors *st, const cJSON *curve, double (*step)(void *ctx, bool grad), void *ctx,
                             const char *what, int run, int want_steps) {
    tk_param_set *ps = tk_train_param_set(tc);
    tk_adamw o = tk_adamw_default();
    o.lr = (float)strtod(tk_st_metadata(st, "lr"), NULL);
    o.weight_decay = (float)strtod(tk_st_metadata(st, "weight_decay"), NULL);
    o.clip = (float)strtod(tk_st_metadata(st, "clip"), NULL);
    o.sched = TK_SCHED_CONSTANT;
    o.warmup = 0;
    const int all = cJSON_GetArraySize(curve) - 1, steps = run > 0 && run < all ? run : all;
    double worst = 0, first = 0, got = 0, want = 0;
    for (int s = 0; s <= steps; s++) {
        tk_params_zero_grad(ps);
        got = step(ctx, s < steps);
        want = cJSON_GetArrayItem(curve, s)->valuedouble;
        if (!s) first = got;
        worst = fmax(worst, fabs(got - want) / fmax(fabs(want), 1e-3));
        if (s < steps) tk_adamw_step(&o, ps, s, NULL);
    }
    printf("  %s loss curve over %d of %d steps: %.5f -> %.5f (trl %.5f -> %.5f), max rel diff %.2e\n", what, steps, all, first, got,
           cJSON_GetArrayItem(curve, 0)->valuedouble, want, worst);
    CHECK(all == want_steps && worst <= 1e-3, "%s loss curve differs from TRL (max rel %.3e, %d steps)", what, worst, all);
}

/* curve_run over all 10 steps from the fixture's initial values ("init.<name>"). */
static inline void curve_vs_fixture(tk_train_ctx *tc, const tk_safetensors *st, const cJSON *curve, double (*step)(void *ctx, bool grad),
                                    void *ctx, const char *what) {
    set_init(tc, st);
    curve_run(tc, st, curve, step, ctx, what, 0, 10);
}

/* A fixture's batch rows under a prefix ("<pre>.ids" [B x T] int32, .seg, .seq, and when present .target, .weight
 * [B x T], .seq_value [S] f32, .seq_group [S], .old_logp [B x T]); positions 0..T-1 per row. Free pos. */
typedef struct obj_rows {
    int32_t B, T, S;
    int32_t *pos;
    const int32_t *ids, *seg, *target, *seq, *group;
    const float *value, *weight, *old;
    tk_batch b;
} obj_rows;

static inline const void *obj_rows_get(const tk_safetensors *st, const char *pre, const char *what, tk_dtype dt, int64_t n, bool required) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", pre, what);
    return required || tk_st_find(st, k) ? fx(st, k, dt, n) : NULL;
}

/* Loads them (false, CHECKed, when a required tensor is missing or malformed). */
static inline bool obj_rows_load(const tk_safetensors *st, const char *pre, obj_rows *r) {
    char k[96];
    memset(r, 0, sizeof *r);
    snprintf(k, sizeof k, "%s.ids", pre);
    const tk_tensor_ref *ids = tk_st_find(st, k);
    snprintf(k, sizeof k, "%s.seq_value", pre);
    const tk_tensor_ref *v = tk_st_find(st, k);
    CHECK(ids != NULL, "fixture rows %s", pre);
    if (!ids) return false;
    r->T = (int32_t)ids->ne[0];
    r->B = (int32_t)ids->ne[1];
    r->S = v ? (int32_t)v->ne[0] : 0;
    int64_t n = (int64_t)r->B * r->T;
    r->ids = obj_rows_get(st, pre, "ids", TK_I32, n, true);
    r->seg = obj_rows_get(st, pre, "seg", TK_I32, n, true);
    r->seq = obj_rows_get(st, pre, "seq", TK_I32, n, true);
    r->target = obj_rows_get(st, pre, "target", TK_I32, n, false);
    r->value = obj_rows_get(st, pre, "seq_value", TK_F32, r->S, false);
    r->weight = obj_rows_get(st, pre, "weight", TK_F32, n, false);
    r->group = obj_rows_get(st, pre, "seq_group", TK_I32, r->S, false);
    r->old = obj_rows_get(st, pre, "old_logp", TK_F32, n, false);
    r->pos = malloc((size_t)n * sizeof(int32_t));
    if (!r->pos) return false;
    for (int64_t t = 0; t < n; t++) r->pos[t] = (int32_t)(t % r->T);
    r->b = (tk_batch){.n_rows = r->B, .n_cols = r->T, .ids = r->ids, .pos = r->pos, .seg = r->seg};
    return r->ids && r->seg && r->seq;
}

/* A fixture case's GRPO parameters (metadata JSON: loss_type, beta, epsilon_low/high, max_completion_length). */
static inline tk_grpo_params grpo_params_of(const cJSON *j) {
    tk_grpo_params p = tk_grpo_default_params();
    p.loss_type = tk_grpo_loss_parse(cJSON_GetObjectItem(j, "loss_type")->valuestring);
    p.beta = cJSON_GetObjectItem(j, "beta")->valuedouble;
    p.epsilon_low = cJSON_GetObjectItem(j, "epsilon_low")->valuedouble;
    p.epsilon_high = cJSON_GetObjectItem(j, "epsilon_high")->valuedouble;
    p.max_completion_length = cJSON_GetObjectItem(j, "max_completion_length")->valueint;
    return p;
}

/* For the whole-model tests: 2 threads, stories260K (HF folder, no tokenizer) and the fixture at path.
 * Returns false (a skip, or a failure in CI) when the model is absent; *st / *m NULL on errors (CHECKed). */
static inline bool open_stories(const char *path, tk_safetensors **st, tk_model **m) {
    tk_set_threads(2);
    *st = NULL;
    *m = NULL;
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return false;
    CHECK_OK(tk_st_open(path, st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    if (*st) CHECK_OK(tk_model_load(mp, &mpar, m));
    return true;
}
#endif
