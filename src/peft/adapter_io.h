/* Adapter files of any PEFT method (takumi/adapter.h): adapter_io.c finds what a path is (a PEFT
 * folder or one of its two files, or a GGUF adapter), reads adapter_config.json's "peft_type"
 * or the GGUF's "adapter.type", and hands the file to the kind that reads that type
 * (src/peft/registry.h); the kind returns a file object of its own, which it later attaches
 * to a model, describes and frees. The layouts themselves are the methods' (LoRA:
 * lora_io.h). adapter.c: inspection, saving by output name (the method's save_peft /
 * save_gguf) and merging (the method's merge_linear) through the model exporter's delta
 * interface (model/export.h). */
#ifndef TK_PEFT_ADAPTER_IO_H
#define TK_PEFT_ADAPTER_IO_H
#include "peft/registry.h"
#include "peft/lora_io.h"
#include "model/export.h"
#include "takumi/adapter.h"

/* An adapter read from a file, independent of any model: the kind that read it and the
 * kind's file object (owned). */
struct tk_adapter {
    char *path;                 /* as given to tk_adapter_load (or the name given to tk_adapter_from_*) */
    const char *format;         /* "peft" or "gguf" (a static string) */
    const tk_peft_kind *kind;
    void *file;                 /* freed by kind->free_file */
};

/* tk_adapter_load / tk_adapter_free: takumi/adapter.h. The same from an open GGUF handle /
 * from adapter_config.json text and an open adapter_model.safetensors (name is used in
 * messages); the handles are not kept. An adapter.type / peft_type no kind reads fails with
 * TK_ERR_UNSUPPORTED naming the file, the field, the value and the supported types. */
tk_status tk_adapter_from_gguf(const tk_gguf *g, tk_adapter **out);
tk_status tk_adapter_from_peft(const char *config_json, size_t len, const tk_safetensors *sf, const char *name, tk_adapter **out);
/* An adapter of the given kind around a file object its readers made (taken over: freed
 * with the adapter, or at once when this fails); the kind needs attach, describe and
 * free_file. format is "peft" or "gguf". */
tk_status tk_adapter_of_file(const tk_peft_kind *kind, const char *path, const char *format, void *file, tk_adapter **out);
/* Attaches a to m through its kind: an instance of its method holding the file's weights, the
 * trainable parameters added to ps (training can go on from them). Free with a->kind->destroy
 * (ps keeps the parameters). Not thread-safe for one ps. */
tk_status tk_adapter_attach_peft(const tk_adapter *a, tk_model *m, tk_param_set *ps, tk_peft **out);

/* tk_adapter_apply / tk_adapter_detach / tk_adapter_handle_peft (load and attach; undo): takumi/adapter.h.
 * The attached LoRA set of a handle, or NULL when the handle holds another method (for merging / inspection). */
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
