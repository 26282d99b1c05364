/* The teacher's answers (see run.h): before the student's data is loaded, the records are read as
 * conversations; where the teacher must answer (a record without an answer, --teacher-answers, a
 * teacher of another vocabulary) it generates the answer greedily, in one batch, with --teacher-context
 * in its system prompt when given; the conversations with their answers (the student's view: no
 * context) go to RUN/teacher_answers.jsonl, which the run then trains on. RUN/teacher_answers.key holds
 * a hash of everything the answers depend on: a rerun or --resume with the same inputs reuses the file. */
#include "train/run.h"
#include "takumi/generate_batch.h"
#include "dist/dist.h"
#include <cjson/cJSON.h>

#define ANSWERS_FILE "teacher_answers.jsonl"
#define KEY_FILE "teacher_answers.key"
#define GEN_BATCH 8

/* One record as a conversation: messages [n] (role, content), answered when the last is the assistant's. */
typedef struct convo { tk_chat_msg *m; size_t n; bool answered; uint64_t line; } convo;
typedef struct convos { convo *v; size_t n, cap; cJSON **json; size_t n_json; } convos;

static void convos_free(convos *cs) {
    for (size_t i = 0; i < cs->n; i++) free(cs->v[i].m);
    for (size_t i = 0; i < cs->n_json; i++) cJSON_Delete(cs->json[i]);
    free(cs->v);
    free(cs->json);
    memset(cs, 0, sizeof *cs);
}

static int role_of(const char *s) {
    return !strcmp(s, "system") ? TK_ROLE_SYSTEM : !strcmp(s, "user") ? TK_ROLE_USER : !strcmp(s, "assistant") ? TK_ROLE_ASSISTANT : -1;
}

/* Parses one JSONL record: {"messages": [{"role", "content"}, ...]} or {"prompt"[, "completion"]}. */
static tk_status parse_record(cJSON *o, const char *name, uint64_t line, convo *cv) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages"), *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (cJSON_IsArray(msgs)) {
        int n = cJSON_GetArraySize(msgs);
        if (n == 0) return tk_fail(TK_ERR_ARG, "%s: line %llu: \"messages\" is empty", name, (unsigned long long)line);
        cv->m = tk_calloc((size_t)n, sizeof *cv->m);
        if (!cv->m) return TK_ERR_NOMEM;
        const cJSON *e;
        cJSON_ArrayForEach(e, msgs) {
            const cJSON *ro = cJSON_GetObjectItemCaseSensitive(e, "role"), *co = cJSON_GetObjectItemCaseSensitive(e, "content");
            int role = cJSON_IsString(ro) ? role_of(ro->valuestring) : -1;
            if (role < 0 || !cJSON_IsString(co))
                return tk_fail(TK_ERR_ARG, "%s: line %llu: message %zu needs a role (system, user, assistant) and a string content",
                               name, (unsigned long long)line, cv->n + 1);
            cv->m[cv->n++] = (tk_chat_msg){(tk_role)role, co->valuestring};
        }
    } else if (cJSON_IsString(pr)) {
        const cJSON *co = cJSON_GetObjectItemCaseSensitive(o, "completion");
        cv->m = tk_calloc(2, sizeof *cv->m);
        if (!cv->m) return TK_ERR_NOMEM;
        cv->m[cv->n++] = (tk_chat_msg){TK_ROLE_USER, pr->valuestring};
        if (cJSON_IsString(co) && co->valuestring[0]) cv->m[cv->n++] = (tk_chat_msg){TK_ROLE_ASSISTANT, co->valuestring};
    } else {
        return tk_fail(TK_ERR_ARG, "%s: line %llu: the teacher's answers are made from chat records {\"messages\": [...]} (the last a user "
                       "turn, or an assistant answer) or {\"prompt\"[, \"completion\"]} records (convert other formats with takumi data "
                       "convert)", name, (unsigned long long)line);
    }
    if (cv->m[cv->n - 1].role != TK_ROLE_ASSISTANT && cv->m[cv->n - 1].role != TK_ROLE_USER)
        return tk_fail(TK_ERR_ARG, "%s: line %llu: the conversation ends with a system message (nothing to answer)", name,
                       (unsigned long long)line);
    cv->answered = cv->m[cv->n - 1].role == TK_ROLE_ASSISTANT;
    cv->line = line;
    return TK_OK;
}

/* Reads every non-blank line of text as a record (JSONL). */
static tk_status parse_all(char *text, size_t len, const char *name, convos *cs) {
    uint64_t line = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < e) {
            cJSON *o = cJSON_ParseWithLength(q, (size_t)(e - q));
            if (!cJSON_IsObject(o)) {
                cJSON_Delete(o);
                return tk_fail(TK_ERR_ARG, "%s: line %llu: not a JSON object (the teacher's answers read JSONL records)", name,
                               (unsigned long long)line);
            }
            if (cs->n == cs->cap) {
                size_t nc = cs->cap ? 2 * cs->cap : 64;
                convo *v = tk_realloc(cs->v, nc * sizeof *v);
                cJSON **j = v ? tk_realloc(cs->json, nc * sizeof *j) : NULL;
                if (v) cs->v = v;
                if (!v || !j) { cJSON_Delete(o); return TK_ERR_NOMEM; }
                cs->json = j;
                cs->cap = nc;
            }
            cs->json[cs->n_json++] = o;
            memset(&cs->v[cs->n], 0, sizeof cs->v[cs->n]);
            tk_status st = parse_record(o, name, line, &cs->v[cs->n++]);
            if (st) return st;
        }
        p = nl ? nl + 1 : end;
    }
    if (cs->n == 0) return tk_fail(TK_ERR_ARG, "%s: no records", name);
    return TK_OK;
}

/* The messages the teacher reads: ctx (may be NULL) at the start of the system prompt (before a system
 * message's own text, or as a new one). *n_out messages into out (room for n + 1); the joined system text
 * is kept in sys (freed by the caller). */
static tk_status with_context(const convo *cv, size_t n, const char *ctx, tk_chat_msg *out, size_t *n_out, tk_buf *sys) {
    size_t k = 0, i = 0;
    if (ctx) {
        sys->len = 0;
        tk_status st = tk_buf_printf(sys, "%s", ctx);
        if (!st && n > 0 && cv->m[0].role == TK_ROLE_SYSTEM) st = tk_buf_printf(sys, "\n\n%s", cv->m[i++].content);
        if (!st) st = tk_buf_append(sys, "", 1);
        if (st) return st;
        out[k++] = (tk_chat_msg){TK_ROLE_SYSTEM, sys->data};
    }
    for (; i < n; i++) out[k++] = cv->m[i];
    *n_out = k;
    return TK_OK;
}

/* The hash of the inputs the answers depend on. */
static uint64_t answers_key(const tk_run *r, const char *data, size_t len) {
    const tk_trainer_config *c = &r->c;
    tk_buf b = {0};
    uint64_t h = tk_hash_bytes(data, len);
    /* absolute paths: config.json stores them so, and --resume reads them from there */
    char *model = tk_path_abs(c->model), *teacher = c->teacher ? tk_path_abs(c->teacher) : NULL;
    tk_status st = !model || (c->teacher && !teacher) ? TK_ERR_NOMEM
        : tk_buf_printf(&b, "%016llx|%s|%s|%s|%d|%d|%s|v1", (unsigned long long)h, model, teacher ? teacher : "-",
                        c->template_name ? c->template_name : "-", c->max_new_tokens, (int)c->teacher_answers,
                        r->ctx_text ? r->ctx_text : "");
    h = st ? 0 : tk_hash_bytes(b.data, b.len);
    free(model);
    free(teacher);
    tk_buf_free(&b);
    return h;
}

/* Generates the answers of records todo[0..n) with the teacher (gm, its tokenizer and template). */
static tk_status generate(tk_run *r, tk_model *gm, const tk_tokenizer *tok, tk_chat_family fam, convos *cs, const size_t *todo,
                          int32_t n, char **answers) {
    tk_gen_request *req = tk_calloc((size_t)n, sizeof *req);
    tk_gen_result *res = tk_calloc((size_t)n, sizeof *res);
    tk_chat_tokens *ct = tk_calloc((size_t)n, sizeof *ct);
    tk_chat_msg *msgs = NULL;
    tk_buf sys = {0};
    tk_status st = req && res && ct ? TK_OK : TK_ERR_NOMEM;
    for (int32_t i = 0; i < n && !st; i++) {
        const convo *cv = &cs->v[todo[i]];
        size_t np = cv->answered ? cv->n - 1 : cv->n, k;   /* the prompt: the conversation before its final answer */
        free(msgs);
        if (!(msgs = tk_calloc(np + 1, sizeof *msgs))) { st = TK_ERR_NOMEM; break; }
        if ((st = with_context(cv, np, r->ctx_text, msgs, &k, &sys))) break;
        st = tk_chat_render(tok, fam, msgs, k, true, &ct[i]);
        if (st) st = tk_fail_ctx(st, "%s: line %llu: the teacher's prompt: ", r->c.data, (unsigned long long)cv->line);
        req[i] = (tk_gen_request){ct[i].ids.data, (int64_t)ct[i].ids.len, r->c.seed};
    }
    if (!st) {
        tk_gen_params gp = tk_gen_default_params();
        gp.sampler.temperature = 0;   /* greedy: the teacher's most likely answer, deterministic */
        gp.max_tokens = r->c.max_new_tokens;
        tk_gen_batch_stats gs = {0};
        double t0 = tk_time_s();
        st = tk_generate_batch(gm, tok, NULL, 0, req, n, &gp, GEN_BATCH, res, &gs);
        if (st) st = tk_fail_ctx(st, "the teacher's answers: ");
        else
            tk_run_emitf(r, TK_EV_INFO, "teacher_answers", false, "the teacher answered %d prompt%s%s: %lld tokens in %.1f s", n,
                         n == 1 ? "" : "s", tk_dist_size() > 1 ? " (rank 0's share)" : "", (long long)gs.n_generated, tk_time_s() - t0);
    }
    for (int32_t i = 0; i < n && !st; i++) {
        answers[i] = res[i].text;
        res[i].text = NULL;
    }
    for (int32_t i = 0; ct && i < n; i++) tk_chat_tokens_free(&ct[i]);
    for (int32_t i = 0; res && i < n; i++) tk_gen_result_free(&res[i]);
    free(req); free(res); free(ct); free(msgs);
    tk_buf_free(&sys);
    return st;
}

/* Appends record cv (with answer ans replacing or adding the final assistant message; NULL: as it is) as one JSONL line. */
static tk_status write_record(const convo *cv, const char *ans, tk_buf *out) {
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "messages");
    static const char *const names[] = {[TK_ROLE_SYSTEM] = "system", [TK_ROLE_USER] = "user", [TK_ROLE_ASSISTANT] = "assistant"};
    size_t n = ans && cv->answered ? cv->n - 1 : cv->n;
    bool ok = o && a;
    for (size_t i = 0; i <= n && ok; i++) {
        if (i == n && !ans) break;
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddStringToObject(m, "role", names[i < n ? cv->m[i].role : TK_ROLE_ASSISTANT]) &&
             cJSON_AddStringToObject(m, "content", i < n ? cv->m[i].content : ans) && cJSON_AddItemToArray(a, m);
        if (!ok) cJSON_Delete(m);
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return TK_ERR_NOMEM;
    tk_status st = tk_buf_printf(out, "%s\n", s);
    free(s);
    return st;
}

const char *tk_run_data_path(const tk_run *r) { return r->answers_path ? r->answers_path : r->c.data; }

bool tk_run_key_matches(const char *kpath, const char *apath, uint64_t key) {
    char *k = NULL;
    size_t kl = 0;
    if (access(apath, R_OK) != 0 || tk_read_file(kpath, &k, &kl)) { tk_clear_error(); return false; }
    bool ok = strtoull(k, NULL, 16) == key;
    free(k);
    return ok;
}

static tk_status prepare(tk_run *r, convos *cs, char **answers, size_t *todo) {
    tk_trainer_config *c = &r->c;
    tk_status st;
    char *data = NULL;
    size_t len = 0;
    if ((st = tk_read_file(c->data, &data, &len))) return st;
    st = parse_all(data, len, c->data, cs);
    if (st && !r->ctx_text && !r->seqkd && !c->teacher_answers) {   /* plain distillation of data in another format: as SFT data */
        tk_clear_error();
        free(data);
        return TK_OK;
    }
    size_t n_todo = 0;
    for (size_t i = 0; i < cs->n && !st; i++)
        if (!cs->v[i].answered || r->seqkd || c->teacher_answers) todo[n_todo++] = i;
    if (st || (!r->ctx_text && n_todo == 0)) { free(data); return st; }
    if (r->seqkd)
        tk_run_emitf(r, TK_EV_INFO, "distill", false, "--teacher %s has another vocabulary (%d tokens, the student's %d): sequence-level "
                     "distillation: the teacher answers the %zu prompts in its own chat template and the student trains on its answers "
                     "with the SFT loss", c->teacher, tk_tokenizer_n_vocab(tk_model_tokenizer(r->teacher)), tk_tokenizer_n_vocab(r->tok),
                     n_todo);
    uint64_t key = answers_key(r, data, len);
    free(data);
    char *kpath = tk_path_join(c->out, KEY_FILE);
    if (!(r->answers_path = tk_path_join(c->out, ANSWERS_FILE)) || !kpath) { free(kpath); return TK_ERR_NOMEM; }
    bool reuse = tk_dist_rank() == 0 && tk_run_key_matches(kpath, r->answers_path, key);
    if ((st = tk_dist_bcast(&reuse, sizeof reuse))) { free(kpath); return tk_fail_ctx(st, "the teacher's answers: "); }   /* rank 0's view */
    if (reuse) {
        tk_run_emitf(r, TK_EV_INFO, "teacher_answers", false, "reusing %s (made from the same data, teacher, context and options)",
                     r->answers_path);
        free(kpath);
        return TK_OK;
    }
    if (n_todo) {
        /* the teacher: a second model, or the student's base itself (no adapters yet: this runs before training) */
        tk_model *gm = r->teacher ? r->teacher : r->m;
        const tk_tokenizer *gt = r->teacher && tk_model_tokenizer(r->teacher) ? tk_model_tokenizer(r->teacher) : r->tok;
        tk_chat_family fam = r->fam;
        if (r->teacher && tk_model_tokenizer(r->teacher) && (st = tk_chat_resolve(gt, NULL, &fam)))
            return tk_fail_ctx(st, "--teacher %s: its chat template: ", c->teacher);
        if (fam == TK_CHAT_UNKNOWN)
            return tk_fail(TK_ERR_ARG, "the teacher's answers need a chat template: choose one with --template (%s)", tk_chat_family_names());
        tk_run_emitf(r, TK_EV_INFO, "teacher_answers", false, "the teacher (%s%s) answers %zu of %zu prompts (greedy, up to %d tokens)",
                     r->teacher ? c->teacher : "the base model", r->ctx_text ? ", with the context in its system prompt" : "", n_todo, cs->n,
                     c->max_new_tokens);
        /* N MPI ranks: rank k answers todo[i] for i mod N == k (greedy: the answers of one process), then every rank has all */
        const int n_ranks = tk_dist_size(), rank = tk_dist_rank();
        size_t n_mine = 0;
        for (size_t i = rank; i < n_todo; i += (size_t)n_ranks) todo[n_todo + n_mine++] = todo[i];
        if (n_mine > 0) st = generate(r, gm, gt, fam, cs, todo + n_todo, (int32_t)n_mine, answers + n_todo);
        for (size_t i = rank, k = n_todo; i < n_todo && !st; i += (size_t)n_ranks, k++) {
            answers[i] = answers[k];
            answers[k] = NULL;
        }
        if (n_ranks > 1 && !(st = tk_dist_agree(st))) st = tk_dist_share_texts(answers, (int64_t)n_todo, 1);
        if (st) { free(kpath); return st; }
    }
    /* the file: every record the student trains on, one a line (an empty answer drops its record) */
    tk_buf out = {0};
    size_t dropped = 0, j = 0;
    for (size_t i = 0; i < cs->n && !st; i++) {
        const char *ans = j < n_todo && todo[j] == i ? answers[j++] : NULL;
        if (ans && !ans[0]) { dropped++; continue; }
        if (!ans && !cs->v[i].answered) continue;
        st = write_record(&cs->v[i], ans, &out);
    }
    if (!st && out.len == 0) st = tk_fail(TK_ERR_ARG, "%s: the teacher gave no answer to any prompt", c->data);
    const bool lead = tk_dist_rank() == 0;   /* N ranks: the same file on every rank; rank 0 writes it, the others wait for it */
    if (!st && lead) st = tk_write_file_atomic(r->answers_path, out.data, out.len);
    char kb[32];
    int kn = snprintf(kb, sizeof kb, "%016llx\n", (unsigned long long)key);
    if (!st && lead) st = tk_write_file_atomic(kpath, kb, (size_t)kn);
    st = tk_dist_agree(st);
    if (!st && dropped)
        tk_run_emitf(r, TK_EV_WARNING, "warning", false, "the teacher's answer to %zu prompt%s was empty: not trained on", dropped,
                     dropped == 1 ? "" : "s");
    if (!st) tk_run_emitf(r, TK_EV_INFO, "teacher_answers", false, "wrote %s", r->answers_path);
    tk_buf_free(&out);
    free(kpath);
    return st;
}

tk_status tk_run_distill_prepare(tk_run *r) {
    if (!r->distill) return TK_OK;
    tk_trainer_config *c = &r->c;
    tk_status st;
    if (c->max_new_tokens == 0) c->max_new_tokens = 256;
    if (c->teacher_context) {
        size_t len = 0;
        if ((st = tk_read_file(c->teacher_context, &r->ctx_text, &len))) return tk_fail_ctx(st, "--teacher-context: ");
        size_t k = 0;
        while (k < len && (r->ctx_text[k] == ' ' || r->ctx_text[k] == '\n' || r->ctx_text[k] == '\r' || r->ctx_text[k] == '\t')) k++;
        if (k == len)
            return tk_fail(TK_ERR_ARG, "--teacher-context %s is empty: it is the text the teacher reads (a policy, a manual)", c->teacher_context);
        if (strlen(r->ctx_text) != len)
            return tk_fail(TK_ERR_ARG, "--teacher-context %s holds a NUL byte: it must be text (UTF-8, Markdown)", c->teacher_context);
        if (c->val)
            return tk_fail(TK_ERR_ARG, "--teacher-context with --val is not supported: the validation examples come from --data (--val-split)");
        if (c->train_on_prompt)
            return tk_fail(TK_ERR_ARG, "--train-on-prompt does not apply to context distillation: the teacher's prompt differs from the student's");
    }
    if (c->teacher) {
        tk_model_params mp = tk_model_default_params();
        mp.tokenizer = TK_TOKENIZER_IF_PRESENT;
        if ((st = tk_model_load(c->teacher, &mp, &r->teacher))) return tk_fail_ctx(st, "--teacher %s: ", c->teacher);
        const int64_t vt = tk_model_weights(r->teacher)->output.ne[1], vs = tk_model_weights(r->m)->output.ne[1];
        if (vt != vs) {
            if (!tk_model_tokenizer(r->teacher))
                return tk_fail(TK_ERR_ARG, "--teacher %s has a vocabulary of %lld tokens, the student %s %lld, and no tokenizer: it cannot "
                               "write the answers the student would learn from", c->teacher, (long long)vt, c->model, (long long)vs);
            r->seqkd = true;
        }
    }
    convos cs = {0};
    char **answers = NULL;
    size_t *todo = NULL;
    /* at most one answer per line of the file */
    char *d = NULL;
    size_t dl = 0;
    if ((st = tk_read_file(c->data, &d, &dl))) return st;
    size_t lines = 1;
    for (size_t i = 0; i < dl; i++) lines += d[i] == '\n';
    free(d);
    answers = tk_calloc(2 * lines, sizeof *answers);   /* the second half: this MPI rank's share while it generates */
    todo = tk_calloc(2 * lines, sizeof *todo);
    st = answers && todo ? prepare(r, &cs, answers, todo) : TK_ERR_NOMEM;
    for (size_t i = 0; answers && i < 2 * lines; i++) free(answers[i]);
    free(answers);
    free(todo);
    convos_free(&cs);
    if (st) return st;
    if (r->seqkd) {   /* the student learns the answers with the SFT loss: the teacher is no longer needed */
        if (!r->answers_path) return tk_fail(TK_ERR_INTERNAL, "sequence-level distillation without answers");
        tk_model_free(r->teacher);
        r->teacher = NULL;
        r->distill = false;
    }
    return TK_OK;
}

tk_status tk_run_context_records(tk_run *r, tk_buf *out) {
    char *data = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(r->answers_path, &data, &len);
    if (st) return st;
    convos cs = {0};
    tk_buf sys = {0};
    tk_chat_msg *msgs = NULL;
    st = parse_all(data, len, r->answers_path, &cs);
    for (size_t i = 0; i < cs.n && !st; i++) {
        size_t k;
        free(msgs);
        if (!(msgs = tk_calloc(cs.v[i].n + 1, sizeof *msgs))) { st = TK_ERR_NOMEM; break; }
        if ((st = with_context(&cs.v[i], cs.v[i].n, r->ctx_text, msgs, &k, &sys))) break;
        convo tv = {msgs, k, true, cs.v[i].line};
        st = write_record(&tv, NULL, out);
    }
    free(msgs);
    tk_buf_free(&sys);
    convos_free(&cs);
    free(data);
    return st;
}
