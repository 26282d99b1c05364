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

#ifdef __cplusplus
}
#endif
#endif
