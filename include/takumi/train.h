/* Training jobs: supervised fine-tuning (LoRA or full) of a model on a dataset file, into a
 * run folder (RUN/config.json, metrics.jsonl, checkpoints/, samples.json, report.html,
 * adapter/ and adapter.gguf; README "takumi train" documents the layout).
 *
 *   tk_train_options *o; tk_train_options_new(&o);
 *   tk_train_options_set(o, "model", "m.gguf"); tk_train_options_set(o, "data", "d.jsonl");
 *   tk_train_options_set(o, "out", "RUN");       // any `takumi train --help` option, by name
 *   tk_job *j; tk_job_new(o, on_event, ud, &j);  // the job copies the options
 *   tk_job_start(j);                             // its own thread (or tk_job_run: this one)
 *   ... tk_job_get_status(j), tk_job_pause(j), tk_job_cancel(j) from any thread ...
 *   tk_job_wait(j); tk_job_free(j);
 *
 * Pause writes a checkpoint and stops; tk_job_resume(RUN, …) continues the run exactly
 * (bit-identical losses for the same thread count). Cancel stops without writing one: the
 * run folder keeps its last periodic checkpoint, from which a resume still continues.
 * Determinism: every random choice comes from the seed option, so a seed gives a
 * bit-identical run for a given thread count.
 * Threads: a job's callback runs on the thread that runs the job; the "threads" option sets
 * the process-wide compute thread count (tk_set_threads), so run one job at a time per
 * process when jobs ask for different counts. */
#ifndef TAKUMI_TRAIN_H
#define TAKUMI_TRAIN_H
#include "takumi/core.h"

/* ---- progress events ---------------------------------------------------------------- */

typedef enum tk_train_event_kind {
    TK_EV_START = 0,   /* message: what is being trained (steps, examples, epochs) */
    TK_EV_STEP,        /* one optimizer step done: step metrics filled */
    TK_EV_EVAL,        /* a validation pass done: valid_* filled */
    TK_EV_CHECKPOINT,  /* message: the checkpoint folder */
    TK_EV_WARNING,     /* message: e.g. overfitting, truncation */
    TK_EV_INFO,        /* message: informational (early stop, resume, samples, pause…) */
    TK_EV_DONE,        /* the run ended (message: why) */
} tk_train_event_kind;

typedef struct tk_train_event {
    tk_train_event_kind kind;
    int64_t step, total_steps;
    double epoch;            /* epochs done, fractional */
    int64_t n_epochs;        /* planned epochs */
    double train_loss, lr, grad_norm;   /* STEP: the step's mean loss per target token, its learning rate, pre-clip norm */
    int64_t tokens;          /* tokens in this step (non-padding) */
    double tokens_per_s, step_s, elapsed_s, eta_s, peak_rss_mb;
    double valid_loss, valid_ppl, valid_acc;   /* EVAL */
    int64_t valid_tokens;
    int n_metrics;           /* STEP / EVAL: the objective's metrics (preference objectives: rewards/chosen, …, named as TRL
                                logs them), means over the step's / validation's pairs; 0 for SFT */
    const char *const *metric_names;
    const double *metrics;   /* [n_metrics], valid during the callback only */
    const char *message;     /* valid during the callback only */
} tk_train_event;

/* Called on the thread that runs the job, in step order; must not call back into the job
 * except tk_job_get_status / tk_job_pause / tk_job_cancel. */
typedef void (*tk_train_event_fn)(const tk_train_event *e, void *ud);

/* The progress text of a STEP event: "step 12/300 · epoch 0.40/3 · loss 1.2345 · lr 2.00e-04 ·
 * 2400 tok/s · ETA 5m12s · 812 MiB" (no newline) into buf. Thread-safe. */
void tk_progress_format(const tk_train_event *e, char *buf, size_t n);
/* "5m12s", "1h03m", "42s" into buf. Thread-safe. */
void tk_duration_format(double s, char *buf, size_t n);

/* ---- options --------------------------------------------------------------------------- */

/* One option as `takumi train --help` lists it. */
typedef struct tk_train_option_info {
    const char *name;        /* without "--" */
    const char *arg;         /* value text ("N", "auto|X", "" for a flag) */
    const char *dflt;        /* default, as text */
    const char *help;
    bool resume_must_match;  /* a resume refuses a different value (it shapes the trajectory) */
} tk_train_option_info;

/* Number of options; static data, thread-safe. */
int tk_train_option_count(void);
/* Option i (0 <= i < count, in --help order); false when out of range. Thread-safe. */
bool tk_train_option_get_info(int i, tk_train_option_info *out);

typedef struct tk_train_options tk_train_options;
/* New options holding every default. Free with tk_train_options_free. */
tk_status tk_train_options_new(tk_train_options **out);
void tk_train_options_free(tk_train_options *o);
/* Sets option name (no dashes) from its text value; flags take NULL/"true"/"false".
 * TK_ERR_ARG with a message naming the option for unknown names and bad values. Not
 * thread-safe on the same o. */
tk_status tk_train_options_set(tk_train_options *o, const char *name, const char *value);
/* Writes option name's value as text into buf (as config.json has it: "auto", numbers,
 * names; "" when unset), truncated to n bytes. TK_ERR_ARG for unknown names. */
tk_status tk_train_options_get(const tk_train_options *o, const char *name, char *buf, size_t n);
/* Applies RUN/config.json of the run folder run_dir (the resolved options of an earlier run)
 * on top of o, and sets "resume". TK_ERR_NOT_FOUND when run_dir has no config.json;
 * TK_ERR_FORMAT / TK_ERR_ARG naming the file for a bad one. */
tk_status tk_train_options_load_run(tk_train_options *o, const char *run_dir);

/* ---- jobs -------------------------------------------------------------------------------- */

typedef enum tk_job_state {
    TK_JOB_READY = 0,    /* created, not started */
    TK_JOB_RUNNING,
    TK_JOB_DONE,         /* finished (all steps, --max-steps or early stop): adapter and report written */
    TK_JOB_PAUSED,       /* stopped by tk_job_pause after writing a checkpoint: resumable */
    TK_JOB_CANCELLED,    /* stopped by tk_job_cancel, no checkpoint written */
    TK_JOB_FAILED,       /* stopped by an error (tk_job_wait / tk_job_run return it) */
} tk_job_state;

typedef struct tk_job_status {
    tk_job_state state;
    int64_t step, total_steps;   /* optimizer steps done / planned (0 until planned) */
    double train_loss;           /* of the last step (NAN before the first) */
    double valid_loss;           /* of the last validation (NAN before the first) */
    tk_status result;            /* TK_OK unless FAILED */
} tk_job_status;

typedef struct tk_job tk_job;
/* A job for options o ("model", "data" and "out" must be set, else TK_ERR_ARG naming the
 * missing option); o is copied. on_event (may be NULL) receives the progress events. Free
 * with tk_job_free. */
tk_status tk_job_new(const tk_train_options *o, tk_train_event_fn on_event, void *ud, tk_job **out);
/* A job that continues the run in run_dir (paused, interrupted or killed) with the options
 * of its config.json: as tk_train_options_load_run + tk_job_new. */
tk_status tk_job_resume(const char *run_dir, tk_train_event_fn on_event, void *ud, tk_job **out);
/* Runs the job on the calling thread until it finishes, pauses, is cancelled or fails;
 * returns TK_OK for the first three (tk_job_get_status tells which). A job runs once. */
tk_status tk_job_run(tk_job *j);
/* Starts the job on a thread of its own and returns at once (TK_ERR_ARG if already started). */
tk_status tk_job_start(tk_job *j);
/* Waits for a started job to end and returns as tk_job_run would, with the job's error
 * message as this thread's tk_last_error(). Returns at once for a job that has ended. */
tk_status tk_job_wait(tk_job *j);
/* Asks the job to write a checkpoint and stop after the current step. Thread-safe and
 * async-signal-safe (a SIGINT handler may call it). */
void tk_job_pause(tk_job *j);
/* Asks the job to stop after the current step without writing a checkpoint. Thread-safe
 * and async-signal-safe. */
void tk_job_cancel(tk_job *j);
/* A snapshot of the job's progress. Thread-safe. */
tk_job_status tk_job_get_status(const tk_job *j);
/* Waits for a started job, then frees it; accepts NULL. */
void tk_job_free(tk_job *j);
/* ---- reward models --------------------------------------------------------------------- */

/* One scored preference pair: the record's line and the rewards of its chosen and rejected answers. */
typedef struct tk_reward_pair {
    uint64_t line;
    double chosen, rejected;
    const int32_t *chosen_ids, *rejected_ids;   /* the scored token sequences (valid during the callback) */
    int32_t n_chosen, n_rejected;
} tk_reward_pair;
typedef void (*tk_reward_fn)(const tk_reward_pair *p, void *ud);
typedef struct tk_reward_opts {
    const char *model, *tokenizer;   /* base model (tokenizer: NULL = the model's) */
    const char *adapter;             /* a reward model in PEFT layout (task_type SEQ_CLS, "score" in modules_to_save),
                                        as `takumi train --objective reward` writes RUN/adapter/ */
    const char *data;                /* preference pairs (any layout `takumi data check` calls preference) */
    const char *template_name;       /* NULL = recognised from the model */
    int32_t max_seq;                 /* each side cut to this many tokens (0: min(1024, the model's context)) */
} tk_reward_opts;
/* Scores every pair of o->data with the reward model (reward = score head . final hidden state of each
 * sequence's last token), calling fn (may be NULL) per pair in file order; *n_pairs and *accuracy (the
 * fraction with chosen > rejected) may be NULL. Bad input fails naming the file and field. Not thread-safe
 * with other calls that set the thread count. */
tk_status tk_reward_score(const tk_reward_opts *o, tk_reward_fn fn, void *ud, int64_t *n_pairs, double *accuracy);

/* ---- classifiers ------------------------------------------------------------------------- */

/* One classified text (valid during the callback). */
typedef struct tk_class_pred {
    uint64_t line;                 /* the record's line (opts.data), 0 for one of opts.texts */
    const char *text;
    int32_t label;                 /* the predicted label's index (argmax, first on ties); -1 for a regression */
    double value;                  /* regression: the predicted value; classify: the predicted label's probability */
    const double *probs;           /* [n_labels] probabilities (softmax of the logits); NULL for a regression */
    const double *logits;          /* [n_labels] the head's outputs (a regression: [1], the value) */
    const int32_t *ids;            /* the classified token ids (n_ids: after the cut to max_seq) */
    int32_t n_ids;
    int32_t truth;                 /* classify with opts.data: the record's label index, else -1 */
    double truth_value;            /* regression with opts.data: the record's value, else NAN */
} tk_class_pred;
typedef struct tk_classifier_info {
    int32_t n_labels;              /* 1 for a regression */
    const char *const *labels;     /* id2label in index order */
    bool regress;
} tk_classifier_info;
typedef void (*tk_classify_fn)(const tk_class_pred *p, const tk_classifier_info *info, void *ud);
typedef struct tk_classify_opts {
    const char *model, *tokenizer;   /* base model (tokenizer: NULL = the model's) */
    const char *adapter;             /* RUN/adapter of `takumi train --task classify|regress` */
    const char *const *texts;        /* texts to classify (n_texts of them), or NULL and: */
    int32_t n_texts;
    const char *data;                /* labelled records: {"text", "label"} JSONL or text<TAB>label TSV (label: a name or index) */
    int32_t max_seq;                 /* texts cut to this many tokens (0: min(1024, the model's context)) */
} tk_classify_opts;
typedef struct tk_classify_summary {
    int64_t n;                       /* texts classified */
    double accuracy;                 /* classify with data: the fraction predicted right (else NAN) */
    double mse;                      /* regression with data: mean squared error (else NAN) */
} tk_classify_summary;
/* Classifies every text (or record of o->data, in file order) with the classifier, calling fn (may be NULL) per
 * text; *sum may be NULL. A record whose label the classifier does not know fails naming the file and line. Not
 * thread-safe with other calls that set the thread count. */
tk_status tk_classify_texts(const tk_classify_opts *o, tk_classify_fn fn, void *ud, tk_classify_summary *sum);

/* ---- data parallelism over MPI (`mpirun -np N takumi train ...`) ---------------------------
 * With N ranks, every rank loads the model and data; each optimizer step's micro-batches are
 * shared round-robin among the ranks, gradients and loss sums are summed over them, and every
 * rank applies the same AdamW step (replicated optimizer state). The global batch, schedule and
 * `auto` rules are those of one process with the same options. Rank 0 alone owns the run folder
 * (lock, metrics, checkpoints, adapters, report, events); on --resume it reads the checkpoint and
 * sends the state to the others. A training job under N > 1 ranks must run on the thread that
 * called tk_dist_init, one job at a time (MPI_THREAD_SERIALIZED). */
/* Joins the ranks when the process was started by an MPI launcher with more than one process
 * (MPI_Init); otherwise one rank. Fails when started as one of several processes by a takumi built
 * without MPI (each would train alone). Call once, before any job, from the main thread. */
tk_status tk_dist_init(int *argc, char ***argv);
/* Leaves MPI after a successful run (every rank must call it). After an error, exit without it: the
 * launcher then stops the other ranks (they would otherwise wait for this one). Not thread-safe. */
void tk_dist_finalize(void);
/* This process's rank in [0, size) and the number of ranks (0 and 1 without MPI). Thread-safe after init. */
int tk_dist_rank(void);
int tk_dist_size(void);
/* The process count an MPI launcher announced in the environment (0 when none). Thread-safe. */
int tk_dist_mpi_env_size(void);
/* Whether this build has MPI (TK_HAVE_MPI). Thread-safe. */
bool tk_dist_built_with_mpi(void);

#endif
