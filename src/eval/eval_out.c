/* Writing an evaluation: the text table, the JSON document, and the --out folder (results.json,
 * examples.jsonl with per-example answers and scores, a self-contained report.html). */
#include "eval/eval_result.h"
#include "data/data_internal.h"
#include <math.h>

static double ex_value(const tk_eval_result *r, int c, int s, size_t i) {
    const double *row = r->stats[s] + i * r->stride;
    int64_t one = 0;
    return tk_eval_col_value(&r->cols[c], &row, &one, 1, NULL);
}

static const char *num(char *b, size_t n, double v) {
    if (!isfinite(v)) snprintf(b, n, "-");
    else if (v == 0) snprintf(b, n, "0");
    else if (fabs(v) >= 1000 || (fabs(v) < 1e-3 && v != 0)) snprintf(b, n, "%.4g", v);
    else snprintf(b, n, "%.4f", v);
    return b;
}

/* Classification: the confusion matrix [reference label x predicted label], the last column for answers that are
 * none of the labels; NULL when the data has no labels or no answers. */
static int64_t *confusion(const tk_eval_result *r, int s) {
    size_t L = r->set.n_labels;
    if (!L) return NULL;
    int64_t *m = tk_calloc(L * (L + 1), sizeof *m);
    bool any = false;
    for (size_t i = 0; m && i < r->set.n; i++) {
        const tk_eval_ex *ex = &r->set.v[i];
        if (!ex->is_label || !ex->pred[s]) continue;
        size_t t = 0, p = L;
        while (t < L && strcmp(r->set.labels[t], ex->reference)) t++;
        for (size_t l = 0; l < L; l++) if (tk_eval_label_eq(ex->pred[s], r->set.labels[l])) { p = l; break; }
        if (t < L) { m[t * (L + 1) + p]++; any = true; }
    }
    if (!any) { free(m); return NULL; }
    return m;
}

tk_status tk_eval_text(const tk_eval_result *r, tk_buf *out) {
    char a[32], b[32], c[32], d[32], e[32];
    tk_status st = tk_buf_printf(out, "model: %s\n%s%s%sexamples: %zu\n\n", r->model ? r->model : "-", r->has_base ? "baseline: " : "",
                                 r->has_base ? r->baseline : "", r->has_base ? "\n" : "", r->set.n);
    if (!st) st = r->has_base ? tk_buf_printf(out, "%-16s %10s %10s %10s  %-23s %6s\n", "metric", "value", "baseline", "diff", "95% CI of diff", "n")
                              : tk_buf_printf(out, "%-16s %10s  %-23s %6s\n", "metric", "value", "95% CI", "n");
    for (int i = 0; !st && i < r->n_cols; i++) {
        const tk_eval_metric *m = &r->metrics[i];
        char ci[64];
        snprintf(ci, sizeof ci, "[%s, %s]", num(d, sizeof d, m->lo), num(e, sizeof e, m->hi));
        st = r->has_base ? tk_buf_printf(out, "%-16s %10s %10s %10s  %-23s %6lld\n", m->name, num(a, sizeof a, m->value), num(b, sizeof b, m->base),
                                         num(c, sizeof c, m->diff), ci, (long long)m->n)
                         : tk_buf_printf(out, "%-16s %10s  %-23s %6lld\n", m->name, num(a, sizeof a, m->value), ci, (long long)m->n);
    }
    for (int s = 0; !st && s < (r->has_base ? 2 : 1); s++) {
        if (r->n_generated[s] && r->gen_s[s] > 0)
            st = tk_buf_printf(out, "\ngeneration%s: %lld tokens in %.1f s (%.1f tokens/s, %.2f examples/s)", s ? " (baseline)" : "",
                               (long long)r->n_generated[s], r->gen_s[s], (double)r->n_generated[s] / r->gen_s[s], (double)r->set.n / r->gen_s[s]);
        if (!st && r->n_too_long[s]) st = tk_buf_printf(out, "\nskipped%s: %lld examples longer than --max-seq-len", s ? " (baseline)" : "", (long long)r->n_too_long[s]);
        if (!st && r->n_failures[s]) st = tk_buf_printf(out, "\ngrader failures%s: %lld", s ? " (baseline)" : "", (long long)r->n_failures[s]);
    }
    int64_t *cm = st ? NULL : confusion(r, 0);
    size_t L = r->set.n_labels;
    if (cm) {
        st = tk_buf_printf(out, "\n\nconfusion matrix (rows: reference label, columns: answer)\n%-16s", "");
        for (size_t l = 0; l <= L && !st; l++) st = tk_buf_printf(out, " %10.10s", l < L ? r->set.labels[l] : "(other)");
        for (size_t t = 0; t < L && !st; t++) {
            st = tk_buf_printf(out, "\n%-16.16s", r->set.labels[t]);
            for (size_t l = 0; l <= L && !st; l++) st = tk_buf_printf(out, " %10lld", (long long)cm[t * (L + 1) + l]);
        }
        free(cm);
    }
    if (!st && r->n_general) st = tk_buf_printf(out, "\n\nforgetting (general data, with the adapter vs the bare base):\n");
    for (int g = 0; !st && g < r->n_general; g++) {
        const tk_eval_general *x = &r->general[g];
        st = tk_buf_printf(out, "  %-40s %-7s %10s %10s  %s\n", x->path, x->metric, num(a, sizeof a, x->with), num(b, sizeof b, x->without),
                           x->flagged ? "DROP beyond --max-drop" : "ok");
    }
    if (!st) {
        uint64_t pii = 0;
        for (int k = 0; k < TK_PII_COUNT; k++) pii += r->pii[0][k];
        st = tk_buf_printf(out, "\n\nsafety: personal data in %llu answers", (unsigned long long)pii);
        if (!st && r->train_checked) st = tk_buf_printf(out, ", training-file personal data in %llu", (unsigned long long)r->train_pii[0]);
        if (!st && r->n_forbidden_patterns) st = tk_buf_printf(out, ", forbidden patterns in %llu", (unsigned long long)r->forbidden[0]);
        for (int h = 0; !st && h < r->n_hits && h < 5; h++) {
            const char *t = r->hits[h].text;
            size_t n = strlen(t);
            if (n > 80) { n = 80; while (n && ((unsigned char)t[n] & 0xC0) == 0x80) n--; }  /* whole characters */
            st = tk_buf_printf(out, "\n  line %llu%s: %s: %.*s%s", (unsigned long long)r->hits[h].line, r->hits[h].sys ? " (baseline)" : "",
                               r->hits[h].what, (int)n, t, n < strlen(t) ? "…" : "");
        }
        if (!st) st = tk_buf_printf(out, "\n");
    }
    return st;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *result_json(const tk_eval_result *r) {
    cJSON *o = cJSON_CreateObject(), *ms = cJSON_AddObjectToObject(o, "metrics");
    cJSON_AddStringToObject(o, "model", r->model ? r->model : "");
    if (r->has_base) cJSON_AddStringToObject(o, "baseline", r->baseline);
    cJSON_AddNumberToObject(o, "examples", (double)r->set.n);
    for (int i = 0; i < r->n_cols; i++) {
        const tk_eval_metric *m = &r->metrics[i];
        cJSON *x = cJSON_AddObjectToObject(ms, m->name);
        cJSON_AddItemToObject(x, "value", num_or_null(m->value));
        cJSON_AddNumberToObject(x, "n", (double)m->n);
        if (m->has_base) { cJSON_AddItemToObject(x, "baseline", num_or_null(m->base)); cJSON_AddItemToObject(x, "diff", num_or_null(m->diff)); }
        cJSON *ci = cJSON_AddArrayToObject(x, "ci95");
        cJSON_AddItemToArray(ci, num_or_null(m->lo));
        cJSON_AddItemToArray(ci, num_or_null(m->hi));
    }
    cJSON *gen = cJSON_AddObjectToObject(o, "generation");
    cJSON_AddNumberToObject(gen, "tokens", (double)r->n_generated[0]);
    cJSON_AddNumberToObject(gen, "seconds", r->gen_s[0]);
    cJSON_AddItemToObject(gen, "examples_per_s", num_or_null(r->gen_s[0] > 0 ? (double)r->set.n / r->gen_s[0] : NAN));
    cJSON_AddNumberToObject(o, "skipped_too_long", (double)r->n_too_long[0]);
    cJSON_AddNumberToObject(o, "grader_failures", (double)r->n_failures[0]);
    int64_t *cm = confusion(r, 0);
    if (cm) {
        size_t L = r->set.n_labels;
        cJSON *c = cJSON_AddObjectToObject(o, "confusion"), *lab = cJSON_AddArrayToObject(c, "labels"), *rows = cJSON_AddArrayToObject(c, "matrix");
        for (size_t l = 0; l < L; l++) cJSON_AddItemToArray(lab, cJSON_CreateString(r->set.labels[l]));
        cJSON_AddItemToArray(lab, cJSON_CreateString("(other)"));
        for (size_t t = 0; t < L; t++) {
            cJSON *row = cJSON_CreateArray();
            for (size_t l = 0; l <= L; l++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)cm[t * (L + 1) + l]));
            cJSON_AddItemToArray(rows, row);
        }
        free(cm);
    }
    cJSON *gl = cJSON_AddArrayToObject(o, "forgetting");
    for (int g = 0; g < r->n_general; g++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "file", r->general[g].path);
        cJSON_AddStringToObject(x, "metric", r->general[g].metric);
        cJSON_AddItemToObject(x, "with_adapter", num_or_null(r->general[g].with));
        cJSON_AddItemToObject(x, "base", num_or_null(r->general[g].without));
        cJSON_AddBoolToObject(x, "flagged", r->general[g].flagged);
        cJSON_AddItemToArray(gl, x);
    }
    cJSON *sf = cJSON_AddObjectToObject(o, "safety"), *pii = cJSON_AddObjectToObject(sf, "personal_data");
    for (int k = 0; k < TK_PII_COUNT; k++) cJSON_AddNumberToObject(pii, tk_pii_name((tk_pii_kind)k), (double)r->pii[0][k]);
    if (r->train_checked) cJSON_AddNumberToObject(sf, "training_personal_data", (double)r->train_pii[0]);
    if (r->n_forbidden_patterns) cJSON_AddNumberToObject(sf, "forbidden", (double)r->forbidden[0]);
    cJSON *hl = cJSON_AddArrayToObject(sf, "examples");
    for (int h = 0; h < r->n_hits; h++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "line", (double)r->hits[h].line);
        cJSON_AddStringToObject(x, "system", r->hits[h].sys ? "baseline" : "model");
        cJSON_AddStringToObject(x, "what", r->hits[h].what);
        cJSON_AddStringToObject(x, "answer", r->hits[h].text);
        cJSON_AddItemToArray(hl, x);
    }
    return o;
}

static tk_status append_json(cJSON *o, tk_buf *out) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return TK_ERR_NOMEM;
    tk_status st = tk_buf_append(out, s, strlen(s));
    free(s);
    return st;
}

tk_status tk_eval_json(const tk_eval_result *r, tk_buf *out) { return append_json(result_json(r), out); }

static const char *last_user(const tk_eval_ex *ex) {
    for (size_t i = ex->n_prompt; i-- > 0;) if (ex->prompt[i].role == TK_ROLE_USER) return ex->prompt[i].content;
    return ex->text ? ex->text : "";
}

static tk_status examples_jsonl(const tk_eval_result *r, tk_buf *out) {
    tk_status st = TK_OK;
    for (size_t i = 0; i < r->set.n && !st; i++) {
        const tk_eval_ex *ex = &r->set.v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "line", (double)ex->line);
        if (ex->id) cJSON_AddStringToObject(o, "id", ex->id);
        cJSON_AddStringToObject(o, "prompt", last_user(ex));
        if (ex->reference) cJSON_AddStringToObject(o, "reference", ex->reference);
        for (int s = 0; s < (r->has_base ? 2 : 1); s++) {
            if (ex->pred[s]) cJSON_AddStringToObject(o, s ? "baseline_answer" : "answer", ex->pred[s]);
            if (ex->has_pref[s]) {
                cJSON *pp = cJSON_AddArrayToObject(o, s ? "baseline_chosen_rejected" : "chosen_rejected");
                cJSON_AddItemToArray(pp, cJSON_CreateNumber(ex->pref[s][0]));
                cJSON_AddItemToArray(pp, cJSON_CreateNumber(ex->pref[s][1]));
            }
            if (ex->has_pref_ref[s]) {
                cJSON *pp = cJSON_AddArrayToObject(o, s ? "baseline_reference_chosen_rejected" : "reference_chosen_rejected");
                cJSON_AddItemToArray(pp, cJSON_CreateNumber(ex->pref_ref[s][0]));
                cJSON_AddItemToArray(pp, cJSON_CreateNumber(ex->pref_ref[s][1]));
            }
            if (ex->choice_lp[s]) {
                cJSON *cl = cJSON_AddArrayToObject(o, s ? "baseline_choice_logp" : "choice_logp");
                for (int k = 0; k < ex->n_choices; k++) cJSON_AddItemToArray(cl, cJSON_CreateNumber(ex->choice_lp[s][k]));
            }
            cJSON *sc = cJSON_AddObjectToObject(o, s ? "baseline_scores" : "scores");
            for (int c = 0; c < r->n_cols; c++) {
                double v = ex_value(r, c, s, i);
                if (isfinite(v)) cJSON_AddNumberToObject(sc, r->cols[c].name, v);
            }
            if (ex->grade_error[s]) cJSON_AddStringToObject(o, s ? "baseline_grader_error" : "grader_error", ex->grade_error[s]);
        }
        st = append_json(o, out);
        if (!st) st = tk_buf_append(out, "\n", 1);
    }
    return st;
}

static tk_status html_text(tk_buf *b, const char *s) {
    tk_status st = TK_OK;
    for (; *s && !st; s++) {
        switch (*s) {
        case '<': st = tk_buf_append(b, "&lt;", 4); break;
        case '>': st = tk_buf_append(b, "&gt;", 4); break;
        case '&': st = tk_buf_append(b, "&amp;", 5); break;
        case '"': st = tk_buf_append(b, "&quot;", 6); break;
        case '\'': st = tk_buf_append(b, "&#39;", 5); break;
        default: st = tk_buf_append(b, s, 1);
        }
    }
    return st;
}

/* The per-example score that orders the report: the first mean-type column (fact_match, grader, exact_match, ...). */
static int order_col(const tk_eval_result *r) {
    static const char *pref[] = {"fact_match", "grader", "judge", "accuracy", "exact_match", "f1", "rougeL", "chrf", "token_acc", "mc_acc", "pref_accuracy", NULL};
    for (int k = 0; pref[k]; k++)
        for (int c = 0; c < r->n_cols; c++) if (!strcmp(r->cols[c].name, pref[k])) return c;
    return r->n_cols ? 0 : -1;
}

typedef struct ord_key { double d; size_t i; } ord_key;
static int cmp_key(const void *a, const void *b) {
    const ord_key *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->i > y->i) - (x->i < y->i);
}

static tk_status html(const tk_eval_result *r, tk_buf *b) {
    char x[32], y[32], z[32];
    tk_status st = tk_buf_printf(b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>takumi eval</title><style>"
        "body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}"
        "th{background:#f4f4f4}.ans{white-space:pre-wrap;max-width:420px}.bad{color:#b00}.good{color:#070}</style></head><body><h1>Evaluation</h1><p>model: ");
    if (!st) st = html_text(b, r->model ? r->model : "-");
    if (!st && r->has_base) { st = tk_buf_printf(b, "<br>baseline: "); if (!st) st = html_text(b, r->baseline); }
    if (!st) st = tk_buf_printf(b, "<br>examples: %zu</p><table><tr><th>metric</th><th>value</th>%s<th>95%% CI</th><th>n</th></tr>", r->set.n,
                                r->has_base ? "<th>baseline</th><th>diff</th>" : "");
    for (int i = 0; !st && i < r->n_cols; i++) {
        const tk_eval_metric *m = &r->metrics[i];
        st = tk_buf_printf(b, "<tr><td>%s</td><td>%s</td>", m->name, num(x, sizeof x, m->value));
        if (!st && r->has_base) st = tk_buf_printf(b, "<td>%s</td><td>%s</td>", num(y, sizeof y, m->base), num(z, sizeof z, m->diff));
        if (!st) st = tk_buf_printf(b, "<td>[%s, %s]</td><td>%lld</td></tr>", num(x, sizeof x, m->lo), num(y, sizeof y, m->hi), (long long)m->n);
    }
    int oc = order_col(r);
    if (!st) st = tk_buf_printf(b, "</table><h2>Answers%s</h2><table><tr><th>line</th><th>prompt</th><th>reference</th><th>answer</th>%s<th>%s</th></tr>",
                                r->has_base ? ", worst regressions first" : ", lowest scores first", r->has_base ? "<th>baseline answer</th>" : "",
                                oc >= 0 ? r->cols[oc].name : "score");
    ord_key *ord = st ? NULL : tk_malloc((r->set.n ? r->set.n : 1) * sizeof *ord);
    if (!st && !ord) st = TK_ERR_NOMEM;
    for (size_t i = 0; !st && i < r->set.n; i++) {
        /* worst first: the score minus the baseline's (or the score alone) */
        double d = oc >= 0 ? ex_value(r, oc, 0, i) - (r->has_base ? ex_value(r, oc, 1, i) : 0) : 0;
        ord[i] = (ord_key){isfinite(d) ? d : 0, i};
    }
    if (!st) qsort(ord, r->set.n, sizeof *ord, cmp_key);
    for (size_t k = 0; !st && k < r->set.n; k++) {
        const tk_eval_ex *ex = &r->set.v[ord[k].i];
        st = tk_buf_printf(b, "<tr><td>%llu</td><td class=\"ans\">", (unsigned long long)ex->line);
        if (!st) st = html_text(b, last_user(ex));
        if (!st) st = tk_buf_printf(b, "</td><td class=\"ans\">");
        if (!st) st = html_text(b, ex->reference ? ex->reference : "");
        for (int s = 0; !st && s < (r->has_base ? 2 : 1); s++) {
            st = tk_buf_printf(b, "</td><td class=\"ans\">");
            if (!st) st = html_text(b, ex->pred[s] ? ex->pred[s] : "");
        }
        if (!st && oc >= 0) {
            double v0 = ex_value(r, oc, 0, ord[k].i), v1 = r->has_base ? ex_value(r, oc, 1, ord[k].i) : NAN;
            st = r->has_base ? tk_buf_printf(b, "</td><td class=\"%s\">%s vs %s</td></tr>", v0 < v1 ? "bad" : v0 > v1 ? "good" : "",
                                             num(x, sizeof x, v0), num(y, sizeof y, v1))
                             : tk_buf_printf(b, "</td><td>%s</td></tr>", num(x, sizeof x, v0));
        }
        else if (!st) st = tk_buf_printf(b, "</td></tr>");
    }
    free(ord);
    if (!st) st = tk_buf_printf(b, "</table></body></html>\n");
    return st;
}

static tk_status write_one(const char *dir, const char *name, const tk_buf *b) {
    char *p = tk_path_join(dir, name);
    if (!p) return TK_ERR_NOMEM;
    tk_status st = tk_write_file_atomic(p, b->data ? b->data : "", b->len);
    free(p);
    return st;
}

tk_status tk_eval_write_dir(const tk_eval_result *r, const char *dir) {
    tk_status st = tk_mkdir_p(dir);
    tk_buf a = {0}, e = {0}, h = {0};
    if (!st) st = tk_eval_json(r, &a);
    if (!st) st = tk_buf_append(&a, "\n", 1);
    if (!st) st = examples_jsonl(r, &e);
    if (!st) st = html(r, &h);
    if (!st) st = write_one(dir, "results.json", &a);
    if (!st) st = write_one(dir, "examples.jsonl", &e);
    if (!st) st = write_one(dir, "report.html", &h);
    tk_buf_free(&a); tk_buf_free(&e); tk_buf_free(&h);
    return st;
}
