/* `data check`: reads a data file in batches, analyses each batch's records in
 * parallel (OpenMP; one scratch slot per thread), then merges the results strictly in
 * line order, so findings stream out in order and the report is the same for any
 * thread count. After the last batch: duplicate groups (exact hashes), near-duplicate
 * groups (MinHash + LSH banding, union-find), prompt/answer conflicts, statistics,
 * cost and the verdict. */
#include "data/data_internal.h"
#include <math.h>
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#endif

#define BATCH_RECORDS 4096
#define BATCH_BYTES ((size_t)32 << 20)

tk_data_check_params tk_data_check_default_params(void) {
    tk_data_check_params p;
    memset(&p, 0, sizeof p);
    p.format = TK_DATA_AUTO;
    p.container = TK_DATA_CONTAINER_AUTO;
    p.chat_family = TK_CHAT_UNKNOWN;
    p.max_line_bytes = TK_DATA_DEFAULT_MAX_LINE;
    p.near_dup_threshold = 0.8;
    return p;
}

const char *tk_data_verdict_name(tk_data_verdict v) {
    switch (v) {
    case TK_DATA_READY: return "ready";
    case TK_DATA_READY_WITH_WARNINGS: return "ready with warnings";
    case TK_DATA_NOT_READY: return "not ready";
    }
    return "?";
}

int tk_data_auto_epochs(uint64_t n) {
    if (n == 0) return 0;
    uint64_t e = 3;
    if (n * 3 < 100) { e = (100 + n - 1) / n; if (e > 25) e = 25; }
    else if (n * 3 > 25000) { e = 25000 / n; if (e < 1) e = 1; }
    return (int)e;
}

/* ---- union-find and near duplicates ---------------------------------------- */
tk_status tk_uf_init(tk_uf *u, size_t n) {
    u->n = n;
    u->parent = tk_malloc((n ? n : 1) * sizeof *u->parent);
    if (!u->parent) return TK_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) u->parent[i] = (uint32_t)i;
    return TK_OK;
}
uint32_t tk_uf_find(tk_uf *u, uint32_t x) {
    while (u->parent[x] != x) { u->parent[x] = u->parent[u->parent[x]]; x = u->parent[x]; }
    return x;
}
void tk_uf_union(tk_uf *u, uint32_t a, uint32_t b) {
    a = tk_uf_find(u, a); b = tk_uf_find(u, b);
    if (a == b) return;
    if (a < b) u->parent[b] = a; else u->parent[a] = b;   /* smallest index is the root: deterministic */
}
void tk_uf_free(tk_uf *u) { free(u->parent); u->parent = NULL; u->n = 0; }

typedef struct kv { uint64_t key; uint32_t idx; } kv;
static int cmp_kv(const void *x, const void *y) {
    const kv *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int sim(const uint16_t *a, const uint16_t *b) {
    int s = 0;
    for (int i = 0; i < TK_MINHASH_N; i++) s += a[i] == b[i];
    return s;
}

tk_status tk_near_dup_union(const uint16_t *sigs, const uint8_t *has, size_t n, double threshold, tk_uf *uf) {
    int need = (int)ceil(threshold * TK_MINHASH_N - 1e-9);
    if (need < 1) need = 1;
    kv *v = tk_malloc((n ? n : 1) * sizeof *v);
    if (!v) return TK_ERR_NOMEM;
    const int rows = TK_MINHASH_N / TK_LSH_BANDS;
    for (int band = 0; band < TK_LSH_BANDS; band++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!has[i]) continue;
            const uint16_t *s = sigs + i * TK_MINHASH_N + band * rows;
            uint64_t key = 0;
            for (int r = 0; r < rows; r++) key = (key << 16) | s[r];
            v[m].key = key;
            v[m].idx = (uint32_t)i;
            m++;
        }
        if (m > 1) qsort(v, m, sizeof *v, cmp_kv);
        for (size_t i = 0; i < m;) {
            size_t j = i + 1;
            while (j < m && v[j].key == v[i].key) j++;
            for (size_t k = i + 1; k < j; k++) {
                const uint16_t *sk = sigs + (size_t)v[k].idx * TK_MINHASH_N;
                if (sim(sigs + (size_t)v[i].idx * TK_MINHASH_N, sk) >= need) tk_uf_union(uf, v[i].idx, v[k].idx);
                else if (k > i + 1 && sim(sigs + (size_t)v[k - 1].idx * TK_MINHASH_N, sk) >= need) tk_uf_union(uf, v[k - 1].idx, v[k].idx);
            }
            i = j;
        }
    }
    free(v);
    return TK_OK;
}

/* ---- growable arrays -------------------------------------------------------- */
#define GROW(ptr, n, cap, st) do { if ((n) == (cap)) { size_t c_ = (cap) ? (cap) * 2 : 1024; \
    void *p_ = tk_realloc((ptr), c_ * sizeof *(ptr)); if (!p_) { st = TK_ERR_NOMEM; } else { (ptr) = p_; (cap) = c_; } } } while (0)

typedef struct u64set { uint64_t *v; size_t cap, n; } u64set;
/* Inserts x (x != 0); returns 1 if new, 0 if present, -1 on allocation failure. */
static int set_add(u64set *s, uint64_t x) {
    if (!x) x = 1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint64_t *v = calloc(cap, sizeof *v);
        if (!v) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->v[i]) continue;
            size_t h = (size_t)(s->v[i] * 0x9E3779B97F4A7C15ULL) & (cap - 1);
            while (v[h]) h = (h + 1) & (cap - 1);
            v[h] = s->v[i];
        }
        free(s->v);
        s->v = v; s->cap = cap;
    }
    size_t h = (size_t)(x * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);
    while (s->v[h]) { if (s->v[h] == x) return 0; h = (h + 1) & (s->cap - 1); }
    s->v[h] = x;
    s->n++;
    return 1;
}

#define MAX_LABELS 1000
#define MAX_SYSTEM_LIST 10

typedef struct acc {
    tk_data_report *r;
    const tk_data_check_params *p;
    tk_status st;
    /* per valid example */
    size_t n, cap;
    uint64_t *lines;
    uint32_t *msgs, *toks, *asst;
    uint64_t *h_exact, *h_prompt, *h_answer;
    uint8_t *has_prompt, *has_sig;
    uint16_t *sigs;
    size_t cap_sig;
    /* counts by category */
    tk_data_count *errs, *warns;
    size_t n_errs, n_warns, cap_errs, cap_warns;
    u64set systems;
    uint64_t sys_hash[MAX_SYSTEM_LIST];
    u64set labels_seen;
    uint64_t *label_hash;
} acc;

static void emit(acc *a, tk_data_severity sev, uint64_t line, uint64_t record, const char *cat, const char *msg) {
    tk_data_report *r = a->r;
    if (sev == TK_DATA_ERROR) r->n_errors++; else r->n_warnings++;
    tk_data_count **v = sev == TK_DATA_ERROR ? &a->errs : &a->warns;
    size_t *n = sev == TK_DATA_ERROR ? &a->n_errs : &a->n_warns;
    size_t *cap = sev == TK_DATA_ERROR ? &a->cap_errs : &a->cap_warns;
    size_t i;
    for (i = 0; i < *n; i++) if (!strcmp((*v)[i].name, cat)) break;
    if (i == *n) {
        tk_status st = TK_OK;
        GROW(*v, *n, *cap, st);
        if (st == TK_OK) {
            (*v)[*n].name = tk_strdup(cat);
            (*v)[*n].count = 0;
            (*v)[*n].first_line = line;
            (*n)++;
        } else a->st = st;
    }
    if (i < *n) (*v)[i].count++;
    if (a->p->on_finding) {
        tk_data_finding f = {sev, line, record, cat, msg ? msg : ""};
        a->p->on_finding(&f, a->p->user);
    }
}

static void emitf(acc *a, tk_data_severity sev, uint64_t line, uint64_t record, const char *cat, const char *fmt, ...) TK_PRINTF(6, 7);
static void emitf(acc *a, tk_data_severity sev, uint64_t line, uint64_t record, const char *cat, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(a, sev, line, record, cat, msg);
}

static tk_status lines_push(tk_data_lines *l, uint64_t line) {
    if (l->n > 0 && l->lines[l->n - 1] == line) return TK_OK;
    size_t cap = l->n ? l->n : 0;
    if (l->n == 0 || (l->n & (l->n - 1)) == 0) {   /* grow at powers of two */
        cap = l->n ? l->n * 2 : 16;
        if (l->n < 16) cap = 16;
        uint64_t *p = tk_realloc(l->lines, cap * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        l->lines = p;
    }
    l->lines[l->n++] = line;
    l->count = l->n;
    return TK_OK;
}

static void add_label(acc *a, const char *label, uint64_t line) {
    tk_data_report *r = a->r;
    uint64_t h = tk_hash64(label, strlen(label), 11);
    for (size_t i = 0; i < r->n_labels; i++)
        if (a->label_hash[i] == h && !strcmp(r->labels[i].name, label)) { r->labels[i].count++; return; }
    if (r->n_labels >= MAX_LABELS) { r->labels_truncated = true; return; }
    tk_data_count *l = tk_realloc(r->labels, (r->n_labels + 1) * sizeof *l);
    uint64_t *lh = l ? tk_realloc(a->label_hash, (r->n_labels + 1) * sizeof *lh) : NULL;
    if (l) r->labels = l;
    if (!l || !lh) { a->st = TK_ERR_NOMEM; return; }
    a->label_hash = lh;
    r->labels[r->n_labels] = (tk_data_count){tk_strdup(label), 1, line};
    a->label_hash[r->n_labels] = h;
    r->n_labels++;
}

static void merge_example(acc *a, tk_rec_out *o, tk_data_format fmt) {
    tk_data_report *r = a->r;
    const tk_data_check_params *p = a->p;
    tk_status st = TK_OK;
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 1024;
        void *q;
#define RE(f) do { q = tk_realloc(a->f, c * sizeof *a->f); if (!q) { a->st = TK_ERR_NOMEM; return; } a->f = q; } while (0)
        RE(lines); RE(msgs); RE(toks); RE(asst); RE(h_exact); RE(h_prompt); RE(h_answer); RE(has_prompt); RE(has_sig);
#undef RE
        q = tk_realloc(a->sigs, c * TK_MINHASH_N * sizeof *a->sigs);
        if (!q) { a->st = TK_ERR_NOMEM; return; }
        a->sigs = q;
        a->cap = c;
    }
    size_t i = a->n++;
    a->lines[i] = o->line;
    a->msgs[i] = o->n_msgs;
    a->toks[i] = o->tok.total;
    a->asst[i] = o->tok.assistant;
    a->h_exact[i] = o->h_exact;
    a->h_prompt[i] = o->h_prompt;
    a->h_answer[i] = o->h_answer;
    a->has_prompt[i] = o->has_prompt;
    a->has_sig[i] = o->has_sig;
    memcpy(a->sigs + i * TK_MINHASH_N, o->sig, sizeof o->sig);
    r->n_examples++;
    r->total_tokens += o->tok.total;
    r->total_assistant_tokens += o->tok.assistant;
    uint64_t billed = o->tok.total;
    if (p->max_seq > 0) {
        uint64_t ms = (uint64_t)p->max_seq;
        uint64_t nseq = fmt == TK_DATA_PREFERENCE ? 2 : 1;
        if (billed > ms * nseq) billed = ms * nseq;
        if (o->tok.longest > ms) {
            r->n_too_long++;
            r->tokens_cut += o->tok.longest - ms;
            emitf(a, TK_DATA_WARNING, o->line, o->record, "too_long",
                  "%u tokens, longer than the model's context of %lld: %llu tokens would be cut", o->tok.longest,
                  (long long)ms, (unsigned long long)(o->tok.longest - ms));
        }
    }
    r->billed_tokens += billed;   /* per epoch for now; multiplied at the end */
    if (!o->has_system) r->n_no_system++;
    if (!o->has_user) {
        r->n_no_user++;
        emit(a, TK_DATA_WARNING, o->line, o->record, "missing_user_message", "the example has no user message");
    }
    if (o->has_reply && o->empty_reply) r->n_empty_reply++;
    if (o->has_reply && !o->empty_reply && o->tok.reply < 5) r->n_short_reply++;
    if (o->has_system) {
        int isnew = set_add(&a->systems, o->h_system);
        if (isnew < 0) { a->st = TK_ERR_NOMEM; return; }
        if (isnew) {
            r->n_system_prompts++;
            if (r->n_system_prompt_list < MAX_SYSTEM_LIST) {
                a->sys_hash[r->n_system_prompt_list] = o->h_system;
                r->system_prompts[r->n_system_prompt_list++] = (tk_data_count){o->system_head ? tk_strdup(o->system_head) : NULL, 1, o->line};
            }
        } else {
            for (size_t k = 0; k < r->n_system_prompt_list; k++)
                if (a->sys_hash[k] == o->h_system) { r->system_prompts[k].count++; break; }
        }
    }
    for (int k = 0; k < TK_PII_COUNT; k++) {
        if (!o->pii[k]) continue;
        r->pii_matches[k] += o->pii[k];
        if ((st = lines_push(&r->pii[k], o->line))) { a->st = st; return; }
    }
    if (o->label) add_label(a, o->label, o->line);
    r->scripts[o->script < TK_SCRIPT_COUNT ? o->script : TK_SCRIPT_OTHER]++;
}

/* ---- contamination ------------------------------------------------------------------ */
static void against_finding(const tk_data_finding *f, void *u) {
    acc *a = u;
    emit(a, f->severity, f->line, f->record, f->category, f->message);
}

/* Indexes the --against files (their unreadable records become against_unreadable warnings). */
static tk_status start_contamination(acc *a, tk_contam_index **cx) {
    tk_data_report *r = a->r;
    const tk_data_check_params *p = a->p;
    double t = p->contamination_threshold > 0 && p->contamination_threshold <= 1 ? p->contamination_threshold : 0.8;
    r->contamination_threshold = t;
    if (!(r->against = tk_calloc(p->n_against, sizeof *r->against))) return TK_ERR_NOMEM;
    for (size_t i = 0; i < p->n_against; i++) {
        if (!(r->against[i] = tk_strdup(p->against[i]))) return TK_ERR_NOMEM;
        r->n_against = i + 1;
    }
    tk_data_check_params q = *p;
    q.on_finding = against_finding;
    q.user = a;
    uint64_t n_invalid = 0;
    tk_status st = tk_contam_index_build(p->against, p->n_against, p->map, t, &q, cx, &r->against_records, &n_invalid);
    r->against_invalid = n_invalid;
    return st;
}

static void merge_contamination(acc *a, const tk_rec_out *o) {
    tk_data_report *r = a->r;
    tk_data_contamination *v = tk_realloc(r->contamination, (r->n_contamination + o->n_hits) * sizeof *v);
    if (!v) { a->st = TK_ERR_NOMEM; return; }
    r->contamination = v;
    uint8_t best = TK_CONTAM_NEAR;
    size_t bi = 0;
    for (size_t i = 0; i < o->n_hits; i++) {
        const tk_contam_hit *h = &o->hits[i];
        v[r->n_contamination++] = (tk_data_contamination){o->line, o->record, h->file, h->eval_line, (tk_contam_kind)h->kind, h->sim};
        if (h->kind < best) { best = h->kind; bi = i; }
    }
    r->n_contaminated++;
    r->n_contam_kind[best]++;
    const tk_contam_hit *h = &o->hits[bi];
    char more[64] = "";
    if (o->n_hits > 1) snprintf(more, sizeof more, " (and %zu more match%s)", o->n_hits - 1, o->n_hits == 2 ? "" : "es");
    const char *f = r->against[h->file];
    if (h->kind == TK_CONTAM_EXACT) emitf(a, TK_DATA_ERROR, o->line, o->record, "contamination", "the same text as %s line %llu%s", f, (unsigned long long)h->eval_line, more);
    else if (h->kind == TK_CONTAM_PROMPT) emitf(a, TK_DATA_ERROR, o->line, o->record, "contamination", "the same prompt as %s line %llu%s", f, (unsigned long long)h->eval_line, more);
    else emitf(a, TK_DATA_ERROR, o->line, o->record, "contamination", "a near-duplicate of %s line %llu (Jaccard %.2f of character 5-grams)%s", f,
               (unsigned long long)h->eval_line, h->sim, more);
}

static void merge(acc *a, tk_rec_out *o, tk_data_format fmt) {
    tk_data_report *r = a->r;
    switch (o->kind) {
    case TK_RAW_BLANK:
        emit(a, TK_DATA_WARNING, o->line, 0, "blank_line", "empty line (skipped)");
        return;
    case TK_RAW_HEADER:
        return;
    case TK_RAW_TOO_LONG:
        r->n_records++;
        emitf(a, TK_DATA_ERROR, o->line, o->record, "line_too_long", "%s of %.1f MB is longer than the %.0f MiB limit; skipped",
              o->record ? "record" : "line", (double)o->len / 1e6, (double)a->p->max_line_bytes / (1 << 20));
        return;
    case TK_RAW_FATAL:
        return;   /* handled by the reader loop (needs the message) */
    case TK_RAW_RECORD:
        break;
    }
    r->n_records++;
    for (size_t i = 0; i < o->fs.n; i++)
        emit(a, (tk_data_severity)o->fs.v[i].severity, o->line, o->record, o->fs.v[i].category, o->fs.v[i].message);
    if (o->valid) merge_example(a, o, fmt);
    if (o->n_hits) merge_contamination(a, o);
}

/* ---- statistics at the end ------------------------------------------------------ */
static int cmp_u32(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* Percentile of sorted s by linear interpolation between closest ranks (numpy's default). */
static double pct(const uint32_t *s, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos, hi = lo + 1 < n ? lo + 1 : lo;
    return (double)s[lo] + ((double)s[hi] - (double)s[lo]) * (pos - (double)lo);
}

static tk_status dist(const uint32_t *v, size_t n, tk_data_dist *d) {
    memset(d, 0, sizeof *d);
    d->n = n;
    if (!n) return TK_OK;
    uint32_t *s = tk_malloc(n * sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += s[i];
    d->min = s[0];
    d->max = s[n - 1];
    d->mean = sum / (double)n;
    d->p5 = pct(s, n, 0.05);
    d->median = pct(s, n, 0.5);
    d->p95 = pct(s, n, 0.95);
    free(s);
    return TK_OK;
}

static tk_status add_group(tk_data_group **v, size_t *n, const uint64_t *lines, const kv *members, size_t m) {
    tk_data_group *g = tk_realloc(*v, (*n + 1) * sizeof *g);
    if (!g) return TK_ERR_NOMEM;
    *v = g;
    uint64_t *l = tk_malloc(m * sizeof *l);
    if (!l) return TK_ERR_NOMEM;
    for (size_t i = 0; i < m; i++) l[i] = lines[members[i].idx];
    g[*n].n = m;
    g[*n].lines = l;
    (*n)++;
    return TK_OK;
}

static tk_status groups(acc *a) {
    tk_data_report *r = a->r;
    size_t n = a->n;
    if (n < 2) return TK_OK;
    kv *v = tk_malloc(n * sizeof *v);
    if (!v) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    /* exact duplicates: equal normalised content */
    for (size_t i = 0; i < n; i++) { v[i].key = a->h_exact[i]; v[i].idx = (uint32_t)i; }
    qsort(v, n, sizeof *v, cmp_kv);
    for (size_t i = 0; i < n && !st;) {
        size_t j = i + 1;
        while (j < n && v[j].key == v[i].key) j++;
        if (j - i > 1) {
            st = add_group(&r->exact_dups, &r->n_exact_dups, a->lines, v + i, j - i);
            r->n_exact_dup_records += j - i - 1;
        }
        i = j;
    }
    /* near duplicates: union-find components holding at least two different contents */
    tk_uf uf = {0};
    if (!st) st = tk_uf_init(&uf, n);
    if (!st) st = tk_near_dup_union(a->sigs, a->has_sig, n, a->p->near_dup_threshold, &uf);
    if (!st) {
        for (size_t i = 0; i < n; i++) { v[i].key = tk_uf_find(&uf, (uint32_t)i); v[i].idx = (uint32_t)i; }
        qsort(v, n, sizeof *v, cmp_kv);
        for (size_t i = 0; i < n && !st;) {
            size_t j = i + 1;
            bool differ = false;
            while (j < n && v[j].key == v[i].key) { differ |= a->h_exact[v[j].idx] != a->h_exact[v[i].idx]; j++; }
            if (j - i > 1 && differ) st = add_group(&r->near_dups, &r->n_near_dups, a->lines, v + i, j - i);
            i = j;
        }
    }
    tk_uf_free(&uf);
    /* conflicts: same prompt, different answers */
    if (!st) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) if (a->has_prompt[i]) { v[m].key = a->h_prompt[i]; v[m].idx = (uint32_t)i; m++; }
        if (m > 1) qsort(v, m, sizeof *v, cmp_kv);
        for (size_t i = 0; i < m && !st;) {
            size_t j = i + 1;
            bool differ = false;
            while (j < m && v[j].key == v[i].key) { differ |= a->h_answer[v[j].idx] != a->h_answer[v[i].idx]; j++; }
            if (differ) st = add_group(&r->conflicts, &r->n_conflicts, a->lines, v + i, j - i);
            i = j;
        }
    }
    free(v);
    return st;
}

static int cmp_count(const void *x, const void *y) {
    const tk_data_count *a = x, *b = y;
    return strcmp(a->name, b->name);
}
static int cmp_label(const void *x, const void *y) {
    const tk_data_count *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->name, b->name);
}

static tk_status finish(acc *a) {
    tk_data_report *r = a->r;
    const tk_data_check_params *p = a->p;
    tk_status st;
    if ((st = dist(a->msgs, a->n, &r->messages))) return st;
    if ((st = dist(a->toks, a->n, &r->tokens))) return st;
    if ((st = dist(a->asst, a->n, &r->assistant_tokens))) return st;
    if ((st = groups(a))) return st;
    r->error_counts = a->errs; r->n_error_counts = a->n_errs; a->errs = NULL; a->n_errs = 0;
    r->warning_counts = a->warns; r->n_warning_counts = a->n_warns; a->warns = NULL; a->n_warns = 0;
    if (r->n_error_counts) qsort(r->error_counts, r->n_error_counts, sizeof *r->error_counts, cmp_count);
    if (r->n_warning_counts) qsort(r->warning_counts, r->n_warning_counts, sizeof *r->warning_counts, cmp_count);
    if (r->n_labels) qsort(r->labels, r->n_labels, sizeof *r->labels, cmp_label);
    r->epochs = tk_data_auto_epochs(r->n_examples);
    r->billed_tokens *= (uint64_t)r->epochs;
    r->tokens_per_second = p->tokens_per_second;
    if (p->throughput_note && !(r->throughput_note = tk_strdup(p->throughput_note))) return TK_ERR_NOMEM;
    if (p->tokens_per_second > 0) r->est_seconds = (double)r->total_tokens * r->epochs / p->tokens_per_second;
    bool warn = r->n_warnings > 0 || r->n_no_system > 0 || r->n_exact_dups > 0 || r->n_near_dups > 0 || r->n_conflicts > 0 ||
                r->n_system_prompts > 1 || r->n_examples < 10;
    for (int k = 0; k < TK_PII_COUNT; k++) warn |= r->pii_matches[k] > 0;
    if (r->n_errors > 0 || r->n_examples == 0) r->verdict = TK_DATA_NOT_READY;
    else r->verdict = warn ? TK_DATA_READY_WITH_WARNINGS : TK_DATA_READY;
    return TK_OK;
}

static void acc_free(acc *a) {
    free(a->lines); free(a->msgs); free(a->toks); free(a->asst); free(a->h_exact); free(a->h_prompt); free(a->h_answer);
    free(a->has_prompt); free(a->has_sig); free(a->sigs);
    for (size_t i = 0; i < a->n_errs; i++) free(a->errs[i].name);
    for (size_t i = 0; i < a->n_warns; i++) free(a->warns[i].name);
    free(a->errs); free(a->warns);
    free(a->systems.v);
    free(a->label_hash);
}

void tk_data_report_free(tk_data_report *r) {
    if (!r) return;
    free(r->path);
    free(r->throughput_note);
    for (size_t i = 0; i < r->n_error_counts; i++) free(r->error_counts[i].name);
    for (size_t i = 0; i < r->n_warning_counts; i++) free(r->warning_counts[i].name);
    free(r->error_counts); free(r->warning_counts);
    for (size_t i = 0; i < r->n_system_prompt_list; i++) free(r->system_prompts[i].name);
    free(r->system_prompts);
    tk_data_group *gs[3] = {r->exact_dups, r->near_dups, r->conflicts};
    size_t ns[3] = {r->n_exact_dups, r->n_near_dups, r->n_conflicts};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < ns[k]; i++) free(gs[k][i].lines);
        free(gs[k]);
    }
    for (int k = 0; k < TK_PII_COUNT; k++) free(r->pii[k].lines);
    for (size_t i = 0; i < r->n_labels; i++) free(r->labels[i].name);
    free(r->labels);
    for (size_t i = 0; i < r->n_against; i++) free(r->against[i]);
    free(r->against);
    free(r->contamination);
    free(r);
}

/* ---- the driver -------------------------------------------------------------------- */
typedef struct batch_item { tk_raw raw; size_t off; } batch_item;
typedef struct batch_set { batch_item *items; tk_rec_out *outs; tk_buf arena; size_t n; } batch_set;
typedef struct reader_state {
    tk_reader *rd;
    bool done, fatal;
    char fatal_msg[256];
    uint64_t fatal_line;
} reader_state;

/* Reads up to BATCH_RECORDS items (or BATCH_BYTES of text) into b, copying record bytes into its arena. */
static tk_status read_batch(reader_state *rs, batch_set *b) {
    b->n = 0;
    b->arena.len = 0;
    tk_status st = TK_OK;
    while (b->n < BATCH_RECORDS && b->arena.len < BATCH_BYTES) {
        tk_raw raw;
        bool has;
        if ((st = tk_reader_next(rs->rd, &raw, &has))) return st;
        if (!has) { rs->done = true; break; }
        if (raw.kind == TK_RAW_FATAL) {
            rs->fatal = rs->done = true;
            snprintf(rs->fatal_msg, sizeof rs->fatal_msg, "%s", raw.msg);
            rs->fatal_line = raw.line;
            break;
        }
        batch_item *it = &b->items[b->n];
        it->raw = raw;
        it->off = b->arena.len;
        if (raw.kind == TK_RAW_RECORD && (st = tk_buf_append(&b->arena, raw.data, raw.len + 1))) return st;
        b->n++;
    }
    for (size_t i = 0; i < b->n; i++) if (b->items[i].raw.kind == TK_RAW_RECORD) b->items[i].raw.data = b->arena.data + b->items[i].off;
    return TK_OK;
}

/* Merges an analysed batch in line order and clears its outputs. */
static void merge_batch(acc *a, batch_set *b, tk_data_format fmt) {
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].raw.first_crlf)
            emit(a, TK_DATA_WARNING, b->items[i].raw.line, b->items[i].raw.record, "crlf",
                 "Windows (CRLF) line ends from here on (accepted; the CR is ignored)");
        merge(a, &b->outs[i], fmt);
        tk_rec_out_clear(&b->outs[i]);
    }
}

static tk_status run_check(const char *path, const void *buf, size_t len, const char *name, const tk_data_check_params *params,
                           tk_data_report **out) {
    *out = NULL;
    double t0 = tk_time_s();
    tk_data_check_params p = params ? *params : tk_data_check_default_params();
    if (!p.max_line_bytes) p.max_line_bytes = TK_DATA_DEFAULT_MAX_LINE;
    if (!(p.near_dup_threshold > 0 && p.near_dup_threshold <= 1)) p.near_dup_threshold = 0.8; /* NaN too */
    int nt = p.threads > 0 ? p.threads : tk_get_threads();
    if (nt < 1) nt = 1;
    if (nt > 64) nt = 64;

    tk_layout lay;
    tk_status st = tk_layout_open(path, buf, len, name, p.container, p.format, p.map, p.max_line_bytes, &lay);
    if (st) return st;
    tk_reader *rd;
    if ((st = tk_layout_reader(&lay, path, buf, len, name, p.max_line_bytes, &rd))) { tk_layout_free(&lay); return st; }
    tk_data_container cont = lay.container;
    tk_data_format fmt = lay.format;

    tk_data_report *r = tk_calloc(1, sizeof *r);
    if (!r) { tk_reader_close(rd); tk_layout_free(&lay); return TK_ERR_NOMEM; }
    r->path = tk_strdup(path ? path : name ? name : "<memory>");
    r->system_prompts = tk_calloc(MAX_SYSTEM_LIST, sizeof *r->system_prompts);
    r->container = cont;
    r->format = fmt;
    r->format_detected = lay.detected;
    r->tokens_exact = p.tokenizer != NULL;
    r->chat_family = p.tokenizer ? p.chat_family : TK_CHAT_UNKNOWN;
    r->max_seq = p.max_seq;
    r->near_dup_threshold = p.near_dup_threshold;
    acc a = {.r = r, .p = &p};
    tk_analyzer *an = NULL;
    tk_contam_index *cx = NULL;
    if (!r->path || !r->system_prompts) st = TK_ERR_NOMEM;
    if (!st && p.n_against) st = start_contamination(&a, &cx);
    tk_analyze_opts ao = {.layout = &lay, .contam = cx, .tok = p.tokenizer, .fam = p.chat_family, .pii = true, .tokens = true, .sig = true};
    if (!st) st = tk_analyzer_new(&ao, nt, &an);

    if (!st && tk_reader_had_bom(rd))
        emit(&a, TK_DATA_WARNING, 1, 0, "byte_order_mark", "the file starts with a UTF-8 byte-order mark (ignored; some tools reject it)");
    if (!st && p.map && tk_data_map_trains_all(p.map))
        emit(&a, TK_DATA_WARNING, 0, 0, "train_all", "--map train=all: every turn trains; chat records cannot say so, so train with "
                                                      "--train-on-prompt (assistant-token counts here are the assistant turns only)");
    /* (a file whose records fit no format gets one unknown_format error per record, each with its keys) */

    /* Two batch sets: while the threads analyse one, a single thread merges the previous one
     * (findings go out in line order) and reads the next into the same set. */
    batch_set bs[2];
    memset(bs, 0, sizeof bs);
    for (int k = 0; k < 2 && !st; k++) {
        bs[k].items = tk_malloc(BATCH_RECORDS * sizeof *bs[k].items);
        bs[k].outs = tk_calloc(BATCH_RECORDS, sizeof *bs[k].outs);
        if (!bs[k].items || !bs[k].outs) st = TK_ERR_NOMEM;
    }
    reader_state rs = {.rd = rd};
    if (!st) st = read_batch(&rs, &bs[0]);
    int cur = 0;
    bool have_prev = false;
    while (!st && (bs[cur].n > 0 || have_prev)) {
        batch_set *A = &bs[cur], *P = &bs[cur ^ 1];
        tk_status side = TK_OK;
        size_t n = A->n;
#ifdef TK_HAVE_OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
        {
#ifdef TK_HAVE_OPENMP
#pragma omp single nowait
#endif
            {
                if (have_prev) merge_batch(&a, P, fmt);
                P->n = 0;
                if (!a.st && !rs.done) side = read_batch(&rs, P);
            }
#ifdef TK_HAVE_OPENMP
#pragma omp for schedule(dynamic, 8)
#endif
            for (size_t i = 0; i < n; i++) {
                int slot = 0;
#ifdef TK_HAVE_OPENMP
                slot = omp_get_thread_num();
#endif
                tk_analyze(an, slot, &A->items[i].raw, &A->outs[i]);
            }
        }
        if (side) st = side;
        if (a.st) st = a.st;
        have_prev = n > 0;
        cur ^= 1;
        if (!have_prev && bs[cur].n == 0) break;
    }
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < BATCH_RECORDS && bs[k].outs; i++) tk_rec_out_clear(&bs[k].outs[i]);
        free(bs[k].items);
        free(bs[k].outs);
        tk_buf_free(&bs[k].arena);
    }
    if (!st && rs.fatal) emit(&a, TK_DATA_ERROR, rs.fatal_line, 0, "json_syntax", rs.fatal_msg);
    r->n_lines = tk_reader_lines(rd);
    r->bytes = tk_reader_bytes(rd);
    if (!st && r->n_records == 0 && !rs.fatal)
        emit(&a, TK_DATA_ERROR, 0, 0, "empty_file", "the file holds no records");
    if (!st) st = finish(&a);
    tk_analyzer_free(an);
    tk_contam_index_free(cx);
    acc_free(&a);
    tk_reader_close(rd);
    tk_layout_free(&lay);
    if (st) { tk_data_report_free(r); return st; }
    r->seconds = tk_time_s() - t0;
    *out = r;
    return TK_OK;
}

tk_status tk_data_check(const char *path, const tk_data_check_params *params, tk_data_report **out) {
    if (!path || !out) return tk_fail(TK_ERR_ARG, "tk_data_check: path and out are required");
    return run_check(path, NULL, 0, NULL, params, out);
}

tk_status tk_data_check_buffer(const void *buf, size_t len, const char *name, const tk_data_check_params *params,
                               tk_data_report **out) {
    if ((!buf && len) || !out) return tk_fail(TK_ERR_ARG, "tk_data_check_buffer: buf and out are required");
    return run_check(NULL, buf ? buf : "", len, name, params, out);
}
