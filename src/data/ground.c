/* The grounding check of synthesized answers: every fact of the answer must appear in its chunk.
 * Facts are numbers (digits joined by . , : / -; thousands commas ignored; a range "2-4" may match
 * its parts), names (words with a capital letter that do not start a sentence, and words with
 * accented Latin letters; case-insensitive whole words, a plural "s" or "'s" tolerated), and runs
 * of two or more kanji/katakana/hangul (checked only when the chunk has such text: an English
 * chunk's Japanese question cannot match it letter for letter, its numbers and Latin names still
 * must). Dates are numbers and month names, so they are covered. An answer without such facts must
 * still be about the chunk: at least half of its content words (4+ Latin letters, common words
 * aside) must start a chunk word, stem-wise, when it has 3 or more. */
#include "data/docs_internal.h"
#include "tokenizer/unicode.h"
#include <ctype.h>

const char *tk_ground_name(tk_ground g) {
    static const char *const n[] = {"ok", "number_not_in_chunk", "name_not_in_chunk", "word_not_in_chunk", "not_supported"};
    return (unsigned)g < sizeof n / sizeof *n ? n[g] : "unknown";
}

static bool digit(char c) { return c >= '0' && c <= '9'; }
static bool num_sep(char c) { return c == '.' || c == ',' || c == ':' || c == '/' || c == '-'; }

/* The number starting at s[*i] (a digit not preceded by a digit), normalised (commas dropped) into t; advances *i. */
static size_t number(const char *s, size_t n, size_t *i, char *t, size_t cap) {
    size_t k = 0, j = *i;
    while (j < n) {
        if (digit(s[j])) { if (k + 1 < cap) t[k++] = s[j]; j++; }
        else if (num_sep(s[j]) && j + 1 < n && digit(s[j + 1]) && j > *i) { if (s[j] != ',' && k + 1 < cap) t[k++] = s[j]; j++; }
        else break;
    }
    t[k] = 0;
    *i = j;
    return k;
}

/* Whether number t (normalised) is among the chunk's numbers or, split at - and /, among their parts. */
static bool in_list(const tk_buf *nums, const char *t, size_t tl) {
    for (size_t p = 0; p < nums->len;) {
        size_t l = strlen(nums->data + p);
        if (l == tl && !memcmp(nums->data + p, t, tl)) return true;
        p += l + 1;
    }
    return false;
}

static tk_status collect_numbers(const char *s, tk_buf *nums) {
    size_t n = strlen(s);
    char t[64];
    tk_status st = TK_OK;
    for (size_t i = 0; i < n && !st;) {
        if (!digit(s[i]) || (i && digit(s[i - 1]))) { i++; continue; }
        size_t tl = number(s, n, &i, t, sizeof t);
        st = tk_buf_append(nums, t, tl + 1);
        for (size_t a = 0, b = 0; !st && b <= tl; b++)   /* and its parts between - and / */
            if (b == tl || t[b] == '-' || t[b] == '/') {
                if (b > a && b - a < tl) st = tk_buf_append(nums, t + a, b - a), st = st ? st : tk_buf_append(nums, "", 1);
                a = b + 1;
            }
    }
    return st;
}

static bool number_ok(const tk_buf *nums, const char *t, size_t tl) {
    if (in_list(nums, t, tl)) return true;
    bool split = false;
    for (size_t b = 0; b < tl; b++) split = split || t[b] == '-' || t[b] == '/';
    if (!split) return false;
    for (size_t a = 0, b = 0; b <= tl; b++)
        if (b == tl || t[b] == '-' || t[b] == '/') {
            if (b > a && !in_list(nums, t + a, b - a)) return false;
            a = b + 1;
        }
    return true;
}

static bool latin_letter(uint32_t c) {
    return (c < 128 && isalpha((int)c)) || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}
static bool cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x30A0 && c <= 0x30FF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF);
}

/* Case-insensitive (ASCII) whole-word search of w[0..wl) in s; a chunk word may extend w (plural "Saturdays"). */
static bool word_in(const char *s, const char *w, size_t wl) {
    size_t n = strlen(s);
    for (size_t i = 0; i + wl <= n; i++) {
        if (i && (isalnum((unsigned char)s[i - 1]) || ((unsigned char)s[i - 1] & 0x80))) continue;
        if (strncasecmp(s + i, w, wl)) continue;
        size_t e = i + wl;
        if (e == n || !isalnum((unsigned char)s[e]) || s[e] == 's' || s[e] == 'S') return true;
    }
    return false;
}

static bool name_ok(const char *chunk, const char *w, size_t wl) {
    if (word_in(chunk, w, wl)) return true;
    if (wl > 2 && !strncmp(w + wl - 2, "'s", 2)) return word_in(chunk, w, wl - 2);
    if (wl > 3 && (w[wl - 1] == 's' || w[wl - 1] == 'S')) return word_in(chunk, w, wl - 1);
    return false;
}

static void copy_fact(char *fact, size_t cap, const char *s, size_t n) {
    if (!fact || !cap) return;
    if (n >= cap) n = cap - 1;
    while (n && ((unsigned char)s[n] & 0xC0) == 0x80) n--;   /* whole characters */
    memcpy(fact, s, n);
    fact[n] = 0;
}

static bool common(const char *w, size_t n) {
    static const char *const c[] = {"this", "that", "with", "from", "have", "will", "your", "what", "when", "where", "which", "there",
                                    "their", "they", "them", "then", "than", "been", "were", "also", "into", "about", "would", "could",
                                    "should", "does", "just", "only", "very", "more", "most", "some", "such", "each", "other", "these",
                                    "those", "here", "sure", "yes", "can", "please", "thank", "thanks", "answer", "question", NULL};
    for (int k = 0; c[k]; k++)
        if (strlen(c[k]) == n && !strncasecmp(c[k], w, n)) return true;
    return false;
}

/* Whether a chunk word starts with the first max(4, n-3) letters of w (case-insensitive). */
static bool stem_in(const char *chunk, const char *w, size_t n) {
    size_t k = n > 7 ? n - 3 : 4;
    size_t cn = strlen(chunk);
    for (size_t i = 0; i + k <= cn; i++)
        if ((i == 0 || !isalpha((unsigned char)chunk[i - 1])) && !strncasecmp(chunk + i, w, k)) return true;
    return false;
}

/* At least half of answer's content words (when it has 3 or more) are in the chunk. */
static bool supported(const char *answer, const char *chunk) {
    size_t words = 0, found = 0;
    for (const char *p = answer; *p;) {
        if (!isalpha((unsigned char)*p)) { p++; continue; }
        const char *w = p;
        while (isalpha((unsigned char)*p)) p++;
        size_t n = (size_t)(p - w);
        if ((*p & 0x80) || (w > answer && (w[-1] & 0x80)) || n < 4 || common(w, n)) continue;   /* part of a non-ASCII word */
        words++;
        found += stem_in(chunk, w, n);
    }
    return words < 3 || 2 * found >= words;
}

bool tk_text_is_cjk(const char *s) {
    size_t n = strlen(s ? s : ""), c = 0, l = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        c += cjk(cp) || (cp >= 0x3040 && cp <= 0x309F);   /* hiragana too */
        l += latin_letter(cp);
    }
    return c > l;
}

tk_ground tk_ground_check(const char *answer, const char *chunk, char *fact, size_t fact_cap) {
    if (fact && fact_cap) fact[0] = 0;
    if (!answer || !chunk) return TK_GROUND_OK;
    tk_buf nums = {0};
    if (collect_numbers(chunk, &nums)) { tk_buf_free(&nums); return TK_GROUND_NUMBER; }   /* no memory: refuse, never pass unchecked */
    size_t n = strlen(answer), cn = strlen(chunk);
    bool chunk_cjk = false;
    for (size_t i = 0; i < cn && !chunk_cjk;) {
        uint32_t c;
        i += tk_utf8_decode((const unsigned char *)chunk + i, cn - i, &c);
        chunk_cjk = cjk(c);
    }
    tk_ground res = TK_GROUND_OK;
    bool sentence_start = true;
    size_t facts = 0;   /* numbers and names found in the chunk */
    char t[64];
    for (size_t i = 0; i < n && !res;) {
        uint32_t c;
        size_t l = tk_utf8_decode((const unsigned char *)answer + i, n - i, &c);
        if (digit(answer[i])) {
            size_t a = i, tl = number(answer, n, &i, t, sizeof t);
            if (!number_ok(&nums, t, tl)) { res = TK_GROUND_NUMBER; copy_fact(fact, fact_cap, answer + a, i - a); }
            facts++;
            sentence_start = false;
            continue;
        }
        if (latin_letter(c)) {
            size_t a = i;
            bool upper = (c < 128 && isupper((int)c)) || (c >= 0xC0 && c <= 0xDE), accented = c >= 128;
            i += l;
            while (i < n) {
                uint32_t d;
                size_t dl = tk_utf8_decode((const unsigned char *)answer + i, n - i, &d);
                if (latin_letter(d) || digit(answer[i])) { accented = accented || d >= 128; upper = upper || (d < 128 && isupper((int)d) && i > a); i += dl; }
                else if (answer[i] == '\'' && i + 1 < n && isalpha((unsigned char)answer[i + 1])) i++;
                else break;
            }
            bool lone_i = i - a == 1 && answer[a] == 'I';
            bool check = accented || (upper && !sentence_start && !lone_i);
            if (check && !name_ok(chunk, answer + a, i - a)) { res = TK_GROUND_NAME; copy_fact(fact, fact_cap, answer + a, i - a); }
            facts += i - a >= 2 && name_ok(chunk, answer + a, i - a);
            sentence_start = false;
            continue;
        }
        if (cjk(c)) {
            size_t a = i, k = 0;
            while (i < n) {
                uint32_t d;
                size_t dl = tk_utf8_decode((const unsigned char *)answer + i, n - i, &d);
                if (!cjk(d)) break;
                i += dl, k++;
            }
            if (chunk_cjk && k >= 2) {
                bool found = false;
                for (size_t p = 0; p + (i - a) <= cn && !found; p++) found = !memcmp(chunk + p, answer + a, i - a);
                if (!found) { res = TK_GROUND_SCRIPT; copy_fact(fact, fact_cap, answer + a, i - a); }
                facts += found;
            }
            sentence_start = false;
            continue;
        }
        /* sentence ends: . ! ? : and their full-width forms, a line break; a bullet or number of a list keeps it */
        if (c == '.' || c == '!' || c == '?' || c == ':' || c == '\n' || c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0xFF1A)
            sentence_start = true;
        i += l;
    }
    tk_buf_free(&nums);
    if (!res && !supported(answer, chunk)) res = TK_GROUND_UNSUPPORTED;
    if (!res && !facts && tk_text_is_cjk(answer)) res = TK_GROUND_UNSUPPORTED;
    return res;
}
