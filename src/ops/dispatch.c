/* The kernels of src/ops/ops.h on the active backend (backend/backend.h). */
#include "ops/ops.h"

#define BE tk_backend_active()

tk_status tk_embedding_forward(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table) {
    return BE->embedding_fwd(out, ids, T, table);
}
void tk_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C) {
    BE->embedding_bwd(dtable, dout, ids, T, C);
}
void tk_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps) {
    BE->rmsnorm_fwd(out, rstd, x, w, T, C, eps);
}
void tk_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int64_t T, int64_t C) {
    BE->rmsnorm_bwd(dx, dw, dout, x, w, rstd, T, C);
}
void tk_rope_forward(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r) { BE->rope_fwd(x, pos, T, NH, D, r); }
void tk_rope_backward(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r) { BE->rope_bwd(dx, pos, T, NH, D, r); }
tk_status tk_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a) {
    double t0 = tk_op_time_begin();
    tk_status st = BE->attention_fwd(out, att, q, k, v, a);
    tk_op_time_end(t0, true);
    return st;
}
tk_status tk_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q, const float *k,
                                const float *v, const tk_attn_args *a) {
    double t0 = tk_op_time_begin();
    tk_status st = BE->attention_bwd(dq, dk, dv, dout, att, q, k, v, a);
    tk_op_time_end(t0, true);
    return st;
}
void tk_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) { BE->swiglu_fwd(out, gate, up, n); }
void tk_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    BE->swiglu_bwd(dgate, dup, dout, gate, up, n);
}
void tk_geglu_forward(float *out, const float *gate, const float *up, int64_t n) { BE->geglu_fwd(out, gate, up, n); }
void tk_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    BE->geglu_bwd(dgate, dup, dout, gate, up, n);
}
