/* `takumi serve`: an OpenAI-compatible HTTP server over loaded models (libmicrohttpd), with API
 * keys in SQLite. This part serves: GET /health, GET /metrics (Prometheus text), GET /v1/models,
 * GET /v1/models/{id}, POST /v1/chat/completions and POST /v1/completions (plain and SSE
 * streaming), GET /lora-adapters (llama-server's listing), the Files API (/v1/files: uploads
 * checked with the data checker) and fine-tuning jobs (/v1/fine_tuning/jobs: a queue running one
 * training job at a time on its own thread; a succeeded job's model "ft:<base>:<owner>:<suffix>:<id>"
 * is served at once as an adapter on its base). Each model given is a model id; each adapter
 * (attached to the first model) is a model id too, applied per request. A user key sees only its
 * own files, jobs and fine-tuned models. Jobs pause and resume; deployments (/v1/deployments: an alias
 * over a model version, canary, promote, rollback); a request log with feedback (POST /v1/feedback, GET
 * /v1/feedback/export); vLLM's load/unload_lora_adapter and llama-server's POST /lora-adapters; per-key
 * rate limits and token budgets (429), usage per key and model. Not yet: the dashboard, continuous
 * batching (see README "takumi serve").
 * The library prints nothing: each request's log line goes to params.log. */
#ifndef TAKUMI_SERVE_H
#define TAKUMI_SERVE_H
#include "takumi/core.h"
#ifdef __cplusplus
extern "C" {
#endif

#define TK_SERVE_MAX_MODELS 16
#define TK_SERVE_MAX_ADAPTERS 64

typedef struct tk_serve_params {
    const char *host;              /* address to bind (default "127.0.0.1"); an IPv4 or IPv6 literal */
    int port;                      /* TCP port (default 8080; 0 = any free port, see tk_server_port) */
    const char *data_dir;          /* holds takumi.db (keys, files, jobs), files/ and jobs/ (run folders); default "takumi-data" */
    const char *models[TK_SERVE_MAX_MODELS];   /* "PATH" or "ID=PATH" (id default: the file name without .gguf) */
    int n_models;
    const char *adapters[TK_SERVE_MAX_ADAPTERS]; /* "NAME=DIR": adapter files attached to models[0]; NAME is its model id */
    int n_adapters;
    const char *tokenizer;         /* tokenizer file for every model (llama2.c checkpoints); NULL = the model's own */
    int32_t n_ctx;                 /* context length override (0 = each model's own) */
    const char *api_key_file;      /* keys accepted besides the stored ones, one per line; NULL = none */
    int max_concurrent;            /* generations running at once (default 16): each model decodes up to this many rows in one batched step */
    int max_queue;                 /* requests waiting for a generation slot; more get 503 (default 64) */
    int max_connections;           /* open connections at most (default 256); more are refused */
    size_t max_body;               /* largest request body in bytes (default 1 MiB); larger: 413 */
    size_t max_upload;             /* largest POST /v1/files body in bytes (default 64 MiB); larger: 413 */
    int timeout_s;                 /* an idle or trickling connection is closed after this (default 30 s) */
    int threads;                   /* compute threads of each generation (0 = tk_get_threads() when the server opens) */
    bool exact;                    /* decode with f32 activations (false, the default: 8-bit activations with quantized weights,
                                      as llama.cpp; tk_session_set_exact) */
    bool log_contents_off;         /* the request log keeps ids, keys, versions, latency and tokens but no messages or answers */
    int log_days;                  /* request log rows older than this are deleted (default 30; 0 = kept forever) */
    int job_nice;                  /* the nice value (0..19) of the fine-tuning job's threads (default 10): requests are served
                                      first and the job trains on what they leave of the CPU; 0 = the same priority */
    /* One line per request (no newline), e.g. `127.0.0.1 "POST /v1/chat/completions" 200 0.412s in=31 out=64`.
     * Called from the server's threads, one call at a time. NULL = no log. */
    void (*log)(void *ud, const char *line);
    void *log_ud;
} tk_serve_params;

/* The defaults above (no model, no adapter). Thread-safe. */
tk_serve_params tk_serve_default_params(void);

typedef struct tk_server tk_server;
/* Loads the models and adapters, opens (creating) data_dir/takumi.db in WAL mode, and starts
 * serving on host:port in the server's own threads. Fails with a message naming the bad model,
 * adapter, file or option, or the address that cannot be bound. Free with tk_server_free.
 * Thread-safe (servers share nothing); each model's decode thread sets its own OpenMP team size. */
tk_status tk_server_open(const tk_serve_params *p, tk_server **out);
/* The port the server listens on (the chosen one when params.port was 0). Thread-safe. */
int tk_server_port(const tk_server *s);
/* Stops accepting connections, waits until the requests in flight (streams included) are
 * complete, then closes every connection. Call once, from one thread. */
void tk_server_stop(tk_server *s);
/* Stops the server if running and frees everything; accepts NULL. Not while another thread uses s. */
void tk_server_free(tk_server *s);

/* Creates an API key ("tk-" + 48 hex digits), stores its salted SHA-256 in data_dir/takumi.db
 * (created when missing) and returns it in *key (caller frees; shown once, never stored in the
 * clear). admin marks an admin key. Thread-safe (SQLite serialises writers). */
tk_status tk_serve_create_key(const char *data_dir, bool admin, char **key);
/* As tk_serve_create_key, with the key's limits: rpm chat/completion requests per minute and token_budget tokens
 * (prompt + completion, over the key's life) at most; 0 = no limit. Beyond either the server answers 429. Thread-safe. */
tk_status tk_serve_create_key_limits(const char *data_dir, bool admin, int64_t rpm, int64_t token_budget, char **key);

#ifdef __cplusplus
}
#endif
#endif
