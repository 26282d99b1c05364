/* Vocabulary storage for every tokenizer kind: pieces in one arena, a string -> id hash,
 * the BPE merge table keyed by symbol-id pairs, the special-token list, and llama.cpp's
 * pre-tokenizer definitions per GGUF `tokenizer.ggml.pre` name. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include <stdio.h>

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t v; memcpy(&v, s, 8);
        h = (h ^ v) * 0x100000001B3ULL; h ^= h >> 29;
        s += 8; n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0x100000001B3ULL;
    h ^= h >> 32; h *= 0xd6e8feb86659fd93ULL; h ^= h >> 32;
    return h;
}

tk_tokenizer *tok_new(int32_t n_hint) {
    tk_tokenizer *t = tk_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->bos = t->eos = t->eot = t->eom = t->pad = t->unk = t->sep = -1;
    for (int i = 0; i < 256; i++) t->byte_sym[i] = t->byte_tok[i] = -1;
    int32_t cap = n_hint > 16 ? n_hint : 16;
    t->off = tk_malloc((size_t)cap * sizeof *t->off);
    t->len = tk_malloc((size_t)cap * sizeof *t->len);
    t->score = tk_malloc((size_t)cap * sizeof *t->score);
    t->attr = tk_malloc((size_t)cap * sizeof *t->attr);
    if (!t->off || !t->len || !t->score || !t->attr) { tk_tokenizer_free(t); return NULL; }
    t->cap_total = cap;
    return t;
}

int32_t tok_add_piece(tk_tokenizer *t, const char *s, size_t n, float score, uint16_t attr) {
    if (n > UINT32_MAX / 2 || t->n_total >= INT32_MAX - 1) { tk_fail(TK_ERR_RANGE, "token too long or too many tokens"); return -1; }
    if (t->n_total == t->cap_total) {
        size_t cap = (size_t)t->cap_total * 2;
        if (cap > INT32_MAX) cap = INT32_MAX;
        uint32_t *o = tk_realloc(t->off, cap * sizeof *o); if (!o) return -1; t->off = o;
        uint32_t *l = tk_realloc(t->len, cap * sizeof *l); if (!l) return -1; t->len = l;
        float *sc = tk_realloc(t->score, cap * sizeof *sc); if (!sc) return -1; t->score = sc;
        uint16_t *a = tk_realloc(t->attr, cap * sizeof *a); if (!a) return -1; t->attr = a;
        t->cap_total = (int32_t)cap;
    }
    size_t need;
    if (!tk_add_ok(t->arena_len, n + 1, &need) || need > UINT32_MAX) { tk_fail(TK_ERR_RANGE, "vocabulary text exceeds 4 GiB"); return -1; }
    if (need > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 4096;
        while (cap < need) cap *= 2;
        char *p = tk_realloc(t->arena, cap);
        if (!p) return -1;
        t->arena = p; t->arena_cap = cap;
    }
    int32_t id = t->n_total++;
    t->off[id] = (uint32_t)t->arena_len;
    t->len[id] = (uint32_t)n;
    if (n) memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = 0;
    t->arena_len += n + 1;
    t->score[id] = score;
    t->attr[id] = attr;
    return id;
}

static bool map_eq(const tk_tokenizer *t, int32_t id, const char *s, size_t n) {
    return t->len[id] == n && memcmp(t->arena + t->off[id], s, n) == 0;
}

/* Inserts id; replaces an existing equal key unless keep_first. */
static void map_put(tk_tokenizer *t, int32_t id, bool keep_first) {
    const char *s = tok_piece(t, id);
    size_t n = t->len[id];
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->map.mask;
    for (;;) {
        int32_t cur = t->map.slot[i];
        if (cur < 0) { t->map.slot[i] = id; t->map.used++; return; }
        if (map_eq(t, cur, s, n)) { if (!keep_first) t->map.slot[i] = id; return; }
        i = (i + 1) & t->map.mask;
    }
}

static tk_status map_resize(tk_tokenizer *t, uint32_t want) {
    uint32_t cap = 64;
    while (cap < want * 2) cap *= 2;
    int32_t *old = t->map.slot;
    uint32_t oldcap = old ? t->map.mask + 1 : 0;
    int32_t *slot = tk_malloc((size_t)cap * sizeof *slot);
    if (!slot) return TK_ERR_NOMEM;
    memset(slot, 0xff, (size_t)cap * sizeof *slot);
    t->map.slot = slot; t->map.mask = cap - 1; t->map.used = 0;
    for (uint32_t i = 0; i < oldcap; i++) if (old[i] >= 0) map_put(t, old[i], true);
    free(old);
    return TK_OK;
}

tk_status tok_build_map(tk_tokenizer *t, bool keep_first) {
    free(t->map.slot); t->map.slot = NULL;
    tk_status st = map_resize(t, (uint32_t)t->n_total + 16);
    if (st) return st;
    for (int32_t id = 0; id < t->n_total; id++)
        if (!(t->attr[id] == TKA_UNUSED && t->len[id] == 0)) map_put(t, id, keep_first);
    return TK_OK;
}

int32_t tok_lookup(const tk_tokenizer *t, const char *s, size_t n) {
    if (!t->map.slot) return -1;
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->map.mask;
    for (;;) {
        int32_t cur = t->map.slot[i];
        if (cur < 0) return -1;
        if (map_eq(t, cur, s, n)) return cur;
        i = (i + 1) & t->map.mask;
    }
}

int32_t tok_intern(tk_tokenizer *t, const char *s, size_t n) {
    int32_t id = tok_lookup(t, s, n);
    if (id >= 0) return id;
    if ((t->map.used + 1) * 2 > t->map.mask + 1 && map_resize(t, t->map.used + 1)) return -1;
    id = tok_add_piece(t, s, n, 0.0f, TKA_UNDEFINED);
    if (id < 0) return -1;
    map_put(t, id, true);
    return id;
}

static uint32_t merge_hash(uint64_t k) { k *= 0x9E3779B97F4A7C15ULL; return (uint32_t)(k >> 32) ^ (uint32_t)k; }

tk_status tok_add_merge(tk_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    if ((t->merges.used + 1) * 2 > (t->merges.e ? t->merges.mask + 1 : 0)) {
        uint32_t cap = t->merges.e ? (t->merges.mask + 1) * 2 : 1024;
        tok_merge *e = tk_calloc(cap, sizeof *e);
        if (!e) return TK_ERR_NOMEM;
        tok_merge *old = t->merges.e;
        uint32_t oldcap = old ? t->merges.mask + 1 : 0;
        t->merges.e = e; t->merges.mask = cap - 1;
        for (uint32_t i = 0; i < oldcap; i++) {
            if (!old[i].key) continue;
            uint32_t j = merge_hash(old[i].key) & t->merges.mask;
            while (e[j].key) j = (j + 1) & t->merges.mask;
            e[j] = old[i];
        }
        free(old);
    }
    /* key 0 marks an empty slot: ids are stored +1 */
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
    uint32_t j = merge_hash(key) & t->merges.mask;
    while (t->merges.e[j].key) {
        if (t->merges.e[j].key == key) return TK_OK; /* first occurrence wins, as in llama.cpp */
        j = (j + 1) & t->merges.mask;
    }
    t->merges.e[j].key = key; t->merges.e[j].rank = rank; t->merges.e[j].id = merged;
    t->merges.used++;
    return TK_OK;
}

const tok_merge *tok_find_merge(const tk_tokenizer *t, int32_t a, int32_t b) {
    if (!t->merges.e || a < 0 || b < 0) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
    uint32_t j = merge_hash(key) & t->merges.mask;
    while (t->merges.e[j].key) {
        if (t->merges.e[j].key == key) return &t->merges.e[j];
        j = (j + 1) & t->merges.mask;
    }
    return NULL;
}

int tok_parse_byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

tk_status tok_finish(tk_tokenizer *t) {
    size_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if ((t->attr[id] & (TKA_CONTROL | TKA_USER | TKA_UNKNOWN)) && t->len[id] > 0) n++;
    free(t->specials);
    t->specials = n ? tk_malloc(n * sizeof *t->specials) : NULL;
    if (n && !t->specials) return TK_ERR_NOMEM;
    t->n_specials = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if ((t->attr[id] & (TKA_CONTROL | TKA_USER | TKA_UNKNOWN)) && t->len[id] > 0) t->specials[t->n_specials++] = id;
    /* longest first (ties: lower id first): key = (~len << 32) | id */
    uint64_t *keys = t->n_specials ? tk_malloc(t->n_specials * sizeof *keys) : NULL;
    if (t->n_specials && !keys) return TK_ERR_NOMEM;
    for (size_t i = 0; i < t->n_specials; i++)
        keys[i] = ((uint64_t)(UINT32_MAX - t->len[t->specials[i]]) << 32) | (uint32_t)t->specials[i];
    if (t->n_specials > 1) qsort(keys, t->n_specials, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < t->n_specials; i++) t->specials[i] = (int32_t)(keys[i] & 0xffffffffu);
    free(keys);

    /* end-of-generation set: eos/eot/eom plus llama.cpp's EOG texts that are control tokens */
    static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", NULL};
    t->n_eog = 0;
    int32_t cand[3] = {t->eos, t->eot, t->eom};
    for (int k = 0; k < 3; k++) if (cand[k] >= 0 && cand[k] < t->n_vocab) t->eog[t->n_eog++] = cand[k];
    for (int k = 0; eog_texts[k] && t->n_eog < 16; k++) {
        int32_t id = tok_lookup_token(t, eog_texts[k], strlen(eog_texts[k]));
        if (id >= 0 && (t->attr[id] & TKA_CONTROL)) t->eog[t->n_eog++] = id;
    }

    if (t->model == TOKM_SPM) {
        bool seen[128] = {false};
        for (int32_t id = 0; id < t->n_vocab; id++) {
            if (t->len[id] < 2) continue;
            const unsigned char *q = (const unsigned char *)tok_piece(t, id);
            for (uint32_t i = 0; i < t->len[id]; i++) if (q[i] < 128) seen[q[i]] = true;
        }
        for (int b = 0; b < 128; b++) t->spm_barrier[b] = !seen[b];
    }

    t->max_token_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) if ((int)t->len[id] > t->max_token_len) t->max_token_len = (int)t->len[id];
    for (int b = 0; b < 256; b++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        t->byte_tok[b] = tok_lookup_token(t, hex, 6);
        if (t->byte_level) {
            char u[4];
            int k = tk_utf8_encode(tk_byte_to_cp((uint8_t)b), u);
            t->byte_sym[b] = tok_lookup(t, u, (size_t)k);
            int32_t s = t->byte_sym[b];
            t->byte_ok[b] = s >= 0 && s < t->n_vocab && (t->attr[s] & TKA_NORMAL);
            if (b >= 0x80 && !t->byte_ok[b]) t->bytes_incomplete = true;
        }
    }
    return TK_OK;
}

tk_status tok_compile_regex(const char *pat, size_t n, tok_split_kind kind, pcre2_code **out) {
    uint32_t opt = 0;
    if (kind == PS_RE_HF) opt = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
    else if (kind == PS_RE_WIDE) opt = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY;
    else opt = PCRE2_DOLLAR_ENDONLY; /* collapsed text: one byte per codepoint */
    int err; PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n, opt, &err, &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return tk_fail(TK_ERR_FORMAT, "pre-tokenizer regex '%.*s' does not compile at offset %zu: %s",
                       (int)(n > 200 ? 200 : n), pat, (size_t)erroff, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is the fallback */
    *out = re;
    return TK_OK;
}

tk_status tok_add_split(tk_tokenizer *t, tok_split_kind kind, tok_split_behavior b, bool invert, pcre2_code *re) {
    tok_split *s = tk_realloc(t->splits, (t->n_splits + 1) * sizeof *s);
    if (!s) { if (re) pcre2_code_free(re); return TK_ERR_NOMEM; }
    t->splits = s;
    s[t->n_splits++] = (tok_split){ .kind = kind, .behavior = b, .invert = invert, .re = re };
    return TK_OK;
}

/* ---- llama.cpp pre-tokenizers (src/llama-vocab.cpp, llm_tokenizer_bpe) ---- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"
#define RE_GPT4O "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_TEKKEN "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* DeepSeek LLM letter class (no \p{..}: matched codepoint-wise like std::wregex). */
#define RE_DS_LETTERS "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"
#define RE_DS_PUNCT "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-\xe3\x80\x82]+"
#define RE_CJK_HANGUL "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"
#define RE_CJK_KANA "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+"

typedef struct { const char *names; const char *regex[7]; bool ignore_merges, add_bos; const char *short_name; } llamacpp_pre;

/* Names are '|'-separated; regexes are applied in order, each splitting the pieces of the previous one. */
static const llamacpp_pre k_pre[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false, "default"},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", {RE_LLAMA3}, true, true, "llama3"},
    {"dbrx|smaug-bpe", {RE_LLAMA3}, false, false, NULL},
    {"deepseek-llm", {"[\r\n]", RE_DS_LETTERS, RE_DS_PUNCT, "\\s+$", RE_CJK_HANGUL, "\\p{N}+"}, false, false, "deepseek-llm"},
    {"deepseek-v3", {"\\p{N}{1,3}", RE_CJK_KANA, "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, false, false, "deepseek-v3"},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_HANGUL, "\\p{N}"}, false, false, "deepseek-coder"},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, false, "falcon"},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", {"\\p{N}", RE_GPT2}, false, false, NULL},
    {"gpt-2|phi-2|jina-es|jina-de|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|roberta-bpe|mpt|olmo|jais|gigachat|exaone4|trillion|a.x-4.0|mellum|modern-bert", {RE_GPT2}, false, false, NULL},
    {"qwen2|deepseek-r1-qwen|megrez|stablelm2|hunyuan|kormo", {RE_QWEN2}, false, false, NULL},
    {"poro-chat|bloom|gpt3-finnish", {RE_PORO}, false, false, NULL},
    {"chatglm-bpe|glm4", {RE_LLAMA3}, false, false, NULL},
    {"viking", {RE_PORO, "\\p{N}"}, false, false, "viking"},
    {"tekken", {RE_TEKKEN}, true, true, "tekken"},
    {"chameleon", {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
                   "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2}, false, true, "chameleon"},
    {"gpt-4o|llama4|kanana2", {RE_GPT4O}, false, false, NULL},
    {"seed-coder", {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, false, false, NULL},
};

/* The unicode categories llama.cpp collapses, and what each becomes in the collapsed text. */
static const struct { const char *pat; unsigned char byte; const char *ascii; } k_ucat[] = {
    {"\\p{N}", 0xD1, "0-9"},
    {"\\p{L}", 0xD2, "A-Za-z"},
    {"\\p{P}", 0xD3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", 0xD4, ""},
    {"\\p{S}", 0xD5, "\\$\\+<->^`\\|"},
    {"\\p{Lu}", 0xD2, "A-Za-z"}, {"\\p{Ll}", 0xD2, "A-Za-z"}, {"\\p{Lt}", 0xD2, "A-Za-z"},
    {"\\p{Lm}", 0xD2, "A-Za-z"}, {"\\p{Lo}", 0xD2, "A-Za-z"},
};

/* Rewrites \p{..} classes for matching on collapsed text (llama.cpp unicode_regex_split). Returns malloc'd pattern. */
static char *collapse_regex(const char *re, size_t *outlen) {
    size_t n = strlen(re);
    tk_buf b = {0};
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) { tk_buf_append(&b, "[", 1); inside = true; continue; }
        if (inside && re[i] == ']' && re[i - 1] != '\\') { tk_buf_append(&b, "]", 1); inside = false; continue; }
        if (re[i] == '\\' && i + 3 < n && re[i + 1] == 'p' && re[i + 2] == '{') {
            const char *close = strchr(re + i + 3, '}');
            if (close && (size_t)(close - re) <= i + 10) {
                size_t plen = (size_t)(close - re) - i + 1;
                size_t k;
                for (k = 0; k < sizeof k_ucat / sizeof k_ucat[0]; k++)
                    if (strlen(k_ucat[k].pat) == plen && memcmp(k_ucat[k].pat, re + i, plen) == 0) break;
                if (k < sizeof k_ucat / sizeof k_ucat[0]) {
                    if (!inside) tk_buf_append(&b, "[", 1);
                    tk_buf_append(&b, &k_ucat[k].byte, 1);
                    tk_buf_append(&b, k_ucat[k].ascii, strlen(k_ucat[k].ascii));
                    if (!inside) tk_buf_append(&b, "]", 1);
                    i = (size_t)(close - re);
                    continue;
                }
            }
        }
        tk_buf_append(&b, re + i, 1);
    }
    if (!b.data) { *outlen = 0; return tk_strdup(""); }
    *outlen = b.len;
    return b.data;
}

static bool uses_categories(const char *re) {
    for (size_t k = 0; k < sizeof k_ucat / sizeof k_ucat[0]; k++) if (strstr(re, k_ucat[k].pat)) return true;
    return false;
}

static bool name_in(const char *names, const char *pre) {
    size_t n = strlen(pre);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, pre, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* For a collapsed-text step whose regex is a single character class: the set of bytes it
 * matches, taken from the compiled regex itself (each byte alone must match as one whole
 * character, and in a two-byte subject only the first byte). */
static tk_status one_char_set(tok_split *sp) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return TK_ERR_NOMEM;
    memset(sp->one_set, 0, sizeof sp->one_set);
    bool ok = true;
    for (int b = 0; b < 256 && ok; b++) {
        unsigned char subj[2] = { (unsigned char)b, (unsigned char)b };
        int rc = pcre2_match(sp->re, subj, 1, 0, PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) continue;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (rc < 0 || ov[0] != 0 || ov[1] != 1) { ok = false; break; }
        rc = pcre2_match(sp->re, subj, 2, 0, PCRE2_NO_JIT, md, NULL);
        if (rc < 0 || ov[0] != 0 || ov[1] != 1) { ok = false; break; }
        sp->one_set[b >> 6] |= 1ull << (b & 63);
    }
    pcre2_match_data_free(md);
    sp->one_char = ok;
    return TK_OK;
}

tk_status tok_set_llamacpp_pre(tk_tokenizer *t, const char *pre) {
    if (!pre || !*pre) pre = "default";
    const llamacpp_pre *p = NULL;
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0] && !p; i++) if (name_in(k_pre[i].names, pre)) p = &k_pre[i];
    if (!p) return tk_fail(TK_ERR_UNSUPPORTED, "unknown pre-tokenizer type '%s' (tokenizer.ggml.pre)", pre);
    snprintf(t->pre_name, sizeof t->pre_name, "%s", p->short_name ? p->short_name : pre);
    t->ignore_merges = p->ignore_merges;
    t->add_bos = p->add_bos;
    for (int i = 0; i < 7 && p->regex[i]; i++) {
        const char *re = p->regex[i];
        tk_status st;
        if (!strcmp(re, RE_GPT2)) st = tok_add_split(t, PS_GPT2, SB_ISOLATED, false, NULL);
        else if (!strcmp(re, RE_LLAMA3)) st = tok_add_split(t, PS_LLAMA3, SB_ISOLATED, false, NULL);
        else if (uses_categories(re)) {
            for (const unsigned char *c = (const unsigned char *)re; *c; c++)
                if (*c >= 0x80) return tk_fail(TK_ERR_INTERNAL, "pre-tokenizer '%s': regex mixes categories and non-ASCII", pre);
            size_t n; char *cre = collapse_regex(re, &n);
            if (!cre) return TK_ERR_NOMEM;
            pcre2_code *code = NULL;
            st = tok_compile_regex(cre, n, PS_RE_COLLAPSED, &code);
            free(cre);
            if (!st) st = tok_add_split(t, PS_RE_COLLAPSED, SB_ISOLATED, false, code);
            if (!st && !strcmp(re, "\\p{N}")) st = one_char_set(&t->splits[t->n_splits - 1]);
        } else {
            pcre2_code *code = NULL;
            st = tok_compile_regex(re, strlen(re), PS_RE_WIDE, &code);
            if (!st) st = tok_add_split(t, PS_RE_WIDE, SB_ISOLATED, false, code);
        }
        if (st) return st;
    }
    return TK_OK;
}
