/* DoRA (weight-decomposed LoRA, HF PEFT's LoraConfig(use_dora=True)) on the linear layers of a
 * Llama-family model: per adapted linear the LoRA direction (A [r x in], B [out x r], as
 * src/peft/lora.h, same names, same initialisation and dropout) and a magnitude vector
 * m [out], initialised to the row norms ||W||_row (so the adapted model starts as the base):
 *
 *   W' = m / ||W + s B A||_row  ⊙  (W + s B A)          (s = alpha / r, rsLoRA alpha / sqrt(r))
 *
 * applied as PEFT applies it (peft/tuners/lora/dora.py, variants.py DoraLinearVariant): with
 * mns = m / ||W + s B A||_row,
 *   y += (mns - 1) ⊙ base + mns ⊙ s (dropout(x) A^T) B^T,
 * base = the linear's output without bias (dropout 0 or inference), or dropout(x) W^T (training
 * with dropout). The norm is a constant in the backward (PEFT: weight_norm.detach()), so the
 * gradients equal PEFT's. Parameters: lora_A / lora_B as LoRA's, then
 * "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.lora_magnitude_vector" [out]
 * (q/k rows in the model's order, like lora_B's; see lora.h). */
#ifndef TK_PEFT_DORA_H
#define TK_PEFT_DORA_H
#include "peft/lora.h"
#include "takumi/adapter.h"
#include "takumi/safetensors.h"

typedef struct tk_dora tk_dora;

/* Creates DoRA adapters per cfg (a LoRA config: r, alpha, dropout, rsLoRA, targets, first layer,
 * seed) on m, adding A, B (LoRA's initialisation) and the magnitudes (= ||W||_row) to ps.
 * m and ps must outlive it. Free with tk_dora_free (ps keeps its params). */
tk_status tk_dora_new(tk_model *m, const tk_lora_config *cfg, tk_param_set *ps, tk_dora **out);
void tk_dora_free(tk_dora *d);
/* The adapter as a PEFT method instance (owned by d). Inference is thread-safe (per-workspace scratch). */
const tk_peft *tk_dora_peft(tk_dora *d);
/* The DoRA set of a method instance, or NULL for another method's. Thread-safe. */
tk_dora *tk_dora_of(const tk_peft *p);
/* Its LoRA direction (A and B) and the magnitude parameter of (layer, which) (NULL when that linear has none). */
tk_lora *tk_dora_lora(tk_dora *d);
tk_param *tk_dora_magnitude(tk_dora *d, int32_t layer, tk_linear_id which);
/* Test hook: while held, training forwards reuse the row norms of the last training forward
 * instead of recomputing them, so finite differences see the loss whose gradient PEFT (and this
 * backward) computes: the norm treated as a constant. Not thread-safe. */
void tk_dora_hold_norms(tk_dora *d, bool hold);

/* The "dora" kind's PEFT files (dora_file.c; registry.h has the contracts): PEFT's LoRA layout
 * with "use_dora": true and a "...lora_magnitude_vector" [out] tensor per module. */
struct cJSON;
bool tk_dora_claims(const struct cJSON *cfg);
tk_status tk_dora_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_dora_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_dora_describe_file(const void *file, tk_adapter_info *info);
void tk_dora_file_free(void *file);
/* Writes d as a PEFT folder (the LoRA writer with use_dora and the magnitudes). */
tk_status tk_dora_save_peft(tk_dora *d, const tk_model *m, const char *dir, const char *base_model);
#endif
