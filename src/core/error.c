/* Thread-local error messages and allocation wrappers. */
#include "core/core.h"
#include <stdio.h>
#include <errno.h>

static _Thread_local char g_err[1024];

const char *tk_last_error(void) { return g_err; }
void tk_clear_error(void) { g_err[0] = 0; }

const char *tk_status_str(tk_status st) {
    switch (st) {
    case TK_OK: return "ok";
    case TK_ERR_ARG: return "invalid argument";
    case TK_ERR_IO: return "I/O error";
    case TK_ERR_FORMAT: return "format error";
    case TK_ERR_UNSUPPORTED: return "unsupported";
    case TK_ERR_NOMEM: return "out of memory";
    case TK_ERR_NOT_FOUND: return "not found";
    case TK_ERR_RANGE: return "out of range";
    case TK_ERR_INTERNAL: return "internal error";
    case TK_ERR_BUSY: return "in use";
    }
    return "unknown status";
}

tk_status tk_fail(tk_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}

tk_status tk_fail_ctx(tk_status st, const char *fmt, ...) {
    char prev[sizeof g_err], pre[512];
    memcpy(prev, g_err, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(g_err, sizeof g_err, "%s%s", pre, prev);
    return st;
}

void *tk_malloc(size_t n) {
    void *p = TK_FAULT(TK_FAULT_ALLOC) ? NULL : malloc(n ? n : 1);
    if (!p) tk_fail(TK_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}
void *tk_calloc(size_t n, size_t size) {
    void *p = TK_FAULT(TK_FAULT_ALLOC) ? NULL : calloc(n ? n : 1, size ? size : 1);
    if (!p) tk_fail(TK_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
void *tk_realloc(void *q, size_t n) {
    void *p = TK_FAULT(TK_FAULT_ALLOC) ? NULL : realloc(q, n ? n : 1);
    if (!p) tk_fail(TK_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}
char *tk_strndup(const char *s, size_t n) {
    char *p = tk_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}
char *tk_strdup(const char *s) { return tk_strndup(s, strlen(s)); }
