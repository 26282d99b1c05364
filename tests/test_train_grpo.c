/* The GRPO loss through the whole model against TRL (fixture written by tools/make_grpo_reference.py):
 * stories260K with a PEFT LoRA (same initialisation), two prompts with three completions each, one per
 * row, right-padded as TRL lays them out; fixed rewards -> advantages (tk_grpo_advantages = TRL's), old
 * log-probs of the sampling policy that differ from the current ones (tokens clipped on both sides), the
 * reference = the same base with the adapter off (tk_train_reference_hidden). For dapo, grpo and dr_grpo
 * with the KL term: the loss, TRL's metrics and every LoRA gradient (max relative error printed); for dapo
 * and grpo a 10-step AdamW loss curve with completions, advantages, old and reference log-probs held fixed
 * (several optimisation passes over one generation batch; test_train_ref's optimizer settings). */
#include "test.h"
#include "train/step.h"
#include "objective/grpo.h"
#include <cjson/cJSON.h>

typedef struct grpo_batch {
    int32_t B, T, S;
    int32_t *pos;
    const int32_t *ids, *seg, *target, *seq;
    const float *adv, *old, *rewards;
    tk_batch b;
} grpo_batch;

static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

static bool load_batch(const tk_safetensors *st, grpo_batch *gb) {
    const tk_tensor_ref *ids = tk_st_find(st, "ids"), *v = tk_st_find(st, "seq_value");
    if (!ids || !v) return false;
    gb->T = (int32_t)ids->ne[0];
    gb->B = (int32_t)ids->ne[1];
    gb->S = (int32_t)v->ne[0];
    int64_t n = (int64_t)gb->B * gb->T;
    gb->ids = fx(st, "ids", TK_I32, n);
    gb->seg = fx(st, "seg", TK_I32, n);
    gb->target = fx(st, "target", TK_I32, n);
    gb->seq = fx(st, "seq", TK_I32, n);
    gb->old = fx(st, "old_logp", TK_F32, n);
    gb->adv = fx(st, "seq_value", TK_F32, gb->S);
    gb->rewards = fx(st, "rewards", TK_F32, gb->S);
    gb->pos = malloc((size_t)n * sizeof(int32_t));
    for (int64_t t = 0; t < n; t++) gb->pos[t] = (int32_t)(t % gb->T);
    gb->b = (tk_batch){.n_rows = gb->B, .n_cols = gb->T, .ids = gb->ids, .pos = gb->pos, .seg = gb->seg};
    return gb->ids && gb->seg && gb->target && gb->seq && gb->old && gb->adv && gb->rewards;
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

/* One step's loss; gradients accumulate at 1 / norm (norm: what the objective reports; scale 0: loss only). */
static double step_loss(tk_train_ctx *tc, grpo_batch *gb, const float *adv, const float *ref_h, const tk_lm_head *ref_head, bool grad,
                        tk_obj_result *r) {
    tk_obj_batch x = {.target = gb->target, .seq = gb->seq, .n_seq = gb->S, .seq_value = adv, .ref_h = ref_h, .ref_head = ref_head,
                      .old_logp = gb->old};
    CHECK_OK(tk_train_eval_objective(tc, &gb->b, &x, r));   /* the norm, as a trainer sums it before the step */
    if (grad) CHECK_OK(tk_train_step_objective(tc, &gb->b, &x, (float)(1.0 / r->norm), r));
    return r->norm > 0 ? r->loss_sum / r->norm : NAN;
}

static void run_case(tk_model *m, const tk_safetensors *st, grpo_batch *gb, const float *adv, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    tk_grpo_params gp = tk_grpo_default_params();
    gp.loss_type = tk_grpo_loss_parse(cJSON_GetObjectItem(j, "loss_type")->valuestring);
    gp.beta = cJSON_GetObjectItem(j, "beta")->valuedouble;
    gp.epsilon_low = cJSON_GetObjectItem(j, "epsilon_low")->valuedouble;
    gp.epsilon_high = cJSON_GetObjectItem(j, "epsilon_high")->valuedouble;
    gp.max_completion_length = cJSON_GetObjectItem(j, "max_completion_length")->valueint;
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    p.max_rows = gb->B;
    p.max_cols = gb->T;
    p.objective = tk_objective_find("grpo");
    p.objective_params = &gp;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { cJSON_Delete(j); return; }
    set_init(tc, st);
    int64_t n = (int64_t)gb->B * gb->T * tk_model_get_config(m)->dim;
    float *ref = malloc((size_t)n * sizeof(float));
    const float *rh = NULL;
    CHECK(tk_grpo_needs_ref(&gp), "%s: beta > 0 uses the reference", name);
    CHECK_OK(tk_train_reference_hidden(tc, &gb->b, &rh));
    if (rh) memcpy(ref, rh, (size_t)n * sizeof(float));
    tk_lm_head ref_head = tk_train_reference_head(tc);
    tk_param_set *ps = tk_train_param_set(tc);
    tk_params_zero_grad(ps);
    tk_obj_result r;
    double loss = step_loss(tc, gb, adv, ref, &ref_head, true, &r), tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    double worst = 0, em = 0;
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
    const cJSON *met = cJSON_GetObjectItem(j, "metrics");
    for (int k = 0; k < 4 && k < cJSON_GetArraySize(met); k++)
        em = fmax(em, fabs(r.metrics[k] / r.norm - cJSON_GetArrayItem(met, k)->valuedouble) / fmax(fabs(cJSON_GetArrayItem(met, k)->valuedouble), 1e-3));
    printf("stories260K LoRA grpo %-8s loss %.7f (trl %.7f), kl %.4f, clipped %.4f, 4 metrics %.1e, every LoRA gradient (%lld tensors): max rel err %.2e\n",
           name, loss, tl, r.metrics[0] / r.norm, r.metrics[3] / r.norm, em, (long long)ps->n, worst);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", name, loss, tl);
    CHECK(em <= 1e-5 && r.metrics[1] > 0 && r.metrics[2] > 0, "%s metrics vs TRL (%.3e), clipped tokens on both sides", name, em);
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
            got = step_loss(tc, gb, adv, ref, &ref_head, s < steps, &r);
            want = cJSON_GetArrayItem(curve, s)->valuedouble;
            worst_c = fmax(worst_c, fabs(got - want) / fmax(fabs(want), 1e-3));
            if (s < steps) tk_adamw_step(&o, ps, s, NULL);
        }
        printf("  %s loss curve over %d passes: %.5f -> %.5f (trl %.5f -> %.5f), max rel diff %.2e\n", name, steps, loss, got,
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
    if (tk_test_require(mp, "models/stories260K/hf")) return tk_test_done("test_train_grpo");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_grpo_ref.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    if (st) CHECK_OK(tk_model_load(mp, &mpar, &m));
    grpo_batch gb = {0};
    if (m && load_batch(st, &gb)) {
        /* the advantages from the rewards, as TRL computes them (groups of three consecutive completions) */
        double rw[64];
        int32_t group[64];
        float adv[64];
        CHECK(gb.S <= 64, "fixture size");
        for (int32_t s = 0; s < gb.S; s++) { rw[s] = gb.rewards[s]; group[s] = s / 3; }
        CHECK_OK(tk_grpo_advantages(rw, group, gb.S, TK_GRPO_SCALE_GROUP, adv));
        double ea = 0;
        for (int32_t s = 0; s < gb.S; s++) ea = fmax(ea, fabs(adv[s] - gb.adv[s]) / fmax(fabs(gb.adv[s]), 1e-3));
        CHECK(ea < 1e-6, "advantages vs TRL: %g", ea);
        const char *cases[] = {"dapo", "grpo", "dr_grpo"};
        for (int k = 0; k < 3; k++) run_case(m, st, &gb, adv, cases[k]);
    }
    free(gb.pos);
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_train_grpo");
}
