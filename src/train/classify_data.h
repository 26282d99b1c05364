/* Classification / regression data as the trainer sees it (--task classify|regress; the objective:
 * src/objective/classify.h). Every record of a {"text", "label"} JSONL/JSON file or a text<TAB>label
 * TSV file (src/data's record walker; a header row is skipped) is tokenized as plain text with the
 * tokenizer's own BOS/EOS, as transformers' tokenizer(text), cut to max_seq tokens (keeping the
 * start), and stored as one tk_sft_data example (mask TK_MASK_LOSS on its tokens after the first, so
 * that the SFT machinery packs, shuffles and splits it; an example of a single token has nothing to
 * mark and is skipped, counted in stats.n_skipped). Its label is kept by the record's line
 * (tk_cls_labels), which every example carries through shuffles and validation splits.
 * Internal to src/train/. */
#ifndef TK_TRAIN_CLASSIFY_DATA_H
#define TK_TRAIN_CLASSIFY_DATA_H
#include "train/batch.h"

/* The labels of a file's examples by line (lines ascending: file order). */
typedef struct tk_cls_labels {
    uint64_t *line;
    float *value;          /* classify: the label index; regress: the target value */
    int64_t n, cap;
} tk_cls_labels;

/* Reads path into *out and *lab (both zeroed first; free with tk_sft_free / tk_cls_labels_free, also on
 * failure). Classify (regress false): a record's label is one of names[0..n_names) or an index in
 * [0, n_names); regress: a number. A bad label fails naming the file, line and the label; data of
 * another format fails naming the file. Reentrant. */
tk_status tk_cls_load(const char *path, const tk_tokenizer *tok, int32_t max_seq, char *const *names, int32_t n_names, bool regress,
                      tk_sft_data *out, tk_cls_labels *lab);
/* The label of the example read from line; TK_ERR_INTERNAL when lab has none. Thread-safe. */
tk_status tk_cls_label(const tk_cls_labels *lab, uint64_t line, float *value);
void tk_cls_labels_free(tk_cls_labels *lab);
/* A label's value: classify: its index among names (a name, else a decimal index); regress: the number. Fails with
 * a message naming the label (the caller adds the file and line). Thread-safe. */
tk_status tk_cls_label_value(const char *label, size_t len, char *const *names, int32_t n_names, bool regress, float *value);

/* A micro-batch: the rows of tk_batch_buf (each example its own segment) plus the objective's
 * inputs. Sequences are numbered in row order. */
typedef struct tk_cls_buf {
    tk_batch_buf bb;
    int32_t *seq;          /* [B x T] the sequence of each row's token, -1 on padding */
    float *value;          /* [S] labels */
    size_t cap, cap_seq;
    int32_t n_seq;
} tk_cls_buf;
/* Fills cb with rows [r0, r0 + n) of r (rows of d, labels lab). Reentrant per buffer. */
tk_status tk_cls_fill(tk_cls_buf *cb, const tk_sft_data *d, const tk_cls_labels *lab, const tk_rows *r, int64_t r0, int32_t n);
void tk_cls_buf_free(tk_cls_buf *cb);
#endif
