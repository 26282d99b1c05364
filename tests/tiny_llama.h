/* A tiny random Llama built in memory for gradient and adapter tests (no file needed):
 * V=40, C=16, H=4, KH=2 (GQA), D=4, F=24, L=2 by default, f32 weights, either RoPE
 * convention, optional q/k/v biases and tied head. Uses the internal model struct. */
#ifndef TK_TESTS_TINY_LLAMA_H
#define TK_TESTS_TINY_LLAMA_H
#include "test.h"
#include "model/llama.h"
#include "core/core.h"

typedef struct tiny_opts {
    int interleaved;  /* RoPE pairs (1) or halves (0) */
    bool bias;        /* q/k/v biases (Qwen2) */
    bool tied;        /* output head = embedding */
    int layers;       /* 0 = 2 */
    uint64_t seed;
} tiny_opts;

static float *tiny_tensor(tk_model *m, tk_tensor_ref *ref, const char *name, int64_t ne0, int64_t ne1, tk_rng *rng,
                          float scale, float offset) {
    int64_t n = ne0 * ne1;
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) p[i] = offset + scale * tk_rng_normal(rng);
    if (tk_model_own(m, p, (size_t)n * sizeof(float))) { free(p); return NULL; }
    memset(ref, 0, sizeof *ref);
    ref->name = name;
    ref->dtype = TK_F32;
    ref->n_dims = ne1 > 1 ? 2 : 1;
    ref->ne[0] = ne0;
    ref->ne[1] = ne1;
    ref->ne[2] = ref->ne[3] = 1;
    ref->data = p;
    ref->nbytes = (size_t)n * sizeof(float);
    return p;
}

static tk_model *tiny_llama(tiny_opts o) {
    tk_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    tk_model_config *c = &m->cfg;
    snprintf(c->arch, sizeof c->arch, "llama");
    snprintf(c->name, sizeof c->name, "tiny");
    c->n_vocab = 40; c->dim = 16; c->n_layers = o.layers ? o.layers : 2; c->n_heads = 4; c->n_kv_heads = 2;
    c->head_dim = 4; c->hidden_dim = 24; c->max_seq = 64; c->rms_eps = 1e-5f; c->rope_theta = 10000.0f;
    c->rope_interleaved = o.interleaved; c->tied_embeddings = o.tied; c->qkv_bias = o.bias;
    m->format = "test";
    m->w.layers = calloc((size_t)c->n_layers, sizeof *m->w.layers);
    tk_rng rng;
    tk_rng_seed(&rng, o.seed);
    int64_t C = c->dim, QD = 16, KD = 8, F = c->hidden_dim, V = c->n_vocab;
    bool ok = m->w.layers != NULL;
    ok = ok && tiny_tensor(m, &m->w.tok_embd, "token_embd.weight", C, V, &rng, 0.5f, 0.0f);
    for (int l = 0; ok && l < c->n_layers; l++) {
        tk_layer_weights *y = &m->w.layers[l];
        ok = tiny_tensor(m, &y->attn_norm, "attn_norm", C, 1, &rng, 0.1f, 1.0f) &&
             tiny_tensor(m, &y->wq, "wq", C, QD, &rng, 0.3f, 0) && tiny_tensor(m, &y->wk, "wk", C, KD, &rng, 0.3f, 0) &&
             tiny_tensor(m, &y->wv, "wv", C, KD, &rng, 0.3f, 0) && tiny_tensor(m, &y->wo, "wo", QD, C, &rng, 0.3f, 0) &&
             tiny_tensor(m, &y->ffn_norm, "ffn_norm", C, 1, &rng, 0.1f, 1.0f) &&
             tiny_tensor(m, &y->w_gate, "w_gate", C, F, &rng, 0.3f, 0) && tiny_tensor(m, &y->w_up, "w_up", C, F, &rng, 0.3f, 0) &&
             tiny_tensor(m, &y->w_down, "w_down", F, C, &rng, 0.3f, 0);
        if (ok && o.bias)
            ok = tiny_tensor(m, &y->bq, "bq", QD, 1, &rng, 0.2f, 0) && tiny_tensor(m, &y->bk, "bk", KD, 1, &rng, 0.2f, 0) &&
                 tiny_tensor(m, &y->bv, "bv", KD, 1, &rng, 0.2f, 0);
    }
    ok = ok && tiny_tensor(m, &m->w.out_norm, "output_norm", C, 1, &rng, 0.1f, 1.0f);
    if (ok && o.tied) m->w.output = m->w.tok_embd;
    else ok = ok && tiny_tensor(m, &m->w.output, "output.weight", C, V, &rng, 0.3f, 0);
    ok = ok && tk_rope_init(&m->rope, c, c->max_seq) == TK_OK;
    if (!ok) { tk_model_free(m); return NULL; }
    return m;
}

/* A 2 x 8 batch: row 0 packs two examples (positions restart), row 1 ends in padding;
 * targets -1 at segment ends and on padding; mixed loss weights. */
typedef struct tiny_batch {
    int32_t ids[16], pos[16], seg[16], target[16];
    float weight[16];
    tk_batch b;
} tiny_batch;

static void tiny_batch_init(tiny_batch *tb, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int t = 0; t < 16; t++) {
        int r = t / 8, c = t % 8;
        tb->ids[t] = (int32_t)(tk_rng_u64(&rng) % 40);
        if (r == 0) { tb->seg[t] = c < 5 ? 0 : 1; tb->pos[t] = c < 5 ? c : c - 5; }
        else { tb->seg[t] = c < 6 ? 0 : -1; tb->pos[t] = c; }
    }
    for (int t = 0; t < 16; t++) {
        bool last = t % 8 == 7 || tb->seg[t] < 0 || tb->seg[t + 1] != tb->seg[t];
        tb->target[t] = last ? -1 : tb->ids[t + 1];
        tb->weight[t] = (t % 5 == 1) ? 0.0f : (t % 3 == 0 ? 0.5f : 1.0f);
    }
    tb->b.n_rows = 2;
    tb->b.n_cols = 8;
    tb->b.ids = tb->ids;
    tb->b.pos = tb->pos;
    tb->b.seg = tb->seg;
}
#endif
