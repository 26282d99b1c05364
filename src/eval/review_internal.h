/* Internals of the blind A/B review (review_items.c, review_page.c, review_collect.c). Not public API. */
#ifndef TK_EVAL_REVIEW_INTERNAL_H
#define TK_EVAL_REVIEW_INTERNAL_H
#include "core/core.h"
#include "takumi/review.h"
#include <cjson/cJSON.h>

/* Called with each non-blank line of a JSONL file, parsed; line is 1-based. A failure stops the walk. */
typedef tk_status (*tk_review_line_fn)(void *ud, const cJSON *rec, uint64_t line);
/* Walks path's lines (JSONL); a line that is not JSON, too long or that fn refuses fails with a message
 * "path: line N: why". *n_lines (may be NULL) gets the number of non-blank lines. */
tk_status tk_review_each_line(const char *path, tk_review_line_fn fn, void *ud, uint64_t *n_lines);

/* Reads a JSONL file of items whose answers are in fields ka and kb (NULL: no answers). */
tk_status tk_review_read_fields(const char *path, const char *ka, const char *kb, tk_review_set *out);

/* Appends it's prompt as JSON: a string when it was one, else a list of {role, content}. */
tk_status tk_review_append_prompt(tk_buf *b, const tk_review_item *it);
/* Appends a list of {role, content} messages: it's prompt followed by one assistant turn (answer; NULL: none). */
tk_status tk_review_append_messages(tk_buf *b, const tk_review_item *it, const char *answer);

/* Appends a string literal to a tk_buf. */
#define TK_REVIEW_LIT(b, lit) tk_buf_append((b), (lit), sizeof(lit) - 1)

/* Writes b to dir/name atomically. */
tk_status tk_review_write_in(const char *dir, const char *name, const tk_buf *b);

/* File names inside the review folder. */
#define TK_REVIEW_PAGE "review.html"
#define TK_REVIEW_ITEMS "items.jsonl"
#define TK_REVIEW_KEY "key.json"
#endif
