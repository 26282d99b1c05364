/* `takumi data augment`: paraphrased user turns for existing chat data. Every chat record is
 * copied as it is; after it come up to N copies whose last user turn is a paraphrase written by
 * the model (one batched generation over all records), answers unchanged. Paraphrases that are
 * empty, identical to the original, too long or repeated are dropped and counted; lines that are
 * not chat records are counted and not copied. */
#include "data/docs_internal.h"
#include "data/data_internal.h"

tk_augment_params tk_augment_default_params(void) {
    tk_augment_params p = {0};
    p.gen = (tk_synth_gen){.temperature = 0.7f, .seed = 0, .max_batch = 16, .max_tokens = 0, .family = TK_CHAT_UNKNOWN};
    p.paraphrases = 2;
    p.max_ratio = 3.0;
    return p;
}

typedef struct arec { char *line; uint64_t lineno; cJSON *j; int user; const char *question; } arec;

/* The index of the last user message with string content in j's "messages", or -1. */
static int last_user(const cJSON *j, const char **text) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "messages");
    int n = cJSON_GetArraySize(m), found = -1;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(m, i), *r = cJSON_GetObjectItemCaseSensitive(e, "role"),
                    *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (cJSON_IsString(r) && !strcmp(r->valuestring, "user") && cJSON_IsString(c)) found = i, *text = c->valuestring;
    }
    return found;
}

static tk_status read_all(const char *path, arec **out, size_t *n, tk_augment_summary *s) {
    tk_reader *rd;
    tk_status st = tk_reader_open(path, TK_DATA_JSONL, TK_DATA_DEFAULT_MAX_LINE, &rd);
    if (st) return st;
    tk_rfinds fs = {0};
    tk_example ex = {0};
    tk_raw raw;
    bool has;
    while (!st && !(st = tk_reader_next(rd, &raw, &has)) && has) {
        if (raw.kind == TK_RAW_BLANK) continue;
        tk_rf_clear(&fs);
        tk_example_reset(&ex);
        cJSON *j = NULL;
        bool nul;
        if (raw.kind == TK_RAW_RECORD && tk_utf8_check(raw.data, raw.len, &nul) == raw.len &&
            (j = tk_json_parse(raw.data, raw.len, raw.line, &fs)) != NULL && tk_data_classify(j) == TK_DATA_CHAT)
            tk_data_validate(TK_DATA_CHAT, j, &ex, &fs);
        else tk_rf_add(&fs, TK_DATA_ERROR, "not_chat", "not a chat record");
        if (fs.n_errors) {
            if (!s->bad_lines++) s->first_bad_line = raw.line;
            cJSON_Delete(j);
            continue;
        }
        arec *v = tk_realloc(*out, (*n + 1) * sizeof *v);
        char *line = tk_strndup(raw.data, raw.len);
        if (!v || !line) { free(line); cJSON_Delete(j); if (v) *out = v; st = TK_ERR_NOMEM; break; }
        *out = v;
        const char *q = NULL;
        int u = last_user(j, &q);
        v[(*n)++] = (arec){line, raw.line, j, u, q};
        s->records++;
        if (u < 0) s->no_user++;
    }
    tk_rf_clear(&fs);
    tk_example_free(&ex);
    tk_reader_close(rd);
    return st;
}

/* A copy of record r with its last user turn replaced by q and "metadata": {"paraphrase_of_line": N}, as one line. */
static tk_status variant(const arec *r, const char *q, tk_buf *b) {
    cJSON *j = cJSON_Duplicate(r->j, true);
    if (!j) return TK_ERR_NOMEM;
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "messages"), r->user);
    cJSON *s = cJSON_CreateString(q), *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    bool ok = s && cJSON_ReplaceItemInObjectCaseSensitive(m, "content", s);
    if (!ok) cJSON_Delete(s);
    if (ok && !meta) ok = (meta = cJSON_AddObjectToObject(j, "metadata")) != NULL;
    if (ok && cJSON_IsObject(meta)) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "paraphrase_of_line");
        ok = cJSON_AddNumberToObject(meta, "paraphrase_of_line", (double)r->lineno) != NULL;
    }
    return tk_json_append_line(b, j, ok);
}

tk_status tk_augment_run(const char *in_path, const char *out_path, const tk_augment_params *p, tk_augment_summary *out) {
    memset(out, 0, sizeof *out);
    if (!p || (!p->gen.model && !p->gen.fn) || !in_path || !out_path || p->paraphrases < 1)
        return tk_fail(TK_ERR_ARG, "augment: needs an input, an output, a model and at least one paraphrase");
    arec *v = NULL;
    size_t n = 0, nq = 0;
    tk_status st = read_all(in_path, &v, &n, out);
    if (!st && !n)
        st = out->bad_lines ? tk_fail(TK_ERR_FORMAT, "%s: line %llu: not a chat record ({\"messages\": [...]}), and no line is; convert it first (takumi data convert --to chat)",
                                      in_path, (unsigned long long)out->first_bad_line)
                            : tk_fail(TK_ERR_FORMAT, "%s: no records (an empty file)", in_path);
    for (size_t i = 0; i < n; i++) nq += v[i].user >= 0;
    tk_buf *pr = tk_calloc(nq ? nq : 1, sizeof *pr);
    tk_chat_msg *m = tk_calloc(nq ? nq : 1, sizeof *m);
    const tk_chat_msg **mp = tk_calloc(nq ? nq : 1, sizeof *mp);
    size_t *nm = tk_calloc(nq ? nq : 1, sizeof *nm);
    uint64_t *keys = tk_calloc(nq ? nq : 1, sizeof *keys);
    char **texts = tk_calloc(nq ? nq : 1, sizeof *texts);
    if (!st && !(pr && m && mp && nm && keys && texts)) st = TK_ERR_NOMEM;
    for (size_t i = 0, k = 0; i < n && !st; i++) {
        if (v[i].user < 0) continue;
        st = tk_synth_para_prompt(v[i].question, p->paraphrases, &pr[k]);
        if (!st) st = tk_buf_append(&pr[k], "", 1);
        m[k] = (tk_chat_msg){TK_ROLE_USER, pr[k].data}, mp[k] = &m[k], nm[k] = 1;
        keys[k] = tk_hash_bytes(pr[k].data, pr[k].len) ^ v[i].lineno;
        k++;
    }
    int32_t mt = p->gen.max_tokens > 0 ? p->gen.max_tokens : 48 * p->paraphrases + 32;
    if (!st) st = tk_synth_generate(&p->gen, mp, nm, keys, nq, mt, texts, NULL, &out->n_generated, &out->gen_s);
    tk_outfile of = {0};
    tk_buf b = {0};
    if (!st) st = tk_outfile_open(&of, out_path);
    for (size_t i = 0, k = 0; i < n && !st; i++) {
        b.len = 0;
        st = tk_buf_printf(&b, "%s\n", v[i].line);
        if (!st && v[i].user >= 0) {
            char **items = NULL, *kept[64];
            size_t ni = 0, nk = 0;
            st = tk_synth_parse_list(texts[k++], &items, &ni);
            for (size_t t = 0; t < (size_t)p->paraphrases && !st; t++) {
                if (t >= ni) { out->dropped[TK_PARA_EMPTY]++; continue; }
                tk_para why = tk_para_check(v[i].question, items[t], kept, nk, p->max_ratio);
                if (why) { out->dropped[why]++; continue; }
                if (nk < 64) kept[nk++] = items[t];
                st = variant(&v[i], items[t], &b);
                out->added++;
            }
            tk_strings_free(items, ni);
        }
        if (!st) st = tk_outfile_write(&of, b.data, b.len);
    }
    if (!st) st = tk_outfile_commit(&of);
    else tk_outfile_abort(&of);
    tk_buf_free(&b);
    for (size_t i = 0; i < nq && pr; i++) tk_buf_free(&pr[i]);
    for (size_t i = 0; i < nq && texts; i++) free(texts[i]);
    free(pr), free(m), free(mp), free(nm), free(keys), free(texts);
    for (size_t i = 0; i < n; i++) free(v[i].line), cJSON_Delete(v[i].j);
    free(v);
    if (st == TK_ERR_NOMEM) tk_fail(st, "augment: out of memory");
    return st;
}
