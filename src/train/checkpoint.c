/* Checkpoint folders (see checkpoint.h): atomic save through a .tmp folder + rename,
 * newest-K pruning, lookup of the newest complete checkpoint, exact reload of parameters,
 * AdamW moments and the trainer state (doubles printed with 17 significant digits, 64-bit
 * integers as strings, so that everything round-trips bit for bit). */
#include "train/checkpoint.h"
#include "takumi/safetensors.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXTRA_NAME "state/adapter"   /* the adapter's extra state (tk_train_extra_state) */
#define PARAMS_FILE "params.safetensors"
#define STATE_FILE "trainer_state.json"

tk_train_state tk_train_state_init(void) {
    tk_train_state s;
    memset(&s, 0, sizeof s);
    s.best_val = INFINITY;
    s.best_step = -1;
    s.prev_val = NAN;
    s.prev_train = NAN;
    return s;
}

/* ---- state JSON ------------------------------------------------------------------ */

static tk_status put_double(tk_buf *b, const char *key, double v) {
    if (!isfinite(v)) return tk_buf_printf(b, "\"%s\":null,", key);
    return tk_buf_printf(b, "\"%s\":%.17g,", key, v);
}

tk_status tk_train_state_json(const tk_train_state *s, const char *config_json, tk_buf *out) {
    tk_status st = tk_buf_printf(out, "{\"format\":\"takumi-trainer-state\",\"version\":1,\"step\":%lld,\"epoch\":%lld,\"row\":%lld,"
                                 "\"total_steps\":%lld,\"dropout_counter\":\"%llu\",\"seed\":\"%llu\",\"data_hash\":\"%016llx\",",
                                 (long long)s->step, (long long)s->epoch, (long long)s->row, (long long)s->total_steps,
                                 (unsigned long long)s->counter, (unsigned long long)s->seed, (unsigned long long)s->data_hash);
    if (!st) st = put_double(out, "best_val", s->best_val);
    if (!st) st = tk_buf_printf(out, "\"best_step\":%lld,\"bad_evals\":%d,", (long long)s->best_step, s->bad_evals);
    if (!st) st = put_double(out, "prev_val", s->prev_val);
    if (!st) st = put_double(out, "prev_train", s->prev_train);
    if (!st) st = put_double(out, "train_loss_sum", s->train_loss_sum);
    if (!st) st = put_double(out, "train_weight_sum", s->train_weight_sum);
    if (!st) st = put_double(out, "elapsed_s", s->elapsed_s);
    if (!st) st = tk_buf_printf(out, "\"tokens_seen\":%lld,\"done\":%s,\"stopped_early\":%s", (long long)s->tokens_seen,
                                s->done ? "true" : "false", s->stopped_early ? "true" : "false");
    if (!st && s->params_hash) st = tk_buf_printf(out, ",\"params_hash\":\"%016llx\"", (unsigned long long)s->params_hash);
    if (!st && config_json) st = tk_buf_printf(out, ",\"config\":%s", config_json);
    if (!st) st = tk_buf_append(out, "}\n", 2);
    return st;
}

static tk_status get_i64(const cJSON *o, const char *key, const char *name, int64_t *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int64_t)j->valuedouble)
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" is missing or not an integer", name, key);
    *v = (int64_t)j->valuedouble;
    return TK_OK;
}

static tk_status get_u64s(const cJSON *o, const char *key, const char *name, int base, uint64_t *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    char *end = NULL;
    if (!cJSON_IsString(j) || !*j->valuestring) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" is missing or not a string", name, key);
    errno = 0;
    *v = strtoull(j->valuestring, &end, base);
    if (errno || *end) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" is not a number: %s", name, key, j->valuestring);
    return TK_OK;
}

static tk_status get_dbl(const cJSON *o, const char *key, const char *name, double dflt, double *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNull(j)) { *v = dflt; return TK_OK; }
    if (!cJSON_IsNumber(j)) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" is missing or not a number", name, key);
    *v = j->valuedouble;
    return TK_OK;
}

static tk_status get_bool(const cJSON *o, const char *key, const char *name, bool *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(j)) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" is missing or not true/false", name, key);
    *v = cJSON_IsTrue(j);
    return TK_OK;
}

tk_status tk_train_state_parse(const char *json, const char *name, tk_train_state *s, char **config_json) {
    if (config_json) *config_json = NULL;
    *s = tk_train_state_init();
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) { cJSON_Delete(o); return tk_fail(TK_ERR_FORMAT, "%s: not a JSON object", name); }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    tk_status st = TK_OK;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "takumi-trainer-state"))
        st = tk_fail(TK_ERR_FORMAT, "%s: not a takumi trainer state (\"format\")", name);
    int64_t bad = 0;
    if (!st) st = get_i64(o, "step", name, &s->step);
    if (!st) st = get_i64(o, "epoch", name, &s->epoch);
    if (!st) st = get_i64(o, "row", name, &s->row);
    if (!st) st = get_i64(o, "total_steps", name, &s->total_steps);
    if (!st) st = get_u64s(o, "dropout_counter", name, 10, &s->counter);
    if (!st) st = get_u64s(o, "seed", name, 10, &s->seed);
    if (!st) st = get_u64s(o, "data_hash", name, 16, &s->data_hash);
    if (!st) st = get_dbl(o, "best_val", name, INFINITY, &s->best_val);
    if (!st) st = get_i64(o, "best_step", name, &s->best_step);
    if (!st) st = get_i64(o, "bad_evals", name, &bad);
    if (!st) st = get_dbl(o, "prev_val", name, NAN, &s->prev_val);
    if (!st) st = get_dbl(o, "prev_train", name, NAN, &s->prev_train);
    if (!st) st = get_dbl(o, "train_loss_sum", name, 0, &s->train_loss_sum);
    if (!st) st = get_dbl(o, "train_weight_sum", name, 0, &s->train_weight_sum);
    if (!st) st = get_dbl(o, "elapsed_s", name, 0, &s->elapsed_s);
    if (!st) st = get_i64(o, "tokens_seen", name, &s->tokens_seen);
    if (!st) st = get_bool(o, "done", name, &s->done);
    if (!st) st = get_bool(o, "stopped_early", name, &s->stopped_early);
    if (!st && cJSON_GetObjectItemCaseSensitive(o, "params_hash")) st = get_u64s(o, "params_hash", name, 16, &s->params_hash);
    if (!st && (s->step < 0 || s->epoch < 0 || s->row < 0 || s->total_steps < 0 || bad < 0 || bad > INT32_MAX))
        st = tk_fail(TK_ERR_FORMAT, "%s: negative or out-of-range counters", name);
    s->bad_evals = (int32_t)bad;
    if (!st && config_json) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "config");
        if (c) {
            *config_json = cJSON_PrintUnformatted(c);
            if (!*config_json) st = TK_ERR_NOMEM;
        }
    }
    cJSON_Delete(o);
    return st;
}

/* ---- folders ---------------------------------------------------------------------- */

/* tk_hash_bytes of a whole file. */

static void fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

/* Removes a checkpoint folder (its files and folders -- the checkpoint's adapter/ -- then the folder). */
tk_status tk_ckpt_remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? TK_OK : tk_fail(TK_ERR_IO, "%s: cannot open folder: %s", path, strerror(errno));
    struct dirent *e;
    tk_buf f = {0};
    tk_status st = TK_OK;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        f.len = 0;
        if ((st = tk_buf_printf(&f, "%s/%s", path, e->d_name))) break;
        if (unlink(f.data) == 0 || errno == ENOENT) continue;
        if (errno == EISDIR) st = tk_ckpt_remove_tree(f.data);
        else st = tk_fail(TK_ERR_IO, "%s: cannot remove: %s", f.data, strerror(errno));
    }
    closedir(d);
    tk_buf_free(&f);
    if (!st && rmdir(path) != 0 && errno != ENOENT) st = tk_fail(TK_ERR_IO, "%s: cannot remove folder: %s", path, strerror(errno));
    return st;
}

/* Removes a checkpoint folder so that a crash at any point leaves either the whole folder or
 * none of it under its name: it is renamed to "<path>.old.tmp" first (atomic), then emptied
 * (list_ckpts removes such stale .tmp folders on the next save). */
static tk_status discard_folder(const char *path) {
    tk_buf t = {0};
    tk_status st = tk_buf_printf(&t, "%s.old.tmp", path);
    if (!st) st = tk_ckpt_remove_tree(t.data); /* a leftover of an earlier crash */
    if (!st) {
        if (tk_io_rename(path, t.data) == 0) st = tk_ckpt_remove_tree(t.data);
        else if (errno != ENOENT) st = tk_fail(TK_ERR_IO, "%s: cannot rename for removal: %s", path, strerror(errno));
    }
    tk_buf_free(&t);
    return st;
}

/* Parses "step-NNNNNNNN" (exactly; not .tmp) into *step. */
static bool ckpt_name(const char *name, int64_t *step) {
    if (strncmp(name, "step-", 5)) return false;
    const char *p = name + 5;
    if (!*p) return false;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    *step = v;
    return true;
}

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of the complete checkpoints under root (sorted newest first); removes stale .tmp folders when clean is set. */
static tk_status list_ckpts(const char *root, bool clean, int64_t **steps, size_t *n) {
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(root);
    if (!d) return errno == ENOENT ? TK_OK : tk_fail(TK_ERR_IO, "%s: cannot open folder: %s", root, strerror(errno));
    size_t cap = 0;
    tk_status st = TK_OK;
    struct dirent *e;
    tk_buf f = {0};
    while (!st && (e = readdir(d))) {
        int64_t s;
        if (clean && tk_ends_with(e->d_name, ".tmp") && !strncmp(e->d_name, "step-", 5)) {
            f.len = 0;
            if (!(st = tk_buf_printf(&f, "%s/%s", root, e->d_name))) st = tk_ckpt_remove_tree(f.data);
            continue;
        }
        if (!ckpt_name(e->d_name, &s)) continue;
        f.len = 0;
        if ((st = tk_buf_printf(&f, "%s/%s/" STATE_FILE, root, e->d_name))) break;
        if (access(f.data, F_OK) != 0) continue;   /* not a checkpoint of ours */
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *v = tk_realloc(*steps, cap * sizeof *v);
            if (!v) { st = TK_ERR_NOMEM; break; }
            *steps = v;
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    tk_buf_free(&f);
    if (st) { free(*steps); *steps = NULL; *n = 0; return st; }
    if (*n) qsort(*steps, *n, sizeof **steps, cmp_desc);
    return TK_OK;
}

static char *ckpt_path(const char *root, int64_t step, const char *suffix) {
    tk_buf b = {0};
    if (tk_buf_printf(&b, "%s/step-%08lld%s", root, (long long)step, suffix)) { tk_buf_free(&b); return NULL; }
    return b.data;
}

tk_status tk_ckpt_save(const char *run_dir, const tk_param_set *ps, const tk_train_state *s, const char *config_json, int keep,
                       char **path_out) {
    return tk_ckpt_save_ex(run_dir, ps, NULL, 0, s, config_json, keep, path_out);
}

tk_status tk_ckpt_save_ex(const char *run_dir, const tk_param_set *ps, const float *extra, int64_t n_extra, const tk_train_state *s,
                          const char *config_json, int keep, char **path_out) {
    if (path_out) *path_out = NULL;
    tk_buf root = {0}, f = {0}, js = {0};
    char *tmp = NULL, *fin = NULL;
    tk_st_writer *w = NULL;
    int64_t *steps = NULL;
    size_t n_steps = 0;
    tk_status st = tk_buf_printf(&root, "%s/checkpoints", run_dir);
    if (!st) st = tk_mkdir_p(root.data);
    if (!st) {
        tmp = ckpt_path(root.data, s->step, ".tmp");
        fin = ckpt_path(root.data, s->step, "");
        if (!tmp || !fin) st = TK_ERR_NOMEM;
    }
    if (!st) st = tk_ckpt_remove_tree(tmp);
    if (!st && mkdir(tmp, 0755) != 0) st = tk_fail(TK_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
    /* parameters and moments, streamed from the live buffers (no copy) */
    if (!st && !(w = tk_st_writer_new())) st = TK_ERR_NOMEM;
    for (int64_t i = 0; i < ps->n && !st; i++) {
        const tk_param *p = &ps->p[i];
        static const char *const pre[3] = {"param/", "adam_m/", "adam_v/"};
        const float *buf[3] = {p->w, p->m, p->v};
        for (int k = 0; k < 3 && !st; k++) {
            f.len = 0;
            if (!(st = tk_buf_printf(&f, "%s%s", pre[k], p->name)))
                st = tk_st_add_ref(w, f.data, TK_F32, p->n_dims, p->ne, buf[k]);
        }
    }
    if (!st && n_extra > 0) st = tk_st_add_ref(w, EXTRA_NAME, TK_F32, 1, &n_extra, extra);
    if (!st) {
        f.len = 0;
        if (!(st = tk_buf_printf(&f, "%lld", (long long)s->step))) st = tk_st_set_metadata(w, "step", f.data);
    }
    if (!st) st = tk_st_set_metadata(w, "format", "takumi-checkpoint");
    tk_train_state sv = *s;
    if (!st) {
        f.len = 0;
        if (!(st = tk_buf_printf(&f, "%s/" PARAMS_FILE, tmp))) st = tk_st_write(w, f.data);
        if (!st) st = tk_hash_file(f.data, &sv.params_hash); /* read back: the checksum is of the bytes on disk */
    }
    if (!st) st = tk_train_state_json(&sv, config_json, &js);
    if (!st) {
        f.len = 0;
        if (!(st = tk_buf_printf(&f, "%s/" STATE_FILE, tmp))) st = tk_write_file_atomic(f.data, js.data, js.len);
    }
    if (!st) {
        fsync_dir(tmp);
        if ((st = discard_folder(fin)) == TK_OK && tk_io_rename(tmp, fin) != 0)
            st = tk_fail(TK_ERR_IO, "%s: rename failed: %s", fin, strerror(errno));
        if (!st) fsync_dir(root.data);
    }
    if (st && tmp) tk_ckpt_remove_tree(tmp);
    /* keep the newest `keep` */
    if (!st && keep > 0 && !(st = list_ckpts(root.data, true, &steps, &n_steps))) {
        for (size_t i = (size_t)keep; i < n_steps && !st; i++) {
            char *old = ckpt_path(root.data, steps[i], "");
            st = old ? discard_folder(old) : TK_ERR_NOMEM;
            free(old);
        }
        if (!st) fsync_dir(root.data);
    }
    if (!st && path_out) { *path_out = fin; fin = NULL; }
    free(steps);
    tk_st_writer_free(w);
    free(tmp); free(fin);
    tk_buf_free(&root); tk_buf_free(&f); tk_buf_free(&js);
    return st;
}

tk_status tk_ckpt_latest(const char *run_dir, char **path) {
    *path = NULL;
    tk_buf root = {0};
    int64_t *steps = NULL;
    size_t n = 0;
    tk_status st = tk_buf_printf(&root, "%s/checkpoints", run_dir);
    if (!st) st = list_ckpts(root.data, false, &steps, &n);
    if (!st && n == 0) st = tk_fail(TK_ERR_NOT_FOUND, "%s: no checkpoint to resume from", root.data);
    if (!st && !(*path = ckpt_path(root.data, steps[0], ""))) st = TK_ERR_NOMEM;
    free(steps);
    tk_buf_free(&root);
    return st;
}

tk_status tk_ckpt_list(const char *run_dir, char ***paths, size_t *n) {
    *paths = NULL;
    *n = 0;
    tk_buf root = {0};
    int64_t *steps = NULL;
    size_t k = 0;
    tk_status st = tk_buf_printf(&root, "%s/checkpoints", run_dir);
    if (!st) st = list_ckpts(root.data, false, &steps, &k);
    if (!st && k && !(*paths = tk_calloc(k, sizeof(char *)))) st = TK_ERR_NOMEM;
    for (size_t i = 0; i < k && !st; i++)
        if (!((*paths)[i] = ckpt_path(root.data, steps[i], ""))) st = TK_ERR_NOMEM;
    if (!st) *n = k;
    else if (*paths) {
        for (size_t i = 0; i < k; i++) free((*paths)[i]);
        free(*paths);
        *paths = NULL;
    }
    free(steps);
    tk_buf_free(&root);
    return st;
}

tk_status tk_ckpt_set_aside(const char *dir, char **moved_to) {
    if (moved_to) *moved_to = NULL;
    tk_buf b = {0};
    tk_status st = TK_OK;
    struct stat sb;
    for (int i = 0; i < 1000 && !st; i++) {
        b.len = 0;
        st = i ? tk_buf_printf(&b, "%s.damaged.%d", dir, i) : tk_buf_printf(&b, "%s.damaged", dir);
        if (!st && stat(b.data, &sb) != 0) break;
    }
    if (!st && tk_io_rename(dir, b.data) != 0) st = tk_fail(TK_ERR_IO, "%s: cannot move aside: %s", dir, strerror(errno));
    if (!st) {
        char *parent = tk_strdup(dir), *slash = parent ? strrchr(parent, '/') : NULL;
        if (slash) { *slash = 0; fsync_dir(parent); }
        free(parent);
    }
    if (!st && moved_to) { *moved_to = b.data; b.data = NULL; }
    tk_buf_free(&b);
    return st;
}

/* Whether the folder name (…/step-NNNNNNNN) says step. */
static bool folder_step_is(const char *dir, int64_t step) {
    const char *slash = strrchr(dir, '/');
    int64_t v;
    return ckpt_name(slash ? slash + 1 : dir, &v) && v == step;
}

tk_status tk_ckpt_load(const char *dir, tk_param_set *ps, tk_train_state *s, char **config_json, tk_ckpt_check_fn check,
                       void *ctx, bool *damaged) {
    return tk_ckpt_load_ex(dir, ps, NULL, 0, s, config_json, check, ctx, damaged);
}

tk_status tk_ckpt_load_ex(const char *dir, tk_param_set *ps, float *extra, int64_t n_extra, tk_train_state *s, char **config_json,
                          tk_ckpt_check_fn check, void *ctx, bool *damaged) {
    if (config_json) *config_json = NULL;
    if (damaged) *damaged = true;
    char *cfg = NULL; /* the stored configuration (for check and the caller) */
    tk_buf f = {0};
    char *js = NULL;
    tk_safetensors *sf = NULL;
    tk_status st = tk_buf_printf(&f, "%s/" STATE_FILE, dir);
    if (!st) st = tk_read_file(f.data, &js, NULL);
    if (!st) st = tk_train_state_parse(js, f.data, s, &cfg);
    if (!st && !folder_step_is(dir, s->step))
        st = tk_fail(TK_ERR_FORMAT, "%s: says step %lld, which is not the checkpoint folder's step", f.data, (long long)s->step);
    f.len = 0;
    if (!st) st = tk_buf_printf(&f, "%s/" PARAMS_FILE, dir);
    uint64_t h = 0;
    if (!st && s->params_hash && !(st = tk_hash_file(f.data, &h)) && h != s->params_hash)
        st = tk_fail(TK_ERR_FORMAT, "%s: checksum %016llx differs from the recorded %016llx (the file was damaged after it was written)",
                     f.data, (unsigned long long)h, (unsigned long long)s->params_hash);
    if (!st && check && (st = check(ctx, s, cfg, dir))) {
        if (damaged) *damaged = false;
        goto out;
    }
    if (!st) st = tk_st_open(f.data, &sf);
    if (!st && tk_st_n_tensors(sf) != 3 * ps->n + (n_extra > 0))
        st = tk_fail(TK_ERR_FORMAT, "%s: holds %lld tensors, the run trains %lld parameters (x3 with the moments%s): "
                     "a different method or configuration", f.data, (long long)tk_st_n_tensors(sf), (long long)ps->n,
                     n_extra > 0 ? ", and the adapter's state" : "");
    if (!st && n_extra > 0) {
        const tk_tensor_ref *t = tk_st_find(sf, EXTRA_NAME);
        if (!t || t->dtype != TK_F32 || t->nbytes != (size_t)n_extra * sizeof(float))
            st = tk_fail(TK_ERR_FORMAT, "%s: tensor " EXTRA_NAME " is missing or not %lld f32 values", f.data, (long long)n_extra);
        else memcpy(extra, t->data, t->nbytes);
    }
    tk_buf name = {0};
    for (int64_t i = 0; i < ps->n && !st; i++) {
        tk_param *p = &ps->p[i];
        static const char *const pre[3] = {"param/", "adam_m/", "adam_v/"};
        float *buf[3] = {p->w, p->m, p->v};
        for (int k = 0; k < 3 && !st; k++) {
            name.len = 0;
            if ((st = tk_buf_printf(&name, "%s%s", pre[k], p->name))) break;
            const tk_tensor_ref *t = tk_st_find(sf, name.data);
            if (!t) { st = tk_fail(TK_ERR_FORMAT, "%s: tensor %s is missing", f.data, name.data); break; }
            bool same = t->dtype == TK_F32 && t->n_dims == p->n_dims && t->nbytes == (size_t)p->n * sizeof(float);
            for (int d = 0; same && d < p->n_dims; d++) same = t->ne[d] == p->ne[d];
            if (!same) { st = tk_fail(TK_ERR_FORMAT, "%s: tensor %s has another dtype or shape than the run's parameter", f.data, name.data); break; }
            memcpy(buf[k], t->data, t->nbytes);
        }
    }
    tk_buf_free(&name);
out:
    if (!st && config_json) *config_json = cfg;
    else free(cfg);
    if (!st && damaged) *damaged = false;
    tk_st_close(sf);
    free(js);
    tk_buf_free(&f);
    return st;
}
