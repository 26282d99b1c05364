/* The bodies of the platform's own endpoints -> structs, with OpenAI-shaped errors naming the field:
 * deployments (POST /v1/deployments, POST /v1/deployments/{alias}/canary), feedback (POST /v1/feedback),
 * key limits (POST /v1/keys/{id}/limits) and the adapter routes of other servers (vLLM's load/unload_lora_adapter,
 * llama-server's POST /lora-adapters).
 * Pure: the fuzz target (tests/fuzz/fuzz_serve_request.c) drives them directly. */
#include "serve/request.h"
#include "core/core.h"
#include "data/data_internal.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

static int bad_type(srv_error *e, const char *name, const char *want, const cJSON *v) {
    return srv_err(e, 400, "invalid_request_error", "invalid_type", name, "Invalid type for '%s': expected %s, but got %s instead.", name, want,
                   tk_json_type_name(v));
}
static int unknown(srv_error *e, const char *name) {
    return srv_err(e, 400, "invalid_request_error", "unknown_parameter", name, "Unrecognized request argument supplied: %.60s", name);
}
static int missing(srv_error *e, const char *name) {
    return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", name, "Missing required parameter: '%s'.", name);
}
/* Refuses a field given twice (cJSON keeps both). */
static int duplicate(const cJSON *root, const cJSON *f, srv_error *e) {
    for (const cJSON *g = root->child; g != f; g = g->next)
        if (!strcmp(g->string, f->string)) return srv_err(e, 400, "invalid_request_error", "invalid_value", f->string, "Duplicate field '%.60s'.", f->string);
    return 0;
}

void srv_deploy_req_free(srv_deploy_req *r) {
    free(r->model);
    memset(r, 0, sizeof *r);
}

int srv_parse_deploy_request(const char *body, size_t len, srv_deploy_kind kind, srv_deploy_req *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    r->percent = -1;
    cJSON *root = NULL;
    if (srv_parse_json_object(body, len, &root, e)) return -1;
    int rc = 0;
    char *alias = NULL;
    for (const cJSON *f = root->child; f && !rc; f = f->next) {
        const char *k = f->string;
        if ((rc = duplicate(root, f, e))) break;
        if (!strcmp(k, "model")) rc = srv_json_id(f, k, 191, true, &r->model, e);
        else if (kind == SRV_DEPLOY_CREATE && !strcmp(k, "alias")) {
            if (!(rc = srv_json_id(f, k, SRV_MAX_ALIAS, false, &alias, e))) snprintf(r->alias, sizeof r->alias, "%s", alias);
        } else if (kind == SRV_DEPLOY_CANARY && !strcmp(k, "percent")) {
            if (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble)) rc = bad_type(e, k, "an integer", f);
            else if (!(f->valuedouble >= 0 && f->valuedouble <= 100))
                rc = srv_err(e, 400, "invalid_request_error", "invalid_value", k, "Invalid 'percent': %g is not within [0, 100].", f->valuedouble);
            else r->percent = (int)f->valuedouble;
        } else rc = unknown(e, k);
    }
    free(alias);
    if (!rc && !r->model) rc = missing(e, "model");
    if (!rc && kind == SRV_DEPLOY_CREATE && !r->alias[0]) rc = missing(e, "alias");
    if (!rc && kind == SRV_DEPLOY_CANARY && r->percent < 0) rc = missing(e, "percent");
    cJSON_Delete(root);
    if (rc) srv_deploy_req_free(r);
    return rc;
}

void srv_feedback_req_free(srv_feedback_req *r) {
    free(r->response_id);
    free(r->correction);
    free(r->comment);
    memset(r, 0, sizeof *r);
}

/* A text field of at most max bytes: *out a copy. */
static int get_text(const cJSON *f, const char *k, size_t max, char **out, srv_error *e) {
    if (!cJSON_IsString(f)) return bad_type(e, k, "a string", f);
    if (strlen(f->valuestring) > max) return srv_err(e, 400, "invalid_request_error", "invalid_value", k, "Invalid '%s': longer than %zu bytes.", k, max);
    if (!(*out = tk_strdup(f->valuestring))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

int srv_parse_feedback_request(const char *body, size_t len, srv_feedback_req *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    cJSON *root = NULL;
    if (srv_parse_json_object(body, len, &root, e)) return -1;
    int rc = 0;
    for (const cJSON *f = root->child; f && !rc; f = f->next) {
        const char *k = f->string;
        if ((rc = duplicate(root, f, e))) break;
        if (!strcmp(k, "response_id")) rc = srv_json_id(f, k, 64, false, &r->response_id, e);
        else if (!strcmp(k, "rating")) {
            if (cJSON_IsNull(f)) continue;
            if (!cJSON_IsNumber(f)) rc = bad_type(e, k, "a number", f);
            else if (!(f->valuedouble >= -1 && f->valuedouble <= 1))
                rc = srv_err(e, 400, "invalid_request_error", "invalid_value", k, "Invalid 'rating': %g is not within [-1, 1] (-1 bad, 1 good).", f->valuedouble);
            else r->rating = f->valuedouble, r->rating_given = true;
        } else if (!strcmp(k, "correction")) {
            if (!cJSON_IsNull(f)) rc = get_text(f, k, 65536, &r->correction, e);
        } else if (!strcmp(k, "comment")) {
            if (!cJSON_IsNull(f)) rc = get_text(f, k, 4096, &r->comment, e);
        } else rc = unknown(e, k);
    }
    if (!rc && !r->response_id) rc = missing(e, "response_id");
    if (!rc && !r->rating_given && !r->correction)
        rc = srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "rating", "Give a 'rating' (-1..1), a 'correction', or both.");
    cJSON_Delete(root);
    if (rc) srv_feedback_req_free(r);
    return rc;
}

int srv_parse_lora_scales(const char *body, size_t len, srv_lora *out, int *n, srv_error *e) {
    *n = 0;
    /* the body is a list: wrapped as {"lora": BODY} it goes through the object parser's checks (NUL, trailing text) */
    tk_buf b = {0};
    if (tk_buf_append(&b, "{\"lora\":", 8) || tk_buf_append(&b, body, len) || tk_buf_append(&b, "}", 1)) {
        tk_buf_free(&b);
        return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    cJSON *root = NULL;
    int rc = srv_parse_json_object(b.data, b.len, &root, e);
    tk_buf_free(&b);
    if (rc) return -1;
    if (cJSON_GetArraySize(root) != 1) rc = srv_err(e, 400, "invalid_request_error", NULL, NULL, "The body must be one JSON list of {\"id\", \"scale\"}.");
    else rc = srv_parse_lora_list(root->child, "lora", out, SRV_MAX_LORA_SET, n, e);
    cJSON_Delete(root);
    if (rc) *n = 0;
    return rc;
}

void srv_lora_load_req_free(srv_lora_load_req *r) {
    free(r->name);
    free(r->path);
    memset(r, 0, sizeof *r);
}

int srv_parse_lora_load(const char *body, size_t len, bool load, srv_lora_load_req *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    cJSON *root = NULL;
    if (srv_parse_json_object(body, len, &root, e)) return -1;
    int rc = 0;
    for (const cJSON *f = root->child; f && !rc; f = f->next) {
        const char *k = f->string;
        if ((rc = duplicate(root, f, e))) break;
        if (!strcmp(k, "lora_name")) rc = srv_json_id(f, k, 191, true, &r->name, e);
        else if (load && !strcmp(k, "lora_path")) {
            if ((rc = get_text(f, k, 4096, &r->path, e))) break;
            if (!r->path[0]) rc = srv_err(e, 400, "invalid_request_error", "invalid_value", k, "Invalid 'lora_path': empty.");
        } else if (load && !strcmp(k, "load_inplace")) {
            if (!cJSON_IsBool(f) && !cJSON_IsNull(f)) rc = bad_type(e, k, "a boolean", f);
            else if (cJSON_IsTrue(f))
                rc = srv_err(e, 400, "invalid_request_error", "unsupported_value", k, "'load_inplace': true is not served (unload, then load).");
        } else if (!load && !strcmp(k, "lora_int_id")) {
            if (!cJSON_IsNumber(f) && !cJSON_IsNull(f)) rc = bad_type(e, k, "an integer", f);
        } else rc = unknown(e, k);
    }
    if (!rc && !r->name) rc = missing(e, "lora_name");
    if (!rc && load && !r->path) rc = missing(e, "lora_path");
    cJSON_Delete(root);
    if (rc) srv_lora_load_req_free(r);
    return rc;
}

int srv_parse_limits_request(const char *body, size_t len, srv_limits_req *r, srv_error *e) {
    r->rpm = r->token_budget = -1;
    cJSON *root = NULL;
    if (srv_parse_json_object(body, len, &root, e)) return -1;
    int rc = 0;
    for (const cJSON *f = root->child; f && !rc; f = f->next) {
        const char *k = f->string;
        if ((rc = duplicate(root, f, e))) break;
        int64_t *dst = !strcmp(k, "rpm") ? &r->rpm : !strcmp(k, "token_budget") ? &r->token_budget : NULL;
        if (!dst) rc = unknown(e, k);
        else if (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble)) rc = bad_type(e, k, "an integer", f);
        else if (!(f->valuedouble >= 0 && f->valuedouble <= 1e15))
            rc = srv_err(e, 400, "invalid_request_error", "invalid_value", k, "Invalid '%s': %g is not within [0, 1e15] (0: no limit).", k, f->valuedouble);
        else *dst = (int64_t)f->valuedouble;
    }
    if (!rc && r->rpm < 0 && r->token_budget < 0) rc = missing(e, "rpm");
    cJSON_Delete(root);
    if (rc) r->rpm = r->token_budget = -1;
    return rc;
}
