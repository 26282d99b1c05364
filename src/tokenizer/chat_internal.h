/* Internal interface between the chat template renderer (chat.c) and the tokenizing
 * half (chat_tokens.c): a rendered conversation as a list of spans. Not public API. */
#ifndef TK_CHAT_INTERNAL_H
#define TK_CHAT_INTERNAL_H
#include "takumi/chat.h"

enum { TK_SP_TEXT = 0, TK_SP_CONTENT, TK_SP_MARK, TK_SP_EOS };

/* One piece of rendered text. */
typedef struct tk_chat_span {
    const char *s;
    size_t len;
    int32_t msg;      /* message index or -1 */
    uint8_t role;     /* tk_role */
    uint8_t kind;     /* TK_SP_TEXT template text, TK_SP_CONTENT message content, TK_SP_MARK template marker that
                         is a special token when the vocabulary has it, TK_SP_EOS the tokenizer's EOS (no text) */
    uint8_t target;   /* 1: trained on */
} tk_chat_span;

/* A rendering in progress / done. */
typedef struct tk_chat_spans {
    tk_chat_family f;
    const char *const *marks;   /* marker strings of this family (NULL-terminated) */
    tk_chat_span *v;
    size_t n, cap;
    char **own;                 /* buffers owned by the rendering (transformed content) */
    size_t n_own, cap_own;
    tk_status st;               /* first failure */
} tk_chat_spans;

/* Renders msgs into *c (which it initialises); o may be NULL (defaults); returns the first failure. Free with
 * tk_chat_spans_free either way. */
tk_status tk_chat_spans_render(tk_chat_spans *c, tk_chat_family f, const tk_chat_msg *m, size_t n, const tk_chat_opts *o);
/* Frees what tk_chat_spans_render allocated. */
void tk_chat_spans_free(tk_chat_spans *c);

#endif
