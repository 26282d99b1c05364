/* Per-route request counts by status, latency histograms, token counters and the decode batches' sizes, rendered in the
 * Prometheus text format (version 0.0.4). */
#include "serve/server.h"

static const double k_bounds[SRV_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
static const char *const k_routes[SRV_ROUTE_COUNT] = {"/health", "/metrics", "/v1/models", "/v1/models/{id}",
                                                      "/v1/chat/completions", "/v1/completions", "/lora-adapters", "/v1/files",
                                                      "/v1/fine_tuning/jobs", "/v1/deployments", "/v1/feedback", "/v1/keys", "other"};

const char *srv_route_name(int route) { return route >= 0 && route < SRV_ROUTE_COUNT ? k_routes[route] : "other"; }

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void srv_metrics_destroy(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void srv_metrics_batch(srv_metrics *m, int mi, int decoded, int live) {
    pthread_mutex_lock(&m->mu);
    if (decoded > 0) {
        m->batch_steps++;
        m->batch_rows += decoded;
        if (decoded > m->batch_max) m->batch_max = decoded;
    }
    if (mi >= 0 && mi < TK_SERVE_MAX_MODELS) m->batch_live[mi] = live;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_prefill(srv_metrics *m, int mi, int64_t prefilled, int64_t reused) {
    if (mi < 0 || mi >= TK_SERVE_MAX_MODELS) return;
    pthread_mutex_lock(&m->mu);
    m->prefilled[mi] = prefilled;
    m->reused[mi] = reused;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_add(srv_metrics *m, int route, int status, double seconds, int64_t tokens_in, int64_t tokens_out) {
    if (route < 0 || route >= SRV_ROUTE_COUNT) route = SRV_ROUTE_OTHER;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < SRV_MAX_STATUS; i++) {
        if (m->counts[route][i].status == status || m->counts[route][i].status == 0) {
            m->counts[route][i].status = status;
            m->counts[route][i].n++;
            break;
        }
    }
    int b = 0;
    while (b < SRV_N_BUCKETS && seconds > k_bounds[b]) b++;
    m->hist[route][b]++;
    m->sum[route] += seconds;
    m->n[route]++;
    m->tokens_in += tokens_in;
    m->tokens_out += tokens_out;
    pthread_mutex_unlock(&m->mu);
}

tk_status srv_metrics_text(srv_metrics *m, srv_gate *g, tk_buf *o) {
    int running, waiting;
    srv_gate_counts(g, &running, &waiting);
    tk_status st = TK_OK;
    pthread_mutex_lock(&m->mu);
    st |= tk_buf_printf(o, "# HELP takumi_requests_total HTTP requests answered, by route and status.\n"
                           "# TYPE takumi_requests_total counter\n");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++)
        for (int i = 0; i < SRV_MAX_STATUS && m->counts[r][i].status; i++)
            st |= tk_buf_printf(o, "takumi_requests_total{route=\"%s\",status=\"%d\"} %lld\n", k_routes[r],
                                m->counts[r][i].status, (long long)m->counts[r][i].n);
    st |= tk_buf_printf(o, "# HELP takumi_request_duration_seconds Time from a request's first byte to its last response byte.\n"
                           "# TYPE takumi_request_duration_seconds histogram\n");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++) {
        if (!m->n[r]) continue;
        int64_t cum = 0;
        for (int b = 0; b < SRV_N_BUCKETS; b++) {
            cum += m->hist[r][b];
            st |= tk_buf_printf(o, "takumi_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lld\n", k_routes[r], k_bounds[b], (long long)cum);
        }
        st |= tk_buf_printf(o, "takumi_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lld\n", k_routes[r], (long long)m->n[r]);
        st |= tk_buf_printf(o, "takumi_request_duration_seconds_sum{route=\"%s\"} %.6f\n", k_routes[r], m->sum[r]);
        st |= tk_buf_printf(o, "takumi_request_duration_seconds_count{route=\"%s\"} %lld\n", k_routes[r], (long long)m->n[r]);
    }
    st |= tk_buf_printf(o, "# HELP takumi_prompt_tokens_total Prompt tokens of completed generations.\n"
                           "# TYPE takumi_prompt_tokens_total counter\ntakumi_prompt_tokens_total %lld\n"
                           "# HELP takumi_completion_tokens_total Tokens generated.\n"
                           "# TYPE takumi_completion_tokens_total counter\ntakumi_completion_tokens_total %lld\n",
                        (long long)m->tokens_in, (long long)m->tokens_out);
    int live = 0;
    int64_t prefilled = 0, reused = 0;
    for (int i = 0; i < TK_SERVE_MAX_MODELS; i++) live += m->batch_live[i], prefilled += m->prefilled[i], reused += m->reused[i];
    st |= tk_buf_printf(o, "# HELP takumi_batch_rows Rows (running generations) in the models' decode batches now.\n"
                           "# TYPE takumi_batch_rows gauge\ntakumi_batch_rows %d\n"
                           "# HELP takumi_batch_rows_max The most rows decoded in one step.\n"
                           "# TYPE takumi_batch_rows_max gauge\ntakumi_batch_rows_max %d\n"
                           "# HELP takumi_batch_steps_total Batched decode steps (the mean batch size is rows_total / steps_total).\n"
                           "# TYPE takumi_batch_steps_total counter\ntakumi_batch_steps_total %lld\n"
                           "# HELP takumi_batch_rows_total Rows decoded, summed over the steps.\n"
                           "# TYPE takumi_batch_rows_total counter\ntakumi_batch_rows_total %lld\n",
                        live, m->batch_max, (long long)m->batch_steps, (long long)m->batch_rows);
    st |= tk_buf_printf(o, "# HELP takumi_prompt_tokens_prefilled_total Prompt tokens evaluated by the decode batches.\n"
                           "# TYPE takumi_prompt_tokens_prefilled_total counter\ntakumi_prompt_tokens_prefilled_total %lld\n"
                           "# HELP takumi_prompt_tokens_reused_total Prompt tokens copied from an identical prompt's cache instead "
                           "(the other choices of a request, a GRPO group).\n"
                           "# TYPE takumi_prompt_tokens_reused_total counter\ntakumi_prompt_tokens_reused_total %lld\n",
                        (long long)prefilled, (long long)reused);
    pthread_mutex_unlock(&m->mu);
    st |= tk_buf_printf(o, "# HELP takumi_generations_running Generations running now.\n"
                           "# TYPE takumi_generations_running gauge\ntakumi_generations_running %d\n"
                           "# HELP takumi_generations_queued Requests waiting for a generation slot.\n"
                           "# TYPE takumi_generations_queued gauge\ntakumi_generations_queued %d\n",
                        running, waiting);
    return st ? TK_ERR_NOMEM : TK_OK;
}
