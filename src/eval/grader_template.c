/* Grader templates: literal text with "{{ item.a.b }}", "{{ item.list[0] }}" and
 * "{{ sample.output_text }}" substitutions, compiled once and rendered per sample. */
#include "eval/grader_internal.h"
#include <ctype.h>
#include <stdio.h>

typedef struct tk_tmpl_part {
    char *text;   /* literal (when !is_var) or the variable as written, for messages */
    bool is_var;
    bool sample;  /* sample.output_text; else a path into item */
    char **keys;  /* item path: object keys, or NULL where index >= 0 */
    int *index;   /* array indices (-1 for a key) */
    int n_keys;
} tk_tmpl_part;

struct tk_tmpl {
    tk_tmpl_part *parts;
    int n;
};

void tk_tmpl_free(tk_tmpl *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        tk_tmpl_part *p = &t->parts[i];
        for (int k = 0; k < p->n_keys; k++) free(p->keys[k]);
        free(p->keys);
        free(p->index);
        free(p->text);
    }
    free(t->parts);
    free(t);
}

static tk_tmpl_part *add_part(tk_tmpl *t, const char *s, size_t n, bool is_var) {
    tk_tmpl_part *np = tk_realloc(t->parts, (size_t)(t->n + 1) * sizeof *np);
    if (!np) return NULL;
    t->parts = np;
    tk_tmpl_part *p = &np[t->n];
    memset(p, 0, sizeof *p);
    p->text = tk_strndup(s, n);
    if (!p->text) return NULL;
    p->is_var = is_var;
    t->n++;
    return p;
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

static tk_status add_key(tk_tmpl_part *p, const char *s, size_t n, int index) {
    char **nk = tk_realloc(p->keys, (size_t)(p->n_keys + 1) * sizeof *nk);
    if (!nk) return TK_ERR_NOMEM;
    p->keys = nk;
    int *ni = tk_realloc(p->index, (size_t)(p->n_keys + 1) * sizeof *ni);
    if (!ni) return TK_ERR_NOMEM;
    p->index = ni;
    nk[p->n_keys] = NULL;
    ni[p->n_keys] = index;
    if (index < 0 && !(nk[p->n_keys] = tk_strndup(s, n))) return TK_ERR_NOMEM;
    p->n_keys++;
    return TK_OK;
}

/* Parses the variable "item.a.b[2].c" or "sample.output_text" (already trimmed) into p. */
static tk_status parse_var(tk_tmpl_part *p, const char *v, const char *where) {
    if (!strcmp(v, "sample.output_text")) { p->sample = true; return TK_OK; }
    if (!strncmp(v, "sample.", 7))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: {{ %s }}: only sample.output_text is supported in the sample namespace", where, v);
    if (strncmp(v, "item", 4) || (v[4] != '.' && v[4] != '['))
        return tk_fail(TK_ERR_FORMAT, "%s: {{ %s }}: unknown variable (use item.<field> or sample.output_text)", where, v);
    const char *s = v + 4;
    while (*s) {
        if (*s == '.') {
            const char *b = ++s;
            while (ident_char(*s)) s++;
            if (s == b) return tk_fail(TK_ERR_FORMAT, "%s: {{ %s }}: empty field name", where, v);
            tk_status st = add_key(p, b, (size_t)(s - b), -1);
            if (st) return st;
        } else if (*s == '[') {
            s++;
            long idx = 0;
            if (!isdigit((unsigned char)*s)) return tk_fail(TK_ERR_FORMAT, "%s: {{ %s }}: expected an index after '['", where, v);
            while (isdigit((unsigned char)*s)) {
                idx = idx * 10 + (*s++ - '0');
                if (idx > 1000000) return tk_fail(TK_ERR_FORMAT, "%s: {{ %s }}: index too large", where, v);
            }
            if (*s++ != ']') return tk_fail(TK_ERR_FORMAT, "%s: {{ %s }}: expected ']'", where, v);
            tk_status st = add_key(p, NULL, 0, (int)idx);
            if (st) return st;
        } else {
            return tk_fail(TK_ERR_FORMAT, "%s: {{ %s }}: unexpected '%c' in the variable", where, v, *s);
        }
    }
    return TK_OK;
}

tk_status tk_tmpl_parse(const char *text, const char *where, tk_tmpl **out) {
    *out = NULL;
    tk_tmpl *t = tk_calloc(1, sizeof *t);
    if (!t) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    const char *s = text;
    while (*s) {
        const char *open = strstr(s, "{{");
        if (!open) open = s + strlen(s);
        if (open > s && !add_part(t, s, (size_t)(open - s), false)) { st = TK_ERR_NOMEM; break; }
        if (!*open) break;
        const char *close = strstr(open + 2, "}}");
        if (!close) { st = tk_fail(TK_ERR_FORMAT, "%s: '{{' without a closing '}}'", where); break; }
        const char *b = open + 2, *e = close;
        while (b < e && isspace((unsigned char)*b)) b++;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        tk_tmpl_part *p = add_part(t, b, (size_t)(e - b), true);
        if (!p) { st = TK_ERR_NOMEM; break; }
        if ((st = parse_var(p, p->text, where))) break;
        s = close + 2;
    }
    if (st) { tk_tmpl_free(t); return st; }
    *out = t;
    return TK_OK;
}

tk_status tk_tmpl_render(const tk_tmpl *t, const cJSON *item, const char *output_text, tk_buf *out, bool *missing,
                         char *err, size_t errlen) {
    *missing = false;
    for (int i = 0; i < t->n; i++) {
        const tk_tmpl_part *p = &t->parts[i];
        tk_status st;
        if (!p->is_var) {
            st = tk_buf_append(out, p->text, strlen(p->text));
        } else if (p->sample) {
            st = tk_buf_append(out, output_text ? output_text : "", output_text ? strlen(output_text) : 0);
        } else {
            const cJSON *v = item;
            for (int k = 0; k < p->n_keys && v; k++)
                v = p->index[k] >= 0 ? (cJSON_IsArray(v) ? cJSON_GetArrayItem(v, p->index[k]) : NULL)
                                     : (cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, p->keys[k]) : NULL);
            if (!v) {
                *missing = true;
                snprintf(err, errlen, "%s is missing from the record", p->text);
                return TK_OK;
            }
            if (cJSON_IsString(v)) {
                st = tk_buf_append(out, v->valuestring, strlen(v->valuestring));
            } else {
                char *j = cJSON_PrintUnformatted(v);
                if (!j) return tk_fail(TK_ERR_NOMEM, "rendering %s: out of memory", p->text);
                st = tk_buf_append(out, j, strlen(j));
                cJSON_free(j);
            }
        }
        if (st) return st;
    }
    if (!out->data && tk_buf_append(out, "", 0)) return TK_ERR_NOMEM;
    return TK_OK;
}
