/* Sequence classification and regression heads, as transformers' *ForSequenceClassification
 * (LlamaForSequenceClassification: a bias-free Linear "score" [K x C] on the final hidden state
 * of each sequence's last token):
 *
 *   x_s       = h[last row of s]                 (--pooling last, transformers' pooling)
 *             = mean of h over the rows of s      (--pooling mean: takumi's; transformers has none)
 *   z_s       = W x_s                             (W: the score head, [K x C], ggml {C, K})
 *   classify  loss_s = -log softmax(z_s)[y_s]     (problem_type single_label_classification,
 *                                                  y_s = seq_value[s], a label index in [0, K))
 *   regress   loss_s = (z_s - y_s)^2, K = 1        (problem_type regression: MSELoss)
 *
 * The score head (tk_score_head) is the block shared with the reward model (reward.h: K = 1,
 * last-token pooling, the Bradley-Terry loss on top): parameters added as prefix + "score.weight"
 * ([K x C], initialised normal(0, init_std) from takumi's seeded generator, as transformers'
 * _init_weights for a Linear), pooled features, logits and their backward into dh and the
 * head's gradient.
 *
 * Batch (TK_OBJ_NEED_SEQ): seq[t] = the sequence row t belongs to (every token of it; -1 on
 * padding), n_seq, seq_value [S] (label index or target value). Units are sequences: loss_sum
 * sums their losses, norm = S (transformers' mean over the batch). Metrics: classify
 * "accuracy" (argmax z_s == y_s, first index on ties); regress "abs_error" (|z_s - y_s|).
 * The LM head is not read and dw is left alone. Arithmetic in double. Thread safety as
 * objective.h. */
#ifndef TK_OBJECTIVE_CLASSIFY_H
#define TK_OBJECTIVE_CLASSIFY_H
#include "objective/objective.h"
#include "takumi/model.h"
#include "takumi/adapter.h"

typedef enum tk_pooling { TK_POOL_LAST = 0, TK_POOL_MEAN } tk_pooling;

/* ---- the score head (shared with reward.c) ------------------------------------------- */
#define TK_SCORE_HEAD_NAME "score.weight"   /* transformers' name of the head's weight */

typedef struct tk_score_head {
    int64_t C;            /* model width */
    int32_t K;            /* outputs (labels; 1 for a reward or a regression) */
    tk_pooling pooling;
    float *w, *g;         /* [K x C] weights and gradient (a tk_param's buffers, or the caller's) */
} tk_score_head;

/* Adds the head's parameter prefix + "score.weight" [K x C] to ps, initialised normal(0, init_std) from seed
 * (row-major, the generator seeded with seed ^ 0x5c0de5c0de5c0de), and points sh->w / sh->g at its buffers.
 * Fails when sh already has parameters or C, K, init_std are out of range. Not thread-safe for one ps. */
tk_status tk_score_head_add(tk_score_head *sh, int64_t C, int32_t K, tk_pooling pooling, double init_std, uint64_t seed,
                            const char *prefix, tk_param_set *ps);
/* Pooled features x [S x C] (double; may be NULL when only z is wanted and pooling is last) and logits
 * z [S x K] of every sequence of b; fails naming the sequence that has no row, or a width mismatch.
 * Thread-safe for distinct outputs. */
tk_status tk_score_head_forward(const tk_score_head *sh, const tk_obj_batch *b, double *x, double *z);
/* Backward of z = W pool(h) for dz [S x K]: dh (=, [T x C], zero where no sequence reads) and, when sh->g is
 * not NULL, the head's gradient (+=). x: the features of tk_score_head_forward. Sequence order: deterministic. */
tk_status tk_score_head_backward(const tk_score_head *sh, const tk_obj_batch *b, const double *x, const double *dz, float *dh);

/* ---- the objective ------------------------------------------------------------------- */
typedef struct tk_classify_params {
    int32_t n_labels;     /* K >= 1 (classify: >= 2 to be useful; regress: 1) */
    bool regress;         /* MSE on seq_value (K must be 1) instead of cross-entropy (set by the table used) */
    tk_pooling pooling;
    double init_std;      /* > 0: the head's initial normal deviation (transformers' initializer_range, 0.02) */
} tk_classify_params;

/* 2 labels, classify, last-token pooling, init_std 0.02. Thread-safe. */
tk_classify_params tk_classify_default_params(void);

/* "classify" (cross-entropy, metric accuracy) and "regress" (MSE, metric abs_error); each sets params.regress
 * itself (regress with NULL params: 1 output). */
extern const tk_objective_ops tk_objective_classify, tk_objective_regress;

/* Logits [n_seq x K] of every sequence of b with the head of o (a classify objective whose parameters were
 * added). Not concurrently with another call on o. */
tk_status tk_classify_logits(tk_objective *o, const tk_obj_batch *b, double *logits);

/* ---- labels ---------------------------------------------------------------------------- */
/* A label list "neg,pos" split into names (*names: n strings, free with tk_labels_free); fails naming the
 * option (opt, e.g. "--labels") for an empty name or a repeated one. Thread-safe. */
tk_status tk_labels_parse(const char *list, const char *opt, char ***names, int32_t *n);
void tk_labels_free(char **names, int32_t n);
/* The index of a record's label text: a name of names[0..n), else a decimal index in [0, n); -1 when neither.
 * Thread-safe. */
int32_t tk_label_index(const char *label, size_t len, char *const *names, int32_t n);

/* ---- a trained classifier (classify_model.c) ---------------------------------------------------- */
/* What RUN/adapter/ holds (written by `takumi train --task classify|regress`, src/train/classify_out.c):
 *   config.json                    {"architectures": ["...ForSequenceClassification"], "id2label", "label2id",
 *                                   "num_labels", "problem_type", "pooling", "adapter": true|false}: the entries
 *                                   transformers' config takes for the head (pooling: takumi's; "last" is
 *                                   transformers')
 *   with an adapter (LoRA, ...):   adapter_config.json (task_type SEQ_CLS, modules_to_save ["classifier", "score"])
 *                                   + adapter_model.safetensors with "base_model.model.score.weight" [K x C]
 *   head only (--method head):     head.safetensors with "score.weight" [K x C] */
typedef struct tk_classifier {
    tk_score_head head;         /* w: owned [K x C]; g NULL */
    bool regress;
    char **labels; int32_t n_labels;   /* id2label in index order */
    tk_adapter_handle *ad;      /* the adapter applied to the model (NULL: head only) */
} tk_classifier;
/* Opens the classifier in dir for model m (its adapter applied to m, detached by tk_classifier_close); errors
 * name the folder and file. A reward model (SEQ_CLS without config.json) opens as a 1-output regression head.
 * Not concurrently with other attaches to m. */
tk_status tk_classifier_open(const char *dir, tk_model *m, tk_classifier *out);
void tk_classifier_close(tk_classifier *c, tk_model *m);
/* Logits z [K] of one token sequence ids[0..n) (tokenized as tk_classifier_tokens does) through f, a forward workspace
 * of the model c was opened on with room for n tokens (c's adapter is set on f here). Not concurrently on f. */
tk_status tk_classifier_run(const tk_classifier *c, tk_forward *f, const int32_t *ids, int64_t n, double *z);
/* text tokenized as transformers' tokenizer(text, truncation=True, max_length=max_seq) (the tokenizer's own BOS/EOS, the
 * first max_seq tokens kept) into ids (cleared first). Thread-safe. */
tk_status tk_classifier_tokens(const tk_tokenizer *tok, const char *text, size_t len, int32_t max_seq, tk_ivec *ids);
/* Softmax of z [K] into p [K] (double; max subtracted). Thread-safe. */
void tk_softmax_d(const double *z, int32_t K, double *p);
/* True when dir holds a classifier or regression head written by takumi (config.json with id2label; a reward model has
 * none: tk_reward_model_is). Thread-safe. */
bool tk_classifier_is(const char *dir);
#endif
