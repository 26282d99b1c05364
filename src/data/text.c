/* Text utilities for the data checks: the normalisation used for duplicate detection,
 * a fast 64-bit hash, MinHash signatures over character 5-grams, and script counts
 * for the language/script mix.
 *
 * Normalisation ("NFKC-ish", a deliberate subset of Unicode NFKC + case folding that
 * matters for chat data in English and Japanese):
 *   - full-width ASCII U+FF01..U+FF5E -> ASCII; ideographic space -> space;
 *   - half-width katakana/punctuation U+FF61..U+FF9F -> their NFKC forms, and a base
 *     kana followed by a (half- or full-width) voiced / semi-voiced mark is composed
 *     (ｶﾞ -> ガ), as NFKC does (tables generated with Python's unicodedata);
 *   - ASCII letters lower-cased;
 *   - zero-width characters (U+200B..U+200D, U+2060, U+FEFF) dropped;
 *   - every run of white space (ASCII and Unicode spaces, line/paragraph separators)
 *     -> one space; leading/trailing space removed.
 * Not done: compatibility ligatures, circled digits, other scripts' case folding. */
#include "data/data_internal.h"

static const uint16_t k_halfwidth[0xFFA0 - 0xFF61] = {
    0x3002, 0x300C, 0x300D, 0x3001, 0x30FB, 0x30F2, 0x30A1, 0x30A3, 0x30A5, 0x30A7, 0x30A9, 0x30E3, 0x30E5, 0x30E7, 0x30C3, 0x30FC,
    0x30A2, 0x30A4, 0x30A6, 0x30A8, 0x30AA, 0x30AB, 0x30AD, 0x30AF, 0x30B1, 0x30B3, 0x30B5, 0x30B7, 0x30B9, 0x30BB, 0x30BD, 0x30BF,
    0x30C1, 0x30C4, 0x30C6, 0x30C8, 0x30CA, 0x30CB, 0x30CC, 0x30CD, 0x30CE, 0x30CF, 0x30D2, 0x30D5, 0x30D8, 0x30DB, 0x30DE, 0x30DF,
    0x30E0, 0x30E1, 0x30E2, 0x30E4, 0x30E6, 0x30E8, 0x30E9, 0x30EA, 0x30EB, 0x30EC, 0x30ED, 0x30EF, 0x30F3, 0x3099, 0x309A,
};
static const uint16_t k_voiced[][2] = {
    {0x3046,0x3094},{0x304B,0x304C},{0x304D,0x304E},{0x304F,0x3050},{0x3051,0x3052},{0x3053,0x3054},{0x3055,0x3056},{0x3057,0x3058},
    {0x3059,0x305A},{0x305B,0x305C},{0x305D,0x305E},{0x305F,0x3060},{0x3061,0x3062},{0x3064,0x3065},{0x3066,0x3067},{0x3068,0x3069},
    {0x306F,0x3070},{0x3072,0x3073},{0x3075,0x3076},{0x3078,0x3079},{0x307B,0x307C},{0x309D,0x309E},{0x30A6,0x30F4},{0x30AB,0x30AC},
    {0x30AD,0x30AE},{0x30AF,0x30B0},{0x30B1,0x30B2},{0x30B3,0x30B4},{0x30B5,0x30B6},{0x30B7,0x30B8},{0x30B9,0x30BA},{0x30BB,0x30BC},
    {0x30BD,0x30BE},{0x30BF,0x30C0},{0x30C1,0x30C2},{0x30C4,0x30C5},{0x30C6,0x30C7},{0x30C8,0x30C9},{0x30CF,0x30D0},{0x30D2,0x30D3},
    {0x30D5,0x30D6},{0x30D8,0x30D9},{0x30DB,0x30DC},{0x30EF,0x30F7},{0x30F0,0x30F8},{0x30F1,0x30F9},{0x30F2,0x30FA},{0x30FD,0x30FE},
};
static const uint16_t k_semivoiced[][2] = {
    {0x306F,0x3071},{0x3072,0x3074},{0x3075,0x3077},{0x3078,0x307A},{0x307B,0x307D},
    {0x30CF,0x30D1},{0x30D2,0x30D4},{0x30D5,0x30D7},{0x30D8,0x30DA},{0x30DB,0x30DD},
};

/* Decodes one code point from valid UTF-8 (invalid bytes decode as themselves, one byte). */
static inline uint32_t next_cp(const unsigned char *s, size_t len, size_t *i) {
    unsigned c = s[*i];
    if (c < 0x80) { (*i)++; return c; }
    size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (n == 0 || len - *i <= n) { (*i)++; return c; }
    uint32_t cp = c & (0x3F >> n);
    for (size_t k = 1; k <= n; k++) cp = (cp << 6) | (s[*i + k] & 0x3F);
    *i += n + 1;
    return cp;
}

static inline size_t put_cp(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) { o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F)); return 3; }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static inline bool is_space_cp(uint32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
static inline bool is_zero_width(uint32_t c) { return (c >= 0x200B && c <= 0x200D) || c == 0x2060 || c == 0xFEFF; }

static uint32_t compose(uint32_t base, uint32_t mark) {
    if (mark == 0x3099) {
        for (size_t i = 0; i < sizeof k_voiced / sizeof k_voiced[0]; i++) if (k_voiced[i][0] == base) return k_voiced[i][1];
    } else {
        for (size_t i = 0; i < sizeof k_semivoiced / sizeof k_semivoiced[0]; i++) if (k_semivoiced[i][0] == base) return k_semivoiced[i][1];
    }
    return 0;
}

bool tk_text_blank(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t c = next_cp(p, len, &i);
        if (!is_space_cp(c) && !is_zero_width(c)) return false;
    }
    return true;
}

static inline void count_script(uint32_t c, uint64_t *cnt);

tk_status tk_text_normalize(const char *s, size_t len, tk_buf *out) { return tk_text_normalize_ex(s, len, out, NULL); }

/* ASCII classes for the fast path: 0 copy, 1 upper-case letter, 2 white space, 3 lower-case letter. */
static const uint8_t k_ascii[128] = {
    ['\t'] = 2, ['\n'] = 2, ['\v'] = 2, ['\f'] = 2, ['\r'] = 2, [' '] = 2,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3, ['g'] = 3, ['h'] = 3, ['i'] = 3, ['j'] = 3, ['k'] = 3,
    ['l'] = 3, ['m'] = 3, ['n'] = 3, ['o'] = 3, ['p'] = 3, ['q'] = 3, ['r'] = 3, ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3,
    ['w'] = 3, ['x'] = 3, ['y'] = 3, ['z'] = 3,
};

tk_status tk_text_normalize_ex(const char *s, size_t len, tk_buf *out, uint64_t *scripts) {
    tk_status st = tk_buf_reserve(out, 2 * len + 4);   /* stray bytes (invalid UTF-8) re-encode as 2 bytes */
    if (st) return st;
    const unsigned char *p = (const unsigned char *)s;
    char *o = out->data + out->len;
    char *const o0 = o;
    size_t i = 0;
    bool pending_space = false;
    uint64_t latin = 0;
    uint32_t last = 0;        /* last code point written (for kana composition) */
    char *last_at = o;
    while (i < len) {
        unsigned c0 = p[i];
        if (c0 < 0x80) {
            /* ASCII: table-driven */
            i++;
            unsigned k = k_ascii[c0];
            if (k == 2) { pending_space = true; continue; }
            if (pending_space && o != o0) *o++ = ' ';
            pending_space = false;
            last_at = o;
            *o++ = (char)(k == 1 ? c0 + 32 : c0);
            latin += k & 1;
            last = c0;
            continue;
        }
        uint32_t c;
        if ((c0 & 0xF0) == 0xE0 && len - i > 2) {
            c = ((c0 & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
            if (c >= 0x3100 && c < 0xFE00 && c != 0x202F && c != 0x205F && (c < 0x2000 || c > 0x2060)) {
                /* CJK and most 3-byte characters: no mapping, no space, no composition — copy the bytes */
                if (scripts) count_script(c, scripts);
                if (pending_space && o != o0) *o++ = ' ';
                pending_space = false;
                last_at = o;
                o[0] = (char)p[i]; o[1] = (char)p[i + 1]; o[2] = (char)p[i + 2];
                o += 3; i += 3;
                last = c;
                continue;
            }
            i += 3;
        } else c = next_cp(p, len, &i);
        if (is_space_cp(c)) { pending_space = true; continue; }
        if (is_zero_width(c)) continue;
        if (scripts) count_script(c, scripts);
        if (c >= 0xFF01 && c <= 0xFF5E) { c -= 0xFEE0; if (c >= 'A' && c <= 'Z') c += 32; }
        else if (c >= 0xFF61 && c <= 0xFF9F) c = k_halfwidth[c - 0xFF61];
        if ((c == 0x3099 || c == 0x309A) && o != o0 && !pending_space) {
            uint32_t m = compose(last, c);
            if (m) {
                o = last_at;
                o += put_cp(o, m);
                last = m;
                continue;
            }
        }
        if (pending_space && o != o0) *o++ = ' ';
        pending_space = false;
        last_at = o;
        o += put_cp(o, c);
        last = c;
    }
    if (scripts) scripts[TK_SCRIPT_LATIN] += latin;
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return TK_OK;
}

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t fmix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t tk_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *s = data;
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8); memcpy(&b, s + 8, 8);
        h = rotl64(h ^ (a * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
        h = rotl64(h ^ (b * 0x52dce729da3ed7b5ULL), 27) * 0x9E3779B97F4A7C15ULL + 0x38495ab5;
        s += 16; n -= 16;
    }
    if (n >= 8) {
        uint64_t a;
        memcpy(&a, s, 8);
        h = rotl64(h ^ (a * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
        s += 8; n -= 8;
    }
    uint64_t t = 0;
    memcpy(&t, s, n);
    h ^= t * 0x52dce729da3ed7b5ULL + n;
    return fmix64(h);
}

/* MinHash by one-permutation hashing (Li, Owen & Zhang 2012): each shingle is hashed once;
 * the top 6 bits pick one of 64 bins and the bin keeps its smallest low 32 bits. Empty bins
 * (short texts) borrow from the next non-empty bin to the right, mixed with the distance
 * ("rotation" densification, Shrivastava & Li 2014), so every position is comparable.
 * Equal positions estimate the Jaccard similarity of the 5-gram sets, as 64 separate
 * permutations would, at 1/64 of the cost. */
static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16; h *= 0x85ebca6bU;
    h ^= h >> 13; h *= 0xc2b2ae35U;
    h ^= h >> 16;
    return h;
}

/* Calls fn with the hash of every character 5-gram of norm (code points), or of the whole
 * text when it is shorter than 5 characters; nothing for an empty text. */
static void each_shingle(const char *norm, size_t len, void (*fn)(uint64_t x, void *u), void *u) {
    if (len == 0) return;
    const unsigned char *p = (const unsigned char *)norm;
    const uint64_t P = 0x100000001b3ULL;
    const uint64_t P4 = P * P * P * P;     /* P^(K-1) */
    uint64_t win[TK_MINHASH_K];
    size_t i = 0, n = 0;
    uint64_t h = 0;
    while (i < len) {
        uint64_t c;
        if (p[i] < 0x80) c = p[i++];
        else c = next_cp(p, len, &i);
        c += 1;
        if (n >= TK_MINHASH_K) h -= win[n % TK_MINHASH_K] * P4;
        win[n % TK_MINHASH_K] = c;
        h = h * P + c;
        n++;
        if (n >= TK_MINHASH_K) fn(fmix64(h), u);
    }
    if (n < TK_MINHASH_K) fn(fmix64(h), u);   /* short text: the whole text is the one shingle */
}

static void minhash_add(uint64_t x, void *u) {
    uint32_t *mins = u;
    uint32_t b = (uint32_t)(x >> 58), v = (uint32_t)x;
    if (v < mins[b]) mins[b] = v;
}

bool tk_minhash(const char *norm, size_t len, uint16_t sig[TK_MINHASH_N]) {
    if (len == 0) return false;
    uint32_t mins[TK_MINHASH_N];
    for (int k = 0; k < TK_MINHASH_N; k++) mins[k] = UINT32_MAX;
    each_shingle(norm, len, minhash_add, mins);
    for (int k = 0; k < TK_MINHASH_N; k++) {
        if (mins[k] != UINT32_MAX) { sig[k] = (uint16_t)(mins[k] ^ (mins[k] >> 16)); continue; }
        int t = 1;
        while (mins[(k + t) % TK_MINHASH_N] == UINT32_MAX) t++;   /* at least one bin is filled */
        uint32_t v = fmix32(mins[(k + t) % TK_MINHASH_N] + (uint32_t)t * 0x9E3779B9U);
        sig[k] = (uint16_t)(v ^ (v >> 16));
    }
    return true;
}

typedef struct shingle_vec { tk_shingles *v; bool fail; } shingle_vec;
static void shingle_add(uint64_t x, void *u) {
    shingle_vec *sv = u;
    tk_shingles *v = sv->v;
    if (sv->fail) return;
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 256;
        uint64_t *p = realloc(v->h, c * sizeof *p);
        if (!p) { sv->fail = true; return; }
        v->h = p;
        v->cap = c;
    }
    v->h[v->n++] = x;
}
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

tk_status tk_shingle_set(const char *norm, size_t len, tk_shingles *out) {
    out->n = 0;
    shingle_vec sv = {out, false};
    each_shingle(norm, len, shingle_add, &sv);
    if (sv.fail) return TK_ERR_NOMEM;
    if (out->n > 1) qsort(out->h, out->n, sizeof *out->h, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) if (!w || out->h[w - 1] != out->h[i]) out->h[w++] = out->h[i];
    out->n = w;
    return TK_OK;
}

double tk_shingle_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    if (!na && !nb) return 1;
    size_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) { inter++; i++; j++; }
        else if (a[i] < b[j]) i++;
        else j++;
    }
    return (double)inter / (double)(na + nb - inter);
}

const char *tk_data_script_name(tk_data_script s) {
    static const char *n[] = {"latin", "japanese", "chinese", "korean", "cyrillic", "arabic", "other", "none"};
    return (unsigned)s < TK_SCRIPT_COUNT ? n[s] : "?";
}

/* Adds one code point to letter counts by script (indices as tk_data_script; JAPANESE counts kana, CHINESE Han). */
static inline void count_script(uint32_t c, uint64_t *cnt) {
    if (c < 0x80) { if ((c | 32) >= 'a' && (c | 32) <= 'z') cnt[TK_SCRIPT_LATIN]++; }
    else if (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) cnt[TK_SCRIPT_LATIN]++;
    else if ((c >= 0x3040 && c <= 0x30FF && c != 0x30FB && c != 0x30FC) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9D)) cnt[TK_SCRIPT_JAPANESE]++;
    else if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF)) cnt[TK_SCRIPT_CHINESE]++;
    else if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F)) cnt[TK_SCRIPT_KOREAN]++;
    else if (c >= 0x400 && c <= 0x4FF) cnt[TK_SCRIPT_CYRILLIC]++;
    else if ((c >= 0x600 && c <= 0x6FF) || (c >= 0x750 && c <= 0x77F)) cnt[TK_SCRIPT_ARABIC]++;
    else if ((c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A)) cnt[TK_SCRIPT_LATIN]++;
    else if (c >= 0x370 && !(c >= 0x2000 && c <= 0x2BFF) && !(c >= 0x3000 && c <= 0x303F) && !(c >= 0xFE00 && c <= 0xFF65) &&
             !(c >= 0x1F000 && c <= 0x1FFFF) && !(c >= 0xE000 && c <= 0xF8FF)) cnt[TK_SCRIPT_OTHER]++;
}

static void script_counts(const char *s, size_t len, uint64_t *cnt) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) count_script(next_cp(p, len, &i), cnt);
}

tk_data_script tk_text_script(const char *s, size_t len, uint64_t counts[TK_SCRIPT_COUNT]) {
    if (s) script_counts(s, len, counts);
    uint64_t kana = counts[TK_SCRIPT_JAPANESE], han = counts[TK_SCRIPT_CHINESE], cjk = kana + han;
    uint64_t best = 0;
    tk_data_script bs = TK_SCRIPT_NONE;
    const tk_data_script order[] = {TK_SCRIPT_LATIN, TK_SCRIPT_KOREAN, TK_SCRIPT_CYRILLIC, TK_SCRIPT_ARABIC, TK_SCRIPT_OTHER};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        if (counts[order[k]] > best) { best = counts[order[k]]; bs = order[k]; }
    if (cjk > 0 && cjk >= best) {
        /* Japanese writes kanji with kana; a text of Han characters with (almost) no kana is Chinese. */
        return kana * 20 >= cjk ? TK_SCRIPT_JAPANESE : TK_SCRIPT_CHINESE;
    }
    return bs;
}
