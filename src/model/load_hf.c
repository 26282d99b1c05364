/* HF folder loader: config.json (tk_hf_config_load) + safetensors (single file or
 * sharded with model.safetensors.index.json). HF stores q/k rows in rotate-half order,
 * so these models rotate halves (rope_interleaved = 0) and no row is permuted. */
#include "model/llama.h"
#include "io/hfconfig.h"
#include "core/core.h"
#include <stdio.h>

/* Translates a GGUF-style weight name to the HF name and looks it up (also without the
 * leading "model.", as saved from a bare LlamaModel). */
static const tk_tensor_ref *hf_find(void *ctx, const char *gguf_name, char *fname, size_t n) {
    const tk_safetensors *st = ctx;
    char key[96];
    int layer = -1;
    const char *k = gguf_name;
    if (!strncmp(gguf_name, "blk.", 4)) {
        char *end;
        long l = strtol(gguf_name + 4, &end, 10);
        if (*end != '.' || l < 0 || l > 1 << 20) return NULL;
        layer = (int)l;
        k = end + 1;
    }
    snprintf(key, sizeof key, "%s", k);
    if (!tk_hf_weight_name(fname, n, key, layer)) return NULL;
    const tk_tensor_ref *r = tk_st_find(st, fname);
    if (!r && !strncmp(fname, "model.", 6)) r = tk_st_find(st, fname + 6);
    return r;
}

tk_status tk_load_hf(tk_model *m, const char *dir, const tk_model_params *p) {
    tk_hf_config_extra extra;
    tk_status st = tk_hf_config_load(dir, &m->cfg, &extra);
    if (st) return st;
    if (extra.o_bias)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s/config.json: attention_bias = true (an o_proj bias) is not supported", dir);
    /* Sliding-window attention equals full attention within the window: cap the context there. */
    if (extra.sliding_window > 0 && extra.sliding_window < m->cfg.max_seq) m->cfg.max_seq = extra.sliding_window;
    if (p->n_ctx > 0) m->cfg.max_seq = p->n_ctx;
    m->cfg.rope_interleaved = 0;
    if ((st = tk_st_open(dir, &m->st))) return st;
    char where[4200];
    snprintf(where, sizeof where, "%s (safetensors)", dir);
    /* HF's tie_word_embeddings decides; an untied model must have lm_head.weight. */
    return tk_weights_bind(m, hf_find, m->st, where, false);
}
