/* Internal representation shared by the tokenizer sources: the vocabulary (pieces in
 * one arena, a string -> id hash), BPE merges keyed by symbol-id pairs, the special-token
 * list used to split text before the model runs, and the pre-tokenizer pipeline.
 * Loaders (GGUF, HF tokenizer.json, llama2.c) fill a tk_tokenizer; encoders read it. */
#ifndef TK_TOKENIZER_INTERNAL_H
#define TK_TOKENIZER_INTERNAL_H
#include "takumi/tokenizer.h"
#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Token attributes (llama.cpp's llama_token_attr subset). */
enum {
    TKA_UNDEFINED = 0, TKA_UNKNOWN = 1 << 0, TKA_UNUSED = 1 << 1, TKA_NORMAL = 1 << 2,
    TKA_CONTROL = 1 << 3, TKA_USER = 1 << 4, TKA_BYTE = 1 << 5,
    TKA_LSTRIP = 1 << 7, TKA_RSTRIP = 1 << 8,
};

/* Models. */
typedef enum { TOKM_BPE = 0, TOKM_SPM, TOKM_WPM } tok_model;

/* String -> id hash over the tokenizer's own pieces (open addressing; slots hold ids). */
typedef struct tok_strmap { int32_t *slot; uint32_t mask; uint32_t used; } tok_strmap;

/* (left symbol, right symbol) -> (rank, merged symbol). */
typedef struct tok_merge { uint64_t key; int32_t rank; int32_t id; } tok_merge;
typedef struct tok_mergemap { tok_merge *e; uint32_t mask; uint32_t used; } tok_mergemap;

/* One split step of a pre-tokenizer. */
typedef enum {
    PS_GPT2,        /* llama.cpp's hand-written GPT-2 splitter */
    PS_LLAMA3,      /* llama.cpp's hand-written Llama-3 splitter */
    PS_RE_COLLAPSED,/* llama.cpp std::regex emulation on category-collapsed bytes */
    PS_RE_WIDE,     /* llama.cpp std::wregex emulation on codepoints (non-ASCII space -> VT) */
    PS_RE_HF,       /* HF tokenizers Split: PCRE2 with UTF+UCP on the text itself */
} tok_split_kind;

typedef enum { SB_ISOLATED = 0, SB_REMOVED, SB_MERGED_PREV, SB_MERGED_NEXT, SB_CONTIGUOUS } tok_split_behavior;

typedef struct tok_split {
    tok_split_kind kind;
    tok_split_behavior behavior; /* PS_RE_HF only; llama.cpp steps are always isolated */
    bool invert;
    pcre2_code *re;
    /* PS_RE_COLLAPSED whose regex matches exactly one character (llama.cpp's "\\p{N}" steps):
     * the bytes of the collapsed text it matches, found by running the regex on each byte at
     * load time; the splitter then needs no regex engine (same pieces, faster). */
    bool one_char;
    uint64_t one_set[4];
} tok_split;

/* HF normalizer / text transforms applied to each text fragment before splitting. */
typedef enum { TN_PREPEND, TN_REPLACE, TN_LOWERCASE, TN_METASPACE, TN_PREFIX_SPACE, TN_NFC } tok_norm_kind;
typedef struct tok_norm {
    tok_norm_kind kind;
    char *a; size_t alen;   /* prepend text / replace pattern (string) / metaspace replacement */
    char *b; size_t blen;   /* replace content */
    pcre2_code *re;         /* replace pattern when it is a regex */
    int scheme;             /* metaspace / prefix space: 0 always, 1 first fragment only, 2 never */
} tok_norm;

struct tk_tokenizer {
    uint64_t serial;      /* unique per tokenizer: keys the per-thread encoder caches */
    tk_tokenizer_kind kind;
    tok_model model;
    bool byte_level;      /* BPE over GPT-2 byte characters */
    bool ignore_merges;   /* a word that is itself a token skips merging (Llama-3, HF ignore_merges) */
    bool byte_fallback;   /* characters outside the vocabulary become <0xXX> tokens */
    bool hf;              /* loaded from tokenizer.json: HF semantics for unknown characters */
    bool add_space_prefix;/* SPM: " " before the first fragment and after each special token */
    bool prefix_first_only; /* the dummy prefix goes only before the very first fragment */
    bool strip_prefix_on_decode; /* decode removes the dummy prefix space again */
    bool decode_metaspace;/* decode maps U+2581 to ' ' */
    bool wpm_lowercase, wpm_strip_accents;
    bool fuse_unk;

    int32_t n_vocab;      /* real tokens: ids [0, n_vocab) */
    int32_t n_total;      /* + virtual symbols (merge results that are not tokens) */
    int32_t cap_total;
    char *arena; size_t arena_len, arena_cap;
    uint32_t *off, *len;  /* piece of each symbol */
    float *score;
    uint16_t *attr;
    tok_strmap map;
    tok_mergemap merges;
    int max_token_len;

    int32_t *specials; size_t n_specials; /* split out before the model, longest first */

    int32_t bos, eos, eot, eom, pad, unk, sep;
    int32_t eog[16]; int n_eog;   /* end-of-generation tokens (tok_finish) */
    bool add_bos, add_eos, add_sep;

    int32_t byte_sym[256];   /* byte-level: symbol of each byte's character (-1 if none) */
    int32_t byte_tok[256];   /* <0xXX> token of each byte (-1 if none) */
    bool byte_ok[256];       /* byte-level: the byte's character is an ordinary token */
    bool bytes_incomplete;   /* byte-level: some byte >= 0x80 has no ordinary token */
    bool spm_barrier[128];   /* SPM: ASCII bytes inside no token longer than one character */

    tok_split *splits; size_t n_splits;
    tok_norm *norms; size_t n_norms;

    char pre_name[48];
    char *chat_template;
};

/* ---- vocab.c ---- */
/* Allocates an empty tokenizer with room for n tokens; NULL on allocation failure. */
tk_tokenizer *tok_new(int32_t n_hint);
/* Appends a symbol with the given piece; returns its id or -1 (message set). Does not index it. */
int32_t tok_add_piece(tk_tokenizer *t, const char *s, size_t n, float score, uint16_t attr);
/* Indexes ids [0, n_total) in the string map; a later duplicate replaces an earlier one unless keep_first. */
tk_status tok_build_map(tk_tokenizer *t, bool keep_first);
/* Looks up a piece; returns its id (possibly virtual, >= n_vocab) or -1. */
int32_t tok_lookup(const tk_tokenizer *t, const char *s, size_t n);
/* Looks up a piece among real tokens only. */
static inline int32_t tok_lookup_token(const tk_tokenizer *t, const char *s, size_t n) {
    int32_t id = tok_lookup(t, s, n);
    return id < t->n_vocab ? id : -1;
}
/* Finds or creates a (virtual) symbol for s; -1 on allocation failure. */
int32_t tok_intern(tk_tokenizer *t, const char *s, size_t n);
static inline const char *tok_piece(const tk_tokenizer *t, int32_t id) { return t->arena + t->off[id]; }
/* Adds merge (a, b) with the given rank (the first one of a pair wins). */
tk_status tok_add_merge(tk_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* Finds merge (a, b); returns the entry or NULL. */
const tok_merge *tok_find_merge(const tk_tokenizer *t, int32_t a, int32_t b);
/* Builds the special-token list (control, user-defined and unknown tokens, longest first) and byte tables. */
tk_status tok_finish(tk_tokenizer *t);
/* Parses "<0xXX>" into a byte; -1 if s is not of that form. */
int tok_parse_byte_piece(const char *s, size_t n);
/* Adds a split step; re is owned by the tokenizer afterwards. */
tk_status tok_add_split(tk_tokenizer *t, tok_split_kind kind, tok_split_behavior b, bool invert, pcre2_code *re);
/* Compiles a regex for a split step; fails with a message naming the pattern. */
tk_status tok_compile_regex(const char *pat, size_t n, tok_split_kind kind, pcre2_code **out);
/* Configures llama.cpp's pre-tokenizer for GGUF `tokenizer.ggml.pre` (NULL or "" -> default). */
tk_status tok_set_llamacpp_pre(tk_tokenizer *t, const char *pre);

/* ---- encoders (encode.c, spm.c, wpm.c) ---- */
typedef struct { uint32_t start, n; } tok_seg;                      /* a run of units */
typedef struct { uint32_t start, n; bool match; } tok_piece_t;     /* regex split piece */
typedef struct { int32_t id, prev, next; uint32_t start, n; } bpe_sym;
typedef struct { int32_t rank, left, right, id; uint32_t ln, rn; } bpe_item;
typedef struct { float score; int32_t left, right; uint32_t size; } spm_item;
/* Word-cache slot (16 bytes): the word's ids start at wc_keys + voff, its bytes follow them. */
typedef struct { uint64_t h; uint32_t voff; uint16_t klen, vn; } wc_ent;
/* One slot of the per-thread merge-lookup cache: key as in tok_mergemap, rank -1 = no merge. */
typedef struct { uint64_t key; int32_t rank, id; } mc_ent;
/* The same in half the space, for vocabularies whose ids and ranks fit 16 bits (rank 0xFFFF = no merge). */
typedef struct { uint32_t key; uint16_t rank, id; } mc16_ent;
#define TOK_MC_BITS 14
#define TOK_MC16_BITS 15
#define TOK_MC_BYTES ((size_t)16 << TOK_MC_BITS) /* == 8 << TOK_MC16_BITS */

/* Per-thread scratch of the encoders; see tok_session_get. */
typedef struct tok_session {
    const tk_tokenizer *t;
    uint64_t serial;
    tk_buf text, aux;                      /* the fragment after transforms; a spare buffer */
    uint32_t *cp, *boff; size_t nu, cap_u, cap_boff; /* units: codepoint and byte offset */
    uint8_t *fl; size_t cap_fl;            /* units: category flags */
    int32_t *b2u; size_t cap_b2u;          /* byte offset -> unit (-1 inside a unit) */
    tok_seg *seg, *seg2; size_t nseg, nseg2, cap_seg, cap_seg2;
    char *coll; size_t cap_coll;           /* llama.cpp collapsed text */
    char *wide; size_t cap_wide, wlen;     /* llama.cpp wregex text (UTF-8) */
    uint32_t *woff; size_t cap_woff; int32_t *wb2u; size_t cap_wb2u;
    bool have_coll, have_wide, have_b2u;
    bool unencodable;                     /* build_units: an invalid byte that has no byte-level token */
    tok_piece_t *piece; size_t npiece, cap_piece;
    bpe_sym *sym; size_t cap_sym;
    bpe_item *heap; size_t nheap, cap_heap;
    spm_item *sheap; size_t nsheap, cap_sheap;
    wc_ent *wc; uint32_t wc_mask, wc_used; tk_buf wc_keys; tk_ivec word; /* wc_keys: each entry's ids, then its word */
    union { mc_ent *mc; mc16_ent *mc16; }; /* TOK_MC_BYTES, direct-mapped; mc16 when mc_small */
    bool mc_small;
    pcre2_match_data *md; pcre2_match_context *mctx; pcre2_jit_stack *jit;
} tok_session;

#define TOK_GROW(ptr, cap, need) do {                                  \
        if ((need) > (cap)) {                                          \
            size_t nc_ = (cap) ? (cap) : 64;                           \
            while (nc_ < (need)) { nc_ *= 2; }                         \
            void *np_ = tk_realloc((ptr), nc_ * sizeof *(ptr));        \
            if (!np_) { return TK_ERR_NOMEM; }                         \
            (ptr) = np_; (cap) = nc_;                                  \
        }                                                              \
    } while (0)

/* Returns this thread's encoder scratch bound to t (caches are reset when t changes); NULL on OOM. */
tok_session *tok_session_get(const tk_tokenizer *t);
/* Pre-tokenizes and encodes one text fragment (no special tokens inside). first: no text or
 * token precedes it; after_special: it follows a special token. */
tk_status tok_encode_fragment(tok_session *s, const char *text, size_t len, bool first, bool after_special, tk_ivec *out);
/* SentencePiece-style encoding of one fragment (llama.cpp llm_tokenizer_spm); prefix: add the dummy space. */
tk_status tok_spm_encode(tok_session *s, const char *text, size_t len, bool prefix, tk_ivec *out);
/* WordPiece encoding of one fragment (llama.cpp llm_tokenizer_wpm). */
tk_status tok_wpm_encode(tok_session *s, const char *text, size_t len, tk_ivec *out);
/* Next unique tokenizer serial. */
uint64_t tok_next_serial(void);

#endif
