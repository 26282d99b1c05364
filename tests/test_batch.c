/* SFT data to batches (src/train/batch.h):
 * - loss masks on known conversations with the SmolLM2 tokenizer: the masked tokens,
 *   decoded run by run, are exactly each trained assistant message + <|im_end|>;
 *   weight 0 removes a message; --train-on-prompt trains on the whole rendered text
 *   except the first token and the weight-0 message (checked against the template's
 *   text rendering); prompt/completion, Alpaca and ShareGPT records;
 * - truncation counts (examples cut, target tokens lost, examples skipped);
 * - packing: rows, segment ids, restarting positions, shifted targets, padding; and a
 *   packed row's loss on stories260K equals the sum of the examples' own losses;
 * - per-epoch shuffles are permutations, deterministic per (seed, epoch);
 * - validation split: deterministic, disjoint, sizes;
 * - bad records fail with their line; preference data is refused. */
#include "test.h"
#include "train/batch.h"

static tk_tokenizer *g_tok;
static tk_chat_family g_fam;

static tk_status load_str(const char *s, tk_sft_params *p, tk_sft_data *d) {
    return tk_sft_load_buffer(s, strlen(s), "test.jsonl", g_tok, p, d);
}

/* Decodes each maximal run of masked tokens of example e into runs[] (joined by '|'). */
static void masked_runs(const tk_sft_data *d, int64_t e, tk_buf *out) {
    out->len = 0;
    tk_buf_append(out, "", 0);
    int64_t o = d->off[e], n = d->off[e + 1] - o;
    for (int64_t t = 0; t < n;) {
        if (!d->mask[o + t]) { t++; continue; }
        int64_t s = t;
        while (t < n && d->mask[o + t]) t++;
        if (out->len) tk_buf_append(out, "|", 1);
        CHECK_OK(tk_detokenize(g_tok, d->ids + o + s, (size_t)(t - s), false, out));
    }
}

static void test_chat_masks(void) {
    const char *rec =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"assistant\",\"content\":\"Hello there\"},{\"role\":\"user\",\"content\":\"Again\"},"
        "{\"role\":\"assistant\",\"content\":\"Bye now\",\"weight\":0},{\"role\":\"user\",\"content\":\"Last\"},"
        "{\"role\":\"assistant\",\"content\":\"Done.\",\"weight\":1}]}\n";
    tk_sft_params p = tk_sft_default_params();
    p.family = g_fam;
    tk_sft_data d;
    CHECK_OK(load_str(rec, &p, &d));
    CHECK(d.n == 1 && d.format == TK_DATA_CHAT, "n %lld format %d", (long long)d.n, (int)d.format);
    tk_buf runs = {0};
    if (d.n == 1) {
        masked_runs(&d, 0, &runs);
        CHECK(!strcmp(runs.data, "Hello there<|im_end|>|Done.<|im_end|>"), "runs '%s'", runs.data);
        CHECK(d.line[0] == 1, "line %llu", (unsigned long long)d.line[0]);
        uint64_t nt = 0;
        for (int64_t t = 0; t < tk_sft_len(&d, 0); t++) nt += d.mask[t];
        CHECK(nt == d.stats.n_targets, "targets %llu vs %llu", (unsigned long long)nt, (unsigned long long)d.stats.n_targets);
    }
    tk_sft_free(&d);

    /* --train-on-prompt: everything but token 0 and the weight-0 message's block */
    p.train_on_prompt = true;
    CHECK_OK(load_str(rec, &p, &d));
    if (d.n == 1) {
        tk_chat_msg m[7] = {{TK_ROLE_SYSTEM, "You are terse."}, {TK_ROLE_USER, "Hi"}, {TK_ROLE_ASSISTANT, "Hello there"},
                            {TK_ROLE_USER, "Again"}, {TK_ROLE_ASSISTANT, "Bye now"}, {TK_ROLE_USER, "Last"},
                            {TK_ROLE_ASSISTANT, "Done."}};
        tk_buf text = {0};
        CHECK_OK(tk_chat_render_text(g_fam, m, 7, false, &text));
        const char *blk = "<|im_start|>assistant\nBye now<|im_end|>\n";
        char *at = text.data ? strstr(text.data, blk) : NULL;
        CHECK(at != NULL, "block not found in '%s'", text.data);
        CHECK(text.data && !strncmp(text.data, "<|im_start|>", 12), "rendered text starts '%.20s'", text.data);
        if (at && text.data) {
            tk_buf want = {0};
            tk_buf_append(&want, text.data + 12, (size_t)(at - text.data) - 12);
            tk_buf_append(&want, "|", 1);
            tk_buf_append(&want, at + strlen(blk), strlen(at + strlen(blk)));
            masked_runs(&d, 0, &runs);
            CHECK(!strcmp(runs.data, want.data), "train-on-prompt runs\n'%s'\nwant\n'%s'", runs.data, want.data);
            tk_buf_free(&want);
        }
        tk_buf_free(&text);
    }
    tk_sft_free(&d);

    /* the other conversation formats, each with a known reply */
    const char *others =
        "{\"prompt\":\"What is 2+2?\",\"completion\":\"4\"}\n";
    p.train_on_prompt = false;
    CHECK_OK(load_str(others, &p, &d));
    if (d.n == 1) { masked_runs(&d, 0, &runs); CHECK(!strcmp(runs.data, "4<|im_end|>"), "prompt/completion runs '%s'", runs.data); }
    CHECK(d.format == TK_DATA_PROMPT_COMPLETION, "format %d", (int)d.format);
    tk_sft_free(&d);
    const char *alpaca = "{\"instruction\":\"Translate\",\"input\":\"neko\",\"output\":\"cat\"}\n";
    CHECK_OK(load_str(alpaca, &p, &d));
    if (d.n == 1) { masked_runs(&d, 0, &runs); CHECK(!strcmp(runs.data, "cat<|im_end|>"), "alpaca runs '%s'", runs.data); }
    CHECK(d.format == TK_DATA_ALPACA, "format %d", (int)d.format);
    tk_sft_free(&d);
    const char *sharegpt = "{\"conversations\":[{\"from\":\"human\",\"value\":\"Hey\"},{\"from\":\"gpt\",\"value\":\"Yo\"},"
                           "{\"from\":\"human\",\"value\":\"Name?\"},{\"from\":\"gpt\",\"value\":\"Takumi\"}]}\n";
    CHECK_OK(load_str(sharegpt, &p, &d));
    if (d.n == 1) { masked_runs(&d, 0, &runs); CHECK(!strcmp(runs.data, "Yo<|im_end|>|Takumi<|im_end|>"), "sharegpt runs '%s'", runs.data); }
    CHECK(d.format == TK_DATA_SHAREGPT, "format %d", (int)d.format);
    tk_sft_free(&d);
    tk_buf_free(&runs);

    /* bad record: the load fails naming its line; preference data is refused */
    const char *bad = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n"
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\",\"weight\":2}]}\n";
    tk_status st = load_str(bad, &p, &d);
    CHECK(st == TK_ERR_FORMAT && strstr(tk_last_error(), "line 2"), "bad record: %s: %s", tk_status_str(st), tk_last_error());
    tk_sft_free(&d);
    const char *pref = "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n";
    st = load_str(pref, &p, &d);
    CHECK(st == TK_ERR_UNSUPPORTED, "preference: %s: %s", tk_status_str(st), tk_last_error());
    tk_sft_free(&d);

    /* truncation through the loader: counts agree with lengths computed from tk_chat_render */
    const char *two =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a long story about a cat and a dog.\"},"
        "{\"role\":\"assistant\",\"content\":\"Once upon a time there was a cat who lived with a dog in a small house.\"}]}\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello\"}]}\n";
    tk_chat_msg m1[2] = {{TK_ROLE_USER, "Tell me a long story about a cat and a dog."},
                         {TK_ROLE_ASSISTANT, "Once upon a time there was a cat who lived with a dog in a small house."}};
    tk_chat_tokens ct = {0};
    CHECK_OK(tk_chat_render(g_tok, g_fam, m1, 2, false, &ct));
    int32_t n1 = (int32_t)ct.ids.len, first_target = -1, n_tgt = 0;
    for (int32_t t = 0; t < n1; t++) if (ct.is_target[t]) { if (first_target < 0) first_target = t; n_tgt++; }
    tk_chat_tokens_free(&ct);
    p.max_seq = first_target + 3;   /* keeps 3 target tokens of the long example */
    CHECK_OK(load_str(two, &p, &d));
    CHECK(d.stats.n_truncated >= 1 && d.stats.n_examples == 2, "truncated %llu examples %llu", (unsigned long long)d.stats.n_truncated,
          (unsigned long long)d.stats.n_examples);
    CHECK(d.n >= 1 && tk_sft_len(&d, 0) == p.max_seq, "len %d", d.n ? tk_sft_len(&d, 0) : -1);
    uint64_t cut0 = (uint64_t)(n_tgt - 3);
    CHECK(d.stats.targets_cut >= cut0, "cut %llu expected at least %llu", (unsigned long long)d.stats.targets_cut, (unsigned long long)cut0);
    tk_sft_free(&d);
    p.max_seq = first_target;       /* no target left in the long one: skipped */
    CHECK_OK(load_str(two, &p, &d));
    CHECK(d.stats.n_skipped >= 1 && (uint64_t)d.n == d.stats.n_examples && d.stats.n_records == 2, "skipped %llu n %lld",
          (unsigned long long)d.stats.n_skipped, (long long)d.n);
    tk_sft_free(&d);
}

/* Synthetic examples: ids[i] = 100 * example + i, mask given. */
static void add_synth(tk_sft_data *d, int e, int n, const char *mask, int32_t max_seq) {
    int32_t ids[64];
    uint8_t m[64];
    for (int i = 0; i < n; i++) { ids[i] = 100 * e + i; m[i] = (uint8_t)(mask[i] == '1'); }
    CHECK_OK(tk_sft_add(d, ids, m, n, max_seq, (uint64_t)e + 1));
}

static void test_truncation_counts(void) {
    tk_sft_data d = {0};
    add_synth(&d, 0, 10, "0001111111", 6);   /* kept 3..5, cut 6..9 */
    add_synth(&d, 1, 10, "0000000111", 6);   /* all targets cut: skipped */
    add_synth(&d, 2, 4, "0011", 6);          /* fits */
    add_synth(&d, 3, 3, "100", 6);           /* only token 0 marked: nothing to learn, skipped */
    CHECK(d.stats.n_truncated == 2, "truncated %llu", (unsigned long long)d.stats.n_truncated);
    CHECK(d.stats.targets_cut == 7, "cut %llu", (unsigned long long)d.stats.targets_cut);
    CHECK(d.stats.n_skipped == 2, "skipped %llu", (unsigned long long)d.stats.n_skipped);
    CHECK(d.n == 2 && d.stats.n_examples == 2, "n %lld", (long long)d.n);
    CHECK(d.stats.n_targets == 5 && d.stats.n_tokens == 10 && d.stats.longest == 6, "targets %llu tokens %llu longest %d",
          (unsigned long long)d.stats.n_targets, (unsigned long long)d.stats.n_tokens, d.stats.longest);
    CHECK(d.n == 2 && d.line[1] == 3, "line %llu", d.n == 2 ? (unsigned long long)d.line[1] : 0ull);
    tk_sft_free(&d);
}

static void test_packing(void) {
    tk_sft_data d = {0};
    int lens[5] = {5, 3, 4, 2, 6};
    const char *masks[5] = {"01111", "011", "0011", "01", "000111"};
    for (int e = 0; e < 5; e++) add_synth(&d, e, lens[e], masks[e], 64);
    int64_t order[5] = {0, 1, 2, 3, 4};
    tk_rows r;
    CHECK_OK(tk_rows_pack(&d, order, 5, 8, true, &r));
    /* first fit: [0 1] (8), [2 3] (6), [4] (6) */
    CHECK(r.n_rows == 3, "rows %lld", (long long)r.n_rows);
    if (r.n_rows == 3) {
        CHECK(r.row_off[1] == 2 && r.ex[0] == 0 && r.ex[1] == 1 && r.row_len[0] == 8, "row 0");
        CHECK(r.row_off[2] == 4 && r.ex[2] == 2 && r.ex[3] == 3 && r.row_len[1] == 6, "row 1");
        CHECK(r.row_off[3] == 5 && r.ex[4] == 4 && r.row_len[2] == 6, "row 2");
        CHECK(tk_rows_targets(&d, &r, 0, 3) == 4 + 2 + 2 + 1 + 3, "targets %lld", (long long)tk_rows_targets(&d, &r, 0, 3));
        tk_batch_buf bb = {0};
        CHECK_OK(tk_batch_fill(&bb, &d, &r, 1, 2));   /* rows 1 and 2: T = 6 */
        CHECK(bb.b.n_rows == 2 && bb.b.n_cols == 6, "shape %d x %d", bb.b.n_rows, bb.b.n_cols);
        /* row 1: ex2 (ids 200..203, mask 0011), ex3 (300, 301, mask 01) */
        const int32_t want_ids[12] = {200, 201, 202, 203, 300, 301, 400, 401, 402, 403, 404, 405};
        const int32_t want_pos[12] = {0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 4, 5};
        const int32_t want_seg[12] = {0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
        const int32_t want_tg[12] = {-1, 202, 203, -1, 301, -1, -1, -1, 403, 404, 405, -1};
        int ok = 1;
        for (int t = 0; t < 12; t++)
            if (bb.ids[t] != want_ids[t] || bb.pos[t] != want_pos[t] || bb.seg[t] != want_seg[t] || bb.target[t] != want_tg[t]) {
                ok = 0;
                fprintf(stderr, "t %d: id %d pos %d seg %d tg %d\n", t, bb.ids[t], bb.pos[t], bb.seg[t], bb.target[t]);
            }
        CHECK(ok, "packed batch contents");
        CHECK(bb.n_targets == 6 && bb.n_tokens == 12, "targets %lld tokens %lld", (long long)bb.n_targets, (long long)bb.n_tokens);
        CHECK_OK(tk_batch_fill(&bb, &d, &r, 0, 3));   /* T = 8: rows 1, 2 padded */
        CHECK(bb.b.n_cols == 8 && bb.seg[8 + 6] == -1 && bb.seg[8 + 7] == -1 && bb.target[8 + 7] == -1 && bb.seg[16 + 6] == -1,
              "padding");
        CHECK(tk_batch_fill(&bb, &d, &r, 2, 2) == TK_ERR_ARG, "rows past the end refused");
        tk_batch_buf_free(&bb);
    }
    tk_rows_free(&r);
    CHECK_OK(tk_rows_pack(&d, order, 5, 8, false, &r));
    CHECK(r.n_rows == 5 && r.row_len[4] == 6, "no packing: %lld rows", (long long)r.n_rows);
    tk_rows_free(&r);

    /* epochs: permutations, deterministic per (seed, epoch), different across epochs */
    tk_sft_data big = {0};
    for (int e = 0; e < 60; e++) add_synth(&big, e, 2 + e % 7, "01111111", 64);
    tk_rows a, b, c;
    CHECK_OK(tk_rows_epoch(&big, 42, 0, true, 16, true, &a));
    CHECK_OK(tk_rows_epoch(&big, 42, 0, true, 16, true, &b));
    CHECK_OK(tk_rows_epoch(&big, 42, 1, true, 16, true, &c));
    int seen[60] = {0}, same_ab = a.n_rows == b.n_rows, same_ac = a.n_rows == c.n_rows;
    for (int i = 0; i < 60; i++) {
        seen[a.ex[i]]++;
        if (a.ex[i] != b.ex[i]) same_ab = 0;
        if (a.ex[i] != c.ex[i]) same_ac = 0;
    }
    int perm = 1;
    for (int i = 0; i < 60; i++) if (seen[i] != 1) perm = 0;
    CHECK(perm, "epoch is not a permutation");
    CHECK(same_ab, "same seed and epoch give different rows");
    CHECK(!same_ac, "epochs 0 and 1 are identical");
    int fits = 1;
    for (int64_t k = 0; k < a.n_rows; k++) if (a.row_len[k] > 16) fits = 0;
    CHECK(fits, "a row is longer than max_len");
    tk_rows_free(&a); tk_rows_free(&b); tk_rows_free(&c);

    /* split: deterministic, disjoint, sizes */
    tk_sft_data v1, v2, t2 = {0};
    for (int e = 0; e < 60; e++) add_synth(&t2, e, 2 + e % 7, "01111111", 64);
    CHECK_OK(tk_sft_split(&big, 0.1, 7, &v1));
    CHECK_OK(tk_sft_split(&t2, 0.1, 7, &v2));
    CHECK(v1.n == 6 && big.n == 54, "split sizes %lld + %lld", (long long)v1.n, (long long)big.n);
    int same = v1.n == v2.n;
    for (int64_t i = 0; same && i < v1.n; i++) if (v1.line[i] != v2.line[i]) same = 0;
    CHECK(same, "split not deterministic");
    int lines[61] = {0};
    for (int64_t i = 0; i < v1.n; i++) lines[v1.line[i]]++;
    for (int64_t i = 0; i < big.n; i++) lines[big.line[i]]++;
    int all_once = 1;
    for (int i = 1; i <= 60; i++) if (lines[i] != 1) all_once = 0;
    CHECK(all_once, "split loses or duplicates examples");
    CHECK(big.n == 54 && tk_sft_len(&big, 0) == 2 + (int)(big.line[0] - 1) % 7, "examples keep their tokens");
    tk_sft_free(&v1); tk_sft_free(&v2); tk_sft_free(&t2); tk_sft_free(&big);
    tk_sft_free(&d);
}

/* A packed row's summed loss equals the sum of its examples' losses run alone (stories260K). */
static void test_packed_loss(void) {
    const char *path = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    if (tk_test_require(path, "models/stories260K")) return;
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return;
    tk_sft_data d = {0};
    const char *masks[3] = {"0111110111", "0011111", "01111111111"};
    for (int e = 0; e < 3; e++) {
        int n = (int)strlen(masks[e]);
        int32_t ids[16];
        uint8_t mk[16];
        for (int i = 0; i < n; i++) { ids[i] = 1 + (37 * (e + 1) + 11 * i) % 500; mk[i] = (uint8_t)(masks[e][i] == '1'); }
        ids[0] = 1;
        CHECK_OK(tk_sft_add(&d, ids, mk, n, 64, (uint64_t)e + 1));
    }
    int64_t order[3] = {0, 1, 2};
    tk_rows packed, single;
    CHECK_OK(tk_rows_pack(&d, order, 3, 32, true, &packed));
    CHECK_OK(tk_rows_pack(&d, order, 3, 32, false, &single));
    CHECK(packed.n_rows == 1 && single.n_rows == 3, "rows %lld %lld", (long long)packed.n_rows, (long long)single.n_rows);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 3, 32, 0, &f));
    tk_batch_buf bb = {0};
    double lp = 0, wp = 0, ls = 0, ws = 0;
    CHECK_OK(tk_batch_fill(&bb, &d, &packed, 0, 1));
    if (f) CHECK_OK(tk_forward_nll(f, &bb.b, bb.target, NULL, &lp, &wp));
    for (int k = 0; k < 3; k++) {
        CHECK_OK(tk_batch_fill(&bb, &d, &single, k, 1));
        if (f) CHECK_OK(tk_forward_nll(f, &bb.b, bb.target, NULL, &ls, &ws));
    }
    CHECK(wp == (double)d.stats.n_targets && ws == wp, "weights %g %g targets %llu", wp, ws, (unsigned long long)d.stats.n_targets);
    CHECK_NEAR(lp, ls, 1e-4 * fabs(ls));
    CHECK(lp > 0, "loss %g", lp);
    tk_batch_buf_free(&bb);
    tk_forward_free(f);
    tk_rows_free(&packed); tk_rows_free(&single);
    tk_sft_free(&d);
    tk_model_free(m);
}

int main(void) {
    test_truncation_counts();
    test_packing();
    test_packed_loss();
    const char *model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (access(model, F_OK) != 0) model = NULL;
    if (!tk_test_require(model, "models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh)")) {
        CHECK_OK(tk_tokenizer_load(model, NULL, &g_tok));
        if (g_tok) {
            CHECK_OK(tk_chat_resolve(g_tok, NULL, &g_fam));
            CHECK(g_fam == TK_CHAT_SMOLLM2, "family %s", tk_chat_family_name(g_fam));
            test_chat_masks();
            tk_tokenizer_free(g_tok);
        }
    }
    return tk_test_done("test_batch");
}
