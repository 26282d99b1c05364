/* `takumi generate` (one prompt -> streamed continuation) and `takumi chat` (multi-turn,
 * reading user messages line by line from stdin, terminal or not). stdout carries only
 * the generated text; --verbose statistics and prompts go to stderr. */
#include "cli.h"
#include <unistd.h>
#include <errno.h>
#include <time.h>

typedef struct gen_opts {
    const char *model, *tokenizer, *adapter, *prompt, *system, *tmpl;
    bool chat, verbose, exact, seed_given;
    int32_t n_ctx;
    tk_dtype qbase;
    tk_gen_params gp;
    const char *stops[16];
} gen_opts;

static void usage(FILE *f, bool chat) {
    if (chat)
        fprintf(f, "usage: takumi chat [--model M] [options]\n"
                   "  Interactive chat: each line read from stdin is a user message; the answer streams to stdout.\n"
                   "  Works with a pipe too (one message per line). An empty line is skipped; /reset clears the\n"
                   "  conversation; EOF or /exit ends it.\n");
    else
        fprintf(f, "usage: takumi generate [--model M] --prompt P [options]\n"
                   "  Streams the continuation of P (with --chat: the assistant's answer to P) to stdout.\n"
                   "  --prompt P          the prompt ('-' reads it from stdin)\n"
                   "  --chat              wrap the prompt in the model's chat template (as a user message)\n");
    fprintf(f,
        "  --model M           .gguf file, HF model folder, or llama2.c checkpoint (default: $TAKUMI_MODEL or\n"
        "                      models/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
        "  --tokenizer T       tokenizer file (tokenizer.json, .gguf, llama2.c tokenizer.bin) instead of the model's\n"
        "  --quantize-base T   q8_0 | q4_k | nf4: quantize a base stored in f32/f16/bf16 at load (as train's QLoRA)\n"
        "  --adapter A         LoRA adapter applied without merging: a PEFT folder (adapter_config.json +\n"
        "                      adapter_model.safetensors, e.g. RUN/adapter) or a llama.cpp GGUF adapter (RUN/adapter.gguf)\n"
        "  --system S          system message (chat template)\n"
        "  --template NAME     chat template family instead of the model's own (%s)\n"
        "  --temperature X     sampling temperature; 0 = greedy (default 0.8)\n"
        "  --top-k N           keep the N most likely tokens; 0 = off (default 40)\n"
        "  --top-p X           nucleus sampling; 1 = off (default 0.95)\n"
        "  --min-p X           drop tokens below X times the most likely one; 0 = off (default 0.05)\n"
        "  --repeat-penalty X  penalty on recently seen tokens; 1 = off (default 1.0)\n"
        "  --repeat-last-n N   window of the penalty (default 64; -1 = everything)\n"
        "  --max-tokens N      tokens to generate at most (default 256; 0 = until the context is full)\n"
        "  --seed N            RNG seed: the same seed gives the same text (default: from the clock)\n"
        "  --stop S            stop when the text contains S (not printed); repeatable, up to 16\n"
        "  --ctx N             context length (default: the model's)\n"
        "  --threads N         compute threads (default: all cores)\n"
        "  --exact             f32 activations in decode: the logits of the reference implementations (HF), slower;\n"
        "                      default (--fast): activations quantized to 8 bits per 32-block for quantized weights, as\n"
        "                      llama.cpp does (perplexity within 0.5%%; close greedy choices can flip)\n"
        "  --verbose           print prompt/decode speed and memory to stderr\n",
        tk_chat_family_names());
}

/* Parses the options shared by generate and chat; returns 0, 1 (error) or 2 (--help printed). */
static int parse(int argc, char **argv, bool chat, gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->gp = tk_gen_default_params();
    o->chat = chat;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        const char *v = NULL;
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout, chat); return 2; }
        else if (cli_opt(argc, argv, &i, "model", &o->model, &err)) {}
        else if (cli_opt(argc, argv, &i, "tokenizer", &o->tokenizer, &err)) {}
        else if (cli_opt(argc, argv, &i, "adapter", &o->adapter, &err)) {}
        else if (!chat && cli_opt(argc, argv, &i, "prompt", &o->prompt, &err)) {}
        else if (cli_opt(argc, argv, &i, "system", &o->system, &err)) {}
        else if (cli_opt(argc, argv, &i, "template", &o->tmpl, &err)) {}
        else if (cli_opt(argc, argv, &i, "temperature", &v, &err)) { if (v) o->gp.sampler.temperature = (float)cli_parse_double("temperature", v, 0, 1e6, &err); }
        else if (cli_opt(argc, argv, &i, "top-k", &v, &err)) { if (v) o->gp.sampler.top_k = (int32_t)cli_parse_long("top-k", v, 0, INT32_MAX, &err); }
        else if (cli_opt(argc, argv, &i, "top-p", &v, &err)) { if (v) o->gp.sampler.top_p = (float)cli_parse_double("top-p", v, 1e-9, 1, &err); }
        else if (cli_opt(argc, argv, &i, "min-p", &v, &err)) { if (v) o->gp.sampler.min_p = (float)cli_parse_double("min-p", v, 0, 1, &err); }
        else if (cli_opt(argc, argv, &i, "repeat-penalty", &v, &err)) { if (v) o->gp.sampler.repeat_penalty = (float)cli_parse_double("repeat-penalty", v, 1e-6, 1e6, &err); }
        else if (cli_opt(argc, argv, &i, "repeat-last-n", &v, &err)) { if (v) o->gp.sampler.repeat_last_n = (int32_t)cli_parse_long("repeat-last-n", v, 0, INT32_MAX, &err); }
        else if (cli_opt(argc, argv, &i, "max-tokens", &v, &err)) { if (v) o->gp.max_tokens = (int32_t)cli_parse_long("max-tokens", v, 0, INT32_MAX, &err); }
        else if (cli_opt(argc, argv, &i, "seed", &v, &err)) { if (v) { o->gp.sampler.seed = cli_parse_u64("seed", v, &err); o->seed_given = true; } }
        else if (cli_opt(argc, argv, &i, "ctx", &v, &err)) { if (v) o->n_ctx = (int32_t)cli_parse_long("ctx", v, 1, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "quantize-base", &v, &err)) { if (v) o->qbase = cli_parse_quantize_base(v, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) {
            if (v) cli_parse_threads(v, &err);
        }
        else if (cli_opt(argc, argv, &i, "stop", &v, &err)) {
            if (!v) continue;
            if (o->gp.n_stop >= 16 || !*v) { fprintf(stderr, "takumi: --stop: at most 16 non-empty strings\n"); err = 1; }
            else o->stops[o->gp.n_stop++] = v;
        }
        else if (!chat && cli_flag(argv, i, "chat")) o->chat = true;
        else if (cli_flag(argv, i, "fast")) o->exact = false;
        else if (cli_flag(argv, i, "exact")) o->exact = true;
        else if (cli_flag(argv, i, "verbose")) o->verbose = true;
        else { fprintf(stderr, "takumi: unknown option '%s' (see --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    o->gp.stop = o->stops;
    if (o->gp.sampler.temperature < 0 || o->gp.sampler.top_p <= 0 || o->gp.sampler.top_p > 1 || o->gp.sampler.min_p < 0 ||
        o->gp.sampler.min_p > 1 || o->gp.sampler.repeat_penalty <= 0 || o->gp.max_tokens < 0 || o->n_ctx < 0) {
        fprintf(stderr, "takumi: bad sampling options: need temperature >= 0, 0 < top-p <= 1, 0 <= min-p <= 1, "
                        "repeat-penalty > 0, max-tokens >= 0, ctx >= 0\n");
        return 1;
    }
    if (!o->seed_given) o->gp.sampler.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (!o->model && !(o->model = cli_default_model())) {
        fprintf(stderr, "takumi: no --model given and the default model is missing (run scripts/fetch-model.sh)\n");
        return 1;
    }
    return 0;
}

static bool write_out(void *ud, const char *t, size_t n) {
    (void)ud;
    fwrite(t, 1, n, stdout);
    fflush(stdout);
    return !ferror(stdout);
}

static void print_stats(const gen_opts *o, const tk_model *m, const tk_gen_stats *st) {
    if (!o->verbose) return;
    static const char *why[] = {"max tokens", "end of turn", "stop string", "context full", "output closed"};
    fprintf(stderr, "\n[prompt: %lld tokens (+%lld reused) in %.3f s = %.1f tok/s | decode: %lld tokens in %.3f s = %.1f tok/s | "
                    "stop: %s | seed %llu | threads %d | weights %.1f MB mapped + %.1f MB owned]\n",
            (long long)st->n_prompt, (long long)st->n_reused, st->prefill_s,
            st->prefill_s > 0 ? st->n_prompt / st->prefill_s : 0.0, (long long)st->n_generated, st->decode_s,
            st->decode_s > 0 ? st->n_generated / st->decode_s : 0.0, why[st->stop],
            (unsigned long long)o->gp.sampler.seed, tk_get_threads(), tk_model_weight_bytes(m) / 1e6,
            tk_model_owned_bytes(m) / 1e6);
}

static int load(const gen_opts *o, tk_model **m, tk_session **s, tk_chat_family *fam, tk_adapter_handle **ad) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = o->tokenizer;
    mp.n_ctx = o->n_ctx;
    mp.quantize_base = o->qbase;
    tk_status st = tk_model_load(o->model, &mp, m);
    if (st) return cli_fail(st, "cannot load %s", o->model);
    if (o->adapter && (st = tk_adapter_apply(*m, o->adapter, ad))) return cli_fail(st, "cannot apply the adapter %s", o->adapter);
    if (o->chat && (st = tk_chat_resolve(tk_model_tokenizer(*m), o->tmpl, fam)))
        return cli_fail(st, "chat template");
    if ((st = tk_session_new(*m, 0, s))) return cli_fail(st, "session");
    tk_session_set_exact(*s, o->exact);
    if (*ad) {
        tk_adapter_use u = {.peft = tk_adapter_handle_peft(*ad), .scale = 1.0f};
        if ((st = tk_session_set_adapters(*s, &u, 1))) return cli_fail(st, "cannot apply the adapter %s", o->adapter);
    }
    if (o->verbose) {
        const tk_model_config *c = tk_model_get_config(*m);
        fprintf(stderr, "[%s: %s, %d layers, dim %d, vocab %d, context %d%s%s]\n", o->model, c->arch, c->n_layers, c->dim,
                c->n_vocab, c->max_seq, o->chat ? ", chat template " : "", o->chat ? tk_chat_family_name(*fam) : "");
        if (*ad) {
            if (tk_adapter_handle_rank(*ad) > 0)
                fprintf(stderr, "[adapter %s: LoRA r %d, scale %g]\n", o->adapter, tk_adapter_handle_rank(*ad), (double)tk_adapter_handle_scale(*ad));
            else fprintf(stderr, "[adapter %s: %s]\n", o->adapter, tk_adapter_handle_peft(*ad)->method->name);
        }
    }
    return 0;
}

/* The whole of f (NUL bytes kept; *len its length), or NULL after printing why (a read error,
 * e.g. a closed stdin). */
static char *read_all(FILE *f, size_t *len) {
    tk_buf b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) tk_buf_append(&b, tmp, n);
    if (ferror(f)) {
        fprintf(stderr, "takumi: cannot read the prompt from standard input: %s\n", strerror(errno));
        tk_buf_free(&b);
        return NULL;
    }
    if (!b.data) tk_buf_append(&b, "", 0);
    *len = b.len;
    return b.data;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    int rc = parse(argc, argv, false, &o);
    if (rc) return rc == 2 ? 0 : 1;
    if (!o.prompt) { fprintf(stderr, "takumi: generate needs --prompt P (see --help)\n"); return 1; }
    char *stdin_prompt = NULL;
    size_t prompt_len = strlen(o.prompt);
    if (!strcmp(o.prompt, "-") && !(o.prompt = stdin_prompt = read_all(stdin, &prompt_len))) return 1;
    if (o.chat && memchr(o.prompt, 0, prompt_len)) { /* a chat message is text: NUL has no place in it */
        fprintf(stderr, "takumi: the prompt holds a NUL byte (offset %zu): refused with --chat\n", (size_t)((char *)memchr(o.prompt, 0, prompt_len) - o.prompt));
        free(stdin_prompt);
        return 1;
    }
    tk_model *m = NULL;
    tk_session *s = NULL;
    tk_chat_family fam = TK_CHAT_UNKNOWN;
    tk_ivec ids = {0};
    tk_chat_tokens ct = {0};
    tk_gen_stats stats;
    tk_adapter_handle *ad = NULL;
    rc = load(&o, &m, &s, &fam, &ad);
    if (rc) goto out;
    const tk_tokenizer *tok = tk_model_tokenizer(m);
    tk_status st;
    if (o.chat) {
        tk_chat_msg msgs[2];
        size_t n = 0;
        if (o.system) msgs[n++] = (tk_chat_msg){TK_ROLE_SYSTEM, o.system};
        msgs[n++] = (tk_chat_msg){TK_ROLE_USER, o.prompt};
        if ((st = tk_chat_render(tok, fam, msgs, n, true, &ct))) { rc = cli_fail(st, "chat template %s", tk_chat_family_name(fam)); goto out; }
        st = tk_ivec_reserve(&ids, ct.ids.len);
        for (size_t i = 0; !st && i < ct.ids.len; i++) st = tk_ivec_push(&ids, ct.ids.data[i]);
    } else {
        if (o.system) fprintf(stderr, "takumi: note: --system is only used with --chat\n");
        st = tk_tokenize(tok, o.prompt, prompt_len, TK_TOK_ADD_SPECIAL, &ids); /* NUL bytes kept, as tokenize and perplexity do */
    }
    if (st) { rc = cli_fail(st, "tokenizing the prompt"); goto out; }
    if (ids.len == 0) { rc = cli_fail(TK_OK, "the prompt is empty (and the model adds no BOS)"); goto out; }
    if ((st = tk_generate(s, tok, ids.data, (int64_t)ids.len, &o.gp, write_out, NULL, NULL, &stats))) {
        rc = cli_fail(st, "generation");
        goto out;
    }
    if (isatty(STDOUT_FILENO)) putchar('\n');
    fflush(stdout);
    print_stats(&o, m, &stats);
out:
    tk_chat_tokens_free(&ct);
    tk_ivec_free(&ids);
    tk_session_free(s);
    tk_adapter_detach(m, ad);
    tk_model_free(m);
    free(stdin_prompt);
    return rc;
}

/* The reply is collected as it streams so it can join the conversation. */
typedef struct { tk_buf reply; } chat_sink;
static bool chat_out(void *ud, const char *t, size_t n) {
    chat_sink *c = ud;
    tk_buf_append(&c->reply, t, n);
    return write_out(NULL, t, n);
}

int cmd_chat(int argc, char **argv) {
    gen_opts o;
    int rc = parse(argc, argv, true, &o);
    if (rc) return rc == 2 ? 0 : 1;
    tk_model *m = NULL;
    tk_session *s = NULL;
    tk_chat_family fam = TK_CHAT_UNKNOWN;
    tk_adapter_handle *ad = NULL;
    rc = load(&o, &m, &s, &fam, &ad);
    if (rc) { tk_session_free(s); tk_adapter_detach(m, ad); tk_model_free(m); return rc; }
    const tk_tokenizer *tok = tk_model_tokenizer(m);
    bool tty = isatty(STDIN_FILENO);
    /* the conversation: message texts are owned here */
    tk_chat_msg *msgs = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    if (o.system) {
        msgs = realloc(msgs, sizeof *msgs * (cap = 8));
        msgs[n++] = (tk_chat_msg){TK_ROLE_SYSTEM, strdup(o.system)};
    }
    size_t n_fixed = n;
    if (tty) fprintf(stderr, "takumi chat (%s) — /reset clears, /exit or Ctrl-D ends\n> ", tk_chat_family_name(fam));
    while ((len = getline(&line, &lcap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) { if (tty) fprintf(stderr, "> "); continue; }
        if (memchr(line, 0, (size_t)len)) {
            fprintf(stderr, "takumi: this message holds a NUL byte: not sent\n");
            if (tty) fprintf(stderr, "> ");
            continue;
        }
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            for (size_t i = n_fixed; i < n; i++) free((char *)msgs[i].content);
            n = n_fixed;
            tk_session_truncate(s, 0);
            if (tty) fprintf(stderr, "(conversation cleared)\n> ");
            continue;
        }
        if (n + 2 > cap) msgs = realloc(msgs, sizeof *msgs * (cap = cap ? cap * 2 : 8));
        msgs[n++] = (tk_chat_msg){TK_ROLE_USER, strdup(line)};
        tk_chat_tokens ct = {0};
        tk_status st;
        /* keep room for the answer: forget the oldest exchanges while the prompt is too long */
        int64_t room = o.gp.max_tokens > 0 ? o.gp.max_tokens : 256;
        for (;;) {
            tk_chat_tokens_free(&ct);
            if ((st = tk_chat_render(tok, fam, msgs, n, true, &ct))) break;
            if ((int64_t)ct.ids.len + room <= tk_session_n_ctx(s) || n - n_fixed < 3) break;
            free((char *)msgs[n_fixed].content);
            free((char *)msgs[n_fixed + 1].content);
            memmove(msgs + n_fixed, msgs + n_fixed + 2, sizeof *msgs * (n - n_fixed - 2));
            n -= 2;
            if (o.verbose) fprintf(stderr, "[context: forgot the oldest exchange]\n");
        }
        if (st) { rc = cli_fail(st, "chat template %s", tk_chat_family_name(fam)); tk_chat_tokens_free(&ct); break; }
        if ((int64_t)ct.ids.len >= tk_session_n_ctx(s)) { /* even alone it does not fit: say so, keep the conversation */
            fprintf(stderr, "takumi: this message needs %zu tokens with the conversation, the context holds %lld: not sent "
                            "(shorten it, /reset, or use a larger --ctx)\n", ct.ids.len, (long long)tk_session_n_ctx(s));
            tk_chat_tokens_free(&ct);
            free((char *)msgs[--n].content);
            if (tty) fprintf(stderr, "> ");
            continue;
        }
        chat_sink sink = {{0}};
        tk_gen_stats stats;
        st = tk_generate(s, tok, ct.ids.data, (int64_t)ct.ids.len, &o.gp, chat_out, &sink, NULL, &stats);
        tk_chat_tokens_free(&ct);
        if (st) { rc = cli_fail(st, "generation"); tk_buf_free(&sink.reply); break; }
        putchar('\n');
        fflush(stdout);
        print_stats(&o, m, &stats);
        msgs[n++] = (tk_chat_msg){TK_ROLE_ASSISTANT, sink.reply.data ? sink.reply.data : strdup("")};
        if (tty) fprintf(stderr, "> ");
    }
    if (!rc && ferror(stdin)) rc = cli_fail(TK_OK, "cannot read standard input: %s", strerror(errno)); /* closed, not ended */
    for (size_t i = 0; i < n; i++) free((char *)msgs[i].content);
    free(msgs);
    free(line);
    tk_session_free(s);
    tk_adapter_detach(m, ad);
    tk_model_free(m);
    return rc;
}
