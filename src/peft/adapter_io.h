/* LoRA adapter files, in the layouts other tools load unchanged:
 *
 *   PEFT folder   adapter_config.json + adapter_model.safetensors, keys
 *                 "base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight" [r x in]
 *                 and "...lora_B.weight" [out x r] (torch shapes), f32, q/k rows in HF order.
 *   GGUF adapter  llama.cpp's LoRA adapter (convert_lora_to_gguf.py): general.type "adapter",
 *                 adapter.type "lora", adapter.lora.alpha, general.architecture, tensors
 *                 "blk.{i}.attn_q.weight.lora_a" (ggml ne {in, r}) and ".lora_b" (ne {r, out}),
 *                 f32; for the "llama" architecture the q/k lora_b rows are in llama.cpp's
 *                 permuted order (as its converter writes them), for "qwen2" in HF order.
 *
 * Scale: PEFT uses lora_alpha / r (rsLoRA: lora_alpha / sqrt(r)); llama.cpp always uses
 * adapter.lora.alpha / r (alpha 0 = scale 1). The GGUF writer therefore stores
 * alpha = scale * r, which equals lora_alpha unless rsLoRA is on.
 *
 * q/k rows: takumi runs a Llama GGUF (and llama2.c) with llama.cpp's permuted q/k rows and an
 * HF folder with HF rows (tk_lora_qk_permuted); the writers convert lora_B rows of q_proj /
 * k_proj to each file's order, and tk_adapter_attach converts a file's rows to the model's. */
#ifndef TK_PEFT_ADAPTER_IO_H
#define TK_PEFT_ADAPTER_IO_H
#include "peft/lora.h"
#include "model/export.h"
#include "takumi/adapter.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"

/* Writes the adapter l (created on model m) as a PEFT folder dir/ (created when missing;
 * files written atomically). base_model goes to base_model_name_or_path (NULL: the model's
 * path). A's and B's values are read from l's parameter set. */
tk_status tk_adapter_save_peft(tk_lora *l, const tk_model *m, const char *dir, const char *base_model);
/* Writes the adapter l (created on model m) as a llama.cpp GGUF LoRA adapter at path
 * (atomically). Fails with TK_ERR_UNSUPPORTED for architectures llama.cpp has no name for. */
tk_status tk_adapter_save_gguf(tk_lora *l, const tk_model *m, const char *path);

/* One adapted linear as read from a file. */
typedef struct tk_adapter_module {
    int32_t layer;
    tk_linear_id which;
    int64_t K, N;       /* in, out */
    float *A;           /* [r x K] row-major (torch lora_A) */
    float *B;           /* [N x r] row-major (torch lora_B); q/k rows in the file's order */
} tk_adapter_module;

/* An adapter read from a file, independent of any model (owns everything). */
typedef struct tk_adapter {
    char *path;
    const char *format;   /* "peft" or "gguf" */
    int32_t r;
    float alpha;          /* as stored: PEFT lora_alpha / GGUF adapter.lora.alpha */
    float dropout;        /* PEFT lora_dropout (0 for GGUF) */
    bool rslora;          /* PEFT use_rslora */
    float scale;          /* the factor applied to B A: alpha / r, alpha / sqrt(r) (rsLoRA), 1 (GGUF alpha 0) */
    char arch[32];        /* GGUF general.architecture ("" for PEFT) */
    char *base_model;     /* base_model_name_or_path / GGUF general.name ("" when absent) */
    bool qk_permuted;     /* q/k B rows in llama.cpp's permuted order (GGUF "llama") */
    uint32_t targets;     /* bit (1u << tk_linear_id) per linear kind present */
    int32_t min_layer, max_layer;
    tk_adapter_module *mods;  /* sorted by (layer, which) */
    int64_t n_mods;
} tk_adapter;

/* tk_adapter_load / tk_adapter_free: takumi/adapter.h (unsupported PEFT features: DoRA,
 * biases, modules_to_save tensors, rank/alpha patterns, fan_in_fan_out). */
/* The same from an open GGUF handle / from adapter_config.json text and an open
 * adapter_model.safetensors (name is used in messages); the handles are not kept. */
tk_status tk_adapter_from_gguf(const tk_gguf *g, tk_adapter **out);
tk_status tk_adapter_from_peft(const char *config_json, size_t len, const tk_safetensors *sf, const char *name, tk_adapter **out);

/* Creates a tk_lora on m holding a's weights (q/k B rows converted to m's order), its
 * parameters added to ps; linears of the covered layer range that the file lacks get zero
 * A and B (no effect). Checks every module against m's shapes and a GGUF adapter's
 * architecture against m's. Apply it per request with tk_lora_peft(*out) in
 * tk_forward_set_adapters / tk_session_set_adapters. Free with tk_lora_free (ps keeps the params). */
tk_status tk_adapter_attach(const tk_adapter *a, tk_model *m, tk_param_set *ps, tk_lora **out);

/* tk_adapter_apply / tk_adapter_detach / tk_adapter_handle_peft (load and attach; undo): takumi/adapter.h.
 * The attached adapter set of a handle (for merging / inspection). */
tk_lora *tk_adapter_handle_lora(tk_adapter_handle *h);

/* The LoRA set l as the delta model/export.h merges (valid while l lives). */
tk_weight_delta tk_lora_weight_delta(tk_lora *l);
/* Any adapter whose method can merge (merge_linear) as the delta model/export.h merges (valid while p lives). */
tk_weight_delta tk_peft_weight_delta(const tk_peft *p);
/* tk_export_merged with l merged (l NULL: the model as it is). */
tk_status tk_lora_export_merged(tk_model *m, tk_lora *l, const char *out, const tk_export_params *p);

/* The GGUF architecture name llama.cpp uses for a takumi architecture ("llama" for llama and
 * mistral, "qwen2", "qwen3", "gemma3", "phi3": the family's description), or NULL; and whether
 * that architecture stores q/k rows permuted. */
const char *tk_adapter_gguf_arch(const char *arch, bool *qk_permuted);
#endif
