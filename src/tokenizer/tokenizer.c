/* Public tokenizer API: special-token splitting (llama.cpp tokenizer_st_partition),
 * dispatch of the text fragments to the model's encoder, BOS/EOS handling, decoding,
 * the streaming decoder, and tk_tokenizer_load (path -> the right loader). */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include <stdio.h>
#include <sys/stat.h>

void tk_tokenizer_free(tk_tokenizer *t) {
    if (!t) return;
    free(t->arena); free(t->off); free(t->len); free(t->score); free(t->attr);
    free(t->map.slot); free(t->merges.e); free(t->specials);
    for (size_t i = 0; i < t->n_splits; i++) if (t->splits[i].re) pcre2_code_free(t->splits[i].re);
    free(t->splits);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].a); free(t->norms[i].b);
        if (t->norms[i].re) pcre2_code_free(t->norms[i].re);
    }
    free(t->norms);
    free(t->chat_template);
    free(t);
}

tk_tokenizer_kind tk_tokenizer_kind_of(const tk_tokenizer *t) { return t->kind; }
const char *tk_tokenizer_pre_name(const tk_tokenizer *t) { return t->pre_name; }
int32_t tk_tokenizer_n_vocab(const tk_tokenizer *t) { return t->n_vocab; }
int32_t tk_tokenizer_bos(const tk_tokenizer *t) { return t->bos; }
int32_t tk_tokenizer_eos(const tk_tokenizer *t) { return t->eos; }
int32_t tk_tokenizer_eot(const tk_tokenizer *t) { return t->eot >= 0 ? t->eot : t->eos; }
int32_t tk_tokenizer_pad(const tk_tokenizer *t) { return t->pad; }
int32_t tk_tokenizer_unk(const tk_tokenizer *t) { return t->unk; }
bool tk_tokenizer_is_eog(const tk_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eog; i++) if (t->eog[i] == id) return true;
    return false;
}
bool tk_tokenizer_adds_bos(const tk_tokenizer *t) { return t->model == TOKM_WPM ? t->bos >= 0 : t->add_bos && t->bos >= 0; }
bool tk_tokenizer_adds_eos(const tk_tokenizer *t) { return t->add_eos && t->eos >= 0; }
const char *tk_tokenizer_chat_template(const tk_tokenizer *t) { return t->chat_template; }

bool tk_tokenizer_is_special(const tk_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & (TKA_CONTROL | TKA_UNKNOWN));
}

int32_t tk_tokenizer_find(const tk_tokenizer *t, const char *s) {
    return s ? tok_lookup_token(t, s, strlen(s)) : -1;
}

const char *tk_tokenizer_piece(const tk_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->len[id];
    return tok_piece(t, id);
}

/* ---------------------------------------------------------------- encode */

typedef struct { int32_t id; uint32_t off, len; } frag; /* id >= 0: a token; else text[off, off+len) */

static bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static tk_status frag_push(frag **v, size_t *n, size_t *cap, frag f) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        frag *p = tk_realloc(*v, c * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        *v = p; *cap = c;
    }
    (*v)[(*n)++] = f;
    return TK_OK;
}

/* Presence filter over the text's byte trigrams: a special token whose first three bytes never
 * occur in the text cannot match (vocabularies such as DeepSeek's carry thousands of
 * user-defined tokens; without it every one of them is searched for). */
#define TRI_BITS 18
static inline uint32_t tri_hash(const unsigned char *p) {
    uint64_t v = ((uint64_t)p[0] << 16) | ((uint64_t)p[1] << 8) | p[2];
    return (uint32_t)((v * 0x9E3779B97F4A7C15ULL) >> (64 - TRI_BITS));
}

/* Splits text at special tokens, longest token first over the whole text (llama.cpp order). */
static tk_status partition(const tk_tokenizer *t, const char *text, size_t len, bool parse_special,
                           frag **out, size_t *nout) {
    frag *a = NULL, *b = NULL;
    size_t na = 0, ca = 0, nb = 0, cb = 0;
    tk_status st = TK_OK;
    uint64_t *tri = NULL;
    if (len && (st = frag_push(&a, &na, &ca, (frag){-1, 0, (uint32_t)len}))) goto done;
    size_t active = 0;
    for (size_t k = 0; k < t->n_specials; k++)
        active += parse_special || !(t->attr[t->specials[k]] & (TKA_CONTROL | TKA_UNKNOWN));
    if (active > 16 && len > 64) {
        tri = tk_calloc((1u << TRI_BITS) / 64, sizeof *tri);
        if (!tri) { st = TK_ERR_NOMEM; goto done; }
        const unsigned char *u = (const unsigned char *)text;
        for (size_t i = 0; i + 3 <= len; i++) { uint32_t h = tri_hash(u + i); tri[h >> 6] |= 1ull << (h & 63); }
    }
    for (size_t k = 0; k < t->n_specials && na; k++) {
        int32_t id = t->specials[k];
        uint16_t attr = t->attr[id];
        if (!parse_special && (attr & (TKA_CONTROL | TKA_UNKNOWN))) continue;
        const char *pc = tok_piece(t, id);
        size_t pl = t->len[id];
        if (pl > len) continue;
        if (tri && pl >= 3) {
            uint32_t h = tri_hash((const unsigned char *)pc);
            if (!(tri[h >> 6] & (1ull << (h & 63)))) continue;
            h = tri_hash((const unsigned char *)pc + pl - 3);
            if (!(tri[h >> 6] & (1ull << (h & 63)))) continue;
        }
        nb = 0;
        for (size_t i = 0; i < na; i++) {
            if (a[i].id >= 0) { if ((st = frag_push(&b, &nb, &cb, a[i]))) goto done; continue; }
            size_t off = a[i].off, l = a[i].len;
            while (l > 0) {
                const char *m = memmem(text + off, l, pc, pl);
                if (!m) { if ((st = frag_push(&b, &nb, &cb, (frag){-1, (uint32_t)off, (uint32_t)l}))) goto done; break; }
                size_t mpos = (size_t)(m - text), left = mpos - off;
                if (attr & TKA_LSTRIP) while (left > 0 && c_isspace(text[off + left - 1])) left--;
                if (left && (st = frag_push(&b, &nb, &cb, (frag){-1, (uint32_t)off, (uint32_t)left}))) goto done;
                if ((st = frag_push(&b, &nb, &cb, (frag){id, 0, 0}))) goto done;
                size_t roff = mpos + pl, rlen = off + l - roff;
                if (attr & TKA_RSTRIP) while (rlen > 0 && c_isspace(text[roff])) { roff++; rlen--; }
                off = roff; l = rlen;
            }
        }
        frag *tf = a; a = b; b = tf;
        size_t tc = ca; ca = cb; cb = tc;
        na = nb;
    }
done:
    free(b);
    free(tri);
    if (st) { free(a); return st; }
    *out = a; *nout = na;
    return TK_OK;
}

tk_status tk_tokenize(const tk_tokenizer *t, const char *text, size_t len, int flags, tk_ivec *out) {
    if (!t || !out || (!text && len)) return tk_fail(TK_ERR_ARG, "tk_tokenize: NULL argument");
    if (len > UINT32_MAX / 4) return tk_fail(TK_ERR_RANGE, "tk_tokenize: text of %zu bytes is too long (limit 1 GiB)", len);
    tok_session *s = tok_session_get(t);
    if (!s) return TK_ERR_NOMEM;
    frag *f = NULL;
    size_t nf = 0;
    size_t len0 = out->len;
    tk_status st = partition(t, text, len, (flags & TK_TOK_PARSE_SPECIAL) != 0, &f, &nf);
    if (st) return st;
    bool add = (flags & TK_TOK_ADD_SPECIAL) != 0;
    if (add) {
        if (t->model == TOKM_WPM ? t->bos >= 0 : (t->add_bos && t->bos >= 0)) st = tk_ivec_push(out, t->bos);
    }
    bool first = true, after_special = false;
    for (size_t i = 0; i < nf && !st; i++) {
        if (f[i].id >= 0) { st = tk_ivec_push(out, f[i].id); after_special = true; }
        else { st = tok_encode_fragment(s, text + f[i].off, f[i].len, first, after_special, out); after_special = false; }
        first = false;
    }
    if (!st && add) {
        if (t->model == TOKM_WPM) { if (t->sep >= 0) st = tk_ivec_push(out, t->sep); }
        else if (t->add_eos && t->eos >= 0) st = tk_ivec_push(out, t->eos);
    }
    free(f);
    if (st) out->len = len0;
    return st;
}

/* ---------------------------------------------------------------- decode */

/* Appends the text of one token; strip: drop one leading space (the dummy prefix). */
static tk_status append_piece(const tk_tokenizer *t, int32_t id, bool skip_special, bool strip, tk_buf *out) {
    if (id < 0 || id >= t->n_vocab) return tk_fail(TK_ERR_RANGE, "token id %d is outside the vocabulary (0..%d)", id, t->n_vocab - 1);
    uint16_t a = t->attr[id];
    const char *p = tok_piece(t, id);
    size_t n = t->len[id];
    if (a & (TKA_CONTROL | TKA_UNKNOWN)) return skip_special ? TK_OK : tk_buf_append(out, p, n);
    if (a & TKA_USER) return tk_buf_append(out, p, n);
    if (a & TKA_BYTE) {
        int b = tok_parse_byte_piece(p, n);
        if (b >= 0) {
            if (strip && b == ' ') return TK_OK;
            char c = (char)b;
            return tk_buf_append(out, &c, 1);
        }
        return tk_buf_append(out, p, n);
    }
    if (!(a & TKA_NORMAL)) return TK_OK; /* unused / undefined tokens render as nothing (llama.cpp) */
    tk_status st = tk_buf_reserve(out, n + 1);
    if (st) return st;
    if (t->byte_level) {
        const unsigned char *q = (const unsigned char *)p;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = tk_utf8_decode(q + i, n - i, &cp);
            int b = k > 1 || cp < 0x80 ? tk_cp_to_byte(cp) : -1;
            if (b >= 0) {
                if (!(strip && b == ' ' && i == 0)) { char c = (char)b; if ((st = tk_buf_append(out, &c, 1))) return st; }
            } else if ((st = tk_buf_append(out, p + i, k))) return st; /* not a byte character: keep as is */
            i += k;
        }
        return TK_OK;
    }
    if (t->decode_metaspace) {
        size_t i = 0;
        if (strip) {
            if (n >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0) i = 3;
            else if (n >= 1 && p[0] == ' ') i = 1;
        }
        while (i < n) {
            if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) { if ((st = tk_buf_append(out, " ", 1))) return st; i += 3; }
            else { if ((st = tk_buf_append(out, p + i, 1))) return st; i++; }
        }
        return TK_OK;
    }
    if (strip && n && p[0] == ' ') { p++; n--; }
    return tk_buf_append(out, p, n);
}

/* Whether the piece after prev gets its dummy-prefix space removed (prev < 0: start of text). */
static bool strip_after(const tk_tokenizer *t, int32_t prev) {
    if (!t->strip_prefix_on_decode) return false;
    if (prev < 0) return true;
    if (t->prefix_first_only) return false;
    return prev < t->n_vocab && (t->attr[prev] & (TKA_CONTROL | TKA_UNKNOWN | TKA_USER));
}

tk_status tk_detokenize(const tk_tokenizer *t, const int32_t *ids, size_t n, bool skip_special, tk_buf *out) {
    if (!t || !out || (!ids && n)) return tk_fail(TK_ERR_ARG, "tk_detokenize: NULL argument");
    size_t len0 = out->len;
    tk_status st = tk_buf_append(out, "", 0);
    for (size_t i = 0; i < n && !st; i++)
        st = append_piece(t, ids[i], skip_special, strip_after(t, i ? ids[i - 1] : -1), out);
    if (st) { out->len = len0; if (out->data) out->data[len0] = 0; }
    return st;
}

tk_status tk_token_bytes(const tk_tokenizer *t, int32_t id, int32_t prev, tk_buf *out) {
    if (!t || !out) return tk_fail(TK_ERR_ARG, "tk_token_bytes: NULL argument");
    size_t len0 = out->len;
    tk_status st = tk_buf_append(out, "", 0);
    if (!st) st = append_piece(t, id, false, strip_after(t, prev), out);
    if (st) { out->len = len0; if (out->data) out->data[len0] = 0; }
    return st;
}

/* ---------------------------------------------------------------- streaming decode */

void tk_detok_stream_init(tk_detok_stream *s, const tk_tokenizer *t) {
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->prev = -1;
}

static const char k_replacement[] = "\xEF\xBF\xBD";

/* Expected length of a UTF-8 sequence from its lead byte; 0 for a byte that cannot start one. */
static int utf8_need(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Feeds bytes through the UTF-8 assembler: complete characters go to out, an incomplete tail
 * stays pending, bytes that can never form a character become U+FFFD. */
static tk_status stream_bytes(tk_detok_stream *s, const char *p, size_t n, tk_buf *out) {
    tk_status st = TK_OK;
    for (size_t i = 0; i < n && !st; i++) {
        unsigned char c = (unsigned char)p[i];
        if (s->n_pending == 0) {
            if (c < 0x80) {
                size_t j = i;
                while (j < n && (unsigned char)p[j] < 0x80) j++;
                st = tk_buf_append(out, p + i, j - i);
                i = j - 1;
                continue;
            }
            if (utf8_need(c) == 0) { st = tk_buf_append(out, k_replacement, 3); continue; }
            s->pending[s->n_pending++] = (char)c;
            continue;
        }
        if ((c & 0xC0) != 0x80) { /* the pending sequence is cut short */
            s->n_pending = 0;
            st = tk_buf_append(out, k_replacement, 3);
            i--; /* reprocess c */
            continue;
        }
        s->pending[s->n_pending++] = (char)c;
        int need = utf8_need((unsigned char)s->pending[0]);
        if (s->n_pending == need) {
            uint32_t cp;
            size_t k = tk_utf8_decode((const unsigned char *)s->pending, (size_t)need, &cp);
            if (k == (size_t)need && cp != TK_UNI_INVALID) st = tk_buf_append(out, s->pending, (size_t)need);
            else st = tk_buf_append(out, k_replacement, 3);
            s->n_pending = 0;
        }
    }
    return st;
}

tk_status tk_detok_stream_push(tk_detok_stream *s, int32_t id, tk_buf *out) {
    const tk_tokenizer *t = s->tok;
    tk_buf piece = {0};
    tk_status st = append_piece(t, id, false, strip_after(t, s->prev), &piece);
    if (!st) st = tk_buf_append(out, "", 0);
    if (!st) st = stream_bytes(s, piece.data, piece.len, out);
    tk_buf_free(&piece);
    if (!st) s->prev = id;
    return st;
}

tk_status tk_detok_stream_flush(tk_detok_stream *s, tk_buf *out) {
    tk_status st = tk_buf_append(out, "", 0);
    if (!st && s->n_pending) st = tk_buf_append(out, k_replacement, 3);
    s->n_pending = 0;
    return st;
}

/* ---------------------------------------------------------------- loading by path */

static bool is_dir(const char *p) { struct stat sb; return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode); }
static bool is_file(const char *p) { struct stat sb; return stat(p, &sb) == 0 && S_ISREG(sb.st_mode); }

static bool has_magic(const char *path, const char *magic) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char b[4] = {0};
    size_t n = fread(b, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(b, magic, 4) == 0;
}

/* tokenizer_config.json next to a tokenizer.json, if present (malloc'd path or NULL). */
static char *sibling_config(const char *json_path) {
    const char *slash = strrchr(json_path, '/');
    size_t dl = slash ? (size_t)(slash - json_path) + 1 : 0;
    char *p = tk_malloc(dl + 32);
    if (!p) return NULL;
    memcpy(p, json_path, dl);
    strcpy(p + dl, "tokenizer_config.json");
    if (!is_file(p)) { free(p); return NULL; }
    return p;
}

static tk_status load_hf_folder(const char *dir, tk_tokenizer **out) {
    size_t n = strlen(dir);
    char *tj = tk_malloc(n + 32), *tc = tk_malloc(n + 32);
    if (!tj || !tc) { free(tj); free(tc); return TK_ERR_NOMEM; }
    snprintf(tj, n + 32, "%s/tokenizer.json", dir);
    snprintf(tc, n + 32, "%s/tokenizer_config.json", dir);
    tk_status st;
    if (!is_file(tj)) st = tk_fail(TK_ERR_NOT_FOUND, "%s: no tokenizer.json in this folder", dir);
    else st = tk_tokenizer_from_hf(tj, is_file(tc) ? tc : NULL, out);
    free(tj); free(tc);
    return st;
}

static tk_status load_tokenizer_file(const char *path, tk_tokenizer **out) {
    if (is_dir(path)) return load_hf_folder(path, out);
    if (!is_file(path)) return tk_fail(TK_ERR_NOT_FOUND, "%s: no such tokenizer file", path);
    if (has_magic(path, "GGUF")) {
        tk_gguf *g = NULL;
        tk_status st = tk_gguf_open(path, &g);
        if (st) return st;
        st = tk_tokenizer_from_gguf(g, out);
        tk_gguf_close(g);
        return st;
    }
    if (tk_ends_with(path, ".json")) {
        char *cfg = sibling_config(path);
        tk_status st = tk_tokenizer_from_hf(path, cfg, out);
        free(cfg);
        return st;
    }
    if (tk_ends_with(path, ".model"))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: SentencePiece .model files are not read directly; use the GGUF, tokenizer.json or llama2.c tokenizer.bin", path);
    return tk_tokenizer_from_llama2c(path, out);
}

/* Vocabulary size from a llama2.c checkpoint header (7 int32: dim, hidden, layers, heads, kv heads, vocab, seq); 0 if not one. */
static int32_t llama2c_vocab(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int32_t h[7];
    size_t n = fread(h, sizeof h[0], 7, f);
    fclose(f);
    if (n != 7) return 0;
    for (int i = 0; i < 7; i++) if (i != 5 && (h[i] <= 0 || h[i] > (1 << 24))) return 0;
    if (h[5] == INT32_MIN) return 0;
    int32_t v = h[5] < 0 ? -h[5] : h[5];
    return v > 0 && v <= (1 << 24) ? v : 0;
}

tk_status tk_tokenizer_load(const char *model_path, const char *tokenizer_path, tk_tokenizer **out) {
    if (!out) return tk_fail(TK_ERR_ARG, "tk_tokenizer_load: out is NULL");
    *out = NULL;
    if (!model_path && !tokenizer_path) return tk_fail(TK_ERR_ARG, "tk_tokenizer_load: no model or tokenizer path");
    if (tokenizer_path) {
        tk_status st = load_tokenizer_file(tokenizer_path, out);
        if (st) return st;
        /* A llama2.c checkpoint names its vocabulary size: the tokenizer must cover it. */
        if (model_path && is_file(model_path) && !has_magic(model_path, "GGUF") && !tk_ends_with(model_path, ".safetensors")) {
            int32_t v = llama2c_vocab(model_path);
            int32_t have = (*out)->n_vocab;
            if (v > 0 && v != have) {
                tk_tokenizer_free(*out); *out = NULL;
                return tk_fail(TK_ERR_FORMAT, "%s: tokenizer has %d tokens but the model %s expects %d",
                               tokenizer_path, have, model_path, v);
            }
        }
        return TK_OK;
    }
    if (is_dir(model_path)) return load_hf_folder(model_path, out);
    if (!is_file(model_path)) return tk_fail(TK_ERR_NOT_FOUND, "%s: no such model file or folder", model_path);
    if (has_magic(model_path, "GGUF") || tk_ends_with(model_path, ".json")) return load_tokenizer_file(model_path, out);
    return tk_fail(TK_ERR_ARG, "%s: not a GGUF file or HF folder; for a llama2.c checkpoint pass its tokenizer.bin (--tokenizer)", model_path);
}
