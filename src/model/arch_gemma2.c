/* Gemma 2: Gemma 3's block without the q/k norms — sandwich norms, RMSNorm as x * (1 + w)
 * in HF, GELU-tanh-gated MLP, embeddings times sqrt(C), query scale
 * query_pre_attn_scalar^-1/2, sliding and global layers alternating (the second of each
 * pair global) with one RoPE base — plus logit soft-capping: attention scores and the LM
 * head's logits pass through c * tanh(x / c) (transformers' defaults: 50 and 30). Tied head. */
#include "model/arch.h"

static const char *const k_gemma2_types[] = {"gemma2", NULL};
const tk_arch tk_arch_gemma2 = {
    .name = "gemma2", .gguf = "gemma2", .hf_class = "Gemma2ForCausalLM", .hf_model_types = k_gemma2_types,
    .hf_kv_heads = 4, .hf_max_pos = 8192, .hf_rms_eps = 1e-6f, .hf_tied = true, .hf_head_dim = 256,
    .hf_norm_plus_one = true, .sandwich_norm = true, .act = TK_ACT_GELU_TANH, .embed_scale_sqrt = true, .swa_period = 2,
    .gemma_config = true, .softcap = true, .hf_attn_softcap = 50.0f, .hf_final_softcap = 30.0f,
    .gguf_wide_scale_layers = 46, .hf_names = tk_gemma_norm_names,
    .lin_hf = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    .lin_gguf = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
};
