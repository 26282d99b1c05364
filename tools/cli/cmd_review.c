/* `takumi review`: a blind A/B review of two systems' answers (include/takumi/review.h).
 *   takumi review --model M --a A1 --b A2 --prompts FILE --out DIR   generate both answers greedily, write the page
 *   takumi review --page-from FILE --out DIR                          the page from answers already generated
 *   takumi review --collect JUDGEMENTS --out DIR                      unblind: results, preferences, SFT data
 * stdout: what was written (and the win rate for --collect); progress and errors go to stderr. */
#include "cli.h"
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: takumi review --model M --a A1 --b A2 --prompts FILE --out DIR [options]\n"
        "       takumi review --page-from FILE --out DIR [--a NAME --b NAME] [--seed S] [--title T]\n"
        "       takumi review --collect JUDGEMENTS --out DIR\n"
        "  A blind A/B review: DIR/review.html shows each prompt with two answers as \"left\" and \"right\" (which system\n"
        "  is which is hidden and shuffled per item); a person picks the better one (or a tie) and may write a corrected\n"
        "  answer. The page is one self-contained file (works offline); its \"Download judgements\" button saves\n"
        "  judgements.jsonl. DIR/key.json says which side each system is on: keep it away from the reviewers.\n"
        "  --model M           .gguf file, HF model folder or llama2.c checkpoint (default: $TAKUMI_MODEL or the bundled SmolLM2)\n"
        "  --a A1, --b A2      the two systems: adapter paths (PEFT folder or GGUF adapter) or the word 'base' (no adapter)\n"
        "  --prompts FILE      JSONL: {\"prompt\": \"...\"} or {\"messages\": [...]} ending with a user turn; optional \"id\"\n"
        "  --out DIR           the review folder (review.html, items.jsonl, key.json; --collect adds results.json,\n"
        "                      preferences.jsonl and sft.jsonl)\n"
        "  --max-tokens N      tokens per answer at most (default 256); answers are greedy\n"
        "  --exact             f32 activations (default: 8-bit decode activations for quantized weights, as generate)\n"
        "  --seed S            which side each system is shown on (default: from the clock; recorded in key.json)\n"
        "  --template NAME     chat template family instead of the model's own (%s)\n"
        "  --system S          system message for prompts that have none\n"
        "  --tokenizer T       tokenizer file instead of the model's\n"
        "  --ctx N             context length (default: the model's)\n"
        "  --threads N         compute threads (default: all cores)\n"
        "  --title T           the page's title\n"
        "  --page-from FILE    JSONL with \"prompt\" (or \"messages\"), \"a\" and \"b\" (the answers of systems A and B):\n"
        "                      any two systems' answers, no model needed (--a/--b then only name them in key.json)\n"
        "  --collect J         judgements.jsonl from the page: writes DIR/results.json (win rate of A over B, ties\n"
        "                      counting half, 95%% Wilson interval), DIR/preferences.jsonl (prompt/chosen/rejected for\n"
        "                      `takumi train --objective dpo`) and DIR/sft.jsonl (chat messages ending with each correction)\n",
        tk_chat_family_names());
}

typedef struct review_opts {
    const char *model, *tokenizer, *a, *b, *prompts, *out, *tmpl, *system, *page_from, *collect, *title;
    int32_t max_tokens, n_ctx;
    uint64_t seed;
    bool seed_given, exact;
} review_opts;

static bool keep_text(void *ud, const char *t, size_t n) { return tk_buf_append(ud, t, n) == TK_OK; }

/* Generates side ('a' or 'b') of every item with adapter path spec ("base": none). */
static int answer_all(const review_opts *o, tk_model *m, tk_session *s, tk_chat_family fam, tk_review_set *set, char side) {
    const char *spec = side == 'a' ? o->a : o->b;
    tk_adapter_handle *ad = NULL;
    tk_status st;
    if (strcmp(spec, "base") && (st = tk_adapter_apply(m, spec, &ad))) return cli_fail(st, "cannot apply the adapter %s", spec);
    tk_adapter_use u = {.peft = tk_adapter_handle_peft(ad), .scale = 1.0f};
    if ((st = tk_session_set_adapters(s, ad ? &u : NULL, ad ? 1 : 0))) { tk_adapter_detach(m, ad); return cli_fail(st, "adapter %s", spec); }
    tk_gen_params gp = tk_gen_default_params();
    gp.sampler.temperature = 0;
    gp.sampler.seed = o->seed;
    gp.max_tokens = o->max_tokens;
    int rc = 0;
    bool tty = isatty(STDERR_FILENO);
    for (size_t i = 0; i < set->n && !rc; i++) {
        tk_review_item *it = &set->items[i];
        tk_chat_tokens ct = {0};
        tk_buf text = {0};
        char who = side == 'a' ? 'A' : 'B';
        if (tty) fprintf(stderr, "\rtakumi: review: system %c (%s): item %zu of %zu", who, spec, i + 1, set->n);
        else if (i == 0) fprintf(stderr, "takumi: review: system %c (%s): %zu answers\n", who, spec, set->n);
        if ((st = tk_chat_render(tk_model_tokenizer(m), fam, it->msgs, it->n_msgs, true, &ct)))
            rc = cli_fail(st, "\nitem %s: chat template %s", it->id, tk_chat_family_name(fam));
        else if ((st = tk_generate(s, tk_model_tokenizer(m), ct.ids.data, (int64_t)ct.ids.len, &gp, keep_text, &text, NULL, NULL)))
            rc = cli_fail(st, "\nitem %s: generation with %s", it->id, spec);
        else if ((st = tk_review_set_answer(it, side, text.data ? text.data : "", text.len)))
            rc = cli_fail(st, "\nitem %s", it->id);
        tk_chat_tokens_free(&ct);
        tk_buf_free(&text);
    }
    if (!rc && tty) fputc('\n', stderr);
    tk_session_set_adapters(s, NULL, 0);  /* the workspace lets go of the adapter before it is freed */
    tk_adapter_detach(m, ad);
    return rc;
}

static int generate(const review_opts *o, tk_review_set *set) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = o->tokenizer;
    mp.n_ctx = o->n_ctx;
    tk_model *m = NULL;
    tk_session *s = NULL;
    tk_chat_family fam = TK_CHAT_UNKNOWN;
    tk_status st = tk_model_load(o->model, &mp, &m);
    int rc = st ? cli_fail(st, "cannot load %s", o->model) : 0;
    if (!rc && (st = tk_chat_resolve(tk_model_tokenizer(m), o->tmpl, &fam))) rc = cli_fail(st, "chat template");
    if (!rc && (st = tk_session_new(m, 0, &s))) rc = cli_fail(st, "session");
    if (!rc) tk_session_set_exact(s, o->exact); /* as takumi generate */
    if (!rc) rc = answer_all(o, m, s, fam, set, 'a');
    if (!rc) rc = answer_all(o, m, s, fam, set, 'b');
    tk_session_free(s);
    tk_model_free(m);
    return rc;
}

static int write_page(const review_opts *o, const tk_review_set *set) {
    tk_review_page_params p = tk_review_page_default_params();
    p.seed = o->seed;
    p.name_a = o->a ? o->a : "a";
    p.name_b = o->b ? o->b : "b";
    if (o->title) p.title = o->title;
    tk_status st = tk_review_write_page(set, &p, o->out);
    if (st) return cli_fail(st, "cannot write the review to %s", o->out);
    printf("wrote %s/review.html (%zu items, seed %llu), %s/items.jsonl and %s/key.json (keep the key away from the reviewers)\n",
           o->out, set->n, (unsigned long long)o->seed, o->out, o->out);
    return 0;
}

static int collect(const review_opts *o) {
    tk_review_results r;
    tk_status st = tk_review_collect(o->collect, o->out, &r);
    if (st) return cli_fail(st, "cannot collect the judgements");
    printf("review %s: %zu of %zu items judged\n", r.review_id, r.n_judged, r.n_items);
    printf("A (%s) vs B (%s): A better %zu, B better %zu, ties %zu\n", r.name_a, r.name_b, r.wins_a, r.wins_b, r.ties);
    printf("win rate of A: %.3f (95%% Wilson interval %.3f to %.3f; a tie counts half)\n", r.win_rate, r.ci_low, r.ci_high);
    printf("wrote %s/results.json, %s/preferences.jsonl (%zu pairs), %s/sft.jsonl (%zu corrections)\n", o->out, o->out,
           r.wins_a + r.wins_b, o->out, r.n_corrections);
    return 0;
}

int cmd_review(int argc, char **argv) {
    review_opts o = {.max_tokens = 256};
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        const char *v = NULL;
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &o.model, &err)) {}
        else if (cli_opt(argc, argv, &i, "tokenizer", &o.tokenizer, &err)) {}
        else if (cli_opt(argc, argv, &i, "a", &o.a, &err)) {}
        else if (cli_opt(argc, argv, &i, "b", &o.b, &err)) {}
        else if (cli_opt(argc, argv, &i, "prompts", &o.prompts, &err)) {}
        else if (cli_opt(argc, argv, &i, "out", &o.out, &err)) {}
        else if (cli_opt(argc, argv, &i, "template", &o.tmpl, &err)) {}
        else if (cli_opt(argc, argv, &i, "system", &o.system, &err)) {}
        else if (cli_opt(argc, argv, &i, "title", &o.title, &err)) {}
        else if (cli_opt(argc, argv, &i, "page-from", &o.page_from, &err)) {}
        else if (cli_flag(argv, i, "exact")) o.exact = true;
        else if (cli_opt(argc, argv, &i, "collect", &o.collect, &err)) {}
        else if (cli_opt(argc, argv, &i, "max-tokens", &v, &err)) { if (v) o.max_tokens = (int32_t)cli_parse_long("max-tokens", v, 1, INT32_MAX, &err); }
        else if (cli_opt(argc, argv, &i, "ctx", &v, &err)) { if (v) o.n_ctx = (int32_t)cli_parse_long("ctx", v, 1, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "seed", &v, &err)) { if (v) { o.seed = cli_parse_u64("seed", v, &err); o.seed_given = true; } }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) { if (v) cli_parse_threads(v, &err); }
        else { fprintf(stderr, "takumi: unknown argument '%s' (see takumi review --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    if (!o.out) return cli_fail(TK_OK, "review needs --out DIR (see --help)");
    int modes = !!o.collect + !!o.page_from + !!(o.prompts || o.model || (!o.page_from && (o.a || o.b)));
    if (modes != 1 || (o.collect && (o.a || o.b)))
        return cli_fail(TK_OK, "review takes one of: --model/--a/--b/--prompts (generate), --page-from FILE, --collect JUDGEMENTS");
    if (o.collect) return collect(&o);
    if (!o.seed_given) o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    tk_review_set set = {0};
    tk_status st;
    int rc = 0;
    if (o.page_from) {
        if ((st = tk_review_read(o.page_from, true, &set))) return cli_fail(st, "--page-from");
    } else {
        if (!o.a || !o.b || !o.prompts) return cli_fail(TK_OK, "review needs --a A1, --b A2 (adapter paths or 'base') and --prompts FILE");
        if (!o.model && !(o.model = cli_default_model()))
            return cli_fail(TK_OK, "no --model given and the default model is missing (run scripts/fetch-model.sh)");
        if ((st = tk_review_read(o.prompts, false, &set))) return cli_fail(st, "--prompts");
        if (o.system && (st = tk_review_set_system(&set, o.system))) rc = cli_fail(st, "--system");
        if (!rc) rc = generate(&o, &set);
    }
    if (!rc) rc = write_page(&o, &set);
    tk_review_set_free(&set);
    return rc;
}
