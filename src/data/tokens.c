/* Token counts per example, as training will see them.
 *
 * With a tokenizer and a chat family, each conversation is rendered with the model's
 * template (tk_chat_render), so counts include the template's tokens and the assistant
 * count is exactly what SFT trains on (assistant content + its end-of-turn token, from
 * the render's is_target mask; messages with weight 0 excluded). Preference examples are
 * rendered twice (prompt + chosen, prompt + rejected). Classification and raw text are
 * tokenized as plain text (with the tokenizer's BOS/EOS), as a classifier or continued
 * pre-training sees them. Without a family, message contents are tokenized one by one.
 * Without a tokenizer the counts are approximate: UTF-8 bytes / 4, rounded up, per
 * message (the report says "approximate"). */
#include "data/data_internal.h"

struct tk_tok_scratch {
    tk_ivec ids;
    tk_buf text;                 /* NUL-terminated copies of message texts */
    tk_chat_msg *msgs;
    size_t cap;
    int8_t *weights;
    uint8_t *copied;
};

tk_tok_scratch *tk_tok_scratch_new(void) { return tk_calloc(1, sizeof(tk_tok_scratch)); }
void tk_tok_scratch_free(tk_tok_scratch *s) {
    if (!s) return;
    tk_ivec_free(&s->ids);
    tk_buf_free(&s->text);
    free(s->msgs);
    free(s->weights);
    free(s->copied);
    free(s);
}

static uint32_t sat32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }
static uint32_t approx(size_t bytes) { return sat32((bytes + 3) / 4); }

/* Approximate counts of a message list: total, trained (assistant with weight != 0, +1 for the end of turn). */
static void approx_msgs(const tk_ex_msg *m, size_t n, uint64_t *total, uint64_t *trained) {
    for (size_t i = 0; i < n; i++) {
        uint64_t t = approx(m[i].len);
        *total += t;
        if (m[i].role == TK_R_ASSISTANT && m[i].weight != 0) *trained += t + 1;
    }
}

static tk_status approx_counts(const tk_example *ex, tk_ex_tokens *out) {
    uint64_t seq = 0, trained = 0;
    approx_msgs(ex->msgs, ex->n, &seq, &trained);
    uint64_t total = seq, longest = seq;
    if (ex->n_rej) {
        uint64_t prompt = 0, dummy = 0, rej = 0;
        approx_msgs(ex->msgs, ex->n_prompt, &prompt, &dummy);
        approx_msgs(ex->rej, ex->n_rej, &rej, &trained);
        total += prompt + rej;
        if (prompt + rej > longest) longest = prompt + rej;
    }
    out->total = sat32(total);
    out->longest = sat32(longest);
    out->assistant = sat32(trained);
    if (ex->n_prompt < ex->n) out->reply = approx(ex->msgs[ex->n - 1].len);
    return TK_OK;
}

static tk_role role_of(int r) {
    switch (r) {
    case TK_R_SYSTEM: return TK_ROLE_SYSTEM;
    case TK_R_ASSISTANT: return TK_ROLE_ASSISTANT;
    case TK_R_TOOL: return TK_ROLE_TOOL;
    default: return TK_ROLE_USER;
    }
}

/* Renders a + b (b may be NULL) with the template; adds to the counters. */
static tk_status render(const tk_tokenizer *tok, tk_chat_family fam, tk_tok_scratch *s, const tk_ex_msg *a, size_t na,
                        const tk_ex_msg *b, size_t nb, uint64_t *total, uint64_t *trained, uint32_t *seq_len, uint32_t *reply) {
    size_t n = na + nb;
    if (n > s->cap) {
        size_t c = n + 16;
        tk_chat_msg *m = tk_realloc(s->msgs, c * sizeof *m);
        if (!m) return TK_ERR_NOMEM;
        s->msgs = m;
        int8_t *w = tk_realloc(s->weights, c);
        if (!w) return TK_ERR_NOMEM;
        s->weights = w;
        uint8_t *cp = tk_realloc(s->copied, c);
        if (!cp) return TK_ERR_NOMEM;
        s->copied = cp;
        s->cap = c;
    }
    /* NUL-terminated copies (texts may point into a TSV line). The buffer may move while it grows, so
     * content holds offsets until every text is in, then pointers. */
    s->text.len = 0;
    tk_status st = TK_OK;
    uint8_t *copied = s->copied;
    for (size_t i = 0; i < n && !st; i++) {
        const tk_ex_msg *m = i < na ? &a[i] : &b[i - na];
        s->msgs[i].role = role_of(m->role);
        s->weights[i] = m->weight;
        /* every message text lies inside an allocation that goes on past it (a cJSON string, the record's
         * copy, an owned buffer), so text[len] can be read: when it is the NUL already, use it in place */
        copied[i] = m->text[m->len] != 0;
        if (!copied[i]) { s->msgs[i].content = m->text; continue; }
        size_t at = s->text.len;
        st = tk_buf_append(&s->text, m->text, m->len);
        if (!st) st = tk_buf_append(&s->text, "", 1);   /* the NUL, counted in len */
        s->msgs[i].content = (const char *)(uintptr_t)at;
    }
    if (st) return st;
    for (size_t i = 0; i < n; i++) if (copied[i]) s->msgs[i].content = s->text.data + (uintptr_t)s->msgs[i].content;
    tk_chat_tokens ct = {0};
    st = tk_chat_render(tok, fam, s->msgs, n, false, &ct);
    if (!st) {
        uint64_t tr = 0, last_reply = 0;
        int32_t last = (int32_t)n - 1;
        for (size_t t = 0; t < ct.ids.len; t++) {
            if (!ct.is_target[t]) continue;
            int32_t mi = ct.msg_index[t];
            if (mi >= 0 && s->weights[mi] != 0) tr++;
            if (mi == last) last_reply++;
        }
        *total += ct.ids.len;
        *trained += tr;
        *seq_len = sat32(ct.ids.len);
        if (reply) *reply = sat32(last_reply > 0 ? last_reply - 1 : 0);   /* without its end-of-turn token */
    }
    tk_chat_tokens_free(&ct);
    return st;
}

/* Content-only counts (no template): each message tokenized on its own. */
static tk_status plain(const tk_tokenizer *tok, tk_tok_scratch *s, const tk_ex_msg *m, size_t n, int flags, uint64_t *total,
                       uint64_t *trained, uint32_t *last_len) {
    for (size_t i = 0; i < n; i++) {
        s->ids.len = 0;
        tk_status st = tk_tokenize(tok, m[i].text, m[i].len, flags, &s->ids);
        if (st) return st;
        *total += s->ids.len;
        if (m[i].role == TK_R_ASSISTANT && m[i].weight != 0) *trained += s->ids.len + 1;
        if (last_len) *last_len = sat32(s->ids.len);
    }
    return TK_OK;
}

tk_status tk_data_count_tokens(const tk_tokenizer *tok, tk_chat_family fam, tk_tok_scratch *s, const tk_example *ex,
                               tk_ex_tokens *out) {
    memset(out, 0, sizeof *out);
    if (!tok) return approx_counts(ex, out);
    bool conversation = ex->n > 0 && ex->msgs[0].role != TK_R_TEXT && (!ex->label || ex->n_prompt < ex->n);   /* KTO: labelled replies */
    uint64_t total = 0, trained = 0;
    tk_status st;
    if (!conversation) {
        /* raw text / classification input: plain text with the tokenizer's own BOS/EOS */
        uint32_t l = 0;
        st = plain(tok, s, ex->msgs, ex->n, TK_TOK_ADD_SPECIAL, &total, &trained, &l);
        out->total = out->longest = sat32(total);
        return st;
    }
    if (fam == TK_CHAT_UNKNOWN) {
        uint32_t l = 0;
        st = plain(tok, s, ex->msgs, ex->n, 0, &total, &trained, &l);
        if (!st && ex->n_prompt < ex->n) out->reply = l;
        out->longest = sat32(total);
        if (!st && ex->n_rej) {
            uint64_t p = 0, d = 0;
            st = plain(tok, s, ex->msgs, ex->n_prompt, 0, &p, &d, NULL);
            uint64_t before = total;
            if (!st) st = plain(tok, s, ex->rej, ex->n_rej, 0, &total, &trained, NULL);
            uint64_t second = p + (total - before);
            total += p;
            if (second > out->longest) out->longest = sat32(second);
        }
        out->total = sat32(total);
        out->assistant = sat32(trained);
        return st;
    }
    uint32_t len1 = 0, len2 = 0, reply = 0;
    st = render(tok, fam, s, ex->msgs, ex->n, NULL, 0, &total, &trained, &len1, ex->n_prompt < ex->n ? &reply : NULL);
    if (!st && ex->n_rej) st = render(tok, fam, s, ex->msgs, ex->n_prompt, ex->rej, ex->n_rej, &total, &trained, &len2, NULL);
    if (st) return st;
    out->total = sat32(total);
    out->assistant = sat32(trained);
    out->longest = len1 > len2 ? len1 : len2;
    out->reply = reply;
    return TK_OK;
}
