/* Continuous batching (contract in include/takumi/generate_batch.h): up to max_rows rows, each
 * in a slot with its own KV cache, sampler, text stream and adapter list. A step:
 *   1. samples every row whose logits the last decode forward computed (tk_generate's loop body);
 *   2. prefills waiting prompts in admission order, in the chunks tk_session_eval uses (the cache
 *      then holds what a session's would, bit for bit), within the token budget while some row
 *      decodes; a prompt done is sampled at once. A prompt equal to the last one evaluated (same
 *      adapters; GRPO's group) copies that slot's cache prefix and logits instead;
 *   3. runs the decode forward (tk_llama_forward_kvs, TK_MATMUL_ROWWISE) over every row with a next
 *      token: rows whose adapters are linear/block methods (LoRA family, IA3, bottleneck…) in one
 *      forward with per-row adapters (tk_acts_set_row_adapters: base products once, each row's adapter
 *      products on its row); rows whose adapters add an attention or embedding prefix in one forward
 *      per distinct list (the prefix enters every row's attention, so such rows cannot share one).
 * Every row's logits equal one-sequence decode's bit for bit, so its ids depend neither on the other
 * rows nor on when it joined. */
#include "takumi/generate_batch.h"
#include "model/llama.h"
#include "infer/gen_text.h"
#include "infer/logprobs.h"
#include "backend/backend.h"
#include "core/core.h"
#include <math.h>

enum { SLOT_FREE, SLOT_PREFILL, SLOT_SAMPLE, SLOT_DECODE };

typedef struct slot {
    int state;
    uint64_t serial;          /* admission order */
    tk_batch_row row;         /* prompt, ads and p point into the slot's own copies */
    tk_gen_params p;
    tk_ivec prompt;
    tk_adapter_use ads[TK_MAX_ADAPTERS];
    bool batchable;           /* its adapters can share a forward with other rows' */
    int64_t n_done;           /* prompt tokens evaluated */
    int32_t next;             /* the sampled id the next decode step evaluates */
    const float *lg;          /* SLOT_SAMPLE: its logits (a row of the step buffer) */
    tk_kv_cache kv;           /* kept across rows (its memory is reused) */
    uint64_t kv_owner;        /* the serial of the row whose prompt kv's prefix holds */
    tk_sampler *smp;
    tk_gen_text gt;
    tk_ivec ids;
    tk_gen_stop stop;
} slot;

struct tk_batcher {
    tk_model *m;
    const tk_tokenizer *tok;
    int32_t V, n_slots;
    int64_t budget;
    uint64_t serial;
    tk_acts pre, dec, grp;    /* prefill (1 x chunk), decode with per-row adapters, decode of a prefix-adapter group */
    slot *slots;
    slot **rows;              /* one decode forward's rows */
    tk_row_adapters *row_ads;
    tk_kv_cache **kvs;
    int32_t *step_ids;
    float *logits;            /* [n_slots x V]: the decode forwards' logits (row i of forward rows at offset) */
    float *work;              /* [V] logits being sampled after a prefill */
    float *lp_work;           /* [V] a copy of the logits being sampled, for a row that asked for log-probabilities */
    tk_token_logprobs lp;
    /* the last prompt evaluated: slot last holds it while last->kv_owner == last_serial */
    slot *last;
    uint64_t last_serial;
    tk_ivec last_prompt;
    tk_adapter_use last_ads[TK_MAX_ADAPTERS];
    int last_n_ads;
    float *last_logits;       /* [V] */
    int32_t last_rows;
    tk_gen_batch_stats st;
};

/* v = p[0..n). */
static tk_status set_ids(tk_ivec *v, const int32_t *p, size_t n) {
    v->len = 0;
    tk_status st = tk_ivec_reserve(v, n);
    if (st) return st;
    memcpy(v->data, p, n * sizeof *p);
    v->len = n;
    return TK_OK;
}

static bool same_ads(const tk_adapter_use *a, int na, const tk_adapter_use *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i].peft != b[i].peft || a[i].scale != b[i].scale) return false;
    return true;
}

/* Ends the row of slot s: flushes its text (unless it stopped on a string or the callback), calls on_done, frees it. */
static void finish(tk_batcher *b, slot *s, tk_status st) {
    if (!st && s->stop != TK_GEN_STOP_STRING && s->stop != TK_GEN_STOP_CALLBACK) st = tk_gen_text_finish(&s->gt, &s->stop);
    tk_batch_done d = {.status = st, .stop = s->stop, .ids = s->ids.data, .n_ids = (int64_t)s->ids.len, .n_prompt = s->row.n_prompt};
    s->row.on_done(s->row.ud, &d);
    tk_sampler_free(s->smp);
    s->smp = NULL;
    tk_gen_text_free(&s->gt);
    s->ids.len = 0;
    s->state = SLOT_FREE;
    (void)b;
}

/* Samples the next id of s from logits (tk_generate's loop body): the row ends (finish) or waits for the decode.
 * A row that asked for log-probabilities gets them (of the raw logits: the sampler may change logits) before the
 * id's text. */
static void sample(tk_batcher *b, slot *s, float *logits) {
    const tk_gen_params *p = &s->p;
    if (s->row.on_logprobs) memcpy(b->lp_work, logits, (size_t)b->V * sizeof(float));
    int32_t id = tk_sampler_sample(s->smp, logits, b->V, s->kv.tokens, (size_t)s->kv.n);
    b->st.n_generated++;
    tk_status st = tk_ivec_push(&s->ids, id);
    if (st) { finish(b, s, st); return; }
    if (s->row.on_logprobs) {
        tk_logprobs_compute(b->lp_work, b->V, id, s->row.top_logprobs, &b->lp);
        s->row.on_logprobs(s->row.ud, &b->lp);
    }
    if (p->stop_at_eos && tk_tokenizer_is_eog(b->tok, id)) s->stop = TK_GEN_STOP_EOS;
    else if ((st = tk_gen_text_push(&s->gt, id, &s->stop))) { finish(b, s, st); return; }
    else if (s->stop != TK_GEN_STOP_MAX_TOKENS) {
    } else if (p->max_tokens > 0 && (int64_t)s->ids.len >= p->max_tokens) {
    } else if (s->kv.n >= s->kv.n_ctx) s->stop = TK_GEN_STOP_CONTEXT;
    else if ((st = tk_kv_reserve(&s->kv, s->kv.n + 1))) { finish(b, s, st); return; }
    else {
        s->next = id;
        s->state = SLOT_DECODE;
        return;
    }
    finish(b, s, TK_OK);
}

tk_status tk_batcher_new(tk_model *m, const tk_tokenizer *tok, int32_t max_rows, int64_t prefill_budget, bool exact, tk_batcher **out) {
    *out = NULL;
    if (!m) return tk_fail(TK_ERR_ARG, "batcher: no model");
    if (!tok) return tk_fail(TK_ERR_ARG, "batcher: the model has no tokenizer");
    if (max_rows < 1) return tk_fail(TK_ERR_ARG, "batcher: max_rows %d (at least 1)", max_rows);
    if (prefill_budget < 0) return tk_fail(TK_ERR_ARG, "batcher: prefill budget %lld (0 = no limit)", (long long)prefill_budget);
    tk_batcher *b = tk_calloc(1, sizeof *b);
    if (!b) return TK_ERR_NOMEM;
    b->m = m;
    b->tok = tok;
    b->V = m->cfg.n_vocab;
    b->n_slots = max_rows;
    b->budget = prefill_budget;
    size_t ns = (size_t)max_rows;
    b->slots = tk_calloc(ns, sizeof *b->slots);
    b->rows = tk_calloc(ns, sizeof *b->rows);
    b->row_ads = tk_calloc(ns, sizeof *b->row_ads);
    b->kvs = tk_calloc(ns, sizeof *b->kvs);
    b->step_ids = tk_calloc(ns, sizeof *b->step_ids);
    b->logits = tk_malloc(ns * (size_t)b->V * sizeof(float));
    b->work = tk_malloc((size_t)b->V * sizeof(float));
    b->lp_work = tk_malloc((size_t)b->V * sizeof(float));
    b->last_logits = tk_malloc((size_t)b->V * sizeof(float));
    tk_status st = TK_OK;
    if (!b->slots || !b->rows || !b->row_ads || !b->kvs || !b->step_ids || !b->logits || !b->work || !b->lp_work || !b->last_logits) st = TK_ERR_NOMEM;
    const int32_t n_ctx = m->cfg.max_seq;
    for (int32_t i = 0; !st && i < max_rows; i++) st = tk_kv_init(&b->slots[i].kv, m, n_ctx);
    if (!st) st = tk_acts_init(&b->pre, m, 1, n_ctx < TK_PREFILL_CHUNK ? n_ctx : TK_PREFILL_CHUNK, 0);
    if (!st) st = tk_acts_init(&b->dec, m, max_rows, 1, 0);
    if (!st) st = tk_acts_init(&b->grp, m, max_rows, 1, 0);
    if (st) { tk_batcher_free(b); return st; }
    const int ex = exact ? TK_MATMUL_EXACT : TK_MATMUL_BF16; /* as tk_session_set_exact: bf16 prefill products where the CPU has them */
    b->pre.mm_flags = ex;                     /* as a session's */
    b->dec.mm_flags = ex | TK_MATMUL_ROWWISE; /* each row as a session's decode */
    b->grp.mm_flags = ex | TK_MATMUL_ROWWISE;
    *out = b;
    return TK_OK;
}

void tk_batcher_free(tk_batcher *b) {
    if (!b) return;
    for (int32_t i = 0; b->slots && i < b->n_slots; i++) {
        slot *s = &b->slots[i];
        if (s->state != SLOT_FREE) {
            s->stop = TK_GEN_STOP_CALLBACK;
            finish(b, s, tk_fail(TK_ERR_INTERNAL, "batcher freed with the row unfinished"));
        }
        tk_kv_free(&s->kv);
        tk_ivec_free(&s->ids);
        tk_ivec_free(&s->prompt);
    }
    tk_acts_free(&b->pre);
    tk_acts_free(&b->dec);
    tk_acts_free(&b->grp);
    tk_ivec_free(&b->last_prompt);
    free(b->slots);
    free(b->rows);
    free(b->row_ads);
    free(b->kvs);
    free(b->step_ids);
    free(b->logits);
    free(b->work);
    free(b->lp_work);
    free(b->last_logits);
    free(b);
}

int32_t tk_batcher_rows(const tk_batcher *b) {
    int32_t n = 0;
    for (int32_t i = 0; i < b->n_slots; i++) n += b->slots[i].state != SLOT_FREE;
    return n;
}
int32_t tk_batcher_free_rows(const tk_batcher *b) { return b->n_slots - tk_batcher_rows(b); }
int32_t tk_batcher_last_rows(const tk_batcher *b) { return b->last_rows; }
void tk_batcher_stats(const tk_batcher *b, tk_gen_batch_stats *out) { *out = b->st; }

tk_status tk_batcher_add(tk_batcher *b, const tk_batch_row *row) {
    if (!row || !row->on_done) return tk_fail(TK_ERR_ARG, "batcher: a row without on_done");
    if (!row->prompt || row->n_prompt < 1) return tk_fail(TK_ERR_ARG, "batcher: an empty prompt");
    for (int64_t t = 0; t < row->n_prompt; t++)
        if (row->prompt[t] < 0 || row->prompt[t] >= b->V)
            return tk_fail(TK_ERR_ARG, "batcher: prompt token %lld: id %d outside the vocabulary [0, %d)", (long long)t, row->prompt[t], b->V);
    tk_gen_params p = row->p ? *row->p : tk_gen_default_params();
    tk_status st = tk_gen_stops_check(&p, "batcher");
    if (st) return st;
    if (row->on_logprobs && (row->top_logprobs < 0 || row->top_logprobs > TK_MAX_TOP_LOGPROBS))
        return tk_fail(TK_ERR_ARG, "batcher: top_logprobs %d (0..%d)", row->top_logprobs, TK_MAX_TOP_LOGPROBS);
    if (row->n_ads < 0 || row->n_ads > TK_MAX_ADAPTERS || (row->n_ads && !row->ads))
        return tk_fail(TK_ERR_ARG, "batcher: %d adapters (at most %d)", row->n_ads, TK_MAX_ADAPTERS);
    for (int i = 0; i < row->n_ads; i++)
        if (!row->ads[i].peft || !row->ads[i].peft->method || !isfinite(row->ads[i].scale))
            return tk_fail(TK_ERR_ARG, "batcher: adapter %d has no method or a non-finite scale", i);
    slot *s = NULL;
    for (int32_t i = 0; i < b->n_slots && !s; i++)
        if (b->slots[i].state == SLOT_FREE) s = &b->slots[i];
    if (!s) return tk_fail(TK_ERR_RANGE, "batcher: all %d rows are taken", b->n_slots);
    if ((st = set_ids(&s->prompt, row->prompt, (size_t)row->n_prompt))) return st;
    tk_sampler_free(s->smp);
    s->smp = NULL;
    if ((st = tk_sampler_new(&p.sampler, b->V, &s->smp))) return st;
    s->p = p;
    s->row = *row;
    s->row.prompt = s->prompt.data;
    s->row.p = &s->p;
    for (int i = 0; i < row->n_ads; i++) s->ads[i] = row->ads[i];
    s->row.ads = s->ads;
    s->batchable = tk_adapters_row_batchable(s->ads, row->n_ads);
    s->serial = ++b->serial;
    s->n_done = 0;
    s->ids.len = 0;
    s->stop = TK_GEN_STOP_MAX_TOKENS;
    tk_gen_text_init(&s->gt, b->tok, row->prompt[row->n_prompt - 1], &s->p, row->on_text, row->ud);
    s->state = SLOT_PREFILL;
    return TK_OK;
}

/* Evaluates the next chunk of s's prompt (or copies the last prompt's cache); when the prompt is done, samples. */
static tk_status prefill_chunk(tk_batcher *b, slot *s, int64_t *evaluated) {
    const int64_t n = s->row.n_prompt;
    if (s->n_done == 0) {
        if (n > s->kv.n_ctx) {
            s->stop = TK_GEN_STOP_CONTEXT;
            finish(b, s, TK_OK);
            return TK_OK;
        }
        if (b->last && b->last->kv_owner == b->last_serial && (int64_t)b->last_prompt.len == n &&
            !memcmp(b->last_prompt.data, s->prompt.data, (size_t)n * sizeof(int32_t)) &&
            same_ads(b->last_ads, b->last_n_ads, s->ads, s->row.n_ads)) {
            tk_status st = tk_kv_copy_prefix(&s->kv, &b->last->kv, (int32_t)n);
            if (st) return st;
            b->st.n_prompt_reused += n;
            if (s != b->last) s->kv_owner = s->serial; /* the same slot (a finished row's) keeps the prompt it holds */
            s->n_done = n;
            memcpy(b->work, b->last_logits, (size_t)b->V * sizeof(float));
            sample(b, s, b->work);
            return TK_OK;
        }
        s->kv.n = 0;
        s->kv_owner = s->serial;
        tk_status st = tk_kv_reserve(&s->kv, (int32_t)n);
        if (st) return st;
    }
    if (!tk_acts_same_adapters(&b->pre, s->ads, s->row.n_ads)) {
        tk_status st = tk_acts_set_adapters(&b->pre, s->ads, s->row.n_ads);
        if (st) return st;
    }
    const int64_t len = n - s->n_done < b->pre.max_cols ? n - s->n_done : b->pre.max_cols;
    const bool last = s->n_done + len == n;
    tk_batch bt = {.n_rows = 1, .n_cols = (int32_t)len, .ids = s->prompt.data + s->n_done};
    int64_t idx = len - 1;
    tk_kv_cache *kv = &s->kv;
    tk_status st = tk_llama_forward(b->m, &b->pre, &bt, kv, last ? &idx : NULL, last ? 1 : 0, b->work);
    if (st) return st;
    s->n_done += len;
    *evaluated += len;
    b->st.n_prompt_tokens += len;
    if (!last) return TK_OK;
    /* this slot now holds the last prompt evaluated */
    memcpy(b->last_logits, b->work, (size_t)b->V * sizeof(float));
    if ((st = set_ids(&b->last_prompt, s->prompt.data, (size_t)n))) { b->last = NULL; return st; }
    for (int i = 0; i < s->row.n_ads; i++) b->last_ads[i] = s->ads[i];
    b->last_n_ads = s->row.n_ads;
    b->last = s;
    b->last_serial = s->serial;
    sample(b, s, b->work);
    return TK_OK;
}

/* One decode forward over rows[0..n) (all batchable: per-row adapters; else one shared prefix-adapter list),
 * logits into out[n x V]. */
static tk_status decode(tk_batcher *b, slot **rows, int32_t n, bool batchable, float *out) {
    tk_acts *a = batchable ? &b->dec : &b->grp;
    tk_status st;
    for (int32_t r = 0; r < n; r++) {
        b->kvs[r] = &rows[r]->kv;
        b->step_ids[r] = rows[r]->next;
        b->row_ads[r] = (tk_row_adapters){rows[r]->ads, rows[r]->row.n_ads};
    }
    if (batchable) st = tk_acts_set_row_adapters(a, b->row_ads, n);
    else st = tk_acts_same_adapters(a, rows[0]->ads, rows[0]->row.n_ads) ? TK_OK : tk_acts_set_adapters(a, rows[0]->ads, rows[0]->row.n_ads);
    if (st) return st;
    tk_batch bt = {.n_rows = n, .n_cols = 1, .ids = b->step_ids};
    st = tk_llama_forward_kvs(b->m, a, &bt, b->kvs, NULL, n, out);
    for (int32_t r = 0; !st && r < n; r++) {
        rows[r]->lg = out + (size_t)r * b->V;
        rows[r]->state = SLOT_SAMPLE;
    }
    return st;
}

/* Ends every row with st (a failed forward leaves their caches in no known state). */
static tk_status fail_all(tk_batcher *b, tk_status st) {
    for (int32_t i = 0; i < b->n_slots; i++)
        if (b->slots[i].state != SLOT_FREE) finish(b, &b->slots[i], st);
    return st;
}

tk_status tk_batcher_step(tk_batcher *b) {
    double t0 = tk_time_s();
    bool decoding = false;
    /* 1. sample the rows the last forward computed */
    for (int32_t i = 0; i < b->n_slots; i++) {
        slot *s = &b->slots[i];
        if (s->state == SLOT_SAMPLE) sample(b, s, (float *)s->lg);
        decoding |= s->state == SLOT_DECODE;
    }
    double t1 = tk_time_s();
    /* 2. prefill in admission order, within the budget while rows decode (at least one chunk) */
    int64_t evaluated = 0;
    for (;;) {
        slot *s = NULL;
        for (int32_t i = 0; i < b->n_slots; i++)
            if (b->slots[i].state == SLOT_PREFILL && (!s || b->slots[i].serial < s->serial)) s = &b->slots[i];
        if (!s || (decoding && b->budget > 0 && evaluated > 0 && evaluated >= b->budget)) break;
        tk_status st = prefill_chunk(b, s, &evaluated);
        if (st) {
            s->stop = TK_GEN_STOP_CALLBACK;
            finish(b, s, st); /* this row alone: the others' caches are untouched */
        }
    }
    double t2 = tk_time_s();
    /* 3. the decode forwards: every batchable row together, then each prefix-adapter list */
    int32_t n = 0;
    for (int32_t i = 0; i < b->n_slots; i++)
        if (b->slots[i].state == SLOT_DECODE && b->slots[i].batchable) b->rows[n++] = &b->slots[i];
    int32_t total = n;
    tk_status st = n ? decode(b, b->rows, n, true, b->logits) : TK_OK;
    for (int32_t i = 0; !st && i < b->n_slots; i++) {
        slot *s0 = &b->slots[i];
        if (s0->state != SLOT_DECODE || s0->batchable) continue;
        int32_t g = 0;
        for (int32_t j = i; j < b->n_slots; j++) {
            slot *s = &b->slots[j];
            if (s->state == SLOT_DECODE && !s->batchable && same_ads(s->ads, s->row.n_ads, s0->ads, s0->row.n_ads)) b->rows[g++] = s;
        }
        st = decode(b, b->rows, g, false, b->logits + (size_t)total * b->V);
        total += g;
    }
    if (st) return fail_all(b, st);
    b->last_rows = total;
    if (total > b->st.max_live) b->st.max_live = total;
    double t3 = tk_time_s();
    b->st.prefill_s += t2 - t1;
    b->st.decode_s += (t1 - t0) + (t3 - t2);
    return TK_OK;
}
