/* The built-in GEMM kernels behind tk_sgemm, selected at run time from CPUID.
 * Each variant is a register-blocked micro-kernel (MR x NR fp32 accumulators) with its packing
 * format; one cache-blocked driver (sgemm.c) runs any of them. Every variant is compiled into
 * every x86-64 build with per-function target attributes and is run only where the CPU has its
 * instructions. tests/test_kernels.c checks each against a double-precision reference. */
#ifndef TK_BACKEND_CPU_SGEMM_H
#define TK_BACKEND_CPU_SGEMM_H
#include "takumi/core.h"

typedef struct tk_sgemm_kernel {
    const char *name;   /* "scalar", "avx2", "avx512", "avx512bf16" */
    const char *lacks;  /* the message when the CPU cannot run it ("CPU lacks avx512f+avx512bf16") */
    int mr, nr, kc, mc; /* register tile, K block, row block (a multiple of mr) */
    bool bf16;          /* inputs rounded to bf16 when packed (fp32 accumulation) */
    /* C[h x w] += alpha * (packed A panel times packed B panel), h <= mr, w <= nr, kc steps as packed
     * (even for bf16); C row-major with leading dimension ldc. */
    void (*micro)(int64_t kc, const void *a, const void *b, float *C, int64_t ldc, float alpha, int h, int w);
    /* Packs op(B)[k0:k0+kc, j0:j0+w] (w <= nr, zero-padded to nr) into dst. */
    void (*pack_b)(void *dst, const float *B, bool trans_b, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t w);
    /* Packs op(A)[i0:i0+h, k0:k0+kc] (h <= mr, zero-padded to mr) into dst. */
    void (*pack_a)(void *dst, const float *A, bool trans_a, int64_t lda, int64_t i0, int64_t k0, int64_t kc, int64_t h);
    bool (*cpu_has)(void); /* run-time CPUID check */
} tk_sgemm_kernel;

/* Every variant, plainest first; *n gets the count. Thread-safe (constant table). */
const tk_sgemm_kernel *tk_sgemm_kernels(int *n);
/* The variant called name, or NULL. Thread-safe. */
const tk_sgemm_kernel *tk_sgemm_kernel_find(const char *name);
/* NULL when this CPU can run k, else why not ("CPU lacks avx512f+avx512bf16"). Thread-safe. */
const char *tk_sgemm_kernel_unsupported(const tk_sgemm_kernel *k);

/* tk_sgemm's contract (C = alpha op(A) op(B) + beta C, row-major) through the built-in driver with
 * variant k, which the CPU must run (tk_sgemm_kernel_unsupported(k) == NULL). Threads with OpenMP
 * unless called inside a parallel region. Thread-safe. */
void tk_sgemm_with(const tk_sgemm_kernel *k, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* The variant tk_cpu_sgemm runs (chosen once: TK_KERNEL=scalar|avx2|avx512|avx512bf16|blas if set and
 * runnable, else the rule in sgemm.c); NULL when it runs OpenBLAS. Thread-safe. */
const tk_sgemm_kernel *tk_sgemm_kernel_active(void);
/* Name of what tk_cpu_sgemm runs: a variant's name or "openblas". Thread-safe. */
const char *tk_sgemm_active_name(void);

/* True when tk_sgemm_bf16 can run here (the CPU has AVX512-BF16). Thread-safe. */
bool tk_sgemm_bf16_available(void);
/* tk_sgemm's contract with A and B rounded to bf16 (round to nearest even) and fp32 accumulation:
 * each element of C is within about K * 2^-8 * sum|a||b| of the fp32 product. For mixed-precision
 * paths only; never the default fp32 path. TK_ERR_UNSUPPORTED (message set) when the CPU lacks
 * AVX512-BF16. Thread-safe. */
tk_status tk_sgemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
#endif
