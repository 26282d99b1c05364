/* The summary of `takumi data synth`: per document, pairs asked for, parsed, kept and dropped by
 * reason, paraphrases kept and dropped, as text or as one JSON object. */
#include "data/docs_internal.h"
#include "data/data_internal.h"

static tk_status reasons(tk_buf *b, const tk_synth_doc *d) {
    tk_status st = TK_OK;
    int any = 0;
    for (int k = 0; k < TK_SYN_REASONS && !st; k++)
        if (d->dropped[k]) st = tk_buf_printf(b, "%s %s %llu", any++ ? "," : "; dropped:", tk_synth_reason_name(k), (unsigned long long)d->dropped[k]);
    any = 0;
    for (int k = 1; k < TK_PARA_COUNT && !st; k++)
        if (d->para_dropped[k]) st = tk_buf_printf(b, "%s %s %llu", any++ ? "," : "; paraphrases dropped:", tk_para_name(k), (unsigned long long)d->para_dropped[k]);
    return st;
}

tk_status tk_synth_summary_text(const tk_synth_summary *s, tk_buf *out) {
    tk_status st = TK_OK;
    tk_synth_doc t = {0};
    for (size_t i = 0; i < s->n_docs && !st; i++) {
        const tk_synth_doc *d = &s->docs[i];
        if (d->error) { st = tk_buf_printf(out, "%s: skipped: %s\n", d->path, d->error); continue; }
        st = tk_buf_printf(out, "%s: %zu chunk%s; pairs asked %llu, parsed %llu, kept %llu (+%llu paraphrases)", d->path, d->n_chunks,
                           d->n_chunks == 1 ? "" : "s", (unsigned long long)d->asked, (unsigned long long)d->parsed,
                           (unsigned long long)d->kept, (unsigned long long)d->variants);
        if (!st && d->n_empty_pages) st = tk_buf_printf(out, "; %d page%s without text", d->n_empty_pages, d->n_empty_pages == 1 ? "" : "s");
        if (!st) st = reasons(out, d);
        if (!st) st = tk_buf_append(out, "\n", 1);
        t.asked += d->asked, t.parsed += d->parsed, t.kept += d->kept, t.variants += d->variants;
        for (int k = 0; k < TK_SYN_REASONS; k++) t.dropped[k] += d->dropped[k];
        for (int k = 0; k < TK_PARA_COUNT; k++) t.para_dropped[k] += d->para_dropped[k];
    }
    if (!st)
        st = tk_buf_printf(out, "total: %zu document%s (%llu skipped); pairs asked %llu, parsed %llu, kept %llu (+%llu paraphrases) = %llu records",
                           s->n_docs, s->n_docs == 1 ? "" : "s", (unsigned long long)s->n_failed_docs, (unsigned long long)t.asked,
                           (unsigned long long)t.parsed, (unsigned long long)t.kept, (unsigned long long)t.variants,
                           (unsigned long long)s->records);
    if (!st) st = reasons(out, &t);
    if (!st) st = tk_buf_printf(out, "\ngenerated %lld tokens in %.1f s\n", (long long)s->n_generated, s->gen_s);
    return st;
}

static cJSON *counts(const uint64_t *v, int n, const char *(*name)(int), int from) {
    cJSON *o = cJSON_CreateObject();
    for (int k = from; o && k < n; k++)
        if (!cJSON_AddNumberToObject(o, name(k), (double)v[k])) { cJSON_Delete(o); return NULL; }
    return o;
}
static const char *para_name(int k) { return tk_para_name((tk_para)k); }

tk_status tk_synth_summary_json(const tk_synth_summary *s, tk_buf *out) {
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "documents");
    bool ok = o && a;
    for (size_t i = 0; i < s->n_docs && ok; i++) {
        const tk_synth_doc *d = &s->docs[i];
        cJSON *j = cJSON_CreateObject();
        ok = j && cJSON_AddItemToArray(a, j) && cJSON_AddStringToObject(j, "path", d->path);
        if (ok && d->error) { ok = cJSON_AddStringToObject(j, "error", d->error) != NULL; continue; }
        cJSON *dr = counts(d->dropped, TK_SYN_REASONS, tk_synth_reason_name, 0), *pd = counts(d->para_dropped, TK_PARA_COUNT, para_name, 1);
        ok = ok && cJSON_AddNumberToObject(j, "chunks", (double)d->n_chunks) && cJSON_AddNumberToObject(j, "empty_pages", d->n_empty_pages) &&
             cJSON_AddNumberToObject(j, "asked", (double)d->asked) && cJSON_AddNumberToObject(j, "parsed", (double)d->parsed) &&
             cJSON_AddNumberToObject(j, "kept", (double)d->kept) && cJSON_AddNumberToObject(j, "paraphrases", (double)d->variants);
        if (ok && dr && pd) { cJSON_AddItemToObject(j, "dropped", dr); cJSON_AddItemToObject(j, "paraphrases_dropped", pd); }
        else { cJSON_Delete(dr), cJSON_Delete(pd); ok = false; }
    }
    ok = ok && cJSON_AddNumberToObject(o, "records", (double)s->records) && cJSON_AddNumberToObject(o, "skipped_documents", (double)s->n_failed_docs) &&
         cJSON_AddNumberToObject(o, "generated_tokens", (double)s->n_generated) && cJSON_AddNumberToObject(o, "generation_seconds", s->gen_s);
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!txt) return tk_fail(TK_ERR_NOMEM, "synth summary: out of memory");
    tk_status st = tk_buf_printf(out, "%s", txt);
    free(txt);
    return st;
}
