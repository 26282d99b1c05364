/* The GRPO loss through the whole model against TRL (fixture written by tools/make_grpo_reference.py):
 * stories260K with a PEFT LoRA (same initialisation), two prompts with three completions each, one per
 * row, right-padded as TRL lays them out; fixed rewards -> advantages (tk_grpo_advantages = TRL's), old
 * log-probs of the sampling policy that differ from the current ones (tokens clipped on both sides), the
 * reference = the same base with the adapter off (tk_train_reference_hidden). For dapo, grpo and dr_grpo
 * with the KL term: the loss, TRL's metrics and every LoRA gradient (max relative error printed), and the
 * 10-step AdamW loss curve with completions, advantages, old and reference log-probs held fixed
 * (several optimisation passes over one generation batch; test_train_ref's optimizer settings). */
#include "objective_ref.h"

typedef struct grpo_batch {
    int32_t B, T, S;
    int32_t *pos;
    const int32_t *ids, *seg, *target, *seq;
    const float *adv, *old, *rewards;
    tk_batch b;
} grpo_batch;

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

/* One pass over the batch: the norm first, from the batch alone (tk_grpo_norm, as a trainer sums it before
 * the step), then the step with gradients at 1 / norm (grad) or the evaluation. The loss (mean as the loss type defines it); *r its sums. */
typedef struct step_ctx {
    tk_train_ctx *tc;
    grpo_batch *gb;
    tk_obj_batch x;
    tk_grpo_params gp;
    tk_obj_result r;
} step_ctx;

static double step_loss(void *ctx, bool grad) {
    step_ctx *c = ctx;
    double norm = 0;
    CHECK_OK(tk_grpo_norm(&c->gp, &c->x, &norm));
    if (grad) CHECK_OK(tk_train_step_objective(c->tc, &c->gb->b, &c->x, (float)(1.0 / norm), &c->r));
    else CHECK_OK(tk_train_eval_objective(c->tc, &c->gb->b, &c->x, &c->r));
    CHECK(c->r.norm == norm, "tk_grpo_norm %g = the reported norm %g", norm, c->r.norm);
    return c->r.norm > 0 ? c->r.loss_sum / c->r.norm : NAN;
}

static void run_case(tk_model *m, const tk_safetensors *st, grpo_batch *gb, const float *adv, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    tk_grpo_params gp = grpo_params_of(j);
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
    step_ctx sc = {.tc = tc, .gb = gb, .x = {.T = (int64_t)gb->B * gb->T, .target = gb->target, .seq = gb->seq, .n_seq = gb->S, .seq_value = adv, .ref_h = ref,
                                             .ref_head = &ref_head, .old_logp = gb->old}, .gp = gp};
    const tk_obj_result *r = &sc.r;
    double loss = step_loss(&sc, true), tl = cJSON_GetObjectItem(j, "loss")->valuedouble, em = 0;
    double worst = grads_vs_fixture(ps, st, name, 1e-4);
    const cJSON *met = cJSON_GetObjectItem(j, "metrics");
    for (int k = 0; k < 4 && k < cJSON_GetArraySize(met); k++)
        em = fmax(em, fabs(r->metrics[k] / r->norm - cJSON_GetArrayItem(met, k)->valuedouble) / fmax(fabs(cJSON_GetArrayItem(met, k)->valuedouble), 1e-3));
    printf("stories260K LoRA grpo %-8s loss %.7f (trl %.7f), kl %.4f, clipped %.4f, 4 metrics %.1e, every LoRA gradient (%lld tensors): max rel err %.2e\n",
           name, loss, tl, r->metrics[0] / r->norm, r->metrics[3] / r->norm, em, (long long)ps->n, worst);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", name, loss, tl);
    CHECK(em <= 1e-5 && r->metrics[1] > 0 && r->metrics[2] > 0, "%s metrics vs TRL (%.3e), clipped tokens on both sides", name, em);
    const cJSON *curve = cJSON_GetObjectItem(j, "curve");
    CHECK(curve != NULL, "%s: a loss curve", name);
    if (curve) curve_vs_fixture(tc, st, curve, step_loss, &sc, name);
    free(ref);
    tk_train_ctx_free(tc);
    cJSON_Delete(j);
}

int main(void) {
    tk_safetensors *st;
    tk_model *m;
    if (!open_stories("tests/fixtures/train/stories260k_grpo_ref.safetensors", &st, &m)) return tk_test_done("test_train_grpo");
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
