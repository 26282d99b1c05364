/* Trainable parameter sets (see core/param.h): f32 master weights, gradients and AdamW
 * moments per named tensor. Reductions run in double in a fixed order (deterministic). */
#include "core/param.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

tk_status tk_params_add(tk_param_set *s, const char *name, int n_dims, const int64_t *ne, float *w, bool decay, tk_param **out) {
    if (n_dims < 1 || n_dims > TK_MAX_DIMS) return tk_fail(TK_ERR_ARG, "param %s: bad n_dims %d", name, n_dims);
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0 || n > INT64_MAX / ne[i]) return tk_fail(TK_ERR_ARG, "param %s: bad shape", name);
        n *= ne[i];
    }
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        tk_param *p = tk_realloc(s->p, (size_t)cap * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        s->p = p; s->cap = cap;
    }
    tk_param *p = &s->p[s->n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n = n; p->n_dims = n_dims;
    for (int i = 0; i < TK_MAX_DIMS; i++) p->ne[i] = i < n_dims ? ne[i] : 1;
    p->decay = decay;
    p->lr_mult = 1.0f;
    p->external_w = w != NULL;
    p->w = w ? w : tk_calloc((size_t)n, sizeof(float));
    p->g = tk_calloc((size_t)n, sizeof(float));
    p->m = tk_calloc((size_t)n, sizeof(float));
    p->v = tk_calloc((size_t)n, sizeof(float));
    if (!p->w || !p->g || !p->m || !p->v) {
        if (!p->external_w) free(p->w);
        free(p->g); free(p->m); free(p->v);
        return TK_ERR_NOMEM;
    }
    s->n++;
    s->total += n;
    if (out) *out = p;
    return TK_OK;
}

tk_param *tk_params_find(tk_param_set *s, const char *name) {
    for (int64_t i = 0; i < s->n; i++) if (!strcmp(s->p[i].name, name)) return &s->p[i];
    return NULL;
}

void tk_params_zero_grad(tk_param_set *s) {
    for (int64_t i = 0; i < s->n; i++) memset(s->p[i].g, 0, (size_t)s->p[i].n * sizeof(float));
}

double tk_params_grad_norm(const tk_param_set *s) {
    double ss = 0;
    for (int64_t i = 0; i < s->n; i++) {
        const float *g = s->p[i].g;
        double acc = 0;
        for (int64_t j = 0; j < s->p[i].n; j++) acc += (double)g[j] * g[j];
        ss += acc;
    }
    return sqrt(ss);
}

void tk_params_scale_grad(tk_param_set *s, float f) {
    for (int64_t i = 0; i < s->n; i++) {
        float *g = s->p[i].g;
        for (int64_t j = 0; j < s->p[i].n; j++) g[j] *= f;
    }
}

void tk_params_free(tk_param_set *s) {
    for (int64_t i = 0; i < s->n; i++) {
        if (!s->p[i].external_w) free(s->p[i].w);
        free(s->p[i].g); free(s->p[i].m); free(s->p[i].v);
    }
    free(s->p);
    memset(s, 0, sizeof *s);
}
