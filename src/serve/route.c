/* Method + path -> handler, and the small handlers (health, metrics, models, lora-adapters, not
 * found). A route's path is matched segment by segment; a "*" segment matches any one non-empty
 * segment (an id: /v1/files/{id}/content), never a "/". */
#include "serve/server.h"

void srv_reply_json(srv_reply *r, tk_status st) {
    if (st) {
        srv_error e;
        srv_err(&e, 500, "server_error", NULL, NULL, "out of memory");
        tk_buf_free(&r->body);
        srv_reply_error(r, &e);
        return;
    }
    r->status = 200;
}

static void h_health(srv_req *q, srv_reply *r) {
    (void)q;
    srv_reply_json(r, tk_buf_printf(&r->body, "{\"status\":\"ok\"}"));
}

static void h_metrics(srv_req *q, srv_reply *r) {
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    tk_status st = srv_metrics_text(&q->s->metrics, &q->s->gate, &r->body);
    /* the job queue: jobs by status (queue length = queued) */
    static const char *const k_states[] = {"validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"};
    if (!st) st = tk_buf_printf(&r->body, "# HELP takumi_fine_tuning_jobs Fine-tuning jobs by status.\n# TYPE takumi_fine_tuning_jobs gauge\n");
    for (size_t i = 0; i < sizeof k_states / sizeof k_states[0] && !st; i++)
        st = tk_buf_printf(&r->body, "takumi_fine_tuning_jobs{status=\"%s\"} %lld\n", k_states[i], (long long)srv_jobs_count(&q->s->keys, k_states[i]));
    srv_reply_json(r, st);
}

static void h_models(srv_req *q, srv_reply *r) { srv_reply_json(r, srv_models_json(&q->s->reg, q->owner, q->admin, &r->body)); }

static void h_model(srv_req *q, srv_reply *r) {
    const char *id = q->path + strlen("/v1/models/");
    if (srv_model_json(&q->s->reg, id, q->owner, q->admin, &r->body)) { r->status = 200; return; }
    srv_error e;
    srv_err(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%.80s' does not exist.", id);
    tk_buf_free(&r->body);
    srv_reply_error(r, &e);
}

static void h_lora(srv_req *q, srv_reply *r) { srv_reply_json(r, srv_lora_json(&q->s->reg, q->owner, q->admin, &r->body)); }

static void h_not_found(srv_req *q, srv_reply *r) {
    srv_error e;
    srv_err(&e, 404, "invalid_request_error", "unknown_url", NULL, "Unknown request URL: %.8s %.200s.", q->method, q->path);
    srv_reply_error(r, &e);
}

static void h_bad_method(srv_req *q, srv_reply *r) {
    srv_error e;
    srv_err(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "Method %.8s is not allowed on %.200s.", q->method, q->path);
    srv_reply_error(r, &e);
}

static const struct {
    const char *method, *path;
    bool auth;
    int route;
    srv_handler fn;
} k_routes[] = {
    {"GET", "/health", false, SRV_ROUTE_HEALTH, h_health},
    {"GET", "/dashboard", false, SRV_ROUTE_OTHER, srv_handle_dashboard},
    {"GET", "/metrics", true, SRV_ROUTE_METRICS, h_metrics},
    {"GET", "/v1/models", true, SRV_ROUTE_MODELS, h_models},
    {"GET", "/v1/models/*", true, SRV_ROUTE_MODEL, h_model},
    {"POST", "/v1/chat/completions", true, SRV_ROUTE_CHAT, srv_handle_chat},
    {"POST", "/v1/completions", true, SRV_ROUTE_COMPLETIONS, srv_handle_completions},
    {"GET", "/lora-adapters", true, SRV_ROUTE_LORA, h_lora},
    {"POST", "/lora-adapters", true, SRV_ROUTE_LORA, srv_handle_lora_set},
    {"POST", "/v1/load_lora_adapter", true, SRV_ROUTE_LORA, srv_handle_lora_load},
    {"POST", "/v1/unload_lora_adapter", true, SRV_ROUTE_LORA, srv_handle_lora_unload},
    {"POST", "/v1/files", true, SRV_ROUTE_FILES, srv_handle_file_upload},
    {"GET", "/v1/files", true, SRV_ROUTE_FILES, srv_handle_file_list},
    {"GET", "/v1/files/*", true, SRV_ROUTE_FILES, srv_handle_file_get},
    {"DELETE", "/v1/files/*", true, SRV_ROUTE_FILES, srv_handle_file_delete},
    {"GET", "/v1/files/*/content", true, SRV_ROUTE_FILES, srv_handle_file_content},
    {"POST", "/v1/fine_tuning/jobs", true, SRV_ROUTE_JOBS, srv_handle_job_create},
    {"GET", "/v1/fine_tuning/jobs", true, SRV_ROUTE_JOBS, srv_handle_job_list},
    {"GET", "/v1/fine_tuning/jobs/*", true, SRV_ROUTE_JOBS, srv_handle_job_get},
    {"POST", "/v1/fine_tuning/jobs/*/cancel", true, SRV_ROUTE_JOBS, srv_handle_job_cancel},
    {"POST", "/v1/fine_tuning/jobs/*/pause", true, SRV_ROUTE_JOBS, srv_handle_job_pause},
    {"POST", "/v1/fine_tuning/jobs/*/resume", true, SRV_ROUTE_JOBS, srv_handle_job_resume},
    {"GET", "/v1/fine_tuning/jobs/*/events", true, SRV_ROUTE_JOBS, srv_handle_job_events},
    {"GET", "/v1/fine_tuning/jobs/*/checkpoints", true, SRV_ROUTE_JOBS, srv_handle_job_checkpoints},
    {"POST", "/v1/deployments", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_create},
    {"GET", "/v1/deployments", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_list},
    {"GET", "/v1/deployments/*", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_get},
    {"DELETE", "/v1/deployments/*", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_delete},
    {"POST", "/v1/deployments/*/canary", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_canary},
    {"POST", "/v1/deployments/*/promote", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_promote},
    {"POST", "/v1/deployments/*/rollback", true, SRV_ROUTE_DEPLOY, srv_handle_deploy_rollback},
    {"POST", "/v1/feedback", true, SRV_ROUTE_FEEDBACK, srv_handle_feedback},
    {"GET", "/v1/usage", true, SRV_ROUTE_KEYS, srv_handle_usage},
    {"GET", "/v1/keys", true, SRV_ROUTE_KEYS, srv_handle_keys},
    {"POST", "/v1/keys/*/limits", true, SRV_ROUTE_KEYS, srv_handle_key_limits},
    {"GET", "/v1/feedback/export", true, SRV_ROUTE_FEEDBACK, srv_handle_feedback_export},
};

/* Whether path matches pattern ("*" = one non-empty segment). */
static bool path_match(const char *pat, const char *path) {
    while (*pat) {
        if (*pat == '*') {
            if (!*path || *path == '/') return false;
            while (*path && *path != '/') path++;
            pat++;
        } else if (*pat++ != *path++) {
            return false;
        }
    }
    return !*path;
}

bool srv_path_segment(const char *path, int i, char *out, size_t n) {
    const char *p = path;
    for (int k = 0; k <= i; k++) {
        if (*p != '/') return false;
        const char *start = ++p;
        while (*p && *p != '/') p++;
        if (k == i) {
            size_t len = (size_t)(p - start);
            if (!len || len >= n) return false;
            memcpy(out, start, len);
            out[len] = 0;
            return true;
        }
    }
    return false;
}

srv_handler srv_route(const char *method, const char *path, int *route, bool *needs_auth) {
    bool path_known = false;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++) {
        if (!path_match(k_routes[i].path, path)) continue;
        path_known = true;
        if (strcmp(method, k_routes[i].method)) continue;
        *route = k_routes[i].route;
        *needs_auth = k_routes[i].auth;
        return k_routes[i].fn;
    }
    *route = SRV_ROUTE_OTHER;
    *needs_auth = true; /* an unknown URL says nothing to a caller without a key */
    return path_known ? h_bad_method : h_not_found;
}
