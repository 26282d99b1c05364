/* What HF PEFT's prompt-learning methods (PromptLearningConfig: prefix tuning, prompt tuning) share
 * in their files: adapter_config.json with task_type CAUSAL_LM, num_virtual_tokens,
 * num_transformer_submodules 1, no modules_to_save, base_model_name_or_path, and an
 * adapter_model.safetensors holding only "prompt_embeddings" [P, W] (f32, f16 or bf16 read;
 * f32 written). Used by prefix_file.c and prompt_file.c. No global state. */
#ifndef TK_PEFT_PROMPT_LEARNING_H
#define TK_PEFT_PROMPT_LEARNING_H
#include "takumi/core.h"
#include "takumi/model.h"
#include "takumi/safetensors.h"

struct cJSON;

/* cfg[key] as a whole number >= lo (message names file and key). */
tk_status tk_pl_int_field(const struct cJSON *cfg, const char *key, const char *file, int32_t lo, int32_t *out);
/* The shared config fields: task_type (CAUSAL_LM or absent), num_virtual_tokens (*P),
 * num_transformer_submodules (1 or absent), modules_to_save (absent, null or empty) and
 * base_model_name_or_path (*base_model, "" when absent; the caller frees it). what names the
 * method in messages ("prefix"). */
tk_status tk_pl_read_config(const struct cJSON *cfg, const char *file, const char *what, int32_t *P, char **base_model);
/* sf's only tensor "prompt_embeddings", checked to be [P, W] and finite, into *out (allocated, P x W).
 * shape names W in messages ("token_dim of adapter_config.json"). */
tk_status tk_pl_read_embeddings(const tk_safetensors *sf, const char *st_name, const char *what, int32_t P, int64_t W,
                                const char *shape, float **out);
/* Writes dir/adapter_model.safetensors ("prompt_embeddings" emb [P, W]) and dir/adapter_config.json:
 * root (the method's own fields, consumed: freed here) plus the shared ones (peft_type, task_type
 * CAUSAL_LM, num_virtual_tokens, num_transformer_submodules 1, base_model_name_or_path: base_model
 * or m's path, inference_mode, revision, modules_to_save). Files written atomically. */
tk_status tk_pl_save(const char *dir, const tk_model *m, const char *base_model, const char *peft_type, struct cJSON *root,
                     int64_t P, int64_t W, const float *emb);
#endif
