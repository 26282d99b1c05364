/* takumi's training step against PyTorch + HF PEFT (fixtures written by
 * tools/make_train_reference.py): the same model, batch and LoRA initialisation give the
 * same loss, logits and every LoRA gradient (stories260K f32; SmolLM2-135M with its base
 * kept in Q4_1 while PyTorch runs the dequantized f32 values), the same full fine-tuning
 * weight gradients (stories260K), and the same 10-step AdamW loss curves. Prints the max
 * relative error (max |a - b| / max |b|) of every tensor. */
#include "test.h"
#include "train/step.h"
#include "train_ref.h"
#include "model/hfconfig.h"
#include "model/llama.h"
#include <stdint.h>
#include <time.h>

static double tk_time_s_test(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void stories(void) {
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return;
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/stories260k_ref.safetensors", &st));
    if (!st) return;
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(mp, &mpar, &m));
    ref_batch rb;
    if (!m || !load_batch(st, &rb)) { tk_model_free(m); tk_st_close(st); return; }

    /* ---- LoRA ---- */
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    p.max_rows = rb.B;
    p.max_cols = rb.T;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        tk_param_set *ps = tk_train_param_set(tc);
        char name[200];
        for (int64_t i = 0; i < ps->n; i++) {
            snprintf(name, sizeof name, "init.%s", ps->p[i].name);
            const float *v = fx_f32(st, name, ps->p[i].n);
            if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
        }
        CHECK(ps->n == 5 * 7 * 2, "stories LoRA: %lld params", (long long)ps->n);
        double loss = mean_loss_grads(tc, &rb), ref = meta_num(st, "lora_loss");
        printf("stories260K LoRA: loss %.7f (torch %.7f)\n", loss, ref);
        CHECK_NEAR(loss, ref, 1e-5 * ref);
        check_logits(tc, st, &rb, 64, 1e-5, "stories260K LoRA");
        double worst = 0;
        for (int64_t i = 0; i < ps->n; i++) {
            snprintf(name, sizeof name, "grad.%s", ps->p[i].name);
            const float *g = fx_f32(st, name, ps->p[i].n);
            if (!g) continue;
            double e = rel_err(ps->p[i].g, g, 1, ps->p[i].n, 1);
            if (g_verbose) printf("    %-64s %.2e\n", ps->p[i].name, e);
            CHECK(e <= 1e-4, "stories LoRA gradient %s: max rel err %.3e", ps->p[i].name, e);
            worst = fmax(worst, e);
        }
        printf("  every LoRA gradient (%lld tensors): max rel err %.2e\n", (long long)ps->n, worst);
        /* 10 steps from the same initialisation */
        for (int64_t i = 0; i < ps->n; i++) {
            snprintf(name, sizeof name, "init.%s", ps->p[i].name);
            const float *v = fx_f32(st, name, ps->p[i].n);
            if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
        }
        double rl[32], gl[32];
        int n = meta_list(st, "lora_losses", rl, 32);
        CHECK(n == (int)meta_num(st, "steps") + 1, "lora_losses count %d", n);
        if (n > 1) {
            run_steps(tc, &rb, st, n - 1, gl);
            check_curve(gl, rl, n, 1e-3, "stories260K LoRA");
        }
        tk_train_ctx_free(tc);
    }

    /* ---- full fine-tuning ---- */
    p.method = TK_TRAIN_FULL;
    tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        tk_param_set *ps = tk_train_param_set(tc);
        double loss = mean_loss_grads(tc, &rb), ref = meta_num(st, "full_loss");
        printf("stories260K full: loss %.7f (torch %.7f)\n", loss, ref);
        CHECK_NEAR(loss, ref, 1e-5 * ref);
        int64_t stride = (int64_t)meta_num(st, "full_grad_row_stride");
        double worst = 0;
        int64_t nfound = 0;
        char name[200];
        for (int64_t i = 0; i < ps->n; i++) {
            tk_param *q = &ps->p[i];
            snprintf(name, sizeof name, "fgrad.%s", q->name);
            bool mat = q->n_dims == 2;
            int64_t cols = q->ne[0], rows = mat ? (q->ne[1] + stride - 1) / stride : 1;
            const float *g = fx_f32(st, name, rows * cols);
            if (!g) continue;
            nfound++;
            double e = rel_err(q->g, g, rows, cols, mat ? stride : 1);
            if (g_verbose) printf("    %-48s %.2e\n", q->name, e);
            CHECK(e <= 1e-4, "stories full gradient %s: max rel err %.3e", q->name, e);
            worst = fmax(worst, e);
        }
        CHECK(nfound == ps->n && ps->n == 5 * 9 + 2, "stories full: %lld of %lld gradients compared", (long long)nfound, (long long)ps->n);
        printf("  every weight gradient (%lld tensors, every %lld-th row): max rel err %.2e\n", (long long)nfound, (long long)stride, worst);
        double rl[32], gl[32];
        int n = meta_list(st, "full_losses", rl, 32);
        if (n > 1) {
            run_steps(tc, &rb, st, n - 1, gl);
            check_curve(gl, rl, n, 1e-3, "stories260K full");
        }
        tk_train_ctx_free(tc);
    }
    tk_model_free(m);
    tk_st_close(st);
}

static void smollm2(void) {
    const char *mp = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (tk_test_require(access(mp, F_OK) == 0 ? mp : NULL, mp)) return;
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/train/smollm2_ref.safetensors", &st));
    if (!st) return;
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(mp, &mpar, &m));
    ref_batch rb;
    if (!m || !load_batch(st, &rb)) { tk_model_free(m); tk_st_close(st); return; }
    const tk_model_config *c = tk_model_get_config(m);
    CHECK(c->rope_interleaved == 1, "SmolLM2 GGUF runs llama.cpp's permuted q/k rows");
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.rslora = true;
    p.lora.dropout = 0;
    p.max_rows = rb.B;
    p.max_cols = rb.T;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { tk_model_free(m); tk_st_close(st); return; }
    tk_lora *lo = tk_train_lora(tc);
    CHECK(tk_lora_qk_permuted(lo), "lora records the permuted q/k order");
    CHECK_NEAR(tk_lora_scale(lo), 4.0, 1e-6); /* rsLoRA: 8 / sqrt(4) */
    tk_param_set *ps = tk_train_param_set(tc);
    int64_t r = p.lora.r, maxn = 0;
    for (int64_t i = 0; i < ps->n; i++) maxn = ps->p[i].n > maxn ? ps->p[i].n : maxn;
    float *tmp = malloc((size_t)maxn * sizeof(float)), *tmp2 = malloc((size_t)maxn * sizeof(float));
    /* q/k lora_B rows: HF order in the reference, GGUF (permuted) order inside takumi */
    #define QK_HEADS(nm) (strstr(nm, "q_proj.lora_B") ? c->n_heads : strstr(nm, "k_proj.lora_B") ? c->n_kv_heads : 0)
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *q = &ps->p[i];
        bool isA = strstr(q->name, "lora_A") != NULL;
        ref_hash_init(tmp, q->name, q->n, isA ? 1.0 / sqrt((double)q->ne[0]) : 0.02);
        int nh = QK_HEADS(q->name);
        if (nh) tk_permute_qk_rows_from_hf(q->w, tmp, nh, c->head_dim, (size_t)r * sizeof(float));
        else memcpy(q->w, tmp, (size_t)q->n * sizeof(float));
    }
    double loss = mean_loss_grads(tc, &rb), ref = meta_num(st, "lora_loss");
    printf("SmolLM2 LoRA (Q4_1 base): loss %.7f (torch %.7f)\n", loss, ref);
    CHECK_NEAR(loss, ref, 1e-4 * ref);
    check_logits(tc, st, &rb, 32, 1e-4, "SmolLM2 LoRA");
    double worst = 0;
    int64_t ncmp = 0;
    char name[200];
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *q = &ps->p[i];
        snprintf(name, sizeof name, "grad.%s", q->name);
        if (!tk_st_find(st, name)) continue;
        const float *g = fx_f32(st, name, q->n);
        if (!g) continue;
        const float *mine = q->g;
        int nh = QK_HEADS(q->name);
        if (nh) { tk_permute_qk_rows_to_hf(tmp2, q->g, nh, c->head_dim, (size_t)r * sizeof(float)); mine = tmp2; }
        double e = rel_err(mine, g, 1, q->n, 1);
        if (g_verbose) printf("    %-64s %.2e\n", q->name, e);
        CHECK(e <= 1e-4, "SmolLM2 LoRA gradient %s: max rel err %.3e", q->name, e);
        worst = fmax(worst, e);
        ncmp++;
    }
    CHECK(ncmp == 2 * 7 * 2, "SmolLM2: %lld gradients compared", (long long)ncmp);
    printf("  LoRA gradients of layers 0 and 29 (%lld tensors, q/k B rows un-permuted to HF order): max rel err %.2e\n",
           (long long)ncmp, worst);
    /* determinism: the same step again (2 threads) gives bit-identical gradients */
    {
        float *g1 = malloc((size_t)ps->total * sizeof(float));
        int64_t k = 0;
        for (int64_t i = 0; i < ps->n; i++) { memcpy(g1 + k, ps->p[i].g, (size_t)ps->p[i].n * sizeof(float)); k += ps->p[i].n; }
        double loss2 = mean_loss_grads(tc, &rb);
        bool same = loss2 == loss;
        k = 0;
        for (int64_t i = 0; i < ps->n; i++) { same = same && !memcmp(g1 + k, ps->p[i].g, (size_t)ps->p[i].n * sizeof(float)); k += ps->p[i].n; }
        CHECK(same, "SmolLM2: a repeated step is bit-identical");
        free(g1);
    }
    /* steps: fewer under ASan (each SmolLM2 step is ~10x slower there) */
    double rl[32], gl[32];
    int n = meta_list(st, "lora_losses", rl, 32);
    if (n > 1) {
        int steps = UNDER_ASAN ? 3 : n - 1;
        for (int64_t i = 0; i < ps->n; i++) { /* restart from the init */
            tk_param *q = &ps->p[i];
            ref_hash_init(tmp, q->name, q->n, strstr(q->name, "lora_A") ? 1.0 / sqrt((double)q->ne[0]) : 0.02);
            int nh = QK_HEADS(q->name);
            if (nh) tk_permute_qk_rows_from_hf(q->w, tmp, nh, c->head_dim, (size_t)r * sizeof(float));
            else memcpy(q->w, tmp, (size_t)q->n * sizeof(float));
        }
        run_steps(tc, &rb, st, steps, gl);
        check_curve(gl, rl, steps + 1, 1e-3, "SmolLM2 LoRA");
    }
    free(tmp);
    free(tmp2);
    tk_train_ctx_free(tc);
    tk_model_free(m);
    tk_st_close(st);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(2);
    double t0 = tk_time_s_test();
    stories();
    double t1 = tk_time_s_test();
    smollm2();
    printf("time: stories260K %.2f s, SmolLM2 %.2f s\n", t1 - t0, tk_time_s_test() - t1);
    return tk_test_done("test_train_ref");
}
