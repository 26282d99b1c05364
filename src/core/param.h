/* Trainable tensors: a named f32 parameter with its gradient and AdamW moments, and the
 * set of them a training method owns. Lives in core/ because every layer that trains or
 * writes parameters uses it (peft/ adapters, train/ optimizer and checkpoints). Only
 * trainable parameters hold gradient and optimizer memory; frozen weights never appear. */
#ifndef TK_CORE_PARAM_H
#define TK_CORE_PARAM_H
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
    float lr_mult;      /* learning-rate multiplier of this tensor (1 by default; LoRA+ B matrices: the ratio) */
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
#endif
