/* HF folder loader: config.json (tk_hf_config_load) + safetensors (single file or
 * sharded with model.safetensors.index.json). HF stores q/k rows in rotate-half order,
 * so these models rotate halves (rope_interleaved = 0) and no row is permuted. */
#include "model/llama.h"
#include "model/hfconfig.h"
#include "model/arch.h"
#include "core/core.h"
#include <stdio.h>

/* Translates a GGUF-style weight name to the HF name and looks it up (also without the
 * leading "model.", as saved from a bare LlamaModel). */
typedef struct hf_ctx { const tk_safetensors *st; const tk_arch *arch; } hf_ctx;

static const tk_tensor_ref *hf_find(void *ctx, const char *gguf_name, char *fname, size_t n) {
    const hf_ctx *hc = ctx;
    const tk_safetensors *st = hc->st;
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
    if (!tk_arch_hf_weight_name(hc->arch, fname, n, key, layer)) return NULL;
    const tk_tensor_ref *r = tk_st_find(st, fname);
    if (!r && !strncmp(fname, "model.", 6)) r = tk_st_find(st, fname + 6);
    return r;
}

/* Gemma's HF norms multiply by (1 + w); takumi holds the multiplier (as llama.cpp's GGUFs
 * do), computed in f32 as transformers does. The mapped weights stay untouched. */
static tk_status plus_one(tk_model *m, tk_tensor_ref *r) {
    if (!r->data) return TK_OK;
    int64_t n = r->ne[0];
    float *f = tk_malloc((size_t)n * sizeof(float));
    if (!f) return TK_ERR_NOMEM;
    const float *src = r->data;
    for (int64_t i = 0; i < n; i++) f[i] = 1.0f + src[i];
    tk_status st = tk_model_own(m, f, (size_t)n * sizeof(float));
    if (st) return st;
    r->data = f;
    r->nbytes = (size_t)n * sizeof(float);
    return TK_OK;
}

static tk_status norms_plus_one(tk_model *m) {
    tk_status st = plus_one(m, &m->w.out_norm);
    for (int32_t l = 0; l < m->cfg.n_layers && !st; l++) {
        tk_layer_weights *y = &m->w.layers[l];
        tk_tensor_ref *v[] = {&y->attn_norm, &y->ffn_norm, &y->q_norm, &y->k_norm, &y->post_attn_norm, &y->post_ffn_norm};
        for (size_t i = 0; i < sizeof v / sizeof v[0] && !st; i++) st = plus_one(m, v[i]);
    }
    return st;
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
    hf_ctx hc = {m->st, tk_arch_by_name(m->cfg.arch)};
    if ((st = tk_weights_bind(m, hf_find, &hc, where, false))) return st;
    for (int64_t i = 0; i < tk_st_n_tensors(m->st); i++)   /* no tensors beyond num_hidden_layers */
        if ((st = tk_weights_check_layer(tk_st_tensor(m->st, i)->name, "model.layers.", m->cfg.n_layers, where))) return st;
    return hc.arch && hc.arch->hf_norm_plus_one ? norms_plus_one(m) : TK_OK;
}
