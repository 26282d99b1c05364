/* A reward model: a scalar head on the final hidden state of each sequence's last token, and
 * the Bradley-Terry loss on preference pairs, as TRL 1.16's RewardTrainer.compute_loss (on
 * transformers' AutoModelForSequenceClassification with num_labels = 1):
 *
 *   r_s       = w . h[last row of s]      (w: the score head, {C} -> 1, no bias)
 *   pair loss = -log sigmoid(r_c - r_r) + center (r_c + r_r)^2
 *
 * (center = TRL's center_rewards_coefficient; 0 = None). The head is the objective's own
 * trainable parameter (add_params): "score.weight" as transformers names it, [1 x C] (ggml
 * {C, 1}), initialised as transformers' _init_weights does for a Linear, normal(0, init_std)
 * with init_std = initializer_range (0.02), from takumi's seeded generator. Its gradient
 * accumulates when dh != NULL.
 *
 * The last row of sequence s is the last row t with seq[t] == s (the trainer marks only that
 * row; transformers pools the last token that is not the pad token, the same row unless a
 * sequence ends in the pad token). Units are pairs: loss_sum sums pair losses, norm = pairs.
 * Batch: seq, n_seq, seq_group and seq_value (1 chosen, 0 rejected: tk_objective_pairs); no
 * targets, no reference; the LM head is not read and dw is left alone. Metrics, named as TRL
 * logs them: accuracy (r_c > r_r), margin (r_c - r_r), mean_reward (over both sequences), and
 * min_reward / max_reward as the call's min / max x norm (TRL logs them per micro-batch).
 * Arithmetic in double. Thread safety as objective.h. */
#ifndef TK_OBJECTIVE_REWARD_H
#define TK_OBJECTIVE_REWARD_H
#include "objective/objective.h"
#include "objective/classify.h"
#include "takumi/model.h"
#include "takumi/adapter.h"

typedef struct tk_reward_params {
    double center_rewards;   /* >= 0; 0 = no centring term */
    double init_std;         /* > 0: the head's initial normal deviation */
} tk_reward_params;

/* center_rewards 0 (TRL: None), init_std 0.02 (transformers' initializer_range). Thread-safe. */
tk_reward_params tk_reward_default_params(void);
/* The head's parameter name without prefix ("score.weight"). */
#define TK_REWARD_HEAD_NAME TK_SCORE_HEAD_NAME

/* Rewards of every sequence of b (rewards [n_seq], =) with the head of o (an objective of the
 * reward table whose parameters were added); seq as loss_and_grad reads it. Not concurrently with
 * another call on o. */
tk_status tk_reward_scores(tk_objective *o, const tk_obj_batch *b, double *rewards);

extern const tk_objective_ops tk_objective_reward;

/* reward_model.c. A trained reward model (PEFT SEQ_CLS folder dir): its adapter applied to m (*h, detach with
 * tk_adapter_detach) and its score head copied into head [C]. Errors name the folder. Not concurrently with other
 * attaches to m. */
tk_status tk_reward_model_open(const char *dir, tk_model *m, float *head, int64_t C, tk_adapter_handle **h);
/* True when dir holds a PEFT adapter with task_type SEQ_CLS (a reward model). Thread-safe. */
bool tk_reward_model_is(const char *dir);
#endif
