/* Preference pairs and KTO units: loading (records -> two rendered sequences per pair / per
 * labelled example and its KL sequence) and micro-batches (see pairs.h). */
#include "train/pairs.h"
#include "data/records.h"

typedef struct pair_ctx {
    const tk_tokenizer *tok;
    const tk_sft_params *p;
    tk_sft_data *d;
    const char *name;
    tk_rec_msgs mb;
    tk_sft_data one;        /* KTO: the examples' own sequences, before their KL sequences are formed */
    tk_ex_msg *msgs; size_t cap_msgs;
    int32_t *ids; uint8_t *mask; size_t cap;
} pair_ctx;

static void ctx_free(pair_ctx *pc) {
    tk_sft_free(&pc->one);
    tk_rec_msgs_free(&pc->mb);
    free(pc->msgs);
    free(pc->ids);
    free(pc->mask);
}

static bool blank_side(const tk_ex_msg *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!tk_text_blank(v[i].text, v[i].len)) return false;
    return true;
}

static bool same_side(const tk_ex_msg *a, size_t na, const tk_ex_msg *b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].role != b[i].role || a[i].len != b[i].len || memcmp(a[i].text, b[i].text, a[i].len)) return false;
    return true;
}

static tk_status grow(pair_ctx *pc, size_t n) {
    if (n <= pc->cap) return TK_OK;
    size_t c = n + 1024;
    int32_t *ids = tk_realloc(pc->ids, c * sizeof *ids);
    if (!ids) return TK_ERR_NOMEM;
    pc->ids = ids;
    uint8_t *m = tk_realloc(pc->mask, c);
    if (!m) return TK_ERR_NOMEM;
    pc->mask = m;
    pc->cap = c;
    return TK_OK;
}

/* Renders prompt + reply and appends it at pc->ids[at..]: its kept length (max_seq cut) in *len,
 * its completion tokens kept in *targets and lost to the cut in *cut. */
static tk_status render_side(pair_ctx *pc, const tk_ex_msg *prompt, size_t np, const tk_ex_msg *reply, size_t nr, size_t at,
                             int64_t *len, int64_t *targets, int64_t *cut) {
    if (np + nr > pc->cap_msgs) {
        tk_ex_msg *m = tk_realloc(pc->msgs, (np + nr + 8) * sizeof *m);
        if (!m) return TK_ERR_NOMEM;
        pc->msgs = m;
        pc->cap_msgs = np + nr + 8;
    }
    memcpy(pc->msgs, prompt, np * sizeof *prompt);
    memcpy(pc->msgs + np, reply, nr * sizeof *reply);
    tk_status st = tk_rec_msgs_set(&pc->mb, pc->msgs, np + nr);
    tk_chat_tokens ct = {0};
    if (!st) st = tk_chat_render(pc->tok, pc->p->family, pc->mb.m, np + nr, false, &ct);
    if (!st) st = grow(pc, at + ct.ids.len);
    if (st) { tk_chat_tokens_free(&ct); return st; }
    int64_t n = (int64_t)ct.ids.len, keep = n < pc->p->max_seq ? n : pc->p->max_seq;
    *targets = *cut = 0;
    for (int64_t t = 0; t < n; t++) {
        int32_t mi = ct.msg_index[t];
        bool loss = t > 0 && ct.is_target[t] && mi >= (int32_t)np && pc->mb.w[mi] != 0;
        if (t < keep) { pc->ids[at + t] = ct.ids.data[t]; pc->mask[at + t] = loss ? TK_MASK_LOSS : 0; }
        if (loss) { if (t < keep) (*targets)++; else (*cut)++; }
    }
    *len = keep;
    tk_chat_tokens_free(&ct);
    return TK_OK;
}

static tk_status load_pair(void *ud, const tk_example *ex, uint64_t line) {
    pair_ctx *pc = ud;
    const size_t np = ex->n_prompt, nc = ex->n - ex->n_prompt, nr = ex->n_rej;
    if (pc->p->family == TK_CHAT_UNKNOWN)
        return tk_fail(TK_ERR_ARG, "%s: preference pairs need a chat template: the model has none that takumi recognises; choose one "
                       "with --template (%s)", pc->name, tk_chat_family_names());
    const char *bad = nc == 0 || blank_side(ex->msgs + np, nc) ? "the chosen answer is empty"
                    : nr == 0 || blank_side(ex->rej, nr) ? "the rejected answer is empty"
                    : same_side(ex->msgs + np, nc, ex->rej, nr) ? "the chosen and rejected answers are identical (the pair teaches nothing)"
                    : NULL;
    if (bad) return tk_fail(TK_ERR_FORMAT, "%s: line %llu: %s", pc->name, (unsigned long long)line, bad);
    int64_t lc, tc, cc, lr, tr, cr;
    tk_status st = render_side(pc, ex->msgs, np, ex->msgs + np, nc, 0, &lc, &tc, &cc);
    if (!st) st = render_side(pc, ex->msgs, np, ex->rej, nr, (size_t)lc, &lr, &tr, &cr);
    if (st) return tk_fail_ctx(st, "%s: line %llu: ", pc->name, (unsigned long long)line);
    tk_sft_stats *s = &pc->d->stats;
    if (cc || cr || lc < 2 || lr < 2) s->n_truncated++;
    if (tc == 0 || tr == 0) { /* a side lost every completion token to the cut */
        s->n_skipped++;
        s->targets_cut += (uint64_t)(tc + tr + cc + cr);
        return TK_OK;
    }
    s->targets_cut += (uint64_t)(cc + cr);
    pc->mask[lc] = TK_MASK_START;
    return tk_sft_add(pc->d, pc->ids, pc->mask, lc + lr, INT32_MAX, line);
}

tk_status tk_pairs_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out) {
    memset(out, 0, sizeof *out);
    if (!tok || !p) return tk_fail(TK_ERR_ARG, "preference data needs the model's tokenizer");
    if (p->format != TK_DATA_AUTO && p->format != TK_DATA_PREFERENCE)
        return tk_fail(TK_ERR_ARG, "%s: preference objectives train on --format preference, not %s", path, tk_data_format_name(p->format));
    pair_ctx pc = {.tok = tok, .p = p, .d = out, .name = path};
    tk_rec_src s = {.path = path};
    tk_data_format fmt = p->format;
    tk_status st = tk_rec_each(&s, &fmt, TK_REC_PREFERENCE, &out->stats.n_records, load_pair, &pc);
    out->format = fmt;
    ctx_free(&pc);
    if (!st && out->n == 0)
        st = tk_fail(TK_ERR_FORMAT, "%s: no pair left to train on (%llu records, %llu with a side left without completion tokens after "
                     "truncation to %d tokens)", path, (unsigned long long)out->stats.n_records, (unsigned long long)out->stats.n_skipped,
                     p->max_seq);
    return st;
}

/* ---- KTO ----------------------------------------------------------------------- */

static tk_status load_kto(void *ud, const tk_example *ex, uint64_t line) {
    pair_ctx *pc = ud;
    const size_t np = ex->n_prompt, nc = ex->n - ex->n_prompt;
    if (pc->p->family == TK_CHAT_UNKNOWN)
        return tk_fail(TK_ERR_ARG, "%s: KTO examples need a chat template: the model has none that takumi recognises; choose one "
                       "with --template (%s)", pc->name, tk_chat_family_names());
    if (nc == 0 || blank_side(ex->msgs + np, nc)) return tk_fail(TK_ERR_FORMAT, "%s: line %llu: the completion is empty", pc->name, (unsigned long long)line);
    int64_t len, tg, cut;
    tk_status st = render_side(pc, ex->msgs, np, ex->msgs + np, nc, 0, &len, &tg, &cut);
    if (st) return tk_fail_ctx(st, "%s: line %llu: ", pc->name, (unsigned long long)line);
    tk_sft_stats *s = &pc->d->stats;
    if (cut || len < 2) s->n_truncated++;
    s->targets_cut += (uint64_t)cut;
    if (tg == 0) { s->n_skipped++; return TK_OK; }
    if (ex->label_len == 4 && !memcmp(ex->label, "true", 4)) pc->mask[0] |= TK_MASK_DESIRABLE;
    return tk_sft_add(&pc->one, pc->ids, pc->mask, len, INT32_MAX, line);
}

/* Index of example i's first completion token (its prompt's length). */
static int32_t prompt_of(const tk_sft_data *d, int64_t i) {
    int32_t k = 1, l = tk_sft_len(d, i);
    while (k < l && !(d->mask[d->off[i] + k] & TK_MASK_LOSS)) k++;
    return k;
}

/* Example i followed by its KL sequence: its prompt and example j's completion. */
static tk_status add_unit(pair_ctx *pc, int64_t i, int64_t j) {
    const tk_sft_data *o = &pc->one;
    int32_t li = tk_sft_len(o, i), pi = prompt_of(o, i), pj = prompt_of(o, j), lj = tk_sft_len(o, j);
    int64_t kl = pi + (lj - pj);
    if (kl > pc->p->max_seq) kl = pc->p->max_seq;
    tk_status st = grow(pc, (size_t)(li + kl));
    if (st) return st;
    memcpy(pc->ids, o->ids + o->off[i], (size_t)li * sizeof *pc->ids);
    memcpy(pc->mask, o->mask + o->off[i], (size_t)li);
    memcpy(pc->ids + li, o->ids + o->off[i], (size_t)pi * sizeof *pc->ids);
    memset(pc->mask + li, 0, (size_t)pi);
    memcpy(pc->ids + li + pi, o->ids + o->off[j] + pj, (size_t)(kl - pi) * sizeof *pc->ids);
    for (int64_t t = pi; t < kl; t++) pc->mask[li + t] = o->mask[o->off[j] + pj + (t - pi)] & TK_MASK_LOSS;
    pc->mask[li] |= TK_MASK_START;
    return tk_sft_add(pc->d, pc->ids, pc->mask, li + kl, INT32_MAX, o->line[i]);
}

tk_status tk_kto_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out) {
    memset(out, 0, sizeof *out);
    if (!tok || !p) return tk_fail(TK_ERR_ARG, "KTO data needs the model's tokenizer");
    if (p->format != TK_DATA_AUTO && p->format != TK_DATA_KTO)
        return tk_fail(TK_ERR_ARG, "%s: --objective kto trains on --format kto, not %s", path, tk_data_format_name(p->format));
    pair_ctx pc = {.tok = tok, .p = p, .d = out, .name = path};
    tk_rec_src s = {.path = path};
    tk_data_format fmt = p->format;
    tk_status st = tk_rec_each(&s, &fmt, TK_REC_KTO, &out->stats.n_records, load_kto, &pc);
    out->format = fmt;
    const int64_t n = pc.one.n, k = p->kl_group >= 2 ? p->kl_group : 8;
    for (int64_t a = 0; a < n && !st; a += k) { /* groups in file order; KL completion of i: that of i - 1, cyclic */
        int64_t b = a + k < n ? a + k : n;
        for (int64_t i = a; i < b && !st; i++) st = add_unit(&pc, i, i == a ? b - 1 : i - 1);
    }
    ctx_free(&pc);
    if (!st && out->n == 0)
        st = tk_fail(TK_ERR_FORMAT, "%s: no example left to train on (%llu records, %llu without completion tokens after truncation to %d "
                     "tokens)", path, (unsigned long long)out->stats.n_records, (unsigned long long)out->stats.n_skipped, p->max_seq);
    return st;
}

/* ---- micro-batches -------------------------------------------------------------- */

void tk_pair_buf_free(tk_pair_buf *pb) {
    if (!pb) return;
    tk_batch_buf_free(&pb->bb);
    free(pb->seq); free(pb->pool); free(pb->weight); free(pb->group); free(pb->value); free(pb->example);
    memset(pb, 0, sizeof *pb);
}

int64_t tk_rows_examples(const tk_rows *r, int64_t r0, int64_t n) {
    int64_t e = r0 + n < r->n_rows ? r0 + n : r->n_rows;
    return r0 < e ? r->row_off[e] - r->row_off[r0] : 0;
}

static tk_status pair_reserve(tk_pair_buf *pb, size_t tok, size_t n_pairs) {
    if (tok > pb->cap) {
        int32_t *s = tk_realloc(pb->seq, tok * sizeof *s);
        if (!s) return TK_ERR_NOMEM;
        pb->seq = s;
        int32_t *pl = tk_realloc(pb->pool, tok * sizeof *pl);
        if (!pl) return TK_ERR_NOMEM;
        pb->pool = pl;
        float *w = tk_realloc(pb->weight, tok * sizeof *w);
        if (!w) return TK_ERR_NOMEM;
        pb->weight = w;
        pb->cap = tok;
    }
    if (n_pairs > pb->cap_seq) {
        int32_t *g = tk_realloc(pb->group, 2 * n_pairs * sizeof *g);
        if (!g) return TK_ERR_NOMEM;
        pb->group = g;
        float *v = tk_realloc(pb->value, 2 * n_pairs * sizeof *v);
        if (!v) return TK_ERR_NOMEM;
        pb->value = v;
        int64_t *e = tk_realloc(pb->example, n_pairs * sizeof *e);
        if (!e) return TK_ERR_NOMEM;
        pb->example = e;
        pb->cap_seq = n_pairs;
    }
    return TK_OK;
}

tk_status tk_pair_fill(tk_pair_buf *pb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n) {
    tk_status st = tk_batch_fill(&pb->bb, d, r, r0, n);   /* the shape, ids and padding */
    if (st) return st;
    const int32_t T = pb->bb.b.n_cols;
    if ((st = pair_reserve(pb, (size_t)n * (size_t)T, (size_t)tk_rows_examples(r, r0, n)))) return st;
    int32_t g = 0;
    pb->bb.n_targets = 0;
    for (int32_t b = 0; b < n; b++) {
        int32_t *seg = pb->bb.seg + (size_t)b * T, *pos = pb->bb.pos + (size_t)b * T, *tg = pb->bb.target + (size_t)b * T;
        int32_t *sq = pb->seq + (size_t)b * T, *pl = pb->pool + (size_t)b * T, t = 0, sg = 0;
        float *wt = pb->weight + (size_t)b * T;
        for (int64_t j = r->row_off[r0 + b]; j < r->row_off[r0 + b + 1]; j++, g++) {
            int64_t e = r->ex[j], o = d->off[e];
            int32_t l = tk_sft_len(d, e), split = 1;
            while (split < l && !(d->mask[o + split] & TK_MASK_START)) split++;
            pb->example[g] = e;
            for (int side = 0; side < 2; side++, sg++) {
                int32_t a = side ? split : 0, z = side ? l : split, q = 2 * g + side;
                pb->group[q] = g;
                pb->value[q] = side ? 0.0f : 1.0f;
                for (int32_t i = a; i < z; i++, t++) { /* ids as tk_batch_fill put them; segments and targets per side */
                    bool next = i + 1 < z;
                    seg[t] = sg;
                    pos[t] = i - a;
                    tg[t] = next ? d->ids[o + i + 1] : -1;
                    sq[t] = next && (d->mask[o + i + 1] & TK_MASK_LOSS) ? q : -1;
                    wt[t] = next && !side ? 1.0f : 0.0f;
                    pl[t] = next ? -1 : q;
                    pb->bb.n_targets += sq[t] >= 0;
                }
            }
        }
        for (; t < T; t++) { sq[t] = pl[t] = -1; wt[t] = 0.0f; }
    }
    pb->n_pairs = g;
    pb->n_seq = 2 * g;
    return TK_OK;
}

tk_status tk_kto_fill(tk_pair_buf *pb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n) {
    tk_status st = tk_pair_fill(pb, d, r, r0, n);
    for (int32_t g = 0; g < pb->n_pairs && !st; g++) {
        pb->value[2 * g] = d->mask[d->off[pb->example[g]]] & TK_MASK_DESIRABLE ? 1.0f : 0.0f;
        pb->value[2 * g + 1] = -1.0f;
    }
    return st;
}
