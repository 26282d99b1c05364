/* libmicrohttpd glue and the server's life. One thread per connection (MHD_USE_THREAD_PER_CONNECTION):
 * a generation blocks its connection's thread for seconds, which in a shared polling thread would
 * stall every other connection of that thread; the connection limit bounds the threads, the gate
 * (gate.c) bounds the generations. Per request: the key checked (401), the body collected up to
 * max_body (413 beyond, refused from Content-Length before reading when it says so), the route's
 * handler run; when the request is complete (or broken) one log line and the metrics are recorded.
 * The route and the key are checked on the headers, before any of the body is read. */
#include "serve/server.h"
#include "core/core.h"
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <sys/socket.h>

typedef struct conn {
    double t0;
    char method[16];
    char *path;
    tk_buf body;
    bool too_large, answered, needs_auth, admin;
    size_t max_body;             /* the route's: max_upload for POST /v1/files */
    char owner[SRV_OWNER_LEN];
    int status, route;
    srv_handler fn;
    srv_stream *stream;
    int64_t tokens_in, tokens_out;
    char model[SRV_MAX_ID + 1];
    char client[64];
} conn;

tk_serve_params tk_serve_default_params(void) {
    tk_serve_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.data_dir = "takumi-data";
    p.max_concurrent = 16;
    p.max_queue = 64;
    p.max_connections = 256;
    p.max_body = 1 << 20;
    p.max_upload = (size_t)64 << 20;
    p.timeout_s = 30;
    p.log_days = 30;
    p.job_nice = 10;
    return p;
}

void srv_log(tk_server *s, const char *fmt, ...) {
    if (!s->p.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->mu);
    s->p.log(s->p.log_ud, line);
    pthread_mutex_unlock(&s->mu);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    tk_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = 0;
    srv_log(s, "libmicrohttpd: %s", msg);
}

void srv_reply_error(srv_reply *r, const srv_error *e) {
    tk_buf_free(&r->body);
    r->status = e->status ? e->status : 500;
    r->content_type = NULL;
    if (srv_error_json(e, &r->body)) tk_buf_free(&r->body);
}

void srv_reply_fail(srv_reply *r, int status, const char *code, const char *param, const char *fmt, ...) {
    srv_error e = {0};
    e.status = status;
    e.type = status >= 500 ? "server_error" : "invalid_request_error";
    e.code = code;
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    srv_reply_error(r, &e);
}

static enum MHD_Result queue(struct MHD_Connection *c, conn *k, srv_reply *r) {
    struct MHD_Response *resp;
    if (r->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, srv_stream_read, r->stream, srv_stream_response_free);
        if (!resp) { /* the stream runs on: finish it here */
            srv_stream_response_free(r->stream);
            srv_stream_finish(r->stream, &k->tokens_in, &k->tokens_out);
            return MHD_NO;
        }
        k->stream = r->stream;
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    } else {
        resp = MHD_create_response_from_buffer(r->body.len, r->body.data ? r->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
        if (!resp) return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    if (r->content_type && !strncmp(r->content_type, "text/html", 9)) /* the dashboard: its own inline script, calls to this server only */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'");
    if (r->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (r->deployment[0]) {
        MHD_add_response_header(resp, "x-takumi-deployment", r->deployment);
        MHD_add_response_header(resp, "x-takumi-model-version", r->model);
    }
    k->status = r->status;
    k->tokens_in += r->tokens_in;
    k->tokens_out += r->tokens_out;
    if (r->model[0]) snprintf(k->model, sizeof k->model, "%s", r->model);
    k->answered = true;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result queue_error(struct MHD_Connection *c, conn *k, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result queue_error(struct MHD_Connection *c, conn *k, int status, const char *type, const char *code, const char *fmt, ...) {
    srv_error e = {0};
    e.status = status;
    e.type = type;
    e.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    srv_reply r = {0};
    srv_reply_error(&r, &e);
    enum MHD_Result ret = queue(c, k, &r);
    tk_buf_free(&r.body);
    return ret;
}

/* The key of "Authorization: Bearer KEY", or NULL. */
static const char *bearer(struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return NULL;
    h += 7;
    while (*h == ' ') h++;
    return *h ? h : NULL;
}

bool srv_client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    if (!ci) return false;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)version;
    tk_server *s = cls;
    conn *k = *con_cls;
    if (!k) { /* first call: headers only */
        if (!(k = calloc(1, sizeof *k))) return MHD_NO;
        k->t0 = tk_time_s();
        snprintf(k->method, sizeof k->method, "%s", method);
        k->path = strdup(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, k->client, sizeof k->client);
            else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, k->client, sizeof k->client);
        }
        if (!k->client[0]) strcpy(k->client, "-");
        *con_cls = k;
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        if (!k->path) return MHD_NO;
        k->fn = srv_route(method, k->path, &k->route, &k->needs_auth);
        k->max_body = k->fn == srv_handle_file_upload ? s->p.max_upload : s->p.max_body;
        strcpy(k->owner, "local");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > k->max_body)
            return queue_error(c, k, 413, "invalid_request_error", "request_too_large",
                               "The request body (%s bytes) is larger than the limit of %zu bytes.", cl, k->max_body);
        /* the key before the body: a caller without one gets nothing read or buffered */
        bool keyed = srv_keys_required(&s->keys);
        k->admin = !keyed; /* a server without keys trusts every caller (it binds to 127.0.0.1 unless told otherwise) */
        if (k->needs_auth && keyed) {
            const char *key = bearer(c);
            if (!key)
                return queue_error(c, k, 401, "invalid_request_error", "missing_api_key",
                                   "You didn't provide an API key. You need to provide your API key in an Authorization header "
                                   "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
            if (!srv_keys_check(&s->keys, key, &k->admin, k->owner))
                return queue_error(c, k, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.");
        }
        return MHD_YES;
    }
    if (k->answered) { *upload_size = 0; return MHD_YES; }
    if (*upload_size > 0) {
        if (!k->too_large && k->body.len + *upload_size > k->max_body) { k->too_large = true; tk_buf_free(&k->body); }
        if (!k->too_large && tk_buf_append(&k->body, upload_data, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (k->too_large)
        return queue_error(c, k, 413, "invalid_request_error", "request_too_large",
                           "The request body is larger than the limit of %zu bytes.", k->max_body);
    srv_req q = {.s = s, .c = c, .method = method, .path = k->path, .body = k->body.data ? k->body.data : "",
                 .body_len = k->body.len, .admin = k->admin,
                 .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)};
    snprintf(q.owner, sizeof q.owner, "%s", k->owner);
    srv_reply r = {0};
    k->fn(&q, &r);
    /* the handler may have taken long (a generation): the idle clock starts again for the answer */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)s->p.timeout_s);
    enum MHD_Result ret = queue(c, k, &r);
    tk_buf_free(&r.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    tk_server *s = cls;
    conn *k = *con_cls;
    if (!k) return;
    *con_cls = NULL;
    if (k->stream) srv_stream_finish(k->stream, &k->tokens_in, &k->tokens_out);
    double dt = tk_time_s() - k->t0;
    int status = k->status ? k->status : 499; /* no answer: the client went away first */
    const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                    : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)"
                    : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (server shutdown)"
                    : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client closed)" : " (connection error)";
    srv_metrics_add(&s->metrics, k->route, status, dt, k->tokens_in, k->tokens_out);
    srv_log(s, "%s \"%s %.200s\" %d %.3fs in=%lld out=%lld%s%s%s", k->client, k->method, k->path ? k->path : "?", status, dt,
             (long long)k->tokens_in, (long long)k->tokens_out, k->model[0] ? " model=" : "", k->model, how);
    tk_buf_free(&k->body);
    free(k->path);
    free(k);
    pthread_mutex_lock(&s->mu);
    if (--s->in_flight == 0) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

tk_status tk_server_open(const tk_serve_params *p, tk_server **out) {
    *out = NULL;
    if (!p) return tk_fail(TK_ERR_ARG, "serve: no parameters");
    if (p->port < 0 || p->port > 65535) return tk_fail(TK_ERR_ARG, "--port %d: must be 0..65535", p->port);
    if (p->log_days < 0) return tk_fail(TK_ERR_ARG, "--log-days %d: must be >= 0", p->log_days);
    if (p->job_nice < 0 || p->job_nice > 19) return tk_fail(TK_ERR_ARG, "--job-nice %d: must be 0..19", p->job_nice);
    if (p->max_concurrent < 1 || p->max_queue < 0 || p->max_connections < 1 || p->max_body < 1 || p->max_upload < 1 || p->timeout_s < 1)
        return tk_fail(TK_ERR_ARG, "serve: need max-concurrent >= 1, max-queue >= 0, max-connections >= 1, max-body >= 1, max-upload >= 1, timeout >= 1");
    if (!p->data_dir || !*p->data_dir) return tk_fail(TK_ERR_ARG, "serve: no --data-dir");
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    const char *host = p->host ? p->host : "127.0.0.1";
    bool v6 = false;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)p->port);
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)p->port);
        v6 = true;
    } else {
        return tk_fail(TK_ERR_ARG, "--host %s: not an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1)", host);
    }
    tk_server *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->p = *p;
    if (s->p.threads <= 0) s->p.threads = tk_get_threads(); /* the server's threads would see OpenMP's default instead */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    pthread_mutex_init(&s->runner.mu, NULL);
    pthread_cond_init(&s->runner.cv, NULL);
    srv_gate_init(&s->gate, p->max_concurrent, p->max_queue);
    srv_metrics_init(&s->metrics);
    srv_limits_init(&s->limits);
    tk_status st = srv_keys_open(&s->keys, p->data_dir, p->api_key_file);
    if (st) goto fail_keys;
    if ((st = srv_registry_open(&s->reg, p))) goto fail_reg;
    for (int i = 0; i < s->reg.n_models && !st; i++) st = srv_batcher_start(s, i, p->max_concurrent, &s->reg.models[i].batcher);
    if (st) goto fail;
    if ((st = srv_runner_register_models(s)) || (st = srv_runner_start(s))) goto fail;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, /* first, or early messages go to stderr */
                            MHD_OPTION_SOCK_ADDR, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->max_connections,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
    if (!s->d) { st = tk_fail(TK_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", host, p->port); goto fail; }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    *out = s;
    return TK_OK;
fail:
    srv_runner_stop(s);
    srv_registry_close(&s->reg);
fail_reg:
    srv_keys_close(&s->keys);
fail_keys:
    pthread_mutex_destroy(&s->runner.mu);
    pthread_cond_destroy(&s->runner.cv);
    srv_metrics_destroy(&s->metrics);
    srv_limits_destroy(&s->limits);
    srv_gate_destroy(&s->gate);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
    return st;
}

int tk_server_port(const tk_server *s) { return s->port; }

void tk_server_stop(tk_server *s) {
    if (!s || s->stopped) return;
    s->stopped = true;
    MHD_socket fd = MHD_quiesce_daemon(s->d); /* no new connections */
    if (fd != MHD_INVALID_SOCKET) close(fd);
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0) pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d); /* closes idle keep-alive connections */
    s->d = NULL;
    srv_runner_stop(s);    /* the running job pauses at a checkpoint; the next start resumes it */
    for (int i = 0; i < s->reg.n_models; i++) { /* no request runs: their rows have ended */
        srv_batcher_stop(s->reg.models[i].batcher);
        s->reg.models[i].batcher = NULL;
    }
}

void tk_server_free(tk_server *s) {
    if (!s) return;
    tk_server_stop(s);
    pthread_mutex_destroy(&s->runner.mu);
    pthread_cond_destroy(&s->runner.cv);
    srv_registry_close(&s->reg);
    srv_keys_close(&s->keys);
    srv_metrics_destroy(&s->metrics);
    srv_limits_destroy(&s->limits);
    srv_gate_destroy(&s->gate);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}
