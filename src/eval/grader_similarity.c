/* text_similarity graders: the answer against a reference with one of OpenAI's metrics, on a
 * 0..1 scale: fuzzy_match (rapidfuzz WRatio / 100), bleu (sacrebleu's sentence BLEU / 100),
 * rouge_1..rouge_5 and rouge_l (rouge-score's F-measure). Character tokens when the reference
 * is CJK (tk_text_lang_guess). gleu, meteor and cosine are refused when the document is read. */
#include "eval/grader_internal.h"
#include "eval/textmetrics.h"
#include <stdio.h>

enum { M_FUZZY, M_BLEU, M_ROUGE1, M_ROUGE5 = M_ROUGE1 + 4, M_ROUGEL };
static const char *const metrics[] = {"fuzzy_match", "bleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"};
static const char *const unsupported[] = {"gleu", "meteor", "cosine"};

tk_status tk_grader_parse_similarity(tk_grader *g, const cJSON *j, const char *prefix) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "evaluation_metric");
    if (!cJSON_IsString(m))
        return tk_fail(TK_ERR_FORMAT, "%sevaluation_metric: missing (fuzzy_match, bleu, rouge_1 .. rouge_5 or rouge_l)", prefix);
    for (int i = 0; i < (int)(sizeof metrics / sizeof metrics[0]); i++)
        if (!strcmp(m->valuestring, metrics[i])) { g->metric = i; return TK_OK; }
    for (int i = 0; i < (int)(sizeof unsupported / sizeof unsupported[0]); i++)
        if (!strcmp(m->valuestring, unsupported[i]))
            return tk_fail(TK_ERR_UNSUPPORTED, "%sevaluation_metric: '%s' is not supported (fuzzy_match, bleu, rouge_1 .. rouge_5 or rouge_l)",
                           prefix, m->valuestring);
    return tk_fail(TK_ERR_FORMAT, "%sevaluation_metric: unknown metric '%s' (fuzzy_match, bleu, rouge_1 .. rouge_5 or rouge_l)", prefix,
                   m->valuestring);
}

tk_status tk_grader_similarity_score(const tk_grader *g, const char *input, const char *reference, double *score,
                                     bool *failed, char *err, size_t errlen) {
    tk_status st = tk_text_check(input, "the answer");
    if (!st) st = tk_text_check(reference, "the reference");
    tk_text_lang lang = tk_text_lang_guess(&reference, 1);
    tk_prf prf = {0};
    if (st) {
    } else if (g->metric == M_FUZZY) {
        *score = tk_fuzzy_match(input, reference);
    } else if (g->metric == M_BLEU) {
        tk_bleu_stats s = {0};
        if (!(st = tk_bleu_add(&s, input, reference, lang))) *score = tk_bleu_sentence(&s) / 100;
    } else {
        st = g->metric == M_ROUGEL ? tk_rouge_l(input, reference, lang, &prf)
                                   : tk_rouge_n(input, reference, g->metric - M_ROUGE1 + 1, lang, &prf);
        if (!st) *score = prf.f;
    }
    if (st == TK_ERR_NOMEM) return st;
    if (st) {
        *failed = true;
        snprintf(err, errlen, "%s", tk_last_error());
    }
    return TK_OK;
}
