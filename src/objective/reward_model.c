/* Opening a trained reward model (`takumi train --objective reward` writes RUN/adapter/ in PEFT's
 * SEQ_CLS layout: the adapter plus the score head as modules_to_save): the adapter applied to the
 * base, the head's weights copied out. Used by `takumi reward` and `takumi eval`. */
#include "objective/reward.h"
#include "peft/adapter_io.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

bool tk_reward_model_is(const char *dir) {
    char *cp = tk_path_join(dir, "adapter_config.json"), *text = NULL;
    size_t len = 0;
    bool yes = false;
    if (cp && !tk_read_file(cp, &text, &len)) {
        cJSON *root = cJSON_ParseWithLength(text, len);
        const cJSON *t = root ? cJSON_GetObjectItemCaseSensitive(root, "task_type") : NULL;
        yes = cJSON_IsString(t) && !strcmp(t->valuestring, "SEQ_CLS");
        cJSON_Delete(root);
    }
    free(cp); free(text);
    tk_clear_error();
    return yes;
}

#define HEAD_KEY "base_model.model." TK_REWARD_HEAD_NAME

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

/* The reward model's adapter applied to m (its config without the head: the adapter's own reader
 * sees a causal-LM adapter) and its head's weights copied into head [C]. */
tk_status tk_reward_model_open(const char *dir, tk_model *m, float *head, int64_t C, tk_adapter_handle **h) {
    char *cp = tk_path_join(dir, "adapter_config.json"), *sp = tk_path_join(dir, "adapter_model.safetensors"), *text = NULL, *out = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    tk_safetensors *sf = NULL;
    tk_adapter *a = NULL;
    tk_status st = cp && sp ? tk_read_file(cp, &text, &len) : TK_ERR_NOMEM;
    if (st) goto done;
    const cJSON *task = (root = cJSON_ParseWithLength(text, len)) ? cJSON_GetObjectItemCaseSensitive(root, "task_type") : NULL;
    if (!root) { st = tk_fail(TK_ERR_FORMAT, "%s: not JSON", cp); goto done; }
    if (!cJSON_IsString(task) || strcmp(task->valuestring, "SEQ_CLS")) {
        st = tk_fail(TK_ERR_FORMAT, "%s: task_type is %s, not SEQ_CLS: not a reward model (`takumi train --objective reward` writes one)", cp,
                     cJSON_IsString(task) ? task->valuestring : "missing");
        goto done;
    }
    if ((st = tk_st_open(sp, &sf))) goto done;
    const tk_tensor_ref *w = tk_st_find(sf, HEAD_KEY);
    if (!w || w->dtype != TK_F32 || tk_tensor_nelems(w) != C) {
        st = tk_fail(TK_ERR_FORMAT, "%s: no f32 score head \"%s\" of %lld values (the model's width)", sp, HEAD_KEY, (long long)C);
        goto done;
    }
    memcpy(head, w->data, (size_t)C * sizeof(float));
    cJSON_ReplaceItemInObjectCaseSensitive(root, "modules_to_save", cJSON_CreateNull());
    cJSON_ReplaceItemInObjectCaseSensitive(root, "task_type", cJSON_CreateString("CAUSAL_LM"));
    if (!(out = cJSON_PrintUnformatted(root))) { st = TK_ERR_NOMEM; goto done; }
    if (!(st = adapter_without_head(out, sf, dir, &a))) st = tk_adapter_apply_loaded(m, a, h);
done:
    tk_adapter_free(a);
    tk_st_close(sf);
    cJSON_Delete(root);
    free(out); free(text); free(cp); free(sp);
    return st ? tk_fail_ctx(st, "reward model %s: ", dir) : TK_OK;
}

