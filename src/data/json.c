/* JSON helpers for the data toolkit: parsing with precise diagnostics (line/column,
 * NaN/Infinity, nesting depth), UTF-8 validation, JSON string output, and the
 * per-record finding list. Parsing itself is cJSON's; when it fails we look at the
 * text again to say *why* in words a user can act on. */
#include "data/data_internal.h"
#include <ctype.h>

void tk_rf_add(tk_rfinds *fs, tk_data_severity sev, const char *category, const char *fmt, ...) {
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 4;
        tk_rfind *v = realloc(fs->v, cap * sizeof *v);
        if (!v) return;
        fs->v = v; fs->cap = cap;
    }
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    tk_rfind *f = &fs->v[fs->n++];
    f->severity = (uint8_t)sev;
    f->category = category;
    f->message = strdup(tmp);
    f->line = 0;
    if (sev == TK_DATA_ERROR) fs->n_errors++;
}

void tk_rf_clear(tk_rfinds *fs) {
    for (size_t i = 0; i < fs->n; i++) free(fs->v[i].message);
    free(fs->v);
    memset(fs, 0, sizeof *fs);
}

static inline bool has_zero_byte(uint64_t w) { return ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL) != 0; }

size_t tk_utf8_check(const char *s, size_t len, bool *nul) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    *nul = false;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            while (i + 8 <= len) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if ((w & 0x8080808080808080ULL) || has_zero_byte(w)) break;
                i += 8;
            }
            while (i < len && p[i] < 0x80) {
                if (!p[i]) { *nul = true; return i; }
                i++;
            }
            continue;
        }
        /* well-formed sequences as in Unicode Table 3-7 (no overlongs, no surrogates, <= U+10FFFF) */
        size_t left = len - i;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || (p[i + 1] & 0xC0) != 0x80) return i;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3) return i;
            unsigned b1 = p[i + 1];
            unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            if (b1 < lo || b1 > hi || (p[i + 2] & 0xC0) != 0x80) return i;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4) return i;
            unsigned b1 = p[i + 1];
            unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (b1 < lo || b1 > hi || (p[i + 2] & 0xC0) != 0x80 || (p[i + 3] & 0xC0) != 0x80) return i;
            i += 4;
        } else return i;
    }
    return len;
}

/* Line and column (1-based, columns in characters) of byte offset off in s. */
static void line_col(const char *s, size_t off, uint64_t base_line, uint64_t *line, uint64_t *col) {
    uint64_t l = base_line;
    size_t ls = 0;
    for (size_t i = 0; i < off; i++) if (s[i] == '\n') { l++; ls = i + 1; }
    uint64_t c = 1;
    for (size_t i = ls; i < off; i++) if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    *line = l;
    *col = c;
}

/* A short printable excerpt of s at off (for messages). */
static void excerpt(const char *s, size_t len, size_t off, char *out, size_t cap) {
    size_t o = 0;
    size_t i = off;
    int chars = 0;
    while (i < len && chars < 24 && o + 8 < cap) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') { memcpy(out + o, "\\n", 2); o += 2; i++; }
        else if (c == '\t') { memcpy(out + o, "\\t", 2); o += 2; i++; }
        else if (c < 0x20 || c == 0x7f) { o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c); i++; }
        else if (c < 0x80) { out[o++] = (char)c; i++; }
        else {
            size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (i + n > len || o + n + 1 >= cap) break;
            memcpy(out + o, s + i, n);
            o += n; i += n;
        }
        chars++;
    }
    out[o] = 0;
}

static void position(char *buf, size_t cap, const char *s, size_t off, uint64_t base_line) {
    uint64_t l, c;
    line_col(s, off, base_line, &l, &c);
    if (l != base_line) snprintf(buf, cap, "line %llu, column %llu", (unsigned long long)l, (unsigned long long)c);
    else snprintf(buf, cap, "column %llu", (unsigned long long)c);
}

static bool word_at(const char *s, size_t len, size_t i, const char *w) {
    size_t n = strlen(w);
    if (i + n > len || memcmp(s + i, w, n) != 0) return false;
    return i + n == len || !isalnum((unsigned char)s[i + n]);
}

/* Explains a parse failure: NaN/Infinity and nesting depth first, else a syntax error at err_off. */
static void diagnose(const char *s, size_t len, size_t err_off, uint64_t base_line, tk_rfinds *fs) {
    char pos[64];
    bool in_str = false;
    int depth = 0, max_depth = 0;
    size_t deep_off = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') { in_str = true; continue; }
        if (c == '{' || c == '[') {
            if (++depth > max_depth) { max_depth = depth; if (depth == TK_DATA_NESTING_LIMIT + 1) deep_off = i; }
            continue;
        }
        if (c == '}' || c == ']') { depth--; continue; }
        static const char *const words[] = {"NaN", "Infinity", "-Infinity", "-NaN", "nan", "inf", "-inf", "infinity"};
        const char *w = NULL;
        if (c == 'N' || c == 'I' || c == '-' || c == 'n' || c == 'i')
            for (size_t k = 0; k < sizeof words / sizeof words[0] && !w; k++) if (word_at(s, len, i, words[k])) w = words[k];
        if (w) {
            if (i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_')) continue;
            position(pos, sizeof pos, s, i, base_line);
            tk_rf_add(fs, TK_DATA_ERROR, "nan_or_infinity",
                      "%s at %s is not valid JSON (JSON has no NaN or Infinity; write null or a number)", w, pos);
            return;
        }
    }
    if (max_depth > TK_DATA_NESTING_LIMIT) {
        position(pos, sizeof pos, s, deep_off, base_line);
        tk_rf_add(fs, TK_DATA_ERROR, "nesting_too_deep",
                  "JSON nested %d levels deep (limit %d, exceeded at %s)", max_depth, TK_DATA_NESTING_LIMIT, pos);
        return;
    }
    if (err_off > len) err_off = len;
    if (in_str || depth > 0 || err_off >= len) {
        /* cJSON points at the last character when the text just stops; say what is left open instead */
        position(pos, sizeof pos, s, len, base_line);
        if (in_str) tk_rf_add(fs, TK_DATA_ERROR, "json_syntax", "invalid JSON: the record ends inside a string (missing '\"' at %s)", pos);
        else if (depth > 0)
            tk_rf_add(fs, TK_DATA_ERROR, "json_syntax", "invalid JSON: the record ends with %d unclosed object%s or array%s (at %s)", depth,
                      depth == 1 ? "" : "s", depth == 1 ? "" : "s", pos);
        else tk_rf_add(fs, TK_DATA_ERROR, "json_syntax", "invalid JSON: the record ends too early (at %s)", pos);
        return;
    }
    position(pos, sizeof pos, s, err_off, base_line);
    char ex[128];
    excerpt(s, len, err_off, ex, sizeof ex);
    tk_rf_add(fs, TK_DATA_ERROR, "json_syntax", "invalid JSON at %s near '%s'", pos, ex);
}

cJSON *tk_json_parse(const char *s, size_t len, uint64_t base_line, tk_rfinds *fs) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, len, &end, false);
    if (v) {
        size_t off = (size_t)(end - s);
        while (off < len && (s[off] == ' ' || s[off] == '\t' || s[off] == '\r' || s[off] == '\n')) off++;
        if (off < len) {
            cJSON_Delete(v);
            char pos[64], ex[128];
            position(pos, sizeof pos, s, off, base_line);
            excerpt(s, len, off, ex, sizeof ex);
            tk_rf_add(fs, TK_DATA_ERROR, "json_syntax",
                      "unexpected content after the JSON value at %s near '%s' (one record per line)", pos, ex);
            return NULL;
        }
        return v;
    }
    size_t off = end ? (size_t)(end - s) : 0;
    diagnose(s, len, off, base_line, fs);
    return NULL;
}

tk_status tk_json_append_str(tk_buf *b, const char *s, size_t len) {
    tk_status st = tk_buf_reserve(b, len + 3);
    if (st) return st;
    b->data[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (i > run && (st = tk_buf_append(b, s + run, i - run))) return st;
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': st = tk_buf_append(b, "\\\"", 2); break;
        case '\\': st = tk_buf_append(b, "\\\\", 2); break;
        case '\n': st = tk_buf_append(b, "\\n", 2); break;
        case '\r': st = tk_buf_append(b, "\\r", 2); break;
        case '\t': st = tk_buf_append(b, "\\t", 2); break;
        case '\b': st = tk_buf_append(b, "\\b", 2); break;
        case '\f': st = tk_buf_append(b, "\\f", 2); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); st = tk_buf_append(b, esc, 6); break;
        }
        if (st) return st;
    }
    if (len > run && (st = tk_buf_append(b, s + run, len - run))) return st;
    return tk_buf_append(b, "\"", 1);
}

tk_status tk_json_append_value(tk_buf *b, const cJSON *v) {
    char *p = cJSON_PrintUnformatted(v);
    if (!p) return tk_fail(TK_ERR_NOMEM, "out of memory printing JSON");
    tk_status st = tk_buf_append(b, p, strlen(p));
    cJSON_free(p);
    return st;
}

tk_status tk_json_append_line(tk_buf *b, cJSON *o, bool ok) {
    char *s = ok && o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return TK_ERR_NOMEM;
    tk_status st = tk_buf_printf(b, "%s\n", s);
    free(s);
    return st;
}
