/* Preference pairs as the trainer sees them (objectives dpo, orpo, simpo; src/objective/dpo.h).
 *
 * A pair is one tk_sft_data example: the chosen sequence (prompt + chosen answer, rendered
 * with the model's chat template) followed by the rejected one (prompt + rejected answer);
 * the first token of the rejected sequence carries TK_MASK_START, and TK_MASK_LOSS marks the
 * completion tokens (the template's target tokens of the answer, as TRL's completion mask),
 * never the prompt. So the SFT machinery serves pairs unchanged: a pair is packed, shuffled,
 * split off for validation and hashed as a whole, and rows never split a pair. Each side is
 * cut to max_seq tokens (keeping its start); a pair whose side has no completion token left
 * is skipped and counted. Internal to src/train/. */
#ifndef TK_TRAIN_PAIRS_H
#define TK_TRAIN_PAIRS_H
#include "train/batch.h"

/* Reads, validates and tokenizes every preference record of path into *out (zeroed first; free
 * with tk_sft_free, also on failure); p->format must be auto or preference. A record whose chosen
 * or rejected answer is missing or empty, or whose two answers are identical, fails the load with
 * the file, line and reason; so does non-preference data. */
tk_status tk_pairs_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out);

/* A micro-batch of pairs: the rows of tk_batch_buf (ids, pos, seg, target; every packed
 * sequence is its own segment) plus what the objective reads. Sequences are numbered in row
 * order; pair g of the batch is sequences 2g (chosen) and 2g + 1 (rejected). */
typedef struct tk_pair_buf {
    tk_batch_buf bb;
    int32_t *seq;          /* [B x T] sequence whose completion the row's target belongs to, else -1 */
    float *weight;         /* [B x T] 1 on every target row of a chosen sequence (prompt too: ORPO's NLL), else 0 */
    int32_t *group;        /* [S] pair of each sequence within the batch */
    float *value;          /* [S] 1 chosen, 0 rejected */
    int64_t *example;      /* [G] the pair's example index in the data */
    size_t cap, cap_seq;
    int32_t n_seq, n_pairs;
} tk_pair_buf;

/* Fills pb with rows [r0, r0 + n) of r (rows of pairs of d). Reentrant per buffer. */
tk_status tk_pair_fill(tk_pair_buf *pb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n);
void tk_pair_buf_free(tk_pair_buf *pb);
/* Number of examples (pairs) in rows [r0, r0 + n) of r. */
int64_t tk_rows_examples(const tk_rows *r, int64_t r0, int64_t n);
#endif
