/* Lookup of architecture descriptions (src/model/arch.h) by takumi name, GGUF
 * general.architecture, or HF class / model_type. */
#include "model/arch.h"
#include "model/hfconfig.h"
#include <stdio.h>
#include <string.h>

static const tk_arch *const k_all[] = {&tk_arch_llama, &tk_arch_mistral, &tk_arch_qwen2, &tk_arch_qwen3, &tk_arch_gemma2, &tk_arch_gemma3, &tk_arch_phi3};
#define N_ALL (sizeof k_all / sizeof k_all[0])

const tk_arch *tk_arch_by_name(const char *name) {
    for (size_t i = 0; name && i < N_ALL; i++)
        if (!strcmp(k_all[i]->name, name)) return k_all[i];
    return NULL;
}

const tk_arch *tk_arch_by_gguf(const char *gguf_arch) {
    /* the first family stored under that name is its canonical reading (mistral is stored as llama) */
    for (size_t i = 0; gguf_arch && i < N_ALL; i++)
        if (!strcmp(k_all[i]->gguf, gguf_arch)) return k_all[i];
    return NULL;
}

const tk_arch *tk_arch_by_hf(const char *hf_class, const char *model_type) {
    for (size_t i = 0; i < N_ALL; i++) {
        if (hf_class) {
            if (!strcmp(k_all[i]->hf_class, hf_class)) return k_all[i];
            continue;
        }
        for (const char *const *t = k_all[i]->hf_model_types; model_type && t && *t; t++)
            if (!strcmp(*t, model_type)) return k_all[i];
    }
    return NULL;
}

const char *tk_arch_hf_list(void) {
    return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM";
}

const char *tk_arch_list(void) {
    return "llama (Llama 2/3, TinyLlama, SmolLM2), mistral, qwen2, qwen3, gemma2, gemma3, phi3";
}

const char *tk_arch_hf_weight_name(const tk_arch *a, char *buf, size_t n, const char *key, int layer) {
    if (!buf || !key || !n) return NULL;
    for (const tk_arch_name *o = a ? a->hf_names : NULL; o && o->key && layer >= 0; o++)
        if (!strcmp(o->key, key)) {
            int w = snprintf(buf, n, "model.layers.%d.%s", layer, o->hf);
            return w >= 0 && (size_t)w < n ? buf : NULL;
        }
    return tk_hf_weight_name(buf, n, key, layer);
}
