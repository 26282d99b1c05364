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
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <sys/stat.h>

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
               "checkpoints/, samples.json, report.html (and the adapter). Options (default in brackets):\n"
               "  %-26s read --data/--val in any JSON/CSV/TSV layout ('takumi data --help' lists the keys); the records\n"
               "  %-26s are converted to RUN/mapped-train.jsonl (and mapped-val.jsonl), which the run then trains on;\n"
               "  %-26s a .csv file is converted the same way (its header names the fields)\n"
               "  %-26s the same map as a JSON object or LLaMA-Factory dataset_info entry\n", "--map SPEC", "", "", "--map-file FILE");
    tk_train_option_info o;
    for (int i = 0; tk_train_option_get_info(i, &o); i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o.name, o.arg[0] ? " " : "", o.arg);
        fprintf(f, "  %-26s %s [%s]\n", left, o.help, o.dflt);
    }
    fprintf(f, "\nData parallel over N processes: mpirun -np N takumi train ... (the same options and RUN; rank 0 writes RUN;\n"
               "SFT and preference objectives; --threads per process). MPI: %s\n",
            tk_dist_built_with_mpi() ? "built with OpenMPI" : "not in this build (install libopenmpi-dev, rebuild)");
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
    case TK_EV_EVAL: {
        end_line(p);
        /* what the objective validates: loss, perplexity and token accuracy (SFT), a pair loss and its metrics
         * (preference objectives), a graded reward with no loss (grpo) */
        char line[1024];
        size_t o = (size_t)snprintf(line, sizeof line, "step %lld: valid", (long long)e->step);
        const char *sep = " ";
        if (isfinite(e->valid_loss)) { o += (size_t)snprintf(line + o, sizeof line - o, "%sloss %.4f", sep, e->valid_loss); sep = " · "; }
        if (isfinite(e->valid_ppl)) { o += (size_t)snprintf(line + o, sizeof line - o, "%sppl %.2f", sep, e->valid_ppl); sep = " · "; }
        if (isfinite(e->valid_acc)) { o += (size_t)snprintf(line + o, sizeof line - o, "%stoken accuracy %.1f%%", sep, 100 * e->valid_acc); sep = " · "; }
        for (int i = 0; i < e->n_metrics && i < 4 && o < sizeof line - 64; i++) {
            o += (size_t)snprintf(line + o, sizeof line - o, "%s%s %.4f", sep, e->metric_names[i], e->metrics[i]);
            sep = " · ";
        }
        if (o < sizeof line - 32) snprintf(line + o, sizeof line - o, " (%lld tokens)", (long long)e->valid_tokens);
        fprintf(stderr, "%s\n", line);
        break;
    }
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

static void on_data_finding(const tk_data_finding *f, void *u) {
    tk_buf b = {0};
    tk_buf_printf(&b, "%s: ", (const char *)u);
    tk_data_finding_format(f, &b);
    if (b.data) fprintf(stderr, "%s\n", b.data);
    tk_buf_free(&b);
}

/* --map / --map-file, or a CSV file: the library trains on chat JSONL, so the records are read through the map (or the
 * CSV header) into RUN/mapped-<which>.jsonl, which then is the run's data (config.json records it; --resume reuses it).
 * Every record must convert: the ones that cannot are listed with their lines and the run does not start. */
static int map_input(tk_train_options *opts, const char *opt, const char *which, const char *outdir, const tk_data_map *map, bool resume) {
    char path[4096];
    if (tk_train_options_get(opts, opt, path, sizeof path) || !path[0]) return 0;
    size_t pl = strlen(path);
    if (!map && !(pl > 4 && !strcmp(path + pl - 4, ".csv"))) return 0;
    char conf[4200], out[4200];
    snprintf(conf, sizeof conf, "%s/config.json", outdir);
    if (!resume && access(conf, F_OK) == 0) return 0;   /* the trainer refuses this folder; leave its files alone */
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) { fprintf(stderr, "takumi train: cannot create %s: %s\n", outdir, strerror(errno)); return 1; }
    snprintf(out, sizeof out, "%s/mapped-%s.jsonl", outdir, which);
    tk_data_convert_result res;
    tk_status st = tk_data_convert_mapped(path, TK_DATA_AUTO, map, TK_DATA_TO_CHAT, out, NULL, on_data_finding, path, &res);
    if (st) return cli_fail(st, "train: --%s %s", opt, path);
    if (res.n_failed) {
        fprintf(stderr, "takumi train: %llu of %llu records of %s cannot be read%s (lines above); nothing is dropped silently: fix them first\n",
                (unsigned long long)res.n_failed, (unsigned long long)res.n_records, path, map ? " through the map" : "");
        remove(out);
        rmdir(outdir);   /* only when it is empty, i.e. this command made it */
        return 1;
    }
    fprintf(stderr, "takumi train: %s: %llu records read%s -> %s\n", path, (unsigned long long)res.n_written, map ? " through the map" : "", out);
    if ((st = tk_train_options_set(opts, opt, out))) return cli_fail(st, "train");
    return 0;
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
    const char *out = NULL, *map_s = NULL, *map_f = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); free(set); return 0; }
        int merr = 0;
        if (cli_opt(argc, argv, &i, "map", &map_s, &merr) || cli_opt(argc, argv, &i, "map-file", &map_f, &merr)) {
            if (merr) { free(set); return 1; }
            continue;
        }
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
    tk_data_map *map = NULL;
    int rc = cli_data_map(map_s, map_f, &map);
    if (rc) { free(set); return rc; }
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
    if (resume && outdir[0] && !data[0]) {   /* nothing was loaded from RUN/config.json */
        fprintf(stderr, "takumi train: no run to resume in %s (no config.json there); start one with --data FILE --out %s\n", outdir, outdir);
        rc = 1;
        goto done;
    }
    if (!data[0] || !outdir[0]) {
        fprintf(stderr, "takumi train: --data FILE and --out RUN are required ('takumi train --help')\n");
        rc = 1;
        goto done;
    }
    if ((rc = map_input(opts, "data", "train", outdir, map, resume)) || (rc = map_input(opts, "val", "val", outdir, map, resume))) goto done;
    if (tk_data_map_trains_all(map) && (st = tk_train_options_set(opts, "train-on-prompt", NULL))) { rc = cli_fail(st, "train"); goto done; }
    progress p = {.tty = isatty(2) != 0};
    /* under mpirun -np N: join the ranks (rank 0 prints the progress and owns RUN; a failing rank exits
     * without tk_dist_finalize, and the launcher then stops the others) */
    if ((st = tk_dist_init(&argc, &argv))) { rc = cli_fail(st, "train"); goto done; }
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
    if (st) {
        if (tk_dist_size() > 1) fprintf(stderr, "takumi train: rank %d of %d: ", tk_dist_rank(), tk_dist_size());
        rc = cli_fail(st, "train");
        goto done;
    }
    if (tk_dist_rank() != 0) goto done;   /* the run's files are rank 0's to name */
    if (g_stop) { fprintf(stderr, "takumi train: interrupted; continue with: takumi train --out %s --resume\n", outdir); rc = 130; goto done; }
    {   /* the run's files that exist (self-training: rounds.jsonl and rounds/ instead of one report) */
        static const char *const files[] = {"report.html", "metrics.jsonl", "rounds.jsonl"};
        char path[4200];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", outdir, files[i]);
            if (access(path, F_OK) == 0) printf("%s\n", path);
        }
    }
    if (!strcmp(method, "full")) {   /* the fine-tuned model */
        char path[4200];
        snprintf(path, sizeof path, "%s/model", outdir);
        if (access(path, F_OK) == 0) printf("%s\n", path);
        snprintf(path, sizeof path, "%s/model.gguf", outdir);   /* from a GGUF base */
        if (access(path, F_OK) == 0) printf("%s\n", path);
    } else {
        char path[4200];
        snprintf(path, sizeof path, "%s/adapter", outdir);
        if (access(path, F_OK) == 0) printf("%s\n", path);
        snprintf(path, sizeof path, "%s/adapter.gguf", outdir);
        if (access(path, F_OK) == 0) printf("%s\n", path);
    }
done:
    if (rc == 0 || rc == 130) tk_dist_finalize();
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    g_job = NULL;
    tk_job_free(job);
    tk_train_options_free(opts);
    tk_data_map_free(map);
    free(set);
    return rc;
}
