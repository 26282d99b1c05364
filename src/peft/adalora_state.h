/* The state of an AdaLoRA adapter (adalora.h), shared by its method (adalora.c), rank allocator
 * (adalora_rank.c) and files (adalora_file.c). Not a public interface. */
#ifndef TK_PEFT_ADALORA_STATE_H
#define TK_PEFT_ADALORA_STATE_H
#include "peft/adalora.h"
#include "peft/lora.h"

typedef struct ada_mod {
    int64_t ia, ie, ib;     /* param indices of A, E, B; -1 = no adapter */
    int64_t K, N;           /* in, out */
    float *keep;            /* [r] 1 = triplet kept, 0 = masked */
    float *ema_ipt, *ema_unc; /* [r*K + r + N*r]: A, E, B entries (the rank allocator's smoothed sensitivity, uncertainty) */
} ada_mod;

struct tk_adalora {
    tk_peft peft;
    tk_model *m;
    tk_param_set *ps;
    tk_adalora_config cfg;
    float scale;
    int32_t L, r;
    ada_mod *mods;          /* [L x TK_LIN_COUNT] */
    int64_t n_mods;
    float *extra;           /* [n_extra]: every module's ema_ipt, ema_unc and keep, then has_pattern (the checkpointed state) */
    int64_t n_extra;
    float *has_pattern;     /* = extra + n_extra - 1: 1 once an allocation has happened */
    tk_param_set inner_ps;  /* the plain LoRA (A' = E ⊙ A, B) that training forwards and GGUF files go through */
    tk_lora *inner;
};

/* The module of (layer, which), or NULL. */
ada_mod *tk_adalora_mod(tk_adalora *a, int32_t layer, tk_linear_id which);
#endif
