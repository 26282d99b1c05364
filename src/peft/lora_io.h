/* LoRA adapter files, in the layouts other tools load unchanged — the "lora" kind's file
 * entries (src/peft/registry.h) and its writers (the method's save_peft / save_gguf):
 *
 *   PEFT folder   adapter_config.json + adapter_model.safetensors, keys
 *                 "base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight" [r x in]
 *                 and "...lora_B.weight" [out x r] (torch shapes), f32, q/k rows in HF order.
 *                 (lora_peft.c)
 *   GGUF adapter  llama.cpp's LoRA adapter (convert_lora_to_gguf.py): general.type "adapter",
 *                 adapter.type "lora", adapter.lora.alpha, general.architecture, tensors
 *                 "blk.{i}.attn_q.weight.lora_a" (ggml ne {in, r}) and ".lora_b" (ne {r, out}),
 *                 f32; for the "llama" architecture the q/k lora_b rows are in llama.cpp's
 *                 permuted order (as its converter writes them), for "qwen2" in HF order.
 *                 (lora_gguf.c)
 *
 * Scale: PEFT uses lora_alpha / r (rsLoRA: lora_alpha / sqrt(r)); llama.cpp always uses
 * adapter.lora.alpha / r (alpha 0 = scale 1). The GGUF writer therefore stores
 * alpha = scale * r, which equals lora_alpha unless rsLoRA is on.
 *
 * q/k rows: takumi runs a Llama GGUF (and llama2.c) with llama.cpp's permuted q/k rows and an
 * HF folder with HF rows (tk_lora_qk_permuted); the writers convert lora_B rows of q_proj /
 * k_proj to each file's order, and attaching converts a file's rows to the model's.
 *
 * Both readers reduce a file to a list of (layer, linear, A or B, tensor view) entries,
 * checked in one place (lora_file.c: names, shapes, ranks, pairs, duplicates) before any
 * value is copied into a tk_lora_file. Thread safety: none of these keep global state. */
#ifndef TK_PEFT_LORA_IO_H
#define TK_PEFT_LORA_IO_H
#include "peft/lora.h"
#include "takumi/adapter.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"

struct cJSON;

/* Writes the adapter l (created on model m) as a PEFT folder dir/ (created when missing;
 * files written atomically). base_model goes to base_model_name_or_path (NULL: the model's
 * path). A's and B's values are read from l's parameter set. */
tk_status tk_adapter_save_peft(tk_lora *l, const tk_model *m, const char *dir, const char *base_model);
/* Writes the adapter l (created on model m) as a llama.cpp GGUF LoRA adapter at path
 * (atomically). Fails with TK_ERR_UNSUPPORTED for architectures llama.cpp has no name for. */
tk_status tk_adapter_save_gguf(tk_lora *l, const tk_model *m, const char *path);

/* What a method built on LoRA (DoRA) adds to the PEFT folder: "use_dora", and per module more
 * tensors (add: prefix is "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj"). */
typedef struct tk_lora_peft_extra {
    bool use_dora;
    tk_status (*add)(void *ud, tk_st_writer *w, const char *prefix, int32_t layer, tk_linear_id which);
    void *ud;
} tk_lora_peft_extra;
/* Writes adapter_config.json: root as indented JSON and a newline, atomically. */
tk_status tk_peft_write_json(const char *path, const struct cJSON *root);
/* A float as the double of its shortest decimal (0.05f -> 0.05, not 0.0500000007), for JSON. Thread-safe. */
double tk_peft_tidy(float f);
/* Adds "layers_to_transform" to an adapter_config.json object: [lo..hi] when that is not every layer of n_layers, else null. */
void tk_peft_add_layers(struct cJSON *root, int32_t lo, int32_t hi, int32_t n_layers);
/* tk_adapter_save_peft with ex's additions (ex NULL: plain LoRA). */
tk_status tk_lora_write_peft(tk_lora *l, const tk_model *m, const char *dir, const char *base_model, const tk_lora_peft_extra *ex);

/* One adapted linear as read from a file. */
typedef struct tk_lora_file_module {
    int32_t layer;
    tk_linear_id which;
    int64_t K, N;       /* in, out */
    float *A;           /* [r x K] row-major (torch lora_A) */
    float *B;           /* [N x r] row-major (torch lora_B); q/k rows in the file's order */
} tk_lora_file_module;

/* A LoRA adapter read from a file, independent of any model (owns everything). */
typedef struct tk_lora_file {
    bool gguf;            /* read from a GGUF adapter (else a PEFT folder) */
    int32_t r;
    float alpha;          /* as stored: PEFT lora_alpha / GGUF adapter.lora.alpha */
    float dropout;        /* PEFT lora_dropout (0 for GGUF) */
    bool rslora;          /* PEFT use_rslora */
    tk_lora_init init;    /* PEFT init_lora_weights "pissa" / "olora" (an adapter saved without PEFT's conversion: PEFT, and
                           * takumi, re-derive A0, B0 from the base on loading and apply W - s B0 A0 + s B A); else kaiming */
    float scale;          /* the factor applied to B A: alpha / r, alpha / sqrt(r) (rsLoRA), 1 (GGUF alpha 0) */
    char arch[32];        /* GGUF general.architecture ("" for PEFT) */
    char *base_model;     /* base_model_name_or_path / GGUF general.name ("" when absent) */
    bool qk_permuted;     /* q/k B rows in llama.cpp's permuted order (GGUF "llama") */
    uint32_t targets;     /* bit (1u << tk_linear_id) per linear kind present */
    int32_t min_layer, max_layer;
    tk_lora_file_module *mods;  /* sorted by (layer, which) */
    int64_t n_mods;
} tk_lora_file;

/* The lora kind's file entries (registry.h has the contracts; `file` is a tk_lora_file).
 * Unsupported PEFT features (DoRA, biases, modules_to_save tensors, rank/alpha patterns,
 * fan_in_fan_out) fail with TK_ERR_UNSUPPORTED naming the file and field. */
tk_status tk_lora_read_peft(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
tk_status tk_lora_read_gguf(const tk_gguf *g, void **file);
/* tk_lora_read_peft for a method built on LoRA: dora true accepts "use_dora" and skips the
 * "...lora_magnitude_vector" tensors (the caller reads them). */
tk_status tk_lora_read_peft_ex(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, bool dora,
                               void **file);
/* A PEFT key "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj<rest>": layer, linear and
 * where rest starts; false when name is not of that form. */
bool tk_peft_module_key(const char *name, int32_t *layer, int *which, const char **rest);
/* The checks and the config of attaching a to m (layer range, architecture); then the copy of
 * its modules into a tk_lora made with that config (q/k B rows converted to m's order). */
tk_status tk_lora_file_config(const tk_lora_file *a, const char *name, const tk_model *m, tk_lora_config *c);
tk_status tk_lora_file_fill(const tk_lora_file *a, const char *name, tk_model *m, tk_lora *l);
/* Creates a tk_lora on m holding the file's weights (q/k B rows converted to m's order), its
 * parameters added to ps; linears of the covered layer range that the file lacks get zero A
 * and B (no effect). Checks every module against m's shapes and a GGUF adapter's architecture
 * against m's; name is used in messages. *out is tk_lora_peft of the new set (free: tk_lora_free). */
tk_status tk_lora_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
void tk_lora_describe_file(const void *file, tk_adapter_info *info);
void tk_lora_file_free(void *file);

/* The LoRA file of an adapter read by tk_adapter_load, or NULL for another method's. */
const tk_lora_file *tk_adapter_lora_file(const tk_adapter *a);
/* tk_lora_attach_file for an adapter read by tk_adapter_load, as a tk_lora (free with
 * tk_lora_free; ps keeps the params); fails with TK_ERR_ARG for another method's adapter. */
tk_status tk_adapter_attach(const tk_adapter *a, tk_model *m, tk_param_set *ps, tk_lora **out);

/* ---- shared by the two layouts' readers and writers (lora_file.c) ---- */

/* One tensor of a file: A or B of (layer, linear). */
typedef struct tk_lora_entry {
    int32_t layer;
    int which;
    int is_b;
    const tk_tensor_ref *t;
} tk_lora_entry;
typedef struct tk_lora_entries { tk_lora_entry *e; int64_t n, cap; } tk_lora_entries;

tk_status tk_lora_entries_push(tk_lora_entries *L, int32_t layer, int which, int is_b, const tk_tensor_ref *t);
/* Checks the entries (pairs, ranks, shapes, dtypes; sorts them) and copies them into f->mods as
 * f32, setting f->r (when 0: from the tensors), targets and the layer range. file names the file. */
tk_status tk_lora_file_build(tk_lora_file *f, tk_lora_entries *L, const char *file);
/* Name parsing: advances *s past the literal lit / a decimal layer index (no sign, no leading
 * zeros, at most 100000) when it is there. */
bool tk_lora_key_eat(const char **s, const char *lit);
bool tk_lora_key_layer(const char **s, int32_t *layer);
/* Copies B [N x r] of (which) from a layout with q/k rows permuted (from_perm) to one with
 * (to_perm); other linears and equal layouts are copied unchanged. */
void tk_lora_convert_b(float *dst, const float *src, tk_linear_id which, const tk_model_config *mc, int64_t N, int64_t r,
                       bool from_perm, bool to_perm);
#endif
