/* Tokenizer from GGUF metadata (tokenizer.ggml.*), following llama.cpp's llama_vocab::load:
 * model kind (gpt2 -> byte-level BPE, llama -> SentencePiece, bert -> WordPiece), token
 * texts/scores/types, merges, the pre-tokenizer named by tokenizer.ggml.pre, special ids
 * with llama.cpp's defaults, and its text-based detection of end-of-turn/FIM tokens. */
#include "tokenizer/tok_internal.h"
#include <stdio.h>

/* GGUF token types (llama.cpp llama_token_type). */
enum { TT_UNDEFINED = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static uint16_t attr_of_type(int64_t tt) {
    switch (tt) {
    case TT_UNKNOWN: return TKA_UNKNOWN;
    case TT_UNUSED: return TKA_UNUSED;
    case TT_NORMAL: return TKA_NORMAL;
    case TT_CONTROL: return TKA_CONTROL;
    case TT_USER: return TKA_USER;
    case TT_BYTE: return TKA_BYTE;
    default: return TKA_UNDEFINED;
    }
}

/* Texts llama.cpp treats as end-of-turn / end-of-generation / fill-in-the-middle markers (forced to control). */
static const char *const k_eot_texts[] = { /* in order of preference for tk_tokenizer_eot */
    "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<EOT>", "_<EOT>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<|endoftext|>", NULL };
static const char *const k_control_texts[] = {
    "<|eom_id|>", "<|end_of_text|>",
    "<|fim_prefix|>", "<fim-prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
    "<|fim_suffix|>", "<fim-suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
    "<|fim_middle|>", "<fim-middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
    "<|fim_pad|>", "<fim-pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<|file_sep|>", NULL };

static bool get_id(const tk_gguf *g, const char *key, int32_t n_vocab, int32_t *id) {
    int64_t v;
    if (!tk_gguf_get_i64(g, key, &v)) return false;
    if (v < 0 || v >= n_vocab) return false; /* llama.cpp: a bad id keeps the default */
    *id = (int32_t)v;
    return true;
}

static bool contains_ci(const char *s, const char *sub) {
    size_t n = strlen(sub);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && ((s[i] | 0x20) == (sub[i] | 0x20) || s[i] == sub[i])) i++;
        if (i == n) return true;
    }
    return false;
}

tk_status tk_tokenizer_from_gguf(const tk_gguf *g, tk_tokenizer **out) {
    if (!g || !out) return tk_fail(TK_ERR_ARG, "tk_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    const char *path = tk_gguf_path(g);
    const char *model = NULL; size_t model_len = 0;
    if (!tk_gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len))
        return tk_fail(TK_ERR_NOT_FOUND, "%s: no tokenizer.ggml.model (the file carries no vocabulary)", path);
    tok_model kind;
    if (!strcmp(model, "gpt2")) kind = TOKM_BPE;
    else if (!strcmp(model, "llama")) kind = TOKM_SPM;
    else if (!strcmp(model, "bert")) kind = TOKM_WPM;
    else if (!strcmp(model, "no_vocab") || !strcmp(model, "none"))
        return tk_fail(TK_ERR_NOT_FOUND, "%s: tokenizer.ggml.model is '%s' (the file carries no vocabulary)", path, model);
    else return tk_fail(TK_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported (gpt2, llama, bert are)", path, model);

    tk_gguf_type et; int64_t n;
    if (!tk_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) || et != TK_GGUF_STRING)
        return tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or not a string array", path);
    if (n <= 0 || n > (1 << 24)) return tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %lld entries", path, (long long)n);
    bool have_scores = false, have_types = false;
    int64_t m;
    if (tk_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &m)) {
        if (et != TK_GGUF_FLOAT32 && et != TK_GGUF_INT32) return tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.scores has the wrong type", path);
        if (m < n) return tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.scores has %lld entries for %lld tokens", path, (long long)m, (long long)n);
        have_scores = true;
    }
    if (tk_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &m)) {
        if (et != TK_GGUF_INT32) return tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.token_type is not an int32 array", path);
        if (m < n) return tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %lld entries for %lld tokens", path, (long long)m, (long long)n);
        have_types = true;
    }

    tk_tokenizer *t = tok_new((int32_t)n + 1024);
    if (!t) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    t->serial = tok_next_serial();
    t->model = kind;
    t->kind = kind == TOKM_SPM ? TK_TOKENIZER_SPM : TK_TOKENIZER_BPE;
    for (int64_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = tk_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        if (!s) { st = tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%lld] is unreadable", path, (long long)i); goto fail; }
        char empty[32];
        if (len == 0) { snprintf(empty, sizeof empty, "[EMPTY_%lld]", (long long)i); s = empty; len = strlen(empty); }
        double sc = 0; int64_t tt = TT_NORMAL;
        if (have_scores && !tk_gguf_arr_f64(g, "tokenizer.ggml.scores", i, &sc)) sc = 0;
        if (have_types && !tk_gguf_arr_i64(g, "tokenizer.ggml.token_type", i, &tt)) tt = TT_UNDEFINED;
        if (tok_add_piece(t, s, len, (float)sc, have_types ? attr_of_type(tt) : TKA_NORMAL) < 0) { st = TK_ERR_NOMEM; goto fail; }
    }
    t->n_vocab = (int32_t)n;
    if ((st = tok_build_map(t, false))) goto fail;

    const char *pre = NULL; size_t pre_len = 0;
    tk_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pre_len);
    if (kind == TOKM_BPE) {
        t->byte_level = true;
        int64_t nm;
        if (!tk_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &nm) || et != TK_GGUF_STRING) {
            st = tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.merges is missing or not a string array", path);
            goto fail;
        }
        tk_buf cat = {0};
        for (int64_t i = 0; i < nm && !st; i++) {
            size_t len = 0;
            const char *s = tk_gguf_arr_str(g, "tokenizer.ggml.merges", i, &len);
            if (!s) { st = tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.merges[%lld] is unreadable", path, (long long)i); break; }
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp) continue; /* llama.cpp records an unusable ("", "") pair */
            size_t la = (size_t)(sp - s), lb = len - la - 1;
            int32_t a = tok_intern(t, s, la), b = tok_intern(t, sp + 1, lb);
            cat.len = 0;
            if (tk_buf_append(&cat, s, la) || tk_buf_append(&cat, sp + 1, lb)) { st = TK_ERR_NOMEM; break; }
            int32_t ab = tok_intern(t, cat.data, cat.len);
            if (a < 0 || b < 0 || ab < 0) { st = TK_ERR_NOMEM; break; }
            if (i > INT32_MAX) { st = tk_fail(TK_ERR_FORMAT, "%s: too many merges", path); break; }
            st = tok_add_merge(t, a, b, (int32_t)i, ab);
        }
        tk_buf_free(&cat);
        if (st) goto fail;
        if (pre && !*pre) pre = NULL;
        if ((st = tok_set_llamacpp_pre(t, pre))) { tk_fail_ctx(st, "%s", path); goto fail; }
        t->bos = 11; t->eos = 11; /* llama.cpp's BPE defaults, before the file's own ids */
    } else if (kind == TOKM_SPM) {
        snprintf(t->pre_name, sizeof t->pre_name, "spm");
        t->add_space_prefix = true;
        t->strip_prefix_on_decode = true;
        t->decode_metaspace = true;
        t->byte_fallback = true;
        t->add_bos = true;
        t->bos = 1; t->eos = 2; t->unk = 0;
    } else {
        snprintf(t->pre_name, sizeof t->pre_name, "wpm");
        t->decode_metaspace = true;
        t->wpm_lowercase = t->wpm_strip_accents = true;
        bool b;
        if (tk_gguf_get_bool(g, "tokenizer.ggml.normalizer.lowercase", &b)) t->wpm_lowercase = t->wpm_strip_accents = b;
        if (tk_gguf_get_bool(g, "tokenizer.ggml.normalizer.strip_accents", &b)) t->wpm_strip_accents = b;
        t->add_bos = true; t->add_sep = true;
        t->bos = 101; t->unk = 100; t->sep = 102; t->pad = 0;
    }
    /* a default outside a small vocabulary is disabled, as in llama.cpp */
    int32_t *defs[] = {&t->bos, &t->eos, &t->unk, &t->sep, &t->pad};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) if (*defs[i] >= t->n_vocab) *defs[i] = -1;
    get_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos);
    get_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos);
    get_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot);
    get_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom);
    get_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk);
    get_id(g, "tokenizer.ggml.seperator_token_id", t->n_vocab, &t->sep);
    get_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad);
    bool flag;
    if (tk_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag)) t->add_bos = flag;
    if (tk_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &flag)) t->add_eos = flag;
    if (kind == TOKM_SPM && tk_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &flag)) {
        t->add_space_prefix = flag;
        t->strip_prefix_on_decode = flag;
    }
    if (t->add_bos && t->bos < 0) { st = tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.add_bos_token is true but there is no BOS token", path); goto fail; }
    if (t->add_eos && t->eos < 0) { st = tk_fail(TK_ERR_FORMAT, "%s: tokenizer.ggml.add_eos_token is true but there is no EOS token", path); goto fail; }

    /* end-of-turn / FIM markers by text: forced to control (llama.cpp does the same) */
    for (int k = 0; k_eot_texts[k]; k++) {
        int32_t id = tk_tokenizer_find(t, k_eot_texts[k]);
        if (id < 0) continue;
        t->attr[id] |= TKA_CONTROL;
        if (t->eot < 0) t->eot = id;
    }
    for (int k = 0; k_control_texts[k]; k++) {
        int32_t id = tk_tokenizer_find(t, k_control_texts[k]);
        if (id >= 0) t->attr[id] |= TKA_CONTROL;
    }
    if (t->eom < 0) { int32_t id = tk_tokenizer_find(t, "<|eom_id|>"); if (id >= 0) t->eom = id; }
    for (int32_t id = 0; id < t->n_vocab; id++)
        if ((t->attr[id] & TKA_CONTROL) && strstr(tok_piece(t, id), "unused")) t->attr[id] |= TKA_UNUSED;

    const char *tmpl = NULL; size_t tl = 0;
    if (tk_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tl) && !(t->chat_template = tk_strndup(tmpl, tl))) { st = TK_ERR_NOMEM; goto fail; }

    if ((st = tok_finish(t))) goto fail;

    /* llama.cpp: Phi-3 vocabularies strip whitespace to the right of their special tokens */
    const char *name = NULL; size_t nl = 0;
    if (tk_gguf_get_str(g, "general.name", &name, &nl) && (contains_ci(name, "phi-3") || contains_ci(name, "phi3"))) {
        for (size_t i = 0; i < t->n_specials; i++) t->attr[t->specials[i]] |= TKA_RSTRIP;
        int32_t id;
        if ((id = tk_tokenizer_find(t, "</s>")) >= 0) t->attr[id] |= TKA_RSTRIP;
        const char *off[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int k = 0; k < 3; k++) if ((id = tk_tokenizer_find(t, off[k])) >= 0) t->attr[id] &= (uint16_t)~TKA_RSTRIP;
    }
    *out = t;
    return TK_OK;
fail:
    tk_tokenizer_free(t);
    return st;
}
