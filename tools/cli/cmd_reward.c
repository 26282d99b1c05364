/* `takumi reward --model M --adapter RM --data PAIRS`: scores preference pairs with a reward model
 * (`takumi train --objective reward` writes RUN/adapter/): one line per pair on stdout,
 * `line L: chosen X rejected Y` (with --ids each side's token ids below it), then `pairwise accuracy: A (k of n pairs)` (chosen scored higher). */
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: takumi reward [--model M] [--tokenizer T] --adapter RM --data PAIRS [--template NAME] [--max-seq-len N] "
               "[--threads N] [--quiet]\n"
               "  --adapter RM      a reward model in PEFT layout (task_type SEQ_CLS, e.g. RUN/adapter of --objective reward)\n"
               "  --data PAIRS      preference pairs (TRL prompt/chosen/rejected, OpenAI, LLaMA-Factory)\n"
               "  --quiet           only the accuracy line\n"
               "  --ids             also print each side's token ids (JSON lists) after its pair line\n");
}

typedef struct counts { int64_t n, right; bool quiet, ids; } counts;

static void print_ids(const char *what, const int32_t *v, int32_t n) {
    printf("  %s ids: [", what);
    for (int32_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)v[i]);
    printf("]\n");
}

static void on_pair(const tk_reward_pair *p, void *ud) {
    counts *c = ud;
    c->n++;
    c->right += p->chosen > p->rejected;
    if (!c->quiet) printf("line %llu: chosen %.6f rejected %.6f\n", (unsigned long long)p->line, p->chosen, p->rejected);
    if (!c->quiet && c->ids) { print_ids("chosen", p->chosen_ids, p->n_chosen); print_ids("rejected", p->rejected_ids, p->n_rejected); }
}

int cmd_reward(int argc, char **argv) {
    tk_reward_opts o = {0};
    const char *v = NULL;
    counts c = {0};
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &o.model, &err)) {}
        else if (cli_opt(argc, argv, &i, "tokenizer", &o.tokenizer, &err)) {}
        else if (cli_opt(argc, argv, &i, "adapter", &o.adapter, &err)) {}
        else if (cli_opt(argc, argv, &i, "data", &o.data, &err)) {}
        else if (cli_opt(argc, argv, &i, "template", &o.template_name, &err)) {}
        else if (cli_opt(argc, argv, &i, "max-seq-len", &v, &err)) { if (v) o.max_seq = (int32_t)cli_parse_long("max-seq-len", v, 2, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) {
            if (v) cli_parse_threads(v, &err);
        }
        else if (cli_flag(argv, i, "quiet")) c.quiet = true;
        else if (cli_flag(argv, i, "ids")) c.ids = true;
        else { fprintf(stderr, "takumi: unknown argument '%s' (see takumi reward --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    if (!o.adapter || !o.data) { usage(stderr); return 1; }
    if (o.max_seq < 0) return cli_fail(TK_OK, "--max-seq-len must be positive");
    if (!o.model && !(o.model = cli_default_model())) return cli_fail(TK_OK, "no --model given and the default model is missing");
    int64_t n = 0;
    double acc = 0;
    tk_status st = tk_reward_score(&o, on_pair, &c, &n, &acc);
    if (st) return cli_fail(st, "reward");
    printf("pairwise accuracy: %.4f (%lld of %lld pairs)\n", acc, (long long)c.right, (long long)n);
    return 0;
}
