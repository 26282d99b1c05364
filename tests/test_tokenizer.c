/* Tokenizer tests beyond the llama.cpp conformance vectors:
 *  - llama2.c tokenizer.bin: stories260K "Once upon a time" -> [1, 403, 407, 261, 378] (README
 *    reference), the reference greedy ids decode to the reference text, tok512.bin == the GGUF
 *    vocabulary of the same model, llama2 tokenizer.bin == ggml-vocab-llama-spm.gguf;
 *  - small HF tokenizer.json fixtures (tools/make_tokenizer_fixtures.py): ids equal the HF
 *    `tokenizers` library's, with and without special tokens, and its decoded text; NFC
 *    normalization equals Python's unicodedata on decomposed/composed/Hangul strings;
 *  - SmolLM2 (GGUF): special tokens with and without TK_TOK_PARSE_SPECIAL, BOS handling;
 *  - every available tokenizer: decode(encode(s)) == s for Japanese, emoji (ZWJ), code with
 *    tabs, 1000 spaces, invalid UTF-8, empty text, special-token text; the streaming decoder
 *    gives the whole decode (UTF-8 split across tokens); two threads encode identically;
 *  - bad inputs give clear errors. */
#include "test.h"
#include "tokenizer/unicode.h" /* internal: tk_uni_nfc, checked against Python's unicodedata */
#include <cJSON.h>
#include <pthread.h>

static const char *k_strings[] = {
    "",
    " ",
    "Hello world",
    "  leading spaces and trailing  ",
    "日本語のテキストです。東京タワーに行きました！",
    "ひらがな カタカナ 漢字 ｶﾀｶﾅ",
    "emoji 🙂🚀🦙 flags 🇯🇵 and a ZWJ family 👩‍👩‍👧‍👦 and 🏳️‍🌈",
    "def main():\n\tif x == 1:\n\t\treturn {\"a\": [1, 2, 3]}\n\treturn None  # done\n",
    "int main(void) { printf(\"%d\\n\", 42); return 0; }",
    "\n\n\n\t\t  \r\n \u3000 full-width space",
    "numbers 1234567890 3.14159 1e-9 0x1F",
    "It's we're they've I'm you'll he'd 'S 'RE",
    "Ünïcödé àçcénts: naïve café Führer Cửa Việt",
    "Привет мир! Γειά σου κόσμε! مرحبا بالعالم",
    "<s>not parsed</s> <|im_start|> <|endoftext|>",
};

/* invalid UTF-8 and oddities (with explicit lengths) */
#define BYTES(lit) {lit, sizeof(lit) - 1}
static const struct { const char *s; size_t n; } k_bytes[] = {
    BYTES("\xff\xfe invalid \xc3\x28 bytes \xe2\x82 end \xf0\x9f\x98"),
    BYTES("\x80\x81\x82"),
    BYTES("a\0b"),
    BYTES("\xed\xa0\x80 surrogate \xc0\xaf overlong"),
};

static char *spaces(size_t n) { char *s = malloc(n + 1); memset(s, ' ', n); s[n] = 0; return s; }

/* Strict UTF-8 check (no overlong forms, surrogates or values past U+10FFFF). */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t k; uint32_t v, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { k = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { k = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { k = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (k > n) return 0;
    for (size_t j = 1; j < k; j++) { if ((s[j] & 0xC0) != 0x80) return 0; v = (v << 6) | (s[j] & 0x3F); }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return k;
}
static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) { size_t k = utf8_char((const unsigned char *)s + i, n - i); if (!k) return false; i += k; }
    return true;
}

/* out equals s, except that a byte of s that is not part of valid UTF-8 may come back as U+FFFD
 * (a vocabulary without a token for that byte encodes it as U+FFFD, like llama.cpp). exact: no exception. */
static bool same_text(const char *s, size_t n, const char *out, size_t m, bool exact) {
    size_t i = 0, j = 0;
    while (i < n && j < m) {
        size_t k = utf8_char((const unsigned char *)s + i, n - i);
        if (k) {
            if (j + k > m || memcmp(s + i, out + j, k)) return false;
            i += k; j += k;
            continue;
        }
        if (out[j] == s[i]) { i++; j++; continue; }
        if (exact || j + 3 > m || memcmp(out + j, "\xEF\xBF\xBD", 3)) return false;
        i++; j += 3;
    }
    return i == n && j == m;
}

/* Tokenizers whose vocabulary has a token for every byte: invalid UTF-8 must round-trip exactly. */
static bool g_exact_bytes;

/* decode(encode(s)) == s, and the streaming decoder agrees with the whole decode. */
static void check_roundtrip(const char *name, const tk_tokenizer *t, const char *s, size_t n, int flags) {
    tk_ivec ids = {0};
    tk_buf out = {0}, st_out = {0};
    CHECK_OK(tk_tokenize(t, s, n, flags, &ids));
    CHECK_OK(tk_detokenize(t, ids.data, ids.len, false, &out));
    bool ok = same_text(s, n, out.data ? out.data : "", out.len, g_exact_bytes);
    CHECK(ok, "%s: roundtrip of '%.60s' (%zu bytes, %zu ids) gave '%.60s' (%zu bytes)", name, s, n, ids.len, out.data ? out.data : "", out.len);
    tk_detok_stream ds;
    tk_detok_stream_init(&ds, t);
    for (size_t i = 0; i < ids.len; i++) CHECK_OK(tk_detok_stream_push(&ds, ids.data[i], &st_out));
    CHECK_OK(tk_detok_stream_flush(&ds, &st_out));
    CHECK(valid_utf8(st_out.data ? st_out.data : "", st_out.len), "%s: stream output is not valid UTF-8", name);
    if (valid_utf8(out.data ? out.data : "", out.len))
        CHECK(st_out.len == out.len && (out.len == 0 || !memcmp(st_out.data, out.data, out.len)),
              "%s: stream '%.60s' != decode '%.60s'", name, st_out.data ? st_out.data : "", out.data ? out.data : "");
    tk_ivec_free(&ids); tk_buf_free(&out); tk_buf_free(&st_out);
}

static void check_all_roundtrips(const char *name, const tk_tokenizer *t, bool exact_bytes) {
    g_exact_bytes = exact_bytes;
    for (size_t i = 0; i < sizeof k_strings / sizeof k_strings[0]; i++) {
        /* Phi-3 vocabularies strip the whitespace after special/user tokens such as "</s>" (llama.cpp rule) */
        if (!strcmp(name, "phi-3") && strchr(k_strings[i], '<')) continue;
        check_roundtrip(name, t, k_strings[i], strlen(k_strings[i]), 0);
    }
    for (size_t i = 0; i < sizeof k_bytes / sizeof k_bytes[0]; i++)
        check_roundtrip(name, t, k_bytes[i].s, k_bytes[i].n, 0);
    char *sp = spaces(1000);
    check_roundtrip(name, t, sp, 1000, 0);
    sp[500] = 'x';
    check_roundtrip(name, t, sp, 1000, 0);
    free(sp);
    /* with BOS/EOS added and skipped on decode */
    tk_ivec ids = {0};
    tk_buf out = {0};
    const char *s = "Once upon a time, 日本語.";
    CHECK_OK(tk_tokenize(t, s, strlen(s), TK_TOK_ADD_SPECIAL, &ids));
    if (tk_tokenizer_adds_bos(t)) CHECK(ids.len && ids.data[0] == tk_tokenizer_bos(t), "%s: BOS not first", name);
    CHECK_OK(tk_detokenize(t, ids.data, ids.len, true, &out));
    CHECK(out.data && !strcmp(out.data, s), "%s: decode with skip_special gave '%s'", name, out.data ? out.data : "");
    tk_ivec_free(&ids); tk_buf_free(&out);
}

/* Streaming: a multi-byte character split over byte tokens is emitted once complete. */
static void check_stream_split(const char *name, const tk_tokenizer *t, const char *s) {
    tk_ivec ids = {0};
    CHECK_OK(tk_tokenize(t, s, strlen(s), 0, &ids));
    tk_detok_stream ds;
    tk_detok_stream_init(&ds, t);
    tk_buf out = {0};
    size_t partial_pushes = 0;
    for (size_t i = 0; i < ids.len; i++) {
        size_t before = out.len;
        CHECK_OK(tk_detok_stream_push(&ds, ids.data[i], &out));
        if (ds.n_pending) partial_pushes++;
        CHECK(valid_utf8(out.data ? out.data : "", out.len), "%s: partial stream output is not valid UTF-8", name);
        (void)before;
    }
    CHECK_OK(tk_detok_stream_flush(&ds, &out));
    CHECK(out.data && !strcmp(out.data, s), "%s: stream gave '%s'", name, out.data ? out.data : "");
    printf("  %s: '%s' -> %zu ids, %zu pushes left a partial character pending\n", name, s, ids.len, partial_pushes);
    tk_ivec_free(&ids); tk_buf_free(&out);
}

static void expect_ids(const char *name, const tk_tokenizer *t, const char *s, size_t n, int flags, const int32_t *want, size_t nwant) {
    tk_ivec ids = {0};
    CHECK_OK(tk_tokenize(t, s, n, flags, &ids));
    bool ok = ids.len == nwant && (nwant == 0 || !memcmp(ids.data, want, nwant * sizeof *want));
    CHECK(ok, "%s: '%.60s' flags=%d gave %zu ids", name, s, flags, ids.len);
    if (!ok) {
        fprintf(stderr, "    want:"); for (size_t i = 0; i < nwant; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n    got: "); for (size_t i = 0; i < ids.len; i++) fprintf(stderr, " %d", ids.data[i]);
        fputc('\n', stderr);
    }
    tk_ivec_free(&ids);
}

static tk_tokenizer *load_gguf(const char *path) {
    tk_gguf *g = NULL;
    tk_tokenizer *t = NULL;
    tk_status st = tk_gguf_open(path, &g);
    if (!st) st = tk_tokenizer_from_gguf(g, &t);
    CHECK_OK(st);
    tk_gguf_close(g);
    return t;
}

/* Two tokenizers give identical ids on every test string (plus extra ones). */
static void check_same(const char *name, const tk_tokenizer *a, const tk_tokenizer *b, const char *const *extra, size_t nextra) {
    size_t n = sizeof k_strings / sizeof k_strings[0], diff = 0, total = 0;
    for (size_t i = 0; i < n + nextra; i++) {
        const char *s = i < n ? k_strings[i] : extra[i - n];
        for (int flags = 0; flags <= TK_TOK_ADD_SPECIAL; flags += TK_TOK_ADD_SPECIAL) {
            tk_ivec x = {0}, y = {0};
            CHECK_OK(tk_tokenize(a, s, strlen(s), flags, &x));
            CHECK_OK(tk_tokenize(b, s, strlen(s), flags, &y));
            bool same = x.len == y.len && (x.len == 0 || !memcmp(x.data, y.data, x.len * sizeof(int32_t)));
            total++;
            if (!same) { diff++; fprintf(stderr, "  %s: differ on '%s'\n", name, s); }
            tk_ivec_free(&x); tk_ivec_free(&y);
        }
    }
    CHECK(diff == 0, "%s: %zu of %zu encodings differ", name, diff, total);
    printf("  %s: %zu / %zu encodings identical\n", name, total - diff, total);
}

static void test_llama2c(void) {
    const char *tok512 = tk_test_shared("models/stories260K/llama2c/tok512.bin");
    if (tk_test_require(tok512, "models/stories260K/llama2c/tok512.bin")) return;
    tk_tokenizer *t = NULL;
    CHECK_OK(tk_tokenizer_from_llama2c(tok512, &t));
    if (!t) return;
    CHECK(tk_tokenizer_n_vocab(t) == 512, "tok512 has %d tokens", tk_tokenizer_n_vocab(t));
    CHECK(tk_tokenizer_kind_of(t) == TK_TOKENIZER_SPM, "tok512 kind");
    static const int32_t once[] = {1, 403, 407, 261, 378};
    expect_ids("tok512", t, "Once upon a time", 16, TK_TOK_ADD_SPECIAL, once, 5);
    expect_ids("tok512 no BOS", t, "Once upon a time", 16, 0, once + 1, 4);

    /* the reference greedy continuation decodes to the reference text */
    const char *greedy = tk_test_shared("models/stories260K/llama2c/greedy_64_from_bos.txt");
    if (greedy) {
        FILE *f = fopen(greedy, "rb");
        char buf[8192];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = 0;
        char *nl = strchr(buf, '\n');
        CHECK(nl != NULL, "greedy file has no text line");
        if (nl) {
            *nl = 0;
            tk_ivec ids = {0};
            for (char *p = buf; *p;) {
                while (*p && (*p < '0' || *p > '9')) p++;
                if (!*p) break;
                tk_ivec_push(&ids, (int32_t)strtol(p, &p, 10));
            }
            char *text = nl + 1;
            size_t tl = strlen(text);
            if (tl && text[tl - 1] == '\n') text[--tl] = 0;
            tk_buf out = {0};
            int32_t bos = 1;
            /* the continuation follows BOS */
            tk_detok_stream ds;
            tk_detok_stream_init(&ds, t);
            ds.prev = bos;
            for (size_t i = 0; i < ids.len; i++) CHECK_OK(tk_detok_stream_push(&ds, ids.data[i], &out));
            CHECK_OK(tk_detok_stream_flush(&ds, &out));
            CHECK(ids.len == 64, "greedy ids: %zu", ids.len);
            CHECK(out.data && !strcmp(out.data, text), "greedy decode '%s'", out.data ? out.data : "");
            tk_buf whole = {0};
            tk_ivec_push(&ids, 0);
            memmove(ids.data + 1, ids.data, (ids.len - 1) * sizeof(int32_t));
            ids.data[0] = bos;
            CHECK_OK(tk_detokenize(t, ids.data, ids.len, true, &whole));
            CHECK(whole.data && !strcmp(whole.data, text), "greedy whole decode '%s'", whole.data ? whole.data : "");
            tk_buf_free(&out); tk_buf_free(&whole); tk_ivec_free(&ids);
        }
    }
    check_all_roundtrips("tok512", t, true);

    const char *gg = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    if (!tk_test_require(gg, "models/stories260K/gguf/stories260K-f32.gguf")) {
        tk_tokenizer *g = load_gguf(gg);
        if (g) check_same("tok512.bin vs stories260K GGUF", t, g, NULL, 0);
        tk_tokenizer_free(g);
    }
    /* tk_tokenizer_load: a llama2.c checkpoint with its tokenizer; vocabulary size checked */
    const char *ckpt = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    if (ckpt) {
        tk_tokenizer *l = NULL;
        CHECK_OK(tk_tokenizer_load(ckpt, tok512, &l));
        CHECK(l && tk_tokenizer_n_vocab(l) == 512, "load(ckpt, tok512)");
        tk_tokenizer_free(l);
        CHECK(tk_tokenizer_load(ckpt, NULL, &l) != TK_OK && l == NULL, "a llama2.c checkpoint alone has no tokenizer");
        const char *big = tk_test_shared("tokenizers/llama2-spm/tokenizer.bin");
        if (big) {
            CHECK(tk_tokenizer_load(ckpt, big, &l) == TK_ERR_FORMAT && l == NULL, "32000-token tokenizer for a 512-token model must fail");
            CHECK(strstr(tk_last_error(), "512") != NULL, "message names the expected size: %s", tk_last_error());
        }
    }
    tk_tokenizer_free(t);

    const char *bin = tk_test_shared("tokenizers/llama2-spm/tokenizer.bin");
    const char *spm = tk_test_shared("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf");
    if (tk_test_require(bin, "tokenizers/llama2-spm/tokenizer.bin") || tk_test_require(spm, "ggml-vocab-llama-spm.gguf")) return;
    tk_tokenizer *a = NULL, *b = load_gguf(spm);
    CHECK_OK(tk_tokenizer_from_llama2c(bin, &a));
    if (a && b) {
        CHECK(tk_tokenizer_n_vocab(a) == 32000, "llama2 tokenizer.bin: %d tokens", tk_tokenizer_n_vocab(a));
        for (int32_t id = 0; id < tk_tokenizer_n_vocab(a); id++) {
            size_t la, lb;
            const char *pa = tk_tokenizer_piece(a, id, &la), *pb = tk_tokenizer_piece(b, id, &lb);
            if (la != lb || memcmp(pa, pb, la)) { CHECK(0, "piece %d differs: '%s' vs '%s'", id, pa, pb); break; }
        }
        static const char *extra[] = {"Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "   Hello\n    Hello", "\t\n"};
        check_same("llama2 tokenizer.bin vs llama-spm GGUF", a, b, extra, 3);
        check_all_roundtrips("llama2 tokenizer.bin", a, true);
        check_stream_split("llama2 tokenizer.bin", a, "日本語🦙");
    }
    tk_tokenizer_free(a); tk_tokenizer_free(b);
}

/* ---- HF fixtures ---- */
static void test_hf_fixture(const char *dir, int special_flags) {
    char tj[512], tc[512], ex[512];
    snprintf(tj, sizeof tj, "tests/fixtures/tokenizer/%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "tests/fixtures/tokenizer/%s/tokenizer_config.json", dir);
    snprintf(ex, sizeof ex, "tests/fixtures/tokenizer/%s/expected.jsonl", dir);
    tk_tokenizer *t = NULL;
    CHECK_OK(tk_tokenizer_from_hf(tj, tc, &t));
    if (!t) return;
    FILE *f = fopen(ex, "rb");
    CHECK(f != NULL, "cannot open %s", ex);
    char *line = NULL; size_t cap = 0; ssize_t n;
    int cases = 0, ok = 0;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *text = cJSON_GetObjectItem(j, "text");
        const char *s = cJSON_IsString(text) ? text->valuestring : NULL;
        CHECK(s != NULL, "%s: bad line", ex);
        if (!s) { cJSON_Delete(j); continue; }
        for (int variant = 0; variant < 2; variant++) {
            const cJSON *want = cJSON_GetObjectItem(j, variant ? "ids_special" : "ids"), *e;
            tk_ivec w = {0}, got = {0};
            cJSON_ArrayForEach(e, want) tk_ivec_push(&w, (int32_t)e->valuedouble);
            /* HF encode() always parses added tokens: that is TK_TOK_PARSE_SPECIAL */
            int flags = TK_TOK_PARSE_SPECIAL | (variant ? special_flags : 0);
            CHECK_OK(tk_tokenize(t, s, strlen(s), flags, &got));
            bool same = got.len == w.len && (w.len == 0 || !memcmp(got.data, w.data, w.len * sizeof(int32_t)));
            cases++; ok += same;
            CHECK(same, "%s: '%s' (%s) differs from HF tokenizers", dir, s, variant ? "with special" : "plain");
            if (!same) {
                fprintf(stderr, "    want:"); for (size_t i = 0; i < w.len; i++) fprintf(stderr, " %d", w.data[i]);
                fprintf(stderr, "\n    got: "); for (size_t i = 0; i < got.len; i++) fprintf(stderr, " %d", got.data[i]);
                fputc('\n', stderr);
            }
            const cJSON *nfc = cJSON_GetObjectItem(j, "nfc");
            if (!variant && cJSON_IsString(nfc)) {
                tk_buf nb = {0};
                CHECK_OK(tk_uni_nfc(s, strlen(s), &nb));
                CHECK(nb.data && !strcmp(nb.data, nfc->valuestring), "%s: NFC of '%s' is '%s', Python says '%s'", dir, s, nb.data ? nb.data : "", nfc->valuestring);
                tk_buf_free(&nb);
            }
            if (!variant) {
                /* HF's decode of these ids (its Strip decoder removes only the very first space) */
                const cJSON *dec = cJSON_GetObjectItem(j, "decoded");
                tk_buf out = {0};
                CHECK_OK(tk_detokenize(t, w.data, w.len, false, &out));
                bool has_special_inside = strstr(s, "<s>") || strstr(s, "</s>") || strstr(s, "<|");
                if (cJSON_IsString(dec) && !has_special_inside)
                    CHECK(out.data && !strcmp(out.data, dec->valuestring), "%s: decode '%s' != HF '%s'", dir, out.data ? out.data : "", dec->valuestring);
                tk_buf_free(&out);
            }
            tk_ivec_free(&w); tk_ivec_free(&got);
        }
        cJSON_Delete(j);
    }
    free(line);
    if (f) fclose(f);
    printf("  HF fixture %s: %d / %d encodings equal to HF tokenizers\n", dir, ok, cases);
    CHECK(cases >= 30, "%s: only %d cases", dir, cases);
    check_all_roundtrips(dir, t, true);
    tk_tokenizer_free(t);
}

/* ---- SmolLM2 ---- */
static void test_smollm2(void) {
    const char *m = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (access(m, F_OK) != 0) m = NULL;
    if (tk_test_require(m, "models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh)")) return;
    tk_tokenizer *t = NULL;
    CHECK_OK(tk_tokenizer_load(m, NULL, &t));
    if (!t) return;
    CHECK(tk_tokenizer_n_vocab(t) == 49152, "vocab %d", tk_tokenizer_n_vocab(t));
    CHECK(!strcmp(tk_tokenizer_pre_name(t), "smollm"), "pre %s", tk_tokenizer_pre_name(t));
    int32_t ims = tk_tokenizer_find(t, "<|im_start|>"), ime = tk_tokenizer_find(t, "<|im_end|>");
    CHECK(ims == 1 && ime == 2, "im_start %d im_end %d", ims, ime);
    CHECK(tk_tokenizer_eot(t) == ime, "eot %d", tk_tokenizer_eot(t));
    CHECK(tk_tokenizer_is_eog(t, ime) && tk_tokenizer_is_eog(t, 0) && !tk_tokenizer_is_eog(t, ims), "eog set");
    CHECK(tk_tokenizer_is_special(t, ims) && !tk_tokenizer_is_special(t, 100), "is_special");
    CHECK(!tk_tokenizer_adds_bos(t), "SmolLM2 adds no BOS");
    CHECK(tk_tokenizer_chat_template(t) != NULL, "chat template");
    const char *chat = "<|im_start|>user\nHi there<|im_end|>\n";
    tk_ivec a = {0}, b = {0};
    CHECK_OK(tk_tokenize(t, chat, strlen(chat), TK_TOK_PARSE_SPECIAL, &a));
    CHECK(a.len > 4 && a.data[0] == ims, "parsed: first id %d", a.len ? a.data[0] : -1);
    bool has_end = false;
    for (size_t i = 0; i < a.len; i++) has_end |= a.data[i] == ime;
    CHECK(has_end, "parsed text contains <|im_end|>");
    CHECK_OK(tk_tokenize(t, chat, strlen(chat), 0, &b));
    bool any_special = false;
    for (size_t i = 0; i < b.len; i++) any_special |= tk_tokenizer_is_special(t, b.data[i]);
    CHECK(!any_special && b.len > a.len, "unparsed special text uses ordinary tokens (%zu vs %zu ids)", b.len, a.len);
    /* the same ids without the specials: the fragments between them encode alike */
    tk_ivec c = {0};
    CHECK_OK(tk_tokenize(t, "user\nHi there", 13, 0, &c));
    CHECK(c.len + 3 == a.len && !memcmp(a.data + 1, c.data, c.len * sizeof(int32_t)), "fragment between specials");
    check_roundtrip("smollm2 parse-special", t, chat, strlen(chat), TK_TOK_PARSE_SPECIAL);
    tk_buf out = {0};
    CHECK_OK(tk_detokenize(t, a.data, a.len, true, &out));
    CHECK(out.data && !strcmp(out.data, "user\nHi there\n"), "skip_special decode '%s'", out.data ? out.data : "");
    tk_buf_free(&out);
    CHECK(tk_detokenize(t, (int32_t[]){5, 49152}, 2, false, &out) == TK_ERR_RANGE, "out-of-range id rejected");
    CHECK(out.len == 0, "failed decode leaves output unchanged");
    tk_buf_free(&out);
    tk_ivec_free(&a); tk_ivec_free(&b); tk_ivec_free(&c);

    /* HF reference sample written by tools/compare_tokenizer_hf.py (ids from HF tokenizers) */
    FILE *f = fopen("tests/fixtures/tokenizer/smollm2_hf.jsonl", "rb");
    CHECK(f != NULL, "tests/fixtures/tokenizer/smollm2_hf.jsonl missing");
    char *line = NULL; size_t cap = 0; ssize_t nr;
    int cases = 0, same = 0;
    while (f && (nr = getline(&line, &cap, f)) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *tx = cJSON_GetObjectItem(j, "text"), *want = cJSON_GetObjectItem(j, "ids"), *e;
        if (!cJSON_IsString(tx) || !cJSON_IsArray(want)) { CHECK(0, "bad line in smollm2_hf.jsonl"); cJSON_Delete(j); continue; }
        tk_ivec w = {0}, got = {0};
        cJSON_ArrayForEach(e, want) tk_ivec_push(&w, (int32_t)e->valuedouble);
        CHECK_OK(tk_tokenize(t, tx->valuestring, strlen(tx->valuestring), TK_TOK_PARSE_SPECIAL, &got));
        bool eq = got.len == w.len && (w.len == 0 || !memcmp(got.data, w.data, w.len * sizeof(int32_t)));
        CHECK(eq, "smollm2 vs HF: '%.80s'", tx->valuestring);
        cases++; same += eq;
        tk_ivec_free(&w); tk_ivec_free(&got);
        cJSON_Delete(j);
    }
    free(line);
    if (f) fclose(f);
    printf("  smollm2 vs HF tokenizers sample: %d / %d\n", same, cases);
    CHECK(cases >= 50, "sample has %d strings", cases);

    check_all_roundtrips("smollm2", t, false);
    check_stream_split("smollm2", t, "日本語のテキスト🦙👩‍👩‍👧");

    /* long input: 200 KB of mixed text is fast and decodes back */
    size_t big = 200000;
    char *s = malloc(big + 1);
    const char *unit = "The quick brown fox 日本語 🦙 1234\n\t  ";
    size_t ul = strlen(unit), k = 0;
    while (k + ul <= big) { memcpy(s + k, unit, ul); k += ul; }
    s[k] = 0;
    check_roundtrip("smollm2 200KB", t, s, k, 0);
    free(s);
    tk_tokenizer_free(t);
}

/* ---- every other available vocabulary ---- */
/* The real Gemma-3-270M GGUF (scripts/fetch-gemma.sh): SentencePiece-style BPE over 262144
 * pieces with user-defined whitespace runs and HTML tags, no dummy prefix. Reference ids from
 * SentencePiece (confirmed by llama.cpp where run), written by tools/compare_tokenizer_gemma3.py;
 * tests/fixtures/tokenizer/gemma3_agreement.txt has the full agreement numbers. */
static void test_gemma3(void) {
    const char *m = "models/gemma-3-270m-q4_k_m.gguf";
    if (access(m, F_OK) != 0) m = NULL;
    if (tk_test_require(m, "models/gemma-3-270m-q4_k_m.gguf (scripts/fetch-gemma.sh)")) return;
    tk_tokenizer *t = NULL;
    CHECK_OK(tk_tokenizer_load(m, NULL, &t));
    if (!t) return;
    CHECK(tk_tokenizer_kind_of(t) == TK_TOKENIZER_SPM, "gemma3 kind %d", (int)tk_tokenizer_kind_of(t));
    CHECK(tk_tokenizer_n_vocab(t) == 262144, "vocab %d", tk_tokenizer_n_vocab(t));
    CHECK(tk_tokenizer_bos(t) == 2 && tk_tokenizer_eos(t) == 1 && tk_tokenizer_pad(t) == 0 && tk_tokenizer_unk(t) == 3,
          "bos %d eos %d pad %d unk %d", tk_tokenizer_bos(t), tk_tokenizer_eos(t), tk_tokenizer_pad(t), tk_tokenizer_unk(t));
    CHECK(tk_tokenizer_adds_bos(t) && !tk_tokenizer_adds_eos(t), "gemma3 adds BOS only");
    int32_t sot = tk_tokenizer_find(t, "<start_of_turn>"), eot = tk_tokenizer_find(t, "<end_of_turn>");
    CHECK(sot == 105 && eot == 106, "start_of_turn %d end_of_turn %d", sot, eot);
    CHECK(tk_tokenizer_is_special(t, sot) && tk_tokenizer_is_eog(t, eot) && tk_tokenizer_is_eog(t, 1), "gemma3 special/eog");
    /* whitespace runs: the longest user-defined piece first (31 spaces = id 167), then the rest */
    expect_ids("gemma3 50 spaces", t, "                                                  ", 50, 0, (const int32_t[]){167, 155}, 2);
    expect_ids("gemma3 turn", t, "<start_of_turn>user\nHi<end_of_turn>", 35, TK_TOK_PARSE_SPECIAL,
               (const int32_t[]){105, 2364, 107, 10979, 106}, 5);

    FILE *f = fopen("tests/fixtures/tokenizer/gemma3_ref.jsonl", "rb");
    CHECK(f != NULL, "tests/fixtures/tokenizer/gemma3_ref.jsonl missing");
    char *line = NULL; size_t cap = 0; ssize_t nr;
    int cases = 0, same = 0;
    while (f && (nr = getline(&line, &cap, f)) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *tx = cJSON_GetObjectItem(j, "text"), *want = cJSON_GetObjectItem(j, "ids"), *e;
        if (!cJSON_IsString(tx) || !cJSON_IsArray(want)) { CHECK(0, "bad line in gemma3_ref.jsonl"); cJSON_Delete(j); continue; }
        tk_ivec w = {0}, got = {0};
        cJSON_ArrayForEach(e, want) tk_ivec_push(&w, (int32_t)e->valuedouble);
        CHECK_OK(tk_tokenize(t, tx->valuestring, strlen(tx->valuestring), TK_TOK_PARSE_SPECIAL, &got));
        bool eq = got.len == w.len && (w.len == 0 || !memcmp(got.data, w.data, w.len * sizeof(int32_t)));
        CHECK(eq, "gemma3 vs SentencePiece: '%.80s'", tx->valuestring);
        cases++; same += eq;
        tk_ivec_free(&w); tk_ivec_free(&got);
        cJSON_Delete(j);
    }
    free(line);
    if (f) fclose(f);
    printf("  gemma3 vs SentencePiece sample: %d / %d\n", same, cases);
    CHECK(cases >= 50, "sample has %d strings", cases);

    check_all_roundtrips("gemma3", t, false);
    check_stream_split("gemma3", t, "日本語のテキスト🦙👩‍👩‍👧");
    tk_tokenizer_free(t);
}

static void test_vocab_roundtrips(void) {
    static const char *names[] = {"gpt-2", "falcon", "mpt", "starcoder", "refact", "deepseek-coder", "deepseek-llm",
                                  "llama-spm", "phi-3", "baichuan", "gpt-neox"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tokenizers/llamacpp-vocab/ggml-vocab-%s.gguf", names[i]);
        const char *p = tk_test_shared(rel);
        if (tk_test_require(p, rel)) continue;
        tk_tokenizer *t = load_gguf(p);
        if (!t) continue;
        /* gpt-2 and the SentencePiece vocabularies have a token for every byte */
        bool exact = !strcmp(names[i], "gpt-2") || !strcmp(names[i], "llama-spm") || !strcmp(names[i], "phi-3");
        check_all_roundtrips(names[i], t, exact);
        tk_tokenizer_free(t);
    }
    /* user-defined tokens are split out without TK_TOK_PARSE_SPECIAL, also in long texts where a
     * trigram filter skips the thousands of tokens that cannot occur (DeepSeek: [PAD...] tokens) */
    const char *ds = tk_test_shared("tokenizers/llamacpp-vocab/ggml-vocab-deepseek-llm.gguf");
    if (ds) {
        tk_tokenizer *t = load_gguf(ds);
        if (t) {
            const char *txt = "A long enough line of ordinary text, well past sixty-four bytes, then "
                              "[PAD100020] and \xc3\xb8 and [PAD102399]x[PAD100015] end";
            int32_t p1 = tk_tokenizer_find(t, "[PAD100020]"), p2 = tk_tokenizer_find(t, "[PAD102399]"),
                    p3 = tk_tokenizer_find(t, "[PAD100015]"), o = tk_tokenizer_find(t, "\xc3\xb8");
            CHECK(p1 >= 0 && p2 >= 0 && p3 >= 0 && o >= 0, "deepseek user tokens present");
            tk_ivec ids = {0};
            CHECK_OK(tk_tokenize(t, txt, strlen(txt), 0, &ids));
            int found = 0;
            for (size_t i = 0; i < ids.len; i++) found |= (ids.data[i] == p1) | (ids.data[i] == p2) << 1 | (ids.data[i] == p3) << 2 | (ids.data[i] == o) << 3;
            CHECK(found == 15, "deepseek: user-defined tokens split out of a long text (mask %d)", found);
            tk_ivec_free(&ids);
            check_roundtrip("deepseek user tokens", t, txt, strlen(txt), 0);
        }
        tk_tokenizer_free(t);
    }
    /* special tokens parsed inside text come back on decode (SPM: no space after them, phi-3 strips it) */
    const char *p = tk_test_shared("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf");
    if (p) {
        tk_tokenizer *t = load_gguf(p);
        if (t) {
            check_roundtrip("llama-spm parse-special", t, "a<s>b</s>c", 10, TK_TOK_PARSE_SPECIAL);
            check_roundtrip("llama-spm parse-special 2", t, " <s> x", 6, TK_TOK_PARSE_SPECIAL);
            tk_ivec ids = {0};
            CHECK_OK(tk_tokenize(t, "a<s>b", 5, TK_TOK_PARSE_SPECIAL, &ids));
            CHECK(ids.len == 3 && ids.data[1] == 1, "llama-spm: <s> parsed as BOS");
            ids.len = 0;
            CHECK_OK(tk_tokenize(t, "a<s>b", 5, 0, &ids));
            CHECK(ids.len > 3, "llama-spm: <s> not parsed without the flag");
            tk_ivec_free(&ids);
            check_stream_split("llama-spm", t, "emoji 🦙 日本");
        }
        tk_tokenizer_free(t);
    }
}

/* ---- two threads encode the same text identically (per-thread scratch and caches) ---- */
typedef struct { const tk_tokenizer *t; tk_ivec ids; tk_status st; } thr_arg;
static void *thr_main(void *p) {
    thr_arg *a = p;
    for (int r = 0; r < 3 && !a->st; r++) {
        a->ids.len = 0;
        for (size_t i = 0; i < sizeof k_strings / sizeof k_strings[0] && !a->st; i++)
            a->st = tk_tokenize(a->t, k_strings[i], strlen(k_strings[i]), TK_TOK_ADD_SPECIAL, &a->ids);
    }
    return NULL;
}
static void test_threads(void) {
    tk_tokenizer *t = NULL;
    CHECK_OK(tk_tokenizer_from_hf("tests/fixtures/tokenizer/bpe_bytelevel/tokenizer.json", NULL, &t));
    if (!t) return;
    thr_arg a[2] = {{t, {0}, TK_OK}, {t, {0}, TK_OK}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, thr_main, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(a[0].st == TK_OK && a[1].st == TK_OK, "thread status");
    CHECK(a[0].ids.len == a[1].ids.len && !memcmp(a[0].ids.data, a[1].ids.data, a[0].ids.len * sizeof(int32_t)), "threads agree");
    tk_ivec_free(&a[0].ids); tk_ivec_free(&a[1].ids);
    tk_tokenizer_free(t);
}

/* ---- bad input ---- */
static void write_str(const char *path, const char *s) { FILE *f = fopen(path, "wb"); fputs(s, f); fclose(f); }
static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}
static void expect_fail(const char *what, tk_status st, tk_tokenizer *t, const char *needle) {
    CHECK(st != TK_OK && t == NULL, "%s: expected failure", what);
    CHECK(strstr(tk_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, tk_last_error(), needle);
    tk_tokenizer_free(t);
}
#define EXPECT_FAIL(what, expr, needle) do { t = NULL; tk_status st_ = (expr); expect_fail(what, st_, t, needle); } while (0)
static void test_bad_input(void) {
    char dir[] = "/tmp/tk_tok_XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char p[256];
    tk_tokenizer *t = NULL;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    write_str(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}");
    EXPECT_FAIL("merge outside vocab", tk_tokenizer_from_hf(p, NULL, &t), "merge 0");
    write_str(p, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    EXPECT_FAIL("unigram", tk_tokenizer_from_hf(p, NULL, &t), "Unigram");
    write_str(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []");
    EXPECT_FAIL("truncated json", tk_tokenizer_from_hf(p, NULL, &t), "invalid JSON");
    write_str(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []}}");
    EXPECT_FAIL("negative id", tk_tokenizer_from_hf(p, NULL, &t), "not a valid id");
    write_str(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}");
    EXPECT_FAIL("unsupported normalizer", tk_tokenizer_from_hf(p, NULL, &t), "NFKC");
    write_str(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}}}");
    EXPECT_FAIL("bad regex", tk_tokenizer_from_hf(p, NULL, &t), "does not compile");
    snprintf(p, sizeof p, "%s/tok.bin", dir);
    static const char trunc[] = "\x10\x00\x00\x00" "\x00\x00\x00\x00" "\x05\x00\x00\x00" "ab";
    write_file(p, trunc, sizeof trunc - 1); /* max_len 16, token 0: score 0, length 5, only 2 bytes */
    EXPECT_FAIL("truncated tokenizer.bin", tk_tokenizer_from_llama2c(p, &t), "token 0");
    static const char cut[] = "\x10\x00\x00\x00" "\x00\x00";
    write_file(p, cut, sizeof cut - 1);
    EXPECT_FAIL("tokenizer.bin cut in a header", tk_tokenizer_from_llama2c(p, &t), "truncated");
    EXPECT_FAIL("missing file", tk_tokenizer_load("/nonexistent/model.gguf", NULL, &t), "/nonexistent/model.gguf");
    remove(p);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    remove(p);
    EXPECT_FAIL("folder without tokenizer.json", tk_tokenizer_load(dir, NULL, &t), "no tokenizer.json");
    rmdir(dir);
}

int main(void) {
    test_llama2c();
    test_hf_fixture("bpe_bytelevel", TK_TOK_ADD_SPECIAL);
    test_hf_fixture("bpe_spm", TK_TOK_ADD_SPECIAL);
    test_hf_fixture("bpe_nfc", TK_TOK_ADD_SPECIAL);
    test_smollm2();
    test_gemma3();
    test_vocab_roundtrips();
    test_threads();
    test_bad_input();
    return tk_test_done("test_tokenizer");
}
