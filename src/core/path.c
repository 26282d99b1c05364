/* Path and string helpers shared by every layer (one copy each). */
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *tk_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = tk_malloc(n);
    if (s) snprintf(s, n, "%s%s%s", dir, (*dir && dir[strlen(dir) - 1] == '/') ? "" : "/", name);
    return s;
}

bool tk_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

char *tk_path_abs(const char *p) {
    if (!p) return NULL;
    char *r = realpath(p, NULL); /* existing paths: canonical, symlinks resolved */
    if (r) return r;
    if (p[0] == '/') return tk_strdup(p);
    char *cwd = getcwd(NULL, 0);
    if (!cwd) return tk_strdup(p);
    char *j = tk_path_join(cwd, p);
    free(cwd);
    return j;
}
