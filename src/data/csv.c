/* CSV and TSV rows (RFC 4180): a field is either plain text up to the next delimiter,
 * or enclosed in double quotes, where the delimiter and line breaks are text and a
 * doubled quote is one quote. The reader uses tk_csv_scan_line to find where a row
 * that spans several physical lines ends; tk_csv_split then cuts the row into
 * unescaped fields and names the line and field of any broken quoting. */
#include "data/data_internal.h"

bool tk_csv_scan_line(tk_csv_scan *s, const char *p, size_t n, char delim) {
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (s->in_quotes) {
            if (c != '"') continue;
            if (i + 1 < n && p[i + 1] == '"') { i++; continue; }
            s->in_quotes = false;
            s->mid_field = true;
        } else if (c == delim) {
            s->mid_field = false;
        } else if (c == '"' && !s->mid_field) {
            s->in_quotes = true;
        } else {
            s->mid_field = true;
        }
    }
    return !s->in_quotes;
}

void tk_csv_row_free(tk_csv_row *row) {
    free(row->buf);
    free(row->v);
    memset(row, 0, sizeof *row);
}

static bool push_field(tk_csv_row *row, size_t off) {
    if (row->n == row->cap_v) {
        size_t c = row->cap_v ? row->cap_v * 2 : 16;
        const char **v = realloc(row->v, c * sizeof *v);
        if (!v) return false;
        row->v = v;
        row->cap_v = c;
    }
    row->v[row->n++] = (const char *)(uintptr_t)off;   /* an offset until the row is complete */
    return true;
}

/* "line N, " when the problem is on a later line of the row than the one it starts on, else "". */
static const char *where(uint64_t line, uint64_t base, char *buf, size_t cap) {
    if (line == base) return "";
    snprintf(buf, cap, "line %llu, ", (unsigned long long)line);
    return buf;
}

bool tk_csv_split(const char *s, size_t len, char delim, uint64_t base_line, tk_csv_row *row, tk_rfinds *fs) {
    row->n = 0;
    if (2 * len + 2 > row->cap) {
        char *b = realloc(row->buf, 2 * len + 2);
        if (!b) { tk_rf_add(fs, TK_DATA_ERROR, "internal", "out of memory"); return false; }
        row->buf = b;
        row->cap = 2 * len + 2;
    }
    char *o = row->buf;
    size_t w = 0, i = 0;
    uint64_t line = base_line;
    bool ok = true;
    char at[48];
    for (;;) {
        if (!push_field(row, w)) { tk_rf_add(fs, TK_DATA_ERROR, "internal", "out of memory"); return false; }
        size_t field = row->n;
        if (i < len && s[i] == '"') {
            uint64_t open_line = line;
            i++;
            bool closed = false;
            while (i < len) {
                char c = s[i++];
                if (c == '"') {
                    if (i < len && s[i] == '"') { o[w++] = '"'; i++; continue; }
                    closed = true;
                    break;
                }
                if (c == '\n') line++;
                o[w++] = c;
            }
            if (!closed) {
                tk_rf_add(fs, TK_DATA_ERROR, "csv_quote", "field %zu: the quote opened at line %llu is never closed (the row runs to line %llu, "
                          "the end of the file)", field, (unsigned long long)open_line, (unsigned long long)line);
                return false;
            }
            if (i < len && s[i] != delim) {
                if (ok)
                    tk_rf_add(fs, TK_DATA_ERROR, "csv_quote", "%sfield %zu: text after the closing quote (a quote inside a quoted "
                              "field must be doubled: \"\")", where(line, base_line, at, sizeof at), field);
                ok = false;
                while (i < len && s[i] != delim) { if (s[i] == '\n') line++; o[w++] = s[i++]; }
            }
        } else {
            while (i < len && s[i] != delim) {
                if (s[i] == '"' && ok) {
                    tk_rf_add(fs, TK_DATA_ERROR, "csv_quote", "%sfield %zu: a quote inside an unquoted field (quote the whole field "
                              "and double the quote: \"a \"\"b\"\" c\")", where(line, base_line, at, sizeof at), field);
                    ok = false;
                }
                if (s[i] == '\n') line++;
                o[w++] = s[i++];
            }
        }
        o[w++] = 0;
        if (i >= len) break;
        i++;   /* the delimiter */
    }
    for (size_t k = 0; k < row->n; k++) row->v[k] = row->buf + (size_t)(uintptr_t)row->v[k];
    return ok;
}
