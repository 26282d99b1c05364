/* Request bodies of the OpenAI API, parsed and validated into plain structs; every refusal is an
 * OpenAI-shaped error (status, type, param naming the field, message). Pure: no server state, so
 * the fuzz target (tests/fuzz/fuzz_serve_request.c) drives it directly. */
#ifndef TK_SERVE_REQUEST_H
#define TK_SERVE_REQUEST_H
#include "takumi/chat.h"

/* An error as OpenAI returns it: {"error":{"message","type","param","code"}} with an HTTP status. */
typedef struct srv_error {
    int status;            /* HTTP status (400, 401, 404, 413, 503…) */
    const char *type;      /* "invalid_request_error", "authentication_error", "server_error"… */
    const char *code;      /* NULL = null; e.g. "model_not_found", "invalid_api_key" */
    char param[96];        /* the field ("messages[1].role"); "" = null */
    char message[512];
} srv_error;
/* Fills e; param may be NULL. Returns -1 (so handlers can `return srv_err(...)`). Reentrant. */
int srv_err(srv_error *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Appends e as OpenAI's JSON error object to out. Reentrant. */
tk_status srv_error_json(const srv_error *e, tk_buf *out);

#define SRV_MAX_STOP 4
#define SRV_MAX_N 16
#define SRV_MAX_TOP_LOGPROBS 20   /* chat's top_logprobs (OpenAI's limit) */
#define SRV_MAX_CMPL_LOGPROBS 5   /* completions' logprobs (OpenAI's limit) */
#define SRV_MAX_LORA 8

typedef struct srv_msg { tk_role role; char *content; } srv_msg;
typedef struct srv_lora { int id; float scale; } srv_lora;

/* A chat completion (chat) or completion (!chat) request. */
typedef struct srv_gen_req {
    bool chat;
    char *model;
    srv_msg *msgs;          /* chat: the conversation, text parts joined */
    int n_msgs;
    char **prompts;         /* completions: one or more prompts (each gets n choices) */
    int n_prompts;
    int32_t max_tokens;     /* 0 = until the context is full (OpenAI's default) */
    float temperature;      /* default 1; 0 = greedy */
    float top_p;            /* default 1 */
    char *stop[SRV_MAX_STOP];
    int n_stop;
    bool seed_given;
    uint64_t seed;
    int n;                  /* choices per prompt */
    bool stream, include_usage;
    bool logprobs;          /* chat: "logprobs": true; completions: "logprobs": N given (0..5) */
    int top_logprobs;       /* chat: "top_logprobs" (0..20); completions: N */
    srv_lora lora[SRV_MAX_LORA]; /* llama-server's per-request "lora": [{"id","scale"}] */
    int n_lora;
    bool lora_given;        /* "lora" was given (even []): the adapters' global scales do not apply */
    char *user;             /* OpenAI's "user" (NULL: none): a deployment's canary choice is sticky per user */
} srv_gen_req;

/* Parses and validates a /v1/chat/completions (chat) or /v1/completions body of len bytes.
 * Returns 0 and fills *r (free with srv_gen_req_free), or -1 with *e set (400: malformed JSON,
 * a field of the wrong type or range, an unknown field, a feature not served yet) and *r empty.
 * Reentrant. */
int srv_parse_gen_request(const char *body, size_t len, bool chat, srv_gen_req *r, srv_error *e);
/* Frees what r holds and zeroes it; accepts a zeroed r. */
void srv_gen_req_free(srv_gen_req *r);

/* ---- POST /v1/files: a multipart/form-data body (RFC 7578) ---- */
typedef struct srv_upload {
    char purpose[32];       /* "fine-tune" (the only purpose served) */
    char filename[256];     /* the file part's filename, without folders ("" when the client sent none) */
    const char *data;       /* the file's bytes: points into the body given */
    size_t len;
} srv_upload;
/* Parses the body of len bytes sent with Content-Type content_type (NULL = missing): the fields "purpose"
 * and "file" (a part with a filename), nothing else. Returns 0 and fills *u, or -1 with *e (400 naming the
 * field: not multipart, no boundary, a part without its end, a missing or unknown field, a wrong purpose).
 * Bounds-checked over len (the body need not end in NUL). Reentrant. */
int srv_parse_upload(const char *content_type, const char *body, size_t len, srv_upload *u, srv_error *e);

/* ---- POST /v1/fine_tuning/jobs ---- */
#define SRV_MAX_SUFFIX 64
#define SRV_MAX_METADATA 16
typedef enum srv_method { SRV_METHOD_SUPERVISED = 0, SRV_METHOD_DPO, SRV_METHOD_REINFORCEMENT } srv_method;
typedef struct srv_job_req {
    char *model, *training_file, *validation_file;  /* validation_file: NULL = none */
    char suffix[SRV_MAX_SUFFIX + 1];                /* "" = none */
    bool seed_given;
    int64_t seed;
    char *metadata;          /* the metadata object as compact JSON ("{}" if none given); string values only */
    srv_method method;
    /* hyperparameters: 0 = "auto" */
    int64_t n_epochs, batch_size;
    double lr_multiplier;
    double beta;             /* dpo only */
    int64_t eval_interval;   /* reinforcement only: steps between graded validations (0 = auto) */
    char *grader;            /* reinforcement only: the grader object as compact JSON (checked by takumi's grader parser) */
} srv_job_req;
/* Parses and validates a POST /v1/fine_tuning/jobs body (OpenAI's fields: model, training_file,
 * validation_file, suffix, seed, metadata, method {type supervised|dpo|reinforcement, supervised|dpo: {hyperparameters},
 * reinforcement: {grader (string_check, text_similarity, score_model, multi), hyperparameters}},
 * the older top-level hyperparameters; each hyperparameter a number or "auto"). Returns 0 and fills *r
 * (free with srv_job_req_free), or -1 with *e (400 naming the field) and *r empty. Reentrant. */
int srv_parse_job_request(const char *body, size_t len, srv_job_req *r, srv_error *e);
void srv_job_req_free(srv_job_req *r);
/* Parses a JSON object body (shared by the request parsers): 0 and *root, or -1 with e (400 malformed JSON,
 * trailing text, not an object, an escaped NUL). Reentrant. */
typedef struct cJSON cJSON;
int srv_parse_json_object(const char *body, size_t len, cJSON **root, srv_error *e);
/* A string field holding an id: 1..maxlen characters of A-Z a-z 0-9 . _ - (and ':' when colon); *out a copy
 * (caller frees). 0, or -1 with e (400 naming name). Reentrant. */
int srv_json_id(const cJSON *v, const char *name, size_t maxlen, bool colon, char **out, srv_error *e);

/* A list of llama-server's {"id", "scale"} (scale default 1, in [-100, 100]) named name in errors, at most max, into
 * out[0..*n). 0, or -1 with e. Reentrant. */
int srv_parse_lora_list(const cJSON *v, const char *name, srv_lora *out, int max, int *n, srv_error *e);

/* ---- the adapter routes of other servers (adminreq.c) ---- */
#define SRV_MAX_LORA_SET 64
/* llama-server's POST /lora-adapters body: a JSON list [{"id", "scale"}] (at most SRV_MAX_LORA_SET). 0 and out[0..*n),
 * or -1 with e. Reentrant. */
int srv_parse_lora_scales(const char *body, size_t len, srv_lora *out, int *n, srv_error *e);
typedef struct srv_lora_load_req {
    char *name;             /* lora_name: the model id requests will use */
    char *path;             /* lora_path (load only): a PEFT folder or GGUF adapter on the server's disk */
} srv_lora_load_req;
/* vLLM's POST /v1/load_lora_adapter ({"lora_name", "lora_path", "load_inplace"?}; load true) or /v1/unload_lora_adapter
 * ({"lora_name", "lora_int_id"?}) body. 0 and *r (free with srv_lora_load_req_free), or -1 with e and *r empty. Reentrant. */
int srv_parse_lora_load(const char *body, size_t len, bool load, srv_lora_load_req *r, srv_error *e);
void srv_lora_load_req_free(srv_lora_load_req *r);

/* ---- POST /v1/keys/{id}/limits (adminreq.c) ---- */
typedef struct srv_limits_req {
    int64_t rpm, token_budget;  /* -1: not given (unchanged); 0: no limit */
} srv_limits_req;
/* Parses {"rpm"?, "token_budget"?} (integers >= 0, at least one). 0 and *r, or -1 with e. Reentrant. */
int srv_parse_limits_request(const char *body, size_t len, srv_limits_req *r, srv_error *e);

/* ---- deployments (adminreq.c): POST /v1/deployments, .../{alias}/canary ---- */
#define SRV_MAX_ALIAS 64
typedef enum srv_deploy_kind { SRV_DEPLOY_CREATE = 0, SRV_DEPLOY_CANARY } srv_deploy_kind;
typedef struct srv_deploy_req {
    char alias[SRV_MAX_ALIAS + 1];  /* create: the alias (A-Z a-z 0-9 . _ -) */
    char *model;                    /* the version it points at (create) or the canary's version */
    int percent;                    /* canary: the share of users (0..100) sent to the canary */
} srv_deploy_req;
/* Parses a create body {"alias", "model"} or a canary body {"model", "percent"} (both fields required,
 * nothing else). 0 and *r (free with srv_deploy_req_free), or -1 with e (400 naming the field) and *r empty. Reentrant. */
int srv_parse_deploy_request(const char *body, size_t len, srv_deploy_kind kind, srv_deploy_req *r, srv_error *e);
void srv_deploy_req_free(srv_deploy_req *r);

/* ---- POST /v1/feedback (adminreq.c) ---- */
typedef struct srv_feedback_req {
    char *response_id;      /* the completion's "id" (chatcmpl-…, cmpl-…) */
    bool rating_given;
    double rating;          /* -1 (bad) .. 1 (good) */
    char *correction;       /* the answer it should have given (NULL: none) */
    char *comment;          /* free text (NULL: none) */
} srv_feedback_req;
/* Parses {"response_id", "rating"?, "correction"?, "comment"?}: response_id required and one of rating or
 * correction. 0 and *r (free with srv_feedback_req_free), or -1 with e and *r empty. Reentrant. */
int srv_parse_feedback_request(const char *body, size_t len, srv_feedback_req *r, srv_error *e);
void srv_feedback_req_free(srv_feedback_req *r);
#endif
