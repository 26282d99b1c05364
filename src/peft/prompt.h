/* Prompt tuning (HF PEFT's PromptTuningConfig, peft/tuners/prompt_tuning) on a Llama-family
 * model: P trainable soft-prompt embeddings E [P x C] put before every sequence's input
 * embeddings, the base frozen. It enters the model through the embed_prefix seam
 * (takumi/peft.h): the model runs the P virtual tokens through its layers at positions -P..-1
 * and every sequence attends to their keys/values; the sequence keeps positions 0..T-1, which
 * equals PEFT's (virtual tokens at 0..P-1, the sequence at P..P+T-1: RoPE is relative).
 * Packed rows: each segment sees the virtual tokens as PEFT's one-example rows do. Sliding-window
 * layers (Gemma 2/3): the virtual tokens, an attention prefix, stay visible to every query, while HF
 * hides virtual token p from sequence positions t >= window - P + p: equal up to window - P tokens.
 * Initialisation (PEFT's prompt_tuning_init):
 *   RANDOM  E ~ N(0, 1) (nn.Embedding's init, seeded);
 *   TEXT    the token embeddings of init_ids (the init text tokenized as PEFT's tokenizer does,
 *           special tokens included), repeated and cut to P rows; as PEFT takes them from the
 *           model's input-embedding module, Gemma's embedding scale is applied.
 * Parameter (PEFT's name without the adapter name): "prompt_encoder.embedding.weight" [P, C];
 * PEFT's file holds "prompt_embeddings" [P, C]. No merge (virtual tokens are not a weight
 * change), no GGUF (llama.cpp has no prompt tuning). A request scale other than 1 (0 = off) is
 * refused. */
#ifndef TK_PEFT_PROMPT_H
#define TK_PEFT_PROMPT_H
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/safetensors.h"
#include "core/param.h"

/* Default number of virtual tokens (as prefix tuning's: PEFT has no default). */
#define TK_PROMPT_DEFAULT_TOKENS 20

typedef struct tk_prompt_config {
    int32_t num_virtual_tokens;   /* P >= 1; 0 = TK_PROMPT_DEFAULT_TOKENS */
    const int32_t *init_ids;      /* TEXT init: token ids of the init text (NULL = RANDOM); copied */
    int32_t n_init_ids;
    const char *init_text;        /* the text itself, written to adapter_config.json (may be NULL); copied */
    uint64_t seed;                /* RANDOM init */
} tk_prompt_config;

tk_prompt_config tk_prompt_default_config(void);

typedef struct tk_prompt tk_prompt;

/* Creates the soft prompt on m per cfg into ps (initialised as PEFT does). m and ps must outlive it.
 * Free with tk_prompt_free (ps keeps its params). Not thread-safe per ps. */
tk_status tk_prompt_new(tk_model *m, const tk_prompt_config *cfg, tk_param_set *ps, tk_prompt **out);
void tk_prompt_free(tk_prompt *a);
/* The adapter as a PEFT method instance (owned by a). Inference is thread-safe (read only). */
const tk_peft *tk_prompt_peft(tk_prompt *a);
tk_prompt *tk_prompt_of(const tk_peft *p);
/* P, and the embeddings [P x C] (the trainable parameter's memory). Thread-safe to read at inference. */
int32_t tk_prompt_tokens(const tk_prompt *a);
const float *tk_prompt_embeddings(const tk_prompt *a);
const tk_prompt_config *tk_prompt_get_config(const tk_prompt *a); /* defaults resolved; init_ids/init_text: the adapter's copies */

/* The "prompt" kind's PEFT files (prompt_file.c; registry.h has the contracts). */
struct cJSON;
tk_status tk_prompt_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_prompt_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_prompt_describe_file(const void *file, tk_adapter_info *info);
void tk_prompt_file_free(void *file);
/* Writes dir/adapter_config.json (peft_type PROMPT_TUNING) and adapter_model.safetensors. Not thread-safe with training. */
tk_status tk_prompt_save_peft(tk_prompt *a, const tk_model *m, const char *dir, const char *base_model);
#endif
