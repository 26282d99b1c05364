/* Conformance against llama.cpp's tokenizer test vectors (../shared/tokenizers/llamacpp-vocab):
 * for every ggml-vocab-X.gguf that is present together with X.gguf.inp / X.gguf.out, each
 * test string (separated by "\n__ggml_vocab_test__\n", as llama.cpp's test-tokenizer-0 reads
 * them) is encoded without BOS/EOS and without parsing special tokens, and must give exactly
 * the ids in .out. Prints the pass count per vocabulary; a mismatch prints the string and
 * both id lists. Vocabularies whose .inp/.out exist without the .gguf are reported as such. */
#include "test.h"
#include <dirent.h>

typedef struct { char **s; size_t *len; size_t n; } strlist;

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

/* llama.cpp read_tests: split on the separator; a trailing separator ends the list. */
static void split_inputs(char *raw, size_t n, strlist *out) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t sl = sizeof sep - 1, pos = 0;
    out->n = 0;
    out->s = NULL; out->len = NULL;
    while (pos < n) {
        char *m = memmem(raw + pos, n - pos, sep, sl);
        size_t end = m ? (size_t)(m - raw) : n;
        out->s = realloc(out->s, (out->n + 1) * sizeof *out->s);
        out->len = realloc(out->len, (out->n + 1) * sizeof *out->len);
        out->s[out->n] = raw + pos;
        out->len[out->n] = end - pos;
        out->n++;
        if (!m) break;
        pos = end + sl;
    }
}

static void print_ids(const char *label, const int32_t *v, size_t n) {
    fprintf(stderr, "    %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", v[i]);
    fputc('\n', stderr);
}

static void print_str(const char *s, size_t n) {
    fputs("    text: '", stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else fputc(c, stderr);
    }
    fputs("'\n", stderr);
}

/* Returns the number of failures for one vocabulary. */
static int run_vocab(const char *dir, const char *name, int *n_pass, int *n_total) {
    char p_gguf[1024], p_inp[1040], p_out[1040];
    snprintf(p_gguf, sizeof p_gguf, "%s/%s", dir, name);
    snprintf(p_inp, sizeof p_inp, "%s.inp", p_gguf);
    snprintf(p_out, sizeof p_out, "%s.out", p_gguf);
    size_t ni = 0, no = 0;
    char *inp = slurp(p_inp, &ni), *outs = slurp(p_out, &no);
    *n_pass = *n_total = 0;
    if (!inp || !outs) { free(inp); free(outs); return -1; }
    tk_gguf *g = NULL;
    tk_tokenizer *t = NULL;
    tk_status st = tk_gguf_open(p_gguf, &g);
    if (!st) st = tk_tokenizer_from_gguf(g, &t);
    tk_gguf_close(g);
    if (st == TK_ERR_UNSUPPORTED) {
        printf("  %-32s SKIPPED: %s\n", name, tk_last_error());
        free(inp); free(outs);
        return -2;
    }
    CHECK_OK(st);
    if (st) { free(inp); free(outs); return 1; }

    strlist tests;
    split_inputs(inp, ni, &tests);
    /* .out: one line of ids per test */
    int fails = 0;
    char *line = outs, *end = outs + no;
    tk_ivec ids = {0}, want = {0};
    for (size_t k = 0; k < tests.n; k++) {
        if (line >= end) { CHECK(0, "%s: .out has fewer lines than .inp has tests (%zu)", name, tests.n); fails++; break; }
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) nl = end;
        want.len = 0;
        for (char *p = line; p < nl;) {
            while (p < nl && *p == ' ') p++;
            if (p >= nl) break;
            tk_ivec_push(&want, (int32_t)strtol(p, &p, 10));
        }
        line = nl + 1;
        ids.len = 0;
        st = tk_tokenize(t, tests.s[k], tests.len[k], 0, &ids);
        CHECK_OK(st);
        bool ok = !st && ids.len == want.len && (ids.len == 0 || !memcmp(ids.data, want.data, ids.len * sizeof(int32_t)));
        (*n_total)++;
        if (ok) { (*n_pass)++; continue; }
        fails++;
        tk_test_checks++; tk_test_failures++;
        fprintf(stderr, "FAIL %s test %zu:\n", name, k);
        print_str(tests.s[k], tests.len[k]);
        print_ids("want", want.data, want.len);
        print_ids("got ", ids.data, ids.len);
    }
    printf("  %-32s %3d / %3d pass (%s, pre=%s)\n", name, *n_pass, *n_total,
           !strcmp(tk_tokenizer_pre_name(t), "wpm") ? "wordpiece" : tk_tokenizer_kind_of(t) == TK_TOKENIZER_SPM ? "sentencepiece" : "byte-level bpe", tk_tokenizer_pre_name(t));
    tk_ivec_free(&ids); tk_ivec_free(&want);
    free(tests.s); free(tests.len);
    tk_tokenizer_free(t);
    free(inp); free(outs);
    return fails;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    const char *dir = tk_test_shared("tokenizers/llamacpp-vocab");
    if (tk_test_require(dir, "tokenizers/llamacpp-vocab")) return tk_test_done("test_tokenizer_conformance");
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    if (!d) return tk_test_done("test_tokenizer_conformance");
    char *names[256]; int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 256) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".inp")) names[nn++] = strndup(e->d_name, l - 4);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    int vocabs = 0, all_pass = 0, all_total = 0;
    for (int i = 0; i < nn; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (access(p, F_OK) != 0) { printf("  %-32s not present (only .inp/.out in ../shared)\n", names[i]); free(names[i]); continue; }
        int np = 0, nt = 0;
        int r = run_vocab(dir, names[i], &np, &nt);
        if (r >= 0) { vocabs++; all_pass += np; all_total += nt; }
        free(names[i]);
    }
    printf("conformance: %d / %d strings over %d vocabularies\n", all_pass, all_total, vocabs);
    CHECK(vocabs >= 9, "expected at least 9 vocabularies with .gguf present, found %d", vocabs);
    return tk_test_done("test_tokenizer_conformance");
}
