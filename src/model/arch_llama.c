/* The Llama block (pre-norm RMSNorm, SiLU-gated MLP, separate q/k/v) and Mistral, which
 * llama.cpp stores as "llama". llama.cpp's converter permutes q/k rows for interleaved RoPE. */
#include "model/arch.h"

#define LLAMA_LINEARS \
    .lin_hf = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, \
    .lin_gguf = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

static const char *const k_llama_types[] = {"llama", NULL};
const tk_arch tk_arch_llama = {
    .name = "llama", .gguf = "llama", .hf_class = "LlamaForCausalLM", .hf_model_types = k_llama_types,
    .hf_kv_heads = 0, .hf_max_pos = 2048, .hf_rms_eps = 1e-6f, .gguf_qk_permuted = true, .act = TK_ACT_SILU,
    LLAMA_LINEARS,
};

static const char *const k_mistral_types[] = {"mistral", NULL};
const tk_arch tk_arch_mistral = {
    .name = "mistral", .gguf = "llama", .hf_class = "MistralForCausalLM", .hf_model_types = k_mistral_types,
    .hf_kv_heads = 8, .hf_max_pos = 4096 * 32, .hf_rms_eps = 1e-6f, .gguf_qk_permuted = true, .act = TK_ACT_SILU,
    LLAMA_LINEARS,
};
