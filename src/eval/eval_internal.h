/* Internals of the evaluation (src/eval/eval_*.c): examples, the metric table, per-example
 * statistics, the two systems compared (the model under test and the baseline). */
#ifndef TK_EVAL_INTERNAL_H
#define TK_EVAL_INTERNAL_H
#include "takumi/eval.h"
#include "takumi/model.h"
#include "takumi/chat.h"
#include "core/core.h"

/* What one example carries (any subset). Strings are owned. */
typedef struct tk_eval_ex {
    uint64_t line;
    char *id;
    tk_chat_msg *prompt; size_t n_prompt;  /* conversation up to the answer (contents owned) */
    char *reference;                       /* reference answer (or classification label) */
    char *text;                            /* a plain text scored as a whole (loss, perplexity): {"text"} records, .txt lines */
    char *chosen, *rejected;               /* preference pair (final replies after prompt) */
    char **choices; int n_choices; int answer; /* multiple choice: question in prompt[last], index of the right choice */
    double *choice_lp[2];                  /* log-likelihood of each choice, per system (NULL until scored) */
    double pref[2][2]; bool has_pref[2];   /* chosen / rejected: log-probability sums, or a reward model's scores, per system */
    double pref_ref[2][2]; bool has_pref_ref[2]; /* chosen / rejected under the reference (the system's base, adapter off) */
    bool is_label;                         /* reference is a class label */
    void *item;                            /* the record (cJSON object), for graders and facts */
    char *pred[2];                         /* answers of the model under test [0] and of the baseline [1] */
    char *grade_error[2];                  /* first grader/judge failure on this example, per system */
} tk_eval_ex;

typedef struct tk_eval_set {
    tk_eval_ex *v; size_t n, cap;
    int kinds;                             /* TK_EX_* seen */
    char **labels; size_t n_labels;        /* classification: distinct reference labels, sorted */
} tk_eval_set;
enum { TK_EX_REF = 1, TK_EX_GEN = 2, TK_EX_PREF = 4, TK_EX_MC = 8, TK_EX_LABEL = 16, TK_EX_FACTS = 32, TK_EX_PRED = 64, TK_EX_TEXT = 128 };

/* Reads an evaluation file (JSONL, a JSON array, CSV with a header, text, text<TAB>label TSV; with map (may be NULL) any
 * layout the map reads); errors name the file and line (and the field). predictions: the records carry "prediction"
 * (stored as pred[0]). system: default system prompt (may be NULL). Reentrant. */
tk_status tk_eval_set_load(const char *path, const tk_data_map *map, bool predictions, const char *system, tk_eval_set *out);

void tk_eval_set_free(tk_eval_set *s);

/* ---- metrics ---------------------------------------------------------------------------
 * Every metric is a vector of per-example statistics summed over examples and a finish
 * function of the sum (mean metrics: [value, 1]; loss: [nll, tokens]; BLEU: its n-gram
 * counts), so corpus values and bootstrap resamples come from the same sums. */
typedef struct tk_metric_def {
    const char *name;
    int needs;            /* TK_EX_* the data must have (every one) */
    int any;              /* and at least one of these (0: no such condition) */
    int model;            /* needs the model: 1 scoring (forward), 2 generation */
    int n_stats;          /* -1: set at run time (macro_f1: 3 per label) */
    double (*finish)(const double *sum, int n_stats);
} tk_metric_def;
const tk_metric_def *tk_metric_def_find(const char *name);
const tk_metric_def *tk_metric_def_at(int i);   /* NULL past the end */
/* What the data (TK_EX_* kinds) lacks for metric d, in words; NULL when it has everything. */
const char *tk_eval_lacks(const tk_metric_def *d, int kinds);

/* One requested metric in a run. */
typedef struct tk_eval_col {
    char *name;
    const tk_metric_def *def;
    int off, n_stats;     /* its statistics in the per-example vectors */
    int grader_index;     /* grader:<name>: index into the grader's score names; -1 otherwise */
} tk_eval_col;

/* Text metrics of answer against reference into stats (the columns of kind exact_match .. rougeL, fact_match). */
tk_status tk_eval_text_stats(const tk_eval_set *set, const tk_eval_ex *ex, const char *answer, const tk_eval_col *cols, int n_cols,
                             double *stats);
/* Whether an answer says label: its first line, trimmed, case-insensitive, a trailing full stop ignored. */
bool tk_eval_label_eq(const char *answer, const char *label);
/* fact_match of one answer: facts ([[alternatives]...]) after normalisation, or the "match" regex. -1: no facts. */
int tk_eval_fact_match(const void *item, const char *answer, char *err, size_t n_err);

/* Paired bootstrap: value of a column on a resample of example indices idx[0..n). */
double tk_eval_col_value(const tk_eval_col *c, const double *const *stats, const int64_t *idx, int64_t n, int64_t *n_present);
#endif
