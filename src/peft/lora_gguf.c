/* LoRA as a llama.cpp GGUF adapter (lora_io.h): written from a trained tk_lora and read back
 * into a tk_lora_file. */
#include "peft/lora_io.h"
#include "peft/lora_init.h"
#include "peft/adapter_io.h"
#include "model/arch.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

static const char *const k_gguf_base[TK_LIN_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                      "ffn_gate", "ffn_up", "ffn_down"};

/* The GGUF base name of linear k in m's family ("attn_qkv" for Phi-3's fused q|k|v). */
static const char *gguf_base(const tk_model_config *mc, int k) {
    const tk_arch *d = tk_arch_by_name(mc->arch);
    return d && d->lin_gguf[k] ? d->lin_gguf[k] : k_gguf_base[k];
}

/* The name of a fused module (Phi-3) that a file may use for a linear id. */
static const char *fused_gguf_name(int k) { return k == TK_LIN_Q ? "attn_qkv" : NULL; }

/* ---- writing -------------------------------------------------------------------------------- */

tk_status tk_adapter_save_gguf(tk_lora *l, const tk_model *m, const char *path) {
    if (!l || !m || !path) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    bool gperm = false, perm = tk_lora_qk_permuted(l);
    const char *ga = tk_adapter_gguf_arch(mc->arch, &gperm);
    if (!ga) return tk_fail(TK_ERR_UNSUPPORTED, "%s: no llama.cpp architecture for '%s'", path, mc->arch);
    int64_t r = tk_lora_written_rank(l); /* PiSSA/OLoRA: the rank-2r LoRA on the original base */
    tk_gguf_writer *w = tk_gguf_writer_new();
    if (!w) return TK_ERR_NOMEM;
    char name[96];
    snprintf(name, sizeof name, "%.80s LoRA", mc->name[0] ? mc->name : "takumi");
    /* llama.cpp scales by alpha / r whatever the file says about rsLoRA: store the scale x r */
    float alpha = tk_lora_scale(l) * (float)r;
    tk_status st;
    if ((st = tk_gguf_set_str(w, "general.architecture", ga)) || (st = tk_gguf_set_str(w, "general.type", "adapter")) ||
        (st = tk_gguf_set_str(w, "general.name", name)) || (st = tk_gguf_set_str(w, "adapter.type", "lora")) ||
        (st = tk_gguf_set_f32(w, "adapter.lora.alpha", alpha)))
        goto done;
    int n = 0;
    for (int32_t i = 0; i < mc->n_layers && !st; i++)
        for (int k = 0; k < TK_LIN_COUNT && !st; k++) {
            tk_param *A, *B;
            if (!tk_lora_module(l, i, (tk_linear_id)k, &A, &B)) continue;
            int64_t N = B->ne[1], K = A->ne[0], neA[2] = {K, r}, neB[2] = {r, N};
            float *tmp = tk_malloc((size_t)(N * r) * sizeof(float)), *fa = tk_malloc((size_t)(r * K) * sizeof(float)),
                  *fb = tk_malloc((size_t)(N * r) * sizeof(float));
            if (!tmp || !fa || !fb) { free(tmp); free(fa); free(fb); st = TK_ERR_NOMEM; break; }
            tk_lora_written_module(l, i, (tk_linear_id)k, fa, fb);
            tk_lora_convert_b(tmp, fb, (tk_linear_id)k, mc, N, r, perm, gperm);
            char tn[64];
            snprintf(tn, sizeof tn, "blk.%d.%s.weight.lora_a", i, gguf_base(mc, k));
            st = tk_gguf_add_tensor(w, tn, TK_F32, 2, neA, fa);
            snprintf(tn, sizeof tn, "blk.%d.%s.weight.lora_b", i, gguf_base(mc, k));
            if (!st) st = tk_gguf_add_tensor(w, tn, TK_F32, 2, neB, tmp);
            free(tmp); free(fa); free(fb);
            n++;
        }
    if (!st && !n) st = tk_fail(TK_ERR_ARG, "adapter: the LoRA set has no modules");
    if (!st) st = tk_gguf_write(w, path);
done:
    tk_gguf_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the GGUF adapter %s: ", path) : TK_OK;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* "blk.{i}.{attn_q|…}.weight.lora_{a|b}" (Phi-3: attn_qkv for q) */
static bool parse_gguf_key(const char *name, int32_t *layer, int *which, int *is_b) {
    const char *s = name;
    if (!tk_lora_key_eat(&s, "blk.") || !tk_lora_key_layer(&s, layer) || !tk_lora_key_eat(&s, ".")) return false;
    for (int k = 0; k < TK_LIN_COUNT; k++) {
        const char *p = s, *p2 = s;
        if ((tk_lora_key_eat(&p, k_gguf_base[k]) && tk_lora_key_eat(&p, ".weight.lora_")) ||
            (fused_gguf_name(k) && tk_lora_key_eat(&p2, fused_gguf_name(k)) && tk_lora_key_eat(&p2, ".weight.lora_") && (p = p2))) {
            if (!strcmp(p, "a")) *is_b = 0;
            else if (!strcmp(p, "b")) *is_b = 1;
            else return false;
            *which = k;
            return true;
        }
    }
    return false;
}

/* general.architecture, adapter.lora.alpha, general.name and the tensors of g into a. */
static tk_status read_gguf(tk_lora_file *a, const tk_gguf *g) {
    const char *path = tk_gguf_path(g), *s;
    size_t n;
    if (!tk_gguf_get_str(g, "general.architecture", &s, &n)) return tk_fail(TK_ERR_FORMAT, "%s: missing general.architecture", path);
    snprintf(a->arch, sizeof a->arch, "%s", s);
    if (!tk_adapter_gguf_arch(a->arch, &a->qk_permuted))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: adapter for architecture '%s' (takumi runs llama and qwen2)", path, a->arch);
    double alpha = 0;
    if (tk_gguf_find_key(g, "adapter.lora.alpha") >= 0 && !tk_gguf_get_f64(g, "adapter.lora.alpha", &alpha))
        return tk_fail(TK_ERR_FORMAT, "%s: adapter.lora.alpha must be a float", path);
    if (!(alpha >= 0) || !isfinite(alpha)) return tk_fail(TK_ERR_RANGE, "%s: adapter.lora.alpha %g is not allowed", path, alpha);
    a->alpha = (float)alpha;
    if (!(a->base_model = tk_strdup(tk_gguf_get_str(g, "general.name", &s, &n) ? s : ""))) return TK_ERR_NOMEM;
    tk_lora_entries L = {0};
    tk_status st = TK_OK;
    for (int64_t i = 0; i < tk_gguf_n_tensors(g) && !st; i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(g, i);
        int32_t layer;
        int which, is_b;
        if (!parse_gguf_key(t->name, &layer, &which, &is_b)) {
            st = tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not a LoRA weight of a Llama-family linear "
                                             "(blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight.lora_{a,b})",
                         path, t->name);
            break;
        }
        st = tk_lora_entries_push(&L, layer, which, is_b, t);
    }
    if (!st) st = tk_lora_file_build(a, &L, path);
    free(L.e);
    /* llama.cpp: scale = alpha / rank, and alpha 0 means scale 1 */
    a->scale = alpha > 0 ? a->alpha / (float)a->r : 1.0f;
    return st;
}

tk_status tk_lora_read_gguf(const tk_gguf *g, void **file) {
    *file = NULL;
    tk_lora_file *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    a->gguf = true;
    tk_status st = read_gguf(a, g);
    if (st) { tk_lora_file_free(a); return st; }
    *file = a;
    return TK_OK;
}
