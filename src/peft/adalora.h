/* AdaLoRA (HF PEFT's AdaLoraConfig / SVDLinear / RankAllocator) on the linear layers of a
 * Llama-family model: per adapted linear an SVD-shaped update with init_r triplets
 *
 *   y += s (dropout(x) (E ⊙ A)^T) B^T,   s = lora_alpha / (init_r + 1e-5)   (PEFT: scaling / (ranknum + 1e-5))
 *
 * A [r x in] ("lora_A"), E [r x 1] ("lora_E", the singular values), B [out x r] ("lora_B"),
 * initialised as PEFT: E = 0, A and B ~ N(0, 0.02^2) (seeded tk_rng). Names
 * "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.lora_{A,E,B}" (PEFT's state-dict
 * keys; q/k rows of B in the model's order, see lora.h). ranknum stays init_r, as in PEFT.
 *
 * Training adds two things the method seam carries (takumi/peft.h):
 *   reg_loss     PEFT's orthogonal regularization, added to the loss once per step:
 *                orth_reg * mean over every A and B of ||A A^T - I||_F, ||B^T B - I||_F;
 *   after_update PEFT's update_and_allocate(step) after the optimizer step, with the step's
 *                gradients (scaled as the optimizer used them): sensitivity |w g| smoothed
 *                (beta1) and its uncertainty (beta2) per entry, a triplet's importance
 *                S(E_i) + mean_k S(A_ik) + mean_j S(B_ji) with S = smoothed * uncertainty, and
 *                the cubic budget from init_r * modules down to target_r * modules between
 *                tinit and total_step - tfinal: every delta_t steps the triplets with the lowest
 *                importance (<= the (init - budget)-th smallest) get E_i = 0; at
 *                total_step - tfinal the final pattern is fixed (target budget) and re-applied
 *                after every later step. The pattern is what the PEFT folder's rank_pattern holds.
 * Dropout: the adapter keeps a plain LoRA of rank init_r whose A is E ⊙ A (lora.c's dropout
 * masks and input gradient), refreshed at every training forward. */
#ifndef TK_PEFT_ADALORA_H
#define TK_PEFT_ADALORA_H
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/safetensors.h"
#include "core/param.h"

typedef struct tk_adalora_config {
    int32_t init_r, target_r;         /* triplets per linear at the start / average at the end (PEFT 12 / 8) */
    int32_t tinit, tfinal, delta_t;   /* warmup steps, final steps, steps between allocations (PEFT 0 / 0 / 1) */
    int64_t total_step;               /* the run's optimizer steps (> tinit + tfinal) */
    float beta1, beta2;               /* EMA of sensitivity / uncertainty (PEFT 0.85 / 0.85) */
    float orth_reg;                   /* orth_reg_weight (PEFT 0.5) */
    float alpha;                      /* lora_alpha (PEFT's LoraConfig default 8) */
    float dropout;                    /* lora_dropout (PEFT 0) */
    uint32_t targets;                 /* bit (1u << tk_linear_id) per adapted linear; 0 = all seven */
    int32_t first_layer;              /* adapters only on layers >= first_layer */
    uint64_t seed;                    /* initialisation and dropout masks */
} tk_adalora_config;

/* PEFT's defaults (init_r 12, target_r 8, tinit 0, tfinal 0, delta_t 1, betas 0.85, orth_reg 0.5,
 * alpha 8, dropout 0, all linears); total_step 0 must be set. */
tk_adalora_config tk_adalora_default_config(void);

typedef struct tk_adalora tk_adalora;

/* Creates the adapters on m per cfg into ps (checks the schedule as PEFT does). m and ps must
 * outlive it. Free with tk_adalora_free (ps keeps its params). */
tk_status tk_adalora_new(tk_model *m, const tk_adalora_config *cfg, tk_param_set *ps, tk_adalora **out);
void tk_adalora_free(tk_adalora *a);
/* The adapter as a PEFT method instance (owned by a). Inference is thread-safe (per-workspace scratch). */
const tk_peft *tk_adalora_peft(tk_adalora *a);
tk_adalora *tk_adalora_of(const tk_peft *p);
const tk_adalora_config *tk_adalora_get_config(const tk_adalora *a); /* targets resolved */
/* The factor s of the update. */
float tk_adalora_scale(const tk_adalora *a);
/* A, E, B of (layer, which) (false: no adapter there). Pointers valid until ps grows. */
bool tk_adalora_module(tk_adalora *a, int32_t layer, tk_linear_id which, tk_param **A, tk_param **E, tk_param **B);
/* The kept triplets of (layer, which): keep[init_r] (1 kept, 0 masked); NULL when that linear has no
 * adapter. tk_adalora_has_pattern: whether an allocation has happened (PEFT's rank_pattern is not None). */
float *tk_adalora_keep(tk_adalora *a, int32_t layer, tk_linear_id which);
bool tk_adalora_has_pattern(const tk_adalora *a);
/* Sets has_pattern (a file with a rank_pattern was attached). */
void tk_adalora_set_has_pattern(tk_adalora *a, bool on);

/* The rank allocator's parts (adalora_rank.c), for the method and its tests. */
/* PEFT's budget_schedule(step): the budget and whether this step masks. Thread-safe. */
int64_t tk_adalora_budget(const tk_adalora_config *c, int64_t n_modules, int64_t step, bool *mask);
/* update_and_allocate(step) over a (see the top); grad_scale multiplies every gradient read. */
tk_status tk_adalora_allocate(tk_adalora *a, int64_t step, float grad_scale);
/* The orthogonal regularization's value and (grad) its gradient added into the parameters. */
tk_status tk_adalora_orth_reg(tk_adalora *a, bool grad, double *loss);

/* The "adalora" kind's PEFT files (adalora_file.c; registry.h has the contracts): peft_type "ADALORA",
 * lora_A [r_i x in], lora_E [r_i x 1], lora_B [out x r_i] per module with r_i the kept triplets of
 * rank_pattern (all init_r without one). */
struct cJSON;
tk_status tk_adalora_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_adalora_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_adalora_describe_file(const void *file, tk_adapter_info *info);
void tk_adalora_file_free(void *file);
tk_status tk_adalora_save_peft(tk_adalora *a, const tk_model *m, const char *dir, const char *base_model);
#endif
