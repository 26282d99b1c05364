/* `takumi deploy create|list|get|canary|promote|rollback|delete`: the deployment endpoints of a running
 * `takumi serve` (/v1/deployments, admin keys) over HTTP with libcurl. Prints the server's JSON answer on
 * stdout; an error answer goes to stderr and exits 1. */
#include "cli.h"
#include <curl/curl.h>
#include <cjson/cJSON.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: takumi deploy create ALIAS --model M   [--server URL] [--key KEY]\n"
        "       takumi deploy list | get ALIAS | delete ALIAS\n"
        "       takumi deploy canary ALIAS --model M --percent P\n"
        "       takumi deploy promote ALIAS | rollback ALIAS\n"
        "  Manages the deployments of a running takumi serve: an alias that requests name as their \"model\",\n"
        "  pointing at a model version (a base or an ft: model). canary sends P%% of the users (sticky per the\n"
        "  request's \"user\") to M; promote makes the canary the model; rollback drops the canary, or without one\n"
        "  goes back to the previous model. Each answer's x-takumi-model-version header names the version.\n"
        "  --server URL   the server (default http://127.0.0.1:8080, or $TAKUMI_SERVER)\n"
        "  --key KEY      an admin key (default $TAKUMI_API_KEY)\n");
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    return tk_buf_append(ud, p, size * n) ? 0 : size * n;
}

/* method path [body] -> stdout (2xx) or stderr; 0 on 2xx. */
static int call(const char *server, const char *key, const char *method, const char *path, const char *body) {
    CURL *c = curl_easy_init();
    if (!c) { fprintf(stderr, "takumi deploy: cannot start libcurl\n"); return 1; }
    size_t n = strlen(server);
    while (n > 0 && server[n - 1] == '/') n--;
    tk_buf url = {0}, out = {0};
    struct curl_slist *h = NULL;
    char auth[600];
    if (tk_buf_printf(&url, "%.*s%s", (int)n, server, path)) { curl_easy_cleanup(c); return 1; }
    if (key) { snprintf(auth, sizeof auth, "Authorization: Bearer %.500s", key); h = curl_slist_append(h, auth); }
    if (body) h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else if (!strcmp(method, "POST")) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int ret = 1;
    if (rc != CURLE_OK) fprintf(stderr, "takumi deploy: %s %s: %s\n", method, url.data, curl_easy_strerror(rc));
    else if (status < 200 || status >= 300) fprintf(stderr, "takumi deploy: %s %s: HTTP %ld: %.*s\n", method, path, status, (int)out.len, out.data ? out.data : "");
    else { printf("%.*s\n", (int)out.len, out.data ? out.data : ""); ret = 0; }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    tk_buf_free(&url);
    tk_buf_free(&out);
    return ret;
}

int cmd_deploy(int argc, char **argv) {
    if (argc < 2 || cli_flag(argv, 1, "help") || !strcmp(argv[1], "-h")) { usage(argc < 2 ? stderr : stdout); return argc < 2; }
    const char *verb = argv[1], *alias = NULL, *model = NULL, *server = getenv("TAKUMI_SERVER"), *key = getenv("TAKUMI_API_KEY");
    long percent = -1;
    int err = 0;
    for (int i = 2; i < argc && !err; i++) {
        const char *v = NULL;
        if (cli_opt(argc, argv, &i, "server", &server, &err) || cli_opt(argc, argv, &i, "key", &key, &err) ||
            cli_opt(argc, argv, &i, "model", &model, &err)) {}
        else if (cli_opt(argc, argv, &i, "percent", &v, &err)) { if (v) percent = cli_parse_long("percent", v, 0, 100, &err); }
        else if (argv[i][0] != '-' && !alias) alias = argv[i];
        else { fprintf(stderr, "takumi deploy: unknown argument '%s' (see takumi deploy --help)\n", argv[i]); err = 1; }
    }
    if (err) return 1;
    if (!server || !*server) server = "http://127.0.0.1:8080";
    bool list = !strcmp(verb, "list");
    bool known = list || !strcmp(verb, "create") || !strcmp(verb, "get") || !strcmp(verb, "delete") || !strcmp(verb, "canary") ||
                 !strcmp(verb, "promote") || !strcmp(verb, "rollback");
    if (!known) { fprintf(stderr, "takumi deploy: unknown command '%s' (create, list, get, canary, promote, rollback, delete)\n", verb); return 1; }
    if (list == (alias != NULL)) { fprintf(stderr, "takumi deploy %s: %s\n", verb, list ? "takes no alias" : "needs an ALIAS"); return 1; }
    bool wants_model = !strcmp(verb, "create") || !strcmp(verb, "canary");
    if (wants_model != (model != NULL)) { fprintf(stderr, "takumi deploy %s: %s --model\n", verb, wants_model ? "needs" : "takes no"); return 1; }
    if (!strcmp(verb, "canary") != (percent >= 0)) { fprintf(stderr, "takumi deploy %s: %s --percent\n", verb, percent < 0 ? "needs" : "takes no"); return 1; }
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) { fprintf(stderr, "takumi deploy: cannot start libcurl\n"); return 1; }
    char path[256];
    char *body = NULL;
    const char *method = "POST";
    if (list) { method = "GET"; snprintf(path, sizeof path, "/v1/deployments"); }
    else if (!strcmp(verb, "create")) snprintf(path, sizeof path, "/v1/deployments");
    else if (!strcmp(verb, "get") || !strcmp(verb, "delete")) {
        method = !strcmp(verb, "get") ? "GET" : "DELETE";
        snprintf(path, sizeof path, "/v1/deployments/%.200s", alias);
    } else snprintf(path, sizeof path, "/v1/deployments/%.200s/%s", alias, verb);
    if (wants_model) { /* JSON built by cJSON: the names are escaped */
        cJSON *o = cJSON_CreateObject();
        if (!strcmp(verb, "create")) cJSON_AddStringToObject(o, "alias", alias);
        cJSON_AddStringToObject(o, "model", model);
        if (percent >= 0) cJSON_AddNumberToObject(o, "percent", (double)percent);
        body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!body) { curl_global_cleanup(); return cli_fail(TK_ERR_NOMEM, "deploy"); }
    }
    int rc = call(server, key, method, path, body);
    cJSON_free(body);
    curl_global_cleanup();
    return rc;
}
