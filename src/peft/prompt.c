/* Prompt tuning (see prompt.h): the method table. The soft prompt is one trainable parameter,
 * E [P x C]; embed_prefix hands its memory to the model (src/model/vtoks.c runs the virtual
 * tokens), embed_prefix_bwd adds the rows' gradient into E's. */
#include "peft/prompt.h"
#include "model/llama.h"
#include "core/core.h"

struct tk_prompt {
    tk_peft peft;
    tk_model *m;
    tk_param_set *ps;
    tk_prompt_config cfg;   /* init_ids / init_text: copies owned here */
    int64_t P, C;
    int64_t ie;             /* the parameter's index in ps */
};

static const tk_peft_method k_prompt_method;

tk_prompt_config tk_prompt_default_config(void) {
    tk_prompt_config c = {.num_virtual_tokens = TK_PROMPT_DEFAULT_TOKENS, .seed = 42};
    return c;
}

/* PEFT's TEXT init: the ids repeated (ceil(P / n) times) and cut to P, their rows of the input embedding. */
static tk_status init_text(tk_prompt *a, float *E) {
    const tk_model_config *mc = &a->m->cfg;
    int32_t n = a->cfg.n_init_ids;
    int32_t *ids = tk_malloc((size_t)a->P * sizeof *ids);
    if (!ids) return TK_ERR_NOMEM;
    for (int64_t p = 0; p < a->P; p++) {
        ids[p] = a->cfg.init_ids[p % n];
        if (ids[p] < 0 || ids[p] >= mc->n_vocab) {
            int32_t bad = ids[p];
            free(ids);
            return tk_fail(TK_ERR_ARG, "prompt: init text token %d outside the vocabulary of %d", bad, mc->n_vocab);
        }
    }
    tk_status st = tk_embedding_forward(E, ids, a->P, &a->m->w.tok_embd);
    free(ids);
    if (st) return st;
    if (mc->embed_scale > 0) /* PEFT reads the model's input-embedding module: Gemma's scale included */
        for (int64_t i = 0; i < a->P * a->C; i++) E[i] *= mc->embed_scale;
    return TK_OK;
}

tk_status tk_prompt_new(tk_model *m, const tk_prompt_config *cfg, tk_param_set *ps, tk_prompt **out) {
    *out = NULL;
    if (!m || !cfg || !ps) return tk_fail(TK_ERR_ARG, "prompt: NULL argument");
    tk_prompt_config c = *cfg;
    if (!c.num_virtual_tokens) c.num_virtual_tokens = TK_PROMPT_DEFAULT_TOKENS;
    const tk_model_config *mc = &m->cfg;
    if (c.num_virtual_tokens < 1) return tk_fail(TK_ERR_ARG, "prompt: %d virtual tokens (at least 1)", c.num_virtual_tokens);
    if (mc->max_seq > 0 && c.num_virtual_tokens >= mc->max_seq)
        return tk_fail(TK_ERR_ARG, "prompt: %d virtual tokens do not fit the model's context of %d tokens (PEFT places the sequence "
                                   "after them)", c.num_virtual_tokens, mc->max_seq);
    if (c.init_ids && c.n_init_ids < 1) return tk_fail(TK_ERR_ARG, "prompt: the init text has no tokens");
    tk_prompt *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    a->peft = (tk_peft){&k_prompt_method, a};
    a->m = m;
    a->ps = ps;
    a->P = c.num_virtual_tokens;
    a->C = mc->dim;
    a->cfg = c;
    a->cfg.init_ids = NULL;
    a->cfg.init_text = NULL;
    tk_status st = TK_OK;
    if (c.init_ids) {
        int32_t *ids = tk_malloc((size_t)c.n_init_ids * sizeof *ids);
        if (ids) memcpy(ids, c.init_ids, (size_t)c.n_init_ids * sizeof *ids);
        a->cfg.init_ids = ids;
        if (!ids) st = TK_ERR_NOMEM;
    }
    if (!st && c.init_text && !(a->cfg.init_text = tk_strdup(c.init_text))) st = TK_ERR_NOMEM;
    tk_param *e = NULL;
    if (!st) {
        int64_t ne[2] = {a->C, a->P};
        if (!(st = tk_params_add(ps, "prompt_encoder.embedding.weight", 2, ne, NULL, true, &e))) a->ie = ps->n - 1;
    }
    if (!st && a->cfg.init_ids) st = init_text(a, e->w);
    else if (!st) {
        tk_rng rng;
        tk_rng_seed(&rng, c.seed);
        for (int64_t i = 0; i < e->n; i++) e->w[i] = tk_rng_normal(&rng); /* nn.Embedding: N(0, 1) */
    }
    if (st) { tk_prompt_free(a); return st; }
    *out = a;
    return TK_OK;
}

void tk_prompt_free(tk_prompt *a) {
    if (!a) return;
    free((void *)a->cfg.init_ids);
    free((void *)a->cfg.init_text);
    free(a);
}

static int64_t prompt_embed(void *state, const tk_peft_call *c, const float **e) {
    tk_prompt *a = state;
    if (c->scale == 0.0f) return 0;
    if (c->scale != 1.0f) {
        tk_fail(TK_ERR_UNSUPPORTED, "prompt tuning has no strength to scale: use the adapter with scale 1 (or 0 to switch it off), not %g",
                (double)c->scale);
        return -1;
    }
    *e = a->ps->p[a->ie].w;
    return a->P;
}

static tk_status prompt_embed_bwd(void *state, const tk_peft_call *c, const float *de) {
    tk_prompt *a = state;
    if (c->scale != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "prompt: training with a request scale other than 1");
    tk_param *E = &a->ps->p[a->ie];
    for (int64_t i = 0; i < E->n; i++) E->g[i] += de[i];
    return TK_OK;
}

static tk_status prompt_save(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_prompt_save_peft(state, m, dir, base_model);
}

/* no merge_linear (virtual tokens are not a weight change) and no save_gguf (llama.cpp has no prompt tuning) */
static const tk_peft_method k_prompt_method = {
    .name = "prompt",
    .embed_prefix = prompt_embed,
    .embed_prefix_bwd = prompt_embed_bwd,
    .save_peft = prompt_save,
};

const tk_peft *tk_prompt_peft(tk_prompt *a) { return &a->peft; }
tk_prompt *tk_prompt_of(const tk_peft *p) { return p && p->method == &k_prompt_method ? p->state : NULL; }
int32_t tk_prompt_tokens(const tk_prompt *a) { return (int32_t)a->P; }
const float *tk_prompt_embeddings(const tk_prompt *a) { return a->ps->p[a->ie].w; }
const tk_prompt_config *tk_prompt_get_config(const tk_prompt *a) { return &a->cfg; }
