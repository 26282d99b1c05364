/* `takumi export`: a model with a LoRA adapter merged into its weights, written as an HF
 * safetensors folder or a GGUF file (takumi/export.h, takumi/adapter.h); without --merge, the adapter
 * itself converted between the PEFT folder and the llama.cpp GGUF layouts; without an
 * adapter, the model converted. stdout gets one line naming what was written. */
#include "cli.h"
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: takumi export --model M [--adapter A] [--merge] --to OUT [options]\n"
        "  --model M      base model: .gguf, HF folder or llama2.c checkpoint (default: $TAKUMI_MODEL or\n"
        "                 models/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
        "  --adapter A    LoRA adapter: PEFT folder (e.g. RUN/adapter) or GGUF adapter (RUN/adapter.gguf)\n"
        "  --merge        merge the adapter into the weights (W + scale * B A) and write the whole model\n"
        "  --to OUT       OUT ending in .gguf: a GGUF file; anything else: an HF folder\n"
        "                 with --merge or without --adapter: the model (GGUF output needs a GGUF source: its\n"
        "                 tokenizer and metadata are copied; an HF folder from a GGUF source has config.json +\n"
        "                 model.safetensors and no tokenizer files: use --tokenizer SOURCE.gguf with it);\n"
        "                 with --adapter and no --merge: the adapter converted (PEFT folder or GGUF adapter)\n"
        "  --dtype T      f32 | f16 | bf16 | q8_0 (GGUF only) for the model's matrices (default f16);\n"
        "                 norms stay f32 in a GGUF\n"
        "  --threads N    compute threads (default: all cores)\n");
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *to = NULL, *dts = NULL, *v = NULL;
    bool merge = false;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_opt(argc, argv, &i, "model", &model, &err)) {}
        else if (cli_opt(argc, argv, &i, "adapter", &adapter, &err)) {}
        else if (cli_opt(argc, argv, &i, "to", &to, &err)) {}
        else if (cli_opt(argc, argv, &i, "dtype", &dts, &err)) {}
        else if (cli_opt(argc, argv, &i, "threads", &v, &err)) {
            if (v) cli_parse_threads(v, &err);
        }
        else if (cli_flag(argv, i, "merge")) merge = true;
        else { fprintf(stderr, "takumi: unknown option '%s' (see --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    if (!to) { fprintf(stderr, "takumi: export needs --to OUT (see --help)\n"); return 1; }
    /* never write over an input (the base model would be replaced by the merged one) */
    const char *inputs[2] = {model, adapter};
    for (int k = 0; k < 2; k++)
        if (inputs[k] && cli_same_file(inputs[k], to)) {
            fprintf(stderr, "takumi: export: --to %s is the %s itself; write somewhere else\n", to, k ? "--adapter" : "--model");
            return 1;
        }
    if (merge && !adapter) { fprintf(stderr, "takumi: --merge needs --adapter A\n"); return 1; }
    tk_export_params ep = tk_export_default_params();
    if (dts && !tk_export_parse_dtype(dts, &ep.dtype)) {
        fprintf(stderr, "takumi: --dtype %s: expected f32, f16, bf16 or q8_0\n", dts);
        return 1;
    }
    if (!model && !(model = cli_default_model())) return cli_fail(TK_OK, "no --model given and the default model is missing");
    size_t tl = strlen(to);
    bool to_gguf = tl >= 5 && !strcmp(to + tl - 5, ".gguf");
    bool adapter_only = adapter && !merge;
    if (adapter_only && dts) fprintf(stderr, "takumi: note: --dtype applies to models; adapters are written in f32\n");

    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_IF_PRESENT;
    tk_model *m = NULL;
    tk_adapter_handle *ah = NULL;
    int rc = 0;
    tk_status st = tk_model_load(model, &mp, &m);
    if (st) { rc = cli_fail(st, "cannot load %s", model); goto out; }
    if (adapter && (st = tk_adapter_apply(m, adapter, &ah))) { rc = cli_fail(st, "cannot apply the adapter %s", adapter); goto out; }
    if (adapter_only) {
        st = tk_adapter_save(ah, m, to, model);
        if (st) { rc = cli_fail(st, "cannot write %s", to); goto out; }
        printf("wrote %s: LoRA adapter (%s layout) for %s\n", to, to_gguf ? "llama.cpp GGUF" : "PEFT", model);
        goto out;
    }
    double t0 = cli_now();
    st = ah ? tk_adapter_merge(m, ah, to, &ep) : tk_export_model(m, to, &ep);
    if (st) { rc = cli_fail(st, "export failed"); goto out; }
    printf("wrote %s: %s%s (%s, %s) in %.1f s\n", to, model, adapter ? " + merged adapter" : "", to_gguf ? "GGUF" : "HF folder",
           tk_dtype_name(ep.dtype), cli_now() - t0);
    if (!to_gguf && !strcmp(tk_model_format(m), "gguf"))
        fprintf(stderr, "takumi: note: the folder has no tokenizer files (the GGUF source keeps its tokenizer inside); "
                        "use --tokenizer %s with it\n", model);
    else if (!to_gguf && strcmp(tk_model_format(m), "hf"))   /* llama2.c: the tokenizer is a file of its own (tokenizer.bin, tok512.bin …) */
        fprintf(stderr, "takumi: note: the folder has no tokenizer files; use --tokenizer with the llama2.c tokenizer file this "
                        "model uses (tokenizer.bin, or e.g. tok512.bin beside %s)\n", model);
out:
    tk_adapter_detach(m, ah);
    tk_model_free(m);
    return rc;
}
