/* Tokenizer encode throughput (single thread): a few MB of mixed English / Japanese /
 * Chinese text from ../shared/data (tinyshakespeare, dolly15k-ja, alpaca_zh) encoded with
 * a model's tokenizer (default SmolLM2-135M-Instruct):
 *   - whole text in one call with an empty word cache (cold) and again (warm);
 *   - line by line (many short calls, as in data preparation).
 * Prints a Markdown table. --dump FILE writes the corpus (for peers such as HF tokenizers).
 * usage: build/bench/tokenizer_speed [--model M] [--tokenizer T] [--text FILE] [--dump FILE] [--reps N] */
#include "takumi.h"
#include <cjson/cJSON.h> /* bench/Makefile adds no cJSON include path; Debian layout */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Thread CPU time: the machine may be shared, and encoding is single-threaded. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[len] = 0; *n = (size_t)len; }
    return b;
}

static const char *shared(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("TAKUMI_SHARED");
    snprintf(buf, cap, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
}

/* Appends the string fields `keys` of every JSON record (one per line, or a top-level array). */
static void add_json(tk_buf *out, const char *path, const char *const *keys, size_t max_bytes) {
    size_t n = 0;
    char *raw = slurp(path, &n);
    if (!raw) { fprintf(stderr, "tokenizer_speed: %s not found, skipped\n", path); return; }
    size_t start = out->len;
    cJSON *arr = raw[0] == '[' ? cJSON_Parse(raw) : NULL;
    char *save = NULL;
    char *line = arr ? NULL : strtok_r(raw, "\n", &save);
    const cJSON *it = arr ? arr->child : NULL;
    while ((arr ? it != NULL : line != NULL) && out->len - start < max_bytes) {
        cJSON *rec = arr ? NULL : cJSON_Parse(line);
        const cJSON *r = arr ? it : rec;
        for (const char *const *k = keys; *k; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, *k);
            if (cJSON_IsString(v) && v->valuestring[0]) { tk_buf_append(out, v->valuestring, strlen(v->valuestring)); tk_buf_append(out, "\n", 1); }
        }
        cJSON_Delete(rec);
        if (arr) it = it->next; else line = strtok_r(NULL, "\n", &save);
    }
    cJSON_Delete(arr);
    free(raw);
}

int main(int argc, char **argv) {
    const char *model = "models/SmolLM2-135M-Instruct.Q4_1.gguf", *tok_path = NULL, *text_path = NULL, *dump = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) text_path = argv[++i];
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--model M] [--tokenizer T] [--text FILE] [--dump FILE] [--reps N]\n", argv[0]); return 1; }
    }
    tk_buf text = {0};
    char pb[4096];
    if (text_path) {
        size_t n;
        char *b = slurp(text_path, &n);
        if (!b) { fprintf(stderr, "tokenizer_speed: cannot read %s\n", text_path); return 1; }
        tk_buf_append(&text, b, n);
        free(b);
    } else {
        size_t n;
        char *sh = slurp(shared("data/tinyshakespeare/input.txt", pb, sizeof pb), &n);
        if (sh) { tk_buf_append(&text, sh, n); free(sh); }
        static const char *const dolly[] = {"instruction", "context", "response", "input", "output", NULL};
        add_json(&text, shared("data/dolly15k-ja/databricks-dolly-15k-ja.jsonl", pb, sizeof pb), dolly, 2500000);
        static const char *const alpaca[] = {"instruction", "input", "output", NULL};
        add_json(&text, shared("data/llamafactory-demo/alpaca_zh_demo.json", pb, sizeof pb), alpaca, 600000);
        add_json(&text, shared("data/llamafactory-demo/alpaca_en_demo.json", pb, sizeof pb), alpaca, 600000);
    }
    if (text.len == 0) { fprintf(stderr, "tokenizer_speed: no text (set TAKUMI_SHARED or pass --text)\n"); return 1; }
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(text.data, 1, text.len, f) != text.len) { fprintf(stderr, "tokenizer_speed: cannot write %s\n", dump); return 1; }
        fclose(f);
    }
    double mb = (double)text.len / 1e6;
    size_t ascii = 0;
    for (size_t i = 0; i < text.len; i++) ascii += (unsigned char)text.data[i] < 0x80;

    tk_ivec ids = {0};
    double best_cold = 1e9, best_warm = 1e9, best_lines = 1e9, wall_cold = 1e9;
    size_t ntok = 0, nlines = 0;
    for (int r = 0; r < reps; r++) {
        tk_tokenizer *t = NULL; /* a fresh tokenizer starts with an empty word cache */
        tk_status st = tk_tokenizer_load(model, tok_path, &t);
        if (st) { fprintf(stderr, "tokenizer_speed: %s\n", tk_last_error()); return 1; }
        ids.len = 0;
        double w0 = wall(), t0 = now();
        st = tk_tokenize(t, text.data, text.len, 0, &ids);
        double t1 = now(), w1 = wall();
        if (w1 - w0 < wall_cold) wall_cold = w1 - w0;
        if (st) { fprintf(stderr, "tokenizer_speed: %s\n", tk_last_error()); return 1; }
        ntok = ids.len;
        ids.len = 0;
        double t2 = now();
        tk_tokenize(t, text.data, text.len, 0, &ids);
        double t3 = now();
        /* line by line */
        nlines = 0;
        double t4 = now();
        for (const char *p = text.data, *end = text.data + text.len; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            ids.len = 0;
            tk_tokenize(t, p, l, 0, &ids);
            nlines++;
            p += l;
        }
        double t5 = now();
        if (t1 - t0 < best_cold) best_cold = t1 - t0;
        if (t3 - t2 < best_warm) best_warm = t3 - t2;
        if (t5 - t4 < best_lines) best_lines = t5 - t4;
        tk_tokenizer_free(t);
    }
    printf("Text: %.2f MB (%.0f%% ASCII: English; the rest mostly Japanese and Chinese), %zu lines, %zu tokens "
           "(%.2f bytes/token); tokenizer: %s; single thread, best of %d, thread CPU time "
           "(wall time of the cold run: %.1f MB/s).\n\n",
           mb, 100.0 * (double)ascii / (double)text.len, nlines, ntok, (double)text.len / (double)ntok,
           tok_path ? tok_path : model, reps, mb / wall_cold);
    printf("| encode | MB/s | tokens/s |\n|---|---:|---:|\n");
    printf("| whole text, empty word cache | %.1f | %.2fM |\n", mb / best_cold, (double)ntok / best_cold / 1e6);
    printf("| whole text, warm word cache | %.1f | %.2fM |\n", mb / best_warm, (double)ntok / best_warm / 1e6);
    printf("| line by line (%zu calls) | %.1f | %.2fM |\n", nlines, mb / best_lines, (double)ntok / best_lines / 1e6);
    tk_ivec_free(&ids);
    tk_buf_free(&text);
    return 0;
}
