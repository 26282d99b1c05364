/* serve's logprobs objects (src/serve/logprobs.c) on stories260K's SentencePiece vocabulary: chat's "content" entries
 * (token, logprob, bytes, top_logprobs) and completions' four lists; a token reported with the text it begins
 * (bytes pieces of one character wait for the character, a token past the returned text never appears); tokens that
 * are not valid UTF-8 alone (\xNN in chat's token, "bytes:\xNN" in completions', the raw bytes in "bytes");
 * text_offset from the prompt's start in characters; -inf written as -9999.0. */
#include "test.h"
#include "serve/server.h"
#include <cjson/cJSON.h>

static tk_token_logprobs tok(int32_t id, double lp, int n_top, const int32_t *top, const double *top_lp) {
    tk_token_logprobs t;
    memset(&t, 0, sizeof t);
    t.id = id;
    t.logprob = lp;
    t.n_top = n_top;
    for (int i = 0; i < n_top; i++) { t.top_id[i] = top[i]; t.top_logprob[i] = top_lp[i]; }
    return t;
}

static char *print(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ids of stories260K's tok512: 403 "Once", 407 " upon", 261 " a"; byte tokens are 3 + the byte */
#define B(x) (3 + (x))

int main(void) {
    const char *g = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    if (tk_test_require(g, "models/stories260K/gguf/stories260K-f32.gguf")) return tk_test_done("test_serve_logprobs");
    tk_tokenizer *t = NULL;
    CHECK_OK(tk_tokenizer_load(g, NULL, &t));
    if (!t) return tk_test_done("test_serve_logprobs");
    const int32_t top[2] = {403, 261};
    const double top_lp[2] = {-0.25, -INFINITY};
    /* text emitted: "Once" then the three bytes of U+201C; " upon" is sampled but cut (a stop string) */
    const char *text = "Once\xe2\x80\x9c"; /* after BOS: "Once" without SentencePiece's leading space (its alternative " a" too) */
    srv_lp l;

    srv_lp_init(&l, t, true, 1, NULL);
    srv_lp_add(&l, (tk_token_logprobs[]){tok(403, -0.25, 2, top, top_lp)});
    srv_lp_add(&l, (tk_token_logprobs[]){tok(B(0xE2), -1.5, 0, NULL, NULL)});
    char *s = print(srv_lp_take(&l, text, 4));
    CHECK(s && !strcmp(s, "{\"content\":[{\"token\":\"Once\",\"logprob\":-0.25,\"bytes\":[79,110,99,101],\"top_logprobs\":["
                          "{\"token\":\"Once\",\"logprob\":-0.25,\"bytes\":[79,110,99,101]},{\"token\":\"a\",\"logprob\":-9999,\"bytes\":[97]}]}],"
                          "\"refusal\":null}"), "chat first chunk: %s", s);
    free(s);
    srv_lp_add(&l, (tk_token_logprobs[]){tok(B(0x80), -2, 0, NULL, NULL)});
    s = print(srv_lp_take(&l, text, 4)); /* nothing new emitted: the character is incomplete */
    CHECK(s && !strcmp(s, "{\"content\":[],\"refusal\":null}"), "chat, no text yet: %s", s);
    free(s);
    srv_lp_add(&l, (tk_token_logprobs[]){tok(B(0x9C), -0.5, 0, NULL, NULL)});
    srv_lp_add(&l, (tk_token_logprobs[]){tok(407, -0.125, 0, NULL, NULL)});
    s = print(srv_lp_take(&l, text, 7));
    CHECK(s && !strcmp(s, "{\"content\":[{\"token\":\"\\\\xe2\",\"logprob\":-1.5,\"bytes\":[226],\"top_logprobs\":[]},"
                          "{\"token\":\"\\\\x80\",\"logprob\":-2,\"bytes\":[128],\"top_logprobs\":[]},"
                          "{\"token\":\"\\\\x9c\",\"logprob\":-0.5,\"bytes\":[156],\"top_logprobs\":[]}],\"refusal\":null}"), "chat bytes tokens: %s", s);
    free(s);
    s = print(srv_lp_take(&l, text, 7)); /* " upon" begins past the text returned: never reported */
    CHECK(s && !strcmp(s, "{\"content\":[],\"refusal\":null}"), "a token past the text: %s", s);
    free(s);
    srv_lp_free(&l);

    /* completions: the same tokens at once; the prompt "Hé!" is 3 characters, so offsets start at 3 */
    srv_lp_init(&l, t, false, 1, "H\xc3\xa9!");
    srv_lp_add(&l, (tk_token_logprobs[]){tok(403, -0.25, 2, top, top_lp)});
    srv_lp_add(&l, (tk_token_logprobs[]){tok(B(0xE2), -1.5, 1, (int32_t[]){261}, (double[]){-0.75})});
    srv_lp_add(&l, (tk_token_logprobs[]){tok(B(0x80), -2, 0, NULL, NULL)});
    srv_lp_add(&l, (tk_token_logprobs[]){tok(B(0x9C), -0.5, 0, NULL, NULL)});
    srv_lp_add(&l, (tk_token_logprobs[]){tok(407, -0.125, 0, NULL, NULL)});
    s = print(srv_lp_take(&l, text, 7));
    CHECK(s && !strcmp(s, "{\"tokens\":[\"Once\",\"bytes:\\\\xe2\",\"bytes:\\\\x80\",\"bytes:\\\\x9c\"],\"token_logprobs\":[-0.25,-1.5,-2,-0.5],"
                          "\"top_logprobs\":[{\"Once\":-0.25,\"a\":-9999},{\" a\":-0.75,\"bytes:\\\\xe2\":-1.5},{\"bytes:\\\\x80\":-2},{\"bytes:\\\\x9c\":-0.5}],"
                          "\"text_offset\":[3,7,7,7]}"), "completions: %s", s);
    free(s);
    srv_lp_free(&l);

    /* SentencePiece: the token after the prompt's last keeps its leading space (" upon" after "Once") */
    srv_lp_init(&l, t, true, 403, NULL);
    srv_lp_add(&l, (tk_token_logprobs[]){tok(407, -1, 0, NULL, NULL)});
    s = print(srv_lp_take(&l, " upon", 5));
    CHECK(s && strstr(s, "\"token\":\" upon\",\"logprob\":-1,\"bytes\":[32,117,112,111,110]"), "leading space: %s", s);
    free(s);
    srv_lp_free(&l);
    tk_tokenizer_free(t);
    return tk_test_done("test_serve_logprobs");
}
