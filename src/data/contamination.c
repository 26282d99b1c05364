/* Contamination check (`data check FILE --against EVAL...`): which training records also
 * appear in evaluation or test files.
 *
 * Every record is reduced to the normalised text of its non-system messages (and its label),
 * normalised as for duplicates (case, full/half width, white space): its "text", and the
 * normalised non-system turns before the final reply (or a classification record's text): its
 * "prompt". A training record matches an evaluation record when
 *   exact:  the texts are equal (64-bit hashes of them are equal);
 *   prompt: the prompts are equal (the same question with another answer);
 *   near:   the Jaccard similarity of their sets of character 5-grams (code points) is at least
 *           the threshold (default 0.8). Candidate pairs come from MinHash LSH (64 one-permutation
 *           MinHash values in 16 bands of 4: a pair at Jaccard 0.8 becomes a candidate with
 *           probability 1 - (1 - 0.8^4)^16 = 0.9998, at 0.9 with 1 - 1e-11), and the exact
 *           Jaccard of the two 5-gram sets decides, so no pair below the threshold is reported.
 *           An evaluation record without a reply (a question of takumi eval, a prompt) is compared
 *           with the training record's prompt as well: the larger of the two similarities counts.
 * Deterministic: fixed hash functions, no sampling, results sorted by line. Character 5-grams
 * work the same for languages written without spaces (Japanese, Chinese). The evaluation
 * files are indexed in memory (their 5-gram sets are kept); the training file streams. */
#include "data/data_internal.h"

typedef struct entry { uint32_t file; uint64_t line; uint64_t h_all, h_prompt; bool has_prompt, prompt_only; size_t sh_off, sh_n; } entry;
typedef struct kv { uint64_t key; uint32_t idx; } kv;

struct tk_contam_index {
    entry *e; size_t n, cap;
    uint64_t *sh; size_t n_sh, cap_sh;
    uint16_t *sigs;                 /* TK_MINHASH_N per entry (used while building) */
    kv *by_all, *by_prompt; size_t n_prompt;
    kv *band[TK_LSH_BANDS];
    double threshold;
    size_t n_prompt_only;           /* entries without a reply (question records): near-matched against training prompts too */
};

struct tk_contam_scratch {
    tk_buf all, prompt;
    tk_shingles sh, sh_prompt;
    uint32_t *cand; size_t n_cand, cap_cand;
};

const char *tk_contam_kind_name(tk_contam_kind k) {
    switch (k) {
    case TK_CONTAM_EXACT: return "exact";
    case TK_CONTAM_PROMPT: return "prompt";
    case TK_CONTAM_NEAR: return "near";
    }
    return "?";
}

tk_contam_scratch *tk_contam_scratch_new(void) { return tk_calloc(1, sizeof(tk_contam_scratch)); }
void tk_contam_scratch_free(tk_contam_scratch *s) {
    if (!s) return;
    tk_buf_free(&s->all); tk_buf_free(&s->prompt);
    free(s->sh.h); free(s->sh_prompt.h); free(s->cand);
    free(s);
}

void tk_contam_index_free(tk_contam_index *x) {
    if (!x) return;
    free(x->e); free(x->sh); free(x->sigs); free(x->by_all); free(x->by_prompt);
    for (int b = 0; b < TK_LSH_BANDS; b++) free(x->band[b]);
    free(x);
}

/* The record's text and prompt, normalised (see the top of the file). */
static tk_status texts(const tk_example *ex, tk_buf *all, tk_buf *prompt, bool *has_prompt) {
    all->len = prompt->len = 0;
    tk_status st = TK_OK;
    for (size_t i = 0; i < ex->n && !st; i++) {
        if (ex->msgs[i].role == TK_R_SYSTEM) continue;
        if (all->len) st = tk_buf_append(all, " ", 1);
        if (!st) st = tk_text_normalize(ex->msgs[i].text, ex->msgs[i].len, all);
        if (st || i >= ex->n_prompt) continue;
        if (prompt->len) st = tk_buf_append(prompt, " ", 1);
        if (!st) st = tk_text_normalize(ex->msgs[i].text, ex->msgs[i].len, prompt);
    }
    if (!st && ex->label) {
        if (all->len) st = tk_buf_append(all, " ", 1);
        if (!st) st = tk_text_normalize(ex->label, ex->label_len, all);
    }
    *has_prompt = prompt->len > 0;   /* a record without a reply (a question to answer) is all prompt */
    return st;
}

static int cmp_kv(const void *a, const void *b) {
    const kv *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static uint64_t band_key(const uint16_t *sig, int b) {
    const int rows = TK_MINHASH_N / TK_LSH_BANDS;
    uint64_t k = (uint64_t)b << 60;
    for (int r = 0; r < rows; r++) k ^= (uint64_t)sig[b * rows + r] << (16 * r);
    return k;
}

/* Adds one evaluation example to the index. */
static tk_status add_entry(tk_contam_index *x, tk_contam_scratch *s, const tk_example *ex, uint32_t file, uint64_t line) {
    bool hp;
    tk_status st = texts(ex, &s->all, &s->prompt, &hp);
    if (st || s->all.len == 0) return st;
    if ((st = tk_shingle_set(s->all.data, s->all.len, &s->sh))) return st;
    if (x->n == x->cap) {
        size_t c = x->cap ? x->cap * 2 : 256;
        entry *e = tk_realloc(x->e, c * sizeof *e);
        if (!e) return TK_ERR_NOMEM;
        x->e = e;
        uint16_t *g = tk_realloc(x->sigs, c * TK_MINHASH_N * sizeof *g);
        if (!g) return TK_ERR_NOMEM;
        x->sigs = g;
        x->cap = c;
    }
    if (x->n_sh + s->sh.n > x->cap_sh) {
        size_t c = x->cap_sh ? x->cap_sh : 4096;
        while (c < x->n_sh + s->sh.n) c *= 2;
        uint64_t *p = tk_realloc(x->sh, c * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        x->sh = p; x->cap_sh = c;
    }
    memcpy(x->sh + x->n_sh, s->sh.h, s->sh.n * sizeof *s->sh.h);
    tk_minhash(s->all.data, s->all.len, x->sigs + x->n * TK_MINHASH_N);
    bool po = ex->n_prompt >= ex->n && !ex->label;
    x->e[x->n] = (entry){file, line, tk_hash64(s->all.data, s->all.len, 21), hp ? tk_hash64(s->prompt.data, s->prompt.len, 22) : 0, hp,
                         po, x->n_sh, s->sh.n};
    x->n_prompt_only += po;
    x->n_sh += s->sh.n;
    x->n++;
    return TK_OK;
}

static tk_status build_tables(tk_contam_index *x) {
    size_t n = x->n ? x->n : 1;
    x->by_all = tk_malloc(n * sizeof *x->by_all);
    x->by_prompt = tk_malloc(n * sizeof *x->by_prompt);
    if (!x->by_all || !x->by_prompt) return TK_ERR_NOMEM;
    for (size_t i = 0; i < x->n; i++) {
        x->by_all[i] = (kv){x->e[i].h_all, (uint32_t)i};
        if (x->e[i].has_prompt) x->by_prompt[x->n_prompt++] = (kv){x->e[i].h_prompt, (uint32_t)i};
    }
    qsort(x->by_all, x->n, sizeof *x->by_all, cmp_kv);
    qsort(x->by_prompt, x->n_prompt, sizeof *x->by_prompt, cmp_kv);
    tk_status st = TK_OK;
    for (int b = 0; b < TK_LSH_BANDS && !st; b++) {
        if (!(x->band[b] = tk_malloc(n * sizeof *x->band[b]))) { st = TK_ERR_NOMEM; break; }
        for (size_t i = 0; i < x->n; i++) x->band[b][i] = (kv){band_key(x->sigs + i * TK_MINHASH_N, b), (uint32_t)i};
        qsort(x->band[b], x->n, sizeof *x->band[b], cmp_kv);
    }
    free(x->sigs);
    x->sigs = NULL;
    return st;
}

/* Reads one evaluation file into the index. */
static tk_status index_file(tk_contam_index *x, tk_contam_scratch *s, const char *path, uint32_t file, const tk_data_map *map,
                            const tk_data_check_params *p, uint64_t *n_records, uint64_t *n_invalid) {
    tk_layout l;
    tk_status st = tk_layout_open(path, NULL, 0, NULL, TK_DATA_CONTAINER_AUTO, TK_DATA_AUTO, NULL, p->max_line_bytes, &l);
    if (!st && l.format == TK_DATA_AUTO && map) {
        /* no known format of its own: read it with the training file's map */
        tk_layout_free(&l);
        st = tk_layout_open(path, NULL, 0, NULL, TK_DATA_CONTAINER_AUTO, TK_DATA_AUTO, map, p->max_line_bytes, &l);
    }
    if (st) return tk_fail_ctx(st, "--against: ");
    if (l.format == TK_DATA_AUTO) {
        tk_layout_free(&l);
        return tk_fail(TK_ERR_FORMAT, "--against %s: the records are in no known format (and --map does not fit them)", path);
    }
    tk_reader *rd;
    if ((st = tk_layout_reader(&l, path, NULL, 0, NULL, p->max_line_bytes, &rd))) { tk_layout_free(&l); return st; }
    tk_example ex = {0};
    tk_rfinds fs = {0};
    tk_raw raw;
    bool has;
    while (!st && !(st = tk_reader_next(rd, &raw, &has)) && has) {
        if (raw.kind == TK_RAW_BLANK || raw.kind == TK_RAW_HEADER) continue;
        tk_rf_clear(&fs);
        cJSON *j = NULL;
        bool nul;
        if (raw.kind == TK_RAW_FATAL) tk_rf_add(&fs, TK_DATA_ERROR, "json_syntax", "%s", raw.msg);
        else if (raw.kind == TK_RAW_TOO_LONG) tk_rf_add(&fs, TK_DATA_ERROR, "line_too_long", "%zu bytes, over the limit", raw.len);
        else if (tk_utf8_check(raw.data, raw.len, &nul) < raw.len) tk_rf_add(&fs, TK_DATA_ERROR, "invalid_utf8", "not UTF-8 (or a NUL byte)");
        else tk_layout_validate(&l, &raw, &ex, &fs, &j);
        if (fs.n_errors == 0) {
            (*n_records)++;
            st = add_entry(x, s, &ex, file, raw.line);
        } else {
            (*n_invalid)++;
            size_t k = 0;
            while (k + 1 < fs.n && fs.v[k].severity != TK_DATA_ERROR) k++;
            char msg[700];
            snprintf(msg, sizeof msg, "%s line %llu: %s: %s (this evaluation record is not compared)", path, (unsigned long long)raw.line,
                     fs.v[k].category, fs.v[k].message ? fs.v[k].message : "");
            if (p->on_finding) { tk_data_finding f = {TK_DATA_WARNING, 0, 0, "against_unreadable", msg}; p->on_finding(&f, p->user); }
        }
        tk_example_reset(&ex);
        cJSON_Delete(j);
        if (raw.kind == TK_RAW_FATAL) break;
    }
    tk_rf_clear(&fs);
    tk_example_free(&ex);
    tk_reader_close(rd);
    tk_layout_free(&l);
    return st;
}

tk_status tk_contam_index_build(const char *const *paths, size_t n, const tk_data_map *map, double threshold,
                                const tk_data_check_params *p, tk_contam_index **out, uint64_t *n_records, uint64_t *n_invalid) {
    *out = NULL;
    *n_records = *n_invalid = 0;
    tk_contam_index *x = tk_calloc(1, sizeof *x);
    tk_contam_scratch *s = tk_contam_scratch_new();
    tk_status st = x && s ? TK_OK : TK_ERR_NOMEM;
    if (!st) x->threshold = threshold;
    for (size_t i = 0; i < n && !st; i++) st = index_file(x, s, paths[i], (uint32_t)i, map, p, n_records, n_invalid);
    if (!st && x->n > UINT32_MAX) st = tk_fail(TK_ERR_RANGE, "--against: more than 4 billion records");
    if (!st) st = build_tables(x);
    tk_contam_scratch_free(s);
    if (st) { tk_contam_index_free(x); return st; }
    *out = x;
    return TK_OK;
}

/* First position of key in sorted v[0..n). */
static size_t lower(const kv *v, size_t n, uint64_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].key < key) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int cmp_hit(const void *a, const void *b) {
    const tk_contam_hit *x = a, *y = b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    if (x->eval_line != y->eval_line) return x->eval_line < y->eval_line ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static bool push_cand(tk_contam_scratch *s, uint32_t idx, uint8_t kind) {
    if (s->n_cand == s->cap_cand) {
        size_t c = s->cap_cand ? s->cap_cand * 2 : 64;
        uint32_t *p = realloc(s->cand, c * sizeof *p);
        if (!p) return false;
        s->cand = p; s->cap_cand = c;
    }
    s->cand[s->n_cand++] = idx << 2 | kind;   /* sorted by idx, then strongest kind first */
    return true;
}
static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

tk_status tk_contam_match(const tk_contam_index *x, tk_contam_scratch *s, const tk_example *ex, tk_contam_hit **hits, size_t *n_hits) {
    *hits = NULL;
    *n_hits = 0;
    if (!x->n) return TK_OK;
    bool hp;
    tk_status st = texts(ex, &s->all, &s->prompt, &hp);
    if (st || s->all.len == 0) return st;
    if (x->n >= (1u << 30)) return tk_fail(TK_ERR_RANGE, "contamination index too large");
    s->n_cand = 0;
    uint64_t ha = tk_hash64(s->all.data, s->all.len, 21);
    for (size_t i = lower(x->by_all, x->n, ha); i < x->n && x->by_all[i].key == ha; i++)
        if (!push_cand(s, x->by_all[i].idx, TK_CONTAM_EXACT)) return TK_ERR_NOMEM;
    if (hp) {
        uint64_t h = tk_hash64(s->prompt.data, s->prompt.len, 22);
        for (size_t i = lower(x->by_prompt, x->n_prompt, h); i < x->n_prompt && x->by_prompt[i].key == h; i++)
            if (!push_cand(s, x->by_prompt[i].idx, TK_CONTAM_PROMPT)) return TK_ERR_NOMEM;
    }
    uint16_t sig[TK_MINHASH_N];
    if ((st = tk_shingle_set(s->all.data, s->all.len, &s->sh))) return st;
    if (tk_minhash(s->all.data, s->all.len, sig))
        for (int b = 0; b < TK_LSH_BANDS; b++) {
            uint64_t k = band_key(sig, b);
            for (size_t i = lower(x->band[b], x->n, k); i < x->n && x->band[b][i].key == k; i++)
                if (!push_cand(s, x->band[b][i].idx, TK_CONTAM_NEAR)) return TK_ERR_NOMEM;
        }
    /* question records of the evaluation files (no reply): their near-duplicates among the training prompts */
    bool near_prompt = hp && x->n_prompt_only && s->prompt.len < s->all.len;
    if (near_prompt && (st = tk_shingle_set(s->prompt.data, s->prompt.len, &s->sh_prompt))) return st;
    if (near_prompt && tk_minhash(s->prompt.data, s->prompt.len, sig))
        for (int b = 0; b < TK_LSH_BANDS; b++) {
            uint64_t k = band_key(sig, b);
            for (size_t i = lower(x->band[b], x->n, k); i < x->n && x->band[b][i].key == k; i++)
                if (x->e[x->band[b][i].idx].prompt_only && !push_cand(s, x->band[b][i].idx, TK_CONTAM_NEAR)) return TK_ERR_NOMEM;
        }
    if (!s->n_cand) return TK_OK;
    qsort(s->cand, s->n_cand, sizeof *s->cand, cmp_u32);
    tk_contam_hit *h = tk_malloc(s->n_cand * sizeof *h);
    if (!h) return TK_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < s->n_cand; i++) {
        uint32_t idx = s->cand[i] >> 2, kind = s->cand[i] & 3;
        if (i > 0 && s->cand[i - 1] >> 2 == idx) continue;   /* the strongest kind of this record came first */
        const entry *e = &x->e[idx];
        double sim = 1;
        if (kind == TK_CONTAM_NEAR) {
            sim = tk_shingle_jaccard(s->sh.h, s->sh.n, x->sh + e->sh_off, e->sh_n);
            if (near_prompt && e->prompt_only) {   /* a question record: the training record's prompt is what it can repeat */
                double sp = tk_shingle_jaccard(s->sh_prompt.h, s->sh_prompt.n, x->sh + e->sh_off, e->sh_n);
                if (sp > sim) sim = sp;
            }
            if (sim < x->threshold) continue;
        }
        h[m++] = (tk_contam_hit){e->file, e->line, (uint8_t)kind, (float)sim};
    }
    if (!m) { free(h); return TK_OK; }
    qsort(h, m, sizeof *h, cmp_hit);
    *hits = h;
    *n_hits = m;
    return TK_OK;
}
