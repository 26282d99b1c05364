/* The training step: one forward with kept activations, the chunked LM head +
 * cross-entropy, and the backward down to the lowest trainable layer, accumulating
 * gradients into the trainable parameters only. The trainer (data, epochs, AdamW steps,
 * validation, checkpoints) drives it:
 *
 *   tk_train_ctx *tc; tk_train_ctx_new(model, &params, &tc);
 *   for each optimizer step s:
 *       tk_params_zero_grad(tk_train_param_set(tc));
 *       for each micro-batch k (gradient accumulation):
 *           tk_train_step_fwd_bwd(tc, &batch_k, target_k, weight_k, 1.0f / total_weight, &ls, &ws);
 *       tk_adamw_step(&opt, tk_train_param_set(tc), s, &grad_norm);
 *
 * Methods:
 *   TK_TRAIN_LORA  LoRA adapters (src/peft/lora.h); the base stays frozen in its stored
 *                  dtype (quantized too), with no gradient and no optimizer state.
 *   TK_TRAIN_FULL  every weight is copied to an f32 master parameter and the model's
 *                  weight refs are pointed at those copies (restored by tk_train_ctx_free).
 *   TK_TRAIN_HEAD  nothing of the model trains: only the objective's own parameters (a
 *                  classification head); the backward through the layers is skipped.
 * freeze_layers N: layers < N get no gradients and the backward stops above them. With
 * LoRA: adapters only on layers >= N. With full fine-tuning and N > 0: the embedding is
 * frozen too (it sits below layer 0), and so is a tied output head (it is the embedding);
 * an untied head, the final norm and layers >= N train.
 *
 * Targets are already shifted: target[t] is the token that should follow ids[t] (-1 = no
 * loss; the trainer sets it to -1 at the last token of each packed segment and on
 * padding). weight[t] (NULL = 1 where target >= 0) scales token t's loss (0 on prompts).
 *
 * Determinism: for a given thread count every sum runs in a fixed order, so a seed gives
 * a bit-identical run. Dropout masks depend on (seed, micro-step counter, layer, linear)
 * only; the counter is part of the state a checkpoint must save (tk_train_counter). */
#ifndef TK_TRAIN_STEP_H
#define TK_TRAIN_STEP_H
#include "takumi/model.h"
#include "train/optim.h"
#include "peft/lora.h"
#include "peft/registry.h"
#include "objective/objective.h"

/* DORA / IA3 / PREFIX / PROMPT: an adapter of the registry's "dora" / "ia3" / "prefix" / "prompt" kind on a frozen base
 * (DoRA with the lora config; IA3, PREFIX and PROMPT with peft_cfg, a tk_ia3_config / tk_prefix_config /
 * tk_prompt_config, NULL = the defaults). ADAPTER: the "adapter" kind (bottleneck adapters) with peft_cfg a
 * tk_bottleneck_config (NULL = the defaults). ADALORA: the "adalora" kind with peft_cfg a tk_adalora_config (NULL = PEFT's
 * defaults; its total_step must be the run's step count). HEAD: no adapter and no base weights: only the objective's own parameters
 * (a task head). */
typedef enum tk_train_method { TK_TRAIN_LORA = 0, TK_TRAIN_FULL, TK_TRAIN_DORA, TK_TRAIN_IA3, TK_TRAIN_PREFIX, TK_TRAIN_PROMPT,
                               TK_TRAIN_HEAD, TK_TRAIN_ADAPTER, TK_TRAIN_ADALORA } tk_train_method;

typedef struct tk_train_params {
    tk_train_method method;
    tk_lora_config lora;      /* used when method == TK_TRAIN_LORA (first_layer is set from freeze_layers) */
    const tk_peft_kind *peft_kind; /* another PEFT method to train instead of the method's default adapter (NULL =
                                      LoRA for TK_TRAIN_LORA, none for TK_TRAIN_FULL; with TK_TRAIN_FULL the base
                                      trains too); created with peft_cfg (the kind's config struct) */
    const void *peft_cfg;
    const tk_objective_ops *objective; /* the loss on the final hidden states (NULL = SFT, tk_objective_sft) */
    const void *objective_params;      /* its params struct (NULL = its defaults); an objective with parameters of
                                          its own (reward: the score head) adds them to the param set, seeded
                                          from lora.seed (objective.h: add_params) */
    int32_t freeze_layers;    /* layers [0, N) get no gradients; 0 = none */
    int32_t max_rows;         /* largest batch (rows) a step will see (default 1) */
    int32_t max_cols;         /* largest row length (tokens) (default 512) */
    bool recompute;           /* keep only layer inputs; recompute each layer's forward in the backward
                                 (bit-identical gradients; SmolLM2 LoRA at 1 x 512: activations 579 -> 111 MB,
                                 one more forward of the layers) */
    bool keep_att_probs;      /* keep attention probabilities [L x B x H x T x T] instead of recomputing
                                 them in the attention backward (more memory; ignored with recompute) */
} tk_train_params;

/* Defaults: LoRA (tk_lora_default_config), no freezing, 1 x 512, no recompute, no kept probabilities. */
tk_train_params tk_train_default_params(void);

typedef struct tk_train_ctx tk_train_ctx;

/* Creates the training context for m: workspaces for max_rows x max_cols, the trainable
 * parameters (LoRA: adapters applied by the context's workspace, not installed on m; full: f32 master copies with
 * m's weight refs pointed at them). m must outlive the context and must not be used by
 * another training context at the same time. Free with tk_train_ctx_free. */
tk_status tk_train_ctx_new(tk_model *m, const tk_train_params *p, tk_train_ctx **out);
/* Frees the context; restores m's original weight refs (full fine-tuning). Accepts NULL. */
void tk_train_ctx_free(tk_train_ctx *tc);

/* The trainable parameters (owned by the context): gradients, AdamW moments, names
 * (HF names: "model.layers.3.self_attn.q_proj.weight", "lm_head.weight", … for full
 * fine-tuning; PEFT keys for LoRA). */
tk_param_set *tk_train_param_set(tk_train_ctx *tc);
/* The LoRA adapter set (NULL unless method is LoRA). */
tk_lora *tk_train_lora(tk_train_ctx *tc);
tk_model *tk_train_model(tk_train_ctx *tc);
/* The adapters the context trains and applies in its forwards (*n of them; none for full
 * fine-tuning): give them to a session or forward workspace to see the model being trained. */
const tk_adapter_use *tk_train_adapters(const tk_train_ctx *tc, int *n);
const tk_train_params *tk_train_get_params(const tk_train_ctx *tc);
/* True when full fine-tuning parameters of q/k are in llama.cpp's permuted row order
 * (rope_interleaved models): an HF writer un-permutes them (src/model/hfconfig.h). */
bool tk_train_qk_permuted(const tk_train_ctx *tc);

/* One forward + backward of the SFT-style objective (targets and weights only; the default
 * SFT cross-entropy) on batch b (b->n_rows <= max_rows, b->n_cols <= max_cols).
 * Adds sum_t weight[t] * loss_t to *loss_sum and sum_t weight[t] to *weight_sum (over
 * tokens with target >= 0 and weight != 0; natural-log cross-entropy), and accumulates
 * (+=) into every trainable gradient d(grad_scale * sum_t weight[t] * loss_t)/dparam.
 * Gradient accumulation = several calls, then one optimizer step. Increments the
 * dropout counter. Nothing is allocated per call once buffers reached their size. */
tk_status tk_train_step_fwd_bwd(tk_train_ctx *tc, const tk_batch *b, const int32_t *target, const float *weight,
                                float grad_scale, double *loss_sum, double *weight_sum);

/* One forward + objective + backward for any objective (DPO, reward, distillation…): extra
 * holds the objective's inputs (targets, sequence ids, reference hidden states, teacher…);
 * the step fills T, C, h and head. *res receives (=) the objective's sums; the gradients of
 * grad_scale * res->loss_sum accumulate (+=) into the trainable parameters. Increments the
 * dropout counter. Not thread-safe per context. */
tk_status tk_train_step_objective(tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, float grad_scale,
                                  tk_obj_result *res);
/* The objective's loss and metrics on batch b without gradients: a forward in evaluation mode
 * (no dropout; the dropout counter is unchanged), then the objective with dh = NULL. extra as for
 * tk_train_step_objective; *res = its sums. Not thread-safe per context. */
tk_status tk_train_eval_objective(tk_train_ctx *tc, const tk_batch *b, const tk_obj_batch *extra, tk_obj_result *res);
/* Final hidden states [B*T x C] of the policy (the model as it is trained, adapters on) on batch b, in
 * evaluation mode (no dropout; the dropout counter is unchanged), and its head: GRPO's sampling-policy
 * log-probabilities. Valid until the next forward of the context. Not thread-safe per context. */
tk_status tk_train_policy_hidden(tk_train_ctx *tc, const tk_batch *b, const float **h, tk_lm_head *head);
/* The context's objective. */
const tk_objective_ops *tk_train_objective(const tk_train_ctx *tc);
/* Final hidden states [B*T x C] of the frozen reference on batch b (valid until the next call):
 * the same loaded base with the context's adapters off (LoRA and other methods) or, for full
 * fine-tuning, the weights as loaded (not the trained masters) — no second copy of the model.
 * Its head is tk_train_reference_head(tc). Not thread-safe per context. */
tk_status tk_train_reference_hidden(tk_train_ctx *tc, const tk_batch *b, const float **h);
tk_lm_head tk_train_reference_head(const tk_train_ctx *tc);

/* Evaluation sums (add several batches, then loss = loss_sum / weight_sum,
 * ppl = exp(loss), accuracy = n_correct / n_tokens). */
typedef struct tk_eval_sums {
    double loss_sum, weight_sum;  /* as tk_train_step_fwd_bwd */
    int64_t n_correct, n_tokens;  /* loss tokens (target >= 0, weight != 0), and those whose argmax logit (first
                                     index on ties) is the target; unweighted */
} tk_eval_sums;
/* Forward only (no dropout, no gradients), chunked LM head: adds this batch's sums to *acc. */
tk_status tk_train_eval(tk_train_ctx *tc, const tk_batch *b, const int32_t *target, const float *weight,
                        tk_eval_sums *acc);

/* Calls fn(ctx, l) in every later training backward as soon as layer l's parameter gradients are complete
 * (layers in descending order; none for layers below --freeze-layers), so that data-parallel training can
 * start summing them while the backward goes on. fn NULL: none. Not thread-safe per context. */
void tk_train_set_layer_done(tk_train_ctx *tc, tk_status (*fn)(void *ctx, int32_t layer), void *ctx);
/* Dropout counter (number of training forwards so far). Save it in checkpoints and set it
 * back on resume so that the masks continue exactly. */
uint64_t tk_train_counter(const tk_train_ctx *tc);
void tk_train_set_counter(tk_train_ctx *tc, uint64_t counter);

/* The adapter's regularizer (AdaLoRA's orthogonality penalty; 0 for methods without one): *loss = its value for
 * the current parameters; with grad, its gradient accumulated (+=) into the parameters' gradients. A training loop
 * calls it once per optimizer step, after the step's micro-batches, and adds *loss to the step's loss. Not thread-safe. */
tk_status tk_train_reg_loss(tk_train_ctx *tc, bool grad, double *loss);
/* After the optimizer update of step `step` (0-based), before the gradients are cleared: the adapter's per-step work
 * (AdaLoRA: importance and rank budget); grad_scale = tk_adamw_clip_scale of the step. No-op for other methods. Not
 * thread-safe. */
tk_status tk_train_after_update(tk_train_ctx *tc, int64_t step, float grad_scale);

/* The adapter's state besides its parameters that a checkpoint must hold (AdaLoRA's rank allocator), *n floats
 * owned by the adapter; NULL with *n = 0 for methods without one. Not thread-safe. */
float *tk_train_extra_state(tk_train_ctx *tc, int64_t *n);

/* Bytes held by the context: activations/workspaces and parameters with their
 * gradient and AdamW moments (excludes the base model's mapped weights). */
size_t tk_train_bytes(const tk_train_ctx *tc);

/* Timing of the last tk_train_step_fwd_bwd in seconds (forward, LM head + loss, backward; and, over
 * all three, the time in products (tk_matmul*, tk_sgemm) and in attention: backend.h tk_op_times). */
typedef struct tk_train_timing { double forward_s, head_s, backward_s, gemm_s, attention_s; } tk_train_timing;
tk_train_timing tk_train_last_timing(const tk_train_ctx *tc);
#endif
