/* A run over N MPI ranks: rank 0 has opened the run folder (fresh or resumed from a checkpoint);
 * the others take its state from it, the optimizer state is sharded (ZeRO-1) and each rank
 * updates its own range of parameters. See src/dist/dist.h. */
#include "train/run.h"
#include "dist/dist.h"
#include <stdlib.h>

tk_status tk_run_dist_share(tk_run *r, bool *resumed) {
    bool flag = *resumed;
    tk_status st = tk_dist_bcast(&flag, sizeof flag);
    if (!st) st = tk_dist_bcast(&r->st, sizeof r->st);
    if (!st) st = tk_dist_bcast_params(r->ps);
    int64_t ne = 0;
    float *extra = tk_train_extra_state(r->tc, &ne);   /* the adapter's state besides its parameters (AdaLoRA) */
    if (!st && ne > 0) st = tk_dist_bcast(extra, (size_t)ne * sizeof(float));
    if (st) return tk_fail_ctx(st, "sharing the run's state with the other ranks: ");
    *resumed = flag;
    tk_train_set_counter(r->tc, r->st.counter);
    int n = tk_dist_size();
    r->shard_first = calloc((size_t)n + 1, sizeof(int64_t));
    if (!r->shard_first) return tk_fail(TK_ERR_NOMEM, "ZeRO-1 plan: out of memory");
    tk_dist_shard_plan(r->ps, r->shard_first);
    if ((st = tk_dist_overlap_new(r->ps, tk_model_get_config(r->m)->n_layers, &r->ovl))) return st;
    tk_dist_shard_drop(r->ps, r->shard_first);
    int64_t most = 0;
    for (int k = 0; k < n; k++) {
        int64_t e = 0;
        for (int64_t i = r->shard_first[k]; i < r->shard_first[k + 1]; i++) e += r->ps->p[i].n;
        most = e > most ? e : most;
    }
    tk_run_emitf(r, TK_EV_INFO, "data_parallel", true, "data parallel over %d ranks: optimizer state sharded (ZeRO-1), at most %.1f MB "
                 "of AdamW moments per rank (one process: %.1f MB)", n, 8.0 * (double)most / 1e6, 8.0 * (double)r->ps->total / 1e6);
    return TK_OK;
}

tk_status tk_run_dist_update(tk_run *r, int64_t tick, double *gn) {
    if (!r->shard_first) {
        tk_adamw_step(&r->opt, r->ps, tick, gn);
        return TK_OK;
    }
    int k = tk_dist_rank();
    tk_adamw_step_range(&r->opt, r->ps, tick, gn, r->shard_first[k], r->shard_first[k + 1]);
    tk_status st = tk_dist_share_weights(r->ps, r->shard_first);
    return st ? tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1) : TK_OK;
}

void tk_run_dist_report(tk_run *r) {
    if (!r->shard_first || tk_dist_rank() != 0 || r->steps_here <= 0) return;
    tk_dist_stats s = tk_dist_get_stats();
    tk_run_emitf(r, TK_EV_INFO, "data_parallel", true, "rank 0 over %lld steps: %.3f s waiting for the other ranks, %.3f s in transfers, "
                 "%.2f MB sent per step", (long long)r->steps_here, s.wait_s, s.comm_s, (double)s.bytes / 1e6 / (double)r->steps_here);
}

static tk_status layer_done(void *ctx, int32_t layer) { return tk_dist_overlap_layer(ctx, layer); }

bool tk_run_micro_mine(tk_run *r, int64_t j, const uint64_t *counter0, int64_t n_micro) {
    int n = tk_dist_size(), rank = tk_dist_rank();
    if (n <= 1) return true;
    if (j % n != rank) return false;
    if (counter0) {
        tk_train_set_counter(r->tc, *counter0 + (uint64_t)j);
        int64_t last = n_micro - 1 - ((n_micro - 1 - rank) % n + n) % n;   /* this rank's last micro-batch of the step */
        tk_train_set_layer_done(r->tc, j == last && r->ovl ? layer_done : NULL, r->ovl);
    }
    return true;
}

tk_status tk_run_dist_sums(tk_run *r, double *ls, double *ws, int64_t *toks, double *metrics) {
    const tk_objective_ops *o = tk_train_objective(r->tc);
    int nm = r->pref && o ? o->n_metrics : 0;
    double sums[2 + TK_OBJ_MAX_METRICS] = {*ls, *ws};
    for (int i = 0; i < nm; i++) sums[2 + i] = metrics[i];
    tk_status st = tk_dist_sum_f64(sums, 2 + nm);
    if (!st) st = tk_dist_sum_i64(toks, 1);
    if (st) return st;
    *ls = sums[0];
    *ws = sums[1];
    for (int i = 0; i < nm; i++) metrics[i] = sums[2 + i];
    return TK_OK;
}
