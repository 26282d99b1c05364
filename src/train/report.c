/* report.html (see report.h). The charts are plain SVG polylines on "nice" axes
 * (1-2-5 ticks); the training curve is drawn raw (thin) and smoothed (an exponential
 * moving average with bias correction, as TensorBoard shows it), validation losses as
 * dots joined by a line. Everything is escaped; the page has no scripts. */
#include "train/report.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#define PUT(b, s) tk_buf_append((b), (s), strlen(s))

static void esc(tk_buf *b, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '<': PUT(b, "&lt;"); break;
        case '>': PUT(b, "&gt;"); break;
        case '&': PUT(b, "&amp;"); break;
        case '"': PUT(b, "&quot;"); break;
        default: tk_buf_append(b, p, 1);
        }
    }
}

/* A "nice" tick step (1, 2 or 5 x 10^k) for about n ticks over span. */
static double nice_step(double span, int n) {
    if (!(span > 0)) return 1;
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct axes { double x0, x1, y0, y1; int W, H, L, R, T, B; } axes;
static double px(const axes *a, double x) { return a->L + (x - a->x0) / (a->x1 - a->x0) * (a->W - a->L - a->R); }
static double py(const axes *a, double y) { return a->H - a->B - (y - a->y0) / (a->y1 - a->y0) * (a->H - a->T - a->B); }

static void fmt_tick(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    if (step >= 1) snprintf(buf, n, "%.0f", v);
    else if (step >= 0.1) snprintf(buf, n, "%.1f", v);
    else if (step >= 0.01) snprintf(buf, n, "%.2f", v);
    else snprintf(buf, n, "%.2g", v);
}

static void grid(tk_buf *b, const axes *a, const char *ylabel, bool ylog_fmt) {
    (void)ylog_fmt;
    tk_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#bbb\"/>\n", a->L, a->T,
                  a->W - a->L - a->R, a->H - a->T - a->B);
    double ys = nice_step(a->y1 - a->y0, 5);
    char t[32];
    for (double y = ceil(a->y0 / ys) * ys; y <= a->y1 + ys * 1e-9; y += ys) {
        double yy = py(a, y);
        fmt_tick(t, sizeof t, y, ys);
        tk_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
                         "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\">%s</text>\n",
                      a->L, yy, a->W - a->R, yy, a->L - 6, yy + 4, t);
    }
    double xs = nice_step(a->x1 - a->x0, 8);
    if (xs < 1) xs = 1;
    for (double x = ceil(a->x0 / xs) * xs; x <= a->x1 + xs * 1e-9; x += xs) {
        double xx = px(a, x);
        fmt_tick(t, sizeof t, x, xs);
        tk_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
                         "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"tick\">%s</text>\n",
                      xx, a->T, xx, a->H - a->B, xx, a->H - a->B + 16, t);
    }
    tk_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"lab\">optimizer step</text>\n",
                  (a->L + a->W - a->R) / 2, a->H - 4);
    tk_buf_printf(b, "<text transform=\"translate(14,%d) rotate(-90)\" text-anchor=\"middle\" class=\"lab\">",
                  (a->T + a->H - a->B) / 2);
    esc(b, ylabel);
    PUT(b, "</text>\n");
}

static void polyline(tk_buf *b, const axes *a, const int64_t *xs, const double *ys, int64_t n, const char *style) {
    tk_buf_printf(b, "<polyline fill=\"none\" %s points=\"", style);
    for (int64_t i = 0; i < n; i++)
        if (isfinite(ys[i])) tk_buf_printf(b, "%.1f,%.1f ", px(a, (double)xs[i]), py(a, ys[i]));
    PUT(b, "\"/>\n");
}

tk_status tk_report_loss_svg(const tk_metrics_series *s, int width, int height, tk_buf *out) {
    axes a = {.W = width, .H = height, .L = 56, .R = 16, .T = 12, .B = 40};
    double lo = INFINITY, hi = -INFINITY;
    int64_t xmax = 1;
    for (int64_t i = 0; i < s->n_train; i++) {
        if (isfinite(s->train_loss[i])) { lo = fmin(lo, s->train_loss[i]); hi = fmax(hi, s->train_loss[i]); }
        if (s->train_step[i] > xmax) xmax = s->train_step[i];
    }
    for (int64_t i = 0; i < s->n_valid; i++) {
        if (isfinite(s->valid_loss[i])) { lo = fmin(lo, s->valid_loss[i]); hi = fmax(hi, s->valid_loss[i]); }
        if (s->valid_step[i] > xmax) xmax = s->valid_step[i];
    }
    tk_buf_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                       "aria-label=\"loss curves\">\n", width, height, width, height);
    if (!isfinite(lo)) {
        tk_buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no steps recorded</text>\n</svg>\n", width / 2, height / 2);
        return TK_OK;
    }
    double pad = (hi - lo) * 0.05 + 1e-3;
    a.y0 = fmax(0, lo - pad);
    a.y1 = hi + pad;
    a.x0 = 0;
    a.x1 = (double)xmax;
    grid(out, &a, "loss (nats / token)", false);
    /* smoothed train loss: centred moving average over about a tenth of the steps (no lag) */
    double *ema = tk_malloc((size_t)(s->n_train ? s->n_train : 1) * sizeof *ema);
    if (!ema) return TK_ERR_NOMEM;
    int64_t h = s->n_train / 20;
    for (int64_t i = 0; i < s->n_train; i++) {
        int64_t lo_i = i - h < 0 ? 0 : i - h, hi_i = i + h >= s->n_train ? s->n_train - 1 : i + h, k = 0;
        double acc = 0;
        for (int64_t j = lo_i; j <= hi_i; j++) if (isfinite(s->train_loss[j])) { acc += s->train_loss[j]; k++; }
        ema[i] = k ? acc / (double)k : NAN;
    }
    polyline(out, &a, s->train_step, s->train_loss, s->n_train, "stroke=\"#9ecae1\" stroke-width=\"1\"");
    polyline(out, &a, s->train_step, ema, s->n_train, "stroke=\"#1f77b4\" stroke-width=\"2.2\"");
    free(ema);
    if (s->n_valid) {
        polyline(out, &a, s->valid_step, s->valid_loss, s->n_valid, "stroke=\"#e6550d\" stroke-width=\"2\" stroke-dasharray=\"5,3\"");
        for (int64_t i = 0; i < s->n_valid; i++)
            if (isfinite(s->valid_loss[i]))
                tk_buf_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#e6550d\"><title>step %lld: valid loss %.4f</title></circle>\n",
                              px(&a, (double)s->valid_step[i]), py(&a, s->valid_loss[i]), (long long)s->valid_step[i], s->valid_loss[i]);
    }
    /* legend */
    int lx = a.W - a.R - 190, ly = a.T + 10;
    tk_buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"182\" height=\"%d\" fill=\"#fff\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n", lx, ly,
                  s->n_valid ? 62 : 44);
    tk_buf_printf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#9ecae1\"/><text x=\"%d\" y=\"%d\" class=\"leg\">train loss (per step)</text>\n",
                  lx + 8, ly + 14, lx + 32, ly + 14, lx + 38, ly + 18);
    tk_buf_printf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2.2\"/><text x=\"%d\" y=\"%d\" class=\"leg\">train loss (smoothed)</text>\n",
                  lx + 8, ly + 32, lx + 32, ly + 32, lx + 38, ly + 36);
    if (s->n_valid)
        tk_buf_printf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#e6550d\" stroke-width=\"2\" stroke-dasharray=\"5,3\"/>"
                           "<circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"#e6550d\"/><text x=\"%d\" y=\"%d\" class=\"leg\">validation loss</text>\n",
                      lx + 8, ly + 50, lx + 32, ly + 50, lx + 20, ly + 50, lx + 38, ly + 54);
    return PUT(out, "</svg>\n");
}

static tk_status lr_svg(const tk_metrics_series *s, int width, int height, tk_buf *out) {
    axes a = {.W = width, .H = height, .L = 56, .R = 16, .T = 10, .B = 36};
    double hi = 0;
    int64_t xmax = 1;
    for (int64_t i = 0; i < s->n_train; i++) {
        if (isfinite(s->lr[i]) && s->lr[i] > hi) hi = s->lr[i];
        if (s->train_step[i] > xmax) xmax = s->train_step[i];
    }
    tk_buf_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                       "aria-label=\"learning rate\">\n", width, height, width, height);
    if (!(hi > 0)) return PUT(out, "</svg>\n");
    /* plot lr / 10^k so that ticks read as small numbers; the label carries the scale */
    double scale = pow(10, floor(log10(hi)));
    double *v = tk_malloc((size_t)(s->n_train ? s->n_train : 1) * sizeof *v);
    if (!v) return TK_ERR_NOMEM;
    for (int64_t i = 0; i < s->n_train; i++) v[i] = s->lr[i] / scale;
    a.x0 = 0; a.x1 = (double)xmax; a.y0 = 0; a.y1 = hi / scale * 1.08;
    char lab[64];
    snprintf(lab, sizeof lab, "lr (x %.0e)", scale);
    grid(out, &a, lab, false);
    polyline(out, &a, s->train_step, v, s->n_train, "stroke=\"#31a354\" stroke-width=\"2\"");
    free(v);
    return PUT(out, "</svg>\n");
}

static void kv_table(tk_buf *b, const tk_report_kv *kv, int n) {
    PUT(b, "<table class=\"kv\">\n");
    for (int i = 0; i < n; i++) {
        PUT(b, "<tr><th>");
        esc(b, kv[i].key);
        PUT(b, "</th><td>");
        esc(b, kv[i].value);
        PUT(b, "</td></tr>\n");
    }
    PUT(b, "</table>\n");
}

static void config_table(tk_buf *b, const char *json) {
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!o) { tk_buf_printf(b, "<p>(no configuration)</p>\n"); return; }
    PUT(b, "<div class=\"cfg\">\n");
    for (const cJSON *c = o->child; c; c = c->next) {
        if (cJSON_IsObject(c)) continue;
        PUT(b, "<div><b>");
        esc(b, c->string);
        PUT(b, "</b> ");
        if (cJSON_IsString(c)) esc(b, c->valuestring);
        else {
            char *t = cJSON_PrintUnformatted(c);
            esc(b, t);
            free(t);
        }
        PUT(b, "</div>\n");
    }
    PUT(b, "</div>\n");
    cJSON_Delete(o);
}

tk_status tk_report_html(const tk_report_input *in, tk_buf *b) {
    PUT(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>takumi training report</title>\n");
    tk_buf_printf(b, "<style>\n"
                     "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1040px;color:#222;padding:0 16px}\n"
                     "h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
                     ".sub{color:#666;margin:0 0 16px} .grid{display:flex;gap:24px;flex-wrap:wrap} .grid>div{flex:1;min-width:300px}\n"
                     "table.kv{border-collapse:collapse} table.kv th{text-align:left;font-weight:600;padding:2px 16px 2px 0;color:#444;vertical-align:top}\n"
                     "table.kv td{padding:2px 0;font-variant-numeric:tabular-nums;word-break:break-all} .cfg{columns:2;column-gap:32px} .cfg div{padding:1px 0;break-inside:avoid;word-break:break-all} .cfg b{font-weight:600;color:#444;margin-right:8px}\n"
                     "svg{display:block;background:#fafafa;border:1px solid #e5e5e5;border-radius:4px;max-width:100%%;height:auto}\n"
                     "svg text{font:11px system-ui,sans-serif;fill:#555} svg .lab{font-size:12px;fill:#333} svg .leg{font-size:12px;fill:#222}\n"
                     ".sample{border:1px solid #e3e3e3;border-radius:6px;margin:0 0 14px;overflow:hidden}\n"
                     ".sample .q{background:#f4f6f8;padding:8px 12px;font-weight:600;white-space:pre-wrap}\n"
                     ".sample .cols{display:flex} .sample .cols>div{flex:1;padding:8px 12px;white-space:pre-wrap;border-top:1px solid #eee}\n"
                     ".sample .cols>div+div{border-left:1px solid #eee} .sample .h{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#888;margin-bottom:4px;white-space:normal}\n"
                     ".warn{background:#fff4e5;border-left:4px solid #f0a030;padding:6px 10px;margin:4px 0}\n"
                     "</style></head><body>\n");
    PUT(b, "<h1>Training report</h1>\n<p class=\"sub\">");
    esc(b, in->title);
    PUT(b, "</p>\n");
    PUT(b, "<div class=\"grid\"><div>\n<h2>Summary</h2>\n");
    kv_table(b, in->summary, in->n_summary);
    PUT(b, "</div><div>\n<h2>Data</h2>\n");
    kv_table(b, in->data, in->n_data);
    PUT(b, "</div></div>\n<h2>Loss</h2>\n");
    tk_status st = TK_OK;
    if (in->metrics) {
        st = tk_report_loss_svg(in->metrics, 1000, 380, b);
        if (!st) { PUT(b, "<h2>Learning rate</h2>\n"); st = lr_svg(in->metrics, 1000, 160, b); }
        bool any = false;
        for (int64_t i = 0; i < in->metrics->n_events; i++) {
            const char *nm = in->metrics->event_name[i];
            if (strcmp(nm, "warning") && strcmp(nm, "early_stop")) continue;
            if (!any) { PUT(b, "<h2>Warnings and events</h2>\n"); any = true; }
            tk_buf_printf(b, "<div class=\"warn\">step %lld: ", (long long)in->metrics->event_step[i]);
            esc(b, in->metrics->event_msg[i]);
            PUT(b, "</div>\n");
        }
    }
    if (in->eval_text) {
        PUT(b, "<h2>Evaluation</h2>\n<pre>");
        esc(b, in->eval_text);
        PUT(b, "</pre>\n<p><a href=\"eval/report.html\">answers side by side</a> · eval/results.json · eval/examples.jsonl</p>\n");
    }
    if (in->n_samples) {
        PUT(b, "<h2>Validation prompts, before and after training</h2>\n");
        for (int i = 0; i < in->n_samples; i++) {
            const tk_report_sample *s = &in->samples[i];
            PUT(b, "<div class=\"sample\"><div class=\"q\">");
            esc(b, s->question);
            PUT(b, "</div><div class=\"cols\"><div><div class=\"h\">before</div>");
            esc(b, s->before);
            PUT(b, "</div><div><div class=\"h\">after</div>");
            esc(b, s->after);
            PUT(b, "</div><div><div class=\"h\">reference</div>");
            esc(b, s->reference);
            PUT(b, "</div></div></div>\n");
        }
    }
    PUT(b, "<h2>Configuration</h2>\n");
    config_table(b, in->config_json);
    PUT(b, "<p class=\"sub\">Written by takumi " TK_VERSION ".</p>\n</body></html>\n");
    if (!st && !b->data) st = TK_ERR_NOMEM;
    return st;
}

tk_status tk_report_write(const char *path, const tk_report_input *in) {
    tk_buf b = {0};
    tk_status st = tk_report_html(in, &b);
    if (!st) st = tk_write_file_atomic(path, b.data, b.len);
    tk_buf_free(&b);
    return st;
}
