/* Model export, the library side of takumi/export.h: the same writer with a low-rank delta
 * merged into the linear weights (W' = W + scale * B A, computed in f32 from the dequantized
 * base rows, then stored in the requested dtype). The delta comes through a small interface
 * so that this layer (model/) does not depend on the adapter layer (peft/) above it:
 * peft/adapter_io.h turns any PEFT method that can be merged (its merge_linear) into a
 * tk_weight_delta. */
#ifndef TK_MODEL_EXPORT_H
#define TK_MODEL_EXPORT_H
#include "takumi/export.h"

typedef struct tk_weight_delta {
    /* Does linear (layer, which) change? */
    bool (*has)(void *ud, int32_t layer, tk_linear_id which);
    /* Adds the change into W [N x K] (f32, torch layout, rows in the model's own order); fails
     * (TK_ERR_ARG) when its shape is not N x K. */
    tk_status (*merge)(void *ud, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K);
    void *ud;
} tk_weight_delta;

/* As tk_export_model, with d merged (d NULL: none). A delta whose shape differs from the
 * weight's fails with TK_ERR_ARG naming the tensor. */
tk_status tk_export_merged(tk_model *m, const tk_weight_delta *d, const char *out, const tk_export_params *p);
#endif
