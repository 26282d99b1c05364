/* libFuzzer target for the tokenizer.json reader: load the input with
 * tk_tokenizer_from_hf_memory; when it loads, encode a fixed multilingual string and the
 * input bytes themselves (with and without special-token parsing and BOS/EOS), decode the
 * ids whole and through the streaming decoder, and query every accessor. A rejected input
 * must leave no tokenizer and carry a message; any crash, sanitizer report or leak is a bug. */
#include "takumi.h"
#include <stdlib.h>
#include <string.h>

static const char k_text[] =
    "Hello world! It's 2024-05-17, 3.14 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87 "
    "\xf0\x9f\xa6\x99\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 <s>x</s> <|im_start|>user\n\tdef f(): pass   \xff\xfe";

static void exercise(const tk_tokenizer *t, const char *s, size_t n) {
    static const int flags[] = {0, TK_TOK_PARSE_SPECIAL, TK_TOK_ADD_SPECIAL | TK_TOK_PARSE_SPECIAL};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        tk_ivec ids = {0};
        tk_buf out = {0}, st = {0};
        if (tk_tokenize(t, s, n, flags[f], &ids) != TK_OK) abort(); /* encoding never fails on valid tokenizers */
        for (size_t i = 0; i < ids.len; i++)
            if (ids.data[i] < 0 || ids.data[i] >= tk_tokenizer_n_vocab(t)) abort();
        if (tk_detokenize(t, ids.data, ids.len, f == 1, &out) != TK_OK) abort();
        tk_detok_stream ds;
        tk_detok_stream_init(&ds, t);
        for (size_t i = 0; i < ids.len; i++) if (tk_detok_stream_push(&ds, ids.data[i], &st) != TK_OK) abort();
        if (tk_detok_stream_flush(&ds, &st) != TK_OK) abort();
        tk_ivec_free(&ids);
        tk_buf_free(&out);
        tk_buf_free(&st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_tokenizer *t = NULL;
    if (tk_tokenizer_from_hf_memory((const char *)data, size, "fuzz.json", &t) != TK_OK) {
        if (t || !tk_last_error()[0]) abort();
        return 0;
    }
    volatile int64_t sink = tk_tokenizer_n_vocab(t) + tk_tokenizer_bos(t) + tk_tokenizer_eos(t) + tk_tokenizer_eot(t) +
                            tk_tokenizer_pad(t) + tk_tokenizer_unk(t) + tk_tokenizer_adds_bos(t) + tk_tokenizer_adds_eos(t) +
                            tk_tokenizer_kind_of(t) + (int64_t)strlen(tk_tokenizer_pre_name(t)) + (tk_tokenizer_chat_template(t) != NULL);
    for (int32_t id = 0; id < tk_tokenizer_n_vocab(t) && id < 4096; id++) {
        size_t len = 0;
        const char *p = tk_tokenizer_piece(t, id, &len);
        if (!p) abort();
        sink += (int64_t)len + tk_tokenizer_is_special(t, id) + tk_tokenizer_is_eog(t, id);
    }
    (void)sink;
    exercise(t, k_text, sizeof k_text - 1);
    exercise(t, (const char *)data, size < 4096 ? size : 4096);
    tk_tokenizer_free(t);
    return 0;
}
