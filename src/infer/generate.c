/* The generation loop: prompt evaluation reusing the session's cached prefix, sampling,
 * single-token decode, EOS / end-of-turn stops; the text side (streaming, stop strings)
 * is src/infer/gen_text.c. */
#include "model/llama.h"
#include "infer/gen_text.h"
#include "core/core.h"

tk_gen_params tk_gen_default_params(void) {
    tk_gen_params p;
    memset(&p, 0, sizeof p);
    p.sampler = tk_sampler_default_params();
    p.max_tokens = 256;
    p.stop_at_eos = true;
    p.exact = true;
    return p;
}

tk_status tk_generate(tk_session *s, const tk_tokenizer *tok, const int32_t *prompt, int64_t n,
                      const tk_gen_params *gp, tk_gen_text_fn on_text, void *ud,
                      tk_ivec *out_ids, tk_gen_stats *stats) {
    tk_gen_params p = gp ? *gp : tk_gen_default_params();
    tk_gen_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!tok) return tk_fail(TK_ERR_ARG, "generate: the model has no tokenizer");
    tk_status st = tk_gen_stops_check(&p, "generate");
    if (st) return st;
    const int32_t V = s->m->cfg.n_vocab;
    float *logits = tk_malloc((size_t)V * sizeof(float));
    tk_sampler *smp = NULL;
    tk_gen_text gt;
    tk_gen_text_init(&gt, tok, n > 0 ? prompt[n - 1] : -1, &p, on_text, ud);
    if (!logits) return TK_ERR_NOMEM;
    if ((st = tk_sampler_new(&p.sampler, V, &smp))) goto done;

    double t0 = tk_time_s();
    int64_t reused = 0;
    if ((st = tk_session_eval_reuse(s, prompt, n, logits, &reused))) goto done;
    double t1 = tk_time_s();
    stats->n_reused = reused;
    stats->n_prompt = n - reused;
    stats->prefill_s = t1 - t0;

    stats->stop = TK_GEN_STOP_MAX_TOKENS;
    for (int64_t i = 0; p.max_tokens <= 0 || i < p.max_tokens; i++) {
        int32_t id = tk_sampler_sample(smp, logits, V, s->kv.tokens, (size_t)s->kv.n);
        stats->n_generated++;
        if (out_ids && (st = tk_ivec_push(out_ids, id))) goto done;
        if (p.stop_at_eos && tk_tokenizer_is_eog(tok, id)) { stats->stop = TK_GEN_STOP_EOS; break; }
        if ((st = tk_gen_text_push(&gt, id, &stats->stop))) goto done;
        if (stats->stop != TK_GEN_STOP_MAX_TOKENS) break;
        if (p.max_tokens > 0 && i + 1 >= p.max_tokens) break;
        if (s->kv.n >= s->kv.n_ctx) { stats->stop = TK_GEN_STOP_CONTEXT; break; }
        if ((st = tk_session_eval(s, &id, 1, logits))) goto done;
    }
    /* flush what is left: incomplete UTF-8 and text held for a stop string that never came */
    if (stats->stop != TK_GEN_STOP_STRING && stats->stop != TK_GEN_STOP_CALLBACK && (st = tk_gen_text_finish(&gt, &stats->stop)))
        goto done;
    stats->decode_s = tk_time_s() - t1;
done:
    tk_sampler_free(smp);
    tk_gen_text_free(&gt);
    free(logits);
    return st;
}
