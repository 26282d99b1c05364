/* text_similarity graders: waits for the text metrics (src/eval/textmetrics.h). */
#include "eval/grader_internal.h"

tk_status tk_grader_parse_similarity(tk_grader *g, const cJSON *j, const char *prefix) {
    (void)g, (void)j;
    return tk_fail(TK_ERR_UNSUPPORTED, "%stype: text_similarity graders need the text metrics, not built yet", prefix);
}

tk_status tk_grader_similarity_score(const tk_grader *g, const char *input, const char *reference, double *score,
                                     bool *failed, char *err, size_t errlen) {
    (void)g, (void)input, (void)reference, (void)score, (void)failed, (void)err, (void)errlen;
    return tk_fail(TK_ERR_INTERNAL, "text_similarity without the text metrics");
}
