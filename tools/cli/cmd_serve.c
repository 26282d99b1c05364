/* `takumi serve`: the OpenAI-compatible server (takumi/serve.h) in the foreground; one log line per
 * request on stderr; SIGTERM or SIGINT finishes the requests in flight, pauses the running training
 * job at a checkpoint (resumed at the next start) and exits 0.
 * `takumi serve --create-key [--admin]` prints a new API key on stdout. */
#include "cli.h"
#include <signal.h>
#include <pthread.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: takumi serve [--model M ...] [options]\n"
        "       takumi serve --create-key [--admin] [--rpm N] [--token-budget N] [--data-dir DIR]\n"
        "  Serves the OpenAI API on http://HOST:PORT: GET /health, /metrics, /v1/models, /v1/models/{id},\n"
        "  /lora-adapters; POST /v1/chat/completions and /v1/completions (\"stream\": true for SSE); the Files API\n"
        "  (/v1/files: uploads checked with the data checker) and fine-tuning jobs (/v1/fine_tuning/jobs: supervised,\n"
        "  dpo, reinforcement with a grader; one job at a time while serving; the result is served at once as\n"
        "  ft:<base>:<owner>:<suffix>:<id>, each kept checkpoint as ft:...:<id>:ckpt-step-N); deployments\n"
        "  (/v1/deployments, admin: an alias with a canary, promote, rollback; see takumi deploy); POST /v1/feedback on a\n"
        "  logged answer and GET /v1/feedback/export?format=sft|preference (admin) for the next job.\n"
        "  --model M            a model to serve (repeatable): .gguf, HF folder or llama2.c checkpoint; its model id is\n"
        "                       the file name without .gguf, or name it with ID=PATH (default: the default model)\n"
        "  --adapter NAME=DIR   an adapter (PEFT folder or GGUF adapter) on the first model, served as model id NAME\n"
        "                       (repeatable); requests choose it by \"model\", or by llama-server's \"lora\" list\n"
        "  --tokenizer T        tokenizer file for the models (llama2.c checkpoints)\n"
        "  --ctx N              context length (default: each model's)\n"
        "  --host H             address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)\n"
        "  --port N             port (default 8080; 0 = a free one, printed at start)\n"
        "  --data-dir DIR       where takumi.db (keys, files, jobs), files/ and jobs/ (run folders) live (default\n"
        "                       takumi-data); a job left running (kill, SIGTERM) resumes from its checkpoint at the next start\n"
        "  --api-key-file F     also accept these keys (one per line); with any key stored or given, every request\n"
        "                       but /health needs 'Authorization: Bearer KEY'\n"
        "  --max-concurrent N   generations at once (default 16): the width of each model's batch, whose rows\n"
        "                       (any adapter each) decode together in one forward per step; up to --max-queue\n"
        "                       more wait (default 64), beyond that requests get 503\n"
        "  --max-connections N  open connections at most (default 256)\n"
        "  --max-body BYTES     largest request body (default 1048576); larger: 413\n"
        "  --max-upload BYTES   largest POST /v1/files body (default 67108864); larger: 413\n"
        "  --timeout S          close a connection idle or trickling for S seconds (default 30)\n"
        "  --threads N          compute threads of each model's batch (default: all cores)\n"
        "  --exact              decode with f32 activations (default: 8-bit activations for quantized weights, as\n"
        "                       llama.cpp does; perplexity within 0.5%%; --fast, the default, is accepted)\n"
        "  --log-contents on|off  the request log (DIR/takumi.db) keeps each request's messages and answer (default on;\n"
        "                       off: ids, keys, versions, latency and tokens only; feedback export then has nothing to export)\n"
        "  --log-days N         delete request log rows older than N days (default 30; 0 = keep)\n"
        "  --job-nice N         nice value of the fine-tuning job's threads, 0..19 (default 10): requests are served\n"
        "                       first, the job trains on the CPU they leave; 0 = the same priority as serving\n"
        "  --create-key         create an API key (stored salted and hashed in DIR/takumi.db), print it, exit\n"
        "  --admin              with --create-key: an admin key\n"
        "  --rpm N              with --create-key: at most N chat/completion requests per minute (default 0: no limit)\n"
        "  --token-budget N     with --create-key: at most N prompt + completion tokens in all (default 0: no limit);\n"
        "                       beyond either: 429 (rate_limit_exceeded, insufficient_quota). Admin keys change them with\n"
        "                       POST /v1/keys/{id}/limits; GET /v1/keys and GET /v1/usage show keys and usage per model\n");
}

static void log_stderr(void *ud, const char *line) {
    (void)ud;
    time_t now = time(NULL);
    struct tm tm;
    char ts[32];
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s\n", ts, line);
}

int cmd_serve(int argc, char **argv) {
    tk_serve_params p = tk_serve_default_params();
    bool create_key = false, admin = false;
    long rpm = 0, budget = 0;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        const char *v = NULL;
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &v, &err)) {
            if (!v) continue;
            if (p.n_models >= TK_SERVE_MAX_MODELS) { fprintf(stderr, "takumi: at most %d --model\n", TK_SERVE_MAX_MODELS); err = 1; }
            else p.models[p.n_models++] = v;
        }
        else if (cli_opt(argc, argv, &i, "adapter", &v, &err)) {
            if (!v) continue;
            if (p.n_adapters >= TK_SERVE_MAX_ADAPTERS) { fprintf(stderr, "takumi: at most %d --adapter\n", TK_SERVE_MAX_ADAPTERS); err = 1; }
            else p.adapters[p.n_adapters++] = v;
        }
        else if (cli_opt(argc, argv, &i, "tokenizer", &p.tokenizer, &err)) {}
        else if (cli_opt(argc, argv, &i, "host", &p.host, &err)) {}
        else if (cli_opt(argc, argv, &i, "data-dir", &p.data_dir, &err)) {}
        else if (cli_opt(argc, argv, &i, "api-key-file", &p.api_key_file, &err)) {}
        else if (cli_opt(argc, argv, &i, "port", &v, &err)) { if (v) p.port = (int)cli_parse_long("port", v, 0, 65535, &err); }
        else if (cli_opt(argc, argv, &i, "ctx", &v, &err)) { if (v) p.n_ctx = (int32_t)cli_parse_long("ctx", v, 1, 1L << 24, &err); }
        else if (cli_opt(argc, argv, &i, "max-concurrent", &v, &err)) { if (v) p.max_concurrent = (int)cli_parse_long("max-concurrent", v, 1, 1024, &err); }
        else if (cli_opt(argc, argv, &i, "max-queue", &v, &err)) { if (v) p.max_queue = (int)cli_parse_long("max-queue", v, 0, 100000, &err); }
        else if (cli_opt(argc, argv, &i, "max-connections", &v, &err)) { if (v) p.max_connections = (int)cli_parse_long("max-connections", v, 1, 100000, &err); }
        else if (cli_opt(argc, argv, &i, "max-body", &v, &err)) { if (v) p.max_body = (size_t)cli_parse_long("max-body", v, 1, 1L << 30, &err); }
        else if (cli_opt(argc, argv, &i, "max-upload", &v, &err)) { if (v) p.max_upload = (size_t)cli_parse_long("max-upload", v, 1, 1L << 40, &err); }
        else if (cli_opt(argc, argv, &i, "timeout", &v, &err)) { if (v) p.timeout_s = (int)cli_parse_long("timeout", v, 1, 86400, &err); }
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) { if (v) p.threads = cli_parse_threads(v, &err); }
        else if (cli_flag(argv, i, "exact")) p.exact = true;
        else if (cli_flag(argv, i, "fast")) p.exact = false;
        else if (cli_opt(argc, argv, &i, "log-days", &v, &err)) { if (v) p.log_days = (int)cli_parse_long("log-days", v, 0, 100000, &err); }
        else if (cli_opt(argc, argv, &i, "job-nice", &v, &err)) { if (v) p.job_nice = (int)cli_parse_long("job-nice", v, 0, 19, &err); }
        else if (cli_opt(argc, argv, &i, "log-contents", &v, &err)) {
            if (!v) continue;
            if (strcmp(v, "on") && strcmp(v, "off")) { fprintf(stderr, "takumi: --log-contents %s: on or off\n", v); err = 1; }
            p.log_contents_off = !strcmp(v, "off");
        }
        else if (cli_opt(argc, argv, &i, "rpm", &v, &err)) { if (v) rpm = cli_parse_long("rpm", v, 0, 1000000000L, &err); }
        else if (cli_opt(argc, argv, &i, "token-budget", &v, &err)) { if (v) budget = cli_parse_long("token-budget", v, 0, LONG_MAX, &err); }
        else if (cli_flag(argv, i, "create-key")) create_key = true;
        else if (cli_flag(argv, i, "admin")) admin = true;
        else { fprintf(stderr, "takumi: unknown option '%s' (see --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    if ((admin || rpm || budget) && !create_key) { fprintf(stderr, "takumi: --admin, --rpm and --token-budget go with --create-key\n"); return 1; }
    if (create_key) {
        char *key = NULL;
        tk_status st = tk_serve_create_key_limits(p.data_dir, admin, rpm, budget, &key);
        if (st) return cli_fail(st, "cannot create a key");
        printf("%s\n", key);
        free(key);
        return 0;
    }
    if (p.n_models == 0) {
        const char *m = cli_default_model();
        if (!m) { fprintf(stderr, "takumi: no --model given and the default model is missing (run scripts/fetch-model.sh)\n"); return 1; }
        p.models[p.n_models++] = m;
    }
    p.log = log_stderr;
    /* SIGTERM/SIGINT are taken by sigwait below: blocked here, before the server's threads inherit the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    tk_server *s = NULL;
    tk_status st = tk_server_open(&p, &s);
    if (st) return cli_fail(st, "serve");
    fprintf(stderr, "takumi serve: listening on http://%s%s%s:%d (", strchr(p.host, ':') ? "[" : "", p.host,
            strchr(p.host, ':') ? "]" : "", tk_server_port(s));
    for (int i = 0; i < p.n_models; i++) fprintf(stderr, "%smodel %s", i ? ", " : "", p.models[i]);
    for (int i = 0; i < p.n_adapters; i++) fprintf(stderr, ", adapter %s", p.adapters[i]);
    fprintf(stderr, "; at most %d generations at once, %d waiting)\n", p.max_concurrent, p.max_queue);
    fprintf(stderr, "takumi serve: dashboard at http://%s%s%s:%d/dashboard\n", strchr(p.host, ':') ? "[" : "", p.host,
            strchr(p.host, ':') ? "]" : "", tk_server_port(s));
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "takumi serve: %s: finishing the requests in flight, pausing the running job\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    tk_server_stop(s);
    tk_server_free(s);
    fprintf(stderr, "takumi serve: stopped\n");
    return 0;
}
