/* POST /v1/fine_tuning/jobs bodies -> srv_job_req, with OpenAI's errors naming the field
 * (method.supervised.hyperparameters.n_epochs). Pure: the fuzz target drives it directly. */
#include "serve/request.h"
#include "core/core.h"
#include "data/data_internal.h"
#include "eval/grader.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>

#define BAD_TYPE(e, name, want, v) \
    srv_err(e, 400, "invalid_request_error", "invalid_type", name, "Invalid type for '%s': expected %s, but got %s instead.", name, want, tk_json_type_name(v))
#define BAD_VALUE(e, name, ...) srv_err(e, 400, "invalid_request_error", "invalid_value", name, __VA_ARGS__)
#define UNSUPPORTED(e, name, ...) srv_err(e, 400, "invalid_request_error", "unsupported_value", name, __VA_ARGS__)
#define UNKNOWN(e, name) srv_err(e, 400, "invalid_request_error", "unknown_parameter", name, "Unrecognized request argument supplied: %s", name)
#define NOMEM(e) srv_err(e, 500, "server_error", NULL, NULL, "out of memory")

int srv_json_id(const cJSON *v, const char *name, size_t maxlen, bool colon, char **out, srv_error *e) {
    if (!cJSON_IsString(v)) return BAD_TYPE(e, name, "a string", v);
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n < 1 || n > maxlen) return BAD_VALUE(e, name, "Invalid '%s': expected 1 to %zu characters, got %zu.", name, maxlen, n);
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-' ||
              (colon && *c == ':')))
            return BAD_VALUE(e, name, "Invalid '%s': '%.80s' holds a character other than A-Z a-z 0-9 . _ -%s.", name, s, colon ? " :" : "");
    if (!(*out = tk_strdup(s))) return NOMEM(e);
    return 0;
}

/* A hyperparameter: "auto" (*out = 0) or a number in (lo, hi] (integer when integral). */
static int get_hyper(const cJSON *v, const char *name, double lo, double hi, bool integral, double *out, srv_error *e) {
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "auto")) { *out = 0; return 0; }
    if (!cJSON_IsNumber(v)) return BAD_TYPE(e, name, integral ? "\"auto\" or an integer" : "\"auto\" or a number", v);
    double x = v->valuedouble;
    if (integral && x != floor(x)) return BAD_TYPE(e, name, "\"auto\" or an integer", v);
    if (!isfinite(x) || x <= lo || x > hi) return BAD_VALUE(e, name, "Invalid value for '%s': %g is not within (%g, %g].", name, x, lo, hi);
    *out = x;
    return 0;
}

static int parse_hypers(const cJSON *h, const char *prefix, srv_method m, srv_job_req *r, srv_error *e) {
    char p[128];
    if (cJSON_IsNull(h)) return 0;
    if (!cJSON_IsObject(h)) return BAD_TYPE(e, prefix, "an object", h);
    for (const cJSON *f = h->child; f; f = f->next) {
        snprintf(p, sizeof p, "%s.%.40s", prefix, f->string);
        double x;
        if (!strcmp(f->string, "n_epochs")) {
            if (get_hyper(f, p, 0, 50, true, &x, e)) return -1;
            r->n_epochs = (int64_t)x;
        } else if (!strcmp(f->string, "batch_size")) {
            if (get_hyper(f, p, 0, 256, true, &x, e)) return -1;
            r->batch_size = (int64_t)x;
        } else if (!strcmp(f->string, "learning_rate_multiplier")) {
            if (get_hyper(f, p, 0, 10, false, &x, e)) return -1;
            r->lr_multiplier = x;
        } else if (m == SRV_METHOD_DPO && !strcmp(f->string, "beta")) {
            if (get_hyper(f, p, 0, 2, false, &x, e)) return -1;
            r->beta = x;
        } else if (m == SRV_METHOD_REINFORCEMENT && !strcmp(f->string, "eval_interval")) {
            if (get_hyper(f, p, 0, 1e6, true, &x, e)) return -1;
            r->eval_interval = (int64_t)x;
        } else if (m == SRV_METHOD_REINFORCEMENT && (!strcmp(f->string, "eval_samples") || !strcmp(f->string, "compute_multiplier"))) {
            /* takumi's GRPO validates with one greedy answer per prompt and samples --group-size answers per prompt:
               neither knob exists as OpenAI defines it */
            if (get_hyper(f, p, 0, 1e6, false, &x, e)) return -1;
            if (x > 0) return UNSUPPORTED(e, p, "'%s' is not supported by takumi serve (only \"auto\").", p);
        } else if (m == SRV_METHOD_REINFORCEMENT && !strcmp(f->string, "reasoning_effort")) {
            if (!cJSON_IsString(f)) return BAD_TYPE(e, p, "a string", f);
            const char *v = f->valuestring;
            if (!strcmp(v, "low") || !strcmp(v, "medium") || !strcmp(v, "high"))
                return UNSUPPORTED(e, p, "'%s' = '%s' is not supported: the models takumi serves have no reasoning effort (only \"default\").", p, v);
            if (strcmp(v, "default")) return BAD_VALUE(e, p, "Invalid value: '%.40s'. Supported values are: 'default', 'low', 'medium' and 'high'.", v);
        } else {
            return UNKNOWN(e, p);
        }
    }
    return 0;
}

/* Refuses the grader types takumi serve does not run: python (OpenAI runs it in a sandbox; takumi has none) and
 * takumi's command grader (a program on the server, named by any key) -- in g or a multi grader's graders. */
static int refuse_grader_types(const cJSON *g, const char *prefix, srv_error *e) {
    char p[200];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(g, "type");
    if (cJSON_IsString(t) && (!strcmp(t->valuestring, "python") || !strcmp(t->valuestring, "command"))) {
        snprintf(p, sizeof p, "%s.type", prefix);
        return UNSUPPORTED(e, p, "Invalid '%s': '%s' graders are not run by takumi serve (string_check, text_similarity, score_model and multi are).",
                           p, t->valuestring);
    }
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(g, "graders");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "multi") && cJSON_IsObject(subs))
        for (const cJSON *s = subs->child; s; s = s->next) {
            snprintf(p, sizeof p, "%s.graders.%.60s", prefix, s->string);
            if (cJSON_IsObject(s) && refuse_grader_types(s, p, e)) return -1;
        }
    return 0;
}

/* method.reinforcement.grader: checked by takumi's grader parser, whose message names the field
 * ("method.reinforcement.grader: graders.acc.operation: ..."): that field is the error's param. */
static int parse_grader(const cJSON *g, srv_job_req *r, srv_error *e) {
    static const char origin[] = "method.reinforcement.grader";
    if (!cJSON_IsObject(g)) return BAD_TYPE(e, origin, "an object", g);
    if (refuse_grader_types(g, origin, e)) return -1;
    char *js = cJSON_PrintUnformatted(g);
    if (!js) return NOMEM(e);
    tk_grader *gr = NULL;
    tk_status st = tk_grader_parse(js, strlen(js), origin, &gr);
    tk_grader_free(gr);
    if (st == TK_ERR_NOMEM) { free(js); return NOMEM(e); }
    if (st) {
        char msg[400], param[160];
        snprintf(msg, sizeof msg, "%s", tk_last_error());
        tk_clear_error();
        free(js);
        /* "ORIGIN: FIELD: ..." or "ORIGIN: FIELD \"text\": ...": FIELD is a dotted path */
        const char *f = !strncmp(msg, origin, sizeof origin - 1) && !strncmp(msg + sizeof origin - 1, ": ", 2) ? msg + sizeof origin + 1 : NULL, *end = f;
        while (end && (isalnum((unsigned char)*end) || *end == '_' || *end == '.' || *end == '-' || *end == '[' || *end == ']')) end++;
        if (end && end > f && (*end == ':' || *end == ' ') && end - f < 100) snprintf(param, sizeof param, "%s.%.*s", origin, (int)(end - f), f);
        else snprintf(param, sizeof param, "%s", origin);
        return st == TK_ERR_UNSUPPORTED ? UNSUPPORTED(e, param, "Invalid '%s': %s", param, msg) : BAD_VALUE(e, param, "Invalid '%s': %s", param, msg);
    }
    free(r->grader);
    r->grader = js;
    return 0;
}

static int parse_method(const cJSON *v, srv_job_req *r, srv_error *e) {
    if (!cJSON_IsObject(v)) return BAD_TYPE(e, "method", "an object", v);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!type) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "method.type", "Missing required parameter: 'method.type'.");
    if (!cJSON_IsString(type)) return BAD_TYPE(e, "method.type", "a string", type);
    const char *t = type->valuestring;
    if (!strcmp(t, "supervised")) r->method = SRV_METHOD_SUPERVISED;
    else if (!strcmp(t, "dpo")) r->method = SRV_METHOD_DPO;
    else if (!strcmp(t, "reinforcement")) r->method = SRV_METHOD_REINFORCEMENT;
    else return BAD_VALUE(e, "method.type", "Invalid value: '%.40s'. Supported values are: 'supervised', 'dpo' and 'reinforcement'.", t);
    for (const cJSON *f = v->child; f; f = f->next) {
        char p[96];
        snprintf(p, sizeof p, "method.%.40s", f->string);
        if (!strcmp(f->string, "type")) continue;
        if (strcmp(f->string, t)) {
            if (cJSON_IsNull(f)) continue;
            return !strcmp(f->string, "supervised") || !strcmp(f->string, "dpo") || !strcmp(f->string, "reinforcement")
                       ? BAD_VALUE(e, p, "Invalid '%s': the method type is '%s'.", p, t)
                       : UNKNOWN(e, p);
        }
        if (cJSON_IsNull(f)) continue;
        if (!cJSON_IsObject(f)) return BAD_TYPE(e, p, "an object", f);
        for (const cJSON *g = f->child; g; g = g->next) {
            char q[160];
            snprintf(q, sizeof q, "%s.%.40s", p, g->string);
            if (r->method == SRV_METHOD_REINFORCEMENT && !strcmp(g->string, "grader")) {
                if (parse_grader(g, r, e)) return -1;
                continue;
            }
            if (strcmp(g->string, "hyperparameters")) return UNKNOWN(e, q);
            if (parse_hypers(g, q, r->method, r, e)) return -1;
        }
    }
    if (r->method == SRV_METHOD_REINFORCEMENT && !r->grader)
        return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "method.reinforcement.grader",
                       "Missing required parameter: 'method.reinforcement.grader'.");
    return 0;
}

/* metadata: up to 16 pairs, keys <= 64 characters, string values <= 512 (OpenAI's limits). */
static int parse_metadata(const cJSON *v, srv_job_req *r, srv_error *e) {
    if (cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v)) return BAD_TYPE(e, "metadata", "an object", v);
    if (cJSON_GetArraySize(v) > SRV_MAX_METADATA) return BAD_VALUE(e, "metadata", "Invalid 'metadata': at most %d keys.", SRV_MAX_METADATA);
    for (const cJSON *f = v->child; f; f = f->next) {
        char p[96];
        snprintf(p, sizeof p, "metadata.%.60s", f->string);
        if (!f->string[0] || strlen(f->string) > 64) return BAD_VALUE(e, "metadata", "Invalid 'metadata': keys are 1 to 64 characters.");
        if (!cJSON_IsString(f)) return BAD_TYPE(e, p, "a string", f);
        if (strlen(f->valuestring) > 512) return BAD_VALUE(e, p, "Invalid '%s': at most 512 characters.", p);
    }
    free(r->metadata);
    r->metadata = cJSON_PrintUnformatted(v);
    return r->metadata ? 0 : NOMEM(e);
}

static int parse_job_fields(const cJSON *root, srv_job_req *r, srv_error *e) {
    const cJSON *hypers = NULL;
    bool have_method = false;
    for (const cJSON *f = root->child; f; f = f->next) {
        const char *k = f->string;
        for (const cJSON *g = root->child; g != f; g = g->next)
            if (!strcmp(g->string, k)) return BAD_VALUE(e, k, "Duplicate field '%.60s' in the request body.", k);
        if (!strcmp(k, "model")) { if (srv_json_id(f, k, 63, true, &r->model, e)) return -1; }
        else if (!strcmp(k, "training_file")) { if (srv_json_id(f, k, 64, false, &r->training_file, e)) return -1; }
        else if (!strcmp(k, "validation_file")) { if (!cJSON_IsNull(f) && srv_json_id(f, k, 64, false, &r->validation_file, e)) return -1; }
        else if (!strcmp(k, "suffix")) {
            if (cJSON_IsNull(f)) continue;
            char *s = NULL;
            if (srv_json_id(f, k, SRV_MAX_SUFFIX, false, &s, e)) return -1;
            snprintf(r->suffix, sizeof r->suffix, "%s", s);
            free(s);
        } else if (!strcmp(k, "seed")) {
            if (cJSON_IsNull(f)) continue;
            if (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble)) return BAD_TYPE(e, k, "an integer", f);
            if (f->valuedouble < 0 || f->valuedouble > 2147483647.0) return BAD_VALUE(e, k, "Invalid value for 'seed': %.0f is not within [0, 2147483647].", f->valuedouble);
            r->seed = (int64_t)f->valuedouble;
            r->seed_given = true;
        } else if (!strcmp(k, "metadata")) { if (parse_metadata(f, r, e)) return -1; }
        else if (!strcmp(k, "method")) { if (parse_method(f, r, e)) return -1; have_method = true; }
        else if (!strcmp(k, "hyperparameters")) hypers = f;
        else if (!strcmp(k, "integrations")) {
            if (!cJSON_IsNull(f) && !(cJSON_IsArray(f) && !f->child))
                return srv_err(e, 400, "invalid_request_error", "unsupported_parameter", k, "'integrations' are not supported by takumi serve.");
        } else return UNKNOWN(e, k);
    }
    if (hypers) {
        if (have_method) return BAD_VALUE(e, "hyperparameters", "Give the hyperparameters in 'method', not also at the top level.");
        if (parse_hypers(hypers, "hyperparameters", SRV_METHOD_SUPERVISED, r, e)) return -1;
    }
    if (!r->model) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "model", "Missing required parameter: 'model'.");
    if (!r->training_file)
        return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "training_file", "Missing required parameter: 'training_file'.");
    if (!r->metadata && !(r->metadata = tk_strdup("{}"))) return NOMEM(e);
    return 0;
}

int srv_parse_job_request(const char *body, size_t len, srv_job_req *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    cJSON *root = NULL;
    if (srv_parse_json_object(body, len, &root, e)) return -1;
    int rc = parse_job_fields(root, r, e);
    cJSON_Delete(root);
    if (rc) {
        if (!e->status) NOMEM(e);
        srv_job_req_free(r);
    }
    return rc;
}

void srv_job_req_free(srv_job_req *r) {
    free(r->model);
    free(r->training_file);
    free(r->validation_file);
    free(r->metadata);
    free(r->grader);
    memset(r, 0, sizeof *r);
}
