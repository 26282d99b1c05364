/* Unblinding a review: the page's judgements + key.json + items.jsonl -> results.json (win rate of
 * system A with a Wilson interval), preferences.jsonl (DPO pairs) and sft.jsonl (the corrections). */
#include "eval/review_internal.h"
#include "data/data_internal.h"
#include <math.h>
#include <inttypes.h>

enum { CHOICE_NONE = 0, CHOICE_LEFT, CHOICE_RIGHT, CHOICE_TIE };

typedef struct judged { int choice; char *correction; } judged;

typedef struct collect_ctx {
    const char *rid;
    const tk_review_set *items;
    judged *j;
} collect_ctx;

void tk_review_wilson(double p, double n, double *lo, double *hi) {
    const double z = 1.959963984540054, z2 = z * z;
    double den = 1 + z2 / n, center = (p + z2 / (2 * n)) / den;
    double half = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den;
    *lo = fmax(0.0, center - half);
    *hi = fmin(1.0, center + half);
}

/* key.json: the review id, the systems' names and, per item, the side system A is shown on (a_left). */
typedef struct key_file { cJSON *root; const char *rid, *name_a, *name_b; bool *a_left; size_t n; } key_file;

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static tk_status read_key(const char *path, const tk_review_set *items, key_file *k) {
    char *text = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(path, &text, &len);
    if (st) return st;
    k->root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(k->root, "items");
    k->rid = str_of(k->root, "review");
    k->name_a = str_of(k->root, "a");
    k->name_b = str_of(k->root, "b");
    if (!cJSON_IsObject(k->root) || !k->rid || !k->name_a || !k->name_b || !cJSON_IsArray(list))
        return tk_fail(TK_ERR_FORMAT, "%s: not a review key (expected an object with \"review\", \"a\", \"b\" and \"items\")", path);
    k->n = (size_t)cJSON_GetArraySize(list);
    if (k->n != items->n)
        return tk_fail(TK_ERR_FORMAT, "%s has %zu items, %s beside it %zu: the files belong to different reviews", path, k->n,
                       TK_REVIEW_ITEMS, items->n);
    if (!(k->a_left = tk_calloc(k->n ? k->n : 1, sizeof *k->a_left))) return TK_ERR_NOMEM;
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const char *id = str_of(e, "id"), *side = str_of(e, "a");
        if (!id || !side || (strcmp(side, "left") && strcmp(side, "right")))
            return tk_fail(TK_ERR_FORMAT, "%s: item %zu needs \"id\" and \"a\": \"left\" or \"right\"", path, i + 1);
        if (strcmp(id, items->items[i].id))
            return tk_fail(TK_ERR_FORMAT, "%s: item %zu is \"%.60s\", %s has \"%.60s\" there: the files belong to different reviews",
                           path, i + 1, id, TK_REVIEW_ITEMS, items->items[i].id);
        k->a_left[i++] = !strcmp(side, "left");
    }
    return TK_OK;
}

static tk_status judgement_line(void *ud, const cJSON *rec, uint64_t line) {
    (void)line;
    collect_ctx *c = ud;
    const char *rid = str_of(rec, "review"), *id = str_of(rec, "id"), *choice = str_of(rec, "choice");
    if (!rid) return tk_fail(TK_ERR_FORMAT, "no \"review\" string (the page writes the review id on every line)");
    if (strcmp(rid, c->rid))
        return tk_fail(TK_ERR_FORMAT, "a judgement of review %.40s, but the key is review %s: these judgements belong to another page",
                       rid, c->rid);
    if (!id) return tk_fail(TK_ERR_FORMAT, "no \"id\" string");
    size_t i = 0;
    while (i < c->items->n && strcmp(c->items->items[i].id, id)) i++;
    if (i == c->items->n) return tk_fail(TK_ERR_FORMAT, "unknown id \"%.60s\" (not an item of this review)", id);
    int ch = !choice ? CHOICE_NONE : !strcmp(choice, "left") ? CHOICE_LEFT : !strcmp(choice, "right") ? CHOICE_RIGHT
                                   : !strcmp(choice, "tie") ? CHOICE_TIE : CHOICE_NONE;
    if (ch == CHOICE_NONE)
        return tk_fail(TK_ERR_FORMAT, "item \"%.60s\": \"choice\" is %s%.20s%s, expected \"left\", \"right\" or \"tie\"", id,
                       choice ? "\"" : "", choice ? choice : "missing", choice ? "\"" : "");
    const cJSON *corr = cJSON_GetObjectItemCaseSensitive(rec, "correction");
    if (corr && !cJSON_IsString(corr) && !cJSON_IsNull(corr))
        return tk_fail(TK_ERR_FORMAT, "item \"%.60s\": \"correction\" is %s, expected a string", id, tk_json_type_name(corr));
    char *text = NULL;
    if (cJSON_IsString(corr) && !tk_text_blank(corr->valuestring, strlen(corr->valuestring)) &&
        !(text = tk_strdup(corr->valuestring)))
        return TK_ERR_NOMEM;
    free(c->j[i].correction);                /* a later judgement of the same item replaces the earlier one */
    c->j[i] = (judged){ch, text};
    return TK_OK;
}

/* The answer of system A (a) or B (!a) of item i. */
static const char *answer(const key_file *k, const tk_review_item *it, size_t i, bool a) {
    return k->a_left[i] == a ? it->a : it->b;
}

static tk_status append_side(tk_buf *b, const char *key, const tk_review_item *it, const char *text) {
    tk_status st = tk_buf_printf(b, ",\"%s\":", key);
    if (st) return st;
    if (it->text_prompt) return tk_json_append_str(b, text, strlen(text));
    st = TK_REVIEW_LIT(b, "[{\"role\":\"assistant\",\"content\":");
    if (!st) st = tk_json_append_str(b, text, strlen(text));
    return st ? st : TK_REVIEW_LIT(b, "}]");
}

static tk_status outputs(const key_file *k, const tk_review_set *items, const judged *j, tk_review_results *r, tk_buf *res,
                         tk_buf *pref, tk_buf *sft) {
    tk_status st = TK_OK;
    for (size_t i = 0; !st && i < items->n; i++) {
        const tk_review_item *it = &items->items[i];
        if (j[i].choice == CHOICE_NONE) continue;
        r->n_judged++;
        if (j[i].choice == CHOICE_TIE) r->ties++;
        else {
            bool a_won = (j[i].choice == CHOICE_LEFT) == k->a_left[i];
            if (a_won) r->wins_a++;
            else r->wins_b++;
            st = TK_REVIEW_LIT(pref, "{\"prompt\":");
            if (!st) st = tk_review_append_prompt(pref, it);
            if (!st) st = append_side(pref, "chosen", it, answer(k, it, i, a_won));
            if (!st) st = append_side(pref, "rejected", it, answer(k, it, i, !a_won));
            if (!st) st = TK_REVIEW_LIT(pref, "}\n");
        }
        if (!st && j[i].correction) {
            r->n_corrections++;
            st = TK_REVIEW_LIT(sft, "{\"messages\":");
            if (!st) st = tk_review_append_messages(sft, it, j[i].correction);
            if (!st) st = TK_REVIEW_LIT(sft, "}\n");
        }
    }
    if (st) return st;
    r->win_rate = ((double)r->wins_a + 0.5 * (double)r->ties) / (double)r->n_judged;
    tk_review_wilson(r->win_rate, (double)r->n_judged, &r->ci_low, &r->ci_high);
    st = tk_buf_printf(res, "{\n  \"review\": \"%s\",\n  \"a\": ", k->rid);
    if (!st) st = tk_json_append_str(res, k->name_a, strlen(k->name_a));
    if (!st) st = TK_REVIEW_LIT(res, ",\n  \"b\": ");
    if (!st) st = tk_json_append_str(res, k->name_b, strlen(k->name_b));
    if (!st)
        st = tk_buf_printf(res,
                           ",\n  \"n_items\": %zu,\n  \"n_judged\": %zu,\n  \"wins_a\": %zu,\n  \"wins_b\": %zu,\n  \"ties\": %zu,\n"
                           "  \"win_rate_a\": %.6f,\n  \"ci95\": [%.6f, %.6f],\n  \"interval\": \"wilson\",\n"
                           "  \"ties_count\": 0.5,\n  \"n_preferences\": %zu,\n  \"n_corrections\": %zu\n}\n",
                           r->n_items, r->n_judged, r->wins_a, r->wins_b, r->ties, r->win_rate, r->ci_low, r->ci_high,
                           r->wins_a + r->wins_b, r->n_corrections);
    return st;
}

tk_status tk_review_collect(const char *judgements, const char *dir, tk_review_results *res) {
    if (!judgements || !dir) return tk_fail(TK_ERR_ARG, "tk_review_collect: NULL argument");
    tk_review_results r = {0};
    tk_review_set items = {0};
    key_file k = {0};
    judged *j = NULL;
    tk_buf out = {0}, pref = {0}, sft = {0};
    char *ipath = tk_path_join(dir, TK_REVIEW_ITEMS), *kpath = tk_path_join(dir, TK_REVIEW_KEY);
    tk_status st = ipath && kpath ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_review_read_fields(ipath, "left", "right", &items);
    if (!st) st = read_key(kpath, &items, &k);
    if (!st && !(j = tk_calloc(items.n, sizeof *j))) st = TK_ERR_NOMEM;
    uint64_t n_lines = 0;
    collect_ctx c = {.rid = k.rid, .items = &items, .j = j};
    if (!st) st = tk_review_each_line(judgements, judgement_line, &c, &n_lines);
    if (!st && n_lines == 0) st = tk_fail(TK_ERR_FORMAT, "%s holds no judgements", judgements);
    r.n_items = items.n;
    if (!st) {
        snprintf(r.review_id, sizeof r.review_id, "%s", k.rid);
        snprintf(r.name_a, sizeof r.name_a, "%s", k.name_a);
        snprintf(r.name_b, sizeof r.name_b, "%s", k.name_b);
    }
    if (!st) st = outputs(&k, &items, j, &r, &out, &pref, &sft);
    if (!st) st = tk_review_write_in(dir, "preferences.jsonl", &pref);
    if (!st) st = tk_review_write_in(dir, "sft.jsonl", &sft);
    if (!st) st = tk_review_write_in(dir, "results.json", &out);
    if (!st && res) *res = r;
    for (size_t i = 0; j && i < items.n; i++) free(j[i].correction);
    free(j);
    tk_buf_free(&out);
    tk_buf_free(&pref);
    tk_buf_free(&sft);
    cJSON_Delete(k.root);
    free(k.a_left);
    tk_review_set_free(&items);
    free(ipath);
    free(kpath);
    return st;
}
