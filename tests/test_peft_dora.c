/* DoRA (src/peft/dora.h) on the tiny Llama (q/k/v biases, both RoPE conventions):
 * - a fresh adapter (m = ||W||_row, B = 0) leaves the logits bit-identical;
 * - one linear's backward (with and without dropout) and the whole model's (also with
 *   recompute) against central finite differences, the row norms held fixed (PEFT detaches
 *   them: the gradient PEFT computes is that of the loss with the norm a constant);
 * - merging equals applying; the PEFT folder (use_dora, lora_magnitude_vector) reads back as
 *   "dora" with the same logits, q/k rows un-permuted and permuted back; no GGUF layout;
 * - bad folders: a magnitude missing, an adapter for more layers than the model has. */
#include "test.h"
#include "tiny_llama.h"
#include "fd_check.h"
#include "peft_check.h"
#include "peft/dora.h"
#include "train/step.h"
#include <unistd.h>

/* B and m moved away from their initialisation so that every term of the backward matters. */
static void perturb(tk_param_set *ps, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *p = &ps->p[i];
        bool mag = strstr(p->name, "lora_magnitude_vector") != NULL, b = strstr(p->name, "lora_B") != NULL;
        for (int64_t j = 0; j < p->n; j++) {
            if (b) p->w[j] = 0.3f * tk_rng_normal(&rng);
            if (mag) p->w[j] *= 1.0f + 0.2f * tk_rng_normal(&rng);
        }
    }
}

static void test_identity(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 5});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 2;
    tk_dora *d = NULL;
    CHECK_OK(tk_dora_new(m, &c, &ps, &d));
    if (d) {
        float a[16 * 40], b[16 * 40];
        tiny_logits(m, NULL, a);
        tiny_logits(m, tk_dora_peft(d), b);
        CHECK(!memcmp(a, b, sizeof a), "a fresh DoRA adapter leaves the logits bit-identical");
        CHECK(ps.n == 2 * 7 * 3, "A, B and a magnitude per linear: %lld params", (long long)ps.n);
        const tk_tensor_ref *wq = tk_model_linear(m, 1, TK_LIN_Q);
        tk_param *mq = tk_dora_magnitude(d, 1, TK_LIN_Q);
        double s = 0;
        for (int64_t k = 0; k < wq->ne[0]; k++) s += (double)((float *)wq->data)[3 * wq->ne[0] + k] * ((float *)wq->data)[3 * wq->ne[0] + k];
        CHECK(mq && fabs(mq->w[3] - sqrt(s)) < 1e-6 * sqrt(s), "m starts as the row norm of W");
    }
    tk_dora_free(d);
    tk_params_free(&ps);
    tk_model_free(m);
}

/* the norms of the evaluation point held while finite differences move the parameters */
static void hold(const tk_peft *p, bool on) { tk_dora_hold_norms(tk_dora_of(p), on); }

static void test_linear(float dropout, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 6});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 3;
    c.dropout = dropout;
    c.targets = 1u << TK_LIN_K | 1u << TK_LIN_DOWN;
    tk_dora *d = NULL;
    CHECK_OK(tk_dora_new(m, &c, &ps, &d));
    if (d) {
        perturb(&ps, 3);
        const tk_peft *p = tk_dora_peft(d);
        lin_fd_check(p, &ps, m, 0, TK_LIN_DOWN, hold, what);
        lin_fd_check(p, &ps, m, 1, TK_LIN_K, hold, what);
    }
    tk_dora_free(d);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_model(bool recompute, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 31});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_DORA;
    p.lora.r = 2;
    p.lora.dropout = 0;
    p.max_rows = 2;
    p.max_cols = 8;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        int n_ad = 0;
        const tk_adapter_use *u = tk_train_adapters(tc, &n_ad);
        tk_dora *d = n_ad == 1 ? tk_dora_of(u[0].peft) : NULL;
        CHECK(d != NULL, "%s: the context trains a DoRA adapter", what);
        tk_param_set *ps = tk_train_param_set(tc);
        perturb(ps, 4);
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        tk_params_zero_grad(ps);
        double ls = 0, ws = 0;
        CHECK_OK(tk_train_step_fwd_bwd(tc, &tb.b, tb.target, tb.weight, 1.0f, &ls, &ws));
        if (d) tk_dora_hold_norms(d, true);
        fd_step_ctx fc = {tc, &tb};
        fd_opts o = {.eps = 4e-3f, .max_per = 24, .prefix = "base_model.", .tol_prefix = 5e-3, .tol = 1e-2};
        int n = 0;
        double worst = fd_check(ps, fd_step_loss, &fc, &o, what, &n);
        if (d) tk_dora_hold_norms(d, false);
        printf("%s: %lld tensors, worst FD ratio %.2e\n", what, (long long)ps->n, worst);
        CHECK(n == 2 * 7 * 3, "%s: %d DoRA tensors checked", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

static void test_files(int interleaved) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .bias = true, .seed = 8});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 2;
    tk_dora *d = NULL;
    CHECK_OK(tk_dora_new(m, &c, &ps, &d));
    if (d) {
        perturb(&ps, 9);
        const tk_peft *p = tk_dora_peft(d);
        merge_check(m, p, 2e-5, interleaved ? "DoRA (permuted q/k)" : "DoRA");
        char dir[] = "/tmp/takumi_dora_XXXXXX";
        CHECK(mkdtemp(dir) != NULL, "temp dir");
        roundtrip_check(m, p, dir, "dora", interleaved ? "DoRA folder (permuted q/k)" : "DoRA folder");
        CHECK(p->method->save_gguf == NULL, "DoRA has no GGUF layout");
        /* a 2-layer adapter on a 1-layer model */
        tk_model *small = tiny_llama((tiny_opts){.interleaved = interleaved, .bias = true, .seed = 8, .layers = 1});
        tk_adapter *ad = NULL;
        CHECK_OK(tk_adapter_load(dir, &ad));
        tk_param_set ps2 = {0};
        tk_peft *q = NULL;
        CHECK_ERR(tk_adapter_attach_peft(ad, small, &ps2, &q), TK_ERR_ARG);
        CHECK(strstr(tk_last_error(), "layer 1") && strstr(tk_last_error(), "1 layers"), "message: %s", tk_last_error());
        tk_params_free(&ps2);
        tk_adapter_free(ad);
        tk_model_free(small);
        /* the same folder without one magnitude */
        char st_path[128], cmd[300];
        snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
        tk_safetensors *sf = NULL;
        CHECK_OK(tk_st_open(st_path, &sf));
        tk_st_writer *w = tk_st_writer_new();
        for (int64_t i = 0; sf && i < tk_st_n_tensors(sf); i++) {
            const tk_tensor_ref *t = tk_st_tensor(sf, i);
            if (!strcmp(t->name, "base_model.model.model.layers.1.mlp.up_proj.lora_magnitude_vector")) continue;
            CHECK_OK(tk_st_add(w, t->name, t->dtype, t->n_dims, t->ne, t->data));
        }
        tk_st_close(sf);
        CHECK_OK(tk_st_write(w, st_path));
        tk_st_writer_free(w);
        CHECK_ERR(tk_adapter_load(dir, &ad), TK_ERR_FORMAT);
        CHECK(strstr(tk_last_error(), "layer 1 up_proj") && strstr(tk_last_error(), "lora_magnitude_vector"), "message: %s", tk_last_error());
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    tk_dora_free(d);
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(void) {
    tk_set_threads(1);
    test_identity();
    test_linear(0.0f, "DoRA linear");
    test_linear(0.3f, "DoRA linear, dropout 0.3");
    test_model(false, "DoRA whole model");
    test_model(true, "DoRA whole model, recompute");
    test_files(0);
    test_files(1);
    return tk_test_done("test_peft_dora");
}
