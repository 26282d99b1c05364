/* Dataset file -> tokenized SFT examples -> per-epoch rows -> micro-batches.
 *
 * Reading and validation reuse the data toolkit (src/data): its reader (JSONL, JSON
 * array, text), format detection and per-format validators, which turn a record into a
 * normalised tk_example (messages with roles and per-message weights). Each example is
 * then rendered with tk_chat_render, whose per-token is_target / msg_index give the mask.
 * Everything here is deterministic: shuffles come from (seed, epoch), packing is a fixed
 * first-fit, so a run can be re-planned exactly on resume. */
#include "train/batch.h"
#include "data/records.h"
#include <math.h>

#define PACK_WINDOW 64

tk_sft_params tk_sft_default_params(void) {
    tk_sft_params p = {.format = TK_DATA_AUTO, .family = TK_CHAT_UNKNOWN, .max_seq = 1024, .train_on_prompt = false};
    return p;
}

void tk_sft_free(tk_sft_data *d) {
    if (!d) return;
    free(d->ids); free(d->mask); free(d->off); free(d->line);
    memset(d, 0, sizeof *d);
}

static tk_status sft_reserve(tk_sft_data *d, int64_t n_tok) {
    if (!d->off) {
        d->off = tk_calloc(1, sizeof *d->off);
        if (!d->off) return TK_ERR_NOMEM;
    }
    if (d->n + 1 >= d->cap) {
        int64_t c = d->cap ? 2 * d->cap : 256;
        int64_t *o = tk_realloc(d->off, (size_t)(c + 1) * sizeof *o);
        if (!o) return TK_ERR_NOMEM;
        d->off = o;
        uint64_t *l = tk_realloc(d->line, (size_t)c * sizeof *l);
        if (!l) return TK_ERR_NOMEM;
        d->line = l;
        d->cap = c;
    }
    int64_t need = d->off[d->n] + n_tok;
    if (need > d->cap_tok) {
        int64_t c = d->cap_tok ? d->cap_tok : 4096;
        while (c < need) c *= 2;
        int32_t *ids = tk_realloc(d->ids, (size_t)c * sizeof *ids);
        if (!ids) return TK_ERR_NOMEM;
        d->ids = ids;
        uint8_t *m = tk_realloc(d->mask, (size_t)c);
        if (!m) return TK_ERR_NOMEM;
        d->mask = m;
        d->cap_tok = c;
    }
    return TK_OK;
}

static tk_status sft_append(tk_sft_data *d, const int32_t *ids, const uint8_t *mask, int64_t keep, uint64_t targets, uint64_t line);

tk_status tk_sft_add(tk_sft_data *d, const int32_t *ids, const uint8_t *mask, int64_t n, int32_t max_seq, uint64_t line) {
    if (max_seq < 2) return tk_fail(TK_ERR_ARG, "maximum sequence length %d: must be at least 2", max_seq);
    int64_t keep = n < max_seq ? n : max_seq;
    uint64_t targets = 0, cut = 0;
    for (int64_t t = 1; t < n; t++) {   /* token 0 has nothing before it: never a target */
        if (!(mask[t] & TK_MASK_LOSS)) continue;
        if (t < keep) targets++;
        else cut++;
    }
    if (n > keep) d->stats.n_truncated++;
    d->stats.targets_cut += cut;
    if (targets == 0) { d->stats.n_skipped++; return TK_OK; }
    return sft_append(d, ids, mask, keep, targets, line);
}

tk_status tk_sft_add_prompt(tk_sft_data *d, const int32_t *ids, int64_t n, uint64_t line) {
    if (n < 1) return tk_fail(TK_ERR_ARG, "line %llu: an empty prompt", (unsigned long long)line);
    uint8_t *mask = tk_calloc((size_t)n, 1);
    if (!mask) return TK_ERR_NOMEM;
    tk_status st = sft_append(d, ids, mask, n, 0, line);
    free(mask);
    return st;
}

/* Appends ids/mask[0..keep) as example d->n with its counts. */
static tk_status sft_append(tk_sft_data *d, const int32_t *ids, const uint8_t *mask, int64_t keep, uint64_t targets, uint64_t line) {
    tk_status st = sft_reserve(d, keep);
    if (st) return st;
    int64_t o = d->off[d->n];
    memcpy(d->ids + o, ids, (size_t)keep * sizeof *ids);
    memcpy(d->mask + o, mask, (size_t)keep);
    d->mask[o] = 0;
    d->line[d->n] = line;
    d->off[++d->n] = o + keep;
    d->stats.n_examples++;
    d->stats.n_tokens += (uint64_t)keep;
    d->stats.n_targets += targets;
    if (keep > d->stats.longest) d->stats.longest = (int32_t)keep;
    return TK_OK;
}

uint64_t tk_sft_hash(const tk_sft_data *d) {
    uint64_t h = 1469598103934665603ull;
    int64_t nt = d->n ? d->off[d->n] : 0;
    for (int64_t i = 0; i < d->n; i++) { h ^= (uint64_t)(d->off[i + 1] - d->off[i]); h *= 1099511628211ull; }
    for (int64_t t = 0; t < nt; t++) {
        h ^= (uint64_t)(uint32_t)d->ids[t] | ((uint64_t)d->mask[t] << 32);
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- loading ---------------------------------------------------------------- */

typedef struct load_ctx {
    const tk_tokenizer *tok;
    const tk_sft_params *p;
    tk_sft_data *d;
    tk_rec_msgs mb;
    tk_ivec ids;
    uint8_t *mask; size_t mask_cap;
    const char *name;
    tk_data_format fmt;
} load_ctx;

static tk_status mask_reserve(load_ctx *lc, size_t n) {
    if (n <= lc->mask_cap) return TK_OK;
    uint8_t *m = tk_realloc(lc->mask, n + 256);
    if (!m) return TK_ERR_NOMEM;
    lc->mask = m;
    lc->mask_cap = n + 256;
    return TK_OK;
}

static tk_status load_example(void *ud, const tk_example *ex, uint64_t line) {
    load_ctx *lc = ud;
    tk_status st;
    bool text = ex->n > 0 && ex->msgs[0].role == TK_R_TEXT;
    if (text) {
        /* raw text (continued pre-training): every token, with the tokenizer's BOS and a closing EOS */
        lc->ids.len = 0;
        for (size_t i = 0; i < ex->n; i++)
            if ((st = tk_tokenize(lc->tok, ex->msgs[i].text, ex->msgs[i].len, TK_TOK_ADD_SPECIAL, &lc->ids))) goto fail;
        int32_t eos = tk_tokenizer_eos(lc->tok);
        if (eos >= 0 && (lc->ids.len == 0 || lc->ids.data[lc->ids.len - 1] != eos) && (st = tk_ivec_push(&lc->ids, eos))) goto fail;
        if ((st = mask_reserve(lc, lc->ids.len))) return st;
        memset(lc->mask, 1, lc->ids.len);
        return tk_sft_add(lc->d, lc->ids.data, lc->mask, (int64_t)lc->ids.len, lc->p->max_seq, line);
    }
    if (lc->p->family == TK_CHAT_UNKNOWN)
        return tk_fail(TK_ERR_ARG, "%s: conversations need a chat template: the model has none that takumi recognises; "
                       "choose one with --template (%s)", lc->name, tk_chat_family_names());
    if ((st = tk_rec_msgs_set(&lc->mb, ex->msgs, ex->n))) return st;
    tk_chat_tokens ct = {0};
    st = tk_chat_render(lc->tok, lc->p->family, lc->mb.m, ex->n, false, &ct);
    if (!st && !(st = mask_reserve(lc, ct.ids.len))) {
        for (size_t t = 0; t < ct.ids.len; t++) {
            int32_t mi = ct.msg_index[t];
            bool excluded = mi >= 0 && (size_t)mi < ex->n && lc->mb.w[mi] == 0;   /* assistant message with weight 0 */
            lc->mask[t] = (uint8_t)(!excluded && (lc->p->train_on_prompt || ct.is_target[t]));
        }
        st = tk_sft_add(lc->d, ct.ids.data, lc->mask, (int64_t)ct.ids.len, lc->p->max_seq, line);
    }
    tk_chat_tokens_free(&ct);
    if (st) goto fail;
    return TK_OK;
fail:
    return tk_fail_ctx(st, "%s: line %llu: ", lc->name, (unsigned long long)line);
}

static tk_status load(const tk_rec_src *s, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out) {
    memset(out, 0, sizeof *out);
    if (!tok) return tk_fail(TK_ERR_ARG, "training data needs the model's tokenizer");
    tk_sft_params def = tk_sft_default_params();
    if (!p) p = &def;
    if (p->max_seq < 2) return tk_fail(TK_ERR_ARG, "maximum sequence length %d: must be at least 2", p->max_seq);
    load_ctx lc = {.tok = tok, .p = p, .d = out, .name = s->path ? s->path : s->name ? s->name : "<memory>"};
    tk_data_format fmt = p->format;
    tk_status st = tk_rec_each(s, &fmt, TK_REC_SFT, &out->stats.n_records, load_example, &lc);
    out->format = fmt;
    tk_rec_msgs_free(&lc.mb);
    tk_ivec_free(&lc.ids);
    free(lc.mask);
    if (!st && out->n == 0)
        st = tk_fail(TK_ERR_FORMAT, "%s: no example left to train on (%llu records, %llu without target tokens after truncation "
                     "to %d tokens)", lc.name, (unsigned long long)out->stats.n_records, (unsigned long long)out->stats.n_skipped,
                     p->max_seq);
    return st;
}

tk_status tk_sft_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, tk_sft_data *out) {
    tk_rec_src s = {.path = path};
    return load(&s, tok, p, out);
}

tk_status tk_sft_load_buffer(const void *buf, size_t len, const char *name, const tk_tokenizer *tok, const tk_sft_params *p,
                             tk_sft_data *out) {
    tk_rec_src s = {.buf = buf, .len = len, .name = name};
    return load(&s, tok, p, out);
}

/* ---- split ------------------------------------------------------------------ */

static void shuffle(int64_t *v, int64_t n, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tk_rng_u64(&rng) % (uint64_t)(i + 1));
        int64_t t = v[i]; v[i] = v[j]; v[j] = t;
    }
}

/* Copies the examples with pick[i] == want from src into dst (stats recounted). */
static tk_status take(const tk_sft_data *s, const uint8_t *pick, uint8_t want, tk_sft_data *dst) {
    memset(dst, 0, sizeof *dst);
    dst->format = s->format;
    for (int64_t i = 0; i < s->n; i++) {
        if (pick[i] != want) continue;
        tk_status st = tk_sft_add(dst, s->ids + s->off[i], s->mask + s->off[i], tk_sft_len(s, i), INT32_MAX, s->line[i]);
        if (st) return st;
    }
    return TK_OK;
}

tk_status tk_sft_split(tk_sft_data *d, double frac, uint64_t seed, tk_sft_data *val) {
    memset(val, 0, sizeof *val);
    if (!(frac > 0 && frac < 1)) return tk_fail(TK_ERR_ARG, "validation split %g: must be between 0 and 1", frac);
    if (d->n < 2) return tk_fail(TK_ERR_ARG, "validation split: %lld example(s) cannot be split", (long long)d->n);
    int64_t k = (int64_t)llround(frac * (double)d->n);
    if (k < 1) k = 1;
    if (k > d->n - 1) k = d->n - 1;
    int64_t *idx = tk_malloc((size_t)d->n * sizeof *idx);
    uint8_t *pick = tk_calloc((size_t)d->n, 1);
    if (!idx || !pick) { free(idx); free(pick); return TK_ERR_NOMEM; }
    for (int64_t i = 0; i < d->n; i++) idx[i] = i;
    shuffle(idx, d->n, tk_mix64(seed ^ 0x76616C6964ull));   /* "valid": independent of the epoch shuffles */
    for (int64_t i = 0; i < k; i++) pick[idx[i]] = 1;
    tk_sft_data tr;
    tk_status st = take(d, pick, 1, val);
    if (!st) st = take(d, pick, 0, &tr);
    free(idx); free(pick);
    if (st) { tk_sft_free(val); return st; }
    /* the truncation/skip counts describe the file as read: keep them with the training part */
    tr.stats.n_records = d->stats.n_records;
    tr.stats.n_truncated = d->stats.n_truncated;
    tr.stats.n_skipped = d->stats.n_skipped;
    tr.stats.targets_cut = d->stats.targets_cut;
    val->stats.n_truncated = val->stats.n_skipped = val->stats.targets_cut = 0;
    tk_sft_free(d);
    *d = tr;
    return TK_OK;
}

/* ---- prompts for samples ------------------------------------------------------- */

typedef struct prompt_ctx {
    const uint64_t *lines; int32_t n_lines;
    const tk_tokenizer *tok; const tk_sft_params *p;
    tk_sft_prompt *out; int32_t n_out;
    tk_rec_msgs mb;
} prompt_ctx;

static tk_status prompt_example(void *ud, const tk_example *ex, uint64_t line) {
    prompt_ctx *pc = ud;
    bool want = false;
    for (int32_t i = 0; i < pc->n_lines; i++) if (pc->lines[i] == line) want = true;
    if (!want || ex->n == 0 || ex->msgs[0].role == TK_R_TEXT) return TK_OK;
    size_t k = ex->n;
    while (k > 0 && ex->msgs[k - 1].role != TK_R_ASSISTANT) k--;
    if (k < 2) return TK_OK;     /* no assistant reply after a prompt */
    k--;                         /* msgs[k]: the last assistant message */
    tk_status st = tk_rec_msgs_set(&pc->mb, ex->msgs, k);
    if (st) return st;
    tk_chat_tokens ct = {0};
    st = tk_chat_render(pc->tok, pc->p->family, pc->mb.m, k, true, &ct);
    if (st) { tk_chat_tokens_free(&ct); return TK_OK; }   /* a prompt the template refuses alone: not a sample */
    tk_sft_prompt *sp = &pc->out[pc->n_out];
    memset(sp, 0, sizeof *sp);
    sp->line = line;
    sp->n = (int64_t)ct.ids.len;
    sp->ids = ct.ids.data;       /* take the array */
    ct.ids.data = NULL; ct.ids.len = ct.ids.cap = 0;
    tk_chat_tokens_free(&ct);
    size_t q = k;
    while (q > 0 && ex->msgs[q - 1].role != TK_R_USER) q--;
    const tk_ex_msg *qm = q > 0 ? &ex->msgs[q - 1] : &ex->msgs[k - 1];
    sp->question = tk_strndup(qm->text, qm->len);
    sp->reference = tk_strndup(ex->msgs[k].text, ex->msgs[k].len);
    pc->n_out++;
    if (!sp->question || !sp->reference) return TK_ERR_NOMEM;
    return TK_OK;
}

tk_status tk_sft_prompts(const char *path, const uint64_t *lines, int32_t n, const tk_tokenizer *tok, const tk_sft_params *p,
                         tk_sft_prompt **out, int32_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (n <= 0) return TK_OK;
    prompt_ctx pc = {.lines = lines, .n_lines = n, .tok = tok, .p = p};
    pc.out = tk_calloc((size_t)n, sizeof *pc.out);
    if (!pc.out) return TK_ERR_NOMEM;
    tk_rec_src s = {.path = path};
    tk_data_format fmt = p->format;
    uint64_t nrec = 0;
    tk_status st = tk_rec_each(&s, &fmt, TK_REC_ANY, &nrec, prompt_example, &pc);
    tk_rec_msgs_free(&pc.mb);
    if (st) { tk_sft_prompts_free(pc.out, pc.n_out); return st; }
    *out = pc.out;
    *n_out = pc.n_out;
    return TK_OK;
}

void tk_sft_prompts_free(tk_sft_prompt *v, int32_t n) {
    if (!v) return;
    for (int32_t i = 0; i < n; i++) { free(v[i].ids); free(v[i].question); free(v[i].reference); }
    free(v);
}

/* ---- rows ------------------------------------------------------------------------ */

void tk_rows_free(tk_rows *r) {
    if (!r) return;
    free(r->row_off); free(r->ex); free(r->row_len);
    memset(r, 0, sizeof *r);
}

tk_status tk_rows_pack(const tk_sft_data *d, const int64_t *order, int64_t n, int32_t max_len, bool packing, tk_rows *out) {
    memset(out, 0, sizeof *out);
    if (max_len < 1) return tk_fail(TK_ERR_ARG, "row length %d", max_len);
    int64_t *row_of = tk_malloc((size_t)(n ? n : 1) * sizeof *row_of);
    int32_t *len = tk_malloc((size_t)(n ? n : 1) * sizeof *len);   /* at most n rows */
    out->ex = tk_malloc((size_t)(n ? n : 1) * sizeof *out->ex);
    if (!row_of || !len || !out->ex) { free(row_of); free(len); tk_rows_free(out); return TK_ERR_NOMEM; }
    int64_t n_rows = 0, first_open = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = order[i];
        int32_t l = tk_sft_len(d, e);
        if (l > max_len) { free(row_of); free(len); tk_rows_free(out); return tk_fail(TK_ERR_INTERNAL, "example longer than a row"); }
        int64_t r = -1;
        if (packing) {
            if (first_open < n_rows - PACK_WINDOW) first_open = n_rows - PACK_WINDOW;
            for (int64_t k = first_open; k < n_rows; k++)
                if (len[k] + l <= max_len) { r = k; break; }
        }
        if (r < 0) { r = n_rows++; len[r] = 0; }
        len[r] += l;
        row_of[i] = r;
    }
    out->n_rows = n_rows;
    out->row_off = tk_calloc((size_t)n_rows + 1, sizeof *out->row_off);
    out->row_len = tk_malloc((size_t)(n_rows ? n_rows : 1) * sizeof *out->row_len);
    if (!out->row_off || !out->row_len) { free(row_of); free(len); tk_rows_free(out); return TK_ERR_NOMEM; }
    /* counting sort by row keeps each row's examples in their order */
    for (int64_t i = 0; i < n; i++) out->row_off[row_of[i] + 1]++;
    for (int64_t r = 0; r < n_rows; r++) { out->row_off[r + 1] += out->row_off[r]; out->row_len[r] = len[r]; }
    int64_t *fill = tk_malloc((size_t)(n_rows ? n_rows : 1) * sizeof *fill);
    if (!fill) { free(row_of); free(len); tk_rows_free(out); return TK_ERR_NOMEM; }
    for (int64_t r = 0; r < n_rows; r++) fill[r] = out->row_off[r];
    for (int64_t i = 0; i < n; i++) out->ex[fill[row_of[i]]++] = order[i];
    free(fill); free(row_of); free(len);
    return TK_OK;
}

tk_status tk_rows_epoch(const tk_sft_data *d, uint64_t seed, int64_t epoch, bool shuf, int32_t max_len, bool packing, tk_rows *out) {
    int64_t *order = tk_malloc((size_t)(d->n ? d->n : 1) * sizeof *order);
    if (!order) return TK_ERR_NOMEM;
    for (int64_t i = 0; i < d->n; i++) order[i] = i;
    if (shuf) shuffle(order, d->n, tk_mix64(seed ^ tk_mix64((uint64_t)epoch + 1)));
    tk_status st = tk_rows_pack(d, order, d->n, max_len, packing, out);
    free(order);
    return st;
}

int64_t tk_rows_targets(const tk_sft_data *d, const tk_rows *r, int64_t r0, int64_t n) {
    int64_t t = 0;
    for (int64_t k = r0; k < r0 + n && k < r->n_rows; k++)
        for (int64_t j = r->row_off[k]; j < r->row_off[k + 1]; j++) {
            int64_t e = r->ex[j];
            for (int64_t i = d->off[e] + 1; i < d->off[e + 1]; i++) t += d->mask[i] & TK_MASK_LOSS;
        }
    return t;
}

/* ---- micro-batches --------------------------------------------------------------- */

void tk_batch_buf_free(tk_batch_buf *bb) {
    if (!bb) return;
    free(bb->ids); free(bb->pos); free(bb->seg); free(bb->target);
    memset(bb, 0, sizeof *bb);
}

tk_status tk_batch_fill(tk_batch_buf *bb, const tk_sft_data *d, const tk_rows *r, int64_t r0, int32_t n) {
    if (n < 1 || r0 < 0 || r0 + n > r->n_rows) return tk_fail(TK_ERR_ARG, "batch rows [%lld, %lld) outside 0..%lld", (long long)r0,
                                                              (long long)(r0 + n), (long long)r->n_rows);
    int32_t T = 1;
    for (int64_t k = r0; k < r0 + n; k++) if (r->row_len[k] > T) T = r->row_len[k];
    size_t need;
    if (!tk_mul_ok((size_t)n, (size_t)T, &need)) return tk_fail(TK_ERR_NOMEM, "batch size overflows");
    if (need > bb->cap) {
        int32_t *a = tk_realloc(bb->ids, need * sizeof *a);
        if (!a) return TK_ERR_NOMEM;
        bb->ids = a;
        if (!(a = tk_realloc(bb->pos, need * sizeof *a))) return TK_ERR_NOMEM;
        bb->pos = a;
        if (!(a = tk_realloc(bb->seg, need * sizeof *a))) return TK_ERR_NOMEM;
        bb->seg = a;
        if (!(a = tk_realloc(bb->target, need * sizeof *a))) return TK_ERR_NOMEM;
        bb->target = a;
        bb->cap = need;
    }
    bb->n_targets = bb->n_tokens = 0;
    for (int32_t b = 0; b < n; b++) {
        int64_t k = r0 + b;
        int32_t *ids = bb->ids + (size_t)b * T, *pos = bb->pos + (size_t)b * T, *seg = bb->seg + (size_t)b * T,
                *tg = bb->target + (size_t)b * T;
        int32_t t = 0, s = 0;
        for (int64_t j = r->row_off[k]; j < r->row_off[k + 1]; j++, s++) {
            int64_t e = r->ex[j], o = d->off[e];
            int32_t l = tk_sft_len(d, e);
            for (int32_t i = 0; i < l; i++, t++) {
                ids[t] = d->ids[o + i];
                pos[t] = i;
                seg[t] = s;
                tg[t] = (i + 1 < l && (d->mask[o + i + 1] & TK_MASK_LOSS)) ? d->ids[o + i + 1] : -1;
                if (tg[t] >= 0) bb->n_targets++;
            }
        }
        bb->n_tokens += t;
        for (; t < T; t++) { ids[t] = 0; pos[t] = 0; seg[t] = -1; tg[t] = -1; }
    }
    bb->b.n_rows = n;
    bb->b.n_cols = T;
    bb->b.ids = bb->ids;
    bb->b.pos = bb->pos;
    bb->b.seg = bb->seg;
    return TK_OK;
}
