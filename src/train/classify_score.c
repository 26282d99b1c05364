/* Classifying texts with a trained classifier or regression head (takumi/train.h: tk_classify_texts):
 * the base model with the classifier's adapter applied, one forward per text, the head on its
 * pooled final hidden states (objective/classify.h). */
#include "takumi/train.h"
#include "train/classify_data.h"
#include "objective/classify.h"
#include "data/records.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

typedef struct score_ctx {
    tk_classifier c;
    tk_forward *f; int32_t f_cols;   /* sized to the longest text so far (a forward's cost follows the workspace's width) */
    tk_model *m;
    const tk_tokenizer *tok;
    int32_t max_seq;
    tk_ivec ids;
    tk_buf text;           /* a record's text, NUL-terminated */
    double *z, *p;
    tk_classify_fn fn; void *ud;
    tk_classifier_info info;
    int64_t n, right;
    double se;
    const char *name;
} score_ctx;

/* Classifies text (label: the record's label text, NULL for none). */
static tk_status one(score_ctx *s, const char *text, size_t len, const char *label, size_t label_len, uint64_t line) {
    tk_class_pred p = {.line = line, .text = text, .truth = -1, .truth_value = NAN, .logits = s->z};
    float v = 0;
    tk_status st = label ? tk_cls_label_value(label, label_len, s->c.labels, s->c.n_labels, s->c.regress, &v) : TK_OK;
    if (st) return tk_fail_ctx(st, "%s: line %llu: ", s->name, (unsigned long long)line);
    if (!(st = tk_classifier_tokens(s->tok, text, len, s->max_seq, &s->ids)) && (int32_t)s->ids.len > s->f_cols) {
        int32_t cols = s->ids.len < 128 ? 128 : (int32_t)s->ids.len;
        cols = cols > s->max_seq ? s->max_seq : cols;
        tk_forward_free(s->f);
        s->f = NULL;
        s->f_cols = 0;
        if (!(st = tk_forward_new(s->m, 1, cols, 0, &s->f))) s->f_cols = cols;
    }
    if (st || (st = tk_classifier_run(&s->c, s->f, s->ids.data, (int64_t)s->ids.len, s->z)))
        return line ? tk_fail_ctx(st, "%s: line %llu: ", s->name, (unsigned long long)line) : st;
    p.ids = s->ids.data;
    p.n_ids = (int32_t)s->ids.len;
    if (s->c.regress) {
        p.label = -1;
        p.value = s->z[0];
        if (label) { p.truth_value = v; s->se += (s->z[0] - v) * (s->z[0] - v); }
    } else {
        tk_softmax_d(s->z, s->c.n_labels, s->p);
        p.label = 0;
        for (int32_t k = 1; k < s->c.n_labels; k++)
            if (s->z[k] > s->z[p.label]) p.label = k;
        p.value = s->p[p.label];
        p.probs = s->p;
        if (label) { p.truth = (int32_t)v; s->right += p.truth == p.label; }
    }
    s->n++;
    if (s->fn) s->fn(&p, &s->info, s->ud);
    return TK_OK;
}

static tk_status record(void *ud, const tk_example *ex, uint64_t line) {
    score_ctx *s = ud;
    s->text.len = 0;
    tk_status st = tk_buf_append(&s->text, ex->msgs[0].text, ex->msgs[0].len);
    if (!st) st = tk_buf_append(&s->text, "", 1);
    return st ? st : one(s, s->text.data, ex->msgs[0].len, ex->label, ex->label_len, line);
}

tk_status tk_classify_texts(const tk_classify_opts *o, tk_classify_fn fn, void *ud, tk_classify_summary *sum) {
    if (!o || !o->model || !o->adapter || (!o->data && o->n_texts <= 0))
        return tk_fail(TK_ERR_ARG, "classify: --model, --adapter and a TEXT or --data FILE are required");
    if (o->data && o->n_texts > 0) return tk_fail(TK_ERR_ARG, "classify: give texts or --data FILE, not both");
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = o->tokenizer;
    tk_model *m = NULL;
    score_ctx s = {.fn = fn, .ud = ud, .name = o->data};
    tk_status st = tk_model_load(o->model, &mp, &m);
    if (st) return st;
    const tk_model_config *mc = tk_model_get_config(m);
    s.tok = tk_model_tokenizer(m);
    s.max_seq = o->max_seq > 0 ? o->max_seq : mc->max_seq < 1024 ? mc->max_seq : 1024;
    if (!s.tok) st = tk_fail(TK_ERR_FORMAT, "%s: the model has no tokenizer (give --tokenizer)", o->model);
    if (!st) st = tk_classifier_open(o->adapter, m, &s.c);
    s.m = m;
    if (!st) {
        s.z = tk_malloc(2 * (size_t)s.c.head.K * sizeof *s.z);
        if (!s.z) st = TK_ERR_NOMEM;
        else s.p = s.z + s.c.head.K;
    }
    s.info = (tk_classifier_info){.n_labels = s.c.n_labels ? s.c.n_labels : 1, .labels = (const char *const *)s.c.labels, .regress = s.c.regress};
    if (!st && o->data) {
        tk_rec_src src = {.path = o->data};
        tk_data_format fmt = TK_DATA_AUTO;
        uint64_t n_rec = 0;
        st = tk_rec_each(&src, &fmt, TK_REC_CLASSIFY, &n_rec, record, &s);
    }
    for (int32_t i = 0; !st && i < o->n_texts; i++) st = one(&s, o->texts[i], strlen(o->texts[i]), NULL, 0, 0);
    if (!st && sum) {
        sum->n = s.n;
        sum->accuracy = o->data && !s.c.regress && s.n ? (double)s.right / (double)s.n : NAN;
        sum->mse = o->data && s.c.regress && s.n ? s.se / (double)s.n : NAN;
    }
    free(s.z);
    tk_ivec_free(&s.ids);
    tk_buf_free(&s.text);
    tk_forward_free(s.f);
    tk_classifier_close(&s.c, m);
    tk_model_free(m);
    return st;
}
