/* Virtual tokens of an input-embedding prefix (takumi/peft.h embed_prefix: prompt tuning) in a
 * forward workspace. The P rows an adapter gives are a sequence of their own: no real token
 * precedes them, so their hidden states, keys and values are the same in front of every
 * sequence. They run once per forward (training) or once per change of the rows (inference,
 * sessions included) through the layers at positions -P..-1, base weights only, in a 1 x P
 * workspace; each layer's keys (after RoPE) and values then join the attention prefix that
 * every non-padding query of the sequence attends to (tk_acts_prefix). The sequence keeps
 * positions 0..T-1: relative positions are those of HF PEFT's virtual tokens at 0..P-1 and
 * sequence at P..P+T-1 (sliding-window layers excepted past window - P tokens: a prefix has no
 * window). The backward (src/model/backward.c) collects the sequence's gradients
 * of those keys/values per layer and runs the virtual tokens' backward with them, down to the
 * gradient of the rows. */
#include "model/llama.h"
#include "core/core.h"

void tk_vtoks_free(tk_vtoks *vt) {
    if (vt->a) tk_acts_free(vt->a);
    free(vt->a);
    free(vt->kv);
    free(vt->emb);
    free(vt->dkv);
    free(vt->ids);
    memset(vt, 0, sizeof *vt);
}

tk_status tk_vtoks_setup(tk_acts *a) {
    int found = -1;
    int64_t P = 0;
    for (int i = 0; i < a->n_ads; i++) {
        const tk_peft *p = a->ads[i].peft;
        if (!p->method->embed_prefix) continue;
        if (found >= 0)
            return tk_fail(TK_ERR_ARG, "adapters %d (%s) and %d (%s) both add virtual tokens before the input (one prompt-tuning adapter at a time)",
                           found, a->ads[found].peft->method->name, i, p->method->name);
        tk_peft_call c = {.scale = a->ads[i].scale, .training = false, .scratch = &a->scratch};
        const float *e = NULL;
        P = p->method->embed_prefix(p->state, &c, &e);
        if (P < 0) return tk_fail_ctx(TK_ERR_ARG, "adapter %d (%s) input-embedding prefix", i, p->method->name);
        found = i;
    }
    tk_vtoks *vt = &a->vt;
    if (found < 0 || P == 0) { tk_vtoks_free(vt); return TK_OK; }
    if (!a->m) return tk_fail(TK_ERR_ARG, "virtual tokens: the workspace has no model");
    if (vt->a && vt->P == P) { vt->ad = found; vt->ready = false; return TK_OK; }
    tk_vtoks_free(vt);
    const tk_model_config *c = &a->m->cfg;
    size_t kvn = (size_t)c->n_layers * 2 * (size_t)P * (size_t)c->n_kv_heads * (size_t)c->head_dim;
    vt->ad = found;
    vt->P = P;
    vt->a = tk_calloc(1, sizeof *vt->a);
    vt->kv = tk_malloc(kvn * sizeof(float));
    vt->emb = tk_malloc((size_t)P * (size_t)c->dim * sizeof(float));
    vt->dkv = a->keep ? tk_malloc(kvn * sizeof(float)) : NULL;
    vt->ids = tk_calloc((size_t)P, sizeof(int32_t));
    tk_status st = TK_OK;
    if (!vt->a || !vt->kv || !vt->emb || !vt->ids || (a->keep && !vt->dkv)) st = tk_fail(TK_ERR_NOMEM, "out of memory for %lld virtual tokens", (long long)P);
    if (!st && (st = tk_acts_init(vt->a, a->m, 1, (int32_t)P, a->keep ? TK_FWD_KEEP_ACTS : 0))) { free(vt->a); vt->a = NULL; }
    if (st) { tk_vtoks_free(vt); return st; }
    for (int64_t p = 0; p < P; p++) vt->a->pos[p] = (int32_t)(p - P);
    return TK_OK;
}

tk_status tk_vtoks_forward(tk_model *m, tk_acts *a) {
    tk_vtoks *vt = &a->vt;
    vt->live = false;
    if (!vt->a) return TK_OK;
    const tk_peft *p = a->ads[vt->ad].peft;
    tk_peft_call c = {.scale = a->ads[vt->ad].scale, .training = a->training, .scratch = &a->scratch};
    const float *e = NULL;
    int64_t P = p->method->embed_prefix(p->state, &c, &e);
    if (P < 0) return tk_fail_ctx(TK_ERR_ARG, "adapter %d (%s) input-embedding prefix", vt->ad, p->method->name);
    if (P == 0) return TK_OK;
    if (P != vt->P || !e)
        return tk_fail(TK_ERR_ARG, "adapter %d (%s): %lld virtual tokens, %lld when the adapters were set", vt->ad, p->method->name,
                       (long long)P, (long long)vt->P);
    const tk_model_config *mc = &m->cfg;
    const size_t rows = (size_t)P * (size_t)mc->dim * sizeof(float);
    const int64_t KD = (int64_t)mc->n_kv_heads * mc->head_dim;
    vt->live = true;
    if (!a->training && vt->ready && !memcmp(vt->emb, e, rows)) return TK_OK;
    vt->ready = false;
    memcpy(vt->emb, e, rows);
    memcpy(vt->a->x, e, rows); /* used as given: no embedding scale */
    /* f32 activations, products as any P-row forward: the same keys/values whichever workspace (session,
     * batched decode with TK_MATMUL_ROWWISE, int8 decode, training) runs them */
    vt->a->mm_flags = TK_MATMUL_EXACT;
    const tk_batch vb = {.n_rows = 1, .n_cols = (int32_t)P, .ids = vt->ids};
    for (int32_t l = 0; l < mc->n_layers; l++) {
        tk_status st = tk_llama_run_layers(m, vt->a, &vb, vt->a->pos, NULL, l, l + 1);
        if (st) { vt->live = false; return tk_fail_ctx(st, "virtual tokens, layer %d", l); }
        float *kv = vt->kv + (int64_t)l * 2 * P * KD;
        memcpy(kv, TK_ACT(vt->a, k, l, s_kv), (size_t)(P * KD) * sizeof(float));
        memcpy(kv + P * KD, TK_ACT(vt->a, v, l, s_kv), (size_t)(P * KD) * sizeof(float));
    }
    vt->ready = true;
    return TK_OK;
}

int64_t tk_vtoks_prefix(const tk_acts *a, int32_t layer, const float **k, const float **v) {
    const tk_vtoks *vt = &a->vt;
    if (!vt->a || !vt->live || layer < 0 || layer >= a->m->cfg.n_layers) return 0;
    int64_t KD = (int64_t)a->m->cfg.n_kv_heads * a->m->cfg.head_dim;
    *k = vt->kv + (int64_t)layer * 2 * vt->P * KD;
    *v = *k + vt->P * KD;
    return vt->P;
}
