/* PEFT method kinds: the methods a training context can create fresh, trainable adapters of,
 * by name. Each kind makes an instance of its tk_peft_method (takumi/peft.h) on a base model,
 * with its trainable parameters in a tk_param_set. To add a method: implement its
 * tk_peft_method and a create/destroy pair in src/peft/<method>.c, add a row to the table in
 * src/peft/registry.c, and a test beside it (see docs/ARCHITECTURE.md). */
#ifndef TK_PEFT_REGISTRY_H
#define TK_PEFT_REGISTRY_H
#include "takumi/model.h"
#include "core/param.h"

typedef struct tk_peft_kind {
    const char *name;      /* "lora" */
    const char *summary;   /* one line for help texts */
    /* Creates an adapter on m: parameters added to ps and initialised per the method (seeded by
     * the config); cfg is the method's config struct (tk_lora_config for "lora"); adapters only
     * on layers >= first_layer. m and ps must outlive it. */
    tk_status (*create)(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out);
    /* Frees what create made (ps keeps the parameters); accepts NULL. */
    void (*destroy)(tk_peft *p);
} tk_peft_kind;

/* The kind named `name`, or NULL. Thread-safe (a constant table). */
const tk_peft_kind *tk_peft_kind_find(const char *name);
/* Every kind (*n of them), in a fixed order. Thread-safe. */
const tk_peft_kind *tk_peft_kinds(int *n);
#endif
