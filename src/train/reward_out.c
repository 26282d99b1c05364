/* A reward model's score head in the run folder (see run.h). With an adapter, RUN/adapter/ becomes
 * what PEFT writes for AutoModelForSequenceClassification + that adapter (checked with PEFT 0.21.2,
 * tools/reward_interop_check.py): adapter_config.json with "task_type": "SEQ_CLS" and
 * "modules_to_save": ["classifier", "score"], and the head as "base_model.model.score.weight"
 * ([1 x C], f32) beside the adapter's tensors. RUN/adapter.gguf is removed: llama.cpp's adapters
 * have no place for a score head. Full fine-tuning: the head is "score.weight" in the checkpoint. */
#include "train/run.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <unistd.h>

/* adapter_config.json with the sequence-classification task and the head as a module to save. */
static tk_status seq_cls_config(const char *path) {
    char *text = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(path, &text, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(text, len), *mts = cJSON_CreateArray();
    free(text);
    if (!root || !mts) { cJSON_Delete(root); cJSON_Delete(mts); return tk_fail(TK_ERR_FORMAT, "%s: unreadable", path); }
    cJSON_AddItemToArray(mts, cJSON_CreateString("classifier"));
    cJSON_AddItemToArray(mts, cJSON_CreateString("score"));
    cJSON_ReplaceItemInObjectCaseSensitive(root, "modules_to_save", mts);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "task_type", cJSON_CreateString("SEQ_CLS"));
    char *out = cJSON_Print(root);
    tk_buf b = {0};
    st = out ? tk_buf_printf(&b, "%s\n", out) : TK_ERR_NOMEM;
    if (!st) st = tk_write_file_atomic(path, b.data, b.len);
    tk_buf_free(&b);
    free(out);
    cJSON_Delete(root);
    return st;
}

/* adapter_model.safetensors rewritten with the head added (its tensors and metadata kept). */
static tk_status add_head(const char *path, const tk_param *head) {
    tk_safetensors *in = NULL;
    tk_status st = tk_st_open(path, &in);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    if (!w) st = TK_ERR_NOMEM;
    for (int64_t i = 0; !st && i < tk_st_n_tensors(in); i++) {
        const tk_tensor_ref *t = tk_st_tensor(in, i);
        st = tk_st_add(w, t->name, t->dtype, t->n_dims, t->ne, t->data);
    }
    if (!st) st = tk_st_add(w, head->name, TK_F32, 2, head->ne, head->w);
    if (!st) st = tk_st_set_metadata(w, "format", "pt");
    if (!st) st = tk_st_write(w, path);
    tk_st_writer_free(w);
    tk_st_close(in);
    return st;
}

tk_status tk_run_write_reward_head(tk_run *r) {
    if (r->c.method != TK_TRAIN_LORA) {
        tk_run_emitf(r, TK_EV_INFO, "reward", true, "the score head is \"param/%s\" in the last checkpoint's params.safetensors",
                     TK_REWARD_HEAD_NAME);
        return TK_OK;
    }
    const tk_param *head = tk_params_find(r->ps, "base_model.model." TK_REWARD_HEAD_NAME);
    if (!head) return tk_fail(TK_ERR_INTERNAL, "reward model: the score head is not among the trained parameters");
    char *dir = tk_path_join(r->c.out, "adapter");
    char *cfg = dir ? tk_path_join(dir, "adapter_config.json") : NULL, *model = dir ? tk_path_join(dir, "adapter_model.safetensors") : NULL;
    char *gg = tk_path_join(r->c.out, "adapter.gguf");
    tk_status st = cfg && model && gg ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = add_head(model, head);
    if (!st) st = seq_cls_config(cfg);
    if (!st) {
        unlink(gg);
        tk_run_emitf(r, TK_EV_INFO, "reward", true, "reward model (PEFT, task SEQ_CLS, score head as modules_to_save): %s; score with "
                     "`takumi reward --model M --adapter %s --data PAIRS`", dir, dir);
    }
    free(dir); free(cfg); free(model); free(gg);
    return st ? tk_fail_ctx(st, "reward model adapter: ") : TK_OK;
}
