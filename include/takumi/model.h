/* Llama-family models (Llama 2/3, Mistral, Qwen2, SmolLM2, TinyLlama): loading from
 * GGUF, HF safetensors folders and llama2.c checkpoints into one internal weight map;
 * batched forward; KV-cache sessions for generation. */
#ifndef TAKUMI_MODEL_H
#define TAKUMI_MODEL_H
#include "takumi/core.h"
#include "takumi/tokenizer.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum tk_rope_scaling { TK_ROPE_SCALING_NONE = 0, TK_ROPE_SCALING_LINEAR, TK_ROPE_SCALING_LLAMA3 } tk_rope_scaling;

typedef struct tk_model_config {
    char arch[32];          /* "llama", "qwen2", … */
    char name[128];         /* general.name or folder name */
    int32_t n_vocab;        /* V */
    int32_t dim;            /* C: embedding size */
    int32_t n_layers;       /* L */
    int32_t n_heads;        /* H */
    int32_t n_kv_heads;     /* KH (GQA when < H) */
    int32_t head_dim;       /* D = C / H unless the model says otherwise */
    int32_t hidden_dim;     /* F: SwiGLU inner size */
    int32_t max_seq;        /* context length the model was trained for */
    float rms_eps;
    float rope_theta;
    /* 1: rotate adjacent pairs (2i, 2i+1) — Meta / llama2.c / llama.cpp "norm" mode, used with
     *    llama.cpp's permuted q/k rows in Llama GGUFs;
     * 0: rotate halves (i, i + D/2) — HF / NeoX convention (HF folders, Qwen2 GGUFs). */
    int32_t rope_interleaved;
    tk_rope_scaling rope_scaling;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int32_t rope_orig_max_seq;
    bool tied_embeddings;   /* output projection shares tok_embd */
    bool qkv_bias;          /* Qwen2 */
} tk_model_config;

#ifdef __cplusplus
}
#endif
#endif
