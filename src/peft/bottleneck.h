/* Bottleneck adapters (AdapterHub's `adapters` library, BnConfig) on a Llama-family model: per adapted
 * site a down-projection (C -> R = max(1, C / reduction)), a nonlinearity f and an up-projection
 * (R -> C), both with biases, added residually: u' = u + s * (f(u Wd^T + bd) Wu^T + bu) (s: the
 * request's scale, 1 as trained). Where u is, as AdapterHub's Llama layers place them (its
 * LlamaDecoderLayer passes the residual stream x and no layer norm to the adapter layers):
 *   pfeiffer (SeqBnConfig: output_adapter, original_ln_before, residual_before_ln, relu): one adapter
 *            per layer after the feed-forward block, reading the residual stream after the MLP's add:
 *            out = x + m + A(x + m) (m = the MLP output) -- the block seam's TK_BLOCK_LAYER site;
 *   houlsby  (DoubleSeqBnConfig: mh_adapter + output_adapter, original_ln_before false, swish): one
 *            after attention and one after the feed-forward block, each reading its block's output
 *            before the residual add: x + h + A(h) -- the TK_BLOCK_ATTN and TK_BLOCK_MLP sites.
 * Initialisation as AdapterHub's default init_weights="bert": weights N(0, 0.02), biases zero, so a
 * fresh adapter is nearly the identity (|A(u)| is of order 0.02^2 |u| R); seeded by the config.
 * Nonlinearities as transformers' get_activation: relu, swish (x sigmoid(x)), gelu (exact, erf).
 * Parameters "model.layers.{i}.{attention|output}_adapters.adapter_{down|up}.{weight|bias}", torch
 * shapes [R, C], [R], [C, R], [C] (weights decayed, biases not). Not mergeable (the nonlinearity),
 * no GGUF layout (llama.cpp applies LoRA adapters only); files: bottleneck_file.c. */
#ifndef TK_PEFT_BOTTLENECK_H
#define TK_PEFT_BOTTLENECK_H
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/safetensors.h"
#include "core/param.h"

typedef enum tk_bn_placement { TK_BN_PFEIFFER = 0, TK_BN_HOULSBY = 1 } tk_bn_placement;
typedef enum tk_bn_act { TK_BN_RELU = 0, TK_BN_SWISH = 1, TK_BN_GELU = 2, TK_BN_ACT_AUTO = -1 } tk_bn_act;

typedef struct tk_bottleneck_config {
    int32_t placement;     /* tk_bn_placement */
    int32_t reduction;     /* reduction_factor: R = max(1, C / reduction); <= 0 = 16 (AdapterHub's default) */
    int32_t act;           /* tk_bn_act; TK_BN_ACT_AUTO = the placement's (pfeiffer relu, houlsby swish) */
    int32_t first_layer;   /* adapters only on layers >= first_layer */
    uint64_t seed;         /* initialisation */
} tk_bottleneck_config;

/* Pfeiffer, reduction 16, its activation (relu), every layer, seed 42. Thread-safe. */
tk_bottleneck_config tk_bottleneck_default_config(void);
/* "pfeiffer" / "houlsby" and "relu" / "swish" / "gelu" (NULL when out of range); the parses return -1 for
 * an unknown name. Thread-safe. */
const char *tk_bn_placement_name(int placement);
const char *tk_bn_act_name(int act);
int tk_bn_placement_parse(const char *s);
int tk_bn_act_parse(const char *s);

typedef struct tk_bottleneck tk_bottleneck;

/* Creates the adapters on m per cfg into ps, initialised as AdapterHub's "bert" init. m and ps must
 * outlive it. Free with tk_bottleneck_free (ps keeps its params). Not thread-safe for one ps. */
tk_status tk_bottleneck_new(tk_model *m, const tk_bottleneck_config *cfg, tk_param_set *ps, tk_bottleneck **out);
/* Frees what tk_bottleneck_new made; accepts NULL. */
void tk_bottleneck_free(tk_bottleneck *b);
/* The adapter as a PEFT method instance (owned by b). Inference is thread-safe (per-workspace scratch). */
const tk_peft *tk_bottleneck_peft(tk_bottleneck *b);
/* b of a "adapter" method instance, or NULL for another method. Thread-safe. */
tk_bottleneck *tk_bottleneck_of(const tk_peft *p);
/* The config as resolved (reduction, act filled in) and the bottleneck width R. Thread-safe. */
const tk_bottleneck_config *tk_bottleneck_get_config(const tk_bottleneck *b);
int64_t tk_bottleneck_width(const tk_bottleneck *b);
/* The parameter k (0 down.weight, 1 down.bias, 2 up.weight, 3 up.bias) of the adapter at (layer, site), or
 * NULL where there is none. Thread-safe while ps is not changed. */
tk_param *tk_bottleneck_param(tk_bottleneck *b, int32_t layer, tk_block_site site, int k);

/* The "adapter" kind's files (bottleneck_file.c; registry.h has the contracts): takumi's own layout,
 * adapter_config.json {"peft_type": "TAKUMI_BOTTLENECK", ...} + adapter_model.safetensors. */
#define TK_BOTTLENECK_TYPE "TAKUMI_BOTTLENECK"
struct cJSON;
tk_status tk_bottleneck_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_bottleneck_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_bottleneck_describe_file(const void *file, tk_adapter_info *info);
void tk_bottleneck_file_free(void *file);
/* Writes b as adapter_config.json + adapter_model.safetensors in dir (made if missing). Not thread-safe for one dir. */
tk_status tk_bottleneck_save(tk_bottleneck *b, const tk_model *m, const char *dir, const char *base_model);
#endif
