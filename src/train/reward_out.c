/* A reward model's score head in the run folder (see run.h). With an adapter, RUN/adapter/ becomes
 * what PEFT writes for AutoModelForSequenceClassification + that adapter (checked with PEFT 0.21.2,
 * tools/reward_interop_check.py): adapter_config.json with "task_type": "SEQ_CLS" and
 * "modules_to_save": ["classifier", "score"], and the head as "base_model.model.score.weight"
 * ([1 x C], f32) beside the adapter's tensors. RUN/adapter.gguf is removed: llama.cpp's adapters
 * have no place for a score head (the layout is written by tk_run_seq_cls_adapter, classify_out.c). Full fine-tuning: the
 * head is "score.weight" in the checkpoint. */
#include "train/run.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <unistd.h>

tk_status tk_run_write_reward_head(tk_run *r) {
    if (r->c.method != TK_TRAIN_LORA) {
        tk_run_emitf(r, TK_EV_INFO, "reward", true, "the score head is \"param/%s\" in the last checkpoint's params.safetensors",
                     TK_REWARD_HEAD_NAME);
        return TK_OK;
    }
    const tk_param *head = tk_params_find(r->ps, "base_model.model." TK_REWARD_HEAD_NAME);
    if (!head) return tk_fail(TK_ERR_INTERNAL, "reward model: the score head is not among the trained parameters");
    char *dir = tk_path_join(r->c.out, "adapter");
    char *gg = tk_path_join(r->c.out, "adapter.gguf");
    tk_status st = dir && gg ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_run_seq_cls_adapter(dir, head);
    if (!st) {
        unlink(gg);
        tk_run_emitf(r, TK_EV_INFO, "reward", true, "reward model (PEFT, task SEQ_CLS, score head as modules_to_save): %s; score with "
                     "`takumi reward --model M --adapter %s --data PAIRS`", dir, dir);
    }
    free(dir); free(gg);
    return st ? tk_fail_ctx(st, "reward model adapter: ") : TK_OK;
}
