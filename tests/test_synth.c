/* Documents, chunks, the grounding check and synthesis (src/data/docs_*.c, chunk.c, ground.c,
 * synth*.c, augment.c): Markdown/HTML/text readers on hand-written inputs (headings, spans,
 * entities, skipped scripts), bad documents (not UTF-8, UTF-16, NUL, empty), a PDF written here
 * by hand through pdftotext (skipped with the reason when poppler-utils is absent), chunk sizes
 * and heading paths, the grounding rules (an answer with a number not in its chunk is dropped),
 * the parsers of model output, the paraphrase rules, the synth and augment pipelines with a
 * hand-written writer (counts add up, output passes `data check`), and batched generation with
 * stories260K (same texts for any batch size, deterministic for a seed). */
#include "test.h"
#include "data/docs_internal.h"
#include <sys/stat.h>

static char tmpdir[] = "/tmp/tk_synth_XXXXXX";

static char *tpath(const char *name) {
    static char b[4][512];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fwrite(s, 1, n, f);
    fclose(f);
}

/* The source bytes of a block, for span checks. */
static bool span_is(const char *src, const tk_doc_block *b, const char *want) {
    return b->end >= b->start && b->end - b->start == strlen(want) && !memcmp(src + b->start, want, strlen(want));
}

static void test_markdown(void) {
    const char *md = "---\ntitle: x\n---\n# Shop policy #\n\nIntro line one\ncontinues here.\n\nReturns\n=======\n\n"
                     "Within 14 days.\n\n```\n# not a heading\n```\n\n### Deep\n\n- item one\n- item two\n";
    tk_doc d = {0};
    CHECK_OK(tk_doc_parse(md, strlen(md), TK_DOC_MARKDOWN, "p.md", &d));
    CHECK(d.n_blocks == 7, "%zu blocks", d.n_blocks);
    if (d.n_blocks == 7) {
        CHECK(d.blocks[0].level == 1 && !strcmp(d.blocks[0].text, "Shop policy") && span_is(md, &d.blocks[0], "Shop policy"), "[%s]", d.blocks[0].text);
        CHECK(d.blocks[1].level == 0 && span_is(md, &d.blocks[1], "Intro line one\ncontinues here."), "[%s]", d.blocks[1].text);
        CHECK(d.blocks[2].level == 1 && !strcmp(d.blocks[2].text, "Returns"), "setext [%s] %d", d.blocks[2].text, d.blocks[2].level);
        CHECK(d.blocks[3].level == 0 && span_is(md, &d.blocks[3], "Within 14 days."), "[%s]", d.blocks[3].text);
        CHECK(d.blocks[4].level == 0 && strstr(d.blocks[4].text, "# not a heading"), "fenced code kept as text: [%s]", d.blocks[4].text);
        CHECK(d.blocks[5].level == 3 && !strcmp(d.blocks[5].text, "Deep"), "[%s]", d.blocks[5].text);
        CHECK(d.blocks[6].level == 0 && !strcmp(d.blocks[6].text, "- item one\n- item two"), "[%s]", d.blocks[6].text);
    }
    tk_chunk *c = NULL;
    size_t n = 0;
    CHECK_OK(tk_doc_chunk(&d, NULL, &c, &n));
    CHECK(n == 3, "%zu chunks", n);
    if (n == 3) {
        CHECK(!strcmp(c[0].heading, "Shop policy") && !strcmp(c[1].heading, "Returns") && !strcmp(c[2].heading, "Returns > Deep"),
              "headings [%s] [%s] [%s]", c[0].heading, c[1].heading, c[2].heading);
        CHECK(!strcmp(c[1].text, "Within 14 days.\n\n```\n# not a heading\n```"), "[%s]", c[1].text);
        CHECK(c[1].start == d.blocks[3].start && c[1].end == d.blocks[4].end, "span %zu-%zu", c[1].start, c[1].end);
    }
    tk_chunks_free(c, n);
    tk_doc_free(&d);
}

static void test_html(void) {
    const char *h = "<!DOCTYPE html><html><head><title>T</title><style>h1{color:red}</style></head><body>"
                    "<script>var x = '<h1>no</h1>';</script><!-- <p>hidden</p> -->"
                    "<h1>Caf&eacute; &amp; Cycle</h1><p>Price: &yen;4,980 &mdash; <b>tax</b>\n  included.</p>"
                    "<h2 class=\"x\">Hours</h2><div>Open 9:30&#8211;18:00<br>Sat &#x3042;</div><p>tail <unclosed";
    tk_doc d = {0};
    CHECK_OK(tk_doc_parse(h, strlen(h), TK_DOC_HTML, "p.html", &d));
    const char *want[][2] = {{"1", "Caf&eacute; & Cycle"}, {"0", "Price: \xC2\xA5" "4,980 \xE2\x80\x94 tax included."}, {"2", "Hours"},
                             {"0", "Open 9:30\xE2\x80\x93" "18:00"}, {"0", "Sat \xE3\x81\x82"}, {"0", "tail"}};
    CHECK(d.n_blocks == 6, "%zu blocks", d.n_blocks);
    for (size_t i = 0; i < d.n_blocks && i < 6; i++) {
        CHECK(d.blocks[i].level == atoi(want[i][0]) && !strcmp(d.blocks[i].text, want[i][1]), "block %zu: %d [%s]", i, d.blocks[i].level, d.blocks[i].text);
        CHECK(d.blocks[i].end <= strlen(h) && d.blocks[i].start < d.blocks[i].end, "span %zu", i);
    }
    if (d.n_blocks >= 2) CHECK(!strncmp(h + d.blocks[1].start, "Price:", 6) && !strncmp(h + d.blocks[1].end - 9, "included.", 9), "span of the paragraph");
    tk_doc_free(&d);
    /* markup that never closes: no crash, the text before it kept */
    const char *bad[] = {"<p>a<!-- never", "<p>b<script>x", "<p>c</p><", "<h7>d</h7>&#99999999;&#0;&bogus;", "<"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tk_doc e = {0};
        tk_status st = tk_doc_parse(bad[i], strlen(bad[i]), TK_DOC_HTML, "bad.html", &e);
        CHECK(st == TK_OK || st == TK_ERR_FORMAT, "case %zu: %s", i, tk_last_error());
        tk_doc_free(&e);
    }
}

static void test_bad_documents(void) {
    struct { const char *name, *data; size_t len; const char *msg; } cases[] = {
        {"sjis.txt", "ok\n\x93\xfa\x96\x7b\n", 8, "sjis.txt: line 2: byte 0x93 is not UTF-8"},
        {"u16.md", "\xff\xfeh\0i\0", 6, "u16.md: UTF-16"},
        {"nul.txt", "a\0b", 3, "nul.txt: line 1: a NUL byte"},
        {"empty.md", "", 0, "empty.md: an empty document"},
        {"blank.txt", " \n\n \n", 5, "blank.txt: an empty document"},
        {"heads.md", "# A\n## B\n", 9, "heads.md: an empty document: no text under its headings"},
        {"tags.html", "<html><script>x</script></html>", 31, "tags.html: an empty document"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(tpath(cases[i].name), cases[i].data, cases[i].len);
        tk_doc d = {0};
        tk_status st = tk_doc_read(tpath(cases[i].name), TK_DOC_AUTO, &d);
        CHECK(st == TK_ERR_FORMAT && strstr(tk_last_error(), cases[i].msg), "%s: %d %s", cases[i].name, st, tk_last_error());
        tk_doc_free(&d);
    }
    tk_doc d = {0};
    CHECK(tk_doc_read(tpath("missing.md"), TK_DOC_AUTO, &d) != TK_OK && strstr(tk_last_error(), "missing.md"), "%s", tk_last_error());
    tk_doc_free(&d);
}

/* A PDF with one page per text (NULL: a page with no text), offsets computed for the xref table. */
static void write_pdf(const char *path, const char *const *pages, int n) {
    tk_buf b = {0};
    size_t off[64];
    int obj = 0;
    tk_buf_printf(&b, "%%PDF-1.4\n");
    off[++obj] = b.len; tk_buf_printf(&b, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    off[++obj] = b.len; tk_buf_printf(&b, "2 0 obj << /Type /Pages /Kids [");
    for (int i = 0; i < n; i++) tk_buf_printf(&b, "%d 0 R ", 4 + 2 * i);
    tk_buf_printf(&b, "] /Count %d >> endobj\n", n);
    off[++obj] = b.len; tk_buf_printf(&b, "3 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
    for (int i = 0; i < n; i++) {
        char content[512];
        int cl = pages[i] ? snprintf(content, sizeof content, "BT /F1 12 Tf 72 720 Td (%s) Tj ET", pages[i]) : 0;
        off[++obj] = b.len;
        tk_buf_printf(&b, "%d 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >> endobj\n",
                      obj, obj + 1);
        off[++obj] = b.len;
        tk_buf_printf(&b, "%d 0 obj << /Length %d >> stream\n%s\nendstream endobj\n", obj, cl, cl ? content : "");
    }
    size_t xref = b.len;
    tk_buf_printf(&b, "xref\n0 %d\n0000000000 65535 f \n", obj + 1);
    for (int i = 1; i <= obj; i++) tk_buf_printf(&b, "%010zu 00000 n \n", off[i]);
    tk_buf_printf(&b, "trailer << /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", obj + 1, xref);
    write_file(path, b.data, b.len);
    tk_buf_free(&b);
}

static bool have_pdftotext(void) {
    const char *argv[] = {"pdftotext", "-v", NULL};
    char *out = NULL;
    size_t len;
    tk_status st = tk_run_capture(argv, &out, &len);
    free(out);
    tk_clear_error();
    return st == TK_OK;
}

static void test_pdf(void) {
    if (!have_pdftotext()) { printf("SKIP: PDF reading: pdftotext not found (apt-get install poppler-utils)\n"); return; }
    const char *pages[] = {"Returns are accepted within 14 days.", NULL, "The shipping fee is 770 yen."};
    write_pdf(tpath("p.pdf"), pages, 3);
    const char *headed[] = {"Shipping", "The shipping fee is 770 yen."};
    write_pdf(tpath("h.pdf"), headed, 2);
    tk_doc hd = {0};
    CHECK_OK(tk_doc_read(tpath("h.pdf"), TK_DOC_AUTO, &hd));
    CHECK(hd.n_blocks == 2 && hd.blocks[0].level == 2 && hd.blocks[1].level == 0, "a short line before a paragraph is a heading");
    tk_doc_free(&hd);
    tk_doc d = {0};
    CHECK_OK(tk_doc_read(tpath("p.pdf"), TK_DOC_AUTO, &d));
    CHECK(d.kind == TK_DOC_PDF && d.n_pages == 3 && d.n_empty_pages == 1 && d.first_empty_page == 2, "pages %d empty %d first %d",
          d.n_pages, d.n_empty_pages, d.first_empty_page);
    CHECK(d.n_blocks == 2, "%zu blocks", d.n_blocks);
    if (d.n_blocks == 2) {
        CHECK(!strcmp(d.blocks[0].text, pages[0]) && d.blocks[0].page == 1, "[%s] page %d", d.blocks[0].text, d.blocks[0].page);
        CHECK(!strcmp(d.blocks[1].text, pages[2]) && d.blocks[1].page == 3, "[%s] page %d", d.blocks[1].text, d.blocks[1].page);
    }
    tk_doc_free(&d);
    const char *none[] = {NULL, NULL};
    write_pdf(tpath("scan.pdf"), none, 2);
    tk_status st = tk_doc_read(tpath("scan.pdf"), TK_DOC_AUTO, &d);
    CHECK(st == TK_ERR_FORMAT && strstr(tk_last_error(), "scan.pdf: no extractable text on any of its 2 pages"), "%s", tk_last_error());
    tk_doc_free(&d);
    write_file(tpath("broken.pdf"), "%PDF-1.4\ngarbage", 16);
    st = tk_doc_read(tpath("broken.pdf"), TK_DOC_AUTO, &d);
    CHECK(st != TK_OK && strstr(tk_last_error(), "broken.pdf"), "%s", tk_last_error());
    tk_doc_free(&d);
    /* a file name that a shell would run: passed as one argument, never interpreted */
    write_pdf(tpath("a; touch injected.pdf"), pages, 1);
    CHECK_OK(tk_doc_read(tpath("a; touch injected.pdf"), TK_DOC_PDF, &d));
    CHECK(access("injected.pdf", F_OK) != 0, "the name ran as a command");
    tk_doc_free(&d);
}

static void test_chunk_sizes(void) {
    tk_buf b = {0};
    tk_buf_printf(&b, "# Long\n\n");
    for (int i = 0; i < 40; i++) tk_buf_printf(&b, "Sentence number %d is here. ", i);
    tk_buf_printf(&b, "\n\nshort one\n\n");
    for (int i = 0; i < 300; i++) tk_buf_printf(&b, "x");   /* no space, no sentence end */
    tk_buf_printf(&b, "\n\n日本語の文です。");
    tk_doc d = {0};
    CHECK_OK(tk_doc_parse(b.data, b.len, TK_DOC_MARKDOWN, "long.md", &d));
    tk_chunk_params p = {.max_size = 100};
    tk_chunk *c = NULL;
    size_t n = 0;
    CHECK_OK(tk_doc_chunk(&d, &p, &c, &n));
    CHECK(n > 10, "%zu chunks", n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t chars = tk_utf8_count(c[i].text, strlen(c[i].text));
        CHECK(chars <= 100 && chars > 0, "chunk %zu: %zu chars", i, chars);
        CHECK(!strcmp(c[i].heading, "Long"), "heading [%s]", c[i].heading);
        CHECK(c[i].start < c[i].end && c[i].end <= b.len, "span %zu-%zu", c[i].start, c[i].end);
        if (i < 5) CHECK(c[i].text[strlen(c[i].text) - 1] == '.', "cut at a sentence end: [%s]", c[i].text);
        total += strlen(c[i].text);
    }
    CHECK(total >= b.len - 200, "text kept: %zu of %zu", total, b.len);
    tk_chunks_free(c, n);
    p.max_size = 0;
    CHECK(tk_doc_chunk(&d, &p, &c, &n) == TK_ERR_ARG, "size 0 refused");
    tk_doc_free(&d);
    tk_buf_free(&b);
}

static void test_grounding(void) {
    const char *chunk = "Returns: within 14 days of delivery, with the receipt. The Kazeyomi E5 costs ¥148,000. "
                        "Open 9:30–18:00 on weekdays; delivery takes 2 to 4 business days. Saturdays 10:00-16:00.";
    char fact[64];
    /* the test: an answer with a number that is not in its chunk is dropped */
    CHECK(tk_ground_check("You can return items within 30 days.", chunk, fact, sizeof fact) == TK_GROUND_NUMBER && !strcmp(fact, "30"), "[%s]", fact);
    CHECK(tk_ground_check("You can return items within 14 days.", chunk, fact, sizeof fact) == TK_GROUND_OK, "[%s]", fact);
    CHECK(tk_ground_check("It costs ¥148000.", chunk, fact, sizeof fact) == TK_GROUND_OK, "thousands comma: [%s]", fact);
    CHECK(tk_ground_check("It costs ¥148,500.", chunk, fact, sizeof fact) == TK_GROUND_NUMBER && !strcmp(fact, "148,500"), "[%s]", fact);
    CHECK(tk_ground_check("We open at 9:00.", chunk, fact, sizeof fact) == TK_GROUND_NUMBER, "[%s]", fact);
    CHECK(tk_ground_check("We open at 9:30.", chunk, NULL, 0) == TK_GROUND_OK, "time");
    CHECK(tk_ground_check("Delivery takes 2-4 business days.", chunk, fact, sizeof fact) == TK_GROUND_OK, "range: [%s]", fact);
    CHECK(tk_ground_check("It takes 1 day.", chunk, fact, sizeof fact) == TK_GROUND_NUMBER, "[%s]", fact);
    CHECK(tk_ground_check("Days like 140 are not 14.", chunk, fact, sizeof fact) == TK_GROUND_NUMBER && !strcmp(fact, "140"), "no substring match: [%s]", fact);
    CHECK(tk_ground_check("Yes. The bike is the Kazeyomi E5.", chunk, fact, sizeof fact) == TK_GROUND_OK, "names: [%s]", fact);
    CHECK(tk_ground_check("Yes, the bike is the Tsubame 3.", chunk, fact, sizeof fact) == TK_GROUND_NAME && !strcmp(fact, "Tsubame"), "[%s]", fact);
    CHECK(tk_ground_check("Our shop in Osaka is open.", chunk, fact, sizeof fact) == TK_GROUND_NAME && !strcmp(fact, "Osaka"), "[%s]", fact);
    CHECK(tk_ground_check("Sure! I think so.", chunk, fact, sizeof fact) == TK_GROUND_OK, "sentence starts and I: [%s]", fact);
    CHECK(tk_ground_check("We are open on Saturday and Saturdays.", chunk, fact, sizeof fact) == TK_GROUND_OK, "plural: [%s]", fact);
    CHECK(tk_ground_check("Ask for Müller.", chunk, fact, sizeof fact) == TK_GROUND_NAME, "accented: [%s]", fact);
    /* a date: its day number and month name are facts */
    CHECK(tk_ground_check("The sale ends on May 14.", chunk, fact, sizeof fact) == TK_GROUND_NAME && !strcmp(fact, "May"), "[%s]", fact);
    /* no facts, and about something else */
    CHECK(tk_ground_check("It is a very complex system that involves multiple layers of technology.", chunk, fact, sizeof fact) ==
          TK_GROUND_UNSUPPORTED, "unsupported");
    CHECK(tk_ground_check("Deliveries take a few business days after the order.", chunk, fact, sizeof fact) == TK_GROUND_OK, "stems: [%s]", fact);
    const char *ja = "返品はお届けから14日以内、レシートが必要です。営業時間は9:30〜18:00です。";
    CHECK(tk_ground_check("返品は14日以内です。", ja, fact, sizeof fact) == TK_GROUND_OK, "[%s]", fact);
    CHECK(tk_ground_check("返品は30日以内です。", ja, fact, sizeof fact) == TK_GROUND_NUMBER, "[%s]", fact);
    CHECK(tk_ground_check("大阪店でも返品できます。", ja, fact, sizeof fact) == TK_GROUND_SCRIPT && !strcmp(fact, "大阪店"), "[%s]", fact);
    /* an English chunk cannot ground Japanese words letter for letter: only numbers and Latin names are checked */
    CHECK(tk_ground_check("返品は14日以内です。", chunk, fact, sizeof fact) == TK_GROUND_OK, "[%s]", fact);
    CHECK(tk_ground_check("返品は15日以内です。", chunk, fact, sizeof fact) == TK_GROUND_NUMBER, "[%s]", fact);
    CHECK(tk_ground_check("はなくないですぞ", chunk, fact, sizeof fact) == TK_GROUND_UNSUPPORTED, "nothing checkable: [%s]", fact);
    CHECK(tk_ground_check("はなくないですぞ", ja, fact, sizeof fact) == TK_GROUND_UNSUPPORTED, "nothing checkable: [%s]", fact);
    CHECK(tk_ground_check("営業時間はこちらです", ja, fact, sizeof fact) == TK_GROUND_OK, "a word of the chunk: [%s]", fact);
    CHECK(tk_text_is_cjk("返品はOK") && !tk_text_is_cjk("Returns 返品") && !tk_text_is_cjk(""), "scripts");
}

static void test_parsers(void) {
    const char *out = "Sure! Here are the questions:\n\n1. **Q:** How long do I have to return an item?\n   **A:** Within 14 days.\n\n"
                      "Q2: What does the Kazeyomi E5 cost?\nA2: It costs ¥148,000\nincluding tax.\n"
                      "Question: Is there a Q without an answer?\n"
                      "Q: One line? A: Yes, one line.\n"
                      "質問：営業時間は？\n回答：9:30〜18:00です。\n";
    tk_qa *qa = NULL;
    size_t n = 0;
    CHECK_OK(tk_synth_parse_qa(out, &qa, &n));
    const char *want[][2] = {{"How long do I have to return an item?", "Within 14 days."},
                             {"What does the Kazeyomi E5 cost?", "It costs ¥148,000 including tax."},
                             {"Is there a Q without an answer?", ""},
                             {"One line?", "Yes, one line."},
                             {"営業時間は？", "9:30〜18:00です。"}};
    CHECK(n == 5, "%zu pairs", n);
    for (size_t i = 0; i < n && i < 5; i++) CHECK(!strcmp(qa[i].q, want[i][0]) && !strcmp(qa[i].a, want[i][1]), "%zu: [%s] [%s]", i, qa[i].q, qa[i].a);
    tk_qa_free(qa, n);
    CHECK_OK(tk_synth_parse_qa("no pairs at all\nA: orphan answer", &qa, &n));
    CHECK(n == 0, "%zu", n);
    tk_qa_free(qa, n);
    CHECK_OK(tk_synth_parse_qa("Q: Q: 1. What is the fee?\nA: Q: Q: Q:\nQ: 2) Why? A: A: 3. Because.", &qa, &n));
    CHECK(n == 2 && !strcmp(qa[0].q, "What is the fee?") && !strcmp(qa[0].a, "") && !strcmp(qa[1].q, "Why?") && !strcmp(qa[1].a, "Because."),
          "%zu [%s] [%s]", n, n ? qa[0].q : "", n ? qa[0].a : "");
    tk_qa_free(qa, n);
    char **v = NULL;
    CHECK_OK(tk_synth_parse_list("Here are 3 rewrites:\n1. I am ready to help you. Here is a rewritten version: When can I return it?\n2) It can be rephrased as: \"How long is the return window?\"\n- Rewrite：「返品期限は？」\n\n", &v, &n));
    CHECK(n == 3 && !strcmp(v[0], "When can I return it?") && !strcmp(v[1], "How long is the return window?") && !strcmp(v[2], "返品期限は？"),
          "%zu [%s]", n, n ? v[0] : "");
    tk_strings_free(v, n);
    const char *q = "How long can I return an item?";
    char *keep[] = {"When can I send it back?"};
    CHECK(tk_para_check(q, "When can I send it back?", NULL, 0, 3) == TK_PARA_OK, "ok");
    CHECK(tk_para_check(q, "   ", NULL, 0, 3) == TK_PARA_EMPTY, "empty");
    CHECK(tk_para_check(q, "how long can I return an item", NULL, 0, 3) == TK_PARA_IDENTICAL, "identical up to case and punctuation");
    CHECK(tk_para_check(q, "When can I send it back??", keep, 1, 3) == TK_PARA_DUPLICATE, "duplicate");
    char longp[400];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    CHECK(tk_para_check(q, longp, NULL, 0, 3) == TK_PARA_TOO_LONG, "too long");
    CHECK(tk_para_check(q, "2.", NULL, 0, 3) == TK_PARA_EMPTY, "no letters");
    CHECK(tk_para_check(q, "Returns are possible for a while.", NULL, 0, 3) == TK_PARA_NOT_QUESTION, "not a question");
    CHECK(tk_para_check("Is delivery 2 days?", "Is delivery 3 days?", NULL, 0, 3) == TK_PARA_CHANGED, "a new number");
    CHECK(tk_para_check("Is the shop open?", "Is the Osaka shop open?", NULL, 0, 3) == TK_PARA_CHANGED, "a new name");
    CHECK(tk_para_check("Tell me the fee.", "The fee, please.", NULL, 0, 3) == TK_PARA_OK, "a request need not be a question");
    CHECK(tk_para_check("返品期限は？", "What is the return window?", NULL, 0, 3) == TK_PARA_LANGUAGE, "other script");
}

/* Near-duplicate questions of one chunk: a format marker copied after the question, the same words re-cased or
 * re-punctuated, a small edit; different questions are not. */
static void test_near_question(void) {
    static const char *const same[][2] = {
        {"How long is the warranty?", "How long is the warranty? B:"},
        {"Warranty?", "Warranty? B:"},
        {"How long is the warranty?", "how long is the warranty"},
        {"How many days do I have to return an item I bought online?", "How many days do I have to return an item that I bought online?"},
        {"保証期間はどのくらいですか？", "保証期間はどのくらいですか？ B:"},
    };
    static const char *const differ[][2] = {
        {"What is the return window for shoes?", "What is the return window for shirts?"},
        {"How long is the warranty?", "How much is the shipping fee?"},
        {"What is the warranty", "What is the warranty for phones?"},
        {"Fee?", "Fees and taxes?"},
        {"返品期限は？", "送料はいくらですか？"},
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        CHECK(tk_synth_near_question(same[i][0], same[i][1]) && tk_synth_near_question(same[i][1], same[i][0]), "near: '%s' / '%s'", same[i][0],
              same[i][1]);
    for (size_t i = 0; i < sizeof differ / sizeof *differ; i++)
        CHECK(!tk_synth_near_question(differ[i][0], differ[i][1]) && !tk_synth_near_question(differ[i][1], differ[i][0]), "not near: '%s' / '%s'",
              differ[i][0], differ[i][1]);
}

/* A writer for the pipeline tests: pairs for a chunk (one with a number not in any chunk, one
 * question twice), numbered paraphrases (one identical to the question, one repeated). */
static tk_status writer(void *ud, const char *const *prompts, const uint64_t *seeds, size_t n, char **texts) {
    int *calls = ud;
    (*calls)++;
    for (size_t i = 0; i < n; i++) {
        tk_buf b = {0};
        if (strstr(prompts[i], "Rewrite the question")) {
            const char *q = strstr(prompts[i], "Question: ") + 10;
            tk_buf_printf(&b, "1. Please tell me, %s\n2. %s\n3. Please tell me, %s\n", q, q, q);
        } else if (strstr(prompts[i], "Japanese")) {
            tk_buf_printf(&b, "gibberish without pairs");
        } else if (strstr(prompts[i], "14 days")) {
            tk_buf_printf(&b, "Q: How long is the return window?\nA: 14 days from delivery.\nQ: And for sale items?\nA: 30 days.\n"
                              "Q: How long is the return window?\nA: Within 14 days.\nQ: How long is the return window? B:\nA: 14 days.");
        } else {
            tk_buf_printf(&b, "Q: What is the fee?\nA: The fee is 770 yen, seed %llu.\nQ: Is it?\nA: Is it?\nQ: <question>\nA: <answer>",
                          (unsigned long long)(seeds[i] % 2));
        }
        texts[i] = b.data;
    }
    return TK_OK;
}

static void test_synth_pipeline(void) {
    const char *md = "# Policy\n\n## Returns\n\nReturns are accepted within 14 days.\n\n## Shipping\n\nThe fee is 770 yen per order (seed 0 or 1).\n";
    write_file(tpath("policy.md"), md, strlen(md));
    write_file(tpath("empty.txt"), "\n", 1);
    int calls = 0;
    tk_synth_params p = tk_synth_default_params();
    p.gen.fn = writer, p.gen.fn_ud = &calls;
    p.questions_per_chunk = 4;
    p.paraphrases = 3;
    const char *langs[] = {"en", "ja"};
    p.languages = langs, p.n_languages = 2;
    p.system = "You are Rin.";
    char d0[512], d1[512];
    snprintf(d0, sizeof d0, "%s", tpath("policy.md"));
    snprintf(d1, sizeof d1, "%s", tpath("empty.txt"));
    const char *docs[] = {d0, d1};
    tk_synth_summary s;
    CHECK_OK(tk_synth_run(docs, 2, tpath("out.jsonl"), &p, &s));
    CHECK(calls == 2, "one batched call for the pairs, one for the paraphrases: %d", calls);
    CHECK(s.n_docs == 2 && s.n_failed_docs == 1 && s.docs[1].error && strstr(s.docs[1].error, "empty.txt: an empty document"),
          "%s", s.docs[1].error ? s.docs[1].error : "");
    const tk_synth_doc *d = &s.docs[0];
    CHECK(d->n_chunks == 2 && d->asked == 16, "chunks %zu asked %llu", d->n_chunks, (unsigned long long)d->asked);
    uint64_t dropped = 0;
    for (int k = TK_SYN_EMPTY; k < TK_SYN_REASONS; k++) dropped += d->dropped[k];
    CHECK(d->asked == d->parsed + d->dropped[TK_SYN_NO_PAIRS] + d->dropped[TK_SYN_CONTEXT], "asked = parsed + missing");
    CHECK(d->parsed == d->kept + dropped, "parsed %llu = kept %llu + dropped %llu", (unsigned long long)d->parsed, (unsigned long long)d->kept,
          (unsigned long long)dropped);
    /* returns/en: 4 parsed, 1 kept, "30 days" dropped (number), the repeated question dropped, the same question with the
       format's "B:" copied after it dropped (near-duplicate); shipping/en: 1 kept, an answer that is a question and the
       format's placeholders copied dropped, 1 missing; ja: no pairs (8 missing) */
    CHECK(d->kept == 2 && d->dropped[TK_SYN_NUMBER] == 1 && d->dropped[TK_SYN_DUPLICATE] == 1 && d->dropped[TK_SYN_NO_PAIRS] == 9 &&
          d->dropped[TK_SYN_QUESTION] == 1 && d->dropped[TK_SYN_EMPTY] == 1 && d->dropped[TK_SYN_NEAR_DUPLICATE] == 1,
          "kept %llu number %llu dup %llu missing %llu", (unsigned long long)d->kept, (unsigned long long)d->dropped[TK_SYN_NUMBER],
          (unsigned long long)d->dropped[TK_SYN_DUPLICATE], (unsigned long long)d->dropped[TK_SYN_NO_PAIRS]);
    CHECK(d->variants == 2 && d->para_dropped[TK_PARA_IDENTICAL] == 2 && d->para_dropped[TK_PARA_DUPLICATE] == 2, "variants %llu",
          (unsigned long long)d->variants);
    CHECK(s.records == 4, "%llu records", (unsigned long long)s.records);
    tk_buf t = {0};
    CHECK_OK(tk_synth_summary_text(&s, &t));
    CHECK(t.data && strstr(t.data, "number_not_in_chunk 1") && strstr(t.data, "near_duplicate_question 1") && strstr(t.data, "skipped: "), "%s",
          t.data ? t.data : "");
    tk_buf_free(&t);
    CHECK_OK(tk_synth_summary_json(&s, &t));
    CHECK(t.data && strstr(t.data, "\"kept\":2"), "%s", t.data ? t.data : "");
    tk_buf_free(&t);
    tk_synth_summary_free(&s);
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    CHECK_OK(tk_read_file(tpath("out.jsonl"), &a, &al));
    CHECK(a && strstr(a, "\"metadata\":{\"source\":\"") && strstr(a, "\"heading\":\"Policy > Returns\",\"span\":[") &&
          strstr(a, "\"lang\":\"en\",\"variant\":\"paraphrase\"") && strstr(a, "{\"role\":\"system\",\"content\":\"You are Rin.\"}"),
          "%s", a ? a : "");
    /* the span is the chunk's bytes in the source */
    const char *sp = a ? strstr(a, "\"span\":[") : NULL;
    size_t s0 = 0, s1 = 0;
    if (sp) sscanf(sp, "\"span\":[%zu,%zu]", &s0, &s1);
    CHECK(s1 > s0 && !strncmp(md + s0, "Returns are accepted within 14 days.", s1 - s0), "span %zu-%zu", s0, s1);
    /* the output is ordinary chat data: data check reads every record, metadata and all */
    tk_data_check_params cp = tk_data_check_default_params();
    cp.threads = 1;
    tk_data_report *r = NULL;
    CHECK_OK(tk_data_check(tpath("out.jsonl"), &cp, &r));
    CHECK(r && r->format == TK_DATA_CHAT && r->n_errors == 0 && r->n_examples == 4, "format %d errors %llu examples %llu", r ? (int)r->format : -1,
          r ? (unsigned long long)r->n_errors : 0, r ? (unsigned long long)r->n_examples : 0);
    tk_data_report_free(r);
    /* deterministic: the same run writes the same bytes */
    CHECK_OK(tk_synth_run(docs, 2, tpath("out2.jsonl"), &p, &s));
    tk_synth_summary_free(&s);
    CHECK_OK(tk_read_file(tpath("out2.jsonl"), &b, &bl));
    CHECK(al == bl && a && b && !memcmp(a, b, al), "same output for the same seed:\n%s\n%s", a, b);
    free(a), free(b);
    /* nothing readable: refused, naming the file */
    const char *only[] = {d1};
    CHECK(tk_synth_run(only, 1, tpath("out3.jsonl"), &p, &s) == TK_ERR_FORMAT && strstr(tk_last_error(), "empty.txt"), "%s", tk_last_error());
    tk_synth_summary_free(&s);
}

static void test_augment(void) {
    const char *in = "{\"messages\":[{\"role\":\"user\",\"content\":\"What are your hours?\"},{\"role\":\"assistant\",\"content\":\"9:30-18:00.\"}]}\n"
                     "not json\n"
                     "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Phone?\"},"
                     "{\"role\":\"assistant\",\"content\":\"0120-874-312\"}],\"metadata\":{\"id\":7}}\n";
    write_file(tpath("chat.jsonl"), in, strlen(in));
    int calls = 0;
    tk_augment_params p = tk_augment_default_params();
    p.gen.fn = writer, p.gen.fn_ud = &calls;
    p.paraphrases = 3;
    tk_augment_summary s;
    CHECK_OK(tk_augment_run(tpath("chat.jsonl"), tpath("aug.jsonl"), &p, &s));
    CHECK(calls == 1 && s.records == 2 && s.bad_lines == 1 && s.first_bad_line == 2 && s.added == 2, "records %llu bad %llu added %llu",
          (unsigned long long)s.records, (unsigned long long)s.bad_lines, (unsigned long long)s.added);
    CHECK(s.added + s.dropped[TK_PARA_EMPTY] + s.dropped[TK_PARA_IDENTICAL] + s.dropped[TK_PARA_TOO_LONG] + s.dropped[TK_PARA_DUPLICATE] == 6,
          "counts add up");
    char *a = NULL;
    size_t al = 0;
    CHECK_OK(tk_read_file(tpath("aug.jsonl"), &a, &al));
    CHECK(a && strstr(a, "Please tell me, Phone?\"},{\"role\":\"assistant\",\"content\":\"0120-874-312\"}],\"metadata\":{\"id\":7,\"paraphrase_of_line\":3}"),
          "%s", a ? a : "");
    CHECK(a && !strncmp(a, in, strchr(in, '\n') - in + 1), "the original first, byte for byte");
    free(a);
    write_file(tpath("notchat.jsonl"), "{\"text\":\"x\"}\n", 13);
    CHECK(tk_augment_run(tpath("notchat.jsonl"), tpath("aug2.jsonl"), &p, &s) == TK_ERR_FORMAT && strstr(tk_last_error(), "notchat.jsonl: line 1"),
          "%s", tk_last_error());
}

/* Batched generation with a real (tiny) model: the same texts whatever the batch size, a new seed changes them. */
static void test_generate_stories(void) {
    const char *path = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    if (tk_test_require(path, "stories260K GGUF")) return;
    tk_model_params mp = tk_model_default_params();
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return;
    tk_synth_gen g = {.model = m, .temperature = 0.8f, .seed = 5, .max_batch = 3};
    CHECK_OK(tk_chat_resolve(tk_model_tokenizer(m), NULL, &g.family));
    tk_chat_msg msgs[4] = {{TK_ROLE_USER, "Once upon a time"}, {TK_ROLE_USER, "The cat"}, {TK_ROLE_USER, "A dog ran"}, {TK_ROLE_USER, "Lily"}};
    const tk_chat_msg *mp4[4] = {&msgs[0], &msgs[1], &msgs[2], &msgs[3]};
    size_t nm[4] = {1, 1, 1, 1};
    uint64_t keys[4] = {1, 2, 3, 4};
    char *a[4] = {0}, *b[4] = {0}, *c[4] = {0};
    int64_t ng = 0;
    double secs = 0;
    CHECK_OK(tk_synth_generate(&g, mp4, nm, keys, 4, 24, a, NULL, &ng, &secs));
    g.max_batch = 1;
    CHECK_OK(tk_synth_generate(&g, mp4, nm, keys, 4, 24, b, NULL, &ng, &secs));
    g.seed = 6;
    CHECK_OK(tk_synth_generate(&g, mp4, nm, keys, 4, 24, c, NULL, &ng, &secs));
    int same = 0, differ = 0;
    for (int i = 0; i < 4; i++) {
        same += a[i] && b[i] && !strcmp(a[i], b[i]);
        differ += a[i] && c[i] && strcmp(a[i], c[i]) != 0;
    }
    CHECK(same == 4, "batch size changed the texts (%d of 4 equal)", same);
    CHECK(differ >= 1, "a new seed changed nothing");
    CHECK(ng > 0, "nothing generated");
    for (int i = 0; i < 4; i++) free(a[i]), free(b[i]), free(c[i]);
    tk_model_free(m);
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_markdown();
    test_html();
    test_bad_documents();
    test_pdf();
    test_chunk_sizes();
    test_grounding();
    test_parsers();
    test_near_question();
    test_synth_pipeline();
    test_augment();
    test_generate_stories();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return tk_test_done("test_synth");
}
