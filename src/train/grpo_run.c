/* Reinforcement fine-tuning in a run (--objective grpo; see run.h). A step takes batch-size x
 * grad-accum prompts from the shuffled prompt set, samples group-size answers to each with the
 * model as it is being trained (one tk_generate_batch call: every answer decoded together, one KV
 * cache each; per-answer seeds from (seed, step, answer), so a resumed run samples the same answers),
 * scores them with the grader, turns the rewards into group-relative advantages
 * (tk_grpo_advantages) and makes --passes optimizer updates on them with the GRPO loss
 * (objective/grpo.h): each micro-batch holds the answers of batch-size prompts. With --passes > 1
 * the ratio's denominator is the sampling policy's per-token log-probabilities, computed once
 * before the first update (evaluation mode); with 1 it is the detached current policy (ratio 1),
 * as TRL. With --beta > 0 the reference is the base with the adapter off (tk_train_reference_hidden).
 *
 * Units: the loss type's (tokens for dapo), normalised over the whole step, so gradient
 * accumulation changes nothing. Schedule: one optimizer update is one tick of the learning-rate
 * schedule (steps x passes in all). Validation: greedy answers to the validation prompts, graded;
 * its event carries the mean reward ("valid_reward" in metrics.jsonl) and no loss. */
#include "train/run.h"
#include "train/prompts.h"
#include "objective/grpo.h"
#include "objective/logp.h"
#include "train/rollout.h"
#include "dist/dist.h"
#include <math.h>

/* The step event's metrics after the objective's own (means over the step). */
static const char *const k_step_names[] = {"reward", "reward_std", "frac_reward_zero_std", "completions/mean_length",
                                           "completions/max_length", "completions/clipped_ratio", "grader_failures",
                                           "time/generation_s", "time/grading_s", "time/training_s", "generation/tokens_per_s"};
enum { N_STEP = sizeof k_step_names / sizeof k_step_names[0] };
static const char *const k_eval_names[] = {"reward", "completions/mean_length", "grader_failures"};
enum { N_EVAL = sizeof k_eval_names / sizeof k_eval_names[0] };

struct tk_grpo_run {
    tk_grpo_params gp;
    tk_eval_grading grading;
    char **items, **val_items;           /* the records as JSON (graders' items), parallel to r->train / r->val */
    int n_scores;                        /* the grader's scores (the first is the reward) */
    const char **step_names, **eval_names;   /* objective metrics + k_step_names + rewards/<score>/mean */
    char **score_names;                  /* "rewards/<score>/mean" [n_scores] */
    int n_step, n_eval;
    int64_t failures, failure_limit;
    char last_error[256];
    tk_sft_data roll;                    /* a step's sequences: prompt + answer, loss on the answer; line = answer index */
    tk_rows rrows;
    int64_t *order; size_t cap_order;
    int64_t *mj, *mstart; size_t cap_micro, cap_mstart; int32_t n_mine;   /* this rank's micro-batches of the step (build_roll) */
    int32_t *seq; float *seq_value; float *old_buf; double *tok_buf;   /* [batch-size x group-size x the longest row] */
    float *old_tok; size_t cap_old;      /* --passes > 1: the sampling policy's log-prob of each rolled-out token */
    double *rewards, *sub; float *adv; int32_t *group;   /* [a step's answers or the validation prompts] */
};

tk_status tk_run_grpo_options(tk_run *r) {
    tk_trainer_config *c = &r->c;
    if (!c->grader) return tk_fail(TK_ERR_ARG, "--objective grpo needs --grader FILE (the grader that scores the sampled answers)");
    if (c->loss && tk_grpo_loss_parse(c->loss) < 0)
        return tk_fail(TK_ERR_ARG, "--loss %s: --objective grpo takes dapo, grpo, bnpo or dr_grpo", c->loss);
    if (c->patience > 0) return tk_fail(TK_ERR_ARG, "--patience does not apply to --objective grpo (its validation is a reward, not a loss)");
    if (!c->loss && !(c->loss = tk_strdup("dapo"))) return TK_ERR_NOMEM;
    if (c->group_size == 0) c->group_size = 8;
    if (c->max_new_tokens == 0) c->max_new_tokens = 256;
    if (c->temperature == 0) c->temperature = 1;
    if (c->epsilon < 0) c->epsilon = 0.2;
    if (c->epsilon_high < 0) c->epsilon_high = c->epsilon;
    if (!(r->gr = tk_calloc(1, sizeof *r->gr))) return TK_ERR_NOMEM;
    tk_grpo_params *gp = &r->gr->gp;
    *gp = tk_grpo_default_params();
    gp->beta = c->beta;   /* auto (0): no reference, TRL 1.16's default */
    gp->epsilon_low = c->epsilon;
    gp->epsilon_high = c->epsilon_high;
    gp->loss_type = tk_grpo_loss_parse(c->loss);
    gp->max_completion_length = c->max_new_tokens;
    r->grpo = true;
    return TK_OK;
}

const void *tk_run_grpo_params(const tk_run *r) { return &r->gr->gp; }

/* "rewards/<name>/mean" names and the event name lists. */
static tk_status names_init(struct tk_grpo_run *g, const tk_objective_ops *o) {
    g->n_scores = tk_grader_n_scores(g->grading.grader);
    g->n_step = o->n_metrics + N_STEP + g->n_scores;
    g->n_eval = N_EVAL + g->n_scores;
    g->score_names = tk_calloc((size_t)g->n_scores, sizeof *g->score_names);
    g->step_names = tk_calloc((size_t)g->n_step, sizeof *g->step_names);
    g->eval_names = tk_calloc((size_t)g->n_eval, sizeof *g->eval_names);
    if (!g->score_names || !g->step_names || !g->eval_names) return TK_ERR_NOMEM;
    for (int i = 0; i < g->n_scores; i++) {
        const char *nm = tk_grader_score_name(g->grading.grader, i);
        size_t len = strlen(nm) + 16;
        if (!(g->score_names[i] = tk_malloc(len))) return TK_ERR_NOMEM;
        snprintf(g->score_names[i], len, "rewards/%s/mean", nm);
    }
    int k = 0;
    for (int i = 0; i < o->n_metrics; i++) g->step_names[k++] = o->metric_names[i];
    for (int i = 0; i < N_STEP; i++) g->step_names[k++] = k_step_names[i];
    for (int i = 0; i < g->n_scores; i++) g->step_names[k++] = g->score_names[i];
    k = 0;
    for (int i = 0; i < N_EVAL; i++) g->eval_names[k++] = k_eval_names[i];
    for (int i = 0; i < g->n_scores; i++) g->eval_names[k++] = g->score_names[i];
    return TK_OK;
}

tk_status tk_run_grpo_load(tk_run *r) {
    tk_trainer_config *c = &r->c;
    struct tk_grpo_run *g = r->gr;
    tk_status st = tk_rollout_grading_open(c->grader, c->judge, &g->grading);   /* a bad grader fails before the data is read */
    if (st || (st = names_init(g, &tk_objective_grpo))) return st;
    if (c->max_new_tokens >= c->max_seq)
        return tk_fail(TK_ERR_ARG, "--max-new-tokens %d leaves no room for a prompt in --max-seq-len %d", c->max_new_tokens, c->max_seq);
    const int32_t max_prompt = c->max_seq - c->max_new_tokens;
    tk_prompt_set tr, va = {0};
    if ((st = tk_prompt_set_load(c->data, r->tok, &r->sp, max_prompt, NULL, &tr))) return st;
    if (c->val && c->val_split > 0) st = tk_fail(TK_ERR_ARG, "use either --val or --val-split, not both");
    else if (c->val) st = tk_prompt_set_load(c->val, r->tok, &r->sp, max_prompt, NULL, &va);
    else if (c->val_split > 0) st = tk_prompt_set_split(&tr, c->val_split, c->seed, &va);
    if (st) { tk_prompt_set_free(&tr); tk_prompt_set_free(&va); return tk_fail_ctx(st, "%s: ", c->val ? c->val : c->data); }
    if (tr.n_long || va.n_long)
        tk_run_emitf(r, TK_EV_WARNING, "warning", false, "%lld prompts longer than %d tokens (--max-seq-len %d minus --max-new-tokens %d) "
                     "are left out", (long long)(tr.n_long + va.n_long), max_prompt, c->max_seq, c->max_new_tokens);
    r->train = tr.d;
    g->items = tr.item;
    r->sp.format = r->train.format;
    if (va.d.n > 0) {
        r->val = va.d;
        g->val_items = va.item;
        r->has_val = true;
    }
    return TK_OK;
}

void tk_run_grpo_free(tk_run *r) {
    struct tk_grpo_run *g = r->gr;
    if (!g) return;
    tk_eval_grading_close(&g->grading);
    for (int64_t i = 0; g->items && i < r->train.n; i++) free(g->items[i]);
    for (int64_t i = 0; g->val_items && i < r->val.n; i++) free(g->val_items[i]);
    free(g->items);
    free(g->val_items);
    for (int i = 0; g->score_names && i < g->n_scores; i++) free(g->score_names[i]);
    free(g->score_names);
    free(g->step_names);
    free(g->eval_names);
    tk_sft_free(&g->roll);
    tk_rows_free(&g->rrows);
    free(g->order);
    free(g->mj);
    free(g->mstart);
    free(g->seq); free(g->seq_value); free(g->old_buf); free(g->tok_buf);
    free(g->old_tok);
    free(g->rewards); free(g->sub); free(g->adv); free(g->group);
    free(g);
    r->gr = NULL;
}

tk_status tk_run_grpo_plan(tk_run *r, int32_t *longest) {
    tk_trainer_config *c = &r->c;
    if (c->epochs == 0) c->epochs = 1;
    if (c->batch_size == 0) c->batch_size = 1;
    if (c->grad_accum == 0) c->grad_accum = 4;
    c->packing = false;
    c->pack_len = r->train.stats.longest;
    int32_t lp = r->train.stats.longest;
    if (r->has_val && r->val.stats.longest > lp) lp = r->val.stats.longest;
    *longest = lp + c->max_new_tokens;
    return TK_OK;
}

tk_status tk_run_grpo_prepare(tk_run *r) {
    struct tk_grpo_run *g = r->gr;
    const tk_trainer_config *c = &r->c;
    int64_t samples = r->st.total_steps * (int64_t)c->batch_size * c->grad_accum * c->group_size;
    g->failure_limit = c->max_grader_failures >= 0 ? c->max_grader_failures : (samples + 9) / 10;
    /* the largest shapes, known from the plan: a step's answers (or the validation prompts), a micro-batch's rows */
    size_t n = (size_t)c->batch_size * (size_t)c->grad_accum * (size_t)c->group_size, T = (size_t)c->batch_size * c->group_size * r->max_cols;
    if (r->has_val && (size_t)r->val.n > n) n = (size_t)r->val.n;
    g->rewards = tk_malloc(n * sizeof *g->rewards);
    g->sub = tk_malloc(n * (size_t)(g->n_scores ? g->n_scores : 1) * sizeof *g->sub);
    g->adv = tk_malloc(n * sizeof *g->adv);
    g->group = tk_malloc(n * sizeof *g->group);
    g->seq = tk_malloc(T * sizeof *g->seq);
    g->seq_value = tk_malloc(T * sizeof *g->seq_value);
    g->old_buf = tk_malloc(T * sizeof *g->old_buf);
    g->tok_buf = tk_malloc(T * sizeof *g->tok_buf);
    if (!g->rewards || !g->sub || !g->adv || !g->group || !g->seq || !g->seq_value || !g->old_buf || !g->tok_buf) return TK_ERR_NOMEM;
    return TK_OK;
}

/* Grows *p to n elements of size sz (*cap in elements). */
static tk_status grow(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return TK_OK;
    void *v = tk_realloc(*p, n * sz);
    if (!v) return TK_ERR_NOMEM;
    *p = v;
    *cap = n;
    return TK_OK;
}

/* This rank's share of prompts [0, P): with N MPI ranks, the prompts of micro-batch j (batch-size prompts each) are
 * rank j mod N's, so groups never straddle ranks. Fills slot[] (their indexes in the step) and returns their count. */
static int32_t my_prompts(int32_t P, int32_t per_micro, int64_t *slot) {
    const int n = tk_dist_size(), rank = tk_dist_rank();
    int32_t k = 0;
    for (int32_t i = 0; i < P; i++)
        if ((i / per_micro) % n == rank) slot[k++] = i;
    return k;
}

/* Grades this rank's answers res[0..n) (answer a answers prompt ex[a / per_prompt]) into g->rewards / g->sub at their
 * global places slot[a / per_prompt] * per_prompt + a % per_prompt of N_all, and with N ranks adds every rank's (each
 * answer is one rank's, the others hold 0 there: the sums are exact), as are their lengths (*len, [N_all], may be
 * NULL) and whether they hit --max-new-tokens (*clip). Then counts the failures (NaN rewards) against the run's limit;
 * *n_fail: the failures of all ranks. */
static tk_status grade(tk_run *r, char **items, const int64_t *ex, const int64_t *slot, int32_t per_prompt, const tk_gen_result *res,
                       int32_t n, int32_t N_all, double *len, double *clip, int64_t *n_fail) {
    struct tk_grpo_run *g = r->gr;
    const int ns = g->n_scores;
    int64_t nf = 0;
    tk_status st = tk_rollout_grade(&g->grading, items, ex, per_prompt, res, n, g->rewards, g->sub, ns, &nf, g->last_error,
                                    sizeof g->last_error);
    if (st) return st;
    /* to the global places, from the last (a global place is never before its local one) */
    for (int32_t a = n - 1; a >= 0; a--) {
        const int64_t k = slot[a / per_prompt] * per_prompt + a % per_prompt;
        g->rewards[k] = g->rewards[a];
        for (int j = 0; j < ns; j++) g->sub[(size_t)k * ns + j] = g->sub[(size_t)a * ns + j];
    }
    bool *mine = tk_calloc((size_t)N_all + 1, sizeof *mine);
    if (!mine) return TK_ERR_NOMEM;
    for (int32_t a = 0; a < n; a++) {
        const int64_t k = slot[a / per_prompt] * per_prompt + a % per_prompt;
        mine[k] = true;
        if (len) len[k] = (double)res[a].n_ids;
        if (clip) clip[k] = res[a].stop != TK_GEN_STOP_EOS;
    }
    for (int32_t k = 0; k < N_all; k++) {
        if (mine[k]) continue;
        g->rewards[k] = 0;
        for (int j = 0; j < ns; j++) g->sub[(size_t)k * ns + j] = 0;
        if (len) len[k] = 0;
        if (clip) clip[k] = 0;
    }
    free(mine);
    if (tk_dist_size() > 1) {
        st = tk_dist_sum_f64(g->rewards, N_all);
        if (!st) st = tk_dist_sum_f64(g->sub, (int64_t)N_all * ns);
        if (!st && len) st = tk_dist_sum_f64(len, N_all);
        if (!st && clip) st = tk_dist_sum_f64(clip, N_all);
        if (st) return st;
    }
    *n_fail = 0;
    for (int32_t k = 0; k < N_all; k++) *n_fail += !isfinite(g->rewards[k]);
    g->failures += *n_fail;
    if (g->failure_limit >= 0 && g->failures > g->failure_limit)
        return tk_fail(TK_ERR_RANGE, "the grader failed on %lld sampled answers, more than --max-grader-failures %lld allows (last%s: %s)",
                       (long long)g->failures, (long long)g->failure_limit, nf ? "" : " on another rank", nf ? g->last_error : "see its message");
    return TK_OK;
}

/* Answers to the prompts ex[0..P) of d (global indexes slot[]), per_prompt each, with the model being trained; seeds
 * from (seed, step) and each answer's global index, so that N ranks sample the answers of one process. */
static tk_status sample(tk_run *r, const tk_sft_data *d, const int64_t *ex, const int64_t *slot, int32_t P, int32_t per_prompt, bool greedy,
                        tk_gen_result *res, tk_gen_batch_stats *gs) {
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads);
    tk_status st = tk_rollout_sample(r->m, r->tok, ads, n_ads, d, ex, slot, P, per_prompt, greedy ? 0 : r->c.temperature, r->c.max_new_tokens,
                                     tk_mix64(r->c.seed ^ ((uint64_t)r->st.step << 32)), res, gs);
    return st ? tk_fail_ctx(st, "sampling answers at step %lld: ", (long long)r->st.step + 1) : TK_OK;
}

/* This rank's sequences of the step (prompt + answer; answers without a token are left out) in g->roll, one per row
 * in g->rrows (line: the answer's global index), and its micro-batches: rows [mstart[m], mstart[m + 1]) are micro-batch
 * mj[m] of the step (the answers of prompts [mj * batch-size, (mj + 1) * batch-size)), m < n_mine. */
static tk_status build_roll(tk_run *r, const int64_t *ex, const int64_t *slot, int32_t per_prompt, const tk_gen_result *res, int32_t n) {
    struct tk_grpo_run *g = r->gr;
    const int32_t bs = r->c.batch_size;
    tk_sft_free(&g->roll);
    tk_rows_free(&g->rrows);
    g->n_mine = 0;
    tk_status st = grow((void **)&g->mj, &g->cap_micro, (size_t)(n / per_prompt + 2), sizeof *g->mj);
    if (!st) st = grow((void **)&g->mstart, &g->cap_mstart, (size_t)(n / per_prompt + 2), sizeof *g->mstart);
    if (st) return st;
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    size_t cap = 0;
    for (int32_t k = 0; k < n && !st; k++) {
        const int64_t j = slot[k / per_prompt] / bs;
        if (g->n_mine == 0 || g->mj[g->n_mine - 1] != j) { g->mj[g->n_mine] = j; g->mstart[g->n_mine++] = g->roll.n; }
        if (res[k].n_ids == 0) continue;
        int64_t e = ex[k / per_prompt], np = tk_sft_len(&r->train, e), len = np + res[k].n_ids;
        if ((size_t)len > cap) {
            free(ids); free(mask);
            cap = (size_t)len;
            ids = tk_malloc(cap * sizeof *ids);
            mask = tk_malloc(cap);
            if (!ids || !mask) { st = TK_ERR_NOMEM; break; }
        }
        memcpy(ids, r->train.ids + r->train.off[e], (size_t)np * sizeof *ids);
        memcpy(ids + np, res[k].ids, (size_t)res[k].n_ids * sizeof *ids);
        memset(mask, 0, (size_t)np);
        memset(mask + np, TK_MASK_LOSS, (size_t)res[k].n_ids);
        st = tk_sft_add(&g->roll, ids, mask, len, (int32_t)(len + 1), (uint64_t)(slot[k / per_prompt] * per_prompt + k % per_prompt));
    }
    free(ids);
    free(mask);
    if (st) return st;
    g->mstart[g->n_mine] = g->roll.n;
    if (g->roll.n == 0) return TK_OK;   /* every answer of this rank's share is empty (the step checks all ranks') */
    if ((st = grow((void **)&g->order, &g->cap_order, (size_t)g->roll.n, sizeof *g->order))) return st;
    for (int64_t i = 0; i < g->roll.n; i++) g->order[i] = i;
    return tk_rows_pack(&g->roll, g->order, g->roll.n, g->roll.stats.longest, false, &g->rrows);
}

/* Micro-batch rows [r0, r0 + nb) of the roll into r->bb and *x (sequence ids, advantages, old log-probs). */
static tk_status micro(tk_run *r, int64_t r0, int32_t nb, bool old, tk_obj_batch *x) {
    struct tk_grpo_run *g = r->gr;
    tk_status st = tk_batch_fill(&r->bb, &g->roll, &g->rrows, r0, nb);
    if (st) return st;
    const int32_t Tc = r->bb.b.n_cols;
    const size_t T = (size_t)nb * (size_t)Tc;
    for (int32_t b = 0; b < nb; b++) {
        int64_t e = g->rrows.ex[g->rrows.row_off[r0 + b]];
        g->seq_value[b] = g->adv[g->roll.line[e]];
        for (int32_t t = 0; t < Tc; t++) {
            size_t i = (size_t)b * Tc + t;
            g->seq[i] = r->bb.target[i] >= 0 ? b : -1;
            g->old_buf[i] = old && r->bb.target[i] >= 0 ? g->old_tok[g->roll.off[e] + t + 1] : 0.0f;
        }
    }
    *x = (tk_obj_batch){.T = (int64_t)T, .target = r->bb.target, .seq = g->seq, .n_seq = nb, .seq_value = g->seq_value,
                        .old_logp = old ? g->old_buf : NULL};
    return TK_OK;
}

/* --passes > 1: the sampling policy's per-token log-probabilities of the whole roll, before the first update. */
static tk_status old_logps(tk_run *r, int32_t mb) {
    struct tk_grpo_run *g = r->gr;
    tk_status st = grow((void **)&g->old_tok, &g->cap_old, (size_t)g->roll.off[g->roll.n], sizeof *g->old_tok);
    for (int64_t r0 = 0; r0 < g->rrows.n_rows && !st; r0 += mb) {
        int32_t nb = (int32_t)(g->rrows.n_rows - r0 < mb ? g->rrows.n_rows - r0 : mb);
        tk_obj_batch x;
        const float *h;
        tk_lm_head head;
        if ((st = micro(r, r0, nb, false, &x)) || (st = tk_train_policy_hidden(r->tc, &r->bb.b, &h, &head))) break;
        if ((st = tk_seq_logp_forward(h, &head, x.T, x.target, x.seq, nb, NULL, NULL, NULL, g->tok_buf))) break;
        const int32_t Tc = r->bb.b.n_cols;
        for (int32_t b = 0; b < nb; b++) {
            int64_t e = g->rrows.ex[g->rrows.row_off[r0 + b]];
            for (int32_t t = 0; t < Tc; t++)
                if (r->bb.target[(size_t)b * Tc + t] >= 0) g->old_tok[g->roll.off[e] + t + 1] = (float)g->tok_buf[(size_t)b * Tc + t];
        }
    }
    return st;
}

/* With N ranks: the sums v[0..n) over the ranks (every rank's share of the step). */
static tk_status dist_sum(double *v, int64_t n) { return tk_dist_size() > 1 ? tk_dist_sum_f64(v, n) : TK_OK; }

tk_status tk_run_grpo_step(tk_run *r) {
    tk_trainer_config *c = &r->c;
    struct tk_grpo_run *g = r->gr;
    tk_status st = tk_run_rows(r, r->st.epoch);
    if (st) return st;
    const int64_t per = (int64_t)c->batch_size * c->grad_accum;
    const int32_t P = (int32_t)(r->rows.n_rows - r->st.row < per ? r->rows.n_rows - r->st.row : per), G = c->group_size, N = P * G;
    const int64_t n_micro = (P + c->batch_size - 1) / c->batch_size;
    int64_t *ex = tk_malloc((size_t)P * sizeof *ex), *slot = tk_malloc((size_t)P * sizeof *slot);
    double *len = tk_malloc((size_t)N * sizeof *len), *clip = tk_malloc((size_t)N * sizeof *clip);
    const int32_t Pm = slot ? my_prompts(P, c->batch_size, slot) : 0, Nm = Pm * G;   /* this rank's prompts and answers */
    tk_gen_result *res = tk_calloc((size_t)(Nm ? Nm : 1), sizeof *res);
    if (!ex || !slot || !len || !clip || !res) { free(ex); free(slot); free(len); free(clip); free(res); return TK_ERR_NOMEM; }
    for (int32_t i = 0; i < Pm; i++) ex[i] = r->rows.ex[r->rows.row_off[r->st.row + slot[i]]];
    double t0 = tk_time_s();
    tk_gen_batch_stats gs = {0};
    st = sample(r, &r->train, ex, slot, Pm, G, false, res, &gs);
    double t1 = tk_time_s(), t2 = t1;
    int64_t n_fail = 0, n_gen = gs.n_generated;
    /* every answer's reward, length and clipping on every rank; the advantages per group, as one process */
    if (!st && !(st = grade(r, g->items, ex, slot, G, res, Nm, N, len, clip, &n_fail))) {
        t2 = tk_time_s();
        for (int32_t k = 0; k < N; k++) g->group[k] = k / G;
        st = tk_grpo_advantages(g->rewards, g->group, N, c->scale_rewards, g->adv);
    }
    if (!st && tk_dist_size() > 1) st = tk_dist_sum_i64(&n_gen, 1);
    /* answer statistics */
    double len_sum = 0, len_max = 0, clipped = 0, std_sum = 0, zero_std = 0;
    for (int32_t k = 0; k < N && !st; k++) {
        len_sum += len[k];
        if (len[k] > len_max) len_max = len[k];
        clipped += clip[k];
    }
    for (int32_t i = 0; i < P && !st; i++) {
        double sd;
        tk_rollout_mean(g->rewards + (size_t)i * G, G, 1, &sd);
        std_sum += sd;
        if (sd == 0) zero_std++;
    }
    if (!st && len_max == 0) st = tk_fail(TK_ERR_INTERNAL, "no sampled answer has a token");
    if (!st) st = build_roll(r, ex, slot, G, res, Nm);
    for (int32_t k = 0; k < Nm; k++) tk_gen_result_free(&res[k]);
    free(res);
    free(ex);
    free(slot);
    free(len);
    free(clip);
    if (st) return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);

    /* the updates: micro-batch j is the answers of the step's prompts [j * batch-size, (j + 1) * batch-size) (rank j mod N's) */
    const int32_t mb = c->batch_size * G;
    double norm = 0, sums[2 + TK_OBJ_MAX_METRICS] = {0}, gn = 0;   /* the loss and unit sums, the objective's metric sums */
    double *ls = &sums[0], *ws = &sums[1], *msum = sums + 2;
    for (int32_t m = 0; m < g->n_mine && !st; m++) {
        int32_t r0 = (int32_t)g->mstart[m], nb = (int32_t)(g->mstart[m + 1] - r0);
        tk_obj_batch x;
        double nm = 0;
        if (nb > 0 && !(st = micro(r, r0, nb, false, &x)) && !(st = tk_grpo_norm(&g->gp, &x, &nm))) norm += nm;
    }
    if (!st) st = dist_sum(&norm, 1);
    if (!st && c->passes > 1) st = old_logps(r, mb);
    const tk_objective_ops *o = tk_train_objective(r->tc);
    const uint64_t counter0 = tk_train_counter(r->tc);
    float lr = 0;
    for (int32_t pass = 0; pass < c->passes && !st; pass++) {
        const int64_t tick = r->st.step * c->passes + pass;
        const uint64_t cp = counter0 + (uint64_t)(pass * n_micro);   /* the dropout counter of the pass's first micro-batch */
        tk_params_zero_grad(r->ps);
        for (int32_t m = 0; m < g->n_mine && !st; m++) {
            int32_t r0 = (int32_t)g->mstart[m], nb = (int32_t)(g->mstart[m + 1] - r0);
            tk_run_micro_mine(r, g->mj[m], &cp, n_micro);   /* N ranks: the backward of the rank's last starts the gradient sums */
            tk_train_set_counter(r->tc, cp + (uint64_t)g->mj[m]);
            if (nb == 0) continue;
            tk_obj_batch x;
            tk_obj_result res1;
            tk_lm_head ref_head;
            if ((st = micro(r, r0, nb, c->passes > 1, &x))) break;
            if (g->gp.beta > 0) {
                ref_head = tk_train_reference_head(r->tc);
                x.ref_head = &ref_head;
                if ((st = tk_train_reference_hidden(r->tc, &r->bb.b, &x.ref_h))) break;
            }
            if ((st = tk_train_step_objective(r->tc, &r->bb.b, &x, norm > 0 ? (float)(1.0 / norm) : 0.0f, &res1))) break;
            *ls += res1.loss_sum;
            *ws += res1.norm;
            for (int i = 0; i < o->n_metrics; i++) msum[i] += res1.metrics[i];
        }
        if (st) break;
        tk_train_set_counter(r->tc, cp + (uint64_t)n_micro);
        if (tk_dist_size() > 1) {   /* the gradients summed over the ranks, then every rank takes the same update */
            tk_train_set_layer_done(r->tc, NULL, NULL);
            if ((st = tk_dist_barrier()) || (st = tk_dist_overlap_finish(r->ovl))) break;
        }
        lr = tk_lr_at(&r->opt, tick);
        st = tk_run_dist_update(r, tick, &gn);
    }
    if (!st) st = dist_sum(sums, 2 + o->n_metrics);
    if (st) return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
    double t3 = tk_time_s(), dt = t3 - t0;
    r->st.step++;
    r->st.row += P;
    if (r->st.row >= r->rows.n_rows) { r->st.epoch++; r->st.row = 0; }
    r->st.counter = tk_train_counter(r->tc);
    r->st.tokens_seen += n_gen;
    r->st.elapsed_s += dt;
    r->steps_here++;
    r->time_here += dt;
    double loss = *ws > 0 ? *ls / *ws : 0;
    double mean_r;
    mean_r = tk_rollout_mean(g->rewards, N, 1, NULL);
    double *m = tk_calloc((size_t)g->n_step, sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    int k = 0;
    for (int i = 0; i < o->n_metrics; i++) m[k++] = *ws > 0 ? msum[i] / *ws : NAN;
    const double vals[N_STEP] = {mean_r, std_sum / P, zero_std / P, len_sum / N, len_max, clipped / N, (double)n_fail,
                                 t1 - t0, t2 - t1, t3 - t2, gs.decode_s + gs.prefill_s > 0 ? (double)gs.n_generated / (gs.decode_s + gs.prefill_s) : 0};
    for (int i = 0; i < N_STEP; i++) m[k++] = vals[i];
    for (int j = 0; j < g->n_scores; j++) m[k++] = tk_rollout_mean(g->sub + j, N, g->n_scores, NULL);
    r->st.train_loss_sum += *ls;
    r->st.train_weight_sum += *ws;
    tk_train_event e = {.kind = TK_EV_STEP, .step = r->st.step, .total_steps = r->st.total_steps, .epoch = tk_run_epoch_progress(r),
                        .n_epochs = r->n_epochs, .train_loss = loss, .lr = lr, .grad_norm = gn, .tokens = n_gen,
                        .tokens_per_s = dt > 0 ? (double)n_gen / dt : 0, .step_s = dt, .elapsed_s = r->st.elapsed_s,
                        .eta_s = (double)(r->st.total_steps - r->st.step) * (r->time_here / (double)r->steps_here),
                        .peak_rss_mb = tk_peak_rss_mb(), .n_metrics = g->n_step, .metric_names = g->step_names, .metrics = m};
    if (!isfinite(loss)) st = tk_fail(TK_ERR_RANGE, "step %lld: the loss is %g (diverged; try a lower --lr)", (long long)r->st.step, loss);
    if (!st && tk_dist_rank() == 0) st = tk_metrics_write(&r->mx, &e, NULL);   /* rank 0 owns the run folder */
    if (!st) tk_run_emit(r, &e);
    free(m);
    return st;
}

tk_status tk_run_grpo_evaluate(tk_run *r) {
    struct tk_grpo_run *g = r->gr;
    const int32_t n = (int32_t)r->val.n;
    double t0 = tk_time_s();
    int64_t *ex = tk_malloc((size_t)(n ? n : 1) * sizeof *ex);
    double *len = tk_malloc((size_t)(n ? n : 1) * sizeof *len);
    tk_gen_result *res = tk_calloc((size_t)(n ? n : 1), sizeof *res);
    tk_status st = !ex || !len || !res ? TK_ERR_NOMEM : TK_OK;
    const int32_t nm = st ? 0 : my_prompts(n, 1, ex);   /* N ranks: validation prompt i is rank i mod N's */
    int64_t n_fail = 0, n_gen = 0;
    tk_gen_batch_stats gs = {0};
    if (!st) st = sample(r, &r->val, ex, ex, nm, 1, true, res, &gs);
    n_gen = gs.n_generated;
    if (!st) st = grade(r, g->val_items, ex, ex, 1, res, nm, n, len, NULL, &n_fail);
    if (!st && tk_dist_size() > 1) st = tk_dist_sum_i64(&n_gen, 1);
    double len_sum = 0;
    for (int32_t k = 0; k < n && !st; k++) len_sum += len[k];
    for (int32_t k = 0; k < nm; k++) tk_gen_result_free(&res[k]);
    free(res);
    free(ex);
    free(len);
    if (st) return tk_fail_ctx(st, "validation at step %lld: ", (long long)r->st.step);
    double *m = tk_calloc((size_t)g->n_eval, sizeof *m), mean_r;
    if (!m) return TK_ERR_NOMEM;
    mean_r = tk_rollout_mean(g->rewards, n, 1, NULL);
    m[0] = mean_r;
    m[1] = n ? len_sum / n : 0;
    m[2] = (double)n_fail;
    for (int j = 0; j < g->n_scores; j++) m[N_EVAL + j] = tk_rollout_mean(g->sub + j, n, g->n_scores, NULL);
    tk_train_event e = {.kind = TK_EV_EVAL, .step = r->st.step, .total_steps = r->st.total_steps, .epoch = tk_run_epoch_progress(r),
                        .n_epochs = r->n_epochs, .valid_loss = NAN, .valid_ppl = NAN, .valid_acc = NAN, .valid_tokens = n_gen,
                        .elapsed_s = tk_time_s() - t0, .n_metrics = g->n_eval, .metric_names = g->eval_names, .metrics = m};
    st = tk_dist_rank() == 0 ? tk_metrics_write(&r->mx, &e, NULL) : TK_OK;
    if (!st) tk_run_emit(r, &e);
    free(m);
    return st;
}
