/* Dataset formats: detection, validation with OpenAI's error categories (and their
 * equivalents for the other formats), and normalisation of every valid record into
 * one shape (tk_example: a list of role-tagged messages, an optional rejected
 * continuation, an optional label) that statistics, duplicates, PII, conversion and
 * token counting share.
 *
 * Chat validation follows OpenAI's fine-tuning data checks (data_type,
 * missing_messages_list, message_missing_key, message_unrecognized_key,
 * unrecognized_role, missing_content, example_missing_assistant_message) and adds
 * tool-call checks (invalid_tools, invalid_tool_calls, invalid_tool_arguments,
 * unknown_tool, tool_call_id_mismatch) and per-message weight (invalid_weight). */
#include "data/data_internal.h"
#include <math.h>

const char *tk_data_format_name(tk_data_format f) {
    switch (f) {
    case TK_DATA_AUTO: return "auto";
    case TK_DATA_CHAT: return "chat";
    case TK_DATA_PROMPT_COMPLETION: return "prompt_completion";
    case TK_DATA_ALPACA: return "alpaca";
    case TK_DATA_SHAREGPT: return "sharegpt";
    case TK_DATA_PREFERENCE: return "preference";
    case TK_DATA_CLASSIFICATION: return "classification";
    case TK_DATA_TEXT: return "text";
    case TK_DATA_KTO: return "kto";
    case TK_DATA_RFT: return "rft";
    case TK_DATA_FORMAT_COUNT: break;
    }
    return "unknown";
}

tk_data_format tk_data_format_from_name(const char *s) {
    static const struct { const char *n; tk_data_format f; } k[] = {
        {"auto", TK_DATA_AUTO}, {"chat", TK_DATA_CHAT}, {"openai", TK_DATA_CHAT}, {"messages", TK_DATA_CHAT},
        {"prompt_completion", TK_DATA_PROMPT_COMPLETION}, {"prompt-completion", TK_DATA_PROMPT_COMPLETION},
        {"completion", TK_DATA_PROMPT_COMPLETION}, {"alpaca", TK_DATA_ALPACA}, {"sharegpt", TK_DATA_SHAREGPT},
        {"preference", TK_DATA_PREFERENCE}, {"dpo", TK_DATA_PREFERENCE}, {"classification", TK_DATA_CLASSIFICATION},
        {"tsv", TK_DATA_CLASSIFICATION}, {"text", TK_DATA_TEXT}, {"txt", TK_DATA_TEXT}, {"raw", TK_DATA_TEXT},
        {"kto", TK_DATA_KTO}, {"unpaired", TK_DATA_KTO}, {"rft", TK_DATA_RFT}, {"prompts", TK_DATA_RFT}, {"reinforcement", TK_DATA_RFT},
    };
    for (size_t i = 0; s && i < sizeof k / sizeof k[0]; i++)
        if (!strcasecmp(s, k[i].n)) return k[i].f;
    return TK_DATA_FORMAT_COUNT;
}

const char *tk_data_role_name(int role) {
    switch (role) {
    case TK_R_SYSTEM: return "system";
    case TK_R_USER: return "user";
    case TK_R_ASSISTANT: return "assistant";
    case TK_R_TOOL: return "tool";
    default: return "text";
    }
}

/* ---- example -------------------------------------------------------------- */
void tk_example_reset(tk_example *ex) {
    for (size_t i = 0; i < ex->n_owned; i++) free(ex->owned[i]);
    ex->n_owned = 0;
    ex->n = ex->n_rej = ex->n_prompt = 0;
    ex->label = NULL;
    ex->label_len = 0;
    ex->record = NULL;
}

void tk_example_free(tk_example *ex) {
    tk_example_reset(ex);
    free(ex->msgs); free(ex->rej); free(ex->owned);
    memset(ex, 0, sizeof *ex);
}

static bool push_msg(tk_ex_msg **v, size_t *n, size_t *cap, int role, const char *text, size_t len, int weight, bool tc) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        tk_ex_msg *p = realloc(*v, c * sizeof *p);
        if (!p) return false;
        *v = p; *cap = c;
    }
    tk_ex_msg *m = &(*v)[(*n)++];
    m->role = (uint8_t)role;
    m->weight = (int8_t)weight;
    m->tool_calls = tc;
    m->text = text ? text : "";
    m->len = text ? len : 0;
    return true;
}
static bool ex_add(tk_example *ex, int role, const char *text, size_t len, int weight, bool tc) {
    return push_msg(&ex->msgs, &ex->n, &ex->cap, role, text, len, weight, tc);
}
static bool ex_add_rej(tk_example *ex, int role, const char *text, size_t len, int weight, bool tc) {
    return push_msg(&ex->rej, &ex->n_rej, &ex->cap_rej, role, text, len, weight, tc);
}
/* Takes ownership of s (malloc'd); returns it or NULL. */
static char *ex_own(tk_example *ex, char *s) {
    if (!s) return NULL;
    if (ex->n_owned == ex->cap_owned) {
        size_t c = ex->cap_owned ? ex->cap_owned * 2 : 8;
        char **p = realloc(ex->owned, c * sizeof *p);
        if (!p) { free(s); return NULL; }
        ex->owned = p; ex->cap_owned = c;
    }
    ex->owned[ex->n_owned++] = s;
    return s;
}
/* ---- JSON access ------------------------------------------------------------ */
static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static bool is_str(const cJSON *v) { return v && cJSON_IsString(v) && v->valuestring; }
const char *tk_json_type_name(const cJSON *v) {
    if (!v) return "missing";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}
static size_t slen(const cJSON *v) { return strlen(v->valuestring); }

tk_data_format tk_data_classify(const cJSON *r) {
    if (!cJSON_IsObject(r)) return TK_DATA_AUTO;
    if (get(r, "input") && get(r, "preferred_output")) return TK_DATA_PREFERENCE;
    if (get(r, "chosen") && get(r, "rejected")) return TK_DATA_PREFERENCE;
    const cJSON *msgs = get(r, "messages");
    if (cJSON_IsArray(msgs) && cJSON_GetArraySize(msgs) > 0) {   /* ending with a user turn: a prompt to answer (OpenAI RFT; its
                                                                      other fields, a "label" too, are the graders') */
        const cJSON *role = get(cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1), "role");
        if (cJSON_IsString(role) && !strcmp(role->valuestring, "user")) return TK_DATA_RFT;
    }
    if (get(r, "label") && (get(r, "messages") || (get(r, "prompt") && get(r, "completion")))) return TK_DATA_KTO;
    if (get(r, "messages")) return TK_DATA_CHAT;
    if (get(r, "conversations")) return TK_DATA_SHAREGPT;
    if (get(r, "instruction") && (get(r, "output") || get(r, "input"))) return TK_DATA_ALPACA;
    if ((get(r, "prompt") && get(r, "completion")) || (get(r, "question") && get(r, "answer"))) return TK_DATA_PROMPT_COMPLETION;
    if (get(r, "prompt") && !get(r, "completion") && !get(r, "text")) return TK_DATA_RFT;
    /* takumi eval's question records ({"question", "facts"|"reference"…, "system"?}): prompts to answer */
    if (cJSON_IsString(get(r, "question")) && !get(r, "answer") && !get(r, "choices") && !get(r, "text")) return TK_DATA_RFT;
    if ((get(r, "text") || get(r, "sentence")) && get(r, "label")) return TK_DATA_CLASSIFICATION;
    if (get(r, "text")) return TK_DATA_TEXT;
    return TK_DATA_AUTO;
}

/* ---- OpenAI messages ---------------------------------------------------------- */
typedef struct names { char **v; size_t n, cap; } names;
static void names_add(names *s, const char *x) {
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 8;
        char **p = realloc(s->v, c * sizeof *p);
        if (!p) return;
        s->v = p; s->cap = c;
    }
    s->v[s->n++] = (char *)x;   /* borrowed from the cJSON tree */
}
static bool names_has(const names *s, const char *x) {
    for (size_t i = 0; i < s->n; i++) if (!strcmp(s->v[i], x)) return true;
    return false;
}

/* Validates an OpenAI "tools" (or legacy "functions") list, collecting function names. */
static void check_tools(const cJSON *tools, bool legacy, names *fn, tk_rfinds *fs) {
    const char *key = legacy ? "functions" : "tools";
    if (!cJSON_IsArray(tools)) {
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "\"%s\" is %s, expected a list", key, tk_json_type_name(tools));
        return;
    }
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        i++;
        const cJSON *f = legacy ? t : get(t, "function");
        if (!cJSON_IsObject(t)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "%s[%d] is %s, expected an object", key, i, tk_json_type_name(t)); continue; }
        if (!legacy) {
            const cJSON *ty = get(t, "type");
            if (!is_str(ty) || strcmp(ty->valuestring, "function") != 0) {
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "tools[%d] needs \"type\": \"function\"", i);
                continue;
            }
            if (!cJSON_IsObject(f)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "tools[%d] has no \"function\" object", i); continue; }
        }
        const cJSON *nm = get(f, "name");
        if (!is_str(nm) || !nm->valuestring[0]) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "%s[%d] has no function \"name\"", key, i); continue; }
        const cJSON *params = get(f, "parameters");
        if (params && !cJSON_IsObject(params))
            tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "%s[%d] (\"%s\"): \"parameters\" is %s, expected a JSON schema object", key, i, nm->valuestring, tk_json_type_name(params));
        names_add(fn, nm->valuestring);
    }
}

/* Checks that a tool call's arguments string holds a JSON object. */
static void check_arguments(const cJSON *args, int mi, int ci, const char *fname, tk_rfinds *fs) {
    if (!is_str(args)) {
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_arguments", "message %d tool call %d (\"%s\"): \"arguments\" is %s, expected a string holding JSON",
                  mi, ci, fname, tk_json_type_name(args));
        return;
    }
    cJSON *a = cJSON_Parse(args->valuestring);
    if (!a || !cJSON_IsObject(a))
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_arguments", "message %d tool call %d (\"%s\"): \"arguments\" is not a JSON object: %.60s",
                  mi, ci, fname, args->valuestring);
    cJSON_Delete(a);
}

typedef struct msgs_ctx {
    const char *what;        /* "messages", "prompt", "chosen" … (for reasons) */
    int n_assistant, n_trainable, n_user, n_system;
    names fns;               /* declared tools */
    bool have_tools;
    names call_ids;
} msgs_ctx;

static int role_of(const char *r) {
    if (!strcmp(r, "system") || !strcmp(r, "developer")) return TK_R_SYSTEM;
    if (!strcmp(r, "user")) return TK_R_USER;
    if (!strcmp(r, "assistant")) return TK_R_ASSISTANT;
    if (!strcmp(r, "tool") || !strcmp(r, "function")) return TK_R_TOOL;
    return -1;
}

/* Text of an OpenAI content value (string or list of parts). Returns false (after a finding) when invalid. */
static bool content_text(const cJSON *c, const char *what, int mi, tk_example *ex, const char **text, size_t *len, tk_rfinds *fs) {
    if (is_str(c)) { *text = c->valuestring; *len = slen(c); return true; }
    if (cJSON_IsArray(c)) {
        tk_buf b = {0};
        int pi = 0;
        const cJSON *part;
        bool ok = true;
        cJSON_ArrayForEach(part, c) {
            pi++;
            const cJSON *ty = get(part, "type");
            if (!cJSON_IsObject(part) || !is_str(ty)) {
                tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "%s: message %d content part %d has no \"type\"", what, mi, pi);
                ok = false; continue;
            }
            if (!strcmp(ty->valuestring, "text")) {
                const cJSON *t = get(part, "text");
                if (!is_str(t)) { tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "%s: message %d content part %d has no \"text\" string", what, mi, pi); ok = false; continue; }
                if (b.len) tk_buf_append(&b, "\n", 1);
                tk_buf_append(&b, t->valuestring, slen(t));
            } else if (strcmp(ty->valuestring, "image_url") && strcmp(ty->valuestring, "input_audio") && strcmp(ty->valuestring, "file")) {
                tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "%s: message %d content part %d has unknown type \"%s\"", what, mi, pi, ty->valuestring);
                ok = false;
            }
        }
        if (!ok) { tk_buf_free(&b); return false; }
        if (!b.data) { *text = ""; *len = 0; return true; }
        *text = ex_own(ex, b.data);
        *len = b.len;
        return *text != NULL;
    }
    tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "%s: message %d content is %s, expected a string", what, mi, tk_json_type_name(c));
    return false;
}

static const char *const k_msg_keys[] = {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "refusal"};

/* Validates an OpenAI messages list; appends to ex (rejected side when rej). Returns messages added. */
static int check_messages(const cJSON *msgs, msgs_ctx *cx, tk_example *ex, bool rej, tk_rfinds *fs) {
    int mi = 0, added = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        mi++;
        if (!cJSON_IsObject(m)) {
            tk_rf_add(fs, TK_DATA_ERROR, "data_type", "%s: message %d is %s, expected an object", cx->what, mi, tk_json_type_name(m));
            continue;
        }
        const cJSON *role = get(m, "role"), *content = get(m, "content"), *tc = get(m, "tool_calls"),
                    *fc = get(m, "function_call"), *w = get(m, "weight");
        const cJSON *k;
        cJSON_ArrayForEach(k, m) {
            bool known = false;
            for (size_t j = 0; j < sizeof k_msg_keys / sizeof k_msg_keys[0]; j++)
                if (k->string && !strcmp(k->string, k_msg_keys[j])) known = true;
            if (!known)
                tk_rf_add(fs, TK_DATA_ERROR, "message_unrecognized_key", "%s: message %d has unrecognized key \"%s\"", cx->what, mi,
                          k->string ? k->string : "");
        }
        int r = -1;
        if (!role) tk_rf_add(fs, TK_DATA_ERROR, "message_missing_key", "%s: message %d has no \"role\"", cx->what, mi);
        else if (!is_str(role)) tk_rf_add(fs, TK_DATA_ERROR, "unrecognized_role", "%s: message %d role is %s, expected a string", cx->what, mi, tk_json_type_name(role));
        else if ((r = role_of(role->valuestring)) < 0)
            tk_rf_add(fs, TK_DATA_ERROR, "unrecognized_role", "%s: message %d has role \"%.40s\" (expected system, developer, user, assistant or tool)",
                      cx->what, mi, role->valuestring);
        bool calls = tc && !cJSON_IsNull(tc);
        bool legacy_call = fc && !cJSON_IsNull(fc);
        if (!content && !calls && !legacy_call)
            tk_rf_add(fs, TK_DATA_ERROR, "message_missing_key", "%s: message %d has no \"content\"", cx->what, mi);
        const char *text = "";
        size_t len = 0;
        bool ok_content = true;
        if (content && !(cJSON_IsNull(content) && (calls || legacy_call))) {
            if (cJSON_IsNull(content)) { tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "%s: message %d content is null", cx->what, mi); ok_content = false; }
            else ok_content = content_text(content, cx->what, mi, ex, &text, &len, fs);
        }
        int weight = -1;
        if (w) {
            if (!cJSON_IsNumber(w) || (w->valuedouble != 0 && w->valuedouble != 1))
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_weight", "%s: message %d weight must be 0 or 1", cx->what, mi);
            else if (r >= 0 && r != TK_R_ASSISTANT)
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_weight", "%s: message %d: weight is only allowed on assistant messages", cx->what, mi);
            else weight = (int)w->valuedouble;
        }
        if (calls) {
            if (r >= 0 && r != TK_R_ASSISTANT)
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d: only assistant messages may have tool_calls", cx->what, mi);
            if (!cJSON_IsArray(tc) || cJSON_GetArraySize(tc) == 0) {
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d tool_calls is %s, expected a non-empty list", cx->what, mi,
                          cJSON_IsArray(tc) ? "empty" : tk_json_type_name(tc));
            } else {
                int ci = 0;
                const cJSON *c;
                cJSON_ArrayForEach(c, tc) {
                    ci++;
                    const cJSON *id = get(c, "id"), *ty = get(c, "type"), *f = get(c, "function");
                    if (!cJSON_IsObject(c)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d tool call %d is %s", cx->what, mi, ci, tk_json_type_name(c)); continue; }
                    if (!is_str(id) || !id->valuestring[0])
                        tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d tool call %d has no \"id\"", cx->what, mi, ci);
                    else names_add(&cx->call_ids, id->valuestring);
                    if (!is_str(ty) || strcmp(ty->valuestring, "function"))
                        tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d tool call %d needs \"type\": \"function\"", cx->what, mi, ci);
                    const cJSON *nm = cJSON_IsObject(f) ? get(f, "name") : NULL;
                    if (!is_str(nm) || !nm->valuestring[0]) {
                        tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d tool call %d has no \"function\" with a \"name\"", cx->what, mi, ci);
                        continue;
                    }
                    if (cx->have_tools && !names_has(&cx->fns, nm->valuestring))
                        tk_rf_add(fs, TK_DATA_ERROR, "unknown_tool", "%s: message %d calls \"%.60s\", which is not in \"tools\"", cx->what, mi, nm->valuestring);
                    check_arguments(get(f, "arguments"), mi, ci, nm->valuestring, fs);
                }
            }
        }
        if (legacy_call) {
            const cJSON *nm = get(fc, "name");
            if (!cJSON_IsObject(fc) || !is_str(nm))
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d function_call needs a \"name\"", cx->what, mi);
            else {
                if (cx->have_tools && !names_has(&cx->fns, nm->valuestring))
                    tk_rf_add(fs, TK_DATA_ERROR, "unknown_tool", "%s: message %d calls \"%.60s\", which is not in \"functions\"", cx->what, mi, nm->valuestring);
                check_arguments(get(fc, "arguments"), mi, 1, nm->valuestring, fs);
            }
        }
        if (r == TK_R_TOOL && is_str(role) && !strcmp(role->valuestring, "tool")) {
            const cJSON *id = get(m, "tool_call_id");
            if (!id) tk_rf_add(fs, TK_DATA_ERROR, "message_missing_key", "%s: tool message %d has no \"tool_call_id\"", cx->what, mi);
            else if (!is_str(id) || !names_has(&cx->call_ids, id->valuestring))
                tk_rf_add(fs, TK_DATA_ERROR, "tool_call_id_mismatch", "%s: tool message %d answers \"%.60s\", which no earlier tool call has as its id",
                          cx->what, mi, is_str(id) ? id->valuestring : "(not a string)");
        }
        if (r == TK_R_TOOL && is_str(role) && !strcmp(role->valuestring, "function") && !is_str(get(m, "name")))
            tk_rf_add(fs, TK_DATA_ERROR, "message_missing_key", "%s: function message %d has no \"name\"", cx->what, mi);
        /* count roles even when the content is bad, so one error does not cause a second, misleading one */
        if (r == TK_R_ASSISTANT) { cx->n_assistant++; if (weight != 0) cx->n_trainable++; }
        if (r == TK_R_USER) cx->n_user++;
        if (r == TK_R_SYSTEM) cx->n_system++;
        if (r < 0 || !ok_content) continue;
        bool is_call = calls || legacy_call;
        if (is_call) {
            /* The calls are part of what the model learns to write: count them as text. */
            tk_buf b = {0};
            if (len) { tk_buf_append(&b, text, len); tk_buf_append(&b, "\n", 1); }
            char *p = cJSON_PrintUnformatted(calls ? tc : fc);
            if (p) { tk_buf_append(&b, p, strlen(p)); cJSON_free(p); }
            if (b.data) { text = ex_own(ex, b.data); len = text ? b.len : 0; }
        }
        if (rej ? ex_add_rej(ex, r, text, len, weight, is_call) : ex_add(ex, r, text, len, weight, is_call)) added++;
    }
    return added;
}

static void msgs_ctx_free(msgs_ctx *cx) { free(cx->fns.v); free(cx->call_ids.v); }

/* Index after the last assistant message (the final reply starts at the returned prompt length). */
static size_t prompt_len(const tk_example *ex) {
    for (size_t i = ex->n; i > 0; i--) if (ex->msgs[i - 1].role == TK_R_ASSISTANT) return i - 1;
    return ex->n;
}

static void warn_empty_messages(const tk_example *ex, tk_rfinds *fs) {
    for (size_t i = 0; i < ex->n; i++) {
        const tk_ex_msg *m = &ex->msgs[i];
        if (m->tool_calls || m->role == TK_R_TOOL || !tk_text_blank(m->text, m->len)) continue;
        if (m->role == TK_R_ASSISTANT)
            tk_rf_add(fs, TK_DATA_WARNING, "empty_reply", "assistant message %zu is empty or white space only", i + 1);
        else
            tk_rf_add(fs, TK_DATA_WARNING, "empty_message", "%s message %zu is empty or white space only", tk_data_role_name(m->role), i + 1);
    }
}

static void validate_chat(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const cJSON *msgs = get(rec, "messages");
    if (!msgs || !cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        tk_rf_add(fs, TK_DATA_ERROR, "missing_messages_list", "%s",
                  !msgs ? "no \"messages\" list" : cJSON_IsArray(msgs) ? "\"messages\" is empty" : "\"messages\" is not a list");
        return;
    }
    msgs_ctx cx = {.what = "messages"};
    const cJSON *tools = get(rec, "tools"), *fns = get(rec, "functions");
    if (tools && !cJSON_IsNull(tools)) { check_tools(tools, false, &cx.fns, fs); cx.have_tools = true; }
    if (fns && !cJSON_IsNull(fns)) { check_tools(fns, true, &cx.fns, fs); cx.have_tools = true; }
    check_messages(msgs, &cx, ex, false, fs);
    if (cx.n_assistant == 0)
        tk_rf_add(fs, TK_DATA_ERROR, "example_missing_assistant_message", "no assistant message to learn from");
    else if (cx.n_trainable == 0)
        tk_rf_add(fs, TK_DATA_ERROR, "example_missing_assistant_message", "every assistant message has weight 0: nothing to train on");
    msgs_ctx_free(&cx);
    ex->n_prompt = prompt_len(ex);
    warn_empty_messages(ex, fs);
}

/* ---- prompts (reinforcement fine-tuning) -------------------------------------- */
/* OpenAI's RFT layout: "messages" ending with a user turn (other fields are the graders'); or "prompt" alone, a
 * string (one user turn) or a message list ending with a user turn; or takumi eval's "question" (a string, with an
 * optional "system" string). No reply: n_prompt == n. */
static void validate_rft(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const cJSON *msgs = get(rec, "messages"), *prompt = get(rec, "prompt");
    const char *pkey = "prompt";
    if (!msgs && !prompt && cJSON_IsString(get(rec, "question"))) { prompt = get(rec, "question"); pkey = "question"; }
    if (!msgs && cJSON_IsString(prompt)) {
        if (tk_text_blank(prompt->valuestring, slen(prompt))) { tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "\"%s\" is empty", pkey); return; }
        const cJSON *sys = get(rec, "system");   /* an eval record's system prompt */
        if (cJSON_IsString(sys) && !tk_text_blank(sys->valuestring, slen(sys))) ex_add(ex, TK_R_SYSTEM, sys->valuestring, slen(sys), -1, false);
        ex_add(ex, TK_R_USER, prompt->valuestring, slen(prompt), -1, false);
        ex->n_prompt = ex->n;
        return;
    }
    const char *key = msgs ? "messages" : "prompt";
    if (!msgs) msgs = prompt;
    if (!msgs || !cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        tk_rf_add(fs, TK_DATA_ERROR, "missing_messages_list", "%s", !msgs ? "no \"messages\" list or \"prompt\""
                  : cJSON_IsArray(msgs) ? "the message list is empty" : "the message list is not a list");
        return;
    }
    msgs_ctx cx = {.what = key};
    check_messages(msgs, &cx, ex, false, fs);
    msgs_ctx_free(&cx);
    if (ex->n > 0 && ex->msgs[ex->n - 1].role != TK_R_USER)
        tk_rf_add(fs, TK_DATA_ERROR, "last_message_not_user", "\"%s\" ends with a %s message: a prompt to answer ends with a user turn",
                  key, tk_data_role_name(ex->msgs[ex->n - 1].role));
    ex->n_prompt = ex->n;
    warn_empty_messages(ex, fs);
}

/* ---- prompt/completion ------------------------------------------------------ */
static void validate_pc(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const char *pk = "prompt", *ck = "completion";
    if (!get(rec, "prompt") && !get(rec, "completion") && (get(rec, "question") || get(rec, "answer"))) { pk = "question"; ck = "answer"; }
    const cJSON *p = get(rec, pk), *c = get(rec, ck);
    if (!p) tk_rf_add(fs, TK_DATA_ERROR, "missing_prompt", "no \"%s\"", pk);
    if (!c) tk_rf_add(fs, TK_DATA_ERROR, "missing_completion", "no \"%s\"", ck);
    if (!p || !c) return;
    msgs_ctx cx = {.what = pk};
    if (is_str(p)) ex_add(ex, TK_R_USER, p->valuestring, slen(p), -1, false);
    else if (cJSON_IsArray(p)) check_messages(p, &cx, ex, false, fs);
    else tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"%s\" is %s, expected a string or a list of messages", pk, tk_json_type_name(p));
    ex->n_prompt = ex->n;
    cx.what = ck;
    if (is_str(c)) {
        ex_add(ex, TK_R_ASSISTANT, c->valuestring, slen(c), -1, false);
        if (tk_text_blank(c->valuestring, slen(c))) tk_rf_add(fs, TK_DATA_WARNING, "empty_reply", "\"%s\" is empty or white space only", ck);
    } else if (cJSON_IsArray(c)) {
        int before = cx.n_assistant;
        check_messages(c, &cx, ex, false, fs);
        if (cx.n_assistant == before)
            tk_rf_add(fs, TK_DATA_ERROR, "example_missing_assistant_message", "\"%s\" has no assistant message", ck);
    } else tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"%s\" is %s, expected a string or a list of messages", ck, tk_json_type_name(c));
    msgs_ctx_free(&cx);
}

/* ---- Alpaca ------------------------------------------------------------------ */
static void validate_alpaca(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const cJSON *ins = get(rec, "instruction"), *inp = get(rec, "input"), *out = get(rec, "output"),
                *sys = get(rec, "system"), *hist = get(rec, "history");
    if (!ins) tk_rf_add(fs, TK_DATA_ERROR, "missing_instruction", "no \"instruction\"");
    else if (!is_str(ins)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"instruction\" is %s, expected a string", tk_json_type_name(ins));
    if (inp && !cJSON_IsNull(inp) && !is_str(inp)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"input\" is %s, expected a string", tk_json_type_name(inp));
    if (!out) tk_rf_add(fs, TK_DATA_ERROR, "missing_output", "no \"output\"");
    else if (!is_str(out)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"output\" is %s, expected a string", tk_json_type_name(out));
    if (sys && !cJSON_IsNull(sys) && !is_str(sys)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"system\" is %s, expected a string", tk_json_type_name(sys));
    bool hist_ok = true;
    if (hist && !cJSON_IsNull(hist)) {
        if (!cJSON_IsArray(hist)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_history", "\"history\" is %s, expected a list of [question, answer] pairs", tk_json_type_name(hist)); hist_ok = false; }
        else {
            int i = 0;
            const cJSON *h;
            cJSON_ArrayForEach(h, hist) {
                i++;
                if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) != 2 || !is_str(cJSON_GetArrayItem(h, 0)) || !is_str(cJSON_GetArrayItem(h, 1))) {
                    tk_rf_add(fs, TK_DATA_ERROR, "invalid_history", "history[%d] is not a [question, answer] pair of strings", i);
                    hist_ok = false;
                }
            }
        }
    }
    if (!is_str(ins) || !is_str(out) || (inp && !cJSON_IsNull(inp) && !is_str(inp)) || !hist_ok) return;
    bool has_inp = is_str(inp) && inp->valuestring[0];
    if (!ins->valuestring[0] && !has_inp) { tk_rf_add(fs, TK_DATA_ERROR, "missing_instruction", "\"instruction\" and \"input\" are both empty"); return; }
    if (is_str(sys) && sys->valuestring[0]) ex_add(ex, TK_R_SYSTEM, sys->valuestring, slen(sys), -1, false);
    if (hist && cJSON_IsArray(hist)) {
        const cJSON *h;
        cJSON_ArrayForEach(h, hist) {
            const cJSON *q = cJSON_GetArrayItem(h, 0), *a = cJSON_GetArrayItem(h, 1);
            ex_add(ex, TK_R_USER, q->valuestring, slen(q), -1, false);
            ex_add(ex, TK_R_ASSISTANT, a->valuestring, slen(a), -1, false);
        }
    }
    /* LLaMA-Factory joins instruction and input with a newline; so do we. */
    if (has_inp && ins->valuestring[0]) {
        size_t a = slen(ins), b = slen(inp);
        char *q = malloc(a + b + 2);
        if (!q) return;
        memcpy(q, ins->valuestring, a); q[a] = '\n'; memcpy(q + a + 1, inp->valuestring, b); q[a + b + 1] = 0;
        if (ex_own(ex, q)) ex_add(ex, TK_R_USER, q, a + b + 1, -1, false);
    } else if (has_inp) ex_add(ex, TK_R_USER, inp->valuestring, slen(inp), -1, false);
    else ex_add(ex, TK_R_USER, ins->valuestring, slen(ins), -1, false);
    ex->n_prompt = ex->n;
    ex_add(ex, TK_R_ASSISTANT, out->valuestring, slen(out), -1, false);
    if (tk_text_blank(out->valuestring, slen(out))) tk_rf_add(fs, TK_DATA_WARNING, "empty_reply", "\"output\" is empty or white space only");
}

/* ---- ShareGPT ---------------------------------------------------------------- */
static int sharegpt_role(const char *f, bool *prompt_side) {
    *prompt_side = true;
    if (!strcmp(f, "human") || !strcmp(f, "user")) return TK_R_USER;
    if (!strcmp(f, "observation") || !strcmp(f, "tool")) return TK_R_TOOL;
    if (!strcmp(f, "system")) return TK_R_SYSTEM;
    *prompt_side = false;
    if (!strcmp(f, "gpt") || !strcmp(f, "assistant") || !strcmp(f, "function_call")) return TK_R_ASSISTANT;
    return -1;
}

/* Validates a ShareGPT turn list; returns false when any error was found. */
static bool check_sharegpt_turns(const cJSON *conv, const char *what, tk_example *ex, bool strict_order, tk_rfinds *fs) {
    int e0 = fs->n_errors;
    int i = 0, turn = 0;
    bool order_reported = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, conv) {
        i++;
        if (!cJSON_IsObject(m)) { tk_rf_add(fs, TK_DATA_ERROR, "data_type", "%s: message %d is %s, expected an object", what, i, tk_json_type_name(m)); continue; }
        const cJSON *from = get(m, "from"), *val = get(m, "value");
        if (!from) { tk_rf_add(fs, TK_DATA_ERROR, "message_missing_key", "%s: message %d has no \"from\"", what, i); continue; }
        bool prompt_side;
        int r = is_str(from) ? sharegpt_role(from->valuestring, &prompt_side) : -1;
        if (r < 0) {
            tk_rf_add(fs, TK_DATA_ERROR, "unrecognized_role", "%s: message %d is from \"%.40s\" (expected human, gpt, system, function_call or observation)",
                      what, i, is_str(from) ? from->valuestring : tk_json_type_name(from));
            continue;
        }
        if (r == TK_R_SYSTEM) {
            if (i != 1 && strict_order) tk_rf_add(fs, TK_DATA_ERROR, "invalid_turn_order", "%s: system message %d must come first", what, i);
        } else {
            bool want_prompt = (turn % 2) == 0;
            if (strict_order && want_prompt != prompt_side && !order_reported) {
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_turn_order", "%s: message %d is from \"%s\" but a %s turn was expected (turns must alternate)",
                          what, i, from->valuestring, want_prompt ? "human/observation" : "gpt/function_call");
                order_reported = true;
            }
            turn++;
        }
        if (!val) { tk_rf_add(fs, TK_DATA_ERROR, "message_missing_key", "%s: message %d has no \"value\"", what, i); continue; }
        if (!is_str(val)) { tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "%s: message %d value is %s, expected a string", what, i, tk_json_type_name(val)); continue; }
        if (!strcmp(from->valuestring, "function_call")) {
            cJSON *fc = cJSON_Parse(val->valuestring);
            if (!fc || (!cJSON_IsObject(fc) && !cJSON_IsArray(fc)))
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_tool_calls", "%s: message %d function_call value is not JSON: %.60s", what, i, val->valuestring);
            cJSON_Delete(fc);
        }
        ex_add(ex, r, val->valuestring, slen(val), -1, !strcmp(from->valuestring, "function_call"));
    }
    return fs->n_errors == e0;
}

static void validate_sharegpt(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const cJSON *conv = get(rec, "conversations"), *sys = get(rec, "system"), *tools = get(rec, "tools");
    if (!conv || !cJSON_IsArray(conv) || cJSON_GetArraySize(conv) == 0) {
        tk_rf_add(fs, TK_DATA_ERROR, "missing_conversations", "%s",
                  !conv ? "no \"conversations\" list" : cJSON_IsArray(conv) ? "\"conversations\" is empty" : "\"conversations\" is not a list");
        return;
    }
    if (sys && !cJSON_IsNull(sys) && !is_str(sys)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"system\" is %s, expected a string", tk_json_type_name(sys));
    if (tools && !cJSON_IsNull(tools)) {
        if (is_str(tools)) {
            cJSON *t = tools->valuestring[0] ? cJSON_Parse(tools->valuestring) : NULL;
            if (tools->valuestring[0] && (!t || !cJSON_IsArray(t)))
                tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "\"tools\" is not a JSON list of functions: %.60s", tools->valuestring);
            cJSON_Delete(t);
        } else if (!cJSON_IsArray(tools)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_tools", "\"tools\" is %s, expected a list", tk_json_type_name(tools));
    }
    if (is_str(sys) && sys->valuestring[0]) ex_add(ex, TK_R_SYSTEM, sys->valuestring, slen(sys), -1, false);
    size_t first = ex->n;
    check_sharegpt_turns(conv, "conversations", ex, true, fs);
    int n_asst = 0;
    for (size_t i = first; i < ex->n; i++) n_asst += ex->msgs[i].role == TK_R_ASSISTANT;
    if (n_asst == 0) tk_rf_add(fs, TK_DATA_ERROR, "example_missing_assistant_message", "no gpt message to learn from");
    else if (ex->n > first && ex->msgs[ex->n - 1].role != TK_R_ASSISTANT)
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_turn_order", "the conversation ends with a \"%s\" turn; it must end with gpt or function_call",
                  tk_data_role_name(ex->msgs[ex->n - 1].role));
    ex->n_prompt = prompt_len(ex);
    warn_empty_messages(ex, fs);
}

/* ---- preference --------------------------------------------------------------- */
/* One side of a preference pair: a string, a ShareGPT {from,value} object, or a list of messages. */
static void pref_side(const cJSON *v, const char *key, tk_example *ex, bool rej, msgs_ctx *cx, tk_rfinds *fs) {
    if (is_str(v)) {
        if (rej) ex_add_rej(ex, TK_R_ASSISTANT, v->valuestring, slen(v), -1, false);
        else ex_add(ex, TK_R_ASSISTANT, v->valuestring, slen(v), -1, false);
        return;
    }
    if (cJSON_IsObject(v) && get(v, "from")) {
        const cJSON *val = get(v, "value");
        if (!is_str(val)) { tk_rf_add(fs, TK_DATA_ERROR, "missing_content", "\"%s\" has no \"value\" string", key); return; }
        if (rej) ex_add_rej(ex, TK_R_ASSISTANT, val->valuestring, slen(val), -1, false);
        else ex_add(ex, TK_R_ASSISTANT, val->valuestring, slen(val), -1, false);
        return;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        cx->what = key;
        int before = cx->n_assistant;
        check_messages(v, cx, ex, rej, fs);
        if (cx->n_assistant == before) tk_rf_add(fs, TK_DATA_ERROR, "example_missing_assistant_message", "\"%s\" has no assistant message", key);
        return;
    }
    tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"%s\" is %s, expected a string, a {from, value} object or a list of messages", key,
              cJSON_IsArray(v) ? "an empty list" : tk_json_type_name(v));
}

static bool same_msgs(const tk_ex_msg *a, const tk_ex_msg *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i].role != b[i].role || a[i].len != b[i].len || memcmp(a[i].text, b[i].text, a[i].len)) return false;
    return true;
}

static void validate_preference(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    msgs_ctx cx = {.what = "prompt"};
    const char *ck = "chosen", *rk = "rejected";
    const cJSON *input = get(rec, "input");
    if (input && get(rec, "preferred_output")) {
        ck = "preferred_output"; rk = "non_preferred_output";
        const cJSON *msgs = cJSON_IsObject(input) ? get(input, "messages") : NULL;
        if (!cJSON_IsObject(input)) tk_rf_add(fs, TK_DATA_ERROR, "missing_prompt", "\"input\" is %s, expected an object with \"messages\"", tk_json_type_name(input));
        else if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
            tk_rf_add(fs, TK_DATA_ERROR, "missing_messages_list", "\"input\" has no \"messages\" list");
        else {
            const cJSON *tools = get(input, "tools");
            if (tools && !cJSON_IsNull(tools)) { check_tools(tools, false, &cx.fns, fs); cx.have_tools = true; }
            cx.what = "input.messages";
            check_messages(msgs, &cx, ex, false, fs);
        }
    } else {
        const cJSON *p = get(rec, "prompt"), *conv = get(rec, "conversations");
        if (conv) {
            if (!cJSON_IsArray(conv) || cJSON_GetArraySize(conv) == 0)
                tk_rf_add(fs, TK_DATA_ERROR, "missing_prompt", "\"conversations\" is not a non-empty list");
            else {
                const cJSON *sys = get(rec, "system");
                if (is_str(sys) && sys->valuestring[0]) ex_add(ex, TK_R_SYSTEM, sys->valuestring, slen(sys), -1, false);
                check_sharegpt_turns(conv, "conversations", ex, false, fs);
            }
        } else if (p) {
            if (is_str(p)) ex_add(ex, TK_R_USER, p->valuestring, slen(p), -1, false);
            else if (cJSON_IsArray(p)) check_messages(p, &cx, ex, false, fs);
            else tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"prompt\" is %s, expected a string or a list of messages", tk_json_type_name(p));
        } else {
            /* TRL implicit prompt: chosen and rejected are whole conversations sharing their start. */
            const cJSON *c = get(rec, "chosen"), *r = get(rec, "rejected");
            if (!cJSON_IsArray(c) || !cJSON_IsArray(r)) tk_rf_add(fs, TK_DATA_ERROR, "missing_prompt", "no \"prompt\" (and chosen/rejected are not conversations)");
        }
    }
    size_t n_prompt = ex->n;
    const cJSON *c = get(rec, ck), *r = get(rec, rk);
    if (!c) tk_rf_add(fs, TK_DATA_ERROR, "missing_chosen", "no \"%s\"", ck);
    else pref_side(c, ck, ex, false, &cx, fs);
    if (!r) tk_rf_add(fs, TK_DATA_ERROR, "missing_rejected", "no \"%s\"", rk);
    else pref_side(r, rk, ex, true, &cx, fs);
    msgs_ctx_free(&cx);
    if (fs->n_errors) return;
    if (n_prompt == 0) {
        /* implicit prompt: the common leading messages of both conversations */
        size_t k = 0;
        while (k + 1 < ex->n && k + 1 < ex->n_rej && same_msgs(&ex->msgs[k], &ex->rej[k], 1)) k++;
        if (k > 0) { memmove(ex->rej, ex->rej + k, (ex->n_rej - k) * sizeof *ex->rej); ex->n_rej -= k; }
        n_prompt = k;
    }
    ex->n_prompt = n_prompt;
    if (ex->n - n_prompt == ex->n_rej && same_msgs(ex->msgs + n_prompt, ex->rej, ex->n_rej))
        tk_rf_add(fs, TK_DATA_WARNING, "identical_chosen_rejected", "\"%s\" and \"%s\" are identical: the pair teaches nothing", ck, rk);
}

/* ---- classification and text ------------------------------------------------ */
static void validate_classification(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const char *tk = get(rec, "text") ? "text" : "sentence";
    const cJSON *t = get(rec, tk), *l = get(rec, "label");
    if (!t) tk_rf_add(fs, TK_DATA_ERROR, "missing_text", "no \"text\"");
    else if (!is_str(t)) tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"%s\" is %s, expected a string", tk, tk_json_type_name(t));
    if (!l || cJSON_IsNull(l)) tk_rf_add(fs, TK_DATA_ERROR, "missing_label", "no \"label\"");
    else if (!is_str(l) && !cJSON_IsNumber(l) && !cJSON_IsBool(l))
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"label\" is %s, expected a string, number or boolean", tk_json_type_name(l));
    if (fs->n_errors) return;
    if (is_str(l) && !l->valuestring[0]) { tk_rf_add(fs, TK_DATA_ERROR, "missing_label", "\"label\" is empty"); return; }
    if (tk_text_blank(t->valuestring, slen(t))) tk_rf_add(fs, TK_DATA_WARNING, "empty_text", "\"%s\" is empty or white space only", tk);
    ex_add(ex, TK_R_USER, t->valuestring, slen(t), -1, false);
    ex->n_prompt = 1;
    if (is_str(l)) { ex->label = l->valuestring; ex->label_len = slen(l); }
    else {
        char tmp[64];
        if (cJSON_IsBool(l)) snprintf(tmp, sizeof tmp, "%s", cJSON_IsTrue(l) ? "true" : "false");
        else if (l->valuedouble == floor(l->valuedouble) && fabs(l->valuedouble) < 1e15) snprintf(tmp, sizeof tmp, "%.0f", l->valuedouble);
        else snprintf(tmp, sizeof tmp, "%.17g", l->valuedouble);
        ex->label = ex_own(ex, strdup(tmp));
        ex->label_len = ex->label ? strlen(ex->label) : 0;
    }
}

/* KTO (unpaired preference): a conversation ending in the judged reply, or prompt/completion, plus a boolean label. */
static void validate_kto(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const cJSON *l = get(rec, "label");
    if (!l || cJSON_IsNull(l)) tk_rf_add(fs, TK_DATA_ERROR, "missing_label", "no \"label\" (true: a desirable completion, false: an undesirable one)");
    else if (!cJSON_IsBool(l))
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_label", "\"label\" is %s, expected true (desirable) or false (undesirable)", tk_json_type_name(l));
    if (get(rec, "messages")) validate_chat(rec, ex, fs);
    else validate_pc(rec, ex, fs);
    if (fs->n_errors) return;
    if (ex->n_prompt >= ex->n || ex->msgs[ex->n - 1].role != TK_R_ASSISTANT)
        tk_rf_add(fs, TK_DATA_ERROR, "example_missing_assistant_message", "the conversation does not end with the judged assistant reply");
    ex->label = cJSON_IsTrue(l) ? "true" : "false";
    ex->label_len = strlen(ex->label);
}

static void validate_text(const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    const cJSON *t = get(rec, "text");
    if (!t) { tk_rf_add(fs, TK_DATA_ERROR, "missing_text", "no \"text\""); return; }
    if (!is_str(t)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "\"text\" is %s, expected a string", tk_json_type_name(t)); return; }
    if (tk_text_blank(t->valuestring, slen(t))) tk_rf_add(fs, TK_DATA_WARNING, "empty_text", "\"text\" is empty or white space only");
    ex_add(ex, TK_R_TEXT, t->valuestring, slen(t), -1, false);
    ex->n_prompt = 1;
}

void tk_data_validate(tk_data_format f, const cJSON *rec, tk_example *ex, tk_rfinds *fs) {
    tk_example_reset(ex);
    if (!cJSON_IsObject(rec)) {
        tk_rf_add(fs, TK_DATA_ERROR, "data_type", "record is %s, expected a JSON object", tk_json_type_name(rec));
        return;
    }
    int e0 = fs->n_errors;
    switch (f) {
    case TK_DATA_CHAT: validate_chat(rec, ex, fs); break;
    case TK_DATA_PROMPT_COMPLETION: validate_pc(rec, ex, fs); break;
    case TK_DATA_ALPACA: validate_alpaca(rec, ex, fs); break;
    case TK_DATA_SHAREGPT: validate_sharegpt(rec, ex, fs); break;
    case TK_DATA_PREFERENCE: validate_preference(rec, ex, fs); break;
    case TK_DATA_CLASSIFICATION: validate_classification(rec, ex, fs); break;
    case TK_DATA_TEXT: validate_text(rec, ex, fs); break;
    case TK_DATA_KTO: validate_kto(rec, ex, fs); break;
    case TK_DATA_RFT: validate_rft(rec, ex, fs); break;
    default: {
        char keys[200] = "";
        size_t o = 0;
        const cJSON *k;
        cJSON_ArrayForEach(k, rec) {
            if (!k->string) continue;
            int w = snprintf(keys + o, sizeof keys - o, "%s%s", o ? ", " : "", k->string);
            if (w < 0 || (size_t)w >= sizeof keys - o) break;
            o += (size_t)w;
        }
        tk_rf_add(fs, TK_DATA_ERROR, "unknown_format", "record has none of the keys of a known format (chat, prompt_completion, alpaca, sharegpt, preference, "
                  "classification, text; its keys: %s); use --format, or --map to name its fields", o ? keys : "none");
    }
    }
    if (fs->n_errors != e0) tk_example_reset(ex);
}

void tk_data_validate_tsv(const char *line, size_t len, tk_example *ex, tk_rfinds *fs) {
    tk_example_reset(ex);
    const char *tab = NULL;
    for (size_t k = len; k > 0; k--) if (line[k - 1] == '\t') { tab = line + k - 1; break; }
    if (!tab) { tk_rf_add(fs, TK_DATA_ERROR, "missing_label", "no TAB-separated label (expected text<TAB>label)"); return; }
    size_t tl = (size_t)(tab - line), ll = len - tl - 1;
    while (ll > 0 && (tab[ll] == ' ' || tab[ll] == '\t')) ll--;
    if (ll == 0) { tk_rf_add(fs, TK_DATA_ERROR, "missing_label", "the label after the TAB is empty"); return; }
    if (tk_text_blank(line, tl)) { tk_rf_add(fs, TK_DATA_ERROR, "missing_text", "the text before the TAB is empty"); return; }
    ex_add(ex, TK_R_USER, line, tl, -1, false);
    ex->n_prompt = 1;
    ex->label = tab + 1;
    ex->label_len = ll;
}

void tk_data_validate_txt(const char *line, size_t len, tk_example *ex, tk_rfinds *fs) {
    (void)fs;
    tk_example_reset(ex);
    ex_add(ex, TK_R_TEXT, line, len, -1, false);
    ex->n_prompt = 1;
}
