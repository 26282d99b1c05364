/* Data toolkit: every finding's line number on small broken files (tests/fixtures/data),
 * real datasets from ../shared/data (duplicates, personal data, formats, token counts),
 * bad input (BOM, CRLF, invalid UTF-8, NaN, deep nesting, long lines, empty, directory,
 * missing, UTF-16), normalisation against Python's unicodedata NFKC, MinHash against exact
 * Jaccard, split / convert / redact invariants, and determinism across thread counts. */
#include "test.h"
#include "data/data_internal.h"
#include "data_findings.h"
#include <sys/stat.h>

#define FX "tests/fixtures/data/"

typedef struct exp_f { uint64_t line; const char *cat; } exp_f;

/* Checks that the findings are exactly the expected (line, category) multiset. */
static void expect_findings(const char *what, const fset *s, const exp_f *e, int n) {
    CHECK(s->n == n, "%s: %d findings, expected %d", what, s->n, n);
    for (int i = 0; i < n; i++) {
        int want = 0;
        for (int j = 0; j < n; j++) want += e[j].line == e[i].line && !strcmp(e[j].cat, e[i].cat);
        CHECK(count(s, e[i].line, e[i].cat) == want, "%s: expected %d x line %llu: %s", what, want, (unsigned long long)e[i].line, e[i].cat);
    }
    if (s->n != n)
        for (int i = 0; i < s->n; i++) fprintf(stderr, "    got line %llu: %s: %s\n", (unsigned long long)s->v[i].line, s->v[i].cat, s->v[i].msg);
}

static tk_data_report *run(const char *path, tk_data_format fmt, fset *fs, int threads) { return run_check(path, fmt, NULL, fs, threads); }

/* ---- fixtures: one finding per line, at the right line ------------------------------ */
static void test_fixtures(void) {
    fset fs;
    tk_data_report *r = run(FX "chat_errors.jsonl", TK_DATA_AUTO, &fs, 2);
    if (r) {
        exp_f e[] = {{2, "data_type"}, {3, "missing_messages_list"}, {4, "message_missing_key"}, {5, "message_unrecognized_key"},
                     {6, "unrecognized_role"}, {7, "missing_content"}, {8, "example_missing_assistant_message"}, {9, "json_syntax"},
                     {10, "invalid_weight"}, {11, "invalid_tool_arguments"}, {12, "unknown_tool"}, {13, "tool_call_id_mismatch"},
                     {14, "nan_or_infinity"}, {16, "blank_line"}, {17, "empty_reply"}, {18, "missing_user_message"},
                     {19, "invalid_tool_calls"}, {19, "invalid_tool_calls"}, {20, "example_missing_assistant_message"}};
        expect_findings("chat_errors", &fs, e, (int)(sizeof e / sizeof e[0]));
        CHECK(r->format == TK_DATA_CHAT && r->format_detected, "chat detected");
        CHECK(r->n_records == 19 && r->n_examples == 4, "19 records (one blank line), 4 valid: %llu %llu",
              (unsigned long long)r->n_records, (unsigned long long)r->n_examples);
        CHECK(r->n_errors == 16 && r->n_warnings == 3, "16 errors, 3 warnings");
        CHECK(r->verdict == TK_DATA_NOT_READY, "errors -> not ready");
        CHECK(count(&fs, 16, "blank_line") && fs.v[13].sev == TK_DATA_WARNING, "blank line is a warning");
        CHECK(r->n_system_prompts == 1 && r->n_no_system == 2, "system prompts: 1 distinct, 2 examples without");
        tk_data_report_free(r);
    }

    r = run(FX "bad_json.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{2, "nan_or_infinity"}, {3, "nan_or_infinity"}, {4, "nan_or_infinity"}, {5, "nesting_too_deep"}, {6, "json_syntax"}};
        expect_findings("bad_json", &fs, e, 5);
        CHECK(strstr(fs.v[0].msg, "NaN at column 94") != NULL, "NaN named with its column: %s", fs.v[0].msg);
        CHECK(strstr(fs.v[2].msg, "-Infinity") != NULL, "-Infinity named: %s", fs.v[2].msg);
        CHECK(strstr(fs.v[3].msg, "1501 levels") && strstr(fs.v[3].msg, "limit 1000"), "nesting depth and limit: %s", fs.v[3].msg);
        tk_data_report_free(r);
    }

    r = run(FX "bom_crlf.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{1, "byte_order_mark"}, {1, "crlf"}};
        expect_findings("bom_crlf", &fs, e, 2);
        CHECK(r->n_examples == 3 && r->n_errors == 0, "BOM and CRLF are accepted: 3 examples");
        CHECK(r->verdict == TK_DATA_READY_WITH_WARNINGS, "warnings -> ready with warnings");
        tk_data_report_free(r);
    }

    r = run(FX "invalid_utf8.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{2, "invalid_utf8"}, {3, "invalid_utf8"}};
        expect_findings("invalid_utf8", &fs, e, 2);
        CHECK(strstr(fs.v[0].msg, "0xFF at column 26") != NULL, "bad byte and column: %s", fs.v[0].msg);
        CHECK(strstr(fs.v[1].msg, "NUL byte at column 12") != NULL, "NUL and column: %s", fs.v[1].msg);
        tk_data_report_free(r);
    }

    r = run(FX "empty.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{0, "empty_file"}};
        expect_findings("empty", &fs, e, 1);
        CHECK(r->verdict == TK_DATA_NOT_READY, "an empty file is not ready");
        tk_data_report_free(r);
    }

    r = run(FX "alpaca_broken.json", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{7, "missing_output"}, {11, "invalid_type"}, {20, "json_syntax"}};
        expect_findings("alpaca_broken", &fs, e, 3);
        CHECK(fs.n == 3 && fs.v[0].record == 2 && fs.v[1].record == 3, "JSON array findings name the record");
        CHECK(fs.n == 3 && strstr(fs.v[2].msg, "trailing comma"), "trailing comma explained");
        CHECK(r->container == TK_DATA_JSON_ARRAY && r->format == TK_DATA_ALPACA && r->n_examples == 2, "JSON array of alpaca, 2 valid");
        tk_data_report_free(r);
    }

    r = run(FX "sharegpt_errors.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{2, "unrecognized_role"}, {2, "example_missing_assistant_message"}, {3, "invalid_turn_order"}, {3, "invalid_turn_order"},
                     {4, "example_missing_assistant_message"}, {5, "message_missing_key"}, {6, "invalid_turn_order"}};
        expect_findings("sharegpt_errors", &fs, e, 7);
        CHECK(r->format == TK_DATA_SHAREGPT && r->n_examples == 1, "sharegpt, 1 valid");
        tk_data_report_free(r);
    }

    r = run(FX "preference_errors.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{3, "missing_rejected"}, {4, "identical_chosen_rejected"}, {6, "missing_chosen"}};
        expect_findings("preference_errors", &fs, e, 3);
        CHECK(r->format == TK_DATA_PREFERENCE && r->n_examples == 4, "preference (TRL, OpenAI, implicit prompt), 4 valid");
        tk_data_report_free(r);
    }

    r = run(FX "completion_errors.jsonl", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{2, "missing_completion"}, {3, "data_type"}, {3, "data_type"}, {4, "empty_reply"}};
        expect_findings("completion_errors", &fs, e, 4);
        CHECK(r->format == TK_DATA_PROMPT_COMPLETION && r->n_examples == 3, "prompt/completion (and question/answer), 3 valid");
        tk_data_report_free(r);
    }

    r = run(FX "labels.tsv", TK_DATA_AUTO, &fs, 1);
    if (r) {
        exp_f e[] = {{3, "missing_label"}, {4, "missing_label"}, {6, "missing_text"}};
        expect_findings("labels.tsv", &fs, e, 3);
        CHECK(r->format == TK_DATA_CLASSIFICATION && r->n_records == 6 && r->n_examples == 3, "header skipped, 3 valid");
        CHECK(r->n_labels == 2 && !strcmp(r->labels[0].name, "0") && r->labels[0].count == 2, "labels: 0 x2, 1 x1");
        tk_data_report_free(r);
    }

    /* duplicates: exact after normalisation (1, 4), near (2, 5), same prompt with other answers (2, 5) and (3, 6) */
    r = run(FX "dups.jsonl", TK_DATA_AUTO, &fs, 2);
    if (r) {
        CHECK(r->n_exact_dups == 1 && r->exact_dups[0].n == 2 && r->exact_dups[0].lines[0] == 1 && r->exact_dups[0].lines[1] == 4,
              "exact duplicate group: lines 1, 4");
        CHECK(r->n_near_dups == 1 && r->near_dups[0].n == 2 && r->near_dups[0].lines[0] == 2 && r->near_dups[0].lines[1] == 5,
              "near-duplicate group: lines 2, 5");
        CHECK(r->n_conflicts == 2, "two inconsistent groups, got %zu", r->n_conflicts);
        bool g25 = false, g36 = false;
        for (size_t i = 0; i < r->n_conflicts; i++) {
            if (r->conflicts[i].n == 2 && r->conflicts[i].lines[0] == 2 && r->conflicts[i].lines[1] == 5) g25 = true;
            if (r->conflicts[i].n == 2 && r->conflicts[i].lines[0] == 3 && r->conflicts[i].lines[1] == 6) g36 = true;
        }
        CHECK(g25 && g36, "conflicts at lines 2/5 and 3/6");
        CHECK(r->n_exact_dup_records == 1, "one extra record");
        tk_data_report_free(r);
    }

    r = run(FX "pii.jsonl", TK_DATA_AUTO, &fs, 2);
    if (r) {
        CHECK(r->format == TK_DATA_TEXT, "text records");
        CHECK(r->pii_matches[TK_PII_EMAIL] == 2 && r->pii[TK_PII_EMAIL].n == 2 && r->pii[TK_PII_EMAIL].lines[0] == 1 &&
              r->pii[TK_PII_EMAIL].lines[1] == 7, "emails on lines 1 and 7 (one written with \\u0040)");
        CHECK(r->pii_matches[TK_PII_PHONE] == 6 && r->pii[TK_PII_PHONE].n == 3 && r->pii[TK_PII_PHONE].lines[2] == 3,
              "6 phones on lines 1-3, got %llu", (unsigned long long)r->pii_matches[TK_PII_PHONE]);
        CHECK(r->pii_matches[TK_PII_CREDIT_CARD] == 2 && r->pii[TK_PII_CREDIT_CARD].n == 1 && r->pii[TK_PII_CREDIT_CARD].lines[0] == 4,
              "2 valid cards on line 4 (the Luhn-invalid one is not counted)");
        CHECK(r->pii_matches[TK_PII_IP] == 3 && r->pii[TK_PII_IP].n == 1 && r->pii[TK_PII_IP].lines[0] == 5, "3 IPs on line 5");
        tk_data_report_free(r);
    }
}

/* ---- files that cannot be read at all -------------------------------------------------- */
static void test_unreadable(void) {
    tk_data_report *r = NULL;
    tk_data_check_params p = tk_data_check_default_params();
    CHECK(tk_data_check(FX "utf16.jsonl", &p, &r) == TK_ERR_FORMAT && r == NULL && strstr(tk_last_error(), "UTF-16"),
          "UTF-16 refused with a message: %s", tk_last_error());
    CHECK(tk_data_check(FX "no-such-file.jsonl", &p, &r) == TK_ERR_IO && strstr(tk_last_error(), "no-such-file.jsonl"),
          "missing file named: %s", tk_last_error());
    CHECK(tk_data_check("tests/fixtures/data", &p, &r) == TK_ERR_IO && strstr(tk_last_error(), "directory"),
          "directory refused: %s", tk_last_error());
    CHECK(tk_data_check_buffer("", 0, "x.jsonl", &p, &r) == TK_OK && r && r->verdict == TK_DATA_NOT_READY, "empty buffer: not ready");
    tk_data_report_free(r);
}

/* ---- lines longer than the limit: reported and skipped, the rest is still read ------------ */
static void test_long_lines(void) {
    tk_buf b = {0};
    tk_buf_printf(&b, "{\"text\": \"short one\"}\n{\"text\": \"");
    for (int i = 0; i < 5000; i++) tk_buf_append(&b, "abcdefghij", 10);
    tk_buf_printf(&b, "\"}\n{\"text\": \"after the long line\"}\n");
    tk_data_check_params p = tk_data_check_default_params();
    fset fs = {0};
    p.on_finding = collect;
    p.user = &fs;
    p.max_line_bytes = 4096;
    tk_data_report *r = NULL;
    CHECK_OK(tk_data_check_buffer(b.data, b.len, "long.jsonl", &p, &r));
    if (r) {
        exp_f e[] = {{2, "line_too_long"}};
        expect_findings("long line", &fs, e, 1);
        CHECK(r->n_records == 3 && r->n_examples == 2, "the lines around it are checked");
        tk_data_report_free(r);
    }
    /* the same through the streaming file reader (buffer grows, then skips) */
    char path[] = "/tmp/takumi_test_data_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd >= 0) {
        CHECK(write(fd, b.data, b.len) == (ssize_t)b.len, "write");
        close(fd);
        tk_reader *rd;
        CHECK_OK(tk_reader_open(path, TK_DATA_JSONL, 4096, &rd));
        tk_raw raw;
        bool has;
        int kinds[4] = {-1, -1, -1, -1};
        uint64_t lens[4] = {0};
        for (int i = 0; i < 4 && tk_reader_next(rd, &raw, &has) == TK_OK && has; i++) { kinds[i] = raw.kind; lens[i] = raw.len; }
        CHECK(kinds[0] == TK_RAW_RECORD && kinds[1] == TK_RAW_TOO_LONG && kinds[2] == TK_RAW_RECORD && kinds[3] == -1, "record, too long, record: %d %d %d %d", kinds[0], kinds[1], kinds[2], kinds[3]);
        CHECK(lens[1] == 50000 + 12, "too-long length counted without holding it: %llu", (unsigned long long)lens[1]);
        tk_reader_close(rd);
        unlink(path);
    }
    tk_buf_free(&b);
}

/* ---- personal data patterns -------------------------------------------------------------- */
static void test_pii(void) {
    tk_pii *p;
    CHECK_OK(tk_pii_new(&p));
    if (!p) return;
    static const struct { const char *text; const char *kinds; } cases[] = {
        {"mail me: first.last+tag@sub.example.com.", "E"},
        {"x@y is not an address, nor is a@b.c", ""},
        {"東京 03-1234-5678 / 携帯 090-1234-5678 / 0120-123-456", "PPP"},
        {"+81 3-1234-5678 and +44 20 7946 0958", "PP"},
        {"(555) 123-4567, 555.123.4567", "PP"},
        {"4111111111111111 5500-0000-0000-0004 3782 822463 10005", "CCC"},
        {"4111111111111112 1234567812345678", ""},                     /* Luhn fails; no issuer */
        {"10.0.0.1 and 255.255.255.255 but not 256.1.1.1 or 1.2.3.4.5", "II"},
        {"2001:0db8:85a3:0000:0000:8a2e:0370:7334 ::1 a::b std::cout", "I"},
        {"dates 2024-01-31, 03-04-2023, times 10:30:00, pi 3.14159265358979", ""},
        {"version 0.11.0.0, sum 4212883012996, 1+960397912423686", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tk_pii_match *m;
        size_t n;
        CHECK_OK(tk_pii_find(p, cases[i].text, strlen(cases[i].text), &m, &n));
        char got[16] = "";
        for (size_t k = 0; k < n && k < 15; k++) got[k] = "EPCI"[m[k].kind];
        got[n < 15 ? n : 15] = 0;
        CHECK(!strcmp(got, cases[i].kinds), "PII in '%s': got '%s', expected '%s'", cases[i].text, got, cases[i].kinds);
        free(m);
    }
    /* Luhn against the published test numbers */
    CHECK(tk_luhn_ok("4111 1111 1111 1111", 19) && tk_luhn_ok("378282246310005", 15) && !tk_luhn_ok("4111111111111112", 16), "Luhn");
    tk_buf b = {0};
    uint64_t counts[TK_PII_COUNT] = {0};
    const char *t = "Call 090-1234-5678 or mail a.b@example.jp.";
    CHECK_OK(tk_pii_redact(p, t, strlen(t), &b, counts));
    CHECK(b.data && !strcmp(b.data, "Call [PHONE] or mail [EMAIL]."), "redacted text: %s", b.data ? b.data : "");
    CHECK(counts[TK_PII_PHONE] == 1 && counts[TK_PII_EMAIL] == 1, "redaction counts");
    tk_buf_free(&b);
    tk_pii_free(p);
}

/* ---- normalisation (expected strings from Python: unicodedata.normalize('NFKC'), ASCII lower,
 *      zero-width removed, ' '.join(s.split())) --------------------------------------------- */
static void test_normalize(void) {
    static const char *const cases[][2] = {
        {"\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xe3\x80\x80\xef\xbd\x84\xef\xbd\x85\xef\xbd\x86", "abc def"},
        {"\xef\xbd\xb6\xef\xbe\x9e\xef\xbd\xb7\xef\xbe\x9e\xef\xbd\xb8\xef\xbe\x9e \xef\xbe\x8a\xef\xbe\x9f\xef\xbe\x9d",
         "\xe3\x82\xac\xe3\x82\xae\xe3\x82\xb0 \xe3\x83\x91\xe3\x83\xb3"},
        {"  Hello\t\nWorld  ", "hello world"},
        {"zero\xe2\x80\x8bwidth\xef\xbb\xbf!", "zerowidth!"},
        {"\xef\xbc\xb4\xef\xbd\x8f\xef\xbd\x8b\xef\xbd\x99\xef\xbd\x8f\xe3\x80\x80\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc\xe3\x80\x81"
         "\xef\xbd\xb3\xef\xbe\x9e\xef\xbd\xa7\xef\xbd\xb2\xef\xbd\xb5\xef\xbe\x98\xef\xbe\x9d",
         "tokyo \xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc\xe3\x80\x81\xe3\x83\xb4\xe3\x82\xa1\xe3\x82\xa4\xe3\x82\xaa\xe3\x83\xaa\xe3\x83\xb3"},
        {"\xef\xbe\x83\xef\xbe\x9e\xef\xbd\xb0\xef\xbe\x80\xe3\x80\x80\xef\xbe\x81\xef\xbd\xaa\xef\xbd\xaf\xef\xbd\xb8\xef\xbc\x88\xef\xbc\xaf\xef\xbc\xab\xef\xbc\x89",
         "\xe3\x83\x87\xe3\x83\xbc\xe3\x82\xbf \xe3\x83\x81\xe3\x82\xa7\xe3\x83\x83\xe3\x82\xaf(ok)"},
        {"\xc3\x84 Stra\xc3\x9f" "e\xc2\xa0\xe3\x80\x80" "end", "\xc3\x84 stra\xc3\x9f" "e end"},
        {"\xe3\x81\x8b\xe3\x82\x99\xe3\x81\x8d\xe3\x82\x99", "\xe3\x81\x8c\xe3\x81\x8e"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tk_buf b = {0};
        CHECK_OK(tk_text_normalize(cases[i][0], strlen(cases[i][0]), &b));
        CHECK(b.data && !strcmp(b.data, cases[i][1]), "normalize case %zu: got '%s' expected '%s'", i, b.data ? b.data : "", cases[i][1]);
        tk_buf_free(&b);
    }
}

/* ---- MinHash vs exact Jaccard of the 5-gram sets -------------------------------------------- */
static size_t grams(const char *s, uint64_t *out) {
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i + 5 <= n; i++) {
        uint64_t h = 0;
        for (int j = 0; j < 5; j++) h = h * 257 + (unsigned char)s[i + j];
        bool dup = false;
        for (size_t q = 0; q < k; q++) dup |= out[q] == h;
        if (!dup) out[k++] = h;
    }
    return k;
}
static double jaccard(const char *a, const char *b) {
    static uint64_t ga[4096], gb[4096];
    size_t na = grams(a, ga), nb = grams(b, gb), inter = 0;
    for (size_t i = 0; i < na; i++) for (size_t j = 0; j < nb; j++) if (ga[i] == gb[j]) { inter++; break; }
    return (double)inter / (double)(na + nb - inter);
}
static void test_minhash(void) {
    const char *base = "the quick brown fox jumps over the lazy dog while the farmer watches from the porch and drinks his "
                       "morning coffee, thinking about the harvest, the rain that did not come, and the price of wheat this year";
    char v1[512], v2[512], v3[512];
    snprintf(v1, sizeof v1, "%s", base);
    memcpy(strstr(v1, "coffee"), "cocoa!", 6);                    /* one word changed */
    snprintf(v2, sizeof v2, "%.*s and then something else entirely happens in the story", 120, base);
    snprintf(v3, sizeof v3, "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore");
    const char *others[] = {base, v1, v2, v3};
    uint16_t s0[TK_MINHASH_N], s1[TK_MINHASH_N];
    CHECK(tk_minhash(base, strlen(base), s0), "signature");
    CHECK(!tk_minhash("", 0, s1), "no signature for empty text");
    for (int k = 0; k < 4; k++) {
        tk_minhash(others[k], strlen(others[k]), s1);
        int eq = 0;
        for (int i = 0; i < TK_MINHASH_N; i++) eq += s0[i] == s1[i];
        double est = eq / (double)TK_MINHASH_N, ex = jaccard(base, others[k]);
        CHECK(fabs(est - ex) <= 0.15, "MinHash estimate %.3f vs exact Jaccard %.3f (case %d)", est, ex, k);
        if (k == 0) CHECK(eq == TK_MINHASH_N, "identical text, identical signature");
    }
}

/* ---- statistics and cost rules --------------------------------------------------------------- */
static void test_stats(void) {
    /* messages per example 2, 2, 4, 6: numpy.percentile gives p5 2.0, median 3.0, mean 3.5, p95 5.7 */
    const char *data =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]}\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"e\"},{\"role\":\"assistant\",\"content\":\"f\"},{\"role\":\"user\",\"content\":\"g\"},{\"role\":\"assistant\",\"content\":\"h\"}]}\n"
        "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"i\"},{\"role\":\"assistant\",\"content\":\"j\"},{\"role\":\"user\",\"content\":\"k\"},{\"role\":\"assistant\",\"content\":\"l\"},{\"role\":\"user\",\"content\":\"m\"},{\"role\":\"assistant\",\"content\":\"n\"}]}\n";
    tk_data_check_params p = tk_data_check_default_params();
    p.max_seq = 5;
    p.tokens_per_second = 10;
    tk_data_report *r = NULL;
    CHECK_OK(tk_data_check_buffer(data, strlen(data), "stats.jsonl", &p, &r));
    if (!r) return;
    CHECK(r->messages.min == 2 && r->messages.max == 7, "min/max messages");
    CHECK_NEAR(r->messages.p5, 2.0, 1e-9);
    CHECK_NEAR(r->messages.median, 3.0, 1e-9);
    CHECK_NEAR(r->messages.mean, 3.75, 1e-9);   /* (2 + 2 + 4 + 7) / 4 */
    CHECK_NEAR(r->messages.p95, 6.55, 1e-9);    /* numpy.percentile([2, 2, 4, 7], 95) */
    /* approximate tokens: 1 per one-byte message; the 7-message example has 7 > max_seq 5 */
    CHECK(r->total_tokens == 15 && r->n_too_long == 1 && r->tokens_cut == 2, "tokens %llu, too long %llu, cut %llu",
          (unsigned long long)r->total_tokens, (unsigned long long)r->n_too_long, (unsigned long long)r->tokens_cut);
    CHECK(r->epochs == 25, "4 examples: epochs raised to ceil(100/4) = 25");
    CHECK(r->billed_tokens == (2 + 2 + 4 + 5) * 25ULL, "billed = sum(min(tokens, max_seq)) x epochs: %llu", (unsigned long long)r->billed_tokens);
    CHECK_NEAR(r->est_seconds, 15.0 * 25 / 10, 1e-9);
    CHECK(r->n_no_system == 3 && r->n_system_prompts == 1, "3 without system prompt");
    tk_buf j = {0};
    CHECK_OK(tk_data_report_json(r, &j));
    cJSON *doc = j.data ? cJSON_Parse(j.data) : NULL;
    CHECK(doc && cJSON_IsObject(cJSON_GetObjectItem(doc, "statistics")), "JSON report parses");
    CHECK(doc && !strcmp(cJSON_GetObjectItem(doc, "verdict")->valuestring, "ready with warnings"), "verdict in JSON");
    cJSON_Delete(doc);
    tk_buf_free(&j);
    tk_data_report_free(r);

    /* OpenAI's auto epochs: 3; raised to ceil(100/n) (<= 25) when n*3 < 100; lowered to floor(25000/n) (>= 1) */
    CHECK(tk_data_auto_epochs(0) == 0 && tk_data_auto_epochs(1) == 25 && tk_data_auto_epochs(10) == 10, "small n");
    CHECK(tk_data_auto_epochs(30) == 4 && tk_data_auto_epochs(33) == 4 && tk_data_auto_epochs(34) == 3, "around 100 examples");
    CHECK(tk_data_auto_epochs(8333) == 3 && tk_data_auto_epochs(8334) == 2 && tk_data_auto_epochs(30000) == 1, "large n");
}

/* ---- real data from ../shared/data ------------------------------------------------------------ */
static void test_shared(void) {
    const char *alp = tk_test_shared("data/llamafactory-demo/alpaca_en_demo.json");
    if (!tk_test_require(alp, "../shared/data/llamafactory-demo/alpaca_en_demo.json")) {
        fset fs;
        tk_data_report *r = run(alp, TK_DATA_AUTO, &fs, 2);
        if (r) {
            CHECK(r->format == TK_DATA_ALPACA && r->container == TK_DATA_JSON_ARRAY && r->n_records == 999 && r->n_errors == 0, "alpaca_en_demo");
            /* reference: Python json + (lower-case, white space collapsed) over (instruction + "\n" + input, output),
             * lines of each record's "  {" */
            static const uint64_t groups[][3] = {{462, 3052}, {502, 2957}, {587, 1377}, {732, 3232}, {852, 4332}, {1762, 2842}, {1937, 2732},
                                                 {1992, 2542, 4237}, {2422, 3512}, {2532, 3727}, {2712, 3502}, {3072, 3857}, {4267, 4472}};
            size_t ng = sizeof groups / sizeof groups[0];
            CHECK(r->n_exact_dups == ng, "13 exact duplicate groups, got %zu", r->n_exact_dups);
            size_t found = 0;
            for (size_t g = 0; g < ng; g++)
                for (size_t i = 0; i < r->n_exact_dups; i++)
                    if (r->exact_dups[i].lines[0] == groups[g][0] && r->exact_dups[i].lines[1] == groups[g][1] &&
                        (r->exact_dups[i].n == 2 || r->exact_dups[i].lines[2] == groups[g][2])) found++;
            CHECK(found == ng, "every reference group found with its lines (%zu of %zu)", found, ng);
            CHECK(r->pii[TK_PII_EMAIL].n == 2 && r->pii[TK_PII_EMAIL].lines[0] == 1787 && r->pii[TK_PII_EMAIL].lines[1] == 2172, "emails at 1787, 2172");
            CHECK(r->pii[TK_PII_PHONE].n == 1 && r->pii[TK_PII_PHONE].lines[0] == 457, "(555) 123-4567 at line 457");
            tk_data_report_free(r);
        }
        /* the same report for any thread count */
        tk_data_check_params p = tk_data_check_default_params();
        tk_data_report *r1 = NULL, *r2 = NULL;
        p.threads = 1;
        CHECK_OK(tk_data_check(alp, &p, &r1));
        p.threads = 2;
        CHECK_OK(tk_data_check(alp, &p, &r2));
        if (r1 && r2) {
            r1->seconds = r2->seconds = 0;
            tk_buf a = {0}, b = {0};
            tk_data_report_json(r1, &a);
            tk_data_report_json(r2, &b);
            CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len), "report identical with 1 and 2 threads");
            tk_buf_free(&a); tk_buf_free(&b);
        }
        tk_data_report_free(r1);
        tk_data_report_free(r2);
    }
    const char *gsm = tk_test_shared("data/gsm8k/test.jsonl");
    if (!tk_test_require(gsm, "../shared/data/gsm8k/test.jsonl")) {
        fset fs;
        tk_data_report *r = run(gsm, TK_DATA_AUTO, &fs, 2);
        if (r) {
            CHECK(r->format == TK_DATA_PROMPT_COMPLETION && r->n_examples == 1319 && r->n_errors == 0, "gsm8k question/answer");
            tk_data_report_free(r);
        }
    }
    const char *sst = tk_test_shared("data/sst2/dev.tsv");
    if (!tk_test_require(sst, "../shared/data/sst2/dev.tsv")) {
        /* independent label count: the field after the last TAB */
        FILE *f = fopen(sst, "r");
        char line[8192];
        uint64_t n0 = 0, n1 = 0, rows = 0;
        while (f && fgets(line, sizeof line, f)) {
            char *t = strrchr(line, '\t');
            if (!t || rows++ == 0) continue;
            if (t[1] == '0') n0++;
            else if (t[1] == '1') n1++;
        }
        if (f) fclose(f);
        fset fs;
        tk_data_report *r = run(sst, TK_DATA_AUTO, &fs, 2);
        if (r) {
            CHECK(r->format == TK_DATA_CLASSIFICATION && r->n_examples == n0 + n1 && r->n_errors == 0, "sst2 dev: %llu examples",
                  (unsigned long long)r->n_examples);
            uint64_t c0 = 0, c1 = 0;
            for (size_t i = 0; i < r->n_labels; i++) {
                if (!strcmp(r->labels[i].name, "0")) c0 = r->labels[i].count;
                if (!strcmp(r->labels[i].name, "1")) c1 = r->labels[i].count;
            }
            CHECK(r->n_labels == 2 && c0 == n0 && c1 == n1, "label distribution %llu/%llu vs %llu/%llu", (unsigned long long)c0,
                  (unsigned long long)c1, (unsigned long long)n0, (unsigned long long)n1);
            tk_data_report_free(r);
        }
    }
    const char *dolly = tk_test_shared("data/dolly15k-ja/databricks-dolly-15k-ja.jsonl");
    if (!tk_test_require(dolly, "../shared/data/dolly15k-ja")) {
        fset fs;
        tk_data_report *r = run(dolly, TK_DATA_AUTO, &fs, 2);
        if (r) {
            /* SOURCE.txt: 15,015 Japanese instruction/response records */
            CHECK(r->format == TK_DATA_ALPACA && r->n_records == 15015 && r->n_examples == 15015 && r->n_errors == 0, "dolly15k-ja: alpaca, 15015");
            CHECK((double)r->scripts[TK_SCRIPT_JAPANESE] / (double)r->n_examples > 0.9, "mostly Japanese script: %llu",
                  (unsigned long long)r->scripts[TK_SCRIPT_JAPANESE]);
            tk_data_report_free(r);
        }
    }
    const char *glaive = tk_test_shared("data/llamafactory-demo/glaive_toolcall_en_demo.json");
    if (!tk_test_require(glaive, "glaive_toolcall_en_demo.json")) {
        fset fs;
        tk_data_report *r = run(glaive, TK_DATA_AUTO, &fs, 2);
        if (r) {
            CHECK(r->format == TK_DATA_SHAREGPT && r->n_examples == 300 && r->n_errors == 0, "glaive tool calls: ShareGPT, valid");
            tk_data_report_free(r);
        }
    }
}

/* ---- token counts with the model's tokenizer and template -------------------------------------- */
static void test_tokens(void) {
    const char *model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    const char *alp = tk_test_shared("data/llamafactory-demo/alpaca_en_demo.json");
    if (tk_test_require(access(model, R_OK) == 0 ? model : NULL, model)) return;
    if (tk_test_require(alp, "alpaca_en_demo.json")) return;
    tk_tokenizer *tok = NULL;
    CHECK_OK(tk_tokenizer_load(model, NULL, &tok));
    if (!tok) return;
    tk_chat_family fam;
    CHECK_OK(tk_chat_resolve(tok, NULL, &fam));
    /* independent count: each record rendered to text with the template, tokenized whole with special parsing */
    char *src = NULL;
    size_t n = 0;
    CHECK_OK(tk_read_file(alp, &src, &n));
    cJSON *arr = src ? cJSON_Parse(src) : NULL;
    uint64_t want = 0;
    int k = 0;
    cJSON *rec;
    cJSON_ArrayForEach(rec, arr) {
        const char *ins = cJSON_GetObjectItem(rec, "instruction")->valuestring, *inp = cJSON_GetObjectItem(rec, "input")->valuestring;
        tk_buf u = {0};
        tk_buf_printf(&u, "%s%s%s", ins, inp[0] ? "\n" : "", inp);
        tk_chat_msg m[2] = {{TK_ROLE_USER, u.data}, {TK_ROLE_ASSISTANT, cJSON_GetObjectItem(rec, "output")->valuestring}};
        tk_buf text = {0};
        tk_ivec ids = {0};
        CHECK_OK(tk_chat_render_text(fam, m, 2, false, &text));
        CHECK_OK(tk_tokenize(tok, text.data, text.len, TK_TOK_PARSE_SPECIAL, &ids));
        want += ids.len;
        tk_ivec_free(&ids);
        tk_buf_free(&text);
        tk_buf_free(&u);
        k++;
    }
    cJSON_Delete(arr);
    free(src);
    tk_data_check_params p = tk_data_check_default_params();
    p.tokenizer = tok;
    p.chat_family = fam;
    p.max_seq = 8192;
    tk_data_report *r = NULL;
    CHECK_OK(tk_data_check(alp, &p, &r));
    if (r) {
        CHECK(k == 999 && r->total_tokens == want, "total tokens %llu == rendered-text tokens %llu", (unsigned long long)r->total_tokens,
              (unsigned long long)want);
        CHECK(r->tokens_exact && r->total_assistant_tokens > 0 && r->total_assistant_tokens < r->total_tokens, "assistant tokens counted");
        /* every trained token lies in an assistant answer + its <|im_end|>: at least one per example, at most the answers' share */
        CHECK(r->assistant_tokens.min >= 2, "each answer trains at least its content and end token");
        tk_data_report_free(r);
    }
    tk_tokenizer_free(tok);
}

/* ---- split --------------------------------------------------------------------------------------- */
typedef struct lineset { char **v; size_t n; } lineset;
static void read_lines(const char *path, lineset *s) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while (f && (got = getline(&line, &cap, f)) > 0) {
        s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
        s->v[s->n++] = strdup(line);
    }
    free(line);
    if (f) fclose(f);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void free_lines(lineset *s) { for (size_t i = 0; i < s->n; i++) free(s->v[i]); free(s->v); s->v = NULL; s->n = 0; }

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool ok = tk_read_file(a, &x, &nx) == TK_OK && tk_read_file(b, &y, &ny) == TK_OK && nx == ny && !memcmp(x, y, nx);
    free(x); free(y);
    return ok;
}

static void test_split(void) {
    const char *sst = tk_test_shared("data/sst2/dev.tsv");
    if (tk_test_require(sst, "../shared/data/sst2/dev.tsv")) return;
    char d1[] = "/tmp/takumi_split_XXXXXX", d2[] = "/tmp/takumi_split_XXXXXX", d3[] = "/tmp/takumi_split_XXXXXX";
    CHECK(mkdtemp(d1) && mkdtemp(d2) && mkdtemp(d3), "temp dirs");
    tk_data_split_params p = tk_data_split_default_params();
    p.seed = 11;
    tk_data_split_result a, b, c;
    CHECK_OK(tk_data_split(sst, d1, &p, &a));
    CHECK_OK(tk_data_split(sst, d2, &p, &b));
    p.seed = 12;
    CHECK_OK(tk_data_split(sst, d3, &p, &c));
    static const char *names[3] = {"train", "valid", "test"};
    bool same = true, differ = false;
    lineset all = {0}, in = {0};
    for (int k = 0; k < 3; k++) {
        char pa[256], pb[256], pc[256];
        snprintf(pa, sizeof pa, "%s/%s.tsv", d1, names[k]);
        snprintf(pb, sizeof pb, "%s/%s.tsv", d2, names[k]);
        snprintf(pc, sizeof pc, "%s/%s.tsv", d3, names[k]);
        CHECK(a.paths[k] && !strcmp(a.paths[k], pa), "file name contains %s", names[k]);
        same &= same_file(pa, pb);
        differ |= !same_file(pa, pc);
        lineset s = {0};
        read_lines(pa, &s);
        CHECK(s.n == a.counts[k] + 1, "%s: header + %llu records", names[k], (unsigned long long)a.counts[k]);
        for (size_t i = 1; i < s.n; i++) { all.v = realloc(all.v, (all.n + 1) * sizeof *all.v); all.v[all.n++] = strdup(s.v[i]); }
        free_lines(&s);
    }
    CHECK(same, "same seed, byte-identical files");
    CHECK(differ, "another seed, another split");
    uint64_t total = a.counts[0] + a.counts[1] + a.counts[2];
    CHECK(fabs((double)a.counts[0] / (double)total - 0.8) < 0.01 && fabs((double)a.counts[2] / (double)total - 0.1) < 0.01, "80/10/10 shares");
    /* every record exactly once */
    read_lines(sst, &in);
    free(in.v[0]);
    memmove(in.v, in.v + 1, (in.n - 1) * sizeof *in.v);
    in.n--;
    qsort(all.v, all.n, sizeof *all.v, cmp_str);
    qsort(in.v, in.n, sizeof *in.v, cmp_str);
    bool eq = all.n == in.n;
    for (size_t i = 0; eq && i < in.n; i++) eq = !strcmp(all.v[i], in.v[i]);
    CHECK(eq, "the three files hold exactly the input's records (%zu vs %zu)", all.n, in.n);
    free_lines(&all);
    free_lines(&in);

    /* no leakage: members of every duplicate / near-duplicate / inconsistent group share a split.
     * Map input line -> split through the record text, then check each group from `check`. */
    fset fs;
    tk_data_report *r = run(sst, TK_DATA_AUTO, &fs, 2);
    lineset src = {0};
    read_lines(sst, &src);
    lineset parts[3] = {{0}};
    for (int k = 0; k < 3; k++) {
        read_lines(a.paths[k], &parts[k]);
        qsort(parts[k].v, parts[k].n, sizeof *parts[k].v, cmp_str);
    }
    size_t leaks = 0, checked = 0;
    for (int gk = 0; r && gk < 3; gk++) {
        const tk_data_group *g = gk == 0 ? r->exact_dups : gk == 1 ? r->near_dups : r->conflicts;
        size_t ng = gk == 0 ? r->n_exact_dups : gk == 1 ? r->n_near_dups : r->n_conflicts;
        for (size_t i = 0; i < ng; i++) {
            int first = -1;
            for (size_t m = 0; m < g[i].n; m++) {
                const char *text = src.v[g[i].lines[m] - 1];
                int where = -1;
                for (int k = 0; k < 3 && where < 0; k++)
                    if (bsearch(&text, parts[k].v, parts[k].n, sizeof *parts[k].v, cmp_str)) where = k;
                if (first < 0) first = where;
                else if (where != first) leaks++;
            }
            checked++;
        }
    }
    CHECK(r && checked > 100 && leaks == 0, "%zu groups checked, %zu straddle splits", checked, leaks);
    /* stratified: each label's share within each split stays close to the overall share */
    for (int k = 0; k < 3 && r; k++) {
        uint64_t ones = 0, n = 0;
        for (size_t i = 0; i < parts[k].n; i++) {
            const char *t = strrchr(parts[k].v[i], '\t');
            if (!t || !strcmp(parts[k].v[i], src.v[0])) continue;
            n++;
            ones += t[1] == '1';
        }
        uint64_t all1 = 0;
        for (size_t i = 0; i < r->n_labels; i++) if (!strcmp(r->labels[i].name, "1")) all1 = r->labels[i].count;
        double share = (double)all1 / (double)r->n_examples;
        CHECK(n > 0 && fabs((double)ones / (double)n - share) < 0.02, "%s: label-1 share %.3f vs %.3f", names[k], (double)ones / (double)n, share);
    }
    for (int k = 0; k < 3; k++) free_lines(&parts[k]);
    free_lines(&src);
    tk_data_report_free(r);
    /* a file with errors is refused, with the errors reported */
    tk_data_split_result_free(&c);
    fs.n = 0;
    p.on_finding = collect;
    p.user = &fs;
    CHECK(tk_data_split(FX "chat_errors.jsonl", d3, &p, &c) == TK_ERR_FORMAT && fs.n == 16, "split refuses a file with errors (%d reported)", fs.n);
    tk_data_split_result_free(&a);
    tk_data_split_result_free(&b);
    tk_data_split_result_free(&c);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", d1, d2, d3);
    CHECK(system(cmd) == 0, "cleanup");
}

/* ---- convert ------------------------------------------------------------------------------------- */
static cJSON *jline(const char *path, size_t idx) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    cJSON *j = NULL;
    for (size_t i = 0; f && getline(&line, &cap, f) > 0; i++) if (i == idx) { j = cJSON_Parse(line); break; }
    free(line);
    if (f) fclose(f);
    return j;
}

static void test_convert(void) {
    char out[] = "/tmp/takumi_conv_XXXXXX";
    int fd = mkstemp(out);
    if (fd >= 0) close(fd);
    tk_data_convert_result res;
    fset fs = {0};
    /* fixture: the 4 valid records are written, every other one is reported at its line */
    CHECK_OK(tk_data_convert(FX "chat_errors.jsonl", TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, collect, &fs, &res));
    CHECK(res.n_records == 19 && res.n_written == 4 && res.n_failed == 15, "written %llu, failed %llu",
          (unsigned long long)res.n_written, (unsigned long long)res.n_failed);
    for (uint64_t l = 1; l <= 20; l++) {
        bool valid = l == 1 || l == 15 || l == 16 || l == 17 || l == 18;   /* 16 is blank, 17/18 only have warnings */
        int n = 0;
        for (int i = 0; i < fs.n; i++) n += fs.v[i].line == l;
        CHECK(valid ? n == 0 : n > 0, "line %llu %s", (unsigned long long)l, valid ? "converted, not reported" : "reported");
    }

    const char *alp = tk_test_shared("data/llamafactory-demo/alpaca_en_demo.json");
    if (!tk_test_require(alp, "alpaca_en_demo.json")) {
        CHECK_OK(tk_data_convert(alp, TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, NULL, NULL, &res));
        CHECK(res.from == TK_DATA_ALPACA && res.n_written == 999 && res.n_failed == 0, "alpaca -> chat: all 999");
        char *src = NULL;
        size_t n;
        tk_read_file(alp, &src, &n);
        cJSON *arr = src ? cJSON_Parse(src) : NULL;
        size_t bad = 0;
        for (size_t i = 0; i < 999; i += 37) {
            cJSON *o = jline(out, i), *s = cJSON_GetArrayItem(arr, (int)i);
            cJSON *msgs = o ? cJSON_GetObjectItem(o, "messages") : NULL;
            const char *ins = cJSON_GetObjectItem(s, "instruction")->valuestring, *inp = cJSON_GetObjectItem(s, "input")->valuestring;
            char want[65536];
            snprintf(want, sizeof want, "%s%s%s", ins, inp[0] ? "\n" : "", inp);
            if (!msgs || cJSON_GetArraySize(msgs) != 2 || strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring, want) ||
                strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content")->valuestring, cJSON_GetObjectItem(s, "output")->valuestring))
                bad++;
            cJSON_Delete(o);
        }
        CHECK(bad == 0, "converted texts equal the source texts (%zu differ)", bad);
        cJSON_Delete(arr);
        free(src);
        fset f2;
        tk_data_report *r = run(out, TK_DATA_AUTO, &f2, 2);
        CHECK(r && r->format == TK_DATA_CHAT && r->n_examples == 999 && r->n_errors == 0 && r->n_exact_dups == 13,
              "the chat file checks clean, with the same duplicate groups");
        tk_data_report_free(r);
    }
    const char *glaive = tk_test_shared("data/llamafactory-demo/glaive_toolcall_en_demo.json");
    if (!tk_test_require(glaive, "glaive_toolcall_en_demo.json")) {
        CHECK_OK(tk_data_convert(glaive, TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, NULL, NULL, &res));
        CHECK(res.from == TK_DATA_SHAREGPT && res.n_written == 300, "ShareGPT tool calls -> chat: %llu", (unsigned long long)res.n_written);
        cJSON *o = jline(out, 0);
        cJSON *m3 = o ? cJSON_GetArrayItem(cJSON_GetObjectItem(o, "messages"), 3) : NULL;
        cJSON *tc = m3 ? cJSON_GetArrayItem(cJSON_GetObjectItem(m3, "tool_calls"), 0) : NULL;
        CHECK(tc && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "name")->valuestring, "search_recipes"),
              "function_call became a tool call");
        CHECK(o && cJSON_IsArray(cJSON_GetObjectItem(o, "tools")), "tools kept");
        cJSON_Delete(o);
    }
    const char *dpo = tk_test_shared("data/llamafactory-demo/dpo_en_demo.json");
    if (!tk_test_require(dpo, "dpo_en_demo.json")) {
        for (int style = 0; style < 2; style++) {
            CHECK_OK(tk_data_convert(dpo, TK_DATA_AUTO, style ? TK_DATA_TO_PREFERENCE_TRL : TK_DATA_TO_PREFERENCE_OPENAI, out, NULL, NULL, NULL, &res));
            CHECK(res.n_written == 300 && res.n_failed == 0, "dpo -> preference (%s)", style ? "trl" : "openai");
            fset f2;
            tk_data_report *r = run(out, TK_DATA_AUTO, &f2, 2);
            CHECK(r && r->format == TK_DATA_PREFERENCE && r->n_examples == 300 && r->n_errors == 0, "preference output checks clean");
            tk_data_report_free(r);
        }
        CHECK(tk_data_convert(dpo, TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, NULL, NULL, &res) == TK_ERR_UNSUPPORTED, "preference -> chat refused");
    }
    CHECK(tk_data_convert(FX "pii.jsonl", TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, NULL, NULL, &res) == TK_ERR_UNSUPPORTED &&
          strstr(tk_last_error(), "raw text"), "raw text -> chat refused: %s", tk_last_error());
    CHECK(tk_data_convert(FX "labels.tsv", TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, NULL, NULL, &res) == TK_OK && res.n_written == 3 &&
          res.n_failed == 3, "TSV -> chat: 3 written, 3 reported");
    unlink(out);
}

/* ---- redact ---------------------------------------------------------------------------------------- */
static void test_redact(void) {
    char out[] = "/tmp/takumi_redact_XXXXXX";
    int fd = mkstemp(out);
    if (fd >= 0) close(fd);
    uint64_t counts[TK_PII_COUNT], changed;
    CHECK_OK(tk_data_redact(FX "pii.jsonl", out, counts, &changed));
    CHECK(counts[TK_PII_EMAIL] == 2 && counts[TK_PII_PHONE] == 6 && counts[TK_PII_CREDIT_CARD] == 2 && counts[TK_PII_IP] == 3 && changed == 6,
          "redaction counts");
    lineset in = {0}, o = {0};
    read_lines(FX "pii.jsonl", &in);
    read_lines(out, &o);
    CHECK(in.n == 8 && o.n == 8, "same number of lines");
    if (o.n == 8) {
        CHECK(!strcmp(o.v[0], "{\"text\": \"Write to [EMAIL] or call [PHONE].\"}\n"), "line 1: %s", o.v[0]);
        /* escapes outside the match stay as written */
        CHECK(!strcmp(o.v[6], "{\"text\": \"Escaped \\u0040 sign: [EMAIL] is an address.\"}\n"), "line 7: %s", o.v[6]);
        CHECK(!strcmp(o.v[5], in.v[5]) && !strcmp(o.v[7], in.v[7]), "lines without PII unchanged byte for byte");
        for (size_t i = 0; i < o.n; i++) {
            cJSON *j = cJSON_Parse(o.v[i]);
            CHECK(j != NULL, "line %zu still valid JSON", i + 1);
            cJSON_Delete(j);
        }
    }
    free_lines(&in);
    free_lines(&o);
    /* a redacted file has no personal data left */
    fset fs;
    tk_data_report *r = run(out, TK_DATA_AUTO, &fs, 1);
    uint64_t left = 0;
    for (int k = 0; r && k < TK_PII_COUNT; k++) left += r->pii_matches[k];
    CHECK(r && left == 0, "nothing left to find: %llu", (unsigned long long)left);
    tk_data_report_free(r);
    unlink(out);
}

int main(void) {
    test_fixtures();
    test_unreadable();
    test_long_lines();
    test_pii();
    test_normalize();
    test_minhash();
    test_stats();
    test_shared();
    test_tokens();
    test_split();
    test_convert();
    test_redact();
    return tk_test_done("test_data");
}
