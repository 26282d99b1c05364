/* The trainer's options as one declarative table (see trainer.h): each row names an
 * option, its value kind, its default (as shown by --help), its range, its help text,
 * whether a resume must match it, and the tk_trainer_config field it fills. Parsing
 * (tk_trainer_config_set), the --help listing (tk_trainer_options), RUN/config.json (written
 * by tk_trainer_config_json, read back by tk_trainer_config_apply_json, options_json.c) and the
 * resume check (tk_trainer_config_diff) all walk this table: a new option is one row (plus its field). */
#include "train/trainer.h"
#include "train/run.h"
#include "core/core.h"
#include "objective/distill.h"
#include "objective/dpo.h"
#include "objective/grpo.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#define F(field) offsetof(tk_trainer_config, field)

static const char *lora_init_name(int i) {
    static const char *const names[] = {"kaiming", "gaussian", "pissa", "olora"}; /* tk_lora_init order */
    return i >= 0 && i < 4 ? names[i] : NULL;
}

static const char *method_name(int i) {
    static const char *const names[] = {"lora", "full", "dora", "ia3", "prefix", "prompt", "head", "adapter", "adalora"}; /* tk_train_method order */
    return i >= 0 && i < 9 ? names[i] : NULL;
}
static const char *adapter_placement_name(int i) { return i == 0 ? "pfeiffer" : i == 1 ? "houlsby" : NULL; }
static const char *adapter_act_name(int i) {
    static const char *const names[] = {"auto", "relu", "swish", "gelu"}; /* 0 auto, then 1 + tk_bn_act */
    return i >= 0 && i < 4 ? names[i] : NULL;
}
static const char *quantize_base_name(int i) {
    static const char *const names[] = {"none", "q8_0", "q4_k", "nf4"}; /* tk_quantize_base_dtype order */
    return i >= 0 && i < 4 ? names[i] : NULL;
}
static const char *precision_name(int i) {
    static const char *const names[] = {"auto", "fp32", "bf16"}; /* tk_train_precision order */
    return i >= 0 && i < 3 ? names[i] : NULL;
}
static const char *prompt_init_name(int i) { return i == 0 ? "random" : i == 1 ? "text" : NULL; }
static const char *sched_name_i(int i) {
    return i == TK_SCHED_CONSTANT ? "constant" : i == TK_SCHED_LINEAR ? "linear" : i == TK_SCHED_COSINE ? "cosine" : NULL;
}
static const char *format_name(int i) { return i >= 0 && i < TK_DATA_FORMAT_COUNT ? tk_data_format_name((tk_data_format)i) : NULL; }
static int format_parse(const char *v) { tk_data_format f = tk_data_format_from_name(v); return f == TK_DATA_FORMAT_COUNT ? -1 : (int)f; }

static const char *task_name(int i) {
    static const char *const names[] = {"lm", "classify", "regress"};
    return i >= 0 && i < 3 ? names[i] : NULL;
}
static const char *pooling_name(int i) {
    static const char *const names[] = {"last", "mean"}; /* tk_pooling order */
    return i >= 0 && i < 2 ? names[i] : NULL;
}

static const char *objective_name(int i) {
    static const char *const names[] = {"sft", "dpo", "orpo", "simpo", "kto", "reward", "distill", "grpo", "self"};
    return i >= 0 && i < 9 ? names[i] : NULL;
}

static const char *scale_rewards_name(int i) {
    static const char *const names[] = {"group", "batch", "none"};   /* tk_grpo_scale order */
    return i >= 0 && i < 3 ? names[i] : NULL;
}

static const char *self_train_name(int i) {
    static const char *const names[] = {"sft", "dpo"};
    return i >= 0 && i < 2 ? names[i] : NULL;
}

static tk_status check_loss(const char *name, const char *v) {
    if (tk_dpo_loss_from_name(v) == TK_DPO_LOSS_COUNT && tk_grpo_loss_parse(v) < 0)
        return tk_fail(TK_ERR_ARG, "--%s: unknown loss type '%s' (dpo: sigmoid, ipo, hinge, robust; grpo: dapo, grpo, bnpo, dr_grpo)", name, v);
    return TK_OK;
}

static tk_status check_distill_loss(const char *name, const char *v) {
    if (tk_distill_kind_from_name(v) < 0 || !strcmp(v, "cross_entropy"))
        return tk_fail(TK_ERR_ARG, "--%s: unknown distillation loss '%s' (choose from forward_kl, reverse_kl, jsd)", name, v);
    return TK_OK;
}

static tk_status check_augment(const char *name, const char *v) {
    (void)name;
    int n;
    return tk_run_augment_parse(v, &n);
}

static tk_status check_template(const char *name, const char *v) {
    if (tk_chat_family_from_name(v) == TK_CHAT_UNKNOWN)
        return tk_fail(TK_ERR_ARG, "--%s: unknown family '%s' (choose from %s)", name, v, tk_chat_family_names());
    return TK_OK;
}

static const tk_trainer_option k_opts[] = {
    {"model", "PATH", "$TAKUMI_MODEL or models/SmolLM2-135M-Instruct.Q4_1.gguf",
     "base model: GGUF file, HF folder (config.json + safetensors) or llama2.c checkpoint", .type = TK_OPT_STR, .offset = F(model), .is_path = true},
    {"tokenizer", "PATH", "the model's", "tokenizer file to use instead of the model's own (llama2.c tokenizer.bin, tokenizer.json, .gguf)",
     .type = TK_OPT_STR, .offset = F(tokenizer), .is_path = true},
    {"data", "FILE", "(required)", "training data: JSONL/JSON in OpenAI chat, prompt/completion, Alpaca, ShareGPT or text format",
     .type = TK_OPT_STR, .offset = F(data), .is_path = true},
    {"format", "NAME", "auto", "data format: auto, chat, prompt_completion, alpaca, sharegpt, text", .type = TK_OPT_ENUM, .offset = F(format),
     .resume = true, .n_values = TK_DATA_FORMAT_COUNT, .value_name = format_name, .value_parse = format_parse, .init = "auto"},
    {"template", "NAME", "auto", "chat template family (default: recognised from the model)", .type = TK_OPT_STR, .offset = F(template_name),
     .resume = true, .is_auto = true, .check = check_template},
    {"out", "DIR", "(required)", "run folder: config.json, metrics.jsonl, checkpoints/, adapter/, samples.json, report.html",
     .type = TK_OPT_STR, .offset = F(out)},
    {"method", "lora|full|dora|ia3|prefix|prompt|head|adapter|adalora", "lora", "LoRA adapters on a frozen base, full fine-tuning (f32 master weights), DoRA "
     "(LoRA direction + magnitude per output row, PEFT use_dora; the --lora-* options apply), IA3 (learned scaling of k, v and the "
     "down-projection input; --lora-targets all means PEFT's k,v,down), prefix tuning (trainable attention keys/values per layer, "
     "PEFT PREFIX_TUNING; see --num-virtual-tokens), prompt tuning (trainable soft-prompt embeddings before the input, PEFT "
     "PROMPT_TUNING; see --num-virtual-tokens, --prompt-init), or, with --task classify|regress, the task head alone on the frozen base; "
     "adapter: bottleneck adapters (AdapterHub's; see --adapter-placement, --adapter-reduction, --adapter-act); adalora: PEFT's AdaLoRA "
     "(SVD-shaped LoRA whose rank budget shrinks by importance; see --adalora-*; --lora-alpha, --lora-dropout, --lora-targets apply)",
     .type = TK_OPT_ENUM, .offset = F(method), .resume = true, .n_values = 9, .value_name = method_name, .init = "lora"},
    {"objective", "sft|dpo|orpo|simpo|kto|reward|distill|grpo|self", "sft", "training objective: supervised fine-tuning, preference "
     "learning on chosen/rejected pairs, KTO on labelled completions, a reward model, distillation from --teacher or --teacher-context, reinforcement "
     "fine-tuning with --grader (GRPO), or self-training from unlabeled prompts (docs/objectives.md)",
     .type = TK_OPT_ENUM, .offset = F(objective), .resume = true, .n_values = 9, .value_name = objective_name, .init = "sft"},
    {"task", "lm|classify|regress", "lm", "lm: train the language model (the --objective); classify: a new head over --labels on the "
     "pooled final hidden state, cross-entropy (transformers' *ForSequenceClassification); regress: a 1-output head, MSE. Data: "
     "{\"text\", \"label\"} JSONL or text<TAB>label TSV", .type = TK_OPT_ENUM, .offset = F(task), .resume = true, .n_values = 3,
     .value_name = task_name, .init = "lm"},
    {"labels", "L1,L2,...", "(required for classify)", "classify: the label names in index order (a record's label is a name or an index)",
     .type = TK_OPT_STR, .offset = F(labels), .resume = true},
    {"pooling", "last|mean", "last", "classify, regress: the head reads the last token's hidden state (transformers') or their mean",
     .type = TK_OPT_ENUM, .offset = F(pooling), .resume = true, .n_values = 2, .value_name = pooling_name, .init = "last"},
    {"loss", "NAME", "sigmoid / dapo", "dpo: sigmoid, ipo, hinge or robust (TRL's DPOTrainer loss_type); grpo: dapo, grpo, bnpo or dr_grpo "
     "(TRL's GRPOTrainer loss_type)", .type = TK_OPT_STR, .offset = F(loss), .resume = true, .is_auto = true, .check = check_loss},
    {"beta", "X", "0.1 / 0", "dpo, orpo, simpo, kto: the beta of TRL's trainers (deviation from the reference / odds-ratio weight / reward "
     "scale); grpo: the KL coefficient to the reference (default 0: no reference, as TRL)",
     .type = TK_OPT_F64, .offset = F(beta), .resume = true, .is_auto = true, .auto_value = 0, .dlo = 0, .dhi = 1e6, .above_lo = true, .init = "auto"},
    {"label-smoothing", "X", "0", "dpo --loss robust: probability that a label is flipped, [0, 0.5); simpo: label smoothing, [0, 1)",
     .type = TK_OPT_F64, .offset = F(label_smoothing), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1, .below_hi = true,
     .init = "auto"},
    {"simpo-gamma", "X", "0.5", "simpo: target reward margin gamma (the loss uses gamma / beta)", .type = TK_OPT_F64, .offset = F(simpo_gamma),
     .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1e6, .init = "auto"},
    {"desirable-weight", "X", "1", "kto: weight of the losses of desirable completions (TRL's desirable_weight)", .type = TK_OPT_F64,
     .offset = F(desirable_weight), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1e6, .init = "auto"},
    {"undesirable-weight", "X", "1", "kto: weight of the losses of undesirable completions (TRL's undesirable_weight)", .type = TK_OPT_F64,
     .offset = F(undesirable_weight), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1e6, .init = "auto"},
    {"center-rewards", "X", "none", "reward: coefficient of the (r_chosen + r_rejected)^2 term (TRL's center_rewards_coefficient)",
     .type = TK_OPT_F64, .offset = F(center_rewards), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1e6, .init = "auto"},
    {"precompute-ref", "", "off", "dpo, kto: compute the reference log-probabilities once before training (no reference forward per step)",
     .type = TK_OPT_BOOL, .offset = F(precompute_ref), .resume = true},
    {"teacher", "PATH", "none", "distill: the teacher model, run forward on every micro-batch (another vocabulary: it answers the "
     "data's prompts and the student trains on its answers)", .type = TK_OPT_STR, .offset = F(teacher), .is_path = true, .resume = true},
    {"distill-loss", "forward_kl|reverse_kl|jsd", "forward_kl", "distill: KL(teacher || student), KL(student || teacher) or the "
     "generalised Jensen-Shannon divergence (--jsd-beta) per trained token", .type = TK_OPT_STR, .offset = F(distill_loss), .resume = true,
     .is_auto = true, .check = check_distill_loss},
    {"jsd-beta", "X", "0.5", "distill jsd: the mixture weight beta in [0, 1] (TRL's GKD beta: 0 = forward KL, 1 = reverse KL)",
     .type = TK_OPT_F64, .offset = F(jsd_beta), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1, .init = "auto"},
    {"temperature", "X", "1", "distill: both distributions are softmax(logits / X); grpo, self: the sampling temperature",
     .type = TK_OPT_F64, .offset = F(temperature), .resume = true, .is_auto = true, .auto_value = 0, .dlo = 0, .dhi = 1e6, .above_lo = true,
     .init = "auto"},
    {"teacher-context", "FILE", "none", "distill: context distillation: the teacher (--teacher, else the base model itself) reads FILE's "
     "text in its system prompt, the student learns to answer as it does without it; self: the answers are sampled with FILE in the "
     "system prompt and trained without it", .type = TK_OPT_STR, .offset = F(teacher_context),
     .is_path = true, .resume = true},
    {"teacher-answers", "", "off", "distill: the teacher generates every answer (RUN/teacher_answers.jsonl), also where the data has one",
     .type = TK_OPT_BOOL, .offset = F(teacher_answers), .resume = true},
    {"max-new-tokens", "N", "256", "distill: the longest answer the teacher generates (greedy); grpo, self: the longest sampled answer "
     "(TRL's max_completion_length)", .type = TK_OPT_I32, .offset = F(max_new_tokens), .resume = true, .is_auto = true, .ilo = 1,
     .ihi = 1 << 20, .init = "auto"},
    {"grader", "FILE", "none", "grpo, self: the grader that scores sampled answers, in OpenAI's JSON form (string_check, text_similarity, "
     "score_model, multi) or takumi's command grader", .type = TK_OPT_STR, .offset = F(grader), .is_path = true, .resume = true},
    {"judge", "PATH", "none", "grpo, self: the local model that answers score_model graders", .type = TK_OPT_STR, .offset = F(judge),
     .is_path = true, .resume = true},
    {"group-size", "N", "8 / 4", "grpo: completions sampled per prompt (TRL's num_generations; default 8); self: answers sampled per prompt "
     "(default 4)", .type = TK_OPT_I32, .offset = F(group_size), .resume = true, .is_auto = true, .ilo = 2, .ihi = 4096},
    {"epsilon", "X", "0.2", "grpo: the clipping range of the probability ratio, lower side (TRL's epsilon)", .type = TK_OPT_F64,
     .offset = F(epsilon), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1e6, .init = "auto"},
    {"epsilon-high", "X", "= epsilon", "grpo: the upper clipping range (DAPO's clip-higher; TRL's epsilon_high)", .type = TK_OPT_F64,
     .offset = F(epsilon_high), .resume = true, .is_auto = true, .auto_value = -1, .dlo = 0, .dhi = 1e6, .init = "auto"},
    {"passes", "N", "1", "grpo: optimizer updates per generation batch (TRL's num_iterations); above 1 the clipped ratio uses the "
     "sampling policy's log-probabilities", .type = TK_OPT_I32, .offset = F(passes), .resume = true, .ilo = 1, .ihi = 1024, .init = "1"},
    {"scale-rewards", "group|batch|none", "group", "grpo: divide the advantages by the std of the group's rewards, of the batch's, or not "
     "(TRL's scale_rewards)", .type = TK_OPT_ENUM, .offset = F(scale_rewards), .resume = true, .n_values = 3,
     .value_name = scale_rewards_name, .init = "group"},
    {"max-grader-failures", "N", "-1", "grpo, self: stop with an error when more than N sampled answers could not be graded "
     "(a command that crashed, a judge reply without a score); -1: a tenth of the answers the run samples", .type = TK_OPT_I64,
     .offset = F(max_grader_failures), .ilo = -1, .ihi = INT64_MAX / 2, .init = "-1"},
    {"rounds", "N", "2", "self: rounds of sample, score, keep, train", .type = TK_OPT_I32, .offset = F(rounds), .resume = true,
     .is_auto = true, .ilo = 1, .ihi = 1000},
    {"self-train", "sft|dpo", "sft", "self: train on each prompt's best answer (sft) or on best-versus-worst pairs (dpo)",
     .type = TK_OPT_ENUM, .offset = F(self_train), .resume = true, .n_values = 2, .value_name = self_train_name, .init = "sft"},
    {"min-score", "X", "pass_threshold", "self: keep an answer only when its score is at least X (default: the grader's pass_threshold, "
     "else any score above the prompt's worst)", .type = TK_OPT_F64, .offset = F(min_score), .resume = true, .is_auto = true,
     .auto_value = -1e300, .dlo = -1e300, .dhi = 1e300, .init = "auto"},
    {"lora-r", "N", "8", "LoRA rank", .type = TK_OPT_I32, .offset = F(lora_r), .resume = true, .ilo = 1, .ihi = 4096, .init = "8"},
    {"lora-alpha", "X", "16", "LoRA alpha (scale = alpha / r)", .type = TK_OPT_F64, .offset = F(lora_alpha), .resume = true, .dlo = 1e-6, .dhi = 1e6, .init = "16"},
    {"lora-dropout", "X", "0.05", "dropout on the LoRA input, [0, 1)", .type = TK_OPT_F64, .offset = F(lora_dropout), .resume = true, .dlo = 0,
     .dhi = 1, .below_hi = true, .init = "0.05"},
    {"lora-targets", "LIST", "all", "linears to adapt: all, or a comma list of q,k,v,o,gate,up,down", .type = TK_OPT_TARGETS,
     .offset = F(lora_targets), .resume = true, .init = "all"},
    {"lora-init", "NAME", "kaiming", "LoRA initialisation: kaiming (uniform A) or gaussian (A ~ N(0, 1/r^2)), B zero; or pissa (A, B from "
     "the top r singular vectors of each weight) or olora (from its QR), as PEFT's init_lora_weights, the base becoming the residual "
     "W - scale B0 A0 (kept as that frozen pair: r (in + out) floats per linear, no copy of the base). The adapter written "
     "is PEFT's conversion, a rank-2r LoRA on the original base. LoRA only (not DoRA)", .type = TK_OPT_ENUM, .offset = F(lora_init),
     .resume = true, .n_values = 4, .value_name = lora_init_name,
     .init = "kaiming"},
    {"lora-plus-ratio", "X", "0 (off)", "LoRA+: the B matrices (DoRA: and magnitudes) learn at lr x X (PEFT create_loraplus_optimizer)",
     .type = TK_OPT_F64, .offset = F(lora_plus_ratio), .resume = true, .dlo = 0, .dhi = 1e6},
    {"rslora", "", "off", "rank-stabilised LoRA: scale = alpha / sqrt(r)", .type = TK_OPT_BOOL, .offset = F(rslora), .resume = true},
    {"quantize-base", "q8_0|q4_k|nf4", "none", "QLoRA: quantize the frozen base (stored in f32/f16/bf16) at load time; nf4 is bitsandbytes' "
     "NormalFloat4 (blocks of 64, double-quantized scales); not with --method full", .type = TK_OPT_ENUM, .offset = F(quantize_base),
     .resume = true, .n_values = 4, .value_name = quantize_base_name, .init = "none"},
    {"num-virtual-tokens", "N", "20", "prefix, prompt: virtual tokens (prefix: keys/values added to every layer's attention; prompt: "
     "soft-prompt embeddings before the input; PEFT has no default, its examples use 20)", .type = TK_OPT_I32, .offset = F(num_virtual_tokens), .resume = true, .ilo = 1, .ihi = 100000, .init = "20"},
    {"prefix-projection", "", "off", "prefix: reparameterise the prefix as an embedding through Linear-tanh-Linear (PEFT prefix_projection); "
     "the adapter saves the projected prefix", .type = TK_OPT_BOOL, .offset = F(prefix_projection), .resume = true},
    {"encoder-hidden-size", "auto|N", "auto", "prefix --prefix-projection: width of the projection's hidden layer; auto: the model's "
     "key/value width (PEFT's default)", .type = TK_OPT_I32, .offset = F(encoder_hidden_size), .resume = true, .is_auto = true, .ilo = 1,
     .ihi = 1 << 20},
    {"prompt-init", "random|text", "random", "prompt: initialise the soft prompt from N(0, 1) (PEFT's RANDOM) or from the token embeddings "
     "of --prompt-init-text, repeated or cut to --num-virtual-tokens (PEFT's TEXT)", .type = TK_OPT_ENUM, .offset = F(prompt_init),
     .resume = true, .n_values = 2, .value_name = prompt_init_name, .init = "random"},
    {"prompt-init-text", "TEXT", "none", "prompt --prompt-init text: the text (tokenized as HF does, special tokens included)",
     .type = TK_OPT_STR, .offset = F(prompt_init_text), .resume = true},
    {"adapter-placement", "pfeiffer|houlsby", "pfeiffer", "adapter: one bottleneck adapter per layer after the feed-forward block, on "
     "the residual stream (AdapterHub's SeqBnConfig, Pfeiffer et al.), or one after attention and one after the feed-forward block, "
     "on their outputs (DoubleSeqBnConfig, Houlsby et al.)", .type = TK_OPT_ENUM, .offset = F(adapter_placement), .resume = true,
     .n_values = 2, .value_name = adapter_placement_name, .init = "pfeiffer"},
    {"adapter-reduction", "N", "16", "adapter: reduction factor: the bottleneck is max(1, width / N) wide (AdapterHub's reduction_factor)",
     .type = TK_OPT_I32, .offset = F(adapter_reduction), .resume = true, .ilo = 1, .ihi = 1 << 20, .init = "16"},
    {"adapter-act", "auto|relu|swish|gelu", "auto", "adapter: the bottleneck's nonlinearity; auto: the placement's in AdapterHub (pfeiffer "
     "relu, houlsby swish)", .type = TK_OPT_ENUM, .offset = F(adapter_act), .resume = true, .n_values = 4, .value_name = adapter_act_name,
     .init = "auto"},
    {"adalora-init-r", "N", "12", "adalora: triplets (rank) per linear at the start (PEFT init_r)", .type = TK_OPT_I32, .offset = F(adalora_init_r),
     .resume = true, .ilo = 1, .ihi = 4096, .init = "12"},
    {"adalora-target-r", "N", "8", "adalora: average triplets per linear once the budget has shrunk (PEFT target_r)", .type = TK_OPT_I32,
     .offset = F(adalora_target_r), .resume = true, .ilo = 0, .ihi = 4096, .init = "8"},
    {"adalora-tinit", "N", "0", "adalora: warmup steps before the budget shrinks (PEFT tinit)", .type = TK_OPT_I32, .offset = F(adalora_tinit),
     .resume = true, .ilo = 0, .ihi = 1 << 30},
    {"adalora-tfinal", "N", "0", "adalora: final steps with the rank pattern fixed (PEFT tfinal; the total_step is the run's step count)",
     .type = TK_OPT_I32, .offset = F(adalora_tfinal), .resume = true, .ilo = 0, .ihi = 1 << 30},
    {"adalora-delta-t", "N", "1", "adalora: steps between two rank allocations (PEFT deltaT)", .type = TK_OPT_I32, .offset = F(adalora_delta_t),
     .resume = true, .ilo = 1, .ihi = 1 << 30, .init = "1"},
    {"adalora-orth-reg", "X", "0.5", "adalora: weight of the orthogonal regularization ||A A^T - I||, ||B^T B - I|| added to the loss "
     "(PEFT orth_reg_weight)", .type = TK_OPT_F64, .offset = F(adalora_orth_reg), .resume = true, .dlo = 0, .dhi = 1e6, .init = "0.5"},
    {"augment", "auto|off|N", "auto", "paraphrase augmentation of chat data before training: N paraphrased copies of each record's last "
     "user turn (answers unchanged; paraphrases that change a number or name, are not questions or repeat are dropped), written by "
     "--augment-model (default: the base model) into RUN/augmented-train.jsonl, which the run trains on; auto: 2 when --augment-model is given and the data has "
     "fewer than 1000 records, else off", .type = TK_OPT_STR, .offset = F(augment), .resume = true, .is_auto = true, .check = check_augment},
    {"augment-model", "PATH", "the base model", "--augment: the model that writes the paraphrases (an instruction-tuned model with a chat "
     "template; larger ones write better paraphrases)", .type = TK_OPT_STR, .offset = F(augment_model), .is_path = true, .resume = true},
    {"freeze-layers", "N", "0", "train only layers >= N (LoRA: adapters there; full: embedding frozen too when N > 0)", .type = TK_OPT_I32,
     .offset = F(freeze_layers), .resume = true, .ilo = 0, .ihi = 100000},
    {"epochs", "auto|N", "auto",
     "passes over the data; auto: 3, more for < 34 examples (<= 25), fewer above 8333 (epochs x examples <= 25000)", .type = TK_OPT_I32,
     .offset = F(epochs), .resume = true, .is_auto = true, .ilo = 1, .ihi = 100000},
    {"batch-size", "auto|N", "auto", "rows per micro-batch; auto: 1 packed row (without packing: examples, see grad-accum)",
     .type = TK_OPT_I32, .offset = F(batch_size), .resume = true, .is_auto = true, .ilo = 1, .ihi = 4096},
    {"grad-accum", "auto|N", "auto", "micro-batches per optimizer step; auto: about min(256, examples x epochs) steps, <= 32 rows a step",
     .type = TK_OPT_I32, .offset = F(grad_accum), .resume = true, .is_auto = true, .ilo = 1, .ihi = 1 << 20},
    {"lr", "auto|X", "auto", "peak learning rate; auto: LoRA 1e-3, full fine-tuning 2e-5", .type = TK_OPT_F64, .offset = F(lr), .resume = true,
     .is_auto = true, .dlo = 0, .dhi = 10, .auto_value = 0, .above_lo = true},
    {"lr-multiplier", "X", "1", "scales the auto learning rate (OpenAI's learning_rate_multiplier); refused with an explicit --lr",
     .type = TK_OPT_F64, .offset = F(lr_mult), .resume = true, .dlo = 0, .dhi = 1000, .above_lo = true, .init = "1"},
    {"schedule", "NAME", "cosine", "learning-rate schedule after warmup: constant, linear or cosine (to 0)", .type = TK_OPT_ENUM,
     .offset = F(schedule), .resume = true, .n_values = 3, .value_name = sched_name_i, .init = "cosine"},
    {"warmup", "auto|X", "auto", "linear warmup: steps (>= 1) or a fraction of the steps (< 1); auto: 0.03", .type = TK_OPT_F64, .offset = F(warmup),
     .resume = true, .is_auto = true, .dlo = 0, .dhi = 1e12, .auto_value = -1, .init = "auto"},
    {"weight-decay", "X", "0", "AdamW decoupled weight decay (not applied to norms and biases)", .type = TK_OPT_F64, .offset = F(weight_decay),
     .resume = true, .dlo = 0, .dhi = 10},
    {"clip", "X", "1.0", "clip the global gradient norm to X (0: off)", .type = TK_OPT_F64, .offset = F(clip), .resume = true, .dlo = 0, .dhi = 1e9, .init = "1.0"},
    {"max-seq-len", "auto|N", "auto", "tokens per example/row; longer examples are truncated (counted); auto: min(model context, 1024)",
     .type = TK_OPT_I32, .offset = F(max_seq), .resume = true, .is_auto = true, .ilo = 2, .ihi = 1 << 24},
    {"no-packing", "", "packing on", "one example per row (padding) instead of packing several into each row", .type = TK_OPT_BOOL,
     .offset = F(packing), .resume = true, .negated = true, .json_key = "packing", .init = "false"},
    {"pack-len", "auto|N", "auto", "tokens per packed row; auto: max-seq-len, shorter for small data so that steps stay many",
     .type = TK_OPT_I32, .offset = F(pack_len), .resume = true, .is_auto = true, .ilo = 2, .ihi = 1 << 24},
    {"train-on-prompt", "", "off", "loss on prompt tokens too (default: assistant tokens and their end-of-turn only)", .type = TK_OPT_BOOL,
     .offset = F(train_on_prompt), .resume = true},
    {"val", "FILE", "none", "validation data (same formats)", .type = TK_OPT_STR, .offset = F(val), .is_path = true},
    {"val-split", "F", "0", "hold out this fraction of the training data for validation (deterministic from the seed)", .type = TK_OPT_F64,
     .offset = F(val_split), .resume = true, .dlo = 0, .dhi = 1, .below_hi = true},
    {"eval-every", "auto|N", "auto", "validate every N steps and at the end; auto: a tenth of the steps", .type = TK_OPT_I64, .offset = F(eval_every),
     .is_auto = true, .ilo = 1, .ihi = INT64_MAX / 2},
    {"patience", "N", "0 (off)", "stop when the validation loss has not improved for N evaluations", .type = TK_OPT_I32, .offset = F(patience),
     .ilo = 0, .ihi = 1 << 30},
    {"save-every", "auto|N", "auto", "checkpoint every N steps and at the end; auto: a tenth of the steps", .type = TK_OPT_I64, .offset = F(save_every),
     .is_auto = true, .ilo = 1, .ihi = INT64_MAX / 2},
    {"keep-checkpoints", "K", "2", "keep the newest K checkpoints (0: all)", .type = TK_OPT_I32, .offset = F(keep_checkpoints), .ilo = 0, .ihi = 1 << 30, .init = "2"},
    {"resume", "", "off", "continue from the newest checkpoint in --out (exactly as if never interrupted)", .type = TK_OPT_BOOL, .offset = F(resume),
     .not_saved = true},
    {"max-steps", "N", "0 (none)", "stop after N optimizer steps (with --resume: N in total); also the schedule length", .type = TK_OPT_I64,
     .offset = F(max_steps), .ilo = 0, .ihi = INT64_MAX / 2},
    {"seed", "N", "42", "seed of LoRA initialisation, dropout, shuffling and the validation split", .type = TK_OPT_U64, .offset = F(seed), .resume = true, .init = "42"},
    {"threads", "N", "0 (all cores)", "compute threads (results are bit-identical for a given thread count)", .type = TK_OPT_I32, .offset = F(threads),
     .ilo = 0, .ihi = 4096},
    {"precision", "NAME", "auto", "fp32, bf16 or auto: bf16 rounds the inputs of the base and LM-head products to bf16 (fp32 sums, "
     "fp32 weights, gradients and moments; needs AVX512-BF16); auto = bf16 where the CPU has AVX512-BF16, else fp32", .type = TK_OPT_ENUM, .offset = F(precision),
     .n_values = 3, .value_name = precision_name, .init = "auto"},
    {"recompute", "", "off", "recompute activations in the backward (less memory, more time)", .type = TK_OPT_BOOL, .offset = F(recompute)},
    {"samples", "N", "3", "validation prompts answered before and after training in the report", .type = TK_OPT_I32, .offset = F(samples), .ilo = 0,
     .ihi = 100, .init = "3"},
    {"sample-tokens", "N", "64", "tokens generated per sample (greedy)", .type = TK_OPT_I32, .offset = F(sample_tokens), .ilo = 1, .ihi = 4096, .init = "64"},
    {"eval-config", "FILE", "none", "run `takumi eval` on the trained adapter at the end (FILE: its options as JSON: data, metrics, targets, "
     "grader, general, baseline \"base\", ...); results in RUN/eval/ and the report", .type = TK_OPT_STR, .offset = F(eval_config), .is_path = true},
};
#define N_OPTS ((int)(sizeof k_opts / sizeof k_opts[0]))

const tk_trainer_option *tk_trainer_options(int *n) {
    *n = N_OPTS;
    return k_opts;
}

const tk_trainer_option *tk_trainer_option_find(const char *name) {
    for (int i = 0; i < N_OPTS; i++)
        if (!strcmp(k_opts[i].name, name) || (k_opts[i].json_key && !strcmp(k_opts[i].json_key, name))) return &k_opts[i];
    return NULL;
}

const char *tk_trainer_option_key(const tk_trainer_option *o) { return o->json_key ? o->json_key : o->name; }

tk_trainer_config tk_trainer_config_default(void) {
    tk_trainer_config c;
    memset(&c, 0, sizeof c);   /* options without an init value default to zero / NULL / false */
    for (int i = 0; i < N_OPTS; i++)
        if (k_opts[i].init && tk_trainer_config_set(&c, k_opts[i].name, k_opts[i].init) != TK_OK) tk_clear_error();   /* cannot fail: tested */
    c.given[0] = c.given[1] = 0;
    return c;
}

#define FIELD(c, o, T) ((T *)((char *)(c) + (o)->offset))
#define CFIELD(c, o, T) ((const T *)((const char *)(c) + (o)->offset))

void tk_trainer_config_free(tk_trainer_config *c) {
    if (!c) return;
    for (int i = 0; i < N_OPTS; i++)
        if (k_opts[i].type == TK_OPT_STR) { char **s = FIELD(c, &k_opts[i], char *); free(*s); *s = NULL; }
}

tk_status tk_trainer_config_copy(tk_trainer_config *dst, const tk_trainer_config *src) {
    *dst = *src;
    for (int i = 0; i < N_OPTS; i++)
        if (k_opts[i].type == TK_OPT_STR) *FIELD(dst, &k_opts[i], char *) = NULL;
    for (int i = 0; i < N_OPTS; i++) {
        if (k_opts[i].type != TK_OPT_STR) continue;
        const char *s = *CFIELD(src, &k_opts[i], char *);
        if (s && !(*FIELD(dst, &k_opts[i], char *) = tk_strdup(s))) { tk_trainer_config_free(dst); return TK_ERR_NOMEM; }
    }
    return TK_OK;
}

/* ---- parsing ------------------------------------------------------------------------ */

static const char *const k_short_targets[TK_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};

static tk_status parse_targets(const char *name, const char *v, uint32_t *out) {
    if (!strcmp(v, "all")) { *out = TK_LORA_ALL_TARGETS; return TK_OK; }
    uint32_t m = 0;
    const char *p = v;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < TK_LIN_COUNT; i++) {
            const char *ln = tk_linear_name((tk_linear_id)i);   /* "q_proj", … */
            if ((strlen(k_short_targets[i]) == n && !strncmp(p, k_short_targets[i], n)) || (strlen(ln) == n && !strncmp(p, ln, n)))
                found = i;
        }
        if (found < 0) return tk_fail(TK_ERR_ARG, "--%s: unknown linear '%.*s' (choose from q,k,v,o,gate,up,down or all)", name, (int)n, p);
        m |= 1u << found;
        p += n;
        if (*p == ',') p++;
    }
    if (!m) return tk_fail(TK_ERR_ARG, "--%s: empty list", name);
    *out = m;
    return TK_OK;
}

void tk_trainer_targets_text(uint32_t m, char *buf, size_t n) {
    if (m == TK_LORA_ALL_TARGETS) { snprintf(buf, n, "all"); return; }
    buf[0] = 0;
    for (int i = 0; i < TK_LIN_COUNT; i++)
        if (m & (1u << i)) { size_t l = strlen(buf); snprintf(buf + l, n - l, "%s%s", l ? "," : "", k_short_targets[i]); }
}

static tk_status parse_bool(const char *name, const char *v, bool *out) {
    if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) { *out = true; return TK_OK; }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) { *out = false; return TK_OK; }
    return tk_fail(TK_ERR_ARG, "--%s: '%s' is not true or false", name, v);
}

static tk_status parse_enum(const tk_trainer_option *o, const char *v, int *out) {
    int k = -1;
    if (o->value_parse) k = o->value_parse(v);
    else
        for (int i = 0; i < o->n_values && k < 0; i++) if (!strcmp(v, o->value_name(i))) k = i;
    if (k >= 0) { *out = k; return TK_OK; }
    tk_buf list = {0};
    for (int i = 0; i < o->n_values; i++)
        tk_buf_printf(&list, "%s%s", i == 0 ? "" : i == o->n_values - 1 ? " or " : ", ", o->value_name(i));
    tk_status st = tk_fail(TK_ERR_ARG, "--%s: '%s' is not %s", o->name, v, list.data ? list.data : "known");
    tk_buf_free(&list);
    return st;
}

static tk_status parse_int(const tk_trainer_option *o, const char *v, int64_t *out) {
    if (o->is_auto && !strcmp(v, "auto")) { *out = 0; return TK_OK; }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < o->ilo || x > o->ihi)
        return tk_fail(TK_ERR_ARG, "--%s: '%s' is not %s between %lld and %lld", o->name, v, o->is_auto ? "auto or an integer" : "an integer",
                       (long long)o->ilo, (long long)o->ihi);
    *out = x;
    return TK_OK;
}

static tk_status parse_double(const tk_trainer_option *o, const char *v, double *out) {
    if (o->is_auto && !strcmp(v, "auto")) { *out = o->auto_value; return TK_OK; }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < o->dlo || x > o->dhi)
        return tk_fail(TK_ERR_ARG, "--%s: '%s' is not %s between %g and %g", o->name, v, o->is_auto ? "auto or a number" : "a number",
                       o->dlo, o->dhi);
    if (o->below_hi && x >= o->dhi) return tk_fail(TK_ERR_ARG, "--%s: %g must be below %g", o->name, x, o->dhi);
    if (o->above_lo && x <= o->dlo) return tk_fail(TK_ERR_ARG, "--%s: must be above %g%s", o->name, o->dlo, o->is_auto ? " (or auto)" : "");
    *out = x;
    return TK_OK;
}

static tk_status config_set(tk_trainer_config *c, const char *name, const char *v) {
    const tk_trainer_option *o = tk_trainer_option_find(name);
    if (!o) return tk_fail(TK_ERR_ARG, "unknown option --%s ('takumi train --help' lists the options)", name);
    if (o->type == TK_OPT_BOOL) {
        bool b = false;
        tk_status st = parse_bool(name, v, &b);
        /* --no-packing sets packing off; config.json's "packing" key carries the field itself */
        if (!st) *FIELD(c, o, bool) = (o->negated && strcmp(name, tk_trainer_option_key(o)) != 0) ? !b : b;
        return st;
    }
    if (!v || !*v) return tk_fail(TK_ERR_ARG, "--%s needs a value", name);
    tk_status st = TK_OK;
    int64_t i = 0;
    double d = 0;
    switch (o->type) {
    case TK_OPT_STR: {
        char **dst = FIELD(c, o, char *);
        if (o->is_auto && !strcmp(v, "auto")) { free(*dst); *dst = NULL; return TK_OK; }
        if (o->check && (st = o->check(name, v))) return st;
        char *s = tk_strdup(v);
        if (!s) return TK_ERR_NOMEM;
        free(*dst);
        *dst = s;
        return TK_OK;
    }
    case TK_OPT_ENUM: {
        int k = 0;
        if (!(st = parse_enum(o, v, &k))) *FIELD(c, o, int) = k;
        return st;
    }
    case TK_OPT_TARGETS: return parse_targets(name, v, FIELD(c, o, uint32_t));
    case TK_OPT_I32: if (!(st = parse_int(o, v, &i))) *FIELD(c, o, int32_t) = (int32_t)i; return st;
    case TK_OPT_I64: if (!(st = parse_int(o, v, &i))) *FIELD(c, o, int64_t) = i; return st;
    case TK_OPT_F64: if (!(st = parse_double(o, v, &d))) *FIELD(c, o, double) = d; return st;
    case TK_OPT_U64: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end || *v == '-') return tk_fail(TK_ERR_ARG, "--%s: '%s' is not a non-negative integer", name, v);
        *FIELD(c, o, uint64_t) = x;
        return TK_OK;
    }
    case TK_OPT_BOOL: break;
    }
    return tk_fail(TK_ERR_INTERNAL, "--%s: option of unknown kind", name);
}

tk_status tk_trainer_config_set(tk_trainer_config *c, const char *name, const char *v) {
    tk_status st = config_set(c, name, v);
    const tk_trainer_option *o = st ? NULL : tk_trainer_option_find(name);
    if (o && o - k_opts < 128) c->given[(o - k_opts) / 64] |= 1ull << ((o - k_opts) % 64);
    return st;
}

_Static_assert(sizeof k_opts / sizeof k_opts[0] <= 128, "tk_trainer_config.given is a 128-bit mask over the option table");

bool tk_trainer_config_given(const tk_trainer_config *c, const char *name) {
    const tk_trainer_option *o = tk_trainer_option_find(name);
    return o && (c->given[(o - k_opts) / 64] >> ((o - k_opts) % 64)) & 1u;
}

/* The options that do not apply to --method ia3 (IA3 has no rank, alpha or dropout) and to --method full. */
static const char *const k_not_ia3[] = {"lora-r", "lora-alpha", "rslora", "lora-dropout", "lora-init", "lora-plus-ratio"};
/* The options that do not apply to --method prefix, and the prefix's options elsewhere. */
static const char *const k_not_prefix[] = {"lora-r", "lora-alpha", "rslora", "lora-dropout", "lora-targets", "lora-init", "lora-plus-ratio",
                                           "freeze-layers"};
static const char *const k_prefix_only[] = {"prefix-projection", "encoder-hidden-size"};
/* The options that do not apply to --method prompt, and the prompt's options elsewhere. */
static const char *const k_not_prompt[] = {"lora-r", "lora-alpha", "rslora", "lora-dropout", "lora-targets", "lora-init", "lora-plus-ratio",
                                           "freeze-layers", "prefix-projection", "encoder-hidden-size"};
static const char *const k_prompt_only[] = {"prompt-init", "prompt-init-text"};
/* The options that do not apply to --method adapter, and the adapter's options elsewhere. */
static const char *const k_not_adapter[] = {"lora-r", "lora-alpha", "rslora", "lora-dropout", "lora-targets", "lora-init", "lora-plus-ratio"};
static const char *const k_adapter_only[] = {"adapter-placement", "adapter-reduction", "adapter-act"};
/* The options that do not apply to --method adalora, and AdaLoRA's options elsewhere. */
static const char *const k_not_adalora[] = {"lora-r", "rslora", "lora-init", "lora-plus-ratio"};
static const char *const k_adalora_only[] = {"adalora-init-r", "adalora-target-r", "adalora-tinit", "adalora-tfinal", "adalora-delta-t",
                                             "adalora-orth-reg"};
static const char *const k_not_full[] = {"lora-r", "lora-alpha", "rslora", "lora-dropout", "lora-targets", "lora-init", "lora-plus-ratio"};

tk_status tk_trainer_config_check_method(const tk_trainer_config *c) {
    for (size_t i = 0; c->method == TK_TRAIN_IA3 && i < sizeof k_not_ia3 / sizeof k_not_ia3[0]; i++)
        if (tk_trainer_config_given(c, k_not_ia3[i]))
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --method ia3 (IA3 learns scaling vectors: no rank, alpha, dropout, A or B)", k_not_ia3[i]);
    for (size_t i = 0; c->method == TK_TRAIN_PREFIX && i < sizeof k_not_prefix / sizeof k_not_prefix[0]; i++)
        if (tk_trainer_config_given(c, k_not_prefix[i]))
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --method prefix (prefix tuning learns attention keys and values for every "
                                       "layer: no rank, alpha, dropout, target linears or frozen layers)", k_not_prefix[i]);
    for (size_t i = 0; c->method == TK_TRAIN_PROMPT && i < sizeof k_not_prompt / sizeof k_not_prompt[0]; i++)
        if (tk_trainer_config_given(c, k_not_prompt[i]))
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --method prompt (prompt tuning learns input embeddings that every layer "
                                       "sees: no rank, alpha, dropout, target linears, projection or frozen layers)", k_not_prompt[i]);
    if (c->method != TK_TRAIN_PREFIX && c->method != TK_TRAIN_PROMPT && tk_trainer_config_given(c, "num-virtual-tokens"))
        return tk_fail(TK_ERR_ARG, "--num-virtual-tokens applies to --method prefix and prompt only (the method is %s)", method_name((int)c->method));
    for (size_t i = 0; c->method != TK_TRAIN_PREFIX && i < sizeof k_prefix_only / sizeof k_prefix_only[0]; i++)
        if (tk_trainer_config_given(c, k_prefix_only[i]))
            return tk_fail(TK_ERR_ARG, "--%s applies to --method prefix only (the method is %s)", k_prefix_only[i], method_name((int)c->method));
    for (size_t i = 0; c->method != TK_TRAIN_PROMPT && i < sizeof k_prompt_only / sizeof k_prompt_only[0]; i++)
        if (tk_trainer_config_given(c, k_prompt_only[i]))
            return tk_fail(TK_ERR_ARG, "--%s applies to --method prompt only (the method is %s)", k_prompt_only[i], method_name((int)c->method));
    for (size_t i = 0; c->method == TK_TRAIN_ADAPTER && i < sizeof k_not_adapter / sizeof k_not_adapter[0]; i++)
        if (tk_trainer_config_given(c, k_not_adapter[i]))
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --method adapter (bottleneck adapters act on block outputs: no rank, alpha, "
                                       "dropout or target linears; see --adapter-reduction)", k_not_adapter[i]);
    for (size_t i = 0; c->method != TK_TRAIN_ADAPTER && i < sizeof k_adapter_only / sizeof k_adapter_only[0]; i++)
        if (tk_trainer_config_given(c, k_adapter_only[i]))
            return tk_fail(TK_ERR_ARG, "--%s applies to --method adapter only (the method is %s)", k_adapter_only[i], method_name((int)c->method));
    for (size_t i = 0; c->method == TK_TRAIN_ADALORA && i < sizeof k_not_adalora / sizeof k_not_adalora[0]; i++)
        if (tk_trainer_config_given(c, k_not_adalora[i]))
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --method adalora (its rank is --adalora-init-r, shrinking to "
                                       "--adalora-target-r; PEFT's AdaLoRA has no rsLoRA, PiSSA/OLoRA or LoRA+)", k_not_adalora[i]);
    for (size_t i = 0; c->method != TK_TRAIN_ADALORA && i < sizeof k_adalora_only / sizeof k_adalora_only[0]; i++)
        if (tk_trainer_config_given(c, k_adalora_only[i]))
            return tk_fail(TK_ERR_ARG, "--%s applies to --method adalora only (the method is %s)", k_adalora_only[i], method_name((int)c->method));
    if (c->method == TK_TRAIN_ADALORA && c->objective == 7)
        return tk_fail(TK_ERR_UNSUPPORTED, "--method adalora with --objective grpo: not supported yet (GRPO's updates do not run AdaLoRA's "
                                           "regularization and rank allocation); use --method lora");
    if (c->method == TK_TRAIN_ADALORA && c->task != 0)
        return tk_fail(TK_ERR_UNSUPPORTED, "--method adalora with --task classify|regress: not supported yet (the classifier's files "
                                           "carry LoRA, IA3 or bottleneck adapters); use --method lora");
    if (c->method == TK_TRAIN_PROMPT && c->prompt_init == 1 && (!c->prompt_init_text || !*c->prompt_init_text))
        return tk_fail(TK_ERR_ARG, "--prompt-init text needs the text: add --prompt-init-text \"...\"");
    if (c->method == TK_TRAIN_PROMPT && c->prompt_init != 1 && tk_trainer_config_given(c, "prompt-init-text"))
        return tk_fail(TK_ERR_ARG, "--prompt-init-text is the text of --prompt-init text, but the soft prompt starts random: add --prompt-init text");
    if (tk_trainer_config_given(c, "encoder-hidden-size") && !c->prefix_projection)
        return tk_fail(TK_ERR_ARG, "--encoder-hidden-size sets the projection's width, but there is no projection: add --prefix-projection");
    if (c->method == TK_TRAIN_FULL && c->quantize_base)
        return tk_fail(TK_ERR_ARG, "--quantize-base quantizes a frozen base; --method full trains every base weight (f32 master copies): "
                                   "use --method lora (QLoRA) or drop --quantize-base");
    if (c->method == TK_TRAIN_DORA && (c->lora_init == TK_LORA_INIT_PISSA || c->lora_init == TK_LORA_INIT_OLORA))
        return tk_fail(TK_ERR_ARG, "--lora-init %s does not apply to --method dora (PiSSA/OLoRA are offered for LoRA only)",
                       lora_init_name(c->lora_init));
    for (size_t i = 0; (c->method == TK_TRAIN_FULL || c->method == TK_TRAIN_HEAD) && i < sizeof k_not_full / sizeof k_not_full[0]; i++)
        if (tk_trainer_config_given(c, k_not_full[i]))
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --method %s (%s: no adapter)", k_not_full[i], method_name((int)c->method),
                           c->method == TK_TRAIN_FULL ? "full fine-tuning trains the weights themselves" : "only the task head trains");
    /* options that contradict each other, both given now (--epochs with --max-steps: a warning once planned, plan.c) */
    if (tk_trainer_config_given(c, "pack-len") && !c->packing)
        return tk_fail(TK_ERR_ARG, "--pack-len sets the length of packed rows, but --no-packing switches packing off: give one");
    if (tk_trainer_config_given(c, "patience") && c->patience > 0 && !c->val && !(c->val_split > 0))
        return tk_fail(TK_ERR_ARG, "--patience %d needs validation data to watch: give --val FILE or --val-split F", c->patience);
    return TK_OK;
}

int tk_trainer_auto_epochs(uint64_t n) { return tk_data_auto_epochs(n); }
