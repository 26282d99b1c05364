/* Method + path -> handler, and the small handlers (health, metrics, models, lora-adapters, not
 * found). Paths are matched exactly; /v1/models/{id} takes the rest of the path as the id. */
#include "serve/server.h"

static void json_reply(srv_reply *r, tk_status st) {
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
    json_reply(r, tk_buf_printf(&r->body, "{\"status\":\"ok\"}"));
}

static void h_metrics(srv_req *q, srv_reply *r) {
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    json_reply(r, srv_metrics_text(&q->s->metrics, &q->s->gate, &r->body));
}

static void h_models(srv_req *q, srv_reply *r) { json_reply(r, srv_models_json(&q->s->reg, &r->body)); }

static void h_model(srv_req *q, srv_reply *r) {
    const char *id = q->path + strlen("/v1/models/");
    if (srv_model_json(&q->s->reg, id, &r->body)) { r->status = 200; return; }
    srv_error e;
    srv_err(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%.80s' does not exist.", id);
    tk_buf_free(&r->body);
    srv_reply_error(r, &e);
}

static void h_lora(srv_req *q, srv_reply *r) { json_reply(r, srv_lora_json(&q->s->reg, &r->body)); }

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
    bool prefix, auth;
    int route;
    srv_handler fn;
} k_routes[] = {
    {"GET", "/health", false, false, SRV_ROUTE_HEALTH, h_health},
    {"GET", "/metrics", false, true, SRV_ROUTE_METRICS, h_metrics},
    {"GET", "/v1/models", false, true, SRV_ROUTE_MODELS, h_models},
    {"GET", "/v1/models/", true, true, SRV_ROUTE_MODEL, h_model},
    {"POST", "/v1/chat/completions", false, true, SRV_ROUTE_CHAT, srv_handle_chat},
    {"POST", "/v1/completions", false, true, SRV_ROUTE_COMPLETIONS, srv_handle_completions},
    {"GET", "/lora-adapters", false, true, SRV_ROUTE_LORA, h_lora},
};

srv_handler srv_route(const char *method, const char *path, int *route, bool *needs_auth) {
    bool path_known = false;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++) {
        size_t n = strlen(k_routes[i].path);
        bool match = k_routes[i].prefix ? !strncmp(path, k_routes[i].path, n) && path[n] && !strchr(path + n, '/')
                                        : !strcmp(path, k_routes[i].path);
        if (!match) continue;
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
