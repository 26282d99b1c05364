/* Training metrics: the events a run reports (steps, evaluations, warnings…), their
 * record in RUN/metrics.jsonl (one JSON object per line, flushed per line), reading the
 * file back (report, resume), and the one-line progress text a front end prints.
 *
 * metrics.jsonl lines:
 *   {"step":N,"epoch":E,"train_loss":L,"lr":R,"grad_norm":G,"tokens":T,"tokens_per_s":S,"step_s":D,"elapsed_s":X,"peak_rss_mb":M}
 *   {"step":N,"epoch":E,"valid_loss":L,"valid_ppl":P,"valid_token_acc":A,"valid_tokens":T}
 *   {"step":N,"event":"warning"|"early_stop"|"checkpoint"|…,"message":"…"}
 * Losses are natural-log cross-entropy per target token; doubles use 17 significant digits
 * so that two runs can be compared bit for bit. */
#ifndef TK_TRAIN_METRICS_H
#define TK_TRAIN_METRICS_H
#include <stdio.h>
#include "takumi/core.h"

typedef enum tk_train_event_kind {
    TK_EV_START = 0,   /* message: what is being trained (steps, examples, epochs) */
    TK_EV_STEP,        /* one optimizer step done */
    TK_EV_EVAL,        /* a validation pass done */
    TK_EV_CHECKPOINT,  /* message: the checkpoint folder */
    TK_EV_WARNING,     /* message: e.g. overfitting, truncation */
    TK_EV_INFO,        /* message: informational (early stop, resume, samples…) */
    TK_EV_DONE,        /* the run ended (message: why) */
} tk_train_event_kind;

typedef struct tk_train_event {
    tk_train_event_kind kind;
    int64_t step, total_steps;
    double epoch;            /* epochs done, fractional */
    int64_t n_epochs;        /* planned epochs */
    double train_loss, lr, grad_norm;
    int64_t tokens;          /* tokens in this step (non-padding) */
    double tokens_per_s, step_s, elapsed_s, eta_s, peak_rss_mb;
    double valid_loss, valid_ppl, valid_acc;
    int64_t valid_tokens;
    const char *message;
} tk_train_event;

/* Peak resident memory of this process so far, MiB. */
double tk_peak_rss_mb(void);

/* Appends events to path (created if missing). */
typedef struct tk_metrics { FILE *fp; char *path; } tk_metrics;
tk_status tk_metrics_open(tk_metrics *m, const char *path);
/* Writes the line of a STEP or EVAL event, or an {"event"} line for WARNING / INFO /
 * CHECKPOINT / DONE (event_name names it, e.g. "early_stop"; NULL = the kind's name). */
tk_status tk_metrics_write(tk_metrics *m, const tk_train_event *e, const char *event_name);
void tk_metrics_close(tk_metrics *m);

/* Rewrites path (atomically) keeping only the complete lines whose "step" is <= max_step
 * (resume: the lines a killed run wrote after its last checkpoint go). A missing file is fine. */
tk_status tk_metrics_truncate(const char *path, int64_t max_step);

/* The curves of a metrics file. */
typedef struct tk_metrics_series {
    int64_t n_train, n_valid, n_events;
    int64_t *train_step; double *train_loss, *lr, *tokens_per_s, *peak_rss_mb;
    int64_t *valid_step; double *valid_loss, *valid_ppl, *valid_acc;
    int64_t *event_step; char **event_name, **event_msg;
} tk_metrics_series;
/* Reads path (lines that do not parse are skipped). Free with tk_metrics_series_free. */
tk_status tk_metrics_read(const char *path, tk_metrics_series *out);
void tk_metrics_series_free(tk_metrics_series *s);

/* The progress text of a STEP event: "step 12/300 · epoch 0.40/3 · loss 1.2345 · lr 2.00e-04 ·
 * 2400 tok/s · ETA 5m12s · 812 MiB" (no newline). */
void tk_progress_format(const tk_train_event *e, char *buf, size_t n);
/* "5m12s", "1h03m", "42s" into buf. */
void tk_duration_format(double s, char *buf, size_t n);
#endif
