/* AdamW against a hand-derived double-precision reference; schedules; clipping. */
#include "test.h"
#include "train/optim.h"

int main(void) {
    tk_param_set s = {0};
    tk_param *p;
    int64_t ne[1] = {3};
    CHECK_OK(tk_params_add(&s, "w", 1, ne, NULL, true, &p));
    double w[3] = {0.5, -1.0, 2.0}, m[3] = {0}, v[3] = {0};
    for (int i = 0; i < 3; i++) p->w[i] = (float)w[i];
    tk_adamw o = tk_adamw_default();
    o.lr = 0.1f; o.weight_decay = 0.01f; o.clip = 0; o.sched = TK_SCHED_CONSTANT;
    for (int step = 0; step < 5; step++) {
        /* gradient of f(w) = sum w^2 */
        for (int i = 0; i < 3; i++) p->g[i] = (float)(2 * w[i]);
        tk_adamw_step(&o, &s, step, NULL);
        for (int i = 0; i < 3; i++) {
            double g = 2 * w[i];
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            double mh = m[i] / (1 - pow(0.9, step + 1)), vh = v[i] / (1 - pow(0.999, step + 1));
            w[i] -= 0.1 * (mh / (sqrt(vh) + 1e-8) + 0.01 * w[i]);
        }
    }
    for (int i = 0; i < 3; i++) CHECK_NEAR(p->w[i], w[i], 1e-5);

    /* clipping: norm 5 clipped to 1 scales the first moment by 1/5 */
    tk_params_zero_grad(&s);
    p->g[0] = 3; p->g[1] = 4; p->g[2] = 0;
    CHECK_NEAR(tk_params_grad_norm(&s), 5.0, 1e-9);
    memset(p->m, 0, 3 * sizeof(float)); memset(p->v, 0, 3 * sizeof(float));
    o.clip = 1.0f;
    double gn;
    tk_adamw_step(&o, &s, 0, &gn);
    CHECK_NEAR(gn, 5.0, 1e-6);
    CHECK_NEAR(p->m[0], 0.1 * 3.0 / 5.0, 1e-6);
    CHECK_NEAR(p->m[1], 0.1 * 4.0 / 5.0, 1e-6);

    /* schedules */
    tk_adamw c = tk_adamw_default();
    c.lr = 1.0f; c.warmup = 10; c.total = 110; c.sched = TK_SCHED_COSINE;
    CHECK_NEAR(tk_lr_at(&c, 0), 0.1, 1e-6);
    CHECK_NEAR(tk_lr_at(&c, 9), 1.0, 1e-6);
    CHECK_NEAR(tk_lr_at(&c, 60), 0.5, 1e-6);
    CHECK_NEAR(tk_lr_at(&c, 110), 0.0, 1e-6);
    c.sched = TK_SCHED_LINEAR;
    CHECK_NEAR(tk_lr_at(&c, 35), 0.75, 1e-6);
    c.sched = TK_SCHED_CONSTANT;
    CHECK_NEAR(tk_lr_at(&c, 100), 1.0, 1e-6);
    tk_params_free(&s);
    return tk_test_done("test_optim");
}
