/* `takumi train`: supervised fine-tuning (LoRA or full) of a model on a dataset file,
 * into a run folder, as a training job of the public API (takumi/train.h). Options map one
 * to one onto the job's, so `--help` prints the library's own option table with every default. With --resume, the
 * options saved in RUN/config.json are the starting point and the command line overrides
 * them (so `takumi train --out RUN --resume` alone continues a run).
 * stderr: the live progress line (rewritten with \r on a terminal, plain lines otherwise),
 * evaluations, warnings; stdout: the paths of the results. Ctrl-C (SIGINT), SIGTERM and
 * SIGHUP (a closed terminal) pause the job (it saves a checkpoint and stops; exit status 130);
 * a second signal exits at once. */
#include "cli.h"
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop = 0;
static tk_job *volatile g_job = NULL;

static void on_signal(int sig) {
    if (g_stop) { signal(sig, SIG_DFL); raise(sig); return; }
    g_stop = 1;
    if (g_job) tk_job_pause(g_job);   /* async-signal-safe */
}

static void usage(FILE *f) {
    fprintf(f, "usage: takumi train --model M --data FILE --out RUN [options]\n"
               "       takumi train --out RUN --resume [options]\n\n"
               "Fine-tunes M on FILE (loss on the assistant turns) and writes RUN/: config.json, metrics.jsonl,\n"
               "checkpoints/, samples.json, report.html (and the adapter). Options (default in brackets):\n");
    tk_train_option_info o;
    for (int i = 0; tk_train_option_get_info(i, &o); i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o.name, o.arg[0] ? " " : "", o.arg);
        fprintf(f, "  %-26s %s [%s]\n", left, o.help, o.dflt);
    }
}

typedef struct progress {
    bool tty;
    bool line_open;       /* a \r line is on screen */
    double last_print;
    int64_t every;        /* plain mode: print every N steps */
} progress;

static void end_line(progress *p) {
    if (p->line_open) { fputc('\n', stderr); p->line_open = false; }
}

static void on_event(const tk_train_event *e, void *ud) {
    progress *p = ud;
    char line[512];
    switch (e->kind) {
    case TK_EV_STEP: {
        tk_progress_format(e, line, sizeof line);
        if (p->tty) {
            double now = cli_now();
            if (now - p->last_print < 0.1 && e->step != e->total_steps && e->step != 1) return;
            p->last_print = now;
            fprintf(stderr, "\r%s\x1b[K", line);
            p->line_open = true;
        } else {
            if (p->every == 0) p->every = e->total_steps >= 40 ? e->total_steps / 20 : 1;
            if (e->step == 1 || e->step % p->every == 0 || e->step == e->total_steps) fprintf(stderr, "%s\n", line);
        }
        break;
    }
    case TK_EV_EVAL:
        end_line(p);
        fprintf(stderr, "step %lld: valid loss %.4f · ppl %.2f · token accuracy %.1f%% (%lld tokens)\n", (long long)e->step,
                e->valid_loss, e->valid_ppl, 100 * e->valid_acc, (long long)e->valid_tokens);
        break;
    case TK_EV_WARNING:
        end_line(p);
        fprintf(stderr, "warning: %s\n", e->message);
        break;
    case TK_EV_CHECKPOINT:
        if (!p->tty) fprintf(stderr, "step %lld: checkpoint %s\n", (long long)e->step, e->message);
        break;
    default:
        end_line(p);
        fprintf(stderr, "%s\n", e->message);
    }
    fflush(stderr);
}

/* The option called name (nl bytes), or false. */
static bool find_option(const char *name, size_t nl, tk_train_option_info *out) {
    for (int k = 0; tk_train_option_get_info(k, out); k++)
        if (strlen(out->name) == nl && !strncmp(out->name, name, nl)) return true;
    return false;
}

/* --name value / --name=value / flags, in command-line order. */
typedef struct kv { const char *name; char *value; } kv;

int cmd_train(int argc, char **argv) {
    kv *set = calloc((size_t)argc + 1, sizeof *set);
    int n_set = 0;
    bool resume = false;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); free(set); return 0; }
        if (strncmp(a, "--", 2)) { fprintf(stderr, "takumi train: unexpected argument '%s' (options start with --)\n", a); free(set); return 1; }
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        tk_train_option_info o;
        if (!find_option(a + 2, nl, &o)) {
            fprintf(stderr, "takumi train: unknown option '%.*s' ('takumi train --help' lists the options)\n", (int)nl + 2, a);
            free(set);
            return 1;
        }
        const char *v = NULL;
        if (eq) v = eq + 1;
        else if (o.arg[0]) {
            if (i + 1 >= argc) { fprintf(stderr, "takumi train: option --%s needs a value (%s)\n", o.name, o.arg); free(set); return 1; }
            v = argv[++i];
        }
        set[n_set].name = o.name;
        set[n_set].value = (char *)v;
        n_set++;
        if (!strcmp(o.name, "resume")) resume = !v || strcmp(v, "false");
        if (!strcmp(o.name, "out")) out = v;
    }
    tk_train_options *opts = NULL;
    tk_job *job = NULL;
    int rc = 0;
    tk_status st = tk_train_options_new(&opts);
    if (st) { rc = cli_fail(st, "train"); goto done; }
    if (resume && out) {
        /* the saved options first, the command line on top */
        st = tk_train_options_load_run(opts, out);
        if (st == TK_ERR_NOT_FOUND) st = TK_OK;   /* nothing saved yet: the command line alone */
        if (st) { rc = cli_fail(st, "cannot resume"); goto done; }
    }
    for (int i = 0; i < n_set; i++) {
        st = tk_train_options_set(opts, set[i].name, set[i].value);
        if (st) { rc = cli_fail(st, "train"); goto done; }
    }
    char model[8], data[8], outdir[4096], method[16];
    if (tk_train_options_get(opts, "model", model, sizeof model) || tk_train_options_get(opts, "data", data, sizeof data) ||
        tk_train_options_get(opts, "out", outdir, sizeof outdir) || tk_train_options_get(opts, "method", method, sizeof method)) {
        rc = cli_fail(TK_ERR_INTERNAL, "train");
        goto done;
    }
    if (!model[0]) {
        const char *dm = cli_default_model();
        if (!dm) { fprintf(stderr, "takumi train: no --model given and no default model found (scripts/fetch-model.sh)\n"); rc = 1; goto done; }
        if ((st = tk_train_options_set(opts, "model", dm))) { rc = cli_fail(st, "train"); goto done; }
    }
    if (!data[0] || !outdir[0]) {
        fprintf(stderr, "takumi train: --data FILE and --out RUN are required ('takumi train --help')\n");
        rc = 1;
        goto done;
    }
    progress p = {.tty = isatty(2) != 0};
    if ((st = tk_job_new(opts, on_event, &p, &job))) { rc = cli_fail(st, "train"); goto done; }
    g_job = job;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* a closed terminal or ssh session: checkpoint like Ctrl-C */
    st = tk_job_run(job);
    end_line(&p);
    if (st) { rc = cli_fail(st, "train"); goto done; }
    if (g_stop) { fprintf(stderr, "takumi train: interrupted; continue with: takumi train --out %s --resume\n", outdir); rc = 130; goto done; }
    printf("%s/report.html\n%s/metrics.jsonl\n", outdir, outdir);
    if (strcmp(method, "full")) {
        char path[4200];
        snprintf(path, sizeof path, "%s/adapter", outdir);
        if (access(path, F_OK) == 0) printf("%s\n", path);
        snprintf(path, sizeof path, "%s/adapter.gguf", outdir);
        if (access(path, F_OK) == 0) printf("%s\n", path);
    }
done:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    g_job = NULL;
    tk_job_free(job);
    tk_train_options_free(opts);
    free(set);
    return rc;
}
