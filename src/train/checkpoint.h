/* Training checkpoints: RUN/checkpoints/step-NNNNNNNN/ holding
 *   params.safetensors   every trainable parameter ("param/<name>") and its AdamW moments
 *                        ("adam_m/<name>", "adam_v/<name>"), f32; the adapter's extra state
 *                        ("state/adapter", tk_train_extra_state: AdaLoRA's rank allocator) when it has one
 *   trainer_state.json   step, epoch, data cursor, dropout counter, seed, data hash,
 *                        schedule length, best validation loss, patience counter, the
 *                        overfitting tracker, tokens seen, elapsed time, the checksum of
 *                        params.safetensors, and the resolved run configuration
 *   adapter/             that step's adapter in PEFT layout (LoRA-family runs; written by the
 *                        trainer after the folder is in place: tk_run_write_ckpt_adapter)
 * A checkpoint is written into step-NNNNNNNN.tmp/ (each file fsync'd), the folder fsync'd
 * and renamed into place, and the parent fsync'd: a crash (SIGKILL, power loss) leaves
 * either the complete checkpoint or none; leftovers named *.tmp are ignored and removed.
 * After a save only the newest K checkpoints are kept. A load verifies the checkpoint (state
 * parses, its step is the folder's, the params file's checksum matches) and says whether a
 * failure means the checkpoint is damaged, so that a resume can set it aside
 * (step-N.damaged) and fall back to the previous one. */
#ifndef TK_TRAIN_CHECKPOINT_H
#define TK_TRAIN_CHECKPOINT_H
#include "train/optim.h"

typedef struct tk_train_state {
    int64_t step;              /* optimizer steps done */
    int64_t epoch;             /* epoch of the next step (0-based) */
    int64_t row;               /* first row of that epoch the next step uses */
    int64_t total_steps;       /* schedule length */
    uint64_t counter;          /* dropout counter (tk_train_counter) */
    uint64_t seed;
    uint64_t data_hash;        /* tk_sft_hash of the training examples */
    double best_val;           /* best validation loss (INFINITY: none yet) */
    int64_t best_step;
    int32_t bad_evals;         /* evaluations without improvement since the best (patience) */
    double prev_val;           /* validation loss at the previous evaluation (NAN: none) */
    double prev_train;         /* mean train loss over the interval before the previous evaluation (NAN: none) */
    double train_loss_sum, train_weight_sum;  /* train loss since the previous evaluation */
    int64_t tokens_seen;       /* non-padding tokens trained on */
    double elapsed_s;          /* training wall time so far */
    bool done;                 /* the run finished (max steps, epochs or early stop) */
    bool stopped_early;
    uint64_t params_hash;      /* tk_hash_bytes of params.safetensors (set by tk_ckpt_save; 0 = not recorded) */
} tk_train_state;

/* A fresh state: zeros, best_val INFINITY, prev_val/prev_train NAN. */
tk_train_state tk_train_state_init(void);

/* Saves ps (weights + moments) and s as checkpoint s->step under run_dir/checkpoints/,
 * then removes all but the newest `keep` checkpoints (keep <= 0: keep all). config_json (a
 * JSON object, may be NULL) is stored in the state file under "config". *path_out (may be
 * NULL) receives the checkpoint folder (caller frees). */
tk_status tk_ckpt_save(const char *run_dir, const tk_param_set *ps, const tk_train_state *s, const char *config_json, int keep,
                       char **path_out);
/* The same with the adapter's extra state (extra[n_extra], n_extra 0 = none) saved beside the parameters. */
tk_status tk_ckpt_save_ex(const char *run_dir, const tk_param_set *ps, const float *extra, int64_t n_extra, const tk_train_state *s,
                          const char *config_json, int keep, char **path_out);
/* Finds the newest complete checkpoint folder under run_dir/checkpoints (caller frees
 * *path); TK_ERR_NOT_FOUND when there is none. */
tk_status tk_ckpt_latest(const char *run_dir, char **path);
/* Every complete checkpoint folder under run_dir/checkpoints, newest first (*paths: n
 * strings; free each and the array); n = 0 when there is none. */
tk_status tk_ckpt_list(const char *run_dir, char ***paths, size_t *n);
/* Moves a damaged checkpoint folder aside to "<dir>.damaged" (or .damaged.N), where the
 * lookups no longer see it; *moved_to (may be NULL) receives the new name (caller frees). */
tk_status tk_ckpt_set_aside(const char *dir, char **moved_to);

/* Called by tk_ckpt_load once the state is read and verified, before any tensor is loaded:
 * a non-OK return (the run's options differ, …) ends the load as not damaged. */
typedef tk_status (*tk_ckpt_check_fn)(void *ctx, const tk_train_state *s, const char *config_json, const char *dir);
/* Loads a checkpoint folder into ps (which must hold exactly the same parameter names and
 * shapes, e.g. a fresh training context of the same configuration) and *s, after verifying
 * it: trainer_state.json parses, its step is the folder's, params.safetensors has the
 * recorded checksum; then check (may be NULL) sees the state and configuration. *config_json
 * (may be NULL) receives the stored configuration object as text (caller frees; NULL if
 * none). On failure *damaged (may be NULL) says whether the checkpoint's files are at fault
 * (unreadable, garbled, checksum mismatch, missing or misshapen tensors) rather than the
 * caller's check. */
tk_status tk_ckpt_load(const char *dir, tk_param_set *ps, tk_train_state *s, char **config_json, tk_ckpt_check_fn check,
                       void *ctx, bool *damaged);
/* The same, also reading the adapter's extra state into extra[n_extra] (the checkpoint must hold it with that size;
 * n_extra 0: it must hold none). */
tk_status tk_ckpt_load_ex(const char *dir, tk_param_set *ps, float *extra, int64_t n_extra, tk_train_state *s, char **config_json,
                          tk_ckpt_check_fn check, void *ctx, bool *damaged);

/* Removes a folder with its files and sub-folders (no error if it does not exist). Thread-safe for distinct paths. */
tk_status tk_ckpt_remove_tree(const char *path);
/* The state as a JSON object (appended to out); config_json embedded as "config" if non-NULL. */
tk_status tk_train_state_json(const tk_train_state *s, const char *config_json, tk_buf *out);
/* Parses a state object written by tk_train_state_json (name is used in messages). */
tk_status tk_train_state_parse(const char *json, const char *name, tk_train_state *s, char **config_json);
#endif
