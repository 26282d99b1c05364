/* The trained adapter written into the run folder. */
#include "train/run.h"
#include "peft/adapter_io.h"
#include "takumi/export.h"
#include <errno.h>
#include <string.h>

/* Full fine-tuning: the trained model (the model's weight refs point at the f32 masters) as the HF folder
 * RUN/model/ (config.json + model.safetensors, f16, q/k rows in HF order; an HF base's tokenizer files are
 * copied, a GGUF or llama2.c base keeps its tokenizer: pass it as --tokenizer) and, from a GGUF base, as
 * RUN/model.gguf too (f16 matrices, the base's metadata and tokenizer: what llama.cpp loads). */
static tk_status write_model(tk_run *r) {
    char *out = tk_path_join(r->c.out, "model"), *gguf = tk_path_join(r->c.out, "model.gguf");
    if (!out || !gguf) { free(out); free(gguf); return TK_ERR_NOMEM; }
    tk_export_params ep = tk_export_default_params();
    bool from_gguf = !strcmp(tk_model_format(r->m), "gguf");
    tk_status st = tk_export_model(r->m, out, &ep);
    if (!st) tk_run_emitf(r, TK_EV_INFO, "model", true, "model (full fine-tuning, HF folder, f16): %s%s", out,
                          strcmp(tk_model_format(r->m), "hf") ? " (no tokenizer files: load it with --tokenizer set to the base model)" : "");
    if (!st && from_gguf && !(st = tk_export_model(r->m, gguf, &ep)))
        tk_run_emitf(r, TK_EV_INFO, "model_gguf", true, "model (full fine-tuning, GGUF, f16, the base's tokenizer): %s", gguf);
    free(out);
    free(gguf);
    return st ? tk_fail_ctx(st, "writing the fine-tuned model: ") : TK_OK;
}

/* The PEFT adapter of a checkpoint: CKPT/adapter/ (written as adapter.tmp/, then renamed), so that each checkpoint
 * is usable as it stands (`takumi generate --adapter RUN/checkpoints/step-N/adapter`, takumi serve's
 * ft:...:ckpt-step-N models). Only for language-model adapters with a PEFT layout (not full fine-tuning, heads,
 * reward models or classifiers: their end products are written otherwise); a no-op for the rest. */
tk_status tk_run_write_ckpt_adapter(tk_run *r, const char *ckpt) {
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads);
    if (r->c.method == TK_TRAIN_FULL || r->c.method == TK_TRAIN_HEAD || r->reward || r->cls || n_ads == 0 || !ads[0].peft->method->save_peft)
        return TK_OK;
    const tk_peft *p = ads[0].peft;
    char *tmp = tk_path_join(ckpt, "adapter.tmp"), *dir = tk_path_join(ckpt, "adapter");
    tk_status st = tmp && dir ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_ckpt_remove_tree(tmp); /* a leftover of a crash */
    if (!st) st = p->method->save_peft(p->state, r->m, tmp, NULL);
    if (!st && tk_io_rename(tmp, dir) != 0) st = tk_fail(TK_ERR_IO, "%s: rename failed: %s", dir, strerror(errno));
    if (st && tmp) tk_ckpt_remove_tree(tmp); /* a failed write leaves no temporary (its error is the one reported) */
    free(tmp);
    free(dir);
    return st ? tk_fail_ctx(st, "the checkpoint's adapter: ") : TK_OK;
}

/* RUN/adapter/ (PEFT layout: adapter_config.json + adapter_model.safetensors) and, where the
 * method has one, RUN/adapter.gguf (llama.cpp adapter), by the trained adapter's method
 * (save_peft / save_gguf of takumi/peft.h). Full fine-tuning writes the model (write_model). */
tk_status tk_run_write_adapter(tk_run *r, const char *last_ckpt) {
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads);
    if (r->c.method == TK_TRAIN_FULL) return write_model(r);
    if (n_ads == 0) {
        tk_run_emitf(r, TK_EV_INFO, "weights", true, "the trained weights are in %s/params.safetensors (tensors \"param/<HF name>\"; q/k rows "
              "%s)", last_ckpt, tk_train_qk_permuted(r->tc) ? "in llama.cpp's permuted order" : "in HF order");
        return TK_OK;
    }
    const tk_peft *p = ads[0].peft;
    const tk_peft_method *md = p->method;
    if (!md->save_peft) {
        tk_run_emitf(r, TK_EV_INFO, "weights", true, "%s adapters have no PEFT layout: the trained parameters are in %s/params.safetensors",
                     md->name, last_ckpt);
        return TK_OK;
    }
    char *dir = tk_path_join(r->c.out, "adapter"), *gg = tk_path_join(r->c.out, "adapter.gguf");
    tk_status st = dir && gg ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = md->save_peft(p->state, r->m, dir, NULL);
    if (!st) tk_run_emitf(r, TK_EV_INFO, "adapter", true, "adapter (PEFT): %s", dir);
    if (!st && !md->save_gguf) {
        tk_run_emitf(r, TK_EV_INFO, "adapter", true, "no GGUF adapter: llama.cpp cannot apply %s adapters (use the PEFT folder%s)", md->name,
                     md->merge_linear ? ", or `takumi export --merge` for a merged model" : "; it cannot be merged into the weights either");
    } else if (!st) {
        tk_status g = md->save_gguf(p->state, r->m, gg);
        if (g == TK_ERR_UNSUPPORTED) tk_run_emitf(r, TK_EV_WARNING, "warning", true, "no GGUF adapter: %s", tk_last_error());
        else if (g) st = g;
        else tk_run_emitf(r, TK_EV_INFO, "adapter", true, "adapter (GGUF, llama.cpp): %s", gg);
    }
    free(dir);
    free(gg);
    return st;
}
