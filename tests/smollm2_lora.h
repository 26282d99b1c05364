/* What the tests against PyTorch fixtures on SmolLM2-135M share (test_train_ref, test_objectives_smollm2,
 * test_peft_bottleneck_ref): the name-hashed initialisation both sides compute (tools/make_train_reference.py hash_init), set into a
 * training context's LoRA with q/k B rows in takumi's permuted (GGUF) order, and gradients un-permuted
 * back to HF order for comparison. */
#ifndef TK_TESTS_SMOLLM2_LORA_H
#define TK_TESTS_SMOLLM2_LORA_H
#include "test.h"
#include "train/step.h"
#include "model/hfconfig.h"
#include <stdint.h>

/* u = (splitmix(fnv1a(name) + i) >> 40) / 2^24, out[i] = (2u - 1) * bound, as hash_init in Python. */
static inline uint64_t tk_test_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}
static inline uint64_t tk_test_splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static inline void hash_init(float *out, const char *name, int64_t n, double bound) {
    uint64_t h0 = tk_test_fnv1a(name);
    float b = (float)bound;
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(tk_test_splitmix(h0 + (uint64_t)i) >> 40) * (1.0f / 16777216.0f);
        out[i] = (2.0f * u - 1.0f) * b;
    }
}

/* Heads of the q/k LoRA B whose rows takumi keeps permuted (0 for any other parameter). */
static inline int lora_qk_heads(const tk_model_config *c, const char *name) {
    return strstr(name, "q_proj.lora_B") ? c->n_heads : strstr(name, "k_proj.lora_B") ? c->n_kv_heads : 0;
}

/* Every parameter of ps from hash_init: lora_A bound 1/sqrt(in), lora_B 0.02, anything else (a score head)
 * 1/sqrt(its row length); q/k B rows permuted from HF order (rank r). */
static inline void smollm2_hash_init(tk_param_set *ps, const tk_model_config *c, int64_t r) {
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *q = &ps->p[i];
        float *tmp = malloc((size_t)q->n * sizeof(float));
        if (!tmp) { CHECK(0, "out of memory"); return; }
        double bound = strstr(q->name, "lora_A") ? 1.0 / sqrt((double)q->ne[0]) : strstr(q->name, "lora_B") ? 0.02 : 1.0 / sqrt((double)q->ne[0]);
        hash_init(tmp, q->name, q->n, bound);
        int nh = lora_qk_heads(c, q->name);
        if (nh) tk_permute_qk_rows_from_hf(q->w, tmp, nh, c->head_dim, (size_t)r * sizeof(float));
        else memcpy(q->w, tmp, (size_t)q->n * sizeof(float));
        free(tmp);
    }
}

/* q's gradient in HF row order: q->g itself, or un-permuted into tmp [q->n]. */
static inline const float *grad_hf_order(const tk_param *q, const tk_model_config *c, int64_t r, float *tmp) {
    int nh = lora_qk_heads(c, q->name);
    if (!nh) return q->g;
    tk_permute_qk_rows_to_hf(tmp, q->g, nh, c->head_dim, (size_t)r * sizeof(float));
    return tmp;
}
#endif
