/* How a file's records are read, decided once per file: the container (JSONL, JSON array,
 * CSV, TSV, text), the header of a table (CSV, or TSV read with a map), the field map, and
 * the format the records are validated as (given, the map's, or detected from the first
 * records). tk_layout_validate then turns one raw record into a validated example:
 * a CSV/TSV row becomes the object {column: text}, the map (if any) rewrites the
 * record, and the format's validator checks it — the same path for check, convert,
 * split and the contamination index. A layout is immutable after tk_layout_open. */
#include "data/data_internal.h"

#define DETECT_RECORDS 200

void tk_layout_free(tk_layout *l) {
    for (size_t i = 0; i < l->n_cols; i++) free(l->cols[i]);
    free(l->cols);
    memset(l, 0, sizeof *l);
}

static tk_status open_reader(const tk_layout *l, const char *path, const void *buf, size_t len, const char *name,
                             tk_data_container c, size_t max_line, tk_reader **out) {
    tk_status st = path ? tk_reader_open(path, c, max_line, out) : tk_reader_open_memory(buf, len, name, c, max_line, out);
    if (!st && l->delim) tk_reader_set_table(*out, l->delim);
    return st;
}

tk_status tk_layout_reader(const tk_layout *l, const char *path, const void *buf, size_t len, const char *name, size_t max_line,
                           tk_reader **out) {
    return open_reader(l, path, buf, len, name, l->container, max_line, out);
}

/* A row as the object {column: text}; NULL after findings (broken quoting, a ragged row). */
static cJSON *row_object(const tk_layout *l, const tk_raw *raw, tk_rfinds *fs) {
    tk_csv_row row = {0};
    cJSON *o = NULL;
    if (tk_csv_split(raw->data, raw->len, l->delim, raw->line, &row, fs)) {
        if (row.n != l->n_cols)
            tk_rf_add(fs, TK_DATA_ERROR, "csv_field_count", "the row has %zu field%s, the header has %zu column%s (%s rows must all have "
                      "the header's columns; quote a field that holds the delimiter)", row.n, row.n == 1 ? "" : "s", l->n_cols,
                      l->n_cols == 1 ? "" : "s", l->delim == ',' ? "CSV" : "TSV");
        else if ((o = cJSON_CreateObject()) != NULL)
            for (size_t i = 0; i < row.n; i++) cJSON_AddStringToObject(o, l->cols[i], row.v[i]);
    }
    tk_csv_row_free(&row);
    return o;
}

/* The header row: column names (an empty name becomes "columnN"; a repeated one is refused). */
static tk_status read_header(tk_layout *l, const tk_raw *raw, const char *name) {
    tk_csv_row row = {0};
    tk_rfinds fs = {0};
    tk_status st = TK_OK;
    if (!tk_csv_split(raw->data, raw->len, l->delim, raw->line, &row, &fs))
        st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: the header row: %s", name, (unsigned long long)raw->line,
                     fs.n ? fs.v[0].message : "unreadable");
    if (!st && !(l->cols = tk_calloc(row.n, sizeof *l->cols))) st = TK_ERR_NOMEM;
    for (size_t i = 0; i < row.n && !st; i++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "column%zu", i + 1);
        const char *c = row.v[i][0] ? row.v[i] : tmp;
        for (size_t k = 0; k < i && !st; k++)
            if (!strcmp(l->cols[k], c))
                st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: the header names column \"%s\" twice (columns %zu and %zu)", name,
                             (unsigned long long)raw->line, c, k + 1, i + 1);
        if (!st && !(l->cols[i] = tk_strdup(c))) st = TK_ERR_NOMEM;
        if (!st) l->n_cols = i + 1;
    }
    tk_rf_clear(&fs);
    tk_csv_row_free(&row);
    return st;
}

/* The record as JSON (a table row as an object), without the map; NULL after findings. */
static cJSON *parse_raw(const tk_layout *l, const tk_raw *raw, tk_rfinds *fs) {
    if (l->delim) return row_object(l, raw, fs);
    return tk_json_parse(raw->data, raw->len, raw->line, fs);
}

tk_status tk_layout_open(const char *path, const void *buf, size_t len, const char *name, tk_data_container c, tk_data_format f,
                         const tk_data_map *map, size_t max_line, tk_layout *out) {
    memset(out, 0, sizeof *out);
    out->map = map;
    const char *nm = path ? path : name ? name : "<memory>";
    tk_reader *r;
    tk_status st = open_reader(out, path, buf, len, name, c, max_line, &r);
    if (st) return st;
    out->container = tk_reader_container(r);
    if (out->container == TK_DATA_CSV || (out->container == TK_DATA_TSV && map)) {
        out->delim = out->container == TK_DATA_CSV ? ',' : '\t';
        tk_reader_set_table(r, out->delim);
    }
    if (out->container == TK_DATA_TXT && map) st = tk_fail(TK_ERR_ARG, "%s: --map does not apply to a text file (one document per line)", nm);
    out->format = map ? tk_data_map_format(map) : f;
    if (out->container == TK_DATA_TSV && !map) out->format = TK_DATA_CLASSIFICATION;
    else if (out->container == TK_DATA_TXT) out->format = TK_DATA_TEXT;
    bool detect = !st && out->format == TK_DATA_AUTO, check_map = !st && map != NULL;
    int votes[TK_DATA_FORMAT_COUNT] = {0};
    tk_raw raw;
    bool has;
    while (!st && (detect || check_map || (out->delim && !out->cols)) && out->n_seen < DETECT_RECORDS) {
        if ((st = tk_reader_next(r, &raw, &has)) || !has || raw.kind == TK_RAW_FATAL) break;
        if (raw.kind == TK_RAW_HEADER) {
            if ((st = read_header(out, &raw, nm))) break;
            if (map) {
                cJSON *h = cJSON_CreateObject();
                for (size_t i = 0; h && i < out->n_cols; i++) cJSON_AddStringToObject(h, out->cols[i], "");
                char what[64];
                snprintf(what, sizeof what, "the header (line %llu)", (unsigned long long)raw.line);
                st = h ? tk_map_check_fields(map, h, nm, what, "column") : TK_ERR_NOMEM;
                cJSON_Delete(h);
                check_map = false;
            }
            continue;
        }
        if (raw.kind != TK_RAW_RECORD) continue;
        out->n_seen++;
        tk_rfinds fs = {0};
        bool nul;
        cJSON *j = tk_utf8_check(raw.data, raw.len, &nul) == raw.len ? parse_raw(out, &raw, &fs) : NULL;
        tk_rf_clear(&fs);
        if (j && check_map) {
            char what[64];
            snprintf(what, sizeof what, "the first record (line %llu)", (unsigned long long)raw.line);
            if (cJSON_IsObject(j)) st = tk_map_check_fields(map, j, nm, what, "field");
            check_map = false;
        }
        if (j && detect) votes[tk_data_classify(j)]++;
        cJSON_Delete(j);
    }
    tk_reader_close(r);
    if (st) { tk_layout_free(out); return st; }
    if (detect) {
        out->detected = true;
        int best = 0;
        for (int k = 1; k < TK_DATA_FORMAT_COUNT; k++) if (votes[k] > best) { best = votes[k]; out->format = (tk_data_format)k; }
    }
    return TK_OK;
}

cJSON *tk_layout_record(const tk_layout *l, const tk_raw *raw, tk_rfinds *fs) {
    cJSON *j = parse_raw(l, raw, fs);
    if (j && l->map) {
        cJSON *m = tk_map_apply(l->map, j, fs);
        cJSON_Delete(j);
        j = m;
    }
    return j;
}

void tk_layout_validate(const tk_layout *l, const tk_raw *raw, tk_example *ex, tk_rfinds *fs, cJSON **rec) {
    *rec = NULL;
    if (l->container == TK_DATA_TXT) { tk_data_validate_txt(raw->data, raw->len, ex, fs); return; }
    if (l->container == TK_DATA_TSV && !l->delim) { tk_data_validate_tsv(raw->data, raw->len, ex, fs); return; }
    cJSON *j = tk_layout_record(l, raw, fs);
    if (!j) return;
    tk_data_validate(l->format, j, ex, fs);
    *rec = j;
}
