/* The models a server holds: each --model is a model id; each --adapter NAME=DIR is attached to the
 * first model and is the model id NAME, applied per request to that request's session only. Sessions
 * (KV caches) are kept per model and reused by later requests. */
#include "serve/server.h"
#include "core/core.h"
#include "data/data_internal.h"
#include <cjson/cJSON.h>
#include <time.h>
#include <unistd.h>

static bool id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == ':';
}

/* "ID=PATH" -> id and path when the part before '=' is a model id; else no id. */
static void split_spec(const char *spec, char **id, char **path) {
    const char *eq = strchr(spec, '=');
    bool named = eq && eq > spec;
    for (const char *p = spec; named && p < eq; p++) named = id_char(*p);
    *id = named ? tk_strndup(spec, (size_t)(eq - spec)) : NULL;
    *path = tk_strdup(named ? eq + 1 : spec);
}

/* The file or folder name without a trailing '/' and ".gguf". */
static char *default_id(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *b = path + n;
    while (b > path && b[-1] != '/') b--;
    size_t len = (size_t)(path + n - b);
    if (len > 5 && !strncmp(b + len - 5, ".gguf", 5)) len -= 5;
    return tk_strndup(b, len);
}

static bool id_valid(const char *id) {
    if (!*id || strlen(id) > SRV_MAX_ID) return false;
    for (; *id; id++)
        if (!id_char(*id)) return false;
    return true;
}

static bool id_taken(const srv_registry *r, const char *id) {
    int m, a;
    return srv_registry_find(r, id, &m, &a);
}

tk_status srv_registry_open(srv_registry *r, const tk_serve_params *p) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->add_mu, NULL);
    r->created = (int64_t)time(NULL);
    if (p->n_models < 1) return tk_fail(TK_ERR_ARG, "no --model given: the server needs at least one model");
    if (p->n_models > TK_SERVE_MAX_MODELS || p->n_adapters > TK_SERVE_MAX_ADAPTERS)
        return tk_fail(TK_ERR_ARG, "at most %d --model and %d --adapter", TK_SERVE_MAX_MODELS, TK_SERVE_MAX_ADAPTERS);
    tk_status st = TK_OK;
    for (int i = 0; i < p->n_models && !st; i++) {
        char *id = NULL, *path = NULL;
        split_spec(p->models[i], &id, &path);
        if (!id && path) id = default_id(path);
        if (!id || !path) { free(id); free(path); st = TK_ERR_NOMEM; break; }
        srv_model *m = &r->models[r->n_models];
        if (!id_valid(id)) st = tk_fail(TK_ERR_ARG, "--model %s: the model id '%s' must be 1-191 characters of A-Z a-z 0-9 . _ - : (name it with --model ID=PATH)", p->models[i], id);
        else if (id_taken(r, id)) st = tk_fail(TK_ERR_ARG, "--model %s: the model id '%s' is used twice (name one with --model ID=PATH)", p->models[i], id);
        if (st) { free(id); free(path); break; }
        m->id = id;
        m->path = path;
        r->n_models++;
        tk_model_params mp = tk_model_default_params();
        mp.tokenizer_path = p->tokenizer;
        mp.n_ctx = p->n_ctx;
        if ((st = tk_model_load(path, &mp, &m->m))) { st = tk_fail_ctx(st, "--model %s: ", path); break; }
        if (tk_chat_resolve(tk_model_tokenizer(m->m), NULL, &m->fam)) {
            m->fam = TK_CHAT_UNKNOWN;
            snprintf(m->chat_err, sizeof m->chat_err, "%s", tk_last_error());
            tk_clear_error();
        }
    }
    for (int i = 0; i < p->n_adapters && !st; i++) {
        char *id = NULL, *path = NULL;
        split_spec(p->adapters[i], &id, &path);
        if (!path) { free(id); st = TK_ERR_NOMEM; break; }
        if (!id) st = tk_fail(TK_ERR_ARG, "--adapter %s: expected NAME=DIR (NAME: the model id requests use)", p->adapters[i]);
        else if (!id_valid(id)) st = tk_fail(TK_ERR_ARG, "--adapter %s: the name '%s' must be 1-191 characters of A-Z a-z 0-9 . _ - :", p->adapters[i], id);
        else if (id_taken(r, id)) st = tk_fail(TK_ERR_ARG, "--adapter %s: the model id '%s' is used twice", p->adapters[i], id);
        if (st) { free(id); free(path); break; }
        srv_adapter *a = &r->adapters[r->n_adapters];
        a->id = id;
        a->path = path;
        a->model = 0;
        a->created = r->created;
        r->n_adapters++;
        if ((st = tk_adapter_apply(r->models[0].m, path, &a->h))) st = tk_fail_ctx(st, "--adapter %s: ", p->adapters[i]);
    }
    if (st) srv_registry_close(r);
    return st;
}

void srv_registry_close(srv_registry *r) {
    for (int i = 0; i < r->n_adapters; i++) {
        tk_adapter_detach(r->models[r->adapters[i].model].m, r->adapters[i].h);
        free(r->adapters[i].id);
        free(r->adapters[i].path);
        free(r->adapters[i].owner);
    }
    for (int i = 0; i < r->n_models; i++) {
        srv_model *m = &r->models[i];
        srv_batcher_stop(m->batcher); /* its thread uses the model */
        tk_model_free(m->m);
        free(m->id);
        free(m->path);
    }
    pthread_mutex_destroy(&r->add_mu);
    memset(r, 0, sizeof *r);
}

tk_status srv_registry_add(srv_registry *r, int mi, const char *id, const char *path, const char *owner, int64_t created) {
    if (!id_valid(id)) return tk_fail(TK_ERR_ARG, "model id '%.200s': 1-%d characters of A-Z a-z 0-9 . _ - :", id, SRV_MAX_ID);
    pthread_mutex_lock(&r->add_mu);
    tk_status st = TK_OK;
    int n = r->n_adapters;
    if (id_taken(r, id)) st = tk_fail(TK_ERR_ARG, "model id '%s' is already served", id);
    else if (n >= SRV_MAX_ADAPTERS) st = tk_fail(TK_ERR_ARG, "%s: the server holds %d adapters already (its limit)", id, SRV_MAX_ADAPTERS);
    srv_adapter *a = &r->adapters[n];
    if (!st) {
        memset(a, 0, sizeof *a);
        a->id = tk_strdup(id);
        a->path = tk_strdup(path);
        a->owner = owner ? tk_strdup(owner) : NULL;
        a->model = mi;
        a->created = created;
        if (!a->id || !a->path || (owner && !a->owner)) st = TK_ERR_NOMEM;
        else if ((st = tk_adapter_apply(r->models[mi].m, path, &a->h))) st = tk_fail_ctx(st, "%s: ", id);
        if (st) { free(a->id); free(a->path); free(a->owner); memset(a, 0, sizeof *a); }
        else r->n_adapters = n + 1;   /* publishes the filled slot */
    }
    pthread_mutex_unlock(&r->add_mu);
    return st;
}

bool srv_adapter_visible(const srv_registry *r, int ai, const char *owner, bool admin) {
    return ai < 0 || admin || !r->adapters[ai].owner || !strcmp(r->adapters[ai].owner, owner);
}

bool srv_registry_find(const srv_registry *r, const char *id, int *model, int *adapter) {
    for (int i = 0; i < r->n_models; i++)
        if (r->models[i].id && !strcmp(r->models[i].id, id)) { *model = i; *adapter = -1; return true; }
    int n = r->n_adapters;
    for (int i = 0; i < n; i++)
        if (r->adapters[i].id && !r->adapters[i].unloaded && !strcmp(r->adapters[i].id, id)) { *model = r->adapters[i].model; *adapter = i; return true; }
    return false;
}

void srv_registry_unload_missing(srv_registry *r, const char *prefix) {
    size_t n = strlen(prefix);
    pthread_mutex_lock(&r->add_mu);
    for (int i = 0; i < r->n_adapters; i++) {
        srv_adapter *a = &r->adapters[i];
        if (!a->unloaded && a->id && !strncmp(a->id, prefix, n) && access(a->path, F_OK) != 0) { a->unloaded = true; a->scale = 0; }
    }
    pthread_mutex_unlock(&r->add_mu);
}

bool srv_registry_unload(srv_registry *r, const char *id) {
    pthread_mutex_lock(&r->add_mu);
    int mi, ai;
    bool found = srv_registry_find(r, id, &mi, &ai) && ai >= 0;
    if (found) { r->adapters[ai].unloaded = true; r->adapters[ai].scale = 0; }
    pthread_mutex_unlock(&r->add_mu);
    return found;
}

static cJSON *model_obj(const srv_registry *r, int mi, int ai) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ai < 0 ? r->models[mi].id : r->adapters[ai].id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)(ai < 0 ? r->created : r->adapters[ai].created));
    cJSON_AddStringToObject(o, "owned_by", ai >= 0 && r->adapters[ai].owner ? r->adapters[ai].owner : "takumi");
    if (ai >= 0) cJSON_AddStringToObject(o, "parent", r->models[mi].id);
    return o;
}

/* Appends root (consumed) as compact JSON. */
static tk_status print_json(cJSON *root, tk_buf *out) {
    tk_status st = root ? tk_json_append_value(out, root) : TK_ERR_NOMEM;
    cJSON_Delete(root);
    return st;
}

tk_status srv_models_json(const srv_registry *r, const char *owner, bool admin, tk_buf *out) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    for (int i = 0; i < r->n_models; i++) cJSON_AddItemToArray(data, model_obj(r, i, -1));
    int n = r->n_adapters;
    for (int i = 0; i < n; i++)
        if (!r->adapters[i].unloaded && srv_adapter_visible(r, i, owner, admin)) cJSON_AddItemToArray(data, model_obj(r, r->adapters[i].model, i));
    return print_json(root, out);
}

bool srv_model_json(const srv_registry *r, const char *id, const char *owner, bool admin, tk_buf *out) {
    int mi, ai;
    if (!srv_registry_find(r, id, &mi, &ai) || !srv_adapter_visible(r, ai, owner, admin)) return false;
    return print_json(model_obj(r, mi, ai), out) == TK_OK;
}

tk_status srv_lora_json(const srv_registry *r, const char *owner, bool admin, tk_buf *out) {
    /* llama-server's shape; "scale" is the global scale (POST /lora-adapters), applied to requests for the base that
       name no adapter and give no "lora" list (0 unless set) */
    cJSON *root = cJSON_CreateArray();
    int n = r->n_adapters;
    for (int i = 0; i < n; i++) {
        if (r->adapters[i].unloaded || !srv_adapter_visible(r, i, owner, admin)) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        cJSON_AddStringToObject(o, "path", r->adapters[i].path);
        cJSON_AddNumberToObject(o, "scale", (double)r->adapters[i].scale);
        cJSON_AddStringToObject(o, "name", r->adapters[i].id);
        cJSON_AddItemToArray(root, o);
    }
    return print_json(root, out);
}
