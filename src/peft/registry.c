/* The table of PEFT method kinds (see registry.h). */
#include "peft/registry.h"
#include "peft/lora.h"
#include "core/core.h"

static tk_status lora_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    tk_lora_config c = cfg ? *(const tk_lora_config *)cfg : tk_lora_default_config();
    c.first_layer = first_layer;
    tk_lora *l;
    tk_status st = tk_lora_new(m, &c, ps, &l);
    if (st) return st;
    *out = (tk_peft *)tk_lora_peft(l);
    return TK_OK;
}

static void lora_destroy(tk_peft *p) {
    if (p) tk_lora_free(p->state);
}

static const tk_peft_kind k_kinds[] = {
    {"lora", "LoRA: y += (alpha / r) (x A^T) B^T on the chosen linears (HF PEFT semantics)", lora_create, lora_destroy},
};

const tk_peft_kind *tk_peft_kind_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof k_kinds / sizeof k_kinds[0]; i++)
        if (!strcmp(k_kinds[i].name, name)) return &k_kinds[i];
    return NULL;
}

const tk_peft_kind *tk_peft_kinds(int *n) {
    *n = (int)(sizeof k_kinds / sizeof k_kinds[0]);
    return k_kinds;
}
