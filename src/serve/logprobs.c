/* A choice's log-probabilities in OpenAI's shapes. The batch reports each sampled token's (log-softmax of the raw
 * logits, src/infer/logprobs.c) before its text; the text reaches the client later (UTF-8 assembly, text held back
 * while it could begin a stop string). A token is reported with the text its own text begins in: the tokens whose
 * first byte lies in the text emitted so far. So a token cut away by a stop string (or the end-of-sequence token,
 * which adds no text) never appears, and one the stop string cuts in the middle appears with its full bytes.
 *   chat:        {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}], "refusal": null}
 *   completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob} (the top N and the sampled one)], "text_offset"}
 * A token whose bytes are not valid UTF-8 on their own (a piece of a character): chat writes the invalid bytes as
 * \xNN in "token" ("bytes" holds them raw); completions write "bytes:\xNN…" as OpenAI's legacy API did. A
 * log-probability of -inf (an impossible token) is written as -9999.0, OpenAI's value for "very unlikely". */
#include "serve/server.h"
#include "core/core.h"
#include "tokenizer/unicode.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

void srv_lp_init(srv_lp *l, const tk_tokenizer *tok, bool chat, int32_t prev, const char *prompt) {
    memset(l, 0, sizeof *l);
    l->tok = tok;
    l->chat = chat;
    l->prev = prev;
    for (const unsigned char *p = (const unsigned char *)(prompt ? prompt : ""); *p; p++) l->prompt_chars += (*p & 0xC0) != 0x80;
}

void srv_lp_free(srv_lp *l) {
    free(l->toks);
    memset(l, 0, sizeof *l);
}

void srv_lp_add(srv_lp *l, const tk_token_logprobs *lp) {
    if (l->failed) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        srv_lp_tok *t = tk_realloc(l->toks, cap * sizeof *t);
        if (!t) { l->failed = true; return; }
        l->toks = t;
        l->cap = cap;
    }
    tk_buf b = {0};
    if (tk_token_bytes(l->tok, lp->id, l->prev, &b)) { l->failed = true; tk_buf_free(&b); return; }
    l->toks[l->n++] = (srv_lp_tok){.lp = *lp, .prev = l->prev, .start = l->bytes, .len = b.len};
    l->bytes += b.len;
    l->prev = lp->id;
    tk_buf_free(&b);
}

static double lp_value(double x) { return x == -INFINITY || isnan(x) ? -9999.0 : x; }

/* The token's text as OpenAI writes it (see the top of the file). NULL: no memory. */
static char *token_string(const char *s, size_t n, bool legacy) {
    tk_buf out = {0};
    bool valid = true;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp == TK_UNI_INVALID && k == 1) valid = false;
        i += k;
    }
    tk_status st = tk_buf_append(&out, "", 0);
    if (!st && !valid && legacy) st = tk_buf_append(&out, "bytes:", 6);
    for (size_t i = 0; i < n && !st;) {
        uint32_t cp;
        size_t k = tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if ((cp == TK_UNI_INVALID && k == 1) || (!valid && legacy)) {
            char x[8];
            for (size_t j = 0; j < k && !st; j++) {
                snprintf(x, sizeof x, "\\x%02x", (unsigned char)s[i + j]);
                st = tk_buf_append(&out, x, 4);
            }
        } else {
            st = tk_buf_append(&out, s + i, k);
        }
        i += k;
    }
    if (st) { tk_buf_free(&out); return NULL; }
    return out.data;
}

/* {"token", "logprob", "bytes"} of id after prev (chat). */
static cJSON *chat_entry(const srv_lp *l, int32_t id, int32_t prev, double lp) {
    tk_buf b = {0};
    if (tk_token_bytes(l->tok, id, prev, &b)) { tk_buf_free(&b); return NULL; }
    char *t = token_string(b.data ? b.data : "", b.len, false);
    cJSON *o = cJSON_CreateObject(), *bytes = cJSON_CreateArray();
    bool ok = t && o && bytes && cJSON_AddStringToObject(o, "token", t) && cJSON_AddNumberToObject(o, "logprob", lp_value(lp));
    for (size_t i = 0; ok && i < b.len; i++) {
        cJSON *v = cJSON_CreateNumber((unsigned char)b.data[i]);
        ok = v && cJSON_AddItemToArray(bytes, v);
    }
    ok = ok && cJSON_AddItemToObject(o, "bytes", bytes);
    if (!ok) cJSON_Delete(bytes);
    free(t);
    tk_buf_free(&b);
    if (!ok) { cJSON_Delete(o); return NULL; }
    return o;
}

/* Adds the token text of id after prev as a key of dict (the first of equal texts wins); false: no memory. */
static bool legacy_key(const srv_lp *l, cJSON *dict, int32_t id, int32_t prev, double lp, char **text) {
    tk_buf b = {0};
    if (tk_token_bytes(l->tok, id, prev, &b)) { tk_buf_free(&b); return false; }
    char *t = token_string(b.data ? b.data : "", b.len, true);
    tk_buf_free(&b);
    if (!t) return false;
    bool ok = cJSON_GetObjectItemCaseSensitive(dict, t) || cJSON_AddNumberToObject(dict, t, lp_value(lp));
    if (text && ok) *text = t; else free(t);
    return ok;
}

/* The character of text that byte `at` lies in, counted from the prompt's start (text_offset; a token that begins
 * inside a character gets that character's offset), by a cursor that only moves forward. */
static size_t chars_before(srv_lp *l, const char *text, size_t len, size_t at) {
    if (at > len) at = len;
    for (; l->cur_bytes < at; l->cur_bytes++) l->cur_chars += ((unsigned char)text[l->cur_bytes] & 0xC0) != 0x80;
    bool inside = at < len && at > 0 && ((unsigned char)text[at] & 0xC0) == 0x80;
    return l->prompt_chars + l->cur_chars - (inside ? 1 : 0);
}

cJSON *srv_lp_take(srv_lp *l, const char *text, size_t emitted) {
    if (l->failed) return NULL;
    size_t m = l->reported;
    while (m < l->n && l->toks[m].start < emitted) m++;
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (l->chat) {
        cJSON *content = cJSON_AddArrayToObject(o, "content");
        ok = ok && content && cJSON_AddNullToObject(o, "refusal");
        for (size_t i = l->reported; ok && i < m; i++) {
            const srv_lp_tok *t = &l->toks[i];
            cJSON *e = chat_entry(l, t->lp.id, t->prev, t->lp.logprob), *top = cJSON_CreateArray();
            ok = e && top && cJSON_AddItemToArray(content, e);
            if (!ok) { cJSON_Delete(e); cJSON_Delete(top); break; }
            for (int32_t k = 0; ok && k < t->lp.n_top; k++) {
                cJSON *a = chat_entry(l, t->lp.top_id[k], t->prev, t->lp.top_logprob[k]);
                ok = a && cJSON_AddItemToArray(top, a);
            }
            ok = cJSON_AddItemToObject(e, "top_logprobs", top) && ok;
        }
    } else {
        cJSON *tokens = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs"),
              *tops = cJSON_AddArrayToObject(o, "top_logprobs"), *offs = cJSON_AddArrayToObject(o, "text_offset");
        ok = ok && tokens && lps && tops && offs;
        for (size_t i = l->reported; ok && i < m; i++) {
            const srv_lp_tok *t = &l->toks[i];
            cJSON *dict = cJSON_CreateObject(), *d = NULL;
            char *text_id = NULL;
            ok = dict && cJSON_AddItemToArray(tops, dict);
            if (!ok) { cJSON_Delete(dict); break; }
            for (int32_t k = 0; ok && k < t->lp.n_top; k++) ok = legacy_key(l, dict, t->lp.top_id[k], t->prev, t->lp.top_logprob[k], NULL);
            ok = ok && legacy_key(l, dict, t->lp.id, t->prev, t->lp.logprob, &text_id); /* the sampled one: always there */
            ok = ok && (d = cJSON_CreateString(text_id)) && cJSON_AddItemToArray(tokens, d);
            free(text_id);
            ok = ok && (d = cJSON_CreateNumber(lp_value(t->lp.logprob))) && cJSON_AddItemToArray(lps, d);
            ok = ok && (d = cJSON_CreateNumber((double)chars_before(l, text, emitted, t->start))) && cJSON_AddItemToArray(offs, d);
        }
    }
    if (!ok) { cJSON_Delete(o); return NULL; }
    l->reported = m;
    return o;
}
