/* Opening a trained classifier, regression head or reward model (RUN/adapter/ of `takumi train --task
 * classify|regress` or `--objective reward`; layout in classify.h): the adapter applied to the base,
 * the head's weights and the labels read. Used by `takumi classify`, `takumi reward` and `takumi eval`. */
#include "objective/classify.h"
#include "objective/reward.h"
#include "peft/adapter_io.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <math.h>
#include <stdint.h>

#define HEAD_KEY "base_model.model." TK_SCORE_HEAD_NAME

/* dir/name parsed as JSON into *out (NULL and TK_OK when absent and optional). */
static tk_status read_json(const char *dir, const char *name, bool optional, cJSON **out) {
    *out = NULL;
    char *p = tk_path_join(dir, name), *text = NULL;
    size_t len = 0;
    if (!p) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    if (optional && access(p, F_OK) != 0) { free(p); return TK_OK; }
    if (!(st = tk_read_file(p, &text, &len)) && !(*out = cJSON_ParseWithLength(text, len))) st = tk_fail(TK_ERR_FORMAT, "%s: not JSON", p);
    free(p); free(text);
    return st;
}

static bool seq_cls(const cJSON *cfg) {
    const cJSON *t = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "task_type") : NULL;
    return cJSON_IsString(t) && !strcmp(t->valuestring, "SEQ_CLS");
}

bool tk_reward_model_is(const char *dir) {
    cJSON *c = NULL;
    bool yes = !read_json(dir, "adapter_config.json", false, &c) && seq_cls(c);
    cJSON_Delete(c);
    tk_clear_error();
    return yes;
}

bool tk_classifier_is(const char *dir) {
    cJSON *c = NULL;
    bool yes = !read_json(dir, "config.json", true, &c) && c && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "id2label"));
    cJSON_Delete(c);
    tk_clear_error();
    return yes;
}

/* The adapter's reader of sf's tensors other than the head (PEFT's readers take the adapter's own
 * tensors only): through a temporary copy of the file, removed again. */
static tk_status adapter_without_head(const char *config, const tk_safetensors *sf, const char *name, tk_adapter **a) {
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/takumi_rm_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return tk_fail(TK_ERR_IO, "cannot make a temporary folder in %s", tmp && *tmp ? tmp : "/tmp");
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    tk_st_writer *w = tk_st_writer_new();
    tk_status st = w ? TK_OK : TK_ERR_NOMEM;
    for (int64_t i = 0; !st && i < tk_st_n_tensors(sf); i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        if (strcmp(t->name, HEAD_KEY)) st = tk_st_add_ref(w, t->name, t->dtype, t->n_dims, t->ne, t->data);
    }
    if (!st) st = tk_st_write(w, path);
    tk_st_writer_free(w);
    tk_safetensors *lo = NULL;
    if (!st) st = tk_st_open(path, &lo);
    if (!st) st = tk_adapter_from_peft(config, strlen(config), lo, name, a);
    tk_st_close(lo);
    unlink(path);
    rmdir(dir);
    return st;
}

/* The head tensor `key` of file path (f32, a multiple of C values): a copy into *w, its row count in *K. */
static tk_status read_head(const tk_safetensors *sf, const char *path, const char *key, int64_t C, float **w, int32_t *K) {
    const tk_tensor_ref *t = tk_st_find(sf, key);
    int64_t n = t ? tk_tensor_nelems(t) : 0;
    if (!t || t->dtype != TK_F32 || n == 0 || n % C || n / C > 1 << 20)
        return tk_fail(TK_ERR_FORMAT, "%s: no f32 score head \"%s\" of [K x %lld] values (the model's width)", path, key, (long long)C);
    if (!(*w = tk_malloc((size_t)n * sizeof **w))) return TK_ERR_NOMEM;
    memcpy(*w, t->data, (size_t)n * sizeof **w);
    *K = (int32_t)(n / C);
    return TK_OK;
}

/* A SEQ_CLS adapter folder: its adapter applied to m (its config without the head: the adapter's own
 * reader sees a causal-LM adapter) and its head copied into *w [K x C]. */
static tk_status open_seq_cls(const char *dir, cJSON *acfg, tk_model *m, int64_t C, float **w, int32_t *K, tk_adapter_handle **h) {
    char *cp = tk_path_join(dir, "adapter_config.json"), *sp = tk_path_join(dir, "adapter_model.safetensors"), *out = NULL;
    tk_safetensors *sf = NULL;
    tk_adapter *a = NULL;
    tk_status st = cp && sp ? TK_OK : TK_ERR_NOMEM;
    if (!st && !seq_cls(acfg)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(acfg, "task_type");
        st = tk_fail(TK_ERR_FORMAT, "%s: task_type is %s, not SEQ_CLS: not a reward model or classifier (`takumi train --objective reward` "
                     "or `--task classify` writes one)", cp, cJSON_IsString(t) ? t->valuestring : "missing");
    }
    if (!st) st = tk_st_open(sp, &sf);
    if (!st) st = read_head(sf, sp, HEAD_KEY, C, w, K);
    if (!st) {
        cJSON_ReplaceItemInObjectCaseSensitive(acfg, "modules_to_save", cJSON_CreateNull());
        cJSON_ReplaceItemInObjectCaseSensitive(acfg, "task_type", cJSON_CreateString("CAUSAL_LM"));
        if (!(out = cJSON_PrintUnformatted(acfg))) st = TK_ERR_NOMEM;
    }
    if (!st && !(st = adapter_without_head(out, sf, dir, &a))) st = tk_adapter_apply_loaded(m, a, h);
    if (st) { free(*w); *w = NULL; }
    tk_adapter_free(a);
    tk_st_close(sf);
    free(out); free(cp); free(sp);
    return st;
}

tk_status tk_reward_model_open(const char *dir, tk_model *m, float *head, int64_t C, tk_adapter_handle **h) {
    cJSON *acfg = NULL;
    float *w = NULL;
    int32_t K = 0;
    tk_status st = read_json(dir, "adapter_config.json", false, &acfg);
    if (!st) st = open_seq_cls(dir, acfg, m, C, &w, &K, h);
    if (!st && K != 1) {
        tk_adapter_detach(m, *h);
        *h = NULL;
        st = tk_fail(TK_ERR_FORMAT, "its score head has %d outputs: a classifier, not a reward model (use `takumi classify`)", (int)K);
    }
    if (!st) memcpy(head, w, (size_t)C * sizeof *head);
    free(w);
    cJSON_Delete(acfg);
    return st ? tk_fail_ctx(st, "reward model %s: ", dir) : TK_OK;
}

/* The labels, K and kind of config.json (cfg) into c. */
static tk_status read_config(const cJSON *cfg, const char *dir, tk_classifier *c) {
    const cJSON *i2l = cJSON_GetObjectItemCaseSensitive(cfg, "id2label"), *pt = cJSON_GetObjectItemCaseSensitive(cfg, "problem_type"),
                *pool = cJSON_GetObjectItemCaseSensitive(cfg, "pooling");
    int n = cJSON_GetArraySize(i2l);
    if (!cJSON_IsObject(i2l) || n < 1) return tk_fail(TK_ERR_FORMAT, "%s/config.json: no \"id2label\" object", dir);
    c->regress = cJSON_IsString(pt) && !strcmp(pt->valuestring, "regression");
    if (cJSON_IsString(pool) && strcmp(pool->valuestring, "last") && strcmp(pool->valuestring, "mean"))
        return tk_fail(TK_ERR_FORMAT, "%s/config.json: pooling \"%s\" is neither last nor mean", dir, pool->valuestring);
    c->head.pooling = cJSON_IsString(pool) && !strcmp(pool->valuestring, "mean") ? TK_POOL_MEAN : TK_POOL_LAST;
    if (!(c->labels = tk_calloc((size_t)n, sizeof *c->labels))) return TK_ERR_NOMEM;
    c->n_labels = n;
    for (const cJSON *e = i2l->child; e; e = e->next) {
        char *end;
        long k = strtol(e->string, &end, 10);
        if (*end || k < 0 || k >= n || !cJSON_IsString(e) || c->labels[k])
            return tk_fail(TK_ERR_FORMAT, "%s/config.json: id2label entry \"%s\" is not a label name for a distinct index in [0, %d)", dir,
                           e->string, n);
        if (!(c->labels[k] = tk_strdup(e->valuestring))) return TK_ERR_NOMEM;
    }
    return TK_OK;
}

void tk_classifier_close(tk_classifier *c, tk_model *m) {
    if (!c) return;
    if (c->ad) tk_adapter_detach(m, c->ad);
    tk_labels_free(c->labels, c->n_labels);
    free(c->head.w);
    memset(c, 0, sizeof *c);
}

tk_status tk_classifier_open(const char *dir, tk_model *m, tk_classifier *out) {
    memset(out, 0, sizeof *out);
    const int64_t C = tk_model_get_config(m)->dim;
    cJSON *cfg = NULL, *acfg = NULL;
    int32_t K = 0;
    tk_status st = read_json(dir, "config.json", true, &cfg);
    if (!st) st = read_json(dir, "adapter_config.json", cfg != NULL, &acfg);
    if (!st && cfg) st = read_config(cfg, dir, out);
    if (!st && !cfg) out->regress = true;   /* a reward model: one score */
    if (!st && acfg) st = open_seq_cls(dir, acfg, m, C, &out->head.w, &K, &out->ad);
    else if (!st) {
        char *hp = tk_path_join(dir, "head.safetensors");
        tk_safetensors *sf = NULL;
        st = hp ? tk_st_open(hp, &sf) : TK_ERR_NOMEM;
        if (!st) st = read_head(sf, hp, TK_SCORE_HEAD_NAME, C, &out->head.w, &K);
        tk_st_close(sf);
        free(hp);
    }
    if (!st && cfg && K != out->n_labels)
        st = tk_fail(TK_ERR_FORMAT, "%s: the score head has %d outputs but config.json names %d labels", dir, (int)K, (int)out->n_labels);
    if (!st && out->regress && K != 1) st = tk_fail(TK_ERR_FORMAT, "%s: a regression head with %d outputs (takumi reads one)", dir, (int)K);
    out->head.C = C;
    out->head.K = K;
    cJSON_Delete(cfg);
    cJSON_Delete(acfg);
    if (st) tk_classifier_close(out, m);
    return st ? tk_fail_ctx(st, "classifier %s: ", dir) : TK_OK;
}

tk_status tk_classifier_tokens(const tk_tokenizer *tok, const char *text, size_t len, int32_t max_seq, tk_ivec *ids) {
    ids->len = 0;
    tk_status st = tk_tokenize(tok, text, len, TK_TOK_ADD_SPECIAL, ids);
    if (!st && ids->len == 0) st = tk_fail(TK_ERR_ARG, "the text has no tokens");
    if (!st && max_seq > 0 && ids->len > (size_t)max_seq) ids->len = (size_t)max_seq;
    return st;
}

void tk_softmax_d(const double *z, int32_t K, double *p) {
    double mx = z[0], sum = 0;
    for (int32_t k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    for (int32_t k = 0; k < K; k++) sum += (p[k] = exp(z[k] - mx));
    for (int32_t k = 0; k < K; k++) p[k] /= sum;
}

tk_status tk_classifier_run(const tk_classifier *c, tk_forward *f, const int32_t *ids, int64_t n, double *z) {
    if (!c || !c->head.w || !f || !ids || n <= 0 || n > INT32_MAX) return tk_fail(TK_ERR_ARG, "classifier run: bad arguments");
    tk_adapter_use u = {.peft = c->ad ? tk_adapter_handle_peft(c->ad) : NULL, .scale = 1.0f};
    int32_t *seq = tk_malloc((size_t)n * sizeof *seq);
    if (!seq) return TK_ERR_NOMEM;
    tk_status st = tk_forward_set_adapters(f, c->ad ? &u : NULL, c->ad ? 1 : 0);
    tk_batch b = {.n_rows = 1, .n_cols = (int32_t)n, .ids = ids};
    if (!st) st = tk_forward_run(f, &b, NULL, 0, NULL);
    for (int64_t t = 0; t < n; t++) seq[t] = 0;
    tk_obj_batch x = {.T = n, .C = c->head.C, .h = tk_forward_hidden(f), .seq = seq, .n_seq = 1};
    if (!st) st = tk_score_head_forward(&c->head, &x, NULL, z);
    free(seq);
    return st;
}
