/* The training step (see step.h): a training context owns the forward activations
 * (kept per layer), the backward workspace and the trainable parameters, and runs
 * forward -> chunked LM head + cross-entropy -> backward, accumulating gradients.
 * Full fine-tuning dequantizes every trainable weight once into an f32 master copy and
 * points the model's weight refs at it, so the forward, the backward and AdamW all see
 * the same buffer; frozen weights (LoRA's base, layers below freeze_layers) stay in their
 * stored dtype and only pass input gradients through. */
#include "train/step.h"
#include "peft/registry.h"
#include "objective/objective.h"
#include "model/backward.h"
#include "model/arch.h"
#include "model/llama.h"
#include "model/hfconfig.h"
#include "backend/backend.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

struct tk_train_ctx {
    tk_model *m;
    tk_train_params p;
    tk_acts a;
    tk_bwd_ws ws;
    tk_param_set ps;
    /* what is trainable: an adapter of a PEFT kind (src/peft/registry.h) and/or the base weights */
    const tk_peft_kind *kind;    /* NULL: no adapter */
    tk_peft *adapter;
    bool train_base;             /* f32 master copies of the base weights of layers >= freeze_layers */
    tk_model_grads g;
    tk_layer_grads *lg;          /* [L] */
    tk_weights saved_w;          /* full FT: the original refs, restored at free */
    tk_layer_weights *saved_layers;
    uint64_t counter;
    tk_status (*layer_done)(void *ctx, int32_t layer);   /* tk_train_set_layer_done */
    void *layer_done_ctx;
    tk_objective *obj;           /* the loss on the final hidden states (SFT unless the params name another) */
    tk_acts ref;                 /* reference forward workspace (no adapters), made on first use */
    bool ref_ready;
    tk_layer_weights *ref_swap;  /* full FT: the master layer refs while the reference runs ([L], made with ref) */
    const tk_batch *cur;         /* recompute: the batch of the step in progress */
    int32_t slot_layer;          /* recompute: the layer whose activations the single slots hold */
    tk_train_timing timing;
    float *eval_logits, *eval_h; /* eval chunk buffers [R x V], [R x C] */
    int64_t eval_rows;
};

tk_train_params tk_train_default_params(void) {
    tk_train_params p;
    memset(&p, 0, sizeof p);
    p.method = TK_TRAIN_LORA;
    p.lora = tk_lora_default_config();
    p.max_rows = 1;
    p.max_cols = 512;
    return p;
}

/* Adds an f32 master copy of *ref as parameter `name` and points *ref at it; the
 * gradient buffer goes to *grad. */
static tk_status add_master(tk_train_ctx *tc, tk_tensor_ref *ref, const char *key, int layer, bool decay, float **grad) {
    char name[160];
    if (!tk_arch_hf_weight_name(tk_arch_by_name(tc->m->cfg.arch), name, sizeof name, key, layer))
        return tk_fail(TK_ERR_ARG, "full fine-tuning: no HF name for %s (layer %d)", key, layer);
    int64_t ne[TK_MAX_DIMS];
    int nd = ref->n_dims < 1 ? 1 : ref->n_dims;
    for (int i = 0; i < nd; i++) ne[i] = ref->ne[i];
    tk_param *p;
    tk_status st = tk_params_add(&tc->ps, name, nd, ne, NULL, decay, &p);
    if (st) return st;
    int64_t n = p->n;
    if (tk_tensor_nelems(ref) != n) return tk_fail(TK_ERR_ARG, "full fine-tuning: %s has an unexpected shape", name);
    if ((st = tk_dequantize(ref->dtype, ref->data, p->w, n))) return tk_fail_ctx(st, "full fine-tuning: %s: ", name);
    ref->dtype = TK_F32;
    ref->data = p->w;
    ref->nbytes = (size_t)n * sizeof(float);
    *grad = p->g;
    return TK_OK;
}

static tk_status setup_full(tk_train_ctx *tc) {
    tk_model *m = tc->m;
    const tk_model_config *c = &m->cfg;
    tk_weights *w = &m->w;
    int32_t L = c->n_layers, N = tc->p.freeze_layers;
    tc->saved_w = *w;
    tc->saved_layers = tk_malloc((size_t)L * sizeof *tc->saved_layers);
    if (!tc->saved_layers) return TK_ERR_NOMEM;
    memcpy(tc->saved_layers, w->layers, (size_t)L * sizeof *tc->saved_layers);
    tk_status st;
    bool tied = c->tied_embeddings || w->output.data == w->tok_embd.data;
    if (N == 0) {
        if ((st = add_master(tc, &w->tok_embd, "token_embd.weight", -1, true, &tc->g.tok_embd))) return st;
        if (tied) {
            w->output = w->tok_embd; /* one parameter; its gradient sums the head's and the embedding's */
            tc->g.output = tc->g.tok_embd;
        }
    }
    for (int32_t l = N; l < L; l++) {
        tk_layer_weights *y = &w->layers[l];
        tk_layer_grads *g = &tc->lg[l];
        /* absent weights (a family's fused or optional tensors) have data NULL and no parameter */
        const struct { tk_tensor_ref *r; const char *key; bool decay; float **g; } ws[] = {
            {&y->attn_norm, "attn_norm.weight", false, &g->attn_norm},
            {&y->wq, c->fused_qkv ? "attn_qkv.weight" : "attn_q.weight", true, &g->wq},
            {&y->bq, "attn_q.bias", false, &g->bq},
            {&y->wk, "attn_k.weight", true, &g->wk},
            {&y->bk, "attn_k.bias", false, &g->bk},
            {&y->wv, "attn_v.weight", true, &g->wv},
            {&y->bv, "attn_v.bias", false, &g->bv},
            {&y->q_norm, "attn_q_norm.weight", false, &g->q_norm},
            {&y->k_norm, "attn_k_norm.weight", false, &g->k_norm},
            {&y->wo, "attn_output.weight", true, &g->wo},
            {&y->post_attn_norm, "post_attention_norm.weight", false, &g->post_attn_norm},
            {&y->ffn_norm, "ffn_norm.weight", false, &g->ffn_norm},
            {&y->w_gate, "ffn_gate.weight", true, &g->w_gate},
            {&y->w_up, "ffn_up.weight", true, &g->w_up},
            {&y->w_down, "ffn_down.weight", true, &g->w_down},
            {&y->post_ffn_norm, "post_ffw_norm.weight", false, &g->post_ffn_norm},
        };
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i].r->data && (st = add_master(tc, ws[i].r, ws[i].key, l, ws[i].decay, ws[i].g))) return st;
    }
    if ((st = add_master(tc, &w->out_norm, "output_norm.weight", -1, false, &tc->g.out_norm))) return st;
    /* a tied head is the embedding: trainable only when the embedding is (N == 0, done above) */
    if (!tied && (st = add_master(tc, &w->output, "output.weight", -1, true, &tc->g.output))) return st;
    return TK_OK;
}

static void restore_full(tk_train_ctx *tc) {
    if (!tc->saved_layers) return;
    tk_weights *w = &tc->m->w;
    memcpy(w->layers, tc->saved_layers, (size_t)tc->m->cfg.n_layers * sizeof *w->layers);
    w->tok_embd = tc->saved_w.tok_embd;
    w->out_norm = tc->saved_w.out_norm;
    w->output = tc->saved_w.output;
    free(tc->saved_layers);
    tc->saved_layers = NULL;
}

/* Tells the trained adapter (if any) whether a training forward+backward runs, with the step counter. */
static void set_training(tk_train_ctx *tc, bool on) {
    if (tc->adapter && tc->adapter->method->set_training) tc->adapter->method->set_training(tc->adapter->state, on, tc->counter);
}

/* Activation recomputation: before layer l's backward, re-run its forward from the kept
 * input (the top layer's activations are still in the slots after the forward). */
static tk_status recompute_layer(void *ctx, int32_t l) {
    tk_train_ctx *tc = ctx;
    if (tc->slot_layer == l) return TK_OK;
    tk_status st = tk_llama_forward_layers(tc->m, &tc->a, tc->cur, l, l + 1);
    tc->slot_layer = st ? -1 : l;
    return st;
}

/* The backward of the workspace's adapters, last applied first: linear contributions ... */
static tk_status ads_linear_bwd(void *ctx, int32_t layer, tk_linear_id which, const float *x, const float *dy, float *dx, int64_t n) {
    tk_train_ctx *tc = ctx;
    const tk_acts *a = &tc->a;
    for (int i = a->n_ads - 1; i >= 0; i--) {
        const tk_peft *p = a->ads[i].peft;
        const tk_peft_method *md = p->method;
        if (!md->linear_bwd || (md->has_linear && !md->has_linear(p->state, layer, which))) continue;
        tk_peft_call c = {.scale = a->ads[i].scale, .training = true, .scratch = &tc->a.scratch};
        tk_status st = md->linear_bwd(p->state, &c, layer, which, tk_model_linear(tc->m, layer, which), x, dy, dx, n);
        if (st) return st;
    }
    return TK_OK;
}

/* ... and block-output transforms (in place on dh). */
static tk_status ads_block_bwd(void *ctx, int32_t layer, tk_block_site site, float *dh, int64_t n) {
    tk_train_ctx *tc = ctx;
    const tk_acts *a = &tc->a;
    for (int i = a->n_ads - 1; i >= 0; i--) {
        const tk_peft *p = a->ads[i].peft;
        const tk_peft_method *md = p->method;
        if (!md->block_bwd || !md->has_block || !md->has_block(p->state, layer, site)) continue;
        tk_peft_call c = {.scale = a->ads[i].scale, .training = true, .scratch = &tc->a.scratch};
        tk_status st = md->block_bwd(p->state, &c, layer, site, dh, n);
        if (st) return st;
    }
    return TK_OK;
}

/* ... and attention prefixes: dk/dv [P x KH*D] of the concatenated prefix, split per adapter in list order
 * (each adapter's share is its attn_prefix's P, as in tk_acts_prefix). */
static tk_status ads_prefix_bwd(void *ctx, int32_t layer, const float *dk, const float *dv, int64_t P) {
    tk_train_ctx *tc = ctx;
    const tk_acts *a = &tc->a;
    int64_t kvd = (int64_t)tc->m->cfg.n_kv_heads * tc->m->cfg.head_dim, off = 0;
    for (int i = 0; i < a->n_ads; i++) {
        const tk_peft *p = a->ads[i].peft;
        const tk_peft_method *md = p->method;
        if (!md->attn_prefix) continue;
        tk_peft_call c = {.scale = a->ads[i].scale, .training = true, .scratch = &tc->a.scratch};
        const float *k = NULL, *v = NULL;
        int64_t n = md->attn_prefix(p->state, &c, layer, &k, &v);
        if (n <= 0) continue;
        if (off + n > P) return tk_fail(TK_ERR_ARG, "adapter %d (%s) on layer %d: its attention prefix changed since the forward", i, md->name, layer);
        if (md->attn_prefix_bwd) {
            tk_status st = md->attn_prefix_bwd(p->state, &c, layer, dk + off * kvd, dv + off * kvd);
            if (st) return st;
        }
        off += n;
    }
    return TK_OK;
}

/* ... and the input-embedding prefix (virtual tokens): de [P x C] to the adapter that gave the rows. */
static tk_status ads_embed_bwd(void *ctx, const float *de, int64_t P) {
    tk_train_ctx *tc = ctx;
    const tk_acts *a = &tc->a;
    const tk_peft *p = a->ads[a->vt.ad].peft;
    if (!p->method->embed_prefix_bwd || P != a->vt.P) return TK_OK;
    tk_peft_call c = {.scale = a->ads[a->vt.ad].scale, .training = true, .scratch = &tc->a.scratch};
    return p->method->embed_prefix_bwd(p->state, &c, de);
}

/* The adapter side of the backward for the workspace's adapter list (NULL when empty). */
static tk_adapter_bwd ads_bwd(tk_train_ctx *tc, bool *any) {
    tk_adapter_bwd ad = {.linear = ads_linear_bwd, .block = NULL, .ctx = tc};
    for (int i = 0; i < tc->a.n_ads; i++) {
        if (tc->a.ads[i].peft->method->block_bwd) ad.block = ads_block_bwd;
        if (tc->a.ads[i].peft->method->attn_prefix_bwd) ad.attn_prefix = ads_prefix_bwd;
        if (tc->a.ads[i].peft->method->embed_prefix_bwd) ad.embed_prefix = ads_embed_bwd;
    }
    *any = tc->a.n_ads > 0;
    return ad;
}

tk_status tk_train_ctx_new(tk_model *m, const tk_train_params *params, tk_train_ctx **out) {
    *out = NULL;
    if (!m || !params) return tk_fail(TK_ERR_ARG, "train: NULL argument");
    const tk_model_config *c = &m->cfg;
    tk_train_params p = *params;
    if (p.method < TK_TRAIN_LORA || p.method > TK_TRAIN_ADALORA) return tk_fail(TK_ERR_ARG, "train: unknown method %d", (int)p.method);
    if (p.freeze_layers < 0 || p.freeze_layers >= c->n_layers)
        return tk_fail(TK_ERR_ARG, "train: freeze_layers %d must be in [0, %d) (the model has %d layers)", p.freeze_layers,
                       c->n_layers, c->n_layers);
    if (p.max_rows <= 0 || p.max_cols <= 0) return tk_fail(TK_ERR_ARG, "train: batch shape %d x %d", p.max_rows, p.max_cols);
    tk_train_ctx *tc = tk_calloc(1, sizeof *tc);
    if (!tc) return TK_ERR_NOMEM;
    tc->m = m;
    tc->p = p;
    int flags = p.recompute ? TK_ACTS_RECOMPUTE : TK_FWD_KEEP_ACTS | (p.keep_att_probs ? TK_FWD_KEEP_ATT_PROBS : 0);
    tk_status st = tk_acts_init(&tc->a, m, p.max_rows, p.max_cols, flags);
    if (!st) {
        tc->a.mm_flags = TK_MATMUL_EXACT; /* smooth in x: gradients and losses independent of the batch shape */
        st = tk_bwd_ws_init(&tc->ws, m, (int64_t)p.max_rows * p.max_cols);
    }
    if (!st) {
        tc->lg = tk_calloc((size_t)c->n_layers, sizeof *tc->lg);
        if (!tc->lg) st = TK_ERR_NOMEM;
    }
    tc->g.layers = tc->lg;
    tc->g.stop_layer = p.freeze_layers;
    /* the methods are shorthands for what trains: LoRA = a "lora" adapter on a frozen base,
     * full = the base weights themselves (both from layer freeze_layers up) */
    const void *kind_cfg = NULL;
    if (p.method == TK_TRAIN_LORA || p.method == TK_TRAIN_DORA) {
        tc->kind = tk_peft_kind_find(p.method == TK_TRAIN_DORA ? "dora" : "lora");
        tc->p.lora.first_layer = p.freeze_layers;
        kind_cfg = &tc->p.lora;
    }
    if (p.method == TK_TRAIN_IA3 || p.method == TK_TRAIN_PREFIX || p.method == TK_TRAIN_PROMPT) {
        tc->kind = tk_peft_kind_find(p.method == TK_TRAIN_IA3 ? "ia3" : p.method == TK_TRAIN_PREFIX ? "prefix" : "prompt");
        kind_cfg = p.peft_cfg;
    }
    if (p.method == TK_TRAIN_ADAPTER || p.method == TK_TRAIN_ADALORA) {
        tc->kind = tk_peft_kind_find(p.method == TK_TRAIN_ADAPTER ? "adapter" : "adalora");
        kind_cfg = p.peft_cfg;
    }
    if (p.peft_kind) {
        tc->kind = p.peft_kind;
        kind_cfg = p.peft_cfg;
    }
    tc->train_base = p.method == TK_TRAIN_FULL;
    if (!st && tc->kind) {
        st = tc->kind->create(m, kind_cfg, p.freeze_layers, &tc->ps, &tc->adapter);
        if (!st) {
            tk_adapter_use u = {.peft = tc->adapter, .scale = 1.0f};
            st = tk_acts_set_adapters(&tc->a, &u, 1);
        }
    }
    if (!st && tc->train_base) st = setup_full(tc);
    if (!st) st = tk_objective_new(p.objective ? p.objective : &tk_objective_sft, p.objective_params, &tc->obj);
    /* the objective's own parameters (a reward model's score head): PEFT keys beside an adapter, HF names otherwise */
    if (!st) st = tk_objective_add_params(tc->obj, c->dim, p.lora.seed, tc->adapter ? "base_model.model." : "", &tc->ps);
    if (st) { tk_train_ctx_free(tc); return st; }
    *out = tc;
    return TK_OK;
}

void tk_train_ctx_free(tk_train_ctx *tc) {
    if (!tc) return;
    restore_full(tc);
    if (tc->kind) tc->kind->destroy(tc->adapter);
    tk_params_free(&tc->ps);
    tk_objective_free(tc->obj);
    if (tc->ref_ready) tk_acts_free(&tc->ref);
    free(tc->ref_swap);
    tk_acts_free(&tc->a);
    tk_bwd_ws_free(&tc->ws);
    free(tc->lg);
    free(tc->eval_logits);
    free(tc->eval_h);
    free(tc);
}

tk_param_set *tk_train_param_set(tk_train_ctx *tc) { return &tc->ps; }
tk_lora *tk_train_lora(tk_train_ctx *tc) {
    return tc->adapter && !strcmp(tc->adapter->method->name, "lora") ? tc->adapter->state : NULL;
}
tk_model *tk_train_model(tk_train_ctx *tc) { return tc->m; }
const tk_adapter_use *tk_train_adapters(const tk_train_ctx *tc, int *n) {
    *n = tc->a.n_ads;
    return tc->a.ads;
}
const tk_train_params *tk_train_get_params(const tk_train_ctx *tc) { return &tc->p; }
bool tk_train_qk_permuted(const tk_train_ctx *tc) { return tc->m->cfg.rope_interleaved != 0; }
uint64_t tk_train_counter(const tk_train_ctx *tc) { return tc->counter; }
void tk_train_set_counter(tk_train_ctx *tc, uint64_t counter) { tc->counter = counter; }
tk_train_timing tk_train_last_timing(const tk_train_ctx *tc) { return tc->timing; }

tk_status tk_train_reg_loss(tk_train_ctx *tc, bool grad, double *loss) {
    *loss = 0;
    if (!tc->adapter || !tc->adapter->method->reg_loss) return TK_OK;
    return tc->adapter->method->reg_loss(tc->adapter->state, grad, loss);
}

float *tk_train_extra_state(tk_train_ctx *tc, int64_t *n) {
    *n = 0;
    float *e = tc->adapter && tc->adapter->method->extra_state ? tc->adapter->method->extra_state(tc->adapter->state, n) : NULL;
    if (!e) *n = 0;
    return e;
}

tk_status tk_train_after_update(tk_train_ctx *tc, int64_t step, float grad_scale) {
    if (!tc->adapter || !tc->adapter->method->after_update) return TK_OK;
    return tc->adapter->method->after_update(tc->adapter->state, step, grad_scale);
}

size_t tk_train_bytes(const tk_train_ctx *tc) {
    size_t n = tc->a.bytes + tc->ws.bytes + (size_t)tc->ps.total * 4 * sizeof(float);
    n += (size_t)tc->eval_rows * ((size_t)tc->m->cfg.n_vocab + (size_t)tc->m->cfg.dim) * sizeof(float);
    return n;
}

static tk_status check_batch(const tk_train_ctx *tc, const tk_batch *b, const int32_t *target) {
    if (!b || !b->ids || !target) return tk_fail(TK_ERR_ARG, "train: NULL batch or targets");
    if (b->n_rows <= 0 || b->n_cols <= 0 || b->n_rows > tc->p.max_rows || b->n_cols > tc->p.max_cols)
        return tk_fail(TK_ERR_ARG, "train: batch %d x %d outside the context's %d x %d", b->n_rows, b->n_cols, tc->p.max_rows,
                       tc->p.max_cols);
    return TK_OK;
}

static tk_status layer_done(void *ctx, int32_t layer) {
    tk_train_ctx *tc = ctx;
    return tc->layer_done(tc->layer_done_ctx, layer);
}

void tk_train_set_layer_done(tk_train_ctx *tc, tk_status (*fn)(void *ctx, int32_t layer), void *ctx) {
    tc->layer_done = fn;
    tc->layer_done_ctx = ctx;
}

/* The objective's batch for the policy forward just run on b: extra + T, C, h and the head. */
static tk_obj_batch policy_batch(const tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, tk_lm_head *head) {
    tk_obj_batch ob = *extra;
    ob.T = (int64_t)b->n_rows * b->n_cols;
    ob.C = tc->m->cfg.dim;
    ob.h = tc->a.hn;
    *head = (tk_lm_head){&tc->m->w.output, tc->m->cfg.final_softcap};
    ob.head = head;
    return ob;
}

/* One forward (training mode), the objective on the final hidden states (loss and dh, plus
 * the head's gradient when it trains), then the backward from dh. extra: the objective's
 * inputs besides T, C, h and head (which the step fills). */
static tk_status fwd_obj_bwd(tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, float grad_scale,
                             tk_obj_result *res) {
    set_training(tc, true);
    tk_op_times_reset();
    double t0 = tk_time_s();
    tc->a.training = true;
    tk_status st = tk_llama_forward(tc->m, &tc->a, b, NULL, NULL, 0, NULL);
    double t1 = tk_time_s(), t2 = t1;
    if (!st) {
        tk_lm_head head;
        tk_obj_batch ob = policy_batch(tc, b, extra, &head);
        /* dh goes into the backward workspace's norm-gradient buffer: the backward reads it whole
         * (final norm) before it reuses that buffer for the layers */
        st = tk_objective_loss_and_grad(tc->obj, &ob, grad_scale, tc->ws.dxn, tc->g.output, res);
        t2 = tk_time_s();
    }
    if (!st && tc->p.method != TK_TRAIN_HEAD) {   /* a task head alone: nothing below the final hidden states trains */
        bool any_ad;
        tk_adapter_bwd ad = ads_bwd(tc, &any_ad);
        tk_recompute_hook rc = {.layer = tc->p.recompute ? recompute_layer : NULL, .done = tc->layer_done ? layer_done : NULL, .ctx = tc};
        tc->cur = b;
        tc->slot_layer = tc->m->cfg.n_layers - 1;
        st = tk_llama_backward_hidden(tc->m, &tc->a, &tc->ws, b, tc->ws.dxn, &tc->g, any_ad ? &ad : NULL,
                                      tc->p.recompute || tc->layer_done ? &rc : NULL);
        tc->cur = NULL;
    }
    double t3 = tk_time_s();
    tc->a.training = false;
    set_training(tc, false);
    tc->counter++;
    tc->timing.forward_s = t1 - t0;
    tc->timing.head_s = t2 - t1;
    tc->timing.backward_s = t3 - t2;
    tk_op_times ot = tk_op_times_get();
    tc->timing.gemm_s = ot.gemm_s;
    tc->timing.attention_s = ot.attention_s;
    return st;
}

tk_status tk_train_step_fwd_bwd(tk_train_ctx *tc, const tk_batch *b, const int32_t *target, const float *weight,
                                float grad_scale, double *loss_sum, double *weight_sum) {
    tk_status st = check_batch(tc, b, target);
    if (st) return st;
    if (!(tk_objective_get_ops(tc->obj)->needs & TK_OBJ_NEED_TARGET) || (tk_objective_get_ops(tc->obj)->needs & ~TK_OBJ_NEED_TARGET))
        return tk_fail(TK_ERR_ARG, "train: objective '%s' needs more than targets (use tk_train_step_objective)",
                       tk_objective_get_ops(tc->obj)->name);
    tk_obj_batch extra = {.target = target, .weight = weight};
    tk_obj_result res = {0};
    if ((st = fwd_obj_bwd(tc, b, &extra, grad_scale, &res))) return st;
    if (loss_sum) *loss_sum += res.loss_sum;
    if (weight_sum) *weight_sum += res.norm;
    return TK_OK;
}

static tk_status check_objective_args(const tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, const tk_obj_result *res,
                                      const char *what) {
    if (!b || !b->ids || !extra || !res) return tk_fail(TK_ERR_ARG, "%s: NULL batch, objective inputs or result", what);
    if (b->n_rows <= 0 || b->n_cols <= 0 || b->n_rows > tc->p.max_rows || b->n_cols > tc->p.max_cols)
        return tk_fail(TK_ERR_ARG, "%s: batch %d x %d outside the context's %d x %d", what, b->n_rows, b->n_cols, tc->p.max_rows,
                       tc->p.max_cols);
    return TK_OK;
}

tk_status tk_train_step_objective(tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, float grad_scale,
                                  tk_obj_result *res) {
    tk_status st = check_objective_args(tc, b, extra, res, "train");
    if (st) return st;
    memset(res, 0, sizeof *res);
    return fwd_obj_bwd(tc, b, extra, grad_scale, res);
}

tk_status tk_train_eval_objective(tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, tk_obj_result *res) {
    tk_status st = check_objective_args(tc, b, extra, res, "train eval");
    if (st) return st;
    set_training(tc, false);
    if ((st = tk_llama_forward(tc->m, &tc->a, b, NULL, NULL, 0, NULL))) return st;
    tk_lm_head head;
    tk_obj_batch ob = policy_batch(tc, b, extra, &head);
    return tk_objective_loss_and_grad(tc->obj, &ob, 1.0f, NULL, NULL, res);
}

const tk_objective_ops *tk_train_objective(const tk_train_ctx *tc) { return tk_objective_get_ops(tc->obj); }

tk_status tk_train_policy_hidden(tk_train_ctx *tc, const tk_batch *b, const float **h, tk_lm_head *head) {
    *h = NULL;
    if (!b || !b->ids || b->n_rows <= 0 || b->n_cols <= 0 || b->n_rows > tc->p.max_rows || b->n_cols > tc->p.max_cols)
        return tk_fail(TK_ERR_ARG, "train: policy batch outside the context's %d x %d", tc->p.max_rows, tc->p.max_cols);
    set_training(tc, false);
    tk_status st = tk_llama_forward(tc->m, &tc->a, b, NULL, NULL, 0, NULL);
    if (st) return st;
    *h = tc->a.hn;
    *head = (tk_lm_head){&tc->m->w.output, tc->m->cfg.final_softcap};
    return TK_OK;
}

tk_status tk_train_reference_hidden(tk_train_ctx *tc, const tk_batch *b, const float **h) {
    *h = NULL;
    if (!b || !b->ids || b->n_rows <= 0 || b->n_cols <= 0 || b->n_rows > tc->p.max_rows || b->n_cols > tc->p.max_cols)
        return tk_fail(TK_ERR_ARG, "train: reference batch outside the context's %d x %d", tc->p.max_rows, tc->p.max_cols);
    tk_status st = TK_OK;
    if (!tc->ref_ready) {
        if ((st = tk_acts_init(&tc->ref, tc->m, tc->p.max_rows, tc->p.max_cols, 0))) return st;
        tc->ref.mm_flags = TK_MATMUL_EXACT; /* no adapters: the bare base */
        if (tc->saved_layers && !(tc->ref_swap = tk_malloc((size_t)tc->m->cfg.n_layers * sizeof *tc->ref_swap))) {
            tk_acts_free(&tc->ref);
            return TK_ERR_NOMEM;
        }
        tc->ref_ready = true;
    }
    /* full fine-tuning: the reference is the base as loaded (the mapped weights), not the masters */
    tk_weights *w = &tc->m->w;
    tk_weights cur = *w;
    tk_layer_weights *cur_layers = tc->saved_layers ? tc->ref_swap : NULL;
    int32_t L = tc->m->cfg.n_layers;
    if (cur_layers) {
        memcpy(cur_layers, w->layers, (size_t)L * sizeof *cur_layers);
        memcpy(w->layers, tc->saved_layers, (size_t)L * sizeof *cur_layers);
        w->tok_embd = tc->saved_w.tok_embd;
        w->out_norm = tc->saved_w.out_norm;
        w->output = tc->saved_w.output;
    }
    st = tk_llama_forward(tc->m, &tc->ref, b, NULL, NULL, 0, NULL);
    if (cur_layers) {
        memcpy(w->layers, cur_layers, (size_t)L * sizeof *cur_layers);
        w->tok_embd = cur.tok_embd;
        w->out_norm = cur.out_norm;
        w->output = cur.output;
    }
    if (!st) *h = tc->ref.hn;
    return st;
}

tk_lm_head tk_train_reference_head(const tk_train_ctx *tc) {
    tk_lm_head h = {tc->saved_layers ? &tc->saved_w.output : &tc->m->w.output, tc->m->cfg.final_softcap};
    return h;
}

#define EVAL_CHUNK_FLOATS (2 * 1024 * 1024)

tk_status tk_train_eval(tk_train_ctx *tc, const tk_batch *b, const int32_t *target, const float *weight, tk_eval_sums *acc) {
    tk_status st = check_batch(tc, b, target);
    if (st) return st;
    if (!acc) return tk_fail(TK_ERR_ARG, "train eval: NULL sums");
    set_training(tc, false);
    if ((st = tk_llama_forward(tc->m, &tc->a, b, NULL, NULL, 0, NULL))) return st;
    const tk_tensor_ref *wo = &tc->m->w.output;
    int64_t T = (int64_t)b->n_rows * b->n_cols, C = tc->m->cfg.dim, V = wo->ne[1];
    if (!tc->eval_logits) {
        int64_t R = EVAL_CHUNK_FLOATS / V;
        if (R < 8) R = 8;
        tc->eval_logits = tk_malloc((size_t)R * (size_t)V * sizeof(float));
        tc->eval_h = tk_malloc((size_t)R * (size_t)C * sizeof(float));
        if (!tc->eval_logits || !tc->eval_h) {
            free(tc->eval_logits); free(tc->eval_h);
            tc->eval_logits = tc->eval_h = NULL;
            return tk_fail(TK_ERR_NOMEM, "train eval: out of memory for logits");
        }
        tc->eval_rows = R;
    }
    int64_t R = tc->eval_rows, rows[512];
    if (R > 512) R = 512;
    double lsum = 0, wsum = 0;
    int64_t ncor = 0, ntok = 0;
    int64_t t = 0;
    while (t < T) {
        int64_t r = 0;
        for (; t < T && r < R; t++) {
            if (target[t] < 0 || (weight && weight[t] == 0.0f)) continue;
            if (target[t] >= V) return tk_fail(TK_ERR_RANGE, "train eval: target %d at token %lld is outside the vocabulary (%lld)",
                                               (int)target[t], (long long)t, (long long)V);
            rows[r] = t;
            memcpy(tc->eval_h + r * C, tc->a.hn + t * C, (size_t)C * sizeof(float));
            r++;
        }
        if (!r) break;
        if ((st = tk_matmul_ex(tc->eval_logits, tc->eval_h, wo, r, false, TK_MATMUL_EXACT))) return st;
        for (int64_t i = 0; i < r; i++) { /* fixed order: sums independent of the thread count */
            float *l = tc->eval_logits + i * V;
            int64_t am = 0;
            for (int64_t j = 1; j < V; j++) if (l[j] > l[am]) am = j;
            int32_t tg = target[rows[i]];
            float mx = l[am], lt = l[tg];
            double lse = mx + log((double)tk_vexp_sum(l, l, mx, V));
            double wt = weight ? weight[rows[i]] : 1.0;
            lsum += wt * (lse - lt);
            wsum += wt;
            ncor += am == tg;
            ntok++;
        }
    }
    acc->loss_sum += lsum;
    acc->weight_sum += wsum;
    acc->n_correct += ncor;
    acc->n_tokens += ntok;
    return TK_OK;
}
