/* DoRA and IA3 training against PyTorch + HF PEFT (fixture written by
 * tools/make_peft_methods_reference.py): on stories260K with the same initialisation, the
 * same loss, logits and every DoRA (A, B, magnitude) / IA3 gradient within the SFT tests'
 * tolerances (test_train_ref), and the same 10-step AdamW loss curve. */
#include "test.h"
#include "train_ref.h"
#include "peft/ia3.h"

/* Copies the fixture's "<method>.init.<name>" into every parameter; returns how many were found. */
static int64_t load_init(tk_param_set *ps, const tk_safetensors *st, const char *method) {
    char name[256];
    int64_t n = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "%s.init.%s", method, ps->p[i].name);
        const float *v = fx_f32(st, name, ps->p[i].n);
        if (v) { memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float)); n++; }
    }
    return n;
}

static void run(tk_model *m, const tk_safetensors *st, ref_batch *rb, const char *method, const char *what) {
    tk_train_params p = tk_train_default_params();
    p.method = !strcmp(method, "dora") ? TK_TRAIN_DORA : TK_TRAIN_IA3;
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    tk_ia3_config ia3 = tk_ia3_default_config();
    p.peft_cfg = &ia3;
    p.max_rows = rb->B;
    p.max_cols = rb->T;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) return;
    tk_param_set *ps = tk_train_param_set(tc);
    int64_t expect = p.method == TK_TRAIN_DORA ? 5 * 7 * 3 : 5 * 3;
    CHECK(ps->n == expect && load_init(ps, st, method) == expect, "%s: %lld parameters, all initialised from the fixture", what,
          (long long)ps->n);
    char key[64];
    snprintf(key, sizeof key, "%s_loss", method);
    double loss = mean_loss_grads(tc, rb), ref = meta_num(st, key);
    printf("stories260K %s: loss %.7f (torch %.7f)\n", what, loss, ref);
    CHECK_NEAR(loss, ref, 1e-5 * ref);
    snprintf(key, sizeof key, "%s.logits", method);
    check_logits_key(tc, st, key, rb, 64, 1e-5, what);
    double worst = 0;
    char name[256];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "%s.grad.%s", method, ps->p[i].name);
        const float *g = fx_f32(st, name, ps->p[i].n);
        if (!g) continue;
        double e = rel_err(ps->p[i].g, g, 1, ps->p[i].n, 1);
        if (g_verbose) printf("    %-72s %.2e\n", ps->p[i].name, e);
        CHECK(e <= 1e-4, "%s gradient %s: max rel err %.3e", what, ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    printf("  every %s gradient (%lld tensors): max rel err %.2e\n", what, (long long)ps->n, worst);
    load_init(ps, st, method);
    double rl[32], gl[32];
    snprintf(key, sizeof key, "%s_losses", method);
    int n = meta_list(st, key, rl, 32);
    CHECK(n == (int)meta_num(st, "steps") + 1, "%s count %d", key, n);
    if (n > 1) {
        run_steps(tc, rb, st, n - 1, gl);
        check_curve(gl, rl, n, 1e-3, what);
    }
    tk_train_ctx_free(tc);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(2);
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return tk_test_done("test_peft_ref");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_peft_methods.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(mp, &mpar, &m));
    ref_batch rb;
    if (st && m && load_batch(st, &rb)) {
        run(m, st, &rb, "dora", "DoRA");
        run(m, st, &rb, "ia3", "IA3");
    }
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_peft_ref");
}
