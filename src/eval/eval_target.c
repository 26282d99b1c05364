/* Targets that gate a release: "METRIC>=X", ">", "<=", "<", "==" against an evaluation's values. */
#include "eval/eval_internal.h"
#include <ctype.h>
#include <math.h>

static const char *const OPS[] = {">=", ">", "<=", "<", "=="};

tk_status tk_eval_target_parse(const char *text, tk_eval_target *out) {
    memset(out, 0, sizeof *out);
    const char *p = text;
    while (*p && !strchr("<>=", *p)) p++;
    size_t n = (size_t)(p - text);
    while (n && isspace((unsigned char)text[n - 1])) n--;
    const char *s = text;
    while (n && isspace((unsigned char)*s)) { s++; n--; }
    if (!*p || n == 0) return tk_fail(TK_ERR_ARG, "--target '%s': expected METRIC>=X (or >, <=, <, ==), e.g. fact_match>=0.8", text);
    if (n >= sizeof out->metric) return tk_fail(TK_ERR_ARG, "--target '%s': metric name too long", text);
    memcpy(out->metric, s, n);
    int op = -1;
    for (int i = 0; i < 5 && op < 0; i++) if (!strncmp(p, OPS[i], strlen(OPS[i]))) op = i;
    if (op < 0) return tk_fail(TK_ERR_ARG, "--target '%s': unknown comparison (use >=, >, <=, < or ==)", text);
    p += strlen(OPS[op]);
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == p || *end || errno || !isfinite(x)) return tk_fail(TK_ERR_ARG, "--target '%s': '%s' is not a number", text, p);
    if (!tk_eval_metric_known(out->metric)) return tk_fail(TK_ERR_ARG, "--target '%s': unknown metric '%s' (known: %s)", text, out->metric, tk_eval_metric_names());
    out->op = (tk_eval_op)op;
    out->x = x;
    return TK_OK;
}

bool tk_eval_target_met(const tk_eval_target *t, const tk_eval_result *r, double *value) {
    const tk_eval_metric *m = tk_eval_find(r, t->metric);
    double v = m ? m->value : NAN;
    if (value) *value = v;
    if (!isfinite(v)) return false;
    switch (t->op) {
    case TK_EVAL_GE: return v >= t->x;
    case TK_EVAL_GT: return v > t->x;
    case TK_EVAL_LE: return v <= t->x;
    case TK_EVAL_LT: return v < t->x;
    case TK_EVAL_EQ: return v == t->x;
    }
    return false;
}

void tk_eval_target_format(const tk_eval_target *t, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%g", t->metric, OPS[t->op], t->x);
}
