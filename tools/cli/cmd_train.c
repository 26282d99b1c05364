/* `takumi train`: supervised fine-tuning (LoRA or full) of a model on a dataset file,
 * into a run folder. Options map one to one onto the trainer's (src/train/trainer.h), so
 * `--help` prints the trainer's own option table with every default. With --resume, the
 * options saved in RUN/config.json are the starting point and the command line overrides
 * them (so `takumi train --out RUN --resume` alone continues a run).
 * stderr: the live progress line (rewritten with \r on a terminal, plain lines otherwise),
 * evaluations, warnings; stdout: the paths of the results. Ctrl-C saves a checkpoint and
 * exits (a second Ctrl-C exits at once). */
#include "cli.h"
#include "train/trainer.h"
#include <signal.h>
#include <unistd.h>
#include <math.h>
#include <time.h>

static volatile sig_atomic_t g_stop = 0;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_signal(int sig) {
    if (g_stop) { signal(sig, SIG_DFL); raise(sig); return; }
    g_stop = 1;
}

static void usage(FILE *f) {
    int n;
    const tk_trainer_option *o = tk_trainer_options(&n);
    fprintf(f, "usage: takumi train --model M --data FILE --out RUN [options]\n"
               "       takumi train --out RUN --resume [options]\n\n"
               "Fine-tunes M on FILE (loss on the assistant turns) and writes RUN/: config.json, metrics.jsonl,\n"
               "checkpoints/, samples.json, report.html (and the adapter). Options (default in brackets):\n");
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o[i].name, o[i].arg[0] ? " " : "", o[i].arg);
        fprintf(f, "  %-26s %s [%s]\n", left, o[i].help, o[i].dflt);
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
            double now = now_s();
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

/* --name value / --name=value / flags, in command-line order. */
typedef struct kv { const char *name; char *value; } kv;

int cmd_train(int argc, char **argv) {
    int n_opts;
    const tk_trainer_option *opts = tk_trainer_options(&n_opts);
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
        const tk_trainer_option *o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == nl && !strncmp(opts[k].name, a + 2, nl)) o = &opts[k];
        if (!o) {
            fprintf(stderr, "takumi train: unknown option '%.*s' ('takumi train --help' lists the options)\n", (int)nl + 2, a);
            free(set);
            return 1;
        }
        const char *v = NULL;
        if (eq) v = eq + 1;
        else if (o->arg[0]) {
            if (i + 1 >= argc) { fprintf(stderr, "takumi train: option --%s needs a value (%s)\n", o->name, o->arg); free(set); return 1; }
            v = argv[++i];
        }
        set[n_set].name = o->name;
        set[n_set].value = (char *)v;
        n_set++;
        if (!strcmp(o->name, "resume")) resume = !v || strcmp(v, "false");
        if (!strcmp(o->name, "out")) out = v;
    }
    tk_trainer_config c = tk_trainer_config_default();
    int rc = 0;
    if (resume && out) {
        /* the saved options first, the command line on top */
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", out);
        FILE *f = fopen(path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long len = ftell(f);
            fseek(f, 0, SEEK_SET);
            char *js = len > 0 ? malloc((size_t)len + 1) : NULL;
            size_t got = js ? fread(js, 1, (size_t)len, f) : 0;
            fclose(f);
            if (js) {
                js[got] = 0;
                tk_status st = tk_trainer_config_apply_json(&c, js, path);
                free(js);
                if (st) { rc = cli_fail(st, "cannot resume"); goto done; }
            }
        }
    }
    for (int i = 0; i < n_set; i++) {
        tk_status st = tk_trainer_config_set(&c, set[i].name, set[i].value);
        if (st) { rc = cli_fail(st, "train"); goto done; }
    }
    if (!c.model) {
        const char *dm = cli_default_model();
        if (!dm) { fprintf(stderr, "takumi train: no --model given and no default model found (scripts/fetch-model.sh)\n"); rc = 1; goto done; }
        if (tk_trainer_config_set(&c, "model", dm)) { rc = cli_fail(TK_ERR_NOMEM, "train"); goto done; }
    }
    if (!c.data || !c.out) {
        fprintf(stderr, "takumi train: --data FILE and --out RUN are required ('takumi train --help')\n");
        rc = 1;
        goto done;
    }
    progress p = {.tty = isatty(2) != 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    tk_status st = tk_trainer_run(&c, on_event, &p, &g_stop);
    end_line(&p);
    if (st) { rc = cli_fail(st, "train"); goto done; }
    if (g_stop) { fprintf(stderr, "takumi train: interrupted; continue with: takumi train --out %s --resume\n", c.out); rc = 130; goto done; }
    printf("%s/report.html\n%s/metrics.jsonl\n", c.out, c.out);
    if (c.method == TK_TRAIN_LORA) {
        char p[4096];
        snprintf(p, sizeof p, "%s/adapter", c.out);
        if (access(p, F_OK) == 0) printf("%s\n", p);
        snprintf(p, sizeof p, "%s/adapter.gguf", c.out);
        if (access(p, F_OK) == 0) printf("%s\n", p);
    }
done:
    tk_trainer_config_free(&c);
    free(set);
    return rc;
}
