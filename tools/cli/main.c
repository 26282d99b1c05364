/* `takumi` — the command. Dispatches to one function per subcommand. */
#include "cli.h"
#include <errno.h>

int cmd_version(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_reward(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_review(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_deploy(int argc, char **argv);

/* Each subcommand lives in tools/cli/cmd_<name>.c. */
static const struct { const char *name; cli_cmd_fn fn; const char *help; } k_cmds[] = {
    {"version", cmd_version, "print the version and build features"},
    {"tokenize", cmd_tokenize, "text -> token ids (or --decode ids -> text) with a model's tokenizer"},
    {"data", cmd_data, "check, redact, convert and split training data"},
    {"train", cmd_train, "fine-tune a model (LoRA or full) on a dataset into a run folder"},
    {"generate", cmd_generate, "continue a prompt (or answer it with --chat), streaming the text"},
    {"chat", cmd_chat, "interactive multi-turn chat (one user message per stdin line)"},
    {"inspect", cmd_inspect, "architecture, sizes, tensors, tokenizer and chat template of a model"},
    {"perplexity", cmd_perplexity, "perplexity of a text file under a model"},
    {"reward", cmd_reward, "score preference pairs with a reward model (pairwise accuracy)"},
    {"classify", cmd_classify, "labels and probabilities of texts with a classifier (train --task classify), or a regression head's values"},
    {"eval", cmd_eval, "evaluate a model or adapter: metrics, graders, forgetting, safety, targets (exit 3 when one is missed)"},
    {"export", cmd_export, "merge a LoRA adapter into a model (HF folder or GGUF), or convert adapters/models"},
    {"review", cmd_review, "blind A/B review page of two systems' answers; --collect unblinds the judgements"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server: chat/completions (streaming), models, adapters per request, keys, metrics"},
    {"deploy", cmd_deploy, "deployments of a running takumi serve: create, list, canary, promote, rollback (over HTTP)"},
};

int cmd_version(int argc, char **argv) {
    (void)argc; (void)argv;
    printf("takumi %s\n", TK_VERSION);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: takumi <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        fprintf(f, "  %-12s %s\n", k_cmds[i].name, k_cmds[i].help);
    fprintf(f, "\n'takumi <command> --help' shows a command's options.\n");
}

static int run(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        if (!strcmp(argv[1], k_cmds[i].name)) return k_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "takumi: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
    int rc = run(argc, argv);
    /* results go to stdout: a write that failed (a full disk, a closed pipe) must not end in
     * exit status 0, so the last flush and the close are checked too */
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        fprintf(stderr, "takumi: cannot write the results to standard output: %s\n", errno ? strerror(errno) : "write error");
        if (rc == 0) rc = 1;
    }
    return rc;
}
