/* safetensors reader and writer.
 *
 * File layout (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON ({"name": {"dtype", "shape", "data_offsets"}, …,
 * optional "__metadata__": {string: string}}), then the data section; data_offsets are
 * [begin, end) relative to the start of the data section. Everything read from the file
 * is checked before use: header length against the file size and a cap, every offset
 * against the data section, every size against dtype x shape (overflow-safe).
 *
 * A sharded model is a set of such files plus model.safetensors.index.json whose
 * "weight_map" names the shard of every tensor; tk_st_open maps each shard once and checks
 * that the index and the shards agree. Tensor views point into the read-only mappings. */
#include "takumi/safetensors.h"
#include "core/core.h"
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers of real models are well under 1 MB (a few hundred bytes per tensor); the cap
 * keeps a corrupt length from making us copy and parse gigabytes. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define ST_MAX_INDEX ((size_t)100 * 1000 * 1000)

struct tk_safetensors {
    tk_mapped_file *files; /* one per shard; empty for tk_st_open_memory */
    int n_files;
    tk_tensor_ref *t;      /* shards in index order, tensors by data offset within a shard */
    int *shard;            /* shard index of each tensor */
    int64_t n, cap;
    int64_t *by_name;      /* tensor indices sorted by name, for lookup */
    char **meta;           /* key, value, key, value, … (owned) */
    int64_t n_meta, cap_meta;
};

/* ---------------------------------------------------------------- helpers */

static const struct { const char *name; tk_dtype dt; } k_st_dtypes[] = {
    {"F32", TK_F32}, {"F16", TK_F16}, {"BF16", TK_BF16}, {"F64", TK_F64},
    {"I8", TK_I8},   {"I16", TK_I16}, {"I32", TK_I32},   {"I64", TK_I64},
};

static int st_dtype_from_name(const char *s, tk_dtype *dt) {
    for (size_t i = 0; i < sizeof k_st_dtypes / sizeof k_st_dtypes[0]; i++)
        if (!strcmp(s, k_st_dtypes[i].name)) { *dt = k_st_dtypes[i].dt; return 1; }
    return 0;
}

static const char *st_dtype_to_name(tk_dtype dt) {
    for (size_t i = 0; i < sizeof k_st_dtypes / sizeof k_st_dtypes[0]; i++)
        if (k_st_dtypes[i].dt == dt) return k_st_dtypes[i].name;
    return NULL;
}

/* A JSON number that is a non-negative integer below 2^63. (Above 2^53 a double may
 * round the file's digits, but no such size or offset can pass the bounds checks.) */
static int st_json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!isfinite(d) || d < 0 || d >= 9223372036854775808.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static tk_status st_push_meta(tk_safetensors *st, const char *k, const char *v) {
    for (int64_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[2 * i], k)) return TK_OK; /* first one wins (sharded sets repeat keys) */
    if (st->n_meta == st->cap_meta) {
        int64_t cap = st->cap_meta ? 2 * st->cap_meta : 8;
        char **m = tk_realloc(st->meta, (size_t)cap * 2 * sizeof *m);
        if (!m) return TK_ERR_NOMEM;
        st->meta = m;
        st->cap_meta = cap;
    }
    char *kk = tk_strdup(k), *vv = tk_strdup(v);
    if (!kk || !vv) { free(kk); free(vv); return TK_ERR_NOMEM; }
    st->meta[2 * st->n_meta] = kk;
    st->meta[2 * st->n_meta + 1] = vv;
    st->n_meta++;
    return TK_OK;
}

static tk_status st_reserve(tk_safetensors *st, int64_t extra) {
    if (st->n + extra <= st->cap) return TK_OK;
    int64_t cap = st->cap ? st->cap : 16;
    while (cap < st->n + extra) cap *= 2;
    tk_tensor_ref *t = tk_realloc(st->t, (size_t)cap * sizeof *t);
    if (!t) return TK_ERR_NOMEM;
    st->t = t;
    int *sh = tk_realloc(st->shard, (size_t)cap * sizeof *sh);
    if (!sh) return TK_ERR_NOMEM;
    st->shard = sh;
    st->cap = cap;
    return TK_OK;
}

void tk_st_drop_pages(const tk_safetensors *st, const void *p, size_t n) {
    if (!st || !p || !n) return;
    for (int i = 0; i < st->n_files; i++) {
        const tk_mapped_file *f = &st->files[i];
        const uint8_t *q = p;
        if (!f->is_mmap || q < f->data || q + n > f->data + f->size) continue;
        tk_drop_file_pages(f, q, n);
        return;
    }
}

void tk_st_close(tk_safetensors *st) {
    if (!st) return;
    for (int64_t i = 0; i < st->n; i++) free((char *)st->t[i].name);
    for (int64_t i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    for (int i = 0; i < st->n_files; i++) tk_unmap_file(&st->files[i]);
    free(st->files);
    free(st->t);
    free(st->shard);
    free(st->by_name);
    free(st->meta);
    free(st);
}

/* ---------------------------------------------------------------- parsing */

typedef struct { tk_tensor_ref ref; uint64_t begin; } st_pending;

static int st_cmp_pending(const void *a, const void *b) {
    const st_pending *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return strcmp(x->ref.name, y->ref.name);
}

/* Parses one tensor entry of the header into p (name not set). */
static tk_status st_parse_entry(const cJSON *e, const char *file, const char *tname,
                                const uint8_t *data, uint64_t data_size, st_pending *p) {
    if (!cJSON_IsObject(e))
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", file, tname);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", file, tname);
    if (!cJSON_IsArray(js))
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", file, tname);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", file, tname);
    tk_dtype dt;
    if (!st_dtype_from_name(jd->valuestring, &dt))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %.32s (supported: F32 F16 BF16 F64 I8 I16 I32 I64)",
                       file, tname, jd->valuestring);
    int nd = cJSON_GetArraySize(js);
    if (nd > TK_MAX_DIMS)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions; at most %d are supported",
                       file, tname, nd, TK_MAX_DIMS);
    memset(&p->ref, 0, sizeof p->ref);
    p->ref.dtype = dt;
    p->ref.n_dims = nd;
    for (int i = 0; i < TK_MAX_DIMS; i++) p->ref.ne[i] = 1;
    size_t nelems = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, js) {
        uint64_t v;
        if (!st_json_uint(d, &v))
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", file, tname, i);
        if (!tk_mul_ok(nelems, (size_t)v, &nelems) || nelems > (size_t)INT64_MAX)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': element count overflows", file, tname);
        p->ref.ne[nd - 1 - i] = (int64_t)v; /* torch order -> ggml order */
        i++;
    }
    size_t nbytes;
    if (tk_dtype_nbytes(dt, (int64_t)nelems, &nbytes) != TK_OK)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': byte size overflows", file, tname);
    uint64_t b, en;
    if (!st_json_uint(cJSON_GetArrayItem(jo, 0), &b) || !st_json_uint(cJSON_GetArrayItem(jo, 1), &en))
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': data_offsets are not non-negative integers", file, tname);
    if (b > en)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu",
                       file, tname, (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': data_offsets end %llu is past the end of the data section (%llu bytes)",
                       file, tname, (unsigned long long)en, (unsigned long long)data_size);
    if (en - b != (uint64_t)nbytes)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s': data_offsets span %llu bytes but %s x %zu elements needs %zu",
                       file, tname, (unsigned long long)(en - b), jd->valuestring, nelems, nbytes);
    p->ref.data = data + b;
    p->ref.nbytes = nbytes;
    p->begin = b;
    return TK_OK;
}

/* Parses one safetensors image and appends its tensors (tagged with shard) to st. */
static tk_status st_parse(tk_safetensors *st, const uint8_t *buf, size_t len, const char *file, int shard) {
    if (len < 8)
        return tk_fail(TK_ERR_FORMAT, "%s: %zu bytes is too small for a safetensors file (8-byte header length + JSON header)", file, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > (uint64_t)(len - 8))
        return tk_fail(TK_ERR_FORMAT, "%s: header length %llu exceeds the file size (%zu bytes): truncated or not a safetensors file",
                       file, (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER)
        return tk_fail(TK_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit",
                       file, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    if (hlen < 2 || buf[8] != '{')
        return tk_fail(TK_ERR_FORMAT, "%s: header does not start with a JSON object: not a safetensors file", file);
    if (memchr(buf + 8, 0, (size_t)hlen))
        return tk_fail(TK_ERR_FORMAT, "%s: header contains a NUL byte", file);
    /* parse a NUL-terminated copy: cJSON then never depends on its length handling */
    char *h = tk_strndup((const char *)buf + 8, (size_t)hlen);
    if (!h) return TK_ERR_NOMEM;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(h, &end, 0);
    if (!root) {
        long at = end && end >= h && end <= h + hlen ? (long)(end - h) : -1;
        free(h);
        return tk_fail(TK_ERR_FORMAT, "%s: header is not valid JSON (at byte %ld of %llu)", file, at, (unsigned long long)hlen);
    }
    for (const char *q = end; q && *q; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            long at = (long)(q - h);
            cJSON_Delete(root); free(h);
            return tk_fail(TK_ERR_FORMAT, "%s: unexpected bytes after the JSON header (at byte %ld)", file, at);
        }
    free(h);
    tk_status s = TK_OK;
    st_pending *pend = NULL;
    int64_t np = 0;
    if (!cJSON_IsObject(root)) { s = tk_fail(TK_ERR_FORMAT, "%s: header is not a JSON object", file); goto done; }
    int n = cJSON_GetArraySize(root);
    pend = tk_calloc((size_t)n + 1, sizeof *pend);
    if (!pend) { s = TK_ERR_NOMEM; goto done; }
    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_size = (uint64_t)(len - 8) - hlen;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        const char *key = e->string ? e->string : "";
        if (!strcmp(key, "__metadata__")) {
            if (!cJSON_IsObject(e)) { s = tk_fail(TK_ERR_FORMAT, "%s: __metadata__ is not an object", file); goto done; }
            const cJSON *m;
            cJSON_ArrayForEach(m, e) {
                if (!cJSON_IsString(m)) {
                    s = tk_fail(TK_ERR_FORMAT, "%s: __metadata__ value of '%.200s' is not a string", file, m->string ? m->string : "");
                    goto done;
                }
                if ((s = st_push_meta(st, m->string ? m->string : "", m->valuestring)) != TK_OK) goto done;
            }
            continue;
        }
        if (!*key) { s = tk_fail(TK_ERR_FORMAT, "%s: tensor with an empty name", file); goto done; }
        if ((s = st_parse_entry(e, file, key, data, data_size, &pend[np])) != TK_OK) goto done;
        pend[np].ref.name = tk_strdup(key);
        if (!pend[np].ref.name) { s = TK_ERR_NOMEM; goto done; }
        np++;
    }
    qsort(pend, (size_t)np, sizeof *pend, st_cmp_pending);
    if ((s = st_reserve(st, np)) != TK_OK) goto done;
    for (int64_t i = 0; i < np; i++) {
        st->t[st->n] = pend[i].ref;
        st->shard[st->n] = shard;
        st->n++;
        pend[i].ref.name = NULL; /* ownership moved */
    }
done:
    if (pend) for (int64_t i = 0; i < np; i++) free((char *)pend[i].ref.name);
    free(pend);
    cJSON_Delete(root);
    return s;
}

typedef struct { const char *name; int64_t i; } st_named;
static int st_cmp_named(const void *a, const void *b) {
    return strcmp(((const st_named *)a)->name, ((const st_named *)b)->name);
}

/* Builds the name index and rejects duplicate names (within or across shards). */
static tk_status st_index(tk_safetensors *st, const char *what) {
    st->by_name = tk_malloc(((size_t)st->n + 1) * sizeof *st->by_name);
    st_named *tmp = tk_malloc(((size_t)st->n + 1) * sizeof *tmp);
    if (!st->by_name || !tmp) { free(tmp); return TK_ERR_NOMEM; }
    for (int64_t i = 0; i < st->n; i++) { tmp[i].name = st->t[i].name; tmp[i].i = i; }
    qsort(tmp, (size_t)st->n, sizeof *tmp, st_cmp_named);
    for (int64_t i = 0; i < st->n; i++) st->by_name[i] = tmp[i].i;
    free(tmp);
    for (int64_t i = 1; i < st->n; i++) {
        const char *a = st->t[st->by_name[i - 1]].name, *b = st->t[st->by_name[i]].name;
        if (!strcmp(a, b)) {
            int sa = st->shard[st->by_name[i - 1]], sb = st->shard[st->by_name[i]];
            if (st->n_files > 1 && sa != sb)
                return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' appears in two shards (%s and %s)",
                               what, a, st->files[sa].path, st->files[sb].path);
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", what, a);
        }
    }
    return TK_OK;
}

tk_status tk_st_open_memory(const void *buf, size_t len, const char *name, tk_safetensors **out) {
    *out = NULL;
    if (!buf && len) return tk_fail(TK_ERR_ARG, "tk_st_open_memory: NULL buffer");
    if (!name) name = "<memory>";
    tk_safetensors *st = tk_calloc(1, sizeof *st);
    if (!st) return TK_ERR_NOMEM;
    tk_status s = st_parse(st, buf ? buf : "", len, name, 0);
    if (s == TK_OK) s = st_index(st, name);
    if (s != TK_OK) { tk_st_close(st); return s; }
    *out = st;
    return TK_OK;
}

static tk_status st_open_file(const char *path, tk_safetensors **out) {
    tk_safetensors *st = tk_calloc(1, sizeof *st);
    if (!st) return TK_ERR_NOMEM;
    st->files = tk_calloc(1, sizeof *st->files);
    if (!st->files) { free(st); return TK_ERR_NOMEM; }
    tk_status s = tk_map_file(path, &st->files[0]);
    if (s == TK_OK) {
        st->n_files = 1;
        s = st_parse(st, st->files[0].data, st->files[0].size, path, 0);
    }
    if (s == TK_OK) s = st_index(st, path);
    if (s != TK_OK) { tk_st_close(st); return s; }
    *out = st;
    return TK_OK;
}

/* Index lookup: position of name in st->by_name order, or -1. */
static int64_t st_lookup(const tk_safetensors *st, const char *name) {
    int64_t lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[st->by_name[mid]].name, name);
        if (!c) return st->by_name[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* A shard name from an index must stay inside the index's folder. */
static int st_shard_name_ok(const char *s) {
    if (!*s || s[0] == '/') return 0;
    for (const char *p = s; *p; ) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || n == 0) return 0;
        if (!q) break;
        p = q + 1;
    }
    return 1;
}

static tk_status st_open_index(const char *path, tk_safetensors **out) {
    char *text = NULL;
    size_t len = 0;
    tk_status s = tk_read_file(path, &text, &len);
    if (s != TK_OK) return s;
    if (len > ST_MAX_INDEX) { free(text); return tk_fail(TK_ERR_FORMAT, "%s: index file is larger than 100 MB", path); }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON", path);
    tk_safetensors *st = NULL;
    char *dcopy = NULL, **shards = NULL;
    int n_shards = 0;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(wm)) {
        s = tk_fail(TK_ERR_FORMAT, "%s: missing \"weight_map\" object", path);
        goto done;
    }
    int n_entries = cJSON_GetArraySize(wm);
    if (n_entries == 0) { s = tk_fail(TK_ERR_FORMAT, "%s: \"weight_map\" is empty", path); goto done; }
    shards = tk_calloc((size_t)n_entries, sizeof *shards);
    if (!shards) { s = TK_ERR_NOMEM; goto done; }
    /* distinct shard names, in order of first appearance */
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e)) {
            s = tk_fail(TK_ERR_FORMAT, "%s: weight_map entry '%.200s' is not a string", path, e->string ? e->string : "");
            goto done;
        }
        if (!st_shard_name_ok(e->valuestring)) {
            s = tk_fail(TK_ERR_FORMAT, "%s: weight_map entry '%.200s' names an invalid shard path '%.200s'",
                        path, e->string ? e->string : "", e->valuestring);
            goto done;
        }
        int k = 0;
        while (k < n_shards && strcmp(shards[k], e->valuestring)) k++;
        if (k == n_shards) shards[n_shards++] = e->valuestring;
    }
    st = tk_calloc(1, sizeof *st);
    if (!st) { s = TK_ERR_NOMEM; goto done; }
    st->files = tk_calloc((size_t)n_shards, sizeof *st->files);
    if (!st->files) { s = TK_ERR_NOMEM; goto done; }
    dcopy = tk_strdup(path);
    if (!dcopy) { s = TK_ERR_NOMEM; goto done; }
    const char *dir = dirname(dcopy);
    /* index-level metadata: keep string values (total_size is a number) */
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (cJSON_IsObject(im)) {
        const cJSON *m;
        cJSON_ArrayForEach(m, im)
            if (cJSON_IsString(m) && m->string && (s = st_push_meta(st, m->string, m->valuestring)) != TK_OK) goto done;
    }
    for (int k = 0; k < n_shards; k++) {
        tk_buf p = {0};
        if ((s = tk_buf_printf(&p, "%s/%s", dir, shards[k])) != TK_OK) { tk_buf_free(&p); goto done; }
        s = tk_map_file(p.data, &st->files[k]);
        tk_buf_free(&p);
        if (s != TK_OK) { s = tk_fail_ctx(s, "%s: shard '%s' listed in the index: ", path, shards[k]); goto done; }
        st->n_files = k + 1;
        if ((s = st_parse(st, st->files[k].data, st->files[k].size, st->files[k].path, k)) != TK_OK) goto done;
    }
    if ((s = st_index(st, path)) != TK_OK) goto done;
    cJSON_ArrayForEach(e, wm) {
        int64_t i = st_lookup(st, e->string);
        if (i < 0) {
            s = tk_fail(TK_ERR_NOT_FOUND, "%s: weight_map names tensor '%.200s' in '%s', but that shard has no such tensor",
                        path, e->string, e->valuestring);
            goto done;
        }
        if (strcmp(shards[st->shard[i]], e->valuestring)) {
            s = tk_fail(TK_ERR_FORMAT, "%s: weight_map puts tensor '%.200s' in '%s', but it is in '%s'",
                        path, e->string, e->valuestring, shards[st->shard[i]]);
            goto done;
        }
    }
done:
    free(dcopy);
    free(shards);
    cJSON_Delete(root);
    if (s != TK_OK) { tk_st_close(st); return s; }
    *out = st;
    return TK_OK;
}

static int st_ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

tk_status tk_st_open(const char *path, tk_safetensors **out) {
    *out = NULL;
    if (!path) return tk_fail(TK_ERR_ARG, "tk_st_open: NULL path");
    struct stat sb;
    if (stat(path, &sb) != 0) return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        tk_buf p = {0};
        tk_status s = tk_buf_printf(&p, "%s/model.safetensors", path);
        if (s != TK_OK) { tk_buf_free(&p); return s; }
        if (access(p.data, F_OK) == 0) {
            s = st_open_file(p.data, out);
            tk_buf_free(&p);
            return s;
        }
        p.len = 0;
        if ((s = tk_buf_printf(&p, "%s/model.safetensors.index.json", path)) != TK_OK) { tk_buf_free(&p); return s; }
        if (access(p.data, F_OK) == 0) {
            s = st_open_index(p.data, out);
            tk_buf_free(&p);
            return s;
        }
        tk_buf_free(&p);
        return tk_fail(TK_ERR_NOT_FOUND, "%s: folder has neither model.safetensors nor model.safetensors.index.json", path);
    }
    if (st_ends_with(path, ".json")) return st_open_index(path, out);
    return st_open_file(path, out);
}

int64_t tk_st_n_tensors(const tk_safetensors *st) { return st ? st->n : 0; }

const tk_tensor_ref *tk_st_tensor(const tk_safetensors *st, int64_t i) {
    return st && i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const tk_tensor_ref *tk_st_find(const tk_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    int64_t i = st_lookup(st, name);
    return i >= 0 ? &st->t[i] : NULL;
}

const char *tk_st_metadata(const tk_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int64_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
    return NULL;
}

/* ---------------------------------------------------------------- writer */

typedef struct { char *name; tk_dtype dt; int n_dims; int64_t ne[TK_MAX_DIMS]; void *data; size_t nbytes; bool borrowed; } st_wtensor;

struct tk_st_writer {
    st_wtensor *t;
    size_t n, cap;
    char **meta; /* key, value pairs */
    size_t n_meta, cap_meta;
};

tk_st_writer *tk_st_writer_new(void) { return tk_calloc(1, sizeof(tk_st_writer)); }

void tk_st_writer_free(tk_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) { free(w->t[i].name); if (!w->t[i].borrowed) free(w->t[i].data); }
    for (size_t i = 0; i < 2 * w->n_meta; i++) free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w);
}

static tk_status st_add(tk_st_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data, bool copy) {
    if (!w || !name || !*name) return tk_fail(TK_ERR_ARG, "tk_st_add: missing writer or tensor name");
    if (!strcmp(name, "__metadata__")) return tk_fail(TK_ERR_ARG, "tk_st_add: '__metadata__' is reserved");
    if (!st_dtype_to_name(dtype))
        return tk_fail(TK_ERR_UNSUPPORTED, "tk_st_add: tensor '%s': dtype %s cannot be stored in safetensors", name, tk_dtype_name(dtype));
    if (n_dims < 0 || n_dims > TK_MAX_DIMS || (n_dims > 0 && !ne))
        return tk_fail(TK_ERR_ARG, "tk_st_add: tensor '%s': %d dimensions (0..%d allowed)", name, n_dims, TK_MAX_DIMS);
    size_t nel = 1, nbytes;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] < 0) return tk_fail(TK_ERR_ARG, "tk_st_add: tensor '%s': negative dimension", name);
        if (!tk_mul_ok(nel, (size_t)ne[i], &nel) || nel > (size_t)INT64_MAX)
            return tk_fail(TK_ERR_ARG, "tk_st_add: tensor '%s': element count overflows", name);
    }
    if (tk_dtype_nbytes(dtype, (int64_t)nel, &nbytes) != TK_OK)
        return tk_fail(TK_ERR_ARG, "tk_st_add: tensor '%s': byte size overflows", name);
    if (nbytes && !data) return tk_fail(TK_ERR_ARG, "tk_st_add: tensor '%s': NULL data", name);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return tk_fail(TK_ERR_ARG, "tk_st_add: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_wtensor *t = tk_realloc(w->t, cap * sizeof *t);
        if (!t) return TK_ERR_NOMEM;
        w->t = t;
        w->cap = cap;
    }
    st_wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = tk_strdup(name);
    t->borrowed = !copy;
    t->data = copy ? tk_malloc(nbytes) : (void *)data;
    if (!t->name || (copy && !t->data)) { free(t->name); if (copy) free(t->data); return TK_ERR_NOMEM; }
    if (copy && nbytes) memcpy(t->data, data, nbytes);
    t->dt = dtype;
    t->n_dims = n_dims;
    for (int i = 0; i < TK_MAX_DIMS; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    t->nbytes = nbytes;
    w->n++;
    return TK_OK;
}

tk_status tk_st_add(tk_st_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data) {
    return st_add(w, name, dtype, n_dims, ne, data, true);
}

tk_status tk_st_add_ref(tk_st_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data) {
    return st_add(w, name, dtype, n_dims, ne, data, false);
}

tk_status tk_st_set_metadata(tk_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return tk_fail(TK_ERR_ARG, "tk_st_set_metadata: NULL argument");
    for (size_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[2 * i], key)) {
            char *v = tk_strdup(value);
            if (!v) return TK_ERR_NOMEM;
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return TK_OK;
        }
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **m = tk_realloc(w->meta, cap * 2 * sizeof *m);
        if (!m) return TK_ERR_NOMEM;
        w->meta = m;
        w->cap_meta = cap;
    }
    char *k = tk_strdup(key), *v = tk_strdup(value);
    if (!k || !v) { free(k); free(v); return TK_ERR_NOMEM; }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return TK_OK;
}

/* JSON string literal with the escapes RFC 8259 requires. */
static tk_status st_json_str(tk_buf *b, const char *s) {
    tk_status r = tk_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; r == TK_OK && *p; p++) {
        if (*p == '"') r = tk_buf_append(b, "\\\"", 2);
        else if (*p == '\\') r = tk_buf_append(b, "\\\\", 2);
        else if (*p < 0x20) r = tk_buf_printf(b, "\\u%04x", *p);
        else r = tk_buf_append(b, p, 1);
    }
    return r == TK_OK ? tk_buf_append(b, "\"", 1) : r;
}

static int st_cmp_wtensor(const void *a, const void *b) {
    return strcmp(((const st_wtensor *)a)->name, ((const st_wtensor *)b)->name);
}

static tk_status st_write_all(int fd, const void *buf, size_t len, const char *tmp) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = tk_io_write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return tk_fail(TK_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return TK_OK;
}

tk_status tk_st_write(tk_st_writer *w, const char *path) {
    if (!w || !path) return tk_fail(TK_ERR_ARG, "tk_st_write: NULL argument");
    qsort(w->t, w->n, sizeof *w->t, st_cmp_wtensor);
    tk_buf h = {0};
    tk_status s = tk_buf_append(&h, "{", 1);
    int first = 1;
    if (w->n_meta && s == TK_OK) {
        s = tk_buf_printf(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta && s == TK_OK; i++) {
            if (i) s = tk_buf_append(&h, ",", 1);
            if (s == TK_OK) s = st_json_str(&h, w->meta[2 * i]);
            if (s == TK_OK) s = tk_buf_append(&h, ":", 1);
            if (s == TK_OK) s = st_json_str(&h, w->meta[2 * i + 1]);
        }
        if (s == TK_OK) s = tk_buf_append(&h, "}", 1);
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n && s == TK_OK; i++) {
        const st_wtensor *t = &w->t[i];
        if (!first) s = tk_buf_append(&h, ",", 1);
        first = 0;
        if (s == TK_OK) s = st_json_str(&h, t->name);
        if (s == TK_OK) s = tk_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_to_name(t->dt));
        for (int d = t->n_dims - 1; d >= 0 && s == TK_OK; d--) /* ggml order -> torch order */
            s = tk_buf_printf(&h, "%s%lld", d == t->n_dims - 1 ? "" : ",", (long long)t->ne[d]);
        if (s == TK_OK)
            s = tk_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                              (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    if (s == TK_OK) s = tk_buf_append(&h, "}", 1);
    while (s == TK_OK && h.len % 8) s = tk_buf_append(&h, " ", 1); /* data section starts 8-aligned */
    if (s != TK_OK) { tk_buf_free(&h); return s; }

    /* stream to a temp file in the same folder, then rename: no partial file on failure,
     * and no second in-memory copy of the tensor data */
    tk_buf tmp = {0};
    if (!(tmp.data = tk_tmp_path(path))) { tk_buf_free(&h); return TK_ERR_NOMEM; } /* removes stale temporaries too */
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = tk_fail(TK_ERR_IO, "%s: cannot create: %s", tmp.data, strerror(errno));
        tk_buf_free(&h); tk_buf_free(&tmp);
        return s;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    s = st_write_all(fd, len8, 8, tmp.data);
    if (s == TK_OK) s = st_write_all(fd, h.data, h.len, tmp.data);
    for (size_t i = 0; i < w->n && s == TK_OK; i++) s = st_write_all(fd, w->t[i].data, w->t[i].nbytes, tmp.data);
    tk_buf_free(&h);
    if (s == TK_OK && tk_io_fsync(fd) != 0) s = tk_fail(TK_ERR_IO, "%s: fsync failed: %s", tmp.data, strerror(errno));
    if (close(fd) != 0 && s == TK_OK) s = tk_fail(TK_ERR_IO, "%s: close failed: %s", tmp.data, strerror(errno));
    if (s == TK_OK && tk_io_rename(tmp.data, path) != 0) s = tk_fail(TK_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (s != TK_OK) { unlink(tmp.data); tk_buf_free(&tmp); return s; }
    tk_buf_free(&tmp);
    char *dcopy = tk_strdup(path); /* make the rename itself durable */
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(dcopy);
    }
    return TK_OK;
}
