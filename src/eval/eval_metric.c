/* The metric table: each metric's per-example statistics, what an example needs for it, and its
 * finish function (corpus value from the summed statistics); the text metrics of one answer. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "eval/eval_internal.h"
#include "eval/textmetrics.h"
#include "data/data_internal.h"
#include "tokenizer/unicode.h"
#include <math.h>
#include <strings.h>

static double mean(const double *s, int n) { (void)n; return s[1] > 0 ? s[0] / s[1] : NAN; }
static double f_loss(const double *s, int n) { (void)n; return s[1] > 0 ? s[0] / s[1] : NAN; }
static double f_ppl(const double *s, int n) { (void)n; return s[1] > 0 ? exp(s[0] / s[1]) : NAN; }
static double f_bleu(const double *s, int n) {
    (void)n;
    tk_bleu_stats b;
    memcpy(&b, s, sizeof b);
    return b.ref_len > 0 || b.hyp_len > 0 ? tk_bleu_score(&b) : NAN;
}
static double f_chrf(const double *s, int n) {
    (void)n;
    tk_chrf_stats c;
    memcpy(&c, s, sizeof c);
    return tk_chrf_score(&c);
}
/* macro-F1 over the reference labels: [tp, fp, fn] per label */
static double f_macro_f1(const double *s, int n) {
    int L = n / 3;
    if (L == 0) return NAN;
    double sum = 0;
    for (int l = 0; l < L; l++) {
        double tp = s[3 * l], fp = s[3 * l + 1], fn = s[3 * l + 2];
        sum += tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0;
    }
    return sum / L;
}

enum { SCORE = 1, GEN = 2 };
#define BLEU_N ((int)(sizeof(tk_bleu_stats) / sizeof(double)))
#define CHRF_N ((int)(sizeof(tk_chrf_stats) / sizeof(double)))
static const tk_metric_def DEFS[] = {
    {"loss", 0, TK_EX_REF | TK_EX_TEXT, SCORE, 2, f_loss},
    {"ppl", 0, TK_EX_REF | TK_EX_TEXT, SCORE, 2, f_ppl},
    {"token_acc", 0, TK_EX_REF | TK_EX_TEXT, SCORE, 2, mean},
    {"exact_match", TK_EX_REF | TK_EX_GEN, 0, GEN, 2, mean},
    {"f1", TK_EX_REF | TK_EX_GEN, 0, GEN, 2, mean},
    {"bleu", TK_EX_REF | TK_EX_GEN, 0, GEN, BLEU_N, f_bleu},
    {"chrf", TK_EX_REF | TK_EX_GEN, 0, GEN, CHRF_N, f_chrf},
    {"rouge1", TK_EX_REF | TK_EX_GEN, 0, GEN, 2, mean},
    {"rouge2", TK_EX_REF | TK_EX_GEN, 0, GEN, 2, mean},
    {"rougeL", TK_EX_REF | TK_EX_GEN, 0, GEN, 2, mean},
    {"fact_match", TK_EX_FACTS | TK_EX_GEN, 0, GEN, 2, mean},
    {"grader", TK_EX_GEN, 0, GEN, 2, mean},
    {"judge", TK_EX_GEN, 0, GEN, 2, mean},
    {"pref_accuracy", TK_EX_PREF, 0, SCORE, 2, mean},
    {"reward_accuracy", TK_EX_PREF, 0, SCORE, 2, mean},
    {"accuracy", TK_EX_LABEL | TK_EX_GEN, 0, GEN, 2, mean},
    {"macro_f1", TK_EX_LABEL | TK_EX_GEN, 0, GEN, -1, f_macro_f1},
    {"mc_acc", TK_EX_MC, 0, SCORE, 2, mean},
    {"mc_acc_norm", TK_EX_MC, 0, SCORE, 2, mean},
};
#define N_DEFS ((int)(sizeof DEFS / sizeof DEFS[0]))

const tk_metric_def *tk_metric_def_at(int i) { return i >= 0 && i < N_DEFS ? &DEFS[i] : NULL; }

const tk_metric_def *tk_metric_def_find(const char *name) {
    if (!strncmp(name, "grader:", 7) && name[7]) name = "grader";
    for (int i = 0; i < N_DEFS; i++)
        if (!strcmp(DEFS[i].name, name)) return &DEFS[i];
    return NULL;
}

const char *tk_eval_lacks(const tk_metric_def *d, int kinds) {
    int miss = d->needs & ~TK_EX_GEN & ~kinds;
    if (d->any && !(d->any & kinds)) return "reference answers or texts";
    if (miss & TK_EX_PREF) return "preference pairs (prompt/chosen/rejected)";
    if (miss & TK_EX_MC) return "multiple-choice records (question/choices/answer)";
    if (miss & TK_EX_LABEL) return "classification labels (\"label\")";
    if (miss & TK_EX_FACTS) return "required facts (\"facts\" or \"match\")";
    if (miss & TK_EX_REF) return "reference answers";
    return NULL;
}

bool tk_eval_metric_known(const char *name) { return name && tk_metric_def_find(name) != NULL; }

const char *tk_eval_metric_names(void) {
    return "loss ppl token_acc exact_match f1 bleu chrf rouge1 rouge2 rougeL fact_match grader grader:<name> judge "
           "pref_accuracy reward_accuracy accuracy macro_f1 mc_acc mc_acc_norm";
}

/* ---- required facts ------------------------------------------------------------------------
 * As tools/fact_match.py: lower case, full-width ASCII folded to ASCII (the part of NFKC that
 * answers use), dashes and wave dashes unified, commas and spaces removed; a number never
 * matches inside a longer number ("330" is not in "3,300"). */
static char *fact_norm(const char *s) {
    size_t n = strlen(s);
    char *o = tk_malloc(n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (!len) len = 1, cp = 0xFFFD;
        if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0;            /* full-width ASCII */
        else if (cp == 0x3000) cp = ' ';                           /* ideographic space */
        if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0x301C || cp == 0xFF5E || cp == '~') cp = '-';
        if (cp < 0x80) {
            if (cp != ',' && cp != ' ') *p++ = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        } else {
            memcpy(p, s + i, len);
            p += len;
        }
        i += len;
    }
    *p = 0;
    return o;
}

static bool digit(char c) { return c >= '0' && c <= '9'; }

static bool contains(const char *a, const char *k) {
    size_t kl = strlen(k);
    if (!kl) return true;
    for (const char *p = strstr(a, k); p; p = strstr(p + 1, k)) {
        bool before = p > a && digit(k[0]) && digit(p[-1]), after = digit(k[kl - 1]) && digit(p[kl]);
        if (!before && !after) return true;
    }
    return false;
}

int tk_eval_fact_match(const void *item, const char *answer, char *err, size_t n_err) {
    const cJSON *facts = cJSON_GetObjectItemCaseSensitive(item, "facts"), *match = cJSON_GetObjectItemCaseSensitive(item, "match");
    if (cJSON_IsString(match)) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)match->valuestring, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_CASELESS, &ec, &eo, NULL);
        if (!re) { snprintf(err, n_err, "\"match\" is not a valid regular expression (at offset %zu)", (size_t)eo); return -2; }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int rc = md ? pcre2_match(re, (PCRE2_SPTR)answer, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) : -1;
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        return rc >= 0;
    }
    if (!cJSON_IsArray(facts)) return -1;
    char *a = fact_norm(answer);
    if (!a) return -3;
    int ok = 1;
    const cJSON *alts;
    cJSON_ArrayForEach(alts, facts) {
        bool any = false;
        const cJSON *x;
        if (cJSON_IsString(alts)) {
            char *k = fact_norm(alts->valuestring);
            any = k && contains(a, k);
            free(k);
        } else
            cJSON_ArrayForEach(x, alts) {
                if (!cJSON_IsString(x)) continue;
                char *k = fact_norm(x->valuestring);
                any = any || (k && contains(a, k));
                free(k);
            }
        if (!any) { ok = 0; break; }
    }
    free(a);
    return ok;
}

/* ---- the text metrics of one answer ------------------------------------------------------ */
bool tk_eval_label_eq(const char *pred, const char *label) {
    /* the first line of the answer, trimmed, case-insensitive, trailing full stop ignored */
    while (*pred == ' ' || *pred == '\n' || *pred == '\t') pred++;
    size_t n = strcspn(pred, "\n");
    while (n && (pred[n - 1] == ' ' || pred[n - 1] == '.' || pred[n - 1] == '\r')) n--;
    return strlen(label) == n && !strncasecmp(pred, label, n);
}

tk_status tk_eval_text_stats(const tk_eval_set *set, const tk_eval_ex *ex, const char *answer, const tk_eval_col *cols, int n_cols,
                             double *stats) {
    const char *ref = ex->reference;
    tk_text_lang lang = ref ? tk_text_lang_guess(&ref, 1) : TK_TEXT_WORDS;
    tk_status st = TK_OK;
    for (int c = 0; c < n_cols && !st; c++) {
        const char *nm = cols[c].def->name;
        double *s = stats + cols[c].off;   /* s[0]: present, s+1: the metric's statistics */
        if (cols[c].def->model != GEN || !answer) continue;
        if ((cols[c].def->needs & TK_EX_REF) && !ref) continue;
        if (!strcmp(nm, "fact_match")) {
            char err[160];
            int r = tk_eval_fact_match(ex->item, answer, err, sizeof err);
            if (r == -3) return TK_ERR_NOMEM;
            if (r == -2) return tk_fail(TK_ERR_FORMAT, "line %llu: %s", (unsigned long long)ex->line, err);
            if (r >= 0) { s[0] = 1; s[1] = r; s[2] = 1; }
        } else if (!strcmp(nm, "accuracy") || !strcmp(nm, "macro_f1")) {
            if (!ex->is_label) continue;
            s[0] = 1;
            if (nm[0] == 'a') { s[1] = tk_eval_label_eq(answer, ref); s[2] = 1; continue; }
            for (size_t l = 0; l < set->n_labels; l++) {
                bool truth = !strcmp(set->labels[l], ref), said = tk_eval_label_eq(answer, set->labels[l]);
                s[1 + 3 * l] += truth && said;
                s[2 + 3 * l] += !truth && said;
                s[3 + 3 * l] += truth && !said;
            }
        } else if (!strcmp(nm, "exact_match")) { s[0] = 1; s[1] = tk_exact_match(answer, ref, lang); s[2] = 1; }
        else if (!strcmp(nm, "f1")) { s[0] = 1; s[1] = tk_token_f1(answer, ref, lang); s[2] = 1; }
        else if (!strcmp(nm, "bleu")) {
            tk_bleu_stats b = {0};
            if ((st = tk_bleu_add(&b, answer, ref, lang))) break;
            s[0] = 1;
            memcpy(s + 1, &b, sizeof b);
        } else if (!strcmp(nm, "chrf")) {
            tk_chrf_stats b = {0};
            if ((st = tk_chrf_add(&b, answer, ref))) break;
            s[0] = 1;
            memcpy(s + 1, &b, sizeof b);
        } else if (!strncmp(nm, "rouge", 5)) {
            tk_prf r;
            st = nm[5] == 'L' ? tk_rouge_l(answer, ref, lang, &r) : tk_rouge_n(answer, ref, nm[5] - '0', lang, &r);
            if (st) break;
            s[0] = 1; s[1] = r.f; s[2] = 1;
        }
    }
    return st;
}

double tk_eval_col_value(const tk_eval_col *c, const double *const *stats, const int64_t *idx, int64_t n, int64_t *n_present) {
    double sum[1 + 3 * 256 + 32];
    int k = c->n_stats;
    if (k + 1 > (int)(sizeof sum / sizeof sum[0])) return NAN;
    memset(sum, 0, (size_t)(k + 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        const double *s = stats[idx ? idx[i] : i] + c->off;
        if (s[0] == 0) continue;
        for (int j = 0; j <= k; j++) sum[j] += s[j];
    }
    if (n_present) *n_present = (int64_t)sum[0];
    return sum[0] > 0 ? c->def->finish(sum + 1, k) : NAN;
}
