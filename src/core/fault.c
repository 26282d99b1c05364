/* Fault injection (build switch FAULT=1, -DTK_FAULT_INJECT): makes the Nth allocation or the
 * Nth write / fsync / rename fail, as SQLite's test harness does for its I/O paths, so a test
 * can walk N over a whole run and check that every failure is reported and loses nothing.
 *   TAKUMI_FAULT=io:N      the Nth I/O call (tk_io_write, tk_io_fwrite, tk_io_fsync, tk_io_rename) fails (ENOSPC / EIO)
 *   TAKUMI_FAULT=alloc:N   the Nth tk_malloc / tk_calloc / tk_realloc returns NULL
 *   TAKUMI_FAULT_COUNT=1   at exit, print "fault points: io X alloc Y" to stderr (how far to walk)
 * Without the switch nothing here is compiled in and the wrappers are the plain calls. */
#include "core/core.h"
#ifdef TK_FAULT_INJECT
#include <stdio.h>
#include <pthread.h>

static long g_target = -1;
static int g_kind = -1;
static long g_count[2];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void report(void) {
    fprintf(stderr, "fault points: io %ld alloc %ld\n", __atomic_load_n(&g_count[TK_FAULT_IO], __ATOMIC_RELAXED),
            __atomic_load_n(&g_count[TK_FAULT_ALLOC], __ATOMIC_RELAXED));
}

static void init(void) {
    const char *e = getenv("TAKUMI_FAULT");
    if (e) {
        if (!strncmp(e, "io:", 3)) { g_kind = TK_FAULT_IO; g_target = atol(e + 3); }
        else if (!strncmp(e, "alloc:", 6)) { g_kind = TK_FAULT_ALLOC; g_target = atol(e + 6); }
    }
    const char *c = getenv("TAKUMI_FAULT_COUNT");
    if (c && *c == '1') atexit(report);
}

bool tk_fault_hit(int kind) {
    pthread_once(&g_once, init);
    long n = __atomic_add_fetch(&g_count[kind], 1, __ATOMIC_RELAXED);
    return kind == g_kind && n == g_target;
}
#endif
