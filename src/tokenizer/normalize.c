/* Unicode normalization form C (UAX #15) for HF tokenizer.json "NFC" normalizers: canonical
 * decomposition (tables generated from Python's unicodedata by tools/gen_unicode_data.py,
 * Hangul algorithmic), canonical ordering of combining marks, canonical composition. Text
 * without any codepoint that NFC can change is copied as is (the common case). */
#include "tokenizer/unicode.h"
#include "takumi/core.h"
#include <stdlib.h>
#include <string.h>

#define S_BASE 0xAC00u
#define L_BASE 0x1100u
#define V_BASE 0x1161u
#define T_BASE 0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define N_COUNT (V_COUNT * T_COUNT)
#define S_COUNT (L_COUNT * N_COUNT)
#define INVALID_MARK 0x80000000u /* an invalid byte, kept as (mark | byte) */

static unsigned ccc_of(uint32_t cp) {
    if (cp < 0x300 || (cp & INVALID_MARK)) return 0;
    size_t lo = 0, hi = tk_uni_n_ccc;
    while (lo < hi) { size_t m = (lo + hi) / 2; if (tk_uni_ccc[m][1] < cp) lo = m + 1; else hi = m; }
    return lo < tk_uni_n_ccc && tk_uni_ccc[lo][0] <= cp ? tk_uni_ccc[lo][2] : 0;
}

static bool nfc_unsafe(uint32_t cp) {
    if (cp < 0x300) return false;
    size_t lo = 0, hi = tk_uni_n_nfc_unsafe;
    while (lo < hi) { size_t m = (lo + hi) / 2; if (tk_uni_nfc_unsafe[m][1] < cp) lo = m + 1; else hi = m; }
    return lo < tk_uni_n_nfc_unsafe && tk_uni_nfc_unsafe[lo][0] <= cp;
}

static const uint32_t *decomp_of(uint32_t cp, size_t *n) {
    size_t lo = 0, hi = tk_uni_n_decomp;
    while (lo < hi) { size_t m = (lo + hi) / 2; if (tk_uni_decomp_index[m][0] < cp) lo = m + 1; else hi = m; }
    if (lo < tk_uni_n_decomp && tk_uni_decomp_index[lo][0] == cp) {
        *n = tk_uni_decomp_index[lo][2];
        return tk_uni_decomp_data + tk_uni_decomp_index[lo][1];
    }
    return NULL;
}

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    uint64_t key = ((uint64_t)a << 21) | b;
    size_t lo = 0, hi = tk_uni_n_compose;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        uint64_t k = ((uint64_t)tk_uni_compose[m][0] << 21) | tk_uni_compose[m][1];
        if (k < key) lo = m + 1; else hi = m;
    }
    if (lo < tk_uni_n_compose && tk_uni_compose[lo][0] == a && tk_uni_compose[lo][1] == b) return tk_uni_compose[lo][2];
    return 0;
}

int tk_uni_nfc(const char *s, size_t n, struct tk_buf *out) {
    const unsigned char *p = (const unsigned char *)s;
    out->len = 0;
    bool any = false;
    for (size_t i = 0; i < n && !any;) {
        uint32_t cp;
        size_t k = p[i] < 0x80 ? (cp = p[i], 1) : tk_utf8_decode(p + i, n - i, &cp);
        if (!(k == 1 && p[i] >= 0x80) && nfc_unsafe(cp)) any = true;
        i += k;
    }
    if (!any) return tk_buf_append(out, s, n);

    /* decompose */
    size_t cap = n + 16, m = 0;
    uint32_t *b = malloc(cap * sizeof *b);
    if (!b) return TK_ERR_NOMEM;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = p[i] < 0x80 ? (cp = p[i], 1) : tk_utf8_decode(p + i, n - i, &cp);
        if (k == 1 && p[i] >= 0x80) cp = INVALID_MARK | p[i];
        i += k;
        uint32_t tmp[4];
        const uint32_t *d = NULL;
        size_t dn = 0;
        if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
            uint32_t si = cp - S_BASE;
            tmp[0] = L_BASE + si / N_COUNT; tmp[1] = V_BASE + (si % N_COUNT) / T_COUNT; dn = 2;
            if (si % T_COUNT) tmp[dn++] = T_BASE + si % T_COUNT;
            d = tmp;
        } else if (!(cp & INVALID_MARK) && cp >= 0xC0) {
            d = decomp_of(cp, &dn);
        }
        if (!d) { tmp[0] = cp; d = tmp; dn = 1; }
        if (m + dn > cap) {
            cap = (m + dn) * 2;
            uint32_t *nb = realloc(b, cap * sizeof *nb);
            if (!nb) { free(b); return TK_ERR_NOMEM; }
            b = nb;
        }
        for (size_t j = 0; j < dn; j++) b[m++] = d[j];
    }
    /* canonical ordering: stable insertion sort of each run of non-starters by class */
    for (size_t i = 1; i < m; i++) {
        unsigned c = ccc_of(b[i]);
        if (!c) continue;
        size_t j = i;
        uint32_t x = b[i];
        while (j > 0 && ccc_of(b[j - 1]) > c) { b[j] = b[j - 1]; j--; }
        b[j] = x;
    }
    /* canonical composition */
    size_t o = 0;
    long starter = -1;
    unsigned last = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = b[i];
        unsigned cc = ccc_of(c);
        if (starter >= 0 && !(c & INVALID_MARK)) {
            bool adjacent = (size_t)starter == o - 1;
            if (adjacent || (last != 0 && last < cc)) {
                uint32_t comp = compose(b[starter], c);
                if (comp) { b[starter] = comp; continue; }
            }
        }
        if (cc == 0) { starter = (c & INVALID_MARK) ? -1 : (long)o; last = 0; }
        else last = cc;
        b[o++] = c;
    }
    tk_status st = tk_buf_reserve(out, n + 16);
    for (size_t i = 0; i < o && !st; i++) {
        char u[4];
        if (b[i] & INVALID_MARK) { u[0] = (char)(b[i] & 0xFF); st = tk_buf_append(out, u, 1); }
        else st = tk_buf_append(out, u, (size_t)tk_utf8_encode(b[i], u));
    }
    free(b);
    return st;
}
