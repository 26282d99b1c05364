/* The ranks of a run over MPI (MPI_COMM_WORLD), or one rank without it. See dist.h. */
#include "dist/dist.h"
#include "core/core.h"
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#ifdef TK_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_inited = 0;
static tk_dist_stats g_stats;

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

#ifdef TK_HAVE_MPI
/* In-place sum of n elements of type t (size bytes each) over the ranks, timed and counted. */
static tk_status sum_typed(void *buf, int64_t n, MPI_Datatype t, size_t size, const char *what) {
    double t0 = MPI_Wtime();
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
    g_stats.comm_s += MPI_Wtime() - t0;
    g_stats.bytes += n * (int64_t)size;
    return rc == MPI_SUCCESS ? TK_OK : mpi_fail(rc, what);
}
#endif

tk_status tk_dist_sum_f64(double *buf, int64_t n) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) return sum_typed(buf, n, MPI_DOUBLE, sizeof(double), "all-reduce (f64)");
#endif
    (void)buf;
    (void)n;
    return TK_OK;
}

tk_status tk_dist_sum_i64(int64_t *buf, int64_t n) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) return sum_typed(buf, n, MPI_INT64_T, sizeof(int64_t), "all-reduce (i64)");
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
typedef enum { OP_SUM, OP_BCAST, OP_SEND, OP_RECV } chunk_op;

static double now_s(void) { return MPI_Wtime(); }

/* One chunk of floats through op (root: the broadcasting rank, or the peer of a send/receive). */
static tk_status chunk_io(chunk_op op, float *x, int cnt, int root) {
    double t0 = now_s();
    int rc = op == OP_SUM ? MPI_Allreduce(MPI_IN_PLACE, x, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)
           : op == OP_BCAST ? MPI_Bcast(x, cnt, MPI_FLOAT, root, MPI_COMM_WORLD)
           : op == OP_SEND ? MPI_Send(x, cnt, MPI_FLOAT, root, 7, MPI_COMM_WORLD)
                           : MPI_Recv(x, cnt, MPI_FLOAT, root, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    g_stats.comm_s += now_s() - t0;
    if (op == OP_SUM || op == OP_SEND || (op == OP_BCAST && root == g_rank)) g_stats.bytes += (int64_t)cnt * (int64_t)sizeof(float);
    static const char *const what[] = {"all-reduce (gradients)", "broadcast (parameters)", "send (optimizer state)", "receive (optimizer state)"};
    return rc == MPI_SUCCESS ? TK_OK : mpi_fail(rc, what[op]);
}

/* The array `which` (0 w, 1 g, 2 m, 3 v) of param p. */
static float *arr(tk_param *p, int which) { return which == 0 ? p->w : which == 1 ? p->g : which == 2 ? p->m : p->v; }

/* Params [i0, i1) of ps, array `which`, through op, packed into chunks of up to BUCKET floats (a tensor larger than
 * a chunk goes alone, in place, in slices). */
static tk_status over_range(tk_param_set *ps, int64_t i0, int64_t i1, int which, chunk_op op, int root, float *buf) {
    tk_status st = TK_OK;
    int64_t i = i0;
    while (i < i1 && !st) {
        int64_t j = i, fill = 0;
        while (j < i1 && fill + ps->p[j].n <= BUCKET) fill += ps->p[j++].n;
        if (j == i) {
            float *x = arr(&ps->p[i], which);
            for (int64_t o = 0; o < ps->p[i].n && !st; o += BUCKET)
                st = chunk_io(op, x + o, (int)(ps->p[i].n - o < BUCKET ? ps->p[i].n - o : BUCKET), root);
            i++;
            continue;
        }
        int64_t o = 0;
        if (op != OP_RECV)
            for (int64_t k = i; k < j; k++) { memcpy(buf + o, arr(&ps->p[k], which), (size_t)ps->p[k].n * sizeof(float)); o += ps->p[k].n; }
        if ((st = chunk_io(op, buf, (int)fill, root))) break;
        o = 0;
        if (op != OP_SEND)
            for (int64_t k = i; k < j; k++) { memcpy(arr(&ps->p[k], which), buf + o, (size_t)ps->p[k].n * sizeof(float)); o += ps->p[k].n; }
        i = j;
    }
    return st;
}

static tk_status with_buf(tk_param_set *ps, int64_t i0, int64_t i1, int which, chunk_op op, int root) {
    float *buf = malloc((size_t)BUCKET * sizeof(float));
    if (!buf) return tk_fail(TK_ERR_NOMEM, "MPI transfer buffer: out of memory");
    tk_status st = over_range(ps, i0, i1, which, op, root, buf);
    free(buf);
    return st;
}
#endif

tk_status tk_dist_bcast_params(tk_param_set *ps) {
#ifdef TK_HAVE_MPI
    tk_status st = TK_OK;
    for (int a = 0; a < 4 && g_size > 1 && !st; a++)
        if (a != 1) st = with_buf(ps, 0, ps->n, a, OP_BCAST, 0);
    return st;
#else
    (void)ps;
    return TK_OK;
#endif
}

void tk_dist_shard_plan(const tk_param_set *ps, int64_t *first) {
    int n = g_size;
    first[0] = 0;
    int64_t acc = 0, i = 0;
    for (int r = 1; r < n; r++) {   /* rank r starts at the first param whose start reaches r/n of the elements */
        double target = (double)ps->total * r / n;
        while (i < ps->n && (double)acc + 0.5 * (double)ps->p[i].n < target) acc += ps->p[i++].n;
        first[r] = i;
    }
    first[n] = ps->n;
}

int64_t tk_dist_shard_drop(tk_param_set *ps, const int64_t *first) {
    int64_t freed = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        if (i >= first[g_rank] && i < first[g_rank + 1]) continue;
        tk_param *p = &ps->p[i];
        if (p->m) freed += 2 * p->n;
        free(p->m);
        free(p->v);
        p->m = p->v = NULL;
    }
    return freed;
}

tk_status tk_dist_share_weights(tk_param_set *ps, const int64_t *first) {
#ifdef TK_HAVE_MPI
    if (g_size <= 1) return TK_OK;
    float *buf = malloc((size_t)BUCKET * sizeof(float));
    if (!buf) return tk_fail(TK_ERR_NOMEM, "MPI transfer buffer: out of memory");
    tk_status st = TK_OK;
    for (int r = 0; r < g_size && !st; r++) st = over_range(ps, first[r], first[r + 1], 0, OP_BCAST, r, buf);
    free(buf);
    return st;
#else
    (void)ps;
    (void)first;
    return TK_OK;
#endif
}

tk_status tk_dist_gather_moments(tk_param_set *ps, const int64_t *first) {
#ifdef TK_HAVE_MPI
    if (g_size <= 1) return TK_OK;
    if (g_rank == 0)
        for (int64_t i = first[1]; i < ps->n; i++) {
            tk_param *p = &ps->p[i];
            if (!p->m) p->m = tk_calloc((size_t)p->n, sizeof(float));
            if (!p->v) p->v = tk_calloc((size_t)p->n, sizeof(float));
            if (!p->m || !p->v) return tk_fail(TK_ERR_NOMEM, "gathering the optimizer state for a checkpoint: out of memory");
        }
    float *buf = malloc((size_t)BUCKET * sizeof(float));
    if (!buf) return tk_fail(TK_ERR_NOMEM, "MPI transfer buffer: out of memory");
    tk_status st = TK_OK;
    for (int r = 1; r < g_size && !st; r++)
        for (int a = 2; a < 4 && !st; a++) {
            if (g_rank == r) st = over_range(ps, first[r], first[r + 1], a, OP_SEND, 0, buf);
            else if (g_rank == 0) st = over_range(ps, first[r], first[r + 1], a, OP_RECV, r, buf);
        }
    free(buf);
    return st;
#else
    (void)ps;
    (void)first;
    return TK_OK;
#endif
}


struct tk_dist_overlap {
    tk_param_set *ps;
    int32_t n_layers, n_buckets;      /* buckets: layers 0..n_layers-1, then the rest */
    int64_t *first, *idx;             /* bucket b's params: idx[first[b] .. first[b + 1]) */
    int64_t *elems;                   /* floats per bucket */
    float **buf;
    bool *started;
#ifdef TK_HAVE_MPI
    MPI_Request *req;
    MPI_Comm comm;
#endif
};

/* The layer in a parameter name ("...layers.<l>...."), or -1. */
static int32_t layer_of(const char *name) {
    const char *p = strstr(name, "layers.");
    if (!p) return -1;
    char *end;
    long l = strtol(p + 7, &end, 10);
    return end != p + 7 && *end == '.' && l >= 0 && l < INT_MAX ? (int32_t)l : -1;
}

void tk_dist_overlap_free(tk_dist_overlap *o) {
    if (!o) return;
    for (int32_t b = 0; b < o->n_buckets && o->buf; b++) free(o->buf[b]);
#ifdef TK_HAVE_MPI
    if (o->comm != MPI_COMM_NULL && g_size > 1) MPI_Comm_free(&o->comm);
    free(o->req);
#endif
    free(o->buf);
    free(o->first);
    free(o->idx);
    free(o->elems);
    free(o->started);
    free(o);
}

tk_status tk_dist_overlap_new(tk_param_set *ps, int32_t n_layers, tk_dist_overlap **out) {
    *out = NULL;
    tk_dist_overlap *o = calloc(1, sizeof *o);
    if (!o) return tk_fail(TK_ERR_NOMEM, "gradient buckets: out of memory");
    o->ps = ps;
    o->n_layers = n_layers;
    o->n_buckets = n_layers + 1;
#ifdef TK_HAVE_MPI
    o->comm = MPI_COMM_NULL;
    o->req = malloc((size_t)o->n_buckets * sizeof *o->req);
#endif
    o->first = calloc((size_t)o->n_buckets + 1, sizeof *o->first);
    o->idx = malloc((size_t)(ps->n ? ps->n : 1) * sizeof *o->idx);
    o->elems = calloc((size_t)o->n_buckets, sizeof *o->elems);
    o->buf = calloc((size_t)o->n_buckets, sizeof *o->buf);
    o->started = calloc((size_t)o->n_buckets, sizeof *o->started);
    bool ok = o->first && o->idx && o->elems && o->buf && o->started;
#ifdef TK_HAVE_MPI
    ok = ok && o->req;
#endif
    if (!ok) { tk_dist_overlap_free(o); return tk_fail(TK_ERR_NOMEM, "gradient buckets: out of memory"); }
    for (int64_t i = 0; i < ps->n; i++) {   /* counting sort of the params by bucket, in set order within one */
        int32_t l = layer_of(ps->p[i].name);
        int32_t b = l >= 0 && l < n_layers ? l : n_layers;
        o->first[b + 1]++;
        o->elems[b] += ps->p[i].n;
    }
    for (int32_t b = 0; b < o->n_buckets; b++) o->first[b + 1] += o->first[b];
    int64_t *fill = calloc((size_t)o->n_buckets, sizeof *fill);
    if (!fill) { tk_dist_overlap_free(o); return tk_fail(TK_ERR_NOMEM, "gradient buckets: out of memory"); }
    for (int64_t i = 0; i < ps->n; i++) {
        int32_t l = layer_of(ps->p[i].name);
        int32_t b = l >= 0 && l < n_layers ? l : n_layers;
        o->idx[o->first[b] + fill[b]++] = i;
    }
    free(fill);
    for (int32_t b = 0; b < o->n_buckets; b++) {
        if (o->elems[b] > INT_MAX) { tk_dist_overlap_free(o); return tk_fail(TK_ERR_UNSUPPORTED, "gradient bucket %d: %lld floats (more than one MPI message)", b, (long long)o->elems[b]); }
        if (o->elems[b] && !(o->buf[b] = malloc((size_t)o->elems[b] * sizeof(float)))) {
            tk_dist_overlap_free(o);
            return tk_fail(TK_ERR_NOMEM, "gradient buckets: out of memory");
        }
    }
#ifdef TK_HAVE_MPI
    for (int32_t b = 0; b < o->n_buckets; b++) o->req[b] = MPI_REQUEST_NULL;
    if (g_size > 1) {
        int rc = MPI_Comm_dup(MPI_COMM_WORLD, &o->comm);
        if (rc != MPI_SUCCESS) { tk_status st = mpi_fail(rc, "communicator for the gradient sums"); tk_dist_overlap_free(o); return st; }
    }
#endif
    *out = o;
    return TK_OK;
}

static tk_status start_bucket(tk_dist_overlap *o, int32_t b) {
    if (o->started[b]) return TK_OK;
    o->started[b] = true;
    if (!o->elems[b]) return TK_OK;
    int64_t off = 0;
    for (int64_t k = o->first[b]; k < o->first[b + 1]; k++) {
        const tk_param *p = &o->ps->p[o->idx[k]];
        memcpy(o->buf[b] + off, p->g, (size_t)p->n * sizeof(float));
        off += p->n;
    }
#ifdef TK_HAVE_MPI
    if (g_size > 1) {
        double t0 = MPI_Wtime();
        int rc = MPI_Iallreduce(MPI_IN_PLACE, o->buf[b], (int)o->elems[b], MPI_FLOAT, MPI_SUM, o->comm, &o->req[b]);
        int flag = 0;
        if (rc == MPI_SUCCESS) rc = MPI_Testall(o->n_buckets, o->req, &flag, MPI_STATUSES_IGNORE);   /* let earlier sums progress */
        g_stats.comm_s += MPI_Wtime() - t0;
        g_stats.bytes += o->elems[b] * (int64_t)sizeof(float);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce (gradients)");
    }
#endif
    return TK_OK;
}

tk_status tk_dist_overlap_layer(tk_dist_overlap *o, int32_t layer) {
    if (!o || layer < 0 || layer >= o->n_layers) return TK_OK;
    return start_bucket(o, layer);
}

tk_status tk_dist_overlap_finish(tk_dist_overlap *o) {
    tk_status st = TK_OK;
    for (int32_t b = o->n_layers - 1; b >= 0 && !st; b--) st = start_bucket(o, b);
    if (!st) st = start_bucket(o, o->n_layers);
#ifdef TK_HAVE_MPI
    if (g_size > 1) {
        double t0 = MPI_Wtime();
        int rc = MPI_Waitall(o->n_buckets, o->req, MPI_STATUSES_IGNORE);
        g_stats.comm_s += MPI_Wtime() - t0;
        if (!st && rc != MPI_SUCCESS) st = mpi_fail(rc, "all-reduce (gradients)");
    }
#endif
    for (int32_t b = 0; b < o->n_buckets; b++) {
        o->started[b] = false;
        int64_t off = 0;
        for (int64_t k = o->first[b]; k < o->first[b + 1] && !st; k++) {
            tk_param *p = &o->ps->p[o->idx[k]];
            memcpy(p->g, o->buf[b] + off, (size_t)p->n * sizeof(float));
            off += p->n;
        }
    }
    return st;
}

tk_dist_stats tk_dist_get_stats(void) { return g_stats; }

tk_status tk_dist_barrier(void) {
#ifdef TK_HAVE_MPI
    if (g_size > 1) {
        double t0 = MPI_Wtime();
        int rc = MPI_Barrier(MPI_COMM_WORLD);
        g_stats.wait_s += MPI_Wtime() - t0;
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "barrier");
    }
#endif
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

tk_status tk_dist_share_texts(char **texts, int64_t n, int64_t group) {
    if (g_size <= 1) return TK_OK;
#ifdef TK_HAVE_MPI
    if (group < 1) return tk_fail(TK_ERR_ARG, "sharing texts: group %lld < 1", (long long)group);
    /* this rank's texts, NUL-terminated, in index order */
    size_t mine = 0;
    for (int64_t k = 0; k < n; k++)
        if ((k / group) % g_size == g_rank) mine += (texts[k] ? strlen(texts[k]) : 0) + 1;
    if (mine > INT_MAX) return tk_fail(TK_ERR_RANGE, "sharing texts: rank %d's texts hold %zu bytes (at most %d)", g_rank, mine, INT_MAX);
    int *cnt = calloc((size_t)g_size, sizeof *cnt), *dsp = calloc((size_t)g_size, sizeof *dsp), me = (int)mine;
    char *send = malloc(mine ? mine : 1), *all = NULL;
    tk_status st = cnt && dsp && send ? TK_OK : tk_fail(TK_ERR_NOMEM, "sharing texts: out of memory");
    size_t o = 0;
    for (int64_t k = 0; k < n && !st; k++) {
        if ((k / group) % g_size != g_rank) continue;
        size_t l = texts[k] ? strlen(texts[k]) : 0;
        if (l) memcpy(send + o, texts[k], l);
        send[o + l] = 0;
        o += l + 1;
    }
    double t0 = MPI_Wtime();
    int rc = st ? MPI_SUCCESS : MPI_Allgather(&me, 1, MPI_INT, cnt, 1, MPI_INT, MPI_COMM_WORLD);
    if (!st && rc != MPI_SUCCESS) st = mpi_fail(rc, "all-gather (text lengths)");
    int64_t total = 0;
    for (int r = 0; r < g_size && !st; r++) { dsp[r] = (int)total; total += cnt[r]; }
    if (!st && total > INT_MAX) st = tk_fail(TK_ERR_RANGE, "sharing texts: %lld bytes in all (at most %d)", (long long)total, INT_MAX);
    if (!st && !(all = malloc((size_t)total + 1))) st = tk_fail(TK_ERR_NOMEM, "sharing texts: out of memory");
    if (!st && (rc = MPI_Allgatherv(send, me, MPI_CHAR, all, cnt, dsp, MPI_CHAR, MPI_COMM_WORLD)) != MPI_SUCCESS)
        st = mpi_fail(rc, "all-gather (texts)");
    g_stats.comm_s += MPI_Wtime() - t0;
    g_stats.bytes += me;
    /* every other rank's texts into place, in index order within each rank's part */
    for (int r = 0; r < g_size && !st; r++) {
        if (r == g_rank) continue;
        size_t p = (size_t)dsp[r], end = p + (size_t)cnt[r];
        for (int64_t k = 0; k < n && !st; k++) {
            if ((k / group) % g_size != r) continue;
            if (p >= end) { st = tk_fail(TK_ERR_INTERNAL, "sharing texts: rank %d sent fewer texts than expected", r); break; }
            free(texts[k]);
            if (!(texts[k] = tk_strdup(all + p))) st = tk_fail(TK_ERR_NOMEM, "sharing texts: out of memory");
            else p += strlen(texts[k]) + 1;
        }
    }
    free(all);
    free(send);
    free(cnt);
    free(dsp);
    return st;
#else
    (void)texts;
    (void)n;
    (void)group;
    return TK_OK;
#endif
}

tk_status tk_dist_agree(tk_status st) {
    if (g_size <= 1) return st;
    int64_t bad = st != TK_OK;
    tk_status s2 = tk_dist_sum_i64(&bad, 1);
    if (s2) return st ? st : s2;
    if (st || bad == 0) return st;
    return tk_fail(TK_ERR_IO, "%lld other rank%s failed (its message is printed by that rank)", (long long)bad, bad == 1 ? "" : "s");
}
