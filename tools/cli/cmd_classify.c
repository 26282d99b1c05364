/* `takumi classify --model M --adapter A TEXT... | --data FILE [--json]`: labels and probabilities of
 * texts with a classifier (`takumi train --task classify` writes RUN/adapter/), or the value of a
 * regression head. Text output: one line per text, `label P  (label1 p1, label2 p2, ...)` (with --data,
 * `line L: ...` and the record's label), then the accuracy (regress: the MSE) for --data.
 * --json: one JSON object per line, {"line", "text", "label", "probs": {name: p}, "truth", "logits": [...]}
 * (regress: "value", "truth"; --ids: "ids"), and a final {"summary": {...}}. */
#include "cli.h"
#include <cJSON.h>
#include <math.h>

static void usage(FILE *f) {
    fprintf(f, "usage: takumi classify [--model M] [--tokenizer T] --adapter A (TEXT... | --data FILE) [--json] [--max-seq-len N] "
               "[--threads N] [--quiet]\n"
               "  --adapter A       a classifier or regression head (RUN/adapter of takumi train --task classify|regress)\n"
               "  TEXT...           texts to classify (or '-': one text per stdin line)\n"
               "  --data FILE       labelled records ({\"text\", \"label\"} JSONL or text<TAB>label TSV): predictions and accuracy\n"
               "  --json            one JSON object per text (label, probabilities, logits), then a summary object\n"
               "  --ids             with --json: also the token ids classified (\"ids\")\n"
               "  --max-seq-len N   texts cut to N tokens (default: min(1024, the model's context))\n"
               "  --quiet           only the summary line (with --data)\n");
}

typedef struct out_ctx { bool json, quiet, ids; } out_ctx;

static void on_pred(const tk_class_pred *p, const tk_classifier_info *in, void *ud) {
    const out_ctx *o = ud;
    if (o->quiet) return;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        if (!j) return;
        if (p->line) cJSON_AddNumberToObject(j, "line", (double)p->line);
        cJSON_AddStringToObject(j, "text", p->text);
        if (in->regress) {
            cJSON_AddNumberToObject(j, "value", p->value);
            if (!isnan(p->truth_value)) cJSON_AddNumberToObject(j, "truth", p->truth_value);
        } else {
            cJSON_AddStringToObject(j, "label", in->labels[p->label]);
            cJSON *pr = cJSON_AddObjectToObject(j, "probs");
            for (int32_t k = 0; pr && k < in->n_labels; k++) cJSON_AddNumberToObject(pr, in->labels[k], p->probs[k]);
            if (p->truth >= 0) cJSON_AddStringToObject(j, "truth", in->labels[p->truth]);
            cJSON *lg = cJSON_AddArrayToObject(j, "logits");
            for (int32_t k = 0; lg && k < in->n_labels; k++) cJSON_AddItemToArray(lg, cJSON_CreateNumber(p->logits[k]));
        }
        if (o->ids) {
            cJSON *ids = cJSON_AddArrayToObject(j, "ids");
            for (int32_t k = 0; ids && k < p->n_ids; k++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(p->ids[k]));
        }
        char *s = cJSON_PrintUnformatted(j);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
        return;
    }
    if (p->line) printf("line %llu: ", (unsigned long long)p->line);
    if (in->regress) {
        printf("%.6f", p->value);
        if (!isnan(p->truth_value)) printf("  (label %g)", p->truth_value);
        printf("\n");
        return;
    }
    printf("%s %.4f  (", in->labels[p->label], p->value);
    for (int32_t k = 0; k < in->n_labels; k++) printf("%s%s %.4f", k ? ", " : "", in->labels[k], p->probs[k]);
    printf(")");
    if (p->truth >= 0) printf("  label %s%s", in->labels[p->truth], p->truth == p->label ? "" : "  (wrong)");
    printf("\n");
}

int cmd_classify(int argc, char **argv) {
    tk_classify_opts o = {0};
    const char *v = NULL;
    out_ctx oc = {0};
    int err = 0, n_texts = 0;
    const char **texts = calloc((size_t)argc, sizeof *texts);
    if (!texts) return cli_fail(TK_ERR_NOMEM, "classify");
    bool from_stdin = false;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); free(texts); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &o.model, &err)) {}
        else if (cli_opt(argc, argv, &i, "tokenizer", &o.tokenizer, &err)) {}
        else if (cli_opt(argc, argv, &i, "adapter", &o.adapter, &err)) {}
        else if (cli_opt(argc, argv, &i, "data", &o.data, &err)) {}
        else if (cli_opt(argc, argv, &i, "max-seq-len", &v, &err)) { if (v) o.max_seq = (int32_t)cli_parse_long("max-seq-len", v, 2, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) { if (v) cli_parse_threads(v, &err); }
        else if (cli_flag(argv, i, "json")) oc.json = true;
        else if (cli_flag(argv, i, "quiet")) oc.quiet = true;
        else if (cli_flag(argv, i, "ids")) oc.ids = true;
        else if (!strcmp(argv[i], "-")) from_stdin = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-') { fprintf(stderr, "takumi: unknown argument '%s' (see takumi classify --help)\n", argv[i]); err = 1; }
        else texts[n_texts++] = argv[i];
    }
    /* '-': one text per stdin line */
    char **owned = NULL;
    int n_owned = 0;
    if (!err && from_stdin) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) > 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
            if (!n) continue;
            const char **t = realloc(texts, (size_t)(n_texts + 1) * sizeof *t);
            char **ow = realloc(owned, (size_t)(n_owned + 1) * sizeof *ow);
            if (!t || !ow) { free(t ? (void *)t : (void *)texts); free(ow ? ow : owned); free(line); return cli_fail(TK_ERR_NOMEM, "classify"); }
            texts = t;
            owned = ow;
            texts[n_texts++] = owned[n_owned++] = strdup(line);
        }
        free(line);
    }
    int rc = 0;
    if (err) rc = 1;
    else if (!o.adapter || (!o.data && n_texts == 0)) { usage(stderr); rc = 1; }
    else if (o.data && n_texts) rc = cli_fail(TK_OK, "give TEXT or --data FILE, not both");
    else if (!o.model && !(o.model = cli_default_model())) rc = cli_fail(TK_OK, "no --model given and the default model is missing");
    if (!rc) {
        o.texts = texts;
        o.n_texts = n_texts;
        tk_classify_summary s = {0};
        tk_status st = tk_classify_texts(&o, on_pred, &oc, &s);
        if (st) rc = cli_fail(st, "classify");
        else if (o.data && oc.json)
            printf("{\"summary\":{\"n\":%lld,\"%s\":%.17g}}\n", (long long)s.n, isnan(s.accuracy) ? "mse" : "accuracy",
                   isnan(s.accuracy) ? s.mse : s.accuracy);
        else if (o.data && !isnan(s.accuracy)) printf("accuracy: %.4f (%lld texts)\n", s.accuracy, (long long)s.n);
        else if (o.data) printf("mse: %.6g (%lld texts)\n", s.mse, (long long)s.n);
    }
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(texts);
    return rc;
}
