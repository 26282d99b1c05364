/* Batched generation (contract in include/takumi/generate_batch.h): up to max_batch
 * sequences live at once, each in a slot with its own KV cache, sampler and text stream.
 * A new request's prompt is prefilled alone into its slot's cache (the chunks of
 * tk_session_eval: the cache then holds what a session's would, bit for bit); each decode
 * step is one forward over the next token of every live sequence (tk_llama_forward_kvs)
 * with TK_MATMUL_ROWWISE, so every row's logits equal one-sequence decode's bit for bit
 * and results depend neither on max_batch nor on the order of the requests. A finished
 * sequence leaves its slot to the next waiting request. A request whose prompt equals the
 * last prefilled one (GRPO's group: one prompt, group-size answers) copies that slot's cache
 * prefix and prompt logits instead of evaluating the prompt again: the same numbers, once. */
#include "takumi/generate_batch.h"
#include "model/llama.h"
#include "infer/gen_text.h"
#include "backend/backend.h"
#include "core/core.h"

typedef struct slot {
    int32_t req;          /* request index; -1 when the slot is free */
    int32_t next;         /* the sampled id the next decode step evaluates */
    tk_kv_cache kv;       /* kept across requests (its memory is reused) */
    tk_sampler *smp;
    tk_gen_text gt;
    tk_ivec ids;
    tk_buf text;
    tk_gen_stop stop;
    tk_status text_err;   /* an append to text failed */
    int32_t prompt_req;   /* the request whose prompt kv[0..n_prompt) holds (-1: none) */
} slot;

typedef struct run {
    tk_model *m;
    const tk_tokenizer *tok;
    const tk_gen_request *reqs;
    tk_gen_result *results;
    tk_gen_params p;
    int32_t V;
    tk_acts pre, dec;     /* prefill (1 row x chunk) and decode (max_batch rows x 1) workspaces */
    slot *slots;
    slot **live;          /* live[0..n_live): decode row r is live[r] */
    int32_t n_slots, n_live;
    float *logits;        /* [n_slots x V]: row r belongs to live[r] */
    tk_kv_cache **kvs;
    int32_t *step_ids;
    slot *last;           /* the slot of the last prefilled prompt (request last->prompt_req == last_req) */
    int32_t last_req;
    float *last_logits;   /* [V] its last token's logits */
    tk_gen_batch_stats st;
} run;

static bool append_text(void *ud, const char *t, size_t n) {
    slot *s = ud;
    if (!s->text_err) s->text_err = tk_buf_append(&s->text, t, n);
    return !s->text_err;
}

/* Hands the slot's sequence over to its result and frees the slot. */
static tk_status finish(run *R, slot *s) {
    tk_status st = TK_OK;
    if (s->stop != TK_GEN_STOP_STRING && s->stop != TK_GEN_STOP_CALLBACK) st = tk_gen_text_finish(&s->gt, &s->stop);
    if (!st) st = s->text_err;
    if (!st && !s->text.data) st = tk_buf_append(&s->text, "", 0);
    if (st) return st;
    tk_gen_result *r = &R->results[s->req];
    r->ids = s->ids.data;
    r->n_ids = (int64_t)s->ids.len;
    r->text = s->text.data;
    r->stop = s->stop;
    memset(&s->ids, 0, sizeof s->ids);
    memset(&s->text, 0, sizeof s->text);
    tk_sampler_free(s->smp);
    s->smp = NULL;
    tk_gen_text_free(&s->gt);
    s->req = -1;
    return TK_OK;
}

/* Starts request i in free slot s: prefills its prompt into the slot's cache, the logits of
 * its last token into logits[V]. A prompt longer than the context ends at once (stop CONTEXT). */
static tk_status admit(run *R, slot *s, int32_t i, float *logits, bool *live) {
    const tk_gen_request *q = &R->reqs[i];
    s->req = i;
    s->stop = TK_GEN_STOP_MAX_TOKENS;
    s->text_err = TK_OK;
    tk_gen_text_init(&s->gt, R->tok, q->prompt[q->n_prompt - 1], &R->p, append_text, s);
    *live = false;
    if (q->n_prompt > s->kv.n_ctx) {
        s->stop = TK_GEN_STOP_CONTEXT;
        return finish(R, s);
    }
    tk_sampler_params sp = R->p.sampler;
    sp.seed = q->seed;
    tk_status st = tk_sampler_new(&sp, R->V, &s->smp);
    if (st) return st;
    double t0 = tk_time_s();
    const tk_gen_request *lq = R->last && R->last->prompt_req == R->last_req ? &R->reqs[R->last_req] : NULL;
    if (lq && lq->n_prompt == q->n_prompt && (lq->prompt == q->prompt || !memcmp(lq->prompt, q->prompt, (size_t)q->n_prompt * sizeof *q->prompt))) {
        if ((st = tk_kv_copy_prefix(&s->kv, &R->last->kv, (int32_t)q->n_prompt))) return st;
        memcpy(logits, R->last_logits, (size_t)R->V * sizeof *logits);
        R->st.n_prompt_reused += q->n_prompt;
    } else {
        s->prompt_req = -1;
        s->kv.n = 0;
        if ((st = tk_kv_eval(R->m, &R->pre, &s->kv, q->prompt, q->n_prompt, logits))) return st;
        memcpy(R->last_logits, logits, (size_t)R->V * sizeof *logits);
        R->st.n_prompt_tokens += q->n_prompt;
        R->last = s;
        R->last_req = i;
    }
    s->prompt_req = R->last == s ? R->last_req : i;
    R->st.prefill_s += tk_time_s() - t0;
    *live = true;
    return TK_OK;
}

/* Samples the next id of live sequence s from its logits (tk_generate's loop body); *done
 * when the sequence ended (then it has been handed to its result). */
static tk_status sample(run *R, slot *s, float *logits, bool *done) {
    const tk_gen_params *p = &R->p;
    int32_t id = tk_sampler_sample(s->smp, logits, R->V, s->kv.tokens, (size_t)s->kv.n);
    R->st.n_generated++;
    tk_status st = tk_ivec_push(&s->ids, id);
    if (st) return st;
    *done = true;
    if (p->stop_at_eos && tk_tokenizer_is_eog(R->tok, id)) s->stop = TK_GEN_STOP_EOS;
    else if ((st = tk_gen_text_push(&s->gt, id, &s->stop)) || (st = s->text_err)) return st;
    else if (s->stop != TK_GEN_STOP_MAX_TOKENS) {
    } else if (p->max_tokens > 0 && (int64_t)s->ids.len >= p->max_tokens) {
    } else if (s->kv.n >= s->kv.n_ctx) s->stop = TK_GEN_STOP_CONTEXT;
    else {
        *done = false;
        s->next = id;
        return tk_kv_reserve(&s->kv, s->kv.n + 1);
    }
    return finish(R, s);
}

static tk_status check_args(const tk_model *m, const tk_tokenizer *tok, const tk_gen_request *reqs, int32_t n,
                            const tk_gen_params *p, int32_t max_batch, const tk_gen_result *results) {
    if (!m) return tk_fail(TK_ERR_ARG, "generate_batch: no model");
    if (!tok) return tk_fail(TK_ERR_ARG, "generate_batch: the model has no tokenizer");
    if (n < 0 || (n > 0 && (!reqs || !results)))
        return tk_fail(TK_ERR_ARG, "generate_batch: %d requests without request or result arrays", n);
    if (max_batch < 1) return tk_fail(TK_ERR_ARG, "generate_batch: max_batch %d (at least 1)", max_batch);
    tk_status st = tk_gen_stops_check(p, "generate_batch");
    if (st) return st;
    const int32_t V = m->cfg.n_vocab;
    for (int32_t i = 0; i < n; i++) {
        if (!reqs[i].prompt || reqs[i].n_prompt < 1)
            return tk_fail(TK_ERR_ARG, "generate_batch: request %d has an empty prompt", i);
        for (int64_t t = 0; t < reqs[i].n_prompt; t++)
            if (reqs[i].prompt[t] < 0 || reqs[i].prompt[t] >= V)
                return tk_fail(TK_ERR_ARG, "generate_batch: request %d, prompt token %lld: id %d outside the vocabulary [0, %d)", i,
                               (long long)t, reqs[i].prompt[t], V);
    }
    return TK_OK;
}

static tk_status setup(run *R, const tk_adapter_use *ads, int n_ads, int32_t n, int32_t max_batch) {
    tk_model *m = R->m;
    int32_t n_ctx = m->cfg.max_seq;
    R->n_slots = max_batch < n ? max_batch : n;
    size_t ns = (size_t)R->n_slots;
    R->slots = tk_calloc(ns, sizeof *R->slots);
    R->live = tk_calloc(ns, sizeof *R->live);
    R->kvs = tk_calloc(ns, sizeof *R->kvs);
    R->step_ids = tk_calloc(ns, sizeof *R->step_ids);
    R->logits = tk_malloc(ns * (size_t)R->V * sizeof(float));
    R->last_logits = tk_malloc((size_t)R->V * sizeof(float));
    if (!R->slots || !R->live || !R->kvs || !R->step_ids || !R->logits || !R->last_logits) return TK_ERR_NOMEM;
    for (int32_t i = 0; i < R->n_slots; i++) {
        R->slots[i].req = -1;
        R->slots[i].prompt_req = -1;
        tk_status st = tk_kv_init(&R->slots[i].kv, m, n_ctx);
        if (st) return st;
    }
    tk_status st = tk_acts_init(&R->pre, m, 1, n_ctx < TK_PREFILL_CHUNK ? n_ctx : TK_PREFILL_CHUNK, 0);
    if (!st) st = tk_acts_init(&R->dec, m, R->n_slots, 1, 0);
    if (!st) st = tk_acts_set_adapters(&R->pre, ads, n_ads);
    if (!st) st = tk_acts_set_adapters(&R->dec, ads, n_ads);
    int exact = R->p.exact ? TK_MATMUL_EXACT : TK_MATMUL_BF16; /* as tk_session_set_exact */
    R->pre.mm_flags = exact;                     /* as a session's */
    R->dec.mm_flags = exact | TK_MATMUL_ROWWISE; /* each row as a session's decode */
    return st;
}

static void teardown(run *R) {
    for (int32_t i = 0; R->slots && i < R->n_slots; i++) {
        slot *s = &R->slots[i];
        tk_kv_free(&s->kv);
        tk_sampler_free(s->smp);
        if (s->req >= 0) tk_gen_text_free(&s->gt);
        tk_ivec_free(&s->ids);
        tk_buf_free(&s->text);
    }
    tk_acts_free(&R->pre);
    tk_acts_free(&R->dec);
    free(R->slots);
    free(R->live);
    free(R->kvs);
    free(R->step_ids);
    free(R->logits);
    free(R->last_logits);
}

/* The scheduler: fill free slots from the waiting requests, sample every live sequence,
 * drop the finished ones, one decode step over the rest; until nothing is live or waiting. */
static tk_status generate(run *R, int32_t n) {
    tk_status st;
    int32_t waiting = 0;
    for (;;) {
        for (int32_t i = 0; i < R->n_slots && waiting < n && R->n_live < R->n_slots; i++) {
            slot *s = &R->slots[i];
            if (s->req >= 0) continue;
            bool live;
            if ((st = admit(R, s, waiting++, R->logits + (size_t)R->n_live * R->V, &live))) return st;
            if (live) R->live[R->n_live++] = s;
            else i--; /* the slot is free again: offer it to the next request */
        }
        if (R->n_live == 0) return TK_OK;
        double t0 = tk_time_s();
        int32_t kept = 0;
        for (int32_t r = 0; r < R->n_live; r++) {
            bool done;
            if ((st = sample(R, R->live[r], R->logits + (size_t)r * R->V, &done))) return st;
            if (!done) R->live[kept++] = R->live[r];
        }
        R->n_live = kept;
        if (kept) {
            for (int32_t r = 0; r < kept; r++) {
                R->kvs[r] = &R->live[r]->kv;
                R->step_ids[r] = R->live[r]->next;
            }
            tk_batch b = {.n_rows = kept, .n_cols = 1, .ids = R->step_ids};
            if ((st = tk_llama_forward_kvs(R->m, &R->dec, &b, R->kvs, NULL, kept, R->logits))) return st;
            if (kept > R->st.max_live) R->st.max_live = kept;
        }
        R->st.decode_s += tk_time_s() - t0;
    }
}

tk_status tk_generate_batch(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads,
                            const tk_gen_request *reqs, int32_t n, const tk_gen_params *p, int32_t max_batch,
                            tk_gen_result *results, tk_gen_batch_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (results && n > 0) memset(results, 0, (size_t)n * sizeof *results);
    run R;
    memset(&R, 0, sizeof R);
    R.p = p ? *p : tk_gen_default_params();
    tk_status st = check_args(m, tok, reqs, n, &R.p, max_batch, results);
    if (st) return st;
    if (n == 0) return TK_OK;
    R.m = m;
    R.tok = tok;
    R.reqs = reqs;
    R.results = results;
    R.V = m->cfg.n_vocab;
    st = setup(&R, ads, n_ads, n, max_batch);
    if (!st) st = generate(&R, n);
    teardown(&R);
    if (st) {
        for (int32_t i = 0; i < n; i++) tk_gen_result_free(&results[i]);
        return st;
    }
    if (stats) *stats = R.st;
    return TK_OK;
}

void tk_gen_result_free(tk_gen_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}
