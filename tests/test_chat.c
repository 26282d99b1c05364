/* Chat templates, text side: every family renders byte for byte what its official Jinja
 * template renders (tests/fixtures/chat/<name>.json, made by tools/make_chat_fixtures.py with
 * transformers' own renderer); conversations the official template rejects, or would render
 * with a message silently dropped, fail; the family is recognised from each official
 * template source; names and template files resolve. Tokens and masks: test_chat_tokens.c. */
#include "test.h"
#include <cjson/cJSON.h>
#include <dirent.h>

#define FIXDIR "tests/fixtures/chat"

static int role_of(const char *s) {
    static const char *const r[] = {"system", "user", "assistant", "tool"};
    for (int i = 0; i < 4; i++) if (!strcmp(s, r[i])) return i;
    return -1;
}

/* Prints where two renderings first differ (escaped, with a little context). */
static void show_diff(const char *got, size_t glen, const char *want, size_t wlen) {
    size_t i = 0;
    while (i < glen && i < wlen && got[i] == want[i]) i++;
    size_t from = i > 30 ? i - 30 : 0;
    fprintf(stderr, "    first difference at byte %zu (got %zu bytes, want %zu)\n", i, glen, wlen);
    for (int k = 0; k < 2; k++) {
        const char *s = k ? want : got;
        size_t len = k ? wlen : glen;
        fprintf(stderr, "    %s: \"", k ? "want" : "got ");
        for (size_t j = from; j < len && j < i + 40; j++) {
            unsigned char ch = (unsigned char)s[j];
            if (ch == '\n') fputs("\\n", stderr);
            else if (ch < 0x20) fprintf(stderr, "\\x%02x", ch);
            else fputc(ch, stderr);
        }
        fputs("\"\n", stderr);
    }
}

/* Fills msgs (and reasoning[], each message's reasoning_content or NULL; *any_reasoning tells whether one has it)
 * from a JSON array; returns the count or -1. */
static int load_msgs(const cJSON *arr, tk_chat_msg *msgs, const char **reasoning, bool *any_reasoning, int cap) {
    int n = 0;
    const cJSON *m;
    *any_reasoning = false;
    cJSON_ArrayForEach(m, arr) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(m, "reasoning_content");
        if (n >= cap || !cJSON_IsString(r) || !cJSON_IsString(c) || role_of(r->valuestring) < 0) return -1;
        msgs[n].role = (tk_role)role_of(r->valuestring);
        msgs[n].content = c->valuestring;
        reasoning[n] = cJSON_IsString(rc) ? rc->valuestring : NULL;
        *any_reasoning |= reasoning[n] != NULL;
        n++;
    }
    return n;
}

static int seen_family[TK_CHAT_FAMILY_COUNT];

static void check_template_fixture(const char *path, const cJSON *doc) {
    const char *name = cJSON_GetObjectItemCaseSensitive(doc, "name")->valuestring;
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(doc, "family");
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(doc, "template");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    CHECK(cJSON_IsString(fam) && cJSON_IsString(tmpl) && cJSON_IsArray(cases), "%s: malformed fixture", path);
    if (!cJSON_IsString(fam) || !cJSON_IsString(tmpl) || !cJSON_IsArray(cases)) return;
    tk_chat_family f = tk_chat_family_from_name(fam->valuestring);
    CHECK(f != TK_CHAT_UNKNOWN, "%s: family %s has no takumi name", path, fam->valuestring);
    if (f == TK_CHAT_UNKNOWN) return;
    seen_family[f] = 1;
    CHECK(!strcmp(tk_chat_family_name(f), fam->valuestring), "name round trip %s", fam->valuestring);

    /* takumi's own alpaca specification is never "detected"; every official template is */
    tk_chat_family d = tk_chat_detect(tmpl->valuestring);
    if (f == TK_CHAT_ALPACA) CHECK(d == TK_CHAT_UNKNOWN, "alpaca spec detected as %s", tk_chat_family_name(d));
    else CHECK(d == f, "%s: template detected as %s, want %s", name, tk_chat_family_name(d), fam->valuestring);

    int n_ok = 0, n_refused = 0, bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        tk_chat_msg msgs[32];
        const char *reasoning[32];
        bool any_rc;
        const char *cname = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        int n = load_msgs(cJSON_GetObjectItemCaseSensitive(c, "messages"), msgs, reasoning, &any_rc, 32);
        bool agp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "expected");
        CHECK(n > 0, "%s/%s: bad messages", name, cname);
        if (n <= 0) continue;
        tk_chat_opts o = {.add_generation_prompt = agp, .reasoning = any_rc ? reasoning : NULL,
                          .disable_thinking = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "enable_thinking"))};
        tk_buf out = {0};
        tk_status st = any_rc || o.disable_thinking ? tk_chat_render_text_opts(f, msgs, (size_t)n, &o, &out)
                                                    : tk_chat_render_text(f, msgs, (size_t)n, agp, &out);
        if (cJSON_IsString(exp)) {
            const char *want = exp->valuestring;
            size_t wlen = strlen(want);
            bool same = st == TK_OK && out.len == wlen && !memcmp(out.data, want, wlen);
            CHECK(same, "%s/%s (agp=%d): %s", name, cname, agp, st ? tk_last_error() : "text differs");
            if (!same && st == TK_OK && bad++ < 3) show_diff(out.data, out.len, want, wlen);
            n_ok += same;
        } else {
            /* the official template raised, or would drop a message: takumi must refuse */
            CHECK(st != TK_OK, "%s/%s (agp=%d): rendered, but the reference %s", name, cname, agp,
                  cJSON_GetObjectItemCaseSensitive(c, "error") ? "template raises" : "drops a message");
            if (st != TK_OK) {
                CHECK(strstr(tk_last_error(), tk_chat_family_name(f)) != NULL, "message names the template: %s", tk_last_error());
                n_refused++;
            }
        }
        tk_buf_free(&out);
    }
    printf("  %-15s %2d rendered exactly, %2d refused as the reference does\n", name, n_ok, n_refused);
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { CHECK(0, "cannot write %s", path); return; }
    fputs(text, fp);
    fclose(fp);
}

/* tk_chat_family_from_template_file on tokenizer_config.json forms and plain Jinja. */
static void check_template_files(const char *llama3, const char *chatml) {
    char dir[] = "/tmp/tk_test_chat_XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char p1[256], p2[256], p3[256], p4[256];
    snprintf(p1, sizeof p1, "%s/tokenizer_config.json", dir);
    snprintf(p2, sizeof p2, "%s/list.json", dir);
    snprintf(p3, sizeof p3, "%s/t.jinja", dir);
    snprintf(p4, sizeof p4, "%s/none.json", dir);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bos_token", "<|begin_of_text|>");
    cJSON_AddStringToObject(o, "chat_template", llama3);
    char *s = cJSON_Print(o);
    write_file(p1, s);
    free(s);
    cJSON_Delete(o);
    o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "chat_template");
    cJSON *e1 = cJSON_CreateObject(), *e2 = cJSON_CreateObject();
    cJSON_AddStringToObject(e1, "name", "tool_use");
    cJSON_AddStringToObject(e1, "template", llama3);
    cJSON_AddStringToObject(e2, "name", "default");
    cJSON_AddStringToObject(e2, "template", chatml);
    cJSON_AddItemToArray(arr, e1);
    cJSON_AddItemToArray(arr, e2);
    s = cJSON_Print(o);
    write_file(p2, s);
    free(s);
    cJSON_Delete(o);
    write_file(p3, chatml);
    write_file(p4, "{\"bos_token\": \"<s>\"}");
    tk_chat_family f = TK_CHAT_UNKNOWN;
    CHECK_OK(tk_chat_family_from_template_file(p1, &f));
    CHECK(f == TK_CHAT_LLAMA3, "tokenizer_config.json: %s", tk_chat_family_name(f));
    CHECK_OK(tk_chat_family_from_template_file(p2, &f));
    CHECK(f == TK_CHAT_CHATML, "named-template list takes \"default\": %s", tk_chat_family_name(f));
    CHECK_OK(tk_chat_family_from_template_file(p3, &f));
    CHECK(f == TK_CHAT_CHATML, "plain jinja: %s", tk_chat_family_name(f));
    CHECK(tk_chat_family_from_template_file(p4, &f) == TK_ERR_NOT_FOUND && strstr(tk_last_error(), p4),
          "JSON without chat_template: %s", tk_last_error());
    CHECK(tk_chat_family_from_template_file("/nonexistent/tokenizer_config.json", &f) == TK_ERR_IO, "missing file");
    unlink(p1); unlink(p2); unlink(p3); unlink(p4);
    rmdir(dir);
}

int main(void) {
    DIR *d = opendir(FIXDIR);
    CHECK(d != NULL, "cannot open %s (run from the repository root)", FIXDIR);
    if (!d) return tk_test_done("test_chat");
    int n_fix = 0;
    char *llama3 = NULL, *chatml = NULL;
    struct dirent *e;
    char *names[64];
    int nn = 0;
    while ((e = readdir(d)) && nn < 64) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    for (int i = 0; i < nn; i++)   /* stable order for readable output */
        for (int j = i + 1; j < nn; j++)
            if (strcmp(names[j], names[i]) < 0) { char *t = names[i]; names[i] = names[j]; names[j] = t; }
    for (int i = 0; i < nn; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FIXDIR, names[i]);
        char *text = NULL;
        FILE *fp = fopen(path, "rb");
        if (fp) {
            fseek(fp, 0, SEEK_END);
            long len = ftell(fp);
            fseek(fp, 0, SEEK_SET);
            text = malloc((size_t)len + 1);
            if (text && fread(text, 1, (size_t)len, fp) == (size_t)len) text[len] = 0;
            else { free(text); text = NULL; }
            fclose(fp);
        }
        cJSON *doc = text ? cJSON_Parse(text) : NULL;
        CHECK(doc != NULL, "%s: unreadable JSON", path);
        const cJSON *kind = doc ? cJSON_GetObjectItemCaseSensitive(doc, "kind") : NULL;
        if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "template")) {
            check_template_fixture(path, doc);
            n_fix++;
            const char *fam = cJSON_GetObjectItemCaseSensitive(doc, "family")->valuestring;
            const char *t = cJSON_GetObjectItemCaseSensitive(doc, "template")->valuestring;
            if (!strcmp(fam, "llama3")) llama3 = strdup(t);
            if (!strcmp(fam, "chatml")) chatml = strdup(t);
        }
        cJSON_Delete(doc);
        free(text);
        free(names[i]);
    }
    CHECK(n_fix >= 15, "expected at least 15 template fixtures, found %d", n_fix);
    for (int f = 1; f < TK_CHAT_FAMILY_COUNT; f++)
        CHECK(seen_family[f], "family %s has no fixture", tk_chat_family_name((tk_chat_family)f));

    /* names */
    for (int f = 1; f < TK_CHAT_FAMILY_COUNT; f++) {
        const char *nm = tk_chat_family_name((tk_chat_family)f);
        CHECK((int)tk_chat_family_from_name(nm) == f, "from_name(%s)", nm);
        CHECK(strstr(tk_chat_family_names(), nm) != NULL, "names list has %s", nm);
    }
    CHECK(tk_chat_family_from_name("vicuna") == TK_CHAT_UNKNOWN, "unknown name");
    CHECK(tk_chat_family_from_name(NULL) == TK_CHAT_UNKNOWN, "NULL name");
    CHECK(!strcmp(tk_chat_family_name((tk_chat_family)99), "unknown"), "out of range name");

    /* templates takumi cannot render exactly are not claimed */
    static const char *const foreign[] = {
        "",
        "hello {{ messages }}",
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}",       /* reasoning */
        "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are Foo.<|im_end|>\\n' }}"
        "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}{% endif %}{% endfor %}", /* zephyr */
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% endif %}{% endfor %}",  /* first v0.1 */
        "{{ bos_token }}{% for m in messages %}[AVAILABLE_TOOLS]{{ '[INST] ' + m['content'] + '[/INST]' }}{% endfor %}",
    };
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
        CHECK(tk_chat_detect(foreign[i]) == TK_CHAT_UNKNOWN, "foreign template %zu detected as %s", i,
              tk_chat_family_name(tk_chat_detect(foreign[i])));
    CHECK(tk_chat_detect(NULL) == TK_CHAT_UNKNOWN, "NULL template");

    /* reasoning_content: only Qwen3 renders it, and only on assistant messages; elsewhere it is refused, not dropped */
    {
        tk_chat_msg qa[2] = {{TK_ROLE_USER, "Q"}, {TK_ROLE_ASSISTANT, "A"}};
        const char *why[2] = {NULL, "because"}, *why_user[2] = {"no", NULL};
        tk_chat_opts o = {.reasoning = why};
        tk_buf b = {0};
        CHECK(tk_chat_render_text_opts(TK_CHAT_CHATML, qa, 2, &o, &b) == TK_ERR_UNSUPPORTED &&
              strstr(tk_last_error(), "reasoning_content"), "chatml refuses reasoning: %s", tk_last_error());
        o.reasoning = why_user;
        CHECK(tk_chat_render_text_opts(TK_CHAT_QWEN3, qa, 2, &o, &b) == TK_ERR_UNSUPPORTED, "qwen3 refuses user reasoning");
        CHECK(b.len == 0, "refused renders append nothing");
        o.reasoning = why;
        CHECK_OK(tk_chat_render_text_opts(TK_CHAT_QWEN3, qa, 2, &o, &b));
        CHECK(b.data && !strcmp(b.data, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nbecause\n</think>\n\nA<|im_end|>\n"),
              "qwen3 reasoning block: %s", b.data ? b.data : "");
        tk_buf_free(&b);
        CHECK_OK(tk_chat_render_text_opts(TK_CHAT_QWEN3, qa, 1, NULL, &b));
        CHECK(b.data && !strcmp(b.data, "<|im_start|>user\nQ<|im_end|>\n"), "NULL opts: defaults");
        tk_buf_free(&b);
    }

    if (llama3 && chatml) check_template_files(llama3, chatml);
    else CHECK(0, "llama3 and chatml fixtures are needed for the template-file checks");
    free(llama3);
    free(chatml);

    /* argument errors */
    tk_buf out = {0};
    tk_chat_msg one = {TK_ROLE_USER, "hi"}, nul = {TK_ROLE_USER, NULL}, badrole = {(tk_role)7, "x"};
    CHECK(tk_chat_render_text(TK_CHAT_CHATML, &one, 0, true, &out) == TK_ERR_ARG, "no messages");
    CHECK(tk_chat_render_text(TK_CHAT_CHATML, &nul, 1, true, &out) == TK_ERR_ARG, "NULL content");
    CHECK(tk_chat_render_text(TK_CHAT_CHATML, &badrole, 1, true, &out) == TK_ERR_ARG, "bad role");
    CHECK(tk_chat_render_text(TK_CHAT_UNKNOWN, &one, 1, true, &out) == TK_ERR_ARG, "unknown family");
    CHECK(tk_chat_render_text(TK_CHAT_CHATML, &one, 1, true, NULL) == TK_ERR_ARG, "NULL out");
    CHECK(out.len == 0, "failed renders append nothing");

    /* invalid UTF-8 is carried through; trimming stops at it and never reads past the end */
    tk_chat_msg raw[2] = {{TK_ROLE_USER, " \xff\xfe x \xe3\x80"}, {TK_ROLE_ASSISTANT, "\xe3\x80\x80 ok \xc2"}};
    CHECK_OK(tk_chat_render_text(TK_CHAT_LLAMA3, raw, 2, false, &out));
    CHECK(out.data && strstr(out.data, "\n\n\xff\xfe x \xe3\x80<|eot_id|>") && strstr(out.data, "\n\nok \xc2<|eot_id|>"),
          "raw bytes kept, whitespace trimmed");
    tk_buf_free(&out);
    return tk_test_done("test_chat");
}
