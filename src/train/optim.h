/* Trainable parameters, AdamW (decoupled weight decay), learning-rate schedules with
 * warmup, global-norm gradient clipping. Only trainable parameters hold gradient and
 * optimizer memory; frozen weights never appear here. */
#ifndef TK_TRAIN_OPTIM_H
#define TK_TRAIN_OPTIM_H
#include "takumi/core.h"

/* One trainable tensor: f32 master weights, gradient and Adam moments, all [n]. */
typedef struct tk_param {
    char name[160];     /* stable name, used in checkpoints and adapter files */
    int64_t n;          /* elements */
    int n_dims;
    int64_t ne[TK_MAX_DIMS];
    float *w;           /* master weights (owned by the param set unless external) */
    float *g;           /* gradient, accumulated (+=) by backward */
    float *m, *v;       /* AdamW first/second moments */
    bool decay;         /* apply weight decay (false for norms/biases by convention) */
    bool external_w;    /* w is owned elsewhere (not freed here) */
} tk_param;

typedef struct tk_param_set {
    tk_param *p;
    int64_t n, cap;
    int64_t total;      /* sum of n */
} tk_param_set;

/* Adds a zero-initialised parameter of shape ne (ggml order); w may be given (external) or NULL (allocated, zeroed). Returns the new param via *out (pointer valid until the next add). */
tk_status tk_params_add(tk_param_set *s, const char *name, int n_dims, const int64_t *ne, float *w, bool decay, tk_param **out);
/* Finds a parameter by name (NULL when absent). */
tk_param *tk_params_find(tk_param_set *s, const char *name);
/* Sets every gradient to zero. */
void tk_params_zero_grad(tk_param_set *s);
/* Returns the global L2 norm of all gradients (computed in double). */
double tk_params_grad_norm(const tk_param_set *s);
/* Multiplies every gradient by f. */
void tk_params_scale_grad(tk_param_set *s, float f);
/* Frees all buffers owned by the set. */
void tk_params_free(tk_param_set *s);

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
/* Clips (if o->clip > 0) and applies one AdamW update for step `step` (0-based; bias correction uses step+1). Returns the pre-clip gradient norm in *grad_norm (may be NULL). */
void tk_adamw_step(const tk_adamw *o, tk_param_set *s, int64_t step, double *grad_norm);
#endif
