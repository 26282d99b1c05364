/* The text side of generation, shared by tk_generate (src/infer/generate.c) and
 * tk_generate_batch (src/infer/generate_batch.c): sampled ids become UTF-8 text streamed
 * as it completes; stop strings are matched on the decoded text across token boundaries
 * and never emitted (text that could still begin a stop string is held back until it
 * cannot). One tk_gen_text per sequence. */
#ifndef TK_INFER_GEN_TEXT_H
#define TK_INFER_GEN_TEXT_H
#include "takumi/model.h"

typedef struct tk_gen_text {
    const tk_gen_params *p;   /* stop strings (must outlive the stream) */
    tk_gen_text_fn on_text;   /* receives emitted text; may be NULL */
    void *ud;
    tk_detok_stream ds;
    tk_buf pend, piece;       /* decoded text not yet emitted; one id's text */
} tk_gen_text;

/* Checks p's stop strings (non-NULL, non-empty); the message names `who`. Thread-safe. */
tk_status tk_gen_stops_check(const tk_gen_params *p, const char *who);
/* Starts a stream for a continuation of a prompt ending in token prev (-1: none). */
void tk_gen_text_init(tk_gen_text *g, const tk_tokenizer *tok, int32_t prev, const tk_gen_params *p,
                      tk_gen_text_fn on_text, void *ud);
/* Adds sampled id's text and emits what can no longer begin a stop string. Sets *stop to
 * TK_GEN_STOP_STRING (the text before the stop string emitted) or TK_GEN_STOP_CALLBACK
 * (on_text returned false) when generation must end; leaves it unchanged otherwise. */
tk_status tk_gen_text_push(tk_gen_text *g, int32_t id, tk_gen_stop *stop);
/* Ends a stream that did not stop on a string or the callback: emits incomplete UTF-8 and
 * held text up to a stop string completed by the flush (then *stop = TK_GEN_STOP_STRING). */
tk_status tk_gen_text_finish(tk_gen_text *g, tk_gen_stop *stop);
void tk_gen_text_free(tk_gen_text *g);
#endif
