/* The model side of an evaluation: a system (base model, optional adapter, chat template)
 * scores reference answers (loss, perplexity, token accuracy), preference pairs and multiple
 * choice by log-likelihood, and generates answers. */
#include "eval/eval_model.h"
#include "objective/chunks.h"
#include <math.h>
#include <ctype.h>

tk_status tk_eval_sys_open(tk_model *shared, const char *model, const char *tokenizer, const char *adapter, const char *tmpl,
                           tk_eval_sys *s) {
    memset(s, 0, sizeof *s);
    tk_status st;
    if (shared) s->m = shared;
    else {
        tk_model_params mp = tk_model_default_params();
        mp.tokenizer_path = tokenizer;
        if ((st = tk_model_load(model, &mp, &s->m))) return tk_fail_ctx(st, "%s: ", model);
        s->owns_model = true;
    }
    if (!tk_model_tokenizer(s->m)) { tk_eval_sys_close(s); return tk_fail(TK_ERR_FORMAT, "%s: the model has no tokenizer (give --tokenizer)", model); }
    if (adapter && tk_classifier_is(adapter)) {   /* a classifier: its adapter and head */
        if ((st = tk_classifier_open(adapter, s->m, &s->cls))) { tk_eval_sys_close(s); return st; }
        s->is_cls = true;
        if (s->cls.regress) {
            tk_eval_sys_close(s);
            return tk_fail(TK_ERR_ARG, "%s is a regression head: takumi eval reports accuracy and macro-F1 of classifiers (`takumi classify "
                           "--data FILE` gives its mean squared error)", adapter);
        }
        if (s->cls.ad) { s->use = (tk_adapter_use){.peft = tk_adapter_handle_peft(s->cls.ad), .scale = 1.0f}; s->n_use = 1; }
    } else if (adapter && tk_reward_model_is(adapter)) {   /* a reward model: the adapter plus its score head */
        int64_t C = tk_model_get_config(s->m)->dim;
        st = tk_objective_new(&tk_objective_reward, NULL, &s->rm);
        if (!st) st = tk_objective_add_params(s->rm, C, 0, "", &s->rm_ps);
        if (!st) st = tk_reward_model_open(adapter, s->m, s->rm_ps.p[0].w, C, &s->ad);
        if (st) { tk_eval_sys_close(s); return st; }
    } else if (adapter && (st = tk_adapter_apply(s->m, adapter, &s->ad))) {
        tk_eval_sys_close(s);
        return tk_fail_ctx(st, "adapter %s: ", adapter);
    }
    if (s->ad) { s->use = (tk_adapter_use){.peft = tk_adapter_handle_peft(s->ad), .scale = 1.0f}; s->n_use = 1; }
    if ((st = tk_chat_resolve(tk_model_tokenizer(s->m), tmpl, &s->fam))) { tk_eval_sys_close(s); return st; }
    return TK_OK;
}

void tk_eval_sys_close(tk_eval_sys *s) {
    tk_forward_free(s->fw);
    if (s->ad) tk_adapter_detach(s->m, s->ad);
    if (s->is_cls) tk_classifier_close(&s->cls, s->m);
    tk_objective_free(s->rm);
    tk_params_free(&s->rm_ps);
    if (s->owns_model) tk_model_free(s->m);
    memset(s, 0, sizeof *s);
}

/* The forward workspace, large enough for n tokens, with the system's adapters set. */
static tk_status fw_ready(tk_eval_sys *s, int64_t n) {
    if (n > s->fw_cols) {
        tk_forward_free(s->fw);
        s->fw = NULL;
        s->fw_cols = 0;
        int32_t cols = (int32_t)(n < 256 ? 256 : n);
        tk_status st = tk_forward_new(s->m, 1, cols, 0, &s->fw);
        if (st) return st;
        s->fw_cols = cols;
        s->fw_n_use = 0;
    }
    if (s->fw_n_use != s->n_use) {
        tk_status st = tk_forward_set_adapters(s->fw, s->n_use ? &s->use : NULL, s->n_use);
        if (st) return st;
        s->fw_n_use = s->n_use;
    }
    return TK_OK;
}

/* Per chunk of target rows' logits (the LM head in chunks: the [targets x V] logits never exist whole):
 * log-softmax at the target, in double, and whether the target is the argmax. */
typedef struct lp_ctx { const int32_t *y; double lp; int64_t right; int64_t V; } lp_ctx;
static tk_status lp_chunk(void *ud, int64_t c0, int64_t r, float *logits) {
    lp_ctx *c = ud;
    for (int64_t i = 0; i < r; i++) {
        const float *l = logits + i * c->V;
        int32_t y = c->y[c0 + i], am = 0;
        float mx = l[0];
        for (int64_t v = 1; v < c->V; v++) if (l[v] > mx) { mx = l[v]; am = (int32_t)v; }
        double z = 0;
        for (int64_t v = 0; v < c->V; v++) z += exp((double)l[v] - mx);
        c->lp += (double)l[y] - mx - log(z);
        c->right += am == y;
    }
    return TK_OK;
}

/* Sum of log p(ids[t] | ids[<t]) over targets (mask[t] != 0), the number of targets and how many of them are the argmax. */
static tk_status seq_logp(tk_eval_sys *s, const int32_t *ids, int64_t n, const uint8_t *mask, double *lp, int64_t *n_tok, int64_t *n_right) {
    int64_t n_out = 0;
    *lp = 0; *n_tok = 0; if (n_right) *n_right = 0;
    for (int64_t t = 1; t < n; t++) n_out += mask[t] != 0;
    if (!n_out) return TK_OK;
    tk_status st = fw_ready(s, n);
    if (st) return st;
    int64_t *idx = tk_malloc((size_t)n_out * sizeof *idx);
    int32_t *y = tk_malloc((size_t)n_out * sizeof *y);
    if (!idx || !y) { free(idx); free(y); return TK_ERR_NOMEM; }
    int64_t k = 0;
    for (int64_t t = 1; t < n; t++) if (mask[t]) { idx[k] = t - 1; y[k++] = ids[t]; }
    tk_batch b = {.n_rows = 1, .n_cols = (int32_t)n, .ids = ids};
    tk_lm_head head = {&tk_model_weights(s->m)->output, tk_model_get_config(s->m)->final_softcap};
    lp_ctx c = {.y = y, .V = tk_model_get_config(s->m)->n_vocab};
    st = tk_forward_run(s->fw, &b, NULL, 0, NULL);   /* final hidden states only */
    if (!st) st = tk_head_chunks(tk_forward_hidden(s->fw), &head, idx, n_out, lp_chunk, &c, NULL, NULL);
    *lp = c.lp;
    if (n_right) *n_right = c.right;
    *n_tok = n_out;
    free(idx); free(y);
    return st;
}

/* The conversation prompt + {assistant: reply} rendered; mask = the reply's target tokens. */
static tk_status render_reply(tk_eval_sys *s, const tk_eval_ex *ex, const char *reply, tk_chat_tokens *ct, uint8_t **mask) {
    tk_chat_msg *m = tk_malloc((ex->n_prompt + 1) * sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    memcpy(m, ex->prompt, ex->n_prompt * sizeof *m);
    m[ex->n_prompt] = (tk_chat_msg){TK_ROLE_ASSISTANT, reply};
    tk_status st = tk_chat_render(tk_model_tokenizer(s->m), s->fam, m, ex->n_prompt + 1, false, ct);
    free(m);
    if (st) return tk_fail_ctx(st, "line %llu: chat template %s: ", (unsigned long long)ex->line, tk_chat_family_name(s->fam));
    if (!(*mask = tk_calloc(ct->ids.len ? ct->ids.len : 1, 1))) return TK_ERR_NOMEM;
    for (size_t t = 0; t < ct->ids.len; t++) (*mask)[t] = ct->is_target[t] && ct->msg_index[t] == (int32_t)ex->n_prompt;
    return TK_OK;
}

/* A reward model's score of prompt + reply: the head on the final hidden state of the last token. */
static tk_status reply_reward(tk_eval_sys *s, const tk_eval_ex *ex, const char *reply, double *r, bool *too_long) {
    tk_chat_tokens ct = {0};
    uint8_t *mask = NULL;
    int32_t *seq = NULL;
    tk_status st = render_reply(s, ex, reply, &ct, &mask);
    int64_t n = (int64_t)ct.ids.len;
    *too_long = !st && n > s->max_seq;
    if (!st && !*too_long) st = fw_ready(s, n);
    if (!st && !*too_long && !(seq = tk_malloc((size_t)n * sizeof *seq))) st = TK_ERR_NOMEM;
    if (!st && !*too_long) {
        tk_batch b = {.n_rows = 1, .n_cols = (int32_t)n, .ids = ct.ids.data};
        st = tk_forward_run(s->fw, &b, NULL, 0, NULL);
        for (int64_t t = 0; t < n; t++) seq[t] = t == n - 1 ? 0 : -1;  /* the score is read on the last token */
        tk_lm_head head = {&tk_model_weights(s->m)->output, tk_model_get_config(s->m)->final_softcap};
        tk_obj_batch x = {.T = n, .C = tk_model_get_config(s->m)->dim, .h = tk_forward_hidden(s->fw), .head = &head, .seq = seq, .n_seq = 1};
        if (!st) st = tk_reward_scores(s->rm, &x, r);
    }
    free(seq);
    free(mask);
    tk_chat_tokens_free(&ct);
    return st;
}

static tk_status reply_logp(tk_eval_sys *s, const tk_eval_ex *ex, const char *reply, double *lp, int64_t *n_tok, int64_t *n_right, bool *too_long) {
    tk_chat_tokens ct = {0};
    uint8_t *mask = NULL;
    tk_status st = render_reply(s, ex, reply, &ct, &mask);
    *too_long = !st && (int64_t)ct.ids.len > s->max_seq;
    if (!st && !*too_long) st = seq_logp(s, ct.ids.data, (int64_t)ct.ids.len, mask, lp, n_tok, n_right);
    free(mask);
    tk_chat_tokens_free(&ct);
    return st;
}

/* A plain text: every token after the first is predicted (BOS first when the tokenizer adds one). */
static tk_status text_logp(tk_eval_sys *s, const char *text, double *lp, int64_t *n_tok, int64_t *n_right, bool *too_long) {
    const tk_tokenizer *tok = tk_model_tokenizer(s->m);
    tk_ivec ids = {0};
    tk_status st = tk_tokenize(tok, text, strlen(text), tk_tokenizer_adds_bos(tok) ? TK_TOK_ADD_SPECIAL : 0, &ids);
    *too_long = !st && (int64_t)ids.len > s->max_seq;
    uint8_t *mask = st || *too_long ? NULL : tk_malloc(ids.len ? ids.len : 1);
    if (!st && !*too_long && !mask) st = TK_ERR_NOMEM;
    if (mask) {
        memset(mask, 1, ids.len);
        st = seq_logp(s, ids.data, (int64_t)ids.len, mask, lp, n_tok, n_right);
    }
    free(mask);
    tk_ivec_free(&ids);
    return st;
}

/* lm-evaluation-harness loglikelihood of " choice" after the question: context and context+continuation tokenized
 * whole, the continuation being the tokens past the context's (trailing spaces of the context move to it). */
static tk_status choice_logp(tk_eval_sys *s, const char *ctx, const char *choice, double *lp) {
    const tk_tokenizer *tok = tk_model_tokenizer(s->m);
    size_t cl = strlen(ctx), sp = 0;
    while (sp < cl && isspace((unsigned char)ctx[cl - 1 - sp])) sp++;
    tk_buf whole = {0};
    tk_ivec a = {0}, w = {0};
    tk_status st = tk_buf_printf(&whole, "%s %s", ctx, choice);  /* context + target delimiter + choice */
    /* no BOS: the harness encodes without special tokens (add_bos_token is off unless a model asks for it) */
    if (!st) st = tk_tokenize(tok, ctx, cl - sp, 0, &a);
    if (!st) st = tk_tokenize(tok, whole.data, whole.len, 0, &w);
    if (!st && a.len == 0) { /* empty context: the end-of-text token stands in, as the harness does */
        int32_t e = tk_tokenizer_eos(tok);
        st = tk_ivec_push(&a, e);
        if (!st) { st = tk_ivec_reserve(&w, 1); if (!st) { memmove(w.data + 1, w.data, w.len * sizeof(int32_t)); w.data[0] = e; w.len++; } }
    }
    uint8_t *mask = st ? NULL : tk_calloc(w.len ? w.len : 1, 1);
    if (!st && !mask) st = TK_ERR_NOMEM;
    int64_t nt = 0;
    if (!st) {
        for (size_t t = a.len; t < w.len; t++) mask[t] = 1;
        if ((int64_t)w.len > s->max_seq) st = tk_fail(TK_ERR_RANGE, "question and choice are %zu tokens, longer than --max-seq-len %d", w.len, s->max_seq);
        else st = seq_logp(s, w.data, (int64_t)w.len, mask, lp, &nt, NULL);
    }
    free(mask);
    tk_buf_free(&whole); tk_ivec_free(&a); tk_ivec_free(&w);
    return st;
}

/* Once per example and system: log p(chosen) and log p(rejected) (a reward model: its scores) into ex->pref[which];
 * has_pref stays false when a side is longer than max_seq (counted once). */
static tk_status pair_scores(tk_eval_sys *s, tk_eval_ex *ex, int which, int64_t *n_too_long) {
    if (s->pair_done) return TK_OK;
    s->pair_done = true;
    double lc, lr;
    int64_t nc, nr;
    bool tl1 = false, tl2 = false;
    tk_status st = s->rm ? reply_reward(s, ex, ex->chosen, &lc, &tl1) : reply_logp(s, ex, ex->chosen, &lc, &nc, NULL, &tl1);
    if (!st) st = s->rm ? reply_reward(s, ex, ex->rejected, &lr, &tl2) : reply_logp(s, ex, ex->rejected, &lr, &nr, NULL, &tl2);
    if (st) return st;
    if (tl1 || tl2) { (*n_too_long)++; return TK_OK; }
    ex->pref[which][0] = lc; ex->pref[which][1] = lr; ex->has_pref[which] = true;
    return TK_OK;
}

static size_t n_codepoints(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

tk_status tk_eval_score(tk_eval_sys *s, tk_eval_ex *ex, int which, const tk_eval_col *cols, int n_cols, double *stats, int64_t *n_too_long) {
    tk_status st = TK_OK;
    for (int c = 0; c < n_cols && !st; c++) {
        const char *nm = cols[c].def->name;
        double *v = stats + cols[c].off;
        if (cols[c].def->model != 1) continue;
        if (!strcmp(nm, "loss") || !strcmp(nm, "ppl") || !strcmp(nm, "token_acc")) {
            if (!ex->text && (!ex->reference || !ex->n_prompt)) continue;
            if (!s->ref_done) {
                bool tl;
                int64_t n_right;
                st = ex->text ? text_logp(s, ex->text, &s->ref_lp, &s->ref_n, &n_right, &tl)
                              : reply_logp(s, ex, ex->reference, &s->ref_lp, &s->ref_n, &n_right, &tl);
                s->ref_right = n_right;
                s->ref_long = tl;
                s->ref_done = true;
                if (tl) (*n_too_long)++;
            }
            if (st || s->ref_long || !s->ref_n) continue;
            v[0] = 1;
            v[1] = nm[0] == 't' ? (double)s->ref_right : -s->ref_lp;
            v[2] = (double)s->ref_n;
        } else if (!strcmp(nm, "pref_accuracy")) {
            if (!ex->chosen) continue;
            if ((st = pair_scores(s, ex, which, n_too_long))) break;
            if (!ex->has_pref[which]) continue;
            v[0] = 1; v[1] = ex->pref[which][0] > ex->pref[which][1]; v[2] = 1;
        } else if (!strcmp(nm, "reward_accuracy")) {
            /* TRL's rewards/accuracies: beta (log pi - log ref) of chosen above rejected's; the reference is the
             * base with the adapter off (as DPO with LoRA trains), so a system without an adapter has none */
            if (!ex->chosen || !s->n_use) continue;
            if (s->rm) { st = tk_fail(TK_ERR_ARG, "reward_accuracy is a policy's implicit reward (DPO); a reward model scores pairs with pref_accuracy"); break; }
            if ((st = pair_scores(s, ex, which, n_too_long))) break;
            if (!ex->has_pref[which]) continue;
            double rc, rr;
            int64_t nc, nr;
            bool tl1, tl2;
            int n_use = s->n_use;
            s->n_use = 0;   /* the reference: adapter off */
            st = reply_logp(s, ex, ex->chosen, &rc, &nc, NULL, &tl1);
            if (!st) st = reply_logp(s, ex, ex->rejected, &rr, &nr, NULL, &tl2);
            s->n_use = n_use;
            if (st) break;
            ex->pref_ref[which][0] = rc; ex->pref_ref[which][1] = rr; ex->has_pref_ref[which] = true;
            v[0] = 1; v[1] = ex->pref[which][0] - rc > ex->pref[which][1] - rr; v[2] = 1;
        } else if (!strcmp(nm, "mc_acc") || !strcmp(nm, "mc_acc_norm")) {
            if (!ex->n_choices) continue;
            const char *q = ex->prompt[ex->n_prompt - 1].content;
            if (!ex->choice_lp[which] && !(ex->choice_lp[which] = tk_calloc((size_t)ex->n_choices, sizeof(double)))) return TK_ERR_NOMEM;
            int best = 0, best_n = 0;
            double bl = -INFINITY, bn = -INFINITY;
            for (int i = 0; i < ex->n_choices; i++) {
                double lp;
                if ((st = choice_logp(s, q, ex->choices[i], &lp))) break;
                ex->choice_lp[which][i] = lp;
                double ln = lp / (double)(n_codepoints(ex->choices[i]) ? n_codepoints(ex->choices[i]) : 1);
                if (lp > bl) { bl = lp; best = i; }
                if (ln > bn) { bn = ln; best_n = i; }
            }
            if (st) break;
            v[0] = 1; v[1] = (strcmp(nm, "mc_acc") ? best_n : best) == ex->answer; v[2] = 1;
        }
    }
    return st;
}

void tk_eval_score_reset(tk_eval_sys *s) { s->ref_done = false; s->pair_done = false; }

tk_status tk_eval_prompt_ids(tk_eval_sys *s, const tk_eval_ex *ex, tk_ivec *ids) {
    tk_chat_tokens ct = {0};
    tk_status st = tk_chat_render(tk_model_tokenizer(s->m), s->fam, ex->prompt, ex->n_prompt, true, &ct);
    if (st) st = tk_fail_ctx(st, "line %llu: chat template %s: ", (unsigned long long)ex->line, tk_chat_family_name(s->fam));
    else { *ids = ct.ids; ct.ids = (tk_ivec){0}; }
    tk_chat_tokens_free(&ct);
    return st;
}

/* A classifier's answers (see tk_eval_generate). */
static tk_status classify_all(tk_eval_sys *s, tk_eval_set *set, int which, void (*progress)(void *, const char *, int64_t, int64_t),
                              void *ud) {
    const int32_t K = s->cls.head.K;
    double *z = tk_malloc((size_t)K * sizeof *z);
    tk_ivec ids = {0};
    tk_status st = z ? TK_OK : TK_ERR_NOMEM;
    for (size_t i = 0; i < set->n && !st; i++) {
        tk_eval_ex *ex = &set->v[i];
        if (!ex->n_prompt || ex->prompt[ex->n_prompt - 1].role != TK_ROLE_USER || ex->n_choices) continue;
        const char *text = ex->prompt[ex->n_prompt - 1].content;
        int32_t truth = ex->is_label ? tk_label_index(ex->reference, strlen(ex->reference), s->cls.labels, s->cls.n_labels) : 0;
        if (truth < 0) {
            st = tk_fail(TK_ERR_FORMAT, "line %llu: label \"%s\" is unknown to the classifier (its labels: %s%s)", (unsigned long long)ex->line,
                         ex->reference, s->cls.labels[0], s->cls.n_labels > 1 ? ", ..." : "");
            break;
        }
        if ((st = tk_classifier_tokens(tk_model_tokenizer(s->m), text, strlen(text), s->max_seq, &ids)) || (st = fw_ready(s, (int64_t)ids.len)) ||
            (st = tk_classifier_run(&s->cls, s->fw, ids.data, (int64_t)ids.len, z)))
            break;
        int32_t best = 0;
        for (int32_t k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        bool by_name = !ex->is_label || !strcmp(ex->reference, s->cls.labels[truth]);
        char idx[16];
        snprintf(idx, sizeof idx, "%d", (int)best);
        free(ex->pred[which]);
        if (!(ex->pred[which] = tk_strdup(by_name ? s->cls.labels[best] : idx))) st = TK_ERR_NOMEM;
        if (progress && (i + 1) % 64 == 0) progress(ud, which ? "classifying (baseline)" : "classifying", (int64_t)i + 1, (int64_t)set->n);
    }
    free(z);
    tk_ivec_free(&ids);
    return st;
}

tk_status tk_eval_generate(tk_eval_sys *s, tk_eval_set *set, int which, int32_t max_tokens, int32_t batch,
                           void (*progress)(void *, const char *, int64_t, int64_t), void *ud, double *gen_s, int64_t *n_gen) {
    if (s->is_cls) {
        double t0 = tk_time_s();
        tk_status st = classify_all(s, set, which, progress, ud);
        *gen_s += tk_time_s() - t0;
        return st;
    }
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++) {
        const tk_eval_ex *ex = &set->v[i];
        n += ex->n_prompt && ex->prompt[ex->n_prompt - 1].role == TK_ROLE_USER && !ex->n_choices;
    }
    if (!n) return TK_OK;
    tk_ivec *ids = tk_calloc(n, sizeof *ids);
    tk_gen_request *req = tk_calloc(n, sizeof *req);
    tk_gen_result *res = tk_calloc(n, sizeof *res);
    size_t *at = tk_calloc(n, sizeof *at);
    tk_status st = ids && req && res && at ? TK_OK : TK_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < set->n && !st; i++) {
        const tk_eval_ex *ex = &set->v[i];
        if (!ex->n_prompt || ex->prompt[ex->n_prompt - 1].role != TK_ROLE_USER || ex->n_choices) continue;
        st = tk_eval_prompt_ids(s, ex, &ids[k]);
        req[k] = (tk_gen_request){.prompt = ids[k].data, .n_prompt = (int64_t)ids[k].len, .seed = 0};
        at[k++] = i;
    }
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = 0;
    p.max_tokens = max_tokens;
    p.exact = s->exact;
    tk_gen_batch_stats bs = {0};
    double t0 = tk_time_s();
    /* in slices, for progress; each slice is one batched generation */
    size_t slice = (size_t)(batch > 0 ? batch : 1) * 4;
    for (size_t i0 = 0; i0 < n && !st; i0 += slice) {
        size_t m = n - i0 < slice ? n - i0 : slice;
        tk_gen_batch_stats one = {0};
        st = tk_generate_batch(s->m, tk_model_tokenizer(s->m), s->n_use ? &s->use : NULL, s->n_use, req + i0, (int32_t)m, &p, batch,
                               res + i0, &one);
        bs.n_generated += one.n_generated;
        if (progress) progress(ud, which ? "generating (baseline)" : "generating", (int64_t)(i0 + m), (int64_t)n);
    }
    *gen_s += tk_time_s() - t0;
    *n_gen += bs.n_generated;
    for (size_t j = 0; j < k && !st; j++) {
        tk_eval_ex *ex = &set->v[at[j]];
        free(ex->pred[which]);
        ex->pred[which] = res[j].text;
        res[j].text = NULL;
    }
    for (size_t j = 0; j < n; j++) { if (ids) tk_ivec_free(&ids[j]); if (res) tk_gen_result_free(&res[j]); }
    free(ids); free(req); free(res); free(at);
    return st;
}
