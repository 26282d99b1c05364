/* Scoring preference pairs with a trained reward model (takumi/train.h: tk_reward_score): the base
 * model with the reward model's adapter applied, a forward per micro-batch of pairs, and the score
 * head of the reward objective (objective/reward.h) on each sequence's last token. */
#include "takumi/train.h"
#include "train/pairs.h"
#include "objective/reward.h"
#include "peft/adapter_io.h"
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>

tk_status tk_reward_score(const tk_reward_opts *o, tk_reward_fn fn, void *ud, int64_t *n_pairs, double *accuracy) {
    if (!o || !o->model || !o->adapter || !o->data) return tk_fail(TK_ERR_ARG, "reward: --model, --adapter and --data are required");
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = o->tokenizer;
    tk_model *m = NULL;
    tk_adapter_handle *h = NULL;
    tk_objective *obj = NULL;
    tk_param_set ps = {0};
    tk_sft_data d = {0};
    tk_rows rows = {0};
    tk_pair_buf pb = {0};
    tk_forward *f = NULL;
    int64_t *order = NULL, n = 0, right = 0;
    double r[2 * 8];
    tk_status st = tk_model_load(o->model, &mp, &m);
    if (st) return st;
    const tk_model_config *mc = tk_model_get_config(m);
    tk_sft_params sp = tk_sft_default_params();
    sp.max_seq = o->max_seq > 0 ? o->max_seq : mc->max_seq < 1024 ? mc->max_seq : 1024;
    if (!(st = tk_objective_new(&tk_objective_reward, NULL, &obj))) st = tk_objective_add_params(obj, mc->dim, 0, "", &ps);
    if (!st) st = tk_reward_model_open(o->adapter, m, ps.p[0].w, mc->dim, &h);
    if (!st) st = tk_chat_resolve(tk_model_tokenizer(m), o->template_name, &sp.family);
    if (!st) st = tk_pairs_load(o->data, tk_model_tokenizer(m), &sp, &d);
    if (!st && !(order = tk_malloc((size_t)d.n * sizeof *order))) st = TK_ERR_NOMEM;
    for (int64_t i = 0; !st && i < d.n; i++) order[i] = i;
    if (!st) st = tk_rows_pack(&d, order, d.n, 2 * sp.max_seq, false, &rows);
    if (!st) st = tk_forward_new(m, 8, 2 * sp.max_seq, 0, &f);
    if (!st) {
        tk_adapter_use u = {.peft = tk_adapter_handle_peft(h), .scale = 1.0f};
        st = tk_forward_set_adapters(f, &u, 1);
    }
    tk_lm_head head = {&tk_model_weights(m)->output, mc->final_softcap};
    for (int64_t k = 0; !st && k < rows.n_rows; k += 8) {
        int32_t nb = (int32_t)(rows.n_rows - k < 8 ? rows.n_rows - k : 8);
        if ((st = tk_pair_fill(&pb, &d, &rows, k, nb)) || (st = tk_forward_run(f, &pb.bb.b, NULL, 0, NULL))) break;
        tk_obj_batch x = {.T = (int64_t)pb.bb.b.n_rows * pb.bb.b.n_cols, .C = mc->dim, .h = tk_forward_hidden(f), .head = &head,
                          .seq = pb.pool, .n_seq = pb.n_seq};
        if ((st = tk_reward_scores(obj, &x, r))) break;
        for (int32_t g = 0; g < pb.n_pairs; g++, n++) {
            int64_t e = pb.example[g], o = d.off[e];
            int32_t l = tk_sft_len(&d, e), split = 1;
            while (split < l && !(d.mask[o + split] & TK_MASK_START)) split++;
            tk_reward_pair p = {d.line[e], r[2 * g], r[2 * g + 1], d.ids + o, d.ids + o + split, split, l - split};
            right += p.chosen > p.rejected;
            if (fn) fn(&p, ud);
        }
    }
    if (!st && n_pairs) *n_pairs = n;
    if (!st && accuracy) *accuracy = n ? (double)right / (double)n : 0;
    tk_forward_free(f);
    tk_pair_buf_free(&pb);
    tk_rows_free(&rows);
    free(order);
    tk_sft_free(&d);
    tk_params_free(&ps);
    tk_objective_free(obj);
    tk_adapter_detach(m, h);
    tk_model_free(m);
    return st;
}
