/* The request bodies of the files and fine-tuning jobs APIs (pure parsers of src/serve/upload.c and
 * jobreq.c): multipart/form-data uploads and POST /v1/fine_tuning/jobs bodies, and of the platform's own
 * endpoints (adminreq.c: deployments, feedback, key limits, vLLM's and llama-server's adapter routes),
 * accepted with their values and refused with OpenAI-shaped errors naming the field; and the router's id patterns. */
#include "test.h"
#include "serve/server.h"

#define CT "multipart/form-data; boundary=XyZ"

static int upload(const char *ct, const char *body, srv_upload *u, srv_error *e) { return srv_parse_upload(ct, body, strlen(body), u, e); }

static void upload_refused(const char *ct, const char *body, const char *param, const char *code, const char *words) {
    srv_upload u;
    srv_error e;
    int rc = upload(ct, body, &u, &e);
    CHECK(rc == -1, "accepted: %s", body);
    if (!rc) return;
    CHECK(e.status == 400 && e.message[0], "%s: status %d", body, e.status);
    CHECK(!strcmp(e.param, param ? param : ""), "%s: param '%s', want '%s'", body, e.param, param ? param : "");
    CHECK((!code && !e.code) || (code && e.code && !strcmp(e.code, code)), "%s: code %s, want %s", body, e.code ? e.code : "null", code ? code : "null");
    CHECK(!words || strstr(e.message, words), "%s: message '%s' lacks '%s'", body, e.message, words);
}

static void test_upload(void) {
    srv_upload u;
    srv_error e;
    /* as the openai SDK (httpx) sends it: file part with a Content-Type, purpose part; the data holds CRLFs and "--" */
    const char *ok = "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
                     "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir/a b.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                     "{\"a\":1}\r\n--Xy\n{\"b\":2}\n\r\n--XyZ--\r\n";
    CHECK(upload(CT, ok, &u, &e) == 0, "%s", e.message);
    CHECK(!strcmp(u.purpose, "fine-tune") && !strcmp(u.filename, "a b.jsonl"), "purpose '%s' filename '%s'", u.purpose, u.filename);
    const char *want = "{\"a\":1}\r\n--Xy\n{\"b\":2}\n";
    CHECK(u.len == strlen(want) && !memcmp(u.data, want, u.len), "data %zu bytes: '%.*s'", u.len, (int)u.len, u.data);
    /* a quoted boundary, a preamble, the file first, lower-case header names, no trailing CRLF after the close */
    CHECK(upload("multipart/form-data; charset=utf-8; boundary=\"q q\"",
                 "preamble\r\n--q q\r\ncontent-disposition: form-data; filename=x.jsonl; name=file\r\n\r\nDATA\r\n"
                 "--q q\r\ncontent-disposition: form-data; name=purpose\r\n\r\nfine-tune\r\n--q q--", &u, &e) == 0, "%s", e.message);
    CHECK(u.len == 4 && !memcmp(u.data, "DATA", 4) && !strcmp(u.filename, "x.jsonl"), "quoted boundary: %zu '%s'", u.len, u.filename);
    /* an empty file is parsed (the handler refuses it) */
    CHECK(upload(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e\"\r\n\r\n\r\n--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ--\r\n", &u, &e) == 0 && u.len == 0, "empty file");

    upload_refused("application/json", "{}", NULL, "invalid_value", "multipart/form-data");
    upload_refused(NULL, "x", NULL, "invalid_value", "no Content-Type");
    upload_refused("multipart/form-data", "--x\r\n", NULL, "invalid_value", "boundary");
    upload_refused(CT, "nothing here", NULL, "invalid_value", "not found");
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nunterminated", NULL, "invalid_value", "closing boundary");
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"", NULL, "invalid_value", "end to its headers");
    upload_refused(CT, "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", NULL, "invalid_value", "Content-Disposition");
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ--\r\n", "file", "missing_required_parameter", NULL);
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--XyZ--\r\n", "purpose", "missing_required_parameter", NULL);
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ--\r\n", "file", "invalid_value", "a filename");
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--XyZ--\r\n", "purpose", "invalid_value", "fine-tune");
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"expires\"\r\n\r\n1\r\n--XyZ--\r\n", "expires", "unknown_parameter", NULL);
    upload_refused(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ--\r\n", "purpose", "invalid_value", "twice");
    /* the body is read within its length only: a cut copy without NUL */
    char *cut = malloc(40);
    memcpy(cut, ok, 40);
    CHECK(srv_parse_upload(CT, cut, 40, &u, &e) == -1, "a cut body was accepted");
    free(cut);
}

static int job(const char *body, srv_job_req *r, srv_error *e) { return srv_parse_job_request(body, strlen(body), r, e); }

static void job_refused(const char *body, const char *param, const char *code) {
    srv_job_req r;
    srv_error e;
    int rc = job(body, &r, &e);
    CHECK(rc == -1, "accepted: %s", body);
    if (!rc) { srv_job_req_free(&r); return; }
    CHECK(e.status == 400 && e.message[0], "%s: status %d", body, e.status);
    CHECK(!strcmp(e.param, param ? param : ""), "%s: param '%s', want '%s' (%s)", body, e.param, param ? param : "", e.message);
    CHECK((!code && !e.code) || (code && e.code && !strcmp(e.code, code)), "%s: code %s, want %s", body, e.code ? e.code : "null", code ? code : "null");
    CHECK(!r.model && !r.training_file && !r.metadata, "%s: the request is not empty after an error", body);
}

/* method reinforcement: the grader (takumi's grader parser names the field), its hyperparameters */
#define RFT(grader, hypers) "{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"reinforcement\",\"reinforcement\":{\"grader\":" \
                            grader ",\"hyperparameters\":{" hypers "}}}}"
#define SC "{\"type\":\"string_check\",\"name\":\"n\",\"input\":\"{{ sample.output_text }}\",\"reference\":\"{{ item.name }}\",\"operation\":\"like\"}"
static void test_rft_body(void) {
    srv_job_req r;
    srv_error e;
    CHECK(job(RFT(SC, "\"n_epochs\":2,\"batch_size\":4,\"learning_rate_multiplier\":\"auto\",\"eval_interval\":3,\"eval_samples\":\"auto\","
                      "\"compute_multiplier\":\"auto\",\"reasoning_effort\":\"default\""), &r, &e) == 0, "rft: %s", e.message);
    CHECK(r.method == SRV_METHOD_REINFORCEMENT && r.n_epochs == 2 && r.batch_size == 4 && r.eval_interval == 3 && r.grader &&
          strstr(r.grader, "\"operation\":\"like\"") && strstr(r.grader, "{{ item.name }}"), "rft fields: %s", r.grader ? r.grader : "no grader");
    srv_job_req_free(&r);
    CHECK(job(RFT("{\"type\":\"multi\",\"graders\":{\"a\":" SC ",\"b\":{\"type\":\"text_similarity\",\"input\":\"{{ sample.output_text }}\","
                  "\"reference\":\"{{ item.name }}\",\"evaluation_metric\":\"fuzzy_match\"}},\"calculate_output\":\"(a + b) / 2\"}", ""), &r, &e) == 0,
          "a multi grader: %s", e.message);
    srv_job_req_free(&r);
    job_refused(RFT("{\"type\":\"string_check\",\"input\":\"x\",\"reference\":\"y\"}", ""), "method.reinforcement.grader.operation", "invalid_value");
    job_refused(RFT("{\"type\":\"string_check\",\"input\":\"{{ item.a\",\"reference\":\"y\",\"operation\":\"eq\"}", ""),
                "method.reinforcement.grader.input", "invalid_value");
    job_refused(RFT("{\"type\":\"multi\",\"graders\":{\"a\":{\"type\":\"nope\"}},\"calculate_output\":\"a\"}", ""),
                "method.reinforcement.grader.graders.a.type", "invalid_value");
    job_refused(RFT("{\"type\":\"multi\",\"graders\":{\"a\":" SC "},\"calculate_output\":\"a + zz\"}", ""),
                "method.reinforcement.grader.calculate_output", "invalid_value");
    job_refused(RFT("{\"type\":\"python\",\"source\":\"def grade(s, i): return 1\"}", ""), "method.reinforcement.grader.type", "unsupported_value");
    job_refused(RFT("{\"type\":\"command\",\"command\":[\"true\"]}", ""), "method.reinforcement.grader.type", "unsupported_value");
    job_refused(RFT("[1]", ""), "method.reinforcement.grader", "invalid_type");
    job_refused(RFT(SC, "\"compute_multiplier\":2"), "method.reinforcement.hyperparameters.compute_multiplier", "unsupported_value");
    job_refused(RFT(SC, "\"eval_samples\":4"), "method.reinforcement.hyperparameters.eval_samples", "unsupported_value");
    job_refused(RFT(SC, "\"reasoning_effort\":\"low\""), "method.reinforcement.hyperparameters.reasoning_effort", "unsupported_value");
    job_refused(RFT(SC, "\"reasoning_effort\":\"max\""), "method.reinforcement.hyperparameters.reasoning_effort", "invalid_value");
    job_refused(RFT(SC, "\"eval_interval\":0"), "method.reinforcement.hyperparameters.eval_interval", "invalid_value");
    job_refused(RFT(SC, "\"beta\":0.1"), "method.reinforcement.hyperparameters.beta", "unknown_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"reinforcement\",\"reinforcement\":{\"grader\":" SC ",\"x\":1}}}",
                "method.reinforcement.x", "unknown_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"grader\":" SC "}}}",
                "method.supervised.grader", "unknown_parameter");
}

static void test_job_body(void) {
    srv_job_req r;
    srv_error e;
    CHECK(job("{\"model\":\"stories\",\"training_file\":\"file-abc\"}", &r, &e) == 0, "%s", e.message);
    CHECK(!strcmp(r.model, "stories") && !strcmp(r.training_file, "file-abc") && !r.validation_file && !r.suffix[0] && !r.seed_given &&
          r.method == SRV_METHOD_SUPERVISED && r.n_epochs == 0 && r.batch_size == 0 && r.lr_multiplier == 0 && !strcmp(r.metadata, "{}"), "defaults");
    srv_job_req_free(&r);
    CHECK(job("{\"model\":\"stories\",\"training_file\":\"file-a\",\"validation_file\":\"file-b\",\"suffix\":\"kids-1\",\"seed\":7,"
              "\"metadata\":{\"team\":\"x\"},\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":"
              "{\"n_epochs\":2,\"batch_size\":\"auto\",\"learning_rate_multiplier\":0.5}}}}", &r, &e) == 0, "%s", e.message);
    CHECK(!strcmp(r.validation_file, "file-b") && !strcmp(r.suffix, "kids-1") && r.seed_given && r.seed == 7 && r.n_epochs == 2 &&
          r.batch_size == 0 && r.lr_multiplier == 0.5 && !strcmp(r.metadata, "{\"team\":\"x\"}"), "fields");
    srv_job_req_free(&r);
    CHECK(job("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"dpo\",\"dpo\":{\"hyperparameters\":{\"beta\":0.2,\"batch_size\":4}}}}",
              &r, &e) == 0 && r.method == SRV_METHOD_DPO && r.beta == 0.2 && r.batch_size == 4, "dpo: %s", e.message);
    srv_job_req_free(&r);
    CHECK(job("{\"model\":\"m\",\"training_file\":\"f\",\"hyperparameters\":{\"n_epochs\":3},\"integrations\":[]}", &r, &e) == 0 && r.n_epochs == 3,
          "top-level hyperparameters: %s", e.message);
    srv_job_req_free(&r);

    job_refused("{\"training_file\":\"f\"}", "model", "missing_required_parameter");
    job_refused("{\"model\":\"m\"}", "training_file", "missing_required_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"learning_rate\":1}", "learning_rate", "unknown_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"../../etc/passwd\"}", "training_file", "invalid_value");
    job_refused("{\"model\":7,\"training_file\":\"f\"}", "model", "invalid_type");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"suffix\":\"a:b\"}", "suffix", "invalid_value");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"suffix\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "suffix", "invalid_value");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"seed\":-1}", "seed", "invalid_value");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"seed\":1.5}", "seed", "invalid_type");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"metadata\":{\"k\":1}}", "metadata.k", "invalid_type");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{}}", "method.type", "missing_required_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"rl\"}}", "method.type", "invalid_value");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"reinforcement\"}}", "method.reinforcement.grader",
                "missing_required_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"supervised\",\"dpo\":{}}}", "method.dpo", "invalid_value");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"n_epochs\":0}}}}",
                "method.supervised.hyperparameters.n_epochs", "invalid_value");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"n_epochs\":1.5}}}}",
                "method.supervised.hyperparameters.n_epochs", "invalid_type");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"beta\":0.1}}}}",
                "method.supervised.hyperparameters.beta", "unknown_parameter");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"learning_rate_multiplier\":\"high\"}}}}",
                "method.supervised.hyperparameters.learning_rate_multiplier", "invalid_type");
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"integrations\":[{\"type\":\"wandb\"}]}", "integrations", "unsupported_parameter");
    test_rft_body();
    job_refused("{\"model\":\"m\",\"training_file\":\"f\",\"model\":\"n\"}", "model", "invalid_value");
    job_refused("{\"model\":\"m\",", NULL, NULL);
    job_refused("[1]", NULL, NULL);
}

/* A refusal's status, param and code (e.param "" for null). */
static void refused(int rc, const srv_error *e, const char *body, const char *param, const char *code) {
    CHECK(rc == -1, "accepted: %s", body);
    if (!rc) return;
    CHECK(e->status == 400 && e->message[0], "%s: status %d", body, e->status);
    CHECK(!strcmp(e->param, param ? param : ""), "%s: param '%s', want '%s' (%s)", body, e->param, param ? param : "", e->message);
    CHECK((!code && !e->code) || (code && e->code && !strcmp(e->code, code)), "%s: code %s, want %s", body, e->code ? e->code : "null", code ? code : "null");
}

static void deploy_refused(const char *body, srv_deploy_kind kind, const char *param, const char *code) {
    srv_deploy_req r;
    srv_error e;
    int rc = srv_parse_deploy_request(body, strlen(body), kind, &r, &e);
    refused(rc, &e, body, param, code);
    if (!rc) srv_deploy_req_free(&r);
    else CHECK(!r.model && !r.alias[0], "%s: the request is not empty after an error", body);
}

static void feedback_refused(const char *body, const char *param, const char *code) {
    srv_feedback_req r;
    srv_error e;
    int rc = srv_parse_feedback_request(body, strlen(body), &r, &e);
    refused(rc, &e, body, param, code);
    if (!rc) srv_feedback_req_free(&r);
    else CHECK(!r.response_id && !r.correction && !r.comment, "%s: the request is not empty after an error", body);
}

static void test_admin_bodies(void) {
    srv_deploy_req d;
    srv_error e;
    const char *b = "{\"alias\":\"support-bot\",\"model\":\"ft:stories:key1:kids:abc\"}";
    CHECK(srv_parse_deploy_request(b, strlen(b), SRV_DEPLOY_CREATE, &d, &e) == 0 && !strcmp(d.alias, "support-bot") &&
          !strcmp(d.model, "ft:stories:key1:kids:abc") && d.percent == -1, "create: %s", e.message);
    srv_deploy_req_free(&d);
    b = "{\"model\":\"v2\",\"percent\":25}";
    CHECK(srv_parse_deploy_request(b, strlen(b), SRV_DEPLOY_CANARY, &d, &e) == 0 && !strcmp(d.model, "v2") && d.percent == 25, "canary: %s", e.message);
    srv_deploy_req_free(&d);
    deploy_refused("{\"model\":\"m\"}", SRV_DEPLOY_CREATE, "alias", "missing_required_parameter");
    deploy_refused("{\"alias\":\"a\"}", SRV_DEPLOY_CREATE, "model", "missing_required_parameter");
    deploy_refused("{\"alias\":\"a:b\",\"model\":\"m\"}", SRV_DEPLOY_CREATE, "alias", "invalid_value");
    deploy_refused("{\"alias\":\"../x\",\"model\":\"m\"}", SRV_DEPLOY_CREATE, "alias", "invalid_value");
    deploy_refused("{\"alias\":\"a\",\"model\":\"m\",\"percent\":5}", SRV_DEPLOY_CREATE, "percent", "unknown_parameter");
    deploy_refused("{\"alias\":\"a\",\"model\":\"m\",\"alias\":\"b\"}", SRV_DEPLOY_CREATE, "alias", "invalid_value");
    deploy_refused("{\"model\":\"m\"}", SRV_DEPLOY_CANARY, "percent", "missing_required_parameter");
    deploy_refused("{\"model\":\"m\",\"percent\":101}", SRV_DEPLOY_CANARY, "percent", "invalid_value");
    deploy_refused("{\"model\":\"m\",\"percent\":2.5}", SRV_DEPLOY_CANARY, "percent", "invalid_type");
    deploy_refused("{\"model\":\"m\",\"percent\":\"10\"}", SRV_DEPLOY_CANARY, "percent", "invalid_type");
    deploy_refused("{\"model\":\"m\",\"percent\":10,\"alias\":\"x\"}", SRV_DEPLOY_CANARY, "alias", "unknown_parameter");
    deploy_refused("{\"model\":7,\"percent\":10}", SRV_DEPLOY_CANARY, "model", "invalid_type");
    deploy_refused("[]", SRV_DEPLOY_CANARY, NULL, NULL);

    srv_feedback_req f;
    b = "{\"response_id\":\"chatcmpl-1a\",\"rating\":-1,\"correction\":\"Better.\",\"comment\":\"too short\"}";
    CHECK(srv_parse_feedback_request(b, strlen(b), &f, &e) == 0 && !strcmp(f.response_id, "chatcmpl-1a") && f.rating_given && f.rating == -1 &&
          !strcmp(f.correction, "Better.") && !strcmp(f.comment, "too short"), "feedback: %s", e.message);
    srv_feedback_req_free(&f);
    b = "{\"response_id\":\"cmpl-2\",\"rating\":0.5}";
    CHECK(srv_parse_feedback_request(b, strlen(b), &f, &e) == 0 && f.rating == 0.5 && !f.correction, "rating only: %s", e.message);
    srv_feedback_req_free(&f);
    feedback_refused("{\"rating\":1}", "response_id", "missing_required_parameter");
    feedback_refused("{\"response_id\":\"x\"}", "rating", "missing_required_parameter");
    feedback_refused("{\"response_id\":\"x\",\"rating\":2}", "rating", "invalid_value");
    feedback_refused("{\"response_id\":\"x\",\"rating\":\"good\"}", "rating", "invalid_type");
    feedback_refused("{\"response_id\":\"x/../y\",\"rating\":1}", "response_id", "invalid_value");
    feedback_refused("{\"response_id\":\"x\",\"correction\":5}", "correction", "invalid_type");
    feedback_refused("{\"response_id\":\"x\",\"rating\":1,\"stars\":5}", "stars", "unknown_parameter");
    feedback_refused("{\"response_id\":\"x\",\"rating\":1", NULL, NULL);
}

static void test_lora_bodies(void) {
    srv_lora set[SRV_MAX_LORA_SET];
    int n = -1;
    srv_error e;
    const char *b = "[{\"id\":1,\"scale\":0.5},{\"id\":0}]";
    CHECK(srv_parse_lora_scales(b, strlen(b), set, &n, &e) == 0 && n == 2 && set[0].id == 1 && set[0].scale == 0.5f && set[1].id == 0 &&
          set[1].scale == 1.0f, "scales: %s", e.message);
    CHECK(srv_parse_lora_scales("[]", 2, set, &n, &e) == 0 && n == 0, "an empty list: %s", e.message);
    static const char *const bad[] = {"{\"id\":0}", "[{\"scale\":1}]", "[{\"id\":-1}]", "[{\"id\":0,\"scale\":1000}]", "[1]",
                                      "[], \"x\": 1", "[{\"id\":0,\"w\":1}]", "[{\"id\":0}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(srv_parse_lora_scales(bad[i], strlen(bad[i]), set, &n, &e) == -1 && e.status == 400 && n == 0, "accepted: %s", bad[i]);
    }
    srv_lora_load_req l;
    b = "{\"lora_name\":\"sql-lora\",\"lora_path\":\"/data/adapters/sql\",\"load_inplace\":false}";
    CHECK(srv_parse_lora_load(b, strlen(b), true, &l, &e) == 0 && !strcmp(l.name, "sql-lora") && !strcmp(l.path, "/data/adapters/sql"), "load: %s", e.message);
    srv_lora_load_req_free(&l);
    b = "{\"lora_name\":\"sql-lora\",\"lora_int_id\":3}";
    CHECK(srv_parse_lora_load(b, strlen(b), false, &l, &e) == 0 && !strcmp(l.name, "sql-lora") && !l.path, "unload: %s", e.message);
    srv_lora_load_req_free(&l);
    static const struct { const char *body; bool load; const char *param, *code; } refusals[] = {
        {"{\"lora_path\":\"/x\"}", true, "lora_name", "missing_required_parameter"},
        {"{\"lora_name\":\"a\"}", true, "lora_path", "missing_required_parameter"},
        {"{\"lora_name\":\"a\",\"lora_path\":\"\"}", true, "lora_path", "invalid_value"},
        {"{\"lora_name\":\"a b\",\"lora_path\":\"/x\"}", true, "lora_name", "invalid_value"},
        {"{\"lora_name\":\"a\",\"lora_path\":\"/x\",\"load_inplace\":true}", true, "load_inplace", "unsupported_value"},
        {"{\"lora_name\":\"a\",\"lora_path\":\"/x\"}", false, "lora_path", "unknown_parameter"},
        {"{\"lora_name\":5}", false, "lora_name", "invalid_type"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        int rc = srv_parse_lora_load(refusals[i].body, strlen(refusals[i].body), refusals[i].load, &l, &e);
        refused(rc, &e, refusals[i].body, refusals[i].param, refusals[i].code);
        if (!rc) srv_lora_load_req_free(&l);
        else CHECK(!l.name && !l.path, "%s: not empty after an error", refusals[i].body);
    }
}

static void test_limits_body(void) {
    srv_limits_req l;
    srv_error e;
    const char *b = "{\"rpm\":60,\"token_budget\":0}";
    CHECK(srv_parse_limits_request(b, strlen(b), &l, &e) == 0 && l.rpm == 60 && l.token_budget == 0, "limits: %s", e.message);
    b = "{\"token_budget\":1000}";
    CHECK(srv_parse_limits_request(b, strlen(b), &l, &e) == 0 && l.rpm == -1 && l.token_budget == 1000, "budget only: %s", e.message);
    static const struct { const char *body, *param, *code; } refusals[] = {
        {"{}", "rpm", "missing_required_parameter"},
        {"{\"rpm\":-1}", "rpm", "invalid_value"},
        {"{\"rpm\":1.5}", "rpm", "invalid_type"},
        {"{\"token_budget\":\"10\"}", "token_budget", "invalid_type"},
        {"{\"tpm\":10}", "tpm", "unknown_parameter"},
        {"{\"rpm\":1e300}", "rpm", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        int rc = srv_parse_limits_request(refusals[i].body, strlen(refusals[i].body), &l, &e);
        refused(rc, &e, refusals[i].body, refusals[i].param, refusals[i].code);
    }
}

static void test_routes(void) {
    static const struct { const char *method, *path; srv_handler want; } cases[] = {
        {"POST", "/v1/files", srv_handle_file_upload},
        {"GET", "/v1/files", srv_handle_file_list},
        {"GET", "/v1/files/file-1", srv_handle_file_get},
        {"DELETE", "/v1/files/file-1", srv_handle_file_delete},
        {"GET", "/v1/files/file-1/content", srv_handle_file_content},
        {"POST", "/v1/fine_tuning/jobs", srv_handle_job_create},
        {"GET", "/v1/fine_tuning/jobs", srv_handle_job_list},
        {"GET", "/v1/fine_tuning/jobs/ftjob-1", srv_handle_job_get},
        {"POST", "/v1/fine_tuning/jobs/ftjob-1/cancel", srv_handle_job_cancel},
        {"GET", "/v1/fine_tuning/jobs/ftjob-1/events", srv_handle_job_events},
        {"GET", "/v1/fine_tuning/jobs/ftjob-1/checkpoints", srv_handle_job_checkpoints},
        {"POST", "/v1/deployments", srv_handle_deploy_create},
        {"GET", "/v1/deployments", srv_handle_deploy_list},
        {"GET", "/v1/deployments/bot", srv_handle_deploy_get},
        {"DELETE", "/v1/deployments/bot", srv_handle_deploy_delete},
        {"POST", "/v1/deployments/bot/canary", srv_handle_deploy_canary},
        {"POST", "/v1/deployments/bot/promote", srv_handle_deploy_promote},
        {"POST", "/v1/deployments/bot/rollback", srv_handle_deploy_rollback},
        {"POST", "/v1/feedback", srv_handle_feedback},
        {"GET", "/v1/feedback/export", srv_handle_feedback_export},
        {"POST", "/lora-adapters", srv_handle_lora_set},
        {"POST", "/v1/load_lora_adapter", srv_handle_lora_load},
        {"POST", "/v1/unload_lora_adapter", srv_handle_lora_unload},
        {"POST", "/v1/fine_tuning/jobs/ftjob-1/pause", srv_handle_job_pause},
        {"POST", "/v1/fine_tuning/jobs/ftjob-1/resume", srv_handle_job_resume},
        {"GET", "/v1/usage", srv_handle_usage},
        {"GET", "/v1/keys", srv_handle_keys},
        {"POST", "/v1/keys/key3/limits", srv_handle_key_limits},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int route;
        bool auth;
        CHECK(srv_route(cases[i].method, cases[i].path, &route, &auth) == cases[i].want && auth, "%s %s", cases[i].method, cases[i].path);
    }
    int route;
    bool auth;
    srv_handler nf = srv_route("GET", "/nope", &route, &auth), bad = srv_route("PUT", "/v1/files", &route, &auth);
    CHECK(bad != nf, "PUT /v1/files is not a 405");
    const char *unknown[] = {"/v1/files/", "/v1/files//content", "/v1/files/a/b", "/v1/files/a/content/x", "/v1/fine_tuning/jobs/a/b"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK(srv_route("GET", unknown[i], &route, &auth) == nf, "%s routed", unknown[i]);
    char seg[16];
    CHECK(srv_path_segment("/v1/files/file-1/content", 2, seg, sizeof seg) && !strcmp(seg, "file-1"), "segment 2: %s", seg);
    CHECK(!srv_path_segment("/v1/files/file-1", 3, seg, sizeof seg), "segment past the end");
    CHECK(!srv_path_segment("/v1/files/0123456789abcdefXYZ", 2, seg, sizeof seg), "a segment longer than the buffer");
}

int main(void) {
    test_upload();
    test_job_body();
    test_admin_bodies();
    test_lora_bodies();
    test_limits_body();
    test_routes();
    return tk_test_done("test_serve_bodies");
}
