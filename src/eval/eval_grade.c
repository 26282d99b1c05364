/* Graders and the judge in an evaluation: the --grader document scores every generated answer
 * ("grader" and "grader:<name>" columns), a local judge model answers score_model graders, and
 * the built-in judge metric asks it for a 1-10 verdict on the answer given the question and the
 * reference (scaled to 0-1). Failures are counted per system and fail the run past the limit. */
#include "eval/eval_grade.h"
#include "eval/eval_model.h"
#include "data/data_internal.h"

static const char JUDGE_DOC[] =
    "{\"type\":\"score_model\",\"name\":\"judge\",\"range\":[1,10],\"input\":["
    "{\"role\":\"system\",\"content\":\"You are a strict grader. Rate how well the answer responds to the question, from 1 (wrong or "
    "useless) to 10 (correct, complete and clear). When a reference answer is given, the answer must agree with its facts. Reply "
    "with the number only.\"},"
    "{\"role\":\"user\",\"content\":\"Question:\\n{{ item._takumi_prompt }}\\n\\nReference answer:\\n{{ item._takumi_reference }}\\n\\n"
    "Answer to rate:\\n{{ sample.output_text }}\\n\\nRating (1-10):\"}]}";

/* The judge: chat-rendered messages, a greedy reply of at most 256 tokens. */
static tk_status judge_reply(void *ud, const char *model, const char *const *roles, const char *const *contents, int n, char **out) {
    (void)model;
    tk_eval_judge *j = ud;
    tk_chat_msg *m = tk_malloc((size_t)(n > 0 ? n : 1) * sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        tk_role r = TK_ROLE_USER;
        if (!strcmp(roles[i], "system") || !strcmp(roles[i], "developer")) r = TK_ROLE_SYSTEM;
        else if (!strcmp(roles[i], "assistant")) r = TK_ROLE_ASSISTANT;
        m[i] = (tk_chat_msg){r, contents[i]};
    }
    tk_eval_ex ex = {.prompt = m, .n_prompt = (size_t)n, .line = 0};
    tk_ivec ids = {0}, gen = {0};
    tk_buf text = {0};
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = 0;
    p.max_tokens = 256;
    tk_status st = tk_eval_prompt_ids(j->sys, &ex, &ids);
    if (!st) st = tk_generate(j->sess, tk_model_tokenizer(j->sys->m), ids.data, (int64_t)ids.len, &p, NULL, NULL, &gen, NULL);
    if (!st) st = tk_detokenize(tk_model_tokenizer(j->sys->m), gen.data, gen.len, true, &text);
    if (!st) st = tk_buf_append(&text, "", 1);
    free(m);
    tk_ivec_free(&ids); tk_ivec_free(&gen);
    if (st) { tk_buf_free(&text); return st; }
    *out = text.data;
    return TK_OK;
}

tk_status tk_eval_grading_open(tk_eval_grading *g, const tk_eval_params *p) {
    memset(g, 0, sizeof *g);
    tk_status st = TK_OK;
    if (p->grader && (st = tk_grader_load(p->grader, &g->grader))) return st;
    if (p->judge) {
        if ((st = tk_grader_parse(JUDGE_DOC, sizeof JUDGE_DOC - 1, "(built-in judge)", &g->judge_grader))) goto fail;
        if (!(g->judge.sys = tk_calloc(1, sizeof *g->judge.sys))) { st = TK_ERR_NOMEM; goto fail; }
        if ((st = tk_eval_sys_open(NULL, p->judge, NULL, NULL, NULL, g->judge.sys))) {
            free(g->judge.sys);
            g->judge.sys = NULL;
            st = tk_fail_ctx(st, "--judge: ");
            goto fail;
        }
        if ((st = tk_session_new(g->judge.sys->m, 0, &g->judge.sess))) goto fail;
        g->cb = (tk_judge){.reply = judge_reply, .ud = &g->judge};
    } else if (g->grader && tk_grader_needs_judge(g->grader)) {
        st = tk_fail(TK_ERR_ARG, "%s: a score_model grader needs a judge model: give --judge MODEL", p->grader);
        goto fail;
    }
    return TK_OK;
fail:
    tk_eval_grading_close(g);
    return st;
}

void tk_eval_grading_close(tk_eval_grading *g) {
    tk_grader_free(g->grader);
    tk_grader_free(g->judge_grader);
    tk_session_free(g->judge.sess);
    if (g->judge.sys) { tk_eval_sys_close(g->judge.sys); free(g->judge.sys); }
    memset(g, 0, sizeof *g);
}

/* The judge's template fields on the record: the last user turn and the reference. */
static tk_status judge_fields(tk_eval_ex *ex) {
    cJSON *it = ex->item;
    const char *q = "";
    for (size_t i = ex->n_prompt; i-- > 0;) if (ex->prompt[i].role == TK_ROLE_USER) { q = ex->prompt[i].content; break; }
    cJSON_DeleteItemFromObjectCaseSensitive(it, "_takumi_prompt");
    cJSON_DeleteItemFromObjectCaseSensitive(it, "_takumi_reference");
    if (!cJSON_AddStringToObject(it, "_takumi_prompt", q) ||
        !cJSON_AddStringToObject(it, "_takumi_reference", ex->reference ? ex->reference : "(none)"))
        return TK_ERR_NOMEM;
    return TK_OK;
}

static tk_status note_failure(tk_eval_ex *ex, int which, const char *err, int64_t *n_fail, int64_t limit, const char *what) {
    (*n_fail)++;
    if (!ex->grade_error[which] && !(ex->grade_error[which] = tk_strdup(err))) return TK_ERR_NOMEM;
    if (limit >= 0 && *n_fail > limit)
        return tk_fail(TK_ERR_FORMAT, "%s failed on %lld answers, more than --max-grader-failures %lld (last: line %llu: %s)", what,
                       (long long)*n_fail, (long long)limit, (unsigned long long)ex->line, err);
    return TK_OK;
}

tk_status tk_eval_grade(tk_eval_grading *g, tk_eval_ex *ex, int which, const tk_eval_col *cols, int n_cols, double *stats,
                        int64_t *n_fail, int64_t limit) {
    const char *a = ex->pred[which];
    if (!a) return TK_OK;
    tk_status st = TK_OK;
    for (int pass = 0; pass < 2 && !st; pass++) {
        tk_grader *gr = pass ? g->judge_grader : g->grader;
        if (!gr) continue;
        bool used = false;
        for (int c = 0; c < n_cols; c++) used |= !strncmp(cols[c].name, pass ? "judge" : "grader", pass ? 6 : 6);
        if (!used) continue;
        if (pass && (st = judge_fields(ex))) break;
        tk_grade r = {0};
        st = tk_grader_grade(gr, ex->item, a, g->judge.sys ? &g->cb : NULL, &r);
        if (!st && r.failed) st = note_failure(ex, which, r.error, n_fail, limit, pass ? "the judge" : "the grader");
        else if (!st)
            for (int c = 0; c < n_cols; c++) {
                double *s = stats + cols[c].off, v;
                if (pass && !strcmp(cols[c].name, "judge")) v = (r.score - 1) / 9;
                else if (!pass && !strcmp(cols[c].name, "grader")) v = r.score;
                else if (!pass && cols[c].grader_index >= 0 && !strncmp(cols[c].name, "grader:", 7)) v = r.sub[cols[c].grader_index];
                else continue;
                s[0] = 1; s[1] = v; s[2] = 1;
            }
        tk_grade_free(&r);
    }
    return st;
}
