/* Documents into blocks: the kind by extension, the checks every document passes (UTF-8, no NUL,
 * some text), Markdown (ATX and setext headings, fenced code kept whole, front matter skipped)
 * and plain text (paragraphs at blank lines). HTML is docs_html.c, PDF docs_pdf.c. */
#include "data/docs_internal.h"
#include "data/data_internal.h"
#include <ctype.h>

const char *tk_doc_kind_name(tk_doc_kind k) {
    static const char *const n[] = {"auto", "markdown", "html", "text", "pdf"};
    return (unsigned)k < sizeof n / sizeof *n ? n[k] : "unknown";
}

static bool ends_ci(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

tk_doc_kind tk_doc_kind_from_path(const char *path) {
    if (ends_ci(path, ".md") || ends_ci(path, ".markdown") || ends_ci(path, ".mdown")) return TK_DOC_MARKDOWN;
    if (ends_ci(path, ".html") || ends_ci(path, ".htm") || ends_ci(path, ".xhtml")) return TK_DOC_HTML;
    if (ends_ci(path, ".pdf")) return TK_DOC_PDF;
    return TK_DOC_TEXT;
}

size_t tk_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static bool is_sp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

tk_status tk_doc_add(tk_doc *d, int level, const char *text, size_t len, size_t start, size_t end, int page) {
    bool same = end - start == len;   /* the text is the source's bytes: trimming moves the span too */
    while (len && is_sp(*text)) text++, len--, start += same;
    while (len && is_sp(text[len - 1])) len--, end -= same;
    if (!len) return TK_OK;
    tk_doc_block *v = tk_realloc(d->blocks, (d->n_blocks + 1) * sizeof *v);
    if (!v) return TK_ERR_NOMEM;
    d->blocks = v;
    char *t = tk_strndup(text, len);
    if (!t) return TK_ERR_NOMEM;
    v[d->n_blocks++] = (tk_doc_block){level, t, start, end, page};
    return TK_OK;
}

/* Line i of buf: [*b, *e) without its line end; returns the start of the next line. */
static size_t line_at(const char *buf, size_t len, size_t i, size_t *e) {
    size_t j = i;
    while (j < len && buf[j] != '\n') j++;
    *e = j > i && buf[j - 1] == '\r' ? j - 1 : j;
    return j < len ? j + 1 : len;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_sp(s[i])) return false;
    return true;
}

tk_status tk_doc_add_text(tk_doc *d, const char *buf, size_t len, size_t base, int page) {
    size_t i = 0, para = SIZE_MAX, para_end = 0;
    tk_status st = TK_OK;
    while (i < len && !st) {
        size_t e, next = line_at(buf, len, i, &e);
        if (blank(buf + i, e - i)) {
            if (para != SIZE_MAX) st = tk_doc_add(d, 0, buf + para, para_end - para, base + para, base + para_end, page);
            para = SIZE_MAX;
        } else {
            if (para == SIZE_MAX) para = i;
            para_end = e;
        }
        i = next;
    }
    if (!st && para != SIZE_MAX) st = tk_doc_add(d, 0, buf + para, para_end - para, base + para, base + para_end, page);
    return st;
}

/* An ATX heading "## Title ##": its level (0 if the line is none) and title span. */
static int atx(const char *s, size_t n, size_t *ts, size_t *te) {
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    size_t h = i;
    while (i < n && s[i] == '#') i++;
    int level = (int)(i - h);
    if (level < 1 || level > 6 || (i < n && s[i] != ' ' && s[i] != '\t')) return 0;
    size_t e = n;
    while (e > i && is_sp(s[e - 1])) e--;
    size_t c = e;
    while (c > i && s[c - 1] == '#') c--;
    if (c == i || s[c - 1] == ' ' || s[c - 1] == '\t') e = c;   /* closing #s after a space */
    *ts = i, *te = e;
    return level;
}

/* A setext underline: 1 for "===", 2 for "---" (3 or more, spaces around allowed); 0 otherwise. */
static int setext(const char *s, size_t n) {
    size_t i = 0, k = 0;
    while (i < n && s[i] == ' ') i++;
    char c = i < n ? s[i] : 0;
    if (c != '=' && c != '-') return 0;
    for (; i < n && s[i] == c; i++) k++;
    if (!blank(s + i, n - i) || k < 3) return 0;
    return c == '=' ? 1 : 2;
}

static bool fence(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    return n - i >= 3 && (!strncmp(s + i, "```", 3) || !strncmp(s + i, "~~~", 3));
}

static tk_status parse_markdown(const char *buf, size_t len, tk_doc *d) {
    size_t i = 0, para = SIZE_MAX, para_end = 0, para_lines = 0;
    bool in_fence = false;
    tk_status st = TK_OK;
    if (len >= 4 && !strncmp(buf, "---", 3) && (buf[3] == '\n' || buf[3] == '\r')) {   /* YAML front matter */
        size_t j = line_at(buf, len, 0, &(size_t){0});
        while (j < len) {
            size_t e, next = line_at(buf, len, j, &e);
            if (e - j == 3 && (!strncmp(buf + j, "---", 3) || !strncmp(buf + j, "...", 3))) { i = next; break; }
            j = next;
        }
    }
#define FLUSH() do { if (para != SIZE_MAX) st = tk_doc_add(d, 0, buf + para, para_end - para, para, para_end, 0); \
                     para = SIZE_MAX; para_lines = 0; } while (0)
    while (i < len && !st) {
        size_t e, next = line_at(buf, len, i, &e), ts, te;
        const char *s = buf + i;
        size_t n = e - i;
        int lv;
        if (in_fence || fence(s, n)) {   /* code: part of the paragraph, headings inside are not headings */
            if (fence(s, n)) in_fence = !in_fence;
            if (para == SIZE_MAX) para = i;
            para_end = e, para_lines++;
        } else if (blank(s, n)) {
            FLUSH();
        } else if ((lv = atx(s, n, &ts, &te)) > 0) {
            FLUSH();
            if (!st) st = tk_doc_add(d, lv, s + ts, te - ts, i + ts, i + te, 0);
        } else if (para_lines == 1 && (lv = setext(s, n)) > 0) {
            st = tk_doc_add(d, lv, buf + para, para_end - para, para, para_end, 0);
            para = SIZE_MAX, para_lines = 0;
        } else if (para == SIZE_MAX && setext(s, n) == 2) {
            /* a thematic break "---" between paragraphs: nothing */
        } else {
            if (para == SIZE_MAX) para = i;
            para_end = e, para_lines++;
        }
        i = next;
    }
    if (!st) FLUSH();
#undef FLUSH
    return st;
}

tk_status tk_doc_parse(const char *buf, size_t len, tk_doc_kind kind, const char *name, tk_doc *out) {
    if (!buf && len) return tk_fail(TK_ERR_ARG, "tk_doc_parse: no buffer");
    if (!name) name = "(document)";
    if (len >= 2 && (((unsigned char)buf[0] == 0xFF && (unsigned char)buf[1] == 0xFE) ||
                     ((unsigned char)buf[0] == 0xFE && (unsigned char)buf[1] == 0xFF)))
        return tk_fail(TK_ERR_FORMAT, "%s: UTF-16 text (a byte-order mark); convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)", name);
    bool nul = false;
    size_t bad = tk_utf8_check(buf, len, &nul);
    if (bad < len) {
        size_t line = 1;
        for (size_t i = 0; i < bad; i++) line += buf[i] == '\n';
        if (nul) return tk_fail(TK_ERR_FORMAT, "%s: line %zu: a NUL byte (a binary file, not a %s document?)", name, line, tk_doc_kind_name(kind));
        return tk_fail(TK_ERR_FORMAT, "%s: line %zu: byte 0x%02X is not UTF-8 (convert the document to UTF-8, e.g. iconv -f SHIFT_JIS -t UTF-8)",
                       name, line, (unsigned char)buf[bad]);
    }
    size_t skip = len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;   /* a UTF-8 BOM */
    if (kind == TK_DOC_AUTO) kind = tk_doc_kind_from_path(name);
    if (kind == TK_DOC_PDF) return tk_fail(TK_ERR_ARG, "%s: a PDF is read from its file (tk_doc_read)", name);
    out->kind = kind;
    tk_status st;
    if (kind == TK_DOC_MARKDOWN) st = parse_markdown(buf, len, out);
    else if (kind == TK_DOC_HTML) st = tk_doc_parse_html(buf, len, out);
    else st = tk_doc_add_text(out, buf + skip, len - skip, skip, 0);
    if (st == TK_ERR_NOMEM) return tk_fail(st, "%s: out of memory", name);
    if (st) return st;
    bool text = false;
    for (size_t i = 0; i < out->n_blocks && !text; i++) text = out->blocks[i].level == 0;
    if (!text)
        return tk_fail(TK_ERR_FORMAT, "%s: an empty document: no text%s", name, out->n_blocks ? " under its headings" : "");
    return TK_OK;
}

tk_status tk_doc_read(const char *path, tk_doc_kind kind, tk_doc *out) {
    if (!path || !out) return tk_fail(TK_ERR_ARG, "tk_doc_read: no path");
    if (kind == TK_DOC_AUTO) kind = tk_doc_kind_from_path(path);
    if (kind == TK_DOC_PDF) return tk_doc_read_pdf(path, out);
    char *buf = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(path, &buf, &len);
    if (st) return tk_fail_ctx(st, "%s: ", path);
    st = tk_doc_parse(buf, len, kind, path, out);
    free(buf);
    return st;
}

void tk_doc_free(tk_doc *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_blocks; i++) free(d->blocks[i].text);
    free(d->blocks);
    memset(d, 0, sizeof *d);
}
