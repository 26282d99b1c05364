/* An evaluation run: read the records, choose the metrics the data supports (or check the requested
 * ones), generate answers with the model under test and the baseline, score every example, then
 * corpus values with paired bootstrap intervals, forgetting and safety (eval_checks.c). */
#include "eval/eval_model.h"
#include "eval/eval_result.h"
#include "eval/eval_grade.h"
#include <math.h>

tk_eval_params tk_eval_default_params(void) {
    return (tk_eval_params){.max_tokens = 128, .batch = 8, .n_boot = 1000, .max_grader_failures = -1,
                            .max_drop_acc = 0.02, .max_drop_ppl = 0.05};
}

static tk_status add_col(tk_eval_result *r, const char *name, const tk_metric_def *d) {
    for (int i = 0; i < r->n_cols; i++) if (!strcmp(r->cols[i].name, name)) return TK_OK;
    int gi = -1;
    if (!strncmp(name, "grader:", 7)) {
        for (int i = 0; r->grader && i < tk_grader_n_scores(r->grader) && gi < 0; i++)
            if (!strcmp(tk_grader_score_name(r->grader, i), name + 7)) gi = i;
        if (gi < 0) return tk_fail(TK_ERR_ARG, "--metrics %s: the grader has no score named '%s'", name, name + 7);
    }
    tk_eval_col *c = tk_realloc(r->cols, (size_t)(r->n_cols + 1) * sizeof *c);
    if (!c) return TK_ERR_NOMEM;
    r->cols = c;
    tk_eval_col *n = &c[r->n_cols];
    *n = (tk_eval_col){.name = tk_strdup(name), .def = d, .n_stats = d->n_stats, .grader_index = gi};
    if (!n->name) return TK_ERR_NOMEM;
    if (d->n_stats < 0) n->n_stats = 3 * (int)r->set.n_labels;
    n->off = r->stride;
    r->stride += 1 + n->n_stats;
    r->n_cols++;
    return TK_OK;
}

/* The requested metrics (or the defaults), each checked against what the data has and what is loaded. */
static tk_status choose(tk_eval_result *r, const tk_eval_params *p, bool have_model) {
    int kinds = r->set.kinds;
    bool answers = have_model || (kinds & TK_EX_PRED);
    /* a classifier answers label records with its head: label metrics only */
    const bool cls = have_model && p->adapter && tk_classifier_is(p->adapter);
    if (cls && !(kinds & TK_EX_LABEL))
        return tk_fail(TK_ERR_ARG, "%s is a classifier: it predicts labels, and %s has no classification records ({\"text\", \"label\"})",
                       p->adapter, p->data);
    if (p->metrics) {
        char *list = tk_strdup(p->metrics), *save = NULL;
        if (!list) return TK_ERR_NOMEM;
        tk_status st = TK_OK;
        for (char *t = strtok_r(list, ", ", &save); t && !st; t = strtok_r(NULL, ", ", &save)) {
            const tk_metric_def *d = tk_metric_def_find(t);
            if (!d) st = tk_fail(TK_ERR_ARG, "--metrics: unknown metric '%s' (known: %s)", t, tk_eval_metric_names());
            else if (tk_eval_lacks(d, kinds))
                st = tk_fail(TK_ERR_ARG, "--metrics %s needs %s, and %s has none", t, tk_eval_lacks(d, kinds), p->data ? p->data : p->predictions);
            else if (cls && !(d->needs & TK_EX_LABEL) && strcmp(d->name, "exact_match"))
                st = tk_fail(TK_ERR_ARG, "%s is a classifier: it predicts labels (accuracy, macro_f1, exact_match), not %s", p->adapter, t);
            else if (d->model == 1 && !have_model)
                st = tk_fail(TK_ERR_ARG, "--metrics %s scores the reference with a model: give --model (--predictions alone has none)", t);
            else if (d->model == 2 && !answers)
                st = tk_fail(TK_ERR_ARG, "--metrics %s needs answers: give --model, or --predictions", t);
            else if (!strcmp(d->name, "grader") && !p->grader)
                st = tk_fail(TK_ERR_ARG, "--metrics %s needs --grader G.json", t);
            else if (!strcmp(d->name, "judge") && !p->judge)
                st = tk_fail(TK_ERR_ARG, "--metrics judge needs --judge MODEL");
            else if (!strcmp(d->name, "reward_accuracy") && !p->adapter)
                st = tk_fail(TK_ERR_ARG, "--metrics reward_accuracy is the adapter's implicit reward against its base (DPO): give --adapter");
            else st = add_col(r, t, d);
        }
        free(list);
        return st;
    }
    for (int i = 0; tk_metric_def_at(i); i++) {
        const tk_metric_def *d = tk_metric_def_at(i);
        int need = d->needs & ~TK_EX_GEN;
        if (tk_eval_lacks(d, kinds)) continue;
        if (d->model == 1 && !have_model) continue;
        if (cls && !(d->needs & TK_EX_LABEL)) continue;
        if (d->model == 2 && (!answers || (!(kinds & TK_EX_GEN) && !(kinds & TK_EX_PRED)))) continue;
        if (!strcmp(d->name, "grader") && !p->grader) continue;
        if (!strcmp(d->name, "judge") && !p->judge) continue;
        if (!strcmp(d->name, "reward_accuracy") && (!p->adapter || tk_reward_model_is(p->adapter))) continue;
        /* classification answers are labels: text-overlap metrics are noise there */
        if ((kinds & TK_EX_LABEL) && d->model == 2 && (need & TK_EX_REF) && strcmp(d->name, "exact_match")) continue;
        tk_status st = add_col(r, d->name, d);
        if (st) return st;
        if (!strcmp(d->name, "grader"))   /* one column per score of the grader (a multi's sub-graders too) */
            for (int g = 0; g < tk_grader_n_scores(r->grader) && !st; g++) {
                char nm[300];
                snprintf(nm, sizeof nm, "grader:%s", tk_grader_score_name(r->grader, g));
                st = add_col(r, nm, d);
            }
        if (st) return st;
    }
    if (r->n_cols == 0) return tk_fail(TK_ERR_ARG, "%s: no metric applies to these records without a model", p->data ? p->data : p->predictions);
    return TK_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Corpus values, and the 95% percentile interval of value (or of value - baseline) over seeded resamples of examples. */
static tk_status finish(tk_eval_result *r, const tk_eval_params *p) {
    int64_t n = (int64_t)r->set.n;
    if (!(r->metrics = tk_calloc((size_t)r->n_cols, sizeof *r->metrics))) return TK_ERR_NOMEM;
    const double **s0 = tk_malloc((size_t)n * sizeof *s0), **s1 = tk_malloc((size_t)n * sizeof *s1);
    int64_t *idx = tk_malloc((size_t)n * sizeof *idx);
    int nb = p->n_boot > 0 ? p->n_boot : 0;
    double *boot = tk_malloc((size_t)(nb ? nb : 1) * sizeof *boot);
    tk_status st = s0 && s1 && idx && boot ? TK_OK : TK_ERR_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) {
        s0[i] = r->stats[0] + i * r->stride;
        s1[i] = r->has_base ? r->stats[1] + i * r->stride : s0[i];
    }
    for (int c = 0; !st && c < r->n_cols; c++) {
        tk_eval_metric *m = &r->metrics[c];
        const tk_eval_col *col = &r->cols[c];
        m->name = col->name;
        m->value = tk_eval_col_value(col, s0, NULL, n, &m->n);
        m->has_base = r->has_base;
        if (r->has_base) { m->base = tk_eval_col_value(col, s1, NULL, n, NULL); m->diff = m->value - m->base; }
        tk_rng rng;
        tk_rng_seed(&rng, p->seed ^ tk_mix64((uint64_t)c + 1));
        int k = 0;
        for (int b = 0; b < nb; b++) {
            for (int64_t i = 0; i < n; i++) idx[i] = (int64_t)(tk_rng_u64(&rng) % (uint64_t)n);
            double v = tk_eval_col_value(col, s0, idx, n, NULL);
            if (r->has_base) v -= tk_eval_col_value(col, s1, idx, n, NULL);
            if (isfinite(v)) boot[k++] = v;
        }
        m->lo = m->hi = NAN;
        if (k >= 2) {
            qsort(boot, (size_t)k, sizeof *boot, cmp_double);
            m->lo = boot[(int)floor(0.025 * (k - 1))];
            m->hi = boot[(int)ceil(0.975 * (k - 1))];
        }
    }
    free(s0); free(s1); free(idx); free(boot);
    return st;
}

static bool wants(const tk_eval_result *r, int model) {
    for (int c = 0; c < r->n_cols; c++) if (r->cols[c].def->model == model) return true;
    return false;
}

static tk_status run_system(tk_eval_result *r, const tk_eval_params *p, tk_eval_sys *sys, int which, bool gen, tk_eval_grading *g) {
    tk_status st = TK_OK;
    if (sys) sys->exact = p->exact;
    if (gen) st = tk_eval_generate(sys, &r->set, which, p->max_tokens, p->batch, p->progress, p->progress_ud, &r->gen_s[which], &r->n_generated[which]);
    for (size_t i = 0; !st && i < r->set.n; i++) {
        tk_eval_ex *ex = &r->set.v[i];
        double *s = r->stats[which] + i * r->stride;
        if (sys) {
            tk_eval_score_reset(sys);
            st = tk_eval_score(sys, ex, which, r->cols, r->n_cols, s, &r->n_too_long[which]);
        }
        if (!st) st = tk_eval_text_stats(&r->set, ex, ex->pred[which], r->cols, r->n_cols, s);
        if (!st && (g->grader || g->judge_grader))
            st = tk_eval_grade(g, ex, which, r->cols, r->n_cols, s, &r->n_failures[which], p->max_grader_failures);
        if (p->progress && sys && wants(r, 1)) p->progress(p->progress_ud, which ? "scoring (baseline)" : "scoring", (int64_t)i + 1, (int64_t)r->set.n);
    }
    return st;
}

static char *describe(const char *model, const char *adapter) {
    tk_buf b = {0};
    if (tk_buf_printf(&b, "%s%s%s", model ? model : "(predictions)", adapter ? " + " : "", adapter ? adapter : "")) { tk_buf_free(&b); return NULL; }
    return b.data;
}

tk_status tk_eval_run(const tk_eval_params *p, tk_eval_result **out) {
    *out = NULL;
    if (!p->data == !p->predictions) return tk_fail(TK_ERR_ARG, "give exactly one of --data and --predictions");
    if ((p->baseline_model != NULL) + (p->baseline_adapter != NULL) + p->baseline_base > 1)
        return tk_fail(TK_ERR_ARG, "give at most one of --baseline-model, --baseline-adapter and --baseline-base");
    if (p->baseline_base && !p->adapter) return tk_fail(TK_ERR_ARG, "--baseline-base compares the adapter with the bare base: give --adapter");
    if (p->predictions && (p->baseline_model || p->baseline_adapter || p->adapter))
        return tk_fail(TK_ERR_ARG, "--predictions are scored as they are: a baseline or adapter needs --data and --model");
    if (p->map && !p->data)
        return tk_fail(TK_ERR_ARG, "--map reads --data records; a --predictions file is read by its own keys (\"prediction\", \"reference\"; "
                       "a CSV file by its header)");
    if (p->baseline_adapter && !p->model) return tk_fail(TK_ERR_ARG, "--baseline-adapter needs --model");
    if (p->n_general && !p->adapter) return tk_fail(TK_ERR_ARG, "--general compares the model with and without --adapter: give --adapter");
    if (p->max_tokens < 1) return tk_fail(TK_ERR_ARG, "--max-tokens must be at least 1");
    tk_eval_result *r = tk_calloc(1, sizeof *r);
    if (!r) return TK_ERR_NOMEM;
    tk_eval_sys sys[2] = {{0}};
    tk_eval_grading grading = {0};
    bool have_model = p->model && !p->predictions, open[2] = {false, false};
    tk_status st = tk_eval_set_load(p->data ? p->data : p->predictions, p->data ? p->map : NULL, p->predictions != NULL, p->system, &r->set);
    if (!st) st = tk_eval_grading_open(&grading, p);
    r->grader = grading.grader;
    if (!st) st = choose(r, p, have_model);
    r->has_base = p->baseline_model || p->baseline_adapter || p->baseline_base;
    r->model = describe(p->predictions ? NULL : p->model, p->adapter);
    r->baseline = r->has_base ? describe(p->baseline_model ? p->baseline_model : p->model, p->baseline_adapter) : NULL;
    if (r->has_base && !r->baseline) st = TK_ERR_NOMEM;
    size_t cells;
    if (!st && !tk_mul_ok(r->set.n, (size_t)r->stride, &cells)) st = TK_ERR_NOMEM;
    for (int s = 0; !st && s < (r->has_base ? 2 : 1); s++)
        if (!(r->stats[s] = tk_calloc(cells ? cells : 1, sizeof(double)))) st = TK_ERR_NOMEM;
    if (!st && have_model) {
        st = tk_eval_sys_open(NULL, p->model, p->tokenizer, p->adapter, p->template_name, &sys[0]);
        open[0] = !st;
        if (!st && r->has_base) {
            st = p->baseline_adapter || p->baseline_base
                     ? tk_eval_sys_open(sys[0].m, p->model, p->tokenizer, p->baseline_adapter, p->template_name, &sys[1])
                                     : tk_eval_sys_open(NULL, p->baseline_model, p->tokenizer, NULL, p->template_name, &sys[1]);
            open[1] = !st;
        }
        for (int s = 0; s < 2; s++) {
            if (!open[s]) continue;
            int32_t ctx = tk_model_get_config(sys[s].m)->max_seq;
            sys[s].max_seq = p->max_seq > 0 && p->max_seq < ctx ? p->max_seq : ctx;
            if (sys[s].max_seq > 4096 && p->max_seq <= 0) sys[s].max_seq = 4096;
        }
    }
    for (int s = 0; !st && s < 2; s++)
        if (open[s] && sys[s].rm && (!(r->set.kinds & TK_EX_PREF) || wants(r, 2) || r->n_cols != 1))
            st = tk_fail(TK_ERR_ARG, "%s is a reward model: it scores preference pairs (pref_accuracy), not %s", s ? p->baseline_adapter : p->adapter,
                         r->set.kinds & TK_EX_PREF ? "the other metrics asked for" : "these records");
    bool gen = have_model && wants(r, 2);
    for (int s = 0; !st && s < (r->has_base ? 2 : 1); s++) st = run_system(r, p, have_model ? &sys[s] : NULL, s, gen, &grading);
    if (!st) st = tk_eval_checks(r, p, open[0] ? &sys[0] : NULL);
    if (!st) st = finish(r, p);
    tk_eval_grading_close(&grading);
    r->grader = NULL;
    /* the baseline's adapter detaches before the base it shares */
    if (open[1]) tk_eval_sys_close(&sys[1]);
    if (open[0]) tk_eval_sys_close(&sys[0]);
    if (st) { tk_eval_result_free(r); return st; }
    *out = r;
    return TK_OK;
}

void tk_eval_result_free(tk_eval_result *r) {
    if (!r) return;
    for (int c = 0; c < r->n_cols; c++) free(r->cols[c].name);
    for (int g = 0; g < r->n_general; g++) { free(r->general[g].path); free(r->general[g].metric); }
    for (int h = 0; h < r->n_hits; h++) free(r->hits[h].text);
    free(r->cols); free(r->metrics); free(r->stats[0]); free(r->stats[1]); free(r->general); free(r->hits);
    free(r->model); free(r->adapter); free(r->baseline);
    tk_eval_set_free(&r->set);
    free(r);
}

int tk_eval_n_metrics(const tk_eval_result *r) { return r->n_cols; }
const tk_eval_metric *tk_eval_metric_at(const tk_eval_result *r, int i) { return i >= 0 && i < r->n_cols ? &r->metrics[i] : NULL; }
const tk_eval_metric *tk_eval_find(const tk_eval_result *r, const char *name) {
    for (int i = 0; i < r->n_cols; i++) if (!strcmp(r->metrics[i].name, name)) return &r->metrics[i];
    return NULL;
}
