/* Reading records for training and evaluation through the data toolkit: the reader, format
 * detection and per-format validation turn every record into a normalised tk_example; the
 * trainer's loaders (src/train: batch.c for SFT examples, pairs.c for preference pairs, the
 * sample prompts) and the evaluation (src/eval) walk a file with tk_rec_each. Internal to src/. */
#ifndef TK_DATA_RECORDS_H
#define TK_DATA_RECORDS_H
#include "data/data_internal.h"

/* A file (path) or a buffer in memory (buf, len; name for messages). */
typedef struct tk_rec_src { const char *path; const void *buf; size_t len; const char *name; } tk_rec_src;

/* Which formats a walk accepts: SFT formats, preference only, any (SFT, preference, KTO: sample prompts), KTO only,
 * prompts to answer (rft and every format with a prompt: grpo and self-training), classification only (JSONL/JSON
 * records or text<TAB>label TSV lines: the text in msgs[0], the label in label). */
typedef enum tk_rec_kind { TK_REC_SFT = 0, TK_REC_PREFERENCE, TK_REC_ANY, TK_REC_KTO, TK_REC_PROMPTS, TK_REC_CLASSIFY } tk_rec_kind;

/* Called for every valid example; returning non-OK stops reading. */
typedef tk_status (*tk_rec_fn)(void *ud, const tk_example *ex, uint64_t line);

/* Reads every record of s as format *fmt (detected when AUTO; refused with a message naming the
 * file when kind does not accept it), calling fn on valid examples. Invalid records are collected
 * (the first few listed) and fail the read at the end. Reentrant. */
tk_status tk_rec_each(const tk_rec_src *s, tk_data_format *fmt, tk_rec_kind kind, uint64_t *n_records, tk_rec_fn fn, void *ud);

/* A NUL-terminated message list of an example, for tk_chat_render (texts copied; weights kept). */
typedef struct tk_rec_msgs { tk_chat_msg *m; int8_t *w; size_t cap; tk_buf text; } tk_rec_msgs;
/* Fills mb with v[0..n) (roles mapped to chat roles). */
tk_status tk_rec_msgs_set(tk_rec_msgs *mb, const tk_ex_msg *v, size_t n);
void tk_rec_msgs_free(tk_rec_msgs *mb);
#endif
