/* Qwen2 (q/k/v biases) and Qwen3 (no biases; RMSNorm per q/k head before RoPE, explicit
 * head_dim). Both are stored in HF row order in GGUF (rotate-half RoPE). */
#include "model/arch.h"

#define QWEN_LINEARS \
    .lin_hf = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, \
    .lin_gguf = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

static const char *const k_qwen2_types[] = {"qwen2", NULL};
const tk_arch tk_arch_qwen2 = {
    .name = "qwen2", .gguf = "qwen2", .hf_class = "Qwen2ForCausalLM", .hf_model_types = k_qwen2_types,
    .hf_kv_heads = 32, .hf_max_pos = 32768, .hf_rms_eps = 1e-6f, .qkv_bias = true, .act = TK_ACT_SILU,
    QWEN_LINEARS,
};

static const char *const k_qwen3_types[] = {"qwen3", NULL};
const tk_arch tk_arch_qwen3 = {
    .name = "qwen3", .gguf = "qwen3", .hf_class = "Qwen3ForCausalLM", .hf_model_types = k_qwen3_types,
    .hf_kv_heads = 32, .hf_max_pos = 32768, .hf_rms_eps = 1e-6f, .hf_head_dim = 128, .qk_norm = true,
    .act = TK_ACT_SILU, QWEN_LINEARS,
};
