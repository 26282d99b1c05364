/* The server's parts and how they meet (docs/ARCHITECTURE.md, "The serve layer"):
 *   http.c      libmicrohttpd glue: connections, bodies and limits, auth, one log line and the metrics per request
 *   route.c     method + path -> handler
 *   request.c   JSON request bodies -> structs, OpenAI's errors (request.h)
 *   complete.c  /v1/chat/completions and /v1/completions: prompt, generation, JSON answer or SSE stream
 *   registry.c  models and adapters by model id, their sessions, /v1/models and /lora-adapters
 *   gate.c      the bounded number of generations at once and the bounded queue before them
 *   batcher.c   one decode scheduler per model: every running choice a row of one batched decode step
 *   keys.c      API keys (salted SHA-256) in SQLite (WAL), and --api-key-file
 *   metrics.c   counters and histograms, Prometheus text
 *   upload.c    multipart bodies of POST /v1/files;  jobreq.c  POST /v1/fine_tuning/jobs bodies (request.h)
 *   store.c     files and jobs in SQLite and their OpenAI JSON objects; store_events.c their events and checkpoints
 *   files.c     the /v1/files handlers (uploads checked with the data checker, stored atomically)
 *   jobs.c      the /v1/fine_tuning/jobs handlers
 *   runner.c    the job queue: one training job at a time on its own thread (takumi/train.h's job API)
 *   adminreq.c  deployment and feedback bodies (request.h);  deploy.c  deployments: aliases, canaries, promote, rollback
 *   reqlog.c    the request log, POST /v1/feedback and its export as the next job's SFT or preference file
 *   lora_routes.c  vLLM's load/unload_lora_adapter, llama-server's POST /lora-adapters
 *   limits.c    per-key rate limits and token budgets (429), usage per key and model, GET /v1/keys, /v1/usage */
#ifndef TK_SERVE_SERVER_H
#define TK_SERVE_SERVER_H
#include "takumi/serve.h"
#include "takumi/model.h"
#include "takumi/adapter.h"
#include "takumi/generate_batch.h"
#include "serve/request.h"
#include <pthread.h>
#include <string.h>
#include <sys/types.h>

#define SRV_OWNER_LEN 32     /* "key12", "keyfile1", "local" */
#define SRV_MAX_ID 191       /* model ids ("ft:<base>:<owner>:<suffix>:<job>") */
/* n random bytes from getrandom(). */
tk_status srv_random_bytes(uint8_t *p, size_t n);
/* n bytes as 2n lowercase hex digits + NUL into out. */
void srv_hex(const uint8_t *p, size_t n, char *out);

/* ---- registry ---- */
typedef struct srv_model {
    char *id, *path;
    tk_model *m;
    tk_chat_family fam;          /* TK_CHAT_UNKNOWN with chat_err set: chat requests are refused */
    char chat_err[256];
    struct srv_batcher *batcher; /* its decode scheduler (batcher.c; started with the server) */
} srv_model;
typedef struct srv_adapter {
    char *id, *path;
    int model;                   /* index of the model it is attached to */
    tk_adapter_handle *h;
    char *owner;                 /* a fine-tuned model: the key that trained it (others get 404); NULL: every key */
    int64_t created;
    _Atomic float scale;         /* llama-server's global scale (POST /lora-adapters): applied to requests for its base that
                                  * name no adapter and give no "lora" list; 0 = none */
    _Atomic bool unloaded;       /* vLLM's unload_lora_adapter: no longer found or listed (the slot and its weights stay
                                  * until the server stops: requests running may still use them) */
} srv_adapter;
#define SRV_MAX_ADAPTERS 1024   /* --adapter ones and fine-tuned models */
typedef struct srv_registry {
    srv_model models[TK_SERVE_MAX_MODELS];
    int n_models;
    srv_adapter adapters[SRV_MAX_ADAPTERS];
    _Atomic int n_adapters;      /* append-only: a slot is filled before the count that publishes it */
    pthread_mutex_t add_mu;      /* serialises srv_registry_add */
    int64_t created;             /* the server's start (unix seconds): every model's "created" */
} srv_registry;
/* Loads p's models and attaches its adapters (ids unique; messages name the option). */
tk_status srv_registry_open(srv_registry *r, const tk_serve_params *p);
void srv_registry_close(srv_registry *r);
/* Attaches the adapter folder path to model mi as model id (owner NULL: every key sees it); TK_ERR_ARG when the id
 * is taken or the registry is full. Thread-safe (requests running meanwhile are unaffected). */
tk_status srv_registry_add(srv_registry *r, int mi, const char *id, const char *path, const char *owner, int64_t created);
/* Marks unloaded every adapter whose id starts with prefix and whose folder is gone (a pruned checkpoint's). Thread-safe. */
void srv_registry_unload_missing(srv_registry *r, const char *prefix);
/* Marks the adapter id unloaded (not found or listed from now on); false when no such adapter. Thread-safe. */
bool srv_registry_unload(srv_registry *r, const char *id);
/* Whether the caller (its owner, admin) may use adapter ai (-1: a base model: yes). Thread-safe. */
bool srv_adapter_visible(const srv_registry *r, int ai, const char *owner, bool admin);
/* Resolves a model id: *model its base, *adapter the adapter index or -1. False if unknown. Thread-safe. */
bool srv_registry_find(const srv_registry *r, const char *id, int *model, int *adapter);
/* GET /v1/models, GET /v1/models/{id} (false: unknown id or not the caller's), GET /lora-adapters bodies. Thread-safe. */
tk_status srv_models_json(const srv_registry *r, const char *owner, bool admin, tk_buf *out);
bool srv_model_json(const srv_registry *r, const char *id, const char *owner, bool admin, tk_buf *out);
tk_status srv_lora_json(const srv_registry *r, const char *owner, bool admin, tk_buf *out);

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

/* ---- batcher.c: the decode scheduler of one model ---- */
typedef struct srv_batcher srv_batcher;
/* Prompt tokens prefilled per step while other rows decode (one prefill chunk): a new prompt delays the
   running decodes by at most about one chunk's forward per step. */
#define TK_SERVE_PREFILL_BUDGET 256
/* Starts model mi's scheduler thread with up to max_rows rows decoded together. */
tk_status srv_batcher_start(tk_server *s, int mi, int max_rows, srv_batcher **out);
/* Ends the thread (after its rows have ended: call once no request runs) and frees it; NULL is a no-op. */
void srv_batcher_stop(srv_batcher *b);
/* One continuation asked of the batch: its prompt, params (with its seed), callbacks (on the scheduler's thread) and,
   after srv_batcher_generate, its stats (n_prompt, n_generated, stop) and status. */
typedef struct srv_gen_row {
    const int32_t *prompt;
    int64_t n_prompt;
    const tk_gen_params *p;
    tk_gen_text_fn on_text;      /* false ends the row with TK_GEN_STOP_CALLBACK */
    void (*on_logprobs)(void *ud, const tk_token_logprobs *lp); /* NULL: none computed */
    int32_t top_logprobs;        /* 0..TK_MAX_TOP_LOGPROBS */
    void (*on_end)(void *ud, tk_gen_stop stop); /* NULL: none; else called once when the row ends without failing, after
                                                   its last text (a streamed choice's finish chunk goes out then) */
    void *ud;
    tk_gen_stats stats;          /* out */
    tk_status status;            /* out */
} srv_gen_row;
/* Generates rows[0..n) as rows of the model's batch, queued together (so they decode in the same steps; an identical
   prompt right after another is prefilled once and its cache copied), blocking until all end: each row has
   tk_generate's contract (a fresh cache, its params and seed, adapters ads[0..n_ads)). Returns the first failed row's
   status (message set), TK_OK when all ran; *cpu_s (if not NULL) gains the rows' shares of the scheduler thread's CPU
   seconds. Thread-safe. */
tk_status srv_batcher_generate(srv_batcher *b, srv_gen_row *rows, int n, const tk_adapter_use *ads, int n_ads, double *cpu_s);

/* ---- logprobs.c: a choice's log-probabilities in OpenAI's shapes (chat's "content" list, completions' four lists) ---- */
typedef struct srv_lp_tok {
    tk_token_logprobs lp;
    int32_t prev;                /* the token before it (its text depends on it: SentencePiece's leading space) */
    size_t start, len;           /* its bytes in the choice's text */
} srv_lp_tok;
typedef struct srv_lp {
    const tk_tokenizer *tok;
    bool chat, failed;           /* failed: out of memory (srv_lp_take then answers NULL) */
    int32_t prev;                /* the last token: the prompt's, then each sampled one */
    srv_lp_tok *toks;
    size_t n, cap, bytes;        /* tokens received; their bytes */
    size_t reported;             /* tokens already taken */
    size_t prompt_chars;         /* completions: text_offset counts from the prompt's start (OpenAI's) */
    size_t cur_bytes, cur_chars; /* text_offset's cursor */
} srv_lp;
/* Starts a choice's record: prev the prompt's last token; prompt the prompt text (completions, for text_offset; NULL: 0). */
void srv_lp_init(srv_lp *l, const tk_tokenizer *tok, bool chat, int32_t prev, const char *prompt);
/* Records one sampled token (the batch's on_logprobs); a failure sets l->failed. */
void srv_lp_add(srv_lp *l, const tk_token_logprobs *lp);
/* The logprobs object of the tokens not yet taken whose text begins before byte `emitted` of text (the choice's text
   so far, emitted bytes long): chat {"content", "refusal"}, completions {"tokens", "token_logprobs", "top_logprobs",
   "text_offset"}; those tokens count as taken. NULL: out of memory. */
cJSON *srv_lp_take(srv_lp *l, const char *text, size_t emitted);
void srv_lp_free(srv_lp *l);

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
/* Whether token is a valid key (*admin: an admin key; file keys are not; owner: "key<row id>" or "keyfile<line>").
 * Thread-safe. */
bool srv_keys_check(srv_keys *k, const char *token, bool *admin, char owner[SRV_OWNER_LEN]);

/* ---- store.c: files, jobs, events and checkpoints in takumi.db (the keys' connection, under its mutex) ---- */
typedef struct srv_file {
    char id[40], owner[SRV_OWNER_LEN], filename[256], purpose[32];
    int64_t bytes, created_at;
} srv_file;
typedef struct srv_job_row {
    char id[40], owner[SRV_OWNER_LEN], model[64], training_file[72], validation_file[72], suffix[72], method[16], status[24];
    char fine_tuned_model[SRV_MAX_ID + 1];
    int64_t seed, n_epochs, batch_size, created_at;
    double lr_mult, beta;
    int64_t eval_interval;       /* reinforcement: steps between graded validations (0 = auto) */
} srv_job_row;
/* Every call: thread-safe. Lookups by id take the caller (owner, admin): another key's row is "not found". */
/* DATA_DIR/files/ID (caller frees). */
char *srv_file_path(const tk_server *s, const char *id);
/* DATA_DIR/jobs/ID, a job's run folder (caller frees). */
char *srv_job_dir(const tk_server *s, const char *id);
tk_status srv_file_insert(srv_keys *k, const srv_file *f);
/* 1: found (f filled, f may be NULL), 0: none of the caller's, -1: a database error (message set). */
int srv_file_find(srv_keys *k, const char *id, const char *owner, bool admin, srv_file *f);
tk_status srv_file_delete_row(srv_keys *k, const char *id);
/* A file object as OpenAI's ("object": "file"). */
tk_status srv_file_json(const srv_file *f, tk_buf *out);
/* GET /v1/files: the caller's files, newest first, after the file id `after` (NULL: from the newest), at most limit. */
tk_status srv_files_list_json(srv_keys *k, const char *owner, bool admin, const char *after, int limit, tk_buf *out);
/* grader: a reinforcement job's grader as JSON (NULL: none). */
tk_status srv_job_insert(srv_keys *k, const srv_job_row *j, const char *metadata, const char *grader);
/* A reinforcement job's grader JSON (malloc'd, caller frees) into *out; NULL when none. */
tk_status srv_job_grader(srv_keys *k, const char *id, char **out);
/* Adds seconds of CPU time the job's thread used to the job's total. */
tk_status srv_job_add_cpu(srv_keys *k, const char *id, double seconds);
/* As srv_file_find, for jobs. */
int srv_job_find(srv_keys *k, const char *id, const char *owner, bool admin, srv_job_row *j);
/* The job object (OpenAI's "fine_tuning.job"); false when not found. */
bool srv_job_json(srv_keys *k, const char *id, tk_buf *out);
tk_status srv_jobs_list_json(srv_keys *k, const char *owner, bool admin, const char *after, int limit, tk_buf *out);
/* Sets a job's status (and, when given, its finish time, model name, error code + message, trained tokens >= 0, hypers JSON). */
tk_status srv_job_set_status(srv_keys *k, const char *id, const char *status, bool finished, const char *model,
                             const char *err_code, const char *err_msg, int64_t trained_tokens, const char *hypers);
/* The oldest job with status st (id into out, 40 bytes); false when none. */
bool srv_job_next(srv_keys *k, const char *st, char out[40]);
int64_t srv_jobs_count(srv_keys *k, const char *st);
/* Calls fn for every job with status st, oldest first (outside the database lock). */
tk_status srv_jobs_each(srv_keys *k, const char *st, void (*fn)(const srv_job_row *j, void *ud), void *ud);
/* Appends an event: type "message" (data NULL) or "metrics" (data: a JSON object). */
tk_status srv_event_add(srv_keys *k, const char *job, const char *level, const char *type, const char *message, const char *data);
tk_status srv_events_list_json(srv_keys *k, const char *job, const char *after, int limit, tk_buf *out);
tk_status srv_checkpoint_add(srv_keys *k, const char *job, int64_t step, const char *metrics, const char *path);
/* Calls fn for every stored checkpoint (job id, step, folder, created_at), oldest first, outside the database lock. */
tk_status srv_checkpoints_each(srv_keys *k, void (*fn)(const char *job, int64_t step, const char *path, int64_t created, void *ud), void *ud);
/* Drops the rows of a job's checkpoints whose folder the trainer has removed (it keeps the newest few). */
tk_status srv_checkpoints_prune(srv_keys *k, const char *job);
tk_status srv_checkpoints_list_json(srv_keys *k, const char *job, const char *model, const char *after, int limit, tk_buf *out);

/* ---- deploy.c: deployments (aliases over model versions) ---- */
/* The canary bucket (0..9999) of user under alias: SHA-256(alias ":" user); a random one when user is NULL. Thread-safe. */
int srv_deploy_bucket(const char *alias, const char *user);
/* The version that answers a request for alias from user: the canary's when the user's bucket is below its share,
 * else the deployment's model. 1 (version filled), 0 (no such alias), -1 (database error, message set). Thread-safe. */
int srv_deploy_resolve(srv_keys *k, const char *alias, const char *user, char version[SRV_MAX_ID + 1]);

/* ---- reqlog.c: the request log and feedback ---- */
typedef struct srv_reqlog_row {
    const char *id, *owner, *deployment, *model; /* deployment "": none */
    int status;
    double latency;              /* seconds from the request's parse to its last token */
    int64_t tokens_in, tokens_out;
    const char *text;            /* the first choice's answer (NULL: none) */
    size_t text_len;
} srv_reqlog_row;
/* Logs one answered request (its contents from g unless --log-contents off) and drops rows older than --log-days;
 * a database error goes to the server's log line, never to the client. Thread-safe. */
void srv_reqlog_add(tk_server *s, const srv_reqlog_row *row, const srv_gen_req *g);

/* ---- metrics ---- */
enum { SRV_ROUTE_HEALTH, SRV_ROUTE_METRICS, SRV_ROUTE_MODELS, SRV_ROUTE_MODEL, SRV_ROUTE_CHAT, SRV_ROUTE_COMPLETIONS,
       SRV_ROUTE_LORA, SRV_ROUTE_FILES, SRV_ROUTE_JOBS, SRV_ROUTE_DEPLOY, SRV_ROUTE_FEEDBACK, SRV_ROUTE_KEYS, SRV_ROUTE_OTHER, SRV_ROUTE_COUNT };
#define SRV_N_BUCKETS 14
#define SRV_MAX_STATUS 16
typedef struct srv_metrics {
    pthread_mutex_t mu;
    struct { int status; int64_t n; } counts[SRV_ROUTE_COUNT][SRV_MAX_STATUS];
    int64_t hist[SRV_ROUTE_COUNT][SRV_N_BUCKETS + 1]; /* cumulative at render time; +Inf last */
    double sum[SRV_ROUTE_COUNT];
    int64_t n[SRV_ROUTE_COUNT];
    int64_t tokens_in, tokens_out;
    int64_t batch_steps, batch_rows; /* decode forwards of the schedulers and the rows they decoded (mean batch: ratio) */
    int batch_max;                   /* the most rows of one step */
    int batch_live[TK_SERVE_MAX_MODELS]; /* rows in each model's batch now */
    int64_t prefilled[TK_SERVE_MAX_MODELS], reused[TK_SERVE_MAX_MODELS]; /* each model's prompt tokens evaluated / copied
                                                                            from an identical prompt's cache, so far */
} srv_metrics;
void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
/* Records one finished request. Thread-safe. */
void srv_metrics_add(srv_metrics *m, int route, int status, double seconds, int64_t tokens_in, int64_t tokens_out);
/* Records one scheduler step of model mi: rows decoded (0: none, not counted) and rows in its batch now. Thread-safe. */
void srv_metrics_batch(srv_metrics *m, int mi, int decoded, int live);
/* Model mi's prompt tokens evaluated and reused so far (its batcher's totals, tk_gen_batch_stats). Thread-safe. */
void srv_metrics_prefill(srv_metrics *m, int mi, int64_t prefilled, int64_t reused);
/* Prometheus text exposition (0.0.4) of everything, plus the gate's gauges. Thread-safe. */
tk_status srv_metrics_text(srv_metrics *m, srv_gate *g, tk_buf *out);
const char *srv_route_name(int route);

/* ---- limits.c: per-key rate limits (token buckets in memory) and token budgets ---- */
typedef struct srv_limits {
    pthread_mutex_t mu;
    struct { char owner[SRV_OWNER_LEN]; double tokens, last; } *b;  /* one bucket per limited key seen */
    int n, cap;
} srv_limits;
void srv_limits_init(srv_limits *l);
void srv_limits_destroy(srv_limits *l);
/* Whether owner may start a generation now: 0, or -1 with e (429 insufficient_quota: its token budget is used up;
 * 429 rate_limit_exceeded: its requests per minute, *retry_after seconds until the next; 500 on a database error).
 * Takes one request from the key's bucket. Thread-safe. */
int srv_limits_check(tk_server *s, const char *owner, int *retry_after, srv_error *e);
/* Counts one generation's tokens and CPU seconds for owner and model (table usage). Thread-safe. */
void srv_usage_add(tk_server *s, const char *owner, const char *model, int64_t in, int64_t out, double cpu_s);
/* The calling thread's CPU time in seconds (CLOCK_THREAD_CPUTIME_ID; its OpenMP workers' time is not in it). Thread-safe. */
double srv_thread_cpu_s(void);

/* ---- the job queue (runner.c) ---- */
typedef struct tk_job tk_job;
typedef struct srv_runner {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* new work, or stop */
    bool stop, wake;
    tk_job *job;                 /* the running training job (NULL: none) */
    char job_id[40];             /* its id */
    bool cancel;                 /* the running job was cancelled by a request */
    bool pause;                  /* the running job was paused by a request (POST .../pause) */
} srv_runner;
/* Starts the runner thread (jobs left running by a killed server are resumed first). */
tk_status srv_runner_start(tk_server *s);
/* Wakes the runner: a job was queued. Thread-safe. */
void srv_runner_wake(tk_server *s);
/* Cancels job id if it is the running one (it stops after its current step); true if it was. Thread-safe. */
bool srv_runner_cancel(tk_server *s, const char *id);
/* Pauses job id at a checkpoint if it is the running one (or keeps it from starting); true if it was. The caller
 * holds runner.mu and sets the status "paused". */
bool srv_runner_pause(tk_server *s, const char *id);
/* Pauses the running job at a checkpoint (it resumes at the next start) and ends the runner thread. */
void srv_runner_stop(tk_server *s);
/* Registers the fine-tuned models of succeeded jobs whose base is loaded (at start). */
tk_status srv_runner_register_models(tk_server *s);

/* ---- the server ---- */
struct tk_server {
    tk_serve_params p;
    struct MHD_Daemon *d;
    int port;
    srv_registry reg;
    srv_gate gate;
    srv_keys keys;
    srv_metrics metrics;
    srv_runner runner;
    srv_limits limits;
    pthread_mutex_t mu;          /* log calls, in-flight count */
    pthread_cond_t idle;         /* signalled when in_flight drops to 0 */
    int in_flight;
    bool stopped;
};

/* One line to the server's log (params.log), one call at a time. Thread-safe. */
void srv_log(tk_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A request as the handlers see it. */
typedef struct srv_req {
    tk_server *s;
    struct MHD_Connection *c;
    const char *method, *path;
    const char *body;
    size_t body_len;
    const char *content_type;    /* the request's Content-Type (NULL: none) */
    bool admin;
    char owner[SRV_OWNER_LEN];   /* the caller's key ("local" when the server needs no key) */
} srv_req;

/* What a handler answers: a complete body (status + JSON/text), or a stream it started. */
typedef struct srv_stream srv_stream;
typedef struct srv_reply {
    int status;
    const char *content_type;    /* NULL: application/json */
    tk_buf body;
    srv_stream *stream;          /* non-NULL: SSE; body unused */
    int64_t tokens_in, tokens_out; /* for the log and the metrics (a stream's come from the stream) */
    char model[SRV_MAX_ID + 1];
    char deployment[SRV_MAX_ALIAS + 1]; /* the alias the request named ("": none): headers x-takumi-deployment, x-takumi-model-version */
    int retry_after;             /* > 0: a Retry-After header (seconds) */
} srv_reply;
/* Sets r to the JSON error e. */
void srv_reply_error(srv_reply *r, const srv_error *e);
/* Sets r to an error: status (type server_error from 500 on, else invalid_request_error), code and param (NULL = null). */
void srv_reply_fail(srv_reply *r, int status, const char *code, const char *param, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Whether the client of connection c has closed it (a non-blocking peek sees the end or an error). */
bool srv_client_gone(struct MHD_Connection *c);

/* route.c: the handler for method + path (route index into *route). Never NULL: unknown -> 404. */
typedef void (*srv_handler)(srv_req *q, srv_reply *r);
srv_handler srv_route(const char *method, const char *path, int *route, bool *needs_auth);

/* files.c, jobs.c: the handlers of /v1/files and /v1/fine_tuning/jobs */
void srv_handle_file_upload(srv_req *q, srv_reply *r);
void srv_handle_file_list(srv_req *q, srv_reply *r);
void srv_handle_file_get(srv_req *q, srv_reply *r);
void srv_handle_file_content(srv_req *q, srv_reply *r);
void srv_handle_file_delete(srv_req *q, srv_reply *r);
void srv_handle_job_create(srv_req *q, srv_reply *r);
void srv_handle_job_list(srv_req *q, srv_reply *r);
void srv_handle_job_get(srv_req *q, srv_reply *r);
void srv_handle_job_cancel(srv_req *q, srv_reply *r);
void srv_handle_job_pause(srv_req *q, srv_reply *r);
void srv_handle_job_resume(srv_req *q, srv_reply *r);
void srv_handle_job_events(srv_req *q, srv_reply *r);
void srv_handle_job_checkpoints(srv_req *q, srv_reply *r);
/* The list query ?after=ID&limit=N (1..max, default dflt); false with r set (400) on a bad limit. */
bool srv_list_query(srv_req *q, srv_reply *r, int dflt, int max, const char **after, int *limit);
/* A job's model name: "ft:<base>:<owner>:<suffix>:<id without ftjob->" into out. */
void srv_ft_model_name(const srv_job_row *j, char *out, size_t n);
/* Checks the stored file id for the method ("supervised": not preference data; "dpo": preference data); 0 or -1 with e. */
int srv_check_training_file(tk_server *s, const char *id, const char *param, const char *method, srv_error *e);
/* The base model (index into *mi; -1: none) that answers the score_model graders of grader (JSON) as the judge:
 * each one's "model" must be a base model r serves, all the same; 0 or -1 with e (400 naming the field). Thread-safe. */
int srv_grader_judge(const srv_registry *r, const char *grader, int *mi, srv_error *e);
/* Segment i (0-based) of path "/v1/files/ID/content" into out (n bytes); false when absent or too long. */
bool srv_path_segment(const char *path, int i, char *out, size_t n);
/* Sets r to 200 with body built by st (out of memory -> 500). */
void srv_reply_json(srv_reply *r, tk_status st);

/* dashboard.c: GET /dashboard, the web page compiled into the binary (no key: the page asks for one). */
void srv_handle_dashboard(srv_req *q, srv_reply *r);

/* deploy.c: the /v1/deployments handlers (admin keys) */
void srv_handle_deploy_create(srv_req *q, srv_reply *r);
void srv_handle_deploy_list(srv_req *q, srv_reply *r);
void srv_handle_deploy_get(srv_req *q, srv_reply *r);
void srv_handle_deploy_delete(srv_req *q, srv_reply *r);
void srv_handle_deploy_canary(srv_req *q, srv_reply *r);
void srv_handle_deploy_promote(srv_req *q, srv_reply *r);
void srv_handle_deploy_rollback(srv_req *q, srv_reply *r);

/* lora_routes.c: vLLM's POST /v1/load_lora_adapter, /v1/unload_lora_adapter; llama-server's POST /lora-adapters (admin keys) */
void srv_handle_lora_load(srv_req *q, srv_reply *r);
void srv_handle_lora_unload(srv_req *q, srv_reply *r);
void srv_handle_lora_set(srv_req *q, srv_reply *r);
/* Admin keys only: false with r set (403: "what needs an admin key") otherwise. */
bool srv_need_admin(srv_req *q, srv_reply *r, const char *what);

/* limits.c: GET /v1/usage, GET /v1/keys, POST /v1/keys/{id}/limits (admin keys) */
void srv_handle_usage(srv_req *q, srv_reply *r);
void srv_handle_keys(srv_req *q, srv_reply *r);
void srv_handle_key_limits(srv_req *q, srv_reply *r);

/* reqlog.c: POST /v1/feedback (the caller's logged answers), GET /v1/feedback/export?format=sft|preference (admin) */
void srv_handle_feedback(srv_req *q, srv_reply *r);
void srv_handle_feedback_export(srv_req *q, srv_reply *r);

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
