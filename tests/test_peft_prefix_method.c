/* Prefix tuning as a PEFT method (src/peft/prefix.c, the registry's "prefix" kind):
 * - against PyTorch + HF PEFT (tools/make_peft_methods_reference.py prefix): on stories260K with
 *   PEFT's initial prefix, the same loss, logits and gradients (plain embedding and
 *   prefix_projection) within the SFT tests' tolerances, the same 10-step AdamW loss curve, and
 *   the embeddings PEFT saves; the GGUF container of the same model (interleaved RoPE, permuted
 *   q/k rows) gives the same logits from the same PEFT prefix;
 * - gradients (embedding, the projection's two linears and biases) against central finite
 *   differences through the whole tiny model, both RoPE layouts, also with recomputation;
 * - a session (prefill + decode over the KV cache) equals the batched forward;
 * - the PEFT folder written and read back (the projection applied) gives the same logits;
 * - scale 0 is the base model, another scale than 1 is refused; frozen layers are refused. */
#include "test.h"
#include "train_ref.h"
#include "fd_check.h"
#include "peft_check.h"
#include "peft/prefix.h"
#include "peft/registry.h"

static tk_train_ctx *prefix_ctx(tk_model *m, const tk_prefix_config *cfg, int32_t rows, int32_t cols, bool recompute) {
    tk_train_params p = tk_train_default_params();
    p.peft_kind = tk_peft_kind_find("prefix");
    p.peft_cfg = cfg;
    p.max_rows = rows;
    p.max_cols = cols;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    return tc;
}

static void run_ref(tk_model *m, tk_model *mg, const tk_safetensors *st, ref_batch *rb, const char *method, bool proj) {
    tk_prefix_config cfg = tk_prefix_default_config();
    cfg.num_virtual_tokens = 4;
    cfg.projection = proj;
    cfg.encoder_hidden_size = proj ? 16 : 0;
    tk_train_ctx *tc = prefix_ctx(m, &cfg, rb->B, rb->T, false);
    if (!tc) return;
    tk_param_set *ps = tk_train_param_set(tc);
    int64_t expect = proj ? 5 : 1;
    CHECK(ps->n == expect && ref_load_init(ps, st, method) == expect, "%s: %lld parameters, all initialised from the fixture", method,
          (long long)ps->n);
    ref_check_method(tc, st, rb, method, method);
    char key[64];
    /* what PEFT saves: prompt_embeddings, the projection applied */
    int adn = 0;
    const tk_adapter_use *ads = tk_train_adapters(tc, &adn);
    tk_prefix *pf = adn == 1 ? tk_prefix_of(ads[0].peft) : NULL;
    CHECK(pf != NULL, "%s: the adapter is a prefix", method);
    if (pf) {
        int64_t n = 4 * tk_prefix_width(pf);
        float *e = malloc((size_t)n * sizeof(float));
        snprintf(key, sizeof key, "%s.saved", method);
        const float *sv = fx_f32(st, key, n);
        CHECK_OK(tk_prefix_embeddings(pf, e));
        double d = sv ? rel_err(e, sv, 1, n, 1) : 1;
        CHECK(d <= 1e-5, "%s: saved embeddings differ from PEFT's (%.3e)", method, d);
        free(e);
    }
    /* the GGUF container (interleaved RoPE, llama.cpp's q/k rows) from the same prefix */
    if (mg) ref_check_container(prefix_ctx(mg, &cfg, rb->B, rb->T, false), st, rb, method, "GGUF container");
    ref_check_curve(tc, st, rb, method, method);
    tk_train_ctx_free(tc);
}

static void test_reference(void) {
    ref_stories s;
    if (!ref_stories_open("tests/fixtures/train/stories260k_peft_prefix.safetensors", &s)) return;
    run_ref(s.m, s.mg, s.st, &s.rb, "prefix", false);
    run_ref(s.m, s.mg, s.st, &s.rb, "prefix_proj", true);
    ref_stories_close(&s);
}

static void test_fd(int interleaved, bool proj, bool recompute, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .bias = true, .seed = 31});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_prefix_config cfg = tk_prefix_default_config();
    cfg.num_virtual_tokens = 3;
    cfg.projection = proj;
    cfg.encoder_hidden_size = proj ? 5 : 0;
    cfg.seed = 7;
    tk_train_ctx *tc = prefix_ctx(m, &cfg, 2, 8, recompute);
    if (tc) {
        /* scale the N(0, 1) prefix down so that the loss is smooth at the perturbation size */
        tk_param_set *ps = tk_train_param_set(tc);
        for (int64_t j = 0; j < ps->p[0].n; j++) ps->p[0].w[j] *= 0.5f;
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "prompt_encoder.", 5e-3, what);
        CHECK(n == (proj ? 5 : 1), "%s: %d prefix tensors trained", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* Inference through the seam: scale 0 = base, other scales refused; a session equals the batched
 * forward; the PEFT folder read back gives the same logits; frozen layers and too long a prefix refused. */
static void test_inference(int interleaved) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .seed = 4});
    if (!m) { CHECK(0, "tiny model"); return; }
    const tk_peft_kind *kind = tk_peft_kind_find("prefix");
    tk_param_set ps = {0};
    tk_prefix_config cfg = tk_prefix_default_config();
    cfg.num_virtual_tokens = 3;
    cfg.projection = true;
    tk_peft *a = NULL, *bad = NULL;
    CHECK_ERR(kind->create(m, &cfg, 1, &ps, &bad), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "every layer") != NULL, "frozen layers refused: %s", tk_last_error());
    tk_prefix_config big = cfg;
    big.num_virtual_tokens = 64;
    CHECK_ERR(kind->create(m, &big, 0, &ps, &bad), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "context") != NULL, "a prefix as long as the context refused: %s", tk_last_error());
    CHECK_OK(kind->create(m, &cfg, 0, &ps, &a));
    if (!a) goto done;
    tiny_batch tb;
    tiny_batch_init(&tb, 2);
    float base[16 * 40], off[16 * 40], with[16 * 40];
    tiny_logits(m, NULL, base);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    if (f) {
        tk_adapter_use u = {a, 0.0f};
        CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, off));
        CHECK(!memcmp(base, off, sizeof base), "scale 0 switches the prefix off");
        u.scale = 0.5f;
        CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        CHECK(tk_forward_run(f, &tb.b, NULL, 16, off) != TK_OK && strstr(tk_last_error(), "scale") != NULL,
              "scale 0.5 refused naming the scale: %s", tk_last_error());
        tk_forward_free(f);
    }
    tiny_logits(m, a, with);
    CHECK(max_abs_diff(base, with, 16 * 40) > 1e-2, "the prefix changes the logits");
    /* session: row 1's 6 real tokens, 3 as one prefill chunk then 3 decode steps; vs a 1 x 6 forward */
    tiny_batch one = tb;
    one.b.n_rows = 1;
    one.b.n_cols = 6;
    one.b.ids = one.ids + 8;
    one.b.pos = NULL;
    one.b.seg = NULL;
    float full[6 * 40], lg[40];
    tk_adapter_use u = {a, 1.0f};
    CHECK_OK(tk_forward_new(m, 1, 6, 0, &f));
    if (f) {
        CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        CHECK_OK(tk_forward_run(f, &one.b, NULL, 6, full));
        tk_forward_free(f);
    }
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 16, &s));
    if (s) {
        CHECK_OK(tk_session_set_adapters(s, &u, 1));
        tk_session_set_exact(s, true);
        double d = 0;
        CHECK_OK(tk_session_eval(s, one.b.ids, 3, lg));
        for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[2 * 40 + j]));
        for (int t = 3; t < 6; t++) {
            CHECK_OK(tk_session_eval(s, one.b.ids + t, 1, lg));
            for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[t * 40 + j]));
        }
        CHECK(d < 1e-4, "session decode with the prefix vs batched forward: %.3e", d);
        printf("RoPE %s: session with the prefix vs batched forward: max diff %.2e\n", interleaved ? "pairs" : "halves", d);
        tk_session_free(s);
    }
    roundtrip_check(m, a, interleaved ? "build/tmp_prefix_peft_i" : "build/tmp_prefix_peft_h", "prefix", "prefix (projection)");
    CHECK(a->method->merge_linear == NULL && a->method->save_gguf == NULL, "no merge, no GGUF");
done:
    if (a) kind->destroy(a);
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    (void)merge_check;   /* peft_check.h's linear-method checks: no linears here */
    (void)lin_fd_check;
    tk_set_threads(2);
    test_inference(0);
    test_inference(1);
    test_fd(1, false, false, "prefix, RoPE pairs");
    test_fd(0, true, false, "prefix with projection, RoPE halves");
    test_fd(1, true, true, "prefix with projection, RoPE pairs, recompute");
    test_reference();
    return tk_test_done("test_peft_prefix_method");
}
