/* `data convert`: every record of a file becomes an OpenAI chat record
 * ({"messages": [...]}) or a preference record (OpenAI's input/preferred_output/
 * non_preferred_output, or TRL's conversational prompt/chosen/rejected). Lossless:
 * message texts are copied exactly, fields the target has no place for stay as extra
 * top-level keys, and a record that cannot be converted is reported with its line and
 * the reason instead of being dropped. Every record written is validated again as the
 * target format before it is written. */
#include "data/data_internal.h"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static bool is_str(const cJSON *v) { return v && cJSON_IsString(v) && v->valuestring; }

static cJSON *msg(const char *role, const char *text, size_t len) {
    cJSON *m = cJSON_CreateObject();
    if (!m) return NULL;
    cJSON_AddStringToObject(m, "role", role);
    char *t = tk_strndup(text, len);
    if (!t) { cJSON_Delete(m); return NULL; }
    cJSON_AddStringToObject(m, "content", t);
    free(t);
    return m;
}

/* Copies the keys of src that are not in consumed (NULL-terminated) into dst. */
static void copy_extra(cJSON *dst, const cJSON *src, const char *const *consumed) {
    if (!src) return;
    const cJSON *k;
    cJSON_ArrayForEach(k, src) {
        if (!k->string) continue;
        bool used = false;
        for (const char *const *c = consumed; *c; c++) if (!strcmp(*c, k->string)) used = true;
        if (!used && !get(dst, k->string)) cJSON_AddItemToObject(dst, k->string, cJSON_Duplicate(k, true));
    }
}

/* Appends ex messages [a, b) to arr; fails (returns false, sets reason) on tool turns, which need ids. */
static bool add_ex_msgs(cJSON *arr, const tk_ex_msg *m, size_t a, size_t b, char *reason, size_t cap) {
    for (size_t i = a; i < b; i++) {
        if (m[i].tool_calls || m[i].role == TK_R_TOOL) {
            snprintf(reason, cap, "message %zu is a tool call or tool result; only OpenAI chat records keep those", i + 1);
            return false;
        }
        cJSON *x = msg(tk_data_role_name(m[i].role), m[i].text, m[i].len);
        if (!x) { snprintf(reason, cap, "out of memory"); return false; }
        if (m[i].weight >= 0) cJSON_AddNumberToObject(x, "weight", m[i].weight);
        cJSON_AddItemToArray(arr, x);
    }
    return true;
}

/* ShareGPT -> OpenAI chat, with function_call/observation turns as tool_calls/tool messages. */
static cJSON *sharegpt_to_chat(const cJSON *rec, const tk_example *ex, char *reason, size_t cap) {
    (void)ex;
    cJSON *out = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(out, "messages");
    const cJSON *sys = get(rec, "system"), *tools = get(rec, "tools");
    char ids[64][16];
    size_t n_pending = 0, next = 0;
    int call_no = 0;
    if (is_str(sys) && sys->valuestring[0]) cJSON_AddItemToArray(msgs, msg("system", sys->valuestring, strlen(sys->valuestring)));
    if (tools && !cJSON_IsNull(tools)) {
        cJSON *t = is_str(tools) ? (tools->valuestring[0] ? cJSON_Parse(tools->valuestring) : cJSON_CreateArray()) : cJSON_Duplicate(tools, true);
        if (!cJSON_IsArray(t)) { cJSON_Delete(t); cJSON_Delete(out); snprintf(reason, cap, "\"tools\" is not a JSON list"); return NULL; }
        if (cJSON_GetArraySize(t) > 0) {
            cJSON *ot = cJSON_AddArrayToObject(out, "tools");
            cJSON *f;
            cJSON_ArrayForEach(f, t) {
                if (is_str(get(f, "type")) && get(f, "function")) { cJSON_AddItemToArray(ot, cJSON_Duplicate(f, true)); continue; }
                cJSON *w = cJSON_CreateObject();
                cJSON_AddStringToObject(w, "type", "function");
                cJSON_AddItemToObject(w, "function", cJSON_Duplicate(f, true));
                cJSON_AddItemToArray(ot, w);
            }
        }
        cJSON_Delete(t);
    }
    int i = 0;
    const cJSON *turn;
    cJSON_ArrayForEach(turn, get(rec, "conversations")) {
        i++;
        const char *from = get(turn, "from")->valuestring, *val = get(turn, "value")->valuestring;
        if (!strcmp(from, "human") || !strcmp(from, "user")) cJSON_AddItemToArray(msgs, msg("user", val, strlen(val)));
        else if (!strcmp(from, "gpt") || !strcmp(from, "assistant")) cJSON_AddItemToArray(msgs, msg("assistant", val, strlen(val)));
        else if (!strcmp(from, "system")) cJSON_AddItemToArray(msgs, msg("system", val, strlen(val)));
        else if (!strcmp(from, "function_call")) {
            cJSON *v = cJSON_Parse(val);
            cJSON *calls = cJSON_CreateArray();
            cJSON *one = cJSON_IsArray(v) ? NULL : v;
            const cJSON *c;
            bool ok = v != NULL;
            for (int k = 0; ok; k++) {
                c = one ? (k == 0 ? one : NULL) : cJSON_GetArrayItem(v, k);
                if (!c) break;
                const cJSON *nm = get(c, "name"), *args = get(c, "arguments");
                if (!is_str(nm)) { ok = false; break; }
                if (n_pending >= 64) { ok = false; break; }
                cJSON *tc = cJSON_CreateObject();
                snprintf(ids[n_pending], sizeof ids[0], "call_%d", call_no++);
                cJSON_AddStringToObject(tc, "id", ids[n_pending]);
                n_pending++;
                cJSON_AddStringToObject(tc, "type", "function");
                cJSON *fn = cJSON_AddObjectToObject(tc, "function");
                cJSON_AddStringToObject(fn, "name", nm->valuestring);
                if (is_str(args)) cJSON_AddStringToObject(fn, "arguments", args->valuestring);
                else {
                    char *p = args ? cJSON_PrintUnformatted(args) : NULL;
                    cJSON_AddStringToObject(fn, "arguments", p ? p : "{}");
                    if (p) cJSON_free(p);
                }
                cJSON_AddItemToArray(calls, tc);
            }
            cJSON_Delete(v);
            if (!ok || cJSON_GetArraySize(calls) == 0) {
                cJSON_Delete(calls); cJSON_Delete(out);
                snprintf(reason, cap, "message %d: function_call value is not {\"name\", \"arguments\"} JSON", i);
                return NULL;
            }
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddItemToObject(m, "tool_calls", calls);
            cJSON_AddItemToArray(msgs, m);
        } else {  /* observation / tool */
            if (next >= n_pending) {
                cJSON_Delete(out);
                snprintf(reason, cap, "message %d: an observation with no function_call before it cannot become a tool message", i);
                return NULL;
            }
            cJSON *m = msg("tool", val, strlen(val));
            cJSON_AddStringToObject(m, "tool_call_id", ids[next++]);
            cJSON_AddItemToArray(msgs, m);
        }
    }
    static const char *const consumed[] = {"conversations", "system", "tools", NULL};
    copy_extra(out, rec, consumed);
    return out;
}

static cJSON *to_chat(tk_data_format f, const cJSON *rec, const tk_example *ex, char *reason, size_t cap) {
    if (f == TK_DATA_CHAT) return cJSON_Duplicate(rec, true);
    if (f == TK_DATA_SHAREGPT) return sharegpt_to_chat(rec, ex, reason, cap);
    cJSON *out = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(out, "messages");
    if (f == TK_DATA_PROMPT_COMPLETION) {
        bool qa = !get(rec, "prompt") && !get(rec, "completion");
        const cJSON *sides[2] = {get(rec, qa ? "question" : "prompt"), get(rec, qa ? "answer" : "completion")};
        for (int k = 0; k < 2; k++) {
            if (is_str(sides[k])) cJSON_AddItemToArray(msgs, msg(k ? "assistant" : "user", sides[k]->valuestring, strlen(sides[k]->valuestring)));
            else { const cJSON *m; cJSON_ArrayForEach(m, sides[k]) cJSON_AddItemToArray(msgs, cJSON_Duplicate(m, true)); }
        }
        static const char *const c1[] = {"prompt", "completion", NULL}, *const c2[] = {"question", "answer", NULL};
        copy_extra(out, rec, qa ? c2 : c1);
        return out;
    }
    /* alpaca, classification: from the normalised example (alpaca joins instruction + input like LLaMA-Factory) */
    if (!add_ex_msgs(msgs, ex->msgs, 0, ex->n, reason, cap)) { cJSON_Delete(out); return NULL; }
    if (f == TK_DATA_CLASSIFICATION) cJSON_AddItemToArray(msgs, msg("assistant", ex->label, ex->label_len));
    static const char *const ca[] = {"instruction", "input", "output", "system", "history", NULL};
    static const char *const cc[] = {"text", "sentence", "label", NULL};
    if (rec) copy_extra(out, rec, f == TK_DATA_ALPACA ? ca : cc);
    return out;
}

static cJSON *to_preference(bool trl, const cJSON *rec, const tk_example *ex, char *reason, size_t cap) {
    bool openai_src = get(rec, "input") && get(rec, "preferred_output");
    if (openai_src && !trl) return cJSON_Duplicate(rec, true);
    bool trl_conv_src = !openai_src && !get(rec, "conversations") && cJSON_IsArray(get(rec, "chosen"));
    if (trl && trl_conv_src && (!get(rec, "prompt") || cJSON_IsArray(get(rec, "prompt")))) return cJSON_Duplicate(rec, true);
    cJSON *out = cJSON_CreateObject(), *prompt = cJSON_CreateArray(), *ch = cJSON_CreateArray(), *rj = cJSON_CreateArray();
    bool ok = add_ex_msgs(prompt, ex->msgs, 0, ex->n_prompt, reason, cap) && add_ex_msgs(ch, ex->msgs, ex->n_prompt, ex->n, reason, cap) &&
              add_ex_msgs(rj, ex->rej, 0, ex->n_rej, reason, cap);
    if (!ok) { cJSON_Delete(out); cJSON_Delete(prompt); cJSON_Delete(ch); cJSON_Delete(rj); return NULL; }
    if (trl) {
        cJSON_AddItemToObject(out, "prompt", prompt);
        cJSON_AddItemToObject(out, "chosen", ch);
        cJSON_AddItemToObject(out, "rejected", rj);
    } else {
        cJSON *in = cJSON_AddObjectToObject(out, "input");
        cJSON_AddItemToObject(in, "messages", prompt);
        cJSON_AddItemToObject(out, "preferred_output", ch);
        cJSON_AddItemToObject(out, "non_preferred_output", rj);
    }
    if (openai_src) {
        /* OpenAI -> TRL: keep the input's other fields (tools, parallel_tool_calls) at the top level */
        static const char *const ci[] = {"messages", NULL};
        copy_extra(out, get(rec, "input"), ci);
        static const char *const co[] = {"input", "preferred_output", "non_preferred_output", NULL};
        copy_extra(out, rec, co);
    } else {
        static const char *const ct[] = {"prompt", "chosen", "rejected", "conversations", "system", NULL};
        copy_extra(out, rec, ct);
    }
    return out;
}

tk_status tk_data_convert(const char *in_path, tk_data_format from, tk_data_target target, const char *out_path, FILE *out_fp,
                          tk_data_finding_fn on_finding, void *user, tk_data_convert_result *res) {
    return tk_data_convert_mapped(in_path, from, NULL, target, out_path, out_fp, on_finding, user, res);
}

tk_status tk_data_convert_mapped(const char *in_path, tk_data_format from, const tk_data_map *map, tk_data_target target,
                                 const char *out_path, FILE *out_fp, tk_data_finding_fn on_finding, void *user,
                                 tk_data_convert_result *res) {
    tk_data_convert_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    if (!in_path || (!out_path && !out_fp)) return tk_fail(TK_ERR_ARG, "tk_data_convert: input and output are required");
    tk_layout lay;
    tk_status st = tk_layout_open(in_path, NULL, 0, NULL, TK_DATA_CONTAINER_AUTO, from, map, 0, &lay);
    if (st) return st;
    tk_reader *rd = NULL;
    from = lay.format;
    res->from = from;
    bool to_chat_t = target == TK_DATA_TO_CHAT;
    if (from == TK_DATA_AUTO)
        st = tk_fail(TK_ERR_FORMAT, "%s: cannot tell the format of the records; use --format, or --map to name their fields", in_path);
    else if (to_chat_t && from == TK_DATA_TEXT) st = tk_fail(TK_ERR_UNSUPPORTED, "%s: raw text has no replies, so it cannot become chat data", in_path);
    else if (to_chat_t && from == TK_DATA_PREFERENCE)
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: preference data -> chat would drop the rejected answers (not lossless); use --to preference", in_path);
    else if (!to_chat_t && from != TK_DATA_PREFERENCE)
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: %s data has no rejected answers, so it cannot become preference data", in_path, tk_data_format_name(from));
    if (!st) st = tk_layout_reader(&lay, in_path, NULL, 0, NULL, 0, &rd);
    if (st) { tk_layout_free(&lay); return st; }
    if (map && tk_data_map_trains_all(map) && on_finding) {
        tk_data_finding f = {TK_DATA_WARNING, 0, 0, "train_all", "--map train=all: chat records cannot mark user turns as trained; "
                                                                 "train on the output with --train-on-prompt"};
        on_finding(&f, user);
    }

    tk_outfile of = {0};
    if (out_path && (st = tk_outfile_open(&of, out_path))) { tk_reader_close(rd); return st; }
    FILE *fp = out_path ? of.fp : out_fp;
    tk_example ex = {0}, chk = {0};
    tk_rfinds fs = {0};
    char reason[256];
    for (;;) {
        tk_raw raw;
        bool has;
        if ((st = tk_reader_next(rd, &raw, &has)) || !has) break;
        if (raw.kind == TK_RAW_BLANK || raw.kind == TK_RAW_HEADER) continue;
        tk_rf_clear(&fs);
        if (raw.kind == TK_RAW_FATAL) {
            if (on_finding) { tk_data_finding f = {TK_DATA_ERROR, raw.line, raw.record, "json_syntax", raw.msg}; on_finding(&f, user); }
            st = tk_fail(TK_ERR_FORMAT, "%s: the JSON array is broken at line %llu (%s); nothing written", in_path, (unsigned long long)raw.line, raw.msg);
            break;
        }
        res->n_records++;
        if (raw.kind == TK_RAW_TOO_LONG) {
            tk_rf_add(&fs, TK_DATA_ERROR, "line_too_long", "%.1f MB is longer than the %.0f MiB limit; not converted", (double)raw.len / 1e6,
                      (double)TK_DATA_DEFAULT_MAX_LINE / (1 << 20));
        } else {
            bool nul;
            size_t bad = tk_utf8_check(raw.data, raw.len, &nul);
            cJSON *rec = NULL;
            if (bad < raw.len) tk_rf_add(&fs, TK_DATA_ERROR, "invalid_utf8", "%s at byte %zu; not converted", nul ? "a NUL byte" : "invalid UTF-8", bad + 1);
            else tk_layout_validate(&lay, &raw, &ex, &fs, &rec);
            if (fs.n_errors == 0) {
                reason[0] = 0;
                cJSON *o = to_chat_t ? to_chat(from, rec, &ex, reason, sizeof reason)
                                     : to_preference(target == TK_DATA_TO_PREFERENCE_TRL, rec, &ex, reason, sizeof reason);
                if (!o) tk_rf_add(&fs, TK_DATA_ERROR, "not_convertible", "%s", reason[0] ? reason : "out of memory");
                else {
                    tk_rfinds vf = {0};
                    tk_data_validate(to_chat_t ? TK_DATA_CHAT : TK_DATA_PREFERENCE, o, &chk, &vf);
                    if (vf.n_errors) tk_rf_add(&fs, TK_DATA_ERROR, "not_convertible", "the converted record would not pass the check: %s: %s",
                                               vf.v[0].category, vf.v[0].message);
                    tk_rf_clear(&vf);
                    tk_example_reset(&chk);
                    char *p = fs.n_errors ? NULL : cJSON_PrintUnformatted(o);
                    if (p) {
                        size_t n = strlen(p);
                        if (tk_io_fwrite(p, 1, n, fp) != n || fputc('\n', fp) == EOF) st = tk_fail(TK_ERR_IO, "%s: write failed", out_path ? out_path : "output");
                        cJSON_free(p);
                        res->n_written++;
                    } else if (!fs.n_errors) tk_rf_add(&fs, TK_DATA_ERROR, "not_convertible", "out of memory");
                    cJSON_Delete(o);
                }
            }
            tk_example_reset(&ex);
            cJSON_Delete(rec);
        }
        if (fs.n_errors) {
            res->n_failed++;
            for (size_t i = 0; i < fs.n && on_finding; i++) {
                if (fs.v[i].severity != TK_DATA_ERROR) continue;
                tk_data_finding f = {TK_DATA_ERROR, raw.line, raw.record, fs.v[i].category, fs.v[i].message ? fs.v[i].message : ""};
                on_finding(&f, user);
            }
        }
        if (st) break;
    }
    tk_rf_clear(&fs);
    tk_example_free(&ex);
    tk_example_free(&chk);
    tk_reader_close(rd);
    tk_layout_free(&lay);
    if (out_path) {
        if (st) tk_outfile_abort(&of);
        else st = tk_outfile_commit(&of);
    }
    return st;
}
