/* tk_scratch (takumi/peft.h): a workspace's growable f32 buffer for adapter calls. */
#include "takumi/peft.h"
#include "core/core.h"

float *tk_scratch_get(tk_scratch *s, size_t n) {
    if (n <= s->n && s->p) return s->p;
    size_t bytes;
    if (!tk_mul_ok(n ? n : 1, sizeof(float), &bytes)) return NULL;
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, bytes) != 0) return NULL;
    free(s->p);
    s->p = p;
    s->n = n;
    return p;
}

void tk_scratch_free(tk_scratch *s) {
    free(s->p);
    s->p = NULL;
    s->n = 0;
}
