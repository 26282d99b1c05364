/* AdamW, schedules and clipping over a tk_param_set. Deterministic: fixed loop order,
 * elementwise updates only, reductions in double over a fixed partition. */
#include "train/optim.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

tk_adamw tk_adamw_default(void) {
    tk_adamw o = {.lr = 2e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                  .clip = 1.0f, .sched = TK_SCHED_LINEAR, .warmup = 0, .total = 0, .min_lr_ratio = 0.0f};
    return o;
}

float tk_lr_at(const tk_adamw *o, int64_t step) {
    if (o->warmup > 0 && step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    if (o->sched == TK_SCHED_CONSTANT || o->total <= o->warmup) return o->lr;
    double prog = (double)(step - o->warmup) / (double)(o->total - o->warmup);
    if (prog > 1) prog = 1;
    if (prog < 0) prog = 0;
    double f = o->sched == TK_SCHED_LINEAR ? 1.0 - prog : 0.5 * (1.0 + cos(M_PI * prog));
    double lo = o->min_lr_ratio;
    return (float)(o->lr * (lo + (1.0 - lo) * f));
}

float tk_adamw_clip_scale(const tk_adamw *o, double norm) {
    return o->clip > 0 && norm > o->clip ? (float)(o->clip / (norm + 1e-6)) : 1.0f;
}

void tk_adamw_step(const tk_adamw *o, tk_param_set *s, int64_t step, double *grad_norm) {
    tk_adamw_step_range(o, s, step, grad_norm, 0, s->n);
}

void tk_adamw_step_range(const tk_adamw *o, tk_param_set *s, int64_t step, double *grad_norm, int64_t first, int64_t end) {
    double norm = tk_params_grad_norm(s);
    if (grad_norm) *grad_norm = norm;
    float gscale = tk_adamw_clip_scale(o, norm);
    float lr0 = tk_lr_at(o, step);
    double t = (double)(step + 1);
    float bc1 = (float)(1.0 - pow(o->beta1, t)), bc2 = (float)(1.0 - pow(o->beta2, t));
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    for (int64_t i = first; i < end && i < s->n; i++) {
        tk_param *p = &s->p[i];
        float wd = p->decay ? o->weight_decay : 0.0f, lr = lr0 * p->lr_mult;
        float *w = p->w, *g = p->g, *m = p->m, *v = p->v;
        #pragma omp parallel for schedule(static) if (p->n > 65536)
        for (int64_t j = 0; j < p->n; j++) {
            float gj = g[j] * gscale;
            m[j] = b1 * m[j] + (1 - b1) * gj;
            v[j] = b2 * v[j] + (1 - b2) * gj * gj;
            float mh = m[j] / bc1, vh = v[j] / bc2;
            w[j] -= lr * (mh / (sqrtf(vh) + eps) + wd * w[j]);
        }
    }
}
