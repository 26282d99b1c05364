/* `takumi inspect MODEL [--json]`: what a model file holds — architecture, parameter
 * count, layers, heads, dims, vocabulary, context, RoPE, tensor table (name, dtype,
 * shape), tokenizer type and pre-tokenizer, chat template family. */
#include "cli.h"
#include <cJSON.h>

static void usage(FILE *f) {
    fprintf(f, "usage: takumi inspect [MODEL] [--tokenizer T] [--json]\n"
               "  MODEL           .gguf file, HF model folder, or llama2.c checkpoint (default: the default model)\n"
               "  --tokenizer T   tokenizer to report instead of the model's own (llama2.c: its tokenizer.bin)\n"
               "  --json          one JSON object on stdout instead of text\n");
}

static const char *rope_desc(const tk_model_config *c) {
    return c->rope_interleaved ? "interleaved pairs (Meta / llama.cpp q,k layout)" : "halves (HF rotate_half)";
}
static const char *scaling_name(tk_rope_scaling s) {
    return s == TK_ROPE_SCALING_LINEAR ? "linear" : s == TK_ROPE_SCALING_LLAMA3 ? "llama3" : "none";
}

static void shape_str(const tk_tensor_ref *t, char *buf, size_t n) {
    /* torch order (outer first), as people read HF shapes */
    size_t k = 0;
    int nd = t->n_dims > 0 ? t->n_dims : 1;
    for (int i = nd - 1; i >= 0 && k < n; i--) k += (size_t)snprintf(buf + k, n - k, i == nd - 1 ? "%lld" : " x %lld", (long long)t->ne[i]);
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *tokp = NULL;
    bool json = false;
    int err = 0;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag(argv, i, "help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (cli_flag(argv, i, "json")) json = true;
        else if (cli_opt(argc, argv, &i, "tokenizer", &tokp, &err)) {}
        else if (cli_opt(argc, argv, &i, "model", &path, &err)) {}
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "takumi: unknown option '%s' (see --help)\n", argv[i]); err = 1; }
        else if (!path) path = argv[i];
        else { fprintf(stderr, "takumi: inspect takes one model\n"); err = 1; }
    }
    if (err) return 1;
    if (!path && !(path = cli_default_model())) return cli_fail(TK_OK, "no model given and the default model is missing");
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_IF_PRESENT;
    mp.tokenizer_path = tokp;
    tk_model *m = NULL;
    tk_status st = tk_model_load(path, &mp, &m);
    if (st) return cli_fail(st, "cannot load %s", path);
    const tk_model_config *c = tk_model_get_config(m);
    const tk_tokenizer *tok = tk_model_tokenizer(m);
    tk_chat_family fam = TK_CHAT_UNKNOWN;
    const char *fam_name = "none";
    if (tok && tk_tokenizer_chat_template(tok)) {
        fam = tk_chat_detect(tk_tokenizer_chat_template(tok));
        fam_name = fam == TK_CHAT_UNKNOWN ? "unrecognised" : tk_chat_family_name(fam);
    }
    /* dtype histogram */
    int64_t counts[TK_DTYPE_COUNT] = {0};
    for (int64_t i = 0; i < tk_model_n_tensors(m); i++) counts[tk_model_tensor(m, i)->dtype]++;
    char dts[256] = "";
    size_t k = 0;
    for (int d = 0; d < TK_DTYPE_COUNT; d++)
        if (counts[d] && k < sizeof dts)
            k += (size_t)snprintf(dts + k, sizeof dts - k, "%s%s x%lld", k ? ", " : "", tk_dtype_name((tk_dtype)d), (long long)counts[d]);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "path", path);
        cJSON_AddStringToObject(j, "format", tk_model_format(m));
        cJSON_AddStringToObject(j, "architecture", c->arch);
        cJSON_AddStringToObject(j, "name", c->name);
        cJSON_AddNumberToObject(j, "parameters", (double)tk_model_n_params(m));
        cJSON_AddNumberToObject(j, "weight_bytes", (double)tk_model_weight_bytes(m));
        cJSON_AddNumberToObject(j, "layers", c->n_layers);
        cJSON_AddNumberToObject(j, "dim", c->dim);
        cJSON_AddNumberToObject(j, "hidden_dim", c->hidden_dim);
        cJSON_AddNumberToObject(j, "heads", c->n_heads);
        cJSON_AddNumberToObject(j, "kv_heads", c->n_kv_heads);
        cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(j, "vocab", c->n_vocab);
        cJSON_AddNumberToObject(j, "context", c->max_seq);
        cJSON_AddNumberToObject(j, "rms_eps", c->rms_eps);
        cJSON *r = cJSON_AddObjectToObject(j, "rope");
        cJSON_AddNumberToObject(r, "theta", c->rope_theta);
        cJSON_AddStringToObject(r, "layout", c->rope_interleaved ? "interleaved" : "halves");
        cJSON_AddStringToObject(r, "scaling", scaling_name(c->rope_scaling));
        if (c->rope_scaling != TK_ROPE_SCALING_NONE) cJSON_AddNumberToObject(r, "factor", c->rope_factor);
        if (c->rope_scaling == TK_ROPE_SCALING_LLAMA3) {
            cJSON_AddNumberToObject(r, "low_freq_factor", c->rope_low_freq_factor);
            cJSON_AddNumberToObject(r, "high_freq_factor", c->rope_high_freq_factor);
            cJSON_AddNumberToObject(r, "original_context", c->rope_orig_max_seq);
        }
        cJSON_AddBoolToObject(j, "tied_embeddings", c->tied_embeddings);
        cJSON_AddBoolToObject(j, "qkv_bias", c->qkv_bias);
        if (tok) {
            cJSON *t = cJSON_AddObjectToObject(j, "tokenizer");
            cJSON_AddStringToObject(t, "type", tk_tokenizer_kind_of(tok) == TK_TOKENIZER_SPM ? "spm" : "bpe");
            cJSON_AddStringToObject(t, "pre", tk_tokenizer_pre_name(tok));
            cJSON_AddNumberToObject(t, "size", tk_tokenizer_n_vocab(tok));
            cJSON_AddNumberToObject(t, "bos", tk_tokenizer_bos(tok));
            cJSON_AddNumberToObject(t, "eos", tk_tokenizer_eos(tok));
            cJSON_AddNumberToObject(t, "eot", tk_tokenizer_eot(tok));
        } else cJSON_AddNullToObject(j, "tokenizer");
        cJSON_AddStringToObject(j, "chat_template", fam_name);
        cJSON *ts = cJSON_AddArrayToObject(j, "tensors");
        for (int64_t i = 0; i < tk_model_n_tensors(m); i++) {
            const tk_tensor_ref *t = tk_model_tensor(m, i);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name ? t->name : "?");
            cJSON_AddStringToObject(o, "dtype", tk_dtype_name(t->dtype));
            cJSON *sh = cJSON_AddArrayToObject(o, "shape");
            for (int d = (t->n_dims > 0 ? t->n_dims : 1) - 1; d >= 0; d--) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->ne[d]));
            cJSON_AddItemToArray(ts, o);
        }
        char *s = cJSON_Print(j);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    } else {
        printf("model:          %s (%s)\n", path, tk_model_format(m));
        printf("architecture:   %s%s%s\n", c->arch, c->name[0] ? " — " : "", c->name);
        printf("parameters:     %lld (%.1fM)\n", (long long)tk_model_n_params(m), tk_model_n_params(m) / 1e6);
        printf("weights:        %.1f MB (%s)\n", tk_model_weight_bytes(m) / 1e6, dts);
        printf("layers:         %d\n", c->n_layers);
        printf("dim:            %d (SwiGLU hidden %d)\n", c->dim, c->hidden_dim);
        printf("heads:          %d query, %d key/value, head dim %d\n", c->n_heads, c->n_kv_heads, c->head_dim);
        printf("vocabulary:     %d\n", c->n_vocab);
        printf("context:        %d\n", c->max_seq);
        printf("rope:           theta %g, %s, scaling %s", c->rope_theta, rope_desc(c), scaling_name(c->rope_scaling));
        if (c->rope_scaling != TK_ROPE_SCALING_NONE) printf(" (factor %g)", c->rope_factor);
        printf("\nrms norm eps:   %g\n", c->rms_eps);
        printf("embeddings:     %s\n", c->tied_embeddings ? "tied (output = token embedding)" : "untied");
        printf("q/k/v bias:     %s\n", c->qkv_bias ? "yes" : "no");
        if (tok)
            printf("tokenizer:      %s, pre-tokenizer %s, %d tokens (bos %d, eos %d, end-of-turn %d)\n",
                   tk_tokenizer_kind_of(tok) == TK_TOKENIZER_SPM ? "SentencePiece-style BPE" : "byte-level BPE",
                   tk_tokenizer_pre_name(tok), tk_tokenizer_n_vocab(tok), tk_tokenizer_bos(tok), tk_tokenizer_eos(tok),
                   tk_tokenizer_eot(tok));
        else printf("tokenizer:      none found (pass --tokenizer)\n");
        printf("chat template:  %s\n", fam_name);
        printf("tensors:        %lld\n", (long long)tk_model_n_tensors(m));
        for (int64_t i = 0; i < tk_model_n_tensors(m); i++) {
            const tk_tensor_ref *t = tk_model_tensor(m, i);
            char sh[96];
            shape_str(t, sh, sizeof sh);
            printf("  %-48s %-5s %s\n", t->name ? t->name : "?", tk_dtype_name(t->dtype), sh);
        }
    }
    tk_model_free(m);
    return 0;
}
