/* The objective seam inside the training step (src/train/step.h): a non-SFT objective trains
 * through tk_train_step_objective, with a frozen reference from tk_train_reference_hidden.
 * - The reference is the loaded base, not a copy: with LoRA it equals a fresh model's hidden
 *   states bit for bit although the adapter moved the policy; with full fine-tuning it still
 *   equals the weights as loaded after the trained masters changed.
 * - A reference-anchored sequence objective, L = sum_s (lp_s - ref_s)^2 / 2 over per-sequence
 *   log-prob sums (src/objective/logp.h), defined here as a tk_objective_ops table: gradients of
 *   every LoRA parameter through the whole model equal central finite differences.
 * - An objective that needs more than targets is refused by the SFT entry point; SFT through
 *   the seam is covered bit for bit by tests/train_baseline.sh. */
#include "test.h"
#include "tiny_llama.h"
#include "train/step.h"
#include "fd_check.h"
#include "objective/logp.h"
static const float EPS = 5e-4f; /* the quadratic loss is curved: small steps (truncation error dominates above ~1e-3) */

static tk_status anchor_loss(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    (void)state;
    int32_t S = b->n_seq;
    double lp[8], ref[8], d[8];
    if (S > 8) return tk_fail(TK_ERR_ARG, "anchor: at most 8 sequences");
    tk_status st = tk_seq_logp_forward(b->h, b->head, b->T, b->target, b->seq, S, lp, NULL, NULL, NULL);
    if (!st) st = tk_seq_logp_forward(b->ref_h, b->ref_head ? b->ref_head : b->head, b->T, b->target, b->seq, S, ref, NULL, NULL, NULL);
    if (st) return st;
    for (int32_t s = 0; s < S; s++) {
        res->loss_sum += 0.5 * (lp[s] - ref[s]) * (lp[s] - ref[s]);
        d[s] = grad_scale * (lp[s] - ref[s]);
    }
    res->norm = S;
    if (!dh) return TK_OK;
    memset(dh, 0, (size_t)(b->T * b->C) * sizeof(float));
    return tk_seq_logp_backward(b->h, b->head, b->T, b->target, b->seq, S, d, NULL, NULL, dh, dw);
}
static const tk_objective_ops k_anchor = {.name = "anchor(test)", .needs = TK_OBJ_NEED_TARGET | TK_OBJ_NEED_SEQ | TK_OBJ_NEED_REF,
                                          .loss_and_grad = anchor_loss};

/* Sequence ids of the tiny batch: each packed segment of each row is a sequence (-1 on padding). */
static int32_t seq_ids(const tiny_batch *tb, int32_t *seq) {
    int32_t n = 0, prev_row = -1, prev_seg = -2;
    for (int t = 0; t < 16; t++) {
        int row = t / 8, sg = tb->seg[t];
        if (sg < 0 || tb->target[t] < 0) { seq[t] = -1; continue; }
        if (row != prev_row || sg != prev_seg) n++;
        prev_row = row;
        prev_seg = sg;
        seq[t] = n - 1;
    }
    return n;
}

static void hidden_of(tk_model *m, const tiny_batch *tb, float *h) {
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    if (f) {
        CHECK_OK(tk_forward_run(f, &tb->b, NULL, 0, NULL));
        memcpy(h, tk_forward_hidden(f), 16 * 16 * sizeof(float));
    }
    tk_forward_free(f);
}

typedef struct obj_ctx { tk_train_ctx *tc; const tiny_batch *tb; tk_obj_batch *x; } obj_ctx;

/* The objective's loss of the batch (a step with no gradient scale). */
static double obj_loss(void *ctx) {
    obj_ctx *c = ctx;
    tk_obj_result r;
    tk_status st = tk_train_step_objective(c->tc, &c->tb->b, c->x, 0.0f, &r);
    if (st) fprintf(stderr, "step failed: %s\n", tk_last_error());
    return r.loss_sum;
}

static void test_lora(void) {
    tiny_opts o = {.interleaved = 1, .bias = true, .seed = 12};
    tk_model *m = tiny_llama(o), *fresh = tiny_llama(o);
    if (!m || !fresh) { CHECK(0, "tiny models"); tk_model_free(m); tk_model_free(fresh); return; }
    tk_train_params p = tk_train_default_params();
    p.lora.r = 2;
    p.lora.dropout = 0;
    p.max_rows = 2;
    p.max_cols = 8;
    p.objective = &k_anchor;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) goto out;
    CHECK(!strcmp(tk_train_objective(tc)->name, "anchor(test)"), "the context's objective");
    tk_param_set *ps = tk_train_param_set(tc);
    tk_rng rng;
    tk_rng_seed(&rng, 5);
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = 0.2f * tk_rng_normal(&rng);
    tiny_batch tb;
    tiny_batch_init(&tb, 6);
    int32_t seq[16];
    int32_t S = seq_ids(&tb, seq);
    CHECK(S >= 2, "%d sequences in the batch", S);
    /* the reference: the bare base (a fresh identical model's hidden states, bit for bit) */
    const float *ref = NULL;
    float want[16 * 16], *refc = malloc(sizeof want);
    CHECK_OK(tk_train_reference_hidden(tc, &tb.b, &ref));
    hidden_of(fresh, &tb, want);
    CHECK(ref && !memcmp(ref, want, sizeof want), "LoRA reference = the base with the adapter off");
    if (!ref || !refc) { free(refc); goto out; }
    memcpy(refc, ref, sizeof want);
    /* SFT-only entry point refuses this objective */
    double ls = 0, ws = 0;
    CHECK(tk_train_step_fwd_bwd(tc, &tb.b, tb.target, tb.weight, 1.0f, &ls, &ws) == TK_ERR_ARG, "SFT entry refuses 'anchor'");
    /* gradients vs finite differences */
    tk_lm_head ref_head = tk_train_reference_head(tc);
    tk_obj_batch x = {.target = tb.target, .seq = seq, .n_seq = S, .ref_h = refc, .ref_head = &ref_head};
    tk_params_zero_grad(ps);
    tk_obj_result r;
    CHECK_OK(tk_train_step_objective(tc, &tb.b, &x, 1.0f, &r));
    CHECK(r.norm == S && r.loss_sum > 1e-4, "loss %.4g over %g sequences", r.loss_sum, r.norm);
    obj_ctx oc = {tc, &tb, &x};
    fd_opts fo = {.eps = EPS, .max_per = 0, .tol = 1e-2}; /* every element */
    double worst = fd_check(ps, obj_loss, &oc, &fo, "anchor objective", NULL);
    printf("anchor objective through the step (LoRA, %lld tensors): worst FD ratio %.2e\n", (long long)ps->n, worst);
    free(refc);
out:
    tk_train_ctx_free(tc);
    tk_model_free(m);
    tk_model_free(fresh);
}

static void test_full_reference(void) {
    tiny_opts o = {.interleaved = 0, .seed = 13};
    tk_model *m = tiny_llama(o), *fresh = tiny_llama(o);
    if (!m || !fresh) { CHECK(0, "tiny models"); tk_model_free(m); tk_model_free(fresh); return; }
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_FULL;
    p.max_rows = 2;
    p.max_cols = 8;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        tk_param_set *ps = tk_train_param_set(tc);
        for (int64_t i = 0; i < ps->n; i++)
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] *= 1.1f; /* "trained" masters */
        tiny_batch tb;
        tiny_batch_init(&tb, 7);
        const float *ref = NULL;
        float want[16 * 16], now[16 * 16];
        CHECK_OK(tk_train_reference_hidden(tc, &tb.b, &ref));
        hidden_of(fresh, &tb, want);
        CHECK(ref && !memcmp(ref, want, sizeof want), "full fine-tuning reference = the weights as loaded");
        hidden_of(m, &tb, now);
        CHECK(memcmp(now, want, sizeof want) != 0, "the model itself runs the changed masters");
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
    tk_model_free(fresh);
}

int main(void) {
    tk_set_threads(1);
    test_lora();
    test_full_reference();
    return tk_test_done("test_train_objective");
}
