/* Rollouts: answers sampled to prompts and graded — the shared first half of reinforcement
 * fine-tuning (grpo_run.c) and self-training (self_run.c). Internal to src/train/. */
#ifndef TK_TRAIN_ROLLOUT_H
#define TK_TRAIN_ROLLOUT_H
#include "train/batch.h"
#include "eval/eval_grade.h"
#include "takumi/generate_batch.h"

/* Opens the grader document at grader (and the judge model, may be NULL, for score_model graders) into *g; fails naming
 * the file or field. Close with tk_eval_grading_close. */
tk_status tk_rollout_grading_open(const char *grader, const char *judge, tk_eval_grading *g);

/* Samples per_prompt answers to each prompt ex[0..P) of d (rendered prompt ids) with model m and adapters ads[0..n_ads),
 * all decoded as one batch (at most 64 at a time): answer k = prompt ex[k / per_prompt], its sampler seeded from (seed,
 * its global index slot[k / per_prompt] * per_prompt + k % per_prompt; slot NULL: k), so that a share of the prompts
 * (one MPI rank's) gets the answers the whole set would; temperature <= 0 is greedy; no top-k / top-p / min-p. res[0..P * per_prompt) as tk_generate_batch (free each
 * with tk_gen_result_free); gs may be NULL. Not thread-safe with other uses of the adapters' workspaces. */
tk_status tk_rollout_sample(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads, const tk_sft_data *d,
                            const int64_t *ex, const int64_t *slot, int32_t P, int32_t per_prompt, double temperature, int32_t max_new_tokens,
                            uint64_t seed, tk_gen_result *res, tk_gen_batch_stats *gs);

/* Grades answers res[0..n) (answer k answers prompt ex[k / per_prompt], whose record is items[ex[...]] as JSON) with
 * g's grader (and judge): scores[k] (NaN when the grader failed on the answer) and sub[k * n_scores + j] (each of the
 * grader's n_scores scores, NaN on failure; sub may be NULL). *n_fail counts the failures; the last failure's message
 * goes to err[err_len] (may be NULL). Errors of the caller (memory, a record that no longer parses) return a status.
 * Thread safety: as tk_grader_grade. */
tk_status tk_rollout_grade(const tk_eval_grading *g, char *const *items, const int64_t *ex, int32_t per_prompt, const tk_gen_result *res,
                           int32_t n, double *scores, double *sub, int n_scores, int64_t *n_fail, char *err, size_t err_len);
/* Samples and grades per_prompt answers to each of the prompts [0, P) of d (items[i]: prompt i's record as JSON), as
 * tk_rollout_sample (slot = the prompt's index, so the answers are the same whatever the split) and tk_rollout_grade,
 * shared over N MPI ranks: prompt i is rank i mod N's; on return every rank holds every answer's score scores[0..P *
 * per_prompt) (NaN: the grader failed) and text texts[...] (each malloc'd, the caller frees; entries there are freed
 * first) and *n_fail, the failures of all ranks. Every rank calls it with the same arguments. Thread safety: as
 * tk_rollout_sample. */
tk_status tk_rollout_shared(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads, const tk_sft_data *d, char *const *items,
                            int32_t P, int32_t per_prompt, double temperature, int32_t max_new_tokens, uint64_t seed,
                            const tk_eval_grading *g, double *scores, char **texts, int64_t *n_fail, char *err, size_t err_len);
/* Mean of the finite values among v[0], v[stride], ..., v[(n - 1) * stride] (graded scores: NaN marks a grader
 * failure), NaN when there is none; *sd (may be NULL) their standard deviation with Bessel's correction (0 for
 * fewer than two). Thread-safe. */
double tk_rollout_mean(const double *v, int32_t n, int32_t stride, double *sd);
#endif
