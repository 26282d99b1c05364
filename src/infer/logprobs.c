/* Log-softmax at the sampled id and the top k (contract in src/infer/logprobs.h). The top k are kept in a
 * small descending array while scanning the vocabulary once: an id enters only when it beats the k-th best,
 * so after the first few hundred ids almost none do (O(V + k * insertions), no sort of V); blocks of 64 ids whose
 * (vectorized) maximum does not beat it are skipped whole. */
#include "infer/logprobs.h"
#include "ops/ops.h"
#include "backend/backend.h"
#include <math.h>

void tk_logprobs_compute(float *logits, int32_t V, int32_t id, int32_t k, tk_token_logprobs *out) {
    if (k < 0) k = 0;
    if (k > TK_MAX_TOP_LOGPROBS) k = TK_MAX_TOP_LOGPROBS;
    if (k > V) k = V;
    float best[TK_MAX_TOP_LOGPROBS];
    int32_t n = 0;
    float mx = -INFINITY;
    /* blocks of 64: a vectorized max (and NaN test) per block; only a block whose max beats the k-th best is scanned */
    for (int32_t b0 = 0; b0 < V; b0 += 64) {
        const int32_t b1 = V - b0 < 64 ? V : b0 + 64;
        float bm = -INFINITY;
        int bad = 0;
        #pragma omp simd reduction(max : bm) reduction(| : bad)
        for (int32_t i = b0; i < b1; i++) {
            bm = logits[i] > bm ? logits[i] : bm;
            bad |= logits[i] != logits[i];
        }
        if (bad)
            for (int32_t i = b0; i < b1; i++)
                if (isnan(logits[i])) logits[i] = -INFINITY;
        if (bm > mx) mx = bm;
        if (k == 0 || (n == k && !(bm > best[k - 1]))) continue;
        for (int32_t i = b0; i < b1; i++) {
            const float l = logits[i];
            if (n == k && !(l > best[k - 1])) continue;
            int32_t at = n < k ? n++ : k - 1; /* the slot freed (the last) or appended, then moved up */
            while (at > 0 && l > best[at - 1]) {
                best[at] = best[at - 1];
                out->top_id[at] = out->top_id[at - 1];
                at--;
            }
            best[at] = l;
            out->top_id[at] = i;
        }
    }
    out->id = id;
    out->n_top = n;
    const float lid = id >= 0 && id < V ? logits[id] : -INFINITY;
    if (mx == -INFINITY) { /* nothing possible: every log-probability is -inf */
        out->logprob = -INFINITY;
        for (int32_t j = 0; j < n; j++) out->top_logprob[j] = -INFINITY;
        return;
    }
    tk_vexp_sum(logits, logits, mx, V); /* logits now hold exp(logit - max) */
    double sum = tk_sum_f64(logits, V);
    out->logprob = lid == -INFINITY ? -INFINITY : tk_softmax_at_sum(sum, logits[id], lid - mx).logp;
    for (int32_t j = 0; j < n; j++)
        out->top_logprob[j] = best[j] == -INFINITY ? -INFINITY : tk_softmax_at_sum(sum, logits[out->top_id[j]], best[j] - mx).logp;
}
