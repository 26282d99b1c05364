/* Preference pairs as the trainer sees them (objectives dpo, orpo, simpo, reward; src/objective/dpo.h,
 * reward.h), and KTO's labelled examples in the same two-sequence layout (kto.h).
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

/* KTO: reads, validates and tokenizes every KTO record of path (p->format auto or kto) into units
 * of two sequences like pairs: the example (prompt + completion, rendered with the chat template;
 * TK_MASK_DESIRABLE on its token 0 when labelled true), then its KL sequence (TK_MASK_START on its
 * first token): the example's prompt tokens followed by the completion tokens (and their loss
 * marks) of the previous example of its group, cyclically, the groups being p->kl_group
 * consecutive examples in file order (TRL's add_kl_completion_ids over per_device_train_batch_size
 * examples), cut to max_seq. Examples whose completion is cut away entirely are skipped (TRL drops
 * those whose prompt fills max_length) before the groups are formed. A record whose label is not a
 * boolean fails the load with the file, line and reason. */
tk_status tk_kto_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out);

/* A micro-batch of pairs: the rows of tk_batch_buf (ids, pos, seg, target; every packed
 * sequence is its own segment) plus what the objective reads. Sequences are numbered in row
 * order; pair g of the batch is sequences 2g (chosen) and 2g + 1 (rejected). */
typedef struct tk_pair_buf {
    tk_batch_buf bb;
    int32_t *seq;          /* [B x T] sequence whose completion the row's target belongs to, else -1 */
    float *weight;         /* [B x T] 1 on every target row of a chosen sequence (prompt too: ORPO's NLL), else 0 */
    int32_t *group;        /* [S] pair of each sequence within the batch */
    int32_t *pool;         /* [B x T] sequence whose last token the row holds, else -1 (a reward model's pooled rows) */
    float *value;          /* [S] 1 chosen, 0 rejected (KTO: tk_kto_fill's values) */
    int64_t *example;      /* [G] the pair's example index in the data */
    size_t cap, cap_seq;
    int32_t n_seq, n_pairs;
} tk_pair_buf;

/* Fills pb with rows [r0, r0 + n) of r (rows of pairs of d). Reentrant per buffer. */
tk_status tk_pair_fill(tk_pair_buf *pb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n);
/* The same for KTO units (tk_kto_load): sequence 2g is example g (value 1 desirable, 0 undesirable),
 * 2g + 1 its KL sequence (value -1). */
tk_status tk_kto_fill(tk_pair_buf *pb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n);
void tk_pair_buf_free(tk_pair_buf *pb);
/* Number of examples (pairs) in rows [r0, r0 + n) of r. */
int64_t tk_rows_examples(const tk_rows *r, int64_t r0, int64_t n);
#endif
