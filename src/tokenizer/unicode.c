/* Unicode helpers for the tokenizers (see unicode.h). The category table is expanded
 * once into a flat array (1.1 MB) so that the pre-tokenizers' per-codepoint lookups are
 * a single load. */
#include "tokenizer/unicode.h"
#include <pthread.h>
#include <stdlib.h>

#define TK_UNI_MAX 0x110000u

static uint8_t *g_flags;
static uint8_t g_flags_fallback[128];
static pthread_once_t g_flags_once = PTHREAD_ONCE_INIT;

static void build_flags(void) {
    uint8_t *f = malloc(TK_UNI_MAX);
    if (!f) {
        /* Out of memory: keep ASCII correct through the small fallback table. */
        for (uint32_t c = 0; c < 128; c++) {
            uint8_t v = 0;
            for (size_t i = 0; i + 1 < tk_uni_n_flag_ranges; i++)
                if (c >= tk_uni_flag_ranges[i][0] && c < tk_uni_flag_ranges[i + 1][0]) v = (uint8_t)tk_uni_flag_ranges[i][1];
            g_flags_fallback[c] = v;
        }
        for (size_t i = 0; i < tk_uni_n_whitespace; i++)
            if (tk_uni_whitespace[i] < 128) g_flags_fallback[tk_uni_whitespace[i]] |= TK_UF_WHITESPACE;
        return;
    }
    for (size_t i = 0; i < tk_uni_n_flag_ranges; i++) {
        uint32_t a = tk_uni_flag_ranges[i][0];
        uint32_t b = i + 1 < tk_uni_n_flag_ranges ? tk_uni_flag_ranges[i + 1][0] : TK_UNI_MAX;
        for (uint32_t c = a; c < b && c < TK_UNI_MAX; c++) f[c] = (uint8_t)tk_uni_flag_ranges[i][1];
    }
    for (size_t i = 0; i < tk_uni_n_whitespace; i++) f[tk_uni_whitespace[i]] |= TK_UF_WHITESPACE;
    g_flags = f;
}

uint8_t tk_uni_flags(uint32_t cp) {
    pthread_once(&g_flags_once, build_flags);
    if (cp >= TK_UNI_MAX) return 0;
    if (g_flags) return g_flags[cp];
    return cp < 128 ? g_flags_fallback[cp] : TK_UF_SYMBOL;
}

const uint8_t *tk_uni_flag_table(void) {
    pthread_once(&g_flags_once, build_flags);
    return g_flags;
}

uint32_t tk_uni_tolower(uint32_t cp) {
    size_t lo = 0, hi = tk_uni_n_lower;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tk_uni_lower[mid][0] < cp) lo = mid + 1; else hi = mid;
    }
    return lo < tk_uni_n_lower && tk_uni_lower[lo][0] == cp ? tk_uni_lower[lo][1] : cp;
}

uint32_t tk_uni_nfd_first(uint32_t cp) {
    size_t lo = 0, hi = tk_uni_n_nfd;
    while (lo < hi) { /* first range whose last >= cp */
        size_t mid = (lo + hi) / 2;
        if (tk_uni_nfd[mid][1] < cp) lo = mid + 1; else hi = mid;
    }
    return lo < tk_uni_n_nfd && tk_uni_nfd[lo][0] <= cp ? tk_uni_nfd[lo][2] : cp;
}

size_t tk_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len; uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else { *cp = TK_UNI_INVALID; return 1; }
    if (len > n) { *cp = TK_UNI_INVALID; return 1; }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = TK_UNI_INVALID; return 1; }
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid too. */
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) { *cp = TK_UNI_INVALID; return 1; }
    *cp = v;
    return len;
}

int tk_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
    }
    return 0;
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tk_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++) n += !byte_is_printable(c);
    return 256 + n;
}

int tk_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t n = cp - 256;
    for (unsigned c = 0; c < 256; c++)
        if (!byte_is_printable(c)) { if (n == 0) return (int)c; n--; }
    return -1;
}
