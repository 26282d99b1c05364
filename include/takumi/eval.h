/* Evaluation (`takumi eval`): did fine-tuning reach the goal? Metrics on a data file's reference
 * answers and on generated answers, graders, forgetting on general data, a safety scan, a
 * baseline with paired bootstrap intervals, and targets that gate a release. */
#ifndef TAKUMI_EVAL_H
#define TAKUMI_EVAL_H
#include "takumi/core.h"
#include "takumi/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Metric names, for --metrics, --target and the keys of the JSON document:
 *   loss ppl token_acc           reference answers scored by the model (assistant tokens of the final reply)
 *   exact_match f1 bleu chrf rouge1 rouge2 rougeL   generated answer against the reference (sacrebleu / rouge-score scales)
 *   fact_match                   every required fact ("facts": [[alternatives], ...]) or the "match" regex found in the answer
 *   grader grader:<name>         OpenAI-form graders on the generated answer (--grader)
 *   judge                        a local judge model's 1-10 verdict, scaled to 0-1 (--judge)
 *   pref_accuracy                preference pairs: log-probability of chosen above rejected
 *   accuracy macro_f1            classification: generated label against the reference label
 *   mc_acc mc_acc_norm           multiple choice by log-likelihood (lm-evaluation-harness acc / acc_norm) */
/* True when name is a metric takumi computes (grader:<anything> included). Thread-safe. */
bool tk_eval_metric_known(const char *name);
/* All metric names, space-separated (for messages and help). Static string. */
const char *tk_eval_metric_names(void);

typedef struct tk_eval_params {
    const char *model, *tokenizer, *adapter;      /* the model under test (model NULL only with predictions) */
    const char *baseline_model, *baseline_adapter;/* at most one: compare against this (the baseline adapter on model) */
    bool baseline_base;                           /* or: compare against model without the adapter (weights shared) */
    const char *data;                             /* evaluation records (JSONL / JSON / CSV); or: */
    const char *predictions;                      /* answers already generated: "prediction" (+ "reference" / grader fields) */
    const tk_data_map *map;                       /* field map for data (NULL: the records' own keys; not owned) */
    const char *metrics;                          /* comma-separated names; NULL: every metric the data supports */
    const char *grader;                           /* grader JSON file (OpenAI form); NULL: none */
    const char *judge;                            /* judge model for score_model graders and the judge metric */
    const char *template_name;                    /* chat template override (NULL: the model's) */
    const char *system;                           /* system prompt for records without one (NULL: none) */
    int32_t max_tokens;                           /* generated tokens per answer (default 128) */
    int32_t max_seq;                              /* longest sequence scored (0: the model's context) */
    int32_t batch;                                /* answers generated together (default 8) */
    bool exact;                                   /* generation with f32 activations (false, the default: 8-bit activations in
                                                     decode with quantized weights, as llama.cpp; tk_gen_params.exact) */
    uint64_t seed;                                /* bootstrap seed (default 0) */
    int32_t n_boot;                               /* bootstrap resamples (default 1000) */
    int64_t max_grader_failures;                  /* grader/judge failures tolerated before the run fails (-1: no limit) */
    const char *const *general; int n_general;    /* forgetting: general data scored with and without the adapter */
    double max_drop_acc;                          /* flag an accuracy drop above this (default 0.02 = 2 points) */
    double max_drop_ppl;                          /* flag a perplexity rise above this fraction (default 0.05) */
    const char *const *forbidden; int n_forbidden;/* safety: PCRE2 patterns no answer may match */
    const char *train_data;                       /* safety: personal data of this training file reproduced in answers */
    void (*progress)(void *ud, const char *stage, int64_t done, int64_t total); /* may be NULL; called on the caller's thread */
    void *progress_ud;
} tk_eval_params;
/* The defaults documented above. Thread-safe. */
tk_eval_params tk_eval_default_params(void);

typedef struct tk_eval_metric {
    const char *name;
    double value;          /* NaN when no example had what the metric needs */
    int64_t n;             /* examples it was computed on */
    bool has_base;
    double base, diff;     /* with a baseline: its value and value - base */
    double lo, hi;         /* 95% paired bootstrap interval of diff (with a baseline) or of value */
} tk_eval_metric;

typedef struct tk_eval_result tk_eval_result;
/* Runs the evaluation. Errors (missing files, data without what a requested metric needs, an adapter that does not fit,
 * too many grader failures) return a status with a message; nothing is printed. Thread-safe for distinct params. */
tk_status tk_eval_run(const tk_eval_params *p, tk_eval_result **out);
void tk_eval_result_free(tk_eval_result *r);
int tk_eval_n_metrics(const tk_eval_result *r);
const tk_eval_metric *tk_eval_metric_at(const tk_eval_result *r, int i);
/* The metric named name (NULL if it was not computed). */
const tk_eval_metric *tk_eval_find(const tk_eval_result *r, const char *name);
/* Appends the human-readable report (metric table, forgetting, safety, failures) to out. */
tk_status tk_eval_text(const tk_eval_result *r, tk_buf *out);
/* Appends the whole result as one JSON document (metrics keyed by name, forgetting, safety, counts). */
tk_status tk_eval_json(const tk_eval_result *r, tk_buf *out);
/* Writes dir/results.json, dir/examples.jsonl (one line per example: prompt, reference, answers, per-example scores)
 * and dir/report.html (self-contained; answers side by side, worst regressions first); each file atomically. */
tk_status tk_eval_write_dir(const tk_eval_result *r, const char *dir);

/* ---- targets: "METRIC>=X" (also >, <=, <, ==) ---------------------------------------------- */
typedef enum tk_eval_op { TK_EVAL_GE = 0, TK_EVAL_GT, TK_EVAL_LE, TK_EVAL_LT, TK_EVAL_EQ } tk_eval_op;
typedef struct tk_eval_target { char metric[96]; tk_eval_op op; double x; } tk_eval_target;
/* Parses a target; an unknown metric or a malformed expression is TK_ERR_ARG with a message. Thread-safe. */
tk_status tk_eval_target_parse(const char *text, tk_eval_target *out);
/* Whether r meets t (*value gets the metric's value; a metric not computed or NaN does not meet it). */
bool tk_eval_target_met(const tk_eval_target *t, const tk_eval_result *r, double *value);
/* "loss<=1.5" back as text into buf. */
void tk_eval_target_format(const tk_eval_target *t, char *buf, size_t n);

/* ---- an evaluation described in JSON (takumi train --eval-config) --------------------------
 * Keys as the options of `takumi eval`: data (required), metrics, targets, grader, judge, general, forbid, train_data,
 * system, baseline ("base": the model without the trained adapter), every (also every N training steps), max_tokens,
 * batch, max_seq_len, bootstrap, seed,
 * max_grader_failures, max_drop_acc, max_drop_ppl. Relative paths are resolved against the file's folder; an unknown
 * key, a bad target or a wrong type is TK_ERR_FORMAT naming it. */
typedef struct tk_eval_config tk_eval_config;
tk_status tk_eval_config_load(const char *path, tk_eval_config **out);
void tk_eval_config_free(tk_eval_config *c);
/* The parameters (model, adapter and template are the caller's to set); valid while c lives. */
tk_eval_params *tk_eval_config_params(tk_eval_config *c);
int tk_eval_config_n_targets(const tk_eval_config *c);
int64_t tk_eval_config_every(const tk_eval_config *c);   /* 0: only at the end */
const tk_eval_target *tk_eval_config_target(const tk_eval_config *c, int i);

#ifdef __cplusplus
}
#endif
#endif
