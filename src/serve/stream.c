/* A streamed (SSE) response: a generation thread appends events, libmicrohttpd's reader callback
 * (on the connection's thread) takes them as they come, blocking while there is nothing new — but
 * never longer than the keep-alive interval: then it sends an SSE comment (": keep-alive", which
 * clients ignore), so a long prefill neither trips the connection's idle timeout nor hides a
 * client that has gone.
 * Two references: the connection's (dropped in srv_stream_finish, which also cancels and joins
 * the thread) and the response's (dropped by its free callback), in either order. */
#include "serve/server.h"
#include "core/core.h"
#include <microhttpd.h>
#include <errno.h>
#include <time.h>

struct srv_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tk_buf buf;
    size_t off;                 /* bytes of buf already handed to libmicrohttpd */
    bool done, cancelled, joined;
    int refs;
    pthread_t th;
    srv_stream_fn fn;
    void (*done_fn)(void *);
    void *ud;
    int64_t tokens_in, tokens_out;
    int keepalive_ms;
};

static void release(srv_stream *st) {
    pthread_mutex_lock(&st->mu);
    int left = --st->refs;
    pthread_mutex_unlock(&st->mu);
    if (left) return;
    if (!st->joined) pthread_join(st->th, NULL);
    tk_buf_free(&st->buf);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

static void *run(void *arg) {
    srv_stream *st = arg;
    st->fn(st, st->ud);
    if (st->done_fn) st->done_fn(st->ud);
    pthread_mutex_lock(&st->mu);
    st->done = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

tk_status srv_stream_start(srv_stream_fn fn, void (*done)(void *ud), void *ud, int keepalive_ms, srv_stream **out) {
    *out = NULL;
    srv_stream *st = tk_calloc(1, sizeof *st);
    if (!st) return TK_ERR_NOMEM;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->refs = 2;
    st->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : 1000;
    st->fn = fn;
    st->done_fn = done;
    st->ud = ud;
    if (pthread_create(&st->th, NULL, run, st)) {
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        free(st);
        return tk_fail(TK_ERR_NOMEM, "cannot start a generation thread");
    }
    *out = st;
    return TK_OK;
}

bool srv_stream_write(srv_stream *st, const char *data, size_t n) {
    pthread_mutex_lock(&st->mu);
    bool ok = !st->cancelled && tk_buf_append(&st->buf, data, n) == TK_OK;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return ok;
}

void srv_stream_set_tokens(srv_stream *st, int64_t in, int64_t out) {
    pthread_mutex_lock(&st->mu);
    st->tokens_in = in;
    st->tokens_out = out;
    pthread_mutex_unlock(&st->mu);
}

ssize_t srv_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_stream *st = cls;
    static const char k_ping[] = ": keep-alive\n\n";
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += st->keepalive_ms / 1000;
    until.tv_nsec += (long)(st->keepalive_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&st->mu);
    bool timed_out = false;
    while (st->off == st->buf.len && !st->done && !timed_out)
        timed_out = pthread_cond_timedwait(&st->cv, &st->mu, &until) == ETIMEDOUT;
    ssize_t n;
    if (st->off == st->buf.len && !st->done && max >= sizeof k_ping - 1) {
        memcpy(buf, k_ping, sizeof k_ping - 1);
        n = (ssize_t)(sizeof k_ping - 1);
    } else if (st->off < st->buf.len) {
        size_t take = st->buf.len - st->off < max ? st->buf.len - st->off : max;
        memcpy(buf, st->buf.data + st->off, take);
        st->off += take;
        if (st->off == st->buf.len) st->off = st->buf.len = 0;
        n = (ssize_t)take;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

void srv_stream_response_free(void *cls) { release(cls); }

void srv_stream_finish(srv_stream *st, int64_t *tokens_in, int64_t *tokens_out) {
    pthread_mutex_lock(&st->mu);
    st->cancelled = true;
    bool join = !st->joined;
    st->joined = true;
    pthread_mutex_unlock(&st->mu);
    if (join) pthread_join(st->th, NULL);
    pthread_mutex_lock(&st->mu);
    *tokens_in = st->tokens_in;
    *tokens_out = st->tokens_out;
    pthread_mutex_unlock(&st->mu);
    release(st);
}
