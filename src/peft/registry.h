/* PEFT method kinds: the methods a training context can create fresh, trainable adapters of,
 * by name, and that adapter files are read as. Each kind makes an instance of its
 * tk_peft_method (takumi/peft.h) on a base model, with its trainable parameters in a
 * tk_param_set. To add a method: implement its tk_peft_method and a create/destroy pair in
 * src/peft/<method>.c, its file layouts (read_peft / read_gguf into a file object of its
 * own, attach, describe, free_file) where they exist, add a row to the table in
 * src/peft/registry.c, and a test beside it (see docs/ARCHITECTURE.md). adapter_io.c picks
 * the kind of a file by its PEFT peft_type / GGUF adapter.type and needs no change. */
#ifndef TK_PEFT_REGISTRY_H
#define TK_PEFT_REGISTRY_H
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"
#include "core/param.h"

struct cJSON; /* <cJSON.h>: adapter_config.json as parsed */

typedef struct tk_peft_kind {
    const char *name;      /* "lora" */
    const char *summary;   /* one line for help texts */
    /* Creates an adapter on m: parameters added to ps and initialised per the method (seeded by
     * the config); cfg is the method's config struct (tk_lora_config for "lora"); adapters only
     * on layers >= first_layer. m and ps must outlive it. */
    tk_status (*create)(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out);
    /* Frees what create or attach made (ps keeps the parameters); accepts NULL. */
    void (*destroy)(tk_peft *p);

    /* ---- adapter files (adapter_io.c); all NULL for a method without files ---- */
    /* The HF PEFT adapter_config.json "peft_type" (PEFT's PeftType: "LORA") and the llama.cpp
     * GGUF "adapter.type" ("lora") the kind reads; NULL = no such layout. */
    const char *peft_type;
    const char *gguf_type;
    /* Among kinds sharing a peft_type (DoRA is PEFT's "LORA" with use_dora): does the kind read
     * this config? A kind whose peft_claims accepts is chosen before one without the entry
     * (NULL = every config of its peft_type). */
    bool (*peft_claims)(const struct cJSON *cfg);
    /* Reads a PEFT folder into a file object the kind owns, independent of any model: cfg is
     * adapter_config.json (an object whose peft_type is the kind's), sf its
     * adapter_model.safetensors (NULL when the folder has none: check the config only and
     * leave *file NULL); the names are used in messages. The handles are not kept. */
    tk_status (*read_peft)(const struct cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file);
    /* The same from a GGUF adapter (general.type "adapter", adapter.type the kind's). */
    tk_status (*read_gguf)(const tk_gguf *g, void **file);
    /* Attaches a file object to m: checks the architecture, layer count and shapes against m
     * and creates an instance (freed by destroy) holding the file's weights, its trainable
     * parameters added to ps (so training can go on from them). name is used in messages. */
    tk_status (*attach)(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out);
    /* What the file holds, into info's method-specific fields (the caller sets path, format,
     * method); strings point into the file. */
    void (*describe)(const void *file, tk_adapter_info *info);
    /* Frees a file object; accepts NULL. */
    void (*free_file)(void *file);
} tk_peft_kind;

/* The kind named `name`, or NULL. Thread-safe (a constant table). */
const tk_peft_kind *tk_peft_kind_find(const char *name);
/* Every kind (*n of them), in a fixed order. Thread-safe. */
const tk_peft_kind *tk_peft_kinds(int *n);
/* Of kinds[0..n), the one that reads an adapter_config.json cfg whose "peft_type" is
 * peft_type (a claiming kind first, see peft_claims), or NULL. Thread-safe. */
const tk_peft_kind *tk_peft_kind_for_peft(const tk_peft_kind *kinds, int n, const char *peft_type, const struct cJSON *cfg);
/* Of kinds[0..n), the one that reads GGUF adapters of adapter.type gguf_type, or NULL. Thread-safe. */
const tk_peft_kind *tk_peft_kind_for_gguf(const tk_peft_kind *kinds, int n, const char *gguf_type);
#endif
