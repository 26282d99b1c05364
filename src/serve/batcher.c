/* The decode scheduler of one served model: a thread of its own drives a tk_batcher
 * (src/infer/batcher.c). A request's choice becomes a row: the caller's thread queues it and
 * waits; between two steps the scheduler moves queued rows into free ones (in arrival order),
 * so new requests join a running batch; each step samples, prefills up to one chunk of prompts
 * while others decode, and runs one decode forward over every row whatever adapter it uses.
 * The row's text callbacks (SSE writes, collecting) run on the scheduler's thread while the
 * caller waits; a callback that sees its client gone returns false and its row ends, freeing
 * it for the next. Each row is exact: its answer is the one it gets alone (`takumi generate`'s
 * when greedy). CPU time: each step's (the scheduler thread's) is shared equally by the rows of
 * that step, so a row's CPU seconds are the sum of its shares (the usage's cpu_seconds). */
#include "serve/server.h"
#include "core/core.h"
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#endif

typedef struct srv_batcher srv_batcher;
typedef struct item {
    srv_batcher *b;
    tk_batch_row row;            /* row.ud is the item: its callbacks are the trampolines below */
    const srv_gen_row *g;        /* the caller's row (its callbacks and ud) */
    bool done;                   /* under b->mu */
    tk_batch_done res;
    char err[512];               /* the failure's message (res.status set) */
    double cpu0, cpu_s;          /* the batch's per-row CPU sum when the row joined; its CPU seconds at the end */
    struct item *next;
} item;

struct srv_batcher {
    tk_server *s;
    int mi;
    tk_batcher *tb;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t work, done; /* work: a row queued or stop; done: some row ended */
    item *head, *tail;
    bool stop;
    /* scheduler thread only: CPU seconds per row summed over the steps; the step running (start, rows) */
    double cpu_per_row, step_cpu0;
    int32_t step_rows;
};

/* The row's share of the CPU so far, the step running included (on the scheduler's thread). */
static double row_cpu(const srv_batcher *b, const item *it) {
    double now = b->cpu_per_row;
    if (b->step_rows > 0) now += (srv_thread_cpu_s() - b->step_cpu0) / b->step_rows;
    return now - it->cpu0;
}

static bool item_text(void *ud, const char *text, size_t len) {
    item *it = ud;
    return !it->g->on_text || it->g->on_text(it->g->ud, text, len);
}

static void item_logprobs(void *ud, const tk_token_logprobs *lp) {
    item *it = ud;
    it->g->on_logprobs(it->g->ud, lp);
}

/* The row ended (on the scheduler's thread, during a step): from here its caller may return and the item go. */
static void item_done(void *ud, const tk_batch_done *d) {
    item *it = ud;
    if (d->status) snprintf(it->err, sizeof it->err, "%s", tk_last_error());
    else if (it->g->on_end) it->g->on_end(it->g->ud, d->stop);
    it->cpu_s = row_cpu(it->b, it);
    pthread_mutex_lock(&it->b->mu);
    it->res = *d;
    it->res.ids = NULL;
    it->done = true;
    pthread_mutex_unlock(&it->b->mu);
}

static void *run(void *arg) {
    srv_batcher *b = arg;
#ifdef TK_HAVE_OPENMP
    omp_set_num_threads(b->s->p.threads); /* per thread in OpenMP: this thread's parallel regions */
#endif
    pthread_mutex_lock(&b->mu);
    for (;;) {
        int32_t rows = tk_batcher_rows(b->tb);
        while (!b->stop && !b->head && rows == 0) pthread_cond_wait(&b->work, &b->mu);
        if (b->stop && !b->head && rows == 0) break;
        /* new rows join between steps, in arrival order */
        while (b->head && tk_batcher_free_rows(b->tb) > 0) {
            item *it = b->head;
            b->head = it->next;
            if (!b->head) b->tail = NULL;
            it->next = NULL;
            it->cpu0 = b->cpu_per_row;
            tk_status st = tk_batcher_add(b->tb, &it->row);
            if (st) {
                snprintf(it->err, sizeof it->err, "%s", tk_last_error());
                it->res = (tk_batch_done){.status = st, .stop = TK_GEN_STOP_CALLBACK};
                it->done = true;
                pthread_cond_broadcast(&b->done);
            }
        }
        b->step_rows = tk_batcher_rows(b->tb);
        pthread_mutex_unlock(&b->mu);
        b->step_cpu0 = srv_thread_cpu_s();
        tk_batcher_step(b->tb); /* a failure has ended its rows with its status (their on_done) */
        if (b->step_rows > 0) b->cpu_per_row += (srv_thread_cpu_s() - b->step_cpu0) / b->step_rows;
        b->step_rows = 0;
        int32_t live = tk_batcher_rows(b->tb), decoded = tk_batcher_last_rows(b->tb);
        srv_metrics_batch(&b->s->metrics, b->mi, decoded, live);
        tk_gen_batch_stats bs;
        tk_batcher_stats(b->tb, &bs);
        srv_metrics_prefill(&b->s->metrics, b->mi, bs.n_prompt_tokens, bs.n_prompt_reused);
        pthread_mutex_lock(&b->mu);
        /* rows that ended in this step: their waiters wake (on_done ran without the lock) */
        pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

tk_status srv_batcher_start(tk_server *s, int mi, int max_rows, srv_batcher **out) {
    *out = NULL;
    srv_batcher *b = tk_calloc(1, sizeof *b);
    if (!b) return TK_ERR_NOMEM;
    b->s = s;
    b->mi = mi;
    srv_model *m = &s->reg.models[mi];
    tk_status st = tk_batcher_new(m->m, tk_model_tokenizer(m->m), max_rows, TK_SERVE_PREFILL_BUDGET, s->p.exact, &b->tb);
    if (st) { free(b); return tk_fail_ctx(st, "model %s: the decode batch", m->id); }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->done, NULL);
    if (pthread_create(&b->th, NULL, run, b)) {
        srv_batcher_stop(b);
        return tk_fail(TK_ERR_INTERNAL, "model %s: cannot start the decode thread", m->id);
    }
    b->started = true;
    *out = b;
    return TK_OK;
}

void srv_batcher_stop(srv_batcher *b) {
    if (!b) return;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_signal(&b->work);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->th, NULL);
    }
    tk_batcher_free(b->tb);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->done);
    free(b);
}

tk_status srv_batcher_generate(srv_batcher *b, srv_gen_row *rows, int n, const tk_adapter_use *ads, int n_ads, double *cpu_s) {
    if (n < 1) return TK_OK;
    item *its = tk_calloc((size_t)n, sizeof *its);
    if (!its) return TK_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        item *it = &its[i];
        it->b = b;
        it->g = &rows[i];
        it->row = (tk_batch_row){.prompt = rows[i].prompt, .n_prompt = rows[i].n_prompt, .p = rows[i].p, .ads = ads, .n_ads = n_ads,
                                 .on_text = item_text, .on_logprobs = rows[i].on_logprobs ? item_logprobs : NULL,
                                 .top_logprobs = rows[i].top_logprobs, .on_done = item_done, .ud = it};
        it->next = i + 1 < n ? &its[i + 1] : NULL;
    }
    pthread_mutex_lock(&b->mu); /* all n queued at once, in order: they join the batch together */
    if (b->tail) b->tail->next = &its[0]; else b->head = &its[0];
    b->tail = &its[n - 1];
    pthread_cond_signal(&b->work);
    for (int i = 0; i < n; i++)
        while (!its[i].done) pthread_cond_wait(&b->done, &b->mu);
    pthread_mutex_unlock(&b->mu);
    tk_status first = TK_OK;
    for (int i = 0; i < n; i++) {
        item *it = &its[i];
        memset(&rows[i].stats, 0, sizeof rows[i].stats);
        rows[i].stats.n_prompt = it->res.n_prompt;
        rows[i].stats.n_generated = it->res.n_ids;
        rows[i].stats.stop = it->res.stop;
        rows[i].status = it->res.status;
        if (cpu_s) *cpu_s += it->cpu_s;
        if (it->res.status && !first) first = tk_fail(it->res.status, "%s", it->err);
    }
    free(its);
    return first;
}
