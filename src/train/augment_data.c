/* --augment: paraphrase augmentation of small SFT data before training. Every chat record of
 * --data is copied, and up to N more copies get their last user turn paraphrased by a model
 * (the answers unchanged; tk_augment_run's checks drop paraphrases that are empty, identical,
 * too long, not a question, or that change a number or name of the original). The result,
 * RUN/augmented-train.jsonl, is what the run trains on; RUN/augmented-train.key records the
 * inputs it was made from, so --resume (and a rerun with the same inputs) reuses it instead of
 * generating again. Under MPI, rank 0 writes it and the others wait. */
#include "train/run.h"
#include "takumi/synth.h"
#include "data/data_internal.h"
#include "dist/dist.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define AUG_FILE "augmented-train.jsonl"
#define AUG_KEY "augmented-train.key"

tk_status tk_run_augment_parse(const char *v, int *n) {
    *n = -1;
    if (!v || !strcmp(v, "auto")) return TK_OK;
    if (!strcmp(v, "off")) { *n = 0; return TK_OK; }
    char *end = NULL;
    long k = strtol(v, &end, 10);
    if (!*v || *end || k < 0 || k > 16) return tk_fail(TK_ERR_ARG, "--augment %s: use auto, off or a number of paraphrases per record (0..16)", v);
    *n = (int)k;
    return TK_OK;
}

/* Records (non-blank lines) of the file, and whether its first record is a chat record. */
static void survey(const char *data, size_t len, size_t *records, bool *chat) {
    *records = 0;
    *chat = false;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        bool blank = true;
        for (size_t k = i; k < e && blank; k++) blank = data[k] == ' ' || data[k] == '\t' || data[k] == '\r';
        if (!blank) {
            if (*records == 0) {
                cJSON *j = cJSON_ParseWithLength(data + i, e - i);
                *chat = j && tk_data_classify(j) == TK_DATA_CHAT;
                cJSON_Delete(j);
            }
            (*records)++;
        }
        i = e + 1;
    }
}

/* What the augmented file depends on: the data, the writer, the template, N and the seed. */
static uint64_t aug_key(const tk_run *r, const char *data, size_t len, int n) {
    const tk_trainer_config *c = &r->c;
    char *writer = tk_path_abs(c->augment_model ? c->augment_model : c->model);
    tk_buf b = {0};
    tk_status st = !writer ? TK_ERR_NOMEM
        : tk_buf_printf(&b, "%016llx|%s|%s|%d|%llu|v1", (unsigned long long)tk_hash_bytes(data, len), writer,
                        c->template_name ? c->template_name : "-", n, (unsigned long long)c->seed);
    uint64_t h = st ? 0 : tk_hash_bytes(b.data, b.len);
    free(writer);
    tk_buf_free(&b);
    return h;
}

/* Generates the paraphrases (rank 0) into path. */
static tk_status generate(tk_run *r, const char *in, const char *path, int n) {
    tk_trainer_config *c = &r->c;
    tk_model *w = NULL;
    tk_chat_family fam = r->fam;
    tk_status st = TK_OK;
    if (c->augment_model) {
        tk_model_params mp = tk_model_default_params();
        if ((st = tk_model_load(c->augment_model, &mp, &w))) return tk_fail_ctx(st, "--augment-model %s: ", c->augment_model);
        if ((st = tk_chat_resolve(tk_model_tokenizer(w), NULL, &fam))) {
            tk_model_free(w);
            return tk_fail_ctx(st, "--augment-model %s: its chat template: ", c->augment_model);
        }
    }
    if (fam == TK_CHAT_UNKNOWN) {
        tk_model_free(w);
        return tk_fail(TK_ERR_ARG, "--augment: the paraphrasing model needs a chat template: choose one with --template (%s), or --augment off",
                       tk_chat_family_names());
    }
    tk_augment_params p = tk_augment_default_params();
    p.gen.model = w ? w : r->m;   /* the base itself: no adapter is attached yet */
    p.gen.family = fam;
    p.gen.seed = c->seed;
    p.paraphrases = n;
    tk_augment_summary s;
    st = tk_augment_run(in, path, &p, &s);
    tk_model_free(w);
    if (st) return tk_fail_ctx(st, "--augment: ");
    tk_buf why = {0};
    for (int k = 1; k < TK_PARA_COUNT; k++)
        if (s.dropped[k]) tk_buf_printf(&why, "%s%s %llu", why.len ? ", " : "", tk_para_name((tk_para)k), (unsigned long long)s.dropped[k]);
    tk_run_emitf(r, TK_EV_INFO, "augment", false, "--augment %d: %llu paraphrased records added to %llu (%llu asked; dropped: %s) by %s in %.1f s -> %s",
                 n, (unsigned long long)s.added, (unsigned long long)s.records, (unsigned long long)(s.records - s.no_user) * (unsigned long long)n,
                 why.len ? why.data : "none", c->augment_model ? c->augment_model : "the base model", s.gen_s, path);
    tk_buf_free(&why);
    return TK_OK;
}

tk_status tk_run_augment_prepare(tk_run *r) {
    tk_trainer_config *c = &r->c;
    int n;
    tk_status st = tk_run_augment_parse(c->augment, &n);
    if (st || n == 0) return st;
    const bool explicit_n = n > 0;
    const char *other = r->cls ? "--task classify|regress" : r->grpo ? "--objective grpo" : r->pref ? "preference objectives"
                      : r->distill ? "--objective distill" : NULL;
    if (other) {
        if (explicit_n) return tk_fail(TK_ERR_ARG, "--augment %s applies to SFT on chat records, not to %s (use --augment off)", c->augment, other);
        return TK_OK;
    }
    const char *in = tk_run_data_path(r);
    char *data = NULL;
    size_t len = 0, records;
    bool chat;
    if ((st = tk_read_file(in, &data, &len))) return st;
    survey(data, len, &records, &chat);
    if (!chat) {
        free(data);
        if (explicit_n) return tk_fail(TK_ERR_ARG, "--augment %s: %s is not chat data ({\"messages\": [...]}): only user turns of chat records "
                                       "are paraphrased (convert it with takumi data convert --to chat, or --augment off)", c->augment, in);
        return TK_OK;
    }
    if (n < 0) {   /* auto: a writer was named and the data is small (the base's own paraphrases: see TK_AUGMENT_AUTO_N) */
        n = c->augment_model && records < TK_AUGMENT_AUTO_MAX ? TK_AUGMENT_AUTO_N : 0;
        if (!n) { free(data); return TK_OK; }
    }
    uint64_t key = aug_key(r, data, len, n);
    free(data);
    char *path = tk_path_join(c->out, AUG_FILE), *kpath = tk_path_join(c->out, AUG_KEY);
    if (!path || !kpath) { free(path); free(kpath); return TK_ERR_NOMEM; }
    bool reuse = tk_dist_rank() == 0 && tk_run_key_matches(kpath, path, key);
    st = tk_dist_bcast(&reuse, sizeof reuse);
    if (!st && reuse) {
        tk_run_emitf(r, TK_EV_INFO, "augment", false, "reusing %s (made from the same data, model, --augment and seed)", path);
    } else if (!st) {
        if (tk_dist_rank() == 0) {
            st = generate(r, in, path, n);
            char kb[32];
            int kn = snprintf(kb, sizeof kb, "%016llx\n", (unsigned long long)key);
            if (!st) st = tk_write_file_atomic(kpath, kb, (size_t)kn);
        }
        st = tk_dist_agree(st);
    }
    free(kpath);
    if (st) { free(path); return st; }
    free(r->answers_path);
    r->answers_path = path;
    return TK_OK;
}
