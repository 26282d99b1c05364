/* The trainer (src/train/trainer.h, checkpoint.h, metrics.h, report.h):
 * - OpenAI's auto-epoch rule on a table worked out by hand from the rule's text;
 * - option parsing, bad values refused, config.json round trip;
 * - checkpoint round trip (weights, moments, state bit for bit), newest-K pruning, stale
 *   .tmp folders and foreign folders ignored, a mismatching parameter set refused;
 * - metrics.jsonl truncation (resume) drops later steps and a cut last line;
 * - gradient accumulation: 2 micro-batches of 1 row == 1 batch of 2 rows (gradients and
 *   loss, stories260K LoRA), and the same at trainer level (losses per step);
 * - the schedule in metrics.jsonl equals cosine-with-warmup computed here;
 * - --precision: auto resolves to bf16 exactly where bf16 products run (tk_train_precision_apply);
 * - a seed gives a bit-identical run; a run stopped at step 4 and resumed reproduces the
 *   uninterrupted run's train and validation losses bit for bit;
 * - early stopping triggers (and the overfitting warning) when validation data contradicts
 *   the training data; the report is written with its curves. */
#include "test.h"
#include "train/trainer.h"
#include "train/checkpoint.h"
#include "train/batch.h"
#include "backend/backend.h"
#include "core/core.h"
#include <sys/stat.h>
#include <cjson/cJSON.h>

static const char *g_tmp;

static void test_auto_epochs(void) {
    /* 3 epochs; n*3 < 100 -> ceil(100/n) capped at 25; n*3 > 25000 -> floor(25000/n), at least 1 */
    static const struct { uint64_t n; int e; } t[] = {
        {1, 25}, {3, 25}, {4, 25}, {5, 20}, {7, 15}, {10, 10}, {33, 4}, {34, 3}, {100, 3}, {8333, 3},
        {8334, 2}, {12500, 2}, {12501, 1}, {25000, 1}, {30000, 1}, {0, 0}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK(tk_trainer_auto_epochs(t[i].n) == t[i].e, "n=%llu: %d epochs, want %d", (unsigned long long)t[i].n,
              tk_trainer_auto_epochs(t[i].n), t[i].e);
}

static void test_config(void) {
    tk_trainer_config a = tk_trainer_config_default(), b = tk_trainer_config_default();
    const char *kv[][2] = {{"model", "m.gguf"}, {"data", "d.jsonl"}, {"out", "RUN"}, {"method", "full"}, {"lora-r", "16"},
                           {"lora-alpha", "32"}, {"lora-dropout", "0.1"}, {"lora-targets", "q,v,down_proj"}, {"rslora", NULL},
                           {"freeze-layers", "2"}, {"epochs", "4"}, {"batch-size", "2"}, {"grad-accum", "auto"}, {"lr", "3e-4"},
                           {"schedule", "linear"}, {"warmup", "0.1"}, {"weight-decay", "0.01"}, {"clip", "0.5"},
                           {"max-seq-len", "256"}, {"no-packing", NULL}, {"train-on-prompt", NULL}, {"val-split", "0.2"},
                           {"eval-every", "7"}, {"patience", "3"}, {"save-every", "11"}, {"keep-checkpoints", "5"},
                           {"max-steps", "99"}, {"seed", "18446744073709551615"}, {"threads", "2"}, {"template", "chatml"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_OK(tk_trainer_config_set(&a, kv[i][0], kv[i][1]));
    CHECK(a.method == TK_TRAIN_FULL && a.lora_r == 16 && a.rslora && !a.packing && a.train_on_prompt && a.grad_accum == 0 &&
          a.seed == UINT64_MAX && a.lora_targets == ((1u << TK_LIN_Q) | (1u << TK_LIN_V) | (1u << TK_LIN_DOWN)) &&
          a.schedule == TK_SCHED_LINEAR && a.warmup == 0.1, "parsed values");
    tk_buf ja = {0}, jb = {0};
    CHECK_OK(tk_trainer_config_json(&a, &ja));
    CHECK_OK(tk_trainer_config_apply_json(&b, ja.data, "config.json"));
    CHECK_OK(tk_trainer_config_json(&b, &jb));
    CHECK(ja.data && jb.data && !strcmp(ja.data, jb.data), "round trip\n%s\n%s", ja.data, jb.data);
    /* the defaults (from the option table) as config.json held them before the table existed */
    static const char *const k_default_json =
        "{\"model\":null,\"tokenizer\":null,\"data\":null,\"format\":\"auto\",\"template\":\"auto\",\"out\":null,"
        "\"method\":\"lora\",\"objective\":\"sft\",\"task\":\"lm\",\"labels\":null,\"pooling\":\"last\",\"loss\":\"auto\",\"beta\":\"auto\",\"label-smoothing\":\"auto\","
        "\"simpo-gamma\":\"auto\",\"desirable-weight\":\"auto\",\"undesirable-weight\":\"auto\",\"center-rewards\":\"auto\","
        "\"precompute-ref\":false,\"teacher\":null,\"distill-loss\":\"auto\",\"jsd-beta\":\"auto\",\"temperature\":\"auto\","
        "\"teacher-context\":null,\"teacher-answers\":false,\"max-new-tokens\":\"auto\","
        "\"grader\":null,\"judge\":null,\"group-size\":\"auto\",\"epsilon\":\"auto\",\"epsilon-high\":\"auto\","
        "\"passes\":1,\"scale-rewards\":\"group\",\"max-grader-failures\":-1,\"rounds\":\"auto\",\"self-train\":\"sft\",\"min-score\":\"auto\","
        "\"lora-r\":8,\"lora-alpha\":16,\"lora-dropout\":0.050000000000000003,"
        "\"lora-targets\":\"all\",\"lora-init\":\"kaiming\",\"lora-plus-ratio\":0,\"rslora\":false,\"quantize-base\":\"none\",\"num-virtual-tokens\":20,\"prefix-projection\":false,"
        "\"encoder-hidden-size\":\"auto\",\"prompt-init\":\"random\",\"prompt-init-text\":null,\"adapter-placement\":\"pfeiffer\",\"adapter-reduction\":16,\"adapter-act\":\"auto\",\"adalora-init-r\":12,\"adalora-target-r\":8,\"adalora-tinit\":0,\"adalora-tfinal\":0,\"adalora-delta-t\":1,\"adalora-orth-reg\":0.5,\"augment\":\"auto\",\"augment-model\":null,\"freeze-layers\":0,\"epochs\":\"auto\",\"batch-size\":\"auto\","
        "\"grad-accum\":\"auto\",\"lr\":\"auto\",\"lr-multiplier\":1,\"schedule\":\"cosine\",\"warmup\":\"auto\",\"weight-decay\":0,\"clip\":1,"
        "\"max-seq-len\":\"auto\",\"packing\":true,\"pack-len\":\"auto\",\"train-on-prompt\":false,\"val\":null,"
        "\"val-split\":0,\"eval-every\":\"auto\",\"patience\":0,\"save-every\":\"auto\",\"keep-checkpoints\":2,"
        "\"max-steps\":0,\"seed\":\"42\",\"threads\":0,\"precision\":\"auto\",\"recompute\":false,\"samples\":3,\"sample-tokens\":64,\"eval-config\":null}";
    tk_trainer_config dflt = tk_trainer_config_default();
    tk_buf jd = {0};
    CHECK_OK(tk_trainer_config_json(&dflt, &jd));
    CHECK(jd.data && !strcmp(jd.data, k_default_json), "default config.json\n%s\nwant\n%s", jd.data, k_default_json);
    tk_buf_free(&jd);
    tk_trainer_config_free(&dflt);
    /* the resume check names exactly the differing options a resume must match */
    tk_buf diff = {0};
    CHECK_OK(tk_trainer_config_diff(ja.data, ja.data, &diff));
    CHECK(diff.len == 0, "no difference with itself: %s", diff.data ? diff.data : "");
    {   /* a checkpoint older than an option (no "center-rewards" key) resumes when the option is at its default */
        tk_trainer_config d0 = tk_trainer_config_default();
        tk_buf now = {0}, old = {0}, d2 = {0};
        CHECK_OK(tk_trainer_config_json(&d0, &now));
        const char *k = strstr(now.data, "\"center-rewards\":\"auto\",");
        if (k) { tk_buf_append(&old, now.data, (size_t)(k - now.data)); tk_buf_append(&old, k + 24, strlen(k + 24) + 1); }
        CHECK(k && old.data, "default JSON has center-rewards");
        if (old.data) CHECK_OK(tk_trainer_config_diff(old.data, now.data, &d2));
        CHECK(d2.len == 0, "an option newer than the checkpoint at its default: %s", d2.data ? d2.data : "");
        tk_buf_free(&now); tk_buf_free(&old); tk_buf_free(&d2);
        tk_trainer_config_free(&d0);
    }
    tk_trainer_config e = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_apply_json(&e, ja.data, "config.json"));
    CHECK_OK(tk_trainer_config_set(&e, "lora-r", "4"));
    CHECK_OK(tk_trainer_config_set(&e, "packing", "true"));
    CHECK_OK(tk_trainer_config_set(&e, "samples", "9"));    /* free to change on resume */
    tk_buf je = {0};
    CHECK_OK(tk_trainer_config_json(&e, &je));
    CHECK_OK(tk_trainer_config_diff(ja.data, je.data, &diff));
    CHECK(diff.data && strstr(diff.data, "--lora-r: checkpoint 16, now 4") && strstr(diff.data, "--packing: checkpoint false, now true") &&
          !strstr(diff.data, "samples"), "resume differences: %s", diff.data ? diff.data : "");
    tk_buf_free(&je);
    tk_buf_free(&diff);
    tk_trainer_config_free(&e);
    const char *bad[][2] = {{"lora-dropout", "1"}, {"lr", "-1"}, {"lr", "0"}, {"lora-targets", "q,x"}, {"epochs", "0"},
                            {"method", "qlora"}, {"schedule", "step"}, {"max-seq-len", "1"}, {"val-split", "1"}, {"nope", "1"},
                            {"seed", "-3"}, {"batch-size", "two"}, {"template", "nonesuch"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_status st = tk_trainer_config_set(&b, bad[i][0], bad[i][1]);
        CHECK(st == TK_ERR_ARG && strstr(tk_last_error(), bad[i][0]), "--%s %s: %s", bad[i][0], bad[i][1], tk_last_error());
    }
    int n;
    const tk_trainer_option *o = tk_trainer_options(&n);
    int documented = 1;
    for (int i = 0; i < n; i++) if (!o[i].dflt || !*o[i].dflt || !o[i].help || !*o[i].help) documented = 0;
    CHECK(documented && n >= 30, "every option has a default and help (%d options)", n);
    tk_buf_free(&ja); tk_buf_free(&jb);
    tk_trainer_config_free(&a); tk_trainer_config_free(&b);
}

static void fill_set(tk_param_set *ps, uint64_t seed, int64_t n0, int64_t n1) {
    int64_t ne0[2] = {n0, 3}, ne1[1] = {n1};
    CHECK_OK(tk_params_add(ps, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", 2, ne0, NULL, true, NULL));
    CHECK_OK(tk_params_add(ps, "model.norm.weight", 1, ne1, NULL, false, NULL));
    uint64_t x = seed;
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ps->p[i].w[j] = (float)((int64_t)(x >> 33) - (1ll << 30)) * 1e-9f;
            ps->p[i].m[j] = ps->p[i].w[j] * 0.5f;
            ps->p[i].v[j] = ps->p[i].w[j] * ps->p[i].w[j];
        }
}

static void test_checkpoint(void) {
    char run[512];
    snprintf(run, sizeof run, "%s/ckpt", g_tmp);
    tk_param_set ps = {0}, back = {0}, other = {0};
    fill_set(&ps, 1, 5, 7);
    fill_set(&back, 2, 5, 7);
    fill_set(&other, 3, 6, 7);
    tk_train_state s = tk_train_state_init();
    s.epoch = 2; s.row = 5; s.total_steps = 40; s.counter = 123456789012345ull; s.seed = UINT64_MAX; s.data_hash = 0xfedcba9876543210ull;
    s.best_val = 1.0 / 3.0; s.best_step = 2; s.bad_evals = 1; s.prev_val = 0.1 + 0.2; s.train_loss_sum = 1e-17; s.train_weight_sum = 7;
    s.tokens_seen = 1ll << 40; s.elapsed_s = 12.5;
    for (int step = 1; step <= 3; step++) {
        s.step = step;
        CHECK_OK(tk_ckpt_save(run, &ps, &s, "{\"lr\":0.001}", 2, NULL));
    }
    char p[700];
    snprintf(p, sizeof p, "%s/checkpoints/step-00000001", run);
    CHECK(access(p, F_OK) != 0, "step 1 should be pruned (keep 2)");
    snprintf(p, sizeof p, "%s/checkpoints/step-00000002/params.safetensors", run);
    CHECK(access(p, F_OK) == 0, "step 2 kept");
    /* leftovers of a crash and a foreign folder are not checkpoints */
    snprintf(p, sizeof p, "%s/checkpoints/step-00000009.tmp", run);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/checkpoints/step-00000009.tmp/params.safetensors", run);
    FILE *f = fopen(p, "w");
    if (f) { fputs("partial", f); fclose(f); }
    snprintf(p, sizeof p, "%s/checkpoints/step-00000010", run);
    mkdir(p, 0755);
    char *latest = NULL;
    CHECK_OK(tk_ckpt_latest(run, &latest));
    CHECK(latest && strstr(latest, "step-00000003"), "latest %s", latest ? latest : "(none)");
    tk_train_state r;
    char *cfg = NULL;
    if (latest) CHECK_OK(tk_ckpt_load(latest, &back, &r, &cfg, NULL, NULL, NULL));
    int same = 1;
    for (int64_t i = 0; i < ps.n; i++)
        if (memcmp(ps.p[i].w, back.p[i].w, (size_t)ps.p[i].n * 4) || memcmp(ps.p[i].m, back.p[i].m, (size_t)ps.p[i].n * 4) ||
            memcmp(ps.p[i].v, back.p[i].v, (size_t)ps.p[i].n * 4)) same = 0;
    CHECK(same, "weights and moments round trip bit for bit");
    CHECK(r.step == 3 && r.epoch == 2 && r.row == 5 && r.total_steps == 40 && r.counter == s.counter && r.seed == UINT64_MAX &&
          r.data_hash == s.data_hash && r.best_val == s.best_val && r.best_step == 2 && r.bad_evals == 1 && r.prev_val == s.prev_val &&
          isnan(r.prev_train) && r.train_loss_sum == s.train_loss_sum && r.train_weight_sum == 7 && r.tokens_seen == s.tokens_seen &&
          r.elapsed_s == 12.5 && !r.done, "state round trip");
    CHECK(cfg && !strcmp(cfg, "{\"lr\":0.001}"), "config %s", cfg ? cfg : "(null)");
    free(cfg);
    tk_status st = latest ? tk_ckpt_load(latest, &other, &r, NULL, NULL, NULL, NULL) : TK_ERR_ARG;
    CHECK(st == TK_ERR_FORMAT, "a different parameter shape is refused: %s", tk_last_error());
    free(latest);
    s.step = 4;
    CHECK_OK(tk_ckpt_save(run, &ps, &s, NULL, 2, NULL));
    snprintf(p, sizeof p, "%s/checkpoints/step-00000009.tmp", run);
    CHECK(access(p, F_OK) != 0, "stale .tmp folder removed by the next save");
    /* a crash while pruning leaves the old checkpoint renamed "<step>.old.tmp" and partly emptied
     * (never a step-N folder without its state, which would never be pruned): the next save
     * removes it, and exactly `keep` checkpoints remain */
    snprintf(p, sizeof p, "%s/checkpoints/step-00000003", run);
    char q[760];
    snprintf(q, sizeof q, "%s.old.tmp", p);
    CHECK(rename(p, q) == 0, "simulated crash mid-prune");
    snprintf(q, sizeof q, "%s.old.tmp/trainer_state.json", p);
    unlink(q);
    s.step = 5;
    CHECK_OK(tk_ckpt_save(run, &ps, &s, NULL, 2, NULL));
    snprintf(q, sizeof q, "%s.old.tmp", p);
    CHECK(access(q, F_OK) != 0, "half-removed checkpoint cleaned by the next save");
    int n_step = 0;
    for (int k = 1; k <= 10; k++) {
        snprintf(q, sizeof q, "%s/checkpoints/step-%08d/trainer_state.json", run, k);
        n_step += access(q, F_OK) == 0;
    }
    CHECK(n_step == 2, "%d complete checkpoints after pruning (keep 2)", n_step);
    tk_params_free(&ps); tk_params_free(&back); tk_params_free(&other);
}

static void test_metrics_truncate(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/metrics.jsonl", g_tmp);
    FILE *f = fopen(p, "w");
    if (!f) { CHECK(0, "cannot write %s", p); return; }
    for (int s = 1; s <= 5; s++) fprintf(f, "{\"step\":%d,\"train_loss\":%d.5,\"lr\":1}\n", s, s);
    fprintf(f, "{\"step\":3,\"valid_loss\":2.5}\n{\"step\":6,\"train_lo");   /* cut by a crash */
    fclose(f);
    CHECK_OK(tk_metrics_truncate(p, 3));
    tk_metrics_series ms;
    CHECK_OK(tk_metrics_read(p, &ms));
    CHECK(ms.n_train == 3 && ms.train_step[2] == 3 && ms.train_loss[2] == 3.5 && ms.n_valid == 1, "after truncation: %lld train, %lld valid",
          (long long)ms.n_train, (long long)ms.n_valid);
    tk_metrics_series_free(&ms);
}

static const char *g_stories, *g_tok512;

/* Grads of 2 micro-batches (1 row each) == grads of one 2-row batch. */
static void test_accum_gradients(void) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(g_stories, &mp, &m));
    if (!m) return;
    tk_sft_data d = {0};
    for (int e = 0; e < 2; e++) {
        int32_t ids[24];
        uint8_t mk[24];
        int n = e ? 17 : 23;
        for (int i = 0; i < n; i++) { ids[i] = 1 + (53 * (e + 2) + 29 * i) % 500; mk[i] = (uint8_t)(i >= 5); }
        CHECK_OK(tk_sft_add(&d, ids, mk, n, 64, 1));
    }
    int64_t order[2] = {0, 1};
    tk_rows rows;
    CHECK_OK(tk_rows_pack(&d, order, 2, 32, false, &rows));
    tk_train_params tp = tk_train_default_params();
    tp.lora.dropout = 0;
    tp.lora.seed = 5;
    tp.max_rows = 2;
    tp.max_cols = 32;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &tp, &tc));
    if (!tc) { tk_rows_free(&rows); tk_sft_free(&d); tk_model_free(m); return; }
    tk_param_set *ps = tk_train_param_set(tc);
    /* B is zero at initialisation (A would get no gradient): give it values */
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = 0.01f * (float)((j * 7 + i * 3) % 11 - 5);
    int64_t W = tk_rows_targets(&d, &rows, 0, 2);
    float **g1 = calloc((size_t)ps->n, sizeof *g1);
    tk_batch_buf bb = {0};
    double l1 = 0, w1 = 0, l2 = 0, w2 = 0;
    tk_params_zero_grad(ps);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(tk_batch_fill(&bb, &d, &rows, k, 1));
        CHECK_OK(tk_train_step_fwd_bwd(tc, &bb.b, bb.target, NULL, 1.0f / (float)W, &l1, &w1));
    }
    for (int64_t i = 0; i < ps->n; i++) {
        g1[i] = malloc((size_t)ps->p[i].n * sizeof(float));
        memcpy(g1[i], ps->p[i].g, (size_t)ps->p[i].n * sizeof(float));
    }
    tk_params_zero_grad(ps);
    CHECK_OK(tk_batch_fill(&bb, &d, &rows, 0, 2));
    CHECK_OK(tk_train_step_fwd_bwd(tc, &bb.b, bb.target, NULL, 1.0f / (float)W, &l2, &w2));
    double maxd = 0, maxg = 0;
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++) {
            maxd = fmax(maxd, fabs((double)g1[i][j] - ps->p[i].g[j]));
            maxg = fmax(maxg, fabs((double)ps->p[i].g[j]));
        }
    printf("accumulation: max |g_accum - g_batch| = %.3g (max |g| %.3g), loss %.9g vs %.9g\n", maxd, maxg, l1 / w1, l2 / w2);
    CHECK(maxg > 0, "gradients are zero");
    CHECK(maxd <= 1e-5 * maxg, "accumulated gradients differ: %g (max %g)", maxd, maxg);
    CHECK(w1 == (double)W && w2 == (double)W, "weights %g %g vs %lld", w1, w2, (long long)W);
    CHECK_NEAR(l1, l2, 1e-6 * fabs(l2));
    for (int64_t i = 0; i < ps->n; i++) free(g1[i]);
    free(g1);
    tk_batch_buf_free(&bb);
    tk_train_ctx_free(tc);
    tk_rows_free(&rows);
    tk_sft_free(&d);
    tk_model_free(m);
}

/* ---- whole runs on stories260K ---------------------------------------------------------- */

static char g_data[512], g_bad_val[512];

static void write_data(void) {
    static const char *names[] = {"Lily", "Tom", "Sue", "Ben", "Max", "Mia", "Sam", "Ann"};
    static const char *things[] = {"ball", "cat", "dog", "tree", "cake", "car", "boat", "kite"};
    snprintf(g_data, sizeof g_data, "%s/stories.jsonl", g_tmp);
    snprintf(g_bad_val, sizeof g_bad_val, "%s/contradict.jsonl", g_tmp);
    FILE *f = fopen(g_data, "w"), *v = fopen(g_bad_val, "w");
    if (!f || !v) { CHECK(0, "cannot write test data"); if (f) fclose(f); if (v) fclose(v); return; }
    for (int i = 0; i < 20; i++) {
        const char *n = names[i % 8], *t = things[(i * 3) % 8];
        fprintf(f, "{\"prompt\":\"Tell me about %s and the %s.\",\"completion\":\"%s had a %s. %s was happy.\"}\n", n, t, n, t, n);
    }
    /* the same prompts with other answers: training on g_data makes these less likely */
    for (int i = 0; i < 6; i++) {
        const char *n = names[i % 8], *t = things[(i * 3) % 8];
        fprintf(v, "{\"prompt\":\"Tell me about %s and the %s.\",\"completion\":\"No. The %s ran away from %s, who cried.\"}\n", n, t, t, n);
    }
    fclose(f);
    fclose(v);
}

typedef struct stopper { int64_t at; tk_train_control *ctl; int64_t evals, warnings, early; } stopper;
static void on_ev(const tk_train_event *e, void *ud) {
    stopper *s = ud;
    if (e->kind == TK_EV_STEP && s->at > 0 && e->step == s->at) atomic_store(&s->ctl->pause, 1);
    if (e->kind == TK_EV_EVAL) s->evals++;
    if (e->kind == TK_EV_WARNING) s->warnings++;
    if (e->kind == TK_EV_INFO && e->message && strstr(e->message, "early stop")) s->early++;
}

static tk_trainer_config base_config(const char *out) {
    tk_trainer_config c = tk_trainer_config_default();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, out);
    const char *kv[][2] = {{"model", g_stories}, {"tokenizer", g_tok512}, {"data", g_data}, {"out", dir}, {"max-seq-len", "200"},
                           {"val-split", "0.2"}, {"eval-every", "3"}, {"save-every", "3"}, {"samples", "0"}, {"seed", "11"},
                           {"epochs", "2"}, {"lr", "2e-3"}, {"threads", "1"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_OK(tk_trainer_config_set(&c, kv[i][0], kv[i][1]));
    return c;
}

static tk_status run_cfg(tk_trainer_config *c, stopper *s) {
    tk_train_control ctl = {0};
    stopper dummy = {0};
    if (!s) s = &dummy;
    s->ctl = &ctl;
    return tk_trainer_run(c, on_ev, s, &ctl);
}

static tk_metrics_series read_series(const char *out) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", g_tmp, out);
    tk_metrics_series ms;
    CHECK_OK(tk_metrics_read(p, &ms));
    return ms;
}

static int same_series(const tk_metrics_series *a, const tk_metrics_series *b, bool valid) {
    if (a->n_train != b->n_train || (valid && a->n_valid != b->n_valid)) return 0;
    for (int64_t i = 0; i < a->n_train; i++)
        if (a->train_step[i] != b->train_step[i] || memcmp(&a->train_loss[i], &b->train_loss[i], sizeof(double)) ||
            memcmp(&a->lr[i], &b->lr[i], sizeof(double))) return 0;
    for (int64_t i = 0; valid && i < a->n_valid; i++)
        if (a->valid_step[i] != b->valid_step[i] || memcmp(&a->valid_loss[i], &b->valid_loss[i], sizeof(double)) ||
            memcmp(&a->valid_acc[i], &b->valid_acc[i], sizeof(double))) return 0;
    return 1;
}

/* tk_train_precision_apply: fp32 is fp32; auto is bf16 exactly where the backend runs bf16 products; an explicit
 * bf16 without them (TK_NO_BF16=1 simulates a CPU without AVX512-BF16) is refused naming why, auto falls back */
static void test_precision(void) {
    int used = -1;
    CHECK_OK(tk_train_precision_apply(TK_PRECISION_FP32, &used));
    CHECK(used == TK_PRECISION_FP32 && !strcmp(tk_train_precision_name(used), "fp32"), "fp32 -> %d", used);
    bool has = tk_matmul_set_precision(true) == TK_OK;
    CHECK_OK(tk_matmul_set_precision(false));
    CHECK_OK(tk_train_precision_apply(TK_PRECISION_AUTO, &used));
    CHECK(used == (has ? TK_PRECISION_BF16 : TK_PRECISION_FP32), "auto -> %s on a CPU %s bf16 products", tk_train_precision_name(used),
          has ? "with" : "without");
    tk_status st = tk_train_precision_apply(TK_PRECISION_BF16, &used);
    CHECK(has ? st == TK_OK && used == TK_PRECISION_BF16 : st == TK_ERR_UNSUPPORTED, "explicit bf16: %s", tk_status_str(st));
    setenv("TK_NO_BF16", "1", 1);
    CHECK_OK(tk_train_precision_apply(TK_PRECISION_AUTO, &used));
    CHECK(used == TK_PRECISION_FP32, "auto under TK_NO_BF16=1 -> %s", tk_train_precision_name(used));
    st = tk_train_precision_apply(TK_PRECISION_BF16, &used);
    CHECK(st == TK_ERR_UNSUPPORTED && strstr(tk_last_error(), "TK_NO_BF16") && used == TK_PRECISION_FP32,
          "bf16 under TK_NO_BF16=1: %s (%s)", tk_status_str(st), tk_last_error());
    unsetenv("TK_NO_BF16");
    CHECK_OK(tk_matmul_set_precision(false));
}

static void test_runs(void) {
    write_data();
    /* A: uninterrupted; B: same seed; C: stopped after step 4, resumed */
    tk_trainer_config a = base_config("runA"), b = base_config("runB"), c = base_config("runC");
    CHECK_OK(run_cfg(&a, NULL));
    CHECK_OK(run_cfg(&b, NULL));
    stopper s = {.at = 4};
    CHECK_OK(run_cfg(&c, &s));
    tk_metrics_series mc = read_series("runC");
    CHECK(mc.n_train == 4, "stopped run has %lld steps", (long long)mc.n_train);
    tk_metrics_series_free(&mc);
    /* a fresh run into an existing run folder is refused */
    tk_status st = run_cfg(&c, NULL);
    CHECK(st == TK_ERR_ARG && strstr(tk_last_error(), "--resume"), "existing run: %s", tk_last_error());
    /* resuming with a different trajectory option is refused */
    CHECK_OK(tk_trainer_config_set(&c, "resume", NULL));
    CHECK_OK(tk_trainer_config_set(&c, "lr", "1e-3"));
    st = run_cfg(&c, NULL);
    CHECK(st == TK_ERR_ARG && strstr(tk_last_error(), "--lr"), "changed lr: %s %s", tk_status_str(st), tk_last_error());
    CHECK_OK(tk_trainer_config_set(&c, "lr", "2e-3"));
    CHECK_OK(run_cfg(&c, NULL));
    tk_metrics_series ma = read_series("runA"), mb = read_series("runB");
    mc = read_series("runC");
    CHECK(ma.n_train >= 10 && ma.n_valid >= 3, "run A: %lld steps, %lld evaluations", (long long)ma.n_train, (long long)ma.n_valid);
    CHECK(same_series(&ma, &mb, true), "same seed, different losses");
    CHECK(same_series(&ma, &mc, true), "stopped + resumed run differs from the uninterrupted one");
    CHECK(ma.train_loss[ma.n_train - 1] < ma.train_loss[0], "loss did not fall: %g -> %g", ma.train_loss[0], ma.train_loss[ma.n_train - 1]);
    /* the schedule: cosine to 0 after a linear warmup of round(0.03 * total) steps */
    int64_t total = ma.n_train, warm = (int64_t)floor(0.03 * (double)total + 0.5);
    int lr_ok = 1;
    for (int64_t i = 0; i < total; i++) {
        double want = i < warm ? 2e-3 * (double)(i + 1) / (double)warm
                               : 2e-3 * 0.5 * (1 + cos(M_PI * (double)(i - warm) / (double)(total - warm)));
        if (fabs(ma.lr[i] - want) > 1e-6 * 2e-3) { lr_ok = 0; fprintf(stderr, "lr[%lld] %g want %g\n", (long long)i, ma.lr[i], want); }
    }
    CHECK(lr_ok, "learning rates follow cosine with warmup");
    char p[700];
    snprintf(p, sizeof p, "%s/runA/report.html", g_tmp);
    char *html = NULL;
    CHECK_OK(tk_read_file(p, &html, NULL));
    CHECK(html && strstr(html, "<svg") && strstr(html, "<polyline") && strstr(html, "validation loss") && strstr(html, "</html>"),
          "report.html lacks its charts");
    free(html);
    snprintf(p, sizeof p, "%s/runA/config.json", g_tmp);
    char *cj = NULL;
    CHECK_OK(tk_read_file(p, &cj, NULL));
    cJSON *o = cj ? cJSON_Parse(cj) : NULL;
    const cJSON *ga = cJSON_GetObjectItemCaseSensitive(o, "grad-accum"), *ep = cJSON_GetObjectItemCaseSensitive(o, "epochs");
    CHECK(cJSON_IsNumber(ga) && cJSON_IsNumber(ep) && ep->valuedouble == 2, "config.json holds resolved values");
    cJSON_Delete(o);
    free(cj);
    tk_metrics_series_free(&ma); tk_metrics_series_free(&mb); tk_metrics_series_free(&mc);
    tk_trainer_config_free(&a); tk_trainer_config_free(&b); tk_trainer_config_free(&c);

    /* accumulation at trainer level: batch 2 x accum 1 == batch 1 x accum 2 (no dropout, no packing); in fp32:
     * with bf16 products (auto on an AVX512-BF16 CPU) the 1-row micro-batches' few-row products stay fp32 (row
     * kernels) while the 2-row ones round to bf16, which moves the losses by ~1e-3 relative */
    tk_trainer_config d = base_config("runD"), e = base_config("runE");
    const char *common[][2] = {{"no-packing", NULL}, {"lora-dropout", "0"}, {"max-steps", "4"}, {"val-split", "0"}, {"precision", "fp32"}};
    for (size_t i = 0; i < 5; i++) { CHECK_OK(tk_trainer_config_set(&d, common[i][0], common[i][1])); CHECK_OK(tk_trainer_config_set(&e, common[i][0], common[i][1])); }
    CHECK_OK(tk_trainer_config_set(&d, "batch-size", "2"));
    CHECK_OK(tk_trainer_config_set(&d, "grad-accum", "1"));
    CHECK_OK(tk_trainer_config_set(&e, "batch-size", "1"));
    CHECK_OK(tk_trainer_config_set(&e, "grad-accum", "2"));
    CHECK_OK(run_cfg(&d, NULL));
    CHECK_OK(run_cfg(&e, NULL));
    tk_metrics_series md = read_series("runD"), me = read_series("runE");
    CHECK(md.n_train == 4 && me.n_train == 4, "steps %lld %lld", (long long)md.n_train, (long long)me.n_train);
    for (int64_t i = 0; i < md.n_train && i < me.n_train; i++) CHECK_NEAR(md.train_loss[i], me.train_loss[i], 2e-5 * md.train_loss[i]);
    tk_metrics_series_free(&md); tk_metrics_series_free(&me);
    tk_trainer_config_free(&d); tk_trainer_config_free(&e);

    /* early stopping: validation answers contradict the training answers */
    tk_trainer_config f = base_config("runF");
    const char *es[][2] = {{"val-split", "0"}, {"val", g_bad_val}, {"eval-every", "1"}, {"patience", "2"}, {"lr", "1e-2"},
                           {"epochs", "6"}, {"save-every", "100"}};
    for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) CHECK_OK(tk_trainer_config_set(&f, es[i][0], es[i][1]));
    stopper sf = {0};
    CHECK_OK(run_cfg(&f, &sf));
    tk_metrics_series mf = read_series("runF");
    int64_t planned = 6 * 10;   /* 16 training examples, 2 per 200-token row: 8 rows a epoch... bounded by 60 */
    CHECK(sf.early == 1 && mf.n_train < planned, "early stop: %lld events, %lld steps", (long long)sf.early, (long long)mf.n_train);
    CHECK(sf.warnings >= 1, "no overfitting warning");
    int has_event = 0;
    for (int64_t i = 0; i < mf.n_events; i++) if (!strcmp(mf.event_name[i], "early_stop")) has_event = 1;
    CHECK(has_event, "metrics.jsonl lacks the early_stop event");
    printf("early stop after %lld steps (%lld evaluations, %lld warnings)\n", (long long)mf.n_train, (long long)sf.evals, (long long)sf.warnings);
    tk_metrics_series_free(&mf);
    tk_trainer_config_free(&f);
}

int main(void) {
    char tmpl[] = "/tmp/takumi_test_trainer_XXXXXX";
    g_tmp = mkdtemp(tmpl);
    tk_set_threads(1);   /* one thread: fast on a shared machine, and what the runs below use */
    if (!g_tmp) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    test_auto_epochs();
    test_config();
    test_checkpoint();
    test_metrics_truncate();
    test_precision();
    g_stories = tk_test_shared("models/stories260K/hf");
    g_tok512 = tk_test_shared("models/stories260K/llama2c/tok512.bin");
    const char *bin = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    if (!tk_test_require(g_stories && g_tok512 && bin ? g_stories : NULL, "models/stories260K")) {
        char *s = strdup(g_stories), *t = strdup(g_tok512);
        g_stories = bin;
        test_accum_gradients();
        g_stories = s;
        g_tok512 = t;
        test_runs();
        free(s); free(t);
    }
    if (!tk_test_failures) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    return tk_test_done("test_trainer");
}
