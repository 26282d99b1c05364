/* `data redact`: copies a data file with personal data replaced by typed placeholders
 * ([EMAIL], [PHONE], [CREDIT_CARD], [IP]); every other byte is copied unchanged.
 *
 * JSON (JSONL lines and JSON-array files) is rewritten at the level of its raw text:
 * each string value (not object keys) is decoded (escapes included) and scanned; only
 * the raw byte ranges behind a match are replaced, through a decoded->raw offset map,
 * so the escapes and formatting around them stay as they were and the JSON stays valid
 * (placeholders contain no characters that need escaping). TSV and text lines are
 * scanned as they are. Line-based files stream one line at a time; JSON arrays are
 * mapped read-only. */
#include "data/data_internal.h"
#include <errno.h>

typedef struct rw {
    const tk_pii *pii;
    tk_pii_scratch *sc;
    tk_pii_vec m;
    tk_buf dec;
    size_t *map;
    size_t map_cap;
    uint64_t *counts;
} rw;

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
static bool hex4(const char *s, size_t n, uint32_t *v) {
    if (n < 4) return false;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) { int h = hexv(s[i]); if (h < 0) return false; x = x << 4 | (uint32_t)h; }
    *v = x;
    return true;
}

static tk_status map_reserve(rw *w, size_t n) {
    if (n <= w->map_cap) return TK_OK;
    size_t cap = w->map_cap ? w->map_cap : 256;
    while (cap < n) cap *= 2;
    size_t *m = tk_realloc(w->map, cap * sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    w->map = m; w->map_cap = cap;
    return TK_OK;
}

/* Decodes the string body t[a..b) into w->dec with w->map[i] = raw offset of decoded byte i (map[len] = b). */
static tk_status decode(rw *w, const char *t, size_t a, size_t b) {
    w->dec.len = 0;
    tk_status st = tk_buf_reserve(&w->dec, b - a + 8);
    if (!st) st = map_reserve(w, b - a + 8);
    if (st) return st;
    size_t i = a;
    while (i < b) {
        size_t start = i;
        char out[4];
        size_t on = 0;
        if (t[i] != '\\') { out[0] = t[i]; on = 1; i++; }
        else if (i + 1 < b) {
            char e = t[i + 1];
            uint32_t cp;
            i += 2;
            switch (e) {
            case 'n': out[0] = '\n'; on = 1; break;
            case 't': out[0] = '\t'; on = 1; break;
            case 'r': out[0] = '\r'; on = 1; break;
            case 'b': out[0] = '\b'; on = 1; break;
            case 'f': out[0] = '\f'; on = 1; break;
            case 'u':
                if (hex4(t + i, b - i, &cp)) {
                    i += 4;
                    uint32_t lo;
                    if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= b && t[i] == '\\' && t[i + 1] == 'u' && hex4(t + i + 2, b - i - 2, &lo) &&
                        lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
                    if (cp < 0x80) { out[0] = (char)cp; on = 1; }
                    else if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); on = 2; }
                    else if (cp < 0x10000) { out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F)); on = 3; }
                    else { out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); on = 4; }
                } else { out[0] = 'u'; on = 1; }
                break;
            default: out[0] = e; on = 1; break;   /* \" \\ \/ and anything else: the character itself */
            }
        } else { out[0] = '\\'; on = 1; i++; }
        for (size_t k = 0; k < on; k++) {
            w->map[w->dec.len] = start;
            w->dec.data[w->dec.len++] = out[k];
        }
    }
    w->map[w->dec.len] = b;
    w->dec.data[w->dec.len] = 0;
    return TK_OK;
}

/* Rewrites JSON text t[0..n) into out. *changed is set when any string changed.
 * With depth/rec (JSON arrays), counts changed top-level elements into *n_changed. */
static tk_status rewrite_json(rw *w, const char *t, size_t n, tk_buf *out, bool *changed, int *depth, uint64_t *rec,
                              uint64_t *last_rec, uint64_t *n_changed, tk_outfile *flush) {
    size_t pos = 0, i = 0;
    tk_status st = TK_OK;
    while (i < n && !st) {
        char c = t[i];
        if (c != '"') {
            if (depth) {
                if (c == '[' || c == '{') (*depth)++;
                else if (c == ']' || c == '}') (*depth)--;
                else if (c == ',' && *depth == 1) (*rec)++;
            }
            i++;
            continue;
        }
        size_t a = i + 1, b = a;
        while (b < n && t[b] != '"') b += t[b] == '\\' ? 2 : 1;
        if (b >= n) break;   /* unterminated string: copy the rest unchanged */
        size_t k = b + 1;
        while (k < n && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r' || t[k] == '\n')) k++;
        bool is_key = k < n && t[k] == ':';
        if (!is_key && b > a) {
            if ((st = decode(w, t, a, b))) break;
            w->m.n = 0;
            if ((st = tk_pii_scan(w->pii, w->sc, w->dec.data, w->dec.len, &w->m))) break;
            if (w->m.n) {
                for (size_t j = 0; j < w->m.n && !st; j++) {
                    size_t ra = w->map[w->m.v[j].start], rb = w->map[w->m.v[j].end];
                    if (ra < pos) continue;
                    const char *ph = tk_pii_placeholder(w->m.v[j].kind);
                    st = tk_buf_append(out, t + pos, ra - pos);
                    if (!st) st = tk_buf_append(out, ph, strlen(ph));
                    pos = rb;
                    w->counts[w->m.v[j].kind]++;
                }
                *changed = true;
                if (depth && *rec != *last_rec) { *last_rec = *rec; (*n_changed)++; }
            }
        }
        i = b + 1;
        if (flush && !st && (out->len > ((size_t)1 << 20) || i - pos > ((size_t)4 << 20))) {
            /* keep memory bounded on big JSON arrays: hand what is done to the file */
            st = tk_buf_append(out, t + pos, i - pos);
            pos = i;
            if (!st) st = tk_outfile_write(flush, out->data, out->len);
            out->len = 0;
        }
    }
    if (!st) st = tk_buf_append(out, t + pos, n - pos);
    return st;
}

tk_status tk_redact_json_buffer(const char *text, size_t len, tk_buf *out, uint64_t counts[TK_PII_COUNT]) {
    rw w = {.counts = counts};
    tk_status st = tk_pii_new((tk_pii **)&w.pii);
    if (st) return st;
    w.sc = tk_pii_scratch_new(w.pii);
    bool changed = false;
    st = w.sc ? rewrite_json(&w, text, len, out, &changed, NULL, NULL, NULL, NULL, NULL) : TK_ERR_NOMEM;
    tk_buf_free(&w.dec);
    free(w.map);
    free(w.m.v);
    tk_pii_scratch_free(w.sc);
    tk_pii_free((tk_pii *)w.pii);
    return st;
}

tk_status tk_data_redact(const char *in_path, const char *out_path, uint64_t counts[TK_PII_COUNT], uint64_t *n_records_changed) {
    uint64_t dummy_counts[TK_PII_COUNT], dummy_n;
    if (!counts) counts = dummy_counts;
    if (!n_records_changed) n_records_changed = &dummy_n;
    memset(counts, 0, TK_PII_COUNT * sizeof *counts);
    *n_records_changed = 0;
    if (!in_path || !out_path) return tk_fail(TK_ERR_ARG, "tk_data_redact: input and output paths are required");
    tk_reader *rd;
    tk_status st = tk_reader_open(in_path, TK_DATA_CONTAINER_AUTO, 0, &rd);
    if (st) return st;
    tk_data_container cont = tk_reader_container(rd);
    tk_reader_close(rd);

    rw w = {.counts = counts};
    if ((st = tk_pii_new((tk_pii **)&w.pii))) return st;
    w.sc = tk_pii_scratch_new(w.pii);
    tk_outfile of = {0};
    tk_buf out = {0};
    if (!w.sc) st = TK_ERR_NOMEM;
    if (!st) st = tk_outfile_open(&of, out_path);
    if (!st && cont == TK_DATA_JSON_ARRAY) {
        tk_mapped_file mf;
        if (!(st = tk_map_file(in_path, &mf))) {
            bool changed = false;
            int depth = 0;
            uint64_t rec = 0, last = UINT64_MAX;
            st = rewrite_json(&w, (const char *)mf.data, mf.size, &out, &changed, &depth, &rec, &last, n_records_changed, &of);
            if (!st) st = tk_outfile_write(&of, out.data, out.len);
            tk_unmap_file(&mf);
        }
    } else if (!st) {
        FILE *fp = fopen(in_path, "rb");
        if (!fp) st = tk_fail(TK_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno));
        char *line = NULL;
        size_t lcap = 0;
        ssize_t got;
        while (!st && (got = getline(&line, &lcap, fp)) > 0) {
            size_t len = (size_t)got, body = len;
            while (body > 0 && (line[body - 1] == '\n' || line[body - 1] == '\r')) body--;
            out.len = 0;
            bool changed = false;
            if (cont == TK_DATA_JSONL) st = rewrite_json(&w, line, len, &out, &changed, NULL, NULL, NULL, NULL, NULL);
            else {
                uint64_t before = 0, after = 0;
                for (int k = 0; k < TK_PII_COUNT; k++) before += counts[k];
                st = tk_pii_redact(w.pii, line, body, &out, counts);
                for (int k = 0; k < TK_PII_COUNT; k++) after += counts[k];
                changed = after != before;
                if (!st) st = tk_buf_append(&out, line + body, len - body);
            }
            if (changed) (*n_records_changed)++;
            if (!st) st = tk_outfile_write(&of, out.data, out.len);
        }
        if (fp && ferror(fp) && !st) st = tk_fail(TK_ERR_IO, "%s: read error", in_path);
        free(line);
        if (fp) fclose(fp);
    }
    if (of.fp) {
        if (st) tk_outfile_abort(&of);
        else st = tk_outfile_commit(&of);
    }
    tk_buf_free(&out);
    tk_buf_free(&w.dec);
    free(w.map);
    free(w.m.v);
    tk_pii_scratch_free(w.sc);
    tk_pii_free((tk_pii *)w.pii);
    return st;
}
