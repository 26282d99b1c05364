/* AdaLoRA's rank allocator and orthogonal regularization (see adalora.h), as PEFT 0.21's
 * RankAllocator (peft/tuners/adalora/layer.py) and AdaLoraModel.forward / update_and_allocate
 * (model.py) compute them: sensitivities and scores in f32 as torch does, the budget in double as
 * Python does, the threshold as torch.kthvalue (the k-th smallest score, ties masked together). */
#include "peft/adalora_state.h"
#include "core/core.h"
#include <math.h>

int64_t tk_adalora_budget(const tk_adalora_config *c, int64_t n_modules, int64_t step, bool *mask) {
    int64_t init = (int64_t)c->init_r * n_modules, target = (int64_t)c->target_r * n_modules;
    if (step <= c->tinit) { *mask = false; return init; }
    if (step > c->total_step - c->tfinal) { *mask = true; return target; }
    double mul = 1.0 - (double)(step - c->tinit) / (double)(c->total_step - c->tfinal - c->tinit);
    *mask = step % c->delta_t == 0;
    return (int64_t)((double)(init - target) * (mul * mul * mul) + (double)target);
}

/* update_ipt: per entry ipt = |w g|, ema = b1 ema + (1 - b1) ipt, unc = b2 unc + (1 - b2) |ipt - ema|. */
static void update_ipt(tk_adalora *a, const ada_mod *md, float gs) {
    const float b1 = a->cfg.beta1, b2 = a->cfg.beta2, c1 = (float)(1.0 - (double)a->cfg.beta1), c2 = (float)(1.0 - (double)a->cfg.beta2);
    const tk_param *ps[3] = {&a->ps->p[md->ia], &a->ps->p[md->ie], &a->ps->p[md->ib]};
    int64_t off = 0;
    for (int k = 0; k < 3; k++) {
        const tk_param *p = ps[k];
        float *e = md->ema_ipt + off, *u = md->ema_unc + off;
        for (int64_t j = 0; j < p->n; j++) {
            float ipt = fabsf(p->w[j] * (p->g[j] * gs));
            e[j] = b1 * e[j] + c1 * ipt;
            u[j] = b2 * u[j] + c2 * fabsf(ipt - e[j]);
        }
        off += p->n;
    }
}

/* The triplet scores of a module: S(E_i) + (mean_k S(A_ik) + mean_j S(B_ji)), S = ema * unc. */
static void scores(const tk_adalora *a, const ada_mod *md, float *out) {
    int64_t r = a->r, K = md->K, N = md->N;
    const float *ei = md->ema_ipt, *eu = md->ema_unc;
    const float *Ai = ei, *Au = eu, *Ei = ei + r * K, *Eu = eu + r * K, *Bi = Ei + r, *Bu = Eu + r;
    for (int64_t i = 0; i < r; i++) {
        double sa = 0, sb = 0;
        for (int64_t k = 0; k < K; k++) sa += (double)(Ai[i * K + k] * Au[i * K + k]);
        for (int64_t j = 0; j < N; j++) sb += (double)(Bi[j * r + i] * Bu[j * r + i]);
        float ma = (float)(sa / (double)K), mb = (float)(sb / (double)N);
        out[i] = Ei[i] * Eu[i] + (ma + mb);
    }
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? -1 : a > b;
}

/* mask_to_budget: triplets whose score is <= the (init - budget)-th smallest get E = 0 and keep 0. */
static tk_status mask_to_budget(tk_adalora *a, int64_t budget) {
    int64_t r = a->r, n = a->n_mods * r, k = n - budget;
    float *all = tk_malloc((size_t)n * sizeof(float)), *sorted = tk_malloc((size_t)n * sizeof(float));
    if (!all || !sorted) { free(all); free(sorted); return tk_fail(TK_ERR_NOMEM, "adalora: out of memory for the rank allocation"); }
    int64_t at = 0;
    for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++)
        if (a->mods[i].ia >= 0) { scores(a, &a->mods[i], all + at); at += r; }
    memcpy(sorted, all, (size_t)n * sizeof(float));
    qsort(sorted, (size_t)n, sizeof(float), cmp_float);
    float thr = k >= 1 ? sorted[k - 1] : -INFINITY;   /* k = 0 (target_r = init_r): nothing to mask (torch.kthvalue refuses k = 0) */
    at = 0;
    for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++) {
        ada_mod *md = &a->mods[i];
        if (md->ia < 0) continue;
        float *E = a->ps->p[md->ie].w;
        for (int64_t j = 0; j < r; j++) {
            md->keep[j] = all[at + j] <= thr ? 0.0f : 1.0f;
            if (md->keep[j] == 0.0f) E[j] = 0.0f;
        }
        at += r;
    }
    free(all);
    free(sorted);
    *a->has_pattern = 1.0f;
    return TK_OK;
}

tk_status tk_adalora_allocate(tk_adalora *a, int64_t step, float grad_scale) {
    const tk_adalora_config *c = &a->cfg;
    int64_t last = c->total_step - c->tfinal;
    bool mask;
    if (step < last) {   /* update the importance, allocate the budget every delta_t steps */
        for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++)
            if (a->mods[i].ia >= 0) update_ipt(a, &a->mods[i], grad_scale);
        int64_t budget = tk_adalora_budget(c, a->n_mods, step, &mask);
        return mask ? mask_to_budget(a, budget) : TK_OK;
    }
    if (step == last) {  /* the final allocation at the target budget; the importance starts over */
        tk_status st = mask_to_budget(a, tk_adalora_budget(c, a->n_mods, step, &mask));
        for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++) {
            ada_mod *md = &a->mods[i];
            if (md->ia < 0) continue;
            int64_t ne = a->r * md->K + a->r + md->N * a->r;
            memset(md->ema_ipt, 0, (size_t)ne * sizeof(float));
            memset(md->ema_unc, 0, (size_t)ne * sizeof(float));
        }
        return st;
    }
    if (*a->has_pattern == 0.0f) return TK_OK;   /* after it: the final pattern re-applied */
    for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++) {
        ada_mod *md = &a->mods[i];
        if (md->ia < 0) continue;
        float *E = a->ps->p[md->ie].w;
        for (int64_t j = 0; j < a->r; j++)
            if (md->keep[j] == 0.0f) E[j] = 0.0f;
    }
    return TK_OK;
}

/* ||G - I||_F of the Gram matrix G [r x r] of X: rows (A A^T: X [r x K], rows = true) or columns (B^T B: X [N x r]);
 * with grad, dX += f * d||G - I||_F / dX = f * 2 (G - I) X / norm (rows) or f * 2 X (G - I) / norm (columns). */
static double gram_dev(const float *X, int64_t r, int64_t n, bool rows, bool grad, float f, float *dX, double *G) {
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += rows ? (double)X[i * n + k] * X[j * n + k] : (double)X[k * r + i] * X[k * r + j];
            G[i * r + j] = G[j * r + i] = s - (i == j ? 1.0 : 0.0);
        }
    double ss = 0;
    for (int64_t i = 0; i < r * r; i++) ss += G[i] * G[i];
    double norm = sqrt(ss);
    if (!grad || !(norm > 0)) return norm;
    double c = 2.0 * (double)f / norm;
    for (int64_t i = 0; i < r; i++)
        for (int64_t k = 0; k < n; k++) {
            double s = 0;
            if (rows) { for (int64_t j = 0; j < r; j++) s += G[i * r + j] * X[j * n + k]; dX[i * n + k] += (float)(c * s); }
            else { for (int64_t j = 0; j < r; j++) s += X[k * r + j] * G[j * r + i]; dX[k * r + i] += (float)(c * s); }
        }
    return norm;
}

tk_status tk_adalora_orth_reg(tk_adalora *a, bool grad, double *loss) {
    *loss = 0;
    if (a->cfg.orth_reg == 0) return TK_OK;
    double *G = tk_malloc((size_t)(a->r * a->r) * sizeof(double));
    if (!G) return TK_ERR_NOMEM;
    int64_t np = 2 * a->n_mods;
    float f = (float)((double)a->cfg.orth_reg / (double)np);   /* d loss / d ||.||_F of each matrix */
    double sum = 0;
    for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++) {
        ada_mod *md = &a->mods[i];
        if (md->ia < 0) continue;
        tk_param *A = &a->ps->p[md->ia], *B = &a->ps->p[md->ib];
        sum += gram_dev(A->w, a->r, md->K, true, grad, f, A->g, G);
        sum += gram_dev(B->w, a->r, md->N, false, grad, f, B->g, G);
    }
    free(G);
    *loss = (double)a->cfg.orth_reg * sum / (double)np;
    return TK_OK;
}
