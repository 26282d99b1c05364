/* The list of built backends, run-time selection and the dispatchers (see backend.h). */
#include "backend/backend.h"
#include "core/core.h"
#include "core/quant.h"
#include <stdio.h>
#include <stdlib.h>

/* Each backend in the Makefile's BACKENDS is compiled with -DTK_BACKEND_<NAME>=1 and listed here. */
#if !TK_BACKEND_CPU
#error "the CPU backend is required: build with the Makefile (BACKENDS must list cpu)"
#endif
extern const tk_backend tk_cpu_backend;
#if TK_BACKEND_REF
extern const tk_backend tk_ref_backend;
#endif

static const tk_backend *const k_built[] = {
    &tk_cpu_backend,
#if TK_BACKEND_REF
    &tk_ref_backend,
#endif
    /* BACKENDS="cpu cuda" would add &tk_cuda_backend here (src/backend/cuda/, not written yet) */
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

/* tk_op_times: per thread; only the outermost timed op counts (attention's own sgemm calls are attention) */
static _Thread_local tk_op_times g_times;
static _Thread_local int g_depth;
double tk_op_time_begin(void) { return g_depth++ ? 0.0 : tk_time_s(); }
void tk_op_time_end(double t0, bool attention) {
    if (--g_depth) return;
    double dt = tk_time_s() - t0;
    if (attention) g_times.attention_s += dt;
    else g_times.gemm_s += dt;
}
tk_op_times tk_op_times_get(void) { return g_times; }
void tk_op_times_reset(void) { memset(&g_times, 0, sizeof g_times); }

tk_status tk_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate) {
    double t0 = tk_op_time_begin();
    tk_status st = BE->matmul(y, x, w, T, accumulate, 0);
    tk_op_time_end(t0, false);
    return st;
}
tk_status tk_matmul_ex(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags) {
    double t0 = tk_op_time_begin();
    tk_status st = BE->matmul(y, x, w, T, accumulate, flags);
    tk_op_time_end(t0, false);
    return st;
}
tk_status tk_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags) {
    double t0 = tk_op_time_begin();
    tk_status st = BE->matmul_multi(y, x, w, n, T, flags);
    tk_op_time_end(t0, false);
    return st;
}
tk_status tk_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate) {
    double t0 = tk_op_time_begin();
    tk_status st = BE->matmul_dx(dx, dy, w, T, accumulate);
    tk_op_time_end(t0, false);
    return st;
}
void tk_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K) {
    double t0 = tk_op_time_begin();
    BE->matmul_dw(dw, dy, x, T, N, K);
    tk_op_time_end(t0, false);
}
void tk_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    double t0 = tk_op_time_begin();
    BE->sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    tk_op_time_end(t0, false);
}
tk_status tk_matmul_set_precision(bool bf16) {
    if (BE->set_precision) return BE->set_precision(bf16);
    return bf16 ? tk_fail(TK_ERR_UNSUPPORTED, "bf16 products: the %s backend has fp32 only", BE->name) : TK_OK;
}
float tk_vexp_sum(float *y, const float *x, float shift, int64_t n) { return BE->vexp_sum(y, x, shift, n); }

tk_status tk_matmul_check(const tk_tensor_ref *w, int64_t T, size_t *row_bytes) {
    if (!w || !w->data) return tk_fail(TK_ERR_ARG, "matmul: NULL weight");
    const char *name = w->name ? w->name : "weight";
    if (T < 0) return tk_fail(TK_ERR_ARG, "matmul %s: negative row count", name);
    int64_t K = w->ne[0], N = w->ne[1];
    if (K <= 0 || N <= 0) return tk_fail(TK_ERR_ARG, "matmul %s: empty weight [%lld x %lld]", name, (long long)N, (long long)K);
    bool is_int = w->dtype == TK_I8 || w->dtype == TK_I16 || w->dtype == TK_I32 || w->dtype == TK_I64;
    if (is_int || (w->dtype != TK_F32 && !tk_dequant_row_fn_for(w->dtype)))
        return tk_fail(TK_ERR_UNSUPPORTED, "matmul %s: no kernel for dtype %s", name, tk_dtype_name(w->dtype));
    tk_status st = tk_dtype_nbytes(w->dtype, K, row_bytes);
    if (st) return tk_fail_ctx(st, "matmul %s: ", name);
    size_t total;
    if (!tk_mul_ok(*row_bytes, (size_t)N, &total)) return tk_fail(TK_ERR_NOMEM, "matmul %s: size overflows", name);
    if (w->nbytes && w->nbytes < total)
        return tk_fail(TK_ERR_FORMAT, "matmul %s: %zu bytes of data for [%lld x %lld] %s", name, w->nbytes,
                       (long long)N, (long long)K, tk_dtype_name(w->dtype));
    return TK_OK;
}

tk_status tk_embedding_check(const float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table, size_t *row_bytes) {
    if (!out || !ids || !table || !table->data || T < 0) return tk_fail(TK_ERR_ARG, "embedding: NULL argument or negative T");
    int64_t C = table->ne[0], V = table->ne[1];
    tk_status st = tk_dtype_nbytes(table->dtype, C, row_bytes);
    if (st) return tk_fail_ctx(st, "embedding table %s: ", table->name ? table->name : "?");
    if (V <= 0 || (table->nbytes && (size_t)V > table->nbytes / (*row_bytes ? *row_bytes : 1)))
        return tk_fail(TK_ERR_FORMAT, "embedding table %s: %lld rows do not fit in %zu bytes",
                       table->name ? table->name : "?", (long long)V, table->nbytes);
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= V)
            return tk_fail(TK_ERR_RANGE, "embedding: token id %d at position %lld is outside [0, %lld)",
                           (int)ids[t], (long long)t, (long long)V);
    return TK_OK;
}
