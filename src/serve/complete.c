/* POST /v1/chat/completions and POST /v1/completions: the request's model id picks the base model
 * and its adapter; the prompt is the model's chat template over the messages (as `takumi generate
 * --chat` renders it) or the text with the tokenizer's BOS; the n choices of every prompt are rows of the
 * model's continuous batch (batcher.c), queued together so they decode in the same steps (a prompt is
 * prefilled once, its cache copied to its other choices), with every other running request's. Choice k
 * samples with seed + k, so its answer does not depend on n. The answer is one JSON object, or with
 * "stream": true OpenAI's SSE chunks (the choices' chunks interleaved, each with its index; a choice's
 * finish chunk sent when it ends) ending in "data: [DONE]". Sampling is OpenAI's: temperature and top_p
 * only (no top-k, min-p or penalty); temperature 0 is greedy, and a greedy answer equals `takumi
 * generate`'s. logprobs (logprobs.c): of the raw logits, each chunk carrying the tokens its text begins. */
#include "serve/server.h"
#include "core/core.h"
#include "data/data_internal.h"
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <time.h>

typedef struct job job;
/* One choice: its row's params (its own seed) and what its callbacks collect. */
typedef struct choice {
    job *j;
    int k;                     /* its index */
    tk_gen_params gp;
    srv_lp lp;                 /* logprobs (when asked) */
    bool ended;                /* streamed: its finish chunk was sent */
} choice;

struct job {
    tk_server *s;
    srv_gen_req req;
    int mi;
    tk_adapter_use ads[TK_MAX_ADAPTERS];
    int n_ads;
    tk_ivec *prompts;          /* token ids of each prompt */
    int n_prompts;
    char id[48];
    int64_t created;
    const char *model_id;      /* the model id that answers (the registry's string) */
    char deployment[SRV_MAX_ALIAS + 1]; /* the alias the request named ("": a model id) */
    uint64_t seed;
    /* results */
    tk_buf *texts;             /* [n_prompts * n] */
    const char **finish;       /* [n_prompts * n] */
    choice *ch;                /* [n_prompts * n] */
    int64_t tokens_in, tokens_out;
    double cpu_s;                 /* the generation's CPU seconds (its rows' shares of the batch thread's) */
    srv_stream *st;            /* streaming */
    struct MHD_Connection *conn; /* not streaming: the client's connection, watched while generating */
    int pieces;
    bool client_gone;          /* a callback saw the client gone: every row ends */
    bool failed, gone;         /* gone: the client left before the end */
    srv_error err;
    double t0;                 /* the request's start (the log's latency) */
    char owner[SRV_OWNER_LEN]; /* the caller's key (the log) */
};

static atomic_uint_fast64_t g_counter;

static uint64_t fresh_u64(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return tk_mix64(((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ tk_mix64(atomic_fetch_add(&g_counter, 1)));
}

static void job_free(job *j) {
    if (!j) return;
    int n = j->n_prompts * (j->req.n > 0 ? j->req.n : 1); /* before the request is freed (it zeroes n) */
    srv_gen_req_free(&j->req);
    for (int i = 0; i < j->n_prompts; i++) tk_ivec_free(&j->prompts[i]);
    free(j->prompts);
    if (j->texts)
        for (int i = 0; i < n; i++) tk_buf_free(&j->texts[i]);
    if (j->ch)
        for (int i = 0; i < n; i++) srv_lp_free(&j->ch[i].lp);
    free(j->texts);
    free(j->ch);
    free(j->finish);
    free(j);
}

static const char *finish_reason(tk_gen_stop s) {
    return s == TK_GEN_STOP_EOS || s == TK_GEN_STOP_STRING ? "stop" : "length";
}

/* ---- SSE ---- */
static cJSON *chunk_head(const job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->req.chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->model_id);
    return o;
}

/* Sends one event built from o (consumed); false when the client is gone. */
static bool send_event(job *j, cJSON *o) {
    if (j->req.include_usage && !cJSON_GetObjectItemCaseSensitive(o, "usage")) cJSON_AddNullToObject(o, "usage");
    tk_buf b = {0};
    bool ok = !tk_buf_append(&b, "data: ", 6) && !tk_json_append_value(&b, o) && !tk_buf_append(&b, "\n\n", 2) &&
              srv_stream_write(j->st, b.data, b.len);
    cJSON_Delete(o);
    tk_buf_free(&b);
    return ok;
}

/* One chunk for choice k: text (may be NULL) and/or a finish reason; role on the first chat chunk; lp the chunk's
 * logprobs object (consumed; NULL: null). */
static bool send_chunk(job *j, int k, const char *text, size_t len, const char *finish, bool role, cJSON *lp) {
    cJSON *o = chunk_head(j), *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", k);
    char *t = tk_strndup(text ? text : "", text ? len : 0);
    if (!t) { cJSON_Delete(o); cJSON_Delete(lp); return false; }
    if (j->req.chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (text || role) cJSON_AddStringToObject(d, "content", t);
    } else {
        cJSON_AddStringToObject(c, "text", t);
    }
    free(t);
    if (lp) cJSON_AddItemToObject(c, "logprobs", lp); else cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish); else cJSON_AddNullToObject(c, "finish_reason");
    return send_event(j, o);
}

static bool on_stream_text(void *ud, const char *text, size_t len) {
    choice *c = ud;
    job *j = c->j;
    tk_buf *all = &j->texts[c->k];
    if (tk_buf_append(all, text, len)) return false; /* kept for the request log and text_offset */
    cJSON *lp = NULL;
    if (j->req.logprobs && !(lp = srv_lp_take(&c->lp, all->data, all->len))) return false;
    return send_chunk(j, c->k, text, len, NULL, false, lp);
}

/* Collects a choice's text; every 8 pieces (of all the request's rows), stops every row when the client has hung up
 * (their slots are for the living). */
static bool on_collect_text(void *ud, const char *text, size_t len) {
    choice *c = ud;
    job *j = c->j;
    if (j->client_gone || (++j->pieces % 8 == 0 && (j->client_gone = srv_client_gone(j->conn)))) return false;
    return tk_buf_append(&j->texts[c->k], text, len) == TK_OK;
}

/* A streamed choice ended: its finish chunk goes out now, between the other choices' chunks (a choice whose client
 * left sends nothing). */
static void on_stream_end(void *ud, tk_gen_stop stop) {
    choice *c = ud;
    if (stop == TK_GEN_STOP_CALLBACK) return;
    c->j->finish[c->k] = finish_reason(stop);
    c->ended = send_chunk(c->j, c->k, NULL, 0, c->j->finish[c->k], false, NULL);
}

static void on_logprobs(void *ud, const tk_token_logprobs *lp) {
    choice *c = ud;
    srv_lp_add(&c->lp, lp);
}

static cJSON *usage_obj(const job *j) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->tokens_in);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)j->tokens_out);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(j->tokens_in + j->tokens_out));
    return u;
}

/* ---- generation (in a generation slot): every choice of every prompt a row of the model's decode batch (batcher.c),
 * all queued at once; the callbacks run on the batch's thread while this one waits ---- */
static void generate_all(job *j) {
    tk_server *s = j->s;
    srv_model *m = &s->reg.models[j->mi];
    tk_gen_params gp = tk_gen_default_params();
    gp.sampler.temperature = j->req.top_p <= 0 ? 0 : j->req.temperature;
    gp.sampler.top_k = 0;
    gp.sampler.top_p = j->req.top_p <= 0 ? 1 : j->req.top_p;
    gp.sampler.min_p = 0;
    gp.sampler.repeat_penalty = 1;
    gp.max_tokens = j->req.max_tokens;
    gp.stop = (const char *const *)j->req.stop;
    gp.n_stop = j->req.n_stop;
    gp.stop_at_eos = true;
    bool streaming = j->st != NULL;
    int n = j->n_prompts * j->req.n;
    srv_gen_row *rows = tk_calloc((size_t)n, sizeof *rows);
    if (!rows) {
        j->failed = true;
        srv_err(&j->err, 500, "server_error", NULL, NULL, "out of memory");
        return;
    }
    for (int p = 0; p < j->n_prompts; p++) j->tokens_in += (int64_t)j->prompts[p].len;
    bool gone = false;
    for (int k = 0; k < n && !gone; k++) {
        const tk_ivec *pr = &j->prompts[k / j->req.n];
        choice *c = &j->ch[k];
        c->j = j;
        c->k = k;
        c->gp = gp;
        c->gp.sampler.seed = j->seed + (uint64_t)k; /* as when the choices ran one after another */
        srv_lp_init(&c->lp, tk_model_tokenizer(m->m), j->req.chat, pr->data[pr->len - 1], j->req.chat ? NULL : j->req.prompts[k / j->req.n]);
        rows[k] = (srv_gen_row){.prompt = pr->data, .n_prompt = (int64_t)pr->len, .p = &c->gp,
                                .on_text = streaming ? on_stream_text : on_collect_text,
                                .on_logprobs = j->req.logprobs ? on_logprobs : NULL, .top_logprobs = j->req.top_logprobs,
                                .on_end = streaming ? on_stream_end : NULL, .ud = c};
        if (streaming && !send_chunk(j, k, NULL, 0, NULL, j->req.chat, NULL)) gone = true;
    }
    if (!streaming && srv_client_gone(j->conn)) gone = true;
    if (!gone) {
        tk_status st = srv_batcher_generate(m->batcher, rows, n, j->ads, j->n_ads, &j->cpu_s);
        bool lp_failed = false;
        for (int k = 0; k < n; k++) {
            j->tokens_out += rows[k].stats.n_generated;
            lp_failed |= j->ch[k].lp.failed;
            if (rows[k].stats.stop == TK_GEN_STOP_CALLBACK || (streaming && !rows[k].status && !j->ch[k].ended)) gone = true;
            j->finish[k] = finish_reason(rows[k].stats.stop);
        }
        if (st) {
            j->failed = true;
            srv_err(&j->err, 500, "server_error", NULL, NULL, "generation failed: %s", tk_last_error());
        } else if (lp_failed) {
            j->failed = true;
            srv_err(&j->err, 500, "server_error", NULL, NULL, "out of memory (the logprobs)");
        }
    }
    free(rows);
    j->gone = gone && !j->failed;
}

/* The request log's row of a generation that ran. */
static void log_request(job *j) {
    srv_reqlog_row row = {.id = j->id, .owner = j->owner, .deployment = j->deployment, .model = j->model_id,
                          .status = j->failed ? j->err.status : j->gone ? 499 : 200, .latency = tk_time_s() - j->t0,
                          .tokens_in = j->tokens_in, .tokens_out = j->tokens_out,
                          .text = j->texts[0].data ? j->texts[0].data : "", .text_len = j->texts[0].len};
    srv_reqlog_add(j->s, &row, &j->req);
    srv_usage_add(j->s, j->owner, j->model_id, j->tokens_in, j->tokens_out, j->cpu_s);
}

static void stream_body(srv_stream *st, void *ud) {
    job *j = ud;
    j->st = st;
    generate_all(j);
    if (j->failed) {
        tk_buf b = {0};
        tk_buf_append(&b, "data: ", 6);
        srv_error_json(&j->err, &b);
        tk_buf_append(&b, "\n\n", 2);
        if (b.data) srv_stream_write(j->st, b.data, b.len);
        tk_buf_free(&b);
    } else if (j->req.include_usage) {
        cJSON *o = chunk_head(j);
        cJSON_AddArrayToObject(o, "choices");
        cJSON_AddItemToObject(o, "usage", usage_obj(j));
        send_event(j, o);
    }
    srv_stream_write(j->st, "data: [DONE]\n\n", 14);
    srv_stream_set_tokens(j->st, j->tokens_in, j->tokens_out);
    log_request(j);
}

static void stream_done(void *ud) {
    job *j = ud;
    srv_gate_leave(&j->s->gate);
    job_free(j);
}

/* ---- the request ---- */
static int prepare(srv_req *q, job *j, srv_error *e) {
    tk_server *s = q->s;
    int ai;
    bool found = srv_registry_find(&s->reg, j->req.model, &j->mi, &ai) && srv_adapter_visible(&s->reg, ai, q->owner, q->admin);
    char version[SRV_MAX_ID + 1];
    int dep = found ? 0 : srv_deploy_resolve(&s->keys, j->req.model, j->req.user, version);
    if (dep < 0) return srv_err(e, 500, "server_error", NULL, NULL, "%.400s", tk_last_error());
    if (dep == 1) { /* an alias: every key may call it, whoever owns its version */
        snprintf(j->deployment, sizeof j->deployment, "%s", j->req.model);
        if (!(found = srv_registry_find(&s->reg, version, &j->mi, &ai)))
            return srv_err(e, 503, "server_error", "model_not_available", "model", "The deployment '%.60s' points at '%.80s', which is not served now.",
                           j->req.model, version);
    }
    if (!found)
        return srv_err(e, 404, "invalid_request_error", "model_not_found", "model",
                       "The model '%.80s' does not exist (GET /v1/models lists the models served).", j->req.model);
    srv_model *m = &s->reg.models[j->mi];
    j->model_id = ai >= 0 ? s->reg.adapters[ai].id : m->id;
    if (ai >= 0) j->ads[j->n_ads++] = (tk_adapter_use){tk_adapter_handle_peft(s->reg.adapters[ai].h), 1.0f};
    if (ai < 0 && !j->req.lora_given) { /* llama-server's global scales (POST /lora-adapters) on a request for the base */
        int n = s->reg.n_adapters;
        for (int i = 0; i < n && j->n_ads < TK_MAX_ADAPTERS; i++) {
            float sc = s->reg.adapters[i].scale;
            if (sc != 0 && s->reg.adapters[i].model == j->mi && !s->reg.adapters[i].unloaded)
                j->ads[j->n_ads++] = (tk_adapter_use){tk_adapter_handle_peft(s->reg.adapters[i].h), sc};
        }
    }
    for (int i = 0; i < j->req.n_lora; i++) {
        char p[32];
        snprintf(p, sizeof p, "lora[%d].id", i);
        int id = j->req.lora[i].id;
        if (id >= s->reg.n_adapters || s->reg.adapters[id].model != j->mi || s->reg.adapters[id].unloaded ||
            !srv_adapter_visible(&s->reg, id, q->owner, q->admin))
            return srv_err(e, 400, "invalid_request_error", "invalid_value", p,
                           "Invalid '%s': %d is not an adapter of model '%.60s' (GET /lora-adapters lists them).", p, id, m->id);
        if (j->n_ads >= TK_MAX_ADAPTERS)
            return srv_err(e, 400, "invalid_request_error", "invalid_value", "lora", "At most %d adapters per request.", TK_MAX_ADAPTERS);
        j->ads[j->n_ads++] = (tk_adapter_use){tk_adapter_handle_peft(s->reg.adapters[id].h), j->req.lora[i].scale};
    }
    const tk_tokenizer *tok = tk_model_tokenizer(m->m);
    j->n_prompts = j->req.chat ? 1 : j->req.n_prompts;
    if (!(j->prompts = tk_calloc((size_t)j->n_prompts, sizeof *j->prompts)))
        return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    if (j->req.chat) {
        if (m->fam == TK_CHAT_UNKNOWN)
            return srv_err(e, 400, "invalid_request_error", "unsupported_model", "model",
                           "The model '%.60s' has no chat template takumi renders (%.300s); use /v1/completions.", m->id, m->chat_err);
        tk_chat_msg *msgs = tk_calloc((size_t)j->req.n_msgs, sizeof *msgs);
        if (!msgs) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
        for (int i = 0; i < j->req.n_msgs; i++) msgs[i] = (tk_chat_msg){j->req.msgs[i].role, j->req.msgs[i].content};
        tk_chat_tokens ct = {0};
        tk_status st = tk_chat_render(tok, m->fam, msgs, (size_t)j->req.n_msgs, true, &ct);
        free(msgs);
        if (st) {
            tk_chat_tokens_free(&ct);
            return srv_err(e, 400, "invalid_request_error", "invalid_value", "messages", "The %s chat template refuses these messages: %.400s",
                           tk_chat_family_name(m->fam), tk_last_error());
        }
        j->prompts[0] = ct.ids;
        ct.ids = (tk_ivec){0};
        tk_chat_tokens_free(&ct);
    } else {
        for (int i = 0; i < j->n_prompts; i++) {
            if (tk_tokenize(tok, j->req.prompts[i], strlen(j->req.prompts[i]), TK_TOK_ADD_SPECIAL, &j->prompts[i]))
                return srv_err(e, 400, "invalid_request_error", "invalid_value", "prompt", "Cannot tokenize the prompt: %.400s", tk_last_error());
            if (j->prompts[i].len == 0)
                return srv_err(e, 400, "invalid_request_error", "invalid_value", "prompt", "The prompt is empty (and the model adds no BOS token).");
        }
    }
    int32_t n_ctx = tk_model_get_config(m->m)->max_seq;
    for (int i = 0; i < j->n_prompts; i++)
        if ((int64_t)j->prompts[i].len >= n_ctx)
            return srv_err(e, 400, "invalid_request_error", "context_length_exceeded", j->req.chat ? "messages" : "prompt",
                           "This model's maximum context length is %d tokens, but the prompt has %zu tokens.", n_ctx, j->prompts[i].len);
    size_t n_out = (size_t)j->n_prompts * (size_t)j->req.n;
    if (!(j->texts = tk_calloc(n_out, sizeof *j->texts)) || !(j->finish = tk_calloc(n_out, sizeof *j->finish)) ||
        !(j->ch = tk_calloc(n_out, sizeof *j->ch)))
        return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    j->seed = j->req.seed_given ? j->req.seed : fresh_u64();
    j->created = (int64_t)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%016llx%08llx", j->req.chat ? "chatcmpl" : "cmpl", (unsigned long long)fresh_u64(),
             (unsigned long long)(fresh_u64() & 0xffffffffu));
    return 0;
}

static void answer_json(job *j, srv_reply *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->req.chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->model_id);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    int n = j->n_prompts * j->req.n;
    for (int k = 0; k < n; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", k);
        char *t = tk_strndup(j->texts[k].data ? j->texts[k].data : "", j->texts[k].len);
        if (j->req.chat) {
            cJSON *msg = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", t ? t : "");
            cJSON_AddNullToObject(msg, "refusal");
        } else {
            cJSON_AddStringToObject(c, "text", t ? t : "");
        }
        free(t);
        cJSON *lp = j->req.logprobs ? srv_lp_take(&j->ch[k].lp, j->texts[k].data, j->texts[k].len) : NULL;
        if (lp) cJSON_AddItemToObject(c, "logprobs", lp); else cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddStringToObject(c, "finish_reason", j->finish[k] ? j->finish[k] : "length");
        cJSON_AddItemToArray(choices, c);
    }
    cJSON_AddItemToObject(o, "usage", usage_obj(j));
    tk_status st = tk_json_append_value(&r->body, o);
    cJSON_Delete(o);
    if (st) {
        srv_error e;
        srv_err(&e, 500, "server_error", NULL, NULL, "out of memory");
        srv_reply_error(r, &e);
        return;
    }
    r->status = 200;
}

static void handle(srv_req *q, srv_reply *r, bool chat) {
    srv_error e;
    job *j = tk_calloc(1, sizeof *j);
    if (!j) { srv_err(&e, 500, "server_error", NULL, NULL, "out of memory"); srv_reply_error(r, &e); return; }
    j->s = q->s;
    j->t0 = tk_time_s();
    snprintf(j->owner, sizeof j->owner, "%s", q->owner);
    if (srv_parse_gen_request(q->body, q->body_len, chat, &j->req, &e) || prepare(q, j, &e)) {
        if (j->req.model) snprintf(r->model, sizeof r->model, "%s", j->req.model);
        srv_reply_error(r, &e);
        job_free(j);
        return;
    }
    snprintf(r->model, sizeof r->model, "%s", j->model_id);
    snprintf(r->deployment, sizeof r->deployment, "%s", j->deployment);
    if (srv_limits_check(q->s, q->owner, &r->retry_after, &e)) {
        srv_reply_error(r, &e);
        job_free(j);
        return;
    }
    if (!srv_gate_enter(&q->s->gate)) {
        srv_err(&e, 503, "server_error", "server_overloaded",
                NULL, "The server is overloaded: %d generations are running and %d waiting; retry later.",
                q->s->p.max_concurrent, q->s->p.max_queue);
        srv_reply_error(r, &e);
        job_free(j);
        return;
    }
    if (j->req.stream) {
        srv_stream *stream = NULL; /* from here the job belongs to the stream's thread */
        tk_status st = srv_stream_start(stream_body, stream_done, j, q->s->p.timeout_s * 1000 / 3, &stream);
        if (st) {
            srv_gate_leave(&q->s->gate);
            srv_err(&e, 500, "server_error", NULL, NULL, "%s", tk_last_error());
            srv_reply_error(r, &e);
            job_free(j);
            return;
        }
        r->status = 200;
        r->content_type = "text/event-stream";
        r->stream = stream;
        return;
    }
    j->conn = q->c;
    generate_all(j);
    srv_gate_leave(&q->s->gate);
    if (!j->gone && srv_client_gone(q->c)) j->gone = true;
    log_request(j);
    r->tokens_in = j->tokens_in;
    r->tokens_out = j->tokens_out;
    if (j->failed) srv_reply_error(r, &j->err);
    else if (srv_client_gone(q->c)) r->status = 499, tk_buf_free(&r->body); /* nobody to answer: logged as 499 */
    else answer_json(j, r);
    job_free(j);
}

void srv_handle_chat(srv_req *q, srv_reply *r) { handle(q, r, true); }
void srv_handle_completions(srv_req *q, srv_reply *r) { handle(q, r, false); }
