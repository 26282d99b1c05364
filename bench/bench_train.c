/* bench_train: takumi's side of the training speed/memory comparison with PyTorch +
 * HF PEFT (bench/train_peer.py; bench/train.sh runs both). It does what the peer does,
 * step for step:
 *   - loads the model (SmolLM2-135M-Instruct Q4_1 by default; LoRA keeps the base in its
 *     stored dtype, full fine-tuning makes f32 master copies, as src/train/step.h says);
 *   - rows of B x T seeded random token ids, labels = the ids shifted by one (loss on
 *     T-1 tokens per row, mean over the batch, as HF's causal-LM loss);
 *   - per optimizer step: zero gradients, one forward + backward, one AdamW step
 *     (no clipping, no weight decay, constant lr: the peer's torch.optim.AdamW);
 *   - --warmup untimed steps, then --steps timed ones.
 * Prints one JSON object: tokens/s over the timed steps, median step time and its split
 * (forward, LM head + loss, backward, optimizer; and across the first three, the time in
 * products (tk_matmul*, tk_sgemm) and in attention), peak RSS (getrusage), RSS after load,
 * and the useful FLOPs of one step (useful_flops below) for MFU.
 * --precision fp32|bf16|auto: the base and LM-head products' precision (as takumi train's
 * --precision; the JSON's "dtype" is the one used).
 * Uses the internal training step API (src/train/step.h), hence -Isrc in bench/Makefile.
 * Usage: bench_train [--model M] [--method lora|full] [--batch B] [--seq T] [--threads N]
 *                    [--steps S] [--warmup W] [--lora-r R] [--lora-alpha A]
 *                    [--lora-dropout P] [--recompute] [--lr X] [--precision fp32|bf16|auto] */
#define _GNU_SOURCE
#include "takumi.h"
#include "train/step.h"
#include "train/trainer.h"
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return 0.0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static double rss_now_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double mb = -1;
    if (!f) return mb;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) { mb = atof(line + 6) / 1024.0; break; }
    fclose(f);
    return mb;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* Useful FLOPs of one training step (forward + backward) over B rows of T tokens, the convention of
 * MFU (multiply-add = 2 FLOPs; nothing recomputed, no causal-masked work counted): every linear
 * of the blocks plus the LM head, 2 per weight per token forward and 2 for dx; their dW (2 more)
 * only when they train (full), LoRA's adapters 6 per trainable parameter per token instead;
 * causal attention per layer and row: q·k and p·v each D·H·T(T+1) multiply-adds forward, twice
 * that backward. The same count is used for PyTorch's runs (bench/train.sh). */
static double useful_flops(const tk_model_config *c, int64_t B, int64_t T, bool full, int64_t trainable) {
    double C = c->dim, H = c->n_heads, KH = c->n_kv_heads, D = c->head_dim, F = c->hidden_dim, L = c->n_layers, V = c->n_vocab;
    double n_lin = L * (2 * C * H * D + 2 * C * KH * D + 3 * C * F) + V * C;
    double tok = (double)B * (double)T;
    double lin = tok * (4 * n_lin + (full ? 2 * n_lin : 6 * (double)trainable));
    double attn = 3 * L * (double)B * 2 * (2 * H * D * (double)T * (double)(T + 1) / 2);
    return lin + attn;
}

static int die(const char *what, tk_status st) {
    fprintf(stderr, "bench_train: %s: %s (%s)\n", what, tk_last_error(), tk_status_str(st));
    return 1;
}

int main(int argc, char **argv) {
    const char *model_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf", *method = "lora";
    int threads = 2, batch = 1, seq = 512, steps = 5, warmup = 1, lora_r = 8;
    double lora_alpha = 16, lora_dropout = 0, lr = -1;
    bool recompute = false;
    const char *precision = "fp32";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fprintf(stderr, "usage: bench_train [--model M] [--method lora|full] [--batch B] [--seq T] [--threads N]\n"
                            "       [--steps S] [--warmup W] [--lora-r R] [--lora-alpha A] [--lora-dropout P] [--recompute] [--lr X]\n"
                            "       [--precision fp32|bf16|auto]\n");
            return 0;
        }
        if (!strcmp(a, "--recompute")) { recompute = true; continue; }
        const char *v = (i + 1 < argc) ? argv[++i] : NULL;
        if (!v) { fprintf(stderr, "bench_train: %s needs a value\n", a); return 1; }
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--method")) method = v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--seq")) seq = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--lora-r")) lora_r = atoi(v);
        else if (!strcmp(a, "--lora-alpha")) lora_alpha = atof(v);
        else if (!strcmp(a, "--lora-dropout")) lora_dropout = atof(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--precision")) precision = v;
        else { fprintf(stderr, "bench_train: unknown option %s\n", a); return 1; }
    }
    bool full = !strcmp(method, "full");
    if ((!full && strcmp(method, "lora")) || threads < 1 || batch < 1 || seq < 2 || steps < 1 || warmup < 0 || lora_r < 1) {
        fprintf(stderr, "bench_train: need --method lora|full, --threads/--batch/--steps/--lora-r >= 1, --seq >= 2, --warmup >= 0\n");
        return 1;
    }
    if (lr < 0) lr = full ? 1e-5 : 1e-4; /* the peer's defaults */
    tk_set_threads(threads);
    int prec_req = !strcmp(precision, "fp32") ? TK_PRECISION_FP32 : !strcmp(precision, "bf16") ? TK_PRECISION_BF16
                 : !strcmp(precision, "auto") ? TK_PRECISION_AUTO : -1, prec = TK_PRECISION_FP32;
    if (prec_req < 0) { fprintf(stderr, "bench_train: --precision must be fp32, bf16 or auto\n"); return 1; }
    tk_status st = tk_train_precision_apply(prec_req, &prec);
    if (st) return die("--precision", st);

    double rss0 = rss_now_mb();
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    double t0 = now_s();
    st = tk_model_load(model_path, &mp, &m);
    if (st) return die(model_path, st);

    tk_train_params tp = tk_train_default_params();
    tp.method = full ? TK_TRAIN_FULL : TK_TRAIN_LORA;
    tp.lora.r = lora_r;
    tp.lora.alpha = (float)lora_alpha;
    tp.lora.dropout = (float)lora_dropout;
    tp.max_rows = batch;
    tp.max_cols = seq;
    tp.recompute = recompute;
    tk_train_ctx *tc = NULL;
    if ((st = tk_train_ctx_new(m, &tp, &tc))) return die("training context", st);
    double load_s = now_s() - t0;
    double rss_loaded = rss_now_mb();
    tk_param_set *ps = tk_train_param_set(tc);

    tk_adamw opt = tk_adamw_default();
    opt.lr = (float)lr;
    opt.weight_decay = 0;
    opt.clip = 0;
    opt.sched = TK_SCHED_CONSTANT;
    opt.warmup = 0;

    int64_t n = (int64_t)batch * seq;
    int32_t *ids = malloc((size_t)n * sizeof *ids), *target = malloc((size_t)n * sizeof *target);
    int n_steps = warmup + steps;
    double *step_s = calloc((size_t)n_steps, sizeof *step_s), *fwd_s = calloc((size_t)n_steps, sizeof *fwd_s);
    double *head_s = calloc((size_t)n_steps, sizeof *head_s), *bwd_s = calloc((size_t)n_steps, sizeof *bwd_s);
    double *opt_s = calloc((size_t)n_steps, sizeof *opt_s), *loss = calloc((size_t)n_steps, sizeof *loss);
    double *gemm_s = calloc((size_t)n_steps, sizeof *gemm_s), *attn_s = calloc((size_t)n_steps, sizeof *attn_s);
    if (!ids || !target || !step_s || !fwd_s || !head_s || !bwd_s || !opt_s || !loss || !gemm_s || !attn_s) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    int32_t n_vocab = tk_model_get_config(m)->n_vocab;
    uint64_t rng = 0x243F6A8885A308D3ull;
    tk_batch b = {.n_rows = batch, .n_cols = seq, .ids = ids, .pos = NULL, .seg = NULL};

    for (int s = 0; s < n_steps; s++) {
        for (int64_t i = 0; i < n; i++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            ids[i] = (int32_t)(rng % (uint64_t)n_vocab);
        }
        for (int r = 0; r < batch; r++)
            for (int t = 0; t < seq; t++)
                target[(int64_t)r * seq + t] = t + 1 < seq ? ids[(int64_t)r * seq + t + 1] : -1;
        double ts = now_s();
        tk_params_zero_grad(ps);
        double ls = 0, ws = 0;
        float scale = 1.0f / (float)((int64_t)batch * (seq - 1)); /* mean over loss tokens */
        if ((st = tk_train_step_fwd_bwd(tc, &b, target, NULL, scale, &ls, &ws))) return die("training step", st);
        double to = now_s();
        tk_adamw_step(&opt, ps, s, NULL);
        double te = now_s();
        tk_train_timing tt = tk_train_last_timing(tc);
        step_s[s] = te - ts;
        opt_s[s] = te - to;
        fwd_s[s] = tt.forward_s;
        head_s[s] = tt.head_s;
        bwd_s[s] = tt.backward_s;
        gemm_s[s] = tt.gemm_s;
        attn_s[s] = tt.attention_s;
        loss[s] = ws > 0 ? ls / ws : 0;
        fprintf(stderr, "bench_train: step %d/%d%s: loss %.4f, %.3f s (forward %.3f, head %.3f, backward %.3f, adamw %.3f; "
                "products %.3f, attention %.3f)\n", s + 1, n_steps, s < warmup ? " (warm-up)" : "", loss[s], step_s[s], fwd_s[s],
                head_s[s], bwd_s[s], opt_s[s], gemm_s[s], attn_s[s]);
    }

    double sum = 0;
    for (int s = warmup; s < n_steps; s++) sum += step_s[s];
    double flops = useful_flops(tk_model_get_config(m), batch, seq, full, ps->total);
    printf("{\"side\":\"takumi\",\"method\":\"%s\",\"dtype\":\"%s\",\"batch\":%d,\"seq\":%d,\"threads\":%d,"
           "\"steps_timed\":%d,\"warmup\":%d,\"tokens_per_s\":%.3f,\"step_s_median\":%.4f,"
           "\"forward_s_median\":%.4f,\"head_s_median\":%.4f,\"backward_s_median\":%.4f,\"adamw_s_median\":%.4f,"
           "\"gemm_s_median\":%.4f,\"attention_s_median\":%.4f,\"useful_flops_per_step\":%.6g,"
           "\"peak_rss_mb\":%.1f,\"rss_before_load_mb\":%.1f,\"rss_after_load_mb\":%.1f,\"train_ctx_mb\":%.1f,"
           "\"load_s\":%.2f,\"loss_first\":%.5f,\"loss_last\":%.5f,\"trainable_params\":%lld,\"recompute\":%s,"
           "\"lora\":",
           method, tk_train_precision_name(prec), batch, seq, tk_get_threads(), steps, warmup, (double)n * steps / sum,
           median(step_s + warmup, steps), median(fwd_s + warmup, steps), median(head_s + warmup, steps),
           median(bwd_s + warmup, steps), median(opt_s + warmup, steps), median(gemm_s + warmup, steps),
           median(attn_s + warmup, steps), flops, peak_rss_mb(), rss0, rss_loaded, (double)tk_train_bytes(tc) / (1 << 20),
           load_s, loss[0], loss[n_steps - 1], (long long)ps->total, recompute ? "true" : "false");
    if (full) printf("null");
    else printf("{\"r\":%d,\"alpha\":%g,\"dropout\":%g,\"targets\":\"all\"}", lora_r, lora_alpha, lora_dropout);
    printf(",\"lr\":%g,\"data\":\"random ids\",\"version\":\"%s\"}\n", lr, TK_VERSION);

    free(ids); free(target); free(step_s); free(fwd_s); free(head_s); free(bwd_s); free(opt_s); free(loss); free(gemm_s); free(attn_s);
    tk_train_ctx_free(tc);
    tk_model_free(m);
    return 0;
}
