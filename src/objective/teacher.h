/* Teacher logits at selected positions, in chunks: the building block of distillation.
 * A teacher is either its final hidden states and LM head (a second model's forward, or the
 * same model with another adapter) or a callback that writes logits for a list of rows
 * (logits computed elsewhere, read from disk, ...). Either way the [rows x V] matrix never
 * exists whole: tk_teacher_logits hands it to a consumer one chunk of rows at a time.
 * Dimension legend: T batch rows, Ct teacher model dim, V vocabulary, n selected rows,
 * r rows of a chunk, k kept entries per row (V, or top_k). */
#ifndef TK_OBJECTIVE_TEACHER_H
#define TK_OBJECTIVE_TEACHER_H
#include "takumi/core.h"
#include "ops/ops.h"

/* Callback teacher: writes the raw logits of batch rows rows[0..n) into out [n x V] (=). */
typedef tk_status (*tk_teacher_logits_fn)(void *ctx, const int64_t *rows, int64_t n, float *out);

typedef struct tk_teacher {
    const float *h;               /* [T x Ct] teacher final hidden states (NULL: use logits_fn) */
    const tk_lm_head *head;       /* teacher LM head (W ggml {Ct, V}, any dtype; its soft-cap), with h */
    tk_teacher_logits_fn logits;  /* used when h is NULL */
    void *ctx;                    /* passed to logits */
    int64_t V;                    /* vocabulary of the callback (ignored with h: head->w->ne[1]) */
} tk_teacher;

/* What a consumer receives. */
typedef struct tk_teacher_view {
    float temperature;            /* logits are divided by it (> 0; 1 = raw logits) */
    bool log_softmax;             /* deliver log softmax(logits / temperature) instead of logits / temperature */
    int32_t top_k;                /* 0: all V entries per row; else the k largest, descending, ties to the lower id */
} tk_teacher_view;

typedef struct tk_logit_chunk {
    int64_t c0, n;                /* this chunk is selected rows [c0, c0 + n) of the caller's list */
    const int64_t *rows;          /* [n] their batch row indices */
    int64_t V, k;                 /* vocabulary; entries per row (V, or top_k) */
    const float *values;          /* [n x k] per row: logits / temperature or their log-softmax */
    const int32_t *ids;           /* [n x k] token ids of values (top_k), NULL when k = V (column j = token j) */
} tk_logit_chunk;
/* Consumer: called once per chunk, in row order; the chunk's arrays are valid during the call only. */
typedef tk_status (*tk_logit_consumer)(void *ctx, const tk_logit_chunk *chunk);

/* Returns the teacher's vocabulary (head->w->ne[1] or t->V); 0 when t is malformed. Thread-safe. */
int64_t tk_teacher_vocab(const tk_teacher *t);
/* Checks a teacher (h + 2-D head, or callback with V > 0) and its selected rows (each in [0, T));
 * fails with a message naming the field or the offending entry. Thread-safe. */
tk_status tk_teacher_check(const tk_teacher *t, const int64_t *rows, int64_t n, int64_t T);

/* Teacher logits of batch rows rows[0..n) (each in [0, T)), delivered per chunk (tk_lmhead_chunk_rows)
 * to consume as view v asks (NULL = raw logits, all entries). Reentrant; the callback teacher is
 * called from this thread only. Fails on a bad teacher, row, temperature or top_k (> V). */
tk_status tk_teacher_logits(const tk_teacher *t, const int64_t *rows, int64_t n, int64_t T, const tk_teacher_view *v,
                            tk_logit_consumer consume, void *ctx);

/* Internal to the objective kernels: raw teacher logits of rows[0..r) into out [r x V]; hbuf is
 * [r x Ct] scratch when the teacher has hidden states (may be NULL otherwise). Reentrant. */
tk_status tk_teacher_chunk(const tk_teacher *t, const int64_t *rows, int64_t r, float *out, float *hbuf);
#endif
