/* Backends: where products and kernels run. A backend is a table of entry points (matmul
 * variants, buffers and copies, attention and elementwise kernels); the CPU is the first entry
 * and the default; "ref" (src/backend/ref/) is the portable reference every other backend is
 * checked against. The backend is chosen at run time: tk_backend_select(name), or the
 * TAKUMI_BACKEND environment variable at first use; the Makefile's BACKENDS list says which are
 * built (cpu always; default "cpu ref"; a CUDA backend would be BACKENDS="cpu cuda"). Every
 * tensor op in the library calls the dispatchers (below, and the kernels' in src/ops/ops.h),
 * never a backend's functions directly, and the op tests run against every backend that was
 * built (tk_backends).
 *
 * Matmul convention (as in PyTorch's nn.Linear): y[T x N] = x[T x K] · W^T, where the weight
 * W is stored row-major [N x K] (tk_tensor_ref ne[0] = K, ne[1] = N) in F32, F16, BF16 or
 * any quantized block type. Quantized/half weights are never expanded whole by the CPU
 * backend: they are dequantized block by block inside the product (panels of rows into a
 * per-thread scratch, then sgemm), or, for few rows (decode), dotted directly against x.
 *
 * To add a backend: fill a tk_backend in src/backend/<name>/backend_<name>.c, add it to the
 * list in src/backend/backend.c under #if TK_BACKEND_<NAME> (set when BACKENDS lists <name>), and
 * make tests/test_ops, tests/test_matmul, tests/test_backend and tests/test_backends_agree pass
 * on it (they loop over tk_backends). */
#ifndef TK_BACKEND_BACKEND_H
#define TK_BACKEND_BACKEND_H
#include "takumi/core.h"

/* tk_matmul_ex flag: never quantize x (the few-row int8 path is skipped for half/quantized W),
 * so y is a smooth function of x — what training (finite-difference-consistent gradients) wants. */
#define TK_MATMUL_EXACT 1
/* tk_matmul_ex / tk_matmul_multi flag: every row of y is computed as a one-row product would compute
 * it (the few-row kernels whatever T), so a row's result does not depend on the other rows — what a
 * batched decode needs to equal one-sequence decode bit for bit. */
#define TK_MATMUL_ROWWISE 2
/* tk_matmul_ex / tk_matmul_multi flag: products with a quantized weight of the int8 dot kernels' types (Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q4_K, Q6_K) that run as a GEMM (prefill chunks) round x and the dequantized weights to bf16 with fp32 sums
 * (tk_sgemm_bf16) where the CPU has AVX512-BF16; ignored with TK_MATMUL_EXACT, for other dtypes, on other CPUs, and
 * by the few-row dot kernels. The fast inference precision (tk_session_set_exact(s, false)); never training. */
#define TK_MATMUL_BF16 4

/* RoPE tables: cos/sin for positions [0, n_pos) and D/2 frequencies (Llama-3 / linear scaling applied). */
typedef struct tk_rope {
    int64_t n_pos, half;   /* half = D/2 */
    int interleaved;       /* 1: pairs (2i, 2i+1); 0: halves (i, i+D/2) */
    float *cos, *sin;      /* [n_pos x half] */
    float *inv_freq;       /* [half]: angle = pos * inv_freq[i] (used past n_pos) */
} tk_rope;
/* Arguments of causal grouped-query attention over one sequence block.
 * q[Tq x H x D], k/v[S x KH x D]; query t attends to key s iff seg_k[s] == seg_q[t] (>= 0)
 * and pos_k[s] <= pos_q[t]; so packing (segments) and padding (segment -1) are masks.
 * Prefix (P > 0): pk/pv [P x KH x D] are extra keys/values (already rotated: used as given)
 * that every query with seg_q[t] >= 0 sees besides its sequence keys, with no causal or
 * window mask; they share one softmax with the sequence keys. P = 0 gives the results of
 * attention without a prefix bit for bit.
 * out[Tq x H x D]. att (optional, [H x Tq x (P + S)]) keeps the probabilities for backward:
 * per row the P prefix columns first, then the S keys. */
typedef struct tk_attn_args {
    int64_t Tq, S, H, KH, D;
    const int32_t *pos_q, *pos_k;   /* positions */
    const int32_t *seg_q, *seg_k;   /* segment ids; NULL = one segment for all */
    float scale;                    /* usually 1/sqrt(D) */
    int32_t window;                 /* > 0: sliding window, key s visible only when pos_q[t] - pos_k[s] < window */
    float softcap;                  /* > 0: each score s = scale * q.k becomes softcap * tanh(s / softcap) before the
                                     * mask and softmax (Gemma 2's attn_logit_softcapping), prefix columns too; 0 = off */
    const float *pk, *pv;           /* prefix keys/values [P x KH x D] (NULL when P = 0) */
    int64_t P;                      /* prefix length (0 = none) */
    float *dpk, *dpv;               /* backward only: += d loss / d pk, pv [P x KH x D] (NULL = not wanted) */
} tk_attn_args;
typedef struct tk_backend {
    const char *name;        /* "cpu", "ref" */
    const char *detail;      /* build/ISA details for `takumi inspect` and logs ("AVX-512, OpenBLAS", …) */
    /* buffers: memory the backend's kernels read and write, and copies between it and host memory */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*to_device)(void *dst, const void *src, size_t bytes);
    void (*to_host)(void *dst, const void *src, size_t bytes);
    /* matmul variants (contracts as the dispatchers below) */
    tk_status (*matmul)(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags);
    tk_status (*matmul_multi)(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags);
    tk_status (*matmul_dx)(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate);
    void (*matmul_dw)(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K);
    void (*sgemm)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
    /* precision of the matmul variants' products (tk_matmul_set_precision); NULL: fp32 only */
    tk_status (*set_precision)(int bf16);
    /* elementwise: y[i] = exp(x[i] - shift), returning the sum (softmax building block) */
    float (*vexp_sum)(float *y, const float *x, float shift, int64_t n);
    /* attention and elementwise kernels (contracts: src/ops/ops.h, which dispatches to them) */
    tk_status (*embedding_fwd)(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table);
    void (*embedding_bwd)(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C);
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps);
    void (*rmsnorm_bwd)(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int64_t T, int64_t C);
    void (*rope_fwd)(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
    void (*rope_bwd)(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r);
    tk_status (*attention_fwd)(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a);
    tk_status (*attention_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q, const float *k,
                               const float *v, const tk_attn_args *a);
    void (*swiglu_fwd)(float *out, const float *gate, const float *up, int64_t n);
    void (*swiglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
    void (*geglu_fwd)(float *out, const float *gate, const float *up, int64_t n);
    void (*geglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
} tk_backend;

/* The backends this build has (*n of them; the CPU first). Thread-safe. */
const tk_backend *const *tk_backends(int *n);
/* The active backend (on first use: $TAKUMI_BACKEND if set and built, else the CPU). Thread-safe. */
const tk_backend *tk_backend_active(void);
/* Makes the backend named `name` active; TK_ERR_NOT_FOUND (naming the built ones) otherwise.
 * Not thread-safe with ops in flight: choose before running models. */
tk_status tk_backend_select(const char *name);

/* Buffers of the active backend (host memory for the CPU). */
void *tk_backend_alloc(size_t bytes);
void tk_backend_free(void *p);
void tk_backend_to_device(void *dst, const void *src, size_t bytes);
void tk_backend_to_host(void *dst, const void *src, size_t bytes);

/* y = x · W^T (+ y if accumulate). x: [T x K] f32 row-major; y: [T x N]. Returns TK_ERR_UNSUPPORTED for a dtype without kernels. */
tk_status tk_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate);
/* tk_matmul with flags (TK_MATMUL_EXACT). tk_matmul = tk_matmul_ex(..., 0). */
tk_status tk_matmul_ex(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags);
/* y[i] = x · W[i]^T for n (1..4) weights sharing x and K, no accumulate: the same results as n
 * tk_matmul_ex calls, but few-row products (decode) run in one parallel region. */
tk_status tk_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags);
/* dx = dy · W (+ dx if accumulate): the input gradient of y = x·W^T. dy: [T x N], dx: [T x K]. Any weight dtype. */
tk_status tk_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate);
/* dW += dy^T · x for an f32 weight gradient dW [N x K]. */
void tk_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K);
/* Precision of the large products of tk_matmul, tk_matmul_multi, tk_matmul_dx and tk_matmul_dw on
 * the active backend (not tk_sgemm, not the few-row dots): "bf16" rounds
 * their inputs to bf16 and sums in fp32 (CPU: AVX512-BF16). TK_ERR_UNSUPPORTED with the reason when
 * the backend or CPU lacks it (CPU: also while the environment sets TK_NO_BF16=1, to test the
 * fallback on a BF16 CPU). Per calling thread (other threads keep theirs; default fp32). Thread-safe. */
tk_status tk_matmul_set_precision(bool bf16);
/* Wall time the calling thread spent in the dispatchers above (products: tk_matmul*, tk_sgemm) and
 * in tk_attention_forward/backward (ops.h), outermost call only (attention's inner products count as
 * attention), since its last tk_op_times_reset; for step-time splits (bench_train). Per thread. */
typedef struct tk_op_times { double gemm_s, attention_s; } tk_op_times;
tk_op_times tk_op_times_get(void);
void tk_op_times_reset(void);
/* For dispatchers: brackets one op; t0 from begin goes to end, attention=false counts it as a product. Per thread. */
double tk_op_time_begin(void);
void tk_op_time_end(double t0, bool attention);
/* Plain f32 sgemm: C[M x N] = alpha * op(A) · op(B) + beta * C, row-major. */
void tk_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* y[i] = exp(x[i] - shift) (x may alias y); returns the sum of the y[i]. */
float tk_vexp_sum(float *y, const float *x, float shift, int64_t n);

/* For backends' entries: the argument checks every backend makes, with the same messages. Thread-safe.
 * tk_matmul_check: W non-NULL, [N x K] non-empty, a float or quantized dtype with a dequantizer, its bytes
 * covering N rows; T >= 0. Gives W's row stride in bytes. */
tk_status tk_matmul_check(const tk_tensor_ref *w, int64_t T, size_t *row_bytes);
/* tk_embedding_check: non-NULL buffers, T >= 0, a table whose bytes hold its V rows, every id in [0, V)
 * (TK_ERR_RANGE naming the id). Gives the table's row stride in bytes. */
tk_status tk_embedding_check(const float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table, size_t *row_bytes);
#endif
