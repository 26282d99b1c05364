/* `takumi data synth` (question/answer pairs grounded in documents) and `takumi data augment`
 * (paraphrased user turns): option parsing, model loading, the summary on stderr (or JSON on
 * stdout). The work is src/data/synth*.c and augment.c. */
#include "cli.h"

void cli_usage_synth(FILE *f) {
    fprintf(f,
        "  synth --from DOCS... --out FILE [--model M] [--teacher M2] [options]\n"
        "                  question/answer pairs grounded in documents (Markdown, HTML, text, PDF through pdftotext),\n"
        "                  written as chat JSONL for takumi train; each record's \"metadata\" names its source file,\n"
        "                  heading and byte span; answers whose numbers or names are not in their chunk are dropped\n"
        "      --model M                 the model to be trained (default: %s); it writes the pairs unless --teacher\n"
        "      --teacher M2              a model that writes the pairs and paraphrases instead\n"
        "      --questions-per-chunk N   pairs asked of each chunk, per language (default 3)\n"
        "      --paraphrases N           paraphrased variants of each kept question (default 2; 0: none)\n"
        "      --languages en,ja         languages of the pairs (default en)\n"
        "      --system TEXT             a system message for every record\n"
        "      --chunk-size N            largest chunk in characters (default 1500), or tokens with --chunk-tokens\n"
        "      --chunk-tokens            measure chunks in tokens of --model's tokenizer\n"
        "      --seed S, --temperature X (default 0.7), --max-batch N (default 16), --max-new-tokens N,\n"
        "      --template NAME (the writing model's chat template), --n-ctx N (context of the models instead of the\n"
        "      file's), --threads N, --json (summary as JSON on stdout)\n\n"
        "  augment FILE --out FILE2 [--paraphrases N] [--model M] [--seed S] [--temperature X] [--max-batch N] [--n-ctx N] [--json]\n"
        "                  copies chat JSONL and adds N records per record whose last user turn is paraphrased by the\n"
        "                  model (answers unchanged); empty, identical, too long or repeated paraphrases are dropped and counted\n",
        "models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

typedef struct gen_opts {
    const char *model, *teacher, *tmpl;
    uint64_t seed;
    double temperature;
    long max_batch, max_new, threads, n_ctx;
    bool json;
} gen_opts;

/* Parses an option shared by both commands; returns 1 when argv[*i] was one. */
static int gen_opt(int argc, char **argv, int *i, gen_opts *o, int *err) {
    const char *v;
    if (cli_opt(argc, argv, i, "model", &o->model, err)) return 1;
    if (cli_opt(argc, argv, i, "template", &o->tmpl, err)) return 1;
    if (cli_opt(argc, argv, i, "seed", &v, err)) { if (!*err) o->seed = cli_parse_u64("seed", v, err); return 1; }
    if (cli_opt(argc, argv, i, "temperature", &v, err)) { if (!*err) o->temperature = cli_parse_double("temperature", v, 0, 10, err); return 1; }
    if (cli_opt(argc, argv, i, "max-batch", &v, err)) { if (!*err) o->max_batch = cli_parse_long("max-batch", v, 1, 4096, err); return 1; }
    if (cli_opt(argc, argv, i, "max-new-tokens", &v, err)) { if (!*err) o->max_new = cli_parse_long("max-new-tokens", v, 1, 1 << 20, err); return 1; }
    if (cli_opt(argc, argv, i, "threads", &v, err)) { if (!*err) o->threads = cli_parse_threads(v, err); return 1; }
    if (cli_opt(argc, argv, i, "n-ctx", &v, err)) { if (!*err) o->n_ctx = cli_parse_long("n-ctx", v, 1, 1L << 22, err); return 1; }
    if (cli_flag(argv, *i, "json")) { o->json = true; return 1; }
    return 0;
}

/* Loads the model (and the teacher); fills g with the one that writes. Returns 0 or an exit code. */
static int load(gen_opts *o, tk_model **m, tk_model **t, tk_synth_gen *g) {
    if (!o->model) o->model = cli_default_model();
    if (!o->model) return cli_fail(TK_OK, "no --model given and no default model found (models/SmolLM2-135M-Instruct.Q4_1.gguf)");
    tk_model_params mp = tk_model_default_params();
    mp.n_ctx = (int32_t)o->n_ctx;
    tk_status st = tk_model_load(o->model, &mp, m);
    if (st) return cli_fail(st, "cannot load %s", o->model);
    if (o->teacher && (st = tk_model_load(o->teacher, &mp, t))) return cli_fail(st, "cannot load --teacher %s", o->teacher);
    tk_model *w = *t ? *t : *m;
    if ((st = tk_chat_resolve(tk_model_tokenizer(w), o->tmpl, &g->family))) return cli_fail(st, "chat template of %s", *t ? o->teacher : o->model);
    g->model = w;
    g->seed = o->seed;
    g->temperature = (float)o->temperature;
    g->max_batch = (int32_t)o->max_batch;
    g->max_tokens = (int32_t)o->max_new;
    return 0;
}

/* Splits "en,ja" into v (n entries, pointing into the writable copy *buf). */
static int split_langs(const char *s, char **buf, const char ***v, size_t *n) {
    *buf = strdup(s);
    *v = calloc(strlen(s) + 1, sizeof **v);
    *n = 0;
    if (!*buf || !*v) return 1;
    for (char *tok = strtok(*buf, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        for (const char *c = tok; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_')) {
                fprintf(stderr, "takumi: --languages: '%s' is not a language code (en, ja, …)\n", tok);
                return 1;
            }
        (*v)[(*n)++] = tok;
    }
    if (!*n) { fprintf(stderr, "takumi: --languages: no language given\n"); return 1; }
    return 0;
}

int cli_data_synth(int argc, char **argv) {
    gen_opts o = {.temperature = 0.7, .max_batch = 16};
    const char *out = NULL, *langs = "en", *system = NULL, *v;
    long qpc = 3, para = 2, chunk = 1500;
    bool chunk_tokens = false;
    const char **docs = calloc((size_t)argc, sizeof *docs);
    size_t n_docs = 0;
    int err = docs ? 0 : 1;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { cli_usage_synth(stdout); free(docs); return 0; }
        else if (cli_flag(argv, i, "from")) {
            size_t before = n_docs;
            while (i + 1 < argc && (argv[i + 1][0] != '-' || !argv[i + 1][1])) docs[n_docs++] = argv[++i];
            if (n_docs == before) { fprintf(stderr, "takumi: --from needs one or more documents\n"); err = 1; }
        }
        else if (gen_opt(argc, argv, &i, &o, &err)) {}
        else if (cli_opt(argc, argv, &i, "teacher", &o.teacher, &err)) {}
        else if (cli_opt(argc, argv, &i, "out", &out, &err)) {}
        else if (cli_opt(argc, argv, &i, "languages", &langs, &err)) {}
        else if (cli_opt(argc, argv, &i, "system", &system, &err)) {}
        else if (cli_opt(argc, argv, &i, "questions-per-chunk", &v, &err)) { if (!err) qpc = cli_parse_long("questions-per-chunk", v, 1, 50, &err); }
        else if (cli_opt(argc, argv, &i, "paraphrases", &v, &err)) { if (!err) para = cli_parse_long("paraphrases", v, 0, 20, &err); }
        else if (cli_opt(argc, argv, &i, "chunk-size", &v, &err)) { if (!err) chunk = cli_parse_long("chunk-size", v, 16, 1L << 20, &err); }
        else if (cli_flag(argv, i, "chunk-tokens")) chunk_tokens = true;
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: data synth: unknown option '%s'\n", argv[i]); err = 1; }
        else { fprintf(stderr, "takumi: data synth: '%s': documents go after --from\n", argv[i]); err = 1; }
    }
    if (!err && !n_docs) { fprintf(stderr, "takumi: data synth: no documents (--from DOCS...)\n"); err = 1; }
    if (!err && !out) { fprintf(stderr, "takumi: data synth: no --out FILE\n"); err = 1; }
    for (size_t k = 0; k < n_docs && !err; k++)
        if (cli_same_file(docs[k], out)) { fprintf(stderr, "takumi: data synth: --out %s is one of the documents\n", out); err = 1; }
    char *lbuf = NULL;
    const char **lv = NULL;
    size_t nl = 0;
    if (!err && split_langs(langs, &lbuf, &lv, &nl)) err = 1;
    if (err) { fprintf(stderr, "run 'takumi data --help' for the options\n"); free(docs); free(lbuf); free(lv); return 2; }
    tk_model *m = NULL, *t = NULL;
    tk_synth_params p = tk_synth_default_params();
    int rc = load(&o, &m, &t, &p.gen);
    tk_synth_summary s = {0};
    if (!rc) {
        p.questions_per_chunk = (int)qpc;
        p.paraphrases = (int)para;
        p.languages = lv, p.n_languages = nl;
        p.system = system;
        p.chunk.max_size = (size_t)chunk;
        p.chunk.tok = chunk_tokens ? tk_model_tokenizer(m) : NULL;
        p.target_tok = tk_model_tokenizer(m);
        p.target_ctx = tk_model_get_config(m)->max_seq;
        tk_status st = tk_synth_run(docs, n_docs, out, &p, &s);
        tk_buf b = {0};
        if (s.docs && (o.json ? tk_synth_summary_json(&s, &b) : tk_synth_summary_text(&s, &b)) == TK_OK && b.data)
            fprintf(o.json ? stdout : stderr, "%s%s", b.data, o.json ? "\n" : "");
        tk_buf_free(&b);
        if (st) rc = cli_fail(st, "data synth");
        else {
            if (!o.json) fprintf(stderr, "wrote %s (%llu records)\n", out, (unsigned long long)s.records);
            rc = s.n_failed_docs ? 1 : 0;   /* a skipped document is an error the user must see in the exit code */
        }
    }
    tk_synth_summary_free(&s);
    tk_model_free(t);
    tk_model_free(m);
    free(docs), free(lbuf), free(lv);
    return rc;
}

int cli_data_augment(int argc, char **argv) {
    gen_opts o = {.temperature = 0.7, .max_batch = 16};
    const char *file = NULL, *out = NULL, *v;
    long para = 2;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { cli_usage_synth(stdout); return 0; }
        else if (gen_opt(argc, argv, &i, &o, &err)) {}
        else if (cli_opt(argc, argv, &i, "out", &out, &err)) {}
        else if (cli_opt(argc, argv, &i, "paraphrases", &v, &err)) { if (!err) para = cli_parse_long("paraphrases", v, 1, 20, &err); }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: data augment: unknown option '%s'\n", argv[i]); err = 1; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "takumi: data augment: more than one file given ('%s')\n", argv[i]); err = 1; }
    }
    if (!err && !file) { fprintf(stderr, "takumi: data augment: no FILE given\n"); err = 1; }
    if (!err && !out) { fprintf(stderr, "takumi: data augment: no --out FILE2\n"); err = 1; }
    if (!err && (!strcmp(file, out) || cli_same_file(file, out))) { fprintf(stderr, "takumi: data augment: --out must differ from the input\n"); err = 1; }
    if (err) { fprintf(stderr, "run 'takumi data --help' for the options\n"); return 2; }
    tk_model *m = NULL, *t = NULL;
    tk_augment_params p = tk_augment_default_params();
    int rc = load(&o, &m, &t, &p.gen);
    if (!rc) {
        p.paraphrases = (int)para;
        tk_augment_summary s;
        tk_status st = tk_augment_run(file, out, &p, &s);
        if (st) rc = cli_fail(st, "data augment");
        else if (o.json) {
            printf("{\"records\":%llu,\"added\":%llu,\"bad_lines\":%llu,\"no_user_turn\":%llu,\"dropped\":{", (unsigned long long)s.records,
                   (unsigned long long)s.added, (unsigned long long)s.bad_lines, (unsigned long long)s.no_user);
            for (int k = 1; k < TK_PARA_COUNT; k++) printf("%s\"%s\":%llu", k > 1 ? "," : "", tk_para_name((tk_para)k), (unsigned long long)s.dropped[k]);
            printf("},\"generated_tokens\":%lld,\"generation_seconds\":%.3f}\n", (long long)s.n_generated, s.gen_s);
        } else {
            fprintf(stderr, "%s: %llu records, %llu paraphrases added", file, (unsigned long long)s.records, (unsigned long long)s.added);
            int any = 0;
            for (int k = 1; k < TK_PARA_COUNT; k++)
                if (s.dropped[k]) fprintf(stderr, "%s %s %llu", any++ ? "," : "; dropped:", tk_para_name((tk_para)k), (unsigned long long)s.dropped[k]);
            if (s.bad_lines) fprintf(stderr, "; %llu lines not chat records, skipped (first: line %llu)", (unsigned long long)s.bad_lines, (unsigned long long)s.first_bad_line);
            if (s.no_user) fprintf(stderr, "; %llu records without a user turn, copied unchanged", (unsigned long long)s.no_user);
            fprintf(stderr, "\ngenerated %lld tokens in %.1f s\nwrote %s\n", (long long)s.n_generated, s.gen_s, out);
        }
        if (!rc && s.bad_lines) rc = 1;
    }
    tk_model_free(t);
    tk_model_free(m);
    return rc;
}
