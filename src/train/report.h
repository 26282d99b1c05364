/* RUN/report.html: one self-contained page (no scripts, no external files) with the loss
 * curves drawn as inline SVG (train loss per step with a smoothed line, validation loss
 * per evaluation; the learning rate beneath), a summary, the data statistics, the
 * resolved configuration, warnings, and validation prompts answered before and after. */
#ifndef TK_TRAIN_REPORT_H
#define TK_TRAIN_REPORT_H
#include "train/metrics.h"

typedef struct tk_report_sample { const char *question, *reference, *before, *after; } tk_report_sample;
typedef struct tk_report_kv { const char *key, *value; } tk_report_kv;

typedef struct tk_report_input {
    const char *title;                 /* e.g. "SmolLM2-135M-Instruct · LoRA r=8" */
    const tk_report_kv *summary; int n_summary;
    const tk_report_kv *data; int n_data;
    const char *config_json;           /* resolved configuration (JSON object); may be NULL */
    const tk_metrics_series *metrics;
    const tk_report_sample *samples; int n_samples;
    const char *eval_text;             /* the --eval-config evaluation's table (its files in eval/); may be NULL */
} tk_report_input;

/* Appends the page to out. */
tk_status tk_report_html(const tk_report_input *in, tk_buf *out);
/* Writes the page to path atomically. */
tk_status tk_report_write(const char *path, const tk_report_input *in);
/* The loss chart alone (an <svg> element, width x height px) — also used by tests. */
tk_status tk_report_loss_svg(const tk_metrics_series *s, int width, int height, tk_buf *out);
#endif
