/* `takumi eval`: metrics of a model (and adapter) on a data file or of given predictions, against a baseline,
 * with targets: stdout is the table (or --json, one document); exit 0 when every --target is met, 3 when one is
 * not, 1 on errors. */
#include "cli.h"
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: takumi eval --model M [--adapter A] --data FILE [options]\n"
        "       takumi eval --predictions FILE [options]       (score answers already generated: \"prediction\" + \"reference\")\n"
        "  --data FILE               JSONL, a JSON array, CSV (header row), plain text or text<TAB>label TSV\n"
        "  --map SPEC                read --data in any JSON/CSV/TSV layout, e.g. prompt=question,reference=answer for a CSV FAQ\n"
        "                            (the same keys as takumi data --map; 'takumi data --help' lists them)\n"
        "  --map-file FILE           the same map as a JSON object or LLaMA-Factory dataset_info entry\n"
        "  --metrics LIST            comma-separated (default: every metric the data supports): %s\n"
        "  --target METRIC>=X        a goal (also >, <=, <, ==; repeatable): exit 3 when one is missed\n"
        "  --baseline-adapter A0 | --baseline-model M0 | --baseline-base   compare against this (--baseline-base: the model\n"
        "                            without --adapter): baseline, diff and a 95%% paired bootstrap interval of the diff\n"
        "  --grader G.json           OpenAI-form grader (string_check, text_similarity, score_model, multi, command)\n"
        "  --judge MODEL             local judge model (score_model graders, the judge metric)\n"
        "  --general FILE            forgetting: score FILE with and without the adapter (repeatable; multiple choice or text)\n"
        "  --max-drop-acc X          flag an accuracy drop above X (default 0.02)   --max-drop-ppl X: a perplexity rise above X (0.05)\n"
        "  --max-drop X              both at once (X points of accuracy as a fraction, X of perplexity)\n"
        "  --forbid REGEX            safety: answers matching REGEX are counted (repeatable)\n"
        "  --train-data FILE         safety: personal data of the training file reproduced in answers\n"
        "  --max-tokens N            tokens generated per answer (default 128)   --batch N: answers generated together (8)\n"
        "  --exact                   generate with f32 activations (default: 8-bit activations in decode, as llama.cpp)\n"
        "  --max-seq-len N           longest sequence scored (default: the model's context, at most 4096)\n"
        "  --max-grader-failures N   stop with an error after N grader failures (default: no limit)\n"
        "  --system S  --template NAME  --tokenizer T  --seed S  --bootstrap N (default 1000)  --threads N\n"
        "  --json                    one JSON document on stdout   --out DIR: results.json, examples.jsonl, report.html\n"
        "  --quiet                   no progress on stderr\n", tk_eval_metric_names());
}

static void progress(void *ud, const char *stage, int64_t done, int64_t total) {
    (void)ud;
    if (done == total || done % 8 == 0) fprintf(stderr, "\r[%s %lld/%lld]%s", stage, (long long)done, (long long)total, done == total ? "\n" : "");
}

#define MAX_LIST 64

int cmd_eval(int argc, char **argv) {
    tk_eval_params p = tk_eval_default_params();
    const char *v = NULL, *out_dir = NULL, *map_s = NULL, *map_f = NULL, *general[MAX_LIST], *forbid[MAX_LIST];
    tk_eval_target targets[MAX_LIST];
    int n_targets = 0, err = 0;
    bool json = false, quiet = false;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &p.model, &err)) {}
        else if (cli_opt(argc, argv, &i, "tokenizer", &p.tokenizer, &err)) {}
        else if (cli_opt(argc, argv, &i, "adapter", &p.adapter, &err)) {}
        else if (cli_opt(argc, argv, &i, "data", &p.data, &err)) {}
        else if (cli_opt(argc, argv, &i, "predictions", &p.predictions, &err)) {}
        else if (cli_opt(argc, argv, &i, "map", &map_s, &err)) {}
        else if (cli_opt(argc, argv, &i, "map-file", &map_f, &err)) {}
        else if (cli_opt(argc, argv, &i, "metrics", &p.metrics, &err)) {}
        else if (cli_opt(argc, argv, &i, "grader", &p.grader, &err)) {}
        else if (cli_opt(argc, argv, &i, "judge", &p.judge, &err)) {}
        else if (cli_opt(argc, argv, &i, "baseline-adapter", &p.baseline_adapter, &err)) {}
        else if (cli_opt(argc, argv, &i, "baseline-model", &p.baseline_model, &err)) {}
        else if (cli_opt(argc, argv, &i, "template", &p.template_name, &err)) {}
        else if (cli_opt(argc, argv, &i, "system", &p.system, &err)) {}
        else if (cli_opt(argc, argv, &i, "train-data", &p.train_data, &err)) {}
        else if (cli_opt(argc, argv, &i, "out", &out_dir, &err)) {}
        else if (cli_opt(argc, argv, &i, "max-tokens", &v, &err)) { if (v) p.max_tokens = (int32_t)cli_parse_long("max-tokens", v, 1, 1L << 20, &err); }
        else if (cli_opt(argc, argv, &i, "batch", &v, &err)) { if (v) p.batch = (int32_t)cli_parse_long("batch", v, 1, 4096, &err); }
        else if (cli_opt(argc, argv, &i, "max-seq-len", &v, &err)) { if (v) p.max_seq = (int32_t)cli_parse_long("max-seq-len", v, 2, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "bootstrap", &v, &err)) { if (v) p.n_boot = (int32_t)cli_parse_long("bootstrap", v, 0, 1000000, &err); }
        else if (cli_opt(argc, argv, &i, "seed", &v, &err)) { if (v) p.seed = cli_parse_u64("seed", v, &err); }
        else if (cli_opt(argc, argv, &i, "max-grader-failures", &v, &err)) { if (v) p.max_grader_failures = cli_parse_long("max-grader-failures", v, 0, LONG_MAX, &err); }
        else if (cli_opt(argc, argv, &i, "max-drop", &v, &err)) { if (v) p.max_drop_acc = p.max_drop_ppl = cli_parse_double("max-drop", v, 0, 1, &err); }
        else if (cli_opt(argc, argv, &i, "max-drop-acc", &v, &err)) { if (v) p.max_drop_acc = cli_parse_double("max-drop-acc", v, 0, 1, &err); }
        else if (cli_opt(argc, argv, &i, "max-drop-ppl", &v, &err)) { if (v) p.max_drop_ppl = cli_parse_double("max-drop-ppl", v, 0, 1e6, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) { if (v) cli_parse_threads(v, &err); }
        else if (cli_opt(argc, argv, &i, "general", &v, &err)) {
            if (!v) continue;
            if (p.n_general == MAX_LIST) { fprintf(stderr, "takumi: at most %d --general files\n", MAX_LIST); err = 1; }
            else general[p.n_general++] = v;
        } else if (cli_opt(argc, argv, &i, "forbid", &v, &err)) {
            if (!v) continue;
            if (p.n_forbidden == MAX_LIST) { fprintf(stderr, "takumi: at most %d --forbid patterns\n", MAX_LIST); err = 1; }
            else forbid[p.n_forbidden++] = v;
        } else if (cli_opt(argc, argv, &i, "target", &v, &err)) {
            if (!v) continue;
            if (n_targets == MAX_LIST) { fprintf(stderr, "takumi: at most %d --target goals\n", MAX_LIST); err = 1; }
            else if (tk_eval_target_parse(v, &targets[n_targets])) { cli_fail(TK_ERR_ARG, "bad target"); err = 1; }
            else n_targets++;
        }
        else if (cli_flag(argv, i, "baseline-base")) p.baseline_base = true;
        else if (cli_flag(argv, i, "json")) json = true;
        else if (cli_flag(argv, i, "exact")) p.exact = true;
        else if (cli_flag(argv, i, "quiet")) quiet = true;
        else { fprintf(stderr, "takumi: unknown argument '%s' (see takumi eval --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    if (!p.data && !p.predictions) { usage(stderr); return 1; }
    if (p.data && !p.model && !(p.model = cli_default_model())) return cli_fail(TK_OK, "no --model given and the default model is missing");
    p.general = general;
    p.forbidden = forbid;
    if (!quiet && isatty(2)) p.progress = progress;
    tk_data_map *map = NULL;
    int mrc = cli_data_map(map_s, map_f, &map);
    if (mrc) return mrc;
    p.map = map;
    tk_eval_result *r = NULL;
    tk_status st = tk_eval_run(&p, &r);
    tk_data_map_free(map);
    if (st) return cli_fail(st, "eval");
    int rc = 0;
    tk_buf b = {0};
    st = json ? tk_eval_json(r, &b) : tk_eval_text(r, &b);
    if (!st && json) st = tk_buf_append(&b, "\n", 1);
    for (int t = 0; !st && t < n_targets; t++) {
        double val;
        bool met = tk_eval_target_met(&targets[t], r, &val);
        char txt[160];
        tk_eval_target_format(&targets[t], txt, sizeof txt);
        if (!met) rc = 3;
        if (!json) st = tk_buf_printf(&b, "%starget %s: %s (%s %.6g)\n", t ? "" : "\n", txt, met ? "met" : "NOT MET",
                                      tk_eval_find(r, targets[t].metric) ? "value" : "not computed:", val);
        else if (!met) fprintf(stderr, "takumi: target %s not met (value %.6g)\n", txt, val);
    }
    if (!st && out_dir) st = tk_eval_write_dir(r, out_dir);
    if (st) { tk_buf_free(&b); tk_eval_result_free(r); return cli_fail(st, "eval"); }
    fwrite(b.data, 1, b.len, stdout);
    if (fflush(stdout) || ferror(stdout)) rc = cli_fail(TK_OK, "cannot write the results to stdout");
    tk_buf_free(&b);
    tk_eval_result_free(r);
    return rc;
}
