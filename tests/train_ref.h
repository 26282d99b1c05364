/* What the tests of training against PyTorch fixtures share (test_train_ref, test_peft_ref):
 * fixture metadata and tensors, the batch, relative errors, logits, loss curves of AdamW steps. */
#ifndef TK_TESTS_TRAIN_REF_H
#define TK_TESTS_TRAIN_REF_H
#include "test.h"
#include "train/step.h"

static int g_verbose = 0;

/* UNDER_ASAN: 1 in an ASan build (model-size tests run fewer steps there) */
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


static inline double meta_num(const tk_safetensors *st, const char *key) {
    const char *s = tk_st_metadata(st, key);
    CHECK(s != NULL, "fixture metadata %s", key);
    return s ? strtod(s, NULL) : NAN;
}

/* Parses the JSON list of numbers in metadata key into out[max]; returns the count. */
static inline int meta_list(const tk_safetensors *st, const char *key, double *out, int max) {
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

static inline const float *fx_f32(const tk_safetensors *st, const char *name, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    CHECK(t != NULL, "fixture tensor %s", name);
    if (!t) return NULL;
    CHECK(t->dtype == TK_F32 && tk_tensor_nelems(t) == n, "fixture tensor %s: %lld elements, expected %lld", name,
          (long long)tk_tensor_nelems(t), (long long)n);
    return t->dtype == TK_F32 && tk_tensor_nelems(t) == n ? t->data : NULL;
}

/* max |a - b| / max |b| over n elements (strided rows: a row r of b is a row r*stride of a). */
static inline double rel_err(const float *a, const float *b, int64_t rows, int64_t cols, int64_t stride) {
    double md = 0, mb = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double x = a[r * stride * cols + c], y = b[r * cols + c];
            md = fmax(md, fabs(x - y));
            mb = fmax(mb, fabs(y));
        }
    return md / (mb > 0 ? mb : 1);
}

/* The init both sides compute (tools/make_train_reference.py hash_init): u = (splitmix(fnv1a(name) + i) >> 40) / 2^24,
 * out[i] = (2u - 1) * bound, in float32 steps. */
static inline uint64_t ref_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}
static inline uint64_t ref_splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static inline void ref_hash_init(float *out, const char *name, int64_t n, double bound) {
    uint64_t h0 = ref_fnv1a(name);
    float b = (float)bound;
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(ref_splitmix(h0 + (uint64_t)i) >> 40) * (1.0f / 16777216.0f);
        float v = 2.0f * u - 1.0f;
        out[i] = v * b;
    }
}

/* The fixture batch. */
typedef struct ref_batch {
    int32_t B, T;
    const int32_t *ids, *target;
    const float *weight;
    double wsum;
    tk_batch b;
} ref_batch;

static inline bool load_batch(const tk_safetensors *st, ref_batch *rb) {
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

/* The stories260K setting of the PEFT-method tests: the HF folder and, when present, its f32 GGUF
 * container (interleaved RoPE), loaded without a tokenizer, and a fixture with its batch. */
typedef struct ref_stories { tk_safetensors *st; tk_model *m, *mg; ref_batch rb; } ref_stories;

static inline void ref_stories_close(ref_stories *s) {
    tk_model_free(s->mg);
    tk_model_free(s->m);
    tk_st_close(s->st);
    memset(s, 0, sizeof *s);
}

/* Opens it (false: skipped when ../shared lacks the model, or failed with the checks recorded; closed). */
static inline bool ref_stories_open(const char *fixture, ref_stories *s) {
    memset(s, 0, sizeof *s);
    const char *mp = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(mp, "models/stories260K/hf")) return false;
    const char *gp = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    CHECK_OK(tk_st_open(fixture, &s->st));
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    CHECK_OK(tk_model_load(mp, &mpar, &s->m));
    if (gp) CHECK_OK(tk_model_load(gp, &mpar, &s->mg));
    CHECK(!s->mg || tk_model_get_config(s->mg)->rope_interleaved, "the GGUF stories260K uses interleaved RoPE");
    if (s->st && s->m && load_batch(s->st, &s->rb)) return true;
    ref_stories_close(s);
    return false;
}

/* Logits of the first `cols` vocabulary entries of every token vs the fixture's tensor `key`
 * (with the training context's adapters applied to the forward). */
static inline void check_logits_key(tk_train_ctx *tc, const tk_safetensors *st, const char *key, ref_batch *rb, int64_t cols, double tol,
                             const char *what) {
    tk_model *m = tk_train_model(tc);
    int64_t T = (int64_t)rb->B * rb->T, V = tk_model_get_config(m)->n_vocab;
    const float *ref = fx_f32(st, key, T * cols);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, rb->B, rb->T, 0, &f));
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(tc, &n_ads);
    if (f && n_ads) CHECK_OK(tk_forward_set_adapters(f, ads, n_ads));
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

static inline void check_logits(tk_train_ctx *tc, const tk_safetensors *st, ref_batch *rb, int64_t cols, double tol, const char *what) {
    check_logits_key(tc, st, "logits", rb, cols, tol, what);
}

/* One fwd_bwd at grad_scale 1/wsum; returns the mean loss. */
static inline double mean_loss_grads(tk_train_ctx *tc, ref_batch *rb) {
    tk_params_zero_grad(tk_train_param_set(tc));
    double ls = 0, ws = 0;
    CHECK_OK(tk_train_step_fwd_bwd(tc, &rb->b, rb->target, rb->weight, (float)(1.0 / rb->wsum), &ls, &ws));
    CHECK_NEAR(ws, rb->wsum, 1e-9);
    return ls / ws;
}

/* n AdamW steps on the same batch (as the reference): losses[0..n] (the last after the final update). */
static inline void run_steps(tk_train_ctx *tc, ref_batch *rb, const tk_safetensors *st, int n, double *losses) {
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

static inline void check_curve(const double *got, const double *ref, int n, double tol, const char *what) {
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

/* The PEFT-method cases of tools/make_peft_methods_reference.py ("<method>.init.<param>",
 * "<method>.grad.<param>", "<method>.logits", metadata <method>_loss / <method>_losses). */

/* Copies the fixture's "<method>.init.<name>" into every parameter; returns how many were found. */
static inline int64_t ref_load_init(tk_param_set *ps, const tk_safetensors *st, const char *method) {
    char name[256];
    int64_t n = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "%s.init.%s", method, ps->p[i].name);
        const float *v = fx_f32(st, name, ps->p[i].n);
        if (v) { memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float)); n++; }
    }
    return n;
}

/* From the fixture's initialisation: the loss, the logits and every parameter's gradient within
 * the SFT tests' tolerances; then the 10-step AdamW loss curve (parameters reset first). */
static inline void ref_check_method(tk_train_ctx *tc, const tk_safetensors *st, ref_batch *rb, const char *method, const char *what) {
    tk_param_set *ps = tk_train_param_set(tc);
    char key[64], name[256];
    snprintf(key, sizeof key, "%s_loss", method);
    double loss = mean_loss_grads(tc, rb), ref = meta_num(st, key);
    printf("stories260K %s: loss %.7f (torch %.7f)\n", what, loss, ref);
    CHECK_NEAR(loss, ref, 1e-5 * ref);
    snprintf(key, sizeof key, "%s.logits", method);
    check_logits_key(tc, st, key, rb, 64, 1e-5, what);
    double worst = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "%s.grad.%s", method, ps->p[i].name);
        const float *g = fx_f32(st, name, ps->p[i].n);
        CHECK(g != NULL, "%s: the fixture has %s", what, name);
        if (!g) continue;
        double e = rel_err(ps->p[i].g, g, 1, ps->p[i].n, 1);
        if (g_verbose) printf("    %-72s %.2e\n", ps->p[i].name, e);
        CHECK(e <= 1e-4, "%s gradient %s: max rel err %.3e", what, ps->p[i].name, e);
        worst = fmax(worst, e);
    }
    printf("  every %s gradient (%lld tensors): max rel err %.2e\n", what, (long long)ps->n, worst);
}

/* The same method on another container of the model (tg, freed here; NULL = nothing): the fixture's
 * initialisation gives its "<method>.logits" within 1e-4. */
static inline void ref_check_container(tk_train_ctx *tg, const tk_safetensors *st, ref_batch *rb, const char *method, const char *what) {
    if (!tg) return;
    char key[256];
    ref_load_init(tk_train_param_set(tg), st, method);
    snprintf(key, sizeof key, "%s.logits", method);
    check_logits_key(tg, st, key, rb, 64, 1e-4, what);
    tk_train_ctx_free(tg);
}

static inline void ref_check_curve(tk_train_ctx *tc, const tk_safetensors *st, ref_batch *rb, const char *method, const char *what) {
    ref_load_init(tk_train_param_set(tc), st, method);
    double rl[32], gl[32];
    char key[64];
    snprintf(key, sizeof key, "%s_losses", method);
    int n = meta_list(st, key, rl, 32);
    CHECK(n == (int)meta_num(st, "steps") + 1, "%s count %d", key, n);
    if (n > 1) {
        run_steps(tc, rb, st, n - 1, gl);
        check_curve(gl, rl, n, 1e-3, what);
    }
}
#endif
