/* `takumi data check|redact|convert|split` — is the training data ready, and the
 * tools to make it ready. The library (src/data/) does the work; this file parses
 * options, loads the model's tokenizer for exact token counts, prints findings as
 * they stream in line order, and turns the verdict into the exit code. */
#include "cli.h"
#include <math.h>
#include <errno.h>

/* Default training throughput when --tokens-per-second is absent: LoRA costs about
 * 4·N FLOPs per token (forward 2N + backward to the activations 2N; frozen weights get
 * no weight gradient), and these 2-core machines reach ~190 GFLOP/s in fp32 sgemm
 * (measured, ../shared/DESIGN.md). This is an upper bound on throughput, so the time
 * is a lower-bound estimate until takumi's own training benchmark provides a rate. */
#define SGEMM_FLOPS 190e9

static void usage_data(FILE *f) {
    fprintf(f,
        "usage: takumi data <check|redact|convert|split|synth|augment> FILE [options]\n\n"
        "  check FILE      is the data ready for fine-tuning? format errors (line N: category: reason),\n"
        "                  token statistics, duplicates, personal data, balance, cost, verdict\n"
        "      --model M             model whose tokenizer/template/context count tokens (default: %s)\n"
        "      --format F            chat|prompt_completion|alpaca|sharegpt|preference|classification|text (default: detect)\n"
        "      --template NAME       chat template family instead of the model's own\n"
        "      --json                print {\"findings\": [...], \"report\": {...}} instead of text\n"
        "      --approx-tokens       do not load a model: approximate tokens as UTF-8 bytes / 4\n"
        "      --max-seq N           context length for the too-long check (default: the model's)\n"
        "      --tokens-per-second X training throughput for the time estimate (default: 190e9 / (4 x parameters),\n"
        "                            a compute-bound estimate for LoRA on this machine class)\n"
        "      --threads N           worker threads (default: all cores)\n"
        "      --max-line-mb N       longest accepted line or record in MiB (default 256)\n"
        "      --near-dup X          near-duplicate threshold, estimated Jaccard of character 5-grams (default 0.8)\n"
        "      --against EVAL...     contamination check: training records that are also in these evaluation/test files\n"
        "                            (same normalised text, same prompt, or Jaccard of character 5-grams >= the threshold),\n"
        "                            with line numbers on both sides; each match is an error\n"
        "      --against-threshold X near-duplicate threshold for --against (default 0.8)\n"
        "    exit status: 0 ready / ready with warnings, 1 not ready or unreadable file, 2 bad usage\n\n"
        "  --map SPEC / --map-file FILE (check, convert, split, takumi train and takumi eval): read records in any JSON, CSV or TSV layout:\n"
        "      chat:   messages=FIELD,role=FIELD,content=FIELD,user=V[|V],assistant=V[|V][,system_role=V]\n"
        "      prompt/completion: prompt=FIELD,completion=FIELD[,query=FIELD][,history=FIELD] (completion= alias response=, reference=)\n"
        "      classification: text=FIELD,label=FIELD   raw text: text=FIELD\n"
        "      conversations also: system=TEXT (a system prompt to add), system_field=FIELD, train=assistant|last|all\n"
        "      e.g. --map 'messages=turns,role=speaker,content=utterance,user=USER,assistant=SYSTEM'\n"
        "      FILE: the same keys as a JSON object, or a LLaMA-Factory dataset_info entry\n"
        "      ({\"formatting\": \"sharegpt\", \"columns\": {\"messages\": \"turns\"}, \"tags\": {\"role_tag\": \"speaker\", …}})\n"
        "  CSV files (.csv) and TSV files read with a map have a header row; RFC 4180 quoting\n\n"
        "  redact FILE --out FILE2      copy with e-mails, phone numbers, credit cards, IPs replaced by\n"
        "                               [EMAIL] [PHONE] [CREDIT_CARD] [IP]; everything else byte for byte\n\n"
        "  convert FILE --to chat|preference [--style openai|trl] [--format F] [--map SPEC] [--out FILE2]\n"
        "                  lossless conversion to OpenAI chat JSONL or preference JSONL (OpenAI style by default);\n"
        "                  records that cannot be converted are reported with their line; JSONL to stdout without --out\n\n"
        "  split FILE --ratios 80,10,10 --seed S --out DIR [--format F] [--map SPEC] [--no-stratify] [--near-dup X]\n"
        "                  DIR/train, valid, test files; deterministic per seed; duplicates, near-duplicates and\n"
        "                  same-prompt records stay together; stratified by label for classification\n\n",
        "models/SmolLM2-135M-Instruct.Q4_1.gguf");
    cli_usage_synth(f);
}

/* ---- findings output -------------------------------------------------------- */
typedef struct sink { FILE *f; bool json; size_t n; tk_buf b; } sink;

static void on_finding(const tk_data_finding *fd, void *user) {
    sink *s = user;
    s->b.len = 0;
    if (s->json) {
        if (s->n) fputc(',', s->f);
        tk_data_finding_json(fd, &s->b);
    } else {
        tk_data_finding_format(fd, &s->b);
        tk_buf_append(&s->b, "\n", 1);
    }
    if (s->b.data) fwrite(s->b.data, 1, s->b.len, s->f);
    s->n++;
}

static tk_data_format parse_format(const char *v, int *err) {
    if (!v) return TK_DATA_AUTO;
    tk_data_format f = tk_data_format_from_name(v);
    if (f == TK_DATA_FORMAT_COUNT) {
        fprintf(stderr, "takumi: --format: unknown format '%s' (chat, prompt_completion, alpaca, sharegpt, preference, classification, text)\n", v);
        *err = 1;
        return TK_DATA_AUTO;
    }
    return f;
}

/* ---- check -------------------------------------------------------------------- */
static int data_check(int argc, char **argv) {
    const char *file = NULL, *model = NULL, *fmt_s = NULL, *tmpl = NULL, *v, *map_s = NULL, *map_f = NULL;
    bool json = false, approx = false, tps_given = false;
    long max_seq = -1, threads = 0;
    double tps = 0, max_line_mb = 256, near = 0.8, against_t = 0.8;
    const char **against = calloc((size_t)argc, sizeof *against);
    size_t n_against = 0;
    int err = against ? 0 : 1;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage_data(stdout); free(against); return 0; }
        else if (cli_flag(argv, i, "against")) {
            size_t before = n_against;
            while (i + 1 < argc && (argv[i + 1][0] != '-' || !argv[i + 1][1])) against[n_against++] = argv[++i];
            if (n_against == before) { fprintf(stderr, "takumi: --against needs one or more evaluation files\n"); err = 1; }
        }
        else if (cli_opt(argc, argv, &i, "against-threshold", &v, &err)) { if (!err) against_t = cli_parse_double("against-threshold", v, 1e-9, 1, &err); }
        else if (cli_opt(argc, argv, &i, "map", &map_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "map-file", &map_f, &err)) {}
        else if (cli_flag(argv, i, "json")) json = true;
        else if (cli_flag(argv, i, "approx-tokens")) approx = true;
        else if (cli_opt(argc, argv, &i, "model", &model, &err)) {}
        else if (cli_opt(argc, argv, &i, "format", &fmt_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "template", &tmpl, &err)) {}
        else if (cli_opt(argc, argv, &i, "max-seq", &v, &err)) { if (!err) max_seq = cli_parse_long("max-seq", v, 1, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) { if (!err) threads = cli_parse_long("threads", v, 0, CLI_MAX_THREADS, &err); }
        else if (cli_opt(argc, argv, &i, "tokens-per-second", &v, &err)) { if (!err) tps = cli_parse_double("tokens-per-second", v, 1e-9, 1e15, &err); tps_given = true; }
        else if (cli_opt(argc, argv, &i, "max-line-mb", &v, &err)) { if (!err) max_line_mb = cli_parse_double("max-line-mb", v, 1e-6, 4096, &err); }
        else if (cli_opt(argc, argv, &i, "near-dup", &v, &err)) { if (!err) near = cli_parse_double("near-dup", v, 1e-9, 1, &err); }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: data check: unknown option '%s'\n", argv[i]); err = 1; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "takumi: data check: more than one file given ('%s')\n", argv[i]); err = 1; }
    }
    tk_data_check_params p = tk_data_check_default_params();
    p.format = parse_format(fmt_s, &err);
    if (!err && !file) { fprintf(stderr, "takumi: data check: no FILE given\n"); err = 1; }
    if (!err && (max_line_mb <= 0 || max_line_mb > 4096)) { fprintf(stderr, "takumi: --max-line-mb must be in (0, 4096]\n"); err = 1; }
    if (!err && (near <= 0 || near > 1)) { fprintf(stderr, "takumi: --near-dup must be in (0, 1]\n"); err = 1; }
    if (!err && (tps < 0 || !isfinite(tps))) { fprintf(stderr, "takumi: --tokens-per-second must be positive\n"); err = 1; }
    if (!err && (against_t <= 0 || against_t > 1)) { fprintf(stderr, "takumi: --against-threshold must be in (0, 1]\n"); err = 1; }
    for (size_t k = 0; k < n_against && !err; k++)
        if (cli_same_file(file, against[k])) { fprintf(stderr, "takumi: --against %s is the training file itself\n", against[k]); err = 1; }
    if (err) { fprintf(stderr, "run 'takumi data --help' for the options\n"); free(against); return 2; }
    tk_data_map *map = NULL;
    int mrc = cli_data_map(map_s, map_f, &map);
    if (mrc) { free(against); return mrc; }
    p.map = map;
    p.against = against;
    p.n_against = n_against;
    p.contamination_threshold = against_t;

    tk_model *m = NULL;
    if (!approx) {
        if (!model) model = cli_default_model();
        if (!model) return cli_fail(TK_OK, "no model for exact token counts: pass --model M, run scripts/fetch-model.sh, or use --approx-tokens");
        tk_model_params mp = tk_model_default_params();
        mp.tokenizer = TK_TOKENIZER_REQUIRED;
        tk_status st = tk_model_load(model, &mp, &m);
        if (st) { tk_data_map_free(map); free(against); return cli_fail(st, "cannot load the model for token counts (%s)", model); }
        const tk_model_config *cfg = tk_model_get_config(m);
        if (max_seq < 0) max_seq = cfg->max_seq;
        if (tps == 0) {
            int64_t np = tk_model_n_params(m);
            if (np > 0) tps = SGEMM_FLOPS / (4.0 * (double)np);
        }
        p.tokenizer = tk_model_tokenizer(m);
        st = tk_chat_resolve(p.tokenizer, tmpl, &p.chat_family);
        if (st) { tk_model_free(m); tk_data_map_free(map); free(against); return cli_fail(st, "chat template of %s", model); }
    } else if (tmpl) {
        fprintf(stderr, "takumi: --template needs a tokenizer (drop --approx-tokens)\n");
        tk_data_map_free(map);
        free(against);
        return 2;
    }
    p.max_seq = max_seq > 0 ? max_seq : 0;
    p.tokens_per_second = tps;
    p.throughput_note = tps_given ? "from --tokens-per-second"
                                  : "190 GFLOP/s (fp32 sgemm measured on these 2-core machines) / (4 FLOPs x model parameters) per token: "
                                    "a compute-bound guess until takumi's training benchmark measures it; pass --tokens-per-second";
    p.threads = (int)threads;
    p.max_line_bytes = (size_t)(max_line_mb * 1048576.0);
    p.near_dup_threshold = near;
    sink s = {.f = stdout, .json = json};
    p.on_finding = on_finding;
    p.user = &s;
    if (json) fputs("{\"findings\":[", stdout);
    tk_data_report *r = NULL;
    tk_status st = tk_data_check(file, &p, &r);
    if (st) {
        if (json) fputs("]}\n", stdout);
        tk_buf_free(&s.b);
        tk_model_free(m);
        tk_data_map_free(map);
        free(against);
        return cli_fail(st, "data check");
    }
    tk_buf out = {0};
    if (json) {
        fputs("],\"report\":", stdout);
        tk_data_report_json(r, &out);
        tk_buf_append(&out, "}\n", 2);
    } else {
        if (s.n) fputc('\n', stdout);
        tk_data_report_text(r, &out);

    }
    fwrite(out.data, 1, out.len, stdout);
    fflush(stdout);
    int rc = r->verdict == TK_DATA_NOT_READY ? 1 : 0;
    tk_buf_free(&out);
    tk_buf_free(&s.b);
    tk_data_report_free(r);
    tk_model_free(m);
    tk_data_map_free(map);
    free(against);
    return rc;
}

/* ---- redact ------------------------------------------------------------------- */
static int data_redact(int argc, char **argv) {
    const char *file = NULL, *out = NULL;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage_data(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "out", &out, &err)) {}
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: data redact: unknown option '%s'\n", argv[i]); err = 1; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "takumi: data redact: more than one file given\n"); err = 1; }
    }
    if (!err && (!file || !out)) { fprintf(stderr, "takumi: usage: takumi data redact FILE --out FILE2\n"); err = 1; }
    if (!err && !strcmp(file, out)) { fprintf(stderr, "takumi: data redact: --out must differ from the input\n"); err = 1; }
    if (err) return 2;
    uint64_t counts[TK_PII_COUNT], changed;
    tk_status st = tk_data_redact(file, out, counts, &changed);
    if (st) return cli_fail(st, "data redact");
    uint64_t total = 0;
    for (int k = 0; k < TK_PII_COUNT; k++) total += counts[k];
    printf("redacted %llu item%s in %llu record%s -> %s\n", (unsigned long long)total, total == 1 ? "" : "s",
           (unsigned long long)changed, changed == 1 ? "" : "s", out);
    for (int k = 0; k < TK_PII_COUNT; k++)
        if (counts[k]) printf("  %-12s %llu -> %s\n", tk_pii_name(k), (unsigned long long)counts[k], tk_pii_placeholder(k));
    return 0;
}

/* ---- convert ------------------------------------------------------------------ */
static int data_convert(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *to = NULL, *style = NULL, *fmt_s = NULL, *map_s = NULL, *map_f = NULL;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage_data(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "map", &map_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "map-file", &map_f, &err)) {}
        else if (cli_opt(argc, argv, &i, "out", &out, &err)) {}
        else if (cli_opt(argc, argv, &i, "to", &to, &err)) {}
        else if (cli_opt(argc, argv, &i, "style", &style, &err)) {}
        else if (cli_opt(argc, argv, &i, "format", &fmt_s, &err)) {}
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: data convert: unknown option '%s'\n", argv[i]); err = 1; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "takumi: data convert: more than one file given\n"); err = 1; }
    }
    tk_data_format from = parse_format(fmt_s, &err);
    tk_data_target target = TK_DATA_TO_CHAT;
    if (!err && (!file || !to)) { fprintf(stderr, "takumi: usage: takumi data convert FILE --to chat|preference [--out FILE2]\n"); err = 1; }
    if (!err) {
        if (!strcmp(to, "chat")) target = TK_DATA_TO_CHAT;
        else if (!strcmp(to, "preference")) target = style && !strcmp(style, "trl") ? TK_DATA_TO_PREFERENCE_TRL : TK_DATA_TO_PREFERENCE_OPENAI;
        else { fprintf(stderr, "takumi: --to: expected chat or preference, got '%s'\n", to); err = 1; }
    }
    if (!err && style && strcmp(style, "openai") && strcmp(style, "trl")) { fprintf(stderr, "takumi: --style: expected openai or trl\n"); err = 1; }
    if (!err && out && !strcmp(out, file)) { fprintf(stderr, "takumi: data convert: --out must differ from the input\n"); err = 1; }
    if (err) return 2;
    tk_data_map *map = NULL;
    int mrc = cli_data_map(map_s, map_f, &map);
    if (mrc) return mrc;
    sink s = {.f = stderr};
    tk_data_convert_result res;
    tk_status st = tk_data_convert_mapped(file, from, map, target, out, out ? NULL : stdout, on_finding, &s, &res);
    tk_buf_free(&s.b);
    tk_data_map_free(map);
    if (st) return cli_fail(st, "data convert");
    fflush(stdout);
    FILE *sum = out ? stdout : stderr;
    fprintf(sum, "converted %llu of %llu records (%s -> %s)%s%s\n", (unsigned long long)res.n_written, (unsigned long long)res.n_records,
            tk_data_format_name(res.from), to, out ? " -> " : "", out ? out : "");
    if (res.n_failed)
        fprintf(sum, "%llu record%s not converted (reasons above, with line numbers)\n", (unsigned long long)res.n_failed, res.n_failed == 1 ? "" : "s");
    return res.n_failed ? 1 : 0;
}

/* ---- split ---------------------------------------------------------------------- */
static int data_split(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *ratios = NULL, *seed_s = NULL, *fmt_s = NULL, *v, *map_s = NULL, *map_f = NULL;
    tk_data_split_params p = tk_data_split_default_params();
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage_data(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "map", &map_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "map-file", &map_f, &err)) {}
        else if (cli_flag(argv, i, "no-stratify")) p.stratify = false;
        else if (cli_opt(argc, argv, &i, "out", &out, &err)) {}
        else if (cli_opt(argc, argv, &i, "ratios", &ratios, &err)) {}
        else if (cli_opt(argc, argv, &i, "seed", &seed_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "format", &fmt_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "near-dup", &v, &err)) { if (!err) p.near_dup_threshold = cli_parse_double("near-dup", v, 1e-9, 1, &err); }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: data split: unknown option '%s'\n", argv[i]); err = 1; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "takumi: data split: more than one file given\n"); err = 1; }
    }
    p.format = parse_format(fmt_s, &err);
    if (!err && (!file || !out)) { fprintf(stderr, "takumi: usage: takumi data split FILE --ratios 80,10,10 --seed S --out DIR\n"); err = 1; }
    if (!err && ratios) {
        double r[3] = {0, 0, 0};
        int n = 0;
        const char *q = ratios;
        while (*q && n < 4) {
            char *end;
            errno = 0;
            double x = strtod(q, &end);
            if (end == q || errno || x < 0 || !isfinite(x)) { n = 99; break; }
            if (n < 3) r[n] = x;
            n++;
            q = end;
            if (*q == ',') q++;
            else if (*q) { n = 99; break; }
        }
        if (n < 2 || n > 3 || r[0] + r[1] + r[2] <= 0) {
            fprintf(stderr, "takumi: --ratios: expected 2 or 3 non-negative numbers like 80,10,10, got '%s'\n", ratios);
            err = 1;
        } else memcpy(p.ratios, r, sizeof r);
    }
    if (!err && seed_s) {
        char *end;
        errno = 0;
        unsigned long long sd = strtoull(seed_s, &end, 10);
        if (errno || end == seed_s || *end) { fprintf(stderr, "takumi: --seed: expected a non-negative integer, got '%s'\n", seed_s); err = 1; }
        else p.seed = sd;
    }
    if (!err && (p.near_dup_threshold <= 0 || p.near_dup_threshold > 1)) { fprintf(stderr, "takumi: --near-dup must be in (0, 1]\n"); err = 1; }
    if (err) return 2;
    tk_data_map *map = NULL;
    int mrc = cli_data_map(map_s, map_f, &map);
    if (mrc) return mrc;
    p.map = map;
    sink s = {.f = stderr};
    p.on_finding = on_finding;
    p.user = &s;
    tk_data_split_result res;
    tk_status st = tk_data_split(file, out, &p, &res);
    tk_buf_free(&s.b);
    tk_data_map_free(map);
    if (st) return cli_fail(st, "data split");
    static const char *names[3] = {"train", "valid", "test"};
    uint64_t total = res.counts[0] + res.counts[1] + res.counts[2];
    for (int k = 0; k < 3; k++)
        if (res.paths[k]) printf("%-6s %8llu records (%5.1f%%) -> %s\n", names[k], (unsigned long long)res.counts[k],
                                 100.0 * (double)res.counts[k] / (double)total, res.paths[k]);
    printf("seed %llu; %llu group%s of duplicate, near-duplicate or same-prompt records kept within one split\n",
           (unsigned long long)p.seed, (unsigned long long)res.n_groups, res.n_groups == 1 ? "" : "s");
    tk_data_split_result_free(&res);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_data(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "check")) return data_check(argc - 1, argv + 1);
    if (!strcmp(sub, "redact")) return data_redact(argc - 1, argv + 1);
    if (!strcmp(sub, "convert")) return data_convert(argc - 1, argv + 1);
    if (!strcmp(sub, "split")) return data_split(argc - 1, argv + 1);
    if (!strcmp(sub, "synth")) return cli_data_synth(argc - 1, argv + 1);
    if (!strcmp(sub, "augment")) return cli_data_augment(argc - 1, argv + 1);
    fprintf(stderr, "takumi: data: unknown subcommand '%s' (check, redact, convert, split, synth, augment)\n", sub);
    return 2;
}
