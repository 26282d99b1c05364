/* Preference training through the whole model against TRL (fixture written by
 * tools/make_dpo_reference.py): stories260K with a PEFT LoRA (same initialisation), two pairs
 * right-padded as TRL's collator lays them out (chosen rows first), the reference = the same
 * base with the adapter off (tk_train_reference_hidden). For dpo (sigmoid, ipo, hinge, robust),
 * orpo and simpo: the loss and every LoRA gradient (max relative error printed); for dpo
 * sigmoid, orpo and simpo the 10-step AdamW loss curve (test_train_ref's settings). */
#include "test.h"
#include "train/step.h"
#include "objective/dpo.h"
#include <cjson/cJSON.h>

typedef struct pair_batch {
    int32_t B, T, S, G;
    int32_t *pos;
    const int32_t *ids, *seg, *target, *seq, *group;
    const float *weight, *value;
    tk_batch b;
} pair_batch;

static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

static bool load_batch(const tk_safetensors *st, pair_batch *pb) {
    const tk_tensor_ref *ids = tk_st_find(st, "ids"), *g = tk_st_find(st, "seq_group");
    if (!ids || !g) return false;
    pb->T = (int32_t)ids->ne[0];
    pb->B = (int32_t)ids->ne[1];
    pb->S = (int32_t)g->ne[0];
    pb->G = pb->S / 2;
    int64_t n = (int64_t)pb->B * pb->T;
    pb->ids = fx(st, "ids", TK_I32, n);
    pb->seg = fx(st, "seg", TK_I32, n);
    pb->target = fx(st, "target", TK_I32, n);
    pb->seq = fx(st, "seq", TK_I32, n);
    pb->weight = fx(st, "weight", TK_F32, n);
    pb->group = fx(st, "seq_group", TK_I32, pb->S);
    pb->value = fx(st, "seq_value", TK_F32, pb->S);
    pb->pos = malloc((size_t)n * sizeof(int32_t));
    for (int64_t t = 0; t < n; t++) pb->pos[t] = (int32_t)(t % pb->T);
    pb->b = (tk_batch){.n_rows = pb->B, .n_cols = pb->T, .ids = pb->ids, .pos = pb->pos, .seg = pb->seg};
    return pb->ids && pb->seg && pb->target && pb->seq && pb->weight && pb->group && pb->value;
}

static void set_init(tk_train_ctx *tc, const tk_safetensors *st) {
    tk_param_set *ps = tk_train_param_set(tc);
    char name[200];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "init.%s", ps->p[i].name);
        const float *v = fx(st, name, TK_F32, ps->p[i].n);
        if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
    }
}

/* One step's loss (mean over pairs); gradients accumulate at 1 / pairs (scale 0: loss only). */
static double step_loss(tk_train_ctx *tc, pair_batch *pb, const float *ref_h, const tk_lm_head *ref_head, bool orpo, float scale) {
    tk_obj_batch x = {.target = pb->target, .weight = orpo ? pb->weight : NULL, .seq = pb->seq, .n_seq = pb->S, .seq_group = pb->group,
                      .n_group = pb->G, .seq_value = pb->value, .ref_h = ref_h, .ref_head = ref_head};
    tk_obj_result r;
    CHECK_OK(tk_train_step_objective(tc, &pb->b, &x, scale, &r));
    return r.norm > 0 ? r.loss_sum / r.norm : NAN;
}

static void run_case(tk_model *m, const tk_safetensors *st, pair_batch *pb, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    const char *obj = !strncmp(name, "dpo_", 4) ? "dpo" : name;
    bool orpo = !strcmp(obj, "orpo");
    tk_dpo_params dp = tk_dpo_default_params();
    if (!strncmp(name, "dpo_", 4)) dp.loss = tk_dpo_loss_from_name(name + 4);
    dp.beta = cJSON_GetObjectItem(j, "beta")->valuedouble;
    dp.label_smoothing = cJSON_GetObjectItem(j, "label_smoothing")->valuedouble;
    dp.simpo_gamma = strtod(tk_st_metadata(st, "simpo_gamma"), NULL);
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    p.max_rows = pb->B;
    p.max_cols = pb->T;
    p.objective = tk_objective_find(obj);
    p.objective_params = &dp;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { cJSON_Delete(j); return; }
    set_init(tc, st);
    int64_t n = (int64_t)pb->B * pb->T * tk_model_get_config(m)->dim;
    float *ref = malloc((size_t)n * sizeof(float));
    const float *rh = NULL;
    CHECK_OK(tk_train_reference_hidden(tc, &pb->b, &rh));
    if (rh) memcpy(ref, rh, (size_t)n * sizeof(float));
    tk_lm_head ref_head = tk_train_reference_head(tc);
    const float *ref_arg = strcmp(obj, "dpo") ? NULL : ref;
    tk_param_set *ps = tk_train_param_set(tc);
    tk_params_zero_grad(ps);
    double loss = step_loss(tc, pb, ref_arg, &ref_head, orpo, (float)(1.0 / pb->G)), tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    double worst = 0;
    char key[240];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(key, sizeof key, "grad.%s.%s", name, ps->p[i].name);
        const float *g = fx(st, key, TK_F32, ps->p[i].n);
        if (!g) continue;
        double md = 0, mb = 0;
        for (int64_t k = 0; k < ps->p[i].n; k++) { md = fmax(md, fabs(ps->p[i].g[k] - g[k])); mb = fmax(mb, fabs(g[k])); }
        double e = md / (mb > 0 ? mb : 1);
        CHECK(e <= 1e-4, "%s gradient %s: max rel err %.3e", name, ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    printf("stories260K LoRA %-12s loss %.7f (trl %.7f), every LoRA gradient (%lld tensors): max rel err %.2e\n", name, loss, tl,
           (long long)ps->n, worst);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", name, loss, tl);
    const cJSON *curve = cJSON_GetObjectItem(j, "curve");
    if (curve) {
        set_init(tc, st);
        tk_adamw o = tk_adamw_default();
        o.lr = (float)strtod(tk_st_metadata(st, "lr"), NULL);
        o.weight_decay = (float)strtod(tk_st_metadata(st, "weight_decay"), NULL);
        o.clip = (float)strtod(tk_st_metadata(st, "clip"), NULL);
        o.sched = TK_SCHED_CONSTANT;
        o.warmup = 0;
        int steps = cJSON_GetArraySize(curve) - 1;
        double worst_c = 0, got = 0, want = 0;
        for (int s = 0; s <= steps; s++) {
            tk_params_zero_grad(ps);
            got = step_loss(tc, pb, ref_arg, &ref_head, orpo, s < steps ? (float)(1.0 / pb->G) : 0.0f);
            want = cJSON_GetArrayItem(curve, s)->valuedouble;
            worst_c = fmax(worst_c, fabs(got - want) / fmax(fabs(want), 1e-3));
            if (s < steps) tk_adamw_step(&o, ps, s, NULL);
        }
        printf("  %s loss curve over %d steps: %.5f -> %.5f (trl %.5f -> %.5f), max rel diff %.2e\n", name, steps, loss, got,
               cJSON_GetArrayItem(curve, 0)->valuedouble, want, worst_c);
        CHECK(worst_c <= 1e-3, "%s loss curve differs from TRL (max rel %.3e)", name, worst_c);
    }
    free(ref);
    tk_train_ctx_free(tc);
    cJSON_Delete(j);
}

int main(void) {
    tk_set_threads(2);
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return tk_test_done("test_train_dpo");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_dpo_ref.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    if (st) CHECK_OK(tk_model_load(mp, &mpar, &m));
    pair_batch pb = {0};
    if (m && load_batch(st, &pb)) {
        const char *cases[] = {"dpo_sigmoid", "dpo_ipo", "dpo_hinge", "dpo_robust", "orpo", "simpo"};
        for (int k = 0; k < 6; k++) run_case(m, st, &pb, cases[k]);
    }
    free(pb.pos);
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_train_dpo");
}
