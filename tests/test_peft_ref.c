/* DoRA and IA3 training against PyTorch + HF PEFT (fixture written by
 * tools/make_peft_methods_reference.py): on stories260K with the same initialisation, the
 * same loss, logits and every DoRA (A, B, magnitude) / IA3 gradient within the SFT tests'
 * tolerances (test_train_ref), and the same 10-step AdamW loss curve. */
#include "test.h"
#include "train_ref.h"
#include "peft/ia3.h"

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
    CHECK(ps->n == expect && ref_load_init(ps, st, method) == expect, "%s: %lld parameters, all initialised from the fixture", what,
          (long long)ps->n);
    ref_check_method(tc, st, rb, method, what);
    ref_check_curve(tc, st, rb, method, what);
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
