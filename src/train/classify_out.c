/* A task head in the run folder (see run.h and classify.h): PEFT's SEQ_CLS layout for an adapter
 * with a head (checked with PEFT 0.21.2, tools/interop_check.py and tools/reward_interop_check.py):
 * adapter_config.json with "task_type": "SEQ_CLS" and "modules_to_save": ["classifier", "score"],
 * the head as "base_model.model.score.weight" ([K x C], f32) beside the adapter's tensors; a head
 * alone (--method head) as head.safetensors ("score.weight"). RUN/adapter/config.json holds what
 * transformers' config takes for the head (id2label, label2id, num_labels, problem_type, the
 * architecture's *ForSequenceClassification class) and takumi's pooling. RUN/adapter.gguf is
 * removed: llama.cpp's adapters have no place for a head. Shared with reward_out.c. */
#include "train/run.h"
#include "model/arch.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <unistd.h>

static tk_status write_json(const char *path, cJSON *root) {
    char *out = cJSON_Print(root);
    tk_buf b = {0};
    tk_status st = out ? tk_buf_printf(&b, "%s\n", out) : TK_ERR_NOMEM;
    if (!st) st = tk_write_file_atomic(path, b.data, b.len);
    tk_buf_free(&b);
    free(out);
    return st;
}

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
    st = write_json(path, root);
    cJSON_Delete(root);
    return st;
}

/* The safetensors file path rewritten with head added (its tensors and metadata kept), or created with head alone. */
static tk_status add_head(const char *path, const tk_param *head, const char *name, bool fresh) {
    tk_safetensors *in = NULL;
    tk_status st = fresh ? TK_OK : tk_st_open(path, &in);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    if (!w) st = TK_ERR_NOMEM;
    for (int64_t i = 0; !st && in && i < tk_st_n_tensors(in); i++) {
        const tk_tensor_ref *t = tk_st_tensor(in, i);
        st = tk_st_add(w, t->name, t->dtype, t->n_dims, t->ne, t->data);
    }
    if (!st) st = tk_st_add(w, name, TK_F32, 2, head->ne, head->w);
    if (!st) st = tk_st_set_metadata(w, "format", "pt");
    if (!st) st = tk_st_write(w, path);
    tk_st_writer_free(w);
    tk_st_close(in);
    return st;
}

tk_status tk_run_seq_cls_adapter(const char *dir, const tk_param *head) {
    char *cfg = tk_path_join(dir, "adapter_config.json"), *model = tk_path_join(dir, "adapter_model.safetensors");
    tk_status st = cfg && model ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = add_head(model, head, head->name, false);
    if (!st) st = seq_cls_config(cfg);
    free(cfg); free(model);
    return st;
}

/* RUN/adapter/config.json: the head's entries of a transformers config. */
static tk_status head_config(const tk_run *r, const char *path, bool adapter) {
    const tk_arch *a = tk_arch_by_name(tk_model_get_config(r->m)->arch);
    char cls[128];
    const char *hf = a && a->hf_class ? a->hf_class : "LlamaForCausalLM", *p = strstr(hf, "ForCausalLM");
    snprintf(cls, sizeof cls, "%.*sForSequenceClassification", p ? (int)(p - hf) : (int)strlen(hf), hf);
    cJSON *root = cJSON_CreateObject(), *ar = cJSON_AddArrayToObject(root, "architectures"), *i2l = cJSON_AddObjectToObject(root, "id2label"),
          *l2i = cJSON_AddObjectToObject(root, "label2id");
    if (!root || !ar || !i2l || !l2i) { cJSON_Delete(root); return TK_ERR_NOMEM; }
    cJSON_AddItemToArray(ar, cJSON_CreateString(cls));
    for (int32_t k = 0; k < r->cp.n_labels; k++) {
        char id[16], dflt[32];
        snprintf(id, sizeof id, "%d", (int)k);
        snprintf(dflt, sizeof dflt, "LABEL_%d", (int)k);   /* transformers' names when there are none */
        const char *name = r->cp.regress ? dflt : r->labels[k];
        cJSON_AddStringToObject(i2l, id, name);
        cJSON_AddNumberToObject(l2i, name, k);
    }
    cJSON_AddNumberToObject(root, "num_labels", r->cp.n_labels);
    cJSON_AddStringToObject(root, "problem_type", r->cp.regress ? "regression" : "single_label_classification");
    cJSON_AddStringToObject(root, "pooling", r->cp.pooling == TK_POOL_MEAN ? "mean" : "last");
    cJSON_AddBoolToObject(root, "adapter", adapter);
    tk_status st = write_json(path, root);
    cJSON_Delete(root);
    return st;
}

tk_status tk_run_write_classifier(tk_run *r) {
    const bool adapter = r->c.method != TK_TRAIN_HEAD;
    const tk_param *head = tk_params_find(r->ps, adapter ? "base_model.model." TK_SCORE_HEAD_NAME : TK_SCORE_HEAD_NAME);
    if (!head) return tk_fail(TK_ERR_INTERNAL, "classifier: the score head is not among the trained parameters");
    char *dir = tk_path_join(r->c.out, "adapter"), *gg = tk_path_join(r->c.out, "adapter.gguf");
    char *cfg = dir ? tk_path_join(dir, "config.json") : NULL, *hp = dir ? tk_path_join(dir, "head.safetensors") : NULL;
    tk_status st = dir && gg && cfg && hp ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = adapter ? tk_run_seq_cls_adapter(dir, head) : tk_mkdir_p(dir);
    if (!st && !adapter) st = add_head(hp, head, TK_SCORE_HEAD_NAME, true);
    if (!st) st = head_config(r, cfg, adapter);
    if (!st) {
        unlink(gg);
        tk_run_emitf(r, TK_EV_INFO, "classifier", true, "%s (%s%s): %s; use it with `takumi classify --model M --adapter %s TEXT` or "
                     "`takumi eval --model M --adapter %s --data FILE`", r->cp.regress ? "regression head" : "classifier",
                     adapter ? "PEFT, task SEQ_CLS, score head as modules_to_save" : "head only: head.safetensors",
                     r->cp.pooling == TK_POOL_MEAN ? "; mean pooling is takumi's: transformers pools the last token" : "", dir, dir, dir);
    }
    free(dir); free(gg); free(cfg); free(hp);
    return st ? tk_fail_ctx(st, "classifier: ") : TK_OK;
}
