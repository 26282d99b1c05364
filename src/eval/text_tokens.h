/* Shared pieces of the text metrics: UTF-8 into codepoints, Python's notion of white space,
 * and exact n-gram matching of two token sequences (ids dense over both, n-grams interned
 * order by order, so counts are exact with no hashing). Internal to src/eval/. */
#ifndef TK_EVAL_TEXT_TOKENS_H
#define TK_EVAL_TEXT_TOKENS_H

#include "core/core.h"
#include <stdint.h>
#include <stdbool.h>

/* Python's str.isspace(): Unicode white space plus the separators U+001C..U+001F. Thread-safe. */
bool tk_py_isspace(uint32_t cp);

/* s decoded into a malloc'd codepoint array (*out, *n); TK_ERR_ARG naming what and the byte offset
 * for invalid UTF-8, NUL bytes or NULL. Thread-safe. */
tk_status tk_text_codepoints(const char *s, const char *what, uint32_t **out, size_t *n);

/* A token: bytes p[0..len) (words) or, with p NULL, the codepoint len (characters). */
typedef struct tk_token { const char *p; size_t len; } tk_token;

/* Two token sequences, a (hypothesis) then b (reference), as ids dense over both:
 * ids[0..na) and ids[na..na+nb), values in [0, n_ids). */
typedef struct tk_tok_pair { int32_t *ids; size_t na, nb; int32_t n_ids; } tk_tok_pair;
/* Interns the tokens of a and b (equal bytes or codepoints give equal ids). Thread-safe. */
tk_status tk_tok_pair_make(tk_tok_pair *tp, const tk_token *a, size_t na, const tk_token *b, size_t nb);
void tk_tok_pair_free(tk_tok_pair *tp);

/* Per n-gram order n = 1..max_n: out[n-1] = {n-grams of a, n-grams of b, clipped matches
 * (sum over distinct n-grams of min(count in a, count in b))}. Thread-safe. */
tk_status tk_ngram_match(const tk_tok_pair *tp, int max_n, double (*out)[3]);

/* Length of the longest common subsequence of the pair's two sequences. Thread-safe. */
tk_status tk_tok_lcs(const tk_tok_pair *tp, size_t *out);

/* Growable token list. */
typedef struct tk_tokvec { tk_token *v; size_t n, cap; } tk_tokvec;
tk_status tk_tokvec_push(tk_tokvec *t, const char *p, size_t len);
/* Appends the maximal runs of non-white-space (Python str.split()) of valid UTF-8 s[0..n). */
tk_status tk_tokvec_split(tk_tokvec *t, const char *s, size_t n);

#endif
