/* The SFT trainer: model + dataset file in, a run folder out. The engine behind the public
 * training jobs of takumi/train.h (job.c).
 *
 *   RUN/config.json        the resolved configuration (every option, autos replaced by values)
 *   RUN/metrics.jsonl      one line per optimizer step, per validation pass and per event
 *   RUN/checkpoints/step-NNNNNNNN/   parameters + AdamW moments + trainer state (last K kept)
 *   RUN/samples.json       validation prompts answered before and after training
 *   RUN/adapter/           the LoRA adapter (PEFT layout); RUN/adapter.gguf the same for llama.cpp
 *   RUN/report.html        loss curves (SVG), configuration, data statistics, samples
 *
 * Options are set by name (the CLI's long option names without "--"), so config.json
 * round-trips: tk_trainer_config_set(cfg, "lora-r", "16"). Options whose value is "auto"
 * are resolved once the model and data are known (tk_trainer_run documents the rules).
 *
 * Determinism: every random choice (LoRA init, dropout, shuffles, validation split) comes
 * from the seed, and every sum runs in a fixed order for a given thread count, so a seed
 * gives a bit-identical run; --resume continues bit-identically from the last checkpoint. */
#ifndef TK_TRAIN_TRAINER_H
#define TK_TRAIN_TRAINER_H
#include <stdatomic.h>
#include "train/step.h"
#include "train/metrics.h"
#include "takumi/data.h"

/* --precision: fp32 everywhere, or bf16 inputs with fp32 sums for the base and LM-head products
 * (tk_matmul_set_precision; fp32 master weights, gradients and moments); auto = bf16 where the
 * backend runs bf16 products (CPU: AVX512-BF16, TK_NO_BF16 unset), else fp32. */
typedef enum { TK_PRECISION_AUTO = 0, TK_PRECISION_FP32, TK_PRECISION_BF16 } tk_train_precision;

/* Sets the calling thread's product precision for requested (auto resolved as above) and stores the
 * one applied (FP32 or BF16) in *used; an explicit BF16 the backend cannot run is TK_ERR_UNSUPPORTED
 * naming why. Undo with tk_matmul_set_precision(false). Thread-safe (per thread). */
tk_status tk_train_precision_apply(int requested, int *used);
/* "fp32" or "bf16" for a resolved precision (auto: "auto"). Thread-safe. */
const char *tk_train_precision_name(int precision);

typedef struct tk_trainer_config {
    char *model, *tokenizer, *data, *val, *out, *template_name;
    tk_data_format format;
    tk_train_method method;
    int objective;            /* 0 sft, 1 dpo, 2 orpo, 3 simpo, 4 kto, 5 reward, 6 distill, 7 grpo, 8 self (the "objective" option's
                                 value names) */
    char *loss;               /* dpo loss type (NULL: auto = sigmoid); grpo: dapo|grpo|bnpo|dr_grpo (auto = dapo) */
    int32_t task;             /* 0 lm, 1 classify, 2 regress (the "task" option's value names) */
    char *labels;             /* classify: comma-separated label names */
    int32_t pooling;          /* classify, regress: tk_pooling */
    double beta;              /* 0 = auto (0.1) */
    double label_smoothing;   /* < 0 = auto (0) */
    double simpo_gamma;       /* < 0 = auto (0.5) */
    bool precompute_ref;      /* dpo, kto: reference log-probabilities computed once before training */
    double desirable_weight, undesirable_weight;   /* kto: < 0 = auto (1) */
    double center_rewards;    /* reward: TRL's center_rewards_coefficient; < 0 = auto (none) */
    char *teacher;            /* distill: the teacher model */
    char *augment;            /* --augment: "off", a number of paraphrases per record, NULL/"auto" (tk_run_augment_parse) */
    char *augment_model;      /* --augment: the model that writes the paraphrases (NULL: the base model) */
    char *eval_config;        /* takumi eval's options as JSON, run on the adapter at the end (RUN/eval/) */
    char *distill_loss;       /* distill: forward_kl | reverse_kl (NULL: auto = forward_kl) */
    double temperature;       /* distill, grpo, self: 0 = auto (1) */
    double jsd_beta;          /* distill jsd: the generalised JSD's beta in [0, 1]; < 0 = auto (0.5) */
    char *teacher_context;    /* distill: a text file the teacher reads in its system prompt (context distillation) */
    bool teacher_answers;     /* distill: the teacher generates every answer, also where the data has one */
    int32_t max_new_tokens;   /* distill: longest answer the teacher generates; grpo, self: longest sampled answer; 0 = auto (256) */
    char *grader;             /* grpo, self: the grader document */
    char *judge;              /* grpo, self: the judge model of score_model graders */
    int32_t group_size;       /* grpo, self: samples per prompt (0 = auto: grpo 8, self 4) */
    double epsilon, epsilon_high; /* grpo: ratio clipping (-1 = auto: 0.2, = epsilon) */
    int32_t passes;           /* grpo: optimizer updates per generation batch */
    int scale_rewards;        /* grpo: tk_grpo_scale */
    int64_t max_grader_failures; /* grpo, self: -1 = a tenth of the samples */
    int32_t rounds;           /* self: 0 = auto (2) */
    int self_train;           /* self: 0 sft, 1 dpo */
    double min_score;         /* self: -1e300 = auto */
    int32_t lora_r;
    double lora_alpha, lora_dropout;
    bool rslora;
    int quantize_base;        /* 0 none, 1 q8_0, 2 q4_k, 3 nf4 (tk_quantize_base_dtype) */
    int32_t lora_init;        /* tk_lora_init */
    double lora_plus_ratio;   /* LoRA+: B learning rate = lr x this; 0 = off */
    int32_t num_virtual_tokens;   /* prefix: P */
    bool prefix_projection;       /* prefix: PEFT's prefix_projection */
    int32_t encoder_hidden_size;  /* prefix: the projection's hidden width; 0 = auto (KH*D) */
    int32_t prompt_init;          /* prompt: 0 random (PEFT RANDOM), 1 text (PEFT TEXT) */
    char *prompt_init_text;       /* prompt --prompt-init text: the text */
    int32_t adapter_placement;    /* adapter: tk_bn_placement (0 pfeiffer, 1 houlsby) */
    int32_t adapter_reduction;    /* adapter: AdapterHub's reduction_factor */
    int32_t adapter_act;          /* adapter: 0 auto (the placement's), else 1 + tk_bn_act */
    int32_t adalora_init_r, adalora_target_r;   /* adalora: PEFT's init_r / target_r */
    int32_t adalora_tinit, adalora_tfinal, adalora_delta_t;   /* adalora: PEFT's tinit / tfinal / deltaT */
    double adalora_orth_reg;      /* adalora: PEFT's orth_reg_weight */
    uint32_t lora_targets;    /* bit (1u << tk_linear_id) per adapted linear */
    int32_t freeze_layers;
    int32_t epochs;           /* 0 = auto */
    int32_t batch_size;       /* rows per micro-batch; 0 = auto */
    int32_t grad_accum;       /* micro-batches per optimizer step; 0 = auto */
    double lr;                /* 0 = auto */
    double lr_mult;           /* scales the auto learning rate (OpenAI's learning_rate_multiplier; default 1) */
    tk_sched schedule;
    double warmup;            /* < 0 auto; < 1: fraction of the steps; >= 1: steps */
    double weight_decay, clip;
    int32_t max_seq;          /* 0 = auto */
    bool packing, train_on_prompt;
    int32_t pack_len;         /* tokens per packed row; 0 = auto */
    double val_split;         /* 0 = none */
    int64_t eval_every;       /* 0 = auto */
    int32_t patience;         /* 0 = no early stopping */
    int64_t save_every;       /* 0 = auto */
    int32_t keep_checkpoints; /* 0 = keep all */
    bool resume;
    int64_t max_steps;        /* 0 = none */
    uint64_t seed;
    int32_t threads;          /* 0 = all cores */
    int precision;            /* tk_train_precision: the large base/head products in fp32 or bf16 */
    bool recompute;
    int32_t samples;          /* prompts answered before/after in the report */
    int32_t sample_tokens;    /* tokens generated per sample */
    uint64_t given[2];        /* bit i of the 128-bit mask: option i of the table was set by tk_trainer_config_set after
                                 the defaults (config.json values read back do not count) */
} tk_trainer_config;

/* The options, declared once (options.c): name (as --name), value text for --help, default
 * (as --help shows it), help, value kind, the config field filled (offset), range, whether a
 * resume must match it, and how it is kept in config.json. Parsing, --help, config.json
 * (writing and reading back) and the resume check are all driven by this table. */
typedef enum tk_opt_type {
    TK_OPT_STR,      /* char * (NULL: unset; "auto" clears it when is_auto) */
    TK_OPT_ENUM,     /* an enum field (stored as int), value names from value_name(0..n_values-1) */
    TK_OPT_TARGETS,  /* uint32_t bit mask of tk_linear_id ("all" or "q,v,down") */
    TK_OPT_BOOL,     /* bool; a flag on the command line ("true"/"false" in config.json) */
    TK_OPT_I32, TK_OPT_I64, TK_OPT_U64, TK_OPT_F64,
} tk_opt_type;

typedef struct tk_trainer_option {
    const char *name, *arg, *dflt, *help;
    tk_opt_type type;
    size_t offset;            /* of the field in tk_trainer_config */
    bool resume;              /* a --resume must use the checkpoint's value (it shapes the trajectory) */
    bool is_auto;             /* accepts "auto": integers 0, doubles auto_value, strings NULL */
    bool negated;             /* a flag that clears its field (--no-packing); json_key names the field */
    bool not_saved;           /* neither written to config.json nor read back from it (--resume) */
    bool is_path;             /* a file: config.json holds it as an absolute path (a --resume from elsewhere finds it) */
    bool below_hi, above_lo;  /* doubles: the value must be < dhi / > dlo */
    int64_t ilo, ihi;         /* integer range */
    double dlo, dhi, auto_value;
    int n_values;                          /* TK_OPT_ENUM */
    const char *(*value_name)(int value);
    int (*value_parse)(const char *text);  /* NULL: the exact names; returns -1 when unknown */
    tk_status (*check)(const char *name, const char *value);   /* extra validation of a string */
    const char *json_key;     /* key in config.json when not the name */
    const char *init;         /* the default as a value (tk_trainer_config_default sets it); NULL: zero */
} tk_trainer_option;

/* The option table (static), in --help and config.json order; *n gets its length. */
const tk_trainer_option *tk_trainer_options(int *n);
/* The option called name (or whose config.json key is name), or NULL. */
const tk_trainer_option *tk_trainer_option_find(const char *name);
/* The option's key in config.json (its json_key, else its name). Thread-safe. */
const char *tk_trainer_option_key(const tk_trainer_option *o);
/* A --lora-targets mask as text ("all", or "q,v,down") into buf[n]. Thread-safe. */
void tk_trainer_targets_text(uint32_t mask, char *buf, size_t n);

/* Defaults (see tk_trainer_options); strings NULL. Free with tk_trainer_config_free. */
tk_trainer_config tk_trainer_config_default(void);
void tk_trainer_config_free(tk_trainer_config *c);
/* Deep copy (strings duplicated); dst is overwritten. */
tk_status tk_trainer_config_copy(tk_trainer_config *dst, const tk_trainer_config *src);
/* Sets option `name` (no leading dashes) from its text value; flags take "true"/"false"
 * (value NULL = true). TK_ERR_ARG naming the option for unknown names or bad values. */
tk_status tk_trainer_config_set(tk_trainer_config *c, const char *name, const char *value);
/* Whether option `name` was set after the defaults (values read back from config.json do not count). Thread-safe. */
bool tk_trainer_config_given(const tk_trainer_config *c, const char *name);
/* Options given that do not apply to the chosen method (--lora-r with --method ia3 or full) or that contradict each other
 * (--pack-len with --no-packing, --patience without validation data): TK_ERR_ARG naming the options. */
tk_status tk_trainer_config_check_method(const tk_trainer_config *c);
/* The dtype of a --quantize-base choice (0 none -> TK_F32 = keep, 1 q8_0, 2 q4_k, 3 nf4). Thread-safe. */
static inline tk_dtype tk_quantize_base_dtype(int choice) {
    return choice == 1 ? TK_Q8_0 : choice == 2 ? TK_Q4_K : choice == 3 ? TK_NF4 : TK_F32;
}
/* Appends option `name`'s value as text (as config.json has it; "" when unset). */
tk_status tk_trainer_config_get(const tk_trainer_config *c, const char *name, tk_buf *out);
/* Applies every key of a JSON object written as config.json (unknown keys are ignored so
 * that informational entries can live there). */
tk_status tk_trainer_config_apply_json(tk_trainer_config *c, const char *json, const char *where);
/* Appends the configuration as a JSON object keyed by option names. */
tk_status tk_trainer_config_json(const tk_trainer_config *c, tk_buf *out);
/* Appends "\n  --name: checkpoint X, now Y" to diff for every option a resume must match
 * whose value differs between the two config.json texts. */
tk_status tk_trainer_config_diff(const char *saved, const char *now, tk_buf *diff);
/* Appends v as a JSON string ("null" for NULL). */
void tk_json_string(tk_buf *b, const char *v);

/* Polled by a run between steps (set from any thread or a signal handler). */
typedef struct tk_train_control {
    atomic_int pause;         /* write a checkpoint and stop (resumable) */
    atomic_int cancel;        /* stop without writing a checkpoint */
    int outcome;              /* set by the run: 0 finished, 1 paused, 2 cancelled */
} tk_train_control;

/* Runs the training described by cfg (cfg->model, cfg->data, cfg->out required), reporting
 * progress to on_event (may be NULL). ctl (may be NULL) is polled between steps: pause saves
 * a checkpoint and returns TK_OK early (resume later), cancel returns TK_OK early without
 * one; ctl->outcome says which happened.
 *
 * Auto rules (the run's config.json records the values chosen):
 *   max-seq-len  min(model context, 1024)
 *   epochs       OpenAI's rule on the number of training examples (tk_data_auto_epochs)
 *   batch shape  about min(256, examples x epochs) optimizer steps: packed rows of
 *                max-seq-len tokens (shorter for small data, never shorter than the longest
 *                example), one row per micro-batch, up to 32 micro-batches per step
 *                (see plan() in plan.c)
 *   lr           LoRA 1e-3, full fine-tuning 2e-5 (see plan() for why)
 *   warmup       3% of the steps
 *   eval-every   a tenth of the steps (when there is validation data)
 *   save-every   a tenth of the steps */
tk_status tk_trainer_run(const tk_trainer_config *cfg, tk_train_event_fn on_event, void *ud, tk_train_control *ctl);

/* OpenAI's `auto` epochs (as tk_data_auto_epochs). */
int tk_trainer_auto_epochs(uint64_t n_examples);
#endif
