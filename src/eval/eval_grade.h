/* Graders and the judge in an evaluation (eval_grade.c). Internal to src/eval/. */
#ifndef TK_EVAL_GRADE_H
#define TK_EVAL_GRADE_H
#include "eval/eval_internal.h"
#include "eval/grader.h"

struct tk_eval_sys;
typedef struct tk_eval_judge { struct tk_eval_sys *sys; tk_session *sess; } tk_eval_judge;
typedef struct tk_eval_grading {
    tk_grader *grader;        /* --grader */
    tk_grader *judge_grader;  /* the built-in judge metric (with --judge) */
    tk_eval_judge judge;      /* the judge model */
    tk_judge cb;
} tk_eval_grading;

/* Loads --grader and the --judge model (a score_model grader without --judge is refused). */
tk_status tk_eval_grading_open(tk_eval_grading *g, const tk_eval_params *p);
void tk_eval_grading_close(tk_eval_grading *g);
/* Grades answer ex->pred[which] into the grader/judge columns of stats; a failure is counted in *n_fail (the run fails
 * once it exceeds limit, unless limit < 0) and its message kept on the example. */
tk_status tk_eval_grade(tk_eval_grading *g, tk_eval_ex *ex, int which, const tk_eval_col *cols, int n_cols, double *stats,
                        int64_t *n_fail, int64_t limit);
#endif
