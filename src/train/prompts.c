/* Prompt sets of reinforcement fine-tuning and self-training (prompts.h): records read through the
 * data toolkit's walker, each rendered up to its last user turn with the generation prompt, and
 * kept as JSON for the graders. */
#include "train/prompts.h"
#include "data/records.h"
#include <cjson/cJSON.h>

typedef struct load_ctx {
    const tk_tokenizer *tok;
    const tk_sft_params *p;
    const char *name;
    int32_t max_prompt;
    const char *context;
    tk_prompt_set *out;
    tk_chat_msg *cm; size_t cap_cm;   /* the messages with the context */
    tk_buf sys;
    size_t cap_items;
    tk_rec_msgs mb;
} load_ctx;

/* The record as the graders' item: the parsed JSON object, or for a TSV / text line
 * {"prompt": the user text, "label": the label when there is one}. */
static char *item_json(const tk_example *ex, size_t k) {
    if (ex->record) return cJSON_PrintUnformatted((const cJSON *)ex->record);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *q = tk_strndup(ex->msgs[k - 1].text, ex->msgs[k - 1].len), *l = ex->label ? tk_strndup(ex->label, ex->label_len) : NULL;
    char *s = NULL;
    if (q && (!ex->label || l) && cJSON_AddStringToObject(o, "prompt", q) && (!l || cJSON_AddStringToObject(o, "label", l)))
        s = cJSON_PrintUnformatted(o);
    free(q);
    free(l);
    cJSON_Delete(o);
    return s;
}

static tk_status add_record(void *ud, const tk_example *ex, uint64_t line) {
    load_ctx *lc = ud;
    tk_prompt_set *ps = lc->out;
    size_t k = ex->n_prompt;                   /* msgs[0..k): the prompt (a reply after it is ignored) */
    while (k > 0 && ex->msgs[k - 1].role != TK_R_USER) k--;
    if (ex->n == 0 || ex->msgs[0].role == TK_R_TEXT || k == 0)
        return tk_fail(TK_ERR_FORMAT, "%s:%llu: no user turn to answer (prompts are conversations ending with a user message, "
                       "as OpenAI's reinforcement fine-tuning format)", lc->name, (unsigned long long)line);
    tk_status st = tk_rec_msgs_set(&lc->mb, ex->msgs, k);
    if (st) return st;
    const tk_chat_msg *msgs = lc->mb.m;
    size_t nm = k;
    if (lc->context) {   /* the context first in the system message */
        if (k + 1 > lc->cap_cm) {
            tk_chat_msg *v = tk_realloc(lc->cm, (k + 1) * sizeof *v);
            if (!v) return TK_ERR_NOMEM;
            lc->cm = v;
            lc->cap_cm = k + 1;
        }
        size_t i = 0;
        lc->sys.len = 0;
        st = tk_buf_printf(&lc->sys, "%s", lc->context);
        if (!st && lc->mb.m[0].role == TK_ROLE_SYSTEM) st = tk_buf_printf(&lc->sys, "\n\n%s", lc->mb.m[i++].content);
        if (!st) st = tk_buf_append(&lc->sys, "", 1);
        if (st) return st;
        nm = 0;
        lc->cm[nm++] = (tk_chat_msg){TK_ROLE_SYSTEM, lc->sys.data};
        for (; i < k; i++) lc->cm[nm++] = lc->mb.m[i];
        msgs = lc->cm;
    }
    tk_chat_tokens ct = {0};
    if ((st = tk_chat_render(lc->tok, lc->p->family, msgs, nm, true, &ct))) {
        tk_chat_tokens_free(&ct);
        return tk_fail_ctx(st, "%s:%llu: ", lc->name, (unsigned long long)line);
    }
    if ((int64_t)ct.ids.len > lc->max_prompt) {
        ps->n_long++;
        tk_chat_tokens_free(&ct);
        return TK_OK;
    }
    if (ps->d.n + 1 > (int64_t)lc->cap_items) {
        size_t cap = lc->cap_items ? 2 * lc->cap_items : 64;
        char **v = tk_realloc(ps->item, cap * sizeof *v);
        if (!v) { tk_chat_tokens_free(&ct); return TK_ERR_NOMEM; }
        ps->item = v;
        lc->cap_items = cap;
    }
    char *item = item_json(ex, k);
    if (!item) { tk_chat_tokens_free(&ct); return TK_ERR_NOMEM; }
    st = tk_sft_add_prompt(&ps->d, ct.ids.data, (int64_t)ct.ids.len, line);
    tk_chat_tokens_free(&ct);
    if (st) { free(item); return st; }
    ps->item[ps->d.n - 1] = item;
    return TK_OK;
}

tk_status tk_prompt_set_load(const char *path, const tk_tokenizer *tok, const tk_sft_params *p, int32_t max_prompt, const char *context,
                             tk_prompt_set *out) {
    memset(out, 0, sizeof *out);
    if (!path || !tok || !p || max_prompt < 1) return tk_fail(TK_ERR_ARG, "prompts: NULL path, tokenizer or parameters");
    load_ctx lc = {.tok = tok, .p = p, .name = path, .max_prompt = max_prompt, .context = context, .out = out};
    tk_rec_src s = {.path = path};
    tk_data_format fmt = p->format;
    uint64_t nrec = 0;
    tk_status st = tk_rec_each(&s, &fmt, TK_REC_PROMPTS, &nrec, add_record, &lc);
    tk_rec_msgs_free(&lc.mb);
    free(lc.cm);
    tk_buf_free(&lc.sys);
    out->d.format = fmt;
    out->d.stats.n_records = nrec;
    if (!st && out->d.n == 0)
        st = out->n_long ? tk_fail(TK_ERR_ARG, "%s: all %lld prompts are longer than %d tokens (raise --max-seq-len or lower --max-new-tokens)",
                                   path, (long long)out->n_long, max_prompt)
                         : tk_fail(TK_ERR_FORMAT, "%s: no prompts", path);
    if (st) tk_prompt_set_free(out);
    return st;
}

void tk_prompt_set_free(tk_prompt_set *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->d.n; i++) free(s->item[i]);
    free(s->item);
    tk_sft_free(&s->d);
    memset(s, 0, sizeof *s);
}

tk_status tk_prompt_set_split(tk_prompt_set *s, double frac, uint64_t seed, tk_prompt_set *val) {
    memset(val, 0, sizeof *val);
    int64_t n = s->d.n;
    tk_status st = tk_sft_split(&s->d, frac, seed, &val->d);
    if (st) return st;
    /* tk_sft_split keeps file order on both sides: walk the lines to send each item where its prompt went */
    char **tr = tk_malloc((size_t)(n ? n : 1) * sizeof *tr), **va = tk_malloc((size_t)(n ? n : 1) * sizeof *va);
    if (!tr || !va) { free(tr); free(va); return TK_ERR_NOMEM; }
    int64_t a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) {
        /* lines are unique and increasing in both halves: item i went to the half whose next line is smaller */
        if (b < val->d.n && (a >= s->d.n || val->d.line[b] < s->d.line[a])) va[b++] = s->item[i];
        else tr[a++] = s->item[i];
    }
    free(s->item);
    s->item = tr;
    val->item = va;
    val->d.format = s->d.format;
    return TK_OK;
}
