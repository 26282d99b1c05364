/* `data split`: train / valid / test files without leakage.
 *
 * Pass 1 analyses every record (as `check` does, without tokens or PII) and joins
 * records that must share a split into groups with union-find: exact duplicates (same
 * normalised content), near-duplicates (MinHash + LSH, as in check) and records with the
 * same prompt. Groups are shuffled with the seed and dealt, one at a time, to the split
 * furthest below its target share — per label when the data is classification
 * (stratified). Pass 2 re-reads the file and copies each record's bytes to its file.
 * Same input + same seed -> byte-identical outputs. */
#include "data/data_internal.h"
#include <errno.h>
#include <sys/stat.h>
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#endif

tk_data_split_params tk_data_split_default_params(void) {
    tk_data_split_params p;
    memset(&p, 0, sizeof p);
    p.ratios[0] = 80; p.ratios[1] = 10; p.ratios[2] = 10;
    p.seed = 42;
    p.format = TK_DATA_AUTO;
    p.near_dup_threshold = 0.8;
    p.stratify = true;
    return p;
}

void tk_data_split_result_free(tk_data_split_result *res) {
    if (!res) return;
    for (int k = 0; k < 3; k++) { free(res->paths[k]); res->paths[k] = NULL; }
}

typedef struct rec_info {
    uint64_t h_exact, h_prompt, h_label;
    uint8_t has_prompt;
} rec_info;

typedef struct grp { uint32_t root, size; uint32_t stratum; } grp;

static void emit(const tk_data_split_params *p, tk_data_severity sev, uint64_t line, uint64_t record, const char *cat, const char *msg) {
    if (!p->on_finding) return;
    tk_data_finding f = {sev, line, record, cat, msg};
    p->on_finding(&f, p->user);
}

typedef struct kv { uint64_t key; uint32_t idx; } kv;
static int cmp_kv(const void *x, const void *y) {
    const kv *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static tk_status union_equal(tk_uf *uf, const rec_info *ri, size_t n, bool prompt) {
    kv *v = tk_malloc((n ? n : 1) * sizeof *v);
    if (!v) return TK_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (prompt && !ri[i].has_prompt) continue;
        v[m].key = prompt ? ri[i].h_prompt : ri[i].h_exact;
        v[m].idx = (uint32_t)i;
        m++;
    }
    if (m > 1) qsort(v, m, sizeof *v, cmp_kv);
    for (size_t i = 1; i < m; i++) if (v[i].key == v[i - 1].key) tk_uf_union(uf, v[i - 1].idx, v[i].idx);
    free(v);
    return TK_OK;
}

static const char *ext_of(tk_data_container c) {
    switch (c) {
    case TK_DATA_JSON_ARRAY: return "json";
    case TK_DATA_TSV: return "tsv";
    case TK_DATA_TXT: return "txt";
    case TK_DATA_CSV: return "csv";
    default: return "jsonl";
    }
}

tk_status tk_data_split(const char *in_path, const char *out_dir, const tk_data_split_params *params, tk_data_split_result *res) {
    tk_data_split_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    if (!in_path || !out_dir) return tk_fail(TK_ERR_ARG, "tk_data_split: input and output folder are required");
    tk_data_split_params p = params ? *params : tk_data_split_default_params();
    double tot = 0;
    for (int k = 0; k < 3; k++) {
        if (!(p.ratios[k] >= 0) || p.ratios[k] > 1e9) return tk_fail(TK_ERR_ARG, "split ratios must be non-negative numbers");
        tot += p.ratios[k];
    }
    if (tot <= 0) return tk_fail(TK_ERR_ARG, "split ratios must not all be zero");
    if (!(p.near_dup_threshold > 0 && p.near_dup_threshold <= 1)) p.near_dup_threshold = 0.8; /* NaN too */

    tk_layout lay;
    tk_status st = tk_layout_open(in_path, NULL, 0, NULL, TK_DATA_CONTAINER_AUTO, p.format, p.map, 0, &lay);
    if (st) return st;
    tk_reader *rd = NULL;
    tk_data_container cont = lay.container;
    if (lay.format == TK_DATA_AUTO) {
        tk_layout_free(&lay);
        return tk_fail(TK_ERR_FORMAT, "%s: cannot tell the format of the records; use --format (or --map)", in_path);
    }
    if ((st = tk_layout_reader(&lay, in_path, NULL, 0, NULL, 0, &rd))) { tk_layout_free(&lay); return st; }

    int nt = tk_get_threads();
    if (nt < 1) nt = 1;
    if (nt > 64) nt = 64;
    tk_analyzer *an = NULL;
    tk_analyze_opts ao = {.layout = &lay, .sig = true};
    st = tk_analyzer_new(&ao, nt, &an);

    /* ---- pass 1: analyse ---- */
    rec_info *ri = NULL;
    uint16_t *sigs = NULL;
    uint8_t *has_sig = NULL;
    size_t n = 0, cap = 0;
    uint64_t n_errors = 0;
    enum { B = 2048 };
    tk_raw *items = tk_malloc(B * sizeof *items);
    size_t *offs = tk_malloc(B * sizeof *offs);
    tk_rec_out *outs = tk_calloc(B, sizeof *outs);
    tk_buf arena = {0};
    bool has_header = false;
    if (!items || !offs || !outs) st = TK_ERR_NOMEM;
    bool done = false;
    while (!st && !done) {
        size_t m = 0;
        arena.len = 0;
        while (m < B && arena.len < ((size_t)32 << 20)) {
            tk_raw raw;
            bool has;
            if ((st = tk_reader_next(rd, &raw, &has))) break;
            if (!has) { done = true; break; }
            if (raw.kind == TK_RAW_BLANK) continue;
            if (raw.kind == TK_RAW_HEADER) { has_header = true; continue; }
            if (raw.kind == TK_RAW_FATAL) {
                emit(&p, TK_DATA_ERROR, raw.line, raw.record, "json_syntax", raw.msg);
                n_errors++;
                done = true;
                break;
            }
            items[m] = raw;
            offs[m] = arena.len;
            if (raw.kind == TK_RAW_RECORD && (st = tk_buf_append(&arena, raw.data, raw.len + 1))) break;
            m++;
        }
        if (st) break;
        for (size_t i = 0; i < m; i++) if (items[i].kind == TK_RAW_RECORD) items[i].data = arena.data + offs[i];
#ifdef TK_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 8) num_threads(nt) if (m > 16 && nt > 1)
#endif
        for (size_t i = 0; i < m; i++) {
            int slot = 0;
#ifdef TK_HAVE_OPENMP
            slot = omp_get_thread_num();
#endif
            tk_analyze(an, slot, &items[i], &outs[i]);
        }
        for (size_t i = 0; i < m && !st; i++) {
            tk_rec_out *o = &outs[i];
            if (o->kind == TK_RAW_TOO_LONG) {
                char msg[128];
                snprintf(msg, sizeof msg, "%.1f MB is longer than the %.0f MiB limit", (double)o->len / 1e6, (double)TK_DATA_DEFAULT_MAX_LINE / (1 << 20));
                emit(&p, TK_DATA_ERROR, o->line, o->record, "line_too_long", msg);
                n_errors++;
            }
            for (size_t k = 0; k < o->fs.n; k++)
                if (o->fs.v[k].severity == TK_DATA_ERROR) { emit(&p, TK_DATA_ERROR, o->line, o->record, o->fs.v[k].category, o->fs.v[k].message); n_errors++; }
            if (n == cap) {
                size_t c = cap ? cap * 2 : 4096;
                rec_info *a = tk_realloc(ri, c * sizeof *a);
                if (a) ri = a;
                uint16_t *s = a ? tk_realloc(sigs, c * TK_MINHASH_N * sizeof *s) : NULL;
                if (s) sigs = s;
                uint8_t *h = s ? tk_realloc(has_sig, c) : NULL;
                if (h) has_sig = h;
                if (!a || !s || !h) { st = TK_ERR_NOMEM; break; }
                cap = c;
            }
            ri[n].h_exact = o->valid ? o->h_exact : tk_hash64(&n, sizeof n, 99);  /* invalid: unique */
            ri[n].h_prompt = o->h_prompt;
            ri[n].has_prompt = o->valid && o->has_prompt;
            ri[n].h_label = o->label ? tk_hash64(o->label, strlen(o->label), 5) : 0;
            has_sig[n] = o->valid && o->has_sig;
            memcpy(sigs + n * TK_MINHASH_N, o->sig, sizeof o->sig);
            n++;
        }
        for (size_t i = 0; i < m; i++) tk_rec_out_clear(&outs[i]);
    }
    free(items); free(offs); free(outs);
    tk_buf_free(&arena);
    tk_analyzer_free(an);
    tk_reader_close(rd);
    rd = NULL;
    if (!st && n_errors)
        st = tk_fail(TK_ERR_FORMAT, "%s: %llu error%s in the data; fix them first (takumi data check shows them all)", in_path,
                     (unsigned long long)n_errors, n_errors == 1 ? "" : "s");
    if (!st && n == 0) st = tk_fail(TK_ERR_FORMAT, "%s: the file holds no records", in_path);
    if (!st && n > UINT32_MAX) st = tk_fail(TK_ERR_RANGE, "%s: more than 4 billion records", in_path);

    /* ---- groups ---- */
    tk_uf uf = {0};
    grp *groups = NULL;
    uint8_t *split_of = NULL;
    size_t n_groups = 0;
    if (!st) st = tk_uf_init(&uf, n);
    if (!st) st = union_equal(&uf, ri, n, false);
    if (!st) st = union_equal(&uf, ri, n, true);
    if (!st) st = tk_near_dup_union(sigs, has_sig, n, p.near_dup_threshold, &uf);
    free(sigs); sigs = NULL;
    free(has_sig); has_sig = NULL;
    uint32_t *gidx = NULL;
    if (!st) {
        gidx = tk_malloc(n * sizeof *gidx);   /* root -> group index */
        groups = tk_malloc(n * sizeof *groups);
        split_of = tk_malloc(n);
        if (!gidx || !groups || !split_of) st = TK_ERR_NOMEM;
    }
    if (!st) {
        for (size_t i = 0; i < n; i++) {
            uint32_t r = tk_uf_find(&uf, (uint32_t)i);
            if (r == i) { gidx[i] = (uint32_t)n_groups; groups[n_groups++] = (grp){r, 0, 0}; }
            groups[gidx[r]].size++;
            if (groups[gidx[r]].size == 2) res->n_groups++;
        }
        /* strata: the label of the group's first record (classification) */
        bool strat = p.stratify && lay.format == TK_DATA_CLASSIFICATION;
        uint64_t *skeys = NULL;
        size_t n_strata = 1;
        if (strat) {
            kv *v = tk_malloc(n_groups * sizeof *v);
            skeys = tk_malloc(n_groups * sizeof *skeys);
            if (!v || !skeys) st = TK_ERR_NOMEM;
            else {
                for (size_t g = 0; g < n_groups; g++) { v[g].key = ri[groups[g].root].h_label; v[g].idx = (uint32_t)g; }
                qsort(v, n_groups, sizeof *v, cmp_kv);
                n_strata = 0;
                for (size_t g = 0; g < n_groups; g++) {
                    if (g == 0 || v[g].key != v[g - 1].key) n_strata++;
                    groups[v[g].idx].stratum = (uint32_t)(n_strata - 1);
                }
            }
            free(v);
        }
        free(skeys);
        /* shuffle groups (Fisher–Yates with the seed), then deal each to the split furthest below target */
        uint64_t *cnt = st ? NULL : tk_calloc(n_strata * 3 + n_strata, sizeof *cnt);
        if (!st && !cnt) st = TK_ERR_NOMEM;
        if (!st) {
            tk_rng rng;
            tk_rng_seed(&rng, p.seed);
            for (size_t g = n_groups; g > 1; g--) {
                size_t j = (size_t)(tk_rng_u64(&rng) % g);
                grp t = groups[g - 1]; groups[g - 1] = groups[j]; groups[j] = t;
            }
            uint64_t *tot_s = cnt + n_strata * 3;
            for (size_t g = 0; g < n_groups; g++) {
                uint32_t s = groups[g].stratum;
                uint64_t after = tot_s[s] + groups[g].size;
                int best = -1;
                double best_def = 0;
                for (int k = 0; k < 3; k++) {
                    if (p.ratios[k] <= 0) continue;
                    double def = p.ratios[k] / tot * (double)after - (double)cnt[s * 3 + k];
                    if (best < 0 || def > best_def + 1e-12) { best = k; best_def = def; }
                }
                cnt[s * 3 + best] += groups[g].size;
                tot_s[s] = after;
                split_of[groups[g].root] = (uint8_t)best;
            }
            for (size_t i = 0; i < n; i++) split_of[i] = split_of[tk_uf_find(&uf, (uint32_t)i)];
        }
        free(cnt);
    }
    free(gidx);
    free(groups);
    tk_uf_free(&uf);
    free(ri);

    /* ---- pass 2: write ---- */
    tk_outfile of[3];
    memset(of, 0, sizeof of);
    static const char *const names[3] = {"train", "valid", "test"};
    if (!st) {
        struct stat sb;
        if (stat(out_dir, &sb) == 0) { if (!S_ISDIR(sb.st_mode)) st = tk_fail(TK_ERR_IO, "%s: exists and is not a folder", out_dir); }
        else if (mkdir(out_dir, 0755) != 0) st = tk_fail(TK_ERR_IO, "%s: cannot create the folder: %s", out_dir, strerror(errno));
    }
    for (size_t i = 0; i < n && !st; i++) res->counts[split_of[i]]++;
    for (int k = 0; k < 3 && !st; k++) {
        if (!res->counts[k]) continue;
        size_t l = strlen(out_dir) + 32;
        res->paths[k] = tk_malloc(l);
        if (!res->paths[k]) { st = TK_ERR_NOMEM; break; }
        snprintf(res->paths[k], l, "%s/%s.%s", out_dir, names[k], ext_of(cont));
        st = tk_outfile_open(&of[k], res->paths[k]);
    }
    if (!st) st = tk_layout_reader(&lay, in_path, NULL, 0, NULL, 0, &rd);
    size_t idx = 0;
    uint64_t written[3] = {0};
    while (!st) {
        tk_raw raw;
        bool has;
        if ((st = tk_reader_next(rd, &raw, &has)) || !has) break;
        if (raw.kind == TK_RAW_BLANK) continue;
        if (raw.kind == TK_RAW_HEADER) {
            for (int k = 0; k < 3 && !st; k++)
                if (of[k].fp) { st = tk_outfile_write(&of[k], raw.data ? raw.data : "", raw.data ? raw.len : 0); if (!st) st = tk_outfile_write(&of[k], "\n", 1); }
            continue;
        }
        if (raw.kind != TK_RAW_RECORD || idx >= n) { st = tk_fail(TK_ERR_IO, "%s: changed while it was being split", in_path); break; }
        int k = split_of[idx++];
        if (cont == TK_DATA_JSON_ARRAY) st = tk_outfile_write(&of[k], written[k] ? ",\n  " : "[\n  ", written[k] ? 4 : 4);
        if (!st) st = tk_outfile_write(&of[k], raw.data, raw.len);
        if (!st && cont != TK_DATA_JSON_ARRAY) st = tk_outfile_write(&of[k], "\n", 1);
        written[k]++;
    }
    if (!st && idx != n) st = tk_fail(TK_ERR_IO, "%s: changed while it was being split", in_path);
    for (int k = 0; k < 3 && !st; k++)
        if (of[k].fp && cont == TK_DATA_JSON_ARRAY) st = tk_outfile_write(&of[k], "\n]\n", 3);
    for (int k = 0; k < 3; k++) {
        if (!of[k].fp) continue;
        if (st) tk_outfile_abort(&of[k]);
        else st = tk_outfile_commit(&of[k]);
    }
    (void)has_header;
    tk_reader_close(rd);
    tk_layout_free(&lay);
    free(split_of);
    if (st) tk_data_split_result_free(res);
    return st;
}
