/* gen_batch: generated tokens/s of batched generation (tk_generate_batch) at several
 * batch sizes against sequential tk_generate, on the same prompts, checking that every
 * run produced the same tokens. Prompts: N chat-formatted questions (varied lengths),
 * greedy, EOS ignored so every request generates exactly G tokens. tok/s counts generated
 * tokens over the whole run (prefill included) and over decoding alone, and per second
 * of process CPU time (the stable figure on a machine shared with other work). Prints a
 * markdown table headed by the CPU (from /proc/cpuinfo) and the thread count.
 * --fast: 8-bit activations in the decode products (serve's default; the int8 qdot kernels) instead of f32.
 * Usage: gen_batch [--model M] [--threads N] [--n N] [--gen G] [--batches 1,8,32] [--fast] */
#define _GNU_SOURCE
#include "takumi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Seconds on clock id: CLOCK_MONOTONIC (wall) or CLOCK_PROCESS_CPUTIME_ID (all threads' CPU time). */
static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#define now_s() clock_s(CLOCK_MONOTONIC)
#define cpu_s() clock_s(CLOCK_PROCESS_CPUTIME_ID)

static void cpu_name(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            while (*v == ' ') v++;
            snprintf(out, n, "%s", v);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    fclose(f);
}

static const char *k_questions[] = {
    "What is the capital of France?", "Write a haiku about autumn leaves.", "Explain photosynthesis in one sentence.",
    "List three prime numbers.", "How do I reverse a string in Python?", "What is 17 times 23?",
    "Give me a name for a black cat.", "Why is the sky blue? Answer briefly, in terms a child would understand.",
    "Translate 'good morning' into Spanish.", "Summarize the plot of Romeo and Juliet.",
};
#define NQ (int)(sizeof k_questions / sizeof k_questions[0])

int main(int argc, char **argv) {
    const char *model = "models/SmolLM2-135M-Instruct.Q4_1.gguf", *batches = "1,8,32";
    int threads = 2, n = 32, gen = 32;
    bool fast = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--fast")) { fast = true; continue; }
        if (!v) { fprintf(stderr, "usage: gen_batch [--model M] [--threads N] [--n N] [--gen G] [--batches 1,8,32] [--fast]\n"); return 1; }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--n")) n = atoi(v);
        else if (!strcmp(a, "--gen")) gen = atoi(v);
        else if (!strcmp(a, "--batches")) batches = v;
        else { fprintf(stderr, "gen_batch: unknown option %s\n", a); return 1; }
        i++;
    }
    if (threads < 1 || n < 1 || gen < 1) { fprintf(stderr, "gen_batch: need --threads, --n and --gen >= 1\n"); return 1; }
    tk_set_threads(threads);
    tk_model *m = NULL;
    if (tk_model_load(model, NULL, &m)) { fprintf(stderr, "gen_batch: %s\n", tk_last_error()); return 1; }
    const tk_tokenizer *tok = tk_model_tokenizer(m);
    tk_ivec *ids = calloc((size_t)n, sizeof *ids);
    tk_gen_request *reqs = calloc((size_t)n, sizeof *reqs);
    tk_gen_result *res = calloc((size_t)n, sizeof *res);
    tk_ivec *ref = calloc((size_t)n, sizeof *ref);
    if (!ids || !reqs || !res || !ref) { fprintf(stderr, "gen_batch: out of memory\n"); return 1; }
    int64_t n_prompt = 0;
    for (int i = 0; i < n; i++) {
        char text[512];
        snprintf(text, sizeof text, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", k_questions[i % NQ]);
        if (tk_tokenize(tok, text, strlen(text), TK_TOK_PARSE_SPECIAL, &ids[i])) { fprintf(stderr, "gen_batch: %s\n", tk_last_error()); return 1; }
        reqs[i] = (tk_gen_request){ids[i].data, (int64_t)ids[i].len, (uint64_t)i};
        n_prompt += (int64_t)ids[i].len;
    }
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = 0;
    p.max_tokens = gen;
    p.stop_at_eos = false;
    p.exact = !fast;

    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("gen_batch: %s, %d prompts (%lld prompt tokens), %d generated tokens each, greedy, %s decode\n", model, n,
           (long long)n_prompt, gen, fast ? "int8 (--fast)" : "f32");
    printf("CPU: %s, %ld logical CPUs, %d threads\n\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), threads);
    printf("| run | generated tok/s (whole run) | decode tok/s | wall s | tok per CPU s | speed-up (wall) | speed-up (CPU) | same tokens |\n"
           "|---|---|---|---|---|---|---|---|\n");

    /* sequential: one session, one request after another */
    tk_session *s = NULL;
    if (tk_session_new(m, 0, &s)) { fprintf(stderr, "gen_batch: %s\n", tk_last_error()); return 1; }
    tk_session_set_exact(s, !fast);
    double t0 = now_s(), c0 = cpu_s(), dec = 0;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        tk_gen_stats st;
        tk_session_truncate(s, 0);
        if (tk_generate(s, tok, reqs[i].prompt, reqs[i].n_prompt, &p, NULL, NULL, &ref[i], &st)) {
            fprintf(stderr, "gen_batch: %s\n", tk_last_error());
            return 1;
        }
        dec += st.decode_s;
        total += st.n_generated;
    }
    double seq = now_s() - t0, seq_cpu = cpu_s() - c0;
    printf("| sequential tk_generate | %.1f | %.1f | %.2f | %.1f | 1.00 | 1.00 | - |\n", total / seq, total / dec, seq, total / seq_cpu);
    tk_session_free(s);

    int rc = 0;
    for (const char *b = batches; *b;) {
        int mb = atoi(b);
        if (mb >= 1) {
            tk_gen_batch_stats bs;
            t0 = now_s();
            c0 = cpu_s();
            if (tk_generate_batch(m, tok, NULL, 0, reqs, n, &p, mb, res, &bs)) {
                fprintf(stderr, "gen_batch: %s\n", tk_last_error());
                return 1;
            }
            double wall = now_s() - t0, cpu = cpu_s() - c0;
            bool same = true;
            for (int i = 0; i < n; i++) {
                same = same && (size_t)res[i].n_ids == ref[i].len && !memcmp(res[i].ids, ref[i].data, ref[i].len * sizeof(int32_t));
                tk_gen_result_free(&res[i]);
            }
            if (!same) rc = 1;
            printf("| tk_generate_batch, max_batch %d (max live %d) | %.1f | %.1f | %.2f | %.1f | %.2f | %.2f | %s |\n", mb, bs.max_live,
                   bs.n_generated / wall, bs.n_generated / bs.decode_s, wall, bs.n_generated / cpu, seq / wall, seq_cpu / cpu,
                   same ? "yes" : "NO");
        }
        b = strchr(b, ',');
        if (!b) break;
        b++;
    }
    for (int i = 0; i < n; i++) { tk_ivec_free(&ids[i]); tk_ivec_free(&ref[i]); }
    free(ids); free(reqs); free(res); free(ref);
    tk_model_free(m);
    return rc;
}
