/* takumi's training step against PyTorch + HF PEFT (fixtures written by
 * tools/make_train_reference.py): the same model, batch and LoRA initialisation give the
 * same loss, logits and every LoRA gradient (stories260K f32; SmolLM2-135M with its base
 * kept in Q4_1 while PyTorch runs the dequantized f32 values), the same full fine-tuning
 * weight gradients (stories260K), and the same 10-step AdamW loss curves. Prints the max
 * relative error (max |a - b| / max |b|) of every tensor. */
#include "test.h"
#include "train/step.h"
#include "model/hfconfig.h"
#include "model/llama.h"
#include <stdint.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static int g_verbose = 0;

static double tk_time_s_test(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double meta_num(const tk_safetensors *st, const char *key) {
    const char *s = tk_st_metadata(st, key);
    CHECK(s != NULL, "fixture metadata %s", key);
    return s ? strtod(s, NULL) : NAN;
}

/* Parses the JSON list of numbers in metadata key into out[max]; returns the count. */
static int meta_list(const tk_safetensors *st, const char *key, double *out, int max) {
    const char *s = tk_st_metadata(st, key);
    CHECK(s != NULL, "fixture metadata %s", key);
    if (!s) return 0;
    int n = 0;
    while (*s && n < max) {
        while (*s && (*s == '[' || *s == ',' || *s == ' ')) s++;
        if (!*s || *s == ']') break;
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s) break;
        s = end;
    }
    return n;
}

static const float *fx_f32(const tk_safetensors *st, const char *name, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    CHECK(t != NULL, "fixture tensor %s", name);
    if (!t) return NULL;
    CHECK(t->dtype == TK_F32 && tk_tensor_nelems(t) == n, "fixture tensor %s: %lld elements, expected %lld", name,
          (long long)tk_tensor_nelems(t), (long long)n);
    return t->dtype == TK_F32 && tk_tensor_nelems(t) == n ? t->data : NULL;
}

/* max |a - b| / max |b| over n elements (strided rows: a row r of b is a row r*stride of a). */
static double rel_err(const float *a, const float *b, int64_t rows, int64_t cols, int64_t stride) {
    double md = 0, mb = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double x = a[r * stride * cols + c], y = b[r * cols + c];
            md = fmax(md, fabs(x - y));
            mb = fmax(mb, fabs(y));
        }
    return md / (mb > 0 ? mb : 1);
}

/* The fixture batch. */
typedef struct ref_batch {
    int32_t B, T;
    const int32_t *ids, *target;
    const float *weight;
    double wsum;
    tk_batch b;
} ref_batch;

static bool load_batch(const tk_safetensors *st, ref_batch *rb) {
    const tk_tensor_ref *ids = tk_st_find(st, "ids"), *tg = tk_st_find(st, "target"), *w = tk_st_find(st, "weight");
    CHECK(ids && tg && w, "fixture batch tensors");
    if (!ids || !tg || !w || ids->dtype != TK_I32 || tg->dtype != TK_I32 || w->dtype != TK_F32) return false;
    memset(rb, 0, sizeof *rb);
    rb->T = (int32_t)ids->ne[0];
    rb->B = (int32_t)ids->ne[1];
    rb->ids = ids->data;
    rb->target = tg->data;
    rb->weight = w->data;
    for (int64_t t = 0; t < (int64_t)rb->B * rb->T; t++)
        if (rb->target[t] >= 0) rb->wsum += rb->weight[t];
    rb->b.n_rows = rb->B;
    rb->b.n_cols = rb->T;
    rb->b.ids = rb->ids;
    return rb->wsum > 0;
}

/* Logits of the first `cols` vocabulary entries of every token vs the fixture's. */
/* (with the training context's LoRA adapter applied to the forward) */
static void check_logits(tk_train_ctx *tc, const tk_safetensors *st, ref_batch *rb, int64_t cols, double tol, const char *what) {
    tk_model *m = tk_train_model(tc);
    int64_t T = (int64_t)rb->B * rb->T, V = tk_model_get_config(m)->n_vocab;
    const float *ref = fx_f32(st, "logits", T * cols);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, rb->B, rb->T, 0, &f));
    tk_adapter_use u = {tk_train_lora(tc) ? tk_lora_peft(tk_train_lora(tc)) : NULL, 1.0f};
    if (f && u.peft) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
    float *lg = malloc((size_t)(T * V) * sizeof(float));
    if (f && ref && lg && tk_forward_run(f, &rb->b, NULL, T, lg) == TK_OK) {
        double md = 0, mb = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < cols; j++) {
                md = fmax(md, fabs(lg[t * V + j] - ref[t * cols + j]));
                mb = fmax(mb, fabs(ref[t * cols + j]));
            }
        printf("  %s logits: max abs diff %.3e (max |logit| %.3f)\n", what, md, mb);
        CHECK(md <= tol * mb, "%s logits differ: %.3e > %.1e x %.3f", what, md, tol, mb);
    }
    free(lg);
    tk_forward_free(f);
}

/* One fwd_bwd at grad_scale 1/wsum; returns the mean loss. */
static double mean_loss_grads(tk_train_ctx *tc, ref_batch *rb) {
    tk_params_zero_grad(tk_train_param_set(tc));
    double ls = 0, ws = 0;
    CHECK_OK(tk_train_step_fwd_bwd(tc, &rb->b, rb->target, rb->weight, (float)(1.0 / rb->wsum), &ls, &ws));
    CHECK_NEAR(ws, rb->wsum, 1e-9);
    return ls / ws;
}

/* n AdamW steps on the same batch (as the reference): losses[0..n] (the last after the final update). */
static void run_steps(tk_train_ctx *tc, ref_batch *rb, const tk_safetensors *st, int n, double *losses) {
    tk_adamw o = tk_adamw_default();
    o.lr = (float)meta_num(st, "lr");
    o.weight_decay = (float)meta_num(st, "weight_decay");
    o.clip = (float)meta_num(st, "clip");
    o.sched = TK_SCHED_CONSTANT;
    o.warmup = 0;
    tk_param_set *ps = tk_train_param_set(tc);
    for (int s = 0; s < n; s++) {
        losses[s] = mean_loss_grads(tc, rb);
        tk_adamw_step(&o, ps, s, NULL);
    }
    tk_eval_sums es = {0};
    CHECK_OK(tk_train_eval(tc, &rb->b, rb->target, rb->weight, &es));
    losses[n] = es.loss_sum / es.weight_sum;
}

static void check_curve(const double *got, const double *ref, int n, double tol, const char *what) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]) / fmax(fabs(ref[i]), 1e-3);
        if (e > worst) worst = e;
        if (g_verbose) printf("    step %2d: takumi %.7f torch %.7f\n", i, got[i], ref[i]);
    }
    printf("  %s loss curve over %d steps: %.5f -> %.5f (torch %.5f -> %.5f), max rel diff %.2e\n", what, n - 1, got[0], got[n - 1],
           ref[0], ref[n - 1], worst);
    CHECK(worst <= tol, "%s loss curve differs from PyTorch (max rel %.3e > %.1e)", what, worst, tol);
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

/* The init both sides compute: u = (splitmix(fnv1a(name) + i) >> 40) / 2^24, (2u - 1) * bound. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}
static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static void hash_init(float *out, const char *name, int64_t n, double bound) {
    uint64_t h0 = fnv1a(name);
    float b = (float)bound;
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(splitmix(h0 + (uint64_t)i) >> 40) * (1.0f / 16777216.0f);
        float v = 2.0f * u - 1.0f;
        out[i] = v * b;
    }
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
        hash_init(tmp, q->name, q->n, isA ? 1.0 / sqrt((double)q->ne[0]) : 0.02);
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
            hash_init(tmp, q->name, q->n, strstr(q->name, "lora_A") ? 1.0 / sqrt((double)q->ne[0]) : 0.02);
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
