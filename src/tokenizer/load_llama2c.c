/* Tokenizer from a llama2.c tokenizer.bin: int32 max_token_length, then per token
 * (until the end of the file) f32 score, int32 length, bytes. llama2.c's exporter wrote
 * SentencePiece pieces with U+2581 replaced by ' ' and BOS/EOS as "\n<s>\n" / "\n</s>\n";
 * both are undone here so the vocabulary equals the SentencePiece/GGUF one. */
#include "tokenizer/tok_internal.h"
#include <stdio.h>

tk_status tk_tokenizer_from_llama2c(const char *path, tk_tokenizer **out) {
    if (!path || !out) return tk_fail(TK_ERR_ARG, "tk_tokenizer_from_llama2c: NULL argument");
    *out = NULL;
    tk_mapped_file f;
    tk_status st = tk_map_file(path, &f);
    if (st) return st;
    tk_tokenizer *t = tok_new(1024);
    tk_buf piece = {0};
    if (!t) { st = TK_ERR_NOMEM; goto done; }
    t->serial = tok_next_serial();
    if (f.size < 4) { st = tk_fail(TK_ERR_FORMAT, "%s: too short for a llama2.c tokenizer (%zu bytes)", path, f.size); goto done; }
    int32_t max_len;
    memcpy(&max_len, f.data, 4);
    if (max_len <= 0 || max_len > (1 << 20)) { st = tk_fail(TK_ERR_FORMAT, "%s: max_token_length %d is not plausible (not a llama2.c tokenizer?)", path, max_len); goto done; }
    size_t off = 4;
    while (off < f.size) {
        int32_t id = t->n_total;
        if (f.size - off < 8) { st = tk_fail(TK_ERR_FORMAT, "%s: truncated at token %d (offset %zu)", path, id, off); goto done; }
        float score; int32_t len;
        memcpy(&score, f.data + off, 4);
        memcpy(&len, f.data + off + 4, 4);
        off += 8;
        if (len < 0 || len > max_len || (size_t)len > f.size - off) {
            st = tk_fail(TK_ERR_FORMAT, "%s: token %d has length %d (max_token_length %d, %zu bytes left)", path, id, len, max_len, f.size - off);
            goto done;
        }
        if (id >= (1 << 24)) { st = tk_fail(TK_ERR_FORMAT, "%s: more than 2^24 tokens", path); goto done; }
        const char *p = (const char *)f.data + off;
        off += (size_t)len;
        piece.len = 0;
        uint16_t attr = TKA_NORMAL;
        if (id == 0) attr = TKA_UNKNOWN;
        if ((len == 5 && !memcmp(p, "\n<s>\n", 5)) || (len == 6 && !memcmp(p, "\n</s>\n", 6))) {
            st = tk_buf_append(&piece, p + 1, (size_t)len - 2);
            attr = TKA_CONTROL;
        } else {
            st = tk_buf_append(&piece, "", 0);
            for (int32_t i = 0; i < len && !st; i++)
                st = p[i] == ' ' ? tk_buf_append(&piece, "\xE2\x96\x81", 3) : tk_buf_append(&piece, p + i, 1);
            if (tok_parse_byte_piece(piece.data, piece.len) >= 0) attr = TKA_BYTE;
        }
        if (st) goto done;
        if (piece.len == 0) { /* keep ids aligned; an empty piece can never be produced */
            char e[32];
            snprintf(e, sizeof e, "[EMPTY_%d]", id);
            piece.len = 0;
            if ((st = tk_buf_append(&piece, e, strlen(e)))) goto done;
        }
        if (tok_add_piece(t, piece.data, piece.len, score, attr) < 0) { st = TK_ERR_NOMEM; goto done; }
    }
    if (t->n_total < 3) { st = tk_fail(TK_ERR_FORMAT, "%s: only %d tokens", path, t->n_total); goto done; }
    t->n_vocab = t->n_total;
    t->model = TOKM_SPM;
    t->kind = TK_TOKENIZER_SPM;
    snprintf(t->pre_name, sizeof t->pre_name, "spm");
    t->add_space_prefix = t->strip_prefix_on_decode = t->decode_metaspace = true;
    t->byte_fallback = true;
    t->add_bos = true;
    t->unk = 0; t->bos = 1; t->eos = 2;
    if ((st = tok_build_map(t, false))) goto done;
    st = tok_finish(t);
done:
    tk_buf_free(&piece);
    tk_unmap_file(&f);
    if (st) { tk_tokenizer_free(t); return st; }
    *out = t;
    return TK_OK;
}
