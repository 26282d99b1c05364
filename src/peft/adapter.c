/* The public adapter API (takumi/adapter.h) on top of adapter_io.c and the method table:
 * inspection (the kind's describe), saving by output name (the method's save_peft /
 * save_gguf), conversion, and merging (the method's merge_linear) through the model
 * exporter's delta interface (model/export.h). */
#include "peft/adapter_io.h"
#include "core/core.h"

tk_adapter_info tk_adapter_get_info(const tk_adapter *a) {
    tk_adapter_info i;
    memset(&i, 0, sizeof i);
    if (!a) return i;
    a->kind->describe(a->file, &i);
    i.path = a->path;
    i.format = a->format;
    i.method = a->kind->name;
    if (!i.arch) i.arch = "";
    if (!i.base_model) i.base_model = "";
    return i;
}

int32_t tk_adapter_handle_rank(const tk_adapter_handle *h) {
    tk_lora *l = tk_adapter_handle_lora((tk_adapter_handle *)h);
    return l ? tk_lora_get_config(l)->r : 0;
}

float tk_adapter_handle_scale(const tk_adapter_handle *h) {
    tk_lora *l = tk_adapter_handle_lora((tk_adapter_handle *)h);
    return l ? tk_lora_scale(l) : 0.0f;
}

tk_status tk_adapter_save(tk_adapter_handle *h, const tk_model *m, const char *out, const char *base_model) {
    const tk_peft *p = tk_adapter_handle_peft(h);
    if (!p || !m || !out || !*out) return tk_fail(TK_ERR_ARG, "adapter save: NULL adapter, model or output");
    const tk_peft_method *md = p->method;
    if (tk_ends_with(out, ".gguf")) {
        if (!md->save_gguf)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s adapters have no GGUF layout (llama.cpp applies LoRA adapters only; write the PEFT folder%s)", out,
                           md->name, md->merge_linear ? ", or merge with `takumi export --merge`" : "");
        return md->save_gguf(p->state, m, out);
    }
    if (!md->save_peft) return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s adapters have no PEFT layout", out, md->name);
    return md->save_peft(p->state, m, out, base_model);
}

tk_status tk_adapter_convert(const char *model_path, const char *in, const char *out) {
    if (!model_path || !in || !out) return tk_fail(TK_ERR_ARG, "adapter convert: NULL model, input or output");
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_IF_PRESENT;
    tk_model *m = NULL;
    tk_adapter_handle *h = NULL;
    tk_status st = tk_model_load(model_path, &mp, &m);
    if (!st) st = tk_adapter_apply(m, in, &h);
    if (!st) st = tk_adapter_save(h, m, out, model_path);
    tk_adapter_detach(m, h);
    tk_model_free(m);
    return st;
}

static bool peft_delta_has(void *ud, int32_t layer, tk_linear_id which) {
    const tk_peft *p = ud;
    return !p->method->has_linear || p->method->has_linear(p->state, layer, which);
}

static tk_status peft_delta_merge(void *ud, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K) {
    const tk_peft *p = ud;
    if (!p->method->merge_linear) return tk_fail(TK_ERR_UNSUPPORTED, "%s adapters cannot be merged into the weights", p->method->name);
    return p->method->merge_linear(p->state, layer, which, W, N, K, 1.0f);
}

tk_weight_delta tk_peft_weight_delta(const tk_peft *p) {
    tk_weight_delta d = {.has = peft_delta_has, .merge = peft_delta_merge, .ud = (void *)p};
    return d;
}

tk_weight_delta tk_lora_weight_delta(tk_lora *l) { return tk_peft_weight_delta(tk_lora_peft(l)); }

tk_status tk_lora_export_merged(tk_model *m, tk_lora *l, const char *out, const tk_export_params *p) {
    if (!l) return tk_export_merged(m, NULL, out, p);
    tk_weight_delta d = tk_lora_weight_delta(l);
    return tk_export_merged(m, &d, out, p);
}

tk_status tk_adapter_merge(tk_model *m, tk_adapter_handle *h, const char *out, const tk_export_params *p) {
    const tk_peft *a = tk_adapter_handle_peft(h);
    if (!a) return tk_fail(TK_ERR_ARG, "adapter merge: no adapter");
    if (!a->method->merge_linear)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s adapters cannot be merged into the weights (%s): apply the adapter with --adapter instead",
                       a->method->name, a->method->attn_prefix    ? "they add attention keys and values, not a weight change"
                       : a->method->embed_prefix ? "they add virtual tokens before the input, not a weight change"
                       : a->method->block_fwd    ? "they add a nonlinear bottleneck to block outputs, not a weight change"
                                                 : "the method has no merge");
    tk_weight_delta d = tk_peft_weight_delta(a);
    return tk_export_merged(m, &d, out, p);
}
