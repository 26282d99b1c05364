/* Batched generation: many sequences decoded together, each with its own KV cache — the
 * engine of evaluation (examples/s) and of GRPO's group sampling. Each decode step is one
 * forward over the next token of every live sequence: the linear layers run once over all
 * rows, attention runs per row over that row's cache. Prompts are prefilled one by one
 * (in the chunks tk_session_eval uses) into their caches; consecutive requests with the same
 * prompt (a GRPO group) evaluate it once and copy the cache.
 * Dimension legend and generation parameters as in takumi/model.h. */
#ifndef TAKUMI_GENERATE_BATCH_H
#define TAKUMI_GENERATE_BATCH_H
#include "takumi/model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct tk_gen_request {
    const int32_t *prompt;   /* prompt ids (at least one) */
    int64_t n_prompt;
    uint64_t seed;           /* the sampler's seed for this request (replaces p->sampler.seed) */
} tk_gen_request;

typedef struct tk_gen_result {
    int32_t *ids;            /* sampled ids as tk_generate appends them (a final EOS/end-of-turn included) */
    int64_t n_ids;
    char *text;              /* the decoded continuation (NUL-terminated), without stop strings / EOS */
    tk_gen_stop stop;        /* why this sequence stopped (TK_GEN_STOP_CONTEXT when its context filled) */
} tk_gen_result;

typedef struct tk_gen_batch_stats {
    int64_t n_prompt_tokens, n_generated; /* prompt tokens evaluated, ids sampled (all requests) */
    int64_t n_prompt_reused;              /* prompt tokens copied from an identical prompt's cache instead of evaluated */
    double prefill_s, decode_s;           /* wall time of prompt evaluation and of batched decoding */
    int32_t max_live;                     /* the most sequences decoded together in one step */
} tk_gen_batch_stats;

/* Generates continuations of n prompts with model m and adapters ads[0..n_ads) (as tk_session_set_adapters), up to
   max_batch sequences decoded together (each decode step is one forward over every live sequence's next token, each
   with its own KV cache; finished sequences leave the batch and waiting prompts join it). p's sampler settings apply to
   every request, its seed replaced by the request's seed. Results (ids as tk_generate appends them, text without
   stop strings/EOS) in results[0..n), freed with tk_gen_result_free. Greedy results equal tk_generate's token for
   token. Not thread-safe with other uses of the same adapters' workspaces; m may be shared read-only.
   Each sequence's context is the model's (tk_model_params.n_ctx); one that fills it stops with TK_GEN_STOP_CONTEXT
   (a prompt longer than the context: no ids, empty text) while the others go on. p NULL = tk_gen_default_params();
   stats may be NULL. Bad arguments (no model/tokenizer, n < 0, max_batch < 1, an empty prompt or an id outside the
   vocabulary, an empty stop string, a bad adapter list) and failures return a status with every result empty. */
tk_status tk_generate_batch(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads,
                            const tk_gen_request *reqs, int32_t n, const tk_gen_params *p, int32_t max_batch,
                            tk_gen_result *results, tk_gen_batch_stats *stats);
/* Frees a result's ids and text and zeroes it; accepts NULL and zeroed results. Thread-safe for distinct results. */
void tk_gen_result_free(tk_gen_result *r);

/* ---- Continuous batching: the engine of tk_generate_batch and of `takumi serve` ----
 * Rows join and leave between steps. A step samples every row whose logits the last step computed, prefills
 * waiting prompts (the chunks of tk_session_eval, so a cache holds what a session's would) within a token budget
 * while other rows decode, and runs one decode forward over every row that has a next token: the base products
 * once over all rows, each row's adapter products on its own row (rows whose adapters have an attention or
 * input-embedding prefix decode in a forward per distinct adapter list). TK_MATMUL_ROWWISE: every row's ids equal
 * tk_generate's in a fresh session with its adapters, params and seed, whatever the other rows. */
typedef struct tk_batcher tk_batcher;
/* The log-probabilities of one sampled position: log-softmax of the model's raw logits (before penalties,
   temperature, top-k/top-p/min-p: vLLM's "raw logprobs", what OpenAI reports), the normaliser in double. */
#define TK_MAX_TOP_LOGPROBS 20
typedef struct tk_token_logprobs {
    int32_t id;                                /* the sampled id */
    double logprob;                            /* its log-probability */
    int32_t n_top;                             /* entries in top_id / top_logprob */
    int32_t top_id[TK_MAX_TOP_LOGPROBS];       /* the most likely ids, most likely first (ties: the lower id first) */
    double top_logprob[TK_MAX_TOP_LOGPROBS];
} tk_token_logprobs;
typedef struct tk_batch_done {
    tk_status status;        /* TK_OK, or why the row failed (message in tk_last_error() during the call) */
    tk_gen_stop stop;        /* why it stopped (TK_GEN_STOP_CALLBACK: on_text returned false) */
    const int32_t *ids;      /* the sampled ids as tk_generate appends them; valid during the call */
    int64_t n_ids;
    int64_t n_prompt;        /* prompt tokens */
} tk_batch_done;
typedef struct tk_batch_row {
    const int32_t *prompt;           /* copied by tk_batcher_add */
    int64_t n_prompt;
    const tk_gen_params *p;          /* copied (sampler, seed, max_tokens, stop_at_eos); its stop strings must outlive the row */
    const tk_adapter_use *ads;       /* copied; the adapters themselves must outlive the row */
    int n_ads;
    tk_gen_text_fn on_text;          /* emitted text as tk_generate's callback (NULL: none); false ends the row */
    /* NULL: no log-probabilities computed (no cost); else called with each sampled id's (and its top_logprobs most
       likely, 0..TK_MAX_TOP_LOGPROBS) before the id's text reaches on_text */
    void (*on_logprobs)(void *ud, const tk_token_logprobs *lp);
    int32_t top_logprobs;
    void (*on_done)(void *ud, const tk_batch_done *d); /* called once when the row ends (required) */
    void *ud;
} tk_batch_row;

/* A batcher of up to max_rows rows over model m; prefill_budget: prompt tokens evaluated per step while some row
   decodes (0 = no limit; at least one chunk is evaluated per step); exact: f32 activations (a default session's);
   false: int8 activations in the quantized products, as a session after tk_session_set_exact(s, false) (`takumi
   generate --fast`, llama.cpp's way), whose answers the rows then equal. Free with tk_batcher_free. */
tk_status tk_batcher_new(tk_model *m, const tk_tokenizer *tok, int32_t max_rows, int64_t prefill_budget, bool exact, tk_batcher **out);
/* Ends every row left (on_done with TK_ERR_INTERNAL: nobody stepped them to the end) and frees the batcher; NULL is a no-op. Not thread-safe. */
void tk_batcher_free(tk_batcher *b);
/* Adds a row (checked: a non-empty prompt of ids in the vocabulary, stop strings, adapters); TK_ERR_RANGE when every
   row is taken. on_done is not called for a refused row. A prompt longer than the context ends at the next step with
   TK_GEN_STOP_CONTEXT and no ids. Not thread-safe (one thread drives a batcher). */
tk_status tk_batcher_add(tk_batcher *b, const tk_batch_row *row);
/* One step (see above); on_text and on_done run on the caller's thread during it. A failed forward ends every row
   with its status (on_done) and returns it; the batcher stays usable. Not thread-safe. */
tk_status tk_batcher_step(tk_batcher *b);
/* Rows in the batch (prefilling or decoding) and rows free. Not thread-safe with a step. */
int32_t tk_batcher_rows(const tk_batcher *b);
int32_t tk_batcher_free_rows(const tk_batcher *b);
/* Rows of the last step's decode forwards; the totals since creation (max_live: the most rows of one step). */
int32_t tk_batcher_last_rows(const tk_batcher *b);
void tk_batcher_stats(const tk_batcher *b, tk_gen_batch_stats *out);

#ifdef __cplusplus
}
#endif
#endif
