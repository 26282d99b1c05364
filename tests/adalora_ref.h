/* What the AdaLoRA tests against PEFT fixtures share (test_peft_adalora on stories260K,
 * test_peft_adalora_smollm2): the configuration from the fixture's metadata, and PEFT's training loop
 * (AdamW step, update_and_allocate(step), zero_grad) with every step's kept triplets and the loss
 * curve compared. */
#ifndef TK_TESTS_ADALORA_REF_H
#define TK_TESTS_ADALORA_REF_H
#include "train_ref.h"
#include "peft/adalora.h"

/* AdaLoRA's settings as the fixture's metadata states them (other fields: the defaults). */
static inline tk_adalora_config adalora_ref_config(const tk_safetensors *st) {
    tk_adalora_config c = tk_adalora_default_config();
    c.init_r = (int32_t)meta_num(st, "init_r");
    c.target_r = (int32_t)meta_num(st, "target_r");
    c.tinit = (int32_t)meta_num(st, "tinit");
    c.tfinal = (int32_t)meta_num(st, "tfinal");
    c.delta_t = (int32_t)meta_num(st, "deltaT");
    c.orth_reg = (float)meta_num(st, "orth_reg");
    c.alpha = (float)meta_num(st, "alpha");
    c.total_step = (int64_t)meta_num(st, "steps");
    return c;
}

/* From the parameters as they are now: the fixture's steps of PEFT's loop on rb; after each, the kept
 * triplets of every module (by layer, then the linears of `targets` in TK_LIN order) against
 * keep_key [steps x modules*init_r] (1 kept, 0 masked, -1 no pattern yet), then the loss curve
 * (penalty included, the last after the final update) against losses_key within tol. */
static inline void adalora_ref_steps(tk_train_ctx *tc, const tk_safetensors *st, ref_batch *rb, const tk_adalora_config *c, int32_t n_layers,
                                     uint32_t targets, const char *losses_key, const char *keep_key, double tol, const char *what) {
    tk_param_set *ps = tk_train_param_set(tc);
    tk_adalora *a = tk_adalora_of(tk_train_adapters(tc, &(int){0})[0].peft);
    int n_mod = 0;
    for (int w = 0; w < TK_LIN_COUNT; w++) n_mod += (targets >> w) & 1;
    double rl[32], gl[32], reg = 0;
    int n = meta_list(st, losses_key, rl, 32);
    int64_t nk = (int64_t)n_layers * n_mod * c->init_r;
    const float *keep = n == c->total_step + 1 ? fx_f32(st, keep_key, (int64_t)(n - 1) * nk) : NULL;
    CHECK(keep != NULL && a != NULL, "%s: fixture with %d losses and the kept triplets", what, n);
    if (!keep || !a) return;
    tk_adamw o = tk_adamw_default();
    o.lr = (float)meta_num(st, "lr");
    o.weight_decay = (float)meta_num(st, "weight_decay");
    o.clip = (float)meta_num(st, "clip");
    o.sched = TK_SCHED_CONSTANT;
    int same = 0, patterned = 0;
    for (int s = 0; s < n - 1; s++) {
        gl[s] = mean_loss_grads(tc, rb);
        CHECK_OK(tk_train_reg_loss(tc, true, &reg));
        gl[s] += reg;
        double gn = 0;
        tk_adamw_step(&o, ps, s, &gn);
        CHECK_OK(tk_train_after_update(tc, s, tk_adamw_clip_scale(&o, gn)));
        int64_t at = 0, diff = 0;
        bool has = tk_adalora_has_pattern(a);
        for (int32_t l = 0; l < n_layers; l++)
            for (int w = 0; w < TK_LIN_COUNT; w++) {
                if (!((targets >> w) & 1)) continue;
                const float *k = tk_adalora_keep(a, l, (tk_linear_id)w);
                for (int j = 0; j < c->init_r; j++) diff += keep[s * nk + at + j] != (has ? k[j] : -1.0f);
                at += c->init_r;
            }
        patterned += keep[s * nk] >= 0;
        same += diff == 0;
        CHECK(diff == 0, "%s step %d: %lld of %lld triplet choices differ from PEFT's", what, s, (long long)diff, (long long)nk);
    }
    tk_eval_sums es = {0};
    CHECK_OK(tk_train_eval(tc, &rb->b, rb->target, rb->weight, &es));
    CHECK_OK(tk_train_reg_loss(tc, false, &reg));
    gl[n - 1] = es.loss_sum / es.weight_sum + reg;
    printf("  rank patterns: %d of %d steps equal to PEFT's (a pattern from step %d on)\n", same, n - 1, n - 1 - patterned);
    CHECK(patterned >= 2, "%s: the allocator masked (%d steps with a pattern)", what, patterned);
    check_curve(gl, rl, n, tol, what);
}
#endif
