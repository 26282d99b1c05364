/* `takumi perplexity --model M FILE [--ctx N] [--stride N]`: perplexity of a text file,
 * by sliding windows of N tokens moved by --stride (as HF's perplexity guide does): each
 * token is scored once, in the first window that contains it with the most context, so
 * with stride < ctx every window after the first sees ctx - stride tokens of context.
 * The LM head runs chunked (tk_forward_nll): no tokens x vocabulary logits are kept.
 * The last line of stdout is `perplexity: <number>`. */
#include "cli.h"
#include <math.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: takumi perplexity [--model M] [--tokenizer T] FILE [--ctx N] [--stride N] [--threads N]\n"
               "  FILE          UTF-8 text ('-' for stdin); BOS is added when the model's tokenizer asks for it\n"
               "  --ctx N       window length in tokens (default min(512, the model's context))\n"
               "  --stride N    window step (default ctx/2; = ctx gives disjoint windows)\n"
               "  --max-tokens N  score only the first N tokens of the file\n"
               "  --verbose     per-window progress on stderr\n");
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *tokp = NULL, *file = NULL, *v = NULL;
    long ctx = 0, stride = 0, max_tokens = 0;
    bool verbose = false;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &model, &err)) {}
        else if (cli_opt(argc, argv, &i, "tokenizer", &tokp, &err)) {}
        else if (cli_opt(argc, argv, &i, "ctx", &v, &err)) { if (v) ctx = cli_parse_long("ctx", v, 2, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "stride", &v, &err)) { if (v) stride = cli_parse_long("stride", v, 1, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "max-tokens", &v, &err)) { if (v) max_tokens = cli_parse_long("max-tokens", v, 2, LONG_MAX, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) {
            if (v) cli_parse_threads(v, &err);
        }
        else if (cli_flag(argv, i, "verbose")) verbose = true;
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: unknown option '%s' (see --help)\n", argv[i]); err = 1; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "takumi: perplexity takes one FILE\n"); err = 1; }
    }
    if (err) return 1;
    if (!file) { usage(stderr); return 1; }
    if (ctx < 0 || stride < 0 || max_tokens < 0) { fprintf(stderr, "takumi: --ctx, --stride and --max-tokens must be positive\n"); return 1; }
    if (!model && !(model = cli_default_model())) return cli_fail(TK_OK, "no --model given and the default model is missing");

    tk_buf text = {0};
    struct stat fsb;
    if (strcmp(file, "-") && stat(file, &fsb) == 0 && S_ISDIR(fsb.st_mode)) return cli_fail(TK_OK, "%s: is a folder, not a text file", file);
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) return cli_fail(TK_OK, "%s: cannot open: %s", file, strerror(errno));
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) tk_buf_append(&text, tmp, n);
    if (f != stdin) fclose(f);

    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = tokp;
    tk_model *m = NULL;
    tk_forward *fw = NULL;
    tk_ivec ids = {0};
    int32_t *target = NULL;
    int rc = 0;
    tk_status st = tk_model_load(model, &mp, &m);
    if (st) { rc = cli_fail(st, "cannot load %s", model); goto out; }
    const tk_model_config *c = tk_model_get_config(m);
    if (!ctx) ctx = c->max_seq < 512 ? c->max_seq : 512;
    if (ctx > c->max_seq) fprintf(stderr, "takumi: note: --ctx %ld exceeds the model's context %d\n", ctx, c->max_seq);
    if (ctx < 2) { rc = cli_fail(TK_OK, "--ctx must be at least 2"); goto out; }
    if (!stride) stride = ctx / 2;
    if (stride > ctx) { rc = cli_fail(TK_OK, "--stride %ld is larger than --ctx %ld", stride, ctx); goto out; }
    if ((st = tk_tokenize(tk_model_tokenizer(m), text.data ? text.data : "", text.len, TK_TOK_ADD_SPECIAL, &ids))) {
        rc = cli_fail(st, "tokenizing %s", file);
        goto out;
    }
    if (max_tokens && (size_t)max_tokens < ids.len) ids.len = (size_t)max_tokens;
    if (ids.len < 2) { rc = cli_fail(TK_OK, "%s: fewer than 2 tokens, nothing to score", file); goto out; }
    if ((st = tk_forward_new(m, 1, (int32_t)ctx, 0, &fw))) { rc = cli_fail(st, "workspace"); goto out; }
    target = malloc(sizeof(int32_t) * (size_t)ctx);
    double loss = 0, count = 0, t0 = cli_now();
    int64_t N = (int64_t)ids.len, scored_to = 1; /* token 0 has no context: it is never scored */
    for (int64_t begin = 0; scored_to < N; begin += stride) {
        int64_t end = begin + ctx < N ? begin + ctx : N;
        int64_t len = end - begin;
        /* window [begin, end): position t predicts token begin+t+1; score only tokens >= scored_to */
        for (int64_t t = 0; t < len; t++) {
            int64_t tgt = begin + t + 1;
            target[t] = tgt < end && tgt >= scored_to ? ids.data[tgt] : -1;
        }
        tk_batch b = {.n_rows = 1, .n_cols = (int32_t)len, .ids = ids.data + begin};
        double l0 = loss, c0 = count;
        if ((st = tk_forward_nll(fw, &b, target, NULL, &loss, &count))) { rc = cli_fail(st, "forward"); goto out; }
        if (verbose)
            fprintf(stderr, "[window %lld-%lld: %.0f tokens, nll %.4f; running perplexity %.4f]\n", (long long)begin,
                    (long long)end, count - c0, count > c0 ? (loss - l0) / (count - c0) : 0.0, exp(loss / count));
        scored_to = end;
        if (end == N) break;
    }
    double secs = cli_now() - t0;
    fprintf(stderr, "[%lld tokens of %s, %.0f scored, ctx %ld, stride %ld, %.1f s = %.0f tok/s]\n", (long long)N, file, count,
            ctx, stride, secs, secs > 0 ? count / secs : 0.0);
    printf("tokens: %.0f\nmean nll: %.6f\nperplexity: %.4f\n", count, loss / count, exp(loss / count));
out:
    free(target);
    tk_forward_free(fw);
    tk_ivec_free(&ids);
    tk_model_free(m);
    tk_buf_free(&text);
    return rc;
}
