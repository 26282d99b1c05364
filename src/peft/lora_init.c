/* PiSSA / OLoRA initialisation and PEFT's conversion of them to a plain LoRA (lora_init.h).
 * The SVD is LAPACK's dgesdd (OpenBLAS carries LAPACK) on a double copy of W; the QR needs
 * only its first r Householder reflections, done here in double with LAPACK's dlarfg convention
 * (beta = -sign(alpha) * ||x||, no reflection when the column below the pivot is zero), which is
 * what torch.linalg.qr (geqrf + orgqr) computes. */
#include "peft/lora_init.h"
#include "core/core.h"
#include <math.h>

#ifdef TK_HAVE_BLAS
/* LAPACK (Fortran calling convention; the trailing length is gfortran's hidden CHARACTER length) */
extern void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u, const int *ldu,
                    double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info, size_t jobz_len);
#endif

bool tk_lora_init_available(tk_lora_init init) {
#ifdef TK_HAVE_BLAS
    (void)init;
    return true;
#else
    return init != TK_LORA_INIT_PISSA;
#endif
}

tk_status tk_lora_pissa(const float *W, int64_t N, int64_t K, int64_t r, float s, float *A0, float *B0) {
    if (!W || !A0 || !B0 || N <= 0 || K <= 0 || r <= 0 || r > (N < K ? N : K) || !(s > 0))
        return tk_fail(TK_ERR_ARG, "pissa: bad arguments (%lld x %lld, rank %lld)", (long long)N, (long long)K, (long long)r);
#ifndef TK_HAVE_BLAS
    (void)s;
    return tk_fail(TK_ERR_UNSUPPORTED, "pissa: needs LAPACK's SVD: this build has no OpenBLAS (build with BLAS=1)");
#else
    if (N > INT32_MAX / 2 || K > INT32_MAX / 2 || N * K > INT32_MAX) return tk_fail(TK_ERR_ARG, "pissa: a %lld x %lld weight is too large for LAPACK",
                                                                                  (long long)N, (long long)K);
    /* row-major W [N x K] is column-major W^T [K x N] = Ul S VTl, so W = VTl^T S Ul^T:
     * W's left vectors U[n][i] = VTl[i + n mn], its right vectors Vh[i][k] = Ul[k + i K] */
    int m = (int)K, n = (int)N, mn = m < n ? m : n, info = 0, lwork = -1;
    double *a = tk_malloc((size_t)(N * K) * sizeof(double)), *sv = tk_malloc((size_t)mn * sizeof(double));
    double *u = tk_malloc((size_t)m * (size_t)mn * sizeof(double)), *vt = tk_malloc((size_t)mn * (size_t)n * sizeof(double));
    int *iwork = tk_malloc((size_t)8 * (size_t)mn * sizeof(int));
    double *work = NULL, wq = 0;
    tk_status st = TK_OK;
    if (!a || !sv || !u || !vt || !iwork) { st = tk_fail(TK_ERR_NOMEM, "pissa: out of memory for the SVD"); goto done; }
    for (int64_t i = 0; i < N * K; i++) a[i] = W[i];
    dgesdd_("S", &m, &n, a, &m, sv, u, &m, vt, &mn, &wq, &lwork, iwork, &info, 1);
    if (info) { st = tk_fail(TK_ERR_INTERNAL, "pissa: dgesdd workspace query failed (info %d)", info); goto done; }
    lwork = (int)wq + 1;
    if (!(work = tk_malloc((size_t)lwork * sizeof(double)))) { st = tk_fail(TK_ERR_NOMEM, "pissa: out of memory for the SVD"); goto done; }
    dgesdd_("S", &m, &n, a, &m, sv, u, &m, vt, &mn, work, &lwork, iwork, &info, 1);
    if (info) { st = tk_fail(TK_ERR_INTERNAL, "pissa: the SVD did not converge (dgesdd info %d)", info); goto done; }
    for (int64_t i = 0; i < r; i++) {
        /* PEFT: Sr /= scaling (in f32), A = diag(sqrt(Sr)) Vh_r, B = U_r diag(sqrt(Sr)) */
        double q = sqrt((double)((float)sv[i] / s));
        for (int64_t k = 0; k < K; k++) A0[i * K + k] = (float)(q * u[k + i * (int64_t)m]);
        for (int64_t j = 0; j < N; j++) B0[j * r + i] = (float)(vt[i + j * (int64_t)mn] * q);
    }
done:
    free(a); free(sv); free(u); free(vt); free(iwork); free(work);
    return st;
#endif
}

tk_status tk_lora_olora(const float *W, int64_t N, int64_t K, int64_t r, float s, float *A0, float *B0) {
    (void)s; /* PEFT's OLoRA does not divide by the scale: the residual is W - s Q_r R_r */
    if (!W || !A0 || !B0 || N <= 0 || K <= 0 || r <= 0 || r > (N < K ? N : K))
        return tk_fail(TK_ERR_ARG, "olora: bad arguments (%lld x %lld, rank %lld)", (long long)N, (long long)K, (long long)r);
    double *a = tk_malloc((size_t)(N * K) * sizeof(double)), *v = tk_malloc((size_t)(r * N) * sizeof(double));
    double *tau = tk_malloc((size_t)r * sizeof(double)), *w = tk_malloc((size_t)K * sizeof(double));
    double *q = tk_malloc((size_t)(N * r) * sizeof(double));
    if (!a || !v || !tau || !w || !q) {
        free(a); free(v); free(tau); free(w); free(q);
        return tk_fail(TK_ERR_NOMEM, "olora: out of memory for the QR");
    }
    for (int64_t i = 0; i < N * K; i++) a[i] = W[i];
    /* reflection j: H_j = I - tau_j v_j v_j^T on rows j..N-1 (v_j[j] = 1), zeroing column j below the pivot */
    for (int64_t j = 0; j < r; j++) {
        double *vj = v + j * N, alpha = a[j * K + j], xn = 0;
        for (int64_t i = j + 1; i < N; i++) xn = hypot(xn, a[i * K + j]);
        memset(vj, 0, (size_t)N * sizeof(double));
        vj[j] = 1;
        if (xn == 0) { tau[j] = 0; continue; }
        double beta = -copysign(hypot(alpha, xn), alpha);
        tau[j] = (beta - alpha) / beta;
        for (int64_t i = j + 1; i < N; i++) vj[i] = a[i * K + j] / (alpha - beta);
        /* columns j+1..K-1: a -= tau v (v^T a); column j becomes (beta, 0, ...) */
        memset(w, 0, (size_t)K * sizeof(double));
        for (int64_t i = j; i < N; i++)
            for (int64_t c = j + 1; c < K; c++) w[c] += vj[i] * a[i * K + c];
        for (int64_t i = j; i < N; i++)
            for (int64_t c = j + 1; c < K; c++) a[i * K + c] -= tau[j] * vj[i] * w[c];
        a[j * K + j] = beta;
        for (int64_t i = j + 1; i < N; i++) a[i * K + j] = 0;
    }
    /* R[:r]: the upper triangle of the first r rows */
    for (int64_t i = 0; i < r; i++)
        for (int64_t c = 0; c < K; c++) A0[i * K + c] = c < i ? 0.0f : (float)a[i * K + c];
    /* Q[:, :r] = H_0 ... H_{r-1} [I_r; 0], applied from the last reflection */
    memset(q, 0, (size_t)(N * r) * sizeof(double));
    for (int64_t i = 0; i < r; i++) q[i * r + i] = 1;
    for (int64_t j = r - 1; j >= 0; j--) {
        const double *vj = v + j * N;
        if (tau[j] == 0) continue;
        for (int64_t c = 0; c < r; c++) {
            double d = 0;
            for (int64_t i = j; i < N; i++) d += vj[i] * q[i * r + c];
            for (int64_t i = j; i < N; i++) q[i * r + c] -= tau[j] * vj[i] * d;
        }
    }
    for (int64_t i = 0; i < N * r; i++) B0[i] = (float)q[i];
    free(a); free(v); free(tau); free(w); free(q);
    return TK_OK;
}

static bool converted(const tk_lora *l) {
    tk_lora_init i = tk_lora_get_config(l)->init;
    return i == TK_LORA_INIT_PISSA || i == TK_LORA_INIT_OLORA;
}

int64_t tk_lora_written_rank(const tk_lora *l) { return tk_lora_get_config(l)->r * (converted(l) ? 2 : 1); }

float tk_lora_written_alpha(const tk_lora *l) {
    const tk_lora_config *c = tk_lora_get_config(l);
    if (!converted(l)) return c->alpha;
    return c->rslora ? c->alpha * (float)M_SQRT2 : 2.0f * c->alpha;
}

bool tk_lora_written_module(tk_lora *l, int32_t layer, tk_linear_id which, float *a, float *b) {
    tk_param *A, *B;
    if (!tk_lora_module(l, layer, which, &A, &B)) return false;
    int64_t r = tk_lora_get_config(l)->r, K = A->ne[0], N = B->ne[1];
    const float *A0, *B0;
    if (!tk_lora_init_pair(l, layer, which, &A0, &B0)) {
        memcpy(a, A->w, (size_t)(r * K) * sizeof(float));
        memcpy(b, B->w, (size_t)(N * r) * sizeof(float));
        return true;
    }
    memcpy(a, A->w, (size_t)(r * K) * sizeof(float));
    memcpy(a + r * K, A0, (size_t)(r * K) * sizeof(float));
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < r; i++) {
            b[j * 2 * r + i] = B->w[j * r + i];
            b[j * 2 * r + r + i] = -B0[j * r + i];
        }
    return true;
}
