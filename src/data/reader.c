/* Record reader for training data in bounded memory.
 *
 * Line-based files (JSONL, TSV, text) are streamed with fread into a buffer that grows
 * only as far as the longest line; a line longer than max_line is skipped (its length is
 * reported) without being held. JSON array files are mapped read-only and cut into
 * top-level elements by a small scanner (strings and escapes aware), so each element
 * is parsed on its own and a finding can name "record N (line L)".
 * A UTF-8 byte-order mark is stripped (and remembered); CRLF line ends lose their CR. */
#include "data/data_internal.h"
#include <errno.h>
#include <sys/stat.h>
#include <ctype.h>

#define CHUNK ((size_t)1 << 20)

struct tk_reader {
    tk_data_container container;
    char *name;
    FILE *fp;                 /* stream mode */
    tk_mapped_file map;       /* JSON array from a file */
    const char *mem;          /* memory mode: whole input */
    size_t mem_len, pos;
    char *buf;                /* stream buffer: [beg, end) unread, scan = where to resume looking for '\n' */
    size_t cap, beg, end, scan;
    bool eof;
    size_t max_line;
    uint64_t line;            /* lines consumed */
    uint64_t record;
    uint64_t bytes;
    bool bom, seen_crlf, header_done, done;
    char delim;               /* table mode (CSV, or TSV with a map): ',' or '\t'; 0 otherwise */
    int arr_state;            /* JSON array: 0 before '[', 1 expecting element or ']', 2 after element, 3 done */
    char *copy;               /* NUL-terminated copy of the current record */
    size_t copy_cap;
    char msg[256];
};

const char *tk_data_container_name(tk_data_container c) {
    switch (c) {
    case TK_DATA_CONTAINER_AUTO: return "auto";
    case TK_DATA_JSONL: return "jsonl";
    case TK_DATA_JSON_ARRAY: return "json";
    case TK_DATA_TSV: return "tsv";
    case TK_DATA_TXT: return "txt";
    case TK_DATA_CSV: return "csv";
    }
    return "?";
}

tk_data_container tk_data_sniff(const char *name, const uint8_t *head, size_t n) {
    if (name) {
        if (tk_ends_with(name, ".jsonl") || tk_ends_with(name, ".ndjson")) return TK_DATA_JSONL;
        if (tk_ends_with(name, ".tsv")) return TK_DATA_TSV;
        if (tk_ends_with(name, ".csv")) return TK_DATA_CSV;
        if (tk_ends_with(name, ".txt")) return TK_DATA_TXT;
    }
    size_t i = 0;
    if (n >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF) i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')) i++;
    if (i < n && head[i] == '[') return TK_DATA_JSON_ARRAY;
    if (i < n && head[i] == '{' && name && tk_ends_with(name, ".json")) {
        /* A .json file starting with '{': JSON Lines if its first line is a whole JSON value, else one
         * pretty-printed object, which the array reader rejects with a clear message. */
        const uint8_t *nl = memchr(head + i, '\n', n - i);
        if (nl) {
            cJSON *j = cJSON_ParseWithLength((const char *)head + i, (size_t)(nl - head - i));
            bool whole = j != NULL;
            cJSON_Delete(j);
            if (!whole) return TK_DATA_JSON_ARRAY;
        }
    }
    return TK_DATA_JSONL;
}

static tk_status check_bom(tk_reader *r, const uint8_t *h, size_t n) {
    if (n >= 4 && ((h[0] == 0xFF && h[1] == 0xFE && h[2] == 0 && h[3] == 0) || (h[0] == 0 && h[1] == 0 && h[2] == 0xFE && h[3] == 0xFF)))
        return tk_fail(TK_ERR_FORMAT, "%s: file is UTF-32 (byte-order mark); convert it to UTF-8", r->name);
    if (n >= 2 && ((h[0] == 0xFF && h[1] == 0xFE) || (h[0] == 0xFE && h[1] == 0xFF)))
        return tk_fail(TK_ERR_FORMAT, "%s: file is UTF-16 (byte-order mark %02X %02X); convert it to UTF-8 "
                       "(e.g. iconv -f UTF-16 -t UTF-8)", r->name, h[0], h[1]);
    if (n >= 3 && h[0] == 0xEF && h[1] == 0xBB && h[2] == 0xBF) r->bom = true;
    return TK_OK;
}

static tk_reader *reader_new(const char *name, size_t max_line) {
    tk_reader *r = tk_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->name = tk_strdup(name ? name : "<memory>");
    if (!r->name) { free(r); return NULL; }
    r->max_line = max_line ? max_line : TK_DATA_DEFAULT_MAX_LINE;
    return r;
}

tk_status tk_reader_open(const char *path, tk_data_container c, size_t max_line, tk_reader **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return tk_fail(TK_ERR_IO, "%s: is a directory, expected a data file", path);
    if (!S_ISREG(st.st_mode)) return tk_fail(TK_ERR_IO, "%s: not a regular file", path);
    tk_reader *r = reader_new(path, max_line);
    if (!r) return TK_ERR_NOMEM;
    FILE *fp = fopen(path, "rb");
    if (!fp) { tk_status s = tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); tk_reader_close(r); return s; }
    uint8_t head[4096];
    size_t hn = fread(head, 1, sizeof head, fp);
    if (ferror(fp)) { fclose(fp); tk_reader_close(r); return tk_fail(TK_ERR_IO, "%s: read error", path); }
    tk_status st2 = check_bom(r, head, hn);
    if (st2) { fclose(fp); tk_reader_close(r); return st2; }
    r->container = c != TK_DATA_CONTAINER_AUTO ? c : tk_data_sniff(path, head, hn);
    if (r->container == TK_DATA_JSON_ARRAY) {
        fclose(fp);
        st2 = tk_map_file(path, &r->map);
        if (st2) { tk_reader_close(r); return st2; }
        r->mem = (const char *)r->map.data;
        r->mem_len = r->map.size;
        r->pos = r->bom ? 3 : 0;
    } else {
        r->fp = fp;
        r->cap = CHUNK;
        r->buf = tk_malloc(r->cap);
        if (!r->buf) { tk_reader_close(r); return TK_ERR_NOMEM; }
        memcpy(r->buf, head, hn);
        r->end = hn;
        r->beg = r->scan = r->bom ? 3 : 0;
    }
    if (r->container == TK_DATA_CSV) r->delim = ',';
    *out = r;
    return TK_OK;
}

tk_status tk_reader_open_memory(const void *buf, size_t len, const char *name, tk_data_container c, size_t max_line,
                                tk_reader **out) {
    *out = NULL;
    tk_reader *r = reader_new(name, max_line);
    if (!r) return TK_ERR_NOMEM;
    tk_status st = check_bom(r, buf, len);
    if (st) { tk_reader_close(r); return st; }
    r->container = c != TK_DATA_CONTAINER_AUTO ? c : tk_data_sniff(name, buf, len < 4096 ? len : 4096);
    r->mem = buf;
    r->mem_len = len;
    r->pos = r->bom ? 3 : 0;
    if (r->container == TK_DATA_CSV) r->delim = ',';
    *out = r;
    return TK_OK;
}

void tk_reader_set_table(tk_reader *r, char delim) { if (r->container != TK_DATA_JSON_ARRAY) r->delim = delim; }

void tk_reader_close(tk_reader *r) {
    if (!r) return;
    if (r->fp) fclose(r->fp);
    tk_unmap_file(&r->map);
    free(r->buf);
    free(r->copy);
    free(r->name);
    free(r);
}

tk_data_container tk_reader_container(const tk_reader *r) { return r->container; }
bool tk_reader_had_bom(const tk_reader *r) { return r->bom; }
uint64_t tk_reader_lines(const tk_reader *r) { return r->line; }
uint64_t tk_reader_bytes(const tk_reader *r) { return r->bytes; }

/* Puts n bytes at offset off of the record copy (NUL-terminated after them). */
static tk_status copy_at(tk_reader *r, size_t off, const char *p, size_t n) {
    if (off + n + 1 > r->copy_cap) {
        size_t cap = r->copy_cap ? r->copy_cap : 4096;
        while (cap < off + n + 1) cap *= 2;
        char *c = tk_realloc(r->copy, cap);
        if (!c) return TK_ERR_NOMEM;
        r->copy = c; r->copy_cap = cap;
    }
    memcpy(r->copy + off, p, n);
    r->copy[off + n] = 0;
    return TK_OK;
}
static tk_status set_copy(tk_reader *r, const char *p, size_t n) { return copy_at(r, 0, p, n); }

/* Next physical line. *p, *n: the line without '\n' (NULL when too long: *n = its length). *got=false at EOF. */
static tk_status next_line(tk_reader *r, const char **p, size_t *n, bool *got) {
    *got = false;
    if (r->mem) {
        if (r->pos >= r->mem_len) return TK_OK;
        const char *s = r->mem + r->pos;
        size_t left = r->mem_len - r->pos;
        const char *nl = memchr(s, '\n', left);
        size_t l = nl ? (size_t)(nl - s) : left;
        r->pos += l + (nl ? 1 : 0);
        r->bytes = r->pos;
        *p = l > r->max_line ? NULL : s;
        *n = l;
        *got = true;
        return TK_OK;
    }
    for (;;) {
        char *nl = r->scan < r->end ? memchr(r->buf + r->scan, '\n', r->end - r->scan) : NULL;
        if (nl) {
            *p = r->buf + r->beg;
            *n = (size_t)(nl - (r->buf + r->beg));
            r->beg = r->scan = (size_t)(nl - r->buf) + 1;
            r->bytes += *n + 1;
            if (*n > r->max_line) *p = NULL;   /* already read with the chunk, but over the limit all the same */
            *got = true;
            return TK_OK;
        }
        r->scan = r->end;
        if (r->eof) {
            if (r->beg >= r->end) return TK_OK;
            *p = r->buf + r->beg;
            *n = r->end - r->beg;
            r->bytes += *n;
            r->beg = r->scan = r->end;
            if (*n > r->max_line) *p = NULL;
            *got = true;
            return TK_OK;
        }
        size_t have = r->end - r->beg;
        if (have > r->max_line) {
            /* Too long: drop what we hold and skip to the next newline, counting bytes. */
            size_t total = have;
            r->beg = r->scan = r->end = 0;
            for (;;) {
                size_t k = fread(r->buf, 1, r->cap, r->fp);
                if (k == 0) {
                    if (ferror(r->fp)) return tk_fail(TK_ERR_IO, "%s: read error", r->name);
                    r->eof = true;
                    break;
                }
                char *q = memchr(r->buf, '\n', k);
                if (q) {
                    size_t used = (size_t)(q - r->buf);
                    total += used;
                    r->beg = r->scan = used + 1;
                    r->end = k;
                    r->bytes += 1;
                    break;
                }
                total += k;
            }
            r->bytes += total;
            *p = NULL;
            *n = total;
            *got = true;
            return TK_OK;
        }
        if (r->beg > 0) {
            memmove(r->buf, r->buf + r->beg, have);
            r->scan -= r->beg;
            r->end = have;
            r->beg = 0;
        }
        if (r->end == r->cap) {
            size_t cap = r->cap * 2;
            if (cap > r->max_line + CHUNK) cap = r->max_line + CHUNK;
            if (cap <= r->cap) cap = r->cap + CHUNK;
            char *b = tk_realloc(r->buf, cap);
            if (!b) return TK_ERR_NOMEM;
            r->buf = b; r->cap = cap;
        }
        size_t k = fread(r->buf + r->end, 1, r->cap - r->end, r->fp);
        if (k == 0) {
            if (ferror(r->fp)) return tk_fail(TK_ERR_IO, "%s: read error", r->name);
            r->eof = true;
        }
        r->end += k;
    }
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void strip_cr(tk_reader *r, tk_raw *rec, size_t *n, const char *p) {
    if (*n > 0 && p[*n - 1] == '\r') {
        (*n)--;
        if (!r->seen_crlf) { r->seen_crlf = true; rec->first_crlf = true; }
    }
}

/* The first line of a record. *content: the line holds text (*p, *n, CR removed); otherwise rec is complete
 * already (too long, blank) or the file ended (*has false). */
static tk_status begin_record(tk_reader *r, tk_raw *rec, bool *has, const char **p, size_t *n, bool *content) {
    bool got;
    *content = false;
    tk_status st = next_line(r, p, n, &got);
    if (st) return st;
    if (!got) { *has = false; return TK_OK; }
    r->line++;
    memset(rec, 0, sizeof *rec);
    rec->line = r->line;
    *has = true;
    if (!*p) { rec->kind = TK_RAW_TOO_LONG; rec->len = *n; return TK_OK; }
    strip_cr(r, rec, n, *p);
    size_t i = 0;
    while (i < *n && is_ws((*p)[i])) i++;
    if (i == *n) { rec->kind = TK_RAW_BLANK; return TK_OK; }
    *content = true;
    return TK_OK;
}

/* Table mode: one row, which may span lines while a quoted field is open; the first row is the header. */
static tk_status next_table_record(tk_reader *r, tk_raw *rec, bool *has) {
    const char *p; size_t n; bool got, content;
    tk_status st = begin_record(r, rec, has, &p, &n, &content);
    if (st || !content) return st;
    tk_csv_scan sc = {0};
    bool done = tk_csv_scan_line(&sc, p, n, r->delim), too_long = false;
    size_t total = n;
    if ((st = set_copy(r, p, n))) return st;
    while (!done) {
        if ((st = next_line(r, &p, &n, &got))) return st;
        if (!got) break;   /* the quote is never closed: tk_csv_split says so */
        r->line++;
        if (p) strip_cr(r, rec, &n, p);
        total += n + 1;
        if (!p) { too_long = true; break; }   /* a line over the limit ends the row */
        if (total > r->max_line) too_long = true;
        if (!too_long && ((st = copy_at(r, total - n - 1, "\n", 1)) || (st = copy_at(r, total - n, p, n)))) return st;
        done = tk_csv_scan_line(&sc, p, n, r->delim);
    }
    if (too_long) { rec->kind = TK_RAW_TOO_LONG; rec->len = total; return TK_OK; }
    rec->kind = r->header_done ? TK_RAW_RECORD : TK_RAW_HEADER;
    r->header_done = true;
    rec->data = r->copy;
    rec->len = total;
    return TK_OK;
}

static tk_status next_line_record(tk_reader *r, tk_raw *rec, bool *has) {
    const char *p; size_t n; bool content;
    for (;;) {
        tk_status st = begin_record(r, rec, has, &p, &n, &content);
        if (st) return st;
        if (!content) {
            /* A blank line in a text file is just a separator, not worth a finding. */
            if (*has && rec->kind == TK_RAW_BLANK && r->container == TK_DATA_TXT) continue;
            return TK_OK;
        }
        if (r->container == TK_DATA_TSV && !r->header_done) {
            r->header_done = true;
            /* header: the last TAB-separated field is literally "label" (sst2's "sentence\tlabel") */
            const char *tab = NULL;
            for (size_t k = n; k > 0; k--) if (p[k - 1] == '\t') { tab = p + k - 1; break; }
            if (tab) {
                size_t fl = (size_t)(p + n - tab - 1);
                if (fl == 5 && strncasecmp(tab + 1, "label", 5) == 0) {
                    if ((st = set_copy(r, p, n))) return st;
                    rec->kind = TK_RAW_HEADER;
                    rec->data = r->copy;
                    rec->len = n;
                    return TK_OK;
                }
            }
        }
        st = set_copy(r, p, n);
        if (st) return st;
        rec->kind = TK_RAW_RECORD;
        rec->data = r->copy;
        rec->len = n;
        return TK_OK;
    }
}

static void count_lines(tk_reader *r, size_t from, size_t to) {
    const char *s = r->mem + from, *e = r->mem + to;
    while (s < e && (s = memchr(s, '\n', (size_t)(e - s))) != NULL) { r->line++; s++; }
}

static tk_status fatal(tk_reader *r, tk_raw *rec, bool *has, const char *fmt, ...) TK_PRINTF(4, 5);
static tk_status fatal(tk_reader *r, tk_raw *rec, bool *has, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    memset(rec, 0, sizeof *rec);
    rec->kind = TK_RAW_FATAL;
    rec->line = r->line + 1;
    rec->record = 0;   /* between records: the message says where */
    rec->msg = r->msg;
    r->arr_state = 3;
    *has = true;
    return TK_OK;
}

/* Skips white space, counting newlines. */
static void skip_ws(tk_reader *r) {
    while (r->pos < r->mem_len && is_ws(r->mem[r->pos])) {
        if (r->mem[r->pos] == '\n') r->line++;
        r->pos++;
    }
}

static tk_status close_array(tk_reader *r, tk_raw *rec, bool *has) {
    r->pos++;   /* the ']' */
    skip_ws(r);
    r->bytes = r->mem_len;
    if (r->pos < r->mem_len) return fatal(r, rec, has, "unexpected content after the closing ']' of the JSON array");
    r->arr_state = 3;
    return TK_OK;
}

static tk_status next_array_record(tk_reader *r, tk_raw *rec, bool *has) {
    *has = false;
    if (r->arr_state == 3) return TK_OK;
    skip_ws(r);
    if (r->arr_state == 0) {
        if (r->pos >= r->mem_len) { r->arr_state = 3; r->bytes = r->mem_len; return TK_OK; }  /* empty file */
        if (r->mem[r->pos] != '[')
            return fatal(r, rec, has, "expected a JSON array '[' of records, found '%c' (a .json file must be a JSON array of "
                         "records; for one record per line use JSON Lines)", r->mem[r->pos]);
        r->pos++;
        r->arr_state = 1;
        skip_ws(r);
        if (r->pos < r->mem_len && r->mem[r->pos] == ']') return close_array(r, rec, has);
    } else if (r->arr_state == 2) {
        if (r->pos >= r->mem_len)
            return fatal(r, rec, has, "unexpected end of file: the JSON array is not closed with ']'");
        char c = r->mem[r->pos];
        if (c == ']') return close_array(r, rec, has);
        if (c != ',') return fatal(r, rec, has, "expected ',' or ']' between records, found '%c'", c);
        r->pos++;
        skip_ws(r);
        if (r->pos < r->mem_len && r->mem[r->pos] == ']')
            return fatal(r, rec, has, "trailing comma before ']' (not allowed in JSON)");
    }
    /* element */
    skip_ws(r);
    if (r->pos >= r->mem_len) return fatal(r, rec, has, "unexpected end of file: the JSON array is not closed with ']'");
    size_t start = r->pos;
    uint64_t start_line = r->line + 1;
    int depth = 0;
    bool in_str = false;
    size_t i = r->pos;
    const char *m = r->mem;
    size_t limit = r->mem_len;
    for (; i < limit; i++) {
        char c = m[i];
        if (in_str) {
            if (c == '\\') { i++; continue; }
            if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') { if (depth == 0) break; depth--; }
        else if (c == ',' && depth == 0) break;
    }
    if (i >= limit && (depth > 0 || in_str)) {
        return fatal(r, rec, has, "record %llu (line %llu) is not closed before the end of the file",
                     (unsigned long long)r->record + 1, (unsigned long long)start_line);
    }
    size_t end = i;
    while (end > start && is_ws(m[end - 1])) end--;
    r->record++;
    count_lines(r, start, i);
    r->pos = i;
    r->arr_state = 2;
    r->bytes = i;
    memset(rec, 0, sizeof *rec);
    rec->line = start_line;
    rec->record = r->record;
    *has = true;
    if (end - start > r->max_line) { rec->kind = TK_RAW_TOO_LONG; rec->len = end - start; return TK_OK; }
    tk_status st = set_copy(r, m + start, end - start);
    if (st) return st;
    rec->kind = TK_RAW_RECORD;
    rec->data = r->copy;
    rec->len = end - start;
    return TK_OK;
}

tk_status tk_reader_next(tk_reader *r, tk_raw *rec, bool *has) {
    if (r->container == TK_DATA_JSON_ARRAY) return next_array_record(r, rec, has);
    tk_status st = r->delim ? next_table_record(r, rec, has) : next_line_record(r, rec, has);
    if (st == TK_OK && *has && rec->kind == TK_RAW_RECORD) r->record++;
    return st;
}
