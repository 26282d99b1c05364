/* `takumi tokenize`: text -> token ids (space-separated, one line), or with --decode ids ->
 * text, for any model's tokenizer. --jsonl FILE is the batch mode: one JSON string per
 * line in, one line of ids out (with --decode: one JSON array of ids in, one JSON string out). */
#include "cli.h"
#include <cJSON.h>
#include <errno.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: takumi tokenize [--model M] [--tokenizer T] [--no-special] [--parse-special] TEXT...\n"
        "       takumi tokenize [--model M] [--tokenizer T] --decode [--skip-special] ID...\n"
        "       takumi tokenize [--model M] [--tokenizer T] [--decode] --jsonl FILE\n"
        "  --model M          .gguf file, HF folder (tokenizer.json), or llama2.c checkpoint (with --tokenizer)\n"
        "  --tokenizer T      tokenizer file: .gguf, tokenizer.json, HF folder or llama2.c tokenizer.bin\n"
        "  --no-special       do not add BOS/EOS (added by default when the model asks for them)\n"
        "  --parse-special    text such as <|im_start|> becomes the special token\n"
        "  --decode           read ids, print text; --skip-special leaves special tokens out\n"
        "  --jsonl FILE       batch mode ('-' for stdin): a JSON string per line -> a line of ids\n"
        "  --info             print the tokenizer's kind, size and special ids (to stdout) and exit\n"
        "Without TEXT (and without --jsonl) the text is read from stdin.\n");
}

static int print_ids(const tk_ivec *v) {
    for (size_t i = 0; i < v->len; i++) printf(i ? " %d" : "%d", v->data[i]);
    putchar('\n');
    return 0;
}

/* Parses "1 2 3" / "1,2,3" / "[1, 2]" into ids; returns 0 or prints an error. */
static int parse_ids(const char *s, const char *where, tk_ivec *out) {
    const char *p = s;
    while (*p) {
        if (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']' || *p == '\r') { p++; continue; }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX) {
            fprintf(stderr, "takumi: %s: '%.20s' is not a token id\n", where, p);
            return 1;
        }
        tk_ivec_push(out, (int32_t)v);
        p = end;
    }
    return 0;
}

static int run_jsonl(const tk_tokenizer *t, const char *path, bool decode, int flags, bool skip_special) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) { fprintf(stderr, "takumi: %s: %s\n", path, strerror(errno)); return 1; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    tk_ivec ids = {0};
    tk_buf text = {0};
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
        ids.len = 0; text.len = 0;
        if (decode) {
            if (!cJSON_IsArray(j)) { fprintf(stderr, "takumi: %s:%ld: expected a JSON array of ids\n", path, lineno); rc = 1; cJSON_Delete(j); break; }
            const cJSON *e;
            cJSON_ArrayForEach(e, j) tk_ivec_push(&ids, cJSON_IsNumber(e) ? (int32_t)e->valuedouble : -1);
            tk_status st = tk_detokenize(t, ids.data, ids.len, skip_special, &text);
            if (st) { rc = cli_fail(st, "%s:%ld", path, lineno); cJSON_Delete(j); break; }
            cJSON *s = cJSON_CreateString(text.data ? text.data : "");
            char *o = cJSON_PrintUnformatted(s);
            puts(o ? o : "\"\"");
            free(o);
            cJSON_Delete(s);
        } else {
            const char *s = cJSON_IsString(j) ? j->valuestring : NULL;
            if (!s && cJSON_IsObject(j)) { const cJSON *tx = cJSON_GetObjectItemCaseSensitive(j, "text"); if (cJSON_IsString(tx)) s = tx->valuestring; }
            if (!s) { fprintf(stderr, "takumi: %s:%ld: expected a JSON string (or an object with \"text\")\n", path, lineno); rc = 1; cJSON_Delete(j); break; }
            tk_status st = tk_tokenize(t, s, strlen(s), flags, &ids);
            if (st) { rc = cli_fail(st, "%s:%ld", path, lineno); cJSON_Delete(j); break; }
            print_ids(&ids);
        }
        cJSON_Delete(j);
    }
    free(line);
    tk_ivec_free(&ids);
    tk_buf_free(&text);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *jsonl = NULL;
    bool no_special = false, parse_special = false, decode = false, skip_special = false, info = false;
    int err = 0;
    int first_pos = argc;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &v, &err)) model = v;
        else if (cli_opt(argc, argv, &i, "tokenizer", &v, &err)) tok_path = v;
        else if (cli_opt(argc, argv, &i, "jsonl", &v, &err)) jsonl = v;
        else if (cli_flag(argv, i, "no-special")) no_special = true;
        else if (cli_flag(argv, i, "parse-special")) parse_special = true;
        else if (cli_flag(argv, i, "decode")) decode = true;
        else if (cli_flag(argv, i, "skip-special")) skip_special = true;
        else if (cli_flag(argv, i, "info")) info = true;
        else if (!strcmp(argv[i], "--")) { first_pos = i + 1; break; }
        else if (!strncmp(argv[i], "--", 2)) { fprintf(stderr, "takumi tokenize: unknown option %s\n", argv[i]); usage(stderr); return 1; }
        else { first_pos = i; break; }
        if (err) return 1;
    }
    if (!model && !tok_path) model = cli_default_model();
    if (!model && !tok_path) { fprintf(stderr, "takumi tokenize: no --model given and the default model is not present\n"); return 1; }
    tk_tokenizer *t = NULL;
    tk_status st = tk_tokenizer_load(model, tok_path, &t);
    if (st) return cli_fail(st, "cannot load the tokenizer");
    int rc = 0;
    int flags = (no_special ? 0 : TK_TOK_ADD_SPECIAL) | (parse_special ? TK_TOK_PARSE_SPECIAL : 0);
    if (info) {
        printf("kind: %s\npre: %s\nvocab: %d\nbos: %d\neos: %d\neot: %d\npad: %d\nunk: %d\nadds_bos: %s\nadds_eos: %s\nchat_template: %s\n",
               tk_tokenizer_kind_of(t) == TK_TOKENIZER_SPM ? "spm" : "bpe", tk_tokenizer_pre_name(t), tk_tokenizer_n_vocab(t),
               tk_tokenizer_bos(t), tk_tokenizer_eos(t), tk_tokenizer_eot(t), tk_tokenizer_pad(t), tk_tokenizer_unk(t),
               tk_tokenizer_adds_bos(t) ? "yes" : "no", tk_tokenizer_adds_eos(t) ? "yes" : "no",
               tk_tokenizer_chat_template(t) ? "yes" : "no");
    } else if (jsonl) {
        rc = run_jsonl(t, jsonl, decode, flags, skip_special);
    } else {
        /* the text: the positional arguments joined by spaces, or stdin */
        tk_buf in = {0};
        if (first_pos < argc) {
            for (int i = first_pos; i < argc; i++) {
                if (i > first_pos) tk_buf_append(&in, " ", 1);
                tk_buf_append(&in, argv[i], strlen(argv[i]));
            }
        } else {
            char chunk[65536];
            size_t n;
            while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) tk_buf_append(&in, chunk, n);
        }
        tk_ivec ids = {0};
        if (decode) {
            if (!(rc = parse_ids(in.data ? in.data : "", "--decode", &ids))) {
                tk_buf text = {0};
                st = tk_detokenize(t, ids.data, ids.len, skip_special, &text);
                if (st) rc = cli_fail(st, "cannot decode");
                else { fwrite(text.data ? text.data : "", 1, text.len, stdout); putchar('\n'); }
                tk_buf_free(&text);
            }
        } else {
            st = tk_tokenize(t, in.data ? in.data : "", in.len, flags, &ids);
            if (st) rc = cli_fail(st, "cannot tokenize");
            else print_ids(&ids);
        }
        tk_ivec_free(&ids);
        tk_buf_free(&in);
    }
    tk_tokenizer_free(t);
    return rc;
}
