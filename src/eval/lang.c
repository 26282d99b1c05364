/* Which tokenisation the text metrics use for a set of references: characters for Chinese,
 * Japanese and Korean text (which has no spaces between words), words otherwise. */
#include "eval/textmetrics.h"
#include "tokenizer/unicode.h"

static bool is_cjk(uint32_t c) {
    return (c >= 0x3040 && c <= 0x30FF) ||   /* Hiragana, Katakana */
           (c >= 0x31F0 && c <= 0x31FF) ||   /* Katakana phonetic extensions */
           (c >= 0xFF66 && c <= 0xFF9F) ||   /* half-width Katakana */
           (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3134F) || /* Han */
           (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F) || (c >= 0xAC00 && c <= 0xD7AF); /* Hangul */
}

static bool has_cjk(const char *s) {
    if (!s) return false;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (is_cjk(cp)) return true;
    }
    return false;
}

tk_text_lang tk_text_lang_guess(const char *const *refs, size_t n) {
    size_t cjk = 0;
    for (size_t i = 0; i < n; i++) cjk += has_cjk(refs[i]);
    return n > 0 && cjk * 2 > n ? TK_TEXT_CHARS : TK_TEXT_WORDS;
}
