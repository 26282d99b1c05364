/* The reference backend's entries (src/backend/ref/): the most direct form of each contract of
 * backend/backend.h and src/ops/ops.h — plain C11, one thread, sums in double — the oracle the
 * other backends are checked against (tests/test_backends_agree.c). Thread-safe (no state). */
#ifndef TK_BACKEND_REF_REF_H
#define TK_BACKEND_REF_REF_H
#include "backend/backend.h"

tk_status tk_ref_embedding_forward(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table);
void tk_ref_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C);
void tk_ref_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps);
void tk_ref_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int64_t T,
                             int64_t C);
void tk_ref_rope_forward(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
void tk_ref_rope_backward(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
void tk_ref_swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
void tk_ref_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void tk_ref_geglu_forward(float *out, const float *gate, const float *up, int64_t n);
void tk_ref_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
tk_status tk_ref_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a);
tk_status tk_ref_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                                    const float *k, const float *v, const tk_attn_args *a);
#endif
