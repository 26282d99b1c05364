/* Rotary position embeddings. Frequencies follow Hugging Face's float32 arithmetic
 * (inv_freq = 1 / theta^(2i/D), angle = float(pos * inv_freq)), including the Llama-3
 * scaling of _compute_llama3_parameters and linear scaling, so logits match the
 * reference implementations closely. Two layouts: interleaved pairs (2i, 2i+1), as in
 * Meta/llama2.c/llama.cpp GGUF Llamas, and halves (i, i + D/2), as in HF/NeoX. */
#include "ops/ops.h"
#include "takumi/model.h"
#include "core/core.h"
#include <math.h>

/* inv_freq for frequency i (float32 steps as in HF). */
static float rope_inv_freq(const tk_model_config *cfg, int64_t i, int64_t D) {
    float inv = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)D);
    if (cfg->rope_scaling == TK_ROPE_SCALING_LINEAR) return inv / cfg->rope_factor;
    if (cfg->rope_scaling != TK_ROPE_SCALING_LLAMA3) return inv;
    float factor = cfg->rope_factor, lo = cfg->rope_low_freq_factor, hi = cfg->rope_high_freq_factor;
    double old_ctx = cfg->rope_orig_max_seq;
    double low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
    float wavelen = (float)(2.0 * M_PI) / inv;
    float inv_l = wavelen > (float)low_freq_wavelen ? inv / factor : inv;
    float smooth = ((float)old_ctx / wavelen - lo) / (hi - lo);
    float smoothed = (1.0f - smooth) * inv_l / factor + smooth * inv_l;
    bool medium = !(wavelen < (float)high_freq_wavelen) && !(wavelen > (float)low_freq_wavelen);
    return medium ? smoothed : inv_l;
}

tk_status tk_rope_init(tk_rope *r, const tk_model_config *cfg, int64_t n_pos) {
    memset(r, 0, sizeof *r);
    int64_t D = cfg->head_dim;
    if (D <= 0 || D % 2) return tk_fail(TK_ERR_ARG, "rope: head_dim %lld must be even and positive", (long long)D);
    if (!(cfg->rope_theta > 0)) return tk_fail(TK_ERR_ARG, "rope: rope_theta %g must be positive", (double)cfg->rope_theta);
    if (n_pos < 0) return tk_fail(TK_ERR_ARG, "rope: negative n_pos");
    if (cfg->rope_scaling == TK_ROPE_SCALING_LINEAR && !(cfg->rope_factor > 0))
        return tk_fail(TK_ERR_ARG, "rope: linear scaling factor %g must be positive", (double)cfg->rope_factor);
    if (cfg->rope_scaling == TK_ROPE_SCALING_LLAMA3 &&
        !(cfg->rope_factor > 0 && cfg->rope_low_freq_factor > 0 && cfg->rope_high_freq_factor > cfg->rope_low_freq_factor &&
          cfg->rope_orig_max_seq > 0))
        return tk_fail(TK_ERR_ARG, "rope: llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor "
                                   "and original_max_position_embeddings > 0");
    int64_t half = D / 2;
    size_t n;
    if (!tk_mul_ok((size_t)(n_pos ? n_pos : 1), (size_t)half * sizeof(float), &n)) return tk_fail(TK_ERR_NOMEM, "rope: table size overflows");
    float *inv = r->inv_freq = tk_malloc((size_t)half * sizeof(float));
    r->cos = tk_malloc(n);
    r->sin = tk_malloc(n);
    if (!inv || !r->cos || !r->sin) { tk_rope_free(r); return TK_ERR_NOMEM; }
    for (int64_t i = 0; i < half; i++) inv[i] = rope_inv_freq(cfg, i, D);
    for (int64_t p = 0; p < n_pos; p++)
        for (int64_t i = 0; i < half; i++) {
            float a = (float)p * inv[i];
            r->cos[p * half + i] = (float)cos((double)a);
            r->sin[p * half + i] = (float)sin((double)a);
        }
    r->n_pos = n_pos;
    r->half = half;
    r->interleaved = cfg->rope_interleaved ? 1 : 0;
    return TK_OK;
}

void tk_rope_free(tk_rope *r) {
    free(r->cos);
    free(r->sin);
    free(r->inv_freq);
    r->cos = r->sin = r->inv_freq = NULL;
    r->n_pos = 0;
}
