/* HF config.json reader for Llama-family models, the HF <-> llama.cpp weight-name table,
 * and the q/k row permutation between Meta and HF layouts. Defaults follow transformers'
 * LlamaConfig / MistralConfig / Qwen2Config so that a config.json means here what it
 * means to transformers; every value is validated and errors name the file and field. */
#include "model/hfconfig.h"
#include "core/core.h"
#include "model/arch.h"
#include <cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

/* Largest config.json we read: real ones are a few KB. */
#define HF_MAX_CONFIG ((size_t)16 * 1024 * 1024)

static const char *hf_json_type(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsNull(j)) return "null";
    return "invalid";
}

/* Integer field; absent or null -> def (or an error when required). */
static tk_status hf_int(const cJSON *o, const char *file, const char *key, int required, int64_t def,
                        int64_t min, int64_t max, int64_t *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return tk_fail(TK_ERR_FORMAT, "%s: missing required field \"%s\"", file, key);
        *out = def;
        return TK_OK;
    }
    if (!cJSON_IsNumber(j))
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be an integer (got %s)", file, key, hf_json_type(j));
    double d = j->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be an integer (got %g)", file, key, d);
    if (d < (double)min || d > (double)max)
        return tk_fail(TK_ERR_RANGE, "%s: \"%s\" = %.0f is out of range [%lld, %lld]", file, key, d,
                       (long long)min, (long long)max);
    *out = (int64_t)d;
    return TK_OK;
}

/* Positive finite float field below max; absent or null -> def (or an error when required). */
static tk_status hf_pos_float(const cJSON *o, const char *file, const char *key, int required, double def,
                              double max, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return tk_fail(TK_ERR_FORMAT, "%s: missing required field \"%s\"", file, key);
        *out = (float)def;
        return TK_OK;
    }
    if (!cJSON_IsNumber(j))
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a number (got %s)", file, key, hf_json_type(j));
    double d = j->valuedouble;
    if (!isfinite(d) || d <= 0 || d >= max || (float)d <= 0)
        return tk_fail(TK_ERR_RANGE, "%s: \"%s\" = %g must be positive and below %g", file, key, d, max);
    *out = (float)d;
    return TK_OK;
}

static tk_status hf_bool(const cJSON *o, const char *file, const char *key, bool def, bool *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) { *out = def; return TK_OK; }
    if (!cJSON_IsBool(j))
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be true or false (got %s)", file, key, hf_json_type(j));
    *out = cJSON_IsTrue(j);
    return TK_OK;
}

/* Token id field: an int, a list of ints (eos in Llama 3), or null. */
static tk_status hf_token_ids(const cJSON *o, const char *file, const char *key, int32_t *ids, int32_t cap, int32_t *n) {
    *n = 0;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return TK_OK;
    const cJSON *e;
    int single = cJSON_IsNumber(j);
    if (!single && !cJSON_IsArray(j))
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a token id or a list of them (got %s)", file, key, hf_json_type(j));
    for (e = single ? j : j->child; e; e = single ? NULL : e->next) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!cJSON_IsNumber(e) || !isfinite(d) || d != floor(d) || d < 0 || d > INT32_MAX)
            return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" holds something that is not a token id", file, key);
        if (*n < cap) ids[(*n)++] = (int32_t)d;
    }
    return TK_OK;
}


/* RoPE: transformers 4.x writes "rope_theta" + "rope_scaling" {rope_type|type, factor, …};
 * transformers 5 writes one "rope_parameters" {rope_type, rope_theta, factor, …}. */
static tk_status hf_rope(const cJSON *root, const char *file, tk_model_config *cfg) {
    cfg->rope_scaling = TK_ROPE_SCALING_NONE;
    cfg->rope_factor = 1.0f;
    cfg->rope_low_freq_factor = 0;
    cfg->rope_high_freq_factor = 0;
    cfg->rope_orig_max_seq = 0;
    tk_status s;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const char *field = "rope_parameters";
    if (rp && !cJSON_IsNull(rp)) {
        if (!cJSON_IsObject(rp))
            return tk_fail(TK_ERR_FORMAT, "%s: \"rope_parameters\" must be an object (got %s)", file, hf_json_type(rp));
        /* per layer type (Gemma 3): sliding layers' theta (plain RoPE), the global layers' parameters */
        const cJSON *full = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
        const cJSON *sl = cJSON_GetObjectItemCaseSensitive(rp, "sliding_attention");
        if (cJSON_IsObject(sl)) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(sl, "rope_type");
            if (st && !(cJSON_IsString(st) && !strcmp(st->valuestring, "default")))
                return tk_fail(TK_ERR_UNSUPPORTED, "%s: rope_parameters.sliding_attention must be plain (rope_type default)", file);
            if ((s = hf_pos_float(sl, file, "rope_theta", 1, 10000.0, 1e12, &cfg->rope_theta_local)) != TK_OK) return s;
        }
        if (cJSON_IsObject(full)) rp = full;
        else if (sl) return tk_fail(TK_ERR_FORMAT, "%s: rope_parameters has sliding_attention but no full_attention object", file);
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(rp, "rope_theta");
        const cJSON *src = th && !cJSON_IsNull(th) ? rp : root; /* fall back to a top-level rope_theta */
        if ((s = hf_pos_float(src, file, "rope_theta", 0, 10000.0, 1e12, &cfg->rope_theta)) != TK_OK) return s;
    } else {
        if ((s = hf_pos_float(root, file, "rope_theta", 0, 10000.0, 1e12, &cfg->rope_theta)) != TK_OK) return s;
        rp = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
        field = "rope_scaling";
        if (!rp || cJSON_IsNull(rp)) return TK_OK;
        if (!cJSON_IsObject(rp))
            return tk_fail(TK_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null (got %s)", file, hf_json_type(rp));
    }
    /* transformers reads "rope_type", falling back to the older "type" */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
    if (!t || cJSON_IsNull(t)) t = cJSON_GetObjectItemCaseSensitive(rp, "type");
    if (!t || cJSON_IsNull(t)) {
        if (!strcmp(field, "rope_parameters")) return TK_OK; /* only rope_theta given */
        return tk_fail(TK_ERR_FORMAT, "%s: \"rope_scaling\" has no \"rope_type\" (or \"type\")", file);
    }
    if (!cJSON_IsString(t))
        return tk_fail(TK_ERR_FORMAT, "%s: %s rope_type must be a string (got %s)", file, field, hf_json_type(t));
    const char *ty = t->valuestring;
    if (!strcmp(ty, "default")) return TK_OK;
    if (!strcmp(ty, "linear")) {
        cfg->rope_scaling = TK_ROPE_SCALING_LINEAR;
        return hf_pos_float(rp, file, "factor", 1, 1.0, 1e6, &cfg->rope_factor);
    }
    if (!strcmp(ty, "llama3")) {
        cfg->rope_scaling = TK_ROPE_SCALING_LLAMA3;
        int64_t v;
        if ((s = hf_pos_float(rp, file, "factor", 1, 1.0, 1e6, &cfg->rope_factor)) != TK_OK) return s;
        if ((s = hf_pos_float(rp, file, "low_freq_factor", 1, 1.0, 1e6, &cfg->rope_low_freq_factor)) != TK_OK) return s;
        if ((s = hf_pos_float(rp, file, "high_freq_factor", 1, 1.0, 1e6, &cfg->rope_high_freq_factor)) != TK_OK) return s;
        if ((s = hf_int(rp, file, "original_max_position_embeddings", 1, 0, 1, INT32_MAX, &v)) != TK_OK) return s;
        cfg->rope_orig_max_seq = (int32_t)v;
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
            return tk_fail(TK_ERR_RANGE, "%s: %s high_freq_factor (%g) must exceed low_freq_factor (%g)",
                           file, field, cfg->rope_high_freq_factor, cfg->rope_low_freq_factor);
        return TK_OK;
    }
    return tk_fail(TK_ERR_UNSUPPORTED, "%s: unsupported %s type %.64s (supported: default, linear, llama3)", file, field, ty);
}

/* Non-null float field: 0 when null, def when absent. */
static tk_status hf_opt_float_def(const cJSON *o, const char *file, const char *key, float def, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = j ? 0.0f : def;
    if (!j || cJSON_IsNull(j)) return TK_OK;
    return hf_pos_float(o, file, key, 1, 0, 1e12, out);
}
/* Non-null float field: 0 when absent or null. */
static tk_status hf_opt_float(const cJSON *o, const char *file, const char *key, float *out) {
    return hf_opt_float_def(o, file, key, 0.0f, out);
}

/* attn_/final_logit_softcapping: read (with transformers' defaults) for families whose
 * modeling applies them; a set value elsewhere is refused (it would change the model). */
static tk_status hf_softcap(const cJSON *root, const char *file, const tk_arch *arch, tk_model_config *cfg) {
    static const char *const caps[] = {"attn_logit_softcapping", "final_logit_softcapping"};
    float *dst[] = {&cfg->attn_softcap, &cfg->final_softcap}, def[] = {arch->hf_attn_softcap, arch->hf_final_softcap};
    for (int i = 0; i < 2; i++) {
        tk_status s = hf_opt_float_def(root, file, caps[i], arch->softcap ? def[i] : 0.0f, dst[i]);
        if (s) return s;
        if (*dst[i] > 0 && !arch->softcap)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s = %g is not supported for %s", file, caps[i], (double)*dst[i], arch->name);
    }
    return TK_OK;
}

/* The family's block features (arch description) and the config fields that tune them:
 * Gemma's query scale, sliding window + layer pattern, local RoPE base (Gemma 3), logit
 * soft-capping; Phi-3's window; features takumi lacks (partial rotary, Qwen3's sliding
 * layers) are refused. */
static tk_status hf_block_features(const cJSON *root, const char *file, const tk_arch *arch, tk_model_config *cfg) {
    tk_status s;
    cfg->qk_norm = arch->qk_norm;
    cfg->sandwich_norm = arch->sandwich_norm;
    cfg->fused_qkv = arch->fused_qkv;
    cfg->fused_gate_up = arch->fused_gate_up;
    cfg->embed_scale = arch->embed_scale_sqrt ? sqrtf((float)cfg->dim) : 0.0f;
    float f;
    if ((s = hf_softcap(root, file, arch, cfg)) != TK_OK) return s;
    const cJSON *rpar = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if ((s = hf_opt_float(cJSON_IsObject(rpar) && cJSON_GetObjectItemCaseSensitive(rpar, "partial_rotary_factor") ? rpar : root,
                          file, "partial_rotary_factor", &f)) != TK_OK)
        return s;
    if (f > 0 && f != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "%s: partial_rotary_factor = %g (partial rotary embeddings) is not supported", file, (double)f);
    int64_t v;
    if (arch->gemma_config) {
        if ((s = hf_pos_float(root, file, "query_pre_attn_scalar", 0, 256, 1e12, &f)) != TK_OK) return s;
        cfg->attn_scale = 1.0f / sqrtf(f);
        if ((s = hf_int(root, file, "sliding_window", 0, 4096, 1, INT32_MAX, &v)) != TK_OK) return s;
        cfg->sliding_window = (int32_t)v;
        bool bidir;
        if ((s = hf_bool(root, file, "use_bidirectional_attention", false, &bidir)) != TK_OK) return s;
        if (bidir) return tk_fail(TK_ERR_UNSUPPORTED, "%s: use_bidirectional_attention = true is not supported", file);
        if ((s = hf_int(root, file, "sliding_window_pattern", 0, arch->swa_period, 1, 4096, &v)) != TK_OK) return s;
        cfg->swa_period = (int32_t)v;
        /* transformers 4: rope_local_base_freq; 5: rope_parameters.sliding_attention (read by hf_rope) */
        if (arch->rope_theta_local > 0 && !(cfg->rope_theta_local > 0) &&
            (s = hf_pos_float(root, file, "rope_local_base_freq", 0, arch->rope_theta_local, 1e12, &cfg->rope_theta_local)) != TK_OK)
            return s;
        const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
        if (lt && !cJSON_IsNull(lt)) {
            if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != cfg->n_layers)
                return tk_fail(TK_ERR_FORMAT, "%s: \"layer_types\" must list num_hidden_layers (%d) names", file, cfg->n_layers);
            /* the period that reproduces the list (takumi describes layers by a period) */
            int32_t period = 0, l = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, lt) {
                if (!cJSON_IsString(e)) return tk_fail(TK_ERR_FORMAT, "%s: layer_types[%d] is not a string", file, l);
                bool full = !strcmp(e->valuestring, "full_attention");
                if (!full && strcmp(e->valuestring, "sliding_attention"))
                    return tk_fail(TK_ERR_UNSUPPORTED, "%s: layer_types[%d] = %.32s", file, l, e->valuestring);
                if (full && !period) period = l + 1;
                l++;
            }
            cfg->swa_period = period ? period : cfg->n_layers + 1;
            l = 0;
            cJSON_ArrayForEach(e, lt) {
                if (tk_layer_sliding(cfg, l) != !strcmp(e->valuestring, "sliding_attention"))
                    return tk_fail(TK_ERR_UNSUPPORTED, "%s: layer_types do not repeat with one period", file);
                l++;
            }
        }
    } else if (arch == &tk_arch_phi3) {
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        if (sw && !cJSON_IsNull(sw)) {
            if ((s = hf_int(root, file, "sliding_window", 1, 0, 1, INT32_MAX, &v)) != TK_OK) return s;
            cfg->sliding_window = (int32_t)v;
            cfg->swa_period = 0;
        }
    } else if (arch == &tk_arch_qwen3) {
        bool use_sw;
        if ((s = hf_bool(root, file, "use_sliding_window", false, &use_sw)) != TK_OK) return s;
        if (use_sw) return tk_fail(TK_ERR_UNSUPPORTED, "%s: use_sliding_window = true is not supported for qwen3", file);
    }
    return TK_OK;
}

static int hf_cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* cJSON keeps duplicate keys and its lookups return the first, while Python's json keeps
 * the last: a config with duplicates means different things to the two, so reject it. */
static tk_status hf_no_duplicates(const cJSON *root, const char *file) {
    int n = cJSON_GetArraySize(root), i = 0;
    const char **keys = tk_malloc(((size_t)n + 1) * sizeof *keys);
    if (!keys) return TK_ERR_NOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) keys[i++] = e->string ? e->string : "";
    qsort(keys, (size_t)n, sizeof *keys, hf_cmp_key);
    for (i = 1; i < n; i++)
        if (!strcmp(keys[i - 1], keys[i])) {
            tk_status s = tk_fail(TK_ERR_FORMAT, "%s: key \"%.64s\" appears twice", file, keys[i]);
            free(keys);
            return s;
        }
    free(keys);
    return TK_OK;
}

static tk_status hf_parse_root(const cJSON *root, const char *file, tk_model_config *cfg, tk_hf_config_extra *ex) {
    if (!cJSON_IsObject(root)) return tk_fail(TK_ERR_FORMAT, "%s: not a JSON object", file);
    tk_status s0 = hf_no_duplicates(root, file);
    if (s0 != TK_OK) return s0;
    const tk_arch *arch = NULL;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (archs && !cJSON_IsNull(archs)) {
        if (!cJSON_IsArray(archs) || !cJSON_IsString(archs->child))
            return tk_fail(TK_ERR_FORMAT, "%s: \"architectures\" must be a list of names", file);
        const char *a = archs->child->valuestring;
        if (!(arch = tk_arch_by_hf(a, NULL)))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: unsupported architecture %.64s (supported: %s)", file, a, tk_arch_hf_list());
    } else if (cJSON_IsString(mt)) {
        const char *a = mt->valuestring;
        if (!(arch = tk_arch_by_hf(NULL, a)))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: unsupported model_type %.64s (supported: llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3)", file, a);
    } else {
        return tk_fail(TK_ERR_FORMAT, "%s: neither \"architectures\" nor \"model_type\" says what model this is", file);
    }
    snprintf(cfg->arch, sizeof cfg->arch, "%s", arch->name);
    bool gemma = arch->gemma_config, qwen2 = arch == &tk_arch_qwen2;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
    if (cJSON_IsString(nm)) snprintf(cfg->name, sizeof cfg->name, "%s", nm->valuestring);

    /* Gemma names its activation hidden_activation; transformers maps silu and swish to SiLU */
    const char *act_key = gemma ? "hidden_activation" : "hidden_act";
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, act_key);
    cfg->act = arch->act;
    if (act && !cJSON_IsNull(act)) {
        if (!cJSON_IsString(act))
            return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a string (got %s)", file, act_key, hf_json_type(act));
        const char *an = act->valuestring;
        if (!strcmp(an, "silu") || !strcmp(an, "swish")) cfg->act = TK_ACT_SILU;
        else if (!strcmp(an, "gelu_pytorch_tanh")) cfg->act = TK_ACT_GELU_TANH;
        else return tk_fail(TK_ERR_UNSUPPORTED, "%s: unsupported %s %.64s (silu, gelu_pytorch_tanh)", file, act_key, an);
    }

    /* The sizes have HF defaults (a 7B model), but a config that omits them cannot
     * describe the tensors beside it, so they are required here. */
    tk_status s;
    int64_t v, heads, hidden;
    if ((s = hf_int(root, file, "vocab_size", 1, 0, 1, 1 << 24, &v)) != TK_OK) return s;
    cfg->n_vocab = (int32_t)v;
    if ((s = hf_int(root, file, "hidden_size", 1, 0, 1, 1 << 20, &hidden)) != TK_OK) return s;
    cfg->dim = (int32_t)hidden;
    if ((s = hf_int(root, file, "num_hidden_layers", 1, 0, 1, 4096, &v)) != TK_OK) return s;
    cfg->n_layers = (int32_t)v;
    if ((s = hf_int(root, file, "num_attention_heads", 1, 0, 1, 1 << 14, &heads)) != TK_OK) return s;
    cfg->n_heads = (int32_t)heads;
    if ((s = hf_int(root, file, "intermediate_size", 1, 0, 1, 1 << 22, &v)) != TK_OK) return s;
    cfg->hidden_dim = (int32_t)v;
    /* num_key_value_heads defaults as in transformers (Llama: heads, Mistral 8, Qwen2 32, …) */
    int64_t kv_def = arch->hf_kv_heads ? arch->hf_kv_heads : heads;
    if ((s = hf_int(root, file, "num_key_value_heads", 0, kv_def, 1, 1 << 14, &v)) != TK_OK) return s;
    cfg->n_kv_heads = (int32_t)v;
    if (cfg->n_kv_heads > cfg->n_heads || cfg->n_heads % cfg->n_kv_heads)
        return tk_fail(TK_ERR_RANGE, "%s: num_key_value_heads (%d) must divide num_attention_heads (%d)",
                       file, cfg->n_kv_heads, cfg->n_heads);
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if (arch->hf_head_dim && (!hd || cJSON_IsNull(hd))) {
        cfg->head_dim = arch->hf_head_dim;
    } else if (hd && !cJSON_IsNull(hd)) {
        if ((s = hf_int(root, file, "head_dim", 1, 0, 1, 1 << 14, &v)) != TK_OK) return s;
        cfg->head_dim = (int32_t)v;
    } else {
        if (hidden % heads)
            return tk_fail(TK_ERR_RANGE, "%s: hidden_size (%lld) is not divisible by num_attention_heads (%lld) and no head_dim is given",
                           file, (long long)hidden, (long long)heads);
        cfg->head_dim = (int32_t)(hidden / heads);
    }
    if (cfg->head_dim % 2)
        return tk_fail(TK_ERR_RANGE, "%s: head_dim (%d) must be even for RoPE", file, cfg->head_dim);
    int64_t maxpos_def = arch->hf_max_pos;
    if ((s = hf_int(root, file, "max_position_embeddings", 0, maxpos_def, 1, INT32_MAX, &v)) != TK_OK) return s;
    cfg->max_seq = (int32_t)v;
    if ((s = hf_pos_float(root, file, "rms_norm_eps", 0, arch->hf_rms_eps, 1.0, &cfg->rms_eps)) != TK_OK) return s;
    if ((s = hf_rope(root, file, cfg)) != TK_OK) return s;
    if ((s = hf_block_features(root, file, arch, cfg)) != TK_OK) return s;
    cfg->rope_interleaved = 0; /* HF checkpoints store q/k for rotate_half */
    if ((s = hf_bool(root, file, "tie_word_embeddings", arch->hf_tied, &cfg->tied_embeddings)) != TK_OK) return s;

    bool attn_bias = false, mlp_bias = false;
    if (!qwen2) {
        if ((s = hf_bool(root, file, "attention_bias", false, &attn_bias)) != TK_OK) return s;
        if ((s = hf_bool(root, file, "mlp_bias", false, &mlp_bias)) != TK_OK) return s;
        if (mlp_bias)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: mlp_bias=true (biases on gate/up/down_proj) is not supported", file);
    }
    /* Qwen2 always has q/k/v biases and no o_proj bias; Llama's attention_bias covers all four */
    cfg->qkv_bias = qwen2 ? true : attn_bias;

    tk_hf_config_extra tmp;
    if (!ex) ex = &tmp;
    memset(ex, 0, sizeof *ex);
    ex->o_bias = !qwen2 && attn_bias;
    int32_t n;
    if ((s = hf_token_ids(root, file, "bos_token_id", &ex->bos_id, 1, &n)) != TK_OK) return s;
    if (!n) ex->bos_id = -1;
    if ((s = hf_token_ids(root, file, "eos_token_id", ex->eos_ids, 8, &ex->n_eos_ids)) != TK_OK) return s;
    ex->eos_id = ex->n_eos_ids ? ex->eos_ids[0] : -1;
    if (arch == &tk_arch_mistral) {
        if ((s = hf_int(root, file, "sliding_window", 0, 4096, 0, INT32_MAX, &v)) != TK_OK) return s;
        /* null means full attention (Mistral v0.2+) */
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        ex->sliding_window = sw && cJSON_IsNull(sw) ? 0 : (int32_t)v;
    } else if (qwen2) {
        bool use_sw;
        if ((s = hf_bool(root, file, "use_sliding_window", false, &use_sw)) != TK_OK) return s;
        if ((s = hf_int(root, file, "sliding_window", 0, 4096, 0, INT32_MAX, &v)) != TK_OK) return s;
        ex->sliding_window = use_sw ? (int32_t)v : 0;
    }
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    if (cJSON_IsString(td)) snprintf(ex->torch_dtype, sizeof ex->torch_dtype, "%s", td->valuestring);
    return TK_OK;
}

tk_status tk_hf_config_parse(const char *json, size_t len, const char *name, tk_model_config *cfg, tk_hf_config_extra *extra) {
    if (!cfg || (!json && len)) return tk_fail(TK_ERR_ARG, "tk_hf_config_parse: NULL argument");
    if (!name) name = "config.json";
    memset(cfg, 0, sizeof *cfg);
    if (extra) { memset(extra, 0, sizeof *extra); extra->bos_id = extra->eos_id = -1; }
    if (len > HF_MAX_CONFIG) return tk_fail(TK_ERR_FORMAT, "%s: %zu bytes is too large for a config.json", name, len);
    /* parse a NUL-terminated copy so cJSON never reads past len */
    char *copy = tk_strndup(json ? json : "", len);
    if (!copy) return TK_ERR_NOMEM;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 1);
    if (!root) {
        long at = end && end >= copy && end <= copy + len ? (long)(end - copy) : -1;
        free(copy);
        return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON (at byte %ld)", name, at);
    }
    free(copy);
    tk_status s = hf_parse_root(root, name, cfg, extra);
    cJSON_Delete(root);
    if (s != TK_OK) {
        memset(cfg, 0, sizeof *cfg);
        if (extra) { memset(extra, 0, sizeof *extra); extra->bos_id = extra->eos_id = -1; }
    }
    return s;
}

tk_status tk_hf_config_load(const char *path, tk_model_config *cfg, tk_hf_config_extra *extra) {
    if (!path || !cfg) return tk_fail(TK_ERR_ARG, "tk_hf_config_load: NULL argument");
    tk_buf p = {0};
    struct stat sb;
    tk_status s;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) s = tk_buf_printf(&p, "%s/config.json", path);
    else s = tk_buf_printf(&p, "%s", path);
    if (s != TK_OK) { tk_buf_free(&p); return s; }
    char *text = NULL;
    size_t len = 0;
    if ((s = tk_read_file(p.data, &text, &len)) != TK_OK) { tk_buf_free(&p); return s; }
    s = tk_hf_config_parse(text, len, p.data, cfg, extra);
    free(text);
    if (s == TK_OK && !cfg->name[0]) {
        /* the folder's name: dirname of the config file's path */
        char *d = tk_strdup(p.data);
        if (d) {
            char *dir = dirname(d);
            char *d2 = tk_strdup(dir);
            if (d2) { snprintf(cfg->name, sizeof cfg->name, "%s", basename(d2)); free(d2); }
            free(d);
        }
    }
    tk_buf_free(&p);
    return s;
}

/* ---------------------------------------------------------------- weight names */

static const struct { const char *key, *hf; } k_global[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
static const struct { const char *key, *hf; } k_layer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
#define HF_N(a) (sizeof(a) / sizeof((a)[0]))

const char *tk_hf_weight_name(char *buf, size_t n, const char *key, int layer) {
    if (!buf || !key || n == 0) return NULL;
    int w = -1;
    if (layer < 0) {
        for (size_t i = 0; i < HF_N(k_global); i++)
            if (!strcmp(key, k_global[i].key)) w = snprintf(buf, n, "%s", k_global[i].hf);
    } else {
        for (size_t i = 0; i < HF_N(k_layer); i++)
            if (!strcmp(key, k_layer[i].key)) w = snprintf(buf, n, "model.layers.%d.%s", layer, k_layer[i].hf);
    }
    return w >= 0 && (size_t)w < n ? buf : NULL;
}

tk_status tk_hf_weight_key(const char *hf_name, char *key, size_t n, int *layer) {
    if (!hf_name || !key || !n || !layer) return TK_ERR_ARG;
    const char *s = hf_name;
    if (!strcmp(s, "lm_head.weight")) { *layer = -1; return snprintf(key, n, "output.weight") < (int)n ? TK_OK : TK_ERR_ARG; }
    if (!strncmp(s, "model.", 6)) s += 6;
    if (!strncmp(s, "layers.", 7)) {
        s += 7;
        /* decimal layer index without sign or leading zeros */
        if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9')) return TK_ERR_NOT_FOUND;
        long l = 0;
        while (*s >= '0' && *s <= '9') {
            l = l * 10 + (*s++ - '0');
            if (l > 1000000) return TK_ERR_NOT_FOUND;
        }
        if (*s++ != '.') return TK_ERR_NOT_FOUND;
        for (size_t i = 0; i < HF_N(k_layer); i++)
            if (!strcmp(s, k_layer[i].hf)) {
                *layer = (int)l;
                return snprintf(key, n, "%s", k_layer[i].key) < (int)n ? TK_OK : TK_ERR_ARG;
            }
        return TK_ERR_NOT_FOUND;
    }
    for (size_t i = 0; i < HF_N(k_global); i++)
        if (!strncmp(k_global[i].hf, "model.", 6) && !strcmp(s, k_global[i].hf + 6)) {
            *layer = -1;
            return snprintf(key, n, "%s", k_global[i].key) < (int)n ? TK_OK : TK_ERR_ARG;
        }
    return TK_ERR_NOT_FOUND;
}

/* ---------------------------------------------------------------- q/k permutation */

void tk_permute_qk_rows_to_hf(void *dst, const void *src, int n_heads, int head_dim, size_t row_bytes) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        size_t base = (size_t)h * (size_t)head_dim;
        for (int j = 0; j < half; j++) {
            memcpy(d + (base + (size_t)j) * row_bytes, s + (base + 2 * (size_t)j) * row_bytes, row_bytes);
            memcpy(d + (base + (size_t)(half + j)) * row_bytes, s + (base + 2 * (size_t)j + 1) * row_bytes, row_bytes);
        }
    }
}

void tk_permute_qk_rows_from_hf(void *dst, const void *src, int n_heads, int head_dim, size_t row_bytes) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        size_t base = (size_t)h * (size_t)head_dim;
        for (int j = 0; j < half; j++) {
            memcpy(d + (base + 2 * (size_t)j) * row_bytes, s + (base + (size_t)j) * row_bytes, row_bytes);
            memcpy(d + (base + 2 * (size_t)j + 1) * row_bytes, s + (base + (size_t)(half + j)) * row_bytes, row_bytes);
        }
    }
}
