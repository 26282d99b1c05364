/* HTML into blocks, without a DOM: a tag scanner. h1-h6 become headings; the block elements
 * (p, div, li, tr, section, …) and br end a paragraph; script, style, head, template, noscript,
 * svg and comments are skipped; character references (named ones in common use, decimal and hex)
 * are decoded; white space collapses to one space. Malformed markup never fails: an unclosed tag
 * or comment ends the text. */
#include "data/docs_internal.h"
#include "tokenizer/unicode.h"
#include <ctype.h>

typedef struct hstate {
    tk_doc *d;
    tk_buf cur;                 /* the current block's text */
    size_t start, end;          /* its source span (start SIZE_MAX: nothing yet) */
    int level;                  /* 1..6 inside h1-h6 */
    bool space;                 /* a space is pending before the next word */
} hstate;

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

static tk_status flush(hstate *h) {
    tk_status st = TK_OK;
    if (h->cur.len) st = tk_doc_add(h->d, h->level, h->cur.data, h->cur.len, h->start, h->end, 0);
    h->cur.len = 0, h->start = SIZE_MAX, h->space = false;
    return st;
}

/* Appends text s[0..n) that came from source bytes [at, at_end). */
static tk_status put(hstate *h, const char *s, size_t n, size_t at, size_t at_end) {
    if (h->space && h->cur.len) { tk_status st = tk_buf_append(&h->cur, " ", 1); if (st) return st; }
    h->space = false;
    if (h->start == SIZE_MAX) h->start = at;
    h->end = at_end;
    return tk_buf_append(&h->cur, s, n);
}

static const struct { const char *name; uint32_t cp; } entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '}, {"copy", 0xA9},
    {"reg", 0xAE}, {"trade", 0x2122}, {"yen", 0xA5}, {"euro", 0x20AC}, {"pound", 0xA3}, {"cent", 0xA2},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026}, {"laquo", 0xAB}, {"raquo", 0xBB},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"times", 0xD7},
    {"middot", 0xB7}, {"deg", 0xB0}, {"bull", 0x2022}, {"shy", 0xAD}, {"para", 0xB6}, {"sect", 0xA7},
};

/* A character reference at s[0..n) (s[0] == '&'): its code point and length, or 0 when it is none. */
static size_t entity(const char *s, size_t n, uint32_t *cp) {
    size_t i = 1;
    if (i < n && s[i] == '#') {
        bool hex = ++i < n && (s[i] == 'x' || s[i] == 'X');
        i += hex;
        uint32_t v = 0;
        size_t d0 = i;
        while (i < n && i - d0 < 8 && (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i]))) {
            int c = (unsigned char)s[i++];
            v = v * (hex ? 16 : 10) + (uint32_t)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
        }
        if (i == d0) return 0;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = 0xFFFD;
        *cp = v;
        return i < n && s[i] == ';' ? i + 1 : i;
    }
    size_t k = i;
    while (k < n && k - i < 10 && isalnum((unsigned char)s[k])) k++;
    if (k >= n || s[k] != ';') return 0;
    for (size_t e = 0; e < sizeof entities / sizeof *entities; e++)
        if (strlen(entities[e].name) == k - i && !memcmp(entities[e].name, s + i, k - i)) { *cp = entities[e].cp; return k + 1; }
    return 0;
}

/* Text between tags, buf[i..j). */
static tk_status text(hstate *h, const char *buf, size_t i, size_t j) {
    tk_status st = TK_OK;
    while (i < j && !st) {
        if (is_ws(buf[i])) { h->space = true; i++; continue; }
        size_t w = i;
        while (w < j && !is_ws(buf[w]) && buf[w] != '&') w++;
        if (w > i) { st = put(h, buf + i, w - i, i, w); i = w; continue; }
        uint32_t cp;
        size_t n = entity(buf + i, j - i, &cp);
        if (!n) { st = put(h, "&", 1, i, i + 1); i++; continue; }
        if (cp == ' ') h->space = true;
        else if (cp != 0xAD) {
            char u[4];
            st = put(h, u, (size_t)tk_utf8_encode(cp, u), i, i + n);
        }
        i += n;
    }
    return st;
}

static bool name_is(const char *s, size_t n, const char *const *set) {
    for (; *set; set++)
        if (strlen(*set) == n && !strncasecmp(*set, s, n)) return true;
    return false;
}

/* The '>' ending a tag that starts at buf[i] (quotes respected), or len. */
static size_t tag_end(const char *buf, size_t len, size_t i) {
    char q = 0;
    for (; i < len; i++) {
        if (q) { if (buf[i] == q) q = 0; }
        else if (buf[i] == '"' || buf[i] == '\'') q = buf[i];
        else if (buf[i] == '>') return i;
    }
    return len;
}

/* The position after "</name ... >" from i on (case-insensitive), or len. */
static size_t skip_to_close(const char *buf, size_t len, size_t i, const char *name, size_t nl) {
    for (; i + 2 + nl <= len; i++)
        if (buf[i] == '<' && buf[i + 1] == '/' && !strncasecmp(buf + i + 2, name, nl) &&
            (i + 2 + nl == len || !isalnum((unsigned char)buf[i + 2 + nl]))) {
            size_t e = tag_end(buf, len, i);
            return e < len ? e + 1 : len;
        }
    return len;
}

tk_status tk_doc_parse_html(const char *buf, size_t len, tk_doc *d) {
    static const char *const skip[] = {"script", "style", "head", "template", "noscript", "svg", "iframe", "object", NULL};
    static const char *const blocks[] = {"p", "div", "li", "ul", "ol", "br", "tr", "table", "section", "article", "header",
                                         "footer", "nav", "main", "aside", "blockquote", "pre", "hr", "dd", "dt", "dl",
                                         "figure", "figcaption", "form", "address", "body", "html", "caption", "details",
                                         "summary", "fieldset", "legend", "tbody", "thead", NULL};
    hstate h = {.d = d, .start = SIZE_MAX};
    tk_status st = TK_OK;
    size_t i = 0;
    while (i < len && !st) {
        size_t lt = i;
        while (lt < len && buf[lt] != '<') lt++;
        if ((st = text(&h, buf, i, lt)) || lt >= len) break;
        if (len - lt >= 4 && !strncmp(buf + lt, "<!--", 4)) {
            const char *e = NULL;
            for (size_t k = lt + 4; k + 3 <= len && !e; k++)
                if (!strncmp(buf + k, "-->", 3)) e = buf + k;
            i = e ? (size_t)(e - buf) + 3 : len;
            continue;
        }
        size_t p = lt + 1;
        bool close = p < len && buf[p] == '/';
        p += close;
        size_t ns = p;
        while (p < len && isalnum((unsigned char)buf[p])) p++;
        size_t nl = p - ns;
        if (!nl) {   /* "<!DOCTYPE", "<?xml", or a lone "<" in text */
            if (lt + 1 < len && (buf[lt + 1] == '!' || buf[lt + 1] == '?')) { size_t e = tag_end(buf, len, lt); i = e < len ? e + 1 : len; }
            else { st = put(&h, "<", 1, lt, lt + 1); i = lt + 1; }
            continue;
        }
        size_t e = tag_end(buf, len, lt);
        i = e < len ? e + 1 : len;
        const char *nm = buf + ns;
        bool self_closing = e < len && e > lt && buf[e - 1] == '/';
        if (!close && !self_closing && name_is(nm, nl, skip)) {
            i = skip_to_close(buf, len, i, nm, nl);
            continue;
        }
        if (nl == 2 && (nm[0] == 'h' || nm[0] == 'H') && nm[1] >= '1' && nm[1] <= '6') {
            if ((st = flush(&h))) break;
            h.level = close ? 0 : nm[1] - '0';
        } else if (name_is(nm, nl, blocks)) {
            int lv = h.level;
            if ((st = flush(&h))) break;
            h.level = lv;
        } else if (nl == 2 && (!strncasecmp(nm, "td", 2) || !strncasecmp(nm, "th", 2))) {
            h.space = true;
        }
    }
    if (!st) st = flush(&h);
    tk_buf_free(&h.cur);
    return st;
}
