/* Chat rendering to tokens with per-token provenance (which message, which role, trained
 * on or not), and choosing a model's template family.
 *
 * Template markers become their special token when the tokenizer has one; everything between
 * two special tokens is tokenized as one text without special-token parsing, which equals
 * tokenizing the whole rendered text with parsing (as the reference implementations do)
 * except that message content can never turn into control tokens. Special tokens that strip
 * the whitespace next to them (llama.cpp's Phi-3 tokens, HF added tokens with lstrip/rstrip)
 * are found by probing the tokenizer, and that whitespace is dropped from the neighbouring
 * text as whole-text tokenization drops it. Each token then goes to the span it came from;
 * a token that straddles two spans goes to the later one.
 *
 * Known divergence: an HF tokenizer whose Metaspace pre-tokenizer prepends "▁" only to the
 * first piece of a text (prepend_scheme "first") gives every run here that prefix, where
 * whole-text tokenization gives it only at the start (no family takumi renders ships one). */
#include "core/core.h"
#include "tokenizer/chat_internal.h"

/* Whitespace as the tokenizers' lstrip/rstrip see it (ASCII, like llama.cpp). */
static bool strip_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Whether special token id eats the whitespace before (left) / after (right) it: probed by
 * tokenizing its text with a newline on that side. Cached per rendering. */
typedef struct { int32_t id; bool l, r; } strip_probe;

static tk_status probe_strip(const tk_tokenizer *tok, int32_t id, strip_probe *cache, size_t *n, size_t cap, strip_probe *out) {
    for (size_t i = 0; i < *n; i++) if (cache[i].id == id) { *out = cache[i]; return TK_OK; }
    size_t plen;
    const char *piece = tk_tokenizer_piece(tok, id, &plen);
    strip_probe p = {id, false, false};
    if (piece && plen) {
        tk_buf b = {0};
        tk_ivec v = {0};
        tk_status st = tk_buf_append(&b, "\n", 1);
        if (!st) st = tk_buf_append(&b, piece, plen);
        if (!st) st = tk_buf_append(&b, "\n", 1);
        if (!st) st = tk_tokenize(tok, b.data, plen + 1, TK_TOK_PARSE_SPECIAL, &v);       /* "\n" + piece */
        if (!st) p.l = v.len == 1 && v.data[0] == id;
        v.len = 0;
        if (!st) st = tk_tokenize(tok, b.data + 1, plen + 1, TK_TOK_PARSE_SPECIAL, &v);   /* piece + "\n" */
        if (!st) p.r = v.len == 1 && v.data[0] == id;
        tk_buf_free(&b);
        tk_ivec_free(&v);
        if (st) return st;
    }
    if (*n < cap) cache[(*n)++] = p;
    *out = p;
    return TK_OK;
}

/* Drops leading (lead) / trailing (trail) whitespace from the text of spans v[a..b). */
static void strip_run(tk_chat_span *v, size_t a, size_t b, bool lead, bool trail) {
    for (size_t k = a; lead && k < b; k++) {
        while (v[k].len && strip_space(v[k].s[0])) { v[k].s++; v[k].len--; }
        if (v[k].len) break;
    }
    for (size_t k = b; trail && k-- > a; ) {
        while (v[k].len && strip_space(v[k].s[v[k].len - 1])) v[k].len--;
        if (v[k].len) break;
    }
}

/* Tokenizes the run of spans v[a..b) (no special token inside) as one text and appends
 * the ids to ids, and for each the index of the span it belongs to to owner. */
static tk_status tokenize_run(const tk_tokenizer *tok, const tk_chat_span *v, size_t a, size_t b, tk_ivec *ids, tk_ivec *owner) {
    size_t k = 0;  /* non-empty spans */
    for (size_t i = a; i < b; i++) k += v[i].len > 0;
    if (!k) return TK_OK;
    tk_buf text = {0};
    tk_ivec all = {0}, part = {0};
    size_t *idx = NULL, *off = NULL, *bound = NULL;
    tk_status st = TK_OK;
    idx = tk_calloc(k, sizeof *idx);
    off = tk_calloc(k + 1, sizeof *off);
    bound = tk_calloc(k + 1, sizeof *bound);
    if (!idx || !off || !bound) { st = TK_ERR_NOMEM; goto done; }
    size_t j = 0;
    for (size_t i = a; i < b; i++) {
        if (!v[i].len) continue;
        idx[j] = i;
        off[j] = text.len;
        if ((st = tk_buf_append(&text, v[i].s, v[i].len))) goto done;
        j++;
    }
    off[k] = text.len;
    if ((st = tk_tokenize(tok, text.data, text.len, 0, &all))) goto done;
    /* Fast path: the spans tokenized one by one give the same ids (a clean seam). */
    bool same = k == 1;
    if (!same) {
        same = true;
        for (j = 0; j < k && same; j++) {
            if ((st = tk_tokenize(tok, v[idx[j]].s, v[idx[j]].len, 0, &part))) goto done;
            bound[j + 1] = part.len;
            same = part.len <= all.len && !memcmp(part.data, all.data, part.len * sizeof(int32_t));
        }
        same = same && part.len == all.len;
    }
    if (!same) {
        /* A token straddles a seam: tokenize each prefix of the run; the ids it shares with the
         * whole run lie inside that prefix, the rest (straddlers included) belong later. */
        bound[0] = 0;
        for (j = 1; j < k; j++) {
            part.len = 0;
            if ((st = tk_tokenize(tok, text.data, off[j], 0, &part))) goto done;
            size_t l = 0;
            while (l < part.len && l < all.len && part.data[l] == all.data[l]) l++;
            bound[j] = l > bound[j - 1] ? l : bound[j - 1];
        }
    }
    bound[k] = all.len;
    if ((st = tk_ivec_reserve(ids, all.len)) || (st = tk_ivec_reserve(owner, all.len))) goto done;
    for (j = 0; j < k; j++) {
        for (size_t t = bound[j]; t < bound[j + 1]; t++) {
            ids->data[ids->len++] = all.data[t];
            owner->data[owner->len++] = (int32_t)idx[j];
        }
    }
done:
    free(idx); free(off); free(bound);
    tk_buf_free(&text);
    tk_ivec_free(&all);
    tk_ivec_free(&part);
    return st;
}

void tk_chat_tokens_free(tk_chat_tokens *c) {
    if (!c) return;
    tk_ivec_free(&c->ids);
    free(c->msg_index);
    free(c->role);
    free(c->is_target);
    memset(c, 0, sizeof *c);
}

tk_status tk_chat_render(const tk_tokenizer *tok, tk_chat_family f, const tk_chat_msg *msgs, size_t n,
                         bool add_generation_prompt, tk_chat_tokens *out) {
    tk_chat_opts o = {.add_generation_prompt = add_generation_prompt};
    return tk_chat_render_opts(tok, f, msgs, n, &o, out);
}

tk_status tk_chat_render_opts(const tk_tokenizer *tok, tk_chat_family f, const tk_chat_msg *msgs, size_t n,
                              const tk_chat_opts *o, tk_chat_tokens *out) {
    if (!tok || !out) return tk_fail(TK_ERR_ARG, "tk_chat_render: tokenizer and out are required");
    if (out->ids.len || out->msg_index) return tk_fail(TK_ERR_ARG, "tk_chat_render: out must be zeroed");
    tk_chat_spans c;
    tk_status st = tk_chat_spans_render(&c, f, msgs, n, o);
    tk_ivec owner = {0};
    int32_t *special = NULL;
    if (st) goto done;
    special = tk_malloc((c.n ? c.n : 1) * sizeof *special);
    if (!special) { st = TK_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < c.n; i++) {
        special[i] = -1;
        if (c.v[i].kind == TK_SP_MARK) {
            char buf[64];
            if (c.v[i].len < sizeof buf) {
                memcpy(buf, c.v[i].s, c.v[i].len);
                buf[c.v[i].len] = 0;
                int32_t id = tk_tokenizer_find(tok, buf);
                if (id >= 0 && tk_tokenizer_is_special(tok, id)) special[i] = id;
            }
        } else if (c.v[i].kind == TK_SP_EOS) {
            special[i] = tk_tokenizer_eos(tok);   /* no EOS: an empty text span */
            if (special[i] < 0) special[i] = -1;
        }
    }
    strip_probe cache[32];
    size_t n_cache = 0;
    int32_t prev = -1;   /* the special token before the current run */
    for (size_t i = 0; i < c.n; ) {
        if (special[i] >= 0) {
            if ((st = tk_ivec_push(&out->ids, special[i])) || (st = tk_ivec_push(&owner, (int32_t)i))) goto done;
            prev = special[i];
            i++;
            continue;
        }
        size_t j = i;
        while (j < c.n && special[j] < 0) j++;
        strip_probe pp = {-1, false, false}, pn = {-1, false, false};
        if (prev >= 0 && (st = probe_strip(tok, prev, cache, &n_cache, 32, &pp))) goto done;
        if (j < c.n && (st = probe_strip(tok, special[j], cache, &n_cache, 32, &pn))) goto done;
        strip_run(c.v, i, j, pp.r, pn.l);
        if ((st = tokenize_run(tok, c.v, i, j, &out->ids, &owner))) goto done;
        i = j;
    }
    size_t nt = out->ids.len ? out->ids.len : 1;
    out->msg_index = tk_malloc(nt * sizeof *out->msg_index);
    out->role = tk_malloc(nt);
    out->is_target = tk_malloc(nt);
    if (!out->msg_index || !out->role || !out->is_target) { st = TK_ERR_NOMEM; goto done; }
    for (size_t t = 0; t < out->ids.len; t++) {
        const tk_chat_span *sp = &c.v[owner.data[t]];
        out->msg_index[t] = sp->msg;
        out->role[t] = sp->role;
        out->is_target[t] = sp->target;
    }
done:
    if (st) tk_fail_ctx(st, "rendering a %s conversation: ", tk_chat_family_name(f));
    free(special);
    tk_ivec_free(&owner);
    tk_chat_spans_free(&c);
    return st;
}

/* A control token with exactly this text. */
static bool has_control(const tk_tokenizer *tok, const char *text) {
    int32_t id = tk_tokenizer_find(tok, text);
    return id >= 0 && tk_tokenizer_is_special(tok, id);
}

/* The family of a tokenizer without a template, from its vocabulary: Gemma's turn tokens exist only for
 * Gemma's chat format (base-model GGUFs of Gemma 3 carry no template); anything else gets the alpaca fallback. */
static tk_chat_family family_from_vocab(const tk_tokenizer *tok) {
    if (has_control(tok, "<start_of_turn>") && has_control(tok, "<end_of_turn>"))
        return tk_tokenizer_find(tok, "<start_of_image>") >= 0 ? TK_CHAT_GEMMA3 : TK_CHAT_GEMMA;
    return TK_CHAT_ALPACA;
}

tk_status tk_chat_resolve(const tk_tokenizer *tok, const char *override_name, tk_chat_family *out) {
    if (!out) return tk_fail(TK_ERR_ARG, "tk_chat_resolve: out is NULL");
    if (override_name) {
        *out = tk_chat_family_from_name(override_name);
        if (*out == TK_CHAT_UNKNOWN)
            return tk_fail(TK_ERR_ARG, "unknown chat template \"%s\" (known: %s)", override_name, tk_chat_family_names());
        return TK_OK;
    }
    const char *j = tok ? tk_tokenizer_chat_template(tok) : NULL;
    if (!j || !*j) { *out = tok ? family_from_vocab(tok) : TK_CHAT_ALPACA; return TK_OK; }
    *out = tk_chat_detect(j);
    if (*out == TK_CHAT_UNKNOWN) {
        char head[81];
        size_t i = 0;
        for (; i < 80 && j[i]; i++) head[i] = (j[i] == '\n' || j[i] == '\r') ? ' ' : j[i];
        head[i] = 0;
        return tk_fail(TK_ERR_UNSUPPORTED,
                       "the model's chat template is not one takumi renders exactly (it starts \"%s%s\"); "
                       "choose one explicitly: %s", head, j[i] ? "…" : "", tk_chat_family_names());
    }
    return TK_OK;
}

