/* Graders in OpenAI's JSON form (string_check, text_similarity, score_model, multi) plus
 * takumi's own `command` grader: parsed once from a JSON document, then used to score
 * (item, model answer) samples for evaluation and reinforcement fine-tuning. Internal header. */
#ifndef TK_EVAL_GRADER_H
#define TK_EVAL_GRADER_H

#include "takumi/core.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct tk_grader tk_grader;

/* A judge for score_model graders: given chat messages (role strings "system"/"user"/
 * "assistant"/"developer", contents already rendered), returns the model's reply (malloc'd,
 * caller frees). model is the grader's "model" field (may be NULL). */
typedef struct tk_judge {
    tk_status (*reply)(void *ud, const char *model, const char *const *roles, const char *const *contents, int n,
                       char **out);
    void *ud;
} tk_judge;

/* Parses a grader JSON document: one grader object, or {"grader": {...}} as OpenAI's payloads
 * wrap it. Types: string_check (eq, ne, like, ilike), text_similarity (fuzzy_match, bleu,
 * rouge_1..rouge_5, rouge_l; scores 0..1), score_model (input messages, range, default [0, 1]),
 * multi (graders map + calculate_output: + - * / ^, parentheses, min max abs floor ceil exp sqrt
 * log), and command: {"type":"command","name":..,"command":["prog","arg",..],"timeout_s":10}
 * (no shell; the sample as {"item":{..},"sample":{"output_text":".."}} on stdin; the score is
 * the last number printed on stdout). Templates: {{ item.a.b }}, {{ item.list[0] }},
 * {{ sample.output_text }}. Errors name origin and the field: "grader.json: graders.acc.type:
 * unknown type 'foo'"; python/label_model graders, gleu/meteor/cosine, sample.output_json and
 * a multi inside a multi are TK_ERR_UNSUPPORTED. Thread-safe (no shared state). */
tk_status tk_grader_parse(const char *json, size_t len, const char *origin, tk_grader **out);
/* Reads and parses the grader document at path (messages name the path). Thread-safe. */
tk_status tk_grader_load(const char *path, tk_grader **out);
/* Frees a grader (NULL: nothing). Not concurrently with grading on it. */
void tk_grader_free(tk_grader *g);

/* Score names, in order: the top grader's name first (its "name", else its type), then each
 * sub-grader of a multi (its key in "graders"). Plain names: the caller makes the
 * "grader:<name>" columns. Thread-safe (read-only). */
int tk_grader_n_scores(const tk_grader *g);
/* The i-th score name (0 <= i < tk_grader_n_scores), NULL when out of range. Thread-safe. */
const char *tk_grader_score_name(const tk_grader *g, int i);

typedef struct tk_grade {
    double score;
    double *sub; /* [n_scores], sub[0] == score */
    bool failed;
    char error[256];
} tk_grade;

/* Grades one sample: item is the data record (a cJSON object; {{ item.x }} reads its fields),
 * output_text the model's answer ({{ sample.output_text }}). A failure of the grader on this
 * sample (judge reply without a score, command timeout/crash/no number, template naming a
 * missing field) sets r->failed and r->error and returns TK_OK; errors of the caller (bad
 * args, OOM) return a status. Thread-safe for concurrent calls on one grader when judge is. */
tk_status tk_grader_grade(const tk_grader *g, const void *item_cjson, const char *output_text, const tk_judge *judge,
                          tk_grade *r);
/* Frees what tk_grader_grade allocated in r (r->sub); safe on a zeroed struct. */
void tk_grade_free(tk_grade *r);

/* True when the grader (or a sub-grader) needs a judge model (score_model). Thread-safe. */
bool tk_grader_needs_judge(const tk_grader *g);

/* The grader's "pass_threshold" (text_similarity, score_model): true and *out set when the document
 * gives one (a score >= it passes). Thread-safe. */
bool tk_grader_pass_threshold(const tk_grader *g, double *out);

#endif
