/* IA3 (HF PEFT's IA3Config) on the linear layers of a Llama-family model: a learned vector per
 * adapted linear, initialised to ones (the adapted model starts as the base):
 *   an output-scaled linear (default k_proj, v_proj):  y = (x W^T + b) ⊙ l      l [out]
 *   a feed-forward linear (default down_proj):          y = (x ⊙ l) W^T (+ b)    l [in]
 * as peft/tuners/ia3/layer.py applies it. Through the method seam (which sees y after the base
 * product) the feed-forward case adds ((l - 1) ⊙ x) W^T; its backward recomputes dy W.
 * Parameters "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.ia3_l", torch shapes
 * [1, in] (feed-forward) / [out, 1] (others), q/k rows in the model's order (see lora.h).
 * A request scale s applies 1 + s (l - 1). */
#ifndef TK_PEFT_IA3_H
#define TK_PEFT_IA3_H
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/safetensors.h"
#include "core/param.h"

typedef struct tk_ia3_config {
    uint32_t targets;      /* bit (1u << tk_linear_id) per adapted linear; 0 = PEFT's default for Llama: k, v, down */
    uint32_t feedforward;  /* of the targets, those scaled at the input; targets 0: down */
    int32_t first_layer;   /* vectors only on layers >= first_layer */
} tk_ia3_config;

/* PEFT's defaults: k_proj, v_proj, down_proj (down_proj feed-forward), every layer. */
tk_ia3_config tk_ia3_default_config(void);

typedef struct tk_ia3 tk_ia3;

/* Creates the vectors (ones) on m per cfg into ps. feedforward must be a subset of targets.
 * m and ps must outlive it. Free with tk_ia3_free (ps keeps its params). */
tk_status tk_ia3_new(tk_model *m, const tk_ia3_config *cfg, tk_param_set *ps, tk_ia3 **out);
void tk_ia3_free(tk_ia3 *a);
/* The adapter as a PEFT method instance (owned by a). Inference is thread-safe (per-workspace scratch). */
const tk_peft *tk_ia3_peft(tk_ia3 *a);
tk_ia3 *tk_ia3_of(const tk_peft *p);
/* The vector of (layer, which), or NULL. */
tk_param *tk_ia3_vector(tk_ia3 *a, int32_t layer, tk_linear_id which);
const tk_ia3_config *tk_ia3_get_config(const tk_ia3 *a); /* targets resolved */

/* The "ia3" kind's PEFT files (ia3_file.c; registry.h has the contracts). */
struct cJSON;
tk_status tk_ia3_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_ia3_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_ia3_describe_file(const void *file, tk_adapter_info *info);
void tk_ia3_file_free(void *file);
tk_status tk_ia3_save_peft(tk_ia3 *a, const tk_model *m, const char *dir, const char *base_model);
#endif
