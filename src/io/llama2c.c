/* llama2.c checkpoint reader (v0 legacy and v1 "ak42" formats; see llama2c.h for the
 * layouts). The header is validated, the file size must match the size the header
 * implies exactly, and the stacked per-layer arrays are exposed as per-layer F32 views
 * named like a llama.cpp Llama GGUF. */
#include "io/llama2c.h"
#include "core/core.h"
#include <stdio.h>

#define L2C_MAGIC 0x616b3432u
#define L2C_V1_HEADER 256
#define L2C_NAME 48

/* the per-layer tensors, in the order of the tensor list */
enum { W_ATTN_NORM, W_Q, W_K, W_V, W_O, W_FFN_NORM, W_GATE, W_UP, W_DOWN, W_PER_LAYER };
static const char *const k_layer_keys[W_PER_LAYER] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
    "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
};

struct tk_llama2c {
    tk_mapped_file file;      /* empty for tk_llama2c_open_memory */
    tk_model_config cfg;
    int version;
    int n_global;             /* token_embd, output_norm[, output] */
    int64_t n;
    tk_tensor_ref *t;
    char (*names)[L2C_NAME];
};

static int32_t l2c_i32(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, 4);
    return r;
}

/* Accumulates element counts with overflow detection. */
typedef struct { size_t n; int ovf; } l2c_count;
static void l2c_add(l2c_count *c, size_t a, size_t b, size_t d) {
    size_t x;
    if (!tk_mul_ok(a, b, &x) || !tk_mul_ok(x, d, &x) || !tk_add_ok(c->n, x, &c->n)) c->ovf = 1;
}

static void l2c_set(tk_llama2c *m, int64_t i, const char *name, const float *data, int64_t ne0, int64_t ne1) {
    tk_tensor_ref *t = &m->t[i];
    snprintf(m->names[i], L2C_NAME, "%s", name);
    t->name = m->names[i];
    t->dtype = TK_F32;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0; t->ne[1] = ne1; t->ne[2] = 1; t->ne[3] = 1;
    t->data = data;
    t->nbytes = (size_t)ne0 * (size_t)ne1 * sizeof(float);
}

static tk_status l2c_parse(tk_llama2c *m, const uint8_t *buf, size_t len, const char *file) {
    if (len < 28)
        return tk_fail(TK_ERR_FORMAT, "%s: %zu bytes is too small for a llama2.c checkpoint (28-byte header)", file, len);
    size_t hdr = 28;
    const uint8_t *p = buf;
    int shared;
    if ((uint32_t)l2c_i32(buf) == L2C_MAGIC) {
        int32_t ver = l2c_i32(buf + 4);
        if (ver == 2)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: llama2.c version 2 (int8 Q8_0, runq.c) checkpoints are not supported; export with --version 1", file);
        if (ver != 1) return tk_fail(TK_ERR_FORMAT, "%s: unknown llama2.c checkpoint version %d", file, (int)ver);
        if (len < L2C_V1_HEADER)
            return tk_fail(TK_ERR_FORMAT, "%s: %zu bytes is too small for a llama2.c v1 checkpoint (256-byte header)", file, len);
        m->version = 1;
        hdr = L2C_V1_HEADER;
        p = buf + 8;
        if (buf[36] > 1) return tk_fail(TK_ERR_FORMAT, "%s: shared_classifier flag is %d, expected 0 or 1", file, buf[36]);
        shared = buf[36];
    } else {
        m->version = 0;
        shared = -1; /* from the sign of vocab_size */
    }
    int32_t dim = l2c_i32(p), hidden = l2c_i32(p + 4), n_layers = l2c_i32(p + 8), n_heads = l2c_i32(p + 12);
    int32_t n_kv = l2c_i32(p + 16), vocab = l2c_i32(p + 20), seq = l2c_i32(p + 24);
    if (shared < 0) {
        shared = vocab > 0;
        if (vocab < 0 && vocab != INT32_MIN) vocab = -vocab;
    } else if (vocab <= 0) {
        return tk_fail(TK_ERR_FORMAT, "%s: vocab_size %d must be positive in a v1 checkpoint", file, (int)vocab);
    }
#define L2C_CHECK(cond, ...) do { if (!(cond)) return tk_fail(TK_ERR_FORMAT, __VA_ARGS__); } while (0)
    L2C_CHECK(dim >= 2 && dim <= (1 << 16), "%s: header dim = %d is not a sane model width (2..65536): not a llama2.c checkpoint?", file, (int)dim);
    L2C_CHECK(hidden >= 1 && hidden <= (1 << 20), "%s: header hidden_dim = %d is out of range", file, (int)hidden);
    L2C_CHECK(n_layers >= 1 && n_layers <= 4096, "%s: header n_layers = %d is out of range", file, (int)n_layers);
    L2C_CHECK(n_heads >= 1 && n_heads <= dim && dim % n_heads == 0, "%s: header n_heads = %d does not divide dim %d", file, (int)n_heads, (int)dim);
    L2C_CHECK((dim / n_heads) % 2 == 0, "%s: head size %d (dim / n_heads) must be even for RoPE", file, (int)(dim / n_heads));
    L2C_CHECK(n_kv >= 1 && n_kv <= n_heads && n_heads % n_kv == 0, "%s: header n_kv_heads = %d does not divide n_heads %d", file, (int)n_kv, (int)n_heads);
    L2C_CHECK(vocab >= 1 && vocab <= (1 << 24), "%s: header vocab_size = %d is out of range", file, (int)vocab);
    L2C_CHECK(seq >= 1 && seq <= (1 << 24), "%s: header seq_len = %d is out of range", file, (int)seq);
#undef L2C_CHECK
    size_t C = (size_t)dim, F = (size_t)hidden, L = (size_t)n_layers, V = (size_t)vocab, D = C / (size_t)n_heads;
    size_t KVD = (size_t)n_kv * D;
    /* elements of the weights every version stores */
    l2c_count c = {0, 0};
    l2c_add(&c, V, C, 1);        /* token embedding */
    l2c_add(&c, L, C, 2);        /* rms_att, rms_ffn */
    l2c_add(&c, L, C, C);        /* wq */
    l2c_add(&c, L, KVD, C * 2);  /* wk, wv */
    l2c_add(&c, L, C, C);        /* wo */
    l2c_add(&c, L, F, C * 3);    /* w1, w2, w3 */
    l2c_add(&c, C, 1, 1);        /* rms_final */
    if (!shared) l2c_add(&c, V, C, 1);
    size_t freq = (size_t)seq * D; /* freq_cis_real + imag, seq x D/2 each (v0 only) */
    size_t body, body_freq;
    if (c.ovf || !tk_mul_ok(c.n, 4, &body) || !tk_add_ok(body, hdr, &body) ||
        !tk_add_ok(body, freq * 4, &body_freq))
        return tk_fail(TK_ERR_FORMAT, "%s: header sizes overflow", file);
    int has_freq = 0;
    if (m->version == 0 && len == body_freq) has_freq = 1;
    else if (len != body) {
        if (m->version == 0)
            return tk_fail(TK_ERR_FORMAT, "%s: file is %zu bytes but its header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d%s, seq %d) implies %zu (or %zu with freq_cis): truncated or corrupt",
                           file, len, (int)dim, (int)hidden, (int)n_layers, (int)n_heads, (int)n_kv, (int)vocab,
                           shared ? "" : " untied", (int)seq, body_freq, body);
        return tk_fail(TK_ERR_FORMAT, "%s: file is %zu bytes but its v1 header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d%s) implies %zu: truncated or corrupt",
                       file, len, (int)dim, (int)hidden, (int)n_layers, (int)n_heads, (int)n_kv, (int)vocab,
                       shared ? "" : " untied", body);
    }

    tk_model_config *cfg = &m->cfg;
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "llama");
    const char *base = strrchr(file, '/');
    snprintf(cfg->name, sizeof cfg->name, "%s", base ? base + 1 : file);
    cfg->n_vocab = vocab;
    cfg->dim = dim;
    cfg->n_layers = n_layers;
    cfg->n_heads = n_heads;
    cfg->n_kv_heads = n_kv;
    cfg->head_dim = (int32_t)D;
    cfg->hidden_dim = hidden;
    cfg->max_seq = seq;
    cfg->rms_eps = 1e-5f;       /* run.c's rmsnorm */
    cfg->rope_theta = 10000.0f; /* run.c's RoPE */
    cfg->rope_interleaved = 1;  /* run.c rotates (2i, 2i+1) pairs */
    cfg->rope_scaling = TK_ROPE_SCALING_NONE;
    cfg->rope_factor = 1.0f;
    cfg->tied_embeddings = shared != 0;
    cfg->qkv_bias = false;

    m->n_global = shared ? 2 : 3;
    m->n = m->n_global + (int64_t)L * W_PER_LAYER;
    m->t = tk_calloc((size_t)m->n, sizeof *m->t);
    m->names = tk_calloc((size_t)m->n, sizeof *m->names);
    if (!m->t || !m->names) return TK_ERR_NOMEM;

    /* walk the arrays in file order; every size below was covered by the exact size check */
    const float *f = (const float *)(buf + hdr);
    const float *emb, *rms_att, *rms_ffn, *rms_final, *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls = NULL;
    if (m->version == 0) {
        emb = f; f += V * C;
        rms_att = f; f += L * C;
        wq = f; f += L * C * C;
        wk = f; f += L * KVD * C;
        wv = f; f += L * KVD * C;
        wo = f; f += L * C * C;
        rms_ffn = f; f += L * C;
        w1 = f; f += L * F * C;
        w2 = f; f += L * C * F;
        w3 = f; f += L * F * C;
        rms_final = f; f += C;
        if (has_freq) f += freq;
    } else {
        rms_att = f; f += L * C;
        rms_ffn = f; f += L * C;
        rms_final = f; f += C;
        emb = f; f += V * C;
        wq = f; f += L * C * C;
        wk = f; f += L * KVD * C;
        wv = f; f += L * KVD * C;
        wo = f; f += L * C * C;
        w1 = f; f += L * F * C;
        w2 = f; f += L * C * F;
        w3 = f; f += L * F * C;
    }
    if (!shared) { wcls = f; f += V * C; }
    if ((const uint8_t *)f != buf + len)
        return tk_fail(TK_ERR_INTERNAL, "%s: llama2.c layout walk ended at %zu of %zu bytes", file,
                       (size_t)((const uint8_t *)f - buf), len);

    l2c_set(m, 0, "token_embd.weight", emb, dim, vocab);
    l2c_set(m, 1, "output_norm.weight", rms_final, dim, 1);
    if (!shared) l2c_set(m, 2, "output.weight", wcls, dim, vocab);
    for (size_t l = 0; l < L; l++) {
        int64_t i = m->n_global + (int64_t)l * W_PER_LAYER;
        char nm[L2C_NAME];
#define L2C_LAYER(w, ptr, ne0, ne1) do { snprintf(nm, sizeof nm, "blk.%zu.%s", l, k_layer_keys[w]); \
        l2c_set(m, i + (w), nm, (ptr), (int64_t)(ne0), (int64_t)(ne1)); } while (0)
        L2C_LAYER(W_ATTN_NORM, rms_att + l * C, C, 1);
        L2C_LAYER(W_Q, wq + l * C * C, C, C);
        L2C_LAYER(W_K, wk + l * KVD * C, C, KVD);
        L2C_LAYER(W_V, wv + l * KVD * C, C, KVD);
        L2C_LAYER(W_O, wo + l * C * C, C, C);
        L2C_LAYER(W_FFN_NORM, rms_ffn + l * C, C, 1);
        L2C_LAYER(W_GATE, w1 + l * F * C, C, F);
        L2C_LAYER(W_UP, w3 + l * F * C, C, F);
        L2C_LAYER(W_DOWN, w2 + l * C * F, F, C);
#undef L2C_LAYER
    }
    return TK_OK;
}

void tk_llama2c_close(tk_llama2c *m) {
    if (!m) return;
    tk_unmap_file(&m->file);
    free(m->t);
    free(m->names);
    free(m);
}

tk_status tk_llama2c_open_memory(const void *buf, size_t len, const char *name, tk_llama2c **out) {
    *out = NULL;
    if (!buf && len) return tk_fail(TK_ERR_ARG, "tk_llama2c_open_memory: NULL buffer");
    if (!name) name = "<memory>";
    if ((uintptr_t)buf % 4) return tk_fail(TK_ERR_ARG, "%s: llama2.c image must be 4-byte aligned", name);
    tk_llama2c *m = tk_calloc(1, sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    tk_status s = l2c_parse(m, buf ? buf : "", len, name);
    if (s != TK_OK) { tk_llama2c_close(m); return s; }
    *out = m;
    return TK_OK;
}

tk_status tk_llama2c_open(const char *path, tk_llama2c **out) {
    *out = NULL;
    if (!path) return tk_fail(TK_ERR_ARG, "tk_llama2c_open: NULL path");
    tk_llama2c *m = tk_calloc(1, sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    tk_status s = tk_map_file(path, &m->file);
    if (s == TK_OK) s = l2c_parse(m, m->file.data, m->file.size, path);
    if (s != TK_OK) { tk_llama2c_close(m); return s; }
    *out = m;
    return TK_OK;
}

const tk_model_config *tk_llama2c_config(const tk_llama2c *m) { return m ? &m->cfg : NULL; }
int tk_llama2c_version(const tk_llama2c *m) { return m ? m->version : -1; }
int64_t tk_llama2c_n_tensors(const tk_llama2c *m) { return m ? m->n : 0; }

const tk_tensor_ref *tk_llama2c_tensor(const tk_llama2c *m, int64_t i) {
    return m && i >= 0 && i < m->n ? &m->t[i] : NULL;
}

const tk_tensor_ref *tk_llama2c_find(const tk_llama2c *m, const char *name) {
    if (!m || !name) return NULL;
    for (int i = 0; i < m->n_global; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    /* "blk.<l>.<key>": compute the index instead of scanning every layer */
    if (strncmp(name, "blk.", 4)) return NULL;
    const char *s = name + 4;
    if (*s < '0' || *s > '9') return NULL;
    long l = 0;
    while (*s >= '0' && *s <= '9') {
        l = l * 10 + (*s++ - '0');
        if (l >= m->cfg.n_layers) return NULL;
    }
    if (*s++ != '.') return NULL;
    for (int w = 0; w < W_PER_LAYER; w++)
        if (!strcmp(s, k_layer_keys[w])) {
            const tk_tensor_ref *t = &m->t[m->n_global + (int64_t)l * W_PER_LAYER + w];
            return strcmp(t->name, name) ? NULL : t; /* rejects "blk.01." spellings */
        }
    return NULL;
}
