/* Field maps, CSV/TSV tables and the contamination check of the data toolkit:
 * the unknown-format summary (N errors for N records, none at line 0), --map parsing and
 * its refusals, LLaMA-Factory dataset_info entries, a Schema-Guided-Dialogue file read,
 * checked and converted through a map, RFC 4180 rows (quotes, doubled quotes, line breaks
 * inside quotes, CRLF) with the line of every problem, TSV with a header and a map, and
 * contamination matches (exact / prompt / near) against an independent exact Jaccard. */
#include "test.h"
#include "data/data_internal.h"
#include "data_findings.h"

#define FX "tests/fixtures/data/"
#define SGD_MAP "messages=turns,role=speaker,content=utterance,user=USER,assistant=SYSTEM"

static tk_data_report *check(const char *path, const tk_data_map *m, fset *fs, int threads) { return run_check(path, TK_DATA_AUTO, m, fs, threads); }

static tk_data_map *map_of(const char *spec) {
    tk_data_map *m = NULL;
    CHECK_OK(tk_data_map_parse(spec, &m));
    return m;
}

/* Issue 15: a file of N records in an unknown layout said "errors: N+1 (first line 0)". */
static void test_unknown_layout_count(void) {
    fset fs;
    tk_data_report *r = check(FX "sgd.jsonl", NULL, &fs, 1);
    if (!r) return;
    CHECK(r->n_records == 4 && r->n_errors == 4, "records %llu errors %llu (expected 4 and 4)", (unsigned long long)r->n_records,
          (unsigned long long)r->n_errors);
    CHECK(r->n_error_counts == 1 && !strcmp(r->error_counts[0].name, "unknown_format") && r->error_counts[0].first_line == 1,
          "unknown_format first line %llu", r->n_error_counts ? (unsigned long long)r->error_counts[0].first_line : 0ULL);
    for (int i = 0; i < fs.n; i++) CHECK(fs.v[i].line >= 1, "finding at line 0: %s", fs.v[i].msg);
    const fnd *f = find(&fs, 1, "unknown_format");
    CHECK(f && strstr(f->msg, "dialogue_id, services, turns") && strstr(f->msg, "--map"), "message: %s", f ? f->msg : "none");
    tk_buf t = {0};
    tk_data_report_text(r, &t);
    CHECK(t.data && strstr(t.data, "errors: 4,") && strstr(t.data, "unknown_format 4 (first line 1)"), "summary:\n%s", t.data);
    tk_buf_free(&t);
    tk_data_report_free(r);
}

static void refused(const char *spec, const char *want) {
    tk_data_map *m = NULL;
    tk_status st = tk_data_map_parse(spec, &m);
    CHECK(st != TK_OK && !m && strstr(tk_last_error(), want), "--map '%s': %s (want '%s')", spec, tk_last_error(), want);
    tk_data_map_free(m);
}

static void test_map_parse(void) {
    tk_data_map *m = map_of(SGD_MAP ",system=\"You are kind, and \"\"brief\"\".\",train=last");
    if (m) {
        CHECK(tk_data_map_format(m) == TK_DATA_CHAT, "chat map");
        CHECK(!strcmp(m->system_text, "You are kind, and \"brief\".") && m->train == TK_MAP_TRAIN_LAST, "quoted value: %s", m->system_text);
        tk_buf d = {0};
        tk_data_map_describe(m, &d);
        tk_data_map *m2 = NULL;
        CHECK_OK(tk_data_map_parse(d.data, &m2));   /* the description parses back to the same map */
        tk_buf d2 = {0};
        if (m2) tk_data_map_describe(m2, &d2);
        CHECK(d2.data && !strcmp(d.data, d2.data), "describe round trip: %s vs %s", d.data, d2.data);
        tk_buf_free(&d); tk_buf_free(&d2);
        tk_data_map_free(m2);
    }
    tk_data_map_free(m);
    m = map_of("messages=turns,user=USER|CUSTOMER,assistant=AGENT");
    if (m) CHECK(m->roles[TK_MAP_USER].n == 2 && !strcmp(m->roles[TK_MAP_USER].v[1], "CUSTOMER") && !strcmp(m->role, "role"), "alternatives");
    tk_data_map_free(m);
    m = map_of("prompt=question,completion=answer");
    if (m) CHECK(m->kind == TK_MAP_PC && tk_data_map_format(m) == TK_DATA_CHAT, "prompt/completion map");
    tk_data_map_free(m);
    m = map_of("prompt=question,reference=answer");   /* reference= (what takumi eval calls the answer) is completion= */
    if (m) CHECK(m->kind == TK_MAP_PC && m->completion && !strcmp(m->completion, "answer"), "reference= alias");
    tk_data_map_free(m);
    m = map_of("text=review,label=stars");
    if (m) CHECK(tk_data_map_format(m) == TK_DATA_CLASSIFICATION, "classification map");
    tk_data_map_free(m);
    refused("messages=turns,colour=red", "unknown key 'colour'");
    refused("messages=turns,messages=x", "'messages' is given twice");
    refused("messages=", "'messages' has an empty value");
    refused("messages=turns,prompt=q", "layout");
    refused("role=speaker", "needs messages=FIELD");
    refused("prompt=question", "needs both prompt=FIELD and completion=FIELD");
    refused("prompt=q,completion=a,reference=b", "give one of completion=, response= and reference=, not two");
    refused("messages=t,user=A,assistant=A", "role value 'A' is given to two roles");
    refused("messages=t,train=sometimes", "train=sometimes");
    refused("messages=t,system=\"open", "not closed");
    refused("messages=t,", "trailing comma");
    refused("text=x,label=y,system=hi", "apply to conversations");
    refused("", "names no fields");
}

static tk_data_map *json_map(const char *js) {
    tk_data_map *m = NULL;
    tk_status st = tk_data_map_from_json(js, strlen(js), "test.json", &m);
    CHECK(st == TK_OK, "map %s: %s", js, tk_last_error());
    return m;
}

static void test_map_json(void) {
    tk_data_map *file = NULL;
    CHECK_OK(tk_data_map_load(FX "sgd_map.json", &file));
    tk_data_map *spec = map_of(SGD_MAP);
    tk_buf a = {0}, b = {0};
    if (file && spec) {
        tk_data_map_describe(file, &a);
        tk_data_map_describe(spec, &b);
        CHECK(!strcmp(a.data, b.data), "LLaMA-Factory entry %s vs spec %s", a.data, b.data);
    }
    tk_buf_free(&a); tk_buf_free(&b);
    tk_data_map_free(file); tk_data_map_free(spec);
    /* sharegpt defaults: conversations / from / value / human / gpt */
    tk_data_map *m = json_map("{\"formatting\": \"sharegpt\"}");
    if (m) CHECK(!strcmp(m->messages, "conversations") && !strcmp(m->role, "from") && !strcmp(m->roles[TK_MAP_ASSISTANT].v[0], "gpt"), "sharegpt defaults");
    tk_data_map_free(m);
    /* alpaca: instruction + input -> prompt, output -> completion */
    m = json_map("{\"file_name\": \"x.json\", \"columns\": {\"prompt\": \"question\", \"response\": \"response\", \"system\": \"system_prompt\"}}");
    if (m) CHECK(m->kind == TK_MAP_PC && !strcmp(m->prompt, "question") && !strcmp(m->query, "input") && !strcmp(m->system_field, "system_prompt"), "alpaca columns");
    tk_data_map_free(m);
    m = json_map("{\"messages\": \"turns\", \"user\": [\"USER\", \"CUSTOMER\"], \"assistant\": \"SYSTEM\"}");
    if (m) CHECK(m->roles[TK_MAP_USER].n == 2, "flat object with a list of role values");
    tk_data_map_free(m);
    static const char *const bad[][2] = {
        {"{\"formatting\": \"sharegpt\", \"columns\": {\"messages\": \"c\", \"tools\": \"tools\"}}", "\"tools\" is not supported"},
        {"{\"a\": {\"file_name\": \"a.json\"}, \"b\": {\"file_name\": \"b.json\"}}", "several dataset entries (a, b)"},
        {"{\"formatting\": \"sharegpt\", \"ranking\": true}", "\"ranking\" is not supported"},
        {"{\"formatting\": \"openai\"}", "expected sharegpt or alpaca"},
        {"[1]", "expected a JSON object"},
        {"{\"messages\": 3}", "must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_data_map *x = NULL;
        tk_status st = tk_data_map_from_json(bad[i][0], strlen(bad[i][0]), "m.json", &x);
        CHECK(st != TK_OK && strstr(tk_last_error(), bad[i][1]), "%s: %s", bad[i][0], tk_last_error());
        tk_data_map_free(x);
    }
}

static void test_sgd(void) {
    tk_data_map *m = map_of(SGD_MAP);
    fset fs;
    tk_data_report *r = check(FX "sgd.jsonl", m, &fs, 2);
    if (r) {
        CHECK(r->n_examples == 4 && r->n_errors == 0 && r->format == TK_DATA_CHAT && r->messages.max == 4, "mapped SGD: %llu examples, %llu errors",
              (unsigned long long)r->n_examples, (unsigned long long)r->n_errors);
        tk_data_report_free(r);
    }
    r = check(FX "sgd_bad.jsonl", m, &fs, 1);
    if (r) {
        CHECK(r->n_records == 4 && r->n_examples == 1 && r->n_errors == 3 && fs.n == 3, "bad SGD: %llu examples %llu errors", (unsigned long long)r->n_examples,
              (unsigned long long)r->n_errors);
        const fnd *f = find(&fs, 1, "unmapped_role");
        CHECK(f && strstr(f->msg, "turn 2") && strstr(f->msg, "\"OPERATOR\"") && strstr(f->msg, "\"speaker\""), "%s", f ? f->msg : "no unmapped_role at line 1");
        f = find(&fs, 2, "map_missing_field");
        CHECK(f && strstr(f->msg, "\"utterance\"") && strstr(f->msg, "speaker, text"), "%s", f ? f->msg : "no map_missing_field at line 2");
        f = find(&fs, 3, "map_missing_field");
        CHECK(f && strstr(f->msg, "\"turns\"") && strstr(f->msg, "dialogue_id, services, dialogue"), "%s", f ? f->msg : "no map_missing_field at line 3");
        tk_data_report_free(r);
    }
    tk_data_map_free(m);
    /* a map naming a field the first record lacks: refused at once, naming the field and what the record has */
    m = map_of("messages=dialog,role=speaker");
    tk_data_check_params p = tk_data_check_default_params();
    p.map = m;
    tk_data_report *r2 = NULL;
    tk_status st = tk_data_check(FX "sgd.jsonl", &p, &r2);
    CHECK(st != TK_OK && !r2 && strstr(tk_last_error(), "messages=dialog") && strstr(tk_last_error(), "line 1") &&
          strstr(tk_last_error(), "dialogue_id, services, turns"), "%s", tk_last_error());
    tk_data_map_free(m);

    /* convert: ordinary chat JSONL that checks clean without a map; system= and train=last */
    m = map_of(SGD_MAP ",system=Be brief.,train=last");
    char out[] = "/tmp/tk_map_XXXXXX";
    int fd = mkstemp(out);
    CHECK(fd >= 0, "temp file");
    if (fd >= 0) close(fd);
    fs.n = 0;
    tk_data_convert_result res;
    CHECK_OK(tk_data_convert_mapped(FX "sgd.jsonl", TK_DATA_AUTO, m, TK_DATA_TO_CHAT, out, NULL, collect, &fs, &res));
    CHECK(res.n_written == 4 && res.n_failed == 0 && fs.n == 0, "converted %llu", (unsigned long long)res.n_written);
    r = check(out, NULL, &fs, 1);
    if (r) { CHECK(r->n_examples == 4 && r->n_errors == 0 && r->format == TK_DATA_CHAT && r->format_detected, "converted file checks clean"); tk_data_report_free(r); }
    tk_mapped_file mf;
    if (tk_map_file(out, &mf) == TK_OK) {
        const char *nl = memchr(mf.data, '\n', mf.size);
        cJSON *j = nl ? cJSON_ParseWithLength((const char *)mf.data, (size_t)(nl - (const char *)mf.data)) : NULL;
        const cJSON *msgs = cJSON_GetObjectItem(j, "messages");
        const cJSON *m0 = cJSON_GetArrayItem(msgs, 0), *m2 = cJSON_GetArrayItem(msgs, 2), *m4 = cJSON_GetArrayItem(msgs, 4);
        CHECK(cJSON_GetArraySize(msgs) == 5 && !strcmp(cJSON_GetObjectItem(m0, "content")->valuestring, "Be brief."), "system first");
        CHECK(cJSON_GetObjectItem(m2, "weight") && cJSON_GetObjectItem(m2, "weight")->valueint == 0 && !cJSON_GetObjectItem(m4, "weight"),
              "train=last: earlier replies weight 0, the last trains");
        CHECK(!strcmp(cJSON_GetObjectItem(m4, "content")->valuestring, "Il Fornaio is a nice Italian restaurant in San Jose."), "last reply text");
        CHECK(cJSON_GetObjectItem(j, "dialogue_id") && !cJSON_GetObjectItem(j, "turns"), "unused fields kept, mapped ones consumed");
        cJSON_Delete(j);
        tk_unmap_file(&mf);
    }
    unlink(out);
    tk_data_map_free(m);
}

static void test_csv_rows(void) {
    tk_csv_row row = {0};
    tk_rfinds fs = {0};
    const char *s = "plain,\"with, comma\",\"say \"\"hi\"\"\",\"two\nlines\",";
    CHECK(tk_csv_split(s, strlen(s), ',', 1, &row, &fs) && row.n == 5, "%zu fields", row.n);
    if (row.n == 5)
        CHECK(!strcmp(row.v[0], "plain") && !strcmp(row.v[1], "with, comma") && !strcmp(row.v[2], "say \"hi\"") &&
              !strcmp(row.v[3], "two\nlines") && !strcmp(row.v[4], ""), "field values");
    CHECK(tk_csv_split("", 0, ',', 1, &row, &fs) && row.n == 1 && !row.v[0][0], "empty row: one empty field");
    CHECK(tk_csv_split("a\tb \"c\"", 7, '\t', 1, &row, &fs) == false && fs.n == 1 && !strcmp(fs.v[0].category, "csv_quote"), "stray quote");
    tk_rf_clear(&fs);
    CHECK(!tk_csv_split("x,\"a\nb\nc", 9, ',', 7, &row, &fs) && fs.n == 1 && strstr(fs.v[0].message, "opened at line 7") &&
          strstr(fs.v[0].message, "line 9"), "unclosed: %s", fs.n ? fs.v[0].message : "");
    tk_rf_clear(&fs);
    tk_csv_row_free(&row);
    tk_csv_scan sc = {0};
    CHECK(!tk_csv_scan_line(&sc, "a,\"b", 4, ','), "open quote continues the row");
    CHECK(!tk_csv_scan_line(&sc, "c\"\"d", 4, ','), "a doubled quote stays inside");
    CHECK(tk_csv_scan_line(&sc, "e\",f", 4, ','), "closed");
    tk_csv_scan s2 = {0};
    CHECK(tk_csv_scan_line(&s2, "5\" screen,x", 11, ','), "a quote inside an unquoted field does not open a quoted field");
}

static void test_csv_files(void) {
    fset fs;
    tk_data_report *r = check(FX "faq.csv", NULL, &fs, 1);
    if (r) {
        CHECK(r->container == TK_DATA_CSV && r->format == TK_DATA_PROMPT_COMPLETION && r->n_examples == 4 && r->n_errors == 0 && r->n_lines == 6,
              "faq.csv: %llu examples, %llu lines", (unsigned long long)r->n_examples, (unsigned long long)r->n_lines);
        CHECK(find(&fs, 1, "crlf") != NULL, "CRLF noted");
        tk_data_report_free(r);
    }
    r = check(FX "faq_bad.csv", NULL, &fs, 2);
    if (r) {
        static const struct { uint64_t line; const char *cat; } want[] = {
            {3, "csv_field_count"}, {4, "csv_quote"}, {5, "csv_quote"}, {6, "invalid_utf8"}, {7, "csv_quote"}};
        CHECK(fs.n == 5 && r->n_records == 6 && r->n_examples == 1, "faq_bad.csv: %d findings, %llu examples", fs.n, (unsigned long long)r->n_examples);
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK(find(&fs, want[i].line, want[i].cat), "line %llu: %s", (unsigned long long)want[i].line, want[i].cat);
        const fnd *f = find(&fs, 7, "csv_quote");
        CHECK(f && strstr(f->msg, "never closed") && strstr(f->msg, "line 8"), "%s", f ? f->msg : "");
        tk_data_report_free(r);
    }
    /* convert keeps quoted commas, doubled quotes and the line break inside a field (CRLF -> LF), extra columns as keys */
    char out[] = "/tmp/tk_csv_XXXXXX";
    int fd = mkstemp(out);
    if (fd >= 0) close(fd);
    tk_data_convert_result res;
    CHECK_OK(tk_data_convert(FX "faq.csv", TK_DATA_AUTO, TK_DATA_TO_CHAT, out, NULL, NULL, NULL, &res));
    CHECK(res.n_written == 4, "csv converted %llu", (unsigned long long)res.n_written);
    tk_mapped_file mf;
    if (tk_map_file(out, &mf) == TK_OK) {
        tk_buf b = {0};
        tk_buf_append(&b, mf.data, mf.size);
        tk_buf_append(&b, "", 1);
        CHECK(strstr(b.data, "costs \\\"2,000 yen\\\".") && strstr(b.data, "30 days.\\nInclude the receipt.") && !strstr(b.data, "\\r") &&
              strstr(b.data, "\"category\":\"shipping\""), "converted CSV:\n%s", b.data);
        tk_buf_free(&b);
        tk_unmap_file(&mf);
    }
    unlink(out);
    /* TSV with a header read through a map; without a map TSV stays text<TAB>label */
    tk_data_map *m = map_of("text=review,label=stars");
    r = check(FX "reviews.tsv", m, &fs, 1);
    if (r) {
        CHECK(r->n_examples == 3 && r->n_errors == 0 && r->n_labels == 3, "reviews.tsv: %llu examples, %zu labels", (unsigned long long)r->n_examples, r->n_labels);
        tk_data_report_free(r);
    }
    tk_data_map_free(m);
    m = map_of("prompt=q,completion=answer");
    tk_data_check_params p = tk_data_check_default_params();
    p.map = m;
    tk_data_report *r2 = NULL;
    CHECK(tk_data_check(FX "faq.csv", &p, &r2) != TK_OK && strstr(tk_last_error(), "header (line 1)") &&
          strstr(tk_last_error(), "columns: question, answer, category"), "%s", tk_last_error());
    tk_data_map_free(m);
}

/* Exact Jaccard of the character 5-gram sets of two texts, computed here from their normalised forms. */
static double jaccard(const char *a, const char *b) {
    tk_buf na = {0}, nb = {0};
    tk_text_normalize(a, strlen(a), &na);
    tk_text_normalize(b, strlen(b), &nb);
    tk_shingles sa = {0}, sb = {0};
    tk_shingle_set(na.data, na.len, &sa);
    tk_shingle_set(nb.data, nb.len, &sb);
    double j = tk_shingle_jaccard(sa.h, sa.n, sb.h, sb.n);
    free(sa.h); free(sb.h);
    tk_buf_free(&na); tk_buf_free(&nb);
    return j;
}

static tk_data_report *against(const char *path, double threshold, int threads, fset *fs) {
    static const char *const ev[] = {FX "heldout.jsonl"};
    tk_data_check_params p = tk_data_check_default_params();
    p.against = ev;
    p.n_against = 1;
    p.contamination_threshold = threshold;
    p.threads = threads;
    p.on_finding = collect;
    p.user = fs;
    fs->n = 0;
    tk_data_report *r = NULL;
    CHECK_OK(tk_data_check(path, &p, &r));
    return r;
}

static void test_contamination(void) {
    fset fs;
    tk_data_report *r = against(FX "faq.csv", 0.8, 1, &fs);
    if (!r) return;
    CHECK(r->against_records == 5 && r->against_invalid == 1 && r->n_contaminated == 4, "records %llu invalid %llu contaminated %llu",
          (unsigned long long)r->against_records, (unsigned long long)r->against_invalid, (unsigned long long)r->n_contaminated);
    CHECK(r->n_contam_kind[TK_CONTAM_EXACT] == 1 && r->n_contam_kind[TK_CONTAM_PROMPT] == 2 && r->n_contam_kind[TK_CONTAM_NEAR] == 1, "kinds");
    static const struct { uint64_t line, eval; tk_contam_kind k; } want[] = {
        {2, 1, TK_CONTAM_EXACT}, {3, 3, TK_CONTAM_PROMPT}, {4, 5, TK_CONTAM_NEAR}, {6, 2, TK_CONTAM_PROMPT}};
    CHECK(r->n_contamination == 4, "%zu matches", r->n_contamination);
    for (size_t i = 0; i < 4 && i < r->n_contamination; i++) {
        const tk_data_contamination *c = &r->contamination[i];
        CHECK(c->line == want[i].line && c->eval_line == want[i].eval && c->kind == want[i].k && c->file == 0, "match %zu: line %llu = %llu (%s)", i,
              (unsigned long long)c->line, (unsigned long long)c->eval_line, tk_contam_kind_name(c->kind));
    }
    double j = jaccard("How do I return an item? Send it back within 30 days.\nInclude the receipt.",
                       "How can I return an item? Send it back within 30 days. Include the receipt.");
    CHECK(r->n_contamination > 2 && fabs(r->contamination[2].similarity - j) < 1e-6 && j >= 0.8, "near similarity %g vs exact Jaccard %g",
          r->n_contamination > 2 ? r->contamination[2].similarity : -1, j);
    CHECK(find(&fs, 2, "contamination") && find(&fs, 0, "against_unreadable") && r->verdict == TK_DATA_NOT_READY, "findings and verdict");
    tk_buf js = {0};
    tk_data_report_json(r, &js);
    cJSON *doc = cJSON_Parse(js.data);
    const cJSON *c = cJSON_GetObjectItem(doc, "contamination");
    CHECK(c && cJSON_GetObjectItem(c, "contaminated_records")->valueint == 4 && cJSON_GetArraySize(cJSON_GetObjectItem(c, "matches")) == 4, "JSON report");
    cJSON_Delete(doc);
    tk_buf_free(&js);
    /* same results on 2 threads; above the near pair's similarity the near match goes */
    tk_data_report *r2 = against(FX "faq.csv", 0.8, 2, &fs);
    bool same = r2 && r2->n_contamination == r->n_contamination;
    for (size_t i = 0; same && i < r->n_contamination; i++) {
        const tk_data_contamination *x = &r->contamination[i], *y = &r2->contamination[i];
        same = x->line == y->line && x->eval_line == y->eval_line && x->file == y->file && x->kind == y->kind && x->similarity == y->similarity;
    }
    CHECK(same, "thread count changes nothing");
    tk_data_report_free(r2);
    r2 = against(FX "faq.csv", j + 0.01, 1, &fs);
    CHECK(r2 && r2->n_contaminated == 3 && r2->n_contam_kind[TK_CONTAM_NEAR] == 0, "threshold above the pair's Jaccard");
    tk_data_report_free(r2);
    tk_data_report_free(r);
    /* a file against itself: every valid record is an exact match of its own line */
    static const char *const self[] = {FX "sgd.jsonl"};
    tk_data_map *m = map_of(SGD_MAP);
    tk_data_check_params p = tk_data_check_default_params();
    p.map = m;
    p.against = self;
    p.n_against = 1;
    CHECK_OK(tk_data_check(FX "sgd.jsonl", &p, &r));
    if (r) {
        bool diag = r->n_contamination == 4;
        for (size_t i = 0; i < r->n_contamination; i++) diag = diag && r->contamination[i].line == r->contamination[i].eval_line;
        CHECK(diag && r->n_contam_kind[TK_CONTAM_EXACT] == 4, "self: %zu matches", r->n_contamination);
        tk_data_report_free(r);
    }
    tk_data_map_free(m);
}

int main(void) {
    test_unknown_layout_count();
    test_map_parse();
    test_map_json();
    test_sgd();
    test_csv_rows();
    test_csv_files();
    test_contamination();
    return tk_test_done("test_data_map");
}
