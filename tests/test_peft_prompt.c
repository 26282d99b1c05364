/* Prompt tuning as a PEFT method (src/peft/prompt.c, the registry's "prompt" kind) and the
 * model's virtual tokens behind the embed_prefix seam (src/model/vtoks.c):
 * - virtual tokens are tokens: with the soft prompt initialised from ids (PEFT's TEXT init, the
 *   ids repeated), the logits of a sequence equal those of the base model on ids + sequence at
 *   positions P.. (what HF PEFT computes), also for a packed row (each segment sees them);
 * - gradients of the soft prompt against central finite differences through the whole tiny model
 *   (packed and padded rows, both RoPE layouts, also with recomputation);
 * - a session (prefill + decode over the KV cache) equals the batched forward, and follows a
 *   change of the soft prompt; generate_batch's many-cache forward too;
 * - the PEFT folder written and read back gives the same logits; no merge, no GGUF;
 * - scale 0 is the base model, another scale than 1 is refused, frozen layers, a prompt as long as
 *   the context and two prompt adapters at once are refused;
 * - against PyTorch + HF PEFT (tools/make_peft_prompt_reference.py): on stories260K from PEFT's
 *   RANDOM and TEXT initialisation, the same initial prompt (TEXT), loss, logits and gradients
 *   within the SFT tests' tolerances and the same 10-step AdamW loss curve; the GGUF container
 *   (interleaved RoPE) gives the same logits; on SmolLM2-135M (Q4_1, models/), PEFT's TEXT init
 *   through the real tokenizer gives the same ids and rows, then the same loss, logits, gradient
 *   and loss curve (3 steps; 1 under ASan; all 10 with --full). */
#include "test.h"
#include "train_ref.h"
#include "fd_check.h"
#include "peft_check.h"
#include "peft/prompt.h"
#include "peft/registry.h"
#include "model/llama.h"
#include <unistd.h>

static tk_train_ctx *prompt_ctx(tk_model *m, const tk_prompt_config *cfg, int32_t rows, int32_t cols, bool recompute) {
    tk_train_params p = tk_train_default_params();
    p.peft_kind = tk_peft_kind_find("prompt");
    p.peft_cfg = cfg;
    p.max_rows = rows;
    p.max_cols = cols;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    return tc;
}

/* logits[n x V] of a 1-row batch (ids, positions pos or NULL) with adapter p (NULL: the base). */
static void row_logits(tk_model *m, const tk_peft *p, const int32_t *ids, const int32_t *pos, const int32_t *seg, int32_t n, float *out) {
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 1, n, 0, &f));
    tk_adapter_use u = {p, 1.0f};
    if (f && p) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
    tk_batch b = {.n_rows = 1, .n_cols = n, .ids = ids, .pos = pos, .seg = seg};
    if (f) CHECK_OK(tk_forward_run(f, &b, NULL, n, out));
    tk_forward_free(f);
}

/* The soft prompt from ids (TEXT init) = those ids as real tokens in front of the sequence. */
static void test_tokens(int interleaved) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .seed = 12});
    if (!m) { CHECK(0, "tiny model"); return; }
    const tk_peft_kind *kind = tk_peft_kind_find("prompt");
    tk_param_set ps = {0};
    const int32_t init[3] = {7, 21, 3};
    tk_prompt_config cfg = tk_prompt_default_config();
    cfg.num_virtual_tokens = 5; /* 7 21 3 7 21: PEFT repeats the text's ids and cuts them to P */
    cfg.init_ids = init;
    cfg.n_init_ids = 3;
    tk_peft *a = NULL;
    CHECK_OK(kind->create(m, &cfg, 0, &ps, &a));
    if (!a) goto done;
    const int32_t seq[6] = {4, 9, 33, 12, 0, 25};
    int32_t both[11], pos[11];
    for (int i = 0; i < 5; i++) both[i] = init[i % 3];
    for (int i = 0; i < 6; i++) both[5 + i] = seq[i];
    float ref[11 * 40], got[12 * 40];
    row_logits(m, NULL, both, NULL, NULL, 11, ref);
    row_logits(m, a, seq, NULL, NULL, 6, got);
    double d = max_abs_diff(got, ref + 5 * 40, 6 * 40);
    printf("RoPE %s: soft prompt from ids vs the ids as tokens: max abs logit diff %.2e\n", interleaved ? "pairs" : "halves", d);
    CHECK(d < 2e-5, "virtual tokens = real tokens in front (%.3e)", d);
    /* a packed row of two segments: each sees the virtual tokens as if alone */
    int32_t packed[12] = {4, 9, 33, 12, 0, 25, 17, 2, 30, 5, 11, 8};
    int32_t ppos[12], pseg[12];
    for (int i = 0; i < 12; i++) { ppos[i] = i < 6 ? i : i - 6; pseg[i] = i < 6 ? 0 : 1; }
    row_logits(m, a, packed, ppos, pseg, 12, got);
    for (int i = 0; i < 6; i++) both[5 + i] = packed[6 + i];
    for (int i = 0; i < 11; i++) pos[i] = i;
    row_logits(m, NULL, both, pos, NULL, 11, ref);
    double d2 = max_abs_diff(got + 6 * 40, ref + 5 * 40, 6 * 40);
    printf("RoPE %s: second packed segment vs the ids as tokens: max abs logit diff %.2e\n", interleaved ? "pairs" : "halves", d2);
    CHECK(d2 < 2e-5, "packed segment sees its own virtual tokens (%.3e)", d2);
    kind->destroy(a);
done:
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_fd(int interleaved, bool recompute, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .bias = true, .seed = 31});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_prompt_config cfg = tk_prompt_default_config();
    cfg.num_virtual_tokens = 3;
    cfg.seed = 7;
    tk_train_ctx *tc = prompt_ctx(m, &cfg, 2, 8, recompute);
    if (tc) {
        /* scale the N(0, 1) prompt down to the embeddings' size: the loss is smooth at the perturbation size */
        tk_param_set *ps = tk_train_param_set(tc);
        for (int64_t j = 0; j < ps->p[0].n; j++) ps->p[0].w[j] *= 0.5f;
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "prompt_encoder.", 5e-3, what);
        CHECK(n == 1, "%s: %d prompt tensors trained", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* Inference through the seam: scale 0 = base, other scales refused; a session equals the batched
 * forward and follows a change of the prompt; the PEFT folder read back; refusals. */
static void test_inference(int interleaved) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .seed = 4});
    if (!m) { CHECK(0, "tiny model"); return; }
    const tk_peft_kind *kind = tk_peft_kind_find("prompt");
    tk_param_set ps = {0};
    tk_prompt_config cfg = tk_prompt_default_config();
    cfg.num_virtual_tokens = 3;
    tk_peft *a = NULL, *bad = NULL, *a2 = NULL;
    CHECK_ERR(kind->create(m, &cfg, 1, &ps, &bad), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "every layer") != NULL, "frozen layers refused: %s", tk_last_error());
    tk_prompt_config big = cfg;
    big.num_virtual_tokens = 64;
    CHECK_ERR(kind->create(m, &big, 0, &ps, &bad), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "context") != NULL, "a prompt as long as the context refused: %s", tk_last_error());
    CHECK_OK(kind->create(m, &cfg, 0, &ps, &a));
    CHECK_OK(kind->create(m, &cfg, 0, &ps, &a2));
    if (!a || !a2) goto done;
    for (int64_t j = 0; j < ps.p[0].n; j++) ps.p[0].w[j] *= 0.5f;
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
        CHECK(!memcmp(base, off, sizeof base), "scale 0 switches the prompt off");
        u.scale = 0.5f;
        CHECK(tk_forward_set_adapters(f, &u, 1) != TK_OK && strstr(tk_last_error(), "scale") != NULL,
              "scale 0.5 refused naming the scale: %s", tk_last_error());
        tk_adapter_use two[2] = {{a, 1.0f}, {a2, 1.0f}};
        CHECK(tk_forward_set_adapters(f, two, 2) != TK_OK && strstr(tk_last_error(), "one prompt-tuning adapter") != NULL,
              "two prompt adapters refused: %s", tk_last_error());
        tk_forward_free(f);
    }
    tiny_logits(m, a, with);
    CHECK(max_abs_diff(base, with, 16 * 40) > 1e-2, "the prompt changes the logits");
    /* session: row 1's 6 real tokens, 3 as one prefill chunk then 3 decode steps; vs a 1 x 6 forward */
    const int32_t *ids = tb.ids + 8;
    float full[6 * 40], lg[40];
    row_logits(m, a, ids, NULL, NULL, 6, full);
    tk_adapter_use u = {a, 1.0f};
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 16, &s));
    if (s) {
        CHECK_OK(tk_session_set_adapters(s, &u, 1));
        tk_session_set_exact(s, true);
        double d = 0;
        CHECK_OK(tk_session_eval(s, ids, 3, lg));
        for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[2 * 40 + j]));
        for (int t = 3; t < 6; t++) {
            CHECK_OK(tk_session_eval(s, ids + t, 1, lg));
            for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[t * 40 + j]));
        }
        CHECK(tk_session_n_past(s) == 6, "the session holds the 6 real tokens (%d): the virtual ones are not in its cache",
              tk_session_n_past(s));
        CHECK(d < 1e-4, "session decode with the prompt vs batched forward: %.3e", d);
        printf("RoPE %s: session with the prompt vs batched forward: max diff %.2e\n", interleaved ? "pairs" : "halves", d);
        /* the prompt changes (as after a training step): the same session recomputes the virtual tokens */
        for (int64_t j = 0; j < ps.p[0].n; j++) ps.p[0].w[j] = -ps.p[0].w[j];
        row_logits(m, a, ids, NULL, NULL, 6, full);
        tk_session_truncate(s, 0);
        CHECK_OK(tk_session_eval(s, ids, 6, lg));
        d = 0;
        for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[5 * 40 + j]));
        CHECK(d < 1e-4, "a session follows a changed prompt: %.3e", d);
        tk_session_free(s);
    }
    /* many sequences, one KV cache each (generate_batch's forward, rows computed row-wise): each row
     * equals a session decoding the same tokens one at a time, bit for bit */
    float one[6 * 40];
    CHECK_OK(tk_session_new(m, 16, &s));
    if (s) {
        CHECK_OK(tk_session_set_adapters(s, &u, 1));
        tk_session_set_exact(s, true);
        for (int t = 0; t < 6; t++) CHECK_OK(tk_session_eval(s, ids + t, 1, one + t * 40));
        tk_session_free(s);
    }
    tk_acts wa;
    CHECK_OK(tk_acts_init(&wa, m, 2, 1, 0));
    CHECK_OK(tk_acts_set_adapters(&wa, &u, 1));
    wa.mm_flags = TK_MATMUL_EXACT | TK_MATMUL_ROWWISE;
    tk_kv_cache kv[2];
    float lg2[2 * 40];
    for (int r = 0; r < 2; r++) { tk_kv_init(&kv[r], m, 8); CHECK_OK(tk_kv_reserve(&kv[r], 8)); }
    tk_kv_cache *kvs[2] = {&kv[0], &kv[1]};
    bool same = true;
    for (int t = 0; t < 6; t++) {
        int32_t step[2] = {ids[t], ids[t]};
        tk_batch b = {.n_rows = 2, .n_cols = 1, .ids = step};
        CHECK_OK(tk_llama_forward_kvs(m, &wa, &b, kvs, NULL, 2, lg2));
        same = same && !memcmp(lg2, one + t * 40, sizeof(float) * 40) && !memcmp(lg2 + 40, one + t * 40, sizeof(float) * 40);
    }
    CHECK(same, "batched decode over two caches with the prompt equals one-sequence decode bit for bit");
    for (int r = 0; r < 2; r++) tk_kv_free(&kv[r]);
    tk_acts_free(&wa);
    roundtrip_check(m, a, interleaved ? "build/tmp_prompt_peft_i" : "build/tmp_prompt_peft_h", "prompt", "prompt");
    CHECK(a->method->merge_linear == NULL && a->method->save_gguf == NULL, "no merge, no GGUF");
done:
    if (a) kind->destroy(a);
    if (a2) kind->destroy(a2);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void run_ref(tk_model *m, tk_model *mg, const tk_safetensors *st, ref_batch *rb, const char *method, bool text) {
    static const int32_t init[5] = {1, 403, 407, 261, 378}; /* "Once upon a time" with BOS, as the fixture's tokenizer gives */
    tk_prompt_config cfg = tk_prompt_default_config();
    cfg.num_virtual_tokens = text ? 8 : 4;
    if (text) { cfg.init_ids = init; cfg.n_init_ids = 5; }
    tk_train_ctx *tc = prompt_ctx(m, &cfg, rb->B, rb->T, false);
    if (!tc) return;
    tk_param_set *ps = tk_train_param_set(tc);
    char key[256];
    if (text && ps->n == 1) { /* PEFT's TEXT init: the same rows */
        snprintf(key, sizeof key, "%s.init.%s", method, ps->p[0].name);
        const float *v = fx_f32(st, key, ps->p[0].n);
        CHECK(v && !memcmp(v, ps->p[0].w, (size_t)ps->p[0].n * sizeof(float)), "%s: TEXT init equals PEFT's", method);
    }
    CHECK(ps->n == 1 && ref_load_init(ps, st, method) == 1, "%s: one parameter, initialised from the fixture", method);
    snprintf(key, sizeof key, "%s.saved", method); /* PEFT saves the embedding itself */
    const float *sv = ps->n == 1 ? fx_f32(st, key, ps->p[0].n) : NULL;
    CHECK(sv && !memcmp(sv, ps->p[0].w, (size_t)ps->p[0].n * sizeof(float)), "%s: PEFT's prompt_embeddings are the parameter", method);
    ref_check_method(tc, st, rb, method, method);
    if (mg) ref_check_container(prompt_ctx(mg, &cfg, rb->B, rb->T, false), st, rb, method, "GGUF container (interleaved RoPE)");
    ref_check_curve(tc, st, rb, method, method);
    tk_train_ctx_free(tc);
}

static void test_reference(void) {
    ref_stories s;
    if (!ref_stories_open("tests/fixtures/train/stories260k_peft_prompt.safetensors", &s)) return;
    run_ref(s.m, s.mg, s.st, &s.rb, "prompt", false);
    run_ref(s.m, s.mg, s.st, &s.rb, "prompt_text", true);
    ref_stories_close(&s);
}

static bool g_full = false; /* --full: SmolLM2's whole 10-step curve */

static void test_smollm2(void) {
    const char *mp = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (tk_test_require(access(mp, F_OK) == 0 ? mp : NULL, mp)) return;
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/smollm2_peft_prompt.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(mp, &mpar, &m));
    ref_batch rb;
    const tk_tensor_ref *fid = st ? tk_st_find(st, "prompt_text.init_ids") : NULL;
    const char *text = st ? tk_st_metadata(st, "init_text") : NULL;
    if (!m || !st || !fid || !text || !load_batch(st, &rb)) { CHECK(0, "SmolLM2 prompt fixture"); goto done; }
    /* the init text's ids as HF's tokenizer gives them (special tokens added as HF adds them) */
    tk_ivec ids = {0};
    CHECK_OK(tk_tokenize(tk_model_tokenizer(m), text, strlen(text), TK_TOK_ADD_SPECIAL, &ids));
    int64_t nf = tk_tensor_nelems(fid);
    CHECK(ids.len == (size_t)nf && !memcmp(ids.data, fid->data, (size_t)nf * sizeof(int32_t)), "SmolLM2: init text ids (%zu vs %lld)",
          ids.len, (long long)nf);
    tk_prompt_config cfg = tk_prompt_default_config();
    cfg.num_virtual_tokens = 12;
    cfg.init_ids = ids.data;
    cfg.n_init_ids = (int32_t)ids.len;
    tk_train_ctx *tc = prompt_ctx(m, &cfg, rb.B, rb.T, false);
    tk_ivec_free(&ids);
    if (!tc) goto done;
    tk_param_set *ps = tk_train_param_set(tc);
    const float *init = fx_f32(st, "prompt_text.init.prompt_encoder.embedding.weight", ps->p[0].n);
    double d = init ? rel_err(ps->p[0].w, init, 1, ps->p[0].n, 1) : 1;
    printf("SmolLM2 prompt: TEXT init rows vs PEFT's (Q4_1 dequantized both sides): max rel diff %.2e\n", d);
    CHECK(d <= 1e-6, "SmolLM2: TEXT init differs from PEFT's (%.3e)", d);
    ref_load_init(ps, st, "prompt_text");
    double loss = mean_loss_grads(tc, &rb), ref = meta_num(st, "prompt_text_loss");
    printf("SmolLM2 prompt (Q4_1 base): loss %.7f (torch %.7f)\n", loss, ref);
    CHECK_NEAR(loss, ref, 1e-4 * ref);
    check_logits_key(tc, st, "prompt_text.logits", &rb, 64, 1e-4, "SmolLM2 prompt");
    const float *g = fx_f32(st, "prompt_text.grad.prompt_encoder.embedding.weight", ps->p[0].n);
    double e = g ? rel_err(ps->p[0].g, g, 1, ps->p[0].n, 1) : 1;
    printf("  SmolLM2 prompt gradient: max rel err %.2e\n", e);
    CHECK(e <= 1e-4, "SmolLM2 prompt gradient: max rel err %.3e", e);
    double rl[32], gl[32];
    int n = meta_list(st, "prompt_text_losses", rl, 32);
    if (n > 1) {
        /* 3 steps in the suite (1 under ASan, where a SmolLM2 step is ~10x slower); all 10 with --full
         * (recorded 2026-12-07: max rel diff 7.3e-06 over the 10 steps) */
        int steps = g_full ? n - 1 : UNDER_ASAN ? 1 : 3;
        ref_load_init(ps, st, "prompt_text");
        run_steps(tc, &rb, st, steps, gl);
        check_curve(gl, rl, steps + 1, 1e-3, "SmolLM2 prompt");
    }
    tk_train_ctx_free(tc);
done:
    tk_model_free(m);
    tk_st_close(st);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) g_verbose = 1;
        if (!strcmp(argv[i], "--full")) g_full = true;
    }
    (void)merge_check;   /* peft_check.h's linear-method checks: no linears here */
    (void)lin_fd_check;
    tk_set_threads(2);
    test_tokens(0);
    test_tokens(1);
    test_inference(0);
    test_inference(1);
    test_fd(1, false, "prompt, RoPE pairs");
    test_fd(0, false, "prompt, RoPE halves");
    test_fd(1, true, "prompt, RoPE pairs, recompute");
    test_reference();
    test_smollm2();
    return tk_test_done("test_peft_prompt");
}
