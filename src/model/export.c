/* Model export with an optional merged LoRA adapter (see export.h). Every output tensor is
 * produced the same way: the stored weight dequantized to f32, the adapter's scale * B A
 * added for adapted linears (in the model's own q/k row order, which is also the adapter's),
 * the q/k rows put into the output's order, then converted to the output dtype. */
#include "model/export.h"
#include "model/llama.h"
#include "model/arch.h"
#include "model/hfconfig.h"
#include "core/core.h"
#include "backend/backend.h"
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

tk_export_params tk_export_default_params(void) {
    tk_export_params p = {.dtype = TK_F16};
    return p;
}

bool tk_export_parse_dtype(const char *s, tk_dtype *dt) {
    if (!s) return false;
    if (!strcmp(s, "f32")) *dt = TK_F32;
    else if (!strcmp(s, "f16")) *dt = TK_F16;
    else if (!strcmp(s, "bf16")) *dt = TK_BF16;
    else if (!strcmp(s, "q8_0")) *dt = TK_Q8_0;
    else return false;
    return true;
}

/* Output buffers are kept until the file is written (writers take them by reference). */
typedef struct bufs { void **p; size_t n, cap; } bufs;

static tk_status keep(bufs *b, void *p) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        void **q = tk_realloc(b->p, cap * sizeof *q);
        if (!q) return TK_ERR_NOMEM;
        b->p = q;
        b->cap = cap;
    }
    b->p[b->n++] = p;
    return TK_OK;
}

static void bufs_free(bufs *b) {
    for (size_t i = 0; i < b->n; i++) free(b->p[i]);
    free(b->p);
}


/* The tensor as f32 (owned by the caller), with the adapter merged when (layer, which) has
 * one: W[N x K] += scale * B[N x r] A[r x K]. */
static tk_status weight_f32(const tk_tensor_ref *t, const tk_weight_delta *d, int32_t layer, int which, float **out) {
    *out = NULL;
    int64_t n = tk_tensor_nelems(t);
    size_t bytes;
    if (n <= 0 || !tk_mul_ok((size_t)n, sizeof(float), &bytes)) return tk_fail(TK_ERR_FORMAT, "tensor '%s': bad size", t->name);
    float *w = tk_malloc(bytes);
    if (!w) return TK_ERR_NOMEM;
    tk_status st = tk_dequantize(t->dtype, t->data, w, n);
    if (st) { free(w); return tk_fail_ctx(st, "tensor '%s': ", t->name); }
    if (d && which >= 0 && d->has(d->ud, layer, (tk_linear_id)which) &&
        (st = d->merge(d->ud, layer, (tk_linear_id)which, w, t->ne[1], t->ne[0]))) {
        free(w);
        return tk_fail_ctx(st, "tensor '%s': the adapter does not merge into the weight: ", t->name);
    }
    *out = w;
    return TK_OK;
}

/* Converts n f32 values (rows of ne0) to dt, taking ownership of f (freed or returned). */
static tk_status convert(float *f, int64_t n, tk_dtype dt, void **out) {
    *out = NULL;
    if (dt == TK_F32) { *out = f; return TK_OK; }
    size_t bytes;
    tk_status st = tk_dtype_nbytes(dt, n, &bytes);
    void *q = st ? NULL : tk_malloc(bytes);
    if (!st && !q) st = TK_ERR_NOMEM;
    if (!st) st = tk_quantize(dt, f, q, n);
    free(f);
    if (st) { free(q); return st; }
    *out = q;
    return TK_OK;
}

/* q8_0 needs rows of whole 32-blocks; other rows fall back to f16. */
static tk_dtype matrix_dtype(tk_dtype want, int64_t ne0) {
    return ne0 % tk_dtype_block_elems(want) ? TK_F16 : want;
}

static const char *torch_dtype_name(tk_dtype dt) {
    return dt == TK_F32 ? "float32" : dt == TK_F16 ? "float16" : "bfloat16";
}

/* ---- HF folder ------------------------------------------------------------------------------ */

/* qk: 1/2 = q/k rows (permuted when the model runs interleaved RoPE); norm: a norm weight
 * (HF stores w of (1 + w) for Gemma: takumi's multiplier minus one). */
typedef struct hf_item { const char *key; int layer; const tk_tensor_ref *t; int which; int qk; bool norm; } hf_item;

/* The model's weight map in HF order, keyed by GGUF names ("blk.{layer}." + key for a layer's):
 * embedding, layers, final norm, untied head; absent weights (a family's fused or optional
 * tensors) are left out. *n: the count. NULL when out of memory; free() it. */
static hf_item *weight_items(tk_model *m, size_t *n) {
    const tk_model_config *c = &m->cfg;
    hf_item *it = tk_calloc(3 + (size_t)c->n_layers * 16, sizeof *it);
    if (!it) return NULL;
    size_t k = 0;
    it[k++] = (hf_item){"token_embd.weight", -1, &m->w.tok_embd, -1, 0, false};
    for (int i = 0; i < c->n_layers; i++) {
        tk_layer_weights *y = &m->w.layers[i];
        const hf_item li[] = {
            {"attn_norm.weight", i, &y->attn_norm, -1, 0, true},
            {c->fused_qkv ? "attn_qkv.weight" : "attn_q.weight", i, &y->wq, TK_LIN_Q, c->fused_qkv ? 0 : 1, false},
            {"attn_k.weight", i, &y->wk, TK_LIN_K, 2, false},
            {"attn_v.weight", i, &y->wv, TK_LIN_V, 0, false},
            {"attn_output.weight", i, &y->wo, TK_LIN_O, 0, false},
            {"attn_q.bias", i, &y->bq, -1, 1, false},
            {"attn_k.bias", i, &y->bk, -1, 2, false},
            {"attn_v.bias", i, &y->bv, -1, 0, false},
            {"attn_q_norm.weight", i, &y->q_norm, -1, 0, true},
            {"attn_k_norm.weight", i, &y->k_norm, -1, 0, true},
            {"post_attention_norm.weight", i, &y->post_attn_norm, -1, 0, true},
            {"ffn_norm.weight", i, &y->ffn_norm, -1, 0, true},
            {"ffn_gate.weight", i, &y->w_gate, TK_LIN_GATE, 0, false},
            {"ffn_up.weight", i, &y->w_up, TK_LIN_UP, 0, false},
            {"ffn_down.weight", i, &y->w_down, TK_LIN_DOWN, 0, false},
            {"post_ffw_norm.weight", i, &y->post_ffn_norm, -1, 0, true},
        };
        for (size_t j = 0; j < sizeof li / sizeof li[0]; j++)
            if (li[j].t->data) it[k++] = li[j];
    }
    it[k++] = (hf_item){"output_norm.weight", -1, &m->w.out_norm, -1, 0, true};
    if (!c->tied_embeddings) it[k++] = (hf_item){"output.weight", -1, &m->w.output, -1, 0, false};
    *n = k;
    return it;
}

static double tidy(float f) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)f);
    return strtod(b, NULL);
}

/* config.json for a model that came without one (GGUF, llama2.c): the family's class and
 * model_type, the sizes, and the fields its block features need. */
static tk_status write_config(const tk_model *m, const char *path, tk_dtype dt) {
    const tk_model_config *c = &m->cfg;
    const tk_arch *d = tk_arch_by_name(c->arch);
    if (!d) return tk_fail(TK_ERR_UNSUPPORTED, "%s: no HF architecture for '%s'", path, c->arch);
    bool qwen2 = d == &tk_arch_qwen2, qwen3 = d == &tk_arch_qwen3, gemma = d->gemma_config, phi3 = d == &tk_arch_phi3;
    cJSON *j = cJSON_CreateObject(), *ar = cJSON_CreateArray();
    if (!j || !ar) { cJSON_Delete(j); cJSON_Delete(ar); return TK_ERR_NOMEM; }
    cJSON_AddItemToArray(ar, cJSON_CreateString(d->hf_class));
    cJSON_AddItemToObject(j, "architectures", ar);
    cJSON_AddStringToObject(j, "model_type", d->hf_model_types[0]);
    if (!qwen2 && !phi3) {
        cJSON_AddBoolToObject(j, "attention_bias", c->qkv_bias);
        if (!gemma && !qwen3) cJSON_AddBoolToObject(j, "mlp_bias", false);
    }
    const tk_tokenizer *tok = m->tok;
    if (tok && tk_tokenizer_bos(tok) >= 0) cJSON_AddNumberToObject(j, "bos_token_id", tk_tokenizer_bos(tok));
    if (tok && tk_tokenizer_eos(tok) >= 0) cJSON_AddNumberToObject(j, "eos_token_id", tk_tokenizer_eos(tok));
    if (phi3 || gemma) {
        /* their config classes default pad_token_id to an id (Phi-3: 32000) that must lie in the vocabulary */
        int32_t pad = tok ? tk_tokenizer_pad(tok) : -1;
        if (pad >= 0 && pad < c->n_vocab) cJSON_AddNumberToObject(j, "pad_token_id", pad);
        else cJSON_AddNullToObject(j, "pad_token_id");
    }
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddStringToObject(j, gemma ? "hidden_activation" : "hidden_act", c->act == TK_ACT_GELU_TANH ? "gelu_pytorch_tanh" : "silu");
    cJSON_AddNumberToObject(j, "hidden_size", c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_seq);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(j, "rms_norm_eps", tidy(c->rms_eps));
    cJSON *rs = NULL;
    if (c->rope_scaling == TK_ROPE_SCALING_LINEAR) {
        rs = cJSON_CreateObject();
        cJSON_AddStringToObject(rs, "rope_type", "linear");
        cJSON_AddNumberToObject(rs, "factor", tidy(c->rope_factor));
    } else if (c->rope_scaling == TK_ROPE_SCALING_LLAMA3) {
        rs = cJSON_CreateObject();
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddNumberToObject(rs, "factor", tidy(c->rope_factor));
        cJSON_AddNumberToObject(rs, "low_freq_factor", tidy(c->rope_low_freq_factor));
        cJSON_AddNumberToObject(rs, "high_freq_factor", tidy(c->rope_high_freq_factor));
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_orig_max_seq);
    }
    if (gemma && !(d->rope_theta_local > 0)) { /* one RoPE for every layer (Gemma 2) */
        cJSON *rp = rs ? rs : cJSON_CreateObject();
        if (!rs) cJSON_AddStringToObject(rp, "rope_type", "default");
        cJSON_AddNumberToObject(rp, "rope_theta", tidy(c->rope_theta));
        cJSON_AddItemToObject(j, "rope_parameters", rp);
    } else if (gemma) {
        /* per layer type: the global layers' theta and scaling, the sliding layers' plain base */
        cJSON *rp = cJSON_AddObjectToObject(j, "rope_parameters");
        cJSON *full = rs ? rs : cJSON_CreateObject(), *sl = cJSON_CreateObject();
        if (!rs) cJSON_AddStringToObject(full, "rope_type", "default");
        cJSON_AddNumberToObject(full, "rope_theta", tidy(c->rope_theta));
        cJSON_AddStringToObject(sl, "rope_type", "default");
        cJSON_AddNumberToObject(sl, "rope_theta", tidy(c->rope_theta_local > 0 ? c->rope_theta_local : c->rope_theta));
        cJSON_AddItemToObject(rp, "full_attention", full);
        cJSON_AddItemToObject(rp, "sliding_attention", sl);
    }
    if (gemma) {
        cJSON_AddNumberToObject(j, "query_pre_attn_scalar",
                                tidy(c->attn_scale > 0 ? 1.0f / (c->attn_scale * c->attn_scale) : (float)c->head_dim));
        cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window > 0 ? c->sliding_window : c->max_seq);
        cJSON *lt = cJSON_AddArrayToObject(j, "layer_types");
        for (int32_t l = 0; l < c->n_layers; l++)
            cJSON_AddItemToArray(lt, cJSON_CreateString(tk_layer_sliding(c, l) ? "sliding_attention" : "full_attention"));
        if (c->final_softcap > 0) cJSON_AddNumberToObject(j, "final_logit_softcapping", tidy(c->final_softcap));
        else cJSON_AddNullToObject(j, "final_logit_softcapping");
        if (c->attn_softcap > 0) cJSON_AddNumberToObject(j, "attn_logit_softcapping", tidy(c->attn_softcap));
        else cJSON_AddNullToObject(j, "attn_logit_softcapping");
    } else {
        if (rs) cJSON_AddItemToObject(j, "rope_scaling", rs);
        else cJSON_AddNullToObject(j, "rope_scaling");
        cJSON_AddNumberToObject(j, "rope_theta", tidy(c->rope_theta));
    }
    if (phi3) {
        if (c->sliding_window > 0) cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(j, "sliding_window");
    }
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddStringToObject(j, "torch_dtype", torch_dtype_name(dt));
    if (qwen2 || qwen3) cJSON_AddBoolToObject(j, "use_sliding_window", false);
    cJSON_AddBoolToObject(j, "use_cache", true);
    cJSON_AddNumberToObject(j, "vocab_size", c->n_vocab);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return TK_ERR_NOMEM;
    tk_buf b = {0};
    tk_status st = tk_buf_printf(&b, "%s\n", s);
    free(s);
    if (!st) st = tk_write_file_atomic(path, b.data, b.len);
    tk_buf_free(&b);
    return st;
}

/* The source folder's config.json with the new dtype. */
static tk_status copy_config(const char *src_dir, const char *path, tk_dtype dt) {
    char *src = tk_path_join(src_dir, "config.json"), *text = NULL;
    size_t len;
    if (!src) return TK_ERR_NOMEM;
    tk_status st = tk_read_file(src, &text, &len);
    cJSON *j = st ? NULL : cJSON_ParseWithLength(text, len);
    if (!st && !cJSON_IsObject(j)) st = tk_fail(TK_ERR_FORMAT, "%s: not a JSON object", src);
    if (!st) {
        if (cJSON_GetObjectItemCaseSensitive(j, "dtype"))
            cJSON_ReplaceItemInObjectCaseSensitive(j, "dtype", cJSON_CreateString(torch_dtype_name(dt)));
        if (cJSON_GetObjectItemCaseSensitive(j, "torch_dtype"))
            cJSON_ReplaceItemInObjectCaseSensitive(j, "torch_dtype", cJSON_CreateString(torch_dtype_name(dt)));
        else if (!cJSON_GetObjectItemCaseSensitive(j, "dtype"))
            cJSON_AddStringToObject(j, "torch_dtype", torch_dtype_name(dt));
        char *s = cJSON_Print(j);
        tk_buf b = {0};
        if (!s) st = TK_ERR_NOMEM;
        else if (!(st = tk_buf_printf(&b, "%s\n", s))) st = tk_write_file_atomic(path, b.data, b.len);
        free(s);
        tk_buf_free(&b);
    }
    cJSON_Delete(j);
    free(text);
    free(src);
    return st;
}

static tk_status copy_file_if_present(const char *src_dir, const char *dst_dir, const char *name) {
    char *s = tk_path_join(src_dir, name), *d = tk_path_join(dst_dir, name), *data = NULL;
    size_t len;
    tk_status st = TK_OK;
    if (!s || !d) st = TK_ERR_NOMEM;
    else if (access(s, F_OK) == 0 && !(st = tk_read_file(s, &data, &len))) st = tk_write_file_atomic(d, data, len);
    free(data);
    free(s);
    free(d);
    return st;
}

static tk_status export_hf(tk_model *m, const tk_weight_delta *l, const char *dir, tk_dtype dt) {
    if (dt == TK_Q8_0) return tk_fail(TK_ERR_ARG, "%s: an HF folder holds f32, f16 or bf16 (q8_0 is for a .gguf output)", dir);
    const tk_model_config *c = &m->cfg;
    bool perm = c->rope_interleaved != 0;
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    /* the weight map in HF order: embedding, layers, final norm, untied head; absent weights
     * (a family's fused or optional tensors) are skipped */
    const tk_arch *desc = tk_arch_by_name(c->arch);
    bool plus_one = desc && desc->hf_norm_plus_one;
    size_t k = 0;
    hf_item *it = weight_items(m, &k);
    if (!it) return TK_ERR_NOMEM;
    tk_st_writer *w = tk_st_writer_new();
    bufs keepers = {0};
    char *st_path = tk_path_join(dir, "model.safetensors"), *cfg_path = tk_path_join(dir, "config.json");
    if (!w || !st_path || !cfg_path) st = TK_ERR_NOMEM;
    for (size_t i = 0; i < k && !st; i++) {
        const tk_tensor_ref *t = it[i].t;
        char name[160];
        if (!tk_arch_hf_weight_name(desc, name, sizeof name, it[i].key, it[i].layer)) { st = tk_fail(TK_ERR_INTERNAL, "no HF name for %s", it[i].key); break; }
        float *f;
        if ((st = weight_f32(t, l, it[i].layer, it[i].which, &f))) break;
        if (plus_one && it[i].norm)
            for (int64_t e = 0; e < tk_tensor_nelems(t); e++) f[e] -= 1.0f;
        int64_t ne0 = t->ne[0], rows = tk_tensor_nelems(t) / ne0;
        if (perm && it[i].qk) {
            /* takumi's rows are llama.cpp's permuted ones: HF wants rotate-half rows */
            float *h = tk_malloc((size_t)(rows * ne0) * sizeof(float));
            if (!h) { free(f); st = TK_ERR_NOMEM; break; }
            int heads = it[i].qk == 1 ? c->n_heads : c->n_kv_heads;
            bool bias = t->n_dims == 1 || t->ne[1] == 1;
            tk_permute_qk_rows_to_hf(h, f, heads, c->head_dim, bias ? sizeof(float) : (size_t)ne0 * sizeof(float));
            free(f);
            f = h;
        }
        void *out;
        if ((st = convert(f, tk_tensor_nelems(t), dt, &out))) break;
        if ((st = keep(&keepers, out))) { free(out); break; }
        int nd = t->ne[1] > 1 ? 2 : 1;
        st = tk_st_add_ref(w, name, dt, nd, t->ne, out);
    }
    if (!st) st = tk_st_set_metadata(w, "format", "pt");
    if (!st) st = tk_st_write(w, st_path);
    if (!st) {
        if (!strcmp(m->format, "hf")) {
            st = copy_config(m->path, cfg_path, dt);
            static const char *const aux[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                              "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt",
                                              "added_tokens.json", "chat_template.jinja", "chat_template.json"};
            for (size_t i = 0; i < sizeof aux / sizeof aux[0] && !st; i++) st = copy_file_if_present(m->path, dir, aux[i]);
        } else {
            st = write_config(m, cfg_path, dt);
        }
    }
    bufs_free(&keepers);
    tk_st_writer_free(w);
    free(st_path);
    free(cfg_path);
    free(it);
    return st;
}

/* ---- GGUF --------------------------------------------------------------------------------- */

static const char *const k_lin_base[TK_LIN_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* "blk.{i}.{attn_q|…}.weight" -> (layer, which) in family d (Phi-3: attn_qkv); false for every other name. */
static bool linear_of(const tk_arch *d, const char *name, int32_t *layer, int *which) {
    if (strncmp(name, "blk.", 4)) return false;
    char *end;
    long v = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || v < 0 || v > 1000000) return false;
    for (int k = 0; k < TK_LIN_COUNT; k++) {
        const char *base = d ? d->lin_gguf[k] : k_lin_base[k];
        if (!base) continue;
        size_t n = strlen(base);
        if (!strncmp(end + 1, base, n) && !strcmp(end + 1 + n, ".weight")) {
            *layer = (int32_t)v;
            *which = k;
            return true;
        }
    }
    return false;
}

static uint32_t file_type(tk_dtype dt) {
    /* llama.cpp's llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32 */
    return dt == TK_F32 ? 0 : dt == TK_F16 ? 1 : dt == TK_Q8_0 ? 7 : 32;
}

/* The model's ref named as the file's tensor t ("blk.{layer}." + key for a layer's), of t's shape; NULL if none. */
static const tk_tensor_ref *model_ref(const hf_item *it, size_t n, const tk_tensor_ref *t) {
    for (size_t i = 0; i < n; i++) {
        char name[160];
        if (it[i].layer < 0) snprintf(name, sizeof name, "%s", it[i].key);
        else snprintf(name, sizeof name, "blk.%d.%s", it[i].layer, it[i].key);
        if (strcmp(name, t->name)) continue;
        const tk_tensor_ref *r = it[i].t;
        return r->data && tk_tensor_nelems(r) == tk_tensor_nelems(t) && r->ne[0] == t->ne[0] ? r : NULL;
    }
    return NULL;
}

static tk_status export_gguf(tk_model *m, const tk_weight_delta *l, const char *path, tk_dtype dt) {
    if (!m->gguf)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: a GGUF output needs a GGUF source model (its tokenizer and metadata are copied); "
                                           "export this %s model to an HF folder and convert that with llama.cpp's convert_hf_to_gguf.py",
                       path, m->format);
    const tk_gguf *g = m->gguf;
    tk_gguf_writer *w = tk_gguf_writer_new();
    if (!w) return TK_ERR_NOMEM;
    bufs keepers = {0};
    size_t n_items = 0;
    hf_item *it = weight_items(m, &n_items);
    tk_status st = it ? tk_gguf_copy_kv(w, g) : TK_ERR_NOMEM;
    if (!st) st = tk_gguf_set_u32(w, "general.file_type", file_type(dt));
    for (int64_t i = 0; i < tk_gguf_n_tensors(g) && !st; i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(g, i);
        int32_t layer = -1;
        int which = -1;
        bool lin = linear_of(tk_arch_by_name(m->cfg.arch), t->name, &layer, &which) && layer < m->cfg.n_layers;
        bool matrix = t->n_dims >= 2 && t->ne[1] > 1;
        /* the model's weight under this name: the file's own tensor, or what replaced it (full
         * fine-tuning points the refs at its f32 masters; they keep the file's layout) */
        const tk_tensor_ref *mt = model_ref(it, n_items, t);
        bool changed = mt && mt->data != t->data;
        tk_dtype odt = matrix ? matrix_dtype(dt, t->ne[0]) : changed ? TK_F32 : t->dtype;
        bool merged = lin && l && l->has(l->ud, layer, (tk_linear_id)which);
        if (!merged && !changed && odt == t->dtype) {
            st = tk_gguf_add_tensor_ref(w, t->name, t->dtype, t->n_dims, t->ne, t->data);
            continue;
        }
        float *f;
        if ((st = weight_f32(changed ? mt : t, merged ? l : NULL, layer, which, &f))) break;
        void *out;
        if ((st = convert(f, tk_tensor_nelems(t), odt, &out))) break;
        if ((st = keep(&keepers, out))) { free(out); break; }
        st = tk_gguf_add_tensor_ref(w, t->name, odt, t->n_dims, t->ne, out);
    }
    if (!st) st = tk_gguf_write(w, path);
    bufs_free(&keepers);
    free(it);
    tk_gguf_writer_free(w);
    return st;
}

tk_status tk_export_model(tk_model *m, const char *out, const tk_export_params *p) { return tk_export_merged(m, NULL, out, p); }

tk_status tk_export_merged(tk_model *m, const tk_weight_delta *l, const char *out, const tk_export_params *p) {
    if (!m || !out || !*out) return tk_fail(TK_ERR_ARG, "export: NULL model or output");
    tk_export_params d = tk_export_default_params();
    if (!p) p = &d;
    if (p->dtype != TK_F32 && p->dtype != TK_F16 && p->dtype != TK_BF16 && p->dtype != TK_Q8_0)
        return tk_fail(TK_ERR_ARG, "export: dtype %s is not one of f32, f16, bf16, q8_0", tk_dtype_name(p->dtype));
    /* one export to a target at a time: ".<name>.lock" beside it, held while writing */
    tk_buf lk = {0};
    const char *slash = strrchr(out, '/');
    size_t dl = slash ? (size_t)(slash - out + 1) : 0;
    const char *base = out + dl;
    while (*base == 0 && dl > 0) base = ""; /* "dir/": the folder itself */
    tk_status st = tk_buf_printf(&lk, "%.*s.%s.lock", (int)dl, out, *base ? base : "export");
    int fd = -1;
    char what[4200];
    snprintf(what, sizeof what, "the export target %s", out);
    if (!st) st = tk_lock_acquire(lk.data, what, &fd);
    if (!st) {
        st = tk_ends_with(out, ".gguf") ? export_gguf(m, l, out, p->dtype) : export_hf(m, l, out, p->dtype);
        tk_lock_release_unlink(fd, lk.data);
    }
    tk_buf_free(&lk);
    return st ? tk_fail_ctx(st, "export to %s: ", out) : TK_OK;
}
