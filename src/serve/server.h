/* The server's parts and how they meet (docs/ARCHITECTURE.md, "The serve layer"):
 *   http.c      libmicrohttpd glue: connections, bodies and limits, auth, one log line and the metrics per request
 *   route.c     method + path -> handler
 *   request.c   JSON request bodies -> structs, OpenAI's errors (request.h)
 *   complete.c  /v1/chat/completions and /v1/completions: prompt, generation, JSON answer or SSE stream
 *   registry.c  models and adapters by model id, their sessions, /v1/models and /lora-adapters
 *   gate.c      the bounded number of generations at once and the bounded queue before them
 *   keys.c      API keys (salted SHA-256) in SQLite (WAL), and --api-key-file
 *   metrics.c   counters and histograms, Prometheus text */
#ifndef TK_SERVE_SERVER_H
#define TK_SERVE_SERVER_H
#include "takumi/serve.h"
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "serve/request.h"
#include <pthread.h>
#include <string.h>
#include <sys/types.h>

/* ---- registry ---- */
typedef struct srv_model {
    char *id, *path;
    tk_model *m;
    tk_chat_family fam;          /* TK_CHAT_UNKNOWN with chat_err set: chat requests are refused */
    char chat_err[256];
    pthread_mutex_t mu;          /* guards the free sessions */
    tk_session **free_sessions;  /* sessions kept for reuse (their KV caches stay allocated) */
    int n_free, cap_free;
} srv_model;
typedef struct srv_adapter {
    char *id, *path;
    int model;                   /* index of the model it is attached to */
    tk_adapter_handle *h;
} srv_adapter;
typedef struct srv_registry {
    srv_model models[TK_SERVE_MAX_MODELS];
    int n_models;
    srv_adapter adapters[TK_SERVE_MAX_ADAPTERS];
    int n_adapters;
    int64_t created;             /* the server's start (unix seconds): every model's "created" */
} srv_registry;
/* Loads p's models and attaches its adapters (ids unique; messages name the option). */
tk_status srv_registry_open(srv_registry *r, const tk_serve_params *p);
void srv_registry_close(srv_registry *r);
/* Resolves a model id: *model its base, *adapter the adapter index or -1. False if unknown. Thread-safe. */
bool srv_registry_find(const srv_registry *r, const char *id, int *model, int *adapter);
/* A session of model mi (reused, or new with the registry's context); give it back with srv_session_put. Thread-safe. */
tk_status srv_session_get(srv_registry *r, int mi, tk_session **out);
void srv_session_put(srv_registry *r, int mi, tk_session *s);
/* GET /v1/models, GET /v1/models/{id} (false: unknown id), GET /lora-adapters bodies. Thread-safe. */
tk_status srv_models_json(const srv_registry *r, tk_buf *out);
bool srv_model_json(const srv_registry *r, const char *id, tk_buf *out);
tk_status srv_lora_json(const srv_registry *r, tk_buf *out);

/* ---- gate ---- */
typedef struct srv_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running, waiting, max_running, max_waiting;
} srv_gate;
void srv_gate_init(srv_gate *g, int max_running, int max_waiting);
void srv_gate_destroy(srv_gate *g);
/* Takes a generation slot, waiting in the queue if needed; false at once when the queue is full. Thread-safe. */
bool srv_gate_enter(srv_gate *g);
/* Gives a slot back and wakes one waiter. Thread-safe. */
void srv_gate_leave(srv_gate *g);
/* Current running and waiting counts. Thread-safe. */
void srv_gate_counts(srv_gate *g, int *running, int *waiting);

/* ---- keys ---- */
typedef struct sqlite3 sqlite3;
typedef struct srv_keys {
    sqlite3 *db;
    pthread_mutex_t mu;
    uint8_t (*file_hashes)[32];  /* SHA-256 of each --api-key-file key */
    int n_file;
} srv_keys;
/* Opens (creating) data_dir/takumi.db (WAL, schema checked) and reads key_file (NULL = none). */
tk_status srv_keys_open(srv_keys *k, const char *data_dir, const char *key_file);
void srv_keys_close(srv_keys *k);
/* Whether requests need a key: some key stored or given in the key file. Thread-safe. */
bool srv_keys_required(srv_keys *k);
/* Whether token is a valid key (*admin: an admin key; file keys are not). Thread-safe. */
bool srv_keys_check(srv_keys *k, const char *token, bool *admin);

/* ---- metrics ---- */
enum { SRV_ROUTE_HEALTH, SRV_ROUTE_METRICS, SRV_ROUTE_MODELS, SRV_ROUTE_MODEL, SRV_ROUTE_CHAT, SRV_ROUTE_COMPLETIONS,
       SRV_ROUTE_LORA, SRV_ROUTE_OTHER, SRV_ROUTE_COUNT };
#define SRV_N_BUCKETS 14
#define SRV_MAX_STATUS 16
typedef struct srv_metrics {
    pthread_mutex_t mu;
    struct { int status; int64_t n; } counts[SRV_ROUTE_COUNT][SRV_MAX_STATUS];
    int64_t hist[SRV_ROUTE_COUNT][SRV_N_BUCKETS + 1]; /* cumulative at render time; +Inf last */
    double sum[SRV_ROUTE_COUNT];
    int64_t n[SRV_ROUTE_COUNT];
    int64_t tokens_in, tokens_out;
} srv_metrics;
void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
/* Records one finished request. Thread-safe. */
void srv_metrics_add(srv_metrics *m, int route, int status, double seconds, int64_t tokens_in, int64_t tokens_out);
/* Prometheus text exposition (0.0.4) of everything, plus the gate's gauges. Thread-safe. */
tk_status srv_metrics_text(srv_metrics *m, srv_gate *g, tk_buf *out);
const char *srv_route_name(int route);

/* ---- the server ---- */
struct tk_server {
    tk_serve_params p;
    struct MHD_Daemon *d;
    int port;
    srv_registry reg;
    srv_gate gate;
    srv_keys keys;
    srv_metrics metrics;
    pthread_mutex_t mu;          /* log calls, in-flight count */
    pthread_cond_t idle;         /* signalled when in_flight drops to 0 */
    int in_flight;
    bool stopped;
};

/* A request as the handlers see it. */
typedef struct srv_req {
    tk_server *s;
    struct MHD_Connection *c;
    const char *method, *path;
    const char *body;
    size_t body_len;
    bool admin;
} srv_req;

/* What a handler answers: a complete body (status + JSON/text), or a stream it started. */
typedef struct srv_stream srv_stream;
typedef struct srv_reply {
    int status;
    const char *content_type;    /* NULL: application/json */
    tk_buf body;
    srv_stream *stream;          /* non-NULL: SSE; body unused */
    int64_t tokens_in, tokens_out; /* for the log and the metrics (a stream's come from the stream) */
    char model[64];
} srv_reply;
/* Sets r to the JSON error e. */
void srv_reply_error(srv_reply *r, const srv_error *e);

/* Whether the client of connection c has closed it (a non-blocking peek sees the end or an error). */
bool srv_client_gone(struct MHD_Connection *c);

/* route.c: the handler for method + path (route index into *route). Never NULL: unknown -> 404. */
typedef void (*srv_handler)(srv_req *q, srv_reply *r);
srv_handler srv_route(const char *method, const char *path, int *route, bool *needs_auth);

/* complete.c */
void srv_handle_chat(srv_req *q, srv_reply *r);
void srv_handle_completions(srv_req *q, srv_reply *r);

/* stream.c: an SSE body produced by a generation thread and read by libmicrohttpd. */
typedef void (*srv_stream_fn)(srv_stream *st, void *ud);
/* Starts fn(st, ud) on a thread of its own; done(ud) runs on that thread after fn (cleanup). With nothing
 * to send for keepalive_ms, the reader sends an SSE comment line instead. */
tk_status srv_stream_start(srv_stream_fn fn, void (*done)(void *ud), void *ud, int keepalive_ms, srv_stream **out);
/* Appends bytes for the client; false once the client is gone (stop generating). Thread-safe. */
bool srv_stream_write(srv_stream *st, const char *data, size_t n);
/* Records the request's token counts (the log line and the metrics). Thread-safe. */
void srv_stream_set_tokens(srv_stream *st, int64_t in, int64_t out);
/* libmicrohttpd's reader callback and the response's free callback. */
ssize_t srv_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
void srv_stream_response_free(void *cls);
/* The connection is finished (or broken): cancel, wait for the thread, read the tokens, drop this reference. */
void srv_stream_finish(srv_stream *st, int64_t *tokens_in, int64_t *tokens_out);
#endif
