/* OpenAI request bodies -> srv_gen_req, with OpenAI's error messages and a param that names the
 * field (messages[2].content[0].text). Fields takumi does not act on are accepted only at their
 * neutral value (frequency_penalty 0, echo false…), so a request never silently loses meaning. */
#include "serve/request.h"
#include "core/core.h"
#include "data/data_internal.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int srv_err(srv_error *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

tk_status srv_error_json(const srv_error *e, tk_buf *out) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");
    if (!o) { cJSON_Delete(root); return TK_ERR_NOMEM; }
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(o, "param", e->param); else cJSON_AddNullToObject(o, "param");
    if (e->code) cJSON_AddStringToObject(o, "code", e->code); else cJSON_AddNullToObject(o, "code");
    tk_status st = tk_json_append_value(out, root);
    cJSON_Delete(root);
    return st;
}

#define BAD_TYPE(e, name, want, v) \
    srv_err(e, 400, "invalid_request_error", "invalid_type", name, "Invalid type for '%s': expected %s, but got %s instead.", name, want, tk_json_type_name(v))
#define BAD_VALUE(e, name, ...) srv_err(e, 400, "invalid_request_error", "invalid_value", name, __VA_ARGS__)

/* A number in [lo, hi]. */
static int get_number(const cJSON *v, const char *name, double lo, double hi, double *out, srv_error *e) {
    if (!cJSON_IsNumber(v)) return BAD_TYPE(e, name, "a number", v);
    double x = v->valuedouble;
    if (!isfinite(x) || x < lo || x > hi)
        return BAD_VALUE(e, name, "Invalid value for '%s': %g is not within [%g, %g].", name, x, lo, hi);
    *out = x;
    return 0;
}

/* An integer in [lo, hi]. */
static int get_int(const cJSON *v, const char *name, double lo, double hi, int64_t *out, srv_error *e) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) return BAD_TYPE(e, name, "an integer", v);
    double x = v->valuedouble;
    if (x < lo || x > hi) return BAD_VALUE(e, name, "Invalid value for '%s': %.0f is not within [%.0f, %.0f].", name, x, lo, hi);
    *out = (int64_t)x;
    return 0;
}

/* Text of a message's content: a string, or an array of {"type":"text","text":...} parts joined. */
static int get_content(const cJSON *c, const char *name, tk_buf *out, srv_error *e) {
    char p[192];
    if (cJSON_IsString(c)) return tk_buf_append(out, c->valuestring, strlen(c->valuestring)) ? -1 : 0;
    if (!cJSON_IsArray(c)) return BAD_TYPE(e, name, "a string or a list of content parts", c);
    int i = 0;
    for (const cJSON *part = c->child; part; part = part->next, i++) {
        snprintf(p, sizeof p, "%s[%d]", name, i);
        if (!cJSON_IsObject(part)) return BAD_TYPE(e, p, "an object", part);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        if (!cJSON_IsString(type)) { snprintf(p, sizeof p, "%s[%d].type", name, i); return BAD_TYPE(e, p, "a string", type); }
        if (strcmp(type->valuestring, "text")) {
            snprintf(p, sizeof p, "%s[%d].type", name, i);
            return srv_err(e, 400, "invalid_request_error", "unsupported_value", p,
                           "Content parts of type '%.40s' are not supported: takumi serves text models (use 'text').", type->valuestring);
        }
        for (const cJSON *f = part->child; f; f = f->next)
            if (strcmp(f->string, "type") && strcmp(f->string, "text")) {
                snprintf(p, sizeof p, "%s[%d].%.40s", name, i, f->string);
                return srv_err(e, 400, "invalid_request_error", "unknown_parameter", p, "Unrecognized content part field: '%.40s'.", f->string);
            }
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        snprintf(p, sizeof p, "%s[%d].text", name, i);
        if (!cJSON_IsString(text)) return BAD_TYPE(e, p, "a string", text);
        if (tk_buf_append(out, text->valuestring, strlen(text->valuestring))) return -1;
    }
    return 0;
}

static int parse_messages(const cJSON *ms, srv_gen_req *r, srv_error *e) {
    if (!ms) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "messages", "Missing required parameter: 'messages'.");
    if (!cJSON_IsArray(ms)) return BAD_TYPE(e, "messages", "a list", ms);
    int n = cJSON_GetArraySize(ms);
    if (n < 1) return BAD_VALUE(e, "messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.");
    if (!(r->msgs = tk_calloc((size_t)n, sizeof *r->msgs))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    char p[96];
    for (const cJSON *m = ms->child; m; m = m->next) {
        int i = r->n_msgs;
        snprintf(p, sizeof p, "messages[%d]", i);
        if (!cJSON_IsObject(m)) return BAD_TYPE(e, p, "an object", m);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(p, sizeof p, "messages[%d].role", i);
        if (!role) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", p, "Missing required parameter: '%s'.", p);
        if (!cJSON_IsString(role)) return BAD_TYPE(e, p, "a string", role);
        const char *rs = role->valuestring;
        tk_role rl;
        if (!strcmp(rs, "system") || !strcmp(rs, "developer")) rl = TK_ROLE_SYSTEM;
        else if (!strcmp(rs, "user")) rl = TK_ROLE_USER;
        else if (!strcmp(rs, "assistant")) rl = TK_ROLE_ASSISTANT;
        else if (!strcmp(rs, "tool")) rl = TK_ROLE_TOOL;
        else return BAD_VALUE(e, p, "Invalid value: '%.40s'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", rs);
        for (const cJSON *f = m->child; f; f = f->next) {
            const char *k = f->string;
            snprintf(p, sizeof p, "messages[%d].%.40s", i, k);
            if (!strcmp(k, "role") || !strcmp(k, "content") || !strcmp(k, "name") || !strcmp(k, "tool_call_id")) continue;
            if (!strcmp(k, "refusal") && (cJSON_IsNull(f) || cJSON_IsString(f))) continue;
            if (!strcmp(k, "tool_calls") && (cJSON_IsNull(f) || (cJSON_IsArray(f) && !f->child))) continue;
            if (!strcmp(k, "tool_calls") || !strcmp(k, "function_call") || !strcmp(k, "audio"))
                return srv_err(e, 400, "invalid_request_error", "unsupported_parameter", p, "'%.40s' is not supported by takumi serve yet.", k);
            return srv_err(e, 400, "invalid_request_error", "unknown_parameter", p, "Unrecognized message field: '%s'.", p);
        }
        tk_buf text = {0};
        snprintf(p, sizeof p, "messages[%d].content", i);
        if (!content || cJSON_IsNull(content)) {
            if (rl != TK_ROLE_ASSISTANT) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", p, "Missing required parameter: '%s'.", p);
        } else if (get_content(content, p, &text, e)) {
            tk_buf_free(&text);
            if (!e->status) srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
            return -1;
        }
        if (text.data && memchr(text.data, 0, text.len)) { /* "\u0000" in a message: text has no NUL */
            tk_buf_free(&text);
            return BAD_VALUE(e, p, "Invalid value for '%s': the text holds a NUL character.", p);
        }
        r->msgs[i].role = rl;
        r->msgs[i].content = text.data ? text.data : tk_strdup("");
        r->n_msgs++;
        if (!r->msgs[i].content) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    return 0;
}

static int parse_prompts(const cJSON *pr, srv_gen_req *r, srv_error *e) {
    if (!pr) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "prompt", "Missing required parameter: 'prompt'.");
    int n = cJSON_IsArray(pr) ? cJSON_GetArraySize(pr) : 1;
    if (cJSON_IsArray(pr) && n < 1) return BAD_VALUE(e, "prompt", "Invalid 'prompt': empty array.");
    if (n > 64) return BAD_VALUE(e, "prompt", "Invalid 'prompt': at most 64 prompts per request, got %d.", n);
    if (!(r->prompts = tk_calloc((size_t)n, sizeof *r->prompts))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *one = cJSON_IsArray(pr) ? pr->child : pr;
    char p[48];
    for (int i = 0; i < n; i++, one = one->next) {
        snprintf(p, sizeof p, cJSON_IsArray(pr) ? "prompt[%d]" : "prompt", i);
        if (!cJSON_IsString(one)) {
            if (cJSON_IsNumber(one) || cJSON_IsArray(one))
                return srv_err(e, 400, "invalid_request_error", "unsupported_value", p, "Token-id prompts are not supported yet: send the prompt as text.");
            return BAD_TYPE(e, p, "a string or a list of strings", one);
        }
        if (!(r->prompts[i] = tk_strdup(one->valuestring))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
        r->n_prompts++;
    }
    return 0;
}

static int parse_stop(const cJSON *v, srv_gen_req *r, srv_error *e) {
    if (cJSON_IsNull(v)) return 0;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    if (!cJSON_IsString(v) && !cJSON_IsArray(v)) return BAD_TYPE(e, "stop", "a string or a list of strings", v);
    if (n > SRV_MAX_STOP) return BAD_VALUE(e, "stop", "Invalid 'stop': at most %d stop sequences, got %d.", SRV_MAX_STOP, n);
    const cJSON *one = cJSON_IsArray(v) ? v->child : v;
    char p[32];
    for (int i = 0; i < n; i++, one = one->next) {
        snprintf(p, sizeof p, cJSON_IsArray(v) ? "stop[%d]" : "stop", i);
        if (!cJSON_IsString(one)) return BAD_TYPE(e, p, "a string", one);
        if (!one->valuestring[0]) return BAD_VALUE(e, p, "Invalid '%s': empty stop sequence.", p);
        if (!(r->stop[r->n_stop] = tk_strdup(one->valuestring))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
        r->n_stop++;
    }
    return 0;
}

int srv_parse_lora_list(const cJSON *v, const char *name, srv_lora *out, int max, int *n, srv_error *e) {
    *n = 0;
    if (!cJSON_IsArray(v)) return BAD_TYPE(e, name, "a list of {\"id\", \"scale\"}", v);
    if (cJSON_GetArraySize(v) > max) return BAD_VALUE(e, name, "Invalid '%s': at most %d adapters.", name, max);
    char p[48];
    int i = 0;
    for (const cJSON *a = v->child; a; a = a->next, i++) {
        snprintf(p, sizeof p, "%s[%d]", name, i);
        if (!cJSON_IsObject(a)) return BAD_TYPE(e, p, "an object", a);
        int64_t id = 0;
        double scale = 1;
        for (const cJSON *f = a->child; f; f = f->next) {
            snprintf(p, sizeof p, "%s[%d].%.20s", name, i, f->string);
            if (!strcmp(f->string, "id")) { if (get_int(f, p, 0, 1 << 20, &id, e)) return -1; }
            else if (!strcmp(f->string, "scale")) { if (get_number(f, p, -100, 100, &scale, e)) return -1; }
            else return srv_err(e, 400, "invalid_request_error", "unknown_parameter", p, "Unrecognized field: '%s'.", p);
        }
        if (!cJSON_GetObjectItemCaseSensitive(a, "id")) {
            snprintf(p, sizeof p, "%s[%d].id", name, i);
            return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", p, "Missing required parameter: '%s'.", p);
        }
        out[(*n)++] = (srv_lora){(int)id, (float)scale};
    }
    return 0;
}

static int parse_lora(const cJSON *v, srv_gen_req *r, srv_error *e) {
    if (cJSON_IsNull(v)) return 0;
    r->lora_given = true;
    return srv_parse_lora_list(v, "lora", r->lora, SRV_MAX_LORA, &r->n_lora, e);
}

/* A field takumi accepts only at its neutral value: true when v is that value (null counts). */
static bool neutral(const char *k, const cJSON *v) {
    if (cJSON_IsNull(v)) return true;
    if (!strcmp(k, "frequency_penalty") || !strcmp(k, "presence_penalty")) return cJSON_IsNumber(v) && v->valuedouble == 0;
    if (!strcmp(k, "logit_bias")) return cJSON_IsObject(v) && !v->child;
    if (!strcmp(k, "echo") || !strcmp(k, "store")) return cJSON_IsFalse(v);
    if (!strcmp(k, "best_of")) return cJSON_IsNumber(v) && v->valuedouble == 1;
    if (!strcmp(k, "suffix")) return cJSON_IsString(v) && !v->valuestring[0];
    if (!strcmp(k, "tools")) return cJSON_IsArray(v) && !v->child;
    if (!strcmp(k, "tool_choice")) return cJSON_IsString(v) && !strcmp(v->valuestring, "none");
    if (!strcmp(k, "response_format")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
        return cJSON_IsObject(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(t) && !strcmp(t->valuestring, "text");
    }
    return false;
}

static const char *const k_neutral_chat[] = {"frequency_penalty", "presence_penalty", "logit_bias",
                                             "store", "tools", "tool_choice", "response_format", NULL};
static const char *const k_neutral_cmpl[] = {"frequency_penalty", "presence_penalty", "logit_bias", "echo",
                                             "best_of", "suffix", NULL};
/* Accepted and without effect on the answer. */
static const char *const k_ignored[] = {"metadata", "service_tier", "parallel_tool_calls", NULL};

static bool in_list(const char *const *l, const char *k) {
    for (; *l; l++)
        if (!strcmp(*l, k)) return true;
    return false;
}

static int parse_fields(const cJSON *root, bool chat, srv_gen_req *r, srv_error *e) {
    int64_t iv;
    double dv;
    bool have_max_completion = false, top_given = false;
    if (cJSON_GetArraySize(root) > 64) return BAD_VALUE(e, NULL, "Too many request fields (%d; at most 64).", cJSON_GetArraySize(root));
    for (const cJSON *f = root->child; f; f = f->next) {
        const char *k = f->string;
        for (const cJSON *g = root->child; g != f; g = g->next)
            if (!strcmp(g->string, k)) return BAD_VALUE(e, k, "Duplicate field '%.60s' in the request body.", k);
        if (!strcmp(k, "model")) {
            if (!cJSON_IsString(f)) return BAD_TYPE(e, "model", "a string", f);
            if (!(r->model = tk_strdup(f->valuestring))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
        } else if (chat && !strcmp(k, "messages")) {
            if (parse_messages(f, r, e)) return -1;
        } else if (!chat && !strcmp(k, "prompt")) {
            if (parse_prompts(f, r, e)) return -1;
        } else if (!strcmp(k, "max_tokens") || (chat && !strcmp(k, "max_completion_tokens"))) {
            if (cJSON_IsNull(f)) continue;
            if (get_int(f, k, 1, INT32_MAX, &iv, e)) return -1;
            bool mc = !strcmp(k, "max_completion_tokens");
            if (mc || !have_max_completion) r->max_tokens = (int32_t)iv; /* max_completion_tokens wins */
            have_max_completion |= mc;
        } else if (!strcmp(k, "temperature")) {
            if (cJSON_IsNull(f)) continue;
            if (get_number(f, k, 0, 2, &dv, e)) return -1;
            r->temperature = (float)dv;
        } else if (!strcmp(k, "top_p")) {
            if (cJSON_IsNull(f)) continue;
            if (get_number(f, k, 0, 1, &dv, e)) return -1;
            r->top_p = (float)dv;
        } else if (!strcmp(k, "n")) {
            if (cJSON_IsNull(f)) continue;
            if (get_int(f, k, 1, SRV_MAX_N, &iv, e)) return -1;
            r->n = (int)iv;
        } else if (!strcmp(k, "seed")) {
            if (cJSON_IsNull(f)) continue;
            if (get_int(f, k, -9223372036854775807.0, 9223372036854775807.0, &iv, e)) return -1;
            r->seed = (uint64_t)iv;
            r->seed_given = true;
        } else if (!strcmp(k, "stop")) {
            if (parse_stop(f, r, e)) return -1;
        } else if (!strcmp(k, "stream")) {
            if (cJSON_IsNull(f)) continue;
            if (!cJSON_IsBool(f)) return BAD_TYPE(e, k, "a boolean", f);
            r->stream = cJSON_IsTrue(f);
        } else if (!strcmp(k, "stream_options")) {
            if (cJSON_IsNull(f)) continue;
            if (!cJSON_IsObject(f)) return BAD_TYPE(e, k, "an object", f);
            for (const cJSON *o = f->child; o; o = o->next) {
                char p[64];
                snprintf(p, sizeof p, "stream_options.%.40s", o->string);
                if (strcmp(o->string, "include_usage"))
                    return srv_err(e, 400, "invalid_request_error", "unknown_parameter", p, "Unrecognized request argument supplied: %s", p);
                if (!cJSON_IsBool(o)) return BAD_TYPE(e, p, "a boolean", o);
                r->include_usage = cJSON_IsTrue(o);
            }
        } else if (chat && !strcmp(k, "logprobs")) {
            if (cJSON_IsNull(f)) continue;
            if (!cJSON_IsBool(f)) return BAD_TYPE(e, k, "a boolean", f);
            r->logprobs = cJSON_IsTrue(f);
        } else if (chat && !strcmp(k, "top_logprobs")) {
            if (cJSON_IsNull(f)) continue;
            if (get_int(f, k, 0, SRV_MAX_TOP_LOGPROBS, &iv, e)) return -1;
            r->top_logprobs = (int)iv;
            top_given = true;
        } else if (!chat && !strcmp(k, "logprobs")) {
            if (cJSON_IsNull(f)) continue;
            if (get_int(f, k, 0, SRV_MAX_CMPL_LOGPROBS, &iv, e)) return -1;
            r->logprobs = true;
            r->top_logprobs = (int)iv;
        } else if (!strcmp(k, "lora")) {
            if (parse_lora(f, r, e)) return -1;
        } else if (!strcmp(k, "user")) {
            if (cJSON_IsNull(f)) continue;
            if (!cJSON_IsString(f)) return BAD_TYPE(e, k, "a string", f);
            if (strlen(f->valuestring) > 256) return BAD_VALUE(e, k, "Invalid 'user': longer than 256 characters.");
            if (!(r->user = tk_strdup(f->valuestring))) return srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
        } else if (in_list(chat ? k_neutral_chat : k_neutral_cmpl, k)) {
            if (!neutral(k, f))
                return srv_err(e, 400, "invalid_request_error", "unsupported_parameter", k,
                               "Unsupported value for '%.40s': takumi serve does not implement it yet (only its neutral value is accepted).", k);
        } else if (!in_list(k_ignored, k)) {
            return srv_err(e, 400, "invalid_request_error", "unknown_parameter", k, "Unrecognized request argument supplied: %.60s", k);
        }
    }
    if (!r->model) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "model", "Missing required parameter: 'model'.");
    if (chat && !r->msgs) return parse_messages(NULL, r, e);
    if (!chat && !r->prompts) return parse_prompts(NULL, r, e);
    if (top_given && !r->logprobs)
        return srv_err(e, 400, "invalid_request_error", "invalid_value", "top_logprobs",
                       "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled (set 'logprobs' to true).");
    if (r->include_usage && !r->stream)
        return srv_err(e, 400, "invalid_request_error", "invalid_value", "stream_options",
                       "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    return 0;
}

int srv_parse_json_object(const char *body, size_t len, cJSON **out, srv_error *e) {
    *out = NULL;
    /* cJSON ends a string at an escaped NUL: refuse it rather than cut the text there */
    for (size_t i = 0; i + 6 <= len; i++) {
        if (body[i] != '\\') continue;
        if (!strncmp(body + i + 1, "u0000", 5)) {
            return srv_err(e, 400, "invalid_request_error", "invalid_value", NULL,
                           "The request holds a NUL character (\\u0000 at byte %zu): text cannot contain it.", i);
        }
        i++; /* skip the escaped character (an escaped backslash cannot start an escape) */
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0, line = 1, col = 1;
        for (size_t i = 0; i < at; i++) {
            if (body[i] == '\n') line++, col = 1;
            else col++;
        }
        return srv_err(e, 400, "invalid_request_error", NULL, NULL,
                       "We could not parse the JSON body of your request: invalid JSON at line %zu, column %zu (byte %zu of %zu).",
                       line, col, at, len);
    }
    /* nothing but whitespace may follow the value */
    size_t used = (size_t)(end - body);
    while (used < len && (body[used] == ' ' || body[used] == '\n' || body[used] == '\r' || body[used] == '\t')) used++;
    int rc = 0;
    if (used != len)
        rc = srv_err(e, 400, "invalid_request_error", NULL, NULL,
                     "We could not parse the JSON body of your request: extra text after the JSON value at byte %zu.", used);
    else if (!cJSON_IsObject(root))
        rc = srv_err(e, 400, "invalid_request_error", NULL, NULL, "The JSON body of your request must be an object, not %s.", tk_json_type_name(root));
    if (rc) cJSON_Delete(root);
    else *out = root;
    return rc;
}

int srv_parse_gen_request(const char *body, size_t len, bool chat, srv_gen_req *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    r->chat = chat;
    r->temperature = 1;
    r->top_p = 1;
    r->n = 1;
    r->max_tokens = chat ? 0 : 16; /* OpenAI's defaults: chat until the context ends, completions 16 */
    cJSON *root = NULL;
    if (srv_parse_json_object(body, len, &root, e)) return -1;
    int rc = parse_fields(root, chat, r, e);
    cJSON_Delete(root);
    if (rc) {
        if (!e->status) srv_err(e, 500, "server_error", NULL, NULL, "out of memory");
        srv_gen_req_free(r);
    }
    return rc;
}

void srv_gen_req_free(srv_gen_req *r) {
    free(r->model);
    free(r->user);
    for (int i = 0; i < r->n_msgs; i++) free(r->msgs[i].content);
    free(r->msgs);
    for (int i = 0; i < r->n_prompts; i++) free(r->prompts[i]);
    free(r->prompts);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}
