/* Gradients of a parameter set against central finite differences of a loss, for the tests
 * that train through a whole model (PEFT methods, objectives). */
#ifndef TK_TESTS_FD_CHECK_H
#define TK_TESTS_FD_CHECK_H
#include "test.h"
#include "core/param.h"
#include "tiny_llama.h"
#include "train/step.h"

typedef struct fd_opts {
    float eps;              /* perturbation of each checked element */
    int max_per;            /* elements checked per tensor (evenly spaced); 0 = all */
    const char *prefix;     /* parameters whose name starts with it get tol_prefix (and are counted) */
    double tol_prefix, tol; /* max |g - fd| / max |fd| per tensor */
} fd_opts;

/* ps->p[i].g must hold the analytic gradients of loss(ctx); loss(ctx) must not depend on the
 * gradient buffers. CHECKs each tensor's ratio against its tolerance and that it has a
 * gradient at all; *n_prefix (may be NULL) gets the number of tensors matching o->prefix.
 * Returns the worst ratio. */
static inline double fd_check(tk_param_set *ps, double (*loss)(void *ctx), void *ctx, const fd_opts *o, const char *what,
                       int *n_prefix) {
    float **g = calloc((size_t)ps->n, sizeof *g);
    for (int64_t i = 0; i < ps->n; i++) {
        g[i] = malloc((size_t)ps->p[i].n * sizeof(float));
        memcpy(g[i], ps->p[i].g, (size_t)ps->p[i].n * sizeof(float));
    }
    double worst = 0;
    int np = 0;
    size_t pl = o->prefix ? strlen(o->prefix) : 0;
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *p = &ps->p[i];
        int64_t step = o->max_per > 0 && p->n > o->max_per ? p->n / o->max_per : 1;
        double maxdiff = 0, maxfd = 0;
        for (int64_t j = 0; j < p->n; j += step) {
            float w0 = p->w[j];
            p->w[j] = w0 + o->eps;
            double lp = loss(ctx);
            p->w[j] = w0 - o->eps;
            double lm = loss(ctx);
            p->w[j] = w0;
            double fd = (lp - lm) / ((double)(float)(w0 + o->eps) - (double)(float)(w0 - o->eps));
            maxdiff = fmax(maxdiff, fabs(fd - g[i][j]));
            maxfd = fmax(maxfd, fabs(fd));
        }
        double ratio = maxdiff / fmax(maxfd, 1e-6);
        bool mine = pl && !strncmp(p->name, o->prefix, pl);
        CHECK(ratio <= (mine ? o->tol_prefix : o->tol), "%s: %s gradient differs from finite differences (ratio %.3e)", what,
              p->name, ratio);
        CHECK(maxfd > 1e-6, "%s: %s has no gradient at all", what, p->name);
        worst = fmax(worst, ratio);
        np += mine;
    }
    for (int64_t i = 0; i < ps->n; i++) free(g[i]);
    free(g);
    if (n_prefix) *n_prefix = np;
    return worst;
}

typedef struct fd_step_ctx { tk_train_ctx *tc; tiny_batch *tb; } fd_step_ctx;

/* The SFT loss of the batch under tc (a forward+backward with no gradient scale). */
static inline double fd_step_loss(void *ctx) {
    fd_step_ctx *c = ctx;
    double ls = 0, ws = 0;
    tk_status st = tk_train_step_fwd_bwd(c->tc, &c->tb->b, c->tb->target, c->tb->weight, 0.0f, &ls, &ws);
    if (st) fprintf(stderr, "fwd failed: %s\n", tk_last_error());
    return ls;
}

/* Every trainable parameter of tc (sampled up to 24 elements per tensor, eps 4e-3) against central
 * differences of the SFT loss on tb: tensors named prefix* within tol_prefix, the others (base
 * weights: f32 losses over many elements, the embedding's sparse rows) within 1e-2. Returns the
 * number of prefix* tensors. */
static inline int fd_check_step(tk_train_ctx *tc, tiny_batch *tb, const char *prefix, double tol_prefix, const char *what) {
    tk_param_set *ps = tk_train_param_set(tc);
    tk_params_zero_grad(ps);
    double ls = 0, ws = 0;
    CHECK_OK(tk_train_step_fwd_bwd(tc, &tb->b, tb->target, tb->weight, 1.0f, &ls, &ws));
    fd_step_ctx c = {tc, tb};
    fd_opts o = {.eps = 4e-3f, .max_per = 24, .prefix = prefix, .tol_prefix = tol_prefix, .tol = 1e-2};
    int n = 0;
    double worst = fd_check(ps, fd_step_loss, &c, &o, what, &n);
    printf("%s: %lld tensors, worst FD ratio %.2e\n", what, (long long)ps->n, worst);
    return n;
}
#endif
