/* libFuzzer target for the field-map parser and the CSV/TSV table reader. The first byte
 * picks what the rest is: (0) a --map spec, (1) a --map-file JSON object, (2) a CSV or TSV
 * file checked with one of four maps (or none), (3) a JSONL file checked through one of four
 * maps. Properties: never a crash or sanitizer report; a refusal carries a message; a parsed
 * map describes itself in a spec that parses back to the same description; a check's JSON
 * report parses and has no more examples than records; a row split never grows the text. */
#include "takumi.h"
#include "data/data_internal.h"
#include <stdlib.h>
#include <string.h>

static void on_finding(const tk_data_finding *f, void *u) {
    (void)u;
    if (!f->category[0] || !f->message) abort();
}

static void roundtrip(tk_status st, tk_data_map *m) {
    if (st != TK_OK) { if (m || !tk_last_error()[0]) abort(); return; }
    tk_buf a = {0}, b = {0};
    if (tk_data_map_describe(m, &a) != TK_OK || !a.data) abort();
    tk_data_map *m2 = NULL;
    if (tk_data_map_parse(a.data, &m2) != TK_OK) abort();
    tk_data_map_describe(m2, &b);
    if (!b.data || strcmp(a.data, b.data) || tk_data_map_format(m) != tk_data_map_format(m2)) abort();
    tk_buf_free(&a); tk_buf_free(&b);
    tk_data_map_free(m2);
    tk_data_map_free(m);
}

static void check(const uint8_t *d, size_t n, const char *name, const char *spec) {
    tk_data_map *m = NULL;
    if (spec && tk_data_map_parse(spec, &m) != TK_OK) abort();
    tk_data_check_params p = tk_data_check_default_params();
    p.map = m;
    p.threads = 1;
    p.max_line_bytes = 2048;
    p.on_finding = on_finding;
    tk_data_report *r = NULL;
    tk_status st = tk_data_check_buffer(d, n, name, &p, &r);
    if (st != TK_OK) { if (r || !tk_last_error()[0]) abort(); }
    else {
        tk_buf out = {0};
        if (tk_data_report_json(r, &out) != TK_OK) abort();
        cJSON *j = cJSON_Parse(out.data);
        if (!j || r->n_examples > r->n_records) abort();
        cJSON_Delete(j);
        tk_buf_free(&out);
        tk_data_report_free(r);
    }
    tk_data_map_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] & 3, sub = (data[0] >> 2) & 3;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    if (mode == 0) {
        char *s = malloc(n + 1);
        if (!s) return 0;
        memcpy(s, d, n);
        s[n] = 0;
        tk_data_map *m = NULL;
        roundtrip(tk_data_map_parse(s, &m), m);
        free(s);
    } else if (mode == 1) {
        tk_data_map *m = NULL;
        roundtrip(tk_data_map_from_json((const char *)d, n, "fuzz.json", &m), m);
    } else if (mode == 2) {
        static const char *const maps[4] = {NULL, "prompt=question,completion=answer", "text=text,label=label",
                                            "messages=m,role=r,content=c,user=u,assistant=a"};
        check(d, n, (data[0] & 16) ? "fuzz.csv" : "fuzz.tsv", (data[0] & 16) || sub ? maps[sub] : maps[2]);
        tk_csv_row row = {0};
        tk_rfinds fs = {0};
        if (tk_csv_split((const char *)d, n, (data[0] & 32) ? '\t' : ',', 1, &row, &fs)) {
            size_t total = 0;
            for (size_t i = 0; i < row.n; i++) total += strlen(row.v[i]);
            if (row.n < 1 || total > n) abort();
        } else if (fs.n_errors < 1) abort();
        tk_rf_clear(&fs);
        tk_csv_row_free(&row);
    } else {
        static const char *const maps[4] = {"messages=turns,role=speaker,content=utterance,user=USER,assistant=SYSTEM",
                                            "prompt=q,query=i,completion=a,history=h,system_field=s,system=S",
                                            "text=t,label=l", "messages=m,role=r.n,content=c.t,user=U|V,assistant=A,system_role=Y,train=last"};
        check(d, n, "fuzz.jsonl", maps[sub]);
    }
    return 0;
}
