/* Tokenizers: byte-level BPE (GPT-2 / Llama-3 / Qwen2 / SmolLM2 styles, with the
 * pre-tokenizer each model declares) and SentencePiece-style BPE (Llama-2, Mistral,
 * TinyLlama; byte fallback). Loaded from GGUF metadata, HF tokenizer.json, or a
 * llama2.c tokenizer.bin. Encoding is exact against the reference implementations. */
#ifndef TAKUMI_TOKENIZER_H
#define TAKUMI_TOKENIZER_H
#include "takumi/core.h"
#include "takumi/gguf.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct tk_tokenizer tk_tokenizer;

typedef enum tk_tokenizer_kind { TK_TOKENIZER_BPE = 0, TK_TOKENIZER_SPM = 1 } tk_tokenizer_kind;

/* Flags for tk_tokenize. */
enum {
    TK_TOK_ADD_SPECIAL   = 1 << 0, /* add BOS (and EOS) as the model's config asks */
    TK_TOK_PARSE_SPECIAL = 1 << 1, /* text like "<|im_start|>" becomes the special token */
};

/* Builds a tokenizer from a GGUF file's tokenizer.ggml.* metadata. Free with tk_tokenizer_free. */
tk_status tk_tokenizer_from_gguf(const tk_gguf *g, tk_tokenizer **out);
/* Builds a tokenizer from an HF tokenizer.json (+ optional tokenizer_config.json for BOS/EOS/chat template; may be NULL). */
tk_status tk_tokenizer_from_hf(const char *tokenizer_json, const char *tokenizer_config_json, tk_tokenizer **out);
/* Same from tokenizer.json text in memory (len bytes; copied as needed); name is used in messages. */
tk_status tk_tokenizer_from_hf_memory(const char *json, size_t len, const char *name, tk_tokenizer **out);
/* Builds a tokenizer from a llama2.c tokenizer.bin (SentencePiece-style; BOS=1, EOS=2). */
tk_status tk_tokenizer_from_llama2c(const char *tokenizer_bin, tk_tokenizer **out);
/* Loads the tokenizer that belongs to a model: model_path may be a .gguf file, an HF folder
 * (tokenizer.json [+ tokenizer_config.json]) or a tokenizer.json; tokenizer_path (may be NULL)
 * overrides it and may be a .gguf, a tokenizer.json, an HF folder or a llama2.c tokenizer.bin
 * (required for a llama2.c checkpoint, whose vocabulary size is then checked). Free with tk_tokenizer_free. */
tk_status tk_tokenizer_load(const char *model_path, const char *tokenizer_path, tk_tokenizer **out);
/* Frees a tokenizer; accepts NULL. */
void tk_tokenizer_free(tk_tokenizer *t);

tk_tokenizer_kind tk_tokenizer_kind_of(const tk_tokenizer *t);
/* Short description of the pre-tokenizer ("smollm", "llama3", "qwen2", "gpt2", "spm", …). */
const char *tk_tokenizer_pre_name(const tk_tokenizer *t);
int32_t tk_tokenizer_n_vocab(const tk_tokenizer *t);
/* Special ids (-1 when the model has none). eot is the end-of-turn token (e.g. <|im_end|>, <|eot_id|>), else eos. */
int32_t tk_tokenizer_bos(const tk_tokenizer *t);
int32_t tk_tokenizer_eos(const tk_tokenizer *t);
int32_t tk_tokenizer_eot(const tk_tokenizer *t);
int32_t tk_tokenizer_pad(const tk_tokenizer *t);
/* Unknown-token id (-1 when the vocabulary has none). */
int32_t tk_tokenizer_unk(const tk_tokenizer *t);
/* True for tokens that end generation: EOS, end-of-turn, end-of-message, and llama.cpp's
 * end-of-generation texts (<|im_end|>, <|eot_id|>, <|endoftext|>, ...) present as control tokens. */
bool tk_tokenizer_is_eog(const tk_tokenizer *t, int32_t id);
/* Whether encoding with TK_TOK_ADD_SPECIAL prepends BOS / appends EOS. */
bool tk_tokenizer_adds_bos(const tk_tokenizer *t);
bool tk_tokenizer_adds_eos(const tk_tokenizer *t);
/* True for control/special tokens (never produced from plain text unless PARSE_SPECIAL). */
bool tk_tokenizer_is_special(const tk_tokenizer *t, int32_t id);
/* Id of the token whose text is exactly s (special/added tokens included), or -1. */
int32_t tk_tokenizer_find(const tk_tokenizer *t, const char *s);
/* The model's chat template (Jinja source) if the file carried one, else NULL. */
const char *tk_tokenizer_chat_template(const tk_tokenizer *t);

/* Encodes len bytes of UTF-8 text, appending ids to *out (on failure *out keeps its old length).
 * Invalid UTF-8 is encoded byte-wise, never rejected (llama.cpp would replace it by U+FFFD).
 * Thread-safe: scratch memory and a word cache are kept per thread. */
tk_status tk_tokenize(const tk_tokenizer *t, const char *text, size_t len, int flags, tk_ivec *out);
/* Decodes ids to text, appending to *out (special tokens rendered as their text unless skip_special).
 * Bytes are reproduced exactly (no clean-up of spaces), so decode(encode(s)) == s for byte-level
 * BPE; for SentencePiece-style tokenizers the dummy-prefix space that encoding adds at the start
 * and after each special token is removed again, so the same holds there. Exceptions, all by the
 * model's own definition: WordPiece (lowercases, drops accents and spaces), NFC/Lowercase/Replace
 * normalizers, ByteLevel add_prefix_space (the added space stays, as in HF), whitespace removed by
 * lstrip/rstrip special tokens (Phi-3), and invalid UTF-8 bytes the vocabulary cannot express
 * (they come back as U+FFFD). Ids outside the vocabulary fail with TK_ERR_RANGE. */
tk_status tk_detokenize(const tk_tokenizer *t, const int32_t *ids, size_t n, bool skip_special, tk_buf *out);
/* The raw vocabulary entry of id (as stored; NULL if out of range). */
const char *tk_tokenizer_piece(const tk_tokenizer *t, int32_t id, size_t *len);

/* Appends the bytes id adds to a text after token prev (-1: at the start of the text), as tk_detokenize renders
   them (special tokens as their text, an SPM dummy-prefix space dropped where tk_detokenize drops it), before any
   UTF-8 assembly: a byte token gives its one byte. Fails with TK_ERR_RANGE for an id outside the vocabulary.
   Thread-safe. */
tk_status tk_token_bytes(const tk_tokenizer *t, int32_t id, int32_t prev, tk_buf *out);

/* Streaming decoder for generation: feed ids one at a time; emits only complete UTF-8 (a byte
 * that can never form a character is emitted as U+FFFD). After init, set prev to the last
 * prompt token when continuing a prompt (prev -1 means "start of text": an SPM dummy-prefix
 * space is then dropped, as in tk_detokenize). */
typedef struct tk_detok_stream {
    const tk_tokenizer *tok;
    char pending[16];
    int n_pending;
    int32_t prev;   /* previous id, or -1 at start (SPM strips the leading space after BOS) */
} tk_detok_stream;
/* Starts a stream. */
void tk_detok_stream_init(tk_detok_stream *s, const tk_tokenizer *t);
/* Appends the text completed by id to *out (may append nothing while a UTF-8 sequence is incomplete). */
tk_status tk_detok_stream_push(tk_detok_stream *s, int32_t id, tk_buf *out);
/* Appends any remaining bytes (as U+FFFD if incomplete). */
tk_status tk_detok_stream_flush(tk_detok_stream *s, tk_buf *out);

#ifdef __cplusplus
}
#endif
#endif
