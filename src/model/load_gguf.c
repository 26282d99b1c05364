/* GGUF model loader: <arch>.* metadata -> tk_model_config, llama.cpp tensor names ->
 * the weight map (views into the mapped file; quantized weights stay quantized).
 * Rope convention: llama.cpp's Llama converter permutes q/k rows into Meta's layout,
 * so arch "llama" (Llama 2/3, Mistral, TinyLlama, SmolLM2) rotates interleaved pairs;
 * "qwen2" is stored in HF order and rotates halves (llama.cpp's NEOX mode). Llama-3.1
 * RoPE scaling arrives as a rope_freqs.weight tensor and is turned back into parameters. */
#include "model/llama.h"
#include "model/arch.h"
#include "core/core.h"
#include <stdio.h>
#include <math.h>

static const tk_tensor_ref *gguf_find(void *ctx, const char *name, char *fname, size_t n) {
    (void)fname; (void)n; /* same names */
    return tk_gguf_find_tensor(ctx, name);
}

/* Integer metadata <arch>.<key>: required unless def >= 0 (the default when absent). */
static tk_status get_int(const tk_gguf *g, const char *arch, const char *key, int64_t def, int32_t *out) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    int64_t v;
    if (!tk_gguf_get_i64(g, k, &v)) {
        if (tk_gguf_find_key(g, k) >= 0)
            return tk_fail(TK_ERR_FORMAT, "%s: metadata '%s' is not an integer", tk_gguf_path(g), k);
        if (def < 0) return tk_fail(TK_ERR_NOT_FOUND, "%s: missing metadata '%s'", tk_gguf_path(g), k);
        v = def;
    }
    if (v < 0 || v > INT32_MAX) return tk_fail(TK_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range", tk_gguf_path(g), k, (long long)v);
    *out = (int32_t)v;
    return TK_OK;
}

static tk_status get_float(const tk_gguf *g, const char *arch, const char *key, double def, bool required, float *out) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    double v;
    if (!tk_gguf_get_f64(g, k, &v)) {
        if (tk_gguf_find_key(g, k) >= 0)
            return tk_fail(TK_ERR_FORMAT, "%s: metadata '%s' is not a number", tk_gguf_path(g), k);
        if (required) return tk_fail(TK_ERR_NOT_FOUND, "%s: missing metadata '%s'", tk_gguf_path(g), k);
        v = def;
    }
    *out = (float)v;
    return TK_OK;
}

/* Llama-3.1-style RoPE scaling in a GGUF: llama.cpp's converter stores per-frequency
 * divisors f_i (rope_freqs.weight, D/2 values) computed from (factor, low_freq_factor,
 * high_freq_factor, original context) instead of the parameters. The parameters are
 * recovered here: factor = max f_i; the smoothed frequencies (1 < f_i < factor) satisfy
 * s_i = (1/f_i - 1/factor) / (1 - 1/factor) = (orig/wavelen_i - low) / (high - low), a
 * line in orig/wavelen_i whose fit gives low and high (only low/orig and high/orig matter,
 * so orig is taken from the metadata or 8192). With fewer than two smoothed frequencies
 * any low/high that classify the model's own frequencies the same way are equivalent,
 * and one between the groups is chosen (likewise max f_i understates the factor when no
 * frequency reaches it). The result is verified against every f_i — the divisors are all
 * RoPE uses, so parameters that reproduce them are equivalent. */
static double llama3_divisor(double inv, double factor, double lo, double hi, double orig) {
    double wavelen = 2.0 * M_PI / inv;
    if (wavelen < orig / hi) return 1.0;
    if (wavelen > orig / lo) return factor;
    double s = (orig / wavelen - lo) / (hi - lo);
    return 1.0 / ((1.0 - s) / factor + s);
}

static tk_status llama3_from_rope_freqs(const tk_gguf *g, const char *arch, const tk_tensor_ref *rf, tk_model_config *cfg) {
    const char *path = tk_gguf_path(g);
    int64_t half = cfg->head_dim / 2;
    if (cfg->head_dim <= 0 || rf->ne[0] != half || tk_tensor_nelems(rf) != half || (rf->dtype != TK_F32 && rf->dtype != TK_F16))
        return tk_fail(TK_ERR_FORMAT, "%s: rope_freqs.weight must hold head_dim/2 = %lld f32 values", path, (long long)half);
    if (cfg->rope_scaling != TK_ROPE_SCALING_NONE)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: rope_freqs.weight together with rope.scaling.type is not supported", path);
    double f[4096], u[4096], F = 1.0, orig = 8192;
    float tmp[4096];
    if (half > 4096) return tk_fail(TK_ERR_UNSUPPORTED, "%s: head_dim %d too large for rope_freqs", path, cfg->head_dim);
    tk_status st = tk_dequantize(rf->dtype, rf->data, tmp, half);
    if (st) return st;
    float o;
    if (!get_float(g, arch, "rope.scaling.original_context_length", 0, false, &o) && o > 0) orig = o;
    for (int64_t i = 0; i < half; i++) {
        f[i] = tmp[i];
        if (!(f[i] >= 1.0 - 1e-6 && f[i] < 1e6)) return tk_fail(TK_ERR_FORMAT, "%s: rope_freqs.weight[%lld] = %g is not a divisor >= 1", path, (long long)i, f[i]);
        double inv = pow((double)cfg->rope_theta, -2.0 * (double)i / (double)cfg->head_dim);
        u[i] = orig / (2.0 * M_PI / inv); /* orig / wavelen */
        if (f[i] > F) F = f[i];
    }
    if (F <= 1.0 + 1e-6) return TK_OK; /* all ones: no scaling */
    /* classify: 1 (u above high), F (u below low), smoothed in between */
    double max_f = -1, min_1 = INFINITY, su = 0, ss = 0, suu = 0, sus = 0;
    int ns = 0;
    for (int64_t i = 0; i < half; i++) {
        if (f[i] <= 1.0 + 1e-5) min_1 = fmin(min_1, u[i]);
        else if (f[i] >= F * (1 - 1e-5)) max_f = fmax(max_f, u[i]);
        else {
            double s = (1.0 / f[i] - 1.0 / F) / (1.0 - 1.0 / F);
            su += u[i]; ss += s; suu += u[i] * u[i]; sus += u[i] * s; ns++;
        }
    }
    double lo, hi;
    if (ns >= 2) {
        double a = (ns * sus - su * ss) / (ns * suu - su * su), b = (ss - a * su) / ns;
        if (!(a > 0)) return tk_fail(TK_ERR_UNSUPPORTED, "%s: rope_freqs.weight does not follow Llama-3 scaling", path);
        lo = -b / a;
        hi = lo + 1.0 / a;
    } else {
        /* the gap between the two groups (either may be empty) */
        double a = max_f >= 0 ? max_f : 0, b = isfinite(min_1) ? min_1 : a * 4 + 1;
        if (ns == 1) {
            double u1 = su, s1 = ss, w = INFINITY;
            if (s1 > 0) w = fmin(w, (u1 - a) / s1);
            if (s1 < 1) w = fmin(w, (b - u1) / (1 - s1));
            w *= 0.5;
            lo = u1 - s1 * w;
            hi = u1 + (1 - s1) * w;
        } else {
            lo = a + (b - a) / 3;
            hi = a + 2 * (b - a) / 3;
        }
    }
    if (!(lo > 0 && hi > lo))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: rope_freqs.weight does not follow Llama-3 scaling", path);
    for (int64_t i = 0; i < half; i++) {
        double inv = pow((double)cfg->rope_theta, -2.0 * (double)i / (double)cfg->head_dim);
        double d = llama3_divisor(inv, F, lo, hi, orig);
        if (fabs(d - f[i]) > 1e-4 * f[i])
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: rope_freqs.weight[%lld] = %g does not follow Llama-3 scaling (fit gives %g)",
                           path, (long long)i, f[i], d);
    }
    cfg->rope_scaling = TK_ROPE_SCALING_LLAMA3;
    cfg->rope_factor = (float)F;
    cfg->rope_low_freq_factor = (float)lo;
    cfg->rope_high_freq_factor = (float)hi;
    cfg->rope_orig_max_seq = (int32_t)orig;
    return TK_OK;
}

/* The family's block features and the metadata that tunes them (window, logit
 * soft-capping). llama.cpp keeps some Gemma constants in code rather than in the file:
 * the global layer period (Gemma 2: every 2nd, Gemma 3: every 6th), Gemma 3's local RoPE
 * base 10000, query scale 1/sqrt(head size) except the 27B models (Gemma 2: 46 layers,
 * Gemma 3: 62: 1/sqrt(C/H), their query_pre_attn_scalar). */
static tk_status gguf_block_features(const tk_gguf *g, const char *arch, const tk_arch *desc, tk_model_config *cfg) {
    const char *path = tk_gguf_path(g);
    cfg->qk_norm = desc->qk_norm;
    cfg->sandwich_norm = desc->sandwich_norm;
    cfg->fused_qkv = desc->fused_qkv;
    cfg->fused_gate_up = desc->fused_gate_up;
    cfg->act = desc->act;
    cfg->embed_scale = desc->embed_scale_sqrt ? sqrtf((float)cfg->dim) : 0.0f;
    cfg->rope_theta_local = desc->rope_theta_local;
    cfg->swa_period = desc->swa_period;
    tk_status st;
    if (desc->gemma_config || desc == &tk_arch_phi3) {
        if ((st = get_int(g, arch, "attention.sliding_window", 0, &cfg->sliding_window))) return st;
    }
    if (desc->gguf_wide_scale_layers && cfg->n_layers == desc->gguf_wide_scale_layers)
        cfg->attn_scale = 1.0f / sqrtf((float)cfg->dim / (float)cfg->n_heads);
    static const char *const caps[] = {"attn_logit_softcapping", "final_logit_softcapping"};
    float *dst[] = {&cfg->attn_softcap, &cfg->final_softcap};
    for (int i = 0; i < 2; i++) {
        if ((st = get_float(g, arch, caps[i], 0.0, false, dst[i]))) return st;
        if (!(*dst[i] >= 0) || !isfinite(*dst[i]))
            return tk_fail(TK_ERR_RANGE, "%s: %s.%s = %g must be a finite value >= 0", path, arch, caps[i], (double)*dst[i]);
        if (*dst[i] > 0 && !desc->softcap)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s.%s = %g is not supported for %s", path, arch, caps[i], (double)*dst[i], arch);
    }
    if (tk_gguf_find_tensor(g, "rope_factors_long.weight") || tk_gguf_find_tensor(g, "rope_factors_short.weight"))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: LongRoPE factors (rope_factors_long/short) are not supported", path);
    return TK_OK;
}

/* Fills cfg from the metadata of an open GGUF (no tensor checks). */
static tk_status gguf_config(const tk_gguf *g, tk_model_config *cfg) {
    const char *path = tk_gguf_path(g);
    const char *arch;
    size_t alen;
    if (!tk_gguf_get_str(g, "general.architecture", &arch, &alen))
        return tk_fail(TK_ERR_NOT_FOUND, "%s: missing metadata 'general.architecture'", path);
    const tk_arch *desc = tk_arch_by_gguf(arch);
    if (!desc)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: unsupported architecture '%s' (takumi runs %s)", path, arch, tk_arch_list());
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", arch);
    const char *name;
    size_t nlen;
    if (tk_gguf_get_str(g, "general.name", &name, &nlen)) snprintf(cfg->name, sizeof cfg->name, "%s", name);
    tk_status st;
    if ((st = get_int(g, arch, "embedding_length", -1, &cfg->dim)) ||
        (st = get_int(g, arch, "block_count", -1, &cfg->n_layers)) ||
        (st = get_int(g, arch, "attention.head_count", -1, &cfg->n_heads)) ||
        (st = get_int(g, arch, "attention.head_count_kv", cfg->n_heads, &cfg->n_kv_heads)) ||
        (st = get_int(g, arch, "feed_forward_length", -1, &cfg->hidden_dim)) ||
        (st = get_int(g, arch, "context_length", -1, &cfg->max_seq)))
        return st;
    if (cfg->n_heads <= 0) return tk_fail(TK_ERR_FORMAT, "%s: %s.attention.head_count must be positive", path, arch);
    int32_t def_hd = cfg->dim / cfg->n_heads, rope_dim;
    if ((st = get_int(g, arch, "attention.key_length", def_hd, &cfg->head_dim)) ||
        (st = get_int(g, arch, "rope.dimension_count", cfg->head_dim, &rope_dim)))
        return st;
    if (rope_dim != cfg->head_dim)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s.rope.dimension_count = %d differs from the head size %d "
                       "(partial rotary embeddings are not supported)", path, arch, rope_dim, cfg->head_dim);
    /* Vocabulary: <arch>.vocab_size, else the token list, else the embedding rows (checked later). */
    int64_t nv = 0;
    tk_gguf_type et;
    char k[160];
    snprintf(k, sizeof k, "%s.vocab_size", arch);
    if (!tk_gguf_get_i64(g, k, &nv)) {
        if (!tk_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nv)) {
            const tk_tensor_ref *e = tk_gguf_find_tensor(g, "token_embd.weight");
            nv = e ? e->ne[1] : 0;
        }
    }
    if (nv <= 0 || nv > INT32_MAX) return tk_fail(TK_ERR_FORMAT, "%s: cannot determine the vocabulary size", path);
    cfg->n_vocab = (int32_t)nv;
    if ((st = get_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5, true, &cfg->rms_eps)) ||
        (st = get_float(g, arch, "rope.freq_base", 10000.0, false, &cfg->rope_theta)))
        return st;
    /* RoPE scaling: llama.cpp writes rope.scaling.type "linear" / "yarn" + factor. Llama 3.1's
     * frequency scaling is stored as a rope_freqs.weight tensor instead, handled below. */
    const char *stype;
    size_t slen;
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (tk_gguf_get_str(g, k, &stype, &slen) && strcmp(stype, "none") != 0) {
        if (strcmp(stype, "linear") != 0)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: rope scaling type '%s' is not supported (linear, llama3)", path, stype);
        cfg->rope_scaling = TK_ROPE_SCALING_LINEAR;
        if ((st = get_float(g, arch, "rope.scaling.factor", 1.0, true, &cfg->rope_factor))) return st;
    } else {
        float f = 0;
        if ((st = get_float(g, arch, "rope.scale_linear", 0.0, false, &f))) return st;
        if (f > 0 && f != 1.0f) { cfg->rope_scaling = TK_ROPE_SCALING_LINEAR; cfg->rope_factor = f; }
    }
    const tk_tensor_ref *rf = tk_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf && (st = llama3_from_rope_freqs(g, arch, rf, cfg))) return st;
    cfg->rope_interleaved = desc->gguf_qk_permuted ? 1 : 0;
    cfg->qkv_bias = desc->qkv_bias;
    return gguf_block_features(g, arch, desc, cfg);
}

tk_status tk_load_gguf(tk_model *m, const char *path, const tk_model_params *p) {
    tk_status st = tk_gguf_open(path, &m->gguf);
    if (st) return st;
    if ((st = gguf_config(m->gguf, &m->cfg))) return st;
    if (p->n_ctx > 0) m->cfg.max_seq = p->n_ctx;
    if ((st = tk_weights_bind(m, gguf_find, m->gguf, path, true))) return st;
    for (int64_t i = 0; i < tk_gguf_n_tensors(m->gguf); i++)   /* no tensors beyond the block count */
        if ((st = tk_weights_check_layer(tk_gguf_tensor(m->gguf, i)->name, "blk.", m->cfg.n_layers, path))) return st;
    if (p->tokenizer == TK_TOKENIZER_NONE || p->tokenizer_path) return TK_OK;
    st = tk_tokenizer_from_gguf(m->gguf, &m->tok);
    if (st && p->tokenizer == TK_TOKENIZER_IF_PRESENT && tk_gguf_find_key(m->gguf, "tokenizer.ggml.model") < 0) {
        tk_clear_error();
        return TK_OK;
    }
    return st ? tk_fail_ctx(st, "%s: tokenizer", path) : TK_OK;
}
