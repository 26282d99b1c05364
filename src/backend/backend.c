/* The list of built backends, run-time selection and the dispatchers (see backend.h). */
#include "backend/backend.h"
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>

extern const tk_backend tk_cpu_backend;

static const tk_backend *const k_built[] = {
    &tk_cpu_backend,
    /* CUDA=1 builds add &tk_cuda_backend here (src/backend/cuda/, not written yet) */
};
#define N_BUILT ((int)(sizeof k_built / sizeof k_built[0]))

static const tk_backend *g_active; /* NULL until first use */

const tk_backend *const *tk_backends(int *n) {
    *n = N_BUILT;
    return k_built;
}

static const tk_backend *find(const char *name) {
    for (int i = 0; i < N_BUILT; i++)
        if (!strcmp(k_built[i]->name, name)) return k_built[i];
    return NULL;
}

const tk_backend *tk_backend_active(void) {
    const tk_backend *b = __atomic_load_n(&g_active, __ATOMIC_ACQUIRE);
    if (b) return b;
    const char *env = getenv("TAKUMI_BACKEND");
    b = env && *env ? find(env) : NULL;
    if (!b) b = k_built[0]; /* an unknown name in the environment falls back to the CPU (tk_backend_select reports it) */
    __atomic_store_n(&g_active, b, __ATOMIC_RELEASE);
    return b;
}

tk_status tk_backend_select(const char *name) {
    const tk_backend *b = name ? find(name) : NULL;
    if (!b) {
        char list[256] = "";
        size_t k = 0;
        for (int i = 0; i < N_BUILT && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", k_built[i]->name);
        return tk_fail(TK_ERR_NOT_FOUND, "backend '%s' is not built in (built: %s)", name ? name : "(null)", list);
    }
    __atomic_store_n(&g_active, b, __ATOMIC_RELEASE);
    return TK_OK;
}

#define BE tk_backend_active()

void *tk_backend_alloc(size_t bytes) { return BE->alloc(bytes); }
void tk_backend_free(void *p) { BE->free(p); }
void tk_backend_to_device(void *dst, const void *src, size_t bytes) { BE->to_device(dst, src, bytes); }
void tk_backend_to_host(void *dst, const void *src, size_t bytes) { BE->to_host(dst, src, bytes); }

tk_status tk_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate) {
    return BE->matmul(y, x, w, T, accumulate, 0);
}
tk_status tk_matmul_ex(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags) {
    return BE->matmul(y, x, w, T, accumulate, flags);
}
tk_status tk_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags) {
    return BE->matmul_multi(y, x, w, n, T, flags);
}
tk_status tk_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate) {
    return BE->matmul_dx(dx, dy, w, T, accumulate);
}
void tk_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K) { BE->matmul_dw(dw, dy, x, T, N, K); }
void tk_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    BE->sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
float tk_vexp_sum(float *y, const float *x, float shift, int64_t n) { return BE->vexp_sum(y, x, shift, n); }
