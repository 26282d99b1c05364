/* Rendering of check findings and reports: one line per finding
 * ("line N: category: reason", warnings as "line N: warning: category: reason"),
 * a readable report, and the same report as JSON. */
#include "data/data_internal.h"
#include <math.h>

static void pos(const tk_data_finding *f, tk_buf *out) {
    if (f->record) tk_buf_printf(out, "record %llu (line %llu): ", (unsigned long long)f->record, (unsigned long long)f->line);
    else if (f->line) tk_buf_printf(out, "line %llu: ", (unsigned long long)f->line);
    else tk_buf_printf(out, "file: ");
}

tk_status tk_data_finding_format(const tk_data_finding *f, tk_buf *out) {
    pos(f, out);
    return tk_buf_printf(out, "%s%s: %s", f->severity == TK_DATA_WARNING ? "warning: " : "", f->category, f->message);
}

tk_status tk_data_finding_json(const tk_data_finding *f, tk_buf *out) {
    tk_buf_printf(out, "{\"severity\":\"%s\",\"line\":%llu,", f->severity == TK_DATA_WARNING ? "warning" : "error",
                  (unsigned long long)f->line);
    if (f->record) tk_buf_printf(out, "\"record\":%llu,", (unsigned long long)f->record);
    tk_buf_printf(out, "\"category\":");
    tk_json_append_str(out, f->category, strlen(f->category));
    tk_buf_printf(out, ",\"message\":");
    tk_json_append_str(out, f->message, strlen(f->message));
    return tk_buf_append(out, "}", 1);
}

/* 1234567 -> "1,234,567" */
static const char *grp(uint64_t v, char *b) {
    char t[32];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        b[o++] = t[i];
        if ((n - i - 1) % 3 == 0 && i < n - 1) b[o++] = ',';
    }
    b[o] = 0;
    return b;
}

static void lines_list(tk_buf *out, const uint64_t *l, size_t n, size_t max) {
    for (size_t i = 0; i < n && i < max; i++) tk_buf_printf(out, "%s%llu", i ? ", " : "", (unsigned long long)l[i]);
    if (n > max) tk_buf_printf(out, ", … (%zu more)", n - max);
}

static void groups_text(tk_buf *out, const char *title, const tk_data_group *g, size_t n) {
    if (!n) return;
    tk_buf_printf(out, "  %s: %zu group%s\n", title, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n && i < 20; i++) {
        tk_buf_printf(out, "    lines ");
        lines_list(out, g[i].lines, g[i].n, 20);
        tk_buf_printf(out, "\n");
    }
    if (n > 20) tk_buf_printf(out, "    … %zu more groups (--json lists all)\n", n - 20);
}

static const char *dur(double s, char *b, size_t cap) {
    if (s < 60) snprintf(b, cap, "%.0f s", s);
    else if (s < 3600) snprintf(b, cap, "%.0f min", s / 60);
    else if (s < 86400 * 2) snprintf(b, cap, "%.0f h %02.0f min", floor(s / 3600), fmod(s, 3600) / 60);
    else snprintf(b, cap, "%.1f days", s / 86400);
    return b;
}

static const char *const k_contam_method = "exact: same normalised text; prompt: same normalised prompt; near: exact Jaccard "
                                           "of character 5-gram sets >= threshold (candidates from MinHash LSH, 16 bands x 4)";

static void contamination_text(const tk_data_report *r, tk_buf *out) {
    tk_buf_printf(out, "\ncontamination (against ");
    for (size_t i = 0; i < r->n_against; i++) tk_buf_printf(out, "%s%s", i ? ", " : "", r->against[i]);
    tk_buf_printf(out, ": %llu records compared", (unsigned long long)r->against_records);
    if (r->against_invalid) tk_buf_printf(out, ", %llu unreadable and not compared", (unsigned long long)r->against_invalid);
    tk_buf_printf(out, ")\n");
    if (!r->n_contaminated) {
        tk_buf_printf(out, "  none: no training record is the same as, has the same prompt as, or is within Jaccard %.2f of an evaluation record\n",
                      r->contamination_threshold);
        return;
    }
    tk_buf_printf(out, "  %llu training record%s match: %llu exact, %llu same prompt, %llu near (Jaccard of character 5-grams >= %.2f)\n",
                  (unsigned long long)r->n_contaminated, r->n_contaminated == 1 ? "" : "s", (unsigned long long)r->n_contam_kind[0],
                  (unsigned long long)r->n_contam_kind[1], (unsigned long long)r->n_contam_kind[2], r->contamination_threshold);
    for (size_t i = 0; i < r->n_contamination && i < 30; i++) {
        const tk_data_contamination *c = &r->contamination[i];
        tk_buf_printf(out, "    line %llu = %s line %llu (%s", (unsigned long long)c->line, r->against[c->file], (unsigned long long)c->eval_line,
                      tk_contam_kind_name(c->kind));
        if (c->kind == TK_CONTAM_NEAR) tk_buf_printf(out, ", Jaccard %.2f", c->similarity);
        tk_buf_printf(out, ")\n");
    }
    if (r->n_contamination > 30) tk_buf_printf(out, "    … %zu more matches (--json lists all)\n", r->n_contamination - 30);
}

/* Why the verdict is what it is: one short phrase per reason. */
static int reasons(const tk_data_report *r, char out[][96], int max) {
    int n = 0;
#define R(...) do { if (n < max) snprintf(out[n++], 96, __VA_ARGS__); } while (0)
    if (r->n_errors) R("%llu error%s", (unsigned long long)r->n_errors, r->n_errors == 1 ? "" : "s");
    if (r->n_examples == 0) R("no valid example");
    if (r->n_warnings) R("%llu warning%s", (unsigned long long)r->n_warnings, r->n_warnings == 1 ? "" : "s");
    if (r->n_examples && r->n_examples < 10) R("fewer than 10 examples (OpenAI requires 10)");
    if (r->n_no_system) R("%llu without a system message", (unsigned long long)r->n_no_system);
    if (r->n_system_prompts > 1) R("%llu different system prompts", (unsigned long long)r->n_system_prompts);
    if (r->n_exact_dups) R("%zu exact duplicate group%s", r->n_exact_dups, r->n_exact_dups == 1 ? "" : "s");
    if (r->n_near_dups) R("%zu near-duplicate group%s", r->n_near_dups, r->n_near_dups == 1 ? "" : "s");
    if (r->n_conflicts) R("%zu inconsistent group%s", r->n_conflicts, r->n_conflicts == 1 ? "" : "s");
    if (r->n_contaminated) R("%llu record%s also in the --against files", (unsigned long long)r->n_contaminated, r->n_contaminated == 1 ? "" : "s");
    uint64_t pii = 0;
    for (int k = 0; k < TK_PII_COUNT; k++) pii += r->pii_matches[k];
    if (pii) R("%llu personal data match%s", (unsigned long long)pii, pii == 1 ? "" : "es");
#undef R
    return n;
}

tk_status tk_data_report_text(const tk_data_report *r, tk_buf *out) {
    char a[32], b[32], c[32], d4[32];
    tk_buf_printf(out, "file: %s (%s, %s lines, %.1f MB)\n", r->path, tk_data_container_name(r->container), grp(r->n_lines, a),
                  (double)r->bytes / 1e6);
    tk_buf_printf(out, "format: %s%s\n", tk_data_format_name(r->format), r->format_detected ? " (detected)" : "");
    tk_buf_printf(out, "records: %s, valid examples: %s, errors: %s, warnings: %s\n", grp(r->n_records, a), grp(r->n_examples, b),
                  grp(r->n_errors, c), grp(r->n_warnings, d4));
    for (int k = 0; k < 2; k++) {
        const tk_data_count *v = k ? r->warning_counts : r->error_counts;
        size_t n = k ? r->n_warning_counts : r->n_error_counts;
        if (!n) continue;
        tk_buf_printf(out, "  %s:", k ? "warnings" : "errors");
        for (size_t i = 0; i < n; i++) {
            tk_buf_printf(out, "%s %s %llu", i ? "," : "", v[i].name, (unsigned long long)v[i].count);
            if (v[i].first_line) tk_buf_printf(out, " (first line %llu)", (unsigned long long)v[i].first_line);
            else tk_buf_printf(out, " (whole file)");
        }
        tk_buf_printf(out, "\n");
    }

    if (r->n_examples) {
        tk_buf_printf(out, "\nstatistics (%s)\n", r->tokens_exact
                      ? (r->chat_family != TK_CHAT_UNKNOWN ? "model tokenizer, rendered with the chat template" : "model tokenizer, message contents")
                      : "approximate tokens: UTF-8 bytes / 4, no tokenizer");
        if (r->tokens_exact && r->chat_family != TK_CHAT_UNKNOWN) tk_buf_printf(out, "  chat template: %s\n", tk_chat_family_name(r->chat_family));
        tk_buf_printf(out, "  %-22s %8s %8s %8s %9s %8s %8s\n", "", "min", "p5", "median", "mean", "p95", "max");
        const tk_data_dist *d[3] = {&r->messages, &r->tokens, &r->assistant_tokens};
        const char *nm[3] = {"messages per example", "tokens per example", "assistant tokens"};
        for (int k = 0; k < 3; k++)
            tk_buf_printf(out, "  %-22s %8.0f %8.1f %8.1f %9.1f %8.1f %8.0f\n", nm[k], d[k]->min, d[k]->p5, d[k]->median, d[k]->mean,
                          d[k]->p95, d[k]->max);
        tk_buf_printf(out, "  total tokens: %s (trained assistant tokens: %s)\n", grp(r->total_tokens, a), grp(r->total_assistant_tokens, b));
        if (r->max_seq > 0)
            tk_buf_printf(out, "  context %lld tokens: %s example%s longer (%s tokens would be cut)\n", (long long)r->max_seq,
                          grp(r->n_too_long, a), r->n_too_long == 1 ? "" : "s", grp(r->tokens_cut, b));
        if (r->format != TK_DATA_TEXT && r->format != TK_DATA_CLASSIFICATION) {
            tk_buf_printf(out, "  without a system message: %s; without a user message: %s; empty replies: %s\n", grp(r->n_no_system, a),
                          grp(r->n_no_user, b), grp(r->n_empty_reply, c));
            if (r->n_system_prompts > 0) {
                tk_buf_printf(out, "  system prompts: %llu distinct%s\n", (unsigned long long)r->n_system_prompts,
                              r->n_system_prompts > 1 ? " (warning: examples differ in their system prompt)" : "");
                for (size_t i = 0; i < r->n_system_prompt_list && r->n_system_prompts > 1; i++)
                    tk_buf_printf(out, "    \"%s\" — first line %llu, %llu examples\n", r->system_prompts[i].name ? r->system_prompts[i].name : "",
                                  (unsigned long long)r->system_prompts[i].first_line, (unsigned long long)r->system_prompts[i].count);
            }
        }
    }

    tk_buf_printf(out, "\nduplicates\n");
    if (!r->n_exact_dups && !r->n_near_dups && !r->n_conflicts) tk_buf_printf(out, "  none found\n");
    if (r->n_exact_dups) tk_buf_printf(out, "  exact duplicates (after white-space/Unicode normalisation): %llu extra records\n",
                                       (unsigned long long)r->n_exact_dup_records);
    groups_text(out, "exact duplicate", r->exact_dups, r->n_exact_dups);
    char near_title[96];
    snprintf(near_title, sizeof near_title, "near-duplicate (MinHash, est. Jaccard >= %.2f over character 5-grams)", r->near_dup_threshold);
    groups_text(out, near_title, r->near_dups, r->n_near_dups);
    groups_text(out, "inconsistent (same prompt, different answers)", r->conflicts, r->n_conflicts);

    if (r->n_against) contamination_text(r, out);

    tk_buf_printf(out, "\npersonal data\n");
    bool any = false;
    for (int k = 0; k < TK_PII_COUNT; k++) {
        if (!r->pii_matches[k]) continue;
        any = true;
        tk_buf_printf(out, "  %s: %llu match%s on %llu line%s: ", tk_pii_name(k), (unsigned long long)r->pii_matches[k],
                      r->pii_matches[k] == 1 ? "" : "es", (unsigned long long)r->pii[k].count, r->pii[k].count == 1 ? "" : "s");
        lines_list(out, r->pii[k].lines, r->pii[k].n, 30);
        tk_buf_printf(out, "\n");
    }
    if (!any) tk_buf_printf(out, "  none found (e-mail, phone, credit card, IP)\n");
    else tk_buf_printf(out, "  (takumi data redact FILE --out FILE2 replaces them with [EMAIL], [PHONE], [CREDIT_CARD], [IP])\n");

    if (r->n_examples) {
        tk_buf_printf(out, "\nbalance\n");
        if (r->n_labels) {
            tk_buf_printf(out, "  labels (%zu%s):", r->n_labels, r->labels_truncated ? "+, list truncated" : "");
            for (size_t i = 0; i < r->n_labels && i < 30; i++)
                tk_buf_printf(out, "%s %s %.1f%% (%llu)", i ? "," : "", r->labels[i].name, 100.0 * (double)r->labels[i].count / (double)r->n_examples,
                              (unsigned long long)r->labels[i].count);
            if (r->n_labels > 30) tk_buf_printf(out, ", …");
            tk_buf_printf(out, "\n");
        }
        tk_buf_printf(out, "  scripts:");
        bool first = true;
        for (int s = 0; s < TK_SCRIPT_COUNT; s++) {
            if (!r->scripts[s]) continue;
            tk_buf_printf(out, "%s %s %.1f%%", first ? "" : ",", tk_data_script_name(s), 100.0 * (double)r->scripts[s] / (double)r->n_examples);
            first = false;
        }
        tk_buf_printf(out, "\n");
        if (r->format != TK_DATA_TEXT && r->format != TK_DATA_CLASSIFICATION)
            tk_buf_printf(out, "  very short replies (< 5 tokens): %.1f%% (%llu)\n", 100.0 * (double)r->n_short_reply / (double)r->n_examples,
                          (unsigned long long)r->n_short_reply);

        tk_buf_printf(out, "\ncost and time\n");
        tk_buf_printf(out, "  epochs (OpenAI's auto rule for %s examples): %d\n", grp(r->n_examples, a), r->epochs);
        tk_buf_printf(out, "  billed tokens (tokens per example capped at the context, x epochs): %s\n", grp(r->billed_tokens, a));
        if (r->est_seconds > 0) {
            char d[64];
            tk_buf_printf(out, "  estimated training time (LoRA, %d epochs at %.0f tokens/s): %s (estimate)\n", r->epochs, r->tokens_per_second,
                          dur(r->est_seconds, d, sizeof d));
            if (r->throughput_note) tk_buf_printf(out, "    throughput: %s\n", r->throughput_note);
        }
    }
    char why[16][96];
    int nw = r->verdict == TK_DATA_READY ? 0 : reasons(r, why, 16);
    tk_buf_printf(out, "\nverdict: %s", tk_data_verdict_name(r->verdict));
    for (int i = 0; i < nw; i++) tk_buf_printf(out, "%s%s", i ? "; " : " (", why[i]);
    return tk_buf_printf(out, "%s\n", nw ? ")" : "");
}

static void jstr(tk_buf *o, const char *s) { if (s) tk_json_append_str(o, s, strlen(s)); else tk_buf_append(o, "null", 4); }
static void jnum(tk_buf *o, double v) {
    if (!isfinite(v)) tk_buf_append(o, "null", 4);
    else if (v == floor(v) && fabs(v) < 1e15) tk_buf_printf(o, "%.0f", v);
    else tk_buf_printf(o, "%.6g", v);
}
static void jlines(tk_buf *o, const uint64_t *l, size_t n) {
    tk_buf_append(o, "[", 1);
    for (size_t i = 0; i < n; i++) tk_buf_printf(o, "%s%llu", i ? "," : "", (unsigned long long)l[i]);
    tk_buf_append(o, "]", 1);
}
static void jdist(tk_buf *o, const char *k, const tk_data_dist *d) {
    tk_buf_printf(o, "\"%s\":{\"min\":", k); jnum(o, d->min);
    tk_buf_printf(o, ",\"p5\":"); jnum(o, d->p5);
    tk_buf_printf(o, ",\"median\":"); jnum(o, d->median);
    tk_buf_printf(o, ",\"mean\":"); jnum(o, d->mean);
    tk_buf_printf(o, ",\"p95\":"); jnum(o, d->p95);
    tk_buf_printf(o, ",\"max\":"); jnum(o, d->max);
    tk_buf_printf(o, "}");
}
static void jgroups(tk_buf *o, const char *k, const tk_data_group *g, size_t n) {
    tk_buf_printf(o, "\"%s\":[", k);
    for (size_t i = 0; i < n; i++) { if (i) tk_buf_append(o, ",", 1); jlines(o, g[i].lines, g[i].n); }
    tk_buf_append(o, "]", 1);
}
static void jcounts(tk_buf *o, const char *k, const tk_data_count *v, size_t n) {
    tk_buf_printf(o, "\"%s\":{", k);
    for (size_t i = 0; i < n; i++) {
        if (i) tk_buf_append(o, ",", 1);
        jstr(o, v[i].name);
        tk_buf_printf(o, ":%llu", (unsigned long long)v[i].count);
    }
    tk_buf_append(o, "}", 1);
}

tk_status tk_data_report_json(const tk_data_report *r, tk_buf *o) {
    tk_buf_printf(o, "{\"file\":"); jstr(o, r->path);
    tk_buf_printf(o, ",\"container\":\"%s\",\"format\":\"%s\",\"format_detected\":%s", tk_data_container_name(r->container),
                  tk_data_format_name(r->format), r->format_detected ? "true" : "false");
    tk_buf_printf(o, ",\"bytes\":%llu,\"lines\":%llu,\"records\":%llu,\"examples\":%llu,\"errors\":%llu,\"warnings\":%llu",
                  (unsigned long long)r->bytes, (unsigned long long)r->n_lines, (unsigned long long)r->n_records,
                  (unsigned long long)r->n_examples, (unsigned long long)r->n_errors, (unsigned long long)r->n_warnings);
    tk_buf_append(o, ",", 1); jcounts(o, "error_counts", r->error_counts, r->n_error_counts);
    tk_buf_append(o, ",", 1); jcounts(o, "warning_counts", r->warning_counts, r->n_warning_counts);
    tk_buf_printf(o, ",\"tokens_exact\":%s,\"chat_template\":", r->tokens_exact ? "true" : "false");
    if (r->tokens_exact && r->chat_family != TK_CHAT_UNKNOWN) jstr(o, tk_chat_family_name(r->chat_family)); else tk_buf_append(o, "null", 4);
    tk_buf_printf(o, ",\"max_seq\":%lld,\"statistics\":{", (long long)r->max_seq);
    jdist(o, "messages_per_example", &r->messages); tk_buf_append(o, ",", 1);
    jdist(o, "tokens_per_example", &r->tokens); tk_buf_append(o, ",", 1);
    jdist(o, "assistant_tokens_per_example", &r->assistant_tokens);
    tk_buf_printf(o, ",\"total_tokens\":%llu,\"total_assistant_tokens\":%llu,\"too_long\":%llu,\"tokens_cut\":%llu",
                  (unsigned long long)r->total_tokens, (unsigned long long)r->total_assistant_tokens, (unsigned long long)r->n_too_long,
                  (unsigned long long)r->tokens_cut);
    tk_buf_printf(o, ",\"no_system_message\":%llu,\"no_user_message\":%llu,\"empty_replies\":%llu,\"short_replies\":%llu,\"system_prompts\":%llu",
                  (unsigned long long)r->n_no_system, (unsigned long long)r->n_no_user, (unsigned long long)r->n_empty_reply,
                  (unsigned long long)r->n_short_reply, (unsigned long long)r->n_system_prompts);
    tk_buf_printf(o, ",\"system_prompt_list\":[");
    for (size_t i = 0; i < r->n_system_prompt_list; i++) {
        tk_buf_printf(o, "%s{\"start\":", i ? "," : "");
        jstr(o, r->system_prompts[i].name);
        tk_buf_printf(o, ",\"first_line\":%llu,\"count\":%llu}", (unsigned long long)r->system_prompts[i].first_line,
                      (unsigned long long)r->system_prompts[i].count);
    }
    tk_buf_printf(o, "]},\"duplicates\":{\"exact_extra_records\":%llu,", (unsigned long long)r->n_exact_dup_records);
    jgroups(o, "exact", r->exact_dups, r->n_exact_dups); tk_buf_append(o, ",", 1);
    jgroups(o, "near", r->near_dups, r->n_near_dups); tk_buf_append(o, ",", 1);
    jgroups(o, "inconsistent", r->conflicts, r->n_conflicts);
    tk_buf_printf(o, "},\"personal_data\":{");
    for (int k = 0; k < TK_PII_COUNT; k++) {
        tk_buf_printf(o, "%s\"%s\":{\"matches\":%llu,\"lines\":", k ? "," : "", tk_pii_name(k), (unsigned long long)r->pii_matches[k]);
        jlines(o, r->pii[k].lines, r->pii[k].n);
        tk_buf_append(o, "}", 1);
    }
    tk_buf_printf(o, "},\"balance\":{");
    jcounts(o, "labels", r->labels, r->n_labels);
    tk_buf_printf(o, ",\"labels_truncated\":%s,\"scripts\":{", r->labels_truncated ? "true" : "false");
    bool first = true;
    for (int s = 0; s < TK_SCRIPT_COUNT; s++) {
        if (!r->scripts[s]) continue;
        tk_buf_printf(o, "%s\"%s\":%llu", first ? "" : ",", tk_data_script_name(s), (unsigned long long)r->scripts[s]);
        first = false;
    }
    tk_buf_printf(o, "},\"short_reply_share\":");
    jnum(o, r->n_examples ? (double)r->n_short_reply / (double)r->n_examples : 0);
    tk_buf_printf(o, "},\"cost\":{\"epochs\":%d,\"billed_tokens\":%llu,\"tokens_per_second\":", r->epochs, (unsigned long long)r->billed_tokens);
    jnum(o, r->tokens_per_second);
    tk_buf_printf(o, ",\"estimated_seconds\":");
    jnum(o, r->est_seconds);
    tk_buf_printf(o, ",\"throughput_note\":");
    jstr(o, r->throughput_note);
    tk_buf_printf(o, "},\"contamination\":");
    if (!r->n_against) tk_buf_append(o, "null", 4);
    else {
        tk_buf_printf(o, "{\"against\":[");
        for (size_t i = 0; i < r->n_against; i++) { if (i) tk_buf_append(o, ",", 1); jstr(o, r->against[i]); }
        tk_buf_printf(o, "],\"records_compared\":%llu,\"unreadable\":%llu,\"threshold\":", (unsigned long long)r->against_records,
                      (unsigned long long)r->against_invalid);
        jnum(o, r->contamination_threshold);
        tk_buf_printf(o, ",\"method\":");
        jstr(o, k_contam_method);
        tk_buf_printf(o, ",\"contaminated_records\":%llu,\"exact\":%llu,\"prompt\":%llu,\"near\":%llu,\"matches\":[",
                      (unsigned long long)r->n_contaminated, (unsigned long long)r->n_contam_kind[0], (unsigned long long)r->n_contam_kind[1],
                      (unsigned long long)r->n_contam_kind[2]);
        for (size_t i = 0; i < r->n_contamination; i++) {
            const tk_data_contamination *c = &r->contamination[i];
            tk_buf_printf(o, "%s{\"line\":%llu,\"file\":", i ? "," : "", (unsigned long long)c->line);
            jstr(o, r->against[c->file]);
            tk_buf_printf(o, ",\"eval_line\":%llu,\"kind\":\"%s\",\"similarity\":", (unsigned long long)c->eval_line, tk_contam_kind_name(c->kind));
            jnum(o, c->similarity);
            tk_buf_append(o, "}", 1);
        }
        tk_buf_append(o, "]}", 2);
    }
    tk_buf_printf(o, ",\"verdict\":\"%s\",\"verdict_reasons\":[", tk_data_verdict_name(r->verdict));
    char why[16][96];
    int nw = r->verdict == TK_DATA_READY ? 0 : reasons(r, why, 16);
    for (int i = 0; i < nw; i++) { if (i) tk_buf_append(o, ",", 1); jstr(o, why[i]); }
    tk_buf_printf(o, "],\"seconds\":");
    jnum(o, r->seconds);
    return tk_buf_append(o, "}", 1);
}
