/* Every built backend against the reference backend "ref" (src/backend/ref/: one thread, double
 * sums, the oracle): each entry of the table on the same random inputs, through the tables
 * directly. Matmuls on every weight dtype; attention with GQA/MQA, default positions, packed
 * segments, padding, a sliding window, a prefix (and its gradients), soft-capping, saved and
 * recomputed probabilities. Tolerances are relative to the largest reference value (float
 * rounding against double sums); the exp-sum gets the bound of float accumulation. Skipped when
 * the build has no ref (BACKENDS without ref). */
#include "test.h"
#include "backend/backend.h"
#include "core/core.h"
#include "random_weight.h"
#include "ops/ops.h"
#include "takumi/model.h"

static tk_rng rng;
static const tk_backend *B, *R; /* the backend under test, the reference */

static float *randv(int64_t n, float scale) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = scale * tk_rng_normal(&rng);
    return v;
}
static float *copyv(const float *a, int64_t n) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(v, a, (size_t)n * sizeof(float));
    return v;
}

/* max |got - want| <= tol * max |want|, every value finite. */
static void agree(const char *what, const float *got, const float *want, int64_t n, double tol) {
    double e = 0, m = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) bad++;
        else {
            e = fmax(e, fabs((double)got[i] - want[i]));
            m = fmax(m, fabs((double)want[i]));
        }
    }
    CHECK(!bad && e <= tol * m, "%s %s vs ref: max |diff| %.3g is %.3g of max |ref| %.3g (tol %.1g), %lld not finite", B->name,
          what, e, m > 0 ? e / m : e, m, tol, (long long)bad);
}

static void matmuls(void) {
    int64_t N = 37, K = 512;
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        tk_dtype t = k_weight_types[i];
        size_t nb;
        void *w = random_weight(&rng, t, N, K, &nb);
        tk_tensor_ref wr = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = nb};
        char what[64];
        for (int ti = 0; ti < 4; ti++) {
            int64_t T = (int64_t[]){1, 3, 8, 40}[ti];
            float *x = randv(T * K, 1), *y0 = randv(T * N, 1), *y1 = copyv(y0, T * N), *dy = randv(T * N, 1);
            float *dx0 = randv(T * K, 1), *dx1 = copyv(dx0, T * K);
            for (int acc = 0; acc < 2; acc++)
                for (int flags = T >= 8 ? 0 : TK_MATMUL_EXACT; flags <= TK_MATMUL_EXACT; flags++) { /* few rows: x int8 unless exact */
                    CHECK_OK(B->matmul(y0, x, &wr, T, acc, flags));
                    CHECK_OK(R->matmul(y1, x, &wr, T, acc, flags));
                    snprintf(what, sizeof what, "matmul %s T=%lld acc=%d flags=%d", tk_dtype_name(t), (long long)T, acc, flags);
                    agree(what, y0, y1, T * N, 1e-5);
                }
            for (int acc = 0; acc < 2; acc++) {
                CHECK_OK(B->matmul_dx(dx0, dy, &wr, T, acc));
                CHECK_OK(R->matmul_dx(dx1, dy, &wr, T, acc));
                snprintf(what, sizeof what, "matmul_dx %s T=%lld acc=%d", tk_dtype_name(t), (long long)T, acc);
                agree(what, dx0, dx1, T * K, 1e-5);
            }
            free(x); free(y0); free(y1); free(dy); free(dx0); free(dx1);
        }
        free(w);
    }
    /* three weights sharing x, mixed dtypes and row counts */
    tk_dtype dts[3] = {TK_Q4_1, TK_F16, TK_Q6_K};
    int64_t Ns[3] = {37, 13, 64};
    void *w[3];
    tk_tensor_ref wr[3];
    const tk_tensor_ref *wp[3];
    for (int i = 0; i < 3; i++) {
        size_t nb;
        w[i] = random_weight(&rng, dts[i], Ns[i], K, &nb);
        wr[i] = (tk_tensor_ref){.name = "w", .dtype = dts[i], .n_dims = 2, .ne = {K, Ns[i], 1, 1}, .data = w[i], .nbytes = nb};
        wp[i] = &wr[i];
    }
    for (int64_t T = 1; T <= 9; T += 4) {
        float *x = randv(T * K, 1), *y0[3], *y1[3];
        for (int i = 0; i < 3; i++) { y0[i] = randv(T * Ns[i], 1); y1[i] = randv(T * Ns[i], 1); }
        int flags = T < 8 ? TK_MATMUL_EXACT : 0;
        CHECK_OK(B->matmul_multi(y0, x, wp, 3, T, flags));
        CHECK_OK(R->matmul_multi(y1, x, wp, 3, T, flags));
        for (int i = 0; i < 3; i++) {
            agree("matmul_multi", y0[i], y1[i], T * Ns[i], 1e-5);
            free(y0[i]); free(y1[i]);
        }
        free(x);
    }
    /* the reference never quantizes x: flags change nothing */
    {
        int64_t T = 2;
        float *x = randv(T * K, 1), *y0 = randv(T * Ns[0], 1), *y1 = randv(T * Ns[0], 1);
        CHECK_OK(R->matmul(y0, x, wp[0], T, false, 0));
        CHECK_OK(R->matmul(y1, x, wp[0], T, false, TK_MATMUL_EXACT));
        CHECK(!memcmp(y0, y1, (size_t)(T * Ns[0]) * sizeof(float)), "ref: TK_MATMUL_EXACT changes a product");
        free(x); free(y0); free(y1);
    }
    for (int i = 0; i < 3; i++) free(w[i]);
    /* dW += dy^T x */
    {
        int64_t T = 11, n = 13, k = 17;
        float *dy = randv(T * n, 1), *x = randv(T * k, 1), *dw0 = randv(n * k, 1), *dw1 = copyv(dw0, n * k);
        B->matmul_dw(dw0, dy, x, T, n, k);
        R->matmul_dw(dw1, dy, x, T, n, k);
        agree("matmul_dw", dw0, dw1, n * k, 1e-5);
        free(dy); free(x); free(dw0); free(dw1);
    }
}

static void sgemms(void) {
    int64_t M = 37, N = 29, K = 70;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta0 = 0; beta0 < 2; beta0++) {
                int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                float *A = randv((ta ? K : M) * lda, 1), *Bm = randv((tb ? N : K) * ldb, 1), *C0 = randv(M * ldc, 1);
                if (beta0) for (int64_t i = 0; i < M * ldc; i++) if (i % ldc < N) C0[i] = NAN; /* beta = 0: C is not read */
                float *C1 = copyv(C0, M * ldc), beta = beta0 ? 0.0f : -0.5f;
                B->sgemm(ta, tb, M, N, K, 0.75f, A, lda, Bm, ldb, beta, C0, ldc);
                R->sgemm(ta, tb, M, N, K, 0.75f, A, lda, Bm, ldb, beta, C1, ldc);
                char what[64];
                snprintf(what, sizeof what, "sgemm ta=%d tb=%d beta=%g", ta, tb, (double)beta);
                agree(what, C0, C1, M * ldc, 1e-5); /* the padding columns too: neither may write them */
                free(A); free(Bm); free(C0); free(C1);
            }
}

static void exp_sums(void) {
    for (int ni = 0; ni < 2; ni++) {
        int64_t n = ni ? 49152 : 7; /* a few, then a vocabulary's worth */
        float *x = randv(n, 3), mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
        float *y0 = randv(n, 1), *y1 = randv(n, 1);
        float s0 = B->vexp_sum(y0, x, mx, n), s1 = R->vexp_sum(y1, x, mx, n);
        agree("vexp_sum values", y0, y1, n, 1e-6);
        /* float accumulation of n terms may lose up to about n ulp (2^-24) of the sum; each exp a few ulp */
        CHECK(fabs(s0 - s1) <= ((double)n * 0x1p-24 + 1e-6) * s1, "%s vexp_sum n=%lld: %.9g vs ref %.9g", B->name, (long long)n, s0,
              s1);
        free(x); free(y0); free(y1);
    }
}

static void elementwise(void) {
    /* embedding: tables of several dtypes; repeated ids accumulate in the backward */
    int64_t V = 10, C = 256, T = 7;
    int32_t ids[7] = {3, 0, 9, 3, 7, 3, 1};
    tk_dtype types[] = {TK_F32, TK_F16, TK_BF16, TK_Q8_0, TK_Q4_K};
    for (int k = 0; k < 5; k++) {
        size_t nb;
        void *tab = random_weight(&rng, types[k], V, C, &nb);
        tk_tensor_ref tr = {.name = "tok_embd", .dtype = types[k], .n_dims = 2, .ne = {C, V, 1, 1}, .data = tab, .nbytes = nb};
        float *o0 = randv(T * C, 1), *o1 = randv(T * C, 1);
        CHECK_OK(B->embedding_fwd(o0, ids, T, &tr));
        CHECK_OK(R->embedding_fwd(o1, ids, T, &tr));
        agree("embedding forward", o0, o1, T * C, 1e-6);
        free(tab); free(o0); free(o1);
    }
    float *dout = randv(T * C, 1), *dt0 = randv(V * C, 1), *dt1 = copyv(dt0, V * C);
    B->embedding_bwd(dt0, dout, ids, T, C);
    R->embedding_bwd(dt1, dout, ids, T, C);
    agree("embedding backward", dt0, dt1, V * C, 1e-6);
    free(dout); free(dt0); free(dt1);
    /* RMSNorm */
    T = 5; C = 96;
    float *x = randv(T * C, 2), *w = randv(C, 1), *o0 = randv(T * C, 1), *o1 = randv(T * C, 1), *r0 = randv(T, 1), *r1 = randv(T, 1);
    B->rmsnorm_fwd(o0, r0, x, w, T, C, 1e-5f);
    R->rmsnorm_fwd(o1, r1, x, w, T, C, 1e-5f);
    agree("rmsnorm forward", o0, o1, T * C, 1e-6);
    agree("rmsnorm rstd", r0, r1, T, 1e-6);
    float *g = randv(T * C, 1), *dx0 = randv(T * C, 1), *dx1 = randv(T * C, 1), *dw0 = randv(C, 1), *dw1 = copyv(dw0, C);
    B->rmsnorm_bwd(dx0, dw0, g, x, w, r1, T, C);
    R->rmsnorm_bwd(dx1, dw1, g, x, w, r1, T, C);
    agree("rmsnorm backward dx", dx0, dx1, T * C, 1e-5);
    agree("rmsnorm backward dw", dw0, dw1, C, 1e-5);
    free(x); free(w); free(o0); free(o1); free(r0); free(r1); free(g); free(dx0); free(dx1); free(dw0); free(dw1);
    /* RoPE: both layouts, positions inside and past the table */
    int32_t pos[5] = {0, 1, 17, 31, 40};
    for (int il = 0; il < 2; il++) {
        tk_model_config cfg = {.head_dim = 8, .rope_theta = 10000.0f, .rope_interleaved = il};
        tk_rope rope;
        CHECK_OK(tk_rope_init(&rope, &cfg, 32));
        float *a = randv(5 * 3 * 8, 1), *b = copyv(a, 5 * 3 * 8);
        B->rope_fwd(a, pos, 5, 3, 8, &rope);
        R->rope_fwd(b, pos, 5, 3, 8, &rope);
        agree(il ? "rope forward (pairs)" : "rope forward (halves)", a, b, 5 * 3 * 8, 1e-6);
        B->rope_bwd(a, pos, 5, 3, 8, &rope);
        R->rope_bwd(b, pos, 5, 3, 8, &rope);
        agree(il ? "rope backward (pairs)" : "rope backward (halves)", a, b, 5 * 3 * 8, 1e-6);
        free(a); free(b);
        tk_rope_free(&rope);
    }
    /* gated activations */
    int64_t n = 300;
    float *gate = randv(n, 3), *up = randv(n, 1), *d = randv(n, 1), *y[6];
    for (int i = 0; i < 6; i++) y[i] = randv(n, 1);
    for (int geglu = 0; geglu < 2; geglu++) {
        const char *nm = geglu ? "geglu" : "swiglu";
        (geglu ? B->geglu_fwd : B->swiglu_fwd)(y[0], gate, up, n);
        (geglu ? R->geglu_fwd : R->swiglu_fwd)(y[1], gate, up, n);
        agree(nm, y[0], y[1], n, 2e-6);
        (geglu ? B->geglu_bwd : B->swiglu_bwd)(y[2], y[3], d, gate, up, n);
        (geglu ? R->geglu_bwd : R->swiglu_bwd)(y[4], y[5], d, gate, up, n);
        agree(geglu ? "geglu backward dgate" : "swiglu backward dgate", y[2], y[4], n, 2e-6);
        agree(geglu ? "geglu backward dup" : "swiglu backward dup", y[3], y[5], n, 2e-6);
    }
    free(gate); free(up); free(d);
    for (int i = 0; i < 6; i++) free(y[i]);
}

/* One attention problem: kind 0 GQA causal over default positions (Tq < S), 1 packed segments + padding +
 * window, 2 a long packed row (several query blocks) with MQA, a window and a padded tail, 3/4 one/two query
 * rows over default positions (decode); P prefix keys; softcap as tk_attn_args. */
static void attention(int kind, int64_t P, float softcap) {
    int64_t H = 4, KH = kind == 2 ? 1 : 2, D = kind == 2 ? 8 : 16, S = kind == 2 ? 150 : 10;
    int64_t Tq = kind == 0 ? 5 : kind == 3 ? 1 : kind == 4 ? 2 : S, W = P + S;
    int32_t *pos = calloc((size_t)S, 4), *seg = calloc((size_t)S, 4);
    tk_attn_args a = {.Tq = Tq, .S = S, .H = H, .KH = KH, .D = D, .scale = 1.0f / sqrtf((float)D), .softcap = softcap, .P = P};
    if (kind == 1 || kind == 2) {
        int32_t sg = 0, p = 0;
        for (int64_t s = 0; s < S; s++) {
            if (kind == 1 ? s == 5 : s > 0 && tk_rng_uniform(&rng) < 0.03f) { sg++; p = 0; }
            seg[s] = s >= S - (kind == 1 ? 2 : 10) ? -1 : sg;
            pos[s] = p++;
        }
        a.pos_q = a.pos_k = pos;
        a.seg_q = a.seg_k = seg;
        a.window = kind == 1 ? 3 : 20;
    }
    /* q scaled so that scores reach a few units: a soft cap of 2 bends them */
    float *q = randv(Tq * H * D, 2), *k = randv(S * KH * D, 1), *v = randv(S * KH * D, 1), *pk = randv(P * KH * D, 1);
    float *pv = randv(P * KH * D, 1), *dout = randv(Tq * H * D, 1);
    a.pk = P ? pk : NULL;
    a.pv = P ? pv : NULL;
    float *out[2], *att[2], *dq[2], *dk[2], *dv[2], *dpk[2], *dpv[2];
    for (int i = 0; i < 2; i++) {
        out[i] = randv(Tq * H * D, 1); att[i] = randv(H * Tq * W, 1);
        dq[i] = randv(Tq * H * D, 1); dk[i] = randv(S * KH * D, 1); dv[i] = randv(S * KH * D, 1);
        dpk[i] = i ? copyv(dpk[0], P * KH * D) : randv(P * KH * D, 1);
        dpv[i] = i ? copyv(dpv[0], P * KH * D) : randv(P * KH * D, 1);
    }
    char what[160];
    int n = snprintf(what, sizeof what, "attention kind %d P=%lld softcap=%g: ", kind, (long long)P, (double)softcap);
    const tk_backend *be[2] = {B, R};
    for (int i = 0; i < 2; i++) CHECK_OK(be[i]->attention_fwd(out[i], att[i], q, k, v, &a));
    snprintf(what + n, sizeof what - n, "out"); agree(what, out[0], out[1], Tq * H * D, 1e-5);
    snprintf(what + n, sizeof what - n, "att"); agree(what, att[0], att[1], H * Tq * W, 1e-5);
    for (int recompute = 0; recompute < 2; recompute++) {
        for (int i = 0; i < 2; i++) {
            a.dpk = P ? dpk[i] : NULL;
            a.dpv = P ? dpv[i] : NULL;
            CHECK_OK(be[i]->attention_bwd(dq[i], dk[i], dv[i], dout, recompute ? NULL : att[i], q, k, v, &a));
        }
        snprintf(what + n, sizeof what - n, "dq%s", recompute ? " (recomputed)" : ""); agree(what, dq[0], dq[1], Tq * H * D, 2e-5);
        snprintf(what + n, sizeof what - n, "dk%s", recompute ? " (recomputed)" : ""); agree(what, dk[0], dk[1], S * KH * D, 2e-5);
        snprintf(what + n, sizeof what - n, "dv%s", recompute ? " (recomputed)" : ""); agree(what, dv[0], dv[1], S * KH * D, 2e-5);
        snprintf(what + n, sizeof what - n, "dpk (accumulated)"); agree(what, dpk[0], dpk[1], P * KH * D, 2e-5);
        snprintf(what + n, sizeof what - n, "dpv (accumulated)"); agree(what, dpv[0], dpv[1], P * KH * D, 2e-5);
    }
    if (softcap > 0) { /* the cap is not vacuous here: the reference without it differs */
        tk_attn_args plain = a;
        plain.softcap = 0;
        CHECK_OK(R->attention_fwd(out[0], NULL, q, k, v, &plain));
        double dmax = 0;
        for (int64_t i = 0; i < Tq * H * D; i++) dmax = fmax(dmax, fabs(out[0][i] - out[1][i]));
        CHECK(dmax > 1e-2, "attention kind %d: softcap %g changes the output by only %g", kind, (double)softcap, dmax);
    }
    for (int i = 0; i < 2; i++) { free(out[i]); free(att[i]); free(dq[i]); free(dk[i]); free(dv[i]); free(dpk[i]); free(dpv[i]); }
    free(pos); free(seg); free(q); free(k); free(v); free(pk); free(pv); free(dout);
}

int main(void) {
    int nb = 0;
    const tk_backend *const *bs = tk_backends(&nb);
    for (int i = 0; i < nb; i++)
        if (!strcmp(bs[i]->name, "ref")) R = bs[i];
    if (!R) {
        printf("SKIP: the reference backend is not built (BACKENDS without ref)\n");
        return 0;
    }
    for (int i = 0; i < nb; i++) {
        if (bs[i] == R) continue;
        B = bs[i];
        printf("backend %s (%s) against ref\n", B->name, B->detail);
        tk_rng_seed(&rng, 7);
        matmuls();
        sgemms();
        exp_sums();
        elementwise();
        for (int kind = 0; kind <= 4; kind++)
            for (int64_t P = 0; P <= 3; P += 3) attention(kind, P, 0.0f);
        for (int kind = 1; kind <= 4; kind++) attention(kind, 3, 2.0f); /* soft-capped scores (Gemma 2) */
        attention(2, 0, 2.0f);
    }
    return tk_test_done("test_backends_agree");
}
