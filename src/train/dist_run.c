/* A run over N MPI ranks: rank 0 has opened the run folder (fresh or resumed from a checkpoint);
 * the others take its state from it. See src/dist/dist.h. */
#include "train/run.h"
#include "dist/dist.h"

tk_status tk_run_dist_share(tk_run *r, bool *resumed) {
    bool flag = *resumed;
    tk_status st = tk_dist_bcast(&flag, sizeof flag);
    if (!st) st = tk_dist_bcast(&r->st, sizeof r->st);
    if (!st) st = tk_dist_bcast_params(r->ps);
    if (st) return tk_fail_ctx(st, "sharing the run's state with the other ranks: ");
    *resumed = flag;
    tk_train_set_counter(r->tc, r->st.counter);
    return TK_OK;
}
