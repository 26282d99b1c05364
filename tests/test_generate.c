/* The generation loop on real models:
 *   stories260K (llama2.c + tok512.bin): greedy 64 from BOS streams exactly the text of
 *   greedy_64_from_bos.txt; stop strings cut across token boundaries and are never
 *   emitted; max tokens; a callback can stop; seeds reproduce; prefix reuse;
 *   SmolLM2-135M-Instruct: the chat prompt of the HF fixture stops at <|im_end|> with the
 *   text HF's greedy decoding produced before it. */
#include "test.h"
#include "cJSON.h"
#include "core/core.h"

typedef struct { tk_buf text; int calls; int stop_after; } sink;
static bool on_text(void *ud, const char *t, size_t n) {
    sink *s = ud;
    tk_buf_append(&s->text, t, n);
    s->calls++;
    return !(s->stop_after && s->calls >= s->stop_after);
}

static tk_gen_params greedy(int max_tokens) {
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

/* Runs one generation from prompt in a fresh session; returns the text (caller frees). */
static char *gen(tk_model *m, const int32_t *prompt, int n, const tk_gen_params *p, tk_gen_stats *st, tk_ivec *ids, int stop_after) {
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 0, &s));
    sink k = {{0}, 0, stop_after};
    if (s) CHECK_OK(tk_generate(s, tk_model_tokenizer(m), prompt, n, p, on_text, &k, ids, st));
    tk_session_free(s);
    if (!k.text.data) tk_buf_append(&k.text, "", 0);
    return k.text.data;
}

static void stories(void) {
    const char *path = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    const char *gpath = tk_test_shared("models/stories260K/llama2c/greedy_64_from_bos.txt");
    if (tk_test_require(path && gpath ? path : NULL, "models/stories260K")) return;
    char *file = NULL;
    CHECK_OK(tk_read_file(gpath, &file, NULL));
    if (!file) return;
    /* line 1: the ids; the rest: the text (the file ends with one newline) */
    cJSON *jids = cJSON_Parse(file);
    char *text = strchr(file, '\n') + 1;
    size_t tl = strlen(text);
    if (tl && text[tl - 1] == '\n') text[--tl] = 0;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, NULL, &m)); /* finds tok512.bin beside the checkpoint */
    if (!m || !jids) goto out;
    const int32_t bos = 1;

    tk_gen_stats st;
    tk_ivec ids = {0};
    tk_gen_params p = greedy(64);
    char *out = gen(m, &bos, 1, &p, &st, &ids, 0);
    CHECK(!strcmp(out, text), "greedy text differs:\n%s\n---\n%s", out, text);
    CHECK(ids.len == 64 && st.n_generated == 64 && st.stop == TK_GEN_STOP_MAX_TOKENS, "%zu ids, stop %d", ids.len, st.stop);
    bool same = ids.len == 64;
    for (int i = 0; same && i < 64; i++) same = ids.data[i] == cJSON_GetArrayItem(jids, i)->valueint;
    CHECK(same, "greedy ids differ from greedy_64_from_bos.txt");
    free(out);

    /* stop strings: "girl named" spans tokens; the text before it only, never the stop string */
    const char *stops[] = {"zzz", "girl named"};
    p.stop = stops;
    p.n_stop = 2;
    ids.len = 0;
    sink k = {{0}, 0, 0};
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 0, &s));
    CHECK_OK(tk_generate(s, tk_model_tokenizer(m), &bos, 1, &p, on_text, &k, &ids, &st));
    const char *cut = strstr(text, "girl named");
    CHECK(k.text.data && k.text.len == (size_t)(cut - text) && !memcmp(k.text.data, text, k.text.len),
          "stop string: got '%s'", k.text.data ? k.text.data : "");
    CHECK(st.stop == TK_GEN_STOP_STRING && k.calls > 3, "stop %d after %d pieces", st.stop, k.calls);
    /* the session keeps what was generated: continuing reuses the whole prefix */
    int32_t n_past = tk_session_n_past(s);
    CHECK(n_past == (int32_t)ids.len, "cache holds %d tokens after %zu sampled (BOS + all but the last)", n_past, ids.len);
    tk_ivec next = {0};
    tk_ivec_push(&next, bos);
    for (size_t i = 0; i < ids.len; i++) tk_ivec_push(&next, ids.data[i]);
    tk_gen_params p2 = greedy(4);
    sink k2 = {{0}, 0, 0};
    CHECK_OK(tk_generate(s, tk_model_tokenizer(m), next.data, (int64_t)next.len, &p2, on_text, &k2, NULL, &st));
    CHECK(st.n_reused == n_past && st.n_prompt == (int64_t)next.len - n_past, "reused %lld of %zu", (long long)st.n_reused, next.len);
    tk_ivec_free(&next);
    tk_buf_free(&k.text);
    tk_buf_free(&k2.text);
    tk_session_free(s);

    /* a stop string at the very end of a stream that ends first is still not emitted when complete;
     * an incomplete one is flushed as text */
    const char *stops2[] = {"too high.\nLily and"};
    p = greedy(64);
    p.stop = stops2;
    p.n_stop = 1;
    out = gen(m, &bos, 1, &p, &st, NULL, 0);
    CHECK(!strcmp(out, text), "held-back text not flushed: '%s'", out);
    free(out);

    /* max tokens and a callback that stops */
    p = greedy(5);
    ids.len = 0;
    out = gen(m, &bos, 1, &p, &st, &ids, 0);
    CHECK(ids.len == 5 && st.stop == TK_GEN_STOP_MAX_TOKENS, "max tokens: %zu", ids.len);
    free(out);
    p = greedy(64);
    out = gen(m, &bos, 1, &p, &st, NULL, 2);
    CHECK(st.stop == TK_GEN_STOP_CALLBACK && st.n_generated < 64, "callback stop: %d after %lld", st.stop, (long long)st.n_generated);
    free(out);

    /* seeds: the same seed reproduces, with temperature, top-k, top-p, min-p and a penalty */
    p = tk_gen_default_params();
    p.max_tokens = 40;
    p.sampler.temperature = 1.0f;
    p.sampler.repeat_penalty = 1.1f;
    p.sampler.seed = 1234;
    char *a = gen(m, &bos, 1, &p, &st, NULL, 0), *b = gen(m, &bos, 1, &p, &st, NULL, 0);
    CHECK(!strcmp(a, b), "same seed, different text:\n%s\n%s", a, b);
    int differ = 0;
    for (uint64_t sd = 1; sd <= 3; sd++) {
        p.sampler.seed = sd;
        char *c = gen(m, &bos, 1, &p, &st, NULL, 0);
        differ += strcmp(a, c) != 0;
        free(c);
    }
    CHECK(differ > 0, "three other seeds all reproduced seed 1234's text");
    free(a);
    free(b);
    tk_ivec_free(&ids);
out:
    cJSON_Delete(jids);
    free(file);
    tk_model_free(m);
}

static void smollm2(void) {
    const char *mp = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (tk_test_require(access(mp, R_OK) == 0 ? mp : NULL, mp)) return;
    char *txt = NULL;
    CHECK_OK(tk_read_file("tests/fixtures/model/smollm2_ref.json", &txt, NULL));
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(mp, NULL, &m));
    if (!j || !m) goto out;
    cJSON *chat = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompts"), 0);
    cJSON *jids = cJSON_GetObjectItem(chat, "ids"), *g = cJSON_GetObjectItem(chat, "greedy_ids");
    int n = cJSON_GetArraySize(jids);
    int32_t ids[512];
    for (int i = 0; i < n && i < 512; i++) ids[i] = cJSON_GetArrayItem(jids, i)->valueint;
    /* HF's greedy ids up to the first end-of-generation token, as text */
    tk_ivec want = {0};
    int32_t stop_id = -1;
    for (int i = 0; i < cJSON_GetArraySize(g); i++) {
        int32_t id = cJSON_GetArrayItem(g, i)->valueint;
        if (tk_tokenizer_is_eog(tk_model_tokenizer(m), id)) { stop_id = id; break; }
        tk_ivec_push(&want, id);
    }
    CHECK(stop_id == tk_tokenizer_find(tk_model_tokenizer(m), "<|im_end|>"), "HF's greedy should end its turn with <|im_end|>");
    tk_buf wt = {0};
    CHECK_OK(tk_detokenize(tk_model_tokenizer(m), want.data, want.len, false, &wt));
    tk_gen_params p = greedy(64);
    tk_gen_stats st;
    tk_ivec got = {0};
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 512, &s));
    tk_session_set_exact(s, true);
    sink k = {{0}, 0, 0};
    if (s) CHECK_OK(tk_generate(s, tk_model_tokenizer(m), ids, n, &p, on_text, &k, &got, &st));
    printf("SmolLM2 chat answer: '%s' (%lld tokens, stop %d)\n", k.text.data ? k.text.data : "", (long long)st.n_generated, st.stop);
    CHECK(st.stop == TK_GEN_STOP_EOS, "stop reason %d", st.stop);
    CHECK(got.len == want.len + 1 && got.data[got.len - 1] == stop_id, "%zu ids", got.len);
    CHECK(k.text.data && wt.data && !strcmp(k.text.data, wt.data), "answer '%s' vs HF '%s'", k.text.data, wt.data);
    tk_session_free(s);
    tk_buf_free(&k.text);
    tk_buf_free(&wt);
    tk_ivec_free(&want);
    tk_ivec_free(&got);
out:
    cJSON_Delete(j);
    free(txt);
    tk_model_free(m);
}

int main(void) {
    stories();
    smollm2();
    return tk_test_done("test_generate");
}
