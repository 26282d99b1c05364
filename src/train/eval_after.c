/* --eval-config: `takumi eval` on the trained adapter when training ends. The file is loaded before
 * training, so a typo fails in seconds, not after the run; the results land in RUN/eval/ and their
 * table and target verdicts in the events (and so in the CLI's output and metrics.jsonl's events). */
#include "train/run.h"
#include "takumi/eval.h"

tk_status tk_run_eval_load(tk_run *r) {
    if (!r->c.eval_config) return TK_OK;
    if (r->c.method == TK_TRAIN_FULL || r->reward)
        return tk_fail(TK_ERR_ARG, "--eval-config evaluates the trained adapter: %s has none (export the model, then run takumi eval on it)",
                       r->reward ? "a reward model" : "full fine-tuning");
    return tk_eval_config_load(r->c.eval_config, &r->evalc);
}

/* The evaluation of adapter into dir, its table and verdicts as events (what: "eval" or "eval step N"). */
static tk_status eval_into(tk_run *r, const char *adapter, const char *dir, tk_buf *keep) {
    tk_eval_params *p = tk_eval_config_params(r->evalc);
    p->model = r->c.model;
    p->tokenizer = r->c.tokenizer;
    p->adapter = adapter;
    p->template_name = r->c.template_name;
    tk_eval_result *res = NULL;
    tk_buf text = {0};
    tk_status st = adapter && dir ? TK_OK : TK_ERR_NOMEM;
    if (!st) tk_run_emitf(r, TK_EV_INFO, "eval", true, "evaluating %s on %s (--eval-config %s)", adapter, p->data, r->c.eval_config);
    if (!st) st = tk_eval_run(p, &res);
    if (!st) st = tk_eval_write_dir(res, dir);
    if (!st) st = tk_eval_text(res, &text);
    if (!st) tk_run_emitf(r, TK_EV_INFO, "eval", true, "%.*s", (int)text.len, text.data);
    if (!st && keep) { tk_buf_free(keep); *keep = text; text = (tk_buf){0}; }
    int missed = 0;
    for (int i = 0; !st && i < tk_eval_config_n_targets(r->evalc); i++) {
        const tk_eval_target *t = tk_eval_config_target(r->evalc, i);
        char s[160];
        double v;
        bool met = tk_eval_target_met(t, res, &v);
        missed += !met;
        tk_eval_target_format(t, s, sizeof s);
        tk_run_emitf(r, met ? TK_EV_INFO : TK_EV_WARNING, "target", true, "target %s: %s (value %.6g)", s, met ? "met" : "NOT MET", v);
    }
    if (!st) tk_run_emitf(r, TK_EV_INFO, "eval", true, "evaluation: %s%s", dir,
                          tk_eval_config_n_targets(r->evalc) ? (missed ? " — targets NOT MET" : " — every target met") : "");
    if (st) st = tk_fail_ctx(st, "--eval-config: ");
    tk_buf_free(&text);
    tk_eval_result_free(res);
    return st;
}

tk_status tk_run_eval_after(tk_run *r) {
    if (!r->evalc) return TK_OK;
    char *adapter = tk_path_join(r->c.out, "adapter"), *dir = tk_path_join(r->c.out, "eval");
    tk_status st = adapter && dir ? eval_into(r, adapter, dir, &r->eval_text) : TK_ERR_NOMEM;
    free(adapter); free(dir);
    return st;
}

tk_status tk_run_eval_step(tk_run *r) {
    int64_t every = r->evalc ? tk_eval_config_every(r->evalc) : 0;
    if (!every || r->st.step % every || r->st.step >= r->st.total_steps) return TK_OK;
    /* the adapter as it is now, in PEFT layout, next to its results: RUN/eval/step-N/{adapter/, results.json, ...} */
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads);
    if (!n_ads || !ads[0].peft->method->save_peft) return TK_OK;
    char name[64];
    snprintf(name, sizeof name, "eval/step-%lld", (long long)r->st.step);
    char *dir = tk_path_join(r->c.out, name), *adapter = dir ? tk_path_join(dir, "adapter") : NULL;
    tk_status st = adapter ? tk_mkdir_p(dir) : TK_ERR_NOMEM;
    if (!st) st = ads[0].peft->method->save_peft(ads[0].peft->state, r->m, adapter, NULL);
    if (!st) st = eval_into(r, adapter, dir, NULL);
    free(dir); free(adapter);
    return st;
}
