/* Prompt sets for the objectives that sample their own answers (grpo, self): every record of a
 * file (OpenAI's reinforcement fine-tuning format: "messages" ending with a user turn plus any
 * fields the graders read; also chat records with a reply, prompt/completion, preference and TSV
 * records — the reply is ignored) rendered up to its last user turn with the generation prompt.
 * Internal to src/train/. */
#ifndef TK_TRAIN_PROMPTS_H
#define TK_TRAIN_PROMPTS_H
#include "train/batch.h"

typedef struct tk_prompt_set {
    tk_sft_data d;        /* rendered prompts, no targets (tk_sft_add_prompt); d.line: their records' lines */
    char **item;          /* [d.n] each record as JSON text: the graders' {{ item.x }} */
    int64_t n_long;       /* prompts left out: longer than max_prompt tokens */
} tk_prompt_set;

/* Reads path (format p->format, template p->family): prompts of at most max_prompt tokens (longer
 * ones are counted in n_long). context (may be NULL) is rendered at the start of each prompt's system
 * message (before its own text, or as a new one: the convention of --teacher-context); the items keep
 * the records as they are. A record without a user turn fails naming its line; a file with no usable
 * prompt fails. *out is zeroed first; free with tk_prompt_set_free. Reentrant. */
tk_status tk_prompt_set_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, int32_t max_prompt, const char *context,
                             tk_prompt_set *out);
/* Moves a deterministic (seed) fraction of s's prompts (with their items) into *val, as tk_sft_split. */
tk_status tk_prompt_set_split(tk_prompt_set *s, double frac, uint64_t seed, tk_prompt_set *val);
/* Frees a set and zeroes it; accepts NULL and zeroed sets. */
void tk_prompt_set_free(tk_prompt_set *s);
#endif
