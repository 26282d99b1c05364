/* AdaLoRA against PyTorch + PEFT 0.21 on the real default model (fixture written by
 * tools/make_adalora_smollm2_reference.py): SmolLM2-135M-Instruct with its base kept in Q4_1 (PyTorch runs
 * the dequantized f32 values), AdaLoRA on q and v (init_r 4, target_r 2, tinit 2, tfinal 3, deltaT 2, 10
 * steps, alpha 8, orthogonal penalty 0.5) from the name-hashed initialisation both sides compute
 * (tests/smollm2_lora.h; q's B rows permuted to takumi's GGUF order), two real chat-template rows.
 * Checked: the loss with the penalty and the penalty alone (1e-4 relative), layer 29's gradients element
 * by element (1e-3, max |a - b| / max |b|, as test_objectives_smollm2) and the norm of every gradient
 * (5e-4), then PEFT's loop for 10 steps (AdamW, update_and_allocate): the triplets the rank allocator
 * keeps at every step and the loss curve (1e-3 relative). The stories260K case is test_peft_adalora. */
#include "test.h"
#include "train_ref.h"
#include "smollm2_lora.h"
#include "peft/adalora.h"
#include "train/trainer.h"
#include <cjson/cJSON.h>
#include <unistd.h>

enum { R = 4 };

static void check_grads(tk_train_ctx *tc, const tk_safetensors *st, const tk_model_config *c) {
    tk_param_set *ps = tk_train_param_set(tc);
    cJSON *gnorm = cJSON_Parse(tk_st_metadata(st, "gnorm") ? tk_st_metadata(st, "gnorm") : "");
    CHECK(gnorm != NULL, "fixture gnorm");
    double worst_e = 0, worst_n = 0;
    int n_elem = 0, n_norm = 0;
    char key[260];
    for (int64_t i = 0; i < ps->n && gnorm; i++) {
        const tk_param *q = &ps->p[i];
        float *tmp = malloc((size_t)q->n * sizeof(float));
        if (!tmp) { CHECK(0, "out of memory"); break; }
        const float *g = grad_hf_order(q, c, R, tmp);
        snprintf(key, sizeof key, "grad.%s", q->name);
        if (tk_st_find(st, key)) {
            const float *want = fx_f32(st, key, q->n);
            double mx = 0, md = 0;
            for (int64_t k = 0; want && k < q->n; k++) { mx = fmax(mx, fabs(want[k])); md = fmax(md, fabs(g[k] - want[k])); }
            double e = want ? md / fmax(mx, 1e-30) : 1;
            CHECK(e <= 1e-3, "gradient %s: max rel err %.3e", q->name, e);
            worst_e = fmax(worst_e, e);
            n_elem++;
        }
        const cJSON *w = cJSON_GetObjectItem(gnorm, q->name);
        CHECK(cJSON_IsNumber(w), "the fixture has the norm of %s", q->name);
        if (cJSON_IsNumber(w)) {
            double s = 0;
            for (int64_t k = 0; k < q->n; k++) s += (double)g[k] * g[k];
            double e = fabs(sqrt(s) - w->valuedouble) / fmax(w->valuedouble, 1e-12);
            CHECK(e <= 5e-4, "gradient norm %s: %.9g vs PEFT %.9g", q->name, sqrt(s), w->valuedouble);
            worst_n = fmax(worst_n, e);
            n_norm++;
        }
        free(tmp);
    }
    CHECK(n_norm == ps->n && n_elem == 6, "%d norms of %lld, %d layer-29 tensors compared", n_norm, (long long)ps->n, n_elem);
    printf("  layer-29 gradients (%d tensors) max rel err %.2e; norms of all %d gradients max rel err %.2e\n", n_elem, worst_e, n_norm, worst_n);
    cJSON_Delete(gnorm);
}

/* PEFT's loop for the fixture's steps: step, update_and_allocate(step), zero_grad; the kept triplets after
 * every step's allocation and the loss curve. */
static void check_steps(tk_train_ctx *tc, tk_adalora *a, const tk_safetensors *st, const tk_model_config *mc, const tk_adalora_config *cfg,
                        ref_batch *rbp) {
    tk_param_set *ps = tk_train_param_set(tc);
    tk_adalora_config c = *cfg;
    ref_batch rb = *rbp;
    double reg = 0;
    smollm2_hash_init(ps, mc, R);
    double rl[32], gl[32];
    int n = meta_list(st, "losses", rl, 32);
    int64_t nk = (int64_t)mc->n_layers * 2 * R;
    const float *keep = n == c.total_step + 1 ? fx_f32(st, "keep", (int64_t)(n - 1) * nk) : NULL;
    CHECK(keep != NULL, "fixture: %d losses and the kept triplets", n);
    tk_adamw o = tk_adamw_default();
    o.lr = (float)meta_num(st, "lr");
    o.weight_decay = (float)meta_num(st, "weight_decay");
    o.clip = (float)meta_num(st, "clip");
    o.sched = TK_SCHED_CONSTANT;
    int same = 0, patterned = 0;
    for (int s = 0; s < n - 1 && keep; s++) {
        gl[s] = mean_loss_grads(tc, &rb);
        CHECK_OK(tk_train_reg_loss(tc, true, &reg));
        gl[s] += reg;
        double gn = 0;
        tk_adamw_step(&o, ps, s, &gn);
        CHECK_OK(tk_train_after_update(tc, s, tk_adamw_clip_scale(&o, gn)));
        int64_t at = 0, diff = 0;
        bool has = tk_adalora_has_pattern(a);
        for (int32_t l = 0; l < mc->n_layers; l++)
            for (int w = 0; w < 2; w++, at += R) {
                const float *k = tk_adalora_keep(a, l, w ? TK_LIN_V : TK_LIN_Q);
                for (int j = 0; j < R; j++) diff += keep[s * nk + at + j] != (has ? k[j] : -1.0f);
            }
        patterned += keep[s * nk] >= 0;
        same += diff == 0;
        CHECK(diff == 0, "step %d: %lld of %lld triplet choices differ from PEFT's", s, (long long)diff, (long long)nk);
    }
    tk_eval_sums es = {0};
    CHECK_OK(tk_train_eval(tc, &rb.b, rb.target, rb.weight, &es));
    CHECK_OK(tk_train_reg_loss(tc, false, &reg));
    gl[n - 1] = es.loss_sum / es.weight_sum + reg;
    printf("  rank patterns: %d of %d steps equal to PEFT's (%d with a pattern)\n", same, n - 1, patterned);
    CHECK(patterned >= 4, "the allocator masked (%d steps with a pattern)", patterned);
    check_curve(gl, rl, n, 1e-3, "SmolLM2 AdaLoRA (rank allocator active)");
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(2);
    const char *mp = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (tk_test_require(access(mp, F_OK) == 0 ? mp : NULL, mp)) return tk_test_done("test_peft_adalora_smollm2");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/smollm2_adalora.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    ref_batch rb;
    if (st) CHECK_OK(tk_model_load(mp, &mpar, &m));
    if (!m || !st || !load_batch(st, &rb)) { tk_model_free(m); tk_st_close(st); return tk_test_done("test_peft_adalora_smollm2"); }
    const tk_model_config *mc = tk_model_get_config(m);
    tk_adalora_config c = tk_adalora_default_config();
    c.init_r = (int32_t)meta_num(st, "init_r");
    c.target_r = (int32_t)meta_num(st, "target_r");
    c.tinit = (int32_t)meta_num(st, "tinit");
    c.tfinal = (int32_t)meta_num(st, "tfinal");
    c.delta_t = (int32_t)meta_num(st, "deltaT");
    c.orth_reg = (float)meta_num(st, "orth_reg");
    c.alpha = (float)meta_num(st, "alpha");
    c.total_step = (int64_t)meta_num(st, "steps");
    c.dropout = 0;
    c.targets = 1u << TK_LIN_Q | 1u << TK_LIN_V;
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_ADALORA;
    p.peft_cfg = &c;
    p.max_rows = rb.B;
    p.max_cols = rb.T;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    tk_adalora *a = tc ? tk_adalora_of(tk_train_adapters(tc, &(int){0})[0].peft) : NULL;
    if (tc && a && c.init_r == R) {
        tk_param_set *ps = tk_train_param_set(tc);
        CHECK(ps->n == 30 * 2 * 3, "A, E, B on q and v of 30 layers: %lld tensors", (long long)ps->n);
        smollm2_hash_init(ps, mc, R);
        double ce = mean_loss_grads(tc, &rb), reg = 0;
        CHECK_OK(tk_train_reg_loss(tc, true, &reg));
        double ref = meta_num(st, "loss"), rreg = meta_num(st, "reg");
        printf("SmolLM2 (Q4_1) AdaLoRA q,v: loss %.7f = %.7f + penalty %.7f (PEFT %.7f, penalty %.7f)\n", ce + reg, ce, reg, ref, rreg);
        CHECK_NEAR(ce + reg, ref, 1e-4 * ref);
        CHECK_NEAR(reg, rreg, 1e-4 * rreg);
        check_grads(tc, st, mc);
        if (UNDER_ASAN) printf("  (ASan build, a SmolLM2 step ~10x slower: the 10-step curve left out)\n");
        else check_steps(tc, a, st, mc, &c, &rb);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_peft_adalora_smollm2");
}
