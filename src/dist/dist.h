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
/* Sums every gradient of ps over the ranks (packed into buckets of up to 4 M floats). */
tk_status tk_dist_sum_grads(tk_param_set *ps);
/* Copies rank 0's buf[0..bytes) to every rank. */
tk_status tk_dist_bcast(void *buf, size_t bytes);
/* Rank 0's weights and AdamW moments of ps to every rank. */
tk_status tk_dist_bcast_params(tk_param_set *ps);
/* *flag = true on every rank when it is true on any. */
tk_status tk_dist_any(bool *flag);
#endif
