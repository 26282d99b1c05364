/* Training objectives: what the final hidden states of a forward are scored by. An
 * objective never sees the model. It takes the final (RMS-normed) hidden states h [T x C]
 * of the forwards it needs (tk_forward_hidden), the LM head weight and per-token /
 * per-sequence data, and returns its loss and dh = d loss / d h [T x C] for the policy
 * forward; the model's backward continues from dh (tk_llama_backward_hidden). New
 * objectives (DPO family, reward, GRPO, distillation) are one tk_objective_ops table each,
 * built from the chunked kernels in logp.h, teacher.h and distill.h; docs/objectives.md
 * says how to add one.
 *
 * Dimension legend: T batch rows (B x Tc packed, flattened), C model dim, V vocabulary,
 * S sequences (n_seq), G groups (pairs, GRPO groups).
 *
 * Contract of loss_and_grad (checked by tk_objective_loss_and_grad where generic):
 *  - Loss normalisation: an objective returns loss_sum, a sum over its units in this call
 *    (weighted tokens for SFT, pairs for DPO, ...), and norm, the units' total weight.
 *    The reported loss of a step is sum(loss_sum) / sum(norm) over its micro-batches; the
 *    trainer passes grad_scale = 1 / (total norm of the step), so that gradients are those
 *    of the reported loss. Metrics are sums over the same units (mean = sum / norm).
 *  - dh [T x C] is written (=), zero on rows that do not contribute; NULL = no gradient
 *    (evaluation). dw (f32 [V x C], the head's gradient when it is trainable, i.e. full
 *    fine-tuning, the shared embedding gradient for a tied head; NULL when frozen; ignored
 *    when dh is NULL) is accumulated (+=), like every parameter gradient. Both are
 *    d(grad_scale * loss_sum)/d(.). Only the policy forward (h) gets gradients; reference
 *    and teacher forwards are frozen.
 *  - Thread safety: one objective instance is used by one thread at a time (its state may
 *    hold scratch); distinct instances are independent. Kernels use OpenMP inside.
 *  - Determinism: every reduction runs in a fixed order, so for a given thread count the
 *    results are bit-identical run to run; for any chunk size they agree up to the float
 *    rounding of the head products.
 *  - Bad input returns a tk_status with a message naming the field and row; nothing aborts. */
#ifndef TK_OBJECTIVE_H
#define TK_OBJECTIVE_H
#include "takumi/core.h"
#include "core/param.h"
#include "objective/teacher.h"

/* What an objective needs in its batch (tk_objective_ops.needs): the trainer runs the extra
 * forwards and fills the fields only when asked; tk_objective_loss_and_grad checks them. */
enum {
    TK_OBJ_NEED_TARGET = 1 << 0,   /* target (and optionally weight) */
    TK_OBJ_NEED_SEQ = 1 << 1,      /* seq, n_seq (and seq_group / seq_value as the objective documents) */
    TK_OBJ_NEED_REF = 1 << 2,      /* ref_h (a frozen reference forward) or ref_logp */
    TK_OBJ_NEED_TEACHER = 1 << 3,  /* teacher */
};

/* One micro-batch as objectives see it. Arrays are borrowed for the call. */
typedef struct tk_obj_batch {
    int64_t T, C;                  /* rows (B x Tc), model dim (= head->w->ne[0]) */
    const float *h;                /* [T x C] policy final hidden states (gets the gradient) */
    const tk_lm_head *head;        /* policy LM head (W ggml {C, V}, any dtype; its soft-cap) */
    /* per token */
    const int32_t *target;         /* [T] next-token id, -1 = no loss at this row */
    const float *weight;           /* [T] loss weight (0 on prompts), NULL = 1 */
    /* per sequence (packed rows may hold several sequences; grouping is the objective's, not attention's) */
    const int32_t *seq;            /* [T] sequence id in [0, n_seq), -1 = in no sequence (prompt, padding) */
    int32_t n_seq;                 /* S */
    const int32_t *seq_group;      /* [S] group id in [0, n_group) (a DPO pair, a GRPO group), or NULL */
    int32_t n_group;               /* G */
    const float *seq_value;        /* [S] per-sequence value (1 chosen / 0 rejected, a reward, a label), or NULL */
    /* frozen reference (DPO family, KL penalties): hidden states over the same rows, or precomputed */
    const float *ref_h;            /* [T x C] reference final hidden states (the base with the adapter off), or NULL */
    const tk_lm_head *ref_head;    /* reference head, NULL = head */
    const double *ref_logp;        /* [S] reference per-sequence log-prob sums (precomputed), or NULL */
    /* policy-gradient objectives (GRPO) */
    const float *old_logp;         /* [T] per-token log-probs of the policy that sampled (GRPO), or NULL: ratio 1 (detached) */
    const int32_t *seq_tokens;     /* [S] each sequence's completion-token count over all the step's calls (GRPO's
                                    * per-sequence normalisation when the trainer splits a sequence across calls),
                                    * or NULL: its counted rows in this call */
    /* teacher (distillation) */
    const tk_teacher *teacher;     /* or NULL */
} tk_obj_batch;

#define TK_OBJ_MAX_METRICS 8

/* What one call returns (all =). */
typedef struct tk_obj_result {
    double loss_sum;                       /* sum over this call's units */
    double norm;                           /* their total weight (tokens, pairs, ...) */
    double metrics[TK_OBJ_MAX_METRICS];    /* sums over units, in ops->metric_names order */
} tk_obj_result;

/* The table an objective implements. */
typedef struct tk_objective_ops {
    const char *name;                      /* "sft", "dpo", ... */
    unsigned needs;                        /* TK_OBJ_NEED_* */
    int n_metrics;                         /* <= TK_OBJ_MAX_METRICS */
    const char *const *metric_names;       /* [n_metrics], e.g. "accuracy" (mean = metric sum / norm) */
    /* Creates the objective's state from its own params struct (may be NULL = defaults); NULL
     * create = stateless. */
    tk_status (*create)(const void *params, void **state);
    void (*free)(void *state);
    /* Loss, dh (=, may be NULL) and dw (+=, may be NULL) of batch b as in the contract above. */
    tk_status (*loss_and_grad)(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw,
                               tk_obj_result *res);
    /* Optional (NULL = none): the objective's own trainable parameters (a reward model's score head).
     * Adds them to ps as prefix + their HF name, initialised from seed, for a model of width C; the
     * training context calls it once, after its other parameters, so the optimizer, checkpoints and
     * resume treat them like any other. The objective keeps the parameters' w and g buffers (stable
     * while ps lives), reads w in loss_and_grad and accumulates (+=) g when dh != NULL. */
    tk_status (*add_params)(void *state, int64_t C, uint64_t seed, const char *prefix, tk_param_set *ps);
} tk_objective_ops;

typedef struct tk_objective tk_objective;

/* Creates an objective from its table and params (NULL = its defaults); fails naming the objective when the
 * table is malformed or create fails. Free with tk_objective_free. Thread-safe (touches no shared state). */
tk_status tk_objective_new(const tk_objective_ops *ops, const void *params, tk_objective **out);
/* Frees an objective; accepts NULL. Not concurrently with a call on the same objective. */
void tk_objective_free(tk_objective *o);
/* The objective's state (what its create made; for the objective's own helpers, e.g. tk_reward_scores). Thread-safe. */
void *tk_objective_state(tk_objective *o);
/* Returns the objective's table (NULL for NULL). Thread-safe. */
const tk_objective_ops *tk_objective_get_ops(const tk_objective *o);
/* Checks b against o's needs (shapes, ids in range, presence; messages name field and row), then
 * runs loss_and_grad. res is zeroed first. Thread safety: one call per objective at a time. */
tk_status tk_objective_loss_and_grad(tk_objective *o, const tk_obj_batch *b, float grad_scale, float *dh, float *dw,
                                     tk_obj_result *res);

/* Adds o's own trainable parameters to ps (ops->add_params; nothing for objectives without any). Not
 * thread-safe for one objective or one ps. */
tk_status tk_objective_add_params(tk_objective *o, int64_t C, uint64_t seed, const char *prefix, tk_param_set *ps);

/* The pairs of a batch (DPO family, reward models): from seq_group and seq_value (1 chosen, 0 rejected),
 * chosen[g] and rejected[g] (each [n_group]) receive pair g's sequences; fails naming the pair or sequence
 * when a group lacks one side or has two of one, or a value is neither 1 nor 0. Thread-safe. */
tk_status tk_objective_pairs(const tk_obj_batch *b, int32_t *chosen, int32_t *rejected);

/* Built-in objectives by name ("sft", "dpo", "orpo", "simpo": objective/dpo.h; "kto": kto.h; "reward": reward.h; "distill": distill.h; "grpo": grpo.h; "classify", "regress": classify.h); NULL when unknown. Thread-safe (a constant table). */
const tk_objective_ops *tk_objective_find(const char *name);

/* SFT: the chunked LM-head cross-entropy with token weights (tk_lmhead_xent): loss_sum =
 * sum_t weight[t] * CE_t, norm = sum_t weight[t] over rows with target >= 0 and weight != 0.
 * Needs target (weight optional); no params, no metrics. Bit-identical to tk_lmhead_xent. */
extern const tk_objective_ops tk_objective_sft;
#endif
