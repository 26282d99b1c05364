/* KTO and reward-model training through the whole model against TRL (fixture written by
 * tools/make_kto_reward_reference.py): stories260K with a PEFT LoRA (same initialisation).
 * KTO: four labelled examples and their KL sequences (TRL's mismatched prompt/completion pairs),
 * one per row, the reference = the same base with the adapter off (tk_train_reference_hidden).
 * Reward: AutoModelForSequenceClassification + LoRA (task SEQ_CLS) against takumi's LoRA plus
 * the objective's score head (the same parameter name PEFT saves). For each case: the loss,
 * every LoRA gradient and the head's (max relative error printed) and the 10-step AdamW loss
 * curve (test_train_ref's settings). */
#include "test.h"
#include "train/step.h"
#include "objective/kto.h"
#include "objective/reward.h"
#include <cjson/cJSON.h>

typedef struct rows {
    int32_t B, T, S;
    int32_t *pos;
    const int32_t *ids, *seg, *target, *seq, *group;
    const float *value;
    tk_batch b;
} rows;

static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

static bool load_rows(const tk_safetensors *st, const char *pre, rows *r) {
    char k[64];
    snprintf(k, sizeof k, "%s.ids", pre);
    const tk_tensor_ref *ids = tk_st_find(st, k);
    snprintf(k, sizeof k, "%s.seq_value", pre);
    const tk_tensor_ref *v = tk_st_find(st, k);
    if (!ids || !v) return false;
    r->T = (int32_t)ids->ne[0];
    r->B = (int32_t)ids->ne[1];
    r->S = (int32_t)v->ne[0];
    int64_t n = (int64_t)r->B * r->T;
    const char *names[] = {"ids", "seg", "target", "seq"};
    const int32_t **dst[] = {&r->ids, &r->seg, &r->target, &r->seq};
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s.%s", pre, names[i]);
        *dst[i] = tk_st_find(st, k) ? fx(st, k, TK_I32, n) : NULL;
    }
    r->value = v->data;
    snprintf(k, sizeof k, "%s.seq_group", pre);
    r->group = tk_st_find(st, k) ? fx(st, k, TK_I32, r->S) : NULL;
    r->pos = malloc((size_t)n * sizeof(int32_t));
    for (int64_t t = 0; t < n; t++) r->pos[t] = (int32_t)(t % r->T);
    r->b = (tk_batch){.n_rows = r->B, .n_cols = r->T, .ids = r->ids, .pos = r->pos, .seg = r->seg};
    return r->ids && r->seg && r->seq;
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

/* One step's loss (mean over units); gradients accumulate at 1 / units (scale 0: loss only). */
static double step_loss(tk_train_ctx *tc, rows *r, const float *ref_h, const tk_lm_head *ref_head, float scale) {
    tk_obj_batch x = {.target = r->target, .seq = r->seq, .n_seq = r->S, .seq_group = r->group, .n_group = r->group ? r->S / 2 : 0,
                      .seq_value = r->value, .ref_h = ref_h, .ref_head = ref_head};
    tk_obj_result res;
    CHECK_OK(tk_train_step_objective(tc, &r->b, &x, scale, &res));
    return res.norm > 0 ? res.loss_sum / res.norm : NAN;
}

static void run_case(tk_model *m, const tk_safetensors *st, rows *r, const char *pre, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    bool kto = !strcmp(pre, "kto");
    tk_kto_params kp = tk_kto_default_params();
    tk_reward_params rp = tk_reward_default_params();
    if (kto) {
        kp.beta = cJSON_GetObjectItem(j, "beta")->valuedouble;
        kp.desirable_weight = cJSON_GetObjectItem(j, "desirable_weight")->valuedouble;
        kp.undesirable_weight = cJSON_GetObjectItem(j, "undesirable_weight")->valuedouble;
    } else rp.center_rewards = cJSON_GetObjectItem(j, "center_rewards")->valuedouble;
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    p.max_rows = r->B;
    p.max_cols = r->T;
    p.objective = kto ? &tk_objective_kto : &tk_objective_reward;
    p.objective_params = kto ? (const void *)&kp : (const void *)&rp;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { cJSON_Delete(j); return; }
    set_init(tc, st, pre);
    int units = 0;
    for (int32_t q = 0; q < r->S; q++) units += kto ? r->value[q] >= 0 : r->value[q] == 1;
    int64_t n = (int64_t)r->B * r->T * tk_model_get_config(m)->dim;
    float *ref = NULL;
    tk_lm_head ref_head = tk_train_reference_head(tc);
    if (kto) {
        const float *rh = NULL;
        ref = malloc((size_t)n * sizeof(float));
        CHECK_OK(tk_train_reference_hidden(tc, &r->b, &rh));
        if (rh) memcpy(ref, rh, (size_t)n * sizeof(float));
    }
    tk_param_set *ps = tk_train_param_set(tc);
    tk_params_zero_grad(ps);
    double loss = step_loss(tc, r, ref, &ref_head, (float)(1.0 / units)), tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    double worst = 0;
    char key[260];
    int found = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(key, sizeof key, "grad.%s.%s", name, ps->p[i].name);
        const float *g = fx(st, key, TK_F32, ps->p[i].n);
        if (!g) continue;
        found++;
        double md = 0, mb = 0;
        for (int64_t k = 0; k < ps->p[i].n; k++) { md = fmax(md, fabs(ps->p[i].g[k] - g[k])); mb = fmax(mb, fabs(g[k])); }
        double e = md / (mb > 0 ? mb : 1);
        CHECK(e <= 1e-4, "%s gradient %s: max rel err %.3e", name, ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    CHECK(found == ps->n && (kto || tk_params_find(ps, "base_model.model.score.weight")), "%s: %d of %lld parameters in the fixture", name, found,
          (long long)ps->n);
    printf("stories260K LoRA %-13s loss %.7f (trl %.7f), every gradient (%lld tensors%s): max rel err %.2e\n", name, loss, tl,
           (long long)ps->n, kto ? "" : ", score head included", worst);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", name, loss, tl);
    const cJSON *curve = cJSON_GetObjectItem(j, "curve");
    set_init(tc, st, pre);
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
        got = step_loss(tc, r, ref, &ref_head, s < steps ? (float)(1.0 / units) : 0.0f);
        want = cJSON_GetArrayItem(curve, s)->valuedouble;
        worst_c = fmax(worst_c, fabs(got - want) / fmax(fabs(want), 1e-3));
        if (s < steps) tk_adamw_step(&o, ps, s, NULL);
    }
    printf("  %s loss curve over %d steps: %.5f -> %.5f (trl %.5f -> %.5f), max rel diff %.2e\n", name, steps, loss, got,
           cJSON_GetArrayItem(curve, 0)->valuedouble, want, worst_c);
    CHECK(steps == 10 && worst_c <= 1e-3, "%s loss curve differs from TRL (max rel %.3e)", name, worst_c);
    free(ref);
    tk_train_ctx_free(tc);
    cJSON_Delete(j);
}

int main(void) {
    tk_set_threads(2);
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return tk_test_done("test_train_kto_reward");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_kto_reward_ref.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    if (st) CHECK_OK(tk_model_load(mp, &mpar, &m));
    rows kr = {0}, rr = {0};
    if (m && load_rows(st, "kto", &kr)) {
        run_case(m, st, &kr, "kto", "kto");
        run_case(m, st, &kr, "kto", "kto_weighted");
    } else CHECK(0, "kto fixture rows");
    if (m && load_rows(st, "rm", &rr)) {
        run_case(m, st, &rr, "rm", "reward");
        run_case(m, st, &rr, "rm", "reward_center");
    } else CHECK(0, "reward fixture rows");
    free(kr.pos);
    free(rr.pos);
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_train_kto_reward");
}
