/* The pieces of a parsed grader, shared by the grader_*.c files: templates, formulas,
 * numbers in text, command runs. Internal to src/eval/. */
#ifndef TK_EVAL_GRADER_INTERNAL_H
#define TK_EVAL_GRADER_INTERNAL_H

#include "eval/grader.h"
#include "core/core.h"
#include <cjson/cJSON.h>

/* ---- templates: "text {{ item.a.b }} {{ sample.output_text }}" (grader_template.c) ---- */
typedef struct tk_tmpl tk_tmpl;
/* Compiles a template; an unclosed "{{", an unknown root (only item.* and sample.output_text) or a
 * bad path fails with TK_ERR_FORMAT and a message prefixed with where (e.g. "g.json: graders.a.input"). */
tk_status tk_tmpl_parse(const char *text, const char *where, tk_tmpl **out);
void tk_tmpl_free(tk_tmpl *t);
/* Renders t for one sample into out (appended). A field of item that does not exist sets
 * *missing and writes "item.a.b is missing" into err (out is then incomplete); only allocation
 * failures return a status. Thread-safe (t is read-only). */
tk_status tk_tmpl_render(const tk_tmpl *t, const cJSON *item, const char *output_text, tk_buf *out, bool *missing,
                         char *err, size_t errlen);

/* ---- calculate_output formulas (grader_formula.c) ---- */
typedef struct tk_formula tk_formula;
/* Compiles expr (numbers, names from names[0..n), + - * / ^, unary -, parentheses, and
 * min max abs floor ceil exp sqrt log). Fails with TK_ERR_FORMAT: "<where>calculate_output \"..\": <what> at column C"
 * (where: a message prefix such as "g.json: "). */
tk_status tk_formula_parse(const char *expr, const char *const *names, int n, const char *where, tk_formula **out);
void tk_formula_free(tk_formula *f);
/* Evaluates f with vals[i] for names[i] (may be inf/nan: the caller checks). Thread-safe. */
double tk_formula_eval(const tk_formula *f, const double *vals);

/* ---- numbers in text (grader_number.c) ---- */
/* The last decimal number in s ("-1.5e3", "7", ".5"); false when there is none. */
bool tk_text_last_number(const char *s, double *out);
/* A judge's score: "result" or "score" of a JSON object in the reply (a bare object, or one in a
 * ```json fence or among prose), else the last number in the text; false when there is none. */
bool tk_judge_reply_score(const char *reply, double *out);

/* ---- the command grader (grader_command.c) ---- */
/* Runs argv (no shell) with stdin_text on its stdin, in its own process group; returns its
 * score (the last number it printed), or sets *failed with the reason in err (timeout: the
 * group is killed; crash, non-zero exit, no number, cannot start). Only allocation failures
 * return a status. Thread-safe. */
tk_status tk_command_score(char *const *argv, double timeout_s, const char *stdin_text, size_t stdin_len, double *score,
                           bool *failed, char *err, size_t errlen);

/* ---- the grader tree (grader.c) ---- */
typedef enum tk_grader_type {
    TK_GRADER_STRING_CHECK,
    TK_GRADER_TEXT_SIMILARITY,
    TK_GRADER_SCORE_MODEL,
    TK_GRADER_MULTI,
    TK_GRADER_COMMAND,
} tk_grader_type;

typedef enum tk_string_op { TK_STR_EQ, TK_STR_NE, TK_STR_LIKE, TK_STR_ILIKE } tk_string_op;

typedef struct tk_judge_msg { char *role; tk_tmpl *content; } tk_judge_msg;

struct tk_grader {
    tk_grader_type type;
    char *name;
    /* string_check, text_similarity */
    tk_tmpl *input, *reference;
    tk_string_op op;
    int metric; /* text_similarity: index into the metric table of grader_similarity.c */
    bool has_pass_threshold;
    double pass_threshold;
    /* score_model */
    char *model;
    tk_judge_msg *msgs;
    int n_msgs;
    double lo, hi;
    /* multi */
    tk_grader **subs;
    char **sub_names; /* keys of "graders": what calculate_output names */
    int n_subs;
    tk_formula *formula;
    /* command */
    char **argv; /* NULL-terminated */
    double timeout_s;
};

/* score_model (grader_judge.c): parses "model", "input" messages and "range" (prefix: "g.json: " or
 * "g.json: graders.a.", messages are "<prefix>range: ..."). */
tk_status tk_grader_parse_score_model(tk_grader *g, const cJSON *j, const char *where);
/* Renders the messages, asks the judge and reads the score from its reply; per-sample failures in *failed/err. */
tk_status tk_grader_judge_score(const tk_grader *g, const cJSON *item, const char *output_text, const tk_judge *judge,
                                double *score, bool *failed, char *err, size_t errlen);

/* text_similarity (grader_similarity.c): parses "evaluation_metric" into g->metric (unsupported
 * metrics fail naming them), and scores one rendered pair on OpenAI's 0..1 scale. */
tk_status tk_grader_parse_similarity(tk_grader *g, const cJSON *j, const char *prefix);
tk_status tk_grader_similarity_score(const tk_grader *g, const char *input, const char *reference, double *score,
                                     bool *failed, char *err, size_t errlen);

#endif
