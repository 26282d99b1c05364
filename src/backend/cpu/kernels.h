/* Internal CPU kernels behind tk_matmul: activation quantization and fused
 * quantized-weight dot products for few-row (decode) products, each with the
 * portable scalar reference it is tested against (tests/test_matmul.c). */
#ifndef TK_BACKEND_CPU_KERNELS_H
#define TK_BACKEND_CPU_KERNELS_H
#include "takumi/core.h"
#include "backend/backend.h"

/* One 32-element block of a quantized activation row: x[i] ~= d * q[i]; s = d * sum(q). */
typedef struct tk_q8x { float d, s; int8_t q[32]; } tk_q8x;

/* Quantizes n f32 values (n a multiple of 32) to n/32 tk_q8x blocks (round to nearest, |q| <= 127). */
void tk_cpu_quantize_q8x(const float *x, tk_q8x *out, int64_t n);
/* The scalar reference of tk_cpu_quantize_q8x (the SIMD version gives bit-identical blocks). */
void tk_cpu_quantize_q8x_ref(const float *x, tk_q8x *out, int64_t n);

/* True when dtype t has a fused dot kernel against tk_q8x activations (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K). */
bool tk_cpu_has_qdot(tk_dtype t);
/* Dot product of one weight row (n elements of dtype t, tk_cpu_has_qdot(t)) with a quantized activation row. */
float tk_cpu_qdot(tk_dtype t, const void *w, const tk_q8x *x, int64_t n);
/* out[t] = tk_cpu_qdot(t, w, x + t * xs, n) for t < T, bit for bit (xs: blocks between activation rows): each weight
 * block is unpacked once per group of up to 4 activation rows (decode over several rows). Thread-safe. */
void tk_cpu_qdot_rows(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out);
/* For the variants' multi-row forms: rows [0, T) in groups of TK_QDOT_GROUP, then the 1..3 left, each group starting
 * at row t0 run by CALL(R) with R a constant (so each group size gets its own specialization, accumulators in registers). */
#define TK_QDOT_GROUP 4
#define TK_QDOT_ROW_GROUPS(T, t0, CALL)                                                                                     \
    do {                                                                                                                   \
        int64_t t0 = 0;                                                                                                    \
        for (; t0 + TK_QDOT_GROUP <= (T); t0 += TK_QDOT_GROUP) CALL(TK_QDOT_GROUP);                                         \
        switch ((T) - t0) {                                                                                                \
        case 3: CALL(3); break;                                                                                            \
        case 2: CALL(2); break;                                                                                            \
        case 1: CALL(1); break;                                                                                            \
        default: break;                                                                                                    \
        }                                                                                                                  \
    } while (0)
/* The scalar reference of tk_cpu_qdot (same arithmetic up to float summation order). */
float tk_cpu_qdot_ref(tk_dtype t, const void *w, const tk_q8x *x, int64_t n);
/* Name of the variant tk_cpu_qdot runs ("scalar", "avx2", "avx512vnni"). Thread-safe. */
const char *tk_cpu_qdot_isa(void);

/* One implementation of tk_cpu_qdot: a row of the table in qdot.c, run only where cpu_has() holds. */
typedef struct tk_qdot_kernel {
    const char *name;  /* "scalar", "avx2", "avx512vnni" */
    const char *lacks; /* why a CPU cannot run it ("CPU lacks avx512f+...") */
    float (*dot)(tk_dtype t, const void *w, const tk_q8x *x, int64_t n); /* tk_cpu_qdot's contract */
    /* tk_cpu_qdot_rows' contract, each out[t] bit-identical to this row's dot */
    void (*dot_rows)(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out);
    bool (*cpu_has)(void);                                               /* run-time CPUID check */
} tk_qdot_kernel;
/* Every variant, plainest first; *n gets the count. Thread-safe (constant table). */
const tk_qdot_kernel *tk_cpu_qdot_kernels(int *n);
/* The variant called name, or NULL (name may be NULL). Thread-safe. */
const tk_qdot_kernel *tk_cpu_qdot_find(const char *name);
/* NULL when this CPU runs k, else why not. Thread-safe. */
const char *tk_cpu_qdot_unsupported(const tk_qdot_kernel *k);
/* The variant tk_cpu_qdot runs, chosen once: TK_QDOT=name if set and runnable, else the fastest runnable. Thread-safe. */
const tk_qdot_kernel *tk_cpu_qdot_active(void);
/* The x86 variants (qdot_avx2.c, qdot_avx512.c): tk_cpu_qdot's contract; call only where their row's cpu_has() holds. */
float tk_cpu_qdot_avx2(tk_dtype t, const void *w, const tk_q8x *x, int64_t n);
float tk_cpu_qdot_avx512vnni(tk_dtype t, const void *w, const tk_q8x *x, int64_t n);
/* Their multi-row forms (tk_cpu_qdot_rows' contract, bit-identical to the variant's own dot); same CPU condition. */
void tk_cpu_qdot_rows_avx2(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out);
void tk_cpu_qdot_rows_avx512vnni(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out);

/* True when dtype t has an exact fused kernel (f32 activations, dequantization in registers). */
bool tk_cpu_has_fdot(tk_dtype t);
/* Sums of each 32-element block of x (n a multiple of 32) into sums[n/32]: what tk_cpu_fdot needs for Q4_0/Q4_1. */
void tk_cpu_block_sums(const float *x, float *sums, int64_t n);
/* Lays x (n a multiple of 32) out for tk_cpu_fdot on dtype t: xp[n] gets x in the kernel's order (a fixed
 * permutation within each 32-block for Q4_0/Q4_1, a copy otherwise), sums[n/32] the block sums. Once per matmul row. */
void tk_cpu_fdot_prepare(tk_dtype t, const float *x, float *xp, float *sums, int64_t n);
/* Dot product of one weight row (n elements of dtype t, tk_cpu_has_fdot(t)) with f32 x, given as xp and xsums
 * from tk_cpu_fdot_prepare(t, x, ...). Its reference is the scalar dequantizer followed by a double dot (tests). */
float tk_cpu_fdot(tk_dtype t, const void *w, const float *xp, const float *xsums, int64_t n);

/* tk_cpu_fdot of one weight row against four activation rows (x + j * xstride, xsums + j * sstride, j < 4) into
 * out[4], each bit-identical to tk_cpu_fdot's result; Q4_0/Q4_1/Q8_0 blocks are decoded once for the four rows. */
void tk_cpu_fdot4(tk_dtype t, const void *w, const float *x, int64_t xstride, const float *xsums, int64_t sstride, int64_t n,
                  float out[4]);

/* Dequantizes n elements of any supported dtype (F32 copy included) into dst; TK_ERR_UNSUPPORTED otherwise. */
tk_status tk_cpu_dequant_row(tk_dtype t, const void *src, float *dst, int64_t n);

/* The CPU backend's entries (src/backend/cpu/matmul.c, sgemm.c; the contracts of tk_matmul_ex,
 * tk_matmul_multi, tk_matmul_dx, tk_matmul_dw and tk_sgemm in backend/backend.h). */
tk_status tk_cpu_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags);
tk_status tk_cpu_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags);
tk_status tk_cpu_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate);
void tk_cpu_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K);
tk_status tk_cpu_set_precision(int bf16);
void tk_cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* The CPU backend's attention and elementwise kernels (contracts in src/ops/ops.h). */
tk_status tk_cpu_embedding_forward(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table);
void tk_cpu_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C);
void tk_cpu_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps);
void tk_cpu_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int64_t T,
                             int64_t C);
void tk_cpu_rope_forward(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
void tk_cpu_rope_backward(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
tk_status tk_cpu_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a);
tk_status tk_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                                    const float *k, const float *v, const tk_attn_args *a);
void tk_cpu_swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
void tk_cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void tk_cpu_geglu_forward(float *out, const float *gate, const float *up, int64_t n);
void tk_cpu_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);

/* The built-in blocked sgemm (what tk_sgemm uses when built without BLAS); same contract as tk_sgemm. */
void tk_sgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* y[i] = exp(x[i]) (x may alias y), within a few ulp of expf; exp(-inf) = 0, results below FLT_MIN are 0. */
void tk_cpu_vexp(float *y, const float *x, int64_t n);
/* y[i] = exp(x[i] - shift) as tk_cpu_vexp; returns the sum of the y[i] (float). */
float tk_cpu_vexp_sum(float *y, const float *x, float shift, int64_t n);
/* The scalar exp the vector code mirrors (tails, tests). */
float tk_cpu_exp_ref(float x);

/* Forces a matmul strategy (tests and benches): 0 auto, 1 panel dequant + sgemm, 2 fused row dots,
 * 4 whole-weight dequant + one sgemm (tk_matmul only; tk_matmul_dx always uses its column stripes). */
void tk_cpu_matmul_force_path(int path);
#endif
