/* Logits of a token sequence under llama.cpp, optionally with a LoRA adapter loaded through
 * llama.cpp's own adapter loader (llama_adapter_lora_init), for tools/interop_check.py.
 *   llamacpp_logits MODEL.gguf ADAPTER.gguf|- IDS OUT
 * IDS: comma-separated token ids; OUT: raw f32 [n_ids x V], every position. KV cache in f32
 * and flash attention off, so that an f32 model is computed in f32 throughout.
 * Built by interop_check.py against the llama.cpp that bench/build-peers.sh builds. */
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud;
    if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: llamacpp_logits MODEL ADAPTER|- IDS OUT\n"); return 2; }
    static llama_token ids[4096];
    int n = 0;
    for (char *s = argv[3]; *s && n < 4096;) { ids[n++] = (llama_token)strtol(s, &s, 10); if (*s == ',') s++; }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "llamacpp_logits: cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n < 512 ? 512 : n);
    cp.n_batch = cp.n_ubatch = (uint32_t)n;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.n_threads = cp.n_threads_batch = 1;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "llamacpp_logits: no context\n"); return 1; }
    if (strcmp(argv[2], "-")) {
        struct llama_adapter_lora *a = llama_adapter_lora_init(model, argv[2]);
        if (!a) { fprintf(stderr, "llamacpp_logits: llama.cpp could not load the adapter %s\n", argv[2]); return 1; }
        float scale = 1.0f;
        if (llama_set_adapters_lora(ctx, &a, 1, &scale) != 0) { fprintf(stderr, "llamacpp_logits: set adapter failed\n"); return 1; }
    }
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = ids[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b) != 0) { fprintf(stderr, "llamacpp_logits: decode failed\n"); return 1; }
    int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE *o = fopen(argv[4], "wb");
    if (!o) { perror(argv[4]); return 1; }
    for (int i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)V, o);
    if (fclose(o)) { perror(argv[4]); return 1; }
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
