/* The trained adapter written into the run folder. */
#include "train/run.h"
#include "peft/adapter_io.h"

/* RUN/adapter/ (PEFT layout: adapter_config.json + adapter_model.safetensors) and
 * RUN/adapter.gguf (llama.cpp LoRA adapter), by the adapter writers of src/peft/adapter_io.h.
 * Full fine-tuning leaves its weights in the last checkpoint (`takumi export` merges/writes
 * models). */
tk_status tk_run_write_adapter(tk_run *r, const char *last_ckpt) {
    if (r->c.method != TK_TRAIN_LORA) {
        tk_run_emitf(r, TK_EV_INFO, "weights", true, "the trained weights are in %s/params.safetensors (tensors \"param/<HF name>\"; q/k rows "
              "%s)", last_ckpt, tk_train_qk_permuted(r->tc) ? "in llama.cpp's permuted order" : "in HF order");
        return TK_OK;
    }
    char *dir = tk_path_join(r->c.out, "adapter"), *gg = tk_path_join(r->c.out, "adapter.gguf");
    tk_status st = dir && gg ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_adapter_save_peft(tk_train_lora(r->tc), r->m, dir, NULL);
    if (!st) tk_run_emitf(r, TK_EV_INFO, "adapter", true, "adapter (PEFT): %s", dir);
    if (!st) {
        tk_status g = tk_adapter_save_gguf(tk_train_lora(r->tc), r->m, gg);
        if (g == TK_ERR_UNSUPPORTED) tk_run_emitf(r, TK_EV_WARNING, "warning", true, "no GGUF adapter: %s", tk_last_error());
        else if (g) st = g;
        else tk_run_emitf(r, TK_EV_INFO, "adapter", true, "adapter (GGUF, llama.cpp): %s", gg);
    }
    free(dir);
    free(gg);
    return st;
}

