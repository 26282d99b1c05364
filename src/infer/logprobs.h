/* Log-probabilities of one decode step for the rows that ask (OpenAI's logprobs / top_logprobs): the
 * log-softmax of the model's raw logits at the sampled id and at the k most likely ids, without sorting
 * the vocabulary. */
#ifndef TK_INFER_LOGPROBS_H
#define TK_INFER_LOGPROBS_H
#include "takumi/generate_batch.h"

/* Fills out from logits[0..V) (raw: before temperature or top-p): out->id = id and its log-probability,
 * out->n_top = min(k, V) most likely ids (most likely first, ties: the lower id first) and theirs. One pass keeps
 * the best k (k <= TK_MAX_TOP_LOGPROBS; k < 0 counts as 0), then one exp pass and a double-precision normaliser
 * (tk_softmax_at_sum). NaN logits count as impossible. logits is overwritten (exp(logit - max)). Thread-safe
 * for distinct logits/out. */
void tk_logprobs_compute(float *logits, int32_t V, int32_t id, int32_t k, tk_token_logprobs *out);
#endif
