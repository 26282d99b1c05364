/* The weight map: binding a container's tensors (looked up by llama.cpp GGUF names) onto
 * tk_weights with presence/shape/dtype checks, and config
 * validation. Weights stay views into the container's mapping; only norm and bias
 * vectors not stored as aligned F32 are converted to owned f32 copies. */
#include "model/llama.h"
#include "core/core.h"
#include <stdio.h>
#include <math.h>

/* The weight map's names are llama.cpp's GGUF names; each container's find function
 * translates them (HF via tk_hf_weight_name; llama2.c exposes GGUF names itself). */
typedef struct name_scheme {
    const char *tok_embd, *out_norm, *output;
    const char *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *ffn_norm, *w_gate, *w_up, *w_down;
    const char *q_norm, *k_norm, *post_attn_norm, *post_ffn_norm, *wqkv;
} name_scheme;
static const name_scheme k_names = {
    .tok_embd = "token_embd.weight", .out_norm = "output_norm.weight", .output = "output.weight",
    .attn_norm = "blk.%d.attn_norm.weight",
    .wq = "blk.%d.attn_q.weight", .wk = "blk.%d.attn_k.weight", .wv = "blk.%d.attn_v.weight",
    .wo = "blk.%d.attn_output.weight",
    .bq = "blk.%d.attn_q.bias", .bk = "blk.%d.attn_k.bias", .bv = "blk.%d.attn_v.bias",
    .ffn_norm = "blk.%d.ffn_norm.weight",
    .w_gate = "blk.%d.ffn_gate.weight", .w_up = "blk.%d.ffn_up.weight", .w_down = "blk.%d.ffn_down.weight",
    .q_norm = "blk.%d.attn_q_norm.weight", .k_norm = "blk.%d.attn_k_norm.weight",
    .post_attn_norm = "blk.%d.post_attention_norm.weight", .post_ffn_norm = "blk.%d.post_ffw_norm.weight",
    .wqkv = "blk.%d.attn_qkv.weight",
};

tk_status tk_model_config_validate(const tk_model_config *c, const char *where) {
    if (!where) where = "model";
#define BAD(...) return tk_fail(TK_ERR_FORMAT, __VA_ARGS__)
#define RANGE(field, lo, hi) \
    if ((int64_t)c->field < (lo) || (int64_t)c->field > (hi)) \
        BAD("%s: %s = %lld is outside [%lld, %lld]", where, #field, (long long)c->field, (long long)(lo), (long long)(hi))
    /* Upper bounds are far above any real model; they stop absurd values from turning
     * into huge allocations or overflowing products later. */
    RANGE(n_vocab, 1, 1 << 24);
    RANGE(dim, 1, 1 << 16);
    RANGE(n_layers, 1, 4096);
    RANGE(n_heads, 1, 4096);
    RANGE(n_kv_heads, 1, 4096);
    RANGE(head_dim, 2, 4096);
    RANGE(hidden_dim, 1, 1 << 20);
    RANGE(max_seq, 1, 1 << 24);
#undef RANGE
    if (c->n_heads % c->n_kv_heads)
        BAD("%s: n_heads = %d is not a multiple of n_kv_heads = %d", where, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) BAD("%s: head_dim = %d must be even for RoPE", where, c->head_dim);
    if (c->sliding_window < 0 || c->swa_period < 0) BAD("%s: sliding_window = %d / period %d must not be negative", where, c->sliding_window, c->swa_period);
    if (!(c->embed_scale >= 0 && isfinite(c->embed_scale)) || !(c->attn_scale >= 0 && isfinite(c->attn_scale)) ||
        !(c->rope_theta_local >= 0 && isfinite(c->rope_theta_local)) || !(c->attn_softcap >= 0 && isfinite(c->attn_softcap)) ||
        !(c->final_softcap >= 0 && isfinite(c->final_softcap)))
        BAD("%s: embedding scale, attention scale, local rope base and soft-caps must be finite and not negative", where);
    if ((unsigned)c->act > TK_ACT_GELU_TANH) BAD("%s: unknown activation %d", where, (int)c->act);
    if (!(c->rms_eps > 0 && c->rms_eps < 1)) BAD("%s: rms_eps = %g must be in (0, 1)", where, (double)c->rms_eps);
    if (!(c->rope_theta > 0 && isfinite(c->rope_theta))) BAD("%s: rope_theta = %g must be positive", where, (double)c->rope_theta);
    if (c->rope_scaling == TK_ROPE_SCALING_LINEAR && !(c->rope_factor > 0 && isfinite(c->rope_factor)))
        BAD("%s: linear rope scaling factor %g must be positive", where, (double)c->rope_factor);
    if (c->rope_scaling == TK_ROPE_SCALING_LLAMA3 &&
        !(c->rope_factor > 0 && c->rope_low_freq_factor > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor &&
          c->rope_orig_max_seq > 0))
        BAD("%s: llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
            "original_max_position_embeddings > 0", where);
#undef BAD
    return TK_OK;
}

tk_status tk_model_own(tk_model *m, void *p, size_t bytes) {
    void **o = tk_realloc(m->owned, (m->n_owned + 1) * sizeof *o);
    if (!o) { free(p); return TK_ERR_NOMEM; }
    m->owned = o;
    m->owned[m->n_owned++] = p;
    m->owned_bytes += bytes;
    return TK_OK;
}

static void fmt_shape(char *buf, size_t n, int nd, const int64_t *ne) {
    size_t k = (size_t)snprintf(buf, n, "{");
    for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (k < n) snprintf(buf + k, n - k, "}");
}

/* Dtypes a linear weight or embedding table may have (what tk_matmul / tk_embedding handle). */
static bool matmul_dtype(tk_dtype t) {
    switch (t) {
    case TK_F32: case TK_F16: case TK_BF16:
    case TK_Q8_0: case TK_Q4_0: case TK_Q4_1: case TK_Q5_0: case TK_Q5_1:
    case TK_Q2_K: case TK_Q3_K: case TK_Q4_K: case TK_Q5_K: case TK_Q6_K: case TK_NF4: return true;
    default: return false;
    }
}

/* Records a tensor as stored in the file (dtype, shape, bytes) for inspection. */
static tk_status table_add(tk_model *m, const tk_tensor_ref *r) {
    tk_tensor_ref *t = tk_realloc(m->table, (size_t)(m->n_table + 1) * sizeof *t);
    if (!t) return TK_ERR_NOMEM;
    m->table = t;
    m->table[m->n_table++] = *r;
    return TK_OK;
}

typedef struct bind_ctx {
    tk_model *m;
    tk_find_tensor_fn find;
    void *fctx;
    const char *file;
} bind_ctx;

/* Looks up one tensor, checks shape {ne0, ne1} (ne1 = 0: a vector) and copies the ref into *dst.
 * vector: converted to an aligned f32 copy when stored otherwise. Absent + optional: data NULL. */
static tk_status bind_one(bind_ctx *c, tk_tensor_ref *dst, const char *fmt, int layer, int64_t ne0, int64_t ne1,
                          bool vector, bool optional) {
    char key[128], name[256];
    snprintf(key, sizeof key, fmt, layer);
    snprintf(name, sizeof name, "%s", key);
    const tk_tensor_ref *r = c->find(c->fctx, key, name, sizeof name);
    memset(dst, 0, sizeof *dst);
    if (!r) {
        if (optional) return TK_OK;
        return tk_fail(TK_ERR_NOT_FOUND, "%s: missing tensor '%s'", c->file, name);
    }
    int nd = ne1 ? 2 : 1;
    int64_t want[2] = {ne0, ne1};
    bool ok = true;
    for (int i = 0; i < TK_MAX_DIMS; i++) {
        int64_t w = i < nd ? want[i] : 1;
        if (r->ne[i] != w) ok = false;
    }
    if (!ok) {
        char got[96], exp[96];
        fmt_shape(got, sizeof got, r->n_dims > 0 ? r->n_dims : 1, r->ne);
        fmt_shape(exp, sizeof exp, nd, want);
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' has shape %s (ggml order), the config implies %s",
                       c->file, name, got, exp);
    }
    if (!r->data) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' has no data", c->file, name);
    tk_status st = table_add(c->m, r);
    if (st) return st;
    *dst = *r;
    if (vector) {
        if (r->dtype == TK_F32 && ((uintptr_t)r->data % sizeof(float)) == 0) return TK_OK;
        if (r->dtype != TK_F32 && r->dtype != TK_F16 && r->dtype != TK_BF16)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; norms and biases must be f32, f16 or bf16",
                           c->file, name, tk_dtype_name(r->dtype));
        size_t bytes = (size_t)ne0 * sizeof(float);
        float *f = tk_malloc(bytes);
        if (!f) return TK_ERR_NOMEM;
        if (r->dtype == TK_F32) { memcpy(f, r->data, bytes); st = TK_OK; }
        else st = tk_dequantize(r->dtype, r->data, f, ne0);
        if (st) { free(f); return tk_fail_ctx(st, "%s: tensor '%s'", c->file, name); }
        if ((st = tk_model_own(c->m, f, bytes))) return st;
        dst->dtype = TK_F32;
        dst->data = f;
        dst->nbytes = bytes;
        return TK_OK;
    }
    if (!matmul_dtype(r->dtype))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, which takumi cannot multiply",
                       c->file, name, tk_dtype_name(r->dtype));
    return TK_OK;
}


tk_status tk_weights_check_layer(const char *name, const char *prefix, int32_t n_layers, const char *file) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n)) return TK_OK;
    char *end;
    long l = strtol(name + n, &end, 10);
    if (end == name + n || *end != '.') return TK_OK;
    if (l < 0 || l >= n_layers)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' belongs to layer %ld, but the model has %d layers (block count): "
                       "the file and its metadata disagree", file, name, l, n_layers);
    return TK_OK;
}

tk_status tk_weights_bind(tk_model *m, tk_find_tensor_fn find, void *fctx, const char *file,
                         bool output_optional) {
    tk_model_config *cfg = &m->cfg;
    tk_status st = tk_model_config_validate(cfg, file);
    if (st) return st;
    bind_ctx c = {m, find, fctx, file};
    const name_scheme *ns = &k_names;
    int64_t C = cfg->dim, V = cfg->n_vocab, F = cfg->hidden_dim;
    int64_t QD = (int64_t)cfg->n_heads * cfg->head_dim, KD = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    tk_weights *w = &m->w;
    w->layers = tk_calloc((size_t)cfg->n_layers, sizeof *w->layers);
    if (!w->layers) return TK_ERR_NOMEM;
    if ((st = bind_one(&c, &w->tok_embd, ns->tok_embd, 0, C, V, false, false))) return st;
    /* Biases: all three or none (Qwen2 has them; Llama does not). */
    char bkey[64], bname[256];
    snprintf(bkey, sizeof bkey, ns->bq, 0);
    snprintf(bname, sizeof bname, "%s", bkey);
    bool has_bias = !cfg->fused_qkv && find(fctx, bkey, bname, sizeof bname) != NULL;
    if (cfg->qkv_bias && !has_bias) return tk_fail(TK_ERR_NOT_FOUND, "%s: missing tensor '%s' (%s has q/k/v biases)", file, bname, cfg->arch);
    cfg->qkv_bias = has_bias;
    int64_t D = cfg->head_dim;
    for (int l = 0; l < cfg->n_layers; l++) {
        tk_layer_weights *y = &w->layers[l];
        if ((st = bind_one(&c, &y->attn_norm, ns->attn_norm, l, C, 0, true, false))) return st;
        if (cfg->fused_qkv) st = bind_one(&c, &y->wq, ns->wqkv, l, C, QD + 2 * KD, false, false);
        else if (!(st = bind_one(&c, &y->wq, ns->wq, l, C, QD, false, false)) &&
                 !(st = bind_one(&c, &y->wk, ns->wk, l, C, KD, false, false)))
            st = bind_one(&c, &y->wv, ns->wv, l, C, KD, false, false);
        if (st || (st = bind_one(&c, &y->wo, ns->wo, l, QD, C, false, false))) return st;
        if (has_bias &&
            ((st = bind_one(&c, &y->bq, ns->bq, l, QD, 0, true, false)) ||
             (st = bind_one(&c, &y->bk, ns->bk, l, KD, 0, true, false)) ||
             (st = bind_one(&c, &y->bv, ns->bv, l, KD, 0, true, false))))
            return st;
        if (cfg->qk_norm &&
            ((st = bind_one(&c, &y->q_norm, ns->q_norm, l, D, 0, true, false)) ||
             (st = bind_one(&c, &y->k_norm, ns->k_norm, l, D, 0, true, false))))
            return st;
        if (cfg->sandwich_norm &&
            ((st = bind_one(&c, &y->post_attn_norm, ns->post_attn_norm, l, C, 0, true, false)) ||
             (st = bind_one(&c, &y->post_ffn_norm, ns->post_ffn_norm, l, C, 0, true, false))))
            return st;
        if ((st = bind_one(&c, &y->ffn_norm, ns->ffn_norm, l, C, 0, true, false))) return st;
        if (cfg->fused_gate_up) st = bind_one(&c, &y->w_up, ns->w_up, l, C, 2 * F, false, false);
        else if (!(st = bind_one(&c, &y->w_gate, ns->w_gate, l, C, F, false, false)))
            st = bind_one(&c, &y->w_up, ns->w_up, l, C, F, false, false);
        if (st || (st = bind_one(&c, &y->w_down, ns->w_down, l, F, C, false, false))) return st;
    }
    if ((st = bind_one(&c, &w->out_norm, ns->out_norm, 0, C, 0, true, false))) return st;
    /* Tied: the config says so (HF tie_word_embeddings), or the output is absent where that
     * is the convention (GGUF: SmolLM2). A file may also carry an explicit copy (llama.cpp's
     * llama2.c converter writes output.weight), which is then used as an untied weight. */
    if (cfg->tied_embeddings) {
        w->output = w->tok_embd;
        return TK_OK;
    }
    if ((st = bind_one(&c, &w->output, ns->output, 0, C, V, false, output_optional))) return st;
    if (!w->output.data) {
        cfg->tied_embeddings = true;
        w->output = w->tok_embd;
    }
    return TK_OK;
}
