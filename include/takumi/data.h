/* Training data toolkit: read JSONL / JSON-array / CSV / TSV / text files in bounded memory,
 * detect and validate the dataset formats people already have (OpenAI chat,
 * prompt/completion, Alpaca, ShareGPT, preference, classification, raw text),
 * and check them (format errors with line numbers, token statistics with the model's
 * tokenizer, duplicates and near-duplicates, personal data, balance, cost), convert
 * them, split them without leakage and redact personal data.
 *
 * Findings are streamed to a callback in line order while the file is read, so a
 * file of any size is checked in bounded memory: besides the current batch of
 * records, a check keeps about 200 bytes per record (hashes, MinHash signature,
 * counts) for duplicate detection and statistics. */
#ifndef TAKUMI_DATA_H
#define TAKUMI_DATA_H
#include <stdio.h>
#include "takumi/core.h"
#include "takumi/tokenizer.h"
#include "takumi/chat.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum tk_data_format {
    TK_DATA_AUTO = 0,             /* detect from the majority of the first records */
    TK_DATA_CHAT,                 /* {"messages":[{"role","content",…}], "tools":[…]} */
    TK_DATA_PROMPT_COMPLETION,    /* {"prompt","completion"} (also {"question","answer"}) */
    TK_DATA_ALPACA,               /* {"instruction","input","output","system","history"} */
    TK_DATA_SHAREGPT,             /* {"conversations":[{"from","value"}], "system", "tools"} */
    TK_DATA_PREFERENCE,           /* TRL {"prompt","chosen","rejected"}, OpenAI {"input","preferred_output","non_preferred_output"},
                                     LLaMA-Factory {"conversations","chosen":{from,value},"rejected":{…}} */
    TK_DATA_CLASSIFICATION,       /* {"text","label"} or TSV text<TAB>label */
    TK_DATA_TEXT,                 /* {"text"} JSONL or .txt (one document per non-empty line) */
    TK_DATA_KTO,                  /* unpaired preference (KTO): TRL {"prompt","completion","label": true|false},
                                     LLaMA-Factory {"messages":[…, assistant], "label": true|false} */
    TK_DATA_RFT,                  /* prompts to answer (reinforcement fine-tuning, self-training): OpenAI RFT {"messages": [... ending
                                     with a user turn], any fields graders read}, or {"prompt": text or messages} alone */
    TK_DATA_FORMAT_COUNT
} tk_data_format;

/* Name of a format ("chat", "prompt_completion", "alpaca", "sharegpt", "preference", "classification", "text", "kto", "auto"). */
const char *tk_data_format_name(tk_data_format f);
/* Format by name (also accepts "completion", "openai", "messages", "dpo", "tsv", "txt", "unpaired", "prompts", "reinforcement");
 * TK_DATA_FORMAT_COUNT if unknown. */
tk_data_format tk_data_format_from_name(const char *name);

typedef enum tk_data_container {
    TK_DATA_CONTAINER_AUTO = 0,   /* by extension (.jsonl .json .tsv .txt), else by content */
    TK_DATA_JSONL,                /* one JSON value per line */
    TK_DATA_JSON_ARRAY,           /* one JSON array of records (positions are "record N (line L)") */
    TK_DATA_TSV,                  /* text<TAB>label per line; a first line whose last field is "label" is a header */
    TK_DATA_TXT,                  /* one document per non-empty line */
    TK_DATA_CSV,                  /* RFC 4180: a header row, then one record per row (quoted fields may hold
                                     commas, doubled quotes and line breaks; CRLF accepted); a row becomes the
                                     object {column: text}, read like a JSON record (same formats, same --map) */
} tk_data_container;
const char *tk_data_container_name(tk_data_container c);

/* ---- field mapping (--map / --map-file) -------------------------------------
 * Names the fields and role values of any JSON (or CSV/TSV column) layout, so records in
 * a company's own layout are read as chat, prompt/completion, classification or text:
 *   chat:  messages=FIELD role=FIELD content=FIELD user=V[|V…] assistant=V[|V…] system_role=V[|V…]
 *   prompt/completion: prompt=FIELD [query=FIELD] completion=FIELD (aliases response=, and reference= as
 *   `takumi eval` calls the reference answer) [history=FIELD]
 *   classification: text=FIELD label=FIELD;   raw text: text=FIELD
 *   both conversation kinds: system=TEXT (a system prompt to add), system_field=FIELD (a field
 *   holding it; wins over system= when present), train=assistant|last|all (which turns train:
 *   every assistant turn, only the final one, or every turn — `all` needs --train-on-prompt
 *   when training; check and convert say so).
 * FIELD may be a dotted path ("meta.question"). A mapped record is validated and converted as
 * an OpenAI chat record ({"messages": …}; fields the map did not use stay as extra keys),
 * a {"text","label"} record or a {"text"} record. A map is immutable once built: share it
 * across threads freely. */
typedef struct tk_data_map tk_data_map;
/* Parses "key=value,key=value" (a value may be double-quoted, "" inside for a quote). Errors name the key. Thread-safe. */
tk_status tk_data_map_parse(const char *spec, tk_data_map **out);
/* Parses a JSON object: either the keys above ({"messages": "turns", …}) or a LLaMA-Factory
 * dataset_info entry ({"formatting": "sharegpt"|"alpaca", "columns": {…}, "tags": {…}}). name is used in messages. Thread-safe. */
tk_status tk_data_map_from_json(const char *text, size_t len, const char *name, tk_data_map **out);
/* Reads path and parses it as tk_data_map_from_json. Thread-safe. */
tk_status tk_data_map_load(const char *path, tk_data_map **out);
void tk_data_map_free(tk_data_map *m);   /* NULL is fine; not while another thread uses m */
/* The format mapped records have (TK_DATA_CHAT, TK_DATA_CLASSIFICATION or TK_DATA_TEXT). Thread-safe. */
tk_data_format tk_data_map_format(const tk_data_map *m);
/* True when the map says train=all (every turn trains: the trainer needs train-on-prompt). Thread-safe. */
bool tk_data_map_trains_all(const tk_data_map *m);
/* Appends the map in the spec syntax (it parses back to the same map). Thread-safe for distinct out buffers. */
tk_status tk_data_map_describe(const tk_data_map *m, tk_buf *out);

typedef enum tk_data_severity { TK_DATA_ERROR = 0, TK_DATA_WARNING = 1 } tk_data_severity;

/* One finding, as `line N: <category>: <message>`. Strings are valid only during the callback. */
typedef struct tk_data_finding {
    tk_data_severity severity;
    uint64_t line;          /* 1-based line where the record starts; 0 for the whole file */
    uint64_t record;        /* 1-based record index inside a JSON array file; 0 for line-based files */
    const char *category;   /* e.g. "missing_content", "json_syntax", "too_long" */
    const char *message;    /* the reason, in words */
} tk_data_finding;
typedef void (*tk_data_finding_fn)(const tk_data_finding *f, void *user);

/* Formats a finding as "line N: category: message" (or "record R (line N): …"; warnings get "warning: " after the position) into out (appends). */
tk_status tk_data_finding_format(const tk_data_finding *f, tk_buf *out);

/* ---- personal data ------------------------------------------------------- */
typedef enum tk_pii_kind { TK_PII_EMAIL = 0, TK_PII_PHONE, TK_PII_CREDIT_CARD, TK_PII_IP, TK_PII_COUNT } tk_pii_kind;
/* "email", "phone", "credit_card", "ip". */
const char *tk_pii_name(tk_pii_kind k);
/* "[EMAIL]", "[PHONE]", "[CREDIT_CARD]", "[IP]". */
const char *tk_pii_placeholder(tk_pii_kind k);

typedef struct tk_pii tk_pii;  /* compiled (JIT) patterns; immutable, shareable across threads */
typedef struct tk_pii_match { tk_pii_kind kind; size_t start, end; } tk_pii_match;
/* Compiles the patterns once (PCRE2, JIT when available). Free with tk_pii_free. */
tk_status tk_pii_new(tk_pii **out);
void tk_pii_free(tk_pii *p);
/* Finds non-overlapping matches in len bytes of valid UTF-8, in order. *out is a malloc'd array (caller frees), *n its length. */
tk_status tk_pii_find(const tk_pii *p, const char *text, size_t len, tk_pii_match **out, size_t *n);
/* Appends text to out with every match replaced by its placeholder; counts[k] += matches of kind k (counts may be NULL). */
tk_status tk_pii_redact(const tk_pii *p, const char *text, size_t len, tk_buf *out, uint64_t counts[TK_PII_COUNT]);

/* ---- check ------------------------------------------------------------------ */
typedef struct tk_data_check_params {
    tk_data_format format;          /* TK_DATA_AUTO: detect */
    tk_data_container container;    /* TK_DATA_CONTAINER_AUTO: by extension/content */
    const tk_tokenizer *tokenizer;  /* NULL: approximate counts (UTF-8 bytes / 4), reported as approximate */
    tk_chat_family chat_family;     /* with a tokenizer: template used for counts (TK_CHAT_UNKNOWN: content tokens only) */
    int64_t max_seq;                /* model context length for the too-long warning; 0 = unknown */
    size_t max_line_bytes;          /* longest accepted line/record (default 256 MiB); longer ones are reported and skipped */
    double near_dup_threshold;      /* estimated Jaccard similarity of character 5-gram sets (default 0.8) */
    double tokens_per_second;       /* training throughput for the time estimate; 0 = no estimate */
    const char *throughput_note;    /* where tokens_per_second came from, shown with the estimate (may be NULL; copied) */
    int threads;                    /* 0 = tk_get_threads() */
    const tk_data_map *map;         /* NULL: the records' own keys; else the layout to read them with (not owned) */
    const char *const *against;     /* contamination check: evaluation/test files (n_against of them; not owned) */
    size_t n_against;
    double contamination_threshold; /* near-duplicate of an --against record: exact Jaccard of character 5-gram sets >= this (default 0.8) */
    tk_data_finding_fn on_finding;  /* may be NULL */
    void *user;
} tk_data_check_params;
/* Defaults as documented above. */
tk_data_check_params tk_data_check_default_params(void);

typedef struct tk_data_dist { uint64_t n; double min, p5, median, mean, p95, max; } tk_data_dist;
typedef struct tk_data_group { size_t n; uint64_t *lines; } tk_data_group;   /* lines ascending */
typedef struct tk_data_count { char *name; uint64_t count; uint64_t first_line; } tk_data_count;
typedef struct tk_data_lines { uint64_t count; size_t n; uint64_t *lines; } tk_data_lines;  /* all lines (n == count) */

typedef enum tk_data_script {
    TK_SCRIPT_LATIN = 0, TK_SCRIPT_JAPANESE, TK_SCRIPT_CHINESE, TK_SCRIPT_KOREAN, TK_SCRIPT_CYRILLIC,
    TK_SCRIPT_ARABIC, TK_SCRIPT_OTHER, TK_SCRIPT_NONE, TK_SCRIPT_COUNT
} tk_data_script;
/* "latin", "japanese", "chinese", "korean", "cyrillic", "arabic", "other", "none". */
const char *tk_data_script_name(tk_data_script s);

typedef enum tk_data_verdict { TK_DATA_READY = 0, TK_DATA_READY_WITH_WARNINGS, TK_DATA_NOT_READY } tk_data_verdict;
/* "ready", "ready with warnings", "not ready". */
const char *tk_data_verdict_name(tk_data_verdict v);

/* One contamination match: training line `line` against line `eval_line` of against[file]. */
typedef enum tk_contam_kind {
    TK_CONTAM_EXACT = 0,  /* the same text after normalisation (case, width, white space) of every non-system message (and label) */
    TK_CONTAM_PROMPT,     /* the same normalised prompt (the non-system turns before the final reply), different reply */
    TK_CONTAM_NEAR,       /* Jaccard similarity of the character 5-gram sets of the normalised texts >= the threshold */
} tk_contam_kind;
/* "exact", "prompt", "near". Thread-safe. */
const char *tk_contam_kind_name(tk_contam_kind k);
typedef struct tk_data_contamination {
    uint64_t line, record;          /* training side (record: index in a JSON array file, else 0) */
    uint32_t file;                  /* index into tk_data_report.against */
    uint64_t eval_line;
    tk_contam_kind kind;
    double similarity;              /* 1 for exact/prompt; the exact Jaccard of the 5-gram sets for near */
} tk_data_contamination;

typedef struct tk_data_report {
    char *path;
    tk_data_container container;
    tk_data_format format;
    bool format_detected;           /* true when format came from detection */
    uint64_t bytes, n_lines, n_records, n_examples;   /* n_examples: records without errors */
    uint64_t n_errors, n_warnings;  /* findings streamed */
    tk_data_count *error_counts; size_t n_error_counts;      /* per category, sorted by name */
    tk_data_count *warning_counts; size_t n_warning_counts;
    /* statistics over valid examples */
    bool tokens_exact;              /* counted with the real tokenizer (and chat template when known) */
    tk_chat_family chat_family;
    int64_t max_seq;
    tk_data_dist messages, tokens, assistant_tokens;
    uint64_t total_tokens, total_assistant_tokens;
    uint64_t n_too_long, tokens_cut;
    uint64_t n_no_system, n_no_user, n_empty_reply, n_short_reply;  /* short: final reply < 5 tokens */
    uint64_t n_system_prompts;      /* distinct system prompts */
    tk_data_count *system_prompts; size_t n_system_prompt_list;  /* up to 10, by first use; name = first 60 chars */
    /* duplicates */
    tk_data_group *exact_dups; size_t n_exact_dups; uint64_t n_exact_dup_records;     /* records beyond the first of each group */
    tk_data_group *near_dups; size_t n_near_dups;
    double near_dup_threshold;      /* the threshold the near-duplicates were found with */
    tk_data_group *conflicts; size_t n_conflicts;  /* same prompt, different answers (or labels) */
    /* personal data */
    tk_data_lines pii[TK_PII_COUNT]; uint64_t pii_matches[TK_PII_COUNT];
    /* balance */
    tk_data_count *labels; size_t n_labels; bool labels_truncated;  /* at most 1000 distinct labels listed */
    uint64_t scripts[TK_SCRIPT_COUNT];
    /* cost and time */
    int epochs;                     /* OpenAI's auto rule for n_examples */
    uint64_t billed_tokens;         /* sum over examples of min(tokens, max_seq) x epochs */
    double tokens_per_second, est_seconds;   /* est_seconds = tokens x epochs / tokens_per_second (0 if unknown) */
    char *throughput_note;
    /* contamination (params.against): training records that appear in an evaluation file */
    char **against; size_t n_against;             /* the files, as given */
    uint64_t against_records;                     /* valid records read from them */
    uint64_t against_invalid;                     /* records in them that could not be read (each reported as a finding) */
    double contamination_threshold;
    tk_data_contamination *contamination; size_t n_contamination;  /* every match, in training-line order */
    uint64_t n_contaminated;                      /* training records with at least one match */
    uint64_t n_contam_kind[3];                    /* records by their strongest match: exact, prompt, near */
    tk_data_verdict verdict;
    double seconds;                 /* wall time of the check */
} tk_data_report;

/* Checks the file at path; findings go to params->on_finding in line order. On TK_OK *out holds the
 * report (free with tk_data_report_free). Fails only when the file cannot be read at all (missing,
 * a directory, UTF-16) — problems inside the file are findings. */
tk_status tk_data_check(const char *path, const tk_data_check_params *params, tk_data_report **out);
/* Same on len bytes in memory (name is used in messages; container AUTO sniffs the content). */
tk_status tk_data_check_buffer(const void *buf, size_t len, const char *name, const tk_data_check_params *params,
                               tk_data_report **out);
void tk_data_report_free(tk_data_report *r);
/* Appends the report (statistics, duplicates, personal data, balance, cost, verdict) as readable text. */
tk_status tk_data_report_text(const tk_data_report *r, tk_buf *out);
/* Appends the report as one JSON object (no findings: they were streamed). */
tk_status tk_data_report_json(const tk_data_report *r, tk_buf *out);
/* Appends one finding as a JSON object {"severity","line","record","category","message"}. */
tk_status tk_data_finding_json(const tk_data_finding *f, tk_buf *out);

/* OpenAI's `auto` epochs for n examples: 3; raised to ceil(100/n) (at most 25) when n*3 < 100;
 * lowered to floor(25000/n) (at least 1) when n*3 > 25000. Returns 0 for n == 0. */
int tk_data_auto_epochs(uint64_t n_examples);

/* ---- convert ---------------------------------------------------------------- */
typedef enum tk_data_target { TK_DATA_TO_CHAT = 0, TK_DATA_TO_PREFERENCE_OPENAI, TK_DATA_TO_PREFERENCE_TRL } tk_data_target;
typedef struct tk_data_convert_result { uint64_t n_records, n_written, n_failed; tk_data_format from; } tk_data_convert_result;
/* Converts every record of in_path (format `from`, or TK_DATA_AUTO to detect) to target, writing JSONL to
 * out_path (atomically: temp + rename) or, when out_path is NULL, to out_fp.
 * Records that cannot be converted are reported through on_finding (line + reason), never dropped silently;
 * every record written passes the target's own validation. Chat from: chat, prompt_completion, alpaca,
 * sharegpt, classification (text -> user, label -> assistant). Preference from: TRL, OpenAI and LLaMA-Factory
 * preference records. Fields the target has no place for are kept as extra top-level keys (lossless).
 * Fails (TK_ERR_UNSUPPORTED) when the whole file cannot become the target (raw text -> chat, chat -> preference). */
tk_status tk_data_convert(const char *in_path, tk_data_format from, tk_data_target target, const char *out_path, FILE *out_fp,
                          tk_data_finding_fn on_finding, void *user, tk_data_convert_result *res);
/* Same, reading the records through map (may be NULL): a mapped file becomes ordinary chat JSONL. Thread-safe
 * for distinct outputs (the map is only read). */
tk_status tk_data_convert_mapped(const char *in_path, tk_data_format from, const tk_data_map *map, tk_data_target target,
                                 const char *out_path, FILE *out_fp, tk_data_finding_fn on_finding, void *user,
                                 tk_data_convert_result *res);

/* ---- split ------------------------------------------------------------------ */
typedef struct tk_data_split_params {
    double ratios[3];               /* train, valid, test (any scale; a 0 part gets no file) */
    uint64_t seed;
    tk_data_format format;          /* AUTO: detect */
    double near_dup_threshold;      /* as in check */
    bool stratify;                  /* by label (classification); default true */
    const tk_data_map *map;         /* NULL or the layout to read the records with (records are still copied byte for byte) */
    tk_data_finding_fn on_finding; void *user;
} tk_data_split_params;
tk_data_split_params tk_data_split_default_params(void);
typedef struct tk_data_split_result {
    uint64_t counts[3];             /* records per split */
    char *paths[3];                 /* written files (NULL for an empty part); freed by tk_data_split_result_free */
    uint64_t n_groups;              /* leakage groups (records that must share a split), sizes >= 2 */
} tk_data_split_result;
/* Splits in_path into out_dir/{train,valid,test}.<ext> (same container as the input; records copied byte for byte).
 * Deterministic for a seed; every record lands in exactly one file; exact duplicates, near-duplicates and
 * records sharing a prompt stay together; classification is stratified by label. Refuses (TK_ERR_FORMAT)
 * when the file has format errors (they are reported through on_finding). */
tk_status tk_data_split(const char *in_path, const char *out_dir, const tk_data_split_params *p, tk_data_split_result *res);
void tk_data_split_result_free(tk_data_split_result *res);

/* ---- redact ----------------------------------------------------------------- */
/* Copies in_path to out_path with personal data in JSON string values (or in TSV/text lines) replaced by
 * typed placeholders; everything else is copied byte for byte. counts[k] gets the replacements per kind. */
tk_status tk_data_redact(const char *in_path, const char *out_path, uint64_t counts[TK_PII_COUNT], uint64_t *n_records_changed);

#ifdef __cplusplus
}
#endif
#endif
