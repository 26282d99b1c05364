/* libFuzzer target: the first byte picks what the rest is: a grader document (parsed; when it
 * parses and runs no program, graded on a fixed sample with a judge that replies with the
 * document itself), a calculate_output formula over the names a, b, c (parsed, then
 * evaluated), or a judge's reply (its score read). Each must fail with a message or succeed,
 * never crash. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include "takumi.h"
#include "eval/grader_internal.h"

static tk_status echo_judge(void *ud, const char *model, const char *const *roles, const char *const *contents, int n, char **out) {
    (void)model, (void)roles, (void)contents, (void)n;
    *out = strdup((const char *)ud);
    return *out ? TK_OK : TK_ERR_NOMEM;
}

static bool runs_program(const tk_grader *g) {
    if (g->type == TK_GRADER_COMMAND) return true;
    for (int i = 0; i < g->n_subs; i++)
        if (runs_program(g->subs[i])) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    if (mode == 0) {
        tk_grader *g = NULL;
        if (tk_grader_parse(text, size - 1, "fuzz/grader.json", &g) != TK_OK) {
            if (!tk_last_error()[0] || g) __builtin_trap();
        } else {
            int n = tk_grader_n_scores(g);
            if (n < 1 || !tk_grader_score_name(g, 0) || tk_grader_score_name(g, n)) __builtin_trap();
            if (!runs_program(g)) {
                cJSON *item = cJSON_Parse("{\"answer\":\"blue\",\"a\":{\"b\":[1,\"x\"]},\"n\":3}");
                tk_judge judge = {echo_judge, text};
                tk_grade r;
                if (tk_grader_grade(g, item, "blue sky", &judge, &r) == TK_OK) {
                    if (r.failed != (r.score != r.score) || !r.error[0] != !r.failed) __builtin_trap();
                    tk_grade_free(&r);
                }
                cJSON_Delete(item);
            }
            tk_grader_free(g);
        }
    } else if (mode == 1) {
        static const char *const names[] = {"a", "b", "c"};
        const double vals[] = {0.5, 1, -2};
        tk_formula *f = NULL;
        if (tk_formula_parse(text, names, 3, "fuzz: ", &f) == TK_OK) {
            (void)tk_formula_eval(f, vals);
            tk_formula_free(f);
        } else if (!tk_last_error()[0] || f) {
            __builtin_trap();
        }
    } else {
        double v;
        if (tk_judge_reply_score(text, &v) && v != v) __builtin_trap();
    }
    free(text);
    return 0;
}
