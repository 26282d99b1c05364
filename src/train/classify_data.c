/* Classification / regression data for training (see classify_data.h). */
#include "train/classify_data.h"
#include "objective/classify.h"
#include "data/records.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>

void tk_cls_labels_free(tk_cls_labels *lab) {
    free(lab->line);
    free(lab->value);
    memset(lab, 0, sizeof *lab);
}

tk_status tk_cls_label_value(const char *label, size_t len, char *const *names, int32_t n_names, bool regress, float *value) {
    if (regress) {
        char buf[64], *end;
        if (len == 0 || len >= sizeof buf) return tk_fail(TK_ERR_FORMAT, "label \"%.*s\" is not a number (--task regress)", (int)len, label);
        memcpy(buf, label, len);
        buf[len] = 0;
        errno = 0;
        double v = strtod(buf, &end);
        if (errno || *end || !isfinite(v) || fabs(v) > 3e38)
            return tk_fail(TK_ERR_FORMAT, "label \"%s\" is not a number (--task regress)", buf);
        *value = (float)v;
        return TK_OK;
    }
    int32_t k = tk_label_index(label, len, names, n_names);
    if (k < 0) {
        tk_buf l = {0};
        for (int32_t i = 0; i < n_names; i++) tk_buf_printf(&l, "%s%s", i ? "," : "", names[i]);
        tk_status st = tk_fail(TK_ERR_FORMAT, "label \"%.*s\" is neither one of --labels %s nor an index in [0, %d)", (int)len, label,
                               l.data ? l.data : "", (int)n_names);
        tk_buf_free(&l);
        return st;
    }
    *value = (float)k;
    return TK_OK;
}

tk_status tk_cls_label(const tk_cls_labels *lab, uint64_t line, float *value) {
    int64_t lo = 0, hi = lab->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (lab->line[mid] < line) lo = mid + 1;
        else hi = mid;
    }
    if (lo >= lab->n || lab->line[lo] != line) return tk_fail(TK_ERR_INTERNAL, "no label for the example of line %llu", (unsigned long long)line);
    *value = lab->value[lo];
    return TK_OK;
}

typedef struct load_ctx {
    const tk_tokenizer *tok;
    int32_t max_seq;
    char *const *names; int32_t n_names; bool regress;
    tk_sft_data *d;
    tk_cls_labels *lab;
    tk_ivec ids;
    uint8_t *mask; size_t mask_cap;
    const char *name;
} load_ctx;

static tk_status load_example(void *ud, const tk_example *ex, uint64_t line) {
    load_ctx *lc = ud;
    float v = 0;
    tk_status st = tk_cls_label_value(ex->label, ex->label_len, lc->names, lc->n_names, lc->regress, &v);
    lc->ids.len = 0;
    if (!st) st = tk_tokenize(lc->tok, ex->msgs[0].text, ex->msgs[0].len, TK_TOK_ADD_SPECIAL, &lc->ids);
    if (!st && lc->ids.len > lc->mask_cap) {
        uint8_t *m = tk_realloc(lc->mask, lc->ids.len + 256);
        if (!m) return TK_ERR_NOMEM;
        lc->mask = m;
        lc->mask_cap = lc->ids.len + 256;
    }
    if (st) return tk_fail_ctx(st, "%s: line %llu: ", lc->name, (unsigned long long)line);
    memset(lc->mask, TK_MASK_LOSS, lc->ids.len);
    int64_t before = lc->d->n;
    if ((st = tk_sft_add(lc->d, lc->ids.data, lc->mask, (int64_t)lc->ids.len, lc->max_seq, line))) return st;
    if (lc->d->n == before) return TK_OK;   /* one token: skipped, counted */
    tk_cls_labels *lab = lc->lab;
    if (lab->n == lab->cap) {
        int64_t cap = lab->cap ? 2 * lab->cap : 256;
        uint64_t *l = tk_realloc(lab->line, (size_t)cap * sizeof *l);
        if (!l) return TK_ERR_NOMEM;
        lab->line = l;
        float *f = tk_realloc(lab->value, (size_t)cap * sizeof *f);
        if (!f) return TK_ERR_NOMEM;
        lab->value = f;
        lab->cap = cap;
    }
    lab->line[lab->n] = line;
    lab->value[lab->n++] = v;
    return TK_OK;
}

tk_status tk_cls_load(const char *path, const tk_tokenizer *tok, int32_t max_seq, char *const *names, int32_t n_names, bool regress,
                      tk_sft_data *out, tk_cls_labels *lab) {
    memset(out, 0, sizeof *out);
    memset(lab, 0, sizeof *lab);
    if (!tok) return tk_fail(TK_ERR_ARG, "classification data needs the model's tokenizer");
    if (max_seq < 2) return tk_fail(TK_ERR_ARG, "maximum sequence length %d: must be at least 2", max_seq);
    if (!regress && n_names < 1) return tk_fail(TK_ERR_ARG, "classification data needs the label names (--labels)");
    load_ctx lc = {.tok = tok, .max_seq = max_seq, .names = names, .n_names = n_names, .regress = regress, .d = out, .lab = lab,
                   .name = path};
    tk_rec_src s = {.path = path};
    tk_data_format fmt = TK_DATA_AUTO;
    tk_status st = tk_rec_each(&s, &fmt, TK_REC_CLASSIFY, &out->stats.n_records, load_example, &lc);
    out->format = fmt;
    tk_ivec_free(&lc.ids);
    free(lc.mask);
    if (!st && out->n == 0)
        st = tk_fail(TK_ERR_FORMAT, "%s: no example to train on (%llu records, %llu of a single token)", path,
                     (unsigned long long)out->stats.n_records, (unsigned long long)out->stats.n_skipped);
    return st;
}

void tk_cls_buf_free(tk_cls_buf *cb) {
    tk_batch_buf_free(&cb->bb);
    free(cb->seq);
    free(cb->value);
    memset(cb, 0, sizeof *cb);
}

tk_status tk_cls_fill(tk_cls_buf *cb, const tk_sft_data *d, const tk_cls_labels *lab, const tk_rows *r, int64_t r0, int32_t n) {
    tk_status st = tk_batch_fill(&cb->bb, d, r, r0, n);
    if (st) return st;
    const tk_batch *b = &cb->bb.b;
    size_t T = (size_t)b->n_rows * b->n_cols, S = (size_t)(r->row_off[r0 + n] - r->row_off[r0]);
    if (T > cb->cap) {
        int32_t *s = tk_realloc(cb->seq, T * sizeof *s);
        if (!s) return TK_ERR_NOMEM;
        cb->seq = s;
        cb->cap = T;
    }
    if (S > cb->cap_seq) {
        float *v = tk_realloc(cb->value, S * sizeof *v);
        if (!v) return TK_ERR_NOMEM;
        cb->value = v;
        cb->cap_seq = S;
    }
    int32_t base = 0;
    for (int32_t i = 0; i < b->n_rows; i++) {
        const int32_t *seg = b->seg + (size_t)i * b->n_cols;
        int32_t *sq = cb->seq + (size_t)i * b->n_cols;
        for (int32_t t = 0; t < b->n_cols; t++) sq[t] = seg[t] < 0 ? -1 : base + seg[t];
        for (int64_t k = r->row_off[r0 + i]; k < r->row_off[r0 + i + 1]; k++, base++)
            if ((st = tk_cls_label(lab, d->line[r->ex[k]], &cb->value[base]))) return st;
    }
    cb->n_seq = base;
    return TK_OK;
}
