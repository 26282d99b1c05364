/* Personal data detection with PCRE2 (patterns compiled once, JIT-compiled when the
 * library supports it; immutable afterwards, so threads share them with their own
 * match data).
 *
 * What is found:
 *   email        local@domain.tld (ASCII local part and domain, TLD of 2+ letters);
 *   phone        international "+CC …" with 8–15 digits (8–13 when written without separators); US (555) 123-4567 / 555-123-4567 /
 *                555.123.4567; Japanese 0X-XXXX-XXXX forms with 10 or 11 digits
 *                (03-1234-5678, 090-1234-5678, 0120-123-456), ASCII or full-width digits
 *                and hyphens;
 *   credit_card  15 or 16 contiguous digits, or 13–19 digits in 4-4-4-x(-3) / 4-6-4(5) groups, with an
 *                issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay)
 *                and a valid Luhn checksum;
 *   ip           IPv4 dotted quads (each part 0–255, the first 1–255) and IPv6 (full or "::"-compressed,
 *                at least two groups and one digit, so C++ "a::b" is not taken).
 * Three scans keep it fast: the e-mail pattern only runs on text containing '@', the
 * IPv6 pattern only on text containing "::" or 7+ colons, the numeric pattern always
 * (its first character must be a digit, '+' or '(' so the JIT skips ahead quickly). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "data/data_internal.h"

enum { P_EMAIL = 0, P_NUM, P_IP6, P_COUNT };

struct tk_pii { pcre2_code *code[P_COUNT]; };
struct tk_pii_scratch { pcre2_match_data *md[P_COUNT]; };

/* D: ASCII or full-width digit; H: hyphen-like (ASCII, U+2010, U+FF0D, U+2212, U+30FC). */
#define D "[0-9\\x{FF10}-\\x{FF19}]"
#define H "[\\-\\x{2010}\\x{FF0D}\\x{2212}\\x{30FC}]"
static const char *const k_patterns[P_COUNT] = {
    /* email */
    "(?<![A-Za-z0-9._%+\\-])[A-Za-z0-9][A-Za-z0-9._%+\\-]{0,63}@"
    "[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,62}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,62}[A-Za-z0-9])?)*"
    "\\.[A-Za-z]{2,24}(?![A-Za-z0-9\\-])",
    /* numeric: card | international phone | US phone | Japanese phone | IPv4 */
    "(?<![0-9A-Za-z_+.\\x{FF10}-\\x{FF19}])(?:"
    "(?<card>[0-9]{15,16}|[0-9]{4}([ \\-])[0-9]{4}\\2[0-9]{4}\\2[0-9]{1,4}(?:\\2[0-9]{3})?|[0-9]{4}([ \\-])[0-9]{6}\\3[0-9]{4,5})(?![0-9])"
    "|(?<intl>\\+[1-9][0-9]{0,2}(?:[ .\\-]?\\(?[0-9]{1,4}\\)?){2,6})(?![0-9])"
    "|(?<us>(?:\\([0-9]{3}\\) ?|[0-9]{3}[.\\-])[0-9]{3}[.\\-][0-9]{4})(?![0-9]|[.\\-][0-9])"
    "|(?<jp>[0\\x{FF10}]" D "{1,4}" H D "{1,4}" H D "{3,4})(?!" D "|" H D ")"
    "|(?<ip4>(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]?)\\.(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){2}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(?![0-9]|\\.[0-9])"
    ")",
    /* IPv6 */
    "(?<![0-9A-Za-z_:.])(?:"
    "(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    "|(?:[0-9A-Fa-f]{1,4}:){1,7}:"
    "|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}"
    "|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}"
    "|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}"
    "|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}"
    "|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}"
    "|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}"
    "|:(?::[0-9A-Fa-f]{1,4}){1,7}"
    ")(?![0-9A-Za-z_:]|\\.[0-9])",
};
#undef D
#undef H

const char *tk_pii_name(tk_pii_kind k) {
    static const char *n[] = {"email", "phone", "credit_card", "ip"};
    return (unsigned)k < TK_PII_COUNT ? n[k] : "?";
}
const char *tk_pii_placeholder(tk_pii_kind k) {
    static const char *n[] = {"[EMAIL]", "[PHONE]", "[CREDIT_CARD]", "[IP]"};
    return (unsigned)k < TK_PII_COUNT ? n[k] : "[PII]";
}

tk_status tk_pii_new(tk_pii **out) {
    *out = NULL;
    tk_pii *p = tk_calloc(1, sizeof *p);
    if (!p) return TK_ERR_NOMEM;
    for (int i = 0; i < P_COUNT; i++) {
        int err;
        PCRE2_SIZE off;
        p->code[i] = pcre2_compile((PCRE2_SPTR)k_patterns[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            tk_pii_free(p);
            return tk_fail(TK_ERR_INTERNAL, "PII pattern %d does not compile at offset %zu: %s", i, (size_t)off, (char *)msg);
        }
        pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);   /* falls back to the interpreter if JIT is unavailable */
    }
    *out = p;
    return TK_OK;
}

void tk_pii_free(tk_pii *p) {
    if (!p) return;
    for (int i = 0; i < P_COUNT; i++) pcre2_code_free(p->code[i]);
    free(p);
}

tk_pii_scratch *tk_pii_scratch_new(const tk_pii *p) {
    tk_pii_scratch *s = tk_calloc(1, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < P_COUNT; i++) {
        s->md[i] = pcre2_match_data_create_from_pattern(p->code[i], NULL);
        if (!s->md[i]) { tk_pii_scratch_free(s); tk_fail(TK_ERR_NOMEM, "out of memory for PCRE2 match data"); return NULL; }
    }
    return s;
}

void tk_pii_scratch_free(tk_pii_scratch *s) {
    if (!s) return;
    for (int i = 0; i < P_COUNT; i++) pcre2_match_data_free(s->md[i]);
    free(s);
}

bool tk_luhn_ok(const char *s, size_t len) {
    int sum = 0, n = 0;
    for (size_t i = len; i > 0; i--) {
        char c = s[i - 1];
        if (c < '0' || c > '9') continue;
        int d = c - '0';
        if (n & 1) { d *= 2; if (d > 9) d -= 9; }
        sum += d;
        n++;
    }
    return n > 0 && sum % 10 == 0;
}

/* Issuer prefix and length rules of the major card networks. */
static bool card_iin_ok(const char *d, int n) {
    int p1 = d[0] - '0', p2 = p1 * 10 + (d[1] - '0'), p3 = p2 * 10 + (d[2] - '0'), p4 = p3 * 10 + (d[3] - '0');
    if (p1 == 4) return n == 13 || n == 16 || n == 19;                                   /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;             /* Mastercard */
    if (p2 == 34 || p2 == 37) return n == 15;                                             /* Amex */
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19;   /* Discover */
    if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19;                              /* JCB */
    if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) return n >= 14 && n <= 19;  /* Diners */
    if (p2 == 62) return n >= 16 && n <= 19;                                              /* UnionPay */
    return false;
}

static bool card_ok(const char *s, size_t len) {
    char d[24];
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') { if (n >= 19) return false; d[n++] = s[i]; }
    }
    return n >= 13 && n <= 19 && card_iin_ok(d, n) && tk_luhn_ok(d, (size_t)n);
}

/* Digits in s, counting full-width digits (3 bytes, EF BC 90..99) as one. */
static int count_digits(const char *s, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9') n++;
        else if (c == 0xEF && i + 2 < len && (unsigned char)s[i + 1] == 0xBC && (unsigned char)s[i + 2] >= 0x90 && (unsigned char)s[i + 2] <= 0x99) { n++; i += 2; }
    }
    return n;
}

static tk_status vec_push(tk_pii_vec *v, tk_pii_kind k, size_t a, size_t b) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        tk_pii_match *p = tk_realloc(v->v, cap * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        v->v = p; v->cap = cap;
    }
    v->v[v->n++] = (tk_pii_match){k, a, b};
    return TK_OK;
}

/* Accepts or rejects a numeric match by its named group. */
static int classify_num(pcre2_code *code, PCRE2_SIZE *ov, const char *s, size_t *a, size_t *b) {
    static const char *const groups[] = {"card", "intl", "us", "jp", "ip4"};
    for (int g = 0; g < 5; g++) {
        int num = pcre2_substring_number_from_name(code, (PCRE2_SPTR)groups[g]);
        if (num < 0 || ov[2 * num] == PCRE2_UNSET) continue;
        *a = ov[2 * num]; *b = ov[2 * num + 1];
        const char *m = s + *a;
        size_t l = *b - *a;
        switch (g) {
        case 0: return card_ok(m, l) ? TK_PII_CREDIT_CARD : -1;
        case 1: {
            /* E.164 allows 15 digits, but an unbroken "+" run of more than 13 is far more often arithmetic */
            int d = count_digits(m, l);
            bool sep = d + 1 != (int)l;
            return d >= 8 && d <= (sep ? 15 : 13) ? TK_PII_PHONE : -1;
        }
        case 2: return TK_PII_PHONE;
        case 3: { int d = count_digits(m, l); return d == 10 || d == 11 ? TK_PII_PHONE : -1; }
        case 4: return TK_PII_IP;
        }
    }
    return -1;
}

static bool ip6_ok(const char *s, size_t len) {
    int groups = 0, digits = 0, colons = 0;
    bool in = false, dbl = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ':') { colons++; in = false; if (i + 1 < len && s[i + 1] == ':') dbl = true; continue; }
        if (!in) { groups++; in = true; }
        if (c >= '0' && c <= '9') digits++;
    }
    return digits > 0 && groups >= 2 && (dbl || colons == 7);
}

static tk_status scan_one(const tk_pii *p, tk_pii_scratch *s, int which, const char *text, size_t len, size_t base, tk_pii_vec *out) {
    pcre2_code *code = p->code[which];
    pcre2_match_data *md = s->md[which];
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) {
            if (rc == PCRE2_ERROR_NOMATCH) break;
            return tk_fail(TK_ERR_INTERNAL, "PII scan failed (PCRE2 error %d)", rc);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        int kind = -1;
        if (which == P_EMAIL) kind = TK_PII_EMAIL;
        else if (which == P_IP6) kind = ip6_ok(text + a, b - a) ? TK_PII_IP : -1;
        else kind = classify_num(code, ov, text, &a, &b);
        if (kind >= 0) {
            tk_status st = vec_push(out, (tk_pii_kind)kind, base + a, base + b);
            if (st) return st;
        }
        size_t next = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        /* step over a whole UTF-8 character */
        while (next < len && ((unsigned char)text[next] & 0xC0) == 0x80) next++;
        pos = next;
    }
    return TK_OK;
}

static int cmp_match(const void *x, const void *y) {
    const tk_pii_match *a = x, *b = y;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end > b->end ? -1 : 1;   /* longer first */
    return (int)a->kind - (int)b->kind;
}

static bool has_ip6_hint(const char *t, size_t len) {
    int colons = 0;
    const char *p = t, *e = t + len;
    while (p < e && (p = memchr(p, ':', (size_t)(e - p))) != NULL) {
        if (p + 1 < e && p[1] == ':') return true;
        if (++colons >= 7) return true;
        p++;
    }
    return false;
}

/* Scans one valid-UTF-8 segment. */
static tk_status scan_segment(const tk_pii *p, tk_pii_scratch *s, const char *t, size_t len, size_t base, tk_pii_vec *out) {
    tk_status st;
    if (memchr(t, '@', len) && (st = scan_one(p, s, P_EMAIL, t, len, base, out))) return st;
    if ((st = scan_one(p, s, P_NUM, t, len, base, out))) return st;
    if (has_ip6_hint(t, len) && (st = scan_one(p, s, P_IP6, t, len, base, out))) return st;
    return TK_OK;
}

tk_status tk_pii_scan(const tk_pii *p, tk_pii_scratch *s, const char *text, size_t len, tk_pii_vec *out) {
    size_t n0 = out->n;
    size_t at = 0;
    while (at < len) {
        bool nul;
        size_t bad = at + tk_utf8_check(text + at, len - at, &nul);
        if (bad > at) {
            tk_status st = scan_segment(p, s, text + at, bad - at, at, out);
            if (st) return st;
        }
        at = bad + 1;   /* skip the invalid byte (or NUL) */
    }
    size_t n = out->n - n0;
    if (n > 1) {
        /* merge the three scans: order by position, drop overlaps (earliest, then longest wins) */
        tk_pii_match *m = out->v + n0;
        qsort(m, n, sizeof *m, cmp_match);
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (w > 0 && m[i].start < m[w - 1].end) continue;
            m[w++] = m[i];
        }
        out->n = n0 + w;
    }
    return TK_OK;
}

tk_status tk_pii_find(const tk_pii *p, const char *text, size_t len, tk_pii_match **out, size_t *n) {
    *out = NULL; *n = 0;
    tk_pii_scratch *s = tk_pii_scratch_new(p);
    if (!s) return TK_ERR_NOMEM;
    tk_pii_vec v = {0};
    tk_status st = tk_pii_scan(p, s, text, len, &v);
    tk_pii_scratch_free(s);
    if (st) { free(v.v); return st; }
    *out = v.v; *n = v.n;
    return TK_OK;
}

tk_status tk_pii_redact(const tk_pii *p, const char *text, size_t len, tk_buf *out, uint64_t counts[TK_PII_COUNT]) {
    tk_pii_match *m; size_t n;
    tk_status st = tk_pii_find(p, text, len, &m, &n);
    if (st) return st;
    size_t at = 0;
    for (size_t i = 0; i < n && !st; i++) {
        st = tk_buf_append(out, text + at, m[i].start - at);
        if (!st) st = tk_buf_append(out, tk_pii_placeholder(m[i].kind), strlen(tk_pii_placeholder(m[i].kind)));
        if (counts) counts[m[i].kind]++;
        at = m[i].end;
    }
    if (!st) st = tk_buf_append(out, text + at, len - at);
    free(m);
    return st;
}
