/* `takumi data synth`: documents -> chunks -> question/answer pairs from a model (one batched
 * generation over every chunk and language) -> the grounding check -> paraphrases of each kept
 * question (a second batched generation) -> chat JSONL with each pair's source in "metadata".
 * Every pair asked for is accounted for: kept, or dropped with its reason. */
#include "data/docs_internal.h"
#include "data/data_internal.h"

const char *tk_synth_reason_name(int r) {
    static const char *const n[] = {"no_pairs_parsed", "prompt_over_context", "empty", "answer_is_a_question", "wrong_language", "number_not_in_chunk", "name_not_in_chunk", "word_not_in_chunk",
                                    "not_supported", "duplicate_question", "too_long", "near_duplicate_question"};
    return (unsigned)r < TK_SYN_REASONS ? n[r] : "unknown";
}

tk_synth_params tk_synth_default_params(void) {
    tk_synth_params p = {0};
    p.gen = (tk_synth_gen){.temperature = 0.7f, .seed = 0, .max_batch = 16, .max_tokens = 0, .family = TK_CHAT_UNKNOWN};
    p.questions_per_chunk = 3;
    p.paraphrases = 2;
    p.chunk = tk_chunk_default_params();
    return p;
}

static const char *lang_name(const char *code) {
    static const char *const m[][2] = {{"en", "English"}, {"ja", "Japanese (日本語)"}, {"zh", "Chinese (中文)"}, {"ko", "Korean (한국어)"},
                                       {"de", "German"}, {"fr", "French"}, {"es", "Spanish"}, {"it", "Italian"}, {"pt", "Portuguese"}};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (!strcmp(code, m[i][0])) return m[i][1];
    return code;
}

typedef struct pair { size_t doc, chunk, lang; char *q, *a; char **var; size_t n_var; } pair;
typedef struct run {
    const tk_synth_params *p;
    tk_doc *docs; tk_chunk **chunks; size_t *n_chunks;
    pair *kept; size_t n_kept;
    tk_synth_summary *s;
} run;

static tk_status qa_prompt(const run *r, size_t d, const tk_chunk *c, const char *lang, tk_buf *b) {
    b->len = 0;
    tk_status st = tk_buf_printf(b, "Here is a section of the document \"%s\"", r->s->docs[d].path);
    if (!st && c->heading[0]) st = tk_buf_printf(b, ", under the heading \"%s\"", c->heading);
    if (!st)
        st = tk_buf_printf(b,
                           ":\n\n%s\n\nWrite %d questions that a customer could ask about this text, each followed by its answer. "
                           "Use only facts stated in the text, and copy every number and name exactly as it is written. "
                           "Write the questions and answers in %s. Use exactly this format:\nQ: <question>\nA: <answer>",
                           c->text, r->p->questions_per_chunk, lang_name(lang));
    return st ? st : tk_buf_append(b, "", 1);
}

/* Tokens of a record (system + question + answer, as plain text) in the target's tokenizer. */
static bool too_long(const tk_synth_params *p, const char *q, const char *a) {
    if (!p->target_tok || p->target_ctx <= 0) return false;
    tk_ivec ids = {0};
    size_t n = 0;
    const char *parts[3] = {p->system ? p->system : "", q, a};
    for (int k = 0; k < 3; k++) {
        ids.len = 0;
        if (tk_tokenize(p->target_tok, parts[k], strlen(parts[k]), 0, &ids)) { tk_clear_error(); n += strlen(parts[k]); }
        else n += ids.len;
    }
    tk_ivec_free(&ids);
    return (int64_t)(n + 16) > p->target_ctx;   /* 16: the template's markers */
}

static bool seen_question(const run *r, const char *q) {
    for (size_t i = 0; i < r->n_kept; i++)
        if (tk_para_check(r->kept[i].q, q, NULL, 0, 1e9) == TK_PARA_IDENTICAL) return true;
    return false;
}

/* A near-duplicate of a question kept before for the same chunk and language. */
static bool near_question(const run *r, size_t d, size_t ci, size_t li, const char *q) {
    for (size_t i = 0; i < r->n_kept; i++)
        if (r->kept[i].doc == d && r->kept[i].chunk == ci && r->kept[i].lang == li && tk_synth_near_question(r->kept[i].q, q)) return true;
    return false;
}

static char *trimmed(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n')) n--;
    return tk_strndup(s, n);
}

/* Languages written in CJK scripts. */
static bool cjk_lang(const char *code) {
    return !strncmp(code, "ja", 2) || !strncmp(code, "zh", 2) || !strncmp(code, "ko", 2);
}

/* Sorts the pairs of one output into kept or dropped. */
static tk_status judge(run *r, size_t d, size_t ci, size_t li, const char *text, bool over) {
    tk_synth_doc *sd = &r->s->docs[d];
    if (over) { sd->dropped[TK_SYN_CONTEXT] += (uint64_t)r->p->questions_per_chunk; return TK_OK; }
    tk_qa *qa = NULL;
    size_t n = 0;
    tk_status st = tk_synth_parse_qa(text, &qa, &n);
    if (st) return st;
    size_t n_all = n;
    if (!n) sd->dropped[TK_SYN_NO_PAIRS] += (uint64_t)r->p->questions_per_chunk;
    else if (n < (size_t)r->p->questions_per_chunk) sd->dropped[TK_SYN_NO_PAIRS] += (uint64_t)r->p->questions_per_chunk - n;
    if (n > (size_t)r->p->questions_per_chunk) n = (size_t)r->p->questions_per_chunk;
    const tk_chunk *c = &r->chunks[d][ci];
    for (size_t i = 0; i < n && !st; i++) {
        sd->parsed++;
        char *q = trimmed(qa[i].q), *a = trimmed(qa[i].a);
        if (!q || !a) { free(q), free(a); st = TK_ERR_NOMEM; break; }
        int why = -1;
        size_t al = strlen(a);
        if (!q[0] || !a[0] || strstr(q, "<question>") || strstr(a, "<answer>")) why = TK_SYN_EMPTY;   /* or the format's placeholders copied */
        else if (a[al - 1] == '?' || (al >= 3 && !memcmp(a + al - 3, "\xEF\xBC\x9F", 3))) why = TK_SYN_QUESTION;
        else if (tk_text_is_cjk(q) != cjk_lang(r->p->languages[li]) || tk_text_is_cjk(a) != cjk_lang(r->p->languages[li])) why = TK_SYN_LANGUAGE;
        else {
            tk_ground g = tk_ground_check(a, c->text, NULL, 0);
            if (g == TK_GROUND_NUMBER) why = TK_SYN_NUMBER;
            else if (g == TK_GROUND_NAME) why = TK_SYN_NAME;
            else if (g == TK_GROUND_SCRIPT) why = TK_SYN_SCRIPT;
            else if (g == TK_GROUND_UNSUPPORTED) why = TK_SYN_UNSUPPORTED;
            else if (seen_question(r, q)) why = TK_SYN_DUPLICATE;
            else if (near_question(r, d, ci, li, q)) why = TK_SYN_NEAR_DUPLICATE;
            else if (too_long(r->p, q, a)) why = TK_SYN_TOO_LONG;
        }
        if (why >= 0) { sd->dropped[why]++; free(q), free(a); continue; }
        pair *v = tk_realloc(r->kept, (r->n_kept + 1) * sizeof *v);
        if (!v) { free(q), free(a); st = TK_ERR_NOMEM; break; }
        r->kept = v;
        v[r->n_kept++] = (pair){d, ci, li, q, a, NULL, 0};
        sd->kept++;
    }
    tk_qa_free(qa, n_all);
    return st;
}

/* One batched generation: requests [0..n) built by the caller into msgs (one user message each, plus a system). */
static tk_status gen_all(run *r, tk_buf *prompts, size_t n, const uint64_t *keys, int32_t max_tokens, char **texts, bool *over) {
    tk_chat_msg *m = tk_calloc(n ? n : 1, sizeof *m);
    const tk_chat_msg **mp = tk_calloc(n ? n : 1, sizeof *mp);
    size_t *nm = tk_calloc(n ? n : 1, sizeof *nm);
    tk_status st = m && mp && nm ? TK_OK : TK_ERR_NOMEM;
    for (size_t i = 0; i < n && !st; i++) m[i] = (tk_chat_msg){TK_ROLE_USER, prompts[i].data}, mp[i] = &m[i], nm[i] = 1;
    if (!st) st = tk_synth_generate(&r->p->gen, mp, nm, keys, n, max_tokens, texts, over, &r->s->n_generated, &r->s->gen_s);
    free(m), free(mp), free(nm);
    return st;
}

static tk_status ask_pairs(run *r) {
    const tk_synth_params *p = r->p;
    size_t n = 0;
    for (size_t d = 0; d < r->s->n_docs; d++) n += r->n_chunks[d] * p->n_languages;
    tk_buf *pr = tk_calloc(n ? n : 1, sizeof *pr);
    uint64_t *keys = tk_calloc(n ? n : 1, sizeof *keys);
    char **texts = tk_calloc(n ? n : 1, sizeof *texts);
    size_t *where = tk_calloc(n ? n : 1, 3 * sizeof *where);
    bool *over = tk_calloc(n ? n : 1, sizeof *over);
    tk_status st = pr && keys && texts && where && over ? TK_OK : TK_ERR_NOMEM;
    size_t k = 0;
    for (size_t d = 0; d < r->s->n_docs && !st; d++)
        for (size_t c = 0; c < r->n_chunks[d] && !st; c++)
            for (size_t l = 0; l < p->n_languages && !st; l++, k++) {
                st = qa_prompt(r, d, &r->chunks[d][c], p->languages[l], &pr[k]);
                keys[k] = tk_hash_bytes(pr[k].data, pr[k].len) ^ (uint64_t)k;
                where[3 * k] = d, where[3 * k + 1] = c, where[3 * k + 2] = l;
                r->s->docs[d].asked += (uint64_t)p->questions_per_chunk;
            }
    int32_t mt = p->gen.max_tokens > 0 ? p->gen.max_tokens : 96 * p->questions_per_chunk + 64;
    if (!st) st = gen_all(r, pr, n, keys, mt, texts, over);
    for (size_t i = 0; i < n && !st; i++) st = judge(r, where[3 * i], where[3 * i + 1], where[3 * i + 2], texts[i], over[i]);
    for (size_t i = 0; pr && i < n; i++) tk_buf_free(&pr[i]);
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(pr), free(keys), free(texts), free(where), free(over);
    return st;
}

static tk_status ask_paraphrases(run *r) {
    int np = r->p->paraphrases;
    size_t n = np > 0 ? r->n_kept : 0;
    if (!n) return TK_OK;
    tk_buf *pr = tk_calloc(n, sizeof *pr);
    uint64_t *keys = tk_calloc(n, sizeof *keys);
    char **texts = tk_calloc(n, sizeof *texts);
    bool *over = tk_calloc(n, sizeof *over);
    tk_status st = pr && keys && texts && over ? TK_OK : TK_ERR_NOMEM;
    for (size_t i = 0; i < n && !st; i++) {
        st = tk_synth_para_prompt(r->kept[i].q, np, &pr[i]);
        if (!st) st = tk_buf_append(&pr[i], "", 1);
        keys[i] = tk_hash_bytes(pr[i].data, pr[i].len) ^ (uint64_t)i ^ 0x7061726170687261ull;
    }
    if (!st) st = gen_all(r, pr, n, keys, r->p->gen.max_tokens > 0 ? r->p->gen.max_tokens : 48 * np + 32, texts, over);
    for (size_t i = 0; i < n && !st; i++) {
        pair *pp = &r->kept[i];
        tk_synth_doc *sd = &r->s->docs[pp->doc];
        char **items = NULL;
        size_t ni = 0;
        if ((st = tk_synth_parse_list(texts[i], &items, &ni))) break;
        if (!(pp->var = tk_calloc((size_t)np, sizeof *pp->var))) { tk_strings_free(items, ni); st = TK_ERR_NOMEM; break; }
        for (size_t k = 0; k < (size_t)np; k++) {
            if (k >= ni) { sd->para_dropped[TK_PARA_EMPTY]++; continue; }
            tk_para why = tk_para_check(pp->q, items[k], pp->var, pp->n_var, 3.0);
            if (why) { sd->para_dropped[why]++; continue; }
            pp->var[pp->n_var++] = items[k];
            items[k] = NULL;
            sd->variants++;
        }
        tk_strings_free(items, ni);
    }
    for (size_t i = 0; pr && i < n; i++) tk_buf_free(&pr[i]);
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(pr), free(keys), free(texts), free(over);
    return st;
}

static tk_status record(const run *r, const pair *pp, const char *question, bool para, tk_buf *b) {
    const tk_chunk *c = &r->chunks[pp->doc][pp->chunk];
    cJSON *o = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(o, "messages"), *meta = cJSON_AddObjectToObject(o, "metadata");
    bool ok = o && msgs && meta;
    const char *role[3] = {"system", "user", "assistant"}, *content[3] = {r->p->system, question, pp->a};
    for (int k = 0; k < 3 && ok; k++) {
        if (!content[k]) continue;
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddStringToObject(m, "role", role[k]) && cJSON_AddStringToObject(m, "content", content[k]) && cJSON_AddItemToArray(msgs, m);
        if (!ok) cJSON_Delete(m);
    }
    double span[2] = {(double)c->start, (double)c->end};
    cJSON *sp = ok ? cJSON_CreateDoubleArray(span, 2) : NULL;
    ok = ok && sp && cJSON_AddStringToObject(meta, "source", r->s->docs[pp->doc].path) && cJSON_AddStringToObject(meta, "heading", c->heading) &&
         cJSON_AddItemToObject(meta, "span", sp);
    if (ok && c->page > 0) ok = cJSON_AddNumberToObject(meta, "page", c->page) != NULL;
    ok = ok && cJSON_AddStringToObject(meta, "lang", r->p->languages[pp->lang]) &&
         cJSON_AddStringToObject(meta, "variant", para ? "paraphrase" : "original");
    return tk_json_append_line(b, o, ok);
}

static tk_status write_out(run *r, const char *path) {
    tk_outfile of = {0};
    tk_buf b = {0};
    tk_status st = tk_outfile_open(&of, path);
    for (size_t i = 0; i < r->n_kept && !st; i++) {
        const pair *pp = &r->kept[i];
        b.len = 0;
        st = record(r, pp, pp->q, false, &b);
        for (size_t k = 0; k < pp->n_var && !st; k++) st = record(r, pp, pp->var[k], true, &b);
        if (!st) st = tk_outfile_write(&of, b.data, b.len);
        r->s->records += 1 + pp->n_var;
    }
    if (!st) st = tk_outfile_commit(&of);
    else tk_outfile_abort(&of);
    tk_buf_free(&b);
    return st;
}

tk_status tk_synth_run(const char *const *docs, size_t n_docs, const char *out_path, const tk_synth_params *p, tk_synth_summary *out) {
    memset(out, 0, sizeof *out);
    if (!p || (!p->gen.model && !p->gen.fn) || !docs || !n_docs || !out_path || p->questions_per_chunk < 1 || p->paraphrases < 0 || !p->languages ||
        !p->n_languages)
        return tk_fail(TK_ERR_ARG, "synth: needs documents, an output path, a model, languages and at least one question per chunk");
    run r = {.p = p, .s = out};
    out->docs = tk_calloc(n_docs, sizeof *out->docs);
    r.docs = tk_calloc(n_docs, sizeof *r.docs);
    r.chunks = tk_calloc(n_docs, sizeof *r.chunks);
    r.n_chunks = tk_calloc(n_docs, sizeof *r.n_chunks);
    tk_status st = out->docs && r.docs && r.chunks && r.n_chunks ? TK_OK : TK_ERR_NOMEM;
    if (out->docs) out->n_docs = n_docs;
    for (size_t d = 0; d < n_docs && !st; d++) {
        tk_synth_doc *sd = &out->docs[d];
        if (!(sd->path = tk_strdup(docs[d]))) { st = TK_ERR_NOMEM; break; }
        tk_status ds = tk_doc_read(docs[d], TK_DOC_AUTO, &r.docs[d]);
        if (!ds) ds = tk_doc_chunk(&r.docs[d], &p->chunk, &r.chunks[d], &r.n_chunks[d]);
        sd->n_empty_pages = r.docs[d].n_empty_pages;
        sd->n_chunks = r.n_chunks[d];
        if (ds == TK_ERR_NOMEM) st = ds;
        else if (ds) {
            out->n_failed_docs++;
            if (!(sd->error = tk_strdup(tk_last_error()))) st = TK_ERR_NOMEM;
            tk_clear_error();
        }
    }
    if (!st && out->n_failed_docs == n_docs)
        st = tk_fail(TK_ERR_FORMAT, "synth: no document could be read (%s%s)", out->docs[0].error, n_docs > 1 ? "; …" : "");
    if (!st) st = ask_pairs(&r);
    if (!st) st = ask_paraphrases(&r);
    if (!st) st = write_out(&r, out_path);
    for (size_t i = 0; i < r.n_kept; i++) {
        free(r.kept[i].q), free(r.kept[i].a);
        tk_strings_free(r.kept[i].var, r.kept[i].n_var);
    }
    free(r.kept);
    for (size_t d = 0; d < n_docs; d++) {
        if (r.docs) tk_doc_free(&r.docs[d]);
        if (r.chunks) tk_chunks_free(r.chunks[d], r.n_chunks[d]);
    }
    free(r.docs), free(r.chunks), free(r.n_chunks);
    if (st == TK_ERR_NOMEM) tk_fail(st, "synth: out of memory");
    return st;
}

void tk_synth_summary_free(tk_synth_summary *s) {
    if (!s) return;
    for (size_t i = 0; s->docs && i < s->n_docs; i++) free(s->docs[i].path), free(s->docs[i].error);
    free(s->docs);
    memset(s, 0, sizeof *s);
}
