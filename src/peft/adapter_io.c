/* Reading adapter files of any PEFT method (see adapter_io.h): what a path is, which kind reads
 * it (PEFT "peft_type" / GGUF "adapter.type"), and the adapter handle that applies one. */
#include "peft/adapter_io.h"
#include "model/arch.h"
#include "core/core.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tk_adapter_gguf_arch(const char *arch, bool *qk_permuted) {
    /* the family's description: llama.cpp converts Llama and Mistral checkpoints to its "llama"
     * architecture (rotating interleaved pairs, hence permuted q/k rows), the others keep HF rows */
    const tk_arch *d = tk_arch_by_name(arch);
    if (!d) return NULL;
    if (qk_permuted) *qk_permuted = d->gguf_qk_permuted;
    return d->gguf;
}

/* ---- which kind reads a file -------------------------------------------------------------- */

/* The type of a kind in one layout (NULL: the kind has no reader for it). */
static const char *type_of(const tk_peft_kind *k, bool gguf) {
    return gguf ? (k->read_gguf ? k->gguf_type : NULL) : (k->read_peft ? k->peft_type : NULL);
}

/* The types the kinds read in one layout, for messages: "LORA" / "lora" (each once). */
static void supported(bool gguf, char *buf, size_t cap) {
    int n;
    const tk_peft_kind *k = tk_peft_kinds(&n);
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < cap; i++) {
        const char *t = type_of(&k[i], gguf);
        bool seen = false;
        for (int j = 0; j < i && t && !seen; j++) seen = type_of(&k[j], gguf) && !strcmp(type_of(&k[j], gguf), t);
        if (t && !seen) o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", t);
    }
}

/* adapter_config.json text -> the kind whose peft_type it names and that kind's file object
 * (sf NULL: the config is only checked, *file stays NULL). */
static tk_status peft_read(const char *json, size_t len, const char *cfg_name, const tk_safetensors *sf, const char *st_name,
                           const tk_peft_kind **kind, void **file) {
    *kind = NULL;
    *file = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON", cfg_name);
    char sup[256];
    supported(false, sup, sizeof sup);
    int n;
    const tk_peft_kind *kinds = tk_peft_kinds(&n);
    const cJSON *v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "peft_type") : NULL;
    tk_status st;
    if (!cJSON_IsObject(root)) st = tk_fail(TK_ERR_FORMAT, "%s: expected a JSON object", cfg_name);
    else if (!cJSON_IsString(v)) st = tk_fail(TK_ERR_FORMAT, "%s: \"peft_type\" is missing or not a string (supported: %s)", cfg_name, sup);
    else if (!(*kind = tk_peft_kind_for_peft(kinds, n, v->valuestring, root)))
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: peft_type \"%.64s\" is not supported (supported: %s)", cfg_name, v->valuestring, sup);
    else st = (*kind)->read_peft(root, cfg_name, sf, st_name, file);
    cJSON_Delete(root);
    return st;
}

/* A GGUF adapter -> the kind whose adapter.type it names and that kind's file object. */
static tk_status gguf_read(const tk_gguf *g, const tk_peft_kind **kind, void **file) {
    *kind = NULL;
    *file = NULL;
    const char *path = tk_gguf_path(g), *s;
    size_t len;
    if (!tk_gguf_get_str(g, "general.type", &s, &len) || strcmp(s, "adapter"))
        return tk_fail(TK_ERR_FORMAT, "%s: general.type is not \"adapter\" (this GGUF is a model, not an adapter)", path);
    char sup[256];
    supported(true, sup, sizeof sup);
    if (!tk_gguf_get_str(g, "adapter.type", &s, &len)) return tk_fail(TK_ERR_FORMAT, "%s: no adapter.type (supported: %s)", path, sup);
    int n;
    const tk_peft_kind *kinds = tk_peft_kinds(&n);
    if (!(*kind = tk_peft_kind_for_gguf(kinds, n, s)))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: adapter.type \"%.64s\" is not supported (supported: %s)", path, s, sup);
    return (*kind)->read_gguf(g, file);
}

/* ---- reading ------------------------------------------------------------------------------ */

tk_status tk_adapter_of_file(const tk_peft_kind *kind, const char *path, const char *format, void *file, tk_adapter **out) {
    *out = NULL;
    if (!kind || !kind->attach || !kind->describe || !kind->free_file || !file || !path || !format) {
        if (kind && kind->free_file) kind->free_file(file);
        return tk_fail(TK_ERR_ARG, "adapter: no kind, file or name (a kind with files needs attach, describe, free_file)");
    }
    tk_adapter *a = tk_calloc(1, sizeof *a);
    if (!a || !(a->path = tk_strdup(path))) { free(a); kind->free_file(file); return TK_ERR_NOMEM; }
    a->format = format;
    a->kind = kind;
    a->file = file;
    *out = a;
    return TK_OK;
}

tk_status tk_adapter_from_gguf(const tk_gguf *g, tk_adapter **out) {
    *out = NULL;
    if (!g) return tk_fail(TK_ERR_ARG, "adapter: NULL GGUF handle");
    const tk_peft_kind *kind;
    void *file;
    tk_status st = gguf_read(g, &kind, &file);
    return st ? st : tk_adapter_of_file(kind, tk_gguf_path(g), "gguf", file, out);
}

tk_status tk_adapter_from_peft(const char *config_json, size_t len, const tk_safetensors *sf, const char *name, tk_adapter **out) {
    *out = NULL;
    if (!config_json || !sf || !name) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_peft_kind *kind;
    void *file;
    tk_status st = peft_read(config_json, len, name, sf, name, &kind, &file);
    return st ? st : tk_adapter_of_file(kind, name, "peft", file, out);
}

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Why a PEFT folder without adapter_model.safetensors cannot be read (a bad config is the
 * better message when there is one). */
static tk_status no_safetensors(const char *dir, const char *json, size_t len, const char *cfg_path) {
    const tk_peft_kind *kind;
    void *file;
    tk_status st = peft_read(json, len, cfg_path, NULL, NULL, &kind, &file);
    if (file) kind->free_file(file);
    if (st) return st;
    char *bin = tk_path_join(dir, "adapter_model.bin");
    bool has_bin = bin && access(bin, F_OK) == 0;
    free(bin);
    return has_bin ? tk_fail(TK_ERR_UNSUPPORTED, "%s: only adapter_model.bin (a pickle) is there; save the adapter with "
                                                 "safe_serialization=True (adapter_model.safetensors)", dir)
                   : tk_fail(TK_ERR_NOT_FOUND, "%s: missing adapter_model.safetensors", dir);
}

static tk_status load_peft(const char *path, tk_adapter **out) {
    /* path: the folder, or one of its two files */
    char *dir;
    if (is_dir(path)) dir = tk_strdup(path);
    else {
        const char *slash = strrchr(path, '/');
        dir = slash ? tk_strndup(path, (size_t)(slash - path)) : tk_strdup(".");
    }
    if (!dir) return TK_ERR_NOMEM;
    char *cfg_path = tk_path_join(dir, "adapter_config.json"), *st_path = tk_path_join(dir, "adapter_model.safetensors");
    char *json = NULL;
    size_t len = 0;
    tk_safetensors *sf = NULL;
    tk_status st = TK_OK;
    if (!cfg_path || !st_path) { st = TK_ERR_NOMEM; goto done; }
    if (access(cfg_path, F_OK) != 0) {
        st = tk_fail(TK_ERR_NOT_FOUND, "%s: no adapter_config.json (an adapter is a PEFT folder or a GGUF adapter file)", path);
        goto done;
    }
    if ((st = tk_read_file(cfg_path, &json, &len))) goto done;
    if (access(st_path, F_OK) != 0) { st = no_safetensors(dir, json, len, cfg_path); goto done; }
    if ((st = tk_st_open(st_path, &sf))) goto done;
    const tk_peft_kind *kind;
    void *file;
    st = peft_read(json, len, cfg_path, sf, st_path, &kind, &file);
    if (!st) st = tk_adapter_of_file(kind, path, "peft", file, out);
done:
    tk_st_close(sf);
    free(json);
    free(cfg_path);
    free(st_path);
    free(dir);
    return st;
}

static tk_status load_gguf(const char *path, tk_adapter **out) {
    tk_gguf *g = NULL;
    const tk_peft_kind *kind;
    void *file;
    tk_status st = tk_gguf_open(path, &g);
    if (!st) st = gguf_read(g, &kind, &file);
    if (!st) st = tk_adapter_of_file(kind, path, "gguf", file, out);
    tk_gguf_close(g);
    return st;
}

tk_status tk_adapter_load(const char *path, tk_adapter **out) {
    *out = NULL;
    if (!path) return tk_fail(TK_ERR_ARG, "adapter: NULL path");
    if (is_dir(path) || tk_ends_with(path, ".json") || tk_ends_with(path, ".safetensors")) return load_peft(path, out);
    FILE *f = fopen(path, "rb");
    if (!f) return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char magic[4] = {0};
    bool gguf = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    fclose(f);
    if (!gguf) return tk_fail(TK_ERR_FORMAT, "%s: neither a GGUF adapter nor a PEFT folder (adapter_config.json)", path);
    return load_gguf(path, out);
}

void tk_adapter_free(tk_adapter *a) {
    if (!a) return;
    a->kind->free_file(a->file);
    free(a->path);
    free(a);
}

/* ---- attaching ---------------------------------------------------------------------------- */

tk_status tk_adapter_attach_peft(const tk_adapter *a, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    if (!a || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    return a->kind->attach(a->file, a->path, m, ps, out);
}

struct tk_adapter_handle {
    tk_param_set ps;
    const tk_peft_kind *kind;
    tk_peft *peft;
};

tk_status tk_adapter_apply_loaded(tk_model *m, const tk_adapter *a, tk_adapter_handle **out) {
    *out = NULL;
    if (!m || !a) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    tk_adapter_handle *h = tk_calloc(1, sizeof *h);
    if (!h) return TK_ERR_NOMEM;
    h->kind = a->kind;
    tk_status st = tk_adapter_attach_peft(a, m, &h->ps, &h->peft);
    if (st) { tk_params_free(&h->ps); free(h); return st; }
    *out = h;
    return TK_OK;
}

tk_status tk_adapter_apply(tk_model *m, const char *path, tk_adapter_handle **out) {
    *out = NULL;
    tk_adapter *a;
    tk_status st = tk_adapter_load(path, &a);
    if (st) return st;
    st = tk_adapter_apply_loaded(m, a, out);
    tk_adapter_free(a);
    return st;
}

void tk_adapter_detach(tk_model *m, tk_adapter_handle *h) {
    (void)m;
    if (!h) return;
    h->kind->destroy(h->peft);
    tk_params_free(&h->ps);
    free(h);
}

tk_lora *tk_adapter_handle_lora(tk_adapter_handle *h) { return h ? tk_lora_of(h->peft) : NULL; }
const tk_peft *tk_adapter_handle_peft(tk_adapter_handle *h) { return h ? h->peft : NULL; }
