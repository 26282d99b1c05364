/* Differential check of the tokenizer: prints the token ids of many texts, so that the
 * output of two builds (say, before and after a speed change to src/tokenizer/) can be
 * compared with cmp. Texts: every line of each input file as raw bytes, every JSON string
 * value in it (a JSONL line or a whole-file JSON document), and a fixed-seed set of random
 * strings that mix ASCII letters / digits / spaces / punctuation / apostrophes, CJK,
 * accented letters, non-ASCII spaces and digits, and invalid UTF-8 bytes.
 * Build and compare: dev/tok_diff.sh OLD_LIB NEW_LIB (see there). */
#include "takumi.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long n_texts, n_ids;

static void emit(const tk_tokenizer *tok, const char *s, size_t n, int flags) {
    tk_ivec ids = {0};
    tk_status st = tk_tokenize(tok, s, n, flags, &ids);
    if (st) { printf("ERR %d\n", (int)st); tk_clear_error(); tk_ivec_free(&ids); return; }
    n_texts++; n_ids += ids.len;
    for (size_t i = 0; i < ids.len; i++) printf("%d ", (int)ids.data[i]);
    putchar('\n');
    tk_ivec_free(&ids);
}

static void walk(const tk_tokenizer *tok, const cJSON *j) {
    for (; j; j = j->next) {
        if (cJSON_IsString(j) && j->valuestring) emit(tok, j->valuestring, strlen(j->valuestring), TK_TOK_PARSE_SPECIAL);
        if (j->child) walk(tok, j->child);
    }
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

static unsigned long long rng = 0x243F6A8885A308D3ULL;
static unsigned rnd(unsigned m) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (unsigned)(rng % m); }

static void random_texts(const tk_tokenizer *tok, int count) {
    static const char *const parts[] = {
        "a", "Z", "hello", " world", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "0", "7", "123", "4567", "'s", "'t", "'re",
        "'ve", "'m", "'ll", "'d", "'S", "'LL", "'", "''", "!", "?!", ".", ",", "$", "+", "<", "|", "^", "`", "~", "-",
        "\xe6\x97\xa5\xe6\x9c\xac", "\xe8\xaa\x9e", "\xe3\x81\x82", "\xe3\x80\x82", "\xc3\xa9", "\xc3\x9f", "\xce\xa9",
        "\xe2\x80\x83", "\xc2\xa0", "\xe3\x80\x80", "\xd9\xa3", "\xe2\x85\xa0", "\xc2\xb2", "\xcc\x81", "\xe2\x82\xac",
        "\xf0\x9f\x98\x80", "\x80", "\xff", "\xc3", "\xe3\x81", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x01", "\x7f", "_",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    };
    const unsigned np = sizeof parts / sizeof parts[0];
    char buf[4096];
    for (int i = 0; i < count; i++) {
        size_t n = 0;
        unsigned k = 1 + rnd(i % 10 == 0 ? 300 : 40);
        for (unsigned j = 0; j < k; j++) {
            const char *p = parts[rnd(np)];
            size_t l = strlen(p);
            if (n + l >= sizeof buf) break;
            memcpy(buf + n, p, l); n += l;
        }
        emit(tok, buf, n, i & 1 ? TK_TOK_PARSE_SPECIAL : 0);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: tok_diff MODEL [FILES...]\n"); return 2; }
    tk_tokenizer *tok = NULL;
    if (tk_tokenizer_load(argv[1], NULL, &tok)) { fprintf(stderr, "tok_diff: %s\n", tk_last_error()); return 1; }
    random_texts(tok, 20000);
    for (int a = 2; a < argc; a++) {
        size_t n = 0;
        char *raw = slurp(argv[a], &n);
        if (!raw) { fprintf(stderr, "tok_diff: cannot read %s\n", argv[a]); return 1; }
        cJSON *doc = cJSON_Parse(raw);
        if (doc) { walk(tok, doc); cJSON_Delete(doc); }
        for (size_t i = 0; i < n;) {
            size_t e = i;
            while (e < n && raw[e] != '\n') e++;
            emit(tok, raw + i, e - i, 0);
            if (!doc && e > i) {
                char save = raw[e]; raw[e] = 0;
                cJSON *j = cJSON_ParseWithLength(raw + i, e - i);
                raw[e] = save;
                if (j) { walk(tok, j); cJSON_Delete(j); }
            }
            i = e + 1;
        }
        free(raw);
    }
    fprintf(stderr, "tok_diff: %llu texts, %llu ids\n", n_texts, n_ids);
    tk_tokenizer_free(tok);
    return 0;
}
