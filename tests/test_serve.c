/* The serve layer's pure parts: SHA-256 against FIPS 180-4's vectors, request bodies -> structs
 * and OpenAI-shaped errors naming the field, the generation gate's bound and queue, and the
 * Prometheus text of the metrics. (The HTTP side: tests/serve_cli.sh.) */
#include "test.h"
#include "core/sha256.h"
#include "serve/server.h"
#include <cjson/cJSON.h>
#include <pthread.h>

static void check_sha(const char *msg, size_t n, const char *want) {
    uint8_t d[32];
    char hex[65];
    tk_sha256_bytes(msg, n, d);
    tk_sha256_hex(d, hex);
    CHECK(!strcmp(hex, want), "sha256(%.20s… %zu bytes) = %s, want %s", msg, n, hex, want);
}

static void test_sha256(void) {
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check_sha(m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* one million 'a', fed in uneven pieces (block boundaries crossed every way) */
    tk_sha256 c;
    tk_sha256_init(&c);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t left = 1000000, piece = 1;
    while (left) {
        size_t n = piece < left ? piece : left;
        tk_sha256_update(&c, a, n);
        left -= n;
        piece = piece % 983 + 13; /* 13..995 <= sizeof a */
    }
    uint8_t d[32];
    char hex[65];
    tk_sha256_final(&c, d);
    tk_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "sha256(1M a) = %s", hex);
    /* 55, 56, 63, 64 bytes: the padding's edge cases, against the one-call digest of a copy */
    for (size_t n = 50; n <= 130; n++) {
        char buf[130];
        memset(buf, 'x', n);
        uint8_t one[32], two[32];
        tk_sha256_bytes(buf, n, one);
        tk_sha256_init(&c);
        tk_sha256_update(&c, buf, n / 2);
        tk_sha256_update(&c, buf + n / 2, n - n / 2);
        tk_sha256_final(&c, two);
        CHECK(!memcmp(one, two, 32), "split digest differs at %zu bytes", n);
    }
    char x55[55];
    memset(x55, 'x', sizeof x55);
    check_sha(x55, sizeof x55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"); /* Python hashlib */
}

/* Parses body; returns 0/-1 and leaves the error in *e. */
static int parse(const char *body, bool chat, srv_gen_req *r, srv_error *e) {
    return srv_parse_gen_request(body, strlen(body), chat, r, e);
}

static void expect_error(const char *body, bool chat, int status, const char *param, const char *code) {
    srv_gen_req r;
    srv_error e;
    int rc = parse(body, chat, &r, &e);
    CHECK(rc == -1, "accepted: %s", body);
    if (rc) {
        CHECK(e.status == status, "%s: status %d, want %d (%s)", body, e.status, status, e.message);
        CHECK(!strcmp(e.param, param ? param : ""), "%s: param '%s', want '%s'", body, e.param, param ? param : "");
        CHECK((!code && !e.code) || (code && e.code && !strcmp(e.code, code)), "%s: code %s, want %s", body, e.code ? e.code : "null", code ? code : "null");
        CHECK(e.message[0] && e.type, "%s: no message", body);
        CHECK(r.model == NULL && r.msgs == NULL && r.n_stop == 0, "%s: the request is not empty after an error", body);
    }
}

static void test_requests(void) {
    srv_gen_req r;
    srv_error e;
    const char *full = "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
                       "{\"role\":\"assistant\",\"content\":null},{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"x\"}],"
                       "\"temperature\":0.5,\"top_p\":0.9,\"max_tokens\":7,\"max_completion_tokens\":9,\"stop\":[\"x\",\"yy\"],"
                       "\"seed\":-3,\"n\":2,\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"u\","
                       "\"frequency_penalty\":0,\"logprobs\":false,\"response_format\":{\"type\":\"text\"},\"lora\":[{\"id\":1,\"scale\":0.5}]}";
    CHECK(parse(full, true, &r, &e) == 0, "full request refused: %s (%s)", e.message, e.param);
    CHECK(r.model && !strcmp(r.model, "m"), "model");
    CHECK(r.n_msgs == 4 && r.msgs[0].role == TK_ROLE_SYSTEM && r.msgs[1].role == TK_ROLE_USER && !strcmp(r.msgs[1].content, "ab") &&
          r.msgs[2].role == TK_ROLE_ASSISTANT && !strcmp(r.msgs[2].content, "") && r.msgs[3].role == TK_ROLE_TOOL, "messages");
    CHECK(r.temperature == 0.5f && r.top_p == 0.9f && r.max_tokens == 9 && r.n == 2 && r.seed == (uint64_t)-3 && r.seed_given,
          "numbers: t %g p %g max %d n %d", r.temperature, r.top_p, r.max_tokens, r.n);
    CHECK(r.n_stop == 2 && !strcmp(r.stop[1], "yy") && r.stream && r.include_usage, "stop/stream");
    CHECK(r.n_lora == 1 && r.lora[0].id == 1 && r.lora[0].scale == 0.5f, "lora");
    srv_gen_req_free(&r);
    CHECK(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", true, &r, &e) == 0, "minimal chat");
    CHECK(r.temperature == 1 && r.top_p == 1 && r.n == 1 && r.max_tokens == 0 && !r.stream && !r.seed_given, "OpenAI's defaults for chat");
    srv_gen_req_free(&r);
    CHECK(parse(" {\"model\":\"m\",\"prompt\":[\"a\",\"b\"],\"echo\":false} \n", false, &r, &e) == 0, "completions: %s", e.message);
    CHECK(r.n_prompts == 2 && !strcmp(r.prompts[1], "b") && r.max_tokens == 16, "completions: prompts and the default of 16 tokens");
    srv_gen_req_free(&r);

    expect_error("{\"model\":\"m\",\"messages\":[", true, 400, NULL, NULL);
    expect_error("{\"model\":\"m\"} x", true, 400, NULL, NULL);
    expect_error("[1,2]", true, 400, NULL, NULL);
    expect_error("", true, 400, NULL, NULL);
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", true, 400, "model", "missing_required_parameter");
    expect_error("{\"model\":\"m\"}", true, 400, "messages", "missing_required_parameter");
    expect_error("{\"model\":\"m\",\"messages\":[]}", true, 400, "messages", "invalid_value");
    expect_error("{\"model\":\"m\",\"messages\":{}}", true, 400, "messages", "invalid_type");
    expect_error("{\"model\":7,\"messages\":[]}", true, 400, "model", "invalid_type");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"king\",\"content\":\"x\"}]}", true, 400,
                 "messages[1].role", "invalid_value");
    expect_error("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", true, 400, "messages[0].role", "missing_required_parameter");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", true, 400, "messages[0].content", "missing_required_parameter");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", true, 400, "messages[0].content", "invalid_type");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}", true, 400,
                 "messages[0].content[0].type", "unsupported_value");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", true, 400,
                 "messages[0].content[0].text", "invalid_type");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", true, 400, NULL, "invalid_value");
    expect_error("{\"model\":\"m\",\"prompt\":\"\\\\\\u0000\"}", false, 400, NULL, "invalid_value"); /* \\ then \u0000 */
    CHECK(parse("{\"model\":\"m\",\"prompt\":\"\\\\u0000\"}", false, &r, &e) == 0 && !strcmp(r.prompts[0], "\\u0000"),
          "an escaped backslash before u0000 is text: %s", e.message);
    srv_gen_req_free(&r);
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"mood\":1}]}", true, 400, "messages[0].mood", "unknown_parameter");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{}]}]}", true, 400,
                 "messages[0].tool_calls", "unsupported_parameter");
    const char *ok_msgs = "\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    static const struct { const char *extra, *param, *code; } bad[] = {
        {"\"temperature\":\"hot\"", "temperature", "invalid_type"},
        {"\"temperature\":2.5", "temperature", "invalid_value"},
        {"\"top_p\":-0.1", "top_p", "invalid_value"},
        {"\"max_tokens\":0", "max_tokens", "invalid_value"},
        {"\"max_tokens\":1.5", "max_tokens", "invalid_type"},
        {"\"max_completion_tokens\":1e12", "max_completion_tokens", "invalid_value"},
        {"\"n\":17", "n", "invalid_value"},
        {"\"seed\":\"1\"", "seed", "invalid_type"},
        {"\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "stop", "invalid_value"},
        {"\"stop\":[\"\"]", "stop[0]", "invalid_value"},
        {"\"stop\":[1]", "stop[0]", "invalid_type"},
        {"\"stream\":1", "stream", "invalid_type"},
        {"\"stream_options\":{\"include_usage\":true}", "stream_options", "invalid_value"},
        {"\"stream\":true,\"stream_options\":{\"x\":true}", "stream_options.x", "unknown_parameter"},
        {"\"logprobs\":\"yes\"", "logprobs", "invalid_type"},
        {"\"logprobs\":1", "logprobs", "invalid_type"},
        {"\"logprobs\":true,\"top_logprobs\":21", "top_logprobs", "invalid_value"},
        {"\"logprobs\":true,\"top_logprobs\":-1", "top_logprobs", "invalid_value"},
        {"\"logprobs\":true,\"top_logprobs\":2.5", "top_logprobs", "invalid_type"},
        {"\"top_logprobs\":3", "top_logprobs", "invalid_value"},
        {"\"logprobs\":false,\"top_logprobs\":0", "top_logprobs", "invalid_value"},
        {"\"presence_penalty\":0.5", "presence_penalty", "unsupported_parameter"},
        {"\"tools\":[{\"type\":\"function\"}]", "tools", "unsupported_parameter"},
        {"\"response_format\":{\"type\":\"json_object\"}", "response_format", "unsupported_parameter"},
        {"\"temprature\":0", "temprature", "unknown_parameter"},
        {"\"prompt\":\"x\"", "prompt", "unknown_parameter"},
        {"\"lora\":[{\"id\":-1}]", "lora[0].id", "invalid_value"},
        {"\"lora\":[{\"scale\":1}]", "lora[0].id", "missing_required_parameter"},
        {"\"lora\":[{\"id\":0,\"alpha\":1}]", "lora[0].alpha", "unknown_parameter"},
        {"\"n\":2,\"n\":3", "n", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "{%s,%s}", ok_msgs, bad[i].extra);
        expect_error(body, true, 400, bad[i].param, bad[i].code);
    }
    expect_error("{\"model\":\"m\",\"prompt\":[]}", false, 400, "prompt", "invalid_value");
    expect_error("{\"model\":\"m\",\"prompt\":[1,2,3]}", false, 400, "prompt[0]", "unsupported_value");
    expect_error("{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}", false, 400, "echo", "unsupported_parameter");
    expect_error("{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":6}", false, 400, "logprobs", "invalid_value");
    expect_error("{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":true}", false, 400, "logprobs", "invalid_type");
    expect_error("{\"model\":\"m\",\"prompt\":\"x\",\"top_logprobs\":2}", false, 400, "top_logprobs", "unknown_parameter");

    /* logprobs accepted: chat's boolean + top_logprobs (top_logprobs null is no value), completions' N */
    CHECK(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true,\"top_logprobs\":20}", true, &r, &e) == 0 &&
          r.logprobs && r.top_logprobs == 20, "chat logprobs + top_logprobs 20: %s", e.message);
    srv_gen_req_free(&r);
    CHECK(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_logprobs\":null,\"logprobs\":null}", true, &r, &e) == 0 &&
          !r.logprobs && r.top_logprobs == 0, "chat logprobs null: %s", e.message);
    srv_gen_req_free(&r);
    CHECK(parse("{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":0}", false, &r, &e) == 0 && r.logprobs && r.top_logprobs == 0,
          "completions logprobs 0 (the sampled token's only): %s", e.message);
    srv_gen_req_free(&r);
    CHECK(parse("{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":5,\"n\":3}", false, &r, &e) == 0 && r.logprobs && r.top_logprobs == 5 && r.n == 3,
          "completions logprobs 5: %s", e.message);
    srv_gen_req_free(&r);
    expect_error("{\"model\":\"m\",\"prompt\":\"x\",\"messages\":[]}", false, 400, "messages", "unknown_parameter");

    /* the error object: exactly OpenAI's four fields, nulls where empty */
    srv_err(&e, 404, "invalid_request_error", NULL, NULL, "no \"such\" model");
    tk_buf b = {0};
    CHECK_OK(srv_error_json(&e, &b));
    cJSON *j = cJSON_ParseWithLength(b.data, b.len), *o = cJSON_GetObjectItem(j, "error");
    CHECK(o && cJSON_GetArraySize(o) == 4 && cJSON_IsNull(cJSON_GetObjectItem(o, "param")) && cJSON_IsNull(cJSON_GetObjectItem(o, "code")) &&
          !strcmp(cJSON_GetObjectItem(o, "message")->valuestring, "no \"such\" model"), "error JSON: %.*s", (int)b.len, b.data);
    cJSON_Delete(j);
    tk_buf_free(&b);
}

typedef struct { srv_gate *g; int entered; } waiter;
static void *enter_thread(void *arg) {
    waiter *w = arg;
    w->entered = srv_gate_enter(w->g) ? 1 : -1;
    return NULL;
}

static void test_gate(void) {
    srv_gate g;
    srv_gate_init(&g, 1, 1);
    CHECK(srv_gate_enter(&g), "first enter");
    waiter w = {&g, 0};
    pthread_t th;
    pthread_create(&th, NULL, enter_thread, &w);
    int running = 0, waiting = 0;
    for (int i = 0; i < 2000 && waiting == 0; i++) { srv_gate_counts(&g, &running, &waiting); usleep(1000); }
    CHECK(running == 1 && waiting == 1 && w.entered == 0, "one running, one waiting: %d %d %d", running, waiting, w.entered);
    CHECK(!srv_gate_enter(&g), "a third is refused while the queue (1) is full");
    srv_gate_leave(&g);
    pthread_join(th, NULL);
    CHECK(w.entered == 1, "the waiter got the slot");
    srv_gate_counts(&g, &running, &waiting);
    CHECK(running == 1 && waiting == 0, "counts after: %d %d", running, waiting);
    srv_gate_leave(&g);
    srv_gate_destroy(&g);
}

static void test_metrics(void) {
    srv_metrics m;
    srv_gate g;
    srv_metrics_init(&m);
    srv_gate_init(&g, 2, 4);
    srv_metrics_add(&m, SRV_ROUTE_CHAT, 200, 0.3, 10, 20);
    srv_metrics_add(&m, SRV_ROUTE_CHAT, 200, 3.0, 5, 7);
    srv_metrics_add(&m, SRV_ROUTE_CHAT, 400, 0.001, 0, 0);
    tk_buf b = {0};
    CHECK_OK(srv_metrics_text(&m, &g, &b));
    const char *want[] = {
        "takumi_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2\n",
        "takumi_requests_total{route=\"/v1/chat/completions\",status=\"400\"} 1\n",
        "takumi_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.005\"} 1\n",
        "takumi_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.25\"} 1\n",
        "takumi_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.5\"} 2\n",
        "takumi_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"5\"} 3\n",
        "takumi_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"+Inf\"} 3\n",
        "takumi_request_duration_seconds_count{route=\"/v1/chat/completions\"} 3\n",
        "takumi_request_duration_seconds_sum{route=\"/v1/chat/completions\"} 3.301000\n",
        "takumi_prompt_tokens_total 15\n", "takumi_completion_tokens_total 27\n",
        "takumi_generations_running 0\n", "takumi_generations_queued 0\n",
        "# TYPE takumi_request_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK(b.data && strstr(b.data, want[i]), "metrics lack %s", want[i]);
    CHECK(b.data && !strstr(b.data, "route=\"/health\""), "a route with no request is listed");
    tk_buf_free(&b);
    srv_gate_destroy(&g);
    srv_metrics_destroy(&m);
}

int main(void) {
    test_sha256();
    test_requests();
    test_gate();
    test_metrics();
    return tk_test_done("test_serve");
}
