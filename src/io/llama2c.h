/* karpathy/llama2.c checkpoints (run.c's model .bin files), read-only. Internal API for
 * src/model.
 *
 * Formats (llama2.c export.py):
 *   v0 ("legacy"): 7 x int32 header {dim C, hidden_dim F, n_layers L, n_heads H, n_kv_heads KH,
 *      vocab_size V (negative: separate classifier at the end), seq_len}, then f32 arrays:
 *      token_embedding [V x C], rms_att [L x C], wq [L x H*D x C], wk [L x KH*D x C],
 *      wv [L x KH*D x C], wo [L x C x H*D], rms_ffn [L x C], w1 [L x F x C], w2 [L x C x F],
 *      w3 [L x F x C], rms_final [C], freq_cis_real [seq x D/2], freq_cis_imag [seq x D/2]
 *      (unused by run.c; tolerated when absent), then wcls [V x C] if untied.
 *   v1: uint32 magic 0x616b3432 ("ak42"), int32 version 1, the same 7 int32, uint8
 *      shared_classifier, zero padding to 256 bytes, then f32: rms_att [L x C],
 *      rms_ffn [L x C], rms_final [C], token_embedding, wq, wk, wv, wo, w1, w2, w3 (stacked
 *      per layer as above), then wcls if not shared.
 *   v2 (int8 groups, runq.c) is rejected as unsupported.
 * Weights are exposed as F32 views under llama.cpp GGUF tensor names, because llama2.c
 * and llama.cpp's Llama GGUFs share the Meta q/k row layout with interleaved RoPE:
 *   token_embd.weight {C, V}, output_norm.weight {C}, output.weight {C, V} (untied only),
 *   blk.N.attn_norm.weight {C}, blk.N.attn_q.weight {C, H*D}, blk.N.attn_k.weight {C, KH*D},
 *   blk.N.attn_v.weight {C, KH*D}, blk.N.attn_output.weight {H*D, C},
 *   blk.N.ffn_norm.weight {C}, blk.N.ffn_gate.weight {C, F} (w1), blk.N.ffn_down.weight
 *   {F, C} (w2), blk.N.ffn_up.weight {C, F} (w3)        (ne in ggml order).
 * The data pointers point into the read-only mapping (4-byte aligned for both formats). */
#ifndef TK_IO_LLAMA2C_H
#define TK_IO_LLAMA2C_H
#include "takumi/model.h"

typedef struct tk_llama2c tk_llama2c;

/* Maps path read-only and validates the header and the exact file size. The config gets
 * arch "llama", name = file name, rope_interleaved 1, rms_eps 1e-5, rope_theta 10000,
 * max_seq = seq_len, tied = (V > 0 in v0, shared_classifier in v1), no biases.
 * Errors name the file. Close with tk_llama2c_close. */
tk_status tk_llama2c_open(const char *path, tk_llama2c **out);
/* Same, over an image in memory (not copied; must outlive the handle); name is for messages. */
tk_status tk_llama2c_open_memory(const void *buf, size_t len, const char *name, tk_llama2c **out);
/* Releases the handle and its mapping; accepts NULL. */
void tk_llama2c_close(tk_llama2c *m);
/* The model's config (owned by the handle). */
const tk_model_config *tk_llama2c_config(const tk_llama2c *m);
/* File format version: 0 (legacy) or 1. */
int tk_llama2c_version(const tk_llama2c *m);
/* Tensor count, i-th tensor (global ones first, then per layer), lookup by GGUF-style name (NULL if absent). */
int64_t tk_llama2c_n_tensors(const tk_llama2c *m);
const tk_tensor_ref *tk_llama2c_tensor(const tk_llama2c *m, int64_t i);
const tk_tensor_ref *tk_llama2c_find(const tk_llama2c *m, const char *name);

#endif
