/* Model export, the library side of takumi/export.h: the same writer with a low-rank delta
 * merged into the linear weights (W' = W + scale * B A, computed in f32 from the dequantized
 * base rows, then stored in the requested dtype). The delta comes through a small interface
 * so that this layer (model/) does not depend on the adapter layer (peft/) above it:
 * peft/adapter_io.h turns a tk_lora into a tk_weight_delta. */
#ifndef TK_MODEL_EXPORT_H
#define TK_MODEL_EXPORT_H
#include "takumi/export.h"

/* The factors of one linear's delta: W [N x K] += scale * B [N x r] A [r x K] (row-major, f32,
 * rows in the model's own order). */
typedef struct tk_delta_factors { const float *A, *B; int64_t r, K, N; float scale; } tk_delta_factors;

typedef struct tk_weight_delta {
    /* Fills *f for linear (layer, which) and returns true, or returns false when it has no delta. */
    bool (*get)(void *ud, int32_t layer, tk_linear_id which, tk_delta_factors *f);
    void *ud;
} tk_weight_delta;

/* As tk_export_model, with d merged (d NULL: none). A delta whose shape differs from the
 * weight's fails with TK_ERR_ARG naming the tensor. */
tk_status tk_export_merged(tk_model *m, const tk_weight_delta *d, const char *out, const tk_export_params *p);
#endif
