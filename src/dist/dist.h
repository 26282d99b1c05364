/* Data parallelism across processes (ranks) of one training run: who this process is and the
 * collective operations the trainer needs. Built over MPI when the build found it (TK_HAVE_MPI,
 * `make MPI=0` to leave it out); without MPI, or when the process was not started by mpirun,
 * there is one rank and every collective is the identity. The public part (tk_dist_init,
 * tk_dist_finalize, tk_dist_rank, tk_dist_size, tk_dist_mpi_env_size) is in takumi/train.h.
 *
 * Every collective must be called by every rank, in the same order, with the same counts; they
 * return TK_OK or a message naming the operation. Call them from one thread per process (the
 * thread that ran tk_dist_init). */
#ifndef TK_DIST_DIST_H
#define TK_DIST_DIST_H
#include "takumi/train.h"
#include "core/param.h"

/* In-place sums over the ranks: buf[0..n) on every rank becomes the elementwise sum. */
tk_status tk_dist_sum_f64(double *buf, int64_t n);
tk_status tk_dist_sum_i64(int64_t *buf, int64_t n);
/* Copies rank 0's buf[0..bytes) to every rank. */
tk_status tk_dist_bcast(void *buf, size_t bytes);
/* Rank 0's weights and AdamW moments of ps to every rank. */
tk_status tk_dist_bcast_params(tk_param_set *ps);
/* Texts made in parts: text k (of n) is rank (k / group) mod N's. On entry each rank holds its own texts (NULL is
 * the empty text; the others' entries may be NULL); on return every rank holds all n (each malloc'd, the caller's to
 * free; an entry replaced is freed). Every rank calls it with the same n and group. */
tk_status tk_dist_share_texts(char **texts, int64_t n, int64_t group);
/* Makes a step that can fail on some ranks (rank 0's file writes) fail on all, and is a barrier: returns st where it
 * failed, else a failure saying how many other ranks failed, else TK_OK. Every rank calls it. */
tk_status tk_dist_agree(tk_status st);
/* *flag = true on every rank when it is true on any. */
tk_status tk_dist_any(bool *flag);

/* ---- ZeRO stage 1: the optimizer state sharded over the ranks ----
 * Rank r owns the AdamW moments of params [first[r], first[r + 1]) of ps (contiguous, balanced by
 * elements); every rank holds all weights and the summed gradients, steps its own range
 * (tk_adamw_step_range) and sends the updated weights to the others. */
/* Fills first[0..size] for ps. Thread-safe. */
void tk_dist_shard_plan(const tk_param_set *ps, int64_t *first);
/* Frees the moments of the params this rank does not own (their m, v become NULL); returns the floats freed. */
int64_t tk_dist_shard_drop(tk_param_set *ps, const int64_t *first);
/* Each rank's range of weights to every rank (after each stepped its own). */
tk_status tk_dist_share_weights(tk_param_set *ps, const int64_t *first);
/* Rank 0 receives every other rank's moments (allocating the ones it lacks) so that it can write a checkpoint;
 * the others send theirs. Afterwards rank 0 calls tk_dist_shard_drop again. */
tk_status tk_dist_gather_moments(tk_param_set *ps, const int64_t *first);
/* ---- gradient sums overlapped with the backward ----
 * One bucket per transformer layer (the parameters whose names hold "layers.<l>.") and one for the rest.
 * During a rank's last backward of a step, tk_dist_overlap_layer(l) packs layer l's bucket and starts its
 * sum (non-blocking, on a communicator of its own) as soon as the backward has finished the layer;
 * tk_dist_overlap_finish starts the buckets not started yet (layers in descending order, then the rest:
 * the same order on every rank), waits for all and unpacks the sums into the gradients. */
typedef struct tk_dist_overlap tk_dist_overlap;
/* Plans the buckets of ps for a model of n_layers layers (one packed buffer per bucket). */
tk_status tk_dist_overlap_new(tk_param_set *ps, int32_t n_layers, tk_dist_overlap **out);
void tk_dist_overlap_free(tk_dist_overlap *o);
/* Starts layer l's sum unless it has started (l outside [0, n_layers): nothing). */
tk_status tk_dist_overlap_layer(tk_dist_overlap *o, int32_t layer);
/* Starts the rest, waits for every bucket and writes the sums into the gradients. */
tk_status tk_dist_overlap_finish(tk_dist_overlap *o);

/* Collective time and traffic of this process so far (seconds in sums/broadcasts, of which waiting for the
 * slowest rank, and bytes this rank sent into collectives). */
typedef struct tk_dist_stats { double comm_s, wait_s; int64_t bytes; } tk_dist_stats;
tk_dist_stats tk_dist_get_stats(void);
/* Waits for every rank (time counted as waiting): call before a collective to separate waiting from transfer. */
tk_status tk_dist_barrier(void);
#endif
