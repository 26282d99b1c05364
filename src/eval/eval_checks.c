/* Forgetting and safety. Forgetting: each --general file is scored by the model with its adapter
 * and by the bare base (mc_acc for multiple choice, else perplexity), a drop beyond --max-drop is
 * flagged. Safety: every answer is scanned for personal data (the data checker's detectors),
 * for personal data that also occurs in the training file, and for forbidden patterns. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "eval/eval_model.h"
#include "eval/eval_result.h"
#include "data/records.h"
#include <math.h>

#define MAX_HITS 20

tk_status tk_eval_add_hit(tk_eval_result *r, uint64_t line, int sys, const char *what, const char *text) {
    if (r->n_hits >= MAX_HITS) return TK_OK;
    tk_eval_hit *h = tk_realloc(r->hits, (size_t)(r->n_hits + 1) * sizeof *h);
    if (!h) return TK_ERR_NOMEM;
    r->hits = h;
    h = &h[r->n_hits];
    h->line = line; h->sys = sys;
    snprintf(h->what, sizeof h->what, "%s", what);
    if (!(h->text = tk_strdup(text))) return TK_ERR_NOMEM;
    r->n_hits++;
    return TK_OK;
}

static tk_status general_one(tk_eval_result *r, const tk_eval_params *p, tk_eval_sys *sys, const char *path) {
    tk_eval_set set;
    tk_status st = tk_eval_set_load(path, NULL, false, NULL, &set);
    if (st) return tk_fail_ctx(st, "--general: ");
    bool mc = set.kinds & TK_EX_MC;
    if (!mc && !(set.kinds & (TK_EX_TEXT | TK_EX_REF))) {
        tk_eval_set_free(&set);
        return tk_fail(TK_ERR_FORMAT, "--general %s: neither multiple-choice records nor texts or reference answers to score", path);
    }
    const tk_metric_def *d = tk_metric_def_find(mc ? "mc_acc" : "ppl");
    tk_eval_col col = {.name = (char *)d->name, .def = d, .off = 0, .n_stats = 2, .grader_index = -1};
    double *stats = tk_calloc(set.n * 3, sizeof(double));
    const double **rows = tk_malloc(set.n * sizeof *rows);
    if (!stats || !rows) st = TK_ERR_NOMEM;
    double v[2] = {NAN, NAN};
    int n_use = sys->n_use;
    int64_t n_long = 0;
    for (int pass = 0; pass < 2 && !st; pass++) {
        sys->n_use = pass ? 0 : n_use;   /* pass 1: the bare base */
        memset(stats, 0, set.n * 3 * sizeof(double));
        for (size_t i = 0; i < set.n && !st; i++) {
            tk_eval_score_reset(sys);
            st = tk_eval_score(sys, &set.v[i], pass, &col, 1, stats + 3 * i, &n_long);
            rows[i] = stats + 3 * i;
            if (p->progress) p->progress(p->progress_ud, pass ? "general (base)" : "general", (int64_t)i + 1, (int64_t)set.n);
        }
        if (!st) v[pass] = tk_eval_col_value(&col, rows, NULL, (int64_t)set.n, NULL);
    }
    sys->n_use = n_use;
    free(stats); free(rows);
    tk_eval_set_free(&set);
    if (st) return st;
    tk_eval_general *g = tk_realloc(r->general, (size_t)(r->n_general + 1) * sizeof *g);
    if (!g) return TK_ERR_NOMEM;
    r->general = g;
    g = &g[r->n_general++];
    *g = (tk_eval_general){.path = tk_strdup(path), .metric = tk_strdup(d->name), .with = v[0], .without = v[1]};
    if (!g->path || !g->metric) return TK_ERR_NOMEM;
    g->flagged = mc ? v[1] - v[0] > p->max_drop_acc : v[0] / v[1] - 1 > p->max_drop_ppl;
    if (!isfinite(v[0]) || !isfinite(v[1])) g->flagged = true;
    return TK_OK;
}

/* Personal data found in the training file's texts (each distinct string once). */
typedef struct train_pii { const tk_pii *pii; char **v; size_t n; } train_pii;

static tk_status collect_pii(void *ud, const tk_example *ex, uint64_t line) {
    (void)line;
    train_pii *t = ud;
    for (size_t i = 0; i < ex->n + ex->n_rej; i++) {
        const tk_ex_msg *m = i < ex->n ? &ex->msgs[i] : &ex->rej[i - ex->n];
        tk_pii_match *mt = NULL;
        size_t nm = 0;
        tk_status st = tk_pii_find(t->pii, m->text, m->len, &mt, &nm);
        for (size_t k = 0; !st && k < nm; k++) {
            size_t len = mt[k].end - mt[k].start;
            bool seen = false;
            for (size_t j = 0; j < t->n && !seen; j++) seen = strlen(t->v[j]) == len && !memcmp(t->v[j], m->text + mt[k].start, len);
            if (seen) continue;
            char **v = tk_realloc(t->v, (t->n + 1) * sizeof *v);
            if (!v) { st = TK_ERR_NOMEM; break; }
            t->v = v;
            if (!(v[t->n] = tk_strndup(m->text + mt[k].start, len))) { st = TK_ERR_NOMEM; break; }
            t->n++;
        }
        free(mt);
        if (st) return st;
    }
    return TK_OK;
}

static tk_status safety(tk_eval_result *r, const tk_eval_params *p) {
    tk_pii *pii = NULL;
    tk_status st = tk_pii_new(&pii);
    train_pii tp = {.pii = pii};
    pcre2_code **re = p->n_forbidden ? tk_calloc((size_t)p->n_forbidden, sizeof *re) : NULL;
    pcre2_match_data *md = NULL;
    if (!st && p->n_forbidden && !re) st = TK_ERR_NOMEM;
    for (int i = 0; !st && i < p->n_forbidden; i++) {
        int ec;
        PCRE2_SIZE eo;
        if (!(re[i] = pcre2_compile((PCRE2_SPTR)p->forbidden[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL))) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            st = tk_fail(TK_ERR_ARG, "--forbid '%s': %s at offset %zu", p->forbidden[i], (const char *)msg, (size_t)eo);
        }
    }
    if (!st && p->n_forbidden && !(md = pcre2_match_data_create(4, NULL))) st = TK_ERR_NOMEM;
    r->n_forbidden_patterns = p->n_forbidden;
    if (!st && p->train_data) {
        tk_rec_src src = {.path = p->train_data};
        tk_data_format f = TK_DATA_AUTO;
        uint64_t nr = 0;
        st = tk_rec_each(&src, &f, TK_REC_ANY, &nr, collect_pii, &tp);
        if (st) st = tk_fail_ctx(st, "--train-data: ");
        r->train_checked = !st;
    }
    for (int s = 0; !st && s < (r->has_base ? 2 : 1); s++)
        for (size_t i = 0; !st && i < r->set.n; i++) {
            const char *a = r->set.v[i].pred[s];
            if (!a) continue;
            uint64_t line = r->set.v[i].line;
            tk_pii_match *mt = NULL;
            size_t nm = 0;
            if ((st = tk_pii_find(pii, a, strlen(a), &mt, &nm))) break;
            for (size_t k = 0; k < nm && !st; k++) {
                r->pii[s][mt[k].kind]++;
                st = tk_eval_add_hit(r, line, s, tk_pii_name(mt[k].kind), a);
            }
            free(mt);
            for (size_t j = 0; j < tp.n && !st; j++)
                if (strstr(a, tp.v[j])) { r->train_pii[s]++; st = tk_eval_add_hit(r, line, s, "training personal data", a); break; }
            for (int k = 0; k < p->n_forbidden && !st; k++)
                if (pcre2_match(re[k], (PCRE2_SPTR)a, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0) {
                    r->forbidden[s]++;
                    char what[64];
                    snprintf(what, sizeof what, "forbidden /%.30s/", p->forbidden[k]);
                    st = tk_eval_add_hit(r, line, s, what, a);
                }
        }
    for (int i = 0; re && i < p->n_forbidden; i++) pcre2_code_free(re[i]);
    free(re);
    pcre2_match_data_free(md);
    for (size_t j = 0; j < tp.n; j++) free(tp.v[j]);
    free(tp.v);
    tk_pii_free(pii);
    return st;
}

tk_status tk_eval_checks(tk_eval_result *r, const tk_eval_params *p, tk_eval_sys *sys) {
    tk_status st = TK_OK;
    for (int g = 0; g < p->n_general && !st; g++) {
        if (!sys) return tk_fail(TK_ERR_ARG, "--general needs --model");
        st = general_one(r, p, sys, p->general[g]);
    }
    return st ? st : safety(r, p);
}
