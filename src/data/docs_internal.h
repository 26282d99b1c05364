/* Internals of the document readers (docs_read.c, docs_html.c, docs_pdf.c), the chunker and
 * synthesis (chunk.c, synth*.c, augment.c). Not public API (tests include it). */
#ifndef TK_DOCS_INTERNAL_H
#define TK_DOCS_INTERNAL_H
#include "core/core.h"
#include "takumi/synth.h"
#include "takumi/generate_batch.h"

/* Appends a block (text copied, white space trimmed; an empty text adds nothing). */
tk_status tk_doc_add(tk_doc *d, int level, const char *text, size_t len, size_t start, size_t end, int page);
/* Appends the paragraphs of plain text buf[0..len) (split at blank lines; offsets shifted by base) on page. */
tk_status tk_doc_add_text(tk_doc *d, const char *buf, size_t len, size_t base, int page);
/* HTML: h1-h6 become headings; p, div, li, br, tr, … end paragraphs; script/style/head/template skipped;
 * entities decoded; white space collapsed. */
tk_status tk_doc_parse_html(const char *buf, size_t len, tk_doc *d);
/* Runs argv (argv[0] looked up in PATH) with no shell, its stdout collected into *out (NUL-terminated, *len);
 * stderr's first line goes into the message of a non-zero exit. */
tk_status tk_run_capture(const char *const *argv, char **out, size_t *len);
/* A PDF through pdftotext: pages at form feeds. */
tk_status tk_doc_read_pdf(const char *path, tk_doc *d);

/* Number of UTF-8 code points in s[0..n) (continuation bytes not counted). */
size_t tk_utf8_count(const char *s, size_t n);

/* Generates the texts answering conversations msgs[i][0..n_msgs[i]) (i < n) with g's model, batched,
 * request i seeded from g->seed and keys[i]; texts[i] malloc'd (caller frees); over[i] (over may be NULL) true when the
 * prompt alone filled the model's context (nothing generated). Adds to *n_generated, *secs. */
tk_status tk_synth_generate(const tk_synth_gen *g, const tk_chat_msg *const *msgs, const size_t *n_msgs, const uint64_t *keys,
                            size_t n, int32_t max_tokens, char **texts, bool *over, int64_t *n_generated, double *secs);
/* The request asking for n paraphrases of question (in the question's own language). Appends to out. */
tk_status tk_synth_para_prompt(const char *question, int n, tk_buf *out);
#endif
