/* LoRA+ (--lora-plus-ratio) and the gaussian LoRA initialisation (--lora-init gaussian):
 * the per-tensor learning-rate multiplier gives a tensor exactly the update of plain AdamW
 * at lr x ratio; a 3-step stories260K LoRA+ curve matches PyTorch + PEFT's
 * create_loraplus_optimizer (tools/make_loraplus_reference.py); gaussian A has mean 0 and std
 * 1/r, B is zero and training runs; the options are refused with --method full / ia3. */
#include "test.h"
#include "train_ref.h"
#include "train/trainer.h"

/* A toy set {A, B} with fixed gradients; B's lr_mult = mult. */
static void toy_set(tk_param_set *s, float mult) {
    int64_t ne[2] = {3, 5};
    tk_param *p;
    CHECK_OK(tk_params_add(s, "A", 2, ne, NULL, true, &p));
    CHECK_OK(tk_params_add(s, "B", 2, ne, NULL, true, &p));
    p->lr_mult = mult;
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t j = 0; j < s->p[i].n; j++) s->p[i].w[j] = 0.1f * (float)(j % 7) - 0.2f * (float)i;
}

static void toy_grads(tk_param_set *s, int step) {
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t j = 0; j < s->p[i].n; j++) s->p[i].g[j] = sinf((float)(j + 3 * i + 11 * step)) * (1.5f + (float)i);
}

static void optimizer_seam(void) {
    const float ratio = 16.0f;
    tk_param_set plus = {0}, plain = {0}, fast = {0};
    toy_set(&plus, ratio);
    toy_set(&plain, 1.0f);
    toy_set(&fast, 1.0f);
    CHECK(plain.p[1].lr_mult == 1.0f, "default lr_mult %g", (double)plain.p[1].lr_mult);
    tk_adamw o = tk_adamw_default();
    o.lr = 1.0f / 1024; /* powers of two: lr x ratio is exact in float */
    o.weight_decay = 0.1f;
    o.sched = TK_SCHED_CONSTANT;
    o.clip = 0.5f; /* clipping over the whole set, as PEFT's clip_grad_norm_ over every group */
    tk_adamw of = o;
    of.lr = o.lr * ratio;
    float b0[15];
    memcpy(b0, plain.p[1].w, sizeof b0);
    for (int s = 0; s < 3; s++) {
        toy_grads(&plus, s); toy_grads(&plain, s); toy_grads(&fast, s);
        tk_adamw_step(&o, &plus, s, NULL);
        tk_adamw_step(&o, &plain, s, NULL);
        tk_adamw_step(&of, &fast, s, NULL);
    }
    /* A learns at lr, B exactly as plain AdamW at lr x ratio */
    CHECK(!memcmp(plus.p[0].w, plain.p[0].w, 15 * sizeof(float)), "LoRA+ A differs from plain AdamW");
    CHECK(!memcmp(plus.p[1].w, fast.p[1].w, 15 * sizeof(float)), "LoRA+ B differs from AdamW at lr x ratio");
    CHECK(!memcmp(plus.p[1].m, plain.p[1].m, 15 * sizeof(float)), "LoRA+ changed the moments");
    /* first step without decay interplay: B's update is ratio x the plain update */
    tk_param_set a = {0}, b = {0};
    toy_set(&a, ratio);
    toy_set(&b, 1.0f);
    toy_grads(&a, 0); toy_grads(&b, 0);
    o.weight_decay = 0;
    tk_adamw_step(&o, &a, 0, NULL);
    tk_adamw_step(&o, &b, 0, NULL);
    double worst = 0;
    for (int j = 0; j < 15; j++) {
        double da = a.p[1].w[j] - b0[j], db = b.p[1].w[j] - b0[j];
        worst = fmax(worst, fabs(da - ratio * db) / fmax(fabs(ratio * db), 1e-12));
    }
    CHECK(worst < 1e-5, "B update is not %g x the plain one (rel %.2e)", (double)ratio, worst);
    tk_params_free(&plus); tk_params_free(&plain); tk_params_free(&fast); tk_params_free(&a); tk_params_free(&b);
}

static void load_init(tk_param_set *ps, const tk_safetensors *st) {
    char name[200];
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "init.%s", ps->p[i].name);
        const float *v = fx_f32(st, name, ps->p[i].n);
        if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
    }
}

static void loraplus_curve(tk_model *m, const tk_safetensors *st, ref_batch *rb) {
    double rl[8], gl[8], pl[8];
    int n = meta_list(st, "losses", rl, 8);
    CHECK(n == (int)meta_num(st, "steps") + 1 && n > 1, "losses count %d", n);
    if (n <= 1) return;
    tk_train_ctx *tc = ref_lora_ctx(m, rb, TK_LORA_INIT_KAIMING, false, (float)meta_num(st, "ratio"));
    if (!tc) return;
    tk_param_set *ps = tk_train_param_set(tc);
    int nb = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        bool isb = strstr(ps->p[i].name, "lora_B") != NULL;
        nb += isb;
        CHECK(ps->p[i].lr_mult == (isb ? (float)meta_num(st, "ratio") : 1.0f), "%s: lr_mult %g", ps->p[i].name, (double)ps->p[i].lr_mult);
    }
    CHECK(nb == 5 * 7, "%d B matrices", nb);
    load_init(ps, st);
    run_steps(tc, rb, st, n - 1, gl);
    check_curve(gl, rl, n, 1e-3, "stories260K LoRA+");
    tk_train_ctx_free(tc);
    /* the ratio matters: plain LoRA from the same start ends elsewhere */
    tc = ref_lora_ctx(m, rb, TK_LORA_INIT_KAIMING, false, 0);
    if (!tc) return;
    load_init(tk_train_param_set(tc), st);
    run_steps(tc, rb, st, n - 1, pl);
    printf("  plain LoRA from the same start: final loss %.5f (LoRA+ %.5f)\n", pl[n - 1], gl[n - 1]);
    CHECK(fabs(pl[n - 1] - rl[n - 1]) > 0.1 * rl[n - 1], "plain LoRA matches the LoRA+ curve: the ratio had no effect");
    tk_train_ctx_free(tc);
}

static void gaussian_init(tk_model *m, const tk_safetensors *st, ref_batch *rb) {
    tk_train_ctx *tc = ref_lora_ctx(m, rb, TK_LORA_INIT_GAUSSIAN, false, 0);
    if (!tc) return;
    tk_param_set *ps = tk_train_param_set(tc);
    double s = 0, ss = 0, nA = 0, bmax = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        const tk_param *p = &ps->p[i];
        bool isb = strstr(p->name, "lora_B") != NULL;
        for (int64_t j = 0; j < p->n; j++) {
            if (isb) bmax = fmax(bmax, fabs(p->w[j]));
            else { s += p->w[j]; ss += (double)p->w[j] * p->w[j]; nA++; }
        }
    }
    double mean = s / nA, sd = sqrt(ss / nA - mean * mean);
    printf("gaussian init: %.0f A values, mean %.4f, std %.4f (1/r = 0.25), max |B| %g\n", nA, mean, sd, bmax);
    CHECK(bmax == 0, "gaussian init: B not zero (%g)", bmax);
    CHECK(fabs(mean) < 4 * 0.25 / sqrt(nA), "gaussian init: A mean %.4f", mean);
    CHECK(fabs(sd - 0.25) < 0.01, "gaussian init: A std %.4f, expected 0.25", sd);
    double l[4];
    run_steps(tc, rb, st, 3, l);
    printf("  3 steps from the gaussian init: %.5f -> %.5f\n", l[0], l[3]);
    CHECK(isfinite(l[3]) && l[3] < l[0], "gaussian init: training did not lower the loss (%.5f -> %.5f)", l[0], l[3]);
    tk_train_ctx_free(tc);
    /* the library refuses an unknown init */
    tk_train_params p = tk_train_default_params();
    p.lora.init = (tk_lora_init)7;
    tk_train_ctx *bad = NULL;
    CHECK(tk_train_ctx_new(m, &p, &bad) != TK_OK && !bad, "unknown LoRA init accepted");
}

static void refusals(void) {
    static const struct { const char *method, *opt, *val; } cases[] = {
        {"full", "lora-plus-ratio", "16"}, {"ia3", "lora-plus-ratio", "16"}, {"full", "lora-init", "gaussian"}, {"ia3", "lora-init", "gaussian"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tk_trainer_config c = tk_trainer_config_default();
        CHECK_OK(tk_trainer_config_set(&c, "method", cases[i].method));
        CHECK_OK(tk_trainer_config_set(&c, cases[i].opt, cases[i].val));
        CHECK(tk_trainer_config_check_method(&c) != TK_OK, "--%s with --method %s accepted", cases[i].opt, cases[i].method);
        CHECK(strstr(tk_last_error(), cases[i].opt) != NULL, "message names --%s: %s", cases[i].opt, tk_last_error());
        tk_trainer_config_free(&c);
    }
    tk_trainer_config c = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_set(&c, "method", "dora"));
    CHECK_OK(tk_trainer_config_set(&c, "lora-plus-ratio", "16"));
    CHECK_OK(tk_trainer_config_set(&c, "lora-init", "gaussian"));
    CHECK_OK(tk_trainer_config_check_method(&c));
    CHECK(c.lora_init == TK_LORA_INIT_GAUSSIAN && c.lora_plus_ratio == 16, "options not stored");
    CHECK(tk_trainer_config_set(&c, "lora-init", "svd") != TK_OK, "--lora-init svd accepted");
    CHECK(tk_trainer_config_set(&c, "lora-plus-ratio", "-1") != TK_OK, "--lora-plus-ratio -1 accepted");
    tk_trainer_config_free(&c);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(2);
    optimizer_seam();
    refusals();
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return tk_test_done("test_loraplus");
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_loraplus.safetensors", &st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(mp, &mpar, &m));
    ref_batch rb;
    if (st && m && load_batch(st, &rb)) {
        loraplus_curve(m, st, &rb);
        gaussian_init(m, st, &rb);
    }
    tk_model_free(m);
    tk_st_close(st);
    return tk_test_done("test_loraplus");
}
