/* The model side of an evaluation (eval_model.c): one system = a model, an optional adapter and
 * its chat template; scoring by log-likelihood and answer generation. Internal to src/eval/. */
#ifndef TK_EVAL_MODEL_H
#define TK_EVAL_MODEL_H
#include "eval/eval_internal.h"
#include "takumi/adapter.h"
#include "takumi/generate_batch.h"
#include "objective/reward.h"
#include "objective/classify.h"

typedef struct tk_eval_sys {
    tk_model *m; bool owns_model;
    tk_adapter_handle *ad;
    tk_objective *rm; tk_param_set rm_ps;   /* the adapter is a reward model: its score head (pref_accuracy by scores) */
    tk_classifier cls; bool is_cls;         /* the adapter is a classifier: its head answers label records (its adapter in use) */
    tk_adapter_use use; int n_use;
    tk_chat_family fam;
    int32_t max_seq;                 /* longer scored sequences are skipped and counted */
    tk_forward *fw; int32_t fw_cols; int fw_n_use; /* adapters set on fw */
    bool ref_done, ref_long; double ref_lp; int64_t ref_n, ref_right; /* one example's reference, shared by loss/ppl/token_acc */
    bool pair_done;                  /* one example's preference pair scored (pref_accuracy, reward_accuracy) */
    bool exact;                      /* tk_eval_generate decodes with f32 activations (tk_eval_params.exact) */
} tk_eval_sys;

/* Loads model (or uses shared, not owned) and applies adapter (may be NULL). Errors name the file. */
tk_status tk_eval_sys_open(tk_model *shared, const char *model, const char *tokenizer, const char *adapter, const char *tmpl,
                           tk_eval_sys *s);
void tk_eval_sys_close(tk_eval_sys *s);
/* Scoring metrics (model == 1) of one example into stats (multiple choice: each choice's log-likelihood into
 * ex->choice_lp[which]; preference pairs: into ex->pref[which], and with the adapter off into ex->pref_ref[which]);
 * call tk_eval_score_reset between examples. Not thread-safe (one system per thread). */
tk_status tk_eval_score(tk_eval_sys *s, tk_eval_ex *ex, int which, const tk_eval_col *cols, int n_cols, double *stats, int64_t *n_too_long);
void tk_eval_score_reset(tk_eval_sys *s);
/* The prompt of ex rendered with the generation prompt. */
tk_status tk_eval_prompt_ids(tk_eval_sys *s, const tk_eval_ex *ex, tk_ivec *ids);
/* Greedy answers (max_tokens each) to every example ending in a user turn, into ex->pred[which]: batch answers decoded
 * together (tk_generate_batch: the same tokens as one at a time). A classifier answers instead: the predicted label
 * of the last user message's text (its name, or its index where the record's label is an index); a record label the
 * classifier does not know fails naming the line. */
tk_status tk_eval_generate(tk_eval_sys *s, tk_eval_set *set, int which, int32_t max_tokens, int32_t batch,
                           void (*progress)(void *, const char *, int64_t, int64_t), void *ud, double *gen_s, int64_t *n_gen);
#endif
