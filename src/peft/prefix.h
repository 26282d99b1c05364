/* Prefix tuning (HF PEFT's PrefixTuningConfig, peft/tuners/prefix_tuning) on a Llama-family
 * model: P virtual tokens give every layer P extra attention keys and values.
 *   prefix_projection false: a trainable embedding E [P x W], W = L * 2 * KH*D;
 *   prefix_projection true:  E [P x KH*D] -> Linear(KH*D, Eh) -> tanh -> Linear(Eh, W),
 *                            trained through (PEFT's PrefixEncoder);
 * row p of the W-vector holds, in order, layer 0's key (KH heads x D), layer 0's value, layer 1's
 * key, … (PEFT's view(P, L*2, KH, D).permute(2, 0, 3, 1, 4).split(2)), keys in HF's q/k order.
 * PEFT hands them to transformers as past_key_values: used as given (no RoPE) while the tokens
 * sit at positions P..P+T-1. RoPE being relative, that equals the tokens at 0..T-1 (this seam)
 * with the keys rotated by position -P, which attn_prefix applies (per layer, the layer's RoPE;
 * keys permuted to the model's RoPE layout first), so logits and gradients match PEFT's.
 * Parameters (PEFT's names without the adapter name): "prompt_encoder.embedding.weight"
 * (torch [P, W] or [P, KH*D]) and, with the projection, "prompt_encoder.transform.{0,2}.{weight,bias}".
 * PEFT saves "prompt_embeddings" [P, W] (the projection applied); a file read back has no
 * projection. No merge (the prefix is not a weight change), no GGUF (llama.cpp has no prefix
 * tuning). A request scale other than 1 (0 = off) is refused. */
#ifndef TK_PEFT_PREFIX_H
#define TK_PEFT_PREFIX_H
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/safetensors.h"
#include "core/param.h"

/* Default number of virtual tokens (PEFT has no default; its examples use 20 or 30). */
#define TK_PREFIX_DEFAULT_TOKENS 20

typedef struct tk_prefix_config {
    int32_t num_virtual_tokens;   /* P >= 1; 0 = TK_PREFIX_DEFAULT_TOKENS */
    bool projection;              /* PEFT's prefix_projection */
    int32_t encoder_hidden_size;  /* Eh of the projection; 0 = KH*D (PEFT's default: token_dim) */
    uint64_t seed;                /* initialisation: E ~ N(0, 1) (nn.Embedding), Linears U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear) */
} tk_prefix_config;

tk_prefix_config tk_prefix_default_config(void);

typedef struct tk_prefix tk_prefix;

/* Creates the prefix on m per cfg into ps (initialised as PEFT does, seeded). m and ps must outlive
 * it. Free with tk_prefix_free (ps keeps its params). */
tk_status tk_prefix_new(tk_model *m, const tk_prefix_config *cfg, tk_param_set *ps, tk_prefix **out);
void tk_prefix_free(tk_prefix *a);
/* The adapter as a PEFT method instance (owned by a). Inference is thread-safe (per-workspace scratch). */
const tk_peft *tk_prefix_peft(tk_prefix *a);
tk_prefix *tk_prefix_of(const tk_peft *p);
const tk_prefix_config *tk_prefix_get_config(const tk_prefix *a); /* defaults resolved */
/* W = L * 2 * KH*D, the width of one virtual token's keys and values. */
int64_t tk_prefix_width(const tk_prefix *a);
/* PEFT's "prompt_embeddings" [P x W] (the projection applied) into out. Not thread-safe with training. */
tk_status tk_prefix_embeddings(const tk_prefix *a, float *out);

/* The "prefix" kind's PEFT files (prefix_file.c; registry.h has the contracts). */
struct cJSON;
tk_status tk_prefix_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_prefix_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_prefix_describe_file(const void *file, tk_adapter_info *info);
void tk_prefix_file_free(void *file);
tk_status tk_prefix_save_peft(tk_prefix *a, const tk_model *m, const char *dir, const char *base_model);
#endif
