/* libFuzzer target: the request side of `takumi serve`. The first byte picks what the rest is:
 * a /v1/chat/completions body, a /v1/completions body (parsed; accepted requests must hold what
 * the server relies on, refusals an OpenAI error whose JSON parses back), a URL path routed
 * for GET and POST (every path gets a handler), a POST /v1/files multipart body (boundary XyZ; an
 * accepted file lies inside the body), a POST /v1/fine_tuning/jobs body, a deployment body (5: create, 0x87:
 * canary), a POST /v1/feedback body (6), a POST /lora-adapters list (7) or a vLLM load (8) / unload (0x8a)
 * adapter body, or a POST /v1/keys/{id}/limits body (9). Never a crash, never a leak. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include "takumi.h"
#include "serve/server.h"
#include <cjson/cJSON.h>

static void check_request(const srv_gen_req *r) {
    if (!r->model) __builtin_trap();
    if (r->chat ? (r->n_msgs < 1 || !r->msgs) : (r->n_prompts < 1 || !r->prompts)) __builtin_trap();
    for (int i = 0; i < r->n_msgs; i++)
        if (!r->msgs[i].content || r->msgs[i].role > TK_ROLE_TOOL) __builtin_trap();
    for (int i = 0; i < r->n_prompts; i++)
        if (!r->prompts[i]) __builtin_trap();
    if (r->n < 1 || r->n > SRV_MAX_N || r->n_stop < 0 || r->n_stop > SRV_MAX_STOP || r->n_lora < 0 || r->n_lora > SRV_MAX_LORA) __builtin_trap();
    for (int i = 0; i < r->n_stop; i++)
        if (!r->stop[i] || !r->stop[i][0]) __builtin_trap();
    if (!(r->temperature >= 0 && r->temperature <= 2 && r->top_p >= 0 && r->top_p <= 1) || r->max_tokens < 0) __builtin_trap();
    if (r->include_usage && !r->stream) __builtin_trap();
    if (r->top_logprobs < 0 || r->top_logprobs > (r->chat ? SRV_MAX_TOP_LOGPROBS : SRV_MAX_CMPL_LOGPROBS) || (r->top_logprobs && !r->logprobs)) __builtin_trap();
}

static void check_error(const srv_error *e) {
    if (e->status != 400 && e->status != 500) __builtin_trap();
    if (!e->message[0] || !e->type) __builtin_trap();
    tk_buf b = {0};
    if (srv_error_json(e, &b) == TK_OK) {
        cJSON *j = cJSON_ParseWithLength(b.data, b.len);
        cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (!o || cJSON_GetArraySize(o) != 4 || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "message"))) __builtin_trap();
        cJSON_Delete(j);
    }
    tk_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 10;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (mode < 2) {
        srv_gen_req r;
        srv_error e;
        if (srv_parse_gen_request(body, len, mode == 0, &r, &e) == 0) {
            check_request(&r);
            srv_gen_req_free(&r);
        } else {
            check_error(&e);
            if (r.model || r.msgs || r.prompts || r.n_stop) __builtin_trap();
        }
    } else if (mode == 3) {
        /* a copy of exactly len bytes: the parser must stay inside them */
        char *b = malloc(len ? len : 1);
        if (!b) return 0;
        memcpy(b, body, len);
        srv_upload u;
        srv_error e;
        if (srv_parse_upload("multipart/form-data; boundary=XyZ", b, len, &u, &e) == 0) {
            if (u.len > len || (u.len && (u.data < b || u.data + u.len > b + len)) || strcmp(u.purpose, "fine-tune")) __builtin_trap();
        } else {
            check_error(&e);
        }
        free(b);
    } else if (mode == 4) {
        srv_job_req r;
        srv_error e;
        if (srv_parse_job_request(body, len, &r, &e) == 0) {
            if (!r.model || !r.training_file || !r.metadata || r.n_epochs < 0 || r.batch_size < 0 || !(r.lr_multiplier >= 0)) __builtin_trap();
            if ((r.method == SRV_METHOD_REINFORCEMENT) != (r.grader != NULL) || r.eval_interval < 0) __builtin_trap();
            srv_job_req_free(&r);
        } else {
            check_error(&e);
            if (r.model || r.training_file || r.metadata || r.grader) __builtin_trap();
        }
    } else if (mode == 5) {
        srv_deploy_req r;
        srv_error e;
        srv_deploy_kind kind = data[0] & 0x80 ? SRV_DEPLOY_CANARY : SRV_DEPLOY_CREATE;
        if (srv_parse_deploy_request(body, len, kind, &r, &e) == 0) {
            if (!r.model || (kind == SRV_DEPLOY_CREATE && !r.alias[0]) || (kind == SRV_DEPLOY_CANARY && (r.percent < 0 || r.percent > 100))) __builtin_trap();
            srv_deploy_req_free(&r);
        } else {
            check_error(&e);
            if (r.model) __builtin_trap();
        }
    } else if (mode == 6) {
        srv_feedback_req r;
        srv_error e;
        if (srv_parse_feedback_request(body, len, &r, &e) == 0) {
            if (!r.response_id || (!r.rating_given && !r.correction) || !(r.rating >= -1 && r.rating <= 1)) __builtin_trap();
            srv_feedback_req_free(&r);
        } else {
            check_error(&e);
            if (r.response_id || r.correction || r.comment) __builtin_trap();
        }
    } else if (mode == 7) {
        srv_lora set[SRV_MAX_LORA_SET];
        int n = -1;
        srv_error e;
        if (srv_parse_lora_scales(body, len, set, &n, &e) == 0) {
            if (n < 0 || n > SRV_MAX_LORA_SET) __builtin_trap();
            for (int i = 0; i < n; i++)
                if (set[i].id < 0 || !(set[i].scale >= -100 && set[i].scale <= 100)) __builtin_trap();
        } else {
            check_error(&e);
            if (n != 0) __builtin_trap();
        }
    } else if (mode == 8) {
        srv_lora_load_req r;
        srv_error e;
        bool load = !(data[0] & 0x80);
        if (srv_parse_lora_load(body, len, load, &r, &e) == 0) {
            if (!r.name || (load != (r.path != NULL))) __builtin_trap();
            srv_lora_load_req_free(&r);
        } else {
            check_error(&e);
            if (r.name || r.path) __builtin_trap();
        }
    } else if (mode == 9) {
        srv_limits_req r;
        srv_error e;
        if (srv_parse_limits_request(body, len, &r, &e) == 0) {
            if ((r.rpm < 0 && r.token_budget < 0) || r.rpm < -1 || r.token_budget < -1) __builtin_trap();
        } else {
            check_error(&e);
        }
    } else {
        char *path = malloc(len + 1);
        if (!path) return 0;
        memcpy(path, body, len);
        path[len] = 0;
        int route;
        bool auth;
        if (!srv_route("GET", path, &route, &auth) || !srv_route("POST", path, &route, &auth)) __builtin_trap();
        if (route < 0 || route >= SRV_ROUTE_COUNT) __builtin_trap();
        free(path);
    }
    return 0;
}
