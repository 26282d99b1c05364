/* Findings of the data toolkit collected by a test (tests/test_data.c, tests/test_data_map.c). */
#ifndef TK_TEST_DATA_FINDINGS_H
#define TK_TEST_DATA_FINDINGS_H
#include "test.h"
#include <stdio.h>
#include <string.h>

typedef struct fnd { uint64_t line, record; char cat[48]; int sev; char msg[400]; } fnd;
typedef struct fset { fnd v[256]; int n; } fset;

/* A tk_data_finding_fn: keeps the first 256 findings of the fset passed as user. */
static void collect(const tk_data_finding *f, void *u) {
    fset *s = u;
    if (s->n >= 256) return;
    fnd *d = &s->v[s->n++];
    d->line = f->line;
    d->record = f->record;
    d->sev = f->severity;
    snprintf(d->cat, sizeof d->cat, "%s", f->category);
    snprintf(d->msg, sizeof d->msg, "%s", f->message);
}

/* Findings of category cat at line. */
static inline int count(const fset *s, uint64_t line, const char *cat) {
    int n = 0;
    for (int i = 0; i < s->n; i++) n += s->v[i].line == line && !strcmp(s->v[i].cat, cat);
    return n;
}

/* The first finding of category cat at line, or NULL. */
static inline const fnd *find(const fset *s, uint64_t line, const char *cat) {
    for (int i = 0; i < s->n; i++) if (s->v[i].line == line && !strcmp(s->v[i].cat, cat)) return &s->v[i];
    return NULL;
}
/* tk_data_check of path (format fmt, map may be NULL), its findings in fs; NULL (a failed check) when it fails. */
static inline tk_data_report *run_check(const char *path, tk_data_format fmt, const tk_data_map *map, fset *fs, int threads) {
    tk_data_check_params p = tk_data_check_default_params();
    p.format = fmt;
    p.map = map;
    p.threads = threads;
    p.on_finding = collect;
    p.user = fs;
    fs->n = 0;
    tk_data_report *r = NULL;
    tk_status st = tk_data_check(path, &p, &r);
    CHECK(st == TK_OK, "check %s: %s", path, tk_last_error());
    return r;
}
#endif
