/* The CPU backend's table (see src/backend/backend.h): host memory, the matmul strategies of
 * src/backend/cpu/matmul.c, OpenBLAS (or the built-in blocked kernel) for sgemm, and the
 * attention / elementwise kernels of src/backend/cpu/. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "core/core.h"

static void *cpu_alloc(size_t bytes) {
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

const tk_backend tk_cpu_backend = {
    .name = "cpu",
#ifdef TK_HAVE_BLAS
    .detail = "host memory, OpenBLAS sgemm, fused dequantizing kernels",
#else
    .detail = "host memory, built-in blocked sgemm, fused dequantizing kernels",
#endif
    .alloc = cpu_alloc,
    .free = free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .matmul = tk_cpu_matmul,
    .matmul_multi = tk_cpu_matmul_multi,
    .matmul_dx = tk_cpu_matmul_dx,
    .matmul_dw = tk_cpu_matmul_dw,
    .sgemm = tk_cpu_sgemm,
    .set_precision = tk_cpu_set_precision,
    .vexp_sum = tk_cpu_vexp_sum,
    .embedding_fwd = tk_cpu_embedding_forward,
    .embedding_bwd = tk_cpu_embedding_backward,
    .rmsnorm_fwd = tk_cpu_rmsnorm_forward,
    .rmsnorm_bwd = tk_cpu_rmsnorm_backward,
    .rope_fwd = tk_cpu_rope_forward,
    .rope_bwd = tk_cpu_rope_backward,
    .attention_fwd = tk_cpu_attention_forward,
    .attention_bwd = tk_cpu_attention_backward,
    .swiglu_fwd = tk_cpu_swiglu_forward,
    .swiglu_bwd = tk_cpu_swiglu_backward,
    .geglu_fwd = tk_cpu_geglu_forward,
    .geglu_bwd = tk_cpu_geglu_backward,
};
