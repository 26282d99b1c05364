/* Tokenizer from a Hugging Face tokenizer.json (+ optional tokenizer_config.json).
 * Supported: model BPE (vocab + merges as "a b" strings or [a, b] pairs; byte_fallback,
 * unk_token, fuse_unk, ignore_merges), added_tokens (special -> control, otherwise
 * user-defined; lstrip/rstrip), normalizers Sequence/Prepend/Replace/Lowercase/NFC,
 * pre-tokenizers Sequence/ByteLevel/Split/Digits/Metaspace/Whitespace/WhitespaceSplit/
 * Punctuation, post-processors TemplateProcessing/RobertaProcessing/BertProcessing/
 * ByteLevel, and the ByteLevel / Metaspace / Replace+ByteFallback+Fuse+Strip decoders.
 * The chat template comes from tokenizer_config.json or a chat_template.jinja beside it.
 * Anything else is refused with a message naming the component. */
#include "tokenizer/tok_internal.h"
#include <cJSON.h>
#include <stdio.h>

#define GPT2_HF_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef struct {
    const char *path;
    tk_tokenizer *t;
    int32_t bos_pp, eos_pp;   /* from the post-processor */
    bool add_bos_pp, add_eos_pp;
    bool saw_decoder;
} hf_ctx;

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *jstr(const cJSON *o, const char *k) { const cJSON *v = jget(o, k); return cJSON_IsString(v) ? v->valuestring : NULL; }
static bool jbool(const cJSON *o, const char *k, bool def) { const cJSON *v = jget(o, k); return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def; }
static const char *jtype(const cJSON *o) { return jstr(o, "type"); }

/* Token text of a config entry: "x" or {"content": "x"}. */
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return jstr(v, "content");
    return NULL;
}

static tk_status add_norm(tk_tokenizer *t, tok_norm nm) {
    tok_norm *p = tk_realloc(t->norms, (t->n_norms + 1) * sizeof *p);
    if (!p) { free(nm.a); free(nm.b); if (nm.re) pcre2_code_free(nm.re); return TK_ERR_NOMEM; }
    t->norms = p;
    t->norms[t->n_norms++] = nm;
    return TK_OK;
}

/* Pattern {"String": s} or {"Regex": r}; compiles for HF matching. literal_out: the string when literal. */
static tk_status compile_pattern(hf_ctx *c, const cJSON *pat, const char *what, pcre2_code **re, const char **literal_out) {
    const char *s = jstr(pat, "String"), *r = jstr(pat, "Regex");
    if (literal_out) *literal_out = s;
    if (!s && !r) return tk_fail(TK_ERR_FORMAT, "%s: %s: pattern must be {\"String\": ...} or {\"Regex\": ...}", c->path, what);
    if (s && literal_out) { *re = NULL; return TK_OK; }
    int err; PCRE2_SIZE eo;
    /* PCRE2_LITERAL does not combine with PCRE2_UCP (a literal needs no character classes) */
    uint32_t opt = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (s ? PCRE2_LITERAL : PCRE2_UCP);
    const char *p = s ? s : r;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, opt, &err, &eo, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return tk_fail(TK_ERR_FORMAT, "%s: %s: regex '%.200s' does not compile at offset %zu: %s", c->path, what, p, (size_t)eo, (const char *)msg);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    *re = code;
    return TK_OK;
}

static tk_status add_hf_split(hf_ctx *c, const char *pat, uint32_t extra, tok_split_behavior b, bool invert) {
    int err; PCRE2_SIZE eo;
    uint32_t opt = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | extra | ((extra & PCRE2_LITERAL) ? 0 : PCRE2_UCP);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opt, &err, &eo, NULL);
    if (!code) return tk_fail(TK_ERR_INTERNAL, "%s: built-in pattern '%s' does not compile", c->path, pat);
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return tok_add_split(c->t, PS_RE_HF, b, invert, code);
}

static tk_status parse_normalizer(hf_ctx *c, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return TK_OK;
    const char *ty = jtype(n);
    if (!ty) return tk_fail(TK_ERR_FORMAT, "%s: normalizer without a type", c->path);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(n, "normalizers"), *e;
        if (!cJSON_IsArray(arr)) return tk_fail(TK_ERR_FORMAT, "%s: normalizer Sequence without 'normalizers'", c->path);
        cJSON_ArrayForEach(e, arr) { tk_status st = parse_normalizer(c, e); if (st) return st; }
        return TK_OK;
    }
    if (!strcmp(ty, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p) return tk_fail(TK_ERR_FORMAT, "%s: normalizer Prepend without 'prepend'", c->path);
        char *a = tk_strdup(p);
        if (!a) return TK_ERR_NOMEM;
        return add_norm(c->t, (tok_norm){ .kind = TN_PREPEND, .a = a, .alen = strlen(a) });
    }
    if (!strcmp(ty, "Replace")) {
        const char *content = jstr(n, "content"), *lit = NULL;
        if (!content) return tk_fail(TK_ERR_FORMAT, "%s: normalizer Replace without 'content'", c->path);
        pcre2_code *re = NULL;
        tk_status st = compile_pattern(c, jget(n, "pattern"), "normalizer Replace", &re, &lit);
        if (st) return st;
        char *a = lit ? tk_strdup(lit) : NULL, *b = tk_strdup(content);
        if ((lit && !a) || !b) { free(a); free(b); if (re) pcre2_code_free(re); return TK_ERR_NOMEM; }
        return add_norm(c->t, (tok_norm){ .kind = TN_REPLACE, .a = a, .alen = a ? strlen(a) : 0, .b = b, .blen = strlen(b), .re = re });
    }
    if (!strcmp(ty, "Lowercase")) return add_norm(c->t, (tok_norm){ .kind = TN_LOWERCASE });
    if (!strcmp(ty, "NFC")) return add_norm(c->t, (tok_norm){ .kind = TN_NFC });
    return tk_fail(TK_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (Sequence, Prepend, Replace, Lowercase, NFC are)", c->path, ty);
}

static int metaspace_scheme(const cJSON *n) {
    const char *sch = jstr(n, "prepend_scheme");
    if (sch) return !strcmp(sch, "always") ? 0 : !strcmp(sch, "first") ? 1 : 2;
    return jbool(n, "add_prefix_space", true) ? 0 : 2;
}

static tk_status parse_pretok(hf_ctx *c, const cJSON *n) {
    tk_tokenizer *t = c->t;
    if (!n || cJSON_IsNull(n)) return TK_OK;
    const char *ty = jtype(n);
    if (!ty) return tk_fail(TK_ERR_FORMAT, "%s: pre_tokenizer without a type", c->path);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(n, "pretokenizers"), *e;
        if (!cJSON_IsArray(arr)) return tk_fail(TK_ERR_FORMAT, "%s: pre_tokenizer Sequence without 'pretokenizers'", c->path);
        cJSON_ArrayForEach(e, arr) { tk_status st = parse_pretok(c, e); if (st) return st; }
        return TK_OK;
    }
    if (!strcmp(ty, "ByteLevel")) {
        t->byte_level = true;
        if (jbool(n, "add_prefix_space", false)) {
            /* HF prepends to every piece present at this point; takumi supports it as the first step only */
            if (t->n_splits) return tk_fail(TK_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space after another split is not supported", c->path);
            tk_status st = add_norm(t, (tok_norm){ .kind = TN_PREFIX_SPACE });
            if (st) return st;
        }
        if (jbool(n, "use_regex", true)) return add_hf_split(c, GPT2_HF_REGEX, 0, SB_ISOLATED, false);
        return TK_OK;
    }
    if (!strcmp(ty, "Split")) {
        pcre2_code *re = NULL;
        tk_status st = compile_pattern(c, jget(n, "pattern"), "pre_tokenizer Split", &re, NULL);
        if (st) return st;
        const char *b = jstr(n, "behavior");
        tok_split_behavior sb;
        if (!b || !strcmp(b, "Isolated")) sb = SB_ISOLATED;
        else if (!strcmp(b, "Removed")) sb = SB_REMOVED;
        else if (!strcmp(b, "MergedWithPrevious")) sb = SB_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) sb = SB_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) sb = SB_CONTIGUOUS;
        else { pcre2_code_free(re); return tk_fail(TK_ERR_UNSUPPORTED, "%s: Split behavior '%s' is not supported", c->path, b); }
        return tok_add_split(t, PS_RE_HF, sb, jbool(n, "invert", false), re);
    }
    if (!strcmp(ty, "Digits"))
        return add_hf_split(c, jbool(n, "individual_digits", false) ? "\\p{N}" : "\\p{N}+", 0, SB_ISOLATED, false);
    if (!strcmp(ty, "Metaspace")) {
        if (t->n_splits) return tk_fail(TK_ERR_UNSUPPORTED, "%s: Metaspace after another split is not supported", c->path);
        const char *rep = jstr(n, "replacement");
        if (!rep) rep = "\xE2\x96\x81";
        int scheme = metaspace_scheme(n);
        char *a = tk_strdup(rep);
        if (!a) return TK_ERR_NOMEM;
        tk_status st = add_norm(t, (tok_norm){ .kind = TN_METASPACE, .a = a, .alen = strlen(a), .scheme = scheme });
        if (st) return st;
        t->decode_metaspace = true;
        t->strip_prefix_on_decode = scheme != 2;
        t->prefix_first_only = scheme == 1;
        if (jbool(n, "split", true)) return add_hf_split(c, rep, PCRE2_LITERAL, SB_MERGED_NEXT, false);
        return TK_OK;
    }
    if (!strcmp(ty, "Whitespace")) return add_hf_split(c, "\\w+|[^\\w\\s]+", 0, SB_REMOVED, true);
    if (!strcmp(ty, "WhitespaceSplit")) return add_hf_split(c, "\\s+", 0, SB_REMOVED, false);
    if (!strcmp(ty, "Punctuation")) {
        const char *b = jstr(n, "behavior");
        tok_split_behavior sb = SB_ISOLATED;
        if (b && !strcmp(b, "Removed")) sb = SB_REMOVED;
        else if (b && !strcmp(b, "MergedWithPrevious")) sb = SB_MERGED_PREV;
        else if (b && !strcmp(b, "MergedWithNext")) sb = SB_MERGED_NEXT;
        else if (b && !strcmp(b, "Contiguous")) sb = SB_CONTIGUOUS;
        return add_hf_split(c, "[\\p{P}!-/:-@\\[-`{-~]", 0, sb, false);
    }
    return tk_fail(TK_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' is not supported", c->path, ty);
}

static int32_t special_id(hf_ctx *c, const cJSON *specials, const char *name) {
    const cJSON *e = specials ? jget(specials, name) : NULL;
    const cJSON *ids = e ? jget(e, "ids") : NULL;
    if (cJSON_IsArray(ids) && cJSON_GetArraySize(ids) >= 1 && cJSON_IsNumber(cJSON_GetArrayItem(ids, 0)))
        return (int32_t)cJSON_GetArrayItem(ids, 0)->valuedouble;
    return tk_tokenizer_find(c->t, name);
}

static tk_status parse_post(hf_ctx *c, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return TK_OK;
    const char *ty = jtype(n);
    if (!ty) return tk_fail(TK_ERR_FORMAT, "%s: post_processor without a type", c->path);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(n, "processors"), *e;
        cJSON_ArrayForEach(e, arr) { tk_status st = parse_post(c, e); if (st) return st; }
        return TK_OK;
    }
    if (!strcmp(ty, "ByteLevel")) return TK_OK;
    if (!strcmp(ty, "TemplateProcessing")) {
        const cJSON *single = jget(n, "single"), *specials = jget(n, "special_tokens"), *e;
        bool seen_a = false;
        cJSON_ArrayForEach(e, single) {
            const cJSON *sp = jget(e, "SpecialToken");
            if (jget(e, "Sequence")) { seen_a = true; continue; }
            const char *id = sp ? jstr(sp, "id") : NULL;
            if (!id) continue;
            int32_t tid = special_id(c, specials, id);
            if (tid < 0 || tid >= c->t->n_vocab) return tk_fail(TK_ERR_FORMAT, "%s: post_processor names unknown token '%s'", c->path, id);
            if (!seen_a && !c->add_bos_pp) { c->bos_pp = tid; c->add_bos_pp = true; }
            else if (seen_a && !c->add_eos_pp) { c->eos_pp = tid; c->add_eos_pp = true; }
        }
        return TK_OK;
    }
    if (!strcmp(ty, "RobertaProcessing") || !strcmp(ty, "BertProcessing")) {
        const cJSON *cls = jget(n, "cls"), *sep = jget(n, "sep");
        if (cJSON_GetArraySize(cls) == 2 && cJSON_GetArraySize(sep) == 2) {
            c->bos_pp = (int32_t)cJSON_GetArrayItem(cls, 1)->valuedouble; c->add_bos_pp = true;
            c->eos_pp = (int32_t)cJSON_GetArrayItem(sep, 1)->valuedouble; c->add_eos_pp = true;
            if (c->bos_pp < 0 || c->bos_pp >= c->t->n_vocab || c->eos_pp < 0 || c->eos_pp >= c->t->n_vocab)
                return tk_fail(TK_ERR_FORMAT, "%s: %s names ids outside the vocabulary", c->path, ty);
        }
        return TK_OK;
    }
    return tk_fail(TK_ERR_UNSUPPORTED, "%s: post_processor '%s' is not supported", c->path, ty);
}

static void parse_decoder(hf_ctx *c, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return;
    const char *ty = jtype(n);
    if (!ty) return;
    c->saw_decoder = true;
    tk_tokenizer *t = c->t;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, jget(n, "decoders")) parse_decoder(c, e);
    } else if (!strcmp(ty, "Metaspace")) {
        t->decode_metaspace = true;
        t->strip_prefix_on_decode = metaspace_scheme(n) != 2;
        t->prefix_first_only = metaspace_scheme(n) == 1;
    } else if (!strcmp(ty, "Replace")) {
        const cJSON *pat = jget(n, "pattern");
        const char *s = jstr(pat, "String"), *content = jstr(n, "content");
        if (s && content && !strcmp(s, "\xE2\x96\x81") && !strcmp(content, " ")) t->decode_metaspace = true;
    } else if (!strcmp(ty, "Strip")) {
        const cJSON *st = jget(n, "start");
        if (cJSON_IsNumber(st) && st->valuedouble >= 1) t->strip_prefix_on_decode = true;
    }
    /* ByteLevel, ByteFallback, Fuse: implied by the model (byte-level pieces, <0xXX> byte tokens) */
}

static tk_status read_json(const char *path, cJSON **out) {
    char *buf = NULL; size_t len = 0;
    tk_status st = tk_read_file(path, &buf, &len);
    if (st) return st;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!j) {
        size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
        free(buf);
        return tk_fail(TK_ERR_FORMAT, "%s: invalid JSON near byte %zu (line %zu)", path, off, line);
    }
    free(buf);
    *out = j;
    return TK_OK;
}

static bool valid_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d < (1 << 24)) || d != (double)(int32_t)d) return false;
    *id = (int32_t)d;
    return true;
}

typedef struct { const char *s; uint16_t attr; } slot;

/* Builds the tokenizer from parsed JSON; takes ownership of root and cfg. tokenizer_json names
 * it in messages; dir_path (may be NULL) is where a chat_template.jinja may sit. */
static tk_status from_hf_json(cJSON *root, cJSON *cfg, const char *tokenizer_json, const char *dir_path, tk_tokenizer **out) {
    slot *slots = NULL;
    tk_tokenizer *t = NULL;
    tk_buf cat = {0};
    hf_ctx c = { .path = tokenizer_json, .bos_pp = -1, .eos_pp = -1 };
    tk_status st = TK_OK;
    if (!cJSON_IsObject(root)) { st = tk_fail(TK_ERR_FORMAT, "%s: top level is not an object", tokenizer_json); goto done; }

    const cJSON *model = jget(root, "model");
    if (!cJSON_IsObject(model)) { st = tk_fail(TK_ERR_FORMAT, "%s: no 'model' object", tokenizer_json); goto done; }
    const char *mtype = jtype(model);
    if (mtype && strcmp(mtype, "BPE")) { st = tk_fail(TK_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (BPE is)", tokenizer_json, mtype); goto done; }
    const cJSON *vocab = jget(model, "vocab"), *merges = jget(model, "merges"), *e;
    if (!cJSON_IsObject(vocab)) { st = tk_fail(TK_ERR_FORMAT, "%s: model.vocab is missing or not an object", tokenizer_json); goto done; }
    if (!cJSON_IsArray(merges)) { st = tk_fail(TK_ERR_FORMAT, "%s: model.merges is missing or not an array", tokenizer_json); goto done; }
    const char *cont = jstr(model, "continuing_subword_prefix"), *suffix = jstr(model, "end_of_word_suffix");
    if ((cont && *cont) || (suffix && *suffix)) { st = tk_fail(TK_ERR_UNSUPPORTED, "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", tokenizer_json); goto done; }
    const cJSON *dropout = jget(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0) { st = tk_fail(TK_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", tokenizer_json); goto done; }

    /* ids: vocab entries and added tokens */
    int32_t n = 0, id;
    cJSON_ArrayForEach(e, vocab) {
        if (!valid_id(e, &id)) { st = tk_fail(TK_ERR_FORMAT, "%s: model.vocab[\"%.60s\"] is not a valid id", tokenizer_json, e->string); goto done; }
        if (id + 1 > n) n = id + 1;
    }
    const cJSON *added = jget(root, "added_tokens");
    cJSON_ArrayForEach(e, added) {
        if (!valid_id(jget(e, "id"), &id) || !jstr(e, "content")) { st = tk_fail(TK_ERR_FORMAT, "%s: added_tokens entry without a valid id/content", tokenizer_json); goto done; }
        if (id + 1 > n) n = id + 1;
    }
    if (n == 0) { st = tk_fail(TK_ERR_FORMAT, "%s: empty vocabulary", tokenizer_json); goto done; }
    /* ids are dense in real files; a huge gap would only allocate an empty table */
    int n_entries = cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added);
    if (n > n_entries + 65536) { st = tk_fail(TK_ERR_FORMAT, "%s: token id %d is far beyond the %d vocabulary entries", tokenizer_json, n - 1, n_entries); goto done; }
    slots = tk_calloc((size_t)n, sizeof *slots);
    if (!slots) { st = TK_ERR_NOMEM; goto done; }
    bool byte_fallback = jbool(model, "byte_fallback", false);
    cJSON_ArrayForEach(e, vocab) {
        valid_id(e, &id);
        slots[id].s = e->string;
        slots[id].attr = TKA_NORMAL;
        if (byte_fallback && tok_parse_byte_piece(e->string, strlen(e->string)) >= 0) slots[id].attr = TKA_BYTE;
    }
    cJSON_ArrayForEach(e, added) {
        valid_id(jget(e, "id"), &id);
        slots[id].s = jstr(e, "content");
        uint16_t a = jbool(e, "special", false) ? TKA_CONTROL : TKA_USER;
        if (jbool(e, "lstrip", false)) a |= TKA_LSTRIP;
        if (jbool(e, "rstrip", false)) a |= TKA_RSTRIP;
        slots[id].attr = a;
    }
    t = tok_new(n + 16);
    if (!t) { st = TK_ERR_NOMEM; goto done; }
    t->serial = tok_next_serial();
    t->hf = true;
    t->model = TOKM_BPE;
    c.t = t;
    for (int32_t i = 0; i < n; i++) {
        const char *s = slots[i].s ? slots[i].s : "";
        if (tok_add_piece(t, s, strlen(s), 0.0f, slots[i].s ? slots[i].attr : TKA_UNUSED) < 0) { st = TK_ERR_NOMEM; goto done; }
    }
    t->n_vocab = n;
    if ((st = tok_build_map(t, false))) goto done;

    /* merges: rank = position */
    int32_t rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *b = NULL; size_t la = 0, lb = 0;
        if (cJSON_IsString(e)) {
            const char *s = e->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) { st = tk_fail(TK_ERR_FORMAT, "%s: merge %d '%.60s' is not two tokens separated by one space", tokenizer_json, rank, s); goto done; }
            a = s; la = (size_t)(sp - s); b = sp + 1; lb = strlen(b);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) && cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring; la = strlen(a);
            b = cJSON_GetArrayItem(e, 1)->valuestring; lb = strlen(b);
        } else { st = tk_fail(TK_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [a, b]", tokenizer_json, rank); goto done; }
        int32_t ia = tok_lookup_token(t, a, la), ib = tok_lookup_token(t, b, lb);
        cat.len = 0;
        if (tk_buf_append(&cat, a, la) || tk_buf_append(&cat, b, lb)) { st = TK_ERR_NOMEM; goto done; }
        int32_t iab = tok_lookup_token(t, cat.data, cat.len);
        if (ia < 0 || ib < 0 || iab < 0) {
            st = tk_fail(TK_ERR_FORMAT, "%s: merge %d ('%.*s' + '%.*s') uses a token that is not in the vocabulary", tokenizer_json, rank,
                         (int)(la > 40 ? 40 : la), a, (int)(lb > 40 ? 40 : lb), b);
            goto done;
        }
        if ((st = tok_add_merge(t, ia, ib, rank, iab))) goto done;
        rank++;
    }
    t->byte_fallback = byte_fallback;
    t->fuse_unk = jbool(model, "fuse_unk", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);
    const char *unk = jstr(model, "unk_token");
    if (unk) t->unk = tk_tokenizer_find(t, unk);

    if ((st = parse_normalizer(&c, jget(root, "normalizer")))) goto done;
    if ((st = parse_pretok(&c, jget(root, "pre_tokenizer")))) goto done;
    if ((st = parse_post(&c, jget(root, "post_processor")))) goto done;
    parse_decoder(&c, jget(root, "decoder"));
    if (!t->byte_level) {
        /* SentencePiece-style BPE: spaces are U+2581 in the pieces; without a decoder, a
         * Prepend normalizer's dummy prefix is removed again on decode */
        t->decode_metaspace = true;
        for (size_t i = 0; !c.saw_decoder && i < t->n_norms; i++)
            if (t->norms[i].kind == TN_PREPEND) t->strip_prefix_on_decode = true;
    }
    t->kind = t->byte_level ? TK_TOKENIZER_BPE : TK_TOKENIZER_SPM;
    snprintf(t->pre_name, sizeof t->pre_name, "%s", t->byte_level ? "hf-byte-level" : "hf-spm");

    /* special ids: tokenizer_config.json first, then the post-processor, then common texts */
    t->bos = c.bos_pp; t->eos = c.eos_pp;
    t->add_bos = c.add_bos_pp; t->add_eos = c.add_eos_pp;
    if (cfg) {
        const char *s;
        if ((s = token_text(jget(cfg, "bos_token"))) && (id = tk_tokenizer_find(t, s)) >= 0) t->bos = id;
        if ((s = token_text(jget(cfg, "eos_token"))) && (id = tk_tokenizer_find(t, s)) >= 0) t->eos = id;
        if ((s = token_text(jget(cfg, "pad_token"))) && (id = tk_tokenizer_find(t, s)) >= 0) t->pad = id;
        if ((s = token_text(jget(cfg, "unk_token"))) && (id = tk_tokenizer_find(t, s)) >= 0) t->unk = id;
        const cJSON *v;
        if (cJSON_IsBool(v = jget(cfg, "add_bos_token"))) t->add_bos = cJSON_IsTrue(v);
        if (cJSON_IsBool(v = jget(cfg, "add_eos_token"))) t->add_eos = cJSON_IsTrue(v);
        const cJSON *ct = jget(cfg, "chat_template");
        const char *tmpl = NULL;
        if (cJSON_IsString(ct)) tmpl = ct->valuestring;
        else if (cJSON_IsArray(ct)) {
            cJSON_ArrayForEach(e, ct) {
                const char *nm = jstr(e, "name");
                if (!tmpl || (nm && !strcmp(nm, "default"))) tmpl = jstr(e, "template");
            }
        }
        if (tmpl && !(t->chat_template = tk_strdup(tmpl))) { st = TK_ERR_NOMEM; goto done; }
    }
    if (!t->chat_template && dir_path) {
        /* newer transformers save the template as chat_template.jinja next to tokenizer.json */
        const char *slash = strrchr(dir_path, '/');
        size_t dl = slash ? (size_t)(slash - dir_path) + 1 : 0;
        char *jp = tk_malloc(dl + 32);
        if (!jp) { st = TK_ERR_NOMEM; goto done; }
        memcpy(jp, dir_path, dl);
        strcpy(jp + dl, "chat_template.jinja");
        FILE *jf = fopen(jp, "rb");
        if (jf) {
            fclose(jf);
            char *tmpl = NULL;
            st = tk_read_file(jp, &tmpl, NULL);
            t->chat_template = tmpl;
        }
        free(jp);
        if (st) goto done;
    }
    static const char *const bos_texts[] = {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", NULL};
    static const char *const eos_texts[] = {"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", NULL};
    static const char *const eot_texts[] = {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", NULL};
    for (int k = 0; t->bos < 0 && bos_texts[k]; k++) if ((id = tk_tokenizer_find(t, bos_texts[k])) >= 0 && (t->attr[id] & TKA_CONTROL)) t->bos = id;
    for (int k = 0; t->eos < 0 && eos_texts[k]; k++) if ((id = tk_tokenizer_find(t, eos_texts[k])) >= 0 && (t->attr[id] & TKA_CONTROL)) t->eos = id;
    for (int k = 0; t->eot < 0 && eot_texts[k]; k++) if ((id = tk_tokenizer_find(t, eot_texts[k])) >= 0 && (t->attr[id] & TKA_CONTROL)) t->eot = id;
    if (t->add_bos && t->bos < 0) { st = tk_fail(TK_ERR_FORMAT, "%s: BOS is to be added but there is no BOS token", tokenizer_json); goto done; }
    if (t->add_eos && t->eos < 0) { st = tk_fail(TK_ERR_FORMAT, "%s: EOS is to be added but there is no EOS token", tokenizer_json); goto done; }
    st = tok_finish(t);
done:
    tk_buf_free(&cat);
    free(slots);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    if (st) { tk_tokenizer_free(t); return st; }
    *out = t;
    return TK_OK;
}

tk_status tk_tokenizer_from_hf(const char *tokenizer_json, const char *tokenizer_config_json, tk_tokenizer **out) {
    if (!tokenizer_json || !out) return tk_fail(TK_ERR_ARG, "tk_tokenizer_from_hf: NULL argument");
    *out = NULL;
    cJSON *root = NULL, *cfg = NULL;
    tk_status st = read_json(tokenizer_json, &root);
    if (st) return st;
    if (tokenizer_config_json && (st = read_json(tokenizer_config_json, &cfg))) { cJSON_Delete(root); return st; }
    return from_hf_json(root, cfg, tokenizer_json, tokenizer_json, out);
}

tk_status tk_tokenizer_from_hf_memory(const char *json, size_t len, const char *name, tk_tokenizer **out) {
    if (!json || !out) return tk_fail(TK_ERR_ARG, "tk_tokenizer_from_hf_memory: NULL argument");
    *out = NULL;
    if (!name) name = "tokenizer.json";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return tk_fail(TK_ERR_FORMAT, "%s: invalid JSON near byte %zu", name, off);
    }
    return from_hf_json(root, NULL, name, NULL, out);
}
