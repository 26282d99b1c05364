/* The result of an evaluation run (eval_run.c builds it, eval_out.c writes it). Internal to src/eval/. */
#ifndef TK_EVAL_RESULT_H
#define TK_EVAL_RESULT_H
#include "eval/eval_internal.h"
#include "takumi/data.h"

typedef struct tk_eval_general {
    char *path, *metric;
    double with, without;      /* the metric with the adapter and on the bare base */
    bool flagged;              /* the drop exceeds --max-drop */
} tk_eval_general;

typedef struct tk_eval_hit { uint64_t line; int sys; char what[48]; char *text; } tk_eval_hit;

struct tk_eval_result {
    char *model, *adapter, *baseline;  /* descriptions */
    bool has_base;
    tk_eval_set set;
    tk_eval_col *cols; int n_cols, stride;
    double *stats[2];                  /* [set.n x stride] per system */
    tk_eval_metric *metrics;           /* one per column */
    int64_t n_too_long[2], n_failures[2], n_generated[2];
    double gen_s[2];
    tk_eval_general *general; int n_general;
    /* safety, per system */
    uint64_t pii[2][TK_PII_COUNT], train_pii[2], forbidden[2];
    tk_eval_hit *hits; int n_hits;     /* the first few of each kind */
    int n_forbidden_patterns; bool train_checked;
    struct tk_grader *grader;          /* during the run: the --grader document (column names) */
};
/* Records a safety hit (the first 20 are kept with their text). */
tk_status tk_eval_add_hit(tk_eval_result *r, uint64_t line, int sys, const char *what, const char *text);
struct tk_eval_sys;
/* Forgetting (general data with and without the adapter, on sys) and the safety scan of every answer. */
tk_status tk_eval_checks(tk_eval_result *r, const tk_eval_params *p, struct tk_eval_sys *sys);
#endif
