/* Graders (src/eval/grader.h): every type and operation, templates and missing fields, the
 * calculate_output formula (precedence, functions, errors), text_similarity against
 * sacrebleu / rouge-score / rapidfuzz (tools/make_grader_fixtures.py), score_model replies from a
 * scripted judge, command graders running real programs (score, timeout with the process
 * group killed, crash, silence, non-zero exit, a program that never reads its stdin), and bad
 * grader documents with their messages. */
#include "test.h"
#include "eval/grader_internal.h"
#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#define FX "tests/fixtures/graders/"

static tk_grader *parse(const char *json) {
    tk_grader *g = NULL;
    CHECK_OK(tk_grader_parse(json, strlen(json), "g.json", &g));
    return g;
}

/* Parsing must fail with st and a message containing want. */
static void parse_fails(const char *json, tk_status st, const char *want) {
    tk_grader *g = NULL;
    tk_status got = tk_grader_parse(json, strlen(json), "g.json", &g);
    CHECK(got == st && !g, "%s: status %s (want %s)", json, tk_status_str(got), tk_status_str(st));
    CHECK(strstr(tk_last_error(), want) != NULL, "%s: message \"%s\" lacks \"%s\"", json, tk_last_error(), want);
    tk_grader_free(g);
}

/* Grades (item JSON, answer) and returns the score; *failed/err get the per-sample failure. */
static double grade(const tk_grader *g, const char *item_json, const char *answer, const tk_judge *judge, bool *failed,
                    char *err) {
    cJSON *item = item_json ? cJSON_Parse(item_json) : NULL;
    tk_grade r;
    double s = NAN;
    CHECK_OK(tk_grader_grade(g, item, answer, judge, &r));
    if (r.sub) {
        CHECK(r.sub[0] == r.score || (isnan(r.sub[0]) && isnan(r.score)), "sub[0] %g != score %g", r.sub[0], r.score);
        s = r.score;
    }
    if (failed) *failed = r.failed;
    if (err) snprintf(err, 256, "%s", r.error);
    CHECK(r.failed == isnan(r.score), "failed %d but score %g", r.failed, r.score);
    tk_grade_free(&r);
    cJSON_Delete(item);
    return s;
}

static double grade_ok(const tk_grader *g, const char *item_json, const char *answer, const tk_judge *judge) {
    bool failed = false;
    char err[256] = "";
    double s = grade(g, item_json, answer, judge, &failed, err);
    CHECK(!failed, "unexpected failure: %s", err);
    return s;
}

static void grade_fails(const tk_grader *g, const char *item_json, const char *answer, const tk_judge *judge, const char *want) {
    bool failed = false;
    char err[256] = "";
    grade(g, item_json, answer, judge, &failed, err);
    CHECK(failed, "expected a failure containing \"%s\"", want);
    CHECK(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

static void test_string_check(void) {
    static const struct { const char *op, *answer; double want; } cases[] = {
        {"eq", "Paris", 1}, {"eq", "paris", 0}, {"eq", "Paris ", 0},
        {"ne", "Paris", 0}, {"ne", "Lyon", 1},
        {"like", "It is Paris.", 1}, {"like", "it is paris.", 0}, {"like", "Lyon", 0},
        {"ilike", "it is PARIS.", 1}, {"ilike", "Lyon", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc, "{\"type\":\"string_check\",\"name\":\"city\",\"operation\":\"%s\","
                 "\"input\":\"{{ sample.output_text }}\",\"reference\":\"{{item.city}}\"}", cases[i].op);
        tk_grader *g = parse(doc);
        if (!g) continue;
        double s = grade_ok(g, "{\"city\":\"Paris\"}", cases[i].answer, NULL);
        CHECK(s == cases[i].want, "%s '%s': %g (want %g)", cases[i].op, cases[i].answer, s, cases[i].want);
        CHECK(tk_grader_n_scores(g) == 1 && !strcmp(tk_grader_score_name(g, 0), "city") && !tk_grader_score_name(g, 1),
              "score names");
        CHECK(!tk_grader_needs_judge(g), "string_check needs no judge");
        tk_grader_free(g);
    }
    /* an empty reference is contained in everything */
    tk_grader *g = parse("{\"type\":\"string_check\",\"operation\":\"ilike\",\"input\":\"{{sample.output_text}}\",\"reference\":\"\"}");
    if (g) {
        CHECK(grade_ok(g, "{}", "abc", NULL) == 1, "ilike of an empty reference");
        CHECK(!strcmp(tk_grader_score_name(g, 0), "string_check"), "an unnamed grader is named after its type: %s",
              tk_grader_score_name(g, 0));
    }
    tk_grader_free(g);
}

static void test_templates(void) {
    /* nested fields, array indices, numbers, booleans, objects, whitespace inside the braces */
    tk_grader *g = parse("{\"type\":\"string_check\",\"name\":\"t\",\"operation\":\"eq\",\"input\":\"{{sample.output_text}}\","
                         "\"reference\":\"{{item.a.b}}|{{  item.list[1]  }}|{{item.n}}|{{item.x}}|{{ item.ok }}|{{item.o}}|lit\"}");
    if (g) {
        const char *item = "{\"a\":{\"b\":\"deep\"},\"list\":[\"zero\",\"one\"],\"n\":3,\"x\":2.5,\"ok\":true,\"o\":{\"k\":[1]}}";
        CHECK(grade_ok(g, item, "deep|one|3|2.5|true|{\"k\":[1]}|lit", NULL) == 1, "rendered reference");
        grade_fails(g, "{\"a\":{\"c\":1},\"list\":[],\"n\":1}", "x", NULL, "item.a.b is missing");
        grade_fails(g, "{\"a\":{\"b\":\"deep\"},\"list\":[\"zero\"],\"n\":1}", "x", NULL, "item.list[1] is missing");
        grade_fails(g, NULL, "x", NULL, "item.a.b is missing");
        tk_grader_free(g);
    }
    /* a template that is all text, and one whose only variable is the answer */
    g = parse("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{sample.output_text}}\",\"reference\":\"{{sample.output_text}}\"}");
    if (g) CHECK(grade_ok(g, "{}", "", NULL) == 1, "empty answer equals itself");
    tk_grader_free(g);
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ answer }}\",\"reference\":\"x\"}", TK_ERR_FORMAT,
                "g.json: input: {{ answer }}: unknown variable");
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ output.text }}\",\"reference\":\"x\"}", TK_ERR_FORMAT,
                "unknown variable");
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"x\",\"reference\":\"{{ item.a\"}", TK_ERR_FORMAT,
                "g.json: reference: '{{' without a closing '}}'");
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ sample.output_json }}\",\"reference\":\"x\"}",
                TK_ERR_UNSUPPORTED, "only sample.output_text");
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ item. }}\",\"reference\":\"x\"}", TK_ERR_FORMAT,
                "empty field name");
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ item.a[x] }}\",\"reference\":\"x\"}", TK_ERR_FORMAT,
                "expected an index");
    parse_fails("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ item }}\",\"reference\":\"x\"}", TK_ERR_FORMAT,
                "unknown variable");
}

static double eval(const char *expr, const char *const *names, int n, const double *vals) {
    tk_formula *f = NULL;
    CHECK_OK(tk_formula_parse(expr, names, n, "g.json: ", &f));
    double v = f ? tk_formula_eval(f, vals) : NAN;
    tk_formula_free(f);
    return v;
}

static void formula_fails(const char *expr, const char *want) {
    static const char *const names[] = {"a", "b", "c"};
    tk_formula *f = NULL;
    tk_status st = tk_formula_parse(expr, names, 3, "g.json: ", &f);
    CHECK(st == TK_ERR_FORMAT && !f, "'%s' parsed", expr);
    CHECK(strstr(tk_last_error(), want) != NULL, "'%s': message \"%s\" lacks \"%s\"", expr, tk_last_error(), want);
    tk_formula_free(f);
}

static void test_formula(void) {
    static const char *const names[] = {"a", "b", "c"};
    const double v[] = {2, 3, 4};
    static const struct { const char *expr; double want; } cases[] = {
        {"a + b * c", 14}, {"(a + b) * c", 20}, {"a - b - c", -5}, {"a / b / c", 2.0 / 3 / 4},
        {"a * b + c / a", 8}, {"-a + b", 1}, {"-a^2", -4}, {"a^b^a", 512}, {"2^-1", 0.5},
        {"--a", 2}, {"+a", 2}, {"0.5*a + .25*c", 2}, {"1e1 * a", 20}, {"min(a, b, c)", 2}, {"max(a,b,c)", 4},
        {"max(a)", 2}, {"abs(a - c)", 2}, {"floor(b / a)", 1}, {"ceil(b / a)", 2}, {"sqrt(c)", 2},
        {"log(exp(b))", 3}, {"exp(0)", 1}, {"min(max(a, b), c) * (1 - 0.5)", 1.5}, {"  a\t+\nb ", 5}, {"((((a))))", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = eval(cases[i].expr, names, 3, v);
        CHECK(fabs(got - cases[i].want) < 1e-12, "%s = %.17g (want %.17g)", cases[i].expr, got, cases[i].want);
    }
    formula_fails("a +", "unexpected end at column 4");
    formula_fails("a + d", "'d' at column 5 is not one of its graders");
    formula_fails("foo(a)", "unknown function");
    formula_fails("a b", "unexpected text after the expression at column 3");
    formula_fails("min()", "expected a number");
    formula_fails("abs(a, b)", "wrong number of arguments");
    formula_fails("(a + b", "expected ')'");
    formula_fails("a ** b", "expected a number");
    formula_fails("", "unexpected end");
    formula_fails("a; b", "unexpected text");
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "a");
    formula_fails(deep, "nested too deeply");
    memset(deep, '-', 200);
    strcpy(deep + 200, "a");
    formula_fails(deep, "nested too deeply");
    char pw[400] = "a";
    for (int i = 0; i < 100; i++) strcat(pw, "^a");
    formula_fails(pw, "nested too deeply");
}

static void test_multi(void) {
    const char *doc = "{\"type\":\"multi\",\"name\":\"overall\",\"graders\":{"
                      "\"exact\":{\"type\":\"string_check\",\"name\":\"ignored\",\"operation\":\"eq\",\"input\":\"{{sample.output_text}}\",\"reference\":\"{{item.answer}}\"},"
                      "\"mentions\":{\"type\":\"string_check\",\"operation\":\"ilike\",\"input\":\"{{sample.output_text}}\",\"reference\":\"{{item.keyword}}\"}},"
                      "\"calculate_output\":\"0.75 * exact + 0.25 * mentions\"}";
    tk_grader *g = parse(doc);
    if (!g) return;
    CHECK(tk_grader_n_scores(g) == 3, "n_scores %d", tk_grader_n_scores(g));
    CHECK(!strcmp(tk_grader_score_name(g, 0), "overall") && !strcmp(tk_grader_score_name(g, 1), "exact") &&
          !strcmp(tk_grader_score_name(g, 2), "mentions") && !tk_grader_score_name(g, 3) && !tk_grader_score_name(g, -1),
          "score names");
    cJSON *item = cJSON_Parse("{\"answer\":\"blue\",\"keyword\":\"BLUE\"}");
    tk_grade r;
    CHECK_OK(tk_grader_grade(g, item, "blue", NULL, &r));
    CHECK(!r.failed && r.score == 1 && r.sub[0] == 1 && r.sub[1] == 1 && r.sub[2] == 1, "blue: %g %g %g", r.score, r.sub[1], r.sub[2]);
    tk_grade_free(&r);
    CHECK_OK(tk_grader_grade(g, item, "It is blue", NULL, &r));
    CHECK(!r.failed && r.score == 0.25 && r.sub[1] == 0 && r.sub[2] == 1, "It is blue: %g", r.score);
    tk_grade_free(&r);
    cJSON_Delete(item);
    /* a failing sub-grader fails the sample, names itself, and leaves the others' scores */
    item = cJSON_Parse("{\"answer\":\"blue\"}");
    CHECK_OK(tk_grader_grade(g, item, "blue", NULL, &r));
    CHECK(r.failed && isnan(r.score) && r.sub[1] == 1 && isnan(r.sub[2]), "missing keyword: failed %d", r.failed);
    CHECK(strstr(r.error, "grader 'mentions': item.keyword is missing") != NULL, "error: %s", r.error);
    tk_grade_free(&r);
    cJSON_Delete(item);
    tk_grader_free(g);
    /* a formula that divides by zero or takes log(0) fails the sample */
    g = parse("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}},"
              "\"calculate_output\":\"1 / x\"}");
    if (g) grade_fails(g, "{}", "", NULL, "calculate_output gave inf");
    tk_grader_free(g);
    g = parse("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}},"
              "\"calculate_output\":\"log(x) + 1\"}");
    if (g) grade_fails(g, "{}", "", NULL, "not a finite number");
    tk_grader_free(g);
    parse_fails("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}},"
                "\"calculate_output\":\"x + y\"}", TK_ERR_FORMAT, "g.json: calculate_output \"x + y\": 'y' at column 5 is not one of its graders");
    parse_fails("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}},"
                "\"calculate_output\":\"x +* 2\"}", TK_ERR_FORMAT, "at column 4");
    parse_fails("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}}}",
                TK_ERR_FORMAT, "g.json: calculate_output: missing");
    parse_fails("{\"type\":\"multi\",\"graders\":{},\"calculate_output\":\"1\"}", TK_ERR_FORMAT, "g.json: graders: must be a non-empty object");
    parse_fails("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"foo\"}},\"calculate_output\":\"x\"}", TK_ERR_FORMAT,
                "g.json: graders.x.type: unknown type 'foo'");
    parse_fails("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"},"
                "\"y\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{ bad }}\",\"reference\":\"b\"}},\"calculate_output\":\"x\"}",
                TK_ERR_FORMAT, "g.json: graders.y.input: {{ bad }}: unknown variable");
    parse_fails("{\"type\":\"multi\",\"graders\":{\"m\":{\"type\":\"multi\",\"graders\":{},\"calculate_output\":\"1\"}},\"calculate_output\":\"m\"}",
                TK_ERR_UNSUPPORTED, "g.json: graders.m.type: a multi grader inside a multi grader");
    parse_fails("{\"type\":\"multi\",\"graders\":{\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"},"
                "\"x\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}},\"calculate_output\":\"x\"}",
                TK_ERR_FORMAT, "'x' appears twice");
}

/* A scripted judge: replies[k] for the k-th call; records the last messages it saw. */
typedef struct {
    const char *const *replies;
    int n, calls;
    char seen[1024];
    char model[64];
} script;

static tk_status script_reply(void *ud, const char *model, const char *const *roles, const char *const *contents, int n, char **out) {
    script *s = ud;
    s->seen[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(s->seen);
        snprintf(s->seen + l, sizeof s->seen - l, "[%s] %s\n", roles[i], contents[i]);
    }
    snprintf(s->model, sizeof s->model, "%s", model ? model : "(none)");
    if (s->calls >= s->n) return tk_fail(TK_ERR_IO, "the judge model crashed");
    const char *r = s->replies[s->calls++];
    if (!r) return tk_fail(TK_ERR_IO, "the judge model crashed");
    *out = strdup(r);
    return *out ? TK_OK : TK_ERR_NOMEM;
}

static void test_score_model(void) {
    static const char *const replies[] = {
        "{\"result\": 0.7}",
        "The answer is mostly right; 2 small errors.\nScore: 8",
        "Here you go:\n```json\n{\"steps\": 3, \"score\": \"4.5\"}\n```\nThat is 10/10 reasoning.",
        "I cannot grade this.",
        "{\"score\": 11}",
        NULL,
        "-1",
        "{\"result\": 0, \"note\": \"wrong\"} and then 7",
    };
    script s = {replies, (int)(sizeof replies / sizeof replies[0]), 0, "", ""};
    tk_judge judge = {script_reply, &s};
    tk_grader *g = parse("{\"type\":\"score_model\",\"name\":\"rubric\",\"model\":\"judge-small\",\"range\":[0,10],\"input\":["
                         "{\"role\":\"system\",\"content\":\"Grade the answer from 0 to 10.\"},"
                         "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Q: {{ item.q }}\\n\"},{\"type\":\"input_text\",\"text\":\"A: {{ sample.output_text }}\"}]}]}");
    if (!g) return;
    CHECK(tk_grader_needs_judge(g), "score_model needs a judge");
    const char *item = "{\"q\":\"2+2?\"}";
    CHECK_NEAR(grade_ok(g, item, "4", &judge), 0.7, 0);
    CHECK(!strcmp(s.seen, "[system] Grade the answer from 0 to 10.\n[user] Q: 2+2?\nA: 4\n"), "messages: %s", s.seen);
    CHECK(!strcmp(s.model, "judge-small"), "model %s", s.model);
    CHECK_NEAR(grade_ok(g, item, "4", &judge), 8, 0);
    CHECK_NEAR(grade_ok(g, item, "4", &judge), 4.5, 0);
    grade_fails(g, item, "4", &judge, "the judge's reply holds no score: \"I cannot grade this.\"");
    grade_fails(g, item, "4", &judge, "the judge's score 11 is outside the range [0, 10]");
    grade_fails(g, item, "4", &judge, "the judge gave no reply: the judge model crashed");
    grade_fails(g, item, "4", &judge, "score -1 is outside the range");
    CHECK_NEAR(grade_ok(g, item, "4", &judge), 0, 0);
    int calls = s.calls;
    grade_fails(g, "{}", "4", &judge, "grader 'rubric': item.q is missing");
    CHECK(s.calls == calls, "the judge was asked although the template failed");
    /* no judge: the caller's error */
    tk_grade r;
    cJSON *it = cJSON_Parse(item);
    CHECK(tk_grader_grade(g, it, "4", NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "needs a judge model"), "no judge: %s", tk_last_error());
    CHECK(!r.sub, "no scores allocated after a caller's error");
    cJSON_Delete(it);
    tk_grader_free(g);
    /* default range [0, 1], no model */
    static const char *const r2[] = {"0.5", "2"};
    script s2 = {r2, 2, 0, "", ""};
    judge.ud = &s2;
    g = parse("{\"type\":\"score_model\",\"input\":[{\"role\":\"developer\",\"content\":\"{{sample.output_text}}\"}]}");
    if (g) {
        CHECK_NEAR(grade_ok(g, "{}", "x", &judge), 0.5, 0);
        CHECK(!strcmp(s2.model, "(none)"), "model %s", s2.model);
        grade_fails(g, "{}", "x", &judge, "outside the range [0, 1]");
    }
    tk_grader_free(g);
    parse_fails("{\"type\":\"score_model\",\"input\":[]}", TK_ERR_FORMAT, "g.json: input: must be a non-empty array");
    parse_fails("{\"type\":\"score_model\",\"input\":[{\"role\":\"judge\",\"content\":\"x\"}]}", TK_ERR_FORMAT,
                "g.json: input[0].role: unknown role 'judge'");
    parse_fails("{\"type\":\"score_model\",\"input\":[{\"role\":\"user\"}]}", TK_ERR_FORMAT, "g.json: input[0].content: missing");
    parse_fails("{\"type\":\"score_model\",\"input\":[{\"role\":\"user\",\"content\":{\"type\":\"input_image\",\"image_url\":\"x\"}}]}",
                TK_ERR_UNSUPPORTED, "g.json: input[0].content: only text content");
    parse_fails("{\"type\":\"score_model\",\"range\":[1,1],\"input\":[{\"role\":\"user\",\"content\":\"x\"}]}", TK_ERR_FORMAT,
                "g.json: range: must be [low, high]");
    parse_fails("{\"type\":\"score_model\",\"input\":[{\"role\":\"user\",\"content\":\"{{ item.q }\"}]}", TK_ERR_FORMAT,
                "g.json: input[0].content: '{{' without a closing");
}

static void test_reply_numbers(void) {
    static const struct { const char *text; double want; } cases[] = {
        {"7", 7}, {"score: -1.5e1 done", -15}, {"range 1-10: 8", 8}, {"8-10", 10}, {"x=-3", -3}, {"value .5", 0.5},
        {"0x1A", 0}, {"inf 3 nan", 3}, {"Score: 7.", 7}, {"{\"score\": 0.25} 9", 0.25}, {"{\"result\": \" 0.5 \"}", 0.5},
        {"{\"other\": 1} then 4", 4}, {"{\"score\": 0.1} {\"result\": 0.9}", 0.9}, {"{\"score\": true} 2", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = NAN;
        CHECK(tk_judge_reply_score(cases[i].text, &v) && v == cases[i].want, "'%s' -> %g (want %g)", cases[i].text, v, cases[i].want);
    }
    double v;
    CHECK(!tk_judge_reply_score("no digits at all", &v), "a reply without digits");
    CHECK(!tk_judge_reply_score("", &v), "an empty reply");
    CHECK(!tk_text_last_number("e5 .e", &v), "no number in 'e5 .e'");
}

static bool process_gone(pid_t pid) {
    for (int i = 0; i < 500; i++) { /* up to 5 s for the kernel to reap it */
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f) return true;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'Z') return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_command(void) {
    tk_grader *g = parse("{\"type\":\"command\",\"name\":\"exact\",\"command\":[\"" FX "score.py\"],\"timeout_s\":30}");
    if (g) {
        CHECK_NEAR(grade_ok(g, "{\"label\":\"positive\",\"n\":1}", " Positive\n", NULL), 1, 0);
        CHECK_NEAR(grade_ok(g, "{\"label\":\"positive\"}", "negative \"quoted\" \\ \u00e9", NULL), 0.25, 0);
        CHECK(!tk_grader_needs_judge(g), "command needs no judge");
        tk_grader_free(g);
    }
    /* the score is the last number on stdout; arguments are passed as they are, no shell */
    g = parse("{\"type\":\"command\",\"command\":[\"printf\",\"%s\\\\n\",\"1 2; echo 9\",\"0.5\"]}");
    if (g) CHECK_NEAR(grade_ok(g, "{}", "", NULL), 0.5, 0);
    tk_grader_free(g);
    /* a program that never reads its (large) stdin: no SIGPIPE for us */
    char *big = malloc(3 << 20);
    if (big) {
        memset(big, 'x', 3 << 20);
        big[(3 << 20) - 1] = 0;
        g = parse("{\"type\":\"command\",\"command\":[\"echo\",\"0.75\"]}");
        if (g) CHECK_NEAR(grade_ok(g, "{}", big, NULL), 0.75, 0);
        tk_grader_free(g);
        free(big);
    }
    /* timeout: the whole group is killed (the fixture's background child too) */
    char pidfile[] = "/tmp/takumi_grader_pid_XXXXXX";
    int fd = mkstemp(pidfile);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) {
        close(fd);
        char doc[512];
        snprintf(doc, sizeof doc, "{\"type\":\"command\",\"command\":[\"" FX "sleep.sh\",\"%s\"],\"timeout_s\":0.3}", pidfile);
        g = parse(doc);
        if (g) grade_fails(g, "{}", "", NULL, "'" FX "sleep.sh' timed out after 0.3 s (killed)");
        tk_grader_free(g);
        FILE *f = fopen(pidfile, "r");
        int pid = 0;
        CHECK(f && fscanf(f, "%d", &pid) == 1 && pid > 0, "the fixture wrote its child's pid");
        if (f) fclose(f);
        if (pid > 0) CHECK(process_gone((pid_t)pid), "the timed-out command's child %d still runs", pid);
        unlink(pidfile);
    }
    g = parse("{\"type\":\"command\",\"command\":[\"" FX "crash.sh\"]}");
    if (g) grade_fails(g, "{}", "", NULL, "crashed: killed by signal 11");
    tk_grader_free(g);
    g = parse("{\"type\":\"command\",\"command\":[\"" FX "silent.sh\"]}");
    if (g) grade_fails(g, "{}", "", NULL, "printed no number on stdout");
    tk_grader_free(g);
    g = parse("{\"type\":\"command\",\"command\":[\"" FX "exit3.sh\"]}");
    if (g) grade_fails(g, "{}", "", NULL, "exited with status 3; stderr: grader broke: missing key");
    tk_grader_free(g);
    g = parse("{\"type\":\"command\",\"command\":[\"/nonexistent/grader\"]}");
    if (g) grade_fails(g, "{}", "", NULL, "cannot run '/nonexistent/grader': No such file");
    tk_grader_free(g);
    parse_fails("{\"type\":\"command\",\"command\":\"python3 grade.py\"}", TK_ERR_FORMAT, "g.json: command: must be a non-empty array");
    parse_fails("{\"type\":\"command\",\"command\":[]}", TK_ERR_FORMAT, "g.json: command: must be a non-empty array");
    parse_fails("{\"type\":\"command\",\"command\":[\"\"]}", TK_ERR_FORMAT, "g.json: command[0]: must be a non-empty string");
    parse_fails("{\"type\":\"command\",\"command\":[\"x\", 3]}", TK_ERR_FORMAT, "g.json: command[1]: must be a string");
    parse_fails("{\"type\":\"command\",\"command\":[\"x\"],\"timeout_s\":0}", TK_ERR_FORMAT, "g.json: timeout_s: must be a number");
}

/* Every text_similarity metric against the values of sacrebleu / rouge-score / rapidfuzz
 * (tools/make_grader_fixtures.py). */
static void test_text_similarity(void) {
    char *text = NULL;
    CHECK_OK(tk_read_file(FX "similarity.jsonl", &text, NULL));
    if (!text) return;
    int rows = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *row = cJSON_Parse(line);
        const cJSON *m = cJSON_GetObjectItem(row, "metric"), *a = cJSON_GetObjectItem(row, "answer");
        const cJSON *ref = cJSON_GetObjectItem(row, "reference"), *want = cJSON_GetObjectItem(row, "score");
        CHECK(cJSON_IsString(m) && cJSON_IsString(a) && cJSON_IsString(ref) && cJSON_IsNumber(want), "fixture row %d", rows);
        if (!cJSON_IsString(m) || !cJSON_IsString(a) || !cJSON_IsString(ref) || !cJSON_IsNumber(want)) { cJSON_Delete(row); continue; }
        char doc[256];
        snprintf(doc, sizeof doc, "{\"type\":\"text_similarity\",\"name\":\"sim\",\"evaluation_metric\":\"%s\","
                 "\"input\":\"{{ sample.output_text }}\",\"reference\":\"{{ item.reference }}\",\"pass_threshold\":0.5}", m->valuestring);
        tk_grader *g = parse(doc);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "reference", ref->valuestring);
        tk_grade r;
        if (g && tk_grader_grade(g, item, a->valuestring, NULL, &r) == TK_OK) {
            CHECK(!r.failed && fabs(r.score - want->valuedouble) <= 1e-9, "%s('%s', '%s') = %.17g (want %.17g) %s", m->valuestring,
                  a->valuestring, ref->valuestring, r.score, want->valuedouble, r.error);
            tk_grade_free(&r);
        } else {
            CHECK(0, "grading %s: %s", m->valuestring, tk_last_error());
        }
        double thr = 0;
        CHECK(g && tk_grader_pass_threshold(g, &thr) && thr == 0.5, "pass_threshold");
        tk_grader_free(g);
        cJSON_Delete(item);
        cJSON_Delete(row);
        rows++;
    }
    free(text);
    CHECK(rows == 144, "%d fixture rows (want 144)", rows);
    /* an answer that is not UTF-8 fails that sample, not the run */
    tk_grader *g = parse("{\"type\":\"text_similarity\",\"evaluation_metric\":\"bleu\",\"input\":\"{{sample.output_text}}\",\"reference\":\"ok\"}");
    if (g) grade_fails(g, "{}", "bad \xff byte", NULL, "the answer");
    tk_grader_free(g);
    parse_fails("{\"type\":\"text_similarity\",\"evaluation_metric\":\"meteor\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_UNSUPPORTED,
                "g.json: evaluation_metric: 'meteor' is not supported");
    parse_fails("{\"type\":\"text_similarity\",\"evaluation_metric\":\"gleu\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_UNSUPPORTED,
                "'gleu' is not supported");
    parse_fails("{\"type\":\"text_similarity\",\"evaluation_metric\":\"cosine\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_UNSUPPORTED,
                "'cosine' is not supported");
    parse_fails("{\"type\":\"text_similarity\",\"evaluation_metric\":\"rouge_6\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_FORMAT,
                "unknown metric 'rouge_6'");
    parse_fails("{\"type\":\"text_similarity\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_FORMAT, "g.json: evaluation_metric: missing");
    parse_fails("{\"type\":\"text_similarity\",\"evaluation_metric\":\"bleu\",\"input\":\"a\"}", TK_ERR_FORMAT, "g.json: reference: missing");
}

static void test_bad_documents(void) {
    static const struct { const char *doc; tk_status st; const char *want; } bad[] = {
        {"{\"type\":\"foo\"}", TK_ERR_FORMAT,
         "g.json: type: unknown type 'foo'"},
        {"{\"name\":\"x\"}", TK_ERR_FORMAT,
         "g.json: type: missing"},
        {"{\"type\":3}", TK_ERR_FORMAT,
         "g.json: type: missing"},
        {"{\"type\":\"python\",\"source\":\"def grade(sample, item): return 1\"}", TK_ERR_UNSUPPORTED,
         "g.json: type: 'python' graders are not supported (use a 'command' grader"},
        {"{\"type\":\"label_model\"}", TK_ERR_UNSUPPORTED,
         "'label_model' graders are not supported"},
        {"{\"grader\":{\"type\":\"nope\"}}", TK_ERR_FORMAT,
         "g.json: grader.type: unknown type 'nope'"},
        {"[1, 2]", TK_ERR_FORMAT,
         "g.json: the document: a grader must be a JSON object"},
        {"{\"type\":\"string_check\",", TK_ERR_FORMAT,
         "g.json: not valid JSON"},
        {"", TK_ERR_FORMAT,
         "g.json: not valid JSON"},
        {"{\"type\":\"string_check\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_FORMAT,
         "g.json: operation: missing"},
        {"{\"type\":\"string_check\",\"operation\":\"contains\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_FORMAT,
         "g.json: operation: unknown operation 'contains'"},
        {"{\"type\":\"string_check\",\"operation\":\"eq\",\"reference\":\"b\"}", TK_ERR_FORMAT,
         "g.json: input: missing"},
        {"{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":1}", TK_ERR_FORMAT,
         "g.json: reference: must be a string"},
        {"{\"type\":\"string_check\",\"name\":5,\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_FORMAT,
         "g.json: name: must be a string"},
        {"{\"type\":\"string_check\",\"pass_threshold\":\"high\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}", TK_ERR_FORMAT,
         "g.json: pass_threshold: must be a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) parse_fails(bad[i].doc, bad[i].st, bad[i].want);
    /* the grader may come wrapped as in OpenAI's payloads: {"grader": {...}} */
    tk_grader *g = parse("{\"grader\":{\"type\":\"string_check\",\"name\":\"w\",\"operation\":\"eq\",\"input\":\"{{sample.output_text}}\",\"reference\":\"x\"},\"item\":{}}");
    if (g) CHECK(grade_ok(g, NULL, "x", NULL) == 1 && !strcmp(tk_grader_score_name(g, 0), "w"), "wrapped grader");
    tk_grader_free(g);
    g = NULL;
    CHECK(tk_grader_load("tests/fixtures/graders/no-such.json", &g) == TK_ERR_IO && !g, "missing file");
    CHECK(strstr(tk_last_error(), "no-such.json") != NULL, "message: %s", tk_last_error());
    CHECK(tk_grader_parse(NULL, 0, "x", &g) == TK_ERR_ARG, "NULL json");
    tk_grade r;
    CHECK(tk_grader_grade(NULL, NULL, "", NULL, &r) == TK_ERR_ARG, "NULL grader");
    g = parse("{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"a\",\"reference\":\"b\"}");
    cJSON *arr = cJSON_CreateArray();
    if (g) CHECK(tk_grader_grade(g, arr, "", NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "not a JSON object"), "array item");
    cJSON_Delete(arr);
    double thr = -1;
    CHECK(g && !tk_grader_pass_threshold(g, &thr), "no pass_threshold");
    tk_grader_free(g);
    tk_grader_free(NULL);
    tk_grade_free(NULL);
}

static void test_load_file(void) {
    char path[] = "/tmp/takumi_grader_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    const char *doc = "{\"type\":\"string_check\",\"name\":\"yes\",\"operation\":\"eq\",\"input\":\"{{sample.output_text}}\",\"reference\":\"yes\",\"pass_threshold\":0.5}";
    CHECK(write(fd, doc, strlen(doc)) == (ssize_t)strlen(doc), "write");
    close(fd);
    tk_grader *g = NULL;
    CHECK_OK(tk_grader_load(path, &g));
    double thr = 0;
    if (g) {
        CHECK_NEAR(grade_ok(g, NULL, "yes", NULL), 1, 0);
        CHECK(tk_grader_pass_threshold(g, &thr) && thr == 0.5, "pass_threshold %g", thr);
    }
    tk_grader_free(g);
    FILE *f = fopen(path, "w");
    if (f) fputs("{\"type\":\"nope\"}", f), fclose(f);
    g = NULL;
    CHECK(tk_grader_load(path, &g) == TK_ERR_FORMAT && !g, "bad file");
    char want[128];
    snprintf(want, sizeof want, "%s: type: unknown type 'nope'", path);
    CHECK(strstr(tk_last_error(), want) != NULL, "message \"%s\" lacks \"%s\"", tk_last_error(), want);
    unlink(path);
}

/* Concurrent grading of one grader (templates, a formula and a command) gives each thread its own right answers. */
typedef struct { const tk_grader *g; int id; int bad; } worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 4; i++) {
        char item[64], answer[32];
        bool match = (w->id + i) % 2 == 0;
        snprintf(item, sizeof item, "{\"label\":\"l%d\"}", w->id);
        snprintf(answer, sizeof answer, "%s%d", match ? "l" : "m", w->id);
        cJSON *it = cJSON_Parse(item);
        tk_grade r;
        if (tk_grader_grade(w->g, it, answer, NULL, &r) || r.failed || r.score != (match ? 2 : 0.25) || r.sub[1] != (match ? 1 : 0.25) ||
            r.sub[2] != (match ? 1 : 0))
            w->bad++;
        tk_grade_free(&r);
        cJSON_Delete(it);
    }
    return NULL;
}

static void test_threads(void) {
    tk_grader *g = parse("{\"type\":\"multi\",\"name\":\"both\",\"graders\":{"
                         "\"cmd\":{\"type\":\"command\",\"command\":[\"" FX "score.py\"],\"timeout_s\":60},"
                         "\"eq\":{\"type\":\"string_check\",\"operation\":\"eq\",\"input\":\"{{sample.output_text}}\",\"reference\":\"{{item.label}}\"}},"
                         "\"calculate_output\":\"2 * cmd * max(eq, 0.25) / max(cmd, 0.5) + (1 - eq) * 0\"}");
    if (!g) return;
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){g, i, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].bad == 0, "thread %d: %d wrong grades", i, w[i].bad);
    }
    tk_grader_free(g);
}

int main(void) {
    test_string_check();
    test_templates();
    test_formula();
    test_multi();
    test_text_similarity();
    test_score_model();
    test_reply_numbers();
    test_command();
    test_bad_documents();
    test_load_file();
    test_threads();
    return tk_test_done("test_grader");
}
