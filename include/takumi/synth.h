/* Training data from documents: read Markdown, HTML, plain text and PDF (through poppler-utils'
 * `pdftotext`) into blocks (headings and paragraphs with their byte span in the source), split
 * them into chunks along heading/paragraph boundaries, and have a model write question/answer
 * pairs grounded in each chunk (`takumi data synth`), or paraphrase the user turns of existing
 * chat data (`takumi data augment`). A synthesized answer whose facts (numbers, capitalised names,
 * words in non-Latin scripts, hence dates) do not appear in its chunk is dropped and counted. */
#ifndef TAKUMI_SYNTH_H
#define TAKUMI_SYNTH_H
#include "takumi/core.h"
#include "takumi/model.h"
#include "takumi/chat.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---- documents ------------------------------------------------------------ */
typedef enum tk_doc_kind { TK_DOC_AUTO = 0, TK_DOC_MARKDOWN, TK_DOC_HTML, TK_DOC_TEXT, TK_DOC_PDF } tk_doc_kind;
/* "auto", "markdown", "html", "text", "pdf". Thread-safe. */
const char *tk_doc_kind_name(tk_doc_kind k);
/* The kind a path's extension names (.md .markdown -> markdown, .html .htm .xhtml -> html, .pdf -> pdf, else text). Thread-safe. */
tk_doc_kind tk_doc_kind_from_path(const char *path);

typedef struct tk_doc_block {
    int level;            /* 1..6: a heading of that level; 0: a paragraph */
    char *text;           /* UTF-8, NUL-terminated, white space collapsed (HTML, PDF), entities decoded (HTML) */
    size_t start, end;    /* byte span in the source file (PDF: in pdftotext's UTF-8 output) */
    int page;             /* PDF: 1-based page; 0 for other kinds */
} tk_doc_block;

typedef struct tk_doc {
    tk_doc_kind kind;
    tk_doc_block *blocks; size_t n_blocks;
    int n_pages;          /* PDF: pages read */
    int n_empty_pages;    /* PDF: pages without extractable text (first one in first_empty_page) */
    int first_empty_page;
} tk_doc;

/* Parses len bytes of a Markdown, HTML or text document (name in messages). Refuses, with a message naming
 * name (and the line of the first bad byte), text that is not UTF-8 (a UTF-16 BOM says so), holds NUL bytes,
 * or has no text at all (TK_ERR_FORMAT). out must be zeroed; free with tk_doc_free (also on failure). Thread-safe. */
tk_status tk_doc_parse(const char *buf, size_t len, tk_doc_kind kind, const char *name, tk_doc *out);
/* Reads path (kind AUTO: by extension) and parses it; a PDF goes through `pdftotext -layout -enc UTF-8`
 * (fork/exec with an argument vector; $TAKUMI_PDFTOTEXT overrides the program), pages split at form feeds.
 * A PDF without extractable text (scanned) is refused naming its pages. Thread-safe. */
tk_status tk_doc_read(const char *path, tk_doc_kind kind, tk_doc *out);
void tk_doc_free(tk_doc *d);   /* NULL and zeroed docs are fine */

/* ---- chunks --------------------------------------------------------------- */
typedef struct tk_chunk {
    char *text;           /* the chunk's paragraphs joined by blank lines */
    char *heading;        /* the heading path, "Top > Section > Subsection" ("" before any heading) */
    size_t start, end;    /* byte span in the source (from the first paragraph's start to the last one's end) */
    int page;             /* PDF: page of the first paragraph; 0 otherwise */
} tk_chunk;
typedef struct tk_chunk_params {
    size_t max_size;              /* the largest chunk: characters (code points), or tokens with tok (default 1500) */
    const tk_tokenizer *tok;      /* NULL: size in characters */
} tk_chunk_params;
tk_chunk_params tk_chunk_default_params(void);
/* Splits d into chunks: a heading starts a new chunk, paragraphs under one heading are packed while they fit
 * max_size, and a paragraph longer than max_size is cut at sentence ends (else spaces, else characters).
 * *out (n chunks) freed with tk_chunks_free. Thread-safe. */
tk_status tk_doc_chunk(const tk_doc *d, const tk_chunk_params *p, tk_chunk **out, size_t *n);
void tk_chunks_free(tk_chunk *c, size_t n);

/* ---- grounding ------------------------------------------------------------ */
typedef enum tk_ground {
    TK_GROUND_OK = 0,
    TK_GROUND_NUMBER,     /* a number (digits with . , : / - between them; thousands commas ignored) not in the chunk */
    TK_GROUND_NAME,       /* a capitalised word not at a sentence start, not in the chunk (case-insensitive, whole word) */
    TK_GROUND_SCRIPT,     /* a run of kanji/katakana/hangul/… not in the chunk (checked only when the chunk has such text) */
    TK_GROUND_UNSUPPORTED,/* an answer of 3 or more content words (Latin letters, 4 or more, common words aside) fewer than half
                             of which appear in the chunk (a word matches a chunk word that starts with all but its last 3
                             letters, at least 4): an answer about something else; or an answer in a CJK script that holds no
                             number, name or kanji/katakana word of the chunk (nothing in it can be checked) */
} tk_ground;
/* "ok", "number_not_in_chunk", "name_not_in_chunk", "word_not_in_chunk", "not_supported". Thread-safe. */
const char *tk_ground_name(tk_ground g);
/* Whether s is mostly written in CJK scripts (kana, kanji, hangul: more such characters than Latin letters). Thread-safe. */
bool tk_text_is_cjk(const char *s);
/* Whether every fact of answer (UTF-8) appears in chunk; the first unsupported one is copied into fact
 * (fact_cap bytes, NUL-terminated; fact may be NULL). Thread-safe. */
tk_ground tk_ground_check(const char *answer, const char *chunk, char *fact, size_t fact_cap);

/* ---- parsing model output ------------------------------------------------- */
typedef struct tk_qa { char *q, *a; } tk_qa;
/* Question/answer pairs in a model's output: "Q: … A: …" blocks (also "Q1:", "Question:", "**Q:**",
 * "1. Q:", "質問：" / "回答：", full-width colons; an answer may span lines). *out freed with tk_qa_free. Thread-safe. */
tk_status tk_synth_parse_qa(const char *text, tk_qa **out, size_t *n);
void tk_qa_free(tk_qa *v, size_t n);
/* The items of a list in a model's output, one per line, numbering/bullets/quotes removed; empty items skipped.
 * *out (n strings) freed with tk_strings_free. Thread-safe. */
tk_status tk_synth_parse_list(const char *text, char ***out, size_t *n);
void tk_strings_free(char **v, size_t n);

/* Why a paraphrase is refused: TK_PARA_OK, empty (or no letter), identical to the original (case, spaces and
 * punctuation ignored), longer than max_ratio times the original's characters (and 40 more), a repeat of one kept
 * before (keep[0..n_keep)), not a question where the original ends in "?" (or "？"), or a number or name that the
 * original does not have (tk_ground_check against it). */
typedef enum tk_para { TK_PARA_OK = 0, TK_PARA_EMPTY, TK_PARA_IDENTICAL, TK_PARA_TOO_LONG, TK_PARA_DUPLICATE, TK_PARA_NOT_QUESTION,
                       TK_PARA_CHANGED, TK_PARA_LANGUAGE, TK_PARA_COUNT } tk_para;
/* "ok", "empty", "identical", "too_long", "duplicate", "not_a_question", "changed_fact", "other_script" (CJK for a
 * Latin-script question or the reverse, tk_text_is_cjk). Thread-safe. */
const char *tk_para_name(tk_para r);
tk_para tk_para_check(const char *original, const char *para, char *const *keep, size_t n_keep, double max_ratio);
/* True when question b is a near-duplicate of question a: the same after case, spaces and punctuation, the same with at
 * most 2 letters or digits more at the end of one (a format marker the model copied: "…warranty? B:"), or character
 * 5-gram Jaccard >= 0.8 of the normalised texts (data check's near-duplicate rule). Thread-safe. */
bool tk_synth_near_question(const char *a, const char *b);

/* ---- generation settings shared by synth and augment ------------------------ */
/* Another writer in place of a model (a remote teacher, tests): texts[i] (malloc'd, the callee's to fill) answers the
 * single-turn request prompts[i]; seeds[i] is the request's seed. */
typedef tk_status (*tk_synth_text_fn)(void *ud, const char *const *prompts, const uint64_t *seeds, size_t n, char **texts);
typedef struct tk_synth_gen {
    tk_model *model;              /* generates (the teacher when one is given); unused when fn is set */
    tk_synth_text_fn fn; void *fn_ud;
    tk_chat_family family;        /* its chat template */
    float temperature;            /* default 0.7 (0: greedy) */
    uint64_t seed;                /* every request's sampler seed is derived from it and the request's place */
    int32_t max_batch;            /* sequences decoded together (default 16) */
    int32_t max_tokens;           /* per answer of the model (0: 96 per question or paraphrase asked + 64) */
} tk_synth_gen;

/* ---- synth ---------------------------------------------------------------- */
enum { TK_SYN_NO_PAIRS = 0, TK_SYN_CONTEXT, TK_SYN_EMPTY, TK_SYN_QUESTION, TK_SYN_LANGUAGE, TK_SYN_NUMBER, TK_SYN_NAME, TK_SYN_SCRIPT, TK_SYN_UNSUPPORTED,
       TK_SYN_DUPLICATE, TK_SYN_TOO_LONG, TK_SYN_NEAR_DUPLICATE, TK_SYN_REASONS };
/* "no_pairs_parsed" (pairs missing from a chunk's output, per chunk x language), "prompt_over_context" (the request did not
 * fit the writing model's context: its pairs are counted here), "empty" (or the request's "<question>"/"<answer>"
 * placeholders copied), "answer_is_a_question", "wrong_language" (ja/zh/ko
 * asked, the question or answer not mostly CJK, or the reverse), "number_not_in_chunk",
 * "name_not_in_chunk", "word_not_in_chunk", "not_supported", "duplicate_question", "too_long", "near_duplicate_question" (a
 * near-duplicate, tk_synth_near_question, of a question kept before for the same chunk and language). Thread-safe. */
const char *tk_synth_reason_name(int r);

typedef struct tk_synth_params {
    tk_synth_gen gen;
    int questions_per_chunk;      /* default 3 */
    int paraphrases;              /* paraphrased variants of each kept question (default 2) */
    const char *const *languages; size_t n_languages;  /* "en", "ja", … (default: en) */
    const char *system;           /* a system message for every record (NULL: none) */
    tk_chunk_params chunk;
    const tk_tokenizer *target_tok;  /* the model to be trained: a pair longer than target_ctx tokens is dropped (NULL: no check) */
    int64_t target_ctx;
} tk_synth_params;
tk_synth_params tk_synth_default_params(void);

typedef struct tk_synth_doc {
    char *path;
    char *error;                  /* NULL, or why the document was skipped (unreadable, not UTF-8, empty, scanned PDF) */
    size_t n_chunks;
    int n_empty_pages;
    uint64_t asked, parsed, kept, variants;          /* pairs asked for, found in the output, kept; paraphrases kept */
    uint64_t dropped[TK_SYN_REASONS];
    uint64_t para_dropped[TK_PARA_COUNT];
} tk_synth_doc;
typedef struct tk_synth_summary {
    tk_synth_doc *docs; size_t n_docs;
    uint64_t n_failed_docs, records;                  /* records written (kept pairs + their paraphrases) */
    int64_t n_generated;                              /* tokens the model generated */
    double gen_s;
} tk_synth_summary;
void tk_synth_summary_free(tk_synth_summary *s);

/* Reads docs[0..n_docs), chunks them, asks p->gen.model (batched across chunks) for question/answer pairs in each
 * language, keeps the grounded ones, asks for paraphrases of each kept question, and writes chat JSONL to out_path
 * (atomically): {"messages":[system?, user, assistant], "metadata":{"source","heading","span":[start,end],"page"?,
 * "lang","variant":"original"|"paraphrase"}}. A document that cannot be read is recorded in the summary (its error)
 * and skipped; fails only when nothing could be read or on I/O and model errors. Deterministic for p->gen.seed.
 * Not thread-safe for the same model. */
tk_status tk_synth_run(const char *const *docs, size_t n_docs, const char *out_path, const tk_synth_params *p,
                       tk_synth_summary *out);
/* Appends the summary as text (per document, dropped pairs by reason) or as one JSON object. */
tk_status tk_synth_summary_text(const tk_synth_summary *s, tk_buf *out);
tk_status tk_synth_summary_json(const tk_synth_summary *s, tk_buf *out);

/* ---- augment -------------------------------------------------------------- */
typedef struct tk_augment_params {
    tk_synth_gen gen;
    int paraphrases;              /* default 2 */
    double max_ratio;             /* a paraphrase longer than this times the original (+40 chars) is dropped (default 3) */
} tk_augment_params;
tk_augment_params tk_augment_default_params(void);
typedef struct tk_augment_summary {
    uint64_t records, bad_lines, no_user;   /* chat records read; lines that are not chat records (skipped, first in first_bad_line); records without a user turn (copied) */
    uint64_t first_bad_line;
    uint64_t added;                         /* paraphrased records written */
    uint64_t dropped[TK_PARA_COUNT];
    int64_t n_generated; double gen_s;
} tk_augment_summary;
/* Copies every chat record of in_path (JSONL, {"messages": …}) to out_path (atomically) and after each, up to
 * p->paraphrases copies whose last user turn is a paraphrase from p->gen.model (answers unchanged; "metadata":
 * {"paraphrase_of_line": N} added). Lines that are not chat records are counted, not copied; the first is named in
 * the message when there is no record at all. Deterministic for p->gen.seed. Not thread-safe for the same model. */
tk_status tk_augment_run(const char *in_path, const char *out_path, const tk_augment_params *p, tk_augment_summary *out);

#ifdef __cplusplus
}
#endif
#endif
