/* Text metrics (src/eval/textmetrics.h) against the reference tools: every value in
 * tests/fixtures/metrics/ (written by tools/make_metric_fixtures.py with sacrebleu,
 * rouge-score and rapidfuzz, and SQuAD's normaliser) must be reproduced within 1e-6 on the
 * tool's own scale (0-100 for BLEU, chrF, WRatio; 0-1 for ROUGE, EM, F1). Prints the largest
 * difference per metric. Also: invalid UTF-8 gives TK_ERR_ARG with a message, never a crash;
 * four threads scoring all pairs at once get the same values, bit for bit. */
#include "test.h"
#include "core/core.h"
#include "eval/textmetrics.h"
#include <cJSON.h>
#include <pthread.h>

#define TOL 1e-6

enum { M_BLEU, M_CHRF, M_R1, M_R2, M_R4, M_RL, M_EM, M_F1, M_FUZZY, M_CBLEU, M_CCHRF, M_COUNT };
static const char *const metric_name[M_COUNT] = {"sentence BLEU", "sentence chrF", "ROUGE-1", "ROUGE-2", "ROUGE-4",
                                                 "ROUGE-L", "exact match", "token F1", "fuzzy (WRatio)",
                                                 "corpus BLEU", "corpus chrF"};
static double max_err[M_COUNT];
static int n_checked[M_COUNT];

static void expect(int m, double got, double want, int line_no, const char *what) {
    double e = fabs(got - want);
    if (!(e <= max_err[m])) max_err[m] = e; /* a NaN sticks */
    n_checked[m]++;
    tk_test_checks++;
    if (!(e <= TOL)) {
        tk_test_failures++;
        fprintf(stderr, "FAIL %s line %d: %s%s%s = %.12g, reference %.12g\n", m >= M_CBLEU ? "corpus.jsonl" : "pairs.jsonl", line_no, metric_name[m], *what ? " " : "", what, got, want);
    }
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) { fprintf(stderr, "FAIL: fixture field %s missing\n", k); tk_test_failures++; return NAN; }
    return v->valuedouble;
}

static void expect_prf(int m, const tk_prf *got, const cJSON *row, const char *key, int line_no) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, key);
    CHECK(cJSON_GetArraySize(a) == 3, "line %d: %s is not [p, r, f]", line_no, key);
    if (cJSON_GetArraySize(a) != 3) return;
    expect(m, got->p, cJSON_GetArrayItem(a, 0)->valuedouble, line_no, "precision");
    expect(m, got->r, cJSON_GetArrayItem(a, 1)->valuedouble, line_no, "recall");
    expect(m, got->f, cJSON_GetArrayItem(a, 2)->valuedouble, line_no, "F");
}

/* The fixture folder: $TK_METRIC_FIXTURES (a larger set from tools/make_metric_fixtures.py --random N) or the committed one. */
static const char *fixture(const char *name) {
    static char buf[2][4096];
    static int k;
    const char *dir = getenv("TK_METRIC_FIXTURES");
    char *b = buf[k++ & 1];
    snprintf(b, 4096, "%s/%s", dir && *dir ? dir : "tests/fixtures/metrics", name);
    return b;
}

/* The next line of a text being read in place (NULL at the end); ends it with a NUL. */
static char *next_line(char **cur) {
    char *line = *cur;
    if (!line || !*line) return NULL;
    char *nl = strchr(line, '\n');
    if (nl) *nl++ = 0;
    *cur = nl;
    return line;
}

/* Every pair with the values computed on the main thread, for the thread check. */
typedef struct scored { char *hyp, *ref; tk_text_lang lang; double v[5]; } scored;
static scored g_pairs[1024];
static int g_n;

static void score5(const char *hyp, const char *ref, tk_text_lang lang, double v[5]) {
    tk_bleu_stats b = {0};
    tk_chrf_stats c = {{{0}}};
    tk_prf l = {0};
    double em = 0;
    bool ok = tk_bleu_add(&b, hyp, ref, lang) == TK_OK && tk_chrf_add(&c, hyp, ref) == TK_OK &&
              tk_rouge_l(hyp, ref, lang, &l) == TK_OK && tk_squad_scores(hyp, ref, lang, &em, &v[3]) == TK_OK;
    v[0] = ok ? tk_bleu_sentence(&b) : -1; v[1] = tk_chrf_sentence(&c); v[2] = l.f; v[4] = tk_fuzzy_match(hyp, ref);
}

static void *thread_main(void *arg) {
    int *mismatches = arg;
    for (int i = 0; i < g_n; i++) {
        double v[5];
        score5(g_pairs[i].hyp, g_pairs[i].ref, g_pairs[i].lang, v);
        if (memcmp(v, g_pairs[i].v, sizeof v) != 0) (*mismatches)++;
    }
    return NULL;
}

static void check_threads(void) {
    pthread_t th[4];
    int bad[4] = {0};
    for (int t = 0; t < 4; t++) CHECK(pthread_create(&th[t], NULL, thread_main, &bad[t]) == 0, "thread %d", t);
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CHECK(bad[t] == 0, "thread %d: %d of %d pairs scored differently than on one thread", t, bad[t], g_n);
    }
    for (int i = 0; i < g_n; i++) { free(g_pairs[i].hyp); free(g_pairs[i].ref); }
}

typedef struct group { tk_bleu_stats bleu; tk_chrf_stats chrf; } group;

static int check_pairs(group *en, group *ja, group *en40) {
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(tk_read_file(fixture("pairs.jsonl"), &text, &len));
    if (!text) return 0;
    int line_no = 0, n_en = 0;
    char *cur = text;
    for (char *line; (line = next_line(&cur));) {
        line_no++;
        cJSON *row = cJSON_Parse(line);
        CHECK(row != NULL, "pairs.jsonl line %d does not parse", line_no);
        if (!row) continue;
        const char *hyp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "hyp"));
        const char *ref = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "ref"));
        const char *lang_s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "lang"));
        CHECK(hyp && ref && lang_s, "line %d: hyp, ref, lang", line_no);
        if (!hyp || !ref || !lang_s) { cJSON_Delete(row); continue; }
        tk_text_lang lang = strcmp(lang_s, "chars") == 0 ? TK_TEXT_CHARS : TK_TEXT_WORDS;

        tk_bleu_stats b = {0};
        tk_chrf_stats c = {{{0}}};
        CHECK_OK(tk_bleu_add(&b, hyp, ref, lang));
        CHECK_OK(tk_chrf_add(&c, hyp, ref));
        expect(M_BLEU, tk_bleu_sentence(&b), num(row, "bleu"), line_no, "");
        expect(M_CHRF, tk_chrf_sentence(&c), num(row, "chrf"), line_no, "");
        group *g = lang == TK_TEXT_CHARS ? ja : en;
        for (int k = 0; k < 2; k++) {
            if (k == 1 && !(lang == TK_TEXT_WORDS && n_en < 40)) break;
            group *t = k ? en40 : g;
            CHECK_OK(tk_bleu_add(&t->bleu, hyp, ref, lang));
            CHECK_OK(tk_chrf_add(&t->chrf, hyp, ref));
        }
        if (lang == TK_TEXT_WORDS) n_en++;

        static const int orders[3] = {1, 2, 4};
        static const char *const keys[3] = {"rouge1", "rouge2", "rouge4"};
        for (int k = 0; k < 3; k++) {
            tk_prf r;
            CHECK_OK(tk_rouge_n(hyp, ref, orders[k], lang, &r));
            expect_prf(M_R1 + k, &r, row, keys[k], line_no);
        }
        tk_prf l;
        CHECK_OK(tk_rouge_l(hyp, ref, lang, &l));
        expect_prf(M_RL, &l, row, "rougeL", line_no);

        double em, f1;
        CHECK_OK(tk_squad_scores(hyp, ref, lang, &em, &f1));
        expect(M_EM, em, num(row, "em"), line_no, "");
        expect(M_F1, f1, num(row, "f1"), line_no, "");
        expect(M_EM, tk_exact_match(hyp, ref, lang), em, line_no, "(tk_exact_match)");
        expect(M_F1, tk_token_f1(hyp, ref, lang), f1, line_no, "(tk_token_f1)");
        expect(M_FUZZY, 100 * tk_fuzzy_match(hyp, ref), num(row, "fuzzy"), line_no, "");
        if (g_n < (int)(sizeof g_pairs / sizeof *g_pairs)) {
            scored *sc = &g_pairs[g_n++];
            sc->hyp = tk_strdup(hyp); sc->ref = tk_strdup(ref); sc->lang = lang;
            score5(hyp, ref, lang, sc->v);
        }
        cJSON_Delete(row);
    }
    free(text);
    return line_no;
}

static void check_corpus(const group *en, const group *ja, const group *en40) {
    char *text = NULL;
    CHECK_OK(tk_read_file(fixture("corpus.jsonl"), &text, NULL));
    if (!text) return;
    int line_no = 0, seen = 0;
    char *cur = text;
    for (char *line; (line = next_line(&cur));) {
        line_no++;
        cJSON *row = cJSON_Parse(line);
        const char *name = row ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "group")) : NULL;
        CHECK(name != NULL, "corpus.jsonl line %d", line_no);
        const group *g = !name ? NULL : !strcmp(name, "en") ? en : !strcmp(name, "ja") ? ja : !strcmp(name, "en_first_40") ? en40 : NULL;
        CHECK(g != NULL, "corpus.jsonl line %d: unknown group", line_no);
        if (g) {
            seen++;
            expect(M_CBLEU, tk_bleu_score(&g->bleu), num(row, "bleu"), line_no, name);
            expect(M_CCHRF, tk_chrf_score(&g->chrf), num(row, "chrf"), line_no, name);
        }
        cJSON_Delete(row);
    }
    CHECK(seen == 3, "corpus groups: %d of 3", seen);
    free(text);
}

static void check_bad_input(void) {
    static const char *const bad[] = {"caf\xc3", "\xff\xfe", "a\xc0\xafz", "\xed\xa0\x80", "ok \xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tk_bleu_stats b = {0};
        tk_chrf_stats c = {{{0}}};
        tk_prf r;
        double em, f1, fz;
        CHECK(tk_bleu_add(&b, bad[i], "ref", TK_TEXT_WORDS) == TK_ERR_ARG && strstr(tk_last_error(), "UTF-8"), "bleu hyp %zu: %s", i, tk_last_error());
        CHECK(tk_bleu_add(&b, "hyp", bad[i], TK_TEXT_CHARS) == TK_ERR_ARG && strstr(tk_last_error(), "reference"), "bleu ref %zu: %s", i, tk_last_error());
        CHECK(b.hyp_len == 0 && b.ref_len == 0, "bad input left the BLEU statistics unchanged");
        CHECK(tk_chrf_add(&c, bad[i], "ref") == TK_ERR_ARG, "chrf %zu", i);
        CHECK(tk_rouge_n(bad[i], "ref", 1, TK_TEXT_WORDS, &r) == TK_ERR_ARG && r.f == 0, "rouge-n %zu", i);
        CHECK(tk_rouge_l("hyp", bad[i], TK_TEXT_CHARS, &r) == TK_ERR_ARG && r.f == 0, "rouge-l %zu", i);
        CHECK(tk_squad_scores(bad[i], "ref", TK_TEXT_WORDS, &em, &f1) == TK_ERR_ARG, "squad %zu", i);
        CHECK(tk_exact_match(bad[i], bad[i], TK_TEXT_WORDS) == 0 && tk_token_f1(bad[i], bad[i], TK_TEXT_WORDS) == 0, "em/f1 %zu", i);
        CHECK(tk_fuzzy_match_ex("x", bad[i], &fz) == TK_ERR_ARG && fz == 0, "fuzzy %zu", i);
        CHECK(tk_text_check(bad[i], "answer") == TK_ERR_ARG && strstr(tk_last_error(), "answer: invalid UTF-8 at byte"), "%s", tk_last_error());
    }
    tk_bleu_stats b = {0};
    tk_prf r;
    CHECK(tk_bleu_add(&b, NULL, "x", TK_TEXT_WORDS) == TK_ERR_ARG, "NULL hypothesis");
    CHECK(tk_rouge_n("a", "a", 0, TK_TEXT_WORDS, &r) == TK_ERR_ARG && tk_rouge_n("a", "a", 10, TK_TEXT_WORDS, &r) == TK_ERR_ARG, "ROUGE-N order range");
    CHECK(tk_fuzzy_match(NULL, "x") == 0, "NULL fuzzy");
}

static void check_lang_guess(void) {
    const char *ja[3] = {"東京です", "hello", "カタカナ"};
    const char *en[3] = {"東京です", "hello", "world"};
    const char *ko[1] = {"학습"};
    CHECK(tk_text_lang_guess(ja, 3) == TK_TEXT_CHARS, "2 of 3 Japanese");
    CHECK(tk_text_lang_guess(en, 3) == TK_TEXT_WORDS, "1 of 3 Japanese");
    CHECK(tk_text_lang_guess(ko, 1) == TK_TEXT_CHARS, "Korean");
    CHECK(tk_text_lang_guess(NULL, 0) == TK_TEXT_WORDS, "no references");
}

int main(void) {
    group en = {0}, ja = {0}, en40 = {0};
    int n = check_pairs(&en, &ja, &en40);
    CHECK(n >= 300, "only %d fixture pairs", n);
    check_corpus(&en, &ja, &en40);
    for (int m = 0; m < M_COUNT; m++)
        printf("  %-15s %4d values, max abs error %.3g\n", metric_name[m], n_checked[m], max_err[m]);
    for (int m = 0; m < M_COUNT; m++) CHECK(n_checked[m] > 0, "%s never checked", metric_name[m]);
    check_threads();
    check_bad_input();
    check_lang_guess();
    return tk_test_done("test_textmetrics");
}
