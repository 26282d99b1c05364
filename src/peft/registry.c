/* The table of PEFT method kinds (see registry.h). */
#include "peft/registry.h"
#include "peft/lora.h"
#include "peft/lora_io.h"
#include "peft/dora.h"
#include "peft/ia3.h"
#include "peft/prefix.h"
#include "peft/prompt.h"
#include "peft/bottleneck.h"
#include "peft/adalora.h"
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

static tk_status dora_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    tk_lora_config c = cfg ? *(const tk_lora_config *)cfg : tk_lora_default_config();
    c.first_layer = first_layer;
    tk_dora *d;
    tk_status st = tk_dora_new(m, &c, ps, &d);
    if (!st) *out = (tk_peft *)tk_dora_peft(d);
    return st;
}

static void dora_destroy(tk_peft *p) {
    if (p) tk_dora_free(p->state);
}

static tk_status ia3_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    tk_ia3_config c = cfg ? *(const tk_ia3_config *)cfg : tk_ia3_default_config();
    c.first_layer = first_layer;
    tk_ia3 *a;
    tk_status st = tk_ia3_new(m, &c, ps, &a);
    if (!st) *out = (tk_peft *)tk_ia3_peft(a);
    return st;
}

static void ia3_destroy(tk_peft *p) {
    if (p) tk_ia3_free(p->state);
}

static tk_status prefix_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    if (first_layer != 0)
        return tk_fail(TK_ERR_ARG, "prefix: the prefix covers every layer (PEFT's prefix tuning has no layer choice): no frozen layers");
    tk_prefix_config c = cfg ? *(const tk_prefix_config *)cfg : tk_prefix_default_config();
    tk_prefix *a;
    tk_status st = tk_prefix_new(m, &c, ps, &a);
    if (!st) *out = (tk_peft *)tk_prefix_peft(a);
    return st;
}

static void prefix_destroy(tk_peft *p) {
    if (p) tk_prefix_free(p->state);
}

static tk_status prompt_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    if (first_layer != 0)
        return tk_fail(TK_ERR_ARG, "prompt: the virtual tokens go through every layer (PEFT's prompt tuning has no layer choice): no frozen layers");
    tk_prompt_config c = cfg ? *(const tk_prompt_config *)cfg : tk_prompt_default_config();
    tk_prompt *a;
    tk_status st = tk_prompt_new(m, &c, ps, &a);
    if (!st) *out = (tk_peft *)tk_prompt_peft(a);
    return st;
}

static void prompt_destroy(tk_peft *p) {
    if (p) tk_prompt_free(p->state);
}

static tk_status bottleneck_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    tk_bottleneck_config c = cfg ? *(const tk_bottleneck_config *)cfg : tk_bottleneck_default_config();
    c.first_layer = first_layer;
    tk_bottleneck *b;
    tk_status st = tk_bottleneck_new(m, &c, ps, &b);
    if (!st) *out = (tk_peft *)tk_bottleneck_peft(b);
    return st;
}

static void bottleneck_destroy(tk_peft *p) {
    if (p) tk_bottleneck_free(p->state);
}

static tk_status adalora_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    tk_adalora_config c = cfg ? *(const tk_adalora_config *)cfg : tk_adalora_default_config();
    c.first_layer = first_layer;
    tk_adalora *a;
    tk_status st = tk_adalora_new(m, &c, ps, &a);
    if (!st) *out = (tk_peft *)tk_adalora_peft(a);
    return st;
}

static void adalora_destroy(tk_peft *p) {
    if (p) tk_adalora_free(p->state);
}

static const tk_peft_kind k_kinds[] = {
    {.name = "lora",
     .summary = "LoRA: y += (alpha / r) (x A^T) B^T on the chosen linears (HF PEFT semantics)",
     .create = lora_create,
     .destroy = lora_destroy,
     .peft_type = "LORA",
     .gguf_type = "lora",
     .read_peft = tk_lora_read_peft,
     .read_gguf = tk_lora_read_gguf,
     .attach = tk_lora_attach_file,
     .describe = tk_lora_describe_file,
     .free_file = tk_lora_file_free},
    {.name = "dora",
     .summary = "DoRA: LoRA direction + a learned magnitude per output row, W' = m (W + s BA) / ||W + s BA|| (PEFT use_dora)",
     .create = dora_create,
     .destroy = dora_destroy,
     .peft_type = "LORA",
     .peft_claims = tk_dora_claims,
     .read_peft = tk_dora_read_peft,
     .attach = tk_dora_attach_file,
     .describe = tk_dora_describe_file,
     .free_file = tk_dora_file_free},
    {.name = "ia3",
     .summary = "IA3: learned vectors scaling the k/v outputs and the down-projection input (PEFT IA3)",
     .create = ia3_create,
     .destroy = ia3_destroy,
     .peft_type = "IA3",
     .read_peft = tk_ia3_read_peft,
     .attach = tk_ia3_attach_file,
     .describe = tk_ia3_describe_file,
     .free_file = tk_ia3_file_free},
    {.name = "prefix",
     .summary = "prefix tuning: P trainable attention keys/values per layer, optionally through an MLP (PEFT PREFIX_TUNING)",
     .create = prefix_create,
     .destroy = prefix_destroy,
     .peft_type = "PREFIX_TUNING",
     .read_peft = tk_prefix_read_peft,
     .attach = tk_prefix_attach_file,
     .describe = tk_prefix_describe_file,
     .free_file = tk_prefix_file_free},
    {.name = "prompt",
     .summary = "prompt tuning: P trainable soft-prompt embeddings before the input, from random or a text (PEFT PROMPT_TUNING)",
     .create = prompt_create,
     .destroy = prompt_destroy,
     .peft_type = "PROMPT_TUNING",
     .read_peft = tk_prompt_read_peft,
     .attach = tk_prompt_attach_file,
     .describe = tk_prompt_describe_file,
     .free_file = tk_prompt_file_free},
    {.name = "adapter",
     .summary = "bottleneck adapters: down-projection, nonlinearity, up-projection added residually after the feed-forward block "
                "(pfeiffer) or after attention and feed-forward (houlsby), as AdapterHub's SeqBnConfig / DoubleSeqBnConfig",
     .create = bottleneck_create,
     .destroy = bottleneck_destroy,
     .peft_type = TK_BOTTLENECK_TYPE,
     .read_peft = tk_bottleneck_read_peft,
     .attach = tk_bottleneck_attach_file,
     .describe = tk_bottleneck_describe_file,
     .free_file = tk_bottleneck_file_free},
    {.name = "adalora",
     .summary = "AdaLoRA: SVD-shaped updates B (E ⊙ A) whose rank budget shrinks to --adalora-target-r per linear by importance, "
                "with PEFT's orthogonal regularization (PEFT ADALORA)",
     .create = adalora_create,
     .destroy = adalora_destroy,
     .peft_type = "ADALORA",
     .read_peft = tk_adalora_read_peft,
     .attach = tk_adalora_attach_file,
     .describe = tk_adalora_describe_file,
     .free_file = tk_adalora_file_free},
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

const tk_peft_kind *tk_peft_kind_for_peft(const tk_peft_kind *kinds, int n, const char *peft_type, const struct cJSON *cfg) {
    if (!peft_type) return NULL;
    const tk_peft_kind *plain = NULL; /* the first kind of that type without peft_claims */
    for (int i = 0; i < n; i++) {
        const tk_peft_kind *k = &kinds[i];
        if (!k->peft_type || !k->read_peft || strcmp(k->peft_type, peft_type)) continue;
        if (!k->peft_claims) { if (!plain) plain = k; }
        else if (k->peft_claims(cfg)) return k;
    }
    return plain;
}

const tk_peft_kind *tk_peft_kind_for_gguf(const tk_peft_kind *kinds, int n, const char *gguf_type) {
    if (!gguf_type) return NULL;
    for (int i = 0; i < n; i++)
        if (kinds[i].gguf_type && kinds[i].read_gguf && !strcmp(kinds[i].gguf_type, gguf_type)) return &kinds[i];
    return NULL;
}
