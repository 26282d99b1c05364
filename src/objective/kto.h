/* KTO (Kahneman-Tversky optimisation) on unpaired, labelled completions, with TRL 1.16's
 * formulas (KTOTrainer._compute_loss, loss_type "kto"). lp is a sequence's sum of completion
 * log-probabilities, ref the frozen reference's sum, lr = lp - ref, beta > 0, w_d / w_u the
 * desirable / undesirable weights:
 *
 *   kl          = max(0, mean over the call's KL sequences of (lp - ref)), detached (no gradient);
 *               0 when the call has no KL sequence (TRL's calculate_KL = False)
 *   desirable   w_d (1 - sigmoid(beta (lr - kl)))
 *   undesirable w_u (1 - sigmoid(beta (kl - lr)))
 *
 * KL sequences are TRL's mismatched pairs: a prompt followed by another example's completion
 * (the trainer builds them, src/train/pairs.h); they only enter kl, which TRL computes under
 * no_grad from the policy and the reference, then detaches. Units are the labelled sequences:
 * loss_sum sums their weighted losses, norm = their count (TRL: losses.nanmean()).
 *
 * Batch: seq, n_seq, seq_value (1 desirable, 0 undesirable, -1 a KL sequence; seq_group is
 * not read), ref_h (+ ref_head) or ref_logp; every sequence has at least one counted row.
 * Metrics, named as TRL logs them: rewards/chosen, rewards/rejected, rewards/margins,
 * logps/chosen, logps/rejected, kl. TRL logs each as a per-micro-batch value (chosen ones
 * averaged over the batch's desirable sequences, ...) averaged over micro-batches; here each
 * metric's sum is (that per-call value) x norm, so that sum / norm over one call is TRL's value
 * and over several calls their example-weighted mean. A call without desirable (undesirable)
 * sequences adds 0 to the chosen (rejected) metrics and to rewards/margins, where TRL appends
 * nothing. All per-sequence arithmetic in double. Thread safety as objective.h. */
#ifndef TK_OBJECTIVE_KTO_H
#define TK_OBJECTIVE_KTO_H
#include "objective/objective.h"

typedef struct tk_kto_params {
    double beta;                /* > 0 */
    double desirable_weight;    /* >= 0 */
    double undesirable_weight;  /* >= 0 */
} tk_kto_params;

/* TRL's defaults: beta 0.1, both weights 1. Thread-safe. */
tk_kto_params tk_kto_default_params(void);

extern const tk_objective_ops tk_objective_kto;
#endif
