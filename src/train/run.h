/* One training run in progress: the state the trainer's parts share (trainer.c drives
 * them in order). Internal to src/train/.
 *
 *   plan.c         load the model and data, resolve the auto options, plan the epochs
 *   run_folder.c   RUN/config.json, the resume checks, "is this folder already a run"
 *   loop.c         one optimizer step, a validation pass, a checkpoint
 *   samples.c      prompts answered before/after training, RUN/samples.json
 *   adapter_out.c  RUN/adapter/ and RUN/adapter.gguf
 *   run_report.c   RUN/report.html's summary and data tables
 *   pref_run.c     preference objectives (dpo, orpo, simpo, kto, reward): options, reference log-probs, pair steps
 *   reward_out.c   a reward model's score head in RUN/adapter/ (PEFT SEQ_CLS layout)
 *   distill_run.c  distillation: the teacher model, its forward per micro-batch, distill steps and validation
 *   distill_answers.c  the teacher's answers (RUN/teacher_answers.jsonl): questions-only data, context
 *                  distillation, a teacher of another vocabulary (sequence-level distillation)
 *   distill_context.c  context distillation: the teacher's examples (FILE in the system prompt) aligned
 *                  with the student's at the answer tokens
 *   grpo_run.c     reinforcement fine-tuning (grpo): prompts, sampling, grading, advantages, updates, graded validation
 *   self_run.c     self-training (self): rounds of sample, grade, keep, train (each an ordinary run), driven from tk_trainer_run
 *   classify_run.c --task classify|regress: options, data, steps and validation (through the pref path)
 *   classify_out.c a classifier's head and labels in RUN/adapter/ (PEFT SEQ_CLS layout; shared with reward_out.c) */
#ifndef TK_TRAIN_RUN_H
#define TK_TRAIN_RUN_H
#include "train/trainer.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/pairs.h"
#include "objective/distill.h"
#include "objective/dpo.h"
#include "objective/kto.h"
#include "objective/reward.h"
#include "objective/classify.h"
#include "train/classify_data.h"
#include "core/core.h"

typedef struct tk_run {
    tk_trainer_config c;          /* resolved copy */
    int precision;                /* the tk_train_precision this run uses: FP32 or BF16 (--precision auto resolved) */
    tk_train_event_fn fn; void *ud;
    tk_train_control *ctl;        /* pause / cancel requests (may be NULL) */
    int lock_fd;                  /* RUN/.lock, held for the run's lifetime (-1: none) */
    int64_t *shard_first;         /* N > 1 MPI ranks: rank r owns the optimizer state of params [first[r], first[r+1]) (dist.h) */
    struct tk_dist_overlap *ovl;  /* N > 1 MPI ranks: the gradient buckets summed during the backward (dist.h) */
    bool created_out;             /* this run created --out (removed again, with the lock, when it fails empty) */
    tk_model *m;
    const tk_tokenizer *tok;
    tk_chat_family fam;
    tk_sft_params sp, sample_sp;  /* data parameters; those of the file the sample prompts come from */
    tk_sft_data train, val;       /* SFT examples, or preference pairs (pairs.h) when pref */
    bool has_val;
    bool pref;                    /* a preference objective: data, steps and validation go through pref_run.c */
    bool kto, reward;             /* which one, when not of the DPO family */
    tk_dpo_params dp;             /* its parameters (dpo, orpo, simpo) */
    tk_kto_params kp;             /* kto */
    tk_reward_params rp;          /* reward */
    tk_pair_buf pb;               /* its micro-batches */
    bool cls;                     /* --task classify|regress (also sets pref: steps and validation through pref_run.c) */
    tk_classify_params cp;        /* its parameters */
    char **labels; int32_t n_labels;   /* --labels */
    tk_cls_labels lab_train, lab_val;  /* the examples' labels by line */
    tk_cls_buf cb;                /* its micro-batches */
    bool distill;                 /* --objective distill: SFT data, steps and validation through distill_run.c */
    tk_distill_params distp;      /* its parameters */
    tk_model *teacher;            /* the teacher model (loaded once) */
    tk_forward *teacher_fw;       /* its forward workspace (no gradients) */
    bool grpo;                    /* --objective grpo: prompt sets, steps and validation through grpo_run.c */
    struct tk_grpo_run *gr;       /* its state */
    char *ctx_text;               /* --teacher-context: the file's text (NULL: none) */
    char *answers_path;           /* RUN/teacher_answers.jsonl when the run trains on it (NULL: --data) */
    bool seqkd;                   /* a teacher of another vocabulary: SFT on its answers (r->distill false) */
    tk_sft_data tctx;             /* context distillation: the teacher's examples (context in the system prompt), by line */
    int64_t *t_of_train, *t_of_val;   /* the teacher example of each training / validation example */
    int32_t *t_shift_train, *t_shift_val; /* teacher position - student position at the answer tokens, per example */
    float *t_h; size_t t_h_cap;   /* [B*T x C] the teacher's hidden states gathered at the student's rows */
    struct tk_eval_config *evalc; /* --eval-config, loaded before training (eval_after.c) */
    tk_buf eval_text;             /* its final table, for the report */
    double *ref_train, *ref_val;  /* --precompute-ref: reference log-prob sums, [2 x pairs] (chosen, rejected; KTO: example, KL) */
    double *ref_buf; int32_t ref_cap;   /* a micro-batch's reference sums */
    const char *sample_path;      /* file the sample prompts come from */
    uint64_t *sample_lines; int32_t n_sample_lines;
    tk_train_ctx *tc;
    tk_param_set *ps;
    tk_adamw opt;
    tk_train_state st;
    int64_t n_epochs;             /* planned */
    int64_t *epoch_rows;          /* rows per planned epoch */
    tk_rows rows; int64_t rows_epoch;
    tk_rows vrows;
    int32_t max_cols;             /* longest row a micro-batch can have */
    tk_batch_buf bb;
    tk_metrics mx;
    tk_buf config_json;           /* resolved configuration + info */
    char *path_metrics, *path_config, *path_samples, *path_report;
    int64_t steps_here; double time_here;   /* steps and step time in this process (ETA) */
    tk_sft_prompt *prompts; int32_t n_prompts;
    char **before, **after;
} tk_run;


/* Reports e to the run's callback. */
void tk_run_emit(tk_run *r, tk_train_event *e);
/* Reports a message event (also written to metrics.jsonl as event_name when log). */
void tk_run_emitf(tk_run *r, tk_train_event_kind k, const char *event_name, bool log, const char *fmt, ...) TK_PRINTF(5, 6);

/* plan.c */
/* Loads c's model (and --tokenizer), resolves its chat template (--template, else the model's; TK_CHAT_UNKNOWN when
 * none) and --max-seq-len (auto: min(context, 1024); checked against the context). *m is the caller's to free. */
tk_status tk_run_open_model(tk_trainer_config *c, tk_model **m, tk_chat_family *fam);
tk_status tk_run_load_inputs(tk_run *r);
tk_status tk_run_plan(tk_run *r);
/* Makes r->rows the rows of `epoch` (shuffled, packed; computed once per epoch). */
tk_status tk_run_rows(tk_run *r, int64_t epoch);

/* run_folder.c */
bool tk_run_folder_in_use(const char *out);
/* Creates --out if needed and locks it (RUN/.lock) for this run: a second process training
 * into the same folder is refused (TK_ERR_BUSY, naming the holder's pid). */
tk_status tk_run_folder_lock(tk_run *r);
tk_status tk_run_config_json(tk_run *r);
tk_status tk_run_check_resume(tk_run *r, const char *saved, const char *where);
/* Fresh start or resume from the newest checkpoint (*resumed says which); opens metrics.jsonl
 * and writes config.json. */
tk_status tk_run_open(tk_run *r, bool *resumed);
/* With N > 1 MPI ranks, after rank 0's tk_run_open: rank 0's *resumed, state, weights and moments (and
 * so the dropout counter) to every rank, then the optimizer state sharded (ZeRO-1: each rank keeps the
 * moments of its own range, r->shard_first) (dist_run.c). Every rank calls it. */
tk_status tk_run_dist_share(tk_run *r, bool *resumed);
/* The optimizer update number tick (the schedule's; the step, or grpo's step x passes + pass): one process steps every
 * parameter; N ranks each step their own range and share the weights (dist_run.c). *gn: the gradient norm. */
tk_status tk_run_dist_update(tk_run *r, int64_t tick, double *gn);
/* rank 0 (the others return at once): the communication time and volume of the run so far as an info event. */
void tk_run_dist_report(tk_run *r);
/* Is micro-batch j of a step (or validation batch j) this rank's? With N > 1 ranks, j mod N == rank; for a
 * training micro-batch (counter0: the dropout counter at the step's start; NULL for validation) the counter is set to
 * the one-process run's, *counter0 + j, and for the rank's last of the step's n_micro micro-batches the
 * backward starts the gradient sums layer by layer (r->ovl). Always true for one process. */
bool tk_run_micro_mine(tk_run *r, int64_t j, const uint64_t *counter0, int64_t n_micro);
/* The sums of a step or validation over the ranks: *ls, *ws, *toks and (preference runs) the objective's
 * metric sums. Every rank calls it. */
tk_status tk_run_dist_sums(tk_run *r, double *ls, double *ws, int64_t *toks, double *metrics);

/* loop.c */
double tk_run_epoch_progress(tk_run *r);
tk_status tk_run_step(tk_run *r);
tk_status tk_run_evaluate(tk_run *r);
tk_status tk_run_save(tk_run *r);

/* samples.c */
tk_status tk_run_answer_all(tk_run *r, char ***out);
void tk_run_free_answers(char **a, int32_t n);
tk_status tk_run_write_samples(tk_run *r);
tk_status tk_run_read_before(tk_run *r);

/* pref_run.c */
/* Checks the objective options against the objective (an option that does not apply fails, naming
 * it) and resolves their autos; fills r->dp. Before anything is loaded. */
tk_status tk_run_pref_options(tk_run *r);
/* --precompute-ref: the reference log-probabilities of every training and validation pair. */
tk_status tk_run_pref_precompute(tk_run *r);
/* The micro-batches of one optimizer step over rows [row, row + n): adds to *ls, *ws, *toks, metrics[]. */
tk_status tk_run_pref_micro(tk_run *r, int64_t n, double *ls, double *ws, int64_t *toks, double *metrics);
/* A validation pass over the pairs: loss_sum, norm, tokens and metric sums. */
tk_status tk_run_pref_eval(tk_run *r, double *ls, double *ws, int64_t *toks, double *metrics);

/* distill_run.c */
/* Resolves --distill-loss and --temperature into r->distp; fails when --teacher is missing. */
tk_status tk_run_distill_options(tk_run *r);
/* Loads the teacher (after tk_run_plan: r->max_cols known) and checks its vocabulary against the student's. */
tk_status tk_run_distill_load(tk_run *r);
/* One micro-batch already in r->bb, filled from rows [r0, r0 + nb) of r->rows (training: gradients scaled
 * by grad_scale, adds to *ls / *ws). */
tk_status tk_run_distill_micro(tk_run *r, int64_t r0, int32_t nb, float grad_scale, double *ls, double *ws);
/* The distillation loss of the micro-batch in r->bb (rows [r0, r0 + nb) of r->vrows) without gradients: adds to *ls / *ws. */
tk_status tk_run_distill_eval(tk_run *r, int64_t r0, int32_t nb, double *ls, double *ws);
void tk_run_distill_free(tk_run *r);

/* grpo_run.c */
/* Checks and resolves the grpo options (--grader required; loss, group size, clipping, sampling); allocates r->gr. */
tk_status tk_run_grpo_options(tk_run *r);
/* After the model: the prompt sets (r->train / r->val hold the rendered prompts, no targets) and the grader (+ judge). */
tk_status tk_run_grpo_load(tk_run *r);
/* The batch shape's autos (1 prompt a micro-batch, 4 micro-batches a step, 1 epoch); *longest: the longest row (prompt + answer). */
tk_status tk_run_grpo_plan(tk_run *r, int32_t *longest);
/* After the plan (steps, the longest row known): the grader-failure limit and the step's buffers, sized once. */
tk_status tk_run_grpo_prepare(tk_run *r);
/* One step: sample, grade, advantages, --passes updates; the STEP event with TRL's metric names. */
tk_status tk_run_grpo_step(tk_run *r);
/* Greedy answers to the validation prompts, graded: the EVAL event (valid_reward, ...). */
tk_status tk_run_grpo_evaluate(tk_run *r);
/* The GRPO objective's params for the training context. */
const void *tk_run_grpo_params(const tk_run *r);
void tk_run_grpo_free(tk_run *r);

/* self_run.c */
/* Checks --grader and resolves the self-training autos (group size 4, 256 new tokens, temperature 1, 2 rounds). */
tk_status tk_run_self_options(tk_run *r);
/* The whole self-training run (tk_trainer_run hands --objective self to it); arguments as tk_trainer_run. */
tk_status tk_self_run(const tk_trainer_config *cfg, tk_train_event_fn on_event, void *ud, tk_train_control *ctl);
/* distill_answers.c */
/* After the student model is loaded, before its data: reads --teacher-context, loads a --teacher of another
 * vocabulary (then r->seqkd: SFT on its answers), and when the teacher must answer (questions-only records,
 * --teacher-answers, another vocabulary) generates the answers greedily into RUN/teacher_answers.jsonl (chat
 * JSONL, atomic; reused when its key file matches the inputs, as on --resume); r->answers_path is then the
 * training data. With --teacher-context, the data is always normalised into that file (one record a line). */
tk_status tk_run_distill_prepare(tk_run *r);
/* True when apath is readable and the key file kpath holds key (a file made from the same inputs). */
bool tk_run_key_matches(const char *kpath, const char *apath, uint64_t key);
/* augment_data.c */
/* --augment auto paraphrases chat data of fewer records than TK_AUGMENT_AUTO_MAX, TK_AUGMENT_AUTO_N times per record,
 * when --augment-model names a writer. Not with the base model as its own writer: measured on SmolLM2-135M and
 * examples/support (bench/facts_study.sh, README "Defaults that make facts stick"), its paraphrases did not raise
 * the held-out fact-match. */
#define TK_AUGMENT_AUTO_MAX 1000
#define TK_AUGMENT_AUTO_N 2
/* --augment's value: auto (NULL too) -> -1, off -> 0, N (0..16) -> N; anything else is refused. Thread-safe. */
tk_status tk_run_augment_parse(const char *v, int *n);
/* After the data path is known (tk_run_distill_prepare), before the data is loaded: with --augment N (auto: 2 with
 * --augment-model and chat data of fewer than 1000 records, else off; nothing for other objectives or layouts), writes
 * RUN/augmented-train.jsonl (the records and up to N paraphrases of each, tk_augment_run, written by
 * --augment-model or the base) and makes it the data; reused when RUN/augmented-train.key matches the inputs. */
tk_status tk_run_augment_prepare(tk_run *r);
/* The data file the run trains on: r->answers_path, else --data. */
const char *tk_run_data_path(const tk_run *r);

/* RUN/teacher_answers.jsonl as the teacher reads it: every record with --teacher-context at the start of its system
 * prompt, one JSONL line per line of the file (so tk_sft_data.line numbers match), appended to out. */
tk_status tk_run_context_records(tk_run *r, tk_buf *out);

/* distill_context.c */
/* Context distillation, after tk_run_plan: the teacher's examples (--teacher-context in the system prompt) of
 * every training and validation example, their answer offsets checked; raises r->max_cols to the longest. */
tk_status tk_run_context_load(tk_run *r);
/* The teacher's final hidden states for the micro-batch in r->bb (rows [r0, r0 + nb) of rows over d), gathered
 * at the student's positions into *h ([B*T x C], rows without a target zero); *head the teacher's head. */
tk_status tk_run_context_hidden(tk_run *r, const tk_sft_data *d, const tk_rows *rows, const int64_t *t_of,
                                const int32_t *shift, int64_t r0, int32_t nb, const float **h, tk_lm_head *head);
/* classify_run.c */
/* Checks the task options (--task, --labels, --pooling, --method head; those that do not apply fail, naming the
 * option) and fills r->cp, r->labels; sets r->cls and r->pref for a task. Before anything is loaded. */
tk_status tk_run_cls_options(tk_run *r);
/* Loads the training (val false) or validation file into r->train / r->val and their labels. */
tk_status tk_run_cls_load(tk_run *r, const char *path, bool val);
/* As tk_run_pref_micro / tk_run_pref_eval, for a task head: units are examples. */
tk_status tk_run_cls_micro(tk_run *r, int64_t n, double *ls, double *ws, int64_t *toks, double *metrics);
tk_status tk_run_cls_eval(tk_run *r, double *ls, double *ws, int64_t *toks, double *metrics);
void tk_run_cls_free(tk_run *r);
/* h with the training labels folded in (a resume on relabelled data is refused like one on other data); h unchanged
 * without a task. */
uint64_t tk_run_cls_hash(const tk_run *r, uint64_t h);

/* The objective's params struct for the training context (NULL: SFT). */
const void *tk_run_objective_params(const tk_run *r);

/* eval_after.c */
/* Loads --eval-config before training (a bad file or a method without a PEFT adapter fails here, not after hours). */
tk_status tk_run_eval_load(tk_run *r);
/* After the adapter is written: the evaluation of RUN/adapter on the base, into RUN/eval/ (results.json with the
 * targets' verdicts, examples.jsonl, report.html), its table as events. */
tk_status tk_run_eval_after(tk_run *r);
/* Every E.json "every" steps (not at the last): the adapter as it is into RUN/eval/step-N/adapter/ and its evaluation there. */
tk_status tk_run_eval_step(tk_run *r);

/* adapter_out.c, run_report.c */
tk_status tk_run_write_adapter(tk_run *r, const char *last_ckpt);
/* adapter_out.c: the PEFT adapter as CKPT/adapter/ (language-model adapters with a PEFT layout; else nothing). */
tk_status tk_run_write_ckpt_adapter(tk_run *r, const char *ckpt);
/* reward_out.c: after tk_run_write_adapter, a reward model's head into RUN/adapter/ (PEFT's SEQ_CLS layout). */
tk_status tk_run_write_reward_head(tk_run *r);
/* classify_out.c: a classifier's head, labels and (with an adapter) the PEFT SEQ_CLS layout in RUN/adapter/ (classify.h). */
tk_status tk_run_write_classifier(tk_run *r);
/* PEFT's SEQ_CLS layout for an adapter folder dir already written: the head parameter added to adapter_model.safetensors
 * as head->name, adapter_config.json with task_type SEQ_CLS and modules_to_save ["classifier", "score"]. */
tk_status tk_run_seq_cls_adapter(const char *dir, const tk_param *head);
tk_status tk_run_write_report(tk_run *r);
#endif
