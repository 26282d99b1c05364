/* AdaLoRA against PyTorch + PEFT 0.21 on the real default model (fixture written by
 * tools/make_adalora_smollm2_reference.py): SmolLM2-135M-Instruct with its base kept in Q4_1 (PyTorch runs
 * the dequantized values in float64), AdaLoRA on q and v (init_r 4, target_r 2, tinit 2, tfinal 3, deltaT 2, 10
 * steps, alpha 8, orthogonal penalty 0.5) from the name-hashed initialisation both sides compute
 * (tests/smollm2_lora.h; q's B rows permuted to takumi's GGUF order), two real chat-template rows.
 * Checked: the loss with the penalty and the penalty alone (1e-4 relative), layer 29's gradients element
 * by element (1e-4, max |a - b| / max |b|, the SFT tests' tolerance) and the norm of every gradient
 * (1e-4), then PEFT's loop for 10 steps (AdamW, update_and_allocate): the triplets the rank allocator
 * keeps at every step and the loss curve (1e-3 relative). The stories260K case is test_peft_adalora. */
#include "test.h"
#include "adalora_ref.h"
#include "smollm2_lora.h"
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
            CHECK(e <= 1e-4, "gradient %s: max rel err %.3e", q->name, e);
            worst_e = fmax(worst_e, e);
            n_elem++;
        }
        const cJSON *w = cJSON_GetObjectItem(gnorm, q->name);
        CHECK(cJSON_IsNumber(w), "the fixture has the norm of %s", q->name);
        if (cJSON_IsNumber(w)) {
            double s = 0;
            for (int64_t k = 0; k < q->n; k++) s += (double)g[k] * g[k];
            double e = fabs(sqrt(s) - w->valuedouble) / fmax(w->valuedouble, 1e-12);
            CHECK(e <= 1e-4, "gradient norm %s: %.9g vs PEFT %.9g", q->name, sqrt(s), w->valuedouble);
            worst_n = fmax(worst_n, e);
            n_norm++;
        }
        free(tmp);
    }
    CHECK(n_norm == ps->n && n_elem == 6, "%d norms of %lld, %d layer-29 tensors compared", n_norm, (long long)ps->n, n_elem);
    printf("  layer-29 gradients (%d tensors) max rel err %.2e; norms of all %d gradients max rel err %.2e\n", n_elem, worst_e, n_norm, worst_n);
    cJSON_Delete(gnorm);
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
    tk_adalora_config c = adalora_ref_config(st);
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
        else {
            smollm2_hash_init(ps, mc, R);
            adalora_ref_steps(tc, st, &rb, &c, mc->n_layers, 1u << TK_LIN_Q | 1u << TK_LIN_V, "losses", "keep", 1e-3,
                              "SmolLM2 AdaLoRA (rank allocator active)");
        }
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_peft_adalora_smollm2");
}
