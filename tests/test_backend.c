/* The backend table (src/backend/backend.h): the CPU backend is built, first and active by
 * default; the built list is the Makefile's BACKENDS (-DTK_BACKEND_<NAME>); selection by name at
 * run time (unknown names refused with the built list); every entry (buffers, matmuls, attention
 * and elementwise kernels) is filled; buffers round-trip through the active backend; the
 * dispatchers reach the selected backend (tk_matmul_ex and tk_vexp_sum equal its entries called
 * directly, bit for bit); tk_op_times splits the calling thread's time into products and attention
 * (attention's own products counted as attention). */
#include "test.h"
#include "backend/backend.h"
#include "ops/ops.h"
#include "backend/cpu/kernels.h"
#include "core/core.h"

int main(void) {
    int nb = 0;
    const tk_backend *const *bs = tk_backends(&nb);
    CHECK(nb >= 1, "%d backends built", nb);
    CHECK(!strcmp(bs[0]->name, "cpu"), "the CPU backend comes first");
    CHECK(!strcmp(tk_backend_active()->name, getenv("TAKUMI_BACKEND") ? getenv("TAKUMI_BACKEND") : "cpu"),
          "active by default: %s", tk_backend_active()->name);
    int want = 1; /* the build switches: each backend in BACKENDS is in the list */
#if TK_BACKEND_REF
    want++;
    CHECK(nb > 1 && !strcmp(bs[1]->name, "ref"), "BACKENDS lists ref: it is built, after the CPU");
#endif
    CHECK(nb == want, "%d backends built, the build switches say %d", nb, want);
    for (int i = 0; i < nb; i++) {
        const tk_backend *b = bs[i];
        CHECK(b->name && b->detail && b->alloc && b->free && b->to_device && b->to_host && b->matmul && b->matmul_multi &&
              b->matmul_dx && b->matmul_dw && b->sgemm && b->vexp_sum && b->embedding_fwd && b->embedding_bwd && b->rmsnorm_fwd &&
              b->rmsnorm_bwd && b->rope_fwd && b->rope_bwd && b->attention_fwd && b->attention_bwd && b->swiglu_fwd && b->swiglu_bwd &&
              b->geglu_fwd && b->geglu_bwd, "backend %s fills every entry", b->name);
        CHECK_OK(tk_backend_select(b->name));
        CHECK(tk_backend_active() == b, "%s selected", b->name);
        /* buffers */
        float host[100], back[100];
        for (int j = 0; j < 100; j++) host[j] = (float)j * 0.5f - 7.0f;
        float *dev = tk_backend_alloc(sizeof host);
        CHECK(dev != NULL, "%s: alloc", b->name);
        if (dev) {
            tk_backend_to_device(dev, host, sizeof host);
            memset(back, 0, sizeof back);
            tk_backend_to_host(back, dev, sizeof host);
            CHECK(!memcmp(host, back, sizeof host), "%s: buffers round-trip", b->name);
            tk_backend_free(dev);
        }
    }
    /* the dispatchers reach the selected backend's entries */
    enum { T = 5, K = 64, N = 7 };
    float x[T * K], w[N * K], y1[T * N], y2[T * N];
    tk_rng rng;
    tk_rng_seed(&rng, 3);
    for (int i = 0; i < T * K; i++) x[i] = tk_rng_normal(&rng);
    for (int i = 0; i < N * K; i++) w[i] = tk_rng_normal(&rng);
    tk_tensor_ref wr = {.name = "w", .dtype = TK_F32, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = sizeof w};
    for (int i = 0; i < nb; i++) {
        CHECK_OK(tk_backend_select(bs[i]->name));
        CHECK_OK(tk_matmul_ex(y1, x, &wr, T, false, TK_MATMUL_EXACT));
        CHECK_OK(bs[i]->matmul(y2, x, &wr, T, false, TK_MATMUL_EXACT));
        CHECK(!memcmp(y1, y2, sizeof y1), "tk_matmul_ex dispatches to the %s entry", bs[i]->name);
        float s1 = tk_vexp_sum(y1, x, 1.0f, T * N), s2 = bs[i]->vexp_sum(y2, x, 1.0f, T * N);
        CHECK(s1 == s2 && !memcmp(y1, y2, sizeof y1), "tk_vexp_sum dispatches to the %s entry", bs[i]->name);
    }
    CHECK_OK(tk_backend_select("cpu"));
    CHECK_OK(tk_cpu_matmul(y2, x, &wr, T, false, TK_MATMUL_EXACT));
    CHECK_OK(tk_matmul_ex(y1, x, &wr, T, false, TK_MATMUL_EXACT));
    CHECK(!memcmp(y1, y2, sizeof y1), "the CPU table holds the CPU kernels");
    /* tk_op_times: products count as products, attention (and the products inside it) as attention */
    tk_op_times_reset();
    tk_op_times o0 = tk_op_times_get();
    CHECK(o0.gemm_s == 0 && o0.attention_s == 0, "op times after a reset: %g %g", o0.gemm_s, o0.attention_s);
    for (int r = 0; r < 50; r++) CHECK_OK(tk_matmul(y1, x, &wr, T, false));
    tk_op_times o1 = tk_op_times_get();
    CHECK(o1.gemm_s > 0 && o1.attention_s == 0, "50 products: gemm %g s, attention %g s", o1.gemm_s, o1.attention_s);
    {
        enum { AT = 48, AH = 2, AD = 16 };
        static float q[AT * AH * AD], k[AT * AH * AD], v[AT * AH * AD], out[AT * AH * AD];
        int32_t pos[AT];
        for (int i = 0; i < AT; i++) pos[i] = i;
        for (int i = 0; i < AT * AH * AD; i++) { q[i] = tk_rng_normal(&rng); k[i] = tk_rng_normal(&rng); v[i] = tk_rng_normal(&rng); }
        tk_attn_args aa = {.Tq = AT, .S = AT, .H = AH, .KH = AH, .D = AD, .pos_q = pos, .pos_k = pos, .scale = 0.25f};
        for (int r = 0; r < 20; r++) CHECK_OK(tk_attention_forward(out, NULL, q, k, v, &aa));
    }
    tk_op_times o2 = tk_op_times_get();
    CHECK(o2.attention_s > 0 && o2.gemm_s == o1.gemm_s, "attention: %g s, products unchanged (%g -> %g)", o2.attention_s,
          o1.gemm_s, o2.gemm_s);
    tk_op_times_reset();
    CHECK(tk_op_times_get().gemm_s == 0 && tk_op_times_get().attention_s == 0, "reset clears the op times");
    /* unknown names are refused, naming the built ones; the active backend stays */
    CHECK(tk_backend_select("tpu") == TK_ERR_NOT_FOUND, "an unknown backend is refused");
    CHECK(strstr(tk_last_error(), "tpu") && strstr(tk_last_error(), "cpu"), "message: %s", tk_last_error());
    CHECK(tk_backend_select(NULL) == TK_ERR_NOT_FOUND, "NULL refused");
    CHECK(!strcmp(tk_backend_active()->name, "cpu"), "the CPU stays active");
    return tk_test_done("test_backend");
}
