/* Training metrics: the events a run reports (steps, evaluations, warnings…), their
 * record in RUN/metrics.jsonl (one JSON object per line, flushed per line), reading the
 * file back (report, resume), and the one-line progress text a front end prints.
 *
 * metrics.jsonl lines:
 *   {"step":N,"epoch":E,"train_loss":L,"lr":R,"grad_norm":G,"tokens":T,"tokens_per_s":S,"step_s":D,"elapsed_s":X,"peak_rss_mb":M}
 *   {"step":N,"epoch":E,"valid_loss":L,"valid_ppl":P,"valid_token_acc":A,"valid_tokens":T}
 *   (preference objectives add their metrics, e.g. "rewards/accuracies", to step lines before
 *   "peak_rss_mb", and as "valid_rewards/accuracies" to validation lines before "valid_tokens")
 *   {"step":N,"event":"warning"|"early_stop"|"checkpoint"|…,"message":"…"}
 * Losses are natural-log cross-entropy per target token; doubles use 17 significant digits
 * so that two runs can be compared bit for bit. */
#ifndef TK_TRAIN_METRICS_H
#define TK_TRAIN_METRICS_H
#include <stdio.h>
#include "takumi/train.h"

/* tk_train_event and its kinds: takumi/train.h. */

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

/* tk_progress_format, tk_duration_format: takumi/train.h. */
#endif
