/* Unicode helpers for the tokenizers: UTF-8 decoding that never fails (invalid bytes
 * become single-byte units), codepoint category flags with llama.cpp's definitions,
 * lowercase / NFD-first-codepoint lookups, and the GPT-2 byte <-> unicode map. */
#ifndef TK_TOKENIZER_UNICODE_H
#define TK_TOKENIZER_UNICODE_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Category flags (bit order shared with tools/gen_unicode_data.py). */
enum {
    TK_UF_NUMBER = 1 << 0, TK_UF_LETTER = 1 << 1, TK_UF_SEPARATOR = 1 << 2, TK_UF_MARK = 1 << 3,
    TK_UF_PUNCT = 1 << 4, TK_UF_SYMBOL = 1 << 5, TK_UF_CONTROL = 1 << 6,
    TK_UF_WHITESPACE = 1 << 7, /* Python regex \s */
};

/* Codepoint used for bytes that are not part of valid UTF-8 (categorised as a symbol, never whitespace). */
#define TK_UNI_INVALID 0xFFFDu

/* Generated tables (unicode_data.c). */
extern const uint32_t tk_uni_flag_ranges[][2];
extern const size_t tk_uni_n_flag_ranges;
extern const uint32_t tk_uni_whitespace[];
extern const size_t tk_uni_n_whitespace;
extern const uint32_t tk_uni_lower[][2];
extern const size_t tk_uni_n_lower;
extern const uint32_t tk_uni_nfd[][3];
extern const size_t tk_uni_n_nfd;
extern const uint32_t tk_uni_ccc[][3];
extern const size_t tk_uni_n_ccc;
extern const uint32_t tk_uni_decomp_index[][3];
extern const size_t tk_uni_n_decomp;
extern const uint32_t tk_uni_decomp_data[];
extern const uint32_t tk_uni_compose[][3];
extern const size_t tk_uni_n_compose;
extern const uint32_t tk_uni_nfc_unsafe[][2];
extern const size_t tk_uni_n_nfc_unsafe;

/* Flags of a codepoint (0 for values above U+10FFFF). Thread-safe; builds its table on first use. */
uint8_t tk_uni_flags(uint32_t cp);
/* The whole flag table (0x110000 entries) for fast lookups, or NULL if it could not be allocated. */
const uint8_t *tk_uni_flag_table(void);
/* Simple lowercase mapping (the codepoint itself when none). */
uint32_t tk_uni_tolower(uint32_t cp);
/* First codepoint of the NFD decomposition (the codepoint itself when none). */
uint32_t tk_uni_nfd_first(uint32_t cp);

/* Unicode normalization form C of s[0..n) into out (replacing its contents). Bytes that are not
 * valid UTF-8 are copied through unchanged and block composition across them. */
struct tk_buf;
int tk_uni_nfc(const char *s, size_t n, struct tk_buf *out);

/* Decodes one UTF-8 sequence at s[0..n): stores the codepoint (TK_UNI_INVALID for an invalid
 * or truncated sequence, which then consumes exactly one byte) and returns the bytes consumed (>= 1). */
size_t tk_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Encodes cp as UTF-8 into out (4 bytes room); returns the length (0 if cp > U+10FFFF). */
int tk_utf8_encode(uint32_t cp, char *out);
/* Length of the UTF-8 sequence that starts with byte c, by its high bits only (llama.cpp's unicode_len_utf8). */
static inline size_t tk_utf8_len_lead(unsigned char c) {
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* GPT-2 byte-level map: byte -> its printable codepoint, and the reverse (-1 if cp is not one of them). */
uint32_t tk_byte_to_cp(uint8_t b);
int tk_cp_to_byte(uint32_t cp);

#endif
