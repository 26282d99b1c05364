/* Adapters (PEFT methods, takumi/peft.h) as files: read a PEFT folder (adapter_config.json +
 * adapter_model.safetensors) or a llama.cpp GGUF adapter, attach one to a loaded model
 * (then apply it per session or forward workspace), write it in either layout where the
 * method has it (so converting is load + save), and merge it into the base model's weights
 * where the method can (written as an HF folder or a GGUF, as takumi/export.h). The method
 * is the one the file names (adapter_config.json "peft_type", GGUF "adapter.type"); takumi
 * reads LoRA ("LORA" / "lora"). The layouts are those HF PEFT, vLLM and llama.cpp load
 * unchanged; LoRA's q/k rows are converted between llama.cpp's permuted order and HF's as
 * each file needs.
 *
 * Threads: the functions hold no global state; an attached adapter may be applied by many
 * workspaces at once (inference reads it only); loading, saving and freeing one must not
 * overlap its use. */
#ifndef TAKUMI_ADAPTER_H
#define TAKUMI_ADAPTER_H
#include "takumi/model.h"
#include "takumi/export.h"

/* An adapter read from a file, independent of any model (opaque). */
typedef struct tk_adapter tk_adapter;
/* An adapter applied to a model (opaque). */
typedef struct tk_adapter_handle tk_adapter_handle;

/* What an adapter file holds. The LoRA fields (r, alpha, scale, rslora) are 0 for a method
 * without them. */
typedef struct tk_adapter_info {
    const char *path;        /* the file or folder it was read from */
    const char *format;      /* "peft" or "gguf" */
    const char *method;      /* the PEFT method kind that read it ("lora"; src/peft/registry.h) */
    int32_t r;               /* LoRA rank */
    float alpha;             /* as stored: PEFT lora_alpha / GGUF adapter.lora.alpha */
    float scale;             /* the factor applied to B A (alpha / r; rsLoRA alpha / sqrt(r); GGUF alpha 0: 1) */
    bool rslora;             /* PEFT use_rslora */
    const char *arch;        /* GGUF general.architecture ("" for PEFT) */
    const char *base_model;  /* base_model_name_or_path / GGUF general.name ("" when absent) */
    uint32_t targets;        /* bit (1u << tk_linear_id) per adapted linear kind */
    int32_t min_layer, max_layer;
    int64_t n_modules;       /* adapted modules in the file (LoRA: linears) */
} tk_adapter_info;

/* Reads an adapter: a PEFT folder, either of its two files, or a GGUF adapter file, by the
 * method its peft_type / adapter.type names. Every name, shape and count is checked; a method
 * takumi does not read, and unsupported features of one it reads (LoRA: DoRA, biases, rank
 * patterns…), fail with TK_ERR_UNSUPPORTED naming the file and field. *out is freed with
 * tk_adapter_free. Thread-safe (no shared state). */
tk_status tk_adapter_load(const char *path, tk_adapter **out);
/* Frees an adapter read by tk_adapter_load; accepts NULL. Not while another thread uses it. */
void tk_adapter_free(tk_adapter *a);
/* What a holds; the strings point into a and live as long as it. Thread-safe (reads a). */
tk_adapter_info tk_adapter_get_info(const tk_adapter *a);

/* Loads path and attaches it to m through its method: checks the architecture, layer count
 * and every shape against m. The model itself is not changed: a forward workspace or session applies the
 * adapter when given tk_adapter_handle_peft(h) (tk_forward_set_adapters /
 * tk_session_set_adapters), so several adapters serve different requests on one model.
 * Free with tk_adapter_detach once no workspace uses it. */
tk_status tk_adapter_apply(tk_model *m, const char *path, tk_adapter_handle **out);
/* The same from an adapter already read (a is not kept: free it when you like). */
tk_status tk_adapter_apply_loaded(tk_model *m, const tk_adapter *a, tk_adapter_handle **out);
/* Frees h (m may be NULL); accepts NULL h. No workspace may still apply it. */
void tk_adapter_detach(tk_model *m, tk_adapter_handle *h);
/* The attached adapter as a PEFT method instance for tk_forward_set_adapters /
 * tk_session_set_adapters (NULL for a NULL handle). Thread-safe: inference only reads it. */
const tk_peft *tk_adapter_handle_peft(tk_adapter_handle *h);
/* Rank and scale (the factor applied to B A) of an applied LoRA adapter; 0 for another method. Thread-safe. */
int32_t tk_adapter_handle_rank(const tk_adapter_handle *h);
float tk_adapter_handle_scale(const tk_adapter_handle *h);

/* Writes the adapter applied to m as a GGUF adapter (out ending in ".gguf"; fails with
 * TK_ERR_UNSUPPORTED for architectures llama.cpp has no name for) or as a PEFT folder
 * (anything else; created when missing), through its method's writer (TK_ERR_UNSUPPORTED
 * when the method has no such layout). base_model goes to the PEFT config's
 * base_model_name_or_path (NULL: m's path). Files are written atomically. */
tk_status tk_adapter_save(tk_adapter_handle *h, const tk_model *m, const char *out, const char *base_model);
/* Converts the adapter file `in` (made for the model at model_path) into `out`, in the
 * layout out's name asks for (as tk_adapter_save): loads the model, applies, saves, frees. */
tk_status tk_adapter_convert(const char *model_path, const char *in, const char *out);
/* Writes m with the adapter of h merged into its weights (the method's merge_linear in f32,
 * LoRA: W + scale * B A; then p->dtype) to out, as tk_export_model does (out ending in
 * ".gguf": GGUF, else an HF folder); TK_ERR_UNSUPPORTED when the method cannot be merged.
 * h must be applied to m; p may be NULL (defaults). */
tk_status tk_adapter_merge(tk_model *m, tk_adapter_handle *h, const char *out, const tk_export_params *p);
#endif
