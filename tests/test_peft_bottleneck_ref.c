/* Bottleneck adapters (--method adapter) against PyTorch: AdapterHub's Pfeiffer and Houlsby
 * adapters written by hand on transformers' LlamaForCausalLM (fixture by
 * tools/make_peft_bottleneck_reference.py; HF PEFT has none, AdapterHub's package does not run on
 * transformers 5). On stories260K with the same weights: the loss, logits and every adapter
 * gradient within the SFT tests' tolerances (test_train_ref), the same 10-step AdamW loss curve,
 * and the same logits from the f32 GGUF container of the model. */
#include "test.h"
#include "train_ref.h"
#include "peft/bottleneck.h"

static tk_train_ctx *ctx(tk_model *m, const tk_bottleneck_config *c, const ref_batch *rb) {
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_ADAPTER;
    p.peft_cfg = c;
    p.max_rows = rb->B;
    p.max_cols = rb->T;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    return tc;
}

static void run(ref_stories *s, const char *method, int placement, int act, int reduction) {
    tk_bottleneck_config c = {.placement = placement, .reduction = reduction, .act = act, .seed = 1};
    tk_train_ctx *tc = ctx(s->m, &c, &s->rb);
    if (!tc) return;
    tk_param_set *ps = tk_train_param_set(tc);
    int64_t expect = 5 * 4 * (placement == TK_BN_HOULSBY ? 2 : 1);
    CHECK(ps->n == expect && ref_load_init(ps, s->st, method) == expect, "%s: %lld parameters, all initialised from the fixture", method,
          (long long)ps->n);
    ref_check_method(tc, s->st, &s->rb, method, method);
    if (s->mg) ref_check_container(ctx(s->mg, &c, &s->rb), s->st, &s->rb, method, "GGUF container");
    ref_check_curve(tc, s->st, &s->rb, method, method);
    tk_train_ctx_free(tc);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(2);
    ref_stories s;
    if (ref_stories_open("tests/fixtures/train/stories260k_peft_bottleneck.safetensors", &s)) {
        run(&s, "pfeiffer", TK_BN_PFEIFFER, TK_BN_RELU, 16);
        run(&s, "houlsby", TK_BN_HOULSBY, TK_BN_SWISH, 32);
        run(&s, "pfeiffer_gelu", TK_BN_PFEIFFER, TK_BN_GELU, 64);
        ref_stories_close(&s);
    }
    return tk_test_done("test_peft_bottleneck_ref");
}
