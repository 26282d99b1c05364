/* Context distillation (see run.h): the teacher reads every conversation with --teacher-context at the
 * start of its system prompt, the student without it. Everything after the system prompt renders to the
 * same tokens in both, so the answer tokens sit at a fixed offset (shift) in the teacher's sequence: the
 * student's row t compares with the teacher's row t + shift. The teacher runs forward on its examples one
 * row at a time (the micro-batch's examples), its final hidden states gathered at the student's trained
 * rows; the teacher is the --teacher model or, by default, the student's own base (the training context's
 * reference forward: adapters off, full fine-tuning's weights as loaded, no second copy). */
#include "train/run.h"

/* The first position of ex i with a loss, or -1. */
static int64_t first_target(const tk_sft_data *d, int64_t i) {
    for (int64_t t = d->off[i]; t < d->off[i + 1]; t++)
        if (d->mask[t] & TK_MASK_LOSS) return t - d->off[i];
    return -1;
}

/* The teacher example of every example of d (by line) and its shift, checking that the answer's tokens agree. */
static tk_status align(tk_run *r, const tk_sft_data *d, int64_t **t_of, int32_t **shift) {
    const tk_sft_data *td = &r->tctx;
    *t_of = tk_malloc((size_t)(d->n ? d->n : 1) * sizeof **t_of);
    *shift = tk_malloc((size_t)(d->n ? d->n : 1) * sizeof **shift);
    if (!*t_of || !*shift) return TK_ERR_NOMEM;
    int64_t j = 0;
    for (int64_t i = 0; i < d->n; i++) {
        while (j < td->n && td->line[j] < d->line[i]) j++;   /* both in file order */
        if (j == td->n || td->line[j] != d->line[i])
            return tk_fail(TK_ERR_ARG, "%s: line %llu: the teacher's view of this record (with the context) has nothing to train on",
                           r->answers_path, (unsigned long long)d->line[i]);
        int64_t fs = first_target(d, i), ft = first_target(td, j);
        int64_t ls = tk_sft_len(d, i), lt = tk_sft_len(td, j);
        /* from the token before the first answer token to the student's end, the two renderings agree */
        bool same = fs >= 1 && ft >= 1 && ft - 1 + (ls - fs + 1) <= lt;
        for (int64_t k = 0; same && k <= ls - fs; k++)
            same = d->ids[d->off[i] + fs - 1 + k] == td->ids[td->off[j] + ft - 1 + k];
        if (!same)
            return tk_fail(TK_ERR_ARG, "%s: line %llu: the conversation renders to different tokens after the system prompt with and "
                           "without the context (%s template): the answers cannot be aligned", r->answers_path,
                           (unsigned long long)d->line[i], tk_chat_family_name(r->fam));
        (*t_of)[i] = j;
        (*shift)[i] = (int32_t)(ft - fs);
    }
    return TK_OK;
}

tk_status tk_run_context_load(tk_run *r) {
    tk_buf recs = {0};
    tk_status st = tk_run_context_records(r, &recs);
    if (st) { tk_buf_free(&recs); return st; }
    const tk_tokenizer *tok = r->teacher && tk_model_tokenizer(r->teacher) ? tk_model_tokenizer(r->teacher) : r->tok;
    const tk_model *tm = r->teacher ? r->teacher : r->m;
    tk_sft_params tp = r->sp;
    tp.format = TK_DATA_CHAT;
    tp.max_seq = tk_model_get_config(tm)->max_seq;   /* the teacher's prompt is longer: never cut before the student's */
    st = tk_sft_load_buffer(recs.data, recs.len, "the teacher's view (context in the system prompt)", tok, &tp, &r->tctx);
    tk_buf_free(&recs);
    if (st) return st;
    if (!st) st = align(r, &r->train, &r->t_of_train, &r->t_shift_train);
    if (!st && r->has_val) st = align(r, &r->val, &r->t_of_val, &r->t_shift_val);
    if (st) return st;
    if (r->tctx.stats.longest > r->max_cols) r->max_cols = r->tctx.stats.longest;
    double extra = 0;
    for (int64_t i = 0; i < r->train.n; i++) extra += r->t_shift_train[i];
    tk_run_emitf(r, TK_EV_INFO, "distill", false, "context distillation: the teacher (%s) reads %s in its system prompt (its answers "
                 "start %.0f tokens later on average; its longest example %d tokens), the student does not",
                 r->teacher ? r->c.teacher : "the base model", r->c.teacher_context, r->train.n ? extra / (double)r->train.n : 0.0,
                 r->tctx.stats.longest);
    return TK_OK;
}

tk_status tk_run_context_hidden(tk_run *r, const tk_sft_data *d, const tk_rows *rows, const int64_t *t_of, const int32_t *shift,
                                int64_t r0, int32_t nb, const float **h, tk_lm_head *head) {
    const tk_model *tm = r->teacher ? r->teacher : r->m;
    const int64_t C = tk_model_get_config(tm)->dim, T = r->bb.b.n_cols;
    size_t need = (size_t)nb * (size_t)T * (size_t)C;
    if (need > r->t_h_cap) {
        float *p = tk_realloc(r->t_h, need * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        r->t_h = p;
        r->t_h_cap = need;
    }
    memset(r->t_h, 0, need * sizeof *r->t_h);
    int32_t *pos = NULL;
    tk_status st = TK_OK;
    for (int32_t k = 0; k < nb && !st; k++) {
        int64_t row = r0 + k, col = 0;
        for (int64_t e = rows->row_off[row]; e < rows->row_off[row + 1] && !st; e++) {
            const int64_t ex = rows->ex[e], len = tk_sft_len(d, ex), te = t_of[ex], tl = tk_sft_len(&r->tctx, te);
            int32_t *p2 = tk_realloc(pos, (size_t)tl * sizeof *p2);
            if (!p2) { st = TK_ERR_NOMEM; break; }
            pos = p2;
            for (int64_t t = 0; t < tl; t++) pos[t] = (int32_t)t;
            tk_batch b = {.n_rows = 1, .n_cols = (int32_t)tl, .ids = r->tctx.ids + r->tctx.off[te], .pos = pos, .seg = NULL};
            const float *th = NULL;
            if (r->teacher) {
                if (!(st = tk_forward_run(r->teacher_fw, &b, NULL, 0, NULL))) th = tk_forward_hidden(r->teacher_fw);
            } else {
                st = tk_train_reference_hidden(r->tc, &b, &th);
            }
            if (st) { st = tk_fail_ctx(st, "the teacher's forward (with the context): "); break; }
            for (int64_t t = 0; t < len; t++) {
                int64_t bt = (int64_t)k * T + col + t, tt = t + shift[ex];
                if (r->bb.target[bt] < 0) continue;
                if (tt < 0 || tt >= tl) { st = tk_fail(TK_ERR_INTERNAL, "context distillation: position %lld outside the teacher's example", (long long)tt); break; }
                memcpy(r->t_h + bt * C, th + tt * C, (size_t)C * sizeof *th);
            }
            col += len;
        }
    }
    free(pos);
    if (st) return st;
    *h = r->t_h;
    *head = r->teacher ? (tk_lm_head){&tk_model_weights(r->teacher)->output, tk_model_get_config(r->teacher)->final_softcap}
                       : tk_train_reference_head(r->tc);
    return TK_OK;
}
