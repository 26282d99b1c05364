/* Growable buffers, RNG, clock, thread count. */
#include "core/core.h"
#include <stdio.h>
#include <math.h>
#include <time.h>
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#endif

tk_status tk_buf_reserve(tk_buf *b, size_t extra) {
    size_t need;
    if (!tk_add_ok(b->len, extra, &need)) return tk_fail(TK_ERR_NOMEM, "buffer size overflow");
    if (need <= b->cap) return TK_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) { if (cap > SIZE_MAX / 2) { cap = need; break; } cap *= 2; }
    char *p = tk_realloc(b->data, cap);
    if (!p) return TK_ERR_NOMEM;
    b->data = p; b->cap = cap;
    return TK_OK;
}
tk_status tk_buf_append(tk_buf *b, const void *p, size_t n) {
    tk_status st = tk_buf_reserve(b, n + 1);
    if (st) return st;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return TK_OK;
}
tk_status tk_buf_printf(tk_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { va_end(ap2); return tk_fail(TK_ERR_INTERNAL, "printf format error"); }
    tk_status st = tk_buf_reserve(b, (size_t)n + 1);
    if (st) { va_end(ap2); return st; }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return TK_OK;
}
void tk_buf_free(tk_buf *b) { free(b->data); memset(b, 0, sizeof *b); }

tk_status tk_ivec_reserve(tk_ivec *v, size_t extra) {
    size_t need;
    if (!tk_add_ok(v->len, extra, &need)) return tk_fail(TK_ERR_NOMEM, "vector size overflow");
    if (need <= v->cap) return TK_OK;
    size_t cap = v->cap ? v->cap : 16;
    while (cap < need) cap *= 2;
    size_t bytes;
    if (!tk_mul_ok(cap, sizeof(int32_t), &bytes)) return tk_fail(TK_ERR_NOMEM, "vector size overflow");
    int32_t *p = tk_realloc(v->data, bytes);
    if (!p) return TK_ERR_NOMEM;
    v->data = p; v->cap = cap;
    return TK_OK;
}
tk_status tk_ivec_push(tk_ivec *v, int32_t x) {
    if (v->len == v->cap) { tk_status st = tk_ivec_reserve(v, 1); if (st) return st; }
    v->data[v->len++] = x;
    return TK_OK;
}
void tk_ivec_free(tk_ivec *v) { free(v->data); memset(v, 0, sizeof *v); }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = *x;
    *x += 0x9e3779b97f4a7c15ULL;
    return tk_mix64(z);
}
void tk_rng_seed(tk_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
uint64_t tk_rng_u64(tk_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}
float tk_rng_uniform(tk_rng *r) { return (float)(tk_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }
float tk_rng_normal(tk_rng *r) {
    float u1 = tk_rng_uniform(r), u2 = tk_rng_uniform(r);
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

double tk_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int g_threads = 0;
void tk_set_threads(int n) {
    g_threads = n;
#ifdef TK_HAVE_OPENMP
    /* 0: every core, unless OMP_NUM_THREADS says otherwise (OpenMP read it at start-up) */
    static int initial = -1;
    if (initial < 0) {
        const char *e = getenv("OMP_NUM_THREADS");
        initial = e && atoi(e) > 0 ? omp_get_max_threads() : 0;
    }
    omp_set_num_threads(n > 0 ? n : initial > 0 ? initial : omp_get_num_procs());
#endif
}
int tk_get_threads(void) {
#ifdef TK_HAVE_OPENMP
    return g_threads > 0 ? g_threads : omp_get_max_threads();
#else
    return 1;
#endif
}
