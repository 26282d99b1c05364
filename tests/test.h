/* Minimal test harness: each tests/test_*.c is one binary; it exits non-zero
 * when any check fails. Shared assets are found through tk_test_shared(). */
#ifndef TK_TEST_H
#define TK_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include "takumi.h"

static int tk_test_failures = 0, tk_test_checks = 0;

#define CHECK(cond, ...) do { tk_test_checks++; if (!(cond)) { tk_test_failures++; \
    fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } } while (0)
#define CHECK_OK(expr) do { tk_status st_ = (expr); tk_test_checks++; if (st_ != TK_OK) { tk_test_failures++; \
    fprintf(stderr, "FAIL %s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #expr, tk_status_str(st_), tk_last_error()); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); tk_test_checks++; if (!(fabs(a_ - b_) <= (tol)) ) { tk_test_failures++; \
    fprintf(stderr, "FAIL %s:%d: %s=%g vs %s=%g (tol %g)\n", __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol)); } } while (0)

/* Path of an asset under ../shared (or $TAKUMI_SHARED); NULL if absent. Static buffer. */
static inline const char *tk_test_shared(const char *rel) {
    static char buf[4][4096];
    static int k = 0;
    char *b = buf[k++ & 3];
    const char *root = getenv("TAKUMI_SHARED");
    snprintf(b, 4096, "%s/%s", root && *root ? root : "../shared", rel);
    return access(b, F_OK) == 0 ? b : NULL;
}

/* A missing asset is a skip for users and a failure in CI (CI=true). Returns 1 to skip. */
static inline int tk_test_require(const char *path, const char *what) {
    if (path) return 0;
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true")) {
        fprintf(stderr, "FAIL: required asset missing in CI: %s\n", what);
        tk_test_failures++;
        return 1;
    }
    printf("SKIP: %s not found (set TAKUMI_SHARED or place ../shared)\n", what);
    return 1;
}

/* Call at the end of main: prints a summary and returns the exit code. */
static inline int tk_test_done(const char *name) {
    if (tk_test_failures) fprintf(stderr, "%s: %d of %d checks FAILED\n", name, tk_test_failures, tk_test_checks);
    else printf("%s: %d checks passed\n", name, tk_test_checks);
    return tk_test_failures ? 1 : 0;
}
/* Relative tolerance of results that must not depend on how rows are split across matmul calls (the chunked
 * LM head, a batch split in two): float32 rounding (gradients: 10x), since a BLAS may sum in an order that
 * depends on a call's row count (OpenBLAS's small-matrix kernels on Intel AVX-512 do; measured 6e-8). */
#define CHUNK_TOL 1e-6
/* UNDER_ASAN: 1 in an ASan build (model-size tests run fewer steps there) */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#endif
