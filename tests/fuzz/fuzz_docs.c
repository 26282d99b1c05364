/* libFuzzer target for the document readers and the model-output parsers of `data synth`. The
 * first byte picks what the rest is: (0) Markdown, (1) HTML, (2) plain text — each parsed and
 * chunked at a size from the second byte; (3) a model's question/answer output; (4) a list of
 * paraphrases; (5) an answer and a chunk (split at the first 0xFF byte) for the grounding check.
 * Properties: never a crash or sanitizer report; a refusal carries a message; blocks have spans
 * inside the input and valid UTF-8 text; every chunk fits the size; parsed items are non-empty
 * (questions) and never longer than the input. */
#include "takumi.h"
#include "data/docs_internal.h"
#include "data/data_internal.h"
#include <stdlib.h>
#include <string.h>

static void valid(const char *s) {
    bool nul;
    if (tk_utf8_check(s, strlen(s), &nul) != strlen(s)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 2) return 0;
    int what = d[0] % 6;
    size_t size = 8 + d[1] % 200;
    const char *s = (const char *)d + 2;
    size_t len = n - 2;
    if (what <= 2) {
        tk_doc doc = {0};
        tk_doc_kind kinds[] = {TK_DOC_MARKDOWN, TK_DOC_HTML, TK_DOC_TEXT};
        tk_status st = tk_doc_parse(s, len, kinds[what], "fuzz", &doc);
        if (st != TK_OK && !tk_last_error()[0]) abort();
        if (st == TK_OK) {
            for (size_t i = 0; i < doc.n_blocks; i++) {
                const tk_doc_block *b = &doc.blocks[i];
                if (b->start > b->end || b->end > len || b->level < 0 || b->level > 6 || !b->text[0]) abort();
                valid(b->text);
            }
            tk_chunk_params p = {.max_size = size};
            tk_chunk *c = NULL;
            size_t nc = 0;
            if (tk_doc_chunk(&doc, &p, &c, &nc) != TK_OK) abort();
            for (size_t i = 0; i < nc; i++) {
                if (tk_utf8_count(c[i].text, strlen(c[i].text)) > size || c[i].start > c[i].end || c[i].end > len) abort();
                valid(c[i].text), valid(c[i].heading);
            }
            tk_chunks_free(c, nc);
        }
        tk_doc_free(&doc);
        return 0;
    }
    char *t = malloc(len + 1);
    if (!t) return 0;
    memcpy(t, s, len);
    t[len] = 0;
    if (what == 3) {
        tk_qa *qa = NULL;
        size_t k = 0;
        if (tk_synth_parse_qa(t, &qa, &k) != TK_OK) abort();
        for (size_t i = 0; i < k; i++)
            if (!qa[i].q[0] || strlen(qa[i].q) > len || strlen(qa[i].a) > len) abort();
        tk_qa_free(qa, k);
    } else if (what == 4) {
        char **v = NULL;
        size_t k = 0;
        if (tk_synth_parse_list(t, &v, &k) != TK_OK) abort();
        for (size_t i = 0; i < k; i++) {
            if (!v[i][0] || strlen(v[i]) > len) abort();
            tk_para_check(t, v[i], v, i, 3.0);
        }
        tk_strings_free(v, k);
    } else {
        char *sep = memchr(t, 0xFF, len);
        const char *chunk = "";
        if (sep) { *sep = 0; chunk = sep + 1; }
        char fact[32];
        tk_ground g = tk_ground_check(t, chunk, fact, sizeof fact);
        if ((unsigned)g > TK_GROUND_UNSUPPORTED || strlen(fact) >= sizeof fact) abort();
        if (g == TK_GROUND_OK && fact[0]) abort();
    }
    free(t);
    return 0;
}
