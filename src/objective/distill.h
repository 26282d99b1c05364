/* Distillation between a teacher's and the student's next-token distributions at selected
 * rows, chunked (the [rows x V] logits of neither model exist whole), with the gradient
 * w.r.t. the student's hidden states (and its head when trainable).
 * With temperature tau, p = softmax(teacher logits / tau), q = softmax(student logits / tau):
 *   TK_DISTILL_FORWARD_KL   KL(p || q) = sum_j p_j (log p_j - log q_j)   (the classic KD term)
 *   TK_DISTILL_REVERSE_KL   KL(q || p) = sum_j q_j (log q_j - log p_j)   (mode-seeking, MiniLLM-style)
 *   TK_DISTILL_CROSS_ENTROPY  H(p, q) = -sum_j p_j log q_j   (forward KL + the teacher's entropy)
 *   TK_DISTILL_JSD          generalised Jensen-Shannon divergence with beta (Agarwal et al., GKD; exactly TRL's
 *                           GKDTrainer.generalized_jsd_loss): m = (1 - beta) q + beta p,
 *                           JSD_beta = beta KL(p || m) + (1 - beta) KL(q || m); beta 0 is forward KL and beta 1
 *                           reverse KL, as TRL computes them (not the 0 the mixture formula would give)
 * Nothing multiplies by tau^2 (Hinton et al. do, to keep gradient sizes across tau): put it in
 * the caller's weights if wanted. Logs are taken in the log domain (no log of an underflowed p).
 * Dimension legend: T batch rows, C student dim, V vocabulary (teacher and student share it). */
#ifndef TK_OBJECTIVE_DISTILL_H
#define TK_OBJECTIVE_DISTILL_H
#include "objective/objective.h"
#include "objective/teacher.h"

typedef enum tk_distill_kind {
    TK_DISTILL_FORWARD_KL = 0,
    TK_DISTILL_REVERSE_KL,
    TK_DISTILL_CROSS_ENTROPY,
    TK_DISTILL_JSD,
} tk_distill_kind;

/* Returns "forward_kl", "reverse_kl", "cross_entropy", "jsd" ("?" for another value). Thread-safe. */
const char *tk_distill_kind_name(tk_distill_kind k);

/* For the batch rows rows[0..n) (each in [0, T)): D_i as kind says between the teacher and the
 * student (hidden states h [T x C], head ggml {C, V}) at row rows[i]. *loss_sum = sum_i w_i D_i and
 * *weight_sum = sum_i w_i (=, double, in row order), w_i = weight[rows[i]] (weight [T], NULL = 1).
 * When dh / dw are non-NULL: dh [T x C] += d(grad_scale * loss_sum)/dh and dw (f32 [V x C]) += the
 * same w.r.t. the student head (the teacher gets no gradient). Fails naming the field on a bad
 * teacher / row / temperature, or when the vocabularies differ. TK_DISTILL_JSD here has beta 0.5
 * (tk_distill_p for another). Reentrant. */
tk_status tk_distill(const float *h, const tk_lm_head *head, const tk_teacher *teacher, const int64_t *rows, int64_t n,
                     int64_t T, const float *weight, tk_distill_kind kind, float temperature, float grad_scale,
                     double *loss_sum, double *weight_sum, float *dh, float *dw);

/* The "distill" objective (tk_objective_distill): at every row with target >= 0 and weight != 0 (the
 * trained positions of SFT data; weight NULL = 1), D_t of kind between batch.teacher and the policy;
 * loss_sum = sum_t weight[t] D_t, norm = sum_t weight[t] (units: trained tokens, as SFT). Needs
 * target and teacher (a teacher of the policy's vocabulary); no metrics. */
typedef struct tk_distill_params {
    tk_distill_kind kind;          /* default forward KL */
    float temperature;             /* > 0, default 1 */
    float beta;                    /* TK_DISTILL_JSD: in [0, 1], default 0.5 (TRL's GKDConfig.beta) */
} tk_distill_params;
/* Defaults: forward KL at temperature 1, beta 0.5. Thread-safe. */
tk_distill_params tk_distill_default_params(void);
/* tk_distill with kind, temperature and beta from p (beta outside [0, 1] fails). Reentrant. */
tk_status tk_distill_p(const float *h, const tk_lm_head *head, const tk_teacher *teacher, const int64_t *rows, int64_t n,
                       int64_t T, const float *weight, const tk_distill_params *p, float grad_scale, double *loss_sum,
                       double *weight_sum, float *dh, float *dw);
/* The kind named name ("forward_kl", "reverse_kl", "cross_entropy", "jsd"); -1 when unknown. Thread-safe. */
int tk_distill_kind_from_name(const char *name);
extern const tk_objective_ops tk_objective_distill;
#endif
