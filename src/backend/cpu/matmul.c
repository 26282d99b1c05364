/* The CPU backend's matmuls (tk_matmul and friends dispatch here): y = x·W^T for weights of any dtype, never expanding a
 * half/quantized W whole. Three strategies:
 *   f32 W           -> one sgemm (BLAS threads it);
 *   few rows (T<8, or any T with TK_MATMUL_ROWWISE)
 *                   -> row-parallel dots, W read once from its storage: fused int8
 *                      kernels for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q6_K (x quantized to 32-blocks,
 *                      as llama.cpp does; from 2 rows each weight row against all of them
 *                      at once, tk_cpu_qdot_rows) unless TK_MATMUL_EXACT; exact fused f32
 *                      kernels (dequantization in registers) for Q4_0/Q4_1/Q8_0/F16/
 *                      BF16/F32; dequantize-a-row + f32 dot for the rest;
 *   many rows       -> W up to 16 MiB as f32: dequantized whole (threads split the
 *                      rows), then one sgemm (x packed once); larger W: panels of W
 *                      rows dequantized into a per-thread scratch that fits in L2, each
 *                      followed by a single-threaded sgemm; threads split the panels
 *                      (one OpenMP pool: BLAS never nests).
 * The backward dx = dy·W uses the same panels, split over column stripes of W so
 * threads write disjoint parts of dx.
 * Precision (tk_matmul_set_precision): with bf16 on, every sgemm above (dx and dW included) runs
 * tk_sgemm_bf16 (inputs rounded to bf16, fp32 sums), TK_MATMUL_EXACT calls included (the training
 * step's); the few-row dots never change. TK_MATMUL_BF16 (inference prefill) does the same for one
 * forward call's sgemms, never with TK_MATMUL_EXACT. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm.h"
#include "core/core.h"
#include "core/quant.h"
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#endif

#define TK_SMALL_T 8
#define TK_PANEL_FLOATS (48 * 1024) /* 192 KiB of f32 per panel: stays in L2 beside the x tile */

static int g_force_path = 0;
void tk_cpu_matmul_force_path(int path) { g_force_path = path; }

/* tk_matmul_set_precision: per calling thread (a training job's bf16 does not reach a server's
 * completions on other threads); read once per product by the thread that calls it, before any
 * parallel region, so OpenMP workers need no copy. */
static _Thread_local int g_bf16 = 0;
tk_status tk_cpu_set_precision(int bf16) {
    const tk_sgemm_kernel *k = tk_sgemm_kernel_find("avx512bf16");
    const char *no = getenv("TK_NO_BF16");
    const char *why = no && *no && strcmp(no, "0") ? "TK_NO_BF16 is set (AVX512-BF16 treated as absent)"
                      : k ? tk_sgemm_kernel_unsupported(k) : "this build has no bf16 kernel (x86 only)";
    if (bf16 && why) return tk_fail(TK_ERR_UNSUPPORTED, "bf16 products: %s", why);
    g_bf16 = bf16 ? 1 : 0;
    return TK_OK;
}
static bool bf16_on(void) { return g_bf16; }
/* bf16 products for this call: the global precision, or TK_MATMUL_BF16 without TK_MATMUL_EXACT on a weight of an
 * int8-kernel dtype (the quantized types of the fast precision) where the CPU runs it. */
static bool bf16_for(int flags, tk_dtype dt) {
    if (bf16_on()) return true;
    if ((flags & (TK_MATMUL_BF16 | TK_MATMUL_EXACT)) != TK_MATMUL_BF16 || !tk_cpu_has_qdot(dt)) return false;
    static int avail = -1; /* every thread computes the same value */
    int a = __atomic_load_n(&avail, __ATOMIC_RELAXED);
    if (a < 0) __atomic_store_n(&avail, a = tk_sgemm_bf16_available(), __ATOMIC_RELAXED);
    return a;
}

/* tk_cpu_sgemm, or tk_sgemm_bf16 when bf16 (tk_cpu_set_precision checked that the CPU runs it). */
static void mm_sgemm(bool bf16, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (!bf16 || tk_sgemm_bf16(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc))
        tk_cpu_sgemm(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

tk_status tk_cpu_dequant_row(tk_dtype t, const void *src, float *dst, int64_t n) {
    if (t == TK_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return TK_OK;
    }
    tk_dequant_row_fn f = tk_dequant_row_fn_for(t);
    if (!f) return tk_fail(TK_ERR_UNSUPPORTED, "no dequantizer for dtype %s", tk_dtype_name(t));
    f(src, dst, n);
    return TK_OK;
}

/* Whole-weight strategy for many rows (training, long prefill chunks): W is dequantized
 * once into one f32 buffer (threads split the rows) and a single sgemm does the product,
 * so BLAS packs x once per product instead of once per panel — with T x K of x larger
 * than L2, re-packing x for every panel cost ~15% of a LoRA step. Used when W expands to
 * at most TK_WHOLE_MAX floats (every Llama linear of small models; never the LM head of a
 * large vocabulary, which stays on panels); the buffer is malloc'd per call (glibc keeps
 * a freed block of this size for the next call, so no page faults in steady state). */
#define TK_WHOLE_MIN_T 32
#define TK_WHOLE_MAX ((int64_t)4 << 20) /* 16 MiB of f32 */
static bool use_whole(int64_t T, int64_t N, int64_t K) {
    if (g_force_path) return g_force_path == 4;
    return T >= TK_WHOLE_MIN_T && N * K <= TK_WHOLE_MAX;
}
static float *dequant_whole(const tk_tensor_ref *w, size_t row_bytes) {
    int64_t K = w->ne[0], N = w->ne[1];
    float *wf = malloc((size_t)N * (size_t)K * sizeof(float));
    if (!wf) return NULL;
    tk_dequant_row_fn deq = tk_dequant_row_fn_for(w->dtype);
    const uint8_t *W = w->data;
    #pragma omp parallel for schedule(static) if (N * K > 65536)
    for (int64_t n = 0; n < N; n++) deq(W + (size_t)n * row_bytes, wf + n * K, K);
    return wf;
}

/* Rows per panel: the panel fits in L2 (TK_PANEL_FLOATS) and the panel count is a multiple
 * of the thread count, so threads finish together. */
static int64_t panel_rows(int64_t K, int64_t N) {
    int64_t nr = TK_PANEL_FLOATS / K;
    if (nr < 8) nr = 8;
    int64_t nt = tk_get_threads(), np = (N + nr - 1) / nr;
    np = (np + nt - 1) / nt * nt;
    nr = (N + np - 1) / np;
    nr = (nr + 7) / 8 * 8;
    return nr > 0 ? nr : 8;
}

/* y[T x N] (+)= x · W^T by panels: dequantize W[n0:n0+nr, :] then sgemm. */
static tk_status matmul_panels(float *y, const float *x, const tk_tensor_ref *w, size_t row_bytes, int64_t T, bool acc, bool bf16) {
    int64_t K = w->ne[0], N = w->ne[1], nr = panel_rows(K, N), np = (N + nr - 1) / nr;
    tk_dequant_row_fn deq = tk_dequant_row_fn_for(w->dtype);
    const uint8_t *W = w->data;
    tk_status err = TK_OK;
    #pragma omp parallel
    {
        float *panel = malloc((size_t)nr * K * sizeof(float));
        if (!panel) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t p = 0; p < np; p++) {
            if (!panel) continue;
            int64_t n0 = p * nr, rows = N - n0 < nr ? N - n0 : nr;
            for (int64_t r = 0; r < rows; r++) deq(W + (size_t)(n0 + r) * row_bytes, panel + r * K, K);
            mm_sgemm(bf16, false, true, T, rows, K, x, K, panel, K, acc ? 1.0f : 0.0f, y + n0, N);
        }
        free(panel);
    }
    return err ? tk_fail(err, "matmul %s: out of memory for a %lld x %lld panel", w->name ? w->name : "weight",
                         (long long)nr, (long long)K) : TK_OK;
}

/* y[t * N + n] (+)= W[n] · x_t for weight rows n in [n0, n1) (row stride rb bytes) and the T prepared
 * activation rows (tk_cpu_fdot_prepare: xp [T x K], sums [T x K/32]). Four activation rows (in L1) per
 * pass over the weight rows (a chunk that stays in L2); each value as one tk_cpu_fdot would give it. */
static void fdot_block(tk_dtype dt, const uint8_t *W, size_t rb, int64_t n0, int64_t n1, const float *xp, const float *sums,
                       int64_t K, int64_t T, float *y, int64_t N, bool acc) {
    int64_t t = 0, nb = K / 32;
    for (; t + 4 <= T; t += 4)
        for (int64_t n = n0; n < n1; n++) {
            float v[4];
            tk_cpu_fdot4(dt, W + (size_t)n * rb, xp + t * K, K, sums + t * nb, nb, K, v);
            for (int j = 0; j < 4; j++) y[(t + j) * N + n] = acc ? y[(t + j) * N + n] + v[j] : v[j];
        }
    for (; t < T; t++)
        for (int64_t n = n0; n < n1; n++) {
            float v = tk_cpu_fdot(dt, W + (size_t)n * rb, xp + t * K, sums + t * nb, K);
            y[t * N + n] = acc ? y[t * N + n] + v : v;
        }
}

/* y[t * N + n] (+)= W[n] · x_t for weight rows n in [n0, n1) and the T quantized activation rows xq [T x K/32]: from
 * T = 2 each weight row against all T rows by tk_cpu_qdot_rows (its blocks unpacked once per group of rows), each value as one
 * tk_cpu_qdot would give it. The values of 16 weight rows are gathered first, then written as 16 consecutive floats
 * per activation row: y's rows are N floats apart, often a multiple of 4 KiB (the LM head's 49152), and writing one
 * float to each of T such rows per weight row made them evict each other from L1 (same set). */
#define TK_QDOT_ROWS_MAX 64
#define TK_QDOT_NBLK 16
static void qdot_block(tk_dtype dt, const uint8_t *W, size_t rb, int64_t n0, int64_t n1, const tk_q8x *xq, int64_t K, int64_t T,
                       float *y, int64_t N, bool acc) {
    if (T == 1) { /* one row (a session's decode): the one-row dot, 5-10% faster there than the multi-row form */
        for (int64_t n = n0; n < n1; n++) {
            float v = tk_cpu_qdot(dt, W + (size_t)n * rb, xq, K);
            y[n] = acc ? y[n] + v : v;
        }
        return;
    }
    float v[TK_QDOT_ROWS_MAX], tile[TK_QDOT_ROWS_MAX * TK_QDOT_NBLK];
    const int64_t kb = K / 32;
    for (int64_t t0 = 0; t0 < T; t0 += TK_QDOT_ROWS_MAX) {
        int64_t tn = T - t0 < TK_QDOT_ROWS_MAX ? T - t0 : TK_QDOT_ROWS_MAX;
        for (int64_t b0 = n0; b0 < n1; b0 += TK_QDOT_NBLK) {
            int64_t bn = n1 - b0 < TK_QDOT_NBLK ? n1 - b0 : TK_QDOT_NBLK;
            for (int64_t j = 0; j < bn; j++) {
                tk_cpu_qdot_rows(dt, W + (size_t)(b0 + j) * rb, xq + t0 * kb, kb, K, tn, v);
                for (int64_t t = 0; t < tn; t++) tile[t * TK_QDOT_NBLK + j] = v[t];
            }
            for (int64_t t = 0; t < tn; t++) {
                float *yr = y + (t0 + t) * N + b0;
                const float *vr = tile + t * TK_QDOT_NBLK;
                for (int64_t j = 0; j < bn; j++) yr[j] = acc ? yr[j] + vr[j] : vr[j];
            }
        }
    }
}

/* Few rows: each thread takes a range of output rows and reads each W row once, straight
 * from its storage. Kernels, by preference: int8 (x quantized to 32-blocks, as llama.cpp;
 * not when exact), exact fused f32 (dequantization in registers), or dequantize the row
 * into a buffer and dot it. */
static tk_status matmul_rows(float *y, const float *x, const tk_tensor_ref *w, size_t row_bytes, int64_t T, bool acc,
                             bool allow_int8) {
    int64_t K = w->ne[0], N = w->ne[1];
    const uint8_t *W = w->data;
    tk_dtype dt = w->dtype;
    int kind = allow_int8 && tk_cpu_has_qdot(dt) && K % 32 == 0 ? 1 : tk_cpu_has_fdot(dt) && K % 32 == 0 ? 2 : 3;
    tk_q8x *xq = NULL;
    float *xs = NULL;
    if (kind == 1) {
        xq = tk_malloc((size_t)T * (K / 32) * sizeof(tk_q8x));
        if (!xq) return TK_ERR_NOMEM;
        for (int64_t t = 0; t < T; t++) tk_cpu_quantize_q8x(x + t * K, xq + t * (K / 32), K);
    } else if (kind == 2) {
        /* [T x K] x in the kernel's order, then [T x K/32] block sums */
        xs = tk_malloc((size_t)T * (K + K / 32) * sizeof(float));
        if (!xs) return TK_ERR_NOMEM;
        for (int64_t t = 0; t < T; t++) tk_cpu_fdot_prepare(dt, x + t * K, xs + t * K, xs + T * K + t * (K / 32), K);
    }
    tk_dequant_row_fn deq = dt == TK_F32 ? NULL : tk_dequant_row_fn_for(dt);
    tk_status err = TK_OK;
    /* Dynamic chunks of rows: a thread that the OS descheduled does not hold the others at
     * the barrier (2-core machines shared with other work), at the cost of one atomic per chunk. */
    int64_t chunk = N / (16 * (int64_t)tk_get_threads());
    if (chunk < 8) chunk = 8;
    #pragma omp parallel if (N * K > 16384)
    {
        float *row = kind == 3 ? malloc((size_t)K * sizeof(float)) : NULL;
        if (kind == 3 && !row) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < N; c += chunk) {
            int64_t c1 = N - c < chunk ? N : c + chunk;
            if (kind == 2) {
                fdot_block(dt, W, row_bytes, c, c1, xs, xs + T * K, K, T, y, N, acc);
                continue;
            }
            if (kind == 1) {
                qdot_block(dt, W, row_bytes, c, c1, xq, K, T, y, N, acc);
                continue;
            }
            for (int64_t n = c; n < c1 && row; n++) {
                const void *wr = W + (size_t)n * row_bytes;
                const float *wf = deq ? row : (const float *)wr;
                if (deq) deq(wr, row, K);
                for (int64_t t = 0; t < T; t++) {
                    const float *xt = x + t * K;
                    float s = 0;
                    #pragma omp simd reduction(+ : s)
                    for (int64_t k = 0; k < K; k++) s += wf[k] * xt[k];
                    y[t * N + n] = acc ? y[t * N + n] + s : s;
                }
            }
        }
        free(row);
    }
    free(xq);
    free(xs);
    return err ? tk_fail(err, "matmul: out of memory") : TK_OK;
}

/* Several few-row products sharing x in ONE parallel region (decode: q/k/v, gate/up):
 * the rows of all weights form one index space split in dynamic chunks, so a token pays
 * one fork/join for the group instead of one per linear. Same kernels and per-row
 * arithmetic as matmul_rows (results are bit-identical to separate calls). */
#define TK_MULTI_MAX 4
static tk_status matmul_rows_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, const size_t *row_bytes,
                                   int n, int64_t T, bool allow_int8) {
    int64_t K = w[0]->ne[0], base[TK_MULTI_MAX + 1] = {0};
    int kind[TK_MULTI_MAX];
    tk_q8x *xq = NULL;
    float *xp[TK_MULTI_MAX] = {0};
    tk_status err = TK_OK;
    for (int i = 0; i < n; i++) {
        tk_dtype dt = w[i]->dtype;
        kind[i] = allow_int8 && tk_cpu_has_qdot(dt) ? 1 : 2; /* callers checked: fdot or qdot exists, K % 32 == 0 */
        base[i + 1] = base[i] + w[i]->ne[1];
        if (kind[i] == 1 && !xq) {
            xq = tk_malloc((size_t)T * (K / 32) * sizeof(tk_q8x));
            if (!xq) { err = TK_ERR_NOMEM; goto out; }
            for (int64_t t = 0; t < T; t++) tk_cpu_quantize_q8x(x + t * K, xq + t * (K / 32), K);
        } else if (kind[i] == 2) {
            xp[i] = tk_malloc((size_t)T * (K + K / 32) * sizeof(float));
            if (!xp[i]) { err = TK_ERR_NOMEM; goto out; }
            for (int64_t t = 0; t < T; t++) tk_cpu_fdot_prepare(dt, x + t * K, xp[i] + t * K, xp[i] + T * K + t * (K / 32), K);
        }
    }
    int64_t total = base[n], chunk = total / (16 * (int64_t)tk_get_threads());
    if (chunk < 8) chunk = 8;
    #pragma omp parallel for schedule(dynamic, 1) if (total * K > 16384)
    for (int64_t c = 0; c < total; c += chunk) {
        /* the chunk's rows [c, c1) of the joint index space, one weight's part at a time */
        for (int64_t r = c, c1 = total - c < chunk ? total : c + chunk; r < c1;) {
            int i = 0;
            while (r >= base[i + 1]) i++;
            int64_t e = c1 < base[i + 1] ? c1 : base[i + 1], N = w[i]->ne[1];
            const uint8_t *W = w[i]->data;
            if (kind[i] == 2) fdot_block(w[i]->dtype, W, row_bytes[i], r - base[i], e - base[i], xp[i], xp[i] + T * K, K, T, y[i], N, false);
            else qdot_block(w[i]->dtype, W, row_bytes[i], r - base[i], e - base[i], xq, K, T, y[i], N, false);
            r = e;
        }
    }
out:
    free(xq);
    for (int i = 0; i < n; i++) free(xp[i]);
    return err ? tk_fail(err, "matmul: out of memory") : TK_OK;
}

tk_status tk_cpu_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags) {
    if (n < 1 || n > TK_MULTI_MAX) return tk_fail(TK_ERR_ARG, "matmul_multi: %d weights (1..%d)", n, TK_MULTI_MAX);
    size_t rb[TK_MULTI_MAX];
    bool fused = T > 0 && (T < TK_SMALL_T || (flags & TK_MATMUL_ROWWISE)) && !g_force_path;
    for (int i = 0; i < n; i++) {
        tk_status st = tk_matmul_check(w[i], T, &rb[i]);
        if (st) return st;
        int64_t K = w[i]->ne[0];
        bool int8 = !(flags & TK_MATMUL_EXACT) && tk_cpu_has_qdot(w[i]->dtype);
        if (K != w[0]->ne[0] || K % 32 || (!int8 && !tk_cpu_has_fdot(w[i]->dtype)) || w[i]->dtype == TK_F32) fused = false;
    }
    if (!fused) { /* anything else: one product at a time, as tk_matmul_ex */
        for (int i = 0; i < n; i++) {
            tk_status st = tk_cpu_matmul(y[i], x, w[i], T, false, flags);
            if (st) return st;
        }
        return TK_OK;
    }
    return matmul_rows_multi(y, x, w, rb, n, T, !(flags & TK_MATMUL_EXACT));
}

tk_status tk_cpu_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags) {
    size_t row_bytes;
    tk_status st = tk_matmul_check(w, T, &row_bytes);
    if (st) return st;
    if (T == 0) return TK_OK;
    int64_t K = w->ne[0], N = w->ne[1];
    int path = g_force_path;
    if (!path) {
        if (flags & TK_MATMUL_ROWWISE) path = 2; /* every row as a one-row product */
        else if (w->dtype == TK_F32) path = T < 2 ? 2 : 3;
        else path = T < TK_SMALL_T ? 2 : 1;
    }
    const bool bf16 = bf16_for(flags, w->dtype);
    if (path == 3 || ((path == 1 || path == 4) && w->dtype == TK_F32)) {
        mm_sgemm(bf16, false, true, T, N, K, x, K, (const float *)w->data, K, accumulate ? 1.0f : 0.0f, y, N);
        return TK_OK;
    }
    if ((path == 1 || path == 4) && use_whole(T, N, K)) {
        float *wf = dequant_whole(w, row_bytes);
        if (wf) {
            mm_sgemm(bf16, false, true, T, N, K, x, K, wf, K, accumulate ? 1.0f : 0.0f, y, N);
            free(wf);
            return TK_OK;
        } /* out of memory for the whole weight: the panels need far less */
    }
    return path != 2 ? matmul_panels(y, x, w, row_bytes, T, accumulate, bf16)
                     : matmul_rows(y, x, w, row_bytes, T, accumulate, !(flags & TK_MATMUL_EXACT));
}

tk_status tk_cpu_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate) {
    size_t row_bytes;
    tk_status st = tk_matmul_check(w, T, &row_bytes);
    if (st) return st;
    if (T == 0) return TK_OK;
    int64_t K = w->ne[0], N = w->ne[1];
    if (w->dtype == TK_F32) {
        mm_sgemm(bf16_on(), false, false, T, K, N, dy, N, (const float *)w->data, K, accumulate ? 1.0f : 0.0f, dx, K);
        return TK_OK;
    }
    /* (The whole-weight strategy measured no better here than the stripes: each stripe
     * product already has all T rows of dy, and the stripes thread without BLAS.) */
    /* Column stripes of W (whole blocks) per task; each task walks all rows of W in panels. */
    int64_t blk = tk_dtype_block_elems(w->dtype), nblk = K / blk;
    size_t bb = tk_dtype_block_bytes(w->dtype);
    int64_t nt = tk_get_threads(), stripes = nt; /* one equal stripe per thread */
    if (stripes > nblk) stripes = nblk;
    int64_t sblk = (nblk + stripes - 1) / stripes;
    stripes = (nblk + sblk - 1) / sblk;
    int64_t kw_max = sblk * blk, nr = TK_PANEL_FLOATS / kw_max;
    if (nr < 8) nr = 8;
    if (nr > N) nr = N;
    tk_dequant_row_fn deq = tk_dequant_row_fn_for(w->dtype);
    const uint8_t *W = w->data;
    const bool bf16 = bf16_on();
    tk_status err = TK_OK;
    #pragma omp parallel if (stripes > 1)
    {
        float *panel = malloc((size_t)nr * kw_max * sizeof(float));
        if (!panel) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t s = 0; s < stripes; s++) {
            if (!panel) continue;
            int64_t b0 = s * sblk, nb = nblk - b0 < sblk ? nblk - b0 : sblk, k0 = b0 * blk, kw = nb * blk;
            for (int64_t n0 = 0; n0 < N; n0 += nr) {
                int64_t rows = N - n0 < nr ? N - n0 : nr;
                for (int64_t r = 0; r < rows; r++) deq(W + (size_t)(n0 + r) * row_bytes + (size_t)b0 * bb, panel + r * kw, kw);
                float beta = (n0 == 0 && !accumulate) ? 0.0f : 1.0f;
                mm_sgemm(bf16, false, false, T, kw, rows, dy + n0, N, panel, kw, beta, dx + k0, K);
            }
        }
        free(panel);
    }
    return err ? tk_fail(err, "matmul_dx %s: out of memory", w->name ? w->name : "weight") : TK_OK;
}

void tk_cpu_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K) {
    if (T <= 0) return;
    mm_sgemm(bf16_on(), true, false, N, K, T, dy, N, x, K, 1.0f, dw, K);
}
