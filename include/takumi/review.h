/* Blind A/B human review: two systems' answers to the same prompts on one self-contained page
 * (review.html: inline CSS, JS and data, no network), judged by a person, then unblinded.
 *
 *   tk_review_read        prompts (JSONL {"prompt": "..."} or {"messages": [...]} ending with a user
 *                         turn), optionally with both answers ("a", "b") -> a tk_review_set
 *   tk_review_write_page  DIR/review.html (answers shown as "left"/"right", the order shuffled per item
 *                         with a seed), DIR/items.jsonl (id, prompt, left, right, as the page shows them)
 *                         and DIR/key.json (which side is system A for each item: never in the page)
 *   tk_review_collect     the page's judgements.jsonl (one line per judged item: review, id,
 *                         choice left|right|tie, correction, time) + DIR/key.json + DIR/items.jsonl ->
 *                         DIR/results.json (win rate of A over B, ties as half, 95% Wilson interval,
 *                         counts), DIR/preferences.jsonl (TRL prompt/chosen/rejected of the non-tie
 *                         judgements, for `takumi train --objective dpo`) and DIR/sft.jsonl (chat
 *                         "messages" ending with each corrected answer).
 * Every file is written atomically (temporary beside it, fsync'd, renamed). */
#ifndef TAKUMI_REVIEW_H
#define TAKUMI_REVIEW_H
#include "takumi/core.h"
#include "takumi/chat.h"
#ifdef __cplusplus
extern "C" {
#endif

/* One prompt and the two systems' answers. */
typedef struct tk_review_item {
    char *id;              /* the record's "id" (string or integer), else its 1-based line number */
    tk_chat_msg *msgs;     /* the prompt: system/user/assistant turns ending with a user turn (contents owned) */
    size_t n_msgs;
    bool text_prompt;      /* the prompt was one "prompt" string (written back as a string, not as messages) */
    char *a, *b;           /* answers of system A and system B (NULL until set) */
} tk_review_item;

typedef struct tk_review_set { tk_review_item *items; size_t n; } tk_review_set;

/* Reads a JSONL file of prompts into *out (zero it first; free with tk_review_set_free). Each non-blank line is
 * an object with "prompt" (a string, or a list of messages) or "messages" (a list of {role, content} ending with
 * a user turn), an optional "id" (unique), and, when with_answers, "a" and "b" (strings). A malformed line, a
 * missing field, a duplicate id or an empty file: TK_ERR_FORMAT naming the file and line. Thread-safe. */
tk_status tk_review_read(const char *path, bool with_answers, tk_review_set *out);
/* Prepends a system message to every item whose prompt has none (for --system); the set owns the copy. */
tk_status tk_review_set_system(tk_review_set *s, const char *system);
/* Sets item's answer of system side ('a' or 'b') to a copy of text (len bytes, no NUL inside). */
tk_status tk_review_set_answer(tk_review_item *it, char side, const char *text, size_t len);
/* Frees everything the set owns and zeroes it; NULL or a zeroed set is fine. */
void tk_review_set_free(tk_review_set *s);

typedef struct tk_review_page_params {
    uint64_t seed;          /* which side each system is shown on (per item); same seed, same page */
    const char *name_a;     /* descriptions of the systems (e.g. "base", "runs/x/adapter"): key.json only */
    const char *name_b;
    const char *title;      /* page title (default "Blind A/B review") */
} tk_review_page_params;
/* seed 0, names "A" and "B", the default title. */
tk_review_page_params tk_review_page_default_params(void);

/* Writes DIR/review.html, DIR/items.jsonl and DIR/key.json for a set whose items all have both answers
 * (DIR is created). Every text reaches the page escaped (as JSON inside the page's data block, with "<", ">",
 * "&" and U+2028/9 as \u escapes; the page inserts it with textContent), so model output cannot inject HTML.
 * The review id (a hash of the items and the seed) ties judgements to this key. Thread-safe. */
tk_status tk_review_write_page(const tk_review_set *s, const tk_review_page_params *p, const char *dir);

/* What tk_review_collect found (also in results.json). */
typedef struct tk_review_results {
    size_t n_items;         /* items in the key */
    size_t n_judged;        /* items with a judgement (a later line for the same id replaces an earlier one) */
    size_t wins_a, wins_b, ties;
    size_t n_corrections;   /* judgements with a non-empty correction (lines of sft.jsonl) */
    double win_rate;        /* (wins_a + ties / 2) / n_judged */
    double ci_low, ci_high; /* 95% Wilson score interval of win_rate over n_judged */
    char review_id[17];     /* the review id of the key */
    char name_a[256], name_b[256]; /* the systems' names from the key (cut to fit, for messages) */
} tk_review_results;

/* Unblinds judgements (path: the page's judgements.jsonl) with DIR/key.json and DIR/items.jsonl and writes
 * DIR/results.json, DIR/preferences.jsonl and DIR/sft.jsonl; fills *res (may be NULL). Bad input — a malformed
 * line, an unknown id, a choice other than left/right/tie, judgements of another review (their "review" differs
 * from the key's), a file without judgements — fails with TK_ERR_FORMAT naming the file and line, and writes nothing. Thread-safe. */
tk_status tk_review_collect(const char *judgements, const char *dir, tk_review_results *res);

/* The 95% Wilson score interval of a proportion p observed over n trials (n > 0; p in [0, 1]). Reentrant. */
void tk_review_wilson(double p, double n, double *lo, double *hi);

#ifdef __cplusplus
}
#endif
#endif
