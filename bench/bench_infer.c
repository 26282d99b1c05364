/* bench_infer: takumi's side of the inference speed comparison with llama.cpp's
 * llama-bench (bench/infer.sh runs both). It measures the same two things, the
 * same way llama-bench does:
 *   pp<P>: a fresh KV cache, P random token ids evaluated as one prompt (prefill),
 *          logits of the last token only;
 *   tg<G>: a fresh KV cache, G single-token decode steps starting at position 0,
 *          each feeding a random token id and computing its logits (no sampling).
 * Each is preceded by one warm-up run and repeated --reps times; tokens/s of every
 * repetition and their median are printed as one JSON object on stdout.
 * Both are measured in both session precisions (tk_session_set_exact): "pp"/"tg" in
 * the fast one (takumi's default: 8-bit activations in the fused integer kernels for
 * quantized weights, as llama.cpp; prefill products in bf16 where the CPU has
 * AVX512-BF16) and "pp_exact"/"tg_exact" with f32 activations (--exact); --precision
 * picks one.
 * Usage: bench_infer [--model M] [--threads N] [--prompt P] [--gen G] [--reps R]
 *                    [--precision both|exact|fast] */
#define _GNU_SOURCE
#include "takumi.h"

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

/* Same kind of ids llama-bench feeds: uniformly random over the vocabulary. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static int32_t rand_token(int32_t n_vocab) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (int32_t)(rng_state % (uint64_t)n_vocab);
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

static int die(const char *what, tk_status st) {
    fprintf(stderr, "bench_infer: %s: %s (%s)\n", what, tk_last_error(), tk_status_str(st));
    return 1;
}

/* One prefill of n random ids into an emptied cache; returns seconds. */
static tk_status run_prompt(tk_session *s, int32_t *ids, int n, int32_t n_vocab, float *logits, double *secs) {
    for (int i = 0; i < n; i++) ids[i] = rand_token(n_vocab);
    tk_session_truncate(s, 0);
    double t0 = now_s();
    tk_status st = tk_session_eval(s, ids, n, logits);
    *secs = now_s() - t0;
    return st;
}

/* n single-token decode steps from an emptied cache; returns seconds. */
static tk_status run_gen(tk_session *s, int n, int32_t n_vocab, float *logits, double *secs) {
    tk_session_truncate(s, 0);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        int32_t id = rand_token(n_vocab);
        tk_status st = tk_session_eval(s, &id, 1, logits);
        if (st != TK_OK) return st;
    }
    *secs = now_s() - t0;
    return TK_OK;
}

static void print_samples(const char *name, int n_tok, const double *tps, int reps) {
    printf("\"%s\":{\"n_tokens\":%d,\"tok_s_median\":%.3f,\"tok_s\":[", name, n_tok, median(tps, reps));
    for (int r = 0; r < reps; r++) printf("%s%.3f", r ? "," : "", tps[r]);
    printf("]}");
}

int main(int argc, char **argv) {
    const char *model_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    int threads = 2, n_prompt = 512, n_gen = 128, reps = 3;
    const char *precision = "both";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fprintf(stderr, "usage: bench_infer [--model M] [--threads N] [--prompt P] [--gen G] [--reps R] [--precision both|exact|fast]\n");
            return 0;
        }
        if (!v) { fprintf(stderr, "bench_infer: %s needs a value\n", a); return 1; }
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--prompt")) n_prompt = atoi(v);
        else if (!strcmp(a, "--gen")) n_gen = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--precision")) precision = v;
        else { fprintf(stderr, "bench_infer: unknown option %s\n", a); return 1; }
        i++;
    }
    bool want[2] = {!strcmp(precision, "both") || !strcmp(precision, "fast"), !strcmp(precision, "both") || !strcmp(precision, "exact")};
    if (!want[0] && !want[1]) { fprintf(stderr, "bench_infer: --precision takes both, exact or fast\n"); return 1; }
    if (threads < 1 || n_prompt < 0 || n_gen < 0 || reps < 1 || (n_prompt == 0 && n_gen == 0)) {
        fprintf(stderr, "bench_infer: need --threads >= 1, --reps >= 1, --prompt/--gen >= 0 (not both 0)\n");
        return 1;
    }
    tk_set_threads(threads);

    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE; /* ids are random; the tokenizer plays no part */
    tk_model *m = NULL;
    double t_load = now_s();
    tk_status st = tk_model_load(model_path, &mp, &m);
    if (st != TK_OK) return die(model_path, st);
    t_load = now_s() - t_load;
    const tk_model_config *cfg = tk_model_get_config(m);
    int32_t n_vocab = cfg->n_vocab;

    int n_ctx = n_prompt > n_gen ? n_prompt : n_gen;
    tk_session *s = NULL;
    st = tk_session_new(m, n_ctx, &s);
    if (st != TK_OK) { tk_model_free(m); return die("session", st); }

    int32_t *ids = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *ids);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    double *tps[2][2]; /* [fast, exact][pp, tg] */
    for (int k = 0; k < 4; k++)
        if (!(tps[k / 2][k % 2] = calloc((size_t)reps, sizeof(double)))) { fprintf(stderr, "bench_infer: out of memory\n"); return 1; }
    if (!ids || !logits) { fprintf(stderr, "bench_infer: out of memory\n"); return 1; }

    double secs;
    for (int mode = 0; mode < 2; mode++) {
        if (!want[mode]) continue;
        const char *pname = mode ? "exact" : "fast";
        tk_session_set_exact(s, mode == 1);
        if (n_prompt > 0) {
            /* warm-up (as llama-bench: one full prompt run), then the timed repetitions */
            if ((st = run_prompt(s, ids, n_prompt, n_vocab, logits, &secs)) != TK_OK) return die("prefill", st);
            for (int r = 0; r < reps; r++) {
                if ((st = run_prompt(s, ids, n_prompt, n_vocab, logits, &secs)) != TK_OK) return die("prefill", st);
                tps[mode][0][r] = n_prompt / secs;
                fprintf(stderr, "bench_infer: pp%d (%s) rep %d: %.3f s, %.2f tok/s\n", n_prompt, pname, r + 1, secs, tps[mode][0][r]);
            }
        }
        if (n_gen > 0) {
            /* warm-up (as llama-bench: one decode step) */
            if ((st = run_gen(s, 1, n_vocab, logits, &secs)) != TK_OK) return die("decode", st);
            for (int r = 0; r < reps; r++) {
                if ((st = run_gen(s, n_gen, n_vocab, logits, &secs)) != TK_OK) return die("decode", st);
                tps[mode][1][r] = n_gen / secs;
                fprintf(stderr, "bench_infer: tg%d (%s) rep %d: %.3f s, %.2f tok/s\n", n_gen, pname, r + 1, secs, tps[mode][1][r]);
            }
        }
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"model\":\"%s\",\"threads\":%d,\"reps\":%d,\"load_s\":%.3f,\"max_rss_kb\":%ld",
           model_path, tk_get_threads(), reps, t_load, (long)ru.ru_maxrss);
    static const char *names[2][2] = {{"pp", "tg"}, {"pp_exact", "tg_exact"}};
    for (int mode = 0; mode < 2; mode++)
        for (int k = 0; k < 2; k++)
            if (want[mode] && (k ? n_gen : n_prompt) > 0) { printf(","); print_samples(names[mode][k], k ? n_gen : n_prompt, tps[mode][k], reps); }
    printf("}\n");

    for (int k = 0; k < 4; k++) free(tps[k / 2][k % 2]);
    free(ids); free(logits);
    tk_session_free(s);
    tk_model_free(m);
    return 0;
}
