/* Chat templates: each supported family's official Jinja template, reproduced in C.
 *
 * A template is rendered into a list of spans (template text, template markers such as
 * <|im_start|>, message content), each tagged with the message it belongs to and whether
 * it is a training target. Text rendering concatenates the spans; token rendering
 * (chat_tokens.c) turns markers into their special tokens, tokenizes the rest and gives
 * every token to the span it came from. One code path per family serves both renderings,
 * so the loss mask can never drift from the text. Family detection from a Jinja source is
 * at the end of this file.
 *
 * The reference for every family is the text its official template renders (the templates
 * and their sources are in tools/make_chat_fixtures.py; tests/test_chat.c compares). */
#include "core/core.h"
#include "tokenizer/chat_internal.h"
#include <cjson/cJSON.h>
#include <stdio.h>

static const char *const ROLE_NAME[] = {"system", "user", "assistant", "tool"};

static const char *const FAMILY_NAME[TK_CHAT_FAMILY_COUNT] = {
    [TK_CHAT_UNKNOWN] = "unknown",     [TK_CHAT_CHATML] = "chatml",     [TK_CHAT_LLAMA3] = "llama3",
    [TK_CHAT_LLAMA2] = "llama2",       [TK_CHAT_MISTRAL] = "mistral",   [TK_CHAT_GEMMA] = "gemma",
    [TK_CHAT_PHI3] = "phi3",           [TK_CHAT_SMOLLM2] = "smollm2",   [TK_CHAT_QWEN2] = "qwen2",
    [TK_CHAT_QWEN25] = "qwen2.5",      [TK_CHAT_LLAMA31] = "llama3.1",  [TK_CHAT_MISTRAL_LEGACY] = "mistral-legacy",
    [TK_CHAT_GEMMA3] = "gemma3",       [TK_CHAT_PHI35] = "phi3.5",      [TK_CHAT_PHI3_LEGACY] = "phi3-legacy",
    [TK_CHAT_ALPACA] = "alpaca",       [TK_CHAT_QWEN3] = "qwen3",
};

/* Markers: template text that is a special token in the family's vocabulary (looked up in
 * the actual tokenizer at render time; absent ones stay plain text). */
static const char *const MARKS_CHATML[] = {"<|im_start|>", "<|im_end|>", NULL};
static const char *const MARKS_QWEN25[] = {"<|im_start|>", "<|im_end|>", "<tool_response>", "</tool_response>", NULL};
static const char *const MARKS_QWEN3[] = {"<|im_start|>", "<|im_end|>", "<tool_response>", "</tool_response>", "<think>",
                                          "</think>", NULL};
static const char *const MARKS_LLAMA3[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL};
static const char *const MARKS_LLAMA2[] = {"<s>", "</s>", NULL};
static const char *const MARKS_MISTRAL[] = {"<s>", "</s>", "[INST]", "[/INST]", NULL};
static const char *const MARKS_GEMMA[] = {"<bos>", "<start_of_turn>", "<end_of_turn>", NULL};
static const char *const MARKS_PHI3[] = {"<s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>", NULL};
static const char *const MARKS_NONE[] = {NULL};

const char *tk_chat_family_name(tk_chat_family f) {
    return (f >= 0 && f < TK_CHAT_FAMILY_COUNT) ? FAMILY_NAME[f] : "unknown";
}

const char *tk_chat_family_names(void) {
    return "chatml, smollm2, qwen2, qwen2.5, qwen3, llama3, llama3.1, llama2, mistral, mistral-legacy, "
           "gemma, gemma3, phi3, phi3.5, phi3-legacy, alpaca";
}

tk_chat_family tk_chat_family_from_name(const char *name) {
    if (!name) return TK_CHAT_UNKNOWN;
    for (int f = 1; f < TK_CHAT_FAMILY_COUNT; f++)
        if (!strcmp(name, FAMILY_NAME[f])) return (tk_chat_family)f;
    return TK_CHAT_UNKNOWN;
}

/* ---------------------------------------------------------------- spans */

static void push(tk_chat_spans *c, const char *s, size_t len, int32_t msg, tk_role role, int kind, int target) {
    if (c->st) return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64, bytes;
        if (!tk_mul_ok(cap, sizeof(tk_chat_span), &bytes)) { c->st = tk_fail(TK_ERR_NOMEM, "chat: too many spans"); return; }
        tk_chat_span *v = tk_realloc(c->v, bytes);
        if (!v) { c->st = TK_ERR_NOMEM; return; }
        c->v = v; c->cap = cap;
    }
    c->v[c->n++] = (tk_chat_span){s, len, msg, (uint8_t)role, (uint8_t)kind, (uint8_t)(target != 0)};
}

/* Template text: split at the family's markers so each can become its special token. */
static void glue(tk_chat_spans *c, const char *s, int32_t msg, tk_role role, int target) {
    const char *start = s;
    for (const char *p = s; *p; ) {
        size_t ml = 0;
        for (const char *const *m = c->marks; *m; m++) {
            size_t l = strlen(*m);
            if (!strncmp(p, *m, l)) { ml = l; break; }
        }
        if (!ml) { p++; continue; }
        if (p > start) push(c, start, (size_t)(p - start), msg, role, TK_SP_TEXT, target);
        push(c, p, ml, msg, role, TK_SP_MARK, target);
        p += ml;
        start = p;
    }
    size_t rest = strlen(start);
    if (rest) push(c, start, rest, msg, role, TK_SP_TEXT, target);
}

static void content(tk_chat_spans *c, const char *s, size_t len, int32_t msg, tk_role role, int target) {
    push(c, s, len, msg, role, TK_SP_CONTENT, target);
}

static char *own(tk_chat_spans *c, char *buf) {
    if (!buf) { if (!c->st) c->st = TK_ERR_NOMEM; return NULL; }
    if (c->n_own == c->cap_own) {
        size_t cap = c->cap_own ? c->cap_own * 2 : 8;
        char **v = tk_realloc(c->own, cap * sizeof *v);
        if (!v) { free(buf); if (!c->st) c->st = TK_ERR_NOMEM; return NULL; }
        c->own = v; c->cap_own = cap;
    }
    c->own[c->n_own++] = buf;
    return buf;
}

void tk_chat_spans_free(tk_chat_spans *c) {
    for (size_t i = 0; i < c->n_own; i++) free(c->own[i]);
    free(c->own);
    free(c->v);
}

/* ---------------------------------------------------------------- Python str.strip() */

/* Python's str.isspace(): what Jinja's trim filter and str.strip() remove. */
static bool py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

/* Decodes one UTF-8 character of s[0..len); returns its length, or 0 if malformed. */
static size_t utf8_dec(const unsigned char *s, size_t len, uint32_t *cp) {
    if (!len) return 0;
    unsigned char b = s[0];
    size_t n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || n > len) return 0;
    uint32_t c = n == 1 ? b : n == 2 ? (b & 0x1fu) : n == 3 ? (b & 0x0fu) : (b & 0x07u);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    *cp = c;
    return n;
}

/* Bytes of leading Python whitespace in s[0..len). */
static size_t ws_lead(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_dec((const unsigned char *)s + i, len - i, &cp);
        if (!k || !py_space(cp)) break;
        i += k;
    }
    return i;
}

/* Bytes of trailing Python whitespace in s[0..len). */
static size_t ws_trail(const char *s, size_t len) {
    size_t end = len;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && end - st < 4 && ((unsigned char)s[st] & 0xc0) == 0x80) st--;
        uint32_t cp;
        size_t k = utf8_dec((const unsigned char *)s + st, end - st, &cp);
        if (k != end - st || !py_space(cp)) break;
        end = st;
    }
    return len - end;
}

/* Python s.strip() of one message's content. */
static void strip(const char **s, size_t *len) {
    size_t a = ws_lead(*s, *len);
    *s += a; *len -= a;
    *len -= ws_trail(*s, *len);
}

/* Python strip() of the text formed by spans[from..n) (Llama-2 strips system block + user text together). */
static void strip_spans(tk_chat_spans *c, size_t from) {
    if (c->st) return;
    for (size_t k = from; k < c->n; k++) {
        tk_chat_span *sp = &c->v[k];
        if (sp->kind == TK_SP_MARK || sp->kind == TK_SP_EOS) break;
        size_t a = ws_lead(sp->s, sp->len);
        sp->s += a; sp->len -= a;
        if (sp->len) break;
    }
    for (size_t k = c->n; k-- > from; ) {
        tk_chat_span *sp = &c->v[k];
        if (sp->kind == TK_SP_MARK || sp->kind == TK_SP_EOS) break;
        sp->len -= ws_trail(sp->s, sp->len);
        if (sp->len) break;
    }
}

/* json.dumps(s, ensure_ascii=False) (what transformers' tojson filter renders for a string). */
static char *json_string(const char *s) {
    tk_buf b = {0};
    if (tk_buf_append(&b, "\"", 1)) goto fail;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *e = NULL;
        switch (*p) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (*p < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *p); e = esc; }
        }
        if (e ? tk_buf_append(&b, e, strlen(e)) : tk_buf_append(&b, p, 1)) goto fail;
    }
    if (tk_buf_append(&b, "\"", 1)) goto fail;
    return b.data;
fail:
    tk_buf_free(&b);
    return NULL;
}

/* ---------------------------------------------------------------- families */

static tk_status fail_msg(tk_chat_spans *c, tk_status st, size_t i, const tk_chat_msg *m, const char *why) {
    if (!c->st) c->st = tk_fail(st, "chat template %s: message %zu (%s): %s", tk_chat_family_name(c->f), i,
                                ROLE_NAME[m[i].role], why);
    return c->st;
}

/* After an optional leading system message, roles must be user, assistant, user, … (the
 * official templates raise otherwise, or silently drop what is neither). */
static bool alternating(tk_chat_spans *c, const tk_chat_msg *m, size_t n, size_t start) {
    bool any_user = false;
    for (size_t i = start; i < n; i++) {
        bool want_user = (i - start) % 2 == 0;
        if (m[i].role != TK_ROLE_USER && m[i].role != TK_ROLE_ASSISTANT) {
            fail_msg(c, TK_ERR_UNSUPPORTED, i, m,
                     "this template renders only user and assistant messages after an optional first system message");
            return false;
        }
        if ((m[i].role == TK_ROLE_USER) != want_user) {
            fail_msg(c, TK_ERR_ARG, i, m, "conversation roles must alternate user/assistant/user/assistant/...");
            return false;
        }
        any_user |= m[i].role == TK_ROLE_USER;
    }
    if (!any_user) {
        c->st = tk_fail(TK_ERR_ARG, "chat template %s: no user message (the template would drop the system message)",
                        tk_chat_family_name(c->f));
        return false;
    }
    return true;
}

#define T_ASSIST(m, i) ((m)[i].role == TK_ROLE_ASSISTANT)

/* ChatML: smollm2/qwen2 inject a default system message when the first message is not one. */
static void r_chatml(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp, const char *default_system) {
    if (default_system && m[0].role != TK_ROLE_SYSTEM) {
        glue(c, "<|im_start|>system\n", -1, TK_ROLE_SYSTEM, 0);
        glue(c, default_system, -1, TK_ROLE_SYSTEM, 0);
        glue(c, "<|im_end|>\n", -1, TK_ROLE_SYSTEM, 0);
    }
    for (size_t i = 0; i < n; i++) {
        int t = T_ASSIST(m, i);
        glue(c, "<|im_start|>", (int32_t)i, m[i].role, 0);
        glue(c, ROLE_NAME[m[i].role], (int32_t)i, m[i].role, 0);
        glue(c, "\n", (int32_t)i, m[i].role, 0);
        content(c, m[i].content, strlen(m[i].content), (int32_t)i, m[i].role, t);
        glue(c, "<|im_end|>", (int32_t)i, m[i].role, t);
        glue(c, "\n", (int32_t)i, m[i].role, 0);
    }
    if (agp) glue(c, "<|im_start|>assistant\n", -1, TK_ROLE_ASSISTANT, 0);
}

/* Qwen2.5 (no tools list): default system; consecutive tool results share one user turn. */
static void r_qwen25(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp) {
    if (m[0].role == TK_ROLE_SYSTEM) {
        glue(c, "<|im_start|>system\n", 0, TK_ROLE_SYSTEM, 0);
        content(c, m[0].content, strlen(m[0].content), 0, TK_ROLE_SYSTEM, 0);
        glue(c, "<|im_end|>\n", 0, TK_ROLE_SYSTEM, 0);
    } else {
        glue(c, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
             -1, TK_ROLE_SYSTEM, 0);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        if (r == TK_ROLE_TOOL) {
            if (i == 0 || m[i - 1].role != TK_ROLE_TOOL) glue(c, "<|im_start|>user", mi, r, 0);
            glue(c, "\n<tool_response>\n", mi, r, 0);
            content(c, m[i].content, strlen(m[i].content), mi, r, 0);
            glue(c, "\n</tool_response>", mi, r, 0);
            if (i + 1 == n || m[i + 1].role != TK_ROLE_TOOL) glue(c, "<|im_end|>\n", mi, r, 0);
        } else if (!(r == TK_ROLE_SYSTEM && i == 0)) {
            int t = r == TK_ROLE_ASSISTANT;
            glue(c, "<|im_start|>", mi, r, 0);
            glue(c, ROLE_NAME[r], mi, r, 0);
            glue(c, "\n", mi, r, 0);
            content(c, m[i].content, strlen(m[i].content), mi, r, t);
            glue(c, "<|im_end|>", mi, r, t);
            glue(c, "\n", mi, r, 0);
        }
    }
    if (agp) glue(c, "<|im_start|>assistant\n", -1, TK_ROLE_ASSISTANT, 0);
}

/* Python's s.lstrip('\n') / s.rstrip('\n') on s[0..*len). */
static const char *lstrip_nl(const char *s, size_t *len) {
    while (*len && *s == '\n') { s++; (*len)--; }
    return s;
}
static void rstrip_nl(const char *s, size_t *len) {
    while (*len && s[*len - 1] == '\n') (*len)--;
}

/* Last occurrence of needle in s[0..len), or NULL. */
static const char *find_last(const char *s, size_t len, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = len >= nl ? len - nl + 1 : 0; i-- > 0; )
        if (!memcmp(s + i, needle, nl)) return s + i;
    return NULL;
}

/* Qwen3 (hybrid thinking), without a tools list. last_query is the last user message that is
 * not a wrapped tool response; assistant messages after it show their reasoning in a think block
 * (the last message always does, empty or not), earlier ones only their answer. Reasoning is
 * reasoning_content, else what the content holds before "</think>" (after "<think>"). */
static void r_qwen3(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp, bool no_think, const char *const *rc) {
    size_t last_query = n - 1;
    for (size_t i = n; i-- > 0; ) {
        if (m[i].role != TK_ROLE_USER) continue;
        const char *s = m[i].content;
        size_t len = strlen(s), a = strlen("<tool_response>"), b = strlen("</tool_response>");
        bool wrapped = len >= a && !memcmp(s, "<tool_response>", a) && len >= b && !memcmp(s + len - b, "</tool_response>", b);
        if (!wrapped) { last_query = i; break; }
    }
    if (m[0].role == TK_ROLE_SYSTEM) {
        glue(c, "<|im_start|>system\n", 0, TK_ROLE_SYSTEM, 0);
        content(c, m[0].content, strlen(m[0].content), 0, TK_ROLE_SYSTEM, 0);
        glue(c, "<|im_end|>\n", 0, TK_ROLE_SYSTEM, 0);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        if (r == TK_ROLE_TOOL) {
            if (i == 0 || m[i - 1].role != TK_ROLE_TOOL) glue(c, "<|im_start|>user", mi, r, 0);
            glue(c, "\n<tool_response>\n", mi, r, 0);
            content(c, m[i].content, strlen(m[i].content), mi, r, 0);
            glue(c, "\n</tool_response>", mi, r, 0);
            if (i + 1 == n || m[i + 1].role != TK_ROLE_TOOL) glue(c, "<|im_end|>\n", mi, r, 0);
        } else if (r == TK_ROLE_ASSISTANT) {
            const char *body = m[i].content, *why = rc ? rc[i] : NULL;
            size_t blen = strlen(body), wlen = why ? strlen(why) : 0;
            const char *end_think = why ? NULL : strstr(body, "</think>");
            if (end_think) {   /* content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
                wlen = (size_t)(end_think - body);
                rstrip_nl(body, &wlen);
                const char *open = find_last(body, wlen, "<think>");
                why = open ? open + strlen("<think>") : body;
                wlen -= (size_t)(why - body);
                why = lstrip_nl(why, &wlen);
                const char *after = find_last(body, blen, "</think>") + strlen("</think>");
                blen -= (size_t)(after - body);
                body = lstrip_nl(after, &blen);
            }
            glue(c, "<|im_start|>assistant\n", mi, r, 0);
            if (i > last_query && (i + 1 == n || wlen)) {
                const char *w = lstrip_nl(why ? why : "", &wlen);
                rstrip_nl(w, &wlen);
                glue(c, "<think>\n", mi, r, 1);
                if (wlen) content(c, w, wlen, mi, r, 1);
                glue(c, "\n</think>\n\n", mi, r, 1);
                body = lstrip_nl(body, &blen);
            }
            content(c, body, blen, mi, r, 1);
            glue(c, "<|im_end|>", mi, r, 1);
            glue(c, "\n", mi, r, 0);
        } else if (!(r == TK_ROLE_SYSTEM && i == 0)) {
            glue(c, "<|im_start|>", mi, r, 0);
            glue(c, ROLE_NAME[r], mi, r, 0);
            glue(c, "\n", mi, r, 0);
            content(c, m[i].content, strlen(m[i].content), mi, r, 0);
            glue(c, "<|im_end|>\n", mi, r, 0);
        }
    }
    if (agp) {
        glue(c, "<|im_start|>assistant\n", -1, TK_ROLE_ASSISTANT, 0);
        if (no_think) glue(c, "<think>\n\n</think>\n\n", -1, TK_ROLE_ASSISTANT, 0);
    }
}

static void llama3_msg(tk_chat_spans *c, const tk_chat_msg *m, size_t i, const char *role_name) {
    int32_t mi = (int32_t)i;
    int t = T_ASSIST(m, i);
    glue(c, "<|start_header_id|>", mi, m[i].role, 0);
    glue(c, role_name, mi, m[i].role, 0);
    glue(c, "<|end_header_id|>\n\n", mi, m[i].role, 0);
    const char *s = m[i].content;
    size_t len = strlen(s);
    strip(&s, &len);
    content(c, s, len, mi, m[i].role, t);
    glue(c, "<|eot_id|>", mi, m[i].role, t);
}

/* Llama-3-Instruct: BOS, then header + trimmed content + <|eot_id|> for every message. */
static void r_llama3(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp) {
    glue(c, "<|begin_of_text|>", -1, TK_ROLE_SYSTEM, 0);
    for (size_t i = 0; i < n; i++) llama3_msg(c, m, i, ROLE_NAME[m[i].role]);
    if (agp) glue(c, "<|start_header_id|>assistant<|end_header_id|>\n\n", -1, TK_ROLE_ASSISTANT, 0);
}

/* Llama-3.1-Instruct without a tools list: the system block always exists and carries the
 * knowledge-cutoff lines (date_string defaults to "26 Jul 2024" in the template); tool
 * results go under the ipython header as a JSON string (a str "is iterable" in Jinja). */
static void r_llama31(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp) {
    bool sys = m[0].role == TK_ROLE_SYSTEM;
    int32_t si = sys ? 0 : -1;
    glue(c, "<|begin_of_text|>", -1, TK_ROLE_SYSTEM, 0);
    glue(c, "<|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n", si, TK_ROLE_SYSTEM, 0);
    if (sys) {
        const char *s = m[0].content;
        size_t len = strlen(s);
        strip(&s, &len);
        content(c, s, len, 0, TK_ROLE_SYSTEM, 0);
    }
    glue(c, "<|eot_id|>", si, TK_ROLE_SYSTEM, 0);
    for (size_t i = sys ? 1 : 0; i < n; i++) {
        if (m[i].role != TK_ROLE_TOOL) { llama3_msg(c, m, i, ROLE_NAME[m[i].role]); continue; }
        int32_t mi = (int32_t)i;
        glue(c, "<|start_header_id|>ipython<|end_header_id|>\n\n", mi, TK_ROLE_TOOL, 0);
        char *js = own(c, json_string(m[i].content));
        if (!js) return;
        content(c, js, strlen(js), mi, TK_ROLE_TOOL, 0);
        glue(c, "<|eot_id|>", mi, TK_ROLE_TOOL, 0);
    }
    if (agp) glue(c, "<|start_header_id|>assistant<|end_header_id|>\n\n", -1, TK_ROLE_ASSISTANT, 0);
}

/* Llama-2-chat: the system block joins the first user turn; both turns are .strip()ped;
 * no generation-prompt switch (a user turn already ends in " [/INST]"). */
static void r_llama2(tk_chat_spans *c, const tk_chat_msg *m, size_t n) {
    bool sys = m[0].role == TK_ROLE_SYSTEM;
    size_t start = sys ? 1 : 0;
    if (!alternating(c, m, n, start)) return;
    for (size_t i = start; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        if (r == TK_ROLE_USER) {
            glue(c, "<s>", mi, r, 0);
            glue(c, "[INST] ", mi, r, 0);
            size_t from = c->n;
            if (i == start && sys) {
                glue(c, "<<SYS>>\n", 0, TK_ROLE_SYSTEM, 0);
                content(c, m[0].content, strlen(m[0].content), 0, TK_ROLE_SYSTEM, 0);
                glue(c, "\n<</SYS>>\n\n", 0, TK_ROLE_SYSTEM, 0);
            }
            content(c, m[i].content, strlen(m[i].content), mi, r, 0);
            strip_spans(c, from);
            glue(c, " [/INST]", mi, r, 0);
        } else {
            const char *s = m[i].content;
            size_t len = strlen(s);
            strip(&s, &len);
            glue(c, " ", mi, r, 0);
            content(c, s, len, mi, r, 1);
            glue(c, " ", mi, r, 1);
            glue(c, "</s>", mi, r, 1);
        }
    }
}

/* Mistral "v1" (Mistral-7B-Instruct-v0.1/v0.2 current template) and the pre-v1 template. */
static void r_mistral(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool legacy) {
    bool sys = m[0].role == TK_ROLE_SYSTEM;
    if (legacy && sys) {
        fail_msg(c, TK_ERR_UNSUPPORTED, 0, m,
                 "the pre-v1 Mistral template has no system role (the \"mistral\" template folds it into the first user turn)");
        return;
    }
    size_t start = sys ? 1 : 0;
    if (!alternating(c, m, n, start)) return;
    glue(c, "<s>", -1, TK_ROLE_SYSTEM, 0);
    for (size_t i = start; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        if (r == TK_ROLE_USER) {
            glue(c, legacy ? "[INST] " : " [INST] ", mi, r, 0);
            if (i == start && sys) {
                content(c, m[0].content, strlen(m[0].content), 0, TK_ROLE_SYSTEM, 0);
                glue(c, "\n\n", 0, TK_ROLE_SYSTEM, 0);
            }
            content(c, m[i].content, strlen(m[i].content), mi, r, 0);
            glue(c, " [/INST]", mi, r, 0);
        } else {
            if (!legacy) glue(c, " ", mi, r, 0);
            content(c, m[i].content, strlen(m[i].content), mi, r, 1);
            glue(c, "</s>", mi, r, 1);
        }
    }
}

/* Gemma: "assistant" is "model"; content trimmed. Gemma 1/2 reject a system message; Gemma 3
 * prepends it (untrimmed, + "\n\n") to the first turn. */
static void r_gemma(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp, bool v3) {
    bool sys = m[0].role == TK_ROLE_SYSTEM;
    if (sys && !v3) {
        fail_msg(c, TK_ERR_UNSUPPORTED, 0, m,
                 "System role not supported by the Gemma 1/2 template (the \"gemma3\" template prepends it to the first user turn)");
        return;
    }
    size_t start = sys ? 1 : 0;
    if (!alternating(c, m, n, start)) return;
    glue(c, "<bos>", -1, TK_ROLE_SYSTEM, 0);
    for (size_t i = start; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        int t = r == TK_ROLE_ASSISTANT;
        glue(c, "<start_of_turn>", mi, r, 0);
        glue(c, t ? "model\n" : "user\n", mi, r, 0);
        if (i == start && sys) {
            content(c, m[0].content, strlen(m[0].content), 0, TK_ROLE_SYSTEM, 0);
            glue(c, "\n\n", 0, TK_ROLE_SYSTEM, 0);
        }
        const char *s = m[i].content;
        size_t len = strlen(s);
        strip(&s, &len);
        content(c, s, len, mi, r, t);
        glue(c, "<end_of_turn>", mi, r, t);
        glue(c, "\n", mi, r, 0);
    }
    if (agp) glue(c, "<start_of_turn>model\n", -1, TK_ROLE_ASSISTANT, 0);
}

/* Phi-3 (current) and Phi-3.5: <|role|>\n content <|end|>\n; EOS when no generation prompt.
 * The templates ignore any other role, so a tool message is refused rather than dropped. */
static void r_phi3(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp, bool skip_empty_system) {
    static const char *const head[] = {"<|system|>\n", "<|user|>\n", "<|assistant|>\n"};
    for (size_t i = 0; i < n; i++) {
        if (m[i].role == TK_ROLE_TOOL) { fail_msg(c, TK_ERR_UNSUPPORTED, i, m, "the Phi-3 template has no tool role"); return; }
    }
    for (size_t i = 0; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        if (r == TK_ROLE_SYSTEM && skip_empty_system && !m[i].content[0]) continue;
        int t = r == TK_ROLE_ASSISTANT;
        glue(c, head[r], mi, r, 0);
        content(c, m[i].content, strlen(m[i].content), mi, r, t);
        glue(c, "<|end|>", mi, r, t);
        glue(c, "\n", mi, r, 0);
    }
    if (agp) glue(c, "<|assistant|>\n", -1, TK_ROLE_ASSISTANT, 0);
    else glue(c, "<|endoftext|>", -1, TK_ROLE_SYSTEM, 0);
}

/* The original Phi-3 template: BOS; each user turn already opens the assistant turn; system
 * and tool messages are ignored by it, so takumi refuses them. */
static void r_phi3_legacy(tk_chat_spans *c, const tk_chat_msg *m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (m[i].role == TK_ROLE_SYSTEM || m[i].role == TK_ROLE_TOOL) {
            fail_msg(c, TK_ERR_UNSUPPORTED, i, m, "the original Phi-3 template drops system and tool messages (\"phi3\" renders system)");
            return;
        }
    }
    glue(c, "<s>", -1, TK_ROLE_SYSTEM, 0);
    for (size_t i = 0; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        if (r == TK_ROLE_USER) {
            glue(c, "<|user|>\n", mi, r, 0);
            content(c, m[i].content, strlen(m[i].content), mi, r, 0);
            glue(c, "<|end|>\n<|assistant|>\n", mi, r, 0);
        } else {
            content(c, m[i].content, strlen(m[i].content), mi, r, 1);
            glue(c, "<|end|>", mi, r, 1);
            glue(c, "\n", mi, r, 0);
        }
    }
}

/* takumi's Alpaca fallback (specified by the ALPACA template in tools/make_chat_fixtures.py). */
static void r_alpaca(tk_chat_spans *c, const tk_chat_msg *m, size_t n, bool agp) {
    bool sys = m[0].role == TK_ROLE_SYSTEM;
    size_t start = sys ? 1 : 0;
    for (size_t i = start; i < n; i++) {
        if (m[i].role != TK_ROLE_USER && m[i].role != TK_ROLE_ASSISTANT) {
            fail_msg(c, TK_ERR_UNSUPPORTED, i, m, "alpaca: only user and assistant messages after an optional first system message");
            return;
        }
    }
    if (sys) {
        content(c, m[0].content, strlen(m[0].content), 0, TK_ROLE_SYSTEM, 0);
        glue(c, "\n\n", 0, TK_ROLE_SYSTEM, 0);
    } else {
        glue(c, "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n",
             -1, TK_ROLE_SYSTEM, 0);
    }
    for (size_t i = start; i < n; i++) {
        int32_t mi = (int32_t)i;
        tk_role r = m[i].role;
        int t = r == TK_ROLE_ASSISTANT;
        glue(c, t ? "### Response:\n" : "### Instruction:\n", mi, r, 0);
        content(c, m[i].content, strlen(m[i].content), mi, r, t);
        if (t) push(c, "", 0, mi, r, TK_SP_EOS, 1);
        glue(c, "\n\n", mi, r, 0);
    }
    if (agp) glue(c, "### Response:\n", -1, TK_ROLE_ASSISTANT, 0);
}

tk_status tk_chat_spans_render(tk_chat_spans *c, tk_chat_family f, const tk_chat_msg *m, size_t n, const tk_chat_opts *o) {
    memset(c, 0, sizeof *c);
    bool agp = o && o->add_generation_prompt;
    c->f = f;
    if (f <= TK_CHAT_UNKNOWN || f >= TK_CHAT_FAMILY_COUNT)
        return c->st = tk_fail(TK_ERR_ARG, "chat: unknown template family %d (known: %s)", (int)f, tk_chat_family_names());
    if (!m || n == 0) return c->st = tk_fail(TK_ERR_ARG, "chat template %s: no messages", tk_chat_family_name(f));
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)m[i].role > TK_ROLE_TOOL)
            return c->st = tk_fail(TK_ERR_ARG, "chat template %s: message %zu has invalid role %d", tk_chat_family_name(f), i, (int)m[i].role);
        if (!m[i].content)
            return c->st = tk_fail(TK_ERR_ARG, "chat template %s: message %zu has no content", tk_chat_family_name(f), i);
        if (o && o->reasoning && o->reasoning[i] && (f != TK_CHAT_QWEN3 || m[i].role != TK_ROLE_ASSISTANT))
            return c->st = tk_fail(TK_ERR_UNSUPPORTED, "chat template %s: message %zu (%s) has reasoning_content, which %s",
                                   tk_chat_family_name(f), i, ROLE_NAME[m[i].role],
                                   f == TK_CHAT_QWEN3 ? "only assistant messages carry" : "this template does not render");
    }
    switch (f) {
    case TK_CHAT_CHATML: c->marks = MARKS_CHATML; r_chatml(c, m, n, agp, NULL); break;
    case TK_CHAT_SMOLLM2:
        c->marks = MARKS_CHATML;
        r_chatml(c, m, n, agp, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
        break;
    case TK_CHAT_QWEN2: c->marks = MARKS_CHATML; r_chatml(c, m, n, agp, "You are a helpful assistant."); break;
    case TK_CHAT_QWEN25: c->marks = MARKS_QWEN25; r_qwen25(c, m, n, agp); break;
    case TK_CHAT_LLAMA3: c->marks = MARKS_LLAMA3; r_llama3(c, m, n, agp); break;
    case TK_CHAT_LLAMA31: c->marks = MARKS_LLAMA3; r_llama31(c, m, n, agp); break;
    case TK_CHAT_LLAMA2: c->marks = MARKS_LLAMA2; r_llama2(c, m, n); break;
    case TK_CHAT_MISTRAL: c->marks = MARKS_MISTRAL; r_mistral(c, m, n, false); break;
    case TK_CHAT_MISTRAL_LEGACY: c->marks = MARKS_MISTRAL; r_mistral(c, m, n, true); break;
    case TK_CHAT_GEMMA: c->marks = MARKS_GEMMA; r_gemma(c, m, n, agp, false); break;
    case TK_CHAT_GEMMA3: c->marks = MARKS_GEMMA; r_gemma(c, m, n, agp, true); break;
    case TK_CHAT_PHI3: c->marks = MARKS_PHI3; r_phi3(c, m, n, agp, false); break;
    case TK_CHAT_PHI35: c->marks = MARKS_PHI3; r_phi3(c, m, n, agp, true); break;
    case TK_CHAT_PHI3_LEGACY: c->marks = MARKS_PHI3; r_phi3_legacy(c, m, n); break;
    case TK_CHAT_ALPACA: c->marks = MARKS_NONE; r_alpaca(c, m, n, agp); break;
    case TK_CHAT_QWEN3: c->marks = MARKS_QWEN3; r_qwen3(c, m, n, agp, o && o->disable_thinking, o ? o->reasoning : NULL); break;
    default: return c->st = tk_fail(TK_ERR_INTERNAL, "chat: family %d has no renderer", (int)f);
    }
    return c->st;
}

tk_status tk_chat_render_text(tk_chat_family f, const tk_chat_msg *msgs, size_t n, bool add_generation_prompt, tk_buf *out) {
    tk_chat_opts o = {.add_generation_prompt = add_generation_prompt};
    return tk_chat_render_text_opts(f, msgs, n, &o, out);
}

tk_status tk_chat_render_text_opts(tk_chat_family f, const tk_chat_msg *msgs, size_t n, const tk_chat_opts *o, tk_buf *out) {
    if (!out) return tk_fail(TK_ERR_ARG, "tk_chat_render_text: out is NULL");
    tk_chat_spans c;
    tk_status st = tk_chat_spans_render(&c, f, msgs, n, o);
    size_t total = 0;
    for (size_t i = 0; !st && i < c.n; i++) total += c.v[i].len;
    if (!st) st = tk_buf_reserve(out, total + 1);
    for (size_t i = 0; !st && i < c.n; i++) st = tk_buf_append(out, c.v[i].s, c.v[i].len);
    if (!st && out->data == NULL) st = tk_buf_append(out, "", 0);
    tk_chat_spans_free(&c);
    return st;
}

/* ---------------------------------------------------------------- detection */

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* A ChatML template that writes a literal default system message we do not know. */
static bool chatml_unknown_default_system(const char *j) {
    for (const char *p = strstr(j, "<|im_start|>system"); p; p = strstr(p + 1, "<|im_start|>system")) {
        const char *q = p + strlen("<|im_start|>system");
        if (*q == '\n') q++;
        else if (q[0] == '\\' && q[1] == 'n') q += 2;
        else continue;
        if (*q != '\'' && *q != '"') return true;
    }
    return false;
}

tk_chat_family tk_chat_detect(const char *j) {
    if (!j || !*j) return TK_CHAT_UNKNOWN;
    if (has(j, "<|im_start|>")) {
        /* Qwen3's hybrid-thinking template (both published revisions render text messages alike) */
        if (has(j, "<think>") && has(j, "ns.last_query_index") && has(j, "reasoning_content") &&
            has(j, "enable_thinking is defined and enable_thinking is false") &&
            has(j, "loop.last or (not loop.last and reasoning_content)") && has(j, "'<think>\\n\\n</think>\\n\\n'") &&
            !has(j, "enable_thinking !=") && !has(j, "bos_token") && !has(j, "render_content"))
            return TK_CHAT_QWEN3;
        /* other reasoning templates and ones that prepend BOS render differently */
        if (has(j, "<think>") || has(j, "bos_token")) return TK_CHAT_UNKNOWN;
        if (has(j, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")) return TK_CHAT_QWEN25;
        if (has(j, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")) return TK_CHAT_SMOLLM2;
        if (has(j, "You are a helpful assistant.<|im_end|>")) return TK_CHAT_QWEN2;
        if (chatml_unknown_default_system(j) || has(j, "tool_calls")) return TK_CHAT_UNKNOWN;
        return TK_CHAT_CHATML;
    }
    if (has(j, "<|start_header_id|>") && has(j, "<|eot_id|>")) {
        if (has(j, "Cutting Knowledge Date")) return TK_CHAT_LLAMA31;
        if (has(j, "<|start_header_id|>system")) return TK_CHAT_UNKNOWN;  /* a default system block */
        return TK_CHAT_LLAMA3;
    }
    if (has(j, "<start_of_turn>")) return has(j, "first_user_prefix") ? TK_CHAT_GEMMA3 : TK_CHAT_GEMMA;
    if (has(j, "<|user|>") && has(j, "<|assistant|>") && has(j, "<|end|>")) {
        if (has(j, "'<|' + message['role'] + '|>'") || has(j, "tools")) return TK_CHAT_UNKNOWN;
        if (!has(j, "add_generation_prompt")) return has(j, "bos_token") ? TK_CHAT_PHI3_LEGACY : TK_CHAT_UNKNOWN;
        if (has(j, "message['role'] == 'system' and message['content']")) return TK_CHAT_PHI35;
        return TK_CHAT_PHI3;
    }
    if (has(j, "[INST]") && has(j, "[/INST]")) {
        if (has(j, "<<SYS>>")) return TK_CHAT_LLAMA2;
        if (has(j, "[AVAILABLE_TOOLS]") || has(j, "[TOOL_RESULTS]") || has(j, "[SYSTEM_PROMPT]")) return TK_CHAT_UNKNOWN;
        if (has(j, "system_message")) return has(j, "' [INST] '") ? TK_CHAT_MISTRAL : TK_CHAT_UNKNOWN;
        if (has(j, "eos_token + ' '")) return TK_CHAT_UNKNOWN;  /* the first v0.1 template: a space after </s> */
        if (has(j, "'[INST] '") && has(j, "bos_token")) return TK_CHAT_MISTRAL_LEGACY;
    }
    return TK_CHAT_UNKNOWN;
}

tk_status tk_chat_family_from_template_file(const char *path, tk_chat_family *out) {
    if (!path || !out) return tk_fail(TK_ERR_ARG, "tk_chat_family_from_template_file: path and out are required");
    char *text;
    size_t len;
    tk_status st = tk_read_file(path, &text, &len);
    if (st) return st;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    cJSON *root = *p == '{' ? cJSON_ParseWithLength(text, len) : NULL;
    if (root && cJSON_IsObject(root)) {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
        const char *tmpl = NULL;
        if (cJSON_IsString(ct)) tmpl = ct->valuestring;
        else if (cJSON_IsArray(ct)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, ct) {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
                if (!cJSON_IsString(tp)) continue;
                if (!tmpl) tmpl = tp->valuestring;
                if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default")) { tmpl = tp->valuestring; break; }
            }
        }
        if (!tmpl) st = tk_fail(TK_ERR_NOT_FOUND, "%s: no \"chat_template\" string in this JSON file", path);
        else *out = tk_chat_detect(tmpl);
    } else {
        *out = tk_chat_detect(text);   /* a plain Jinja file */
    }
    cJSON_Delete(root);
    free(text);
    return st;
}
