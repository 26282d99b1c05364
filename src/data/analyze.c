/* Per-record analysis shared by check, split and the fuzz target: UTF-8 and JSON
 * checks, format validation, normalisation, token counts, hashes for exact duplicates
 * and prompt/answer conflicts, the MinHash signature for near-duplicates, personal
 * data counts and the script. Runs on many records at once (one scratch slot per
 * thread); never fails — every problem becomes a finding of the record. */
#include "data/data_internal.h"

typedef struct slot {
    tk_pii_scratch *pii;
    tk_pii_vec matches;
    tk_buf norm, near;
    size_t *offs;            /* per message: start and end of its normalised text in norm */
    size_t offs_cap;
    tk_example ex;
    tk_tok_scratch *tok;
    tk_contam_scratch *contam;
} slot;

struct tk_analyzer {
    tk_analyze_opts o;
    tk_pii *pii;
    slot *slots;
    int n_slots;
};

tk_status tk_analyzer_new(const tk_analyze_opts *o, int n_threads, tk_analyzer **out) {
    *out = NULL;
    tk_analyzer *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    a->o = *o;
    a->n_slots = n_threads > 0 ? n_threads : 1;
    a->slots = tk_calloc((size_t)a->n_slots, sizeof *a->slots);
    if (!a->slots) { free(a); return TK_ERR_NOMEM; }
    tk_status st = TK_OK;
    if (o->pii) st = tk_pii_new(&a->pii);
    for (int i = 0; i < a->n_slots && !st; i++) {
        if (a->pii && !(a->slots[i].pii = tk_pii_scratch_new(a->pii))) st = TK_ERR_NOMEM;
        if (!st && !(a->slots[i].tok = tk_tok_scratch_new())) st = TK_ERR_NOMEM;
        if (!st && o->contam && !(a->slots[i].contam = tk_contam_scratch_new())) st = TK_ERR_NOMEM;
    }
    if (st) { tk_analyzer_free(a); return st; }
    *out = a;
    return TK_OK;
}

void tk_analyzer_free(tk_analyzer *a) {
    if (!a) return;
    for (int i = 0; i < a->n_slots; i++) {
        slot *s = &a->slots[i];
        tk_pii_scratch_free(s->pii);
        free(s->matches.v);
        tk_buf_free(&s->norm);
        tk_buf_free(&s->near);
        free(s->offs);
        tk_example_free(&s->ex);
        tk_tok_scratch_free(s->tok);
        tk_contam_scratch_free(s->contam);
    }
    free(a->slots);
    tk_pii_free(a->pii);
    free(a);
}

void tk_rec_out_clear(tk_rec_out *o) {
    tk_rf_clear(&o->fs);
    free(o->label);
    free(o->system_head);
    free(o->hits);
    o->label = o->system_head = NULL;
    o->hits = NULL;
    o->n_hits = 0;
}

static char *head_copy(const char *s, size_t len, size_t max) {
    size_t n = len < max ? len : max;
    while (n < len && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;   /* whole characters only */
    char *p = malloc(n + 1);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
    p[n] = 0;
    return p;
}

static bool chat_like(tk_data_format f) {
    return f == TK_DATA_CHAT || f == TK_DATA_PROMPT_COMPLETION || f == TK_DATA_ALPACA || f == TK_DATA_SHAREGPT ||
           f == TK_DATA_PREFERENCE || f == TK_DATA_KTO;
}

/* Appends "<role><side>\x1f<normalised text>\x1e" for each message, recording where each text lies. */
static void norm_msgs(slot *s, const tk_ex_msg *m, size_t n, char side, size_t *k, uint64_t *scripts) {
    tk_buf *b = &s->norm;
    for (size_t i = 0; i < n; i++, (*k)++) {
        char tag[3] = {(char)('0' + m[i].role), side, 0x1f};
        tk_buf_append(b, tag, 3);
        s->offs[2 * *k] = b->len;
        tk_text_normalize_ex(m[i].text, m[i].len, b, scripts);
        s->offs[2 * *k + 1] = b->len;
        tk_buf_append(b, "\x1e", 1);
    }
}

static void analyze_example(tk_analyzer *a, slot *s, tk_data_format fmt, tk_rec_out *o) {
    tk_example *ex = &s->ex;
    o->valid = true;
    o->n_msgs = (uint32_t)(ex->n > UINT32_MAX ? UINT32_MAX : ex->n);
    bool chat = chat_like(fmt);
    size_t nm = ex->n + ex->n_rej;
    if (2 * nm > s->offs_cap) {
        size_t c = 2 * nm + 16;
        size_t *p = realloc(s->offs, c * sizeof *p);
        if (!p) { o->valid = false; tk_rf_add(&o->fs, TK_DATA_ERROR, "internal", "out of memory"); return; }
        s->offs = p; s->offs_cap = c;
    }
    /* normalise every message once: exact/prompt/answer hashes, near-duplicate text, system prompt, scripts */
    uint64_t sc[TK_SCRIPT_COUNT] = {0};
    tk_buf *b = &s->norm;
    b->len = 0;
    size_t k = 0;
    norm_msgs(s, ex->msgs, ex->n_prompt, 'p', &k, sc);
    size_t plen = b->len;
    norm_msgs(s, ex->msgs + ex->n_prompt, ex->n - ex->n_prompt, 'a', &k, sc);
    norm_msgs(s, ex->rej, ex->n_rej, 'r', &k, NULL);
    if (ex->label) { tk_buf_append(b, "\x1dL", 2); tk_buf_append(b, ex->label, ex->label_len); }
    const char *bd = b->data ? b->data : "";
    o->h_exact = tk_hash64(bd, b->len, 1);

    for (size_t i = 0; i < ex->n; i++) {
        if (ex->msgs[i].role == TK_R_SYSTEM && !o->has_system) {
            o->has_system = true;
            o->h_system = tk_hash64(bd + s->offs[2 * i], s->offs[2 * i + 1] - s->offs[2 * i], 7);
            o->system_head = head_copy(ex->msgs[i].text, ex->msgs[i].len, 60);
        }
        if (ex->msgs[i].role == TK_R_USER) o->has_user = true;
    }
    if (!chat) o->has_system = o->has_user = true;  /* the warnings are about conversations */
    o->has_reply = ex->n_prompt < ex->n;
    if (o->has_reply) {
        const tk_ex_msg *r = &ex->msgs[ex->n - 1];
        o->empty_reply = !r->tool_calls && tk_text_blank(r->text, r->len);
    }
    if ((chat && fmt != TK_DATA_PREFERENCE && fmt != TK_DATA_KTO && o->has_reply) || fmt == TK_DATA_CLASSIFICATION) {
        o->has_prompt = true;
        o->h_prompt = tk_hash64(bd, plen, 2);
        o->h_answer = tk_hash64(bd + plen, b->len - plen, 3);
    }
    size_t bytes = 0;
    for (size_t i = 0; i < nm; i++) bytes += i < ex->n ? ex->msgs[i].len : ex->rej[i - ex->n].len;
    if (a->o.tokens && a->o.tok && bytes > TK_DATA_TOKENIZE_MAX) {
        /* far beyond any context: exact BPE on megabytes of one example only costs time and memory */
        tk_rf_add(&o->fs, TK_DATA_WARNING, "not_tokenized", "the example holds %.1f MB of text (over %d MiB): tokens estimated as bytes / 4",
                  (double)bytes / 1e6, (int)(TK_DATA_TOKENIZE_MAX >> 20));
        tk_data_count_tokens(NULL, TK_CHAT_UNKNOWN, s->tok, ex, &o->tok);
    } else if (a->o.tokens && tk_data_count_tokens(a->o.tok, a->o.fam, s->tok, ex, &o->tok) != TK_OK) {
        /* the template refuses the example (e.g. a system message for Gemma): training would fail on it */
        tk_rf_add(&o->fs, TK_DATA_WARNING, "template_error", "the chat template cannot render this example: %s; tokens counted approximately",
                  tk_last_error());
        tk_data_count_tokens(NULL, TK_CHAT_UNKNOWN, s->tok, ex, &o->tok);
    }

    /* near-duplicate text: everything except system prompts (shared by design) */
    if (a->o.sig) {
        tk_buf *nb = &s->near;
        nb->len = 0;
        for (size_t i = 0; i < nm; i++) {
            const tk_ex_msg *m = i < ex->n ? &ex->msgs[i] : &ex->rej[i - ex->n];
            if (m->role == TK_R_SYSTEM) continue;
            if (nb->len) tk_buf_append(nb, " ", 1);
            tk_buf_append(nb, bd + s->offs[2 * i], s->offs[2 * i + 1] - s->offs[2 * i]);
        }
        o->has_sig = nb->data && tk_minhash(nb->data, nb->len, o->sig);
    }

    if (a->pii) {
        for (size_t i = 0; i < nm; i++) {
            const tk_ex_msg *m = i < ex->n ? &ex->msgs[i] : &ex->rej[i - ex->n];
            s->matches.n = 0;
            if (tk_pii_scan(a->pii, s->pii, m->text, m->len, &s->matches) == TK_OK)
                for (size_t j = 0; j < s->matches.n; j++) o->pii[s->matches.v[j].kind]++;
        }
    }
    o->script = (uint8_t)tk_text_script(NULL, 0, sc);
    if (ex->label) o->label = tk_strndup(ex->label, ex->label_len);
}

void tk_analyze(tk_analyzer *a, int slot_i, const tk_raw *raw, tk_rec_out *o) {
    memset(o, 0, sizeof *o);
    o->kind = raw->kind;
    o->line = raw->line;
    o->record = raw->record;
    o->len = raw->len;
    if (raw->kind != TK_RAW_RECORD) return;
    slot *s = &a->slots[slot_i < a->n_slots ? slot_i : 0];
    bool nul;
    size_t bad = tk_utf8_check(raw->data, raw->len, &nul);
    if (bad < raw->len) {
        uint64_t line = raw->line, col = 1;
        for (size_t i = 0; i < bad; i++) {
            if (raw->data[i] == '\n') { line++; col = 1; }
            else if (((unsigned char)raw->data[i] & 0xC0) != 0x80) col++;
        }
        char where[64];
        if (line != raw->line) snprintf(where, sizeof where, "line %llu, column %llu", (unsigned long long)line, (unsigned long long)col);
        else snprintf(where, sizeof where, "column %llu", (unsigned long long)col);
        if (nul) tk_rf_add(&o->fs, TK_DATA_ERROR, "invalid_utf8", "NUL byte at %s (text files must not contain NUL)", where);
        else tk_rf_add(&o->fs, TK_DATA_ERROR, "invalid_utf8", "invalid UTF-8 byte 0x%02X at %s (the file must be UTF-8)",
                       (unsigned char)raw->data[bad], where);
        return;
    }
    cJSON *j = NULL;
    tk_layout_validate(a->o.layout, raw, &s->ex, &o->fs, &j);
    if (o->fs.n_errors == 0) analyze_example(a, s, a->o.layout->format, o);
    if (o->fs.n_errors == 0 && a->o.contam && tk_contam_match(a->o.contam, s->contam, &s->ex, &o->hits, &o->n_hits) != TK_OK)
        tk_rf_add(&o->fs, TK_DATA_ERROR, "internal", "out of memory in the contamination check");
    tk_example_reset(&s->ex);
    cJSON_Delete(j);
}

tk_status tk_data_detect(const char *path, const void *buf, size_t len, tk_data_container c, size_t max_line,
                         tk_data_format *out) {
    return tk_data_detect_ex(path, buf, len, c, max_line, out, NULL);
}

tk_status tk_data_detect_ex(const char *path, const void *buf, size_t len, tk_data_container c, size_t max_line,
                            tk_data_format *out, int *n_seen) {
    *out = TK_DATA_AUTO;
    if (n_seen) *n_seen = 0;
    tk_layout l;
    tk_status st = tk_layout_open(path, buf, len, NULL, c, TK_DATA_AUTO, NULL, max_line, &l);
    if (st) return st;
    *out = l.format;
    if (n_seen) *n_seen = l.n_seen;
    tk_layout_free(&l);
    return TK_OK;
}
