/* Self-training from unlabeled prompts (--objective self; run.h): for --rounds K rounds, sample
 * --group-size answers to every training prompt with the current model (round 1: the base; round k:
 * the base with round k-1's adapter), grade them (--grader), keep each prompt's best answer (sft) or
 * its best-versus-worst pair (dpo) when the best reaches --min-score, and train a fresh adapter from
 * the base on that round's kept answers — STaR's (Zelikman et al. 2022) and ReST's scheme: every
 * round starts from the base, so errors of one round's training do not compound. Each round lives in
 * RUN/rounds/round-k/: samples.jsonl (every answer, its score, whether it was kept), train.jsonl (the
 * data the round trained on, chat or preference JSONL), run/ (an ordinary training run folder: its
 * own config, metrics, checkpoints, report) and summary.json (written last: the round is done). With
 * validation prompts (--val / --val-split) the base and every round's adapter answer them greedily
 * and are graded. RUN/rounds.jsonl lists the rounds; RUN/adapter is the last round's adapter.
 * Resume: rounds with a summary are skipped, a round's run continues from its checkpoint, and
 * sampling is seeded from (seed, round, answer), so an interrupted run ends where an uninterrupted
 * one would.
 * Under N MPI ranks every rank samples and grades its share of the prompts (prompt i: rank i mod N; the answers are
 * those of one process, tk_rollout_shared), all hold every answer and score, rank 0 alone writes the files, and
 * each round trains data-parallel (tk_trainer_run). */
#include "train/run.h"
#include "train/prompts.h"
#include "train/rollout.h"
#include "dist/dist.h"
#include "eval/eval_model.h"
#include "data/data_internal.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

tk_status tk_run_self_options(tk_run *r) {
    tk_trainer_config *c = &r->c;
    if (!c->grader) return tk_fail(TK_ERR_ARG, "--objective self needs --grader FILE (the grader that picks the best sampled answers)");
    if (c->group_size == 0) c->group_size = 4;
    if (c->max_new_tokens == 0) c->max_new_tokens = 256;
    if (c->temperature == 0) c->temperature = 1;
    if (c->rounds == 0) c->rounds = 2;
    return TK_OK;
}

typedef struct self_ctx {
    tk_trainer_config c;
    tk_train_event_fn fn; void *ud;
    tk_model *m;
    const tk_tokenizer *tok;
    tk_chat_family fam;
    tk_prompt_set train, val;
    tk_eval_grading grading;
    double min_score;
    int64_t failures, failure_limit;
    char err[256];
    tk_buf rounds;                    /* RUN/rounds.jsonl */
} self_ctx;

static void emitf(self_ctx *x, tk_train_event_kind k, const char *fmt, ...) TK_PRINTF(3, 4);
static void emitf(self_ctx *x, tk_train_event_kind k, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tk_train_event e = {.kind = k, .message = msg};
    if (x->fn) x->fn(&e, x->ud);
}

static bool exists(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0;
}

/* path = dir/name (malloc'd), NULL on no memory. */
static char *join(const char *dir, const char *name) { return tk_path_join(dir, name); }

/* The model, template and prompt sets (the same rules as a training run's: plan.c). */
static tk_status load(self_ctx *x) {
    tk_trainer_config *c = &x->c;
    tk_status st = tk_run_open_model(c, &x->m, &x->fam);
    if (st) return st;
    x->tok = tk_model_tokenizer(x->m);
    const int32_t max_seq = c->max_seq;
    if (c->max_new_tokens >= max_seq)
        return tk_fail(TK_ERR_ARG, "--max-new-tokens %d leaves no room for a prompt in --max-seq-len %d", c->max_new_tokens, max_seq);
    if ((st = tk_rollout_grading_open(c->grader, c->judge, &x->grading))) return st;
    double thr;
    x->min_score = c->min_score > -1e299 ? c->min_score : tk_grader_pass_threshold(x->grading.grader, &thr) ? thr : -INFINITY;
    tk_sft_params sp = tk_sft_default_params();
    sp.format = c->format;
    sp.family = x->fam;
    sp.max_seq = max_seq;
    char *ctx = NULL;   /* --teacher-context: the answers are sampled with it, trained and validated without it */
    size_t ctx_len = 0;
    if (c->teacher_context && c->val_split > 0)
        return tk_fail(TK_ERR_ARG, "--teacher-context with --objective self: give the held-out prompts as --val (a split of --data would be "
                       "rendered with the context)");
    if (c->teacher_context) {
        if ((st = tk_read_file(c->teacher_context, &ctx, &ctx_len))) return tk_fail_ctx(st, "--teacher-context: ");
        if (tk_text_blank(ctx, ctx_len) || memchr(ctx, 0, ctx_len)) {
            free(ctx);
            return tk_fail(TK_ERR_ARG, "--teacher-context %s: the file is empty or not text", c->teacher_context);
        }
    }
    st = tk_prompt_set_load(c->data, x->tok, &sp, max_seq - c->max_new_tokens, ctx, &x->train);
    free(ctx);
    if (st) return st;
    if (c->val && c->val_split > 0) return tk_fail(TK_ERR_ARG, "use either --val or --val-split, not both");
    if (c->val) st = tk_prompt_set_load(c->val, x->tok, &sp, max_seq - c->max_new_tokens, NULL, &x->val);
    else if (c->val_split > 0) st = tk_prompt_set_split(&x->train, c->val_split, c->seed, &x->val);
    if (st) return tk_fail_ctx(st, "%s: ", c->val ? c->val : c->data);
    int64_t samples = (int64_t)c->rounds * x->train.d.n * c->group_size;
    x->failure_limit = c->max_grader_failures >= 0 ? c->max_grader_failures : (samples + 9) / 10;
    return TK_OK;
}

/* The prompt messages of a record (JSON text) as a cJSON array: "messages" up to the last user turn, or "prompt" (a
 * string: one user turn; a list: as given up to its last user turn). */
static tk_status prompt_messages(const char *item, uint64_t line, cJSON **out) {
    cJSON *rec = cJSON_Parse(item), *msgs = NULL;
    if (!rec) return tk_fail(TK_ERR_NOMEM, "line %llu: cannot parse the record again", (unsigned long long)line);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "messages");
    if (!v) v = cJSON_GetObjectItemCaseSensitive(rec, "prompt");
    if (cJSON_IsString(v)) {
        cJSON *m = cJSON_CreateObject();
        msgs = cJSON_CreateArray();
        if (!m || !msgs || !cJSON_AddStringToObject(m, "role", "user") || !cJSON_AddStringToObject(m, "content", v->valuestring)) {
            cJSON_Delete(m);
            cJSON_Delete(msgs);
            cJSON_Delete(rec);
            return TK_ERR_NOMEM;
        }
        cJSON_AddItemToArray(msgs, m);
    } else if (cJSON_IsArray(v)) {
        int last = -1, i = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, v) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            if (cJSON_IsString(role) && !strcmp(role->valuestring, "user")) last = i;
            i++;
        }
        msgs = cJSON_CreateArray();
        i = 0;
        cJSON_ArrayForEach(m, v) {
            if (i++ > last || !msgs) break;
            cJSON *d = cJSON_Duplicate(m, 1);
            if (!d) { cJSON_Delete(msgs); msgs = NULL; break; }
            cJSON_AddItemToArray(msgs, d);
        }
        if (!msgs) { cJSON_Delete(rec); return TK_ERR_NOMEM; }
    }
    cJSON_Delete(rec);
    if (!msgs)
        return tk_fail(TK_ERR_FORMAT, "line %llu: self-training writes its answers after the record's \"messages\" or \"prompt\", and this "
                       "record has neither", (unsigned long long)line);
    *out = msgs;
    return TK_OK;
}

static cJSON *assistant(const char *text) {
    cJSON *a = cJSON_CreateArray(), *m = cJSON_CreateObject();
    if (!a || !m || !cJSON_AddStringToObject(m, "role", "assistant") || !cJSON_AddStringToObject(m, "content", text)) {
        cJSON_Delete(a);
        cJSON_Delete(m);
        return NULL;
    }
    cJSON_AddItemToArray(a, m);
    return a;
}

/* Appends o as one JSON line to b and frees o. */
static tk_status add_line(tk_buf *b, cJSON *o) {
    tk_status st = o ? tk_json_append_value(b, o) : TK_ERR_NOMEM;
    if (!st) st = tk_buf_append(b, "\n", 1);
    cJSON_Delete(o);
    return st;
}

/* Greedy answers of the current system to the validation prompts, graded: *score is their mean (NaN without
 * validation prompts). */
static tk_status validate(self_ctx *x, const tk_adapter_use *ads, int n_ads, double *score) {
    *score = NAN;
    const int32_t n = (int32_t)x->val.d.n;
    if (n == 0) return TK_OK;
    char **texts = tk_calloc((size_t)n, sizeof *texts);
    double *sc = tk_malloc((size_t)n * sizeof *sc);
    tk_status st = !texts || !sc ? TK_ERR_NOMEM : TK_OK;
    int64_t nf = 0;
    if (!st) st = tk_rollout_shared(x->m, x->tok, ads, n_ads, &x->val.d, x->val.item, n, 1, 0, x->c.max_new_tokens, x->c.seed, &x->grading,
                                    sc, texts, &nf, x->err, sizeof x->err);
    if (!st) *score = tk_rollout_mean(sc, n, 1, NULL);
    for (int32_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(sc);
    return st;
}

typedef struct round_stats { int64_t prompts, samples, kept, failures; double mean, best_mean; } round_stats;

/* Round k's samples and the data it trains on: dir/samples.jsonl and dir/train.jsonl (atomic). */
static tk_status sample_round(self_ctx *x, int k, const tk_adapter_use *ads, int n_ads, const char *dir, round_stats *rs) {
    const tk_trainer_config *c = &x->c;
    const int32_t P = (int32_t)x->train.d.n, G = c->group_size, N = P * G;
    char **texts = tk_calloc((size_t)N, sizeof *texts);
    double *sc = tk_malloc((size_t)N * sizeof *sc);
    tk_buf samples = {0}, train = {0};
    tk_status st = !texts || !sc ? TK_ERR_NOMEM : TK_OK;
    int64_t nf = 0;
    emitf(x, TK_EV_INFO, "round %d/%d: sampling %d answers to each of %d prompts", k, c->rounds, G, P);
    if (!st) st = tk_rollout_shared(x->m, x->tok, ads, n_ads, &x->train.d, x->train.item, P, G, c->temperature, c->max_new_tokens,
                                    tk_mix64(c->seed ^ ((uint64_t)k << 40)), &x->grading, sc, texts, &nf, x->err, sizeof x->err);
    if (!st) {
        x->failures += nf;
        if (x->failures > x->failure_limit)
            st = tk_fail(TK_ERR_RANGE, "the grader failed on %lld sampled answers, more than --max-grader-failures %lld allows (last: %s)",
                         (long long)x->failures, (long long)x->failure_limit, x->err);
    }
    *rs = (round_stats){.prompts = P, .samples = N, .failures = nf};
    double sum = 0, best_sum = 0;
    int64_t n_sc = 0, n_best = 0;
    for (int32_t i = 0; i < P && !st; i++) {
        int32_t best = -1, worst = -1;
        for (int32_t j = i * G; j < (i + 1) * G; j++) {
            if (!isfinite(sc[j])) continue;
            sum += sc[j];
            n_sc++;
            if (best < 0 || sc[j] > sc[best]) best = j;
            if (worst < 0 || sc[j] < sc[worst]) worst = j;
        }
        if (best >= 0) { best_sum += sc[best]; n_best++; }
        /* sft: the best when it reaches the threshold (auto without the grader's pass_threshold: above 0);
         * dpo: also strictly better than the worst */
        bool keep = best >= 0 && (isfinite(x->min_score) ? sc[best] >= x->min_score : sc[best] > 0) &&
                    (c->self_train == 0 || sc[best] > sc[worst]);
        for (int32_t j = i * G; j < (i + 1) * G && !st; j++) {
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddNumberToObject(o, "line", (double)x->train.d.line[i]) || !cJSON_AddNumberToObject(o, "sample", j - i * G) ||
                !cJSON_AddStringToObject(o, "answer", texts[j]) ||
                !(isfinite(sc[j]) ? cJSON_AddNumberToObject(o, "score", sc[j]) : cJSON_AddNullToObject(o, "score")) ||
                !cJSON_AddBoolToObject(o, "kept", keep && (j == best || (c->self_train == 1 && j == worst)))) {
                cJSON_Delete(o);
                st = TK_ERR_NOMEM;
                break;
            }
            st = add_line(&samples, o);
        }
        if (st || !keep) continue;
        cJSON *msgs = NULL;
        if ((st = prompt_messages(x->train.item[i], x->train.d.line[i], &msgs))) break;
        cJSON *o = cJSON_CreateObject(), *a = assistant(texts[best]);
        if (!o || !a) { cJSON_Delete(o); cJSON_Delete(a); cJSON_Delete(msgs); st = TK_ERR_NOMEM; break; }
        if (c->self_train == 0) {
            cJSON_AddItemToArray(msgs, cJSON_DetachItemFromArray(a, 0));
            cJSON_Delete(a);
            cJSON_AddItemToObject(o, "messages", msgs);
        } else {
            cJSON *w = assistant(texts[worst]);
            if (!w) { cJSON_Delete(o); cJSON_Delete(a); cJSON_Delete(msgs); st = TK_ERR_NOMEM; break; }
            cJSON_AddItemToObject(o, "prompt", msgs);
            cJSON_AddItemToObject(o, "chosen", a);
            cJSON_AddItemToObject(o, "rejected", w);
        }
        rs->kept++;
        st = add_line(&train, o);
    }
    rs->mean = n_sc ? sum / n_sc : NAN;
    rs->best_mean = n_best ? best_sum / n_best : NAN;
    char *ps = join(dir, "samples.jsonl"), *pt = join(dir, "train.jsonl");
    if (!st && (!ps || !pt)) st = TK_ERR_NOMEM;
    const bool lead = tk_dist_rank() == 0;   /* N ranks: every rank holds the same answers; rank 0 writes them */
    if (!st && lead) st = tk_write_file_atomic(ps, samples.data ? samples.data : "", samples.len);
    if (!st && lead && rs->kept) st = tk_write_file_atomic(pt, train.data, train.len);
    free(ps);
    free(pt);
    tk_buf_free(&samples);
    tk_buf_free(&train);
    for (int32_t j = 0; texts && j < N; j++) free(texts[j]);
    free(texts);
    free(sc);
    return st;
}

/* The configuration of round k's training run: the user's options for the method and the optimizer, the objective
 * sft or dpo on dir/train.jsonl, into dir/run. */
static tk_status round_config(const self_ctx *x, const char *dir, bool last, tk_trainer_config *nc) {
    tk_status st = tk_trainer_config_copy(nc, &x->c);
    if (st) return st;
    char *data = join(dir, "train.jsonl"), *out = join(dir, "run");
    if (!data || !out) { free(data); free(out); tk_trainer_config_free(nc); return TK_ERR_NOMEM; }
    free(nc->data); nc->data = data;
    free(nc->out); nc->out = out;
    free(nc->val); nc->val = NULL;
    free(nc->grader); nc->grader = NULL;
    free(nc->judge); nc->judge = NULL;
    free(nc->loss); nc->loss = NULL;
    free(nc->teacher_context); nc->teacher_context = NULL;
    if (!last) { free(nc->eval_config); nc->eval_config = NULL; }
    nc->format = TK_DATA_AUTO;
    nc->val_split = 0;
    nc->objective = x->c.self_train == 1 ? 1 : 0;   /* the "objective" option's values: sft 0, dpo 1 */
    nc->group_size = nc->max_new_tokens = nc->rounds = 0;
    nc->temperature = 0;
    nc->self_train = 0;
    nc->min_score = -1e300;
    nc->max_grader_failures = -1;
    nc->resume = tk_run_folder_in_use(out);
    if ((st = tk_dist_bcast(&nc->resume, sizeof nc->resume))) { tk_trainer_config_free(nc); return tk_fail_ctx(st, "round config: "); }   /* rank 0's view */
    nc->given[0] = nc->given[1] = 0;
    return TK_OK;
}

/* Copies src/name to dst/name when it exists (atomic). */
static tk_status copy_file(const char *src, const char *dst, const char *name) {
    char *a = join(src, name), *b = join(dst, name), *buf = NULL;
    size_t len = 0;
    tk_status st = !a || !b ? TK_ERR_NOMEM : TK_OK;
    if (!st && exists(a)) {
        st = tk_read_file(a, &buf, &len);
        if (!st) st = tk_write_file_atomic(b, buf, len);
    }
    free(buf);
    free(a);
    free(b);
    return st;
}

/* A round's line of RUN/rounds.jsonl into path (atomic) and appended to rounds. */
static tk_status write_summary(const char *path, int k, const round_stats *rs, double valid, tk_buf *rounds) {
    tk_buf b = {0};
    tk_status st = tk_buf_printf(&b, "{\"round\":%d,\"prompts\":%lld,\"samples\":%lld,\"grader_failures\":%lld,\"kept\":%lld,", k,
                                 (long long)rs->prompts, (long long)rs->samples, (long long)rs->failures, (long long)rs->kept);
    if (!st) st = isfinite(rs->mean) ? tk_buf_printf(&b, "\"mean_score\":%.17g,", rs->mean) : tk_buf_printf(&b, "\"mean_score\":null,");
    if (!st) st = isfinite(rs->best_mean) ? tk_buf_printf(&b, "\"best_score\":%.17g,", rs->best_mean) : tk_buf_printf(&b, "\"best_score\":null,");
    if (!st) st = isfinite(valid) ? tk_buf_printf(&b, "\"valid_score\":%.17g}\n", valid) : tk_buf_printf(&b, "\"valid_score\":null}\n");
    if (!st && tk_dist_rank() == 0) st = tk_write_file_atomic(path, b.data, b.len);
    if (!st) st = tk_buf_printf(rounds, "%.*s", (int)b.len, b.data);
    tk_buf_free(&b);
    return st;
}

/* One round: sample with the previous round's adapter (prev, NULL: the base), train, validate. */
static tk_status run_round(self_ctx *x, int k, const char *prev, const char *dir, tk_train_control *ctl, bool *stopped) {
    tk_eval_sys sys;
    memset(&sys, 0, sizeof sys);
    tk_status st = tk_eval_sys_open(x->m, NULL, NULL, prev, x->c.template_name, &sys);
    if (st) return st;
    round_stats rs;
    char *pt = join(dir, "train.jsonl");
    if (!pt) { tk_eval_sys_close(&sys); return TK_ERR_NOMEM; }
    st = tk_dist_rank() == 0 ? tk_mkdir_p(dir) : TK_OK;
    if (!(st = tk_dist_agree(st))) st = sample_round(x, k, &sys.use, sys.n_use, dir, &rs);
    st = tk_dist_agree(st);   /* N ranks: rank 0's files are written before any rank trains on them */
    tk_eval_sys_close(&sys);
    free(pt);
    if (st) return tk_fail_ctx(st, "round %d: ", k);
    emitf(x, TK_EV_INFO, "round %d/%d: mean score %.3f, best of %d %.3f; kept %lld of %lld prompts", k, x->c.rounds, rs.mean,
          x->c.group_size, rs.best_mean, (long long)rs.kept, (long long)rs.prompts);
    if (rs.kept == 0) {
        *stopped = true;
        if (k == 1)
            return tk_fail(TK_ERR_RANGE, "round 1: no prompt has an answer that reaches --min-score %g: nothing to train on (sample more "
                           "answers with --group-size, raise --temperature, or lower --min-score)", x->min_score);
        emitf(x, TK_EV_WARNING, "round %d kept no answer: the run ends with round %d's adapter", k, k - 1);
        return TK_OK;
    }
    tk_trainer_config nc;
    if ((st = round_config(x, dir, k == x->c.rounds, &nc))) return st;
    emitf(x, TK_EV_INFO, "round %d/%d: training on %lld kept %s (%s)", k, x->c.rounds, (long long)rs.kept,
          x->c.self_train ? "pairs" : "answers", nc.out);
    st = tk_dist_agree(tk_trainer_run(&nc, x->fn, x->ud, ctl));   /* N ranks: rank 0 has written the adapter */
    tk_trainer_config_free(&nc);
    if (st) return tk_fail_ctx(st, "round %d: ", k);
    if (ctl && ctl->outcome != 0) { *stopped = true; return TK_OK; }
    char *run = join(dir, "run"), *ad = run ? join(run, "adapter") : NULL;
    double valid = NAN;
    if (!ad) st = TK_ERR_NOMEM;
    if (!st && x->val.d.n) {
        memset(&sys, 0, sizeof sys);
        st = tk_eval_sys_open(x->m, NULL, NULL, ad, x->c.template_name, &sys);
        if (!st) st = validate(x, &sys.use, sys.n_use, &valid);
        tk_eval_sys_close(&sys);
        if (!st) emitf(x, TK_EV_INFO, "round %d/%d: held-out score %.3f (%lld prompts, greedy)", k, x->c.rounds, valid, (long long)x->val.d.n);
    }
    char *sum = join(dir, "summary.json");
    if (!st && !sum) st = TK_ERR_NOMEM;
    if (!st) st = write_summary(sum, k, &rs, valid, &x->rounds);
    free(sum);
    free(run);
    free(ad);
    return st;
}

tk_status tk_self_run(const tk_trainer_config *cfg, tk_train_event_fn fn, void *ud, tk_train_control *ctl) {
    if (ctl) ctl->outcome = 0;
    self_ctx X, *x = &X;
    memset(x, 0, sizeof *x);
    const bool lead = tk_dist_rank() == 0;   /* N MPI ranks: rank 0 owns the run folder and the events */
    x->fn = lead ? fn : NULL;
    x->ud = ud;
    if (!lead) fn = NULL;
    tk_run R;   /* the option checks and autos of a run (pref_run.c) */
    memset(&R, 0, sizeof R);
    tk_status st = tk_trainer_config_copy(&R.c, cfg);
    if (!st) st = tk_run_pref_options(&R);
    if (!st) st = tk_trainer_config_copy(&x->c, &R.c);
    tk_trainer_config_free(&R.c);
    if (st) return st;
    tk_trainer_config *c = &x->c;
    tk_set_threads(c->threads);
    int lock_fd = -1;
    char *lock = join(c->out, ".lock"), *rounds_dir = join(c->out, "rounds"), *cfg_path = join(c->out, "config.json"),
         *rounds_path = join(c->out, "rounds.jsonl"), *prev = NULL;
    char what[4200];
    snprintf(what, sizeof what, "the run folder %s", c->out);
    if (!lock || !rounds_dir || !cfg_path || !rounds_path) st = TK_ERR_NOMEM;
    if (!st && lead) st = tk_mkdir_p(c->out);
    if (!st && lead) st = tk_lock_acquire(lock, what, &lock_fd);
    if (!st && lead && !c->resume && exists(rounds_dir))
        st = tk_fail(TK_ERR_ARG, "%s already holds a self-training run: continue it with --resume, or choose another --out", c->out);
    if (!(st = tk_dist_agree(st))) st = load(x);
    tk_buf cj = {0};
    if (!st) st = tk_trainer_config_json(c, &cj);
    if (!st && lead) st = tk_write_file_atomic(cfg_path, cj.data, cj.len);
    tk_buf_free(&cj);
    if (!st && lead) st = tk_mkdir_p(rounds_dir);
    st = tk_dist_agree(st);
    bool stopped = false;
    /* round 0: the base on the held-out prompts */
    char *base_path = rounds_dir ? join(rounds_dir, "round-0.json") : NULL;
    if (!st && !base_path) st = TK_ERR_NOMEM;
    if (!st && x->val.d.n) {
        char *buf = NULL;
        size_t len = 0;
        bool done = exists(base_path);
        if ((st = tk_dist_bcast(&done, sizeof done))) st = tk_fail_ctx(st, "round 0: ");   /* rank 0's view of the folder */
        else if (done && !tk_read_file(base_path, &buf, &len)) st = tk_buf_printf(&x->rounds, "%.*s", (int)len, buf);
        else {
            double v;
            emitf(x, TK_EV_INFO, "grading the base model's greedy answers to %lld held-out prompts", (long long)x->val.d.n);
            round_stats rs0 = {0};
            rs0.mean = rs0.best_mean = NAN;
            st = validate(x, NULL, 0, &v);
            if (!st) st = write_summary(base_path, 0, &rs0, v, &x->rounds);
            if (!st) emitf(x, TK_EV_INFO, "base: held-out score %.3f", v);
        }
        free(buf);
    }
    free(base_path);
    for (int k = 1; k <= c->rounds && !st && !stopped; k++) {
        char name[32];
        snprintf(name, sizeof name, "round-%d", k);
        char *dir = join(rounds_dir, name), *sum = dir ? join(dir, "summary.json") : NULL, *run = dir ? join(dir, "run") : NULL;
        bool done = sum && exists(sum);
        if (!dir || !sum || !run) st = TK_ERR_NOMEM;
        else if ((st = tk_dist_bcast(&done, sizeof done))) st = tk_fail_ctx(st, "round %d: ", k);   /* rank 0's view of the folder */
        else if (done) {   /* done before a resume */
            char *buf = NULL;
            size_t len = 0;
            if (!(st = tk_read_file(sum, &buf, &len))) st = tk_buf_printf(&x->rounds, "%.*s", (int)len, buf);
            free(buf);
            emitf(x, TK_EV_INFO, "round %d/%d: done before (%s)", k, c->rounds, sum);
        } else st = run_round(x, k, prev, dir, ctl, &stopped);
        if (!st && !stopped) {
            free(prev);
            prev = join(run, "adapter");
            if (!prev) st = TK_ERR_NOMEM;
        }
        free(dir);
        free(sum);
        free(run);
    }
    if (!st && lead) st = tk_write_file_atomic(rounds_path, x->rounds.data ? x->rounds.data : "", x->rounds.len);
    if (!st && lead && prev && !(ctl && ctl->outcome)) {   /* the last round's adapter is the run's */
        char *ad = join(c->out, "adapter"), *run = NULL;
        size_t pl = strlen(prev);
        if (!ad || !(run = tk_strndup(prev, pl - strlen("/adapter")))) st = TK_ERR_NOMEM;
        if (!st) st = tk_mkdir_p(ad);
        static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors", "README.md"};
        for (size_t i = 0; i < sizeof files / sizeof files[0] && !st; i++) st = copy_file(prev, ad, files[i]);
        if (!st) st = copy_file(run, c->out, "adapter.gguf");
        free(ad);
        free(run);
        if (!st) {
            tk_train_event e = {.kind = TK_EV_DONE, .message = "self-training finished"};
            char msg[1200];
            snprintf(msg, sizeof msg, "self-training finished after %d round%s; rounds: %s; adapter: %s/adapter", c->rounds,
                     c->rounds == 1 ? "" : "s", rounds_path, c->out);
            e.message = msg;
            if (fn) fn(&e, ud);
        }
    }
    free(prev);
    free(lock);
    free(rounds_dir);
    free(cfg_path);
    free(rounds_path);
    tk_lock_release(lock_fd);
    tk_eval_grading_close(&x->grading);
    tk_prompt_set_free(&x->train);
    tk_prompt_set_free(&x->val);
    tk_buf_free(&x->rounds);
    tk_model_free(x->m);
    tk_trainer_config_free(&x->c);
    return st;
}
