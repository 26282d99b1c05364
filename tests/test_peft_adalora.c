/* AdaLoRA (src/peft/adalora.h) on the tiny Llama and against PEFT on stories260K:
 * - PEFT's initialisation (E = 0) leaves the logits bit-identical; one linear's backward (with
 *   dropout) and the whole model's (also with recompute) against central finite differences; the
 *   orthogonal regularization's gradient against finite differences of its value;
 * - the budget schedule (PEFT's budget_schedule), masking to a budget, the final pattern re-applied;
 * - merging equals applying; the PEFT folder (rank_pattern, triplets cut to the kept ones, a module
 *   with none kept) reads back as "adalora" with the same logits, q/k rows permuted and back; the
 *   GGUF adapter is the equivalent plain LoRA (reads back as "lora", same logits);
 * - against PyTorch + PEFT 0.21 (tools/make_adalora_reference.py): same loss (penalty included),
 *   logits and every gradient from the same initialisation, and the same 10-step loss curve with
 *   the rank allocator masking at the same steps the same triplets;
 * - options: --lora-r / --adalora-* refused where they do not apply, a schedule without a budgeting phase. */
#include "test.h"
#include "tiny_llama.h"
#include "fd_check.h"
#include "peft_check.h"
#include "adalora_ref.h"
#include "train/trainer.h"
#include <unistd.h>

static void perturb_e(tk_param_set *ps, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++)
            if (strstr(ps->p[i].name, "lora_E")) ps->p[i].w[j] = 0.5f * tk_rng_normal(&rng);
            else ps->p[i].w[j] *= 10.0f;   /* A, B ~ N(0, 0.2^2): products well above rounding */
}

static tk_adalora_config small_cfg(uint32_t targets, float dropout) {
    tk_adalora_config c = tk_adalora_default_config();
    c.init_r = 4;
    c.target_r = 2;
    c.total_step = 10;
    c.targets = targets;
    c.dropout = dropout;
    c.seed = 3;
    return c;
}

typedef struct reg_ctx { tk_adalora *a; } reg_ctx;
static double reg_value(void *ctx) {
    double v = 0;
    CHECK_OK(tk_adalora_orth_reg(((reg_ctx *)ctx)->a, false, &v));
    return v;
}

static void test_linear_and_reg(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 5});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_adalora_config c = small_cfg(0, 0.3f);
    tk_adalora *a = NULL;
    CHECK_OK(tk_adalora_new(m, &c, &ps, &a));
    if (a) {
        float x[16 * 40], y[16 * 40];
        tiny_logits(m, NULL, x);
        tiny_logits(m, tk_adalora_peft(a), y);
        CHECK(!memcmp(x, y, sizeof x), "PEFT's initialisation (E = 0) leaves the logits bit-identical");
        CHECK(ps.n == 2 * 7 * 3, "A, E, B on every linear: %lld tensors", (long long)ps.n);
        tk_param *A, *E, *B;
        CHECK(tk_adalora_module(a, 0, TK_LIN_K, &A, &E, &B) && A->ne[0] == 16 && A->ne[1] == 4 && E->ne[0] == 1 && E->ne[1] == 4 &&
              B->ne[0] == 4 && B->ne[1] == 8, "PEFT's shapes A [r, in], E [r, 1], B [out, r]");
        CHECK_NEAR(tk_adalora_scale(a), 8.0 / (4 + 1e-5), 1e-6);
        perturb_e(&ps, 3);
        lin_fd_check(tk_adalora_peft(a), &ps, m, 0, TK_LIN_K, NULL, "AdaLoRA linear (dropout 0.3)");
        lin_fd_check(tk_adalora_peft(a), &ps, m, 1, TK_LIN_DOWN, NULL, "AdaLoRA linear (down)");
        tk_params_zero_grad(&ps);
        double v = 0;
        CHECK_OK(tk_adalora_orth_reg(a, true, &v));
        /* A and B only (the penalty does not see E): a view on their weights holding their gradients */
        tk_param_set view = {0};
        for (int64_t i = 0; i < ps.n; i++) {
            tk_param *q;
            if (strstr(ps.p[i].name, "lora_E") || tk_params_add(&view, ps.p[i].name, ps.p[i].n_dims, ps.p[i].ne, ps.p[i].w, true, &q)) continue;
            memcpy(q->g, ps.p[i].g, (size_t)q->n * sizeof(float));
        }
        reg_ctx rc = {a};
        fd_opts o = {.eps = 1e-3f, .max_per = 16, .tol = 2e-3};
        double worst = fd_check(&view, reg_value, &rc, &o, "orth reg", NULL);
        printf("orthogonal regularization %.5f: gradient of %lld tensors (A, B), worst FD ratio %.2e\n", v, (long long)view.n, worst);
        CHECK(view.n == 2 * 7 * 2, "every A and B checked");
        tk_params_free(&view);
    }
    tk_adalora_free(a);
    tk_params_free(&ps);
    c.total_step = 5;
    c.tinit = 3;
    c.tfinal = 2;
    CHECK_ERR(tk_adalora_new(m, &c, &ps, &a), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "budgeting phase"), "message: %s", tk_last_error());
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_model(bool recompute, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 31});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_ADALORA;
    tk_adalora_config c = small_cfg(1u << TK_LIN_Q | 1u << TK_LIN_V | 1u << TK_LIN_DOWN, 0);
    p.peft_cfg = &c;
    p.max_rows = 2;
    p.max_cols = 8;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        perturb_e(tk_train_param_set(tc), 4);
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "base_model.", 5e-3, what);
        CHECK(n == 2 * 3 * 3, "%s: %d AdaLoRA tensors checked", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* PEFT's budget_schedule for the fixture's setting (35 modules, init 4, target 2, tinit 2, tfinal 3, deltaT 2, 10 steps). */
static void test_schedule(void) {
    tk_adalora_config c = tk_adalora_default_config();
    c.init_r = 4; c.target_r = 2; c.tinit = 2; c.tfinal = 3; c.delta_t = 2; c.total_step = 10;
    const int64_t budget[10] = {140, 140, 140, 105, 85, 74, 70, 70, 70, 70};
    const bool mask[10] = {0, 0, 0, 0, 1, 0, 1, 0, 1, 1};
    bool ok = true;
    for (int s = 0; s < 10; s++) {
        bool mk;
        int64_t b = tk_adalora_budget(&c, 35, s, &mk);
        ok &= b == budget[s] && mk == mask[s];
        if (b != budget[s] || mk != mask[s]) printf("  step %d: budget %lld mask %d\n", s, (long long)b, mk);
    }
    CHECK(ok, "the cubic budget schedule and its masking steps are PEFT's");
}

static void test_files(int interleaved) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .seed = 8});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_adalora_config c = small_cfg(1u << TK_LIN_Q | 1u << TK_LIN_K | 1u << TK_LIN_V | 1u << TK_LIN_DOWN, 0);
    tk_adalora *a = NULL;
    CHECK_OK(tk_adalora_new(m, &c, &ps, &a));
    if (a) {
        perturb_e(&ps, 9);
        const tk_peft *p = tk_adalora_peft(a);
        merge_check(m, p, 1e-5, interleaved ? "AdaLoRA merge (permuted q/k)" : "AdaLoRA merge");
        /* a pattern: layer 0 q keeps triplets 1 and 3, layer 1 v keeps none */
        float *kq = tk_adalora_keep(a, 0, TK_LIN_Q), *kv = tk_adalora_keep(a, 1, TK_LIN_V);
        tk_param *Eq, *Ev;
        tk_adalora_module(a, 0, TK_LIN_Q, NULL, &Eq, NULL);
        tk_adalora_module(a, 1, TK_LIN_V, NULL, &Ev, NULL);
        kq[0] = kq[2] = 0;
        Eq->w[0] = Eq->w[2] = 0;
        memset(kv, 0, 4 * sizeof(float));
        memset(Ev->w, 0, 4 * sizeof(float));
        tk_adalora_set_has_pattern(a, true);
        char dir[] = "/tmp/takumi_adalora_XXXXXX", path[160], cmd[300];
        CHECK(mkdtemp(dir) != NULL, "temp dir");
        roundtrip_check(m, p, dir, "adalora", interleaved ? "AdaLoRA folder (permuted q/k)" : "AdaLoRA folder");
        tk_safetensors *sf = NULL;
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        CHECK_OK(tk_st_open(path, &sf));
        const tk_tensor_ref *t = sf ? tk_st_find(sf, "base_model.model.model.layers.0.self_attn.q_proj.lora_A") : NULL;
        CHECK(t && t->ne[1] == 2, "q_proj's lora_A holds the 2 kept triplets");
        t = sf ? tk_st_find(sf, "base_model.model.model.layers.1.self_attn.v_proj.lora_B") : NULL;
        CHECK(t && t->ne[0] == 0 && t->ne[1] == 8, "v_proj's lora_B is [8, 0] (no triplet kept)");
        tk_st_close(sf);
        /* the GGUF adapter: the plain LoRA B, E ⊙ A of rank init_r */
        snprintf(path, sizeof path, "%s/a.gguf", dir);
        CHECK_OK(p->method->save_gguf(p->state, m, path));
        tk_adapter *ad = NULL;
        CHECK_OK(tk_adapter_load(path, &ad));
        if (ad) {
            CHECK(!strcmp(tk_adapter_get_info(ad).method, "lora"), "the GGUF adapter reads as LoRA");
            tk_param_set ps2 = {0};
            tk_peft *q = NULL;
            CHECK_OK(tk_adapter_attach_peft(ad, m, &ps2, &q));
            float x[16 * 40], y[16 * 40];
            tiny_logits(m, p, x);
            if (q) {
                tiny_logits(m, q, y);
                double d = max_abs_diff(x, y, 16 * 40);
                printf("AdaLoRA as a GGUF LoRA: max abs logit diff %.2e\n", d);
                CHECK(d <= 1e-5, "the GGUF LoRA gives AdaLoRA's logits (%.3e)", d);
                ad->kind->destroy(q);
            }
            tk_params_free(&ps2);
            tk_adapter_free(ad);
        }
        /* a rank_pattern that disagrees with the tensors */
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        const char *bad = "{\"peft_type\": \"ADALORA\", \"init_r\": 4, \"total_step\": 10, \"target_modules\": [\"q_proj\", \"k_proj\", "
                          "\"v_proj\", \"down_proj\"], \"rank_pattern\": {\"model.layers.0.self_attn.q_proj.lora_E\": [true, true, true, true]}}";
        CHECK_OK(tk_write_file_atomic(path, bad, strlen(bad)));
        CHECK_ERR(tk_adapter_load(dir, &ad), TK_ERR_FORMAT);
        CHECK(strstr(tk_last_error(), "rank_pattern"), "message: %s", tk_last_error());
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    tk_adalora_free(a);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_options(void) {
    tk_trainer_config c = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_set(&c, "method", "adalora"));
    CHECK_OK(tk_trainer_config_set(&c, "adalora-target-r", "4"));
    CHECK_OK(tk_trainer_config_check_method(&c));
    CHECK_OK(tk_trainer_config_set(&c, "lora-r", "16"));
    CHECK_ERR(tk_trainer_config_check_method(&c), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "--lora-r") && strstr(tk_last_error(), "adalora"), "message: %s", tk_last_error());
    tk_trainer_config d = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_set(&d, "adalora-tinit", "3"));
    CHECK_ERR(tk_trainer_config_check_method(&d), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "--adalora-tinit") && strstr(tk_last_error(), "lora"), "message: %s", tk_last_error());
    tk_trainer_config_free(&c);
    tk_trainer_config_free(&d);
}

/* ---- against PEFT on stories260K ------------------------------------------------------------- */

static void test_reference(void) {
    ref_stories s;
    if (!ref_stories_open("tests/fixtures/train/stories260k_adalora.safetensors", &s)) return;
    tk_adalora_config c = adalora_ref_config(s.st);
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_ADALORA;
    p.peft_cfg = &c;
    p.max_rows = s.rb.B;
    p.max_cols = s.rb.T;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(s.m, &p, &tc));
    if (!tc) { ref_stories_close(&s); return; }
    tk_param_set *ps = tk_train_param_set(tc);
    CHECK(ps->n == 35 * 3 && ref_load_init(ps, s.st, "adalora") == ps->n, "%lld parameters, all initialised from the fixture", (long long)ps->n);
    /* loss (cross-entropy + penalty), logits, gradients */
    double ce = mean_loss_grads(tc, &s.rb), reg = 0;
    CHECK_OK(tk_train_reg_loss(tc, true, &reg));
    double ref = meta_num(s.st, "adalora_loss"), rreg = meta_num(s.st, "adalora_reg");
    printf("stories260K AdaLoRA: loss %.7f = %.7f + penalty %.7f (torch %.7f, penalty %.7f)\n", ce + reg, ce, reg, ref, rreg);
    CHECK_NEAR(ce + reg, ref, 1e-5 * ref);
    CHECK_NEAR(reg, rreg, 1e-5 * rreg);
    check_logits_key(tc, s.st, "adalora.logits", &s.rb, 64, 1e-5, "AdaLoRA");
    double worst = 0;
    char name[256];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "adalora.grad.%s", ps->p[i].name);
        const float *g = fx_f32(s.st, name, ps->p[i].n);
        if (!g) continue;
        double e = rel_err(ps->p[i].g, g, 1, ps->p[i].n, 1);
        CHECK(e <= 1e-4, "AdaLoRA gradient %s: max rel err %.3e", ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    printf("  every AdaLoRA gradient (%lld tensors, penalty included): max rel err %.2e\n", (long long)ps->n, worst);
    /* the 10-step curve with the rank allocator, as PEFT's loop: step, update_and_allocate(step), zero_grad */
    ref_load_init(ps, s.st, "adalora");
    adalora_ref_steps(tc, s.st, &s.rb, &c, 5, (1u << TK_LIN_COUNT) - 1, "adalora_losses", "adalora.keep", 1e-3, "AdaLoRA (rank allocator active)");
    tk_train_ctx_free(tc);
    ref_stories_close(&s);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(1);
    test_linear_and_reg();
    test_model(false, "AdaLoRA whole model");
    test_model(true, "AdaLoRA whole model, recompute");
    test_schedule();
    test_files(0);
    test_files(1);
    test_options();
    tk_set_threads(2);
    test_reference();
    return tk_test_done("test_peft_adalora");
}
