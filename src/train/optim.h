/* Trainable parameters, AdamW (decoupled weight decay), learning-rate schedules with
 * warmup, global-norm gradient clipping. Only trainable parameters hold gradient and
 * optimizer memory; frozen weights never appear here. */
#ifndef TK_TRAIN_OPTIM_H
#define TK_TRAIN_OPTIM_H
#include "core/param.h"

typedef enum tk_sched { TK_SCHED_CONSTANT = 0, TK_SCHED_LINEAR, TK_SCHED_COSINE } tk_sched;

typedef struct tk_adamw {
    float lr;           /* peak learning rate */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled: w -= lr * wd * w */
    float clip;         /* global-norm clip (<= 0: off) */
    tk_sched sched;
    int64_t warmup;     /* linear warmup steps from 0 to lr */
    int64_t total;      /* total optimizer steps (for linear/cosine decay) */
    float min_lr_ratio; /* floor of the decay as a fraction of lr (0 = to zero) */
} tk_adamw;

/* Returns AdamW defaults (lr 2e-4, betas 0.9/0.999, eps 1e-8, wd 0, clip 1.0, linear, no warmup). */
tk_adamw tk_adamw_default(void);
/* Learning rate at optimizer step `step` (0-based) under the schedule. */
float tk_lr_at(const tk_adamw *o, int64_t step);
/* The factor the step applies to every gradient for a pre-clip global norm `norm` (1 when clipping is off or not
 * needed). Thread-safe. */
float tk_adamw_clip_scale(const tk_adamw *o, double norm);
/* Clips (if o->clip > 0) and applies one AdamW update for step `step` (0-based; bias correction uses step+1); each tensor's learning rate (and so its decoupled decay) is the schedule's times its lr_mult. Returns the pre-clip gradient norm in *grad_norm (may be NULL). */
void tk_adamw_step(const tk_adamw *o, tk_param_set *s, int64_t step, double *grad_norm);
/* The same step for parameters [first, end) of s only (their moments must exist), clipping by the norm of
 * all of s's gradients: with the optimizer state sharded over ranks (ZeRO-1), each rank steps its own range. */
void tk_adamw_step_range(const tk_adamw *o, tk_param_set *s, int64_t step, double *grad_norm, int64_t first, int64_t end);
#endif
