/* The run folder: whether --out already holds a run, RUN/config.json (the resolved
 * options plus an "info" object), and starting fresh or resuming from the newest
 * checkpoint after checking that the options and the data are the checkpoint's. */
#include "train/run.h"
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <stdio.h>

bool tk_run_folder_in_use(const char *out) {
    char *p = tk_path_join(out, "checkpoints");
    char *q = tk_path_join(out, "metrics.jsonl");
    struct stat sb;
    bool has = (p && stat(p, &sb) == 0) || (q && stat(q, &sb) == 0 && sb.st_size > 0);
    free(p); free(q);
    return has;
}

tk_status tk_run_folder_lock(tk_run *r) {
    struct stat sb;
    r->created_out = stat(r->c.out, &sb) != 0;
    tk_status st = tk_mkdir_p(r->c.out);
    if (st) return st;
    char *p = tk_path_join(r->c.out, ".lock");
    if (!p) return TK_ERR_NOMEM;
    char what[4200];
    snprintf(what, sizeof what, "the run folder %s", r->c.out);
    st = tk_lock_acquire(p, what, &r->lock_fd);
    free(p);
    return st;
}

tk_status tk_run_config_json(tk_run *r) {
    tk_buf *b = &r->config_json;
    b->len = 0;
    tk_status st = tk_trainer_config_json(&r->c, b);
    if (st) return st;
    b->len--;   /* reopen the object for the informational entries */
    const tk_model_config *mc = tk_model_get_config(r->m);
    tk_buf_printf(b, ",\"info\":{\"takumi\":\"%s\",\"model_hash\":\"%016llx\",\"model_name\":", TK_VERSION,
                  (unsigned long long)tk_model_identity(r->m));
    tk_json_string(b, mc->name);
    tk_buf_printf(b, ",\"model_params\":%lld,\"template\":\"%s\",\"data_format\":\"%s\",\"train_examples\":%lld,\"valid_examples\":%lld,"
                     "\"train_tokens\":%llu,\"train_target_tokens\":%llu,\"truncated_examples\":%llu,\"skipped_examples\":%llu,"
                     "\"truncated_target_tokens\":%llu,\"data_hash\":\"%016llx\",\"total_steps\":%lld,\"threads\":%d,"
                     "\"precision\":\"%s\",\"trainable_params\":%lld}}",
                  (long long)tk_model_n_params(r->m), tk_chat_family_name(r->fam), tk_data_format_name(r->train.format), (long long)r->train.n,
                  (long long)(r->has_val ? r->val.n : 0), (unsigned long long)r->train.stats.n_tokens,
                  (unsigned long long)r->train.stats.n_targets, (unsigned long long)r->train.stats.n_truncated,
                  (unsigned long long)r->train.stats.n_skipped, (unsigned long long)r->train.stats.targets_cut,
                  (unsigned long long)r->st.data_hash, (long long)r->st.total_steps, tk_get_threads(),
                  tk_train_precision_name(r->precision), (long long)r->ps->total);
    return b->data ? TK_OK : TK_ERR_NOMEM;
}

/* On resume: the options that shape the trajectory must equal the checkpoint's. */
tk_status tk_run_check_resume(tk_run *r, const char *saved, const char *where) {
    tk_buf diff = {0};
    tk_status st = tk_trainer_config_diff(saved, r->config_json.data, &diff);
    if (st) { tk_buf_free(&diff); return tk_fail_ctx(st, "%s: ", where); }
    cJSON *a = cJSON_Parse(saved), *b = cJSON_Parse(r->config_json.data);
    if (!st) {
        const cJSON *ia = cJSON_GetObjectItemCaseSensitive(a, "info"), *ib = cJSON_GetObjectItemCaseSensitive(b, "info");
        const cJSON *pa = cJSON_GetObjectItemCaseSensitive(ia, "model_params"), *pb = cJSON_GetObjectItemCaseSensitive(ib, "model_params");
        const cJSON *ha = cJSON_GetObjectItemCaseSensitive(ia, "model_hash"), *hb = cJSON_GetObjectItemCaseSensitive(ib, "model_hash");
        if (pa && pb && !cJSON_Compare(pa, pb, true)) tk_buf_printf(&diff, "\n  model: another model (parameter count differs)");
        else if (ha && hb && !cJSON_Compare(ha, hb, true))
            tk_buf_printf(&diff, "\n  model: another model (its tensors, dtypes or metadata differ from the run's base model)");
        const cJSON *ta = cJSON_GetObjectItemCaseSensitive(ia, "threads"), *tb = cJSON_GetObjectItemCaseSensitive(ib, "threads");
        if (!diff.len && ta && tb && !cJSON_Compare(ta, tb, true))
            tk_run_emitf(r, TK_EV_WARNING, "warning", false, "resuming with %d threads instead of %d: the losses will match the uninterrupted run "
                  "only up to float rounding", (int)tb->valuedouble, (int)ta->valuedouble);
    }
    if (!st && diff.len)
        st = tk_fail(TK_ERR_ARG, "cannot resume from %s: the run's options differ from the checkpoint's:%s\n  (resume with the original "
                     "options, or start a new run in another --out folder)", where, diff.data);
    tk_buf_free(&diff);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return st;
}


/* tk_ckpt_check_fn of a resume: the options and the data must be the checkpoint's. */
static tk_status resume_check(void *ctx, const tk_train_state *s, const char *saved, const char *dir) {
    tk_run *r = ctx;
    tk_status st = saved ? tk_run_check_resume(r, saved, dir) : TK_OK;
    if (!st && s->data_hash != r->st.data_hash)
        st = tk_fail(TK_ERR_ARG, "cannot resume from %s: the training data differs from the checkpoint's (tokenized data hash)", dir);
    return st;
}

/* The newest intact checkpoint loaded into the run; damaged ones (garbled or truncated files,
 * a checksum mismatch, a step that is not the folder's) are moved aside with a warning and the
 * previous one is tried. *ck: the folder used (NULL: none to resume from). */
static tk_status resume_from_newest(tk_run *r, char **ck) {
    *ck = NULL;
    char **paths = NULL;
    size_t n = 0;
    tk_status st = tk_ckpt_list(r->c.out, &paths, &n);
    size_t i = 0, n_damaged = 0;
    for (; i < n && !st; i++) {
        tk_train_state s2;
        bool damaged = false;
        int64_t ne = 0;
        float *extra = tk_train_extra_state(r->tc, &ne);
        st = tk_ckpt_load_ex(paths[i], r->ps, extra, ne, &s2, NULL, resume_check, r, &damaged);
        if (st && damaged) {
            char why[512], *moved = NULL;
            snprintf(why, sizeof why, "%s", tk_last_error());
            tk_status ms = tk_ckpt_set_aside(paths[i], &moved);
            if (ms) { st = ms; break; }
            tk_run_emitf(r, TK_EV_WARNING, "warning", false, "checkpoint %s is damaged (%s): moved aside to %s; trying the one before it",
                         paths[i], why, moved);
            free(moved);
            n_damaged++;
            tk_clear_error();
            st = TK_OK;
            continue;
        }
        if (st) break;
        int64_t total = r->st.total_steps;
        r->st = s2;
        r->st.total_steps = total;
        if (r->st.done && r->st.step < total && !r->st.stopped_early) r->st.done = false;   /* --max-steps raised */
        tk_train_set_counter(r->tc, r->st.counter);
        *ck = paths[i];
        paths[i] = NULL;
        break;
    }
    if (!st && !*ck && n_damaged)
        st = tk_fail(TK_ERR_FORMAT, "%s/checkpoints: no intact checkpoint to resume from (%zu damaged, moved aside as *.damaged)",
                     r->c.out, n_damaged);
    for (size_t j = 0; j < n; j++) free(paths[j]);
    free(paths);
    return st;
}

tk_status tk_run_open(tk_run *r, bool *resumed_out) {
    tk_trainer_config *c = &r->c;
    tk_status st = TK_OK;
    /* fresh start or resume */
    char *ck = NULL;
    bool resumed = false;
    if (c->resume) {
        if ((st = resume_from_newest(r, &ck))) return st;
        if (ck) resumed = true;
        else tk_run_emitf(r, TK_EV_INFO, "resume", false, "no checkpoint in %s/checkpoints yet: starting from the beginning", c->out);
    }
    if ((st = tk_metrics_truncate(r->path_metrics, resumed ? r->st.step : -1))) { free(ck); return st; }
    if ((st = tk_metrics_open(&r->mx, r->path_metrics))) { free(ck); return st; }
    if (resumed) tk_run_emitf(r, TK_EV_INFO, "resume", true, "resumed from %s (step %lld)", ck, (long long)r->st.step);
    free(ck);
    /* config.json: the resolved configuration, written once the run is known to be consistent */
    if ((st = tk_write_file_atomic(r->path_config, r->config_json.data, r->config_json.len))) return st;

    *resumed_out = resumed;
    return TK_OK;
}
