/* The fine-tuning jobs API: POST /v1/fine_tuning/jobs (validated at once: the files exist, are the
 * caller's and suit the method; then queued for the runner), GET /v1/fine_tuning/jobs, GET .../{id},
 * POST .../{id}/cancel, .../pause, .../resume, GET .../{id}/events, GET .../{id}/checkpoints. Another
 * key's job answers 404. */
#include "serve/server.h"
#include "core/core.h"
#include "takumi/data.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <time.h>


void srv_ft_model_name(const srv_job_row *j, char *out, size_t n) {
    const char *id = !strncmp(j->id, "ftjob-", 6) ? j->id + 6 : j->id;
    snprintf(out, n, "ft:%s:%s:%s:%s", j->model, j->owner, j->suffix, id);
}

int srv_check_training_file(tk_server *s, const char *id, const char *param, const char *method, srv_error *e) {
    char *path = srv_file_path(s, id);
    if (!path) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    tk_data_check_params cp = tk_data_check_default_params();
    cp.threads = 1;
    tk_data_report *rep = NULL;
    tk_status st = tk_data_check(path, &cp, &rep);
    free(path);
    if (st) return srv_err(e, 400, "invalid_request_error", "invalid_file", param, "The file %s cannot be read: %.300s", id, tk_last_error());
    bool dpo = !strcmp(method, "dpo"), pref = rep->format == TK_DATA_PREFERENCE;
    bool rft = !strcmp(method, "reinforcement"), prompts = rep->format == TK_DATA_RFT;
    int rc = 0;
    if (rep->verdict == TK_DATA_NOT_READY || rep->n_examples == 0)
        rc = srv_err(e, 400, "invalid_request_error", "invalid_file", param, "The file %s is not ready for fine-tuning (%llu errors).", id,
                     (unsigned long long)rep->n_errors);
    else if (dpo != pref || rft != prompts)
        rc = srv_err(e, 400, "invalid_request_error", "invalid_file", param,
                     "The file %s holds %s records; the method '%s' needs %s.", id, tk_data_format_name(rep->format), method,
                     dpo   ? "preference records (input, preferred_output, non_preferred_output)"
                     : rft ? "prompts: {\"messages\": [...]} ending with a user message, plus the fields the grader reads"
                           : "chat, prompt/completion or text records");
    tk_data_report_free(rep);
    return rc;
}

/* The served base model that answers g's score_model graders (judge) into *mi (-1: none needed). */
static int judge_of(const srv_registry *r, const cJSON *g, const char *prefix, int *mi, srv_error *e) {
    char p[200];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(g, "type"), *subs = cJSON_GetObjectItemCaseSensitive(g, "graders");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "multi") && cJSON_IsObject(subs)) {
        for (const cJSON *s = subs->child; s; s = s->next) {
            snprintf(p, sizeof p, "%s.graders.%.60s", prefix, s->string);
            if (judge_of(r, s, p, mi, e)) return -1;
        }
        return 0;
    }
    if (!cJSON_IsString(t) || strcmp(t->valuestring, "score_model")) return 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(g, "model");
    int bi, ai;
    snprintf(p, sizeof p, "%s.model", prefix);
    if (!cJSON_IsString(m) || !srv_registry_find(r, m->valuestring, &bi, &ai) || ai >= 0)
        return srv_err(e, 400, "invalid_request_error", "invalid_value", p,
                       "Invalid '%s': a score_model grader's model must be a base model this server serves (GET /v1/models): it is the judge.", p);
    if (*mi >= 0 && *mi != bi)
        return srv_err(e, 400, "invalid_request_error", "unsupported_value", p, "Invalid '%s': every score_model grader of a job must use the same judge model.", p);
    *mi = bi;
    return 0;
}

int srv_grader_judge(const srv_registry *r, const char *grader, int *mi, srv_error *e) {
    *mi = -1;
    cJSON *g = cJSON_Parse(grader);
    if (!g) return srv_err(e, 500, "server_error", NULL, NULL, "the stored grader is not JSON");
    int rc = judge_of(r, g, "method.reinforcement.grader", mi, e);
    cJSON_Delete(g);
    return rc;
}

/* The caller's file id (the field param) exists: 0, else -1 with e. */
static int own_file(srv_req *q, const char *id, const char *param, srv_error *e) {
    int found = srv_file_find(&q->s->keys, id, q->owner, q->admin, NULL);
    if (found == 1) return 0;
    if (found < 0) return srv_err(e, 500, "server_error", NULL, NULL, "%.400s", tk_last_error());
    return srv_err(e, 400, "invalid_request_error", "invalid_value", param, "Invalid file: no file '%.80s' (GET /v1/files lists yours).", id);
}

void srv_handle_job_create(srv_req *q, srv_reply *r) {
    srv_job_req jr;
    srv_error e;
    if (srv_parse_job_request(q->body, q->body_len, &jr, &e)) { srv_reply_error(r, &e); return; }
    int mi, ai;
    if (!srv_registry_find(&q->s->reg, jr.model, &mi, &ai) || !srv_adapter_visible(&q->s->reg, ai, q->owner, q->admin))
        srv_err(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%.80s' does not exist (GET /v1/models lists the models served).", jr.model);
    else if (ai >= 0)
        srv_err(&e, 400, "invalid_request_error", "invalid_value", "model",
                "The model '%.80s' is a fine-tuned model: takumi serve fine-tunes base models only (its base is '%.60s').", jr.model, q->s->reg.models[mi].id);
    else if (!own_file(q, jr.training_file, "training_file", &e) && (!jr.validation_file || !own_file(q, jr.validation_file, "validation_file", &e)) &&
             (!jr.grader || !srv_grader_judge(&q->s->reg, jr.grader, &mi, &e)))
        e.status = 0;
    if (e.status) { srv_job_req_free(&jr); srv_reply_error(r, &e); return; }
    srv_job_row j = {0};
    uint8_t raw[12];
    char hexid[25];
    uint32_t seed = 0;
    if (srv_random_bytes(raw, sizeof raw) || srv_random_bytes((uint8_t *)&seed, sizeof seed)) {
        srv_job_req_free(&jr);
        srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
        return;
    }
    srv_hex(raw, sizeof raw, hexid);
    snprintf(j.id, sizeof j.id, "ftjob-%s", hexid);
    snprintf(j.owner, sizeof j.owner, "%s", q->owner);
    snprintf(j.model, sizeof j.model, "%s", jr.model);
    snprintf(j.training_file, sizeof j.training_file, "%s", jr.training_file);
    snprintf(j.validation_file, sizeof j.validation_file, "%s", jr.validation_file ? jr.validation_file : "");
    snprintf(j.suffix, sizeof j.suffix, "%s", jr.suffix);
    snprintf(j.method, sizeof j.method, "%s", jr.method == SRV_METHOD_DPO ? "dpo" : jr.method == SRV_METHOD_REINFORCEMENT ? "reinforcement" : "supervised");
    snprintf(j.status, sizeof j.status, "validating_files");
    j.seed = jr.seed_given ? jr.seed : (int64_t)(seed & 0x7fffffff);
    j.n_epochs = jr.n_epochs;
    j.batch_size = jr.batch_size;
    j.lr_mult = jr.lr_multiplier;
    j.beta = jr.beta;
    j.eval_interval = jr.eval_interval;
    j.created_at = (int64_t)time(NULL);
    srv_keys *k = &q->s->keys;
    tk_status st = srv_job_insert(k, &j, jr.metadata, jr.grader);
    srv_job_req_free(&jr);
    if (st) { srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error()); return; }
    char msg[256];
    snprintf(msg, sizeof msg, "Validating training file: %s%s%s", j.training_file, j.validation_file[0] ? " and validation file: " : "", j.validation_file);
    srv_event_add(k, j.id, "info", "message", msg, NULL);
    if (srv_check_training_file(q->s, j.training_file, "training_file", j.method, &e) ||
        (j.validation_file[0] && srv_check_training_file(q->s, j.validation_file, "validation_file", j.method, &e))) {
        srv_event_add(k, j.id, "error", "message", e.message, NULL);
        srv_job_set_status(k, j.id, "failed", true, NULL, "invalid_training_file", e.message, -1, NULL);
    } else {
        srv_event_add(k, j.id, "info", "message", "Files validated, moving job to queued state", NULL);
        srv_job_set_status(k, j.id, "queued", false, NULL, NULL, NULL, -1, NULL);
        srv_runner_wake(q->s);
    }
    if (srv_job_json(k, j.id, &r->body)) r->status = 200;
    else srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
}

void srv_handle_job_list(srv_req *q, srv_reply *r) {
    const char *after;
    int limit;
    if (srv_list_query(q, r, 20, 100, &after, &limit)) srv_reply_json(r, srv_jobs_list_json(&q->s->keys, q->owner, q->admin, after, limit, &r->body));
}

/* The caller's job of the path's fourth segment; false with r set (404) when none. */
static bool find_job(srv_req *q, srv_reply *r, srv_job_row *j) {
    char id[64] = "";
    int found = srv_path_segment(q->path, 3, id, sizeof id) ? srv_job_find(&q->s->keys, id, q->owner, q->admin, j) : 0;
    if (found == 1) return true;
    if (found < 0) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else srv_reply_fail(r, 404, "fine_tune_not_found", "id", "No fine-tuning job found with id '%.80s'.", id[0] ? id : "?");
    return false;
}

void srv_handle_job_get(srv_req *q, srv_reply *r) {
    srv_job_row j;
    if (!find_job(q, r, &j)) return;
    if (srv_job_json(&q->s->keys, j.id, &r->body)) r->status = 200;
    else srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
}

void srv_handle_job_cancel(srv_req *q, srv_reply *r) {
    srv_job_row j;
    if (!find_job(q, r, &j)) return;
    srv_runner *rn = &q->s->runner;
    pthread_mutex_lock(&rn->mu);   /* the runner picks and finishes jobs under this lock: the status read here holds */
    bool done = srv_job_find(&q->s->keys, j.id, NULL, true, &j) == 1 &&
                (!strcmp(j.status, "succeeded") || !strcmp(j.status, "failed") || !strcmp(j.status, "cancelled"));
    if (!done) {
        srv_runner_cancel(q->s, j.id);
        srv_event_add(&q->s->keys, j.id, "info", "message", "Fine-tuning job cancelled", NULL);
        srv_job_set_status(&q->s->keys, j.id, "cancelled", true, NULL, NULL, NULL, -1, NULL);
    }
    pthread_mutex_unlock(&rn->mu);
    if (done) { srv_reply_fail(r, 400, NULL, NULL, "Job %s has already completed (status %s): it cannot be cancelled.", j.id, j.status); return; }
    if (srv_job_json(&q->s->keys, j.id, &r->body)) r->status = 200;
    else srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
}

/* Pause: a queued or running job stops at a checkpoint (status "paused"); resume: a paused job is queued again and
 * continues from its newest checkpoint. Other states: 400. */
static void pause_or_resume(srv_req *q, srv_reply *r, bool pause) {
    srv_job_row j;
    if (!find_job(q, r, &j)) return;
    srv_runner *rn = &q->s->runner;
    pthread_mutex_lock(&rn->mu);
    bool ok = srv_job_find(&q->s->keys, j.id, NULL, true, &j) == 1 &&
              (pause ? !strcmp(j.status, "queued") || !strcmp(j.status, "running") : !strcmp(j.status, "paused"));
    tk_status st = TK_OK;
    if (ok) {
        if (pause) srv_runner_pause(q->s, j.id);
        st = srv_job_set_status(&q->s->keys, j.id, pause ? "paused" : "queued", false, NULL, NULL, NULL, -1, NULL);
        if (!st) srv_event_add(&q->s->keys, j.id, "info", "message", pause ? "Fine-tuning job paused by a request" : "Fine-tuning job resumed", NULL);
    }
    pthread_mutex_unlock(&rn->mu);
    if (!ok) {
        srv_reply_fail(r, 400, "invalid_state", NULL, "Job %s is %s: only a %s job can be %s.", j.id, j.status,
                       pause ? "queued or running" : "paused", pause ? "paused" : "resumed");
        return;
    }
    if (!st && !pause) srv_runner_wake(q->s);
    if (!st && srv_job_json(&q->s->keys, j.id, &r->body)) r->status = 200;
    else srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
}

void srv_handle_job_pause(srv_req *q, srv_reply *r) { pause_or_resume(q, r, true); }
void srv_handle_job_resume(srv_req *q, srv_reply *r) { pause_or_resume(q, r, false); }

void srv_handle_job_events(srv_req *q, srv_reply *r) {
    srv_job_row j;
    const char *after;
    int limit;
    if (find_job(q, r, &j) && srv_list_query(q, r, 20, 1000, &after, &limit))
        srv_reply_json(r, srv_events_list_json(&q->s->keys, j.id, after, limit, &r->body));
}

void srv_handle_job_checkpoints(srv_req *q, srv_reply *r) {
    srv_job_row j;
    const char *after;
    int limit;
    char name[SRV_MAX_ID + 1];
    if (!find_job(q, r, &j) || !srv_list_query(q, r, 10, 100, &after, &limit)) return;
    srv_ft_model_name(&j, name, sizeof name);
    srv_reply_json(r, srv_checkpoints_list_json(&q->s->keys, j.id, name, after, limit, &r->body));
}
