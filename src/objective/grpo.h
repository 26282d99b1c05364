/* GRPO (group relative policy optimisation) with TRL 1.16's formulas (GRPOTrainer._compute_loss with
 * importance_sampling_level "token", delta None, no entropy mask / bonus, no vLLM correction; advantages
 * as _generate_and_score_completions with multi_objective_aggregation "sum_then_normalize").
 *
 * A completion token t is a row with seq[t] >= 0, target[t] >= 0 and weight[t] != 0 (prompts carry no
 * target or weight 0); w_t = weight[t] (NULL = 1) plays TRL's completion mask. With A_s = seq_value[s]
 * (the advantage of t's sequence s, tk_grpo_advantages), lp_t the policy's log-prob of the target (from
 * h), old_t = old_logp[t] (the sampling policy's; NULL = lp_t detached: r_t = 1), ref_t the reference's
 * (from ref_h, only when beta > 0):
 *
 *   r_t = exp(lp_t - old_t)
 *   l_t = -min(r_t A_s, clip(r_t, 1 - epsilon_low, 1 + epsilon_high) A_s) + beta (exp(ref_t - lp_t) - (ref_t - lp_t) - 1)
 *
 * aggregated per loss type (n_s = sum of w_t over s's tokens in the whole step: batch.seq_tokens[s] when
 * given, else over this call; L = max_completion_length):
 *
 *   dapo    (TRL 1.16's default) loss_sum = sum_t w_t l_t, norm = sum_t w_t: a step's loss is the token
 *           mean over all its calls = TRL's with steps_per_generation = gradient_accumulation_steps (the
 *           step is one generation batch), for any split of sequences across calls.
 *   grpo    loss_sum = sum_s (sum_t w_t l_t) / n_s, norm = sum_s (this call's w of s) / n_s (1 per whole
 *           sequence): the mean over sequences of their token means = TRL's with equal-sized micro-batches;
 *           a sequence split across calls is exact when batch.seq_tokens gives its whole count (n_s with
 *           binary weights). A sequence without completion token counts 1 in each call that lists it
 *           (TRL counts it in its micro-batch's mean): list it once.
 *   dr_grpo loss_sum = sum_t w_t l_t, norm = L x (sequences counted as grpo): TRL's sum / (B L), exact as grpo.
 *   bnpo    loss_sum = this call's token mean (sum_t w_t l_t / sum_t w_t), norm = 1 (the unit is the call):
 *           the mean of per-call token means = TRL's when each call is one of its micro-batches; TRL's
 *           bnpo itself depends on the micro-batch size, so it cannot be split exactly otherwise.
 *
 * dl/dlp_t = -A_s r_t unless the token is clipped (r_t > 1 + epsilon_high with A_s > 0, or r_t < 1 -
 * epsilon_low with A_s < 0: 0), plus beta (1 - exp(ref_t - lp_t)); dh, dw through tk_seq_logp_backward.
 * Metrics (TRL's names; token means over the call's completion tokens, each reported as that mean x the
 * call's norm, so sum / norm over one call is TRL's logged value and over several calls their
 * norm-weighted mean): kl (mean KL term, 0 when beta = 0), clip_ratio/low_mean, clip_ratio/high_mean,
 * clip_ratio/region_mean, ratio/mean (mean r_t), advantage/mean (token mean of A_s).
 *
 * Batch: target, seq, n_seq, seq_value (the advantages), optional weight, old_logp, seq_tokens; ref_h (+
 * ref_head) when beta > 0 (per-token reference log-probs: ref_logp sums cannot serve). The table's needs
 * are TARGET | SEQ: the trainer runs the reference forward iff beta > 0 (tk_grpo_needs_ref), and the
 * objective checks ref_h itself. All per-token arithmetic in double. Thread safety as objective.h. */
#ifndef TK_OBJECTIVE_GRPO_H
#define TK_OBJECTIVE_GRPO_H
#include "objective/objective.h"

typedef enum tk_grpo_loss { TK_GRPO_LOSS_DAPO = 0, TK_GRPO_LOSS_GRPO, TK_GRPO_LOSS_BNPO, TK_GRPO_LOSS_DR_GRPO, TK_GRPO_LOSS_COUNT } tk_grpo_loss;

typedef struct tk_grpo_params {
    double beta;                    /* >= 0, KL coefficient (0: no reference) */
    double epsilon_low;             /* >= 0, lower clip: r >= 1 - epsilon_low */
    double epsilon_high;            /* >= 0, upper clip: r <= 1 + epsilon_high */
    int loss_type;                  /* tk_grpo_loss */
    int32_t max_completion_length;  /* dr_grpo: L > 0 (TRL's max_completion_length); ignored otherwise */
} tk_grpo_params;

/* TRL 1.16's defaults: beta 0, epsilon 0.2 both sides, loss dapo, max_completion_length 512. Thread-safe. */
tk_grpo_params tk_grpo_default_params(void);

/* Whether the objective needs the reference forward (batch.ref_h): beta > 0. Thread-safe. */
int tk_grpo_needs_ref(const tk_grpo_params *p);

/* Names "dapo", "grpo", "bnpo", "dr_grpo" <-> tk_grpo_loss; parse returns -1 for an unknown name,
 * name returns NULL for an unknown value. Thread-safe. */
int tk_grpo_loss_parse(const char *name);
const char *tk_grpo_loss_name(int loss_type);

/* The norm loss_and_grad reports for batch b under p, from the batch alone (T, target, weight, seq, n_seq,
 * seq_tokens; no forward): a trainer sums it over a step's calls for grad_scale before running them.
 * Fails on a NULL argument, a sequence id outside [-1, n_seq) or bad seq_tokens. Thread-safe. */
tk_status tk_grpo_norm(const tk_grpo_params *p, const tk_obj_batch *b, double *norm);

typedef enum tk_grpo_scale { TK_GRPO_SCALE_GROUP = 0, TK_GRPO_SCALE_BATCH, TK_GRPO_SCALE_NONE } tk_grpo_scale;

/* Advantages as TRL 1.16 computes them from summed rewards (sum_then_normalize): adv[i] = rewards[i] -
 * mean of i's group, divided by (std + 1e-4) unless scale_rewards is NONE, std = the group's (GROUP) or
 * the whole batch's (BATCH) standard deviation with Bessel's correction (torch.std; 0 for a group of one,
 * as TRL with num_generations 1). NaN rewards (unscorable completions) are left out of means and stds,
 * and every NaN result becomes 0 (TRL's nan_to_num), e.g. a group with a single scored reward. group[i]
 * is i's group id (any int32, compared for equality; NULL = one group). Fails on n < 0, a NULL array or
 * an unknown scale. Thread-safe. */
tk_status tk_grpo_advantages(const double *rewards, const int32_t *group, int32_t n, int scale_rewards, float *adv);

extern const tk_objective_ops tk_objective_grpo;
#endif
