/* Gemma 3 (text): sandwich norms (pre + post around attention and MLP), RMSNorm as
 * x * (1 + w) in HF (llama.cpp's converter stores 1 + w), q/k RMSNorm per head,
 * GELU-tanh-gated MLP, embeddings times sqrt(C), query scale query_pre_attn_scalar^-1/2,
 * sliding-window attention on all layers but every 6th, whose RoPE base is
 * rope_local_base_freq (10000) while global layers use rope_theta and its scaling. Tied head. */
#include "model/arch.h"

const tk_arch_name tk_gemma_norm_names[] = {
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
    {NULL, NULL},
};
static const char *const k_gemma3_types[] = {"gemma3_text", NULL};
const tk_arch tk_arch_gemma3 = {
    .name = "gemma3", .gguf = "gemma3", .hf_class = "Gemma3ForCausalLM", .hf_model_types = k_gemma3_types,
    .hf_kv_heads = 4, .hf_max_pos = 131072, .hf_rms_eps = 1e-6f, .hf_tied = true, .hf_head_dim = 256,
    .hf_norm_plus_one = true, .qk_norm = true, .sandwich_norm = true, .act = TK_ACT_GELU_TANH,
    .embed_scale_sqrt = true, .swa_period = 6, .rope_theta_local = 10000.0f, .gemma_config = true, .softcap = true,
    .gguf_wide_scale_layers = 62, .hf_names = tk_gemma_norm_names,
    .lin_hf = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    .lin_gguf = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
};
