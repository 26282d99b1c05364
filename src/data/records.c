/* Reading training records through the data toolkit (see records.h). */
#include "data/records.h"

#define MAX_LISTED_ERRORS 5

static tk_status src_open(const tk_rec_src *s, tk_reader **r) {
    if (s->path) return tk_reader_open(s->path, TK_DATA_CONTAINER_AUTO, TK_DATA_DEFAULT_MAX_LINE, r);
    return tk_reader_open_memory(s->buf, s->len, s->name, TK_DATA_CONTAINER_AUTO, TK_DATA_DEFAULT_MAX_LINE, r);
}

static tk_role role_of(int r) {
    switch (r) {
    case TK_R_SYSTEM: return TK_ROLE_SYSTEM;
    case TK_R_ASSISTANT: return TK_ROLE_ASSISTANT;
    case TK_R_TOOL: return TK_ROLE_TOOL;
    default: return TK_ROLE_USER;
    }
}

tk_status tk_rec_msgs_set(tk_rec_msgs *mb, const tk_ex_msg *v, size_t n) {
    if (n > mb->cap) {
        size_t c = n + 16;
        tk_chat_msg *m = tk_realloc(mb->m, c * sizeof *m);
        if (!m) return TK_ERR_NOMEM;
        mb->m = m;
        int8_t *w = tk_realloc(mb->w, c);
        if (!w) return TK_ERR_NOMEM;
        mb->w = w;
        mb->cap = c;
    }
    mb->text.len = 0;
    size_t *at = tk_malloc((n ? n : 1) * sizeof *at);
    if (!at) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    for (size_t i = 0; i < n && !st; i++) {
        at[i] = mb->text.len;
        st = tk_buf_append(&mb->text, v[i].text, v[i].len);
        if (!st) st = tk_buf_append(&mb->text, "", 1);
        mb->m[i].role = role_of(v[i].role);
        mb->w[i] = v[i].weight;
    }
    for (size_t i = 0; i < n && !st; i++) mb->m[i].content = mb->text.data + at[i];
    free(at);
    return st;
}

void tk_rec_msgs_free(tk_rec_msgs *mb) { free(mb->m); free(mb->w); tk_buf_free(&mb->text); }

static bool sft_format(tk_data_format f) {
    return f == TK_DATA_CHAT || f == TK_DATA_PROMPT_COMPLETION || f == TK_DATA_ALPACA || f == TK_DATA_SHAREGPT ||
           f == TK_DATA_TEXT;
}

static bool allowed(tk_data_format f, tk_rec_kind kind) {
    if (kind == TK_REC_KTO) return f == TK_DATA_KTO;
    if (kind == TK_REC_PROMPTS) return f != TK_DATA_TEXT;   /* a classification text is a prompt too (its label for the grader) */
    if (kind == TK_REC_CLASSIFY) return f == TK_DATA_CLASSIFICATION;
    return kind == TK_REC_PREFERENCE ? f == TK_DATA_PREFERENCE : sft_format(f) || (kind == TK_REC_ANY && (f == TK_DATA_PREFERENCE || f == TK_DATA_KTO));
}

tk_status tk_rec_each(const tk_rec_src *s, tk_data_format *fmt, tk_rec_kind kind, uint64_t *n_records, tk_rec_fn fn, void *ud) {
    const char *name = s->path ? s->path : s->name ? s->name : "<memory>";
    tk_status st;
    if (*fmt == TK_DATA_AUTO) {
        st = tk_data_detect(s->path, s->buf, s->len, TK_DATA_CONTAINER_AUTO, TK_DATA_DEFAULT_MAX_LINE, fmt);
        if (st) return tk_fail_ctx(st, "%s: ", name);
        if (*fmt == TK_DATA_AUTO)
            return tk_fail(TK_ERR_FORMAT, "%s: no records of a known format (expected OpenAI chat \"messages\", "
                           "prompt/completion, Alpaca or ShareGPT JSONL); `takumi data check %s` lists the problems", name, name);
    }
    if (kind == TK_REC_PREFERENCE && *fmt != TK_DATA_PREFERENCE)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s data has no chosen and rejected answers: preference objectives (dpo, orpo, simpo, reward) "
                       "train on preference pairs (TRL prompt/chosen/rejected, OpenAI input/preferred_output/non_preferred_output, "
                       "LLaMA-Factory conversations/chosen/rejected)", name, tk_data_format_name(*fmt));
    if (kind == TK_REC_KTO && *fmt != TK_DATA_KTO)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s data has no labelled completions: --objective kto trains on KTO data (TRL "
                       "prompt/completion/label, LLaMA-Factory messages/label, the label true or false)", name, tk_data_format_name(*fmt));
    if (kind == TK_REC_PROMPTS && !allowed(*fmt, kind))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s data has no prompts to answer: --objective grpo and self take OpenAI's reinforcement "
                       "fine-tuning format (\"messages\" ending with a user turn, plus the fields the grader reads) or any data with "
                       "prompts (chat, prompt/completion, preference)", name, tk_data_format_name(*fmt));
    if (*fmt == TK_DATA_RFT && kind != TK_REC_PROMPTS)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: rft data (conversations ending with a user turn) has no answers to learn from: train "
                       "it with --objective grpo (a --grader scores sampled answers) or --objective self", name);
    if (kind == TK_REC_CLASSIFY && *fmt != TK_DATA_CLASSIFICATION)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s data has no labels: --task classify and regress train on {\"text\", \"label\"} "
                       "JSONL or text<TAB>label TSV", name, tk_data_format_name(*fmt));
    if (!allowed(*fmt, kind))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s data cannot be used for supervised fine-tuning (use chat, prompt/completion, "
                       "Alpaca, ShareGPT or text%s)", name, tk_data_format_name(*fmt),
                       *fmt == TK_DATA_PREFERENCE ? "; train preference pairs with --objective dpo, orpo, simpo or reward"
                       : *fmt == TK_DATA_KTO ? "; train labelled completions with --objective kto" : "");
    tk_reader *r;
    if ((st = src_open(s, &r))) return st;
    tk_data_container c = tk_reader_container(r);
    if (c == TK_DATA_TSV && kind != TK_REC_CLASSIFY) {
        tk_reader_close(r);
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: TSV (classification) data cannot be used for supervised fine-tuning", name);
    }
    tk_example ex = {0};
    tk_rfinds fs = {0};
    tk_buf errs = {0};
    uint64_t n_bad = 0;
    tk_raw raw;
    bool has;
    while ((st = tk_reader_next(r, &raw, &has)) == TK_OK && has) {
        if (raw.kind == TK_RAW_FATAL) { st = tk_fail(TK_ERR_FORMAT, "%s: %s", name, raw.msg ? raw.msg : "unreadable"); break; }
        if (raw.kind == TK_RAW_BLANK || raw.kind == TK_RAW_HEADER) continue;
        (*n_records)++;
        tk_rf_clear(&fs);
        if (raw.kind == TK_RAW_TOO_LONG) {
            tk_rf_add(&fs, TK_DATA_ERROR, "too_long", "record of %zu bytes is longer than the limit", raw.len);
        } else {
            bool nul;
            size_t bad = tk_utf8_check(raw.data, raw.len, &nul);
            if (bad < raw.len) tk_rf_add(&fs, TK_DATA_ERROR, "invalid_utf8", nul ? "NUL byte in the record" : "invalid UTF-8 byte 0x%02X",
                                         (unsigned char)raw.data[bad]);
            else {
                cJSON *j = NULL;
                if (c == TK_DATA_TXT) tk_data_validate_txt(raw.data, raw.len, &ex, &fs);
                else if (c == TK_DATA_TSV) tk_data_validate_tsv(raw.data, raw.len, &ex, &fs);
                else if ((j = tk_json_parse(raw.data, raw.len, raw.line, &fs))) tk_data_validate(*fmt, j, &ex, &fs);
                ex.record = j;
                if (fs.n_errors == 0) st = fn(ud, &ex, raw.line);
                cJSON_Delete(j);
                tk_example_reset(&ex);
                if (st) break;
            }
        }
        if (fs.n_errors > 0) {
            n_bad++;
            for (size_t i = 0; i < fs.n && n_bad <= MAX_LISTED_ERRORS; i++) {
                if (fs.v[i].severity != TK_DATA_ERROR) continue;
                tk_buf_printf(&errs, "\n  line %llu: %s: %s", (unsigned long long)(fs.v[i].line ? fs.v[i].line : raw.line),
                              fs.v[i].category, fs.v[i].message ? fs.v[i].message : "");
                break;
            }
        }
    }
    tk_example_free(&ex);
    tk_rf_clear(&fs);
    free(fs.v);
    tk_reader_close(r);
    if (!st && n_bad)
        st = tk_fail(TK_ERR_FORMAT, "%s: %llu invalid record%s (as %s data):%s%s\n  (`takumi data check %s` lists every problem)", name,
                     (unsigned long long)n_bad, n_bad == 1 ? "" : "s", tk_data_format_name(*fmt), errs.data ? errs.data : "",
                     n_bad > MAX_LISTED_ERRORS ? "\n  …" : "", name);
    tk_buf_free(&errs);
    return st;
}

