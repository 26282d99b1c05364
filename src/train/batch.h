/* Supervised fine-tuning data as the trainer sees it: every example of a dataset file
 * rendered to token ids with the model's chat template plus a per-token loss mask,
 * truncated to a maximum length, then arranged per epoch into rows (shuffled from the
 * seed, optionally packed several examples to a row) and cut into micro-batches with
 * segment ids, restarting positions and shifted targets.
 *
 * Records are read and validated by the data toolkit (src/data: format detection, the
 * OpenAI chat / prompt-completion / Alpaca / ShareGPT / raw-text parsers); a record that
 * fails validation or that the template cannot render fails the load with its line.
 *
 * Loss mask: mask[t] = 1 when token t is one the model must learn to produce: the
 * template's is_target tokens (assistant content and its end-of-turn token), or every
 * token with train_on_prompt; never the tokens of an assistant message with weight 0,
 * never token 0 of an example (nothing precedes it). Raw text trains on every token. */
#ifndef TK_TRAIN_BATCH_H
#define TK_TRAIN_BATCH_H
#include "takumi/data.h"
#include "takumi/model.h"

typedef struct tk_sft_params {
    tk_data_format format;   /* TK_DATA_AUTO: detect from the file */
    tk_chat_family family;   /* template; TK_CHAT_UNKNOWN is refused for conversations */
    int32_t max_seq;         /* examples longer than this are cut to their first max_seq tokens (> 1) */
    bool train_on_prompt;    /* loss on prompt tokens too (weight-0 assistant messages still excluded) */
    int32_t kl_group;        /* KTO (pairs.h): KL pairs are formed within consecutive groups of this many examples (< 2: 8) */
} tk_sft_params;
/* Defaults: auto format, unknown family, max_seq 1024, assistant tokens only. */
tk_sft_params tk_sft_default_params(void);

typedef struct tk_sft_stats {
    uint64_t n_records;    /* records read */
    uint64_t n_examples;   /* examples kept */
    uint64_t n_truncated;  /* examples longer than max_seq (kept or skipped) */
    uint64_t n_skipped;    /* examples with no target token left (after truncation) — not trained on */
    uint64_t targets_cut;  /* target tokens lost by truncation, skipped examples included */
    uint64_t n_tokens;     /* tokens of kept examples */
    uint64_t n_targets;    /* target tokens of kept examples */
    int32_t longest;       /* longest kept example (tokens) */
} tk_sft_stats;

/* Bits of tk_sft_data.mask. */
#define TK_MASK_LOSS 1u    /* loss on this token */
#define TK_MASK_START 2u   /* a second sequence starts here (preference pairs: the rejected one; KTO: the KL one; pairs.h) */
#define TK_MASK_DESIRABLE 4u   /* KTO: on token 0 of an example whose completion is labelled desirable (pairs.h) */

typedef struct tk_sft_data {
    int32_t *ids;          /* all examples' tokens, concatenated */
    uint8_t *mask;         /* [same] TK_MASK_* bits */
    int64_t *off;          /* [n + 1]: example i is ids[off[i] .. off[i + 1]) */
    uint64_t *line;        /* [n] line of the record in its file */
    int64_t n, cap, cap_tok;
    tk_sft_stats stats;
    tk_data_format format;
} tk_sft_data;

/* Reads, validates and tokenizes every record of path into *out (zeroed first; free with
 * tk_sft_free, also on failure). Bad records, unsupported formats (preference,
 * classification) and template refusals fail with the file, line and reason. */
tk_status tk_sft_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out);
/* Same on len bytes of JSONL/JSON in memory; name is used in messages. */
tk_status tk_sft_load_buffer(const void *buf, size_t len, const char *name, const tk_tokenizer *tok,
                             const tk_sft_params *p, tk_sft_data *out);
/* Appends one tokenized example (ids, mask [n]) with truncation and counting as the loader
 * does; an example left without targets is counted as skipped and not added. */
tk_status tk_sft_add(tk_sft_data *d, const int32_t *ids, const uint8_t *mask, int64_t n, int32_t max_seq, uint64_t line);
/* Appends a prompt without targets (the prompt sets of grpo and self-training: ids[0..n), n >= 1, no
 * truncation; counted as an example). */
tk_status tk_sft_add_prompt(tk_sft_data *d, const int32_t *ids, int64_t n, uint64_t line);
void tk_sft_free(tk_sft_data *d);
/* Length of example i in tokens. */
static inline int32_t tk_sft_len(const tk_sft_data *d, int64_t i) { return (int32_t)(d->off[i + 1] - d->off[i]); }
/* 64-bit FNV-style hash of all ids and masks (identifies the tokenized data for resume). */
uint64_t tk_sft_hash(const tk_sft_data *d);
/* Moves a deterministic (seed) choice of round(frac * n) examples (at least 1, at most n - 1)
 * into *val (zeroed first); both keep the file order. Fails for fewer than 2 examples. */
tk_status tk_sft_split(tk_sft_data *d, double frac, uint64_t seed, tk_sft_data *val);

/* A prompt for before/after samples: the conversation up to its last assistant message,
 * rendered with the generation prompt, and that message as the reference answer. */
typedef struct tk_sft_prompt {
    int32_t *ids; int64_t n;
    char *question;        /* the last user (or prompt) message, for display */
    char *reference;       /* the expected answer */
    uint64_t line;
} tk_sft_prompt;
/* Re-reads path and renders the prompts of the records at lines[0..n) (lines as in
 * tk_sft_data.line). Records without an assistant reply are skipped; *out (malloc'd,
 * *n_out entries) is freed with tk_sft_prompts_free. */
tk_status tk_sft_prompts(const char *path, const uint64_t *lines, int32_t n, const tk_tokenizer *tok,
                         const tk_sft_params *p, tk_sft_prompt **out, int32_t *n_out);
void tk_sft_prompts_free(tk_sft_prompt *v, int32_t n);

/* Rows of one epoch: row r holds examples ex[row_off[r] .. row_off[r + 1]) back to back. */
typedef struct tk_rows {
    int64_t n_rows;
    int64_t *row_off;      /* [n_rows + 1] */
    int64_t *ex;           /* example indices, row by row */
    int32_t *row_len;      /* [n_rows] tokens used */
} tk_rows;

/* Arranges examples order[0..n) into rows of at most max_len tokens. Without packing one
 * example per row, in order. With packing, first fit over the (at most 64) most recent
 * rows that still have room, rows in creation order: deterministic, little padding.
 * *out zeroed first; free with tk_rows_free. */
tk_status tk_rows_pack(const tk_sft_data *d, const int64_t *order, int64_t n, int32_t max_len, bool packing, tk_rows *out);
/* The rows of epoch `epoch`: examples shuffled by a Fisher-Yates shuffle seeded from
 * (seed, epoch) when shuffle is set, then tk_rows_pack. */
tk_status tk_rows_epoch(const tk_sft_data *d, uint64_t seed, int64_t epoch, bool shuffle, int32_t max_len, bool packing,
                        tk_rows *out);
void tk_rows_free(tk_rows *r);
/* Target tokens of rows [r0, r0 + n) (the loss weight of a step). */
int64_t tk_rows_targets(const tk_sft_data *d, const tk_rows *r, int64_t r0, int64_t n);

/* A micro-batch with its buffers (grown on demand, reused). */
typedef struct tk_batch_buf {
    int32_t *ids, *pos, *seg, *target;   /* [B x T] */
    size_t cap;
    tk_batch b;                          /* points into the buffers */
    int64_t n_targets;                   /* target >= 0 count */
    int64_t n_tokens;                    /* non-padding tokens */
} tk_batch_buf;
/* Fills bb with rows [r0, r0 + n) of r: T = the longest of those rows; a row's examples get
 * segment ids 0, 1, … and positions restarting at 0; padding has segment -1, id 0,
 * position 0. target[t] = ids[t + 1] when t + 1 is in the same example and has mask 1,
 * else -1 (so the last token of every example and padding have no loss). */
tk_status tk_batch_fill(tk_batch_buf *bb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n);
void tk_batch_buf_free(tk_batch_buf *bb);
#endif
