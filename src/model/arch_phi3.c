/* Phi-3: the Llama block with fused weights — qkv_proj (q rows, then k, then v) and
 * gate_up_proj (gate rows, then up); GGUF attn_qkv and ffn_up (holding gate|up). LoRA
 * adapts the fused modules as PEFT does: one A/B per fused module. A sliding window,
 * when the config sets one, applies to every layer. */
#include "model/arch.h"

static const tk_arch_name k_phi3_names[] = {
    {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
    {"ffn_up.weight", "mlp.gate_up_proj.weight"},
    {NULL, NULL},
};
static const char *const k_phi3_types[] = {"phi3", NULL};
const tk_arch tk_arch_phi3 = {
    .name = "phi3", .gguf = "phi3", .hf_class = "Phi3ForCausalLM", .hf_model_types = k_phi3_types,
    .hf_kv_heads = 0, .hf_max_pos = 4096, .hf_rms_eps = 1e-5f, .fused_qkv = true, .fused_gate_up = true,
    .act = TK_ACT_SILU, .swa_period = 0, .hf_names = k_phi3_names,
    .lin_hf = {"qkv_proj", NULL, NULL, "o_proj", NULL, "gate_up_proj", "down_proj"},
    .lin_gguf = {"attn_qkv", NULL, NULL, "attn_output", NULL, "ffn_up", "ffn_down"},
};
