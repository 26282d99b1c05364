/* libFuzzer target for the data toolkit's reader and validators: the first byte picks
 * the container (JSONL, JSON array, TSV, text) and the format (auto, chat, …, text), the
 * rest is the file. The whole check runs on it (UTF-8, JSON diagnostics, validation,
 * normalisation, MinHash, PII, duplicate groups, report), with a small line limit so
 * over-long lines are exercised too; then redaction runs on the raw text. Properties: never
 * a crash or sanitizer report; a failure carries a message; the JSON report and every
 * finding's JSON parse; redaction changes nothing without a match and keeps valid JSON valid. */
#include "takumi.h"
#include "data/data_internal.h"
#include <stdlib.h>
#include <string.h>

static void on_finding(const tk_data_finding *f, void *u) {
    tk_buf *b = u;
    b->len = 0;
    tk_data_finding_json(f, b);
    cJSON *j = b->data ? cJSON_Parse(b->data) : NULL;
    if (!j || !f->category[0]) abort();   /* every finding is valid JSON with a category */
    cJSON_Delete(j);
    b->len = 0;
    tk_data_finding_format(f, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const tk_data_container conts[4] = {TK_DATA_JSONL, TK_DATA_JSON_ARRAY, TK_DATA_TSV, TK_DATA_TXT};
    tk_data_check_params p = tk_data_check_default_params();
    p.container = conts[data[0] & 3];
    p.format = (tk_data_format)((data[0] >> 2) % TK_DATA_FORMAT_COUNT);
    p.threads = 1;
    p.max_line_bytes = 2048;
    p.max_seq = 64;
    p.tokens_per_second = 100;
    tk_buf fb = {0};
    p.on_finding = on_finding;
    p.user = &fb;
    tk_data_report *r = NULL;
    tk_status st = tk_data_check_buffer(data + 1, size - 1, "fuzz.jsonl", &p, &r);
    if (st != TK_OK) {
        if (r || !tk_last_error()[0]) abort();
    } else {
        tk_buf out = {0};
        if (tk_data_report_json(r, &out) != TK_OK) abort();
        cJSON *j = cJSON_Parse(out.data);
        if (!j) abort();
        cJSON_Delete(j);
        out.len = 0;
        if (tk_data_report_text(r, &out) != TK_OK) abort();
        if (r->n_examples > r->n_records) abort();
        tk_buf_free(&out);
        tk_data_report_free(r);
    }
    tk_buf_free(&fb);
    /* redaction of the raw text: same length or longer only by placeholders; JSON that parsed still parses */
    tk_buf rb = {0};
    uint64_t counts[TK_PII_COUNT] = {0};
    if (tk_redact_json_buffer((const char *)data + 1, size - 1, &rb, counts) != TK_OK) abort();
    uint64_t nred = counts[0] + counts[1] + counts[2] + counts[3];
    if (nred == 0 && (rb.len != size - 1 || (size > 1 && memcmp(rb.data, data + 1, size - 1)))) abort();
    cJSON *before = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (before) {
        cJSON *after = cJSON_ParseWithLength(rb.data ? rb.data : "", rb.len);
        if (!after) abort();
        cJSON_Delete(after);
        cJSON_Delete(before);
    }
    tk_buf_free(&rb);
    /* the text helpers on raw bytes (valid UTF-8 or not) */
    tk_buf nb = {0};
    if (tk_text_normalize((const char *)data, size, &nb) != TK_OK) abort();
    uint16_t sig[TK_MINHASH_N];
    tk_minhash(nb.data ? nb.data : "", nb.len, sig);
    tk_buf_free(&nb);
    return 0;
}
