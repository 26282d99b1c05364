/* WordPiece encoding (GGUF tokenizer.ggml.model "bert"), as llama.cpp's llm_tokenizer_wpm:
 * BERT-style pre-processing (optional accent stripping via the first NFD codepoint and
 * lowercasing; whitespace splits words; punctuation, ASCII symbols and CJK ideographs are
 * words of their own; control characters dropped), then greedy longest-match over
 * "\u2581" + word. A word with no complete cover becomes the unknown token. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static bool is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Greedy longest match of "\u2581" + word; appends ids (or unk). */
static tk_status wpm_word(tok_session *s, const char *w, size_t wn, tk_ivec *out) {
    const tk_tokenizer *t = s->t;
    tk_buf *b = &s->aux;
    b->len = 0;
    tk_status st = tk_buf_append(b, "\xE2\x96\x81", 3);
    if (!st) st = tk_buf_append(b, w, wn);
    if (st) return st;
    size_t n = b->len, mark = out->len;
    for (size_t i = 0; i < n; i++) {
        bool match = false;
        size_t jmax = i + (size_t)t->max_token_len + 1;
        if (jmax > n) jmax = n;
        for (size_t j = jmax; j > i; j--) {
            int32_t id = tok_lookup_token(t, b->data + i, j - i);
            if (id >= 0) {
                if ((st = tk_ivec_push(out, id))) return st;
                match = true;
                i = j - 1;
                break;
            }
        }
        if (!match) { out->len = mark; break; }
    }
    if (out->len == mark && t->unk >= 0) return tk_ivec_push(out, t->unk);
    return TK_OK;
}

tk_status tok_wpm_encode(tok_session *s, const char *text, size_t len, tk_ivec *out) {
    const tk_tokenizer *t = s->t;
    const unsigned char *p = (const unsigned char *)text;
    tk_buf *word = &s->text;
    word->len = 0;
    tk_status st;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = tk_utf8_decode(p + i, len - i, &cp);
        i += k;
        if (t->wpm_strip_accents) cp = tk_uni_nfd_first(cp);
        uint8_t f = tk_uni_flags(cp);
        if (f & TK_UF_WHITESPACE) {
            if (word->len && (st = wpm_word(s, word->data, word->len, out))) return st;
            word->len = 0;
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || (f & TK_UF_CONTROL)) continue;
        if (t->wpm_strip_accents && (f & TK_UF_MARK)) continue;
        char u[4];
        int m = tk_utf8_encode(t->wpm_lowercase ? tk_uni_tolower(cp) : cp, u);
        if ((f & TK_UF_PUNCT) || (cp < 0x7F && (f & TK_UF_SYMBOL)) || is_chinese(cp)) {
            if (word->len && (st = wpm_word(s, word->data, word->len, out))) return st;
            if ((st = wpm_word(s, u, (size_t)m, out))) return st;
            word->len = 0;
        } else if ((st = tk_buf_append(word, u, (size_t)m))) return st;
    }
    if (word->len && (st = wpm_word(s, word->data, word->len, out))) return st;
    word->len = 0;
    return TK_OK;
}
