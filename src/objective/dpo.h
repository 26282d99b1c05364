/* Preference objectives on pairs of sequences (a prompt's chosen and rejected completion),
 * with TRL's formulas (trl 1.16: DPOTrainer, ORPOTrainer, CPOTrainer with loss_type "simpo"):
 *
 *   dpo    delta = (lp_c - ref_c) - (lp_r - ref_r)   (lp: sum of completion log-probs; ref: the
 *          frozen reference's), per pair:
 *            sigmoid  -log sigmoid(beta delta)
 *            hinge    relu(1 - beta delta)
 *            ipo      ((lp_c - ref_c) / n_c - (lp_r - ref_r) / n_r - 1 / (2 beta))^2   (n: completion tokens)
 *            robust   (-(1 - e) log sigmoid(beta delta) + e log sigmoid(-beta delta)) / (1 - 2e), e = label_smoothing
 *          rewards = beta (lp - ref); logps = lp.
 *   orpo   NLL - beta log sigmoid(log_odds), log_odds = (m_c - m_r) - (log(1 - e^m_c) - log(1 - e^m_r)),
 *          m = mean completion log-prob; NLL = the weighted token mean of -log p over the call's rows
 *          with weight != 0 (batch.weight; TRL trains it on the chosen prompt and completion), or over
 *          the chosen completions when weight is NULL. No reference. rewards = beta m; logps = m.
 *   simpo  -(1 - e) log sigmoid(beta x) - e log sigmoid(-beta x), x = m_c - m_r - gamma / beta
 *          (gamma = simpo_gamma, the target reward margin). No reference. rewards = beta m; logps = m.
 *
 * Units are pairs: loss_sum sums the per-pair losses, norm = pairs (ORPO: G x the call's NLL is in
 * loss_sum, so that loss_sum / norm is TRL's micro-batch loss). Batch: seq, n_seq; seq_group (the pair
 * of each sequence) and seq_value (1 chosen, 0 rejected): each group holds exactly one of each, and
 * every sequence has at least one counted row. dpo also needs ref_h (+ ref_head) or ref_logp (sums).
 * Metrics (sums over pairs; mean = sum / norm), named as TRL logs them: rewards/chosen,
 * rewards/rejected, rewards/accuracies (chosen reward > rejected), rewards/margins, logps/chosen,
 * logps/rejected; orpo adds nll_loss and log_odds_ratio (mean log sigmoid(log_odds)).
 * All per-pair arithmetic is in double; gradients go through tk_seq_logp_backward's per-token
 * coefficients (one recomputation of the policy logits). Thread safety as objective.h. */
#ifndef TK_OBJECTIVE_DPO_H
#define TK_OBJECTIVE_DPO_H
#include "objective/objective.h"

typedef enum tk_dpo_loss { TK_DPO_SIGMOID = 0, TK_DPO_IPO, TK_DPO_HINGE, TK_DPO_ROBUST, TK_DPO_LOSS_COUNT } tk_dpo_loss;

/* Parameters of all three objectives (each reads what applies to it). */
typedef struct tk_dpo_params {
    tk_dpo_loss loss;        /* dpo only */
    double beta;             /* > 0 */
    double label_smoothing;  /* dpo robust: in [0, 0.5); simpo: in [0, 1); 0 elsewhere */
    double simpo_gamma;      /* simpo: target reward margin */
} tk_dpo_params;

/* TRL's defaults: sigmoid, beta 0.1, label_smoothing 0, simpo_gamma 0.5. Thread-safe. */
tk_dpo_params tk_dpo_default_params(void);
/* "sigmoid", "ipo", "hinge", "robust" ("?" otherwise); and the reverse (TK_DPO_LOSS_COUNT when unknown). Thread-safe. */
const char *tk_dpo_loss_name(tk_dpo_loss l);
tk_dpo_loss tk_dpo_loss_from_name(const char *name);

extern const tk_objective_ops tk_objective_dpo;
extern const tk_objective_ops tk_objective_orpo;
extern const tk_objective_ops tk_objective_simpo;
#endif
