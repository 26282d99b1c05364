/* Internals of the data toolkit shared by reader.c, json.c, format.c, text.c, pii.c,
 * tokens.c, check.c, convert.c, split.c and redact.c. Not public API (tests include it). */
#ifndef TK_DATA_INTERNAL_H
#define TK_DATA_INTERNAL_H
#include "core/core.h"
#include "takumi/data.h"
#include <stdio.h>
#include <cjson/cJSON.h>

#define TK_DATA_DEFAULT_MAX_LINE ((size_t)256 << 20)   /* 256 MiB per line/record */
#define TK_DATA_NESTING_LIMIT CJSON_NESTING_LIMIT      /* cJSON refuses deeper JSON */
#define TK_DATA_TOKENIZE_MAX ((size_t)8 << 20)         /* examples with more text are counted approximately */

/* ---- reader (reader.c) ---------------------------------------------------- */
typedef enum tk_raw_kind {
    TK_RAW_RECORD = 0,   /* data/len hold the record (NUL-terminated copy) */
    TK_RAW_BLANK,        /* an empty or whitespace-only line (JSONL/TSV); not a record */
    TK_RAW_TOO_LONG,     /* longer than max_line: data NULL, len = its length; skipped */
    TK_RAW_HEADER,       /* TSV header line */
    TK_RAW_FATAL,        /* the container itself is broken (JSON array); reading stops; message in msg */
} tk_raw_kind;

typedef struct tk_raw {
    tk_raw_kind kind;
    const char *data;    /* valid until the next tk_reader_next call */
    size_t len;
    uint64_t line;       /* 1-based line where the record starts */
    uint64_t record;     /* 1-based record index (JSON arrays), else 0 */
    bool first_crlf;     /* this is the first line that ended in CRLF */
    const char *msg;     /* TK_RAW_FATAL: why */
} tk_raw;

typedef struct tk_reader tk_reader;
/* Opens path (stream for line-based files, mapping for JSON arrays). Fails for a missing file, a directory,
 * or a UTF-16/32 byte-order mark. */
tk_status tk_reader_open(const char *path, tk_data_container c, size_t max_line, tk_reader **out);
/* Reads from memory (not copied: buf must outlive the reader). */
tk_status tk_reader_open_memory(const void *buf, size_t len, const char *name, tk_data_container c, size_t max_line,
                                tk_reader **out);
/* Next item; *has = false at the end. I/O errors fail. */
tk_status tk_reader_next(tk_reader *r, tk_raw *rec, bool *has);
tk_data_container tk_reader_container(const tk_reader *r);
/* Switches a line-based reader to table mode: the first non-blank record is the header (TK_RAW_HEADER),
 * every record is one RFC 4180 row (a quoted field may span lines; those line breaks reach the record as
 * "\n"). CSV files are in table mode with ',' from the start; a TSV file read with a map gets '\t'. */
void tk_reader_set_table(tk_reader *r, char delim);
bool tk_reader_had_bom(const tk_reader *r);
uint64_t tk_reader_lines(const tk_reader *r);     /* lines consumed so far */
uint64_t tk_reader_bytes(const tk_reader *r);
void tk_reader_close(tk_reader *r);
/* The container a path would be read as (by extension, then by sniffing its first bytes). */
tk_data_container tk_data_sniff(const char *name, const uint8_t *head, size_t n);

/* ---- output files (output.c) -------------------------------------------- */
/* A file written through a temp name and renamed into place by commit (fsync'd), so readers never see half a file. */
typedef struct tk_outfile { FILE *fp; char *path, *tmp; } tk_outfile;
tk_status tk_outfile_open(tk_outfile *o, const char *path);
tk_status tk_outfile_write(tk_outfile *o, const void *p, size_t n);
tk_status tk_outfile_commit(tk_outfile *o);
/* Closes and removes the temp file; safe on a zeroed or committed struct. */
void tk_outfile_abort(tk_outfile *o);

/* ---- per-record findings ------------------------------------------------ */
typedef struct tk_rfind { uint8_t severity; const char *category; char *message; uint64_t line; } tk_rfind;
typedef struct tk_rfinds { tk_rfind *v; size_t n, cap; int n_errors; } tk_rfinds;
/* Adds a finding (category must be a string literal); line 0 = the record's line. Allocation failures drop the message text. */
void tk_rf_add(tk_rfinds *fs, tk_data_severity sev, const char *category, const char *fmt, ...) TK_PRINTF(4, 5);
void tk_rf_clear(tk_rfinds *fs);

/* ---- JSON helpers (json.c) -------------------------------------------- */
/* Parses len bytes (s[len] must be 0). On failure returns NULL and adds one error finding:
 * json_syntax (with line/column), nan_or_infinity or nesting_too_deep. base_line: line of s[0]. */
cJSON *tk_json_parse(const char *s, size_t len, uint64_t base_line, tk_rfinds *fs);
/* Validates UTF-8 (no overlongs, surrogates, > U+10FFFF) and rejects NUL bytes. Returns the offset of the
 * first bad byte, or len when valid; *nul set when the bad byte is a NUL. */
size_t tk_utf8_check(const char *s, size_t len, bool *nul);
/* Appends s as a JSON string literal (quotes included; non-ASCII kept as UTF-8). */
tk_status tk_json_append_str(tk_buf *b, const char *s, size_t len);
/* "missing", "null", "a boolean", "a number", "a string", "a list", "an object" (for messages). */
const char *tk_json_type_name(const cJSON *v);
/* Appends a cJSON value printed without formatting. */
tk_status tk_json_append_value(tk_buf *b, const cJSON *v);
/* Appends o printed without formatting and a newline (one JSONL record) when ok, then deletes o (NULL is fine);
 * TK_ERR_NOMEM when !ok or printing fails (ok: the caller's record building succeeded). */
tk_status tk_json_append_line(tk_buf *b, cJSON *o, bool ok);

/* ---- normalised example (format.c) ----------------------------------------- */
enum { TK_R_SYSTEM = 0, TK_R_USER, TK_R_ASSISTANT, TK_R_TOOL, TK_R_TEXT };
typedef struct tk_ex_msg {
    uint8_t role;
    int8_t weight;          /* -1 unset, 0 or 1 */
    bool tool_calls;        /* text is the serialised tool calls */
    const char *text; size_t len;
} tk_ex_msg;
typedef struct tk_example {
    tk_ex_msg *msgs; size_t n, cap;        /* the conversation (preference: prompt + chosen) */
    tk_ex_msg *rej; size_t n_rej, cap_rej; /* preference: the rejected continuation */
    size_t n_prompt;                       /* msgs[0..n_prompt) precede the final reply; n_prompt == n: no reply */
    const char *label; size_t label_len;   /* classification */
    char **owned; size_t n_owned, cap_owned;
    const void *record;                    /* the parsed record (a cJSON object; NULL for TSV/text lines), valid during a tk_rec_each callback */
} tk_example;
void tk_example_reset(tk_example *ex);
void tk_example_free(tk_example *ex);

/* Guesses the format of one parsed record (TK_DATA_AUTO when none fits). */
tk_data_format tk_data_classify(const cJSON *rec);
/* Validates rec as format f, adding findings; on no errors fills ex (pointers into rec or ex->owned). */
void tk_data_validate(tk_data_format f, const cJSON *rec, tk_example *ex, tk_rfinds *fs);
/* TSV line: text<TAB>label (the label is the last field). */
void tk_data_validate_tsv(const char *line, size_t len, tk_example *ex, tk_rfinds *fs);
/* Raw text line. */
void tk_data_validate_txt(const char *line, size_t len, tk_example *ex, tk_rfinds *fs);
/* Role name for messages ("system", "user", "assistant", "tool", "text"). */
const char *tk_data_role_name(int role);

/* ---- CSV/TSV rows (csv.c) ---------------------------------------------------- */
/* Scanner state carried across the physical lines of one row. */
typedef struct tk_csv_scan { bool in_quotes, mid_field; } tk_csv_scan;
/* Feeds one physical line (without its line end) into s; returns true when the row is complete
 * (not inside a quoted field). Start a row with s zeroed. */
bool tk_csv_scan_line(tk_csv_scan *s, const char *p, size_t n, char delim);
/* A parsed row: fields point into f->buf (NUL-terminated). */
typedef struct tk_csv_row { char *buf; size_t cap; const char **v; size_t n, cap_v; } tk_csv_row;
/* Splits row text (lines joined by '\n', starting at base_line) into fields. Broken quoting
 * (a quote inside an unquoted field, text after a closing quote, a quote never closed) adds an
 * error finding (csv_quote) naming the line and field, and returns false. */
bool tk_csv_split(const char *s, size_t len, char delim, uint64_t base_line, tk_csv_row *row, tk_rfinds *fs);
void tk_csv_row_free(tk_csv_row *row);

/* ---- field maps (map.c, map_apply.c) ---------------------------------------------- */
enum { TK_MAP_CHAT = 1, TK_MAP_PC, TK_MAP_CLASS, TK_MAP_TEXT };
enum { TK_MAP_TRAIN_ASSISTANT = 0, TK_MAP_TRAIN_LAST, TK_MAP_TRAIN_ALL };
enum { TK_MAP_SYSTEM = 0, TK_MAP_USER, TK_MAP_ASSISTANT, TK_MAP_N_ROLES };
typedef struct tk_map_values { char **v; size_t n; } tk_map_values;
struct tk_data_map {
    int kind, train;
    char *messages, *role, *content;            /* chat */
    tk_map_values roles[TK_MAP_N_ROLES];        /* role values for system, user, assistant turns */
    char *system_text, *system_field;           /* chat and prompt/completion */
    char *prompt, *query, *completion, *history;/* prompt/completion */
    const char *completion_key;                 /* the key the map named completion with (completion, response, reference; static) */
    char *text, *label;                         /* classification, text */
};
/* Applies m to rec: the record in the map's format (a new tree, caller deletes), or NULL after error
 * findings (map_missing_field naming the field and the record's fields, unmapped_role, invalid_type). */
cJSON *tk_map_apply(const tk_data_map *m, const cJSON *rec, tk_rfinds *fs);
/* Checks that the first record has every field the map requires; else fails naming the missing field and the
 * fields the record has (what = "the first record (line L)" or "the header (line L)"; noun "field" or "column"). */
tk_status tk_map_check_fields(const tk_data_map *m, const cJSON *rec, const char *name, const char *what, const char *noun);
/* "a, b, c" of an object's keys (at most cap bytes). */
void tk_json_keys(const cJSON *obj, char *buf, size_t cap);

/* ---- how a file's records are read (layout.c) -------------------------------------- */
typedef struct tk_layout {
    tk_data_container container;
    char delim;                   /* 0, or ',' / '\t': rows with a header (table mode) */
    char **cols; size_t n_cols;   /* the header's column names */
    const tk_data_map *map;       /* not owned */
    tk_data_format format;        /* format the (mapped) records are validated as */
    bool detected;                /* format came from detection */
    int n_seen;                   /* records detection looked at */
} tk_layout;
/* Opens the source (path, or buf/len named name) once to learn its layout: container, header, format
 * (f, the map's, or detected from the first 200 records). Fails for an unreadable file, a bad header,
 * or a map that names a field the first record (or the header) lacks. */
tk_status tk_layout_open(const char *path, const void *buf, size_t len, const char *name, tk_data_container c, tk_data_format f,
                         const tk_data_map *map, size_t max_line, tk_layout *out);
void tk_layout_free(tk_layout *l);
/* A reader of the source in this layout (table mode set). */
tk_status tk_layout_reader(const tk_layout *l, const char *path, const void *buf, size_t len, const char *name, size_t max_line,
                           tk_reader **out);
/* One raw record of a JSON or table layout (UTF-8 checked by the caller) as JSON, read through the map, not validated (a new
 * tree, caller deletes); NULL after error findings (syntax, quoting, a ragged row, the map's). Not for TXT or unmapped TSV. */
cJSON *tk_layout_record(const tk_layout *l, const tk_raw *raw, tk_rfinds *fs);
/* Validates one raw record (UTF-8 checked by the caller) into ex with findings; *rec (may be NULL) gets the
 * JSON record in the layout's format (mapped; a CSV row as an object), which the caller deletes. */
void tk_layout_validate(const tk_layout *l, const tk_raw *raw, tk_example *ex, tk_rfinds *fs, cJSON **rec);

/* ---- text: normalisation, hashing, MinHash, scripts (text.c) --------------- */
#define TK_MINHASH_K 5        /* character shingle length (code points) */
#define TK_MINHASH_N 64       /* permutations */
#define TK_LSH_BANDS 16       /* 16 bands x 4 rows */
/* Appends a normalised copy of valid UTF-8 text: full-width ASCII -> ASCII, half-width katakana -> full-width
 * (with voiced marks composed), ASCII lower case, zero-width characters dropped, every run of Unicode white
 * space -> one space, trimmed. */
tk_status tk_text_normalize(const char *s, size_t len, tk_buf *out);
/* Same, also adding letter counts by script to scripts[TK_SCRIPT_COUNT] (may be NULL). */
tk_status tk_text_normalize_ex(const char *s, size_t len, tk_buf *out, uint64_t *scripts);
uint64_t tk_hash64(const void *p, size_t n, uint64_t seed);
/* MinHash of the character 5-gram set of normalised text; false when the text is empty. */
bool tk_minhash(const char *norm, size_t len, uint16_t sig[TK_MINHASH_N]);
/* The set of character 5-gram hashes of normalised text (the shingles MinHash sees), sorted, without repeats. */
typedef struct tk_shingles { uint64_t *h; size_t n, cap; } tk_shingles;
tk_status tk_shingle_set(const char *norm, size_t len, tk_shingles *out);
/* Exact Jaccard similarity |A ∩ B| / |A ∪ B| of two shingle sets (1 for two empty sets). */
double tk_shingle_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);
/* Dominant script of a text (kana -> japanese; else the largest of Han/Hangul/Latin/…). */
tk_data_script tk_text_script(const char *s, size_t len, uint64_t counts[TK_SCRIPT_COUNT]);
bool tk_text_blank(const char *s, size_t len);

/* ---- PII (pii.c) ------------------------------------------------------------ */
typedef struct tk_pii_scratch tk_pii_scratch;  /* per-thread match data */
tk_pii_scratch *tk_pii_scratch_new(const tk_pii *p);
void tk_pii_scratch_free(tk_pii_scratch *s);
/* Like tk_pii_find, appending into *v (a growable array). */
typedef struct tk_pii_vec { tk_pii_match *v; size_t n, cap; } tk_pii_vec;
tk_status tk_pii_scan(const tk_pii *p, tk_pii_scratch *s, const char *text, size_t len, tk_pii_vec *out);
/* Luhn checksum over the digits of s (separators ignored). */
bool tk_luhn_ok(const char *s, size_t len);

/* Appends JSON text with personal data in its string values replaced (what `data redact` does to each record). */
tk_status tk_redact_json_buffer(const char *text, size_t len, tk_buf *out, uint64_t counts[TK_PII_COUNT]);

/* ---- token counting (tokens.c) --------------------------------------------- */
typedef struct tk_tok_scratch tk_tok_scratch;
tk_tok_scratch *tk_tok_scratch_new(void);
void tk_tok_scratch_free(tk_tok_scratch *s);
typedef struct tk_ex_tokens {
    uint32_t total;       /* every token the model sees (preference: both sequences) */
    uint32_t assistant;   /* trained tokens (assistant content + end of turn; weight 0 excluded) */
    uint32_t longest;     /* longest single sequence (for the context check) */
    uint32_t reply;       /* tokens of the final reply's content */
} tk_ex_tokens;
/* Counts tokens of ex with tok (+ family's template) or approximately (bytes/4) when tok is NULL. */
tk_status tk_data_count_tokens(const tk_tokenizer *tok, tk_chat_family fam, tk_tok_scratch *s, const tk_example *ex,
                               tk_ex_tokens *out);

/* ---- shared by check/split: duplicate grouping (check.c) ------------------ */
/* Union-find over n items. */
typedef struct tk_uf { uint32_t *parent; size_t n; } tk_uf;
tk_status tk_uf_init(tk_uf *u, size_t n);
uint32_t tk_uf_find(tk_uf *u, uint32_t x);
void tk_uf_union(tk_uf *u, uint32_t a, uint32_t b);
void tk_uf_free(tk_uf *u);
/* Unions records whose MinHash signatures (sigs[i*64..], valid where has[i]) agree on >= threshold of
 * positions, found through LSH banding. */
tk_status tk_near_dup_union(const uint16_t *sigs, const uint8_t *has, size_t n, double threshold, tk_uf *uf);

/* ---- contamination against evaluation files (contamination.c) ---------------- */
typedef struct tk_contam_index tk_contam_index;   /* immutable once built: shared by the analysis threads */
typedef struct tk_contam_scratch tk_contam_scratch;
typedef struct tk_contam_hit { uint32_t file; uint64_t eval_line; uint8_t kind; float sim; } tk_contam_hit;
/* Reads every record of the files (each in its own format; the map only where a file has no known format of
 * its own); unreadable records go to on_finding (counted in *n_invalid), never dropped silently. */
tk_status tk_contam_index_build(const char *const *paths, size_t n, const tk_data_map *map, double threshold,
                                const tk_data_check_params *p, tk_contam_index **out, uint64_t *n_records, uint64_t *n_invalid);
void tk_contam_index_free(tk_contam_index *x);
tk_contam_scratch *tk_contam_scratch_new(void);
void tk_contam_scratch_free(tk_contam_scratch *s);
/* Matches of one training example, strongest kind first per evaluation record, in (file, line) order; *hits is malloc'd. */
tk_status tk_contam_match(const tk_contam_index *x, tk_contam_scratch *s, const tk_example *ex, tk_contam_hit **hits, size_t *n);

/* Per-record analysis used by check, split and the fuzz target. */
typedef struct tk_rec_out {
    tk_raw_kind kind;
    uint64_t line, record;
    size_t len;
    tk_rfinds fs;
    bool valid;
    uint32_t n_msgs;
    tk_ex_tokens tok;
    uint64_t h_exact, h_prompt, h_answer, h_system;
    bool has_prompt, has_system, has_user, has_reply, empty_reply;
    bool has_sig;
    uint16_t sig[TK_MINHASH_N];
    uint32_t pii[TK_PII_COUNT];
    uint8_t script;
    char *label;
    char *system_head;     /* first 60 bytes of the system prompt (for the report) */
    tk_contam_hit *hits; size_t n_hits;   /* contamination matches */
} tk_rec_out;

typedef struct tk_analyzer tk_analyzer;
typedef struct tk_analyze_opts {
    const tk_layout *layout;      /* how records are read, and their format (required) */
    const tk_contam_index *contam;/* NULL: no contamination check */
    const tk_tokenizer *tok; tk_chat_family fam;
    bool pii, tokens, sig;
} tk_analyze_opts;
tk_status tk_analyzer_new(const tk_analyze_opts *o, int n_threads, tk_analyzer **out);
void tk_analyzer_free(tk_analyzer *a);
/* Analyses one raw record on scratch slot `slot` (0..n_threads-1). Never fails: problems become findings. */
void tk_analyze(tk_analyzer *a, int slot, const tk_raw *raw, tk_rec_out *o);
void tk_rec_out_clear(tk_rec_out *o);
/* Detects the format from the first records of a reader's source (majority; *out = TK_DATA_AUTO if none fits;
 * through tk_layout_open without a map).
 * (src/train/batch.c uses this too: keep the signature.) */
tk_status tk_data_detect(const char *path, const void *buf, size_t len, tk_data_container c, size_t max_line,
                         tk_data_format *out);
/* Same; *n_seen (may be NULL) gets the number of records looked at. */
tk_status tk_data_detect_ex(const char *path, const void *buf, size_t len, tk_data_container c, size_t max_line,
                            tk_data_format *out, int *n_seen);

#endif
