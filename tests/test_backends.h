/* Runs a test body once on each backend this build has (src/backend/backend.h), selecting it
 * first: how the op tests cover every built backend. */
#ifndef TK_TESTS_TEST_BACKENDS_H
#define TK_TESTS_TEST_BACKENDS_H
#include "test.h"
#include "backend/backend.h"

static void tk_test_each_backend(void (*body)(void)) {
    int nb = 0;
    const tk_backend *const *bs = tk_backends(&nb);
    for (int b = 0; b < nb; b++) {
        CHECK_OK(tk_backend_select(bs[b]->name));
        printf("backend %s (%s)\n", bs[b]->name, bs[b]->detail);
        body();
    }
    CHECK(nb >= 1 && !strcmp(bs[0]->name, "cpu"), "the CPU backend is built and first");
}
#endif
