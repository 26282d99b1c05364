/* IA3 (src/peft/ia3.h) on the tiny Llama:
 * - fresh vectors (ones) leave the logits bit-identical;
 * - one linear's backward (output-scaled k_proj, feed-forward down_proj) and the whole model's
 *   (also with recompute) against central finite differences;
 * - merging equals applying (rows for k/v, columns for down); a linear with a bias refuses;
 * - the PEFT folder (peft_type IA3, ia3_l) reads back as "ia3" with the same logits, q/k rows
 *   un-permuted and permuted back; no GGUF layout;
 * - bad input: feedforward_modules not a subset of target_modules, --lora-r with --method ia3. */
#include "test.h"
#include "tiny_llama.h"
#include "fd_check.h"
#include "peft_check.h"
#include "peft/ia3.h"
#include "train/trainer.h"
#include <unistd.h>

static void perturb(tk_param_set *ps, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = 1.0f + 0.3f * tk_rng_normal(&rng);
}

static tk_ia3 *make(tk_model *m, tk_param_set *ps, uint32_t targets, uint32_t ff) {
    tk_ia3_config c = tk_ia3_default_config();
    if (targets) { c.targets = targets; c.feedforward = ff; }
    tk_ia3 *a = NULL;
    CHECK_OK(tk_ia3_new(m, &c, ps, &a));
    return a;
}

static void test_identity_and_linear(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 5});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_ia3 *a = make(m, &ps, 0, 0);
    if (a) {
        float x[16 * 40], y[16 * 40];
        tiny_logits(m, NULL, x);
        tiny_logits(m, tk_ia3_peft(a), y);
        CHECK(!memcmp(x, y, sizeof x), "fresh IA3 vectors (ones) leave the logits bit-identical");
        CHECK(ps.n == 2 * 3, "k, v, down per layer: %lld vectors", (long long)ps.n);
        tk_param *k = tk_ia3_vector(a, 0, TK_LIN_K), *d = tk_ia3_vector(a, 0, TK_LIN_DOWN);
        CHECK(k && k->ne[0] == 1 && k->ne[1] == 8 && d && d->ne[0] == 24 && d->ne[1] == 1, "PEFT's shapes [out, 1] and [1, in]");
        perturb(&ps, 3);
        lin_fd_check(tk_ia3_peft(a), &ps, m, 0, TK_LIN_K, NULL, "IA3 linear (output-scaled)");
        lin_fd_check(tk_ia3_peft(a), &ps, m, 1, TK_LIN_DOWN, NULL, "IA3 linear (feed-forward)");
        CHECK(tk_ia3_peft(a)->method->save_gguf == NULL, "IA3 has no GGUF layout");
        CHECK_ERR(tk_ia3_peft(a)->method->merge_linear(a, 0, TK_LIN_K, (float *)tk_model_linear(m, 0, TK_LIN_K)->data, 8, 16, 1.0f),
                  TK_ERR_UNSUPPORTED);
        CHECK(strstr(tk_last_error(), "bias") != NULL, "merge refusal names the bias: %s", tk_last_error());
    }
    tk_ia3_free(a);
    tk_params_free(&ps);
    /* feed-forward linears must be targets */
    tk_ia3_config c = {.targets = 1u << TK_LIN_V, .feedforward = 1u << TK_LIN_DOWN};
    CHECK_ERR(tk_ia3_new(m, &c, &ps, &a), TK_ERR_ARG);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_model(bool recompute, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 31});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_IA3;
    tk_ia3_config c = {.targets = 1u << TK_LIN_K | 1u << TK_LIN_V | 1u << TK_LIN_UP | 1u << TK_LIN_DOWN, .feedforward = 1u << TK_LIN_DOWN};
    p.peft_cfg = &c;
    p.max_rows = 2;
    p.max_cols = 8;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        perturb(tk_train_param_set(tc), 4);
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "base_model.", 5e-3, what);
        CHECK(n == 2 * 4, "%s: %d IA3 vectors checked", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

static void test_files(int interleaved) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = interleaved, .seed = 8});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_ia3 *a = make(m, &ps, 1u << TK_LIN_Q | 1u << TK_LIN_K | 1u << TK_LIN_V | 1u << TK_LIN_DOWN, 1u << TK_LIN_DOWN);
    if (a) {
        perturb(&ps, 9);
        const tk_peft *p = tk_ia3_peft(a);
        merge_check(m, p, 1e-5, interleaved ? "IA3 (permuted q/k)" : "IA3");
        char dir[] = "/tmp/takumi_ia3_XXXXXX", path[128], cmd[300];
        CHECK(mkdtemp(dir) != NULL, "temp dir");
        roundtrip_check(m, p, dir, "ia3", interleaved ? "IA3 folder (permuted q/k)" : "IA3 folder");
        /* feedforward_modules naming a module target_modules lacks */
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        const char *bad = "{\"peft_type\": \"IA3\", \"target_modules\": [\"k_proj\", \"v_proj\"], \"feedforward_modules\": [\"down_proj\"]}";
        CHECK_OK(tk_write_file_atomic(path, bad, strlen(bad)));
        tk_adapter *ad = NULL;
        CHECK_ERR(tk_adapter_load(dir, &ad), TK_ERR_FORMAT);
        CHECK(strstr(tk_last_error(), "feedforward_modules") && strstr(tk_last_error(), "subset"), "message: %s", tk_last_error());
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    tk_ia3_free(a);
    tk_params_free(&ps);
    tk_model_free(m);
}

/* Options that do not apply to IA3 are refused by name; config.json read back does not count. */
static void test_options(void) {
    tk_trainer_config c = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_set(&c, "method", "ia3"));
    CHECK_OK(tk_trainer_config_check_method(&c));
    CHECK_OK(tk_trainer_config_set(&c, "lora-r", "16"));
    CHECK_ERR(tk_trainer_config_check_method(&c), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "--lora-r") && strstr(tk_last_error(), "ia3"), "message: %s", tk_last_error());
    tk_trainer_config d = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_apply_json(&d, "{\"method\": \"ia3\", \"lora-r\": 8, \"lora-dropout\": 0.05}", "config.json"));
    CHECK_OK(tk_trainer_config_check_method(&d));
    CHECK_OK(tk_trainer_config_set(&d, "method", "dora"));
    CHECK_OK(tk_trainer_config_set(&d, "lora-dropout", "0.1"));
    CHECK_OK(tk_trainer_config_check_method(&d));
    tk_trainer_config_free(&c);
    tk_trainer_config_free(&d);
}

int main(void) {
    tk_set_threads(1);
    test_identity_and_linear();
    test_model(false, "IA3 whole model");
    test_model(true, "IA3 whole model, recompute");
    test_files(0);
    test_files(1);
    test_options();
    return tk_test_done("test_peft_ia3");
}
