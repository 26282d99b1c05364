/* The ranks of a run over MPI (MPI_COMM_WORLD), or one rank without it. See dist.h. */
#include "dist/dist.h"
#include "core/core.h"
#include <stdlib.h>
#include <string.h>
#ifdef TK_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_inited = 0;

int tk_dist_mpi_env_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] - 1; i++) {   /* SLURM_NTASKS alone is not a launcher */
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

bool tk_dist_built_with_mpi(void) {
#ifdef TK_HAVE_MPI
    return true;
#else
    return false;
#endif
}

#ifdef TK_HAVE_MPI
static tk_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return tk_fail(TK_ERR_IO, "MPI %s failed on rank %d of %d: %s", what, g_rank, g_size, msg);
}
#endif

tk_status tk_dist_init(int *argc, char ***argv) {
    if (g_inited) return TK_OK;
#ifdef TK_HAVE_MPI
    if (tk_dist_mpi_env_size() <= 1) { g_inited = -1; return TK_OK; }   /* not under mpirun: one rank, no MPI_Init */
    int provided = 0, rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return tk_fail(TK_ERR_IO, "MPI_Init_thread failed (code %d)", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_inited = 1;
    return TK_OK;
#else
    (void)argc;
    (void)argv;
    int n = tk_dist_mpi_env_size();
    if (n > 1)
        return tk_fail(TK_ERR_ARG, "started as one of %d processes (mpirun), but this takumi was built without MPI: every process would "
                       "train the whole run on its own. Install libopenmpi-dev (scripts/deps.sh) and rebuild, or run one process", n);
    g_inited = -1;
    return TK_OK;
#endif
}

void tk_dist_finalize(void) {
#ifdef TK_HAVE_MPI
    if (g_inited == 1) MPI_Finalize();
#endif
    g_inited = 0;
    g_rank = 0;
    g_size = 1;
}

int tk_dist_rank(void) { return g_rank; }
int tk_dist_size(void) { return g_size; }

tk_status tk_dist_sum_f64(double *buf, int64_t n) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce (f64)");
    }
#endif
    (void)buf;
    (void)n;
    return TK_OK;
}

tk_status tk_dist_sum_i64(int64_t *buf, int64_t n) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce (i64)");
    }
#endif
    (void)buf;
    (void)n;
    return TK_OK;
}

tk_status tk_dist_any(bool *flag) {
    int64_t v = *flag;
    tk_status st = tk_dist_sum_i64(&v, 1);
    *flag = v > 0;
    return st;
}

#ifdef TK_HAVE_MPI
enum { BUCKET = 1 << 22 };
/* Packs the gradients (or, bcast, weights and moments) of consecutive params into buckets of up to BUCKET
 * floats, reduces or broadcasts each bucket, and unpacks. A tensor larger than a bucket goes alone, in place. */
static tk_status over_params(tk_param_set *ps, bool bcast) {
    float *buf = malloc((size_t)BUCKET * sizeof(float));
    if (!buf) return tk_fail(TK_ERR_NOMEM, "gradient all-reduce: out of memory");
    tk_status st = TK_OK;
    int n_arrays = bcast ? 3 : 1;
    for (int a = 0; a < n_arrays && !st; a++) {
        int64_t i = 0;
        while (i < ps->n && !st) {
            int64_t j = i, fill = 0;
            while (j < ps->n && fill + ps->p[j].n <= BUCKET) fill += ps->p[j++].n;
            if (j == i) {   /* one big tensor, in place, in slices an int count can hold */
                float *x = a == 0 ? (bcast ? ps->p[i].w : ps->p[i].g) : a == 1 ? ps->p[i].m : ps->p[i].v;
                for (int64_t o = 0; o < ps->p[i].n && !st; o += BUCKET) {
                    int cnt = (int)(ps->p[i].n - o < BUCKET ? ps->p[i].n - o : BUCKET);
                    int rc = bcast ? MPI_Bcast(x + o, cnt, MPI_FLOAT, 0, MPI_COMM_WORLD)
                                   : MPI_Allreduce(MPI_IN_PLACE, x + o, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                    if (rc != MPI_SUCCESS) st = mpi_fail(rc, bcast ? "broadcast (parameters)" : "all-reduce (gradients)");
                }
                i++;
                continue;
            }
            int64_t o = 0;
            for (int64_t k = i; k < j; k++) {
                const float *x = a == 0 ? (bcast ? ps->p[k].w : ps->p[k].g) : a == 1 ? ps->p[k].m : ps->p[k].v;
                memcpy(buf + o, x, (size_t)ps->p[k].n * sizeof(float));
                o += ps->p[k].n;
            }
            int rc = bcast ? MPI_Bcast(buf, (int)fill, MPI_FLOAT, 0, MPI_COMM_WORLD)
                           : MPI_Allreduce(MPI_IN_PLACE, buf, (int)fill, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (rc != MPI_SUCCESS) { st = mpi_fail(rc, bcast ? "broadcast (parameters)" : "all-reduce (gradients)"); break; }
            o = 0;
            for (int64_t k = i; k < j; k++) {
                float *x = a == 0 ? (bcast ? ps->p[k].w : ps->p[k].g) : a == 1 ? ps->p[k].m : ps->p[k].v;
                memcpy(x, buf + o, (size_t)ps->p[k].n * sizeof(float));
                o += ps->p[k].n;
            }
            i = j;
        }
    }
    free(buf);
    return st;
}
#endif

tk_status tk_dist_sum_grads(tk_param_set *ps) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) return over_params(ps, false);
#endif
    (void)ps;
    return TK_OK;
}

tk_status tk_dist_bcast_params(tk_param_set *ps) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) return over_params(ps, true);
#endif
    (void)ps;
    return TK_OK;
}

tk_status tk_dist_bcast(void *buf, size_t bytes) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) {
        int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
    }
#endif
    (void)buf;
    (void)bytes;
    return TK_OK;
}
