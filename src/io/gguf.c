/* GGUF v2/v3 reader and v3 writer.
 *
 * Layout (ggml docs/gguf.md), all little-endian:
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x { string key, u32 value_type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to `general.alignment` (default 32), then the tensor data; each tensor's
 *   offset is relative to the start of that data section and is itself aligned.
 *   string = u64 length + bytes (no NUL); array = u32 elem_type, u64 count, elements.
 *
 * The reader never trusts a number from the file: every count is checked against the
 * bytes that remain before anything is allocated for it, every length/offset with
 * overflow-safe arithmetic, and any failure frees everything (no partial handle).
 * Strings (keys, string values, every element of string arrays, tensor names) are
 * copied once at open into one NUL-terminated arena, and keys and tensor names are
 * hashed, so lookups and tk_gguf_arr_str are O(1). Numeric arrays stay in the file. */
#include "takumi/gguf.h"
#include "core/core.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 8 /* nested arrays deeper than this are rejected (no real file has any) */
#define GGUF_MAX_NAME 64       /* llama.cpp's GGML_MAX_NAME: the writer keeps names shorter */

/* ---------------------------------------------------------------- types */

static const struct { uint32_t ggml; tk_dtype dt; } k_ggml_types[] = {
    {0, TK_F32},   {1, TK_F16},   {2, TK_Q4_0},  {3, TK_Q4_1},  {6, TK_Q5_0},  {7, TK_Q5_1},
    {8, TK_Q8_0},  {9, TK_Q8_1},  {10, TK_Q2_K}, {11, TK_Q3_K}, {12, TK_Q4_K}, {13, TK_Q5_K},
    {14, TK_Q6_K}, {15, TK_Q8_K}, {24, TK_I8},   {25, TK_I16},  {26, TK_I32},  {27, TK_I64},
    {28, TK_F64},  {30, TK_BF16},
};

/* ggml types takumi cannot decode, named in the error message. */
static const char *ggml_type_name(uint32_t t) {
    static const char *names[] = {
        [4] = "q4_2 (removed from ggml)", [5] = "q4_3 (removed from ggml)", [16] = "iq2_xxs", [17] = "iq2_xs",
        [18] = "iq3_xxs", [19] = "iq1_s", [20] = "iq4_nl", [21] = "iq3_s", [22] = "iq2_s", [23] = "iq4_xs",
        [29] = "iq1_m", [31] = "q4_0_4_4 (removed)", [32] = "q4_0_4_8 (removed)", [33] = "q4_0_8_8 (removed)",
        [34] = "tq1_0", [35] = "tq2_0", [36] = "iq4_nl_4_4 (removed)", [37] = "iq4_nl_4_8 (removed)",
        [38] = "iq4_nl_8_8 (removed)", [39] = "mxfp4",
    };
    return t < sizeof names / sizeof names[0] && names[t] ? names[t] : "unknown";
}

bool tk_gguf_dtype_from_ggml(uint32_t ggml_type, tk_dtype *out) {
    for (size_t i = 0; i < sizeof k_ggml_types / sizeof k_ggml_types[0]; i++)
        if (k_ggml_types[i].ggml == ggml_type) { if (out) *out = k_ggml_types[i].dt; return true; }
    return false;
}

bool tk_gguf_dtype_to_ggml(tk_dtype t, uint32_t *out) {
    for (size_t i = 0; i < sizeof k_ggml_types / sizeof k_ggml_types[0]; i++)
        if (k_ggml_types[i].dt == t) { if (out) *out = k_ggml_types[i].ggml; return true; }
    return false;
}

static const char *value_type_name(uint32_t t) {
    static const char *n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return t < 13 ? n[t] : "?";
}

/* Size of a fixed-size value type; 0 for STRING/ARRAY and unknown types. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case TK_GGUF_UINT8: case TK_GGUF_INT8: case TK_GGUF_BOOL: return 1;
    case TK_GGUF_UINT16: case TK_GGUF_INT16: return 2;
    case TK_GGUF_UINT32: case TK_GGUF_INT32: case TK_GGUF_FLOAT32: return 4;
    case TK_GGUF_UINT64: case TK_GGUF_INT64: case TK_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static bool is_int_type(uint32_t t) {
    return t == TK_GGUF_UINT8 || t == TK_GGUF_INT8 || t == TK_GGUF_UINT16 || t == TK_GGUF_INT16 ||
           t == TK_GGUF_UINT32 || t == TK_GGUF_INT32 || t == TK_GGUF_UINT64 || t == TK_GGUF_INT64 ||
           t == TK_GGUF_BOOL;
}

/* Decodes a fixed-size integer value at p; false when it does not fit in int64. */
static bool decode_i64(uint32_t t, const uint8_t *p, int64_t *out) {
    switch (t) {
    case TK_GGUF_UINT8: *out = p[0]; return true;
    case TK_GGUF_BOOL: *out = p[0] != 0; return true;
    case TK_GGUF_INT8: *out = (int8_t)p[0]; return true;
    case TK_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case TK_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case TK_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); *out = v; return true; }
    case TK_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *out = v; return true; }
    case TK_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); *out = v; return true; }
    case TK_GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
        return true;
    }
    default: return false;
    }
}

static bool decode_f64(uint32_t t, const uint8_t *p, double *out) {
    if (t == TK_GGUF_FLOAT32) { float v; memcpy(&v, p, 4); *out = v; return true; }
    if (t == TK_GGUF_FLOAT64) { memcpy(out, p, 8); return true; }
    int64_t i;
    if (!decode_i64(t, p, &i)) {
        if (t == TK_GGUF_UINT64) { uint64_t v; memcpy(&v, p, 8); *out = (double)v; return true; }
        return false;
    }
    *out = (double)i;
    return true;
}

/* ---------------------------------------------------------------- handle */

typedef struct gg_kv {
    size_t key;               /* arena offset (NUL-terminated) */
    size_t key_len;
    uint32_t type;
    const uint8_t *val;       /* encoded value in the image (after the type tag) */
    size_t val_len;
    size_t str, str_len;      /* STRING: arena offset and length */
    uint32_t elem_type;       /* ARRAY */
    int64_t n;                /* ARRAY: element count */
    const uint8_t *elems;     /* ARRAY of fixed-size elements: first element */
    size_t *offs;             /* ARRAY of STRING: n+1 arena offsets (element i = [offs[i], offs[i+1]-1)) */
} gg_kv;

struct tk_gguf {
    char *path;
    tk_mapped_file mf;
    const uint8_t *data;
    size_t size;
    uint32_t version;
    int64_t n_kv, n_tensors;
    gg_kv *kv;
    tk_tensor_ref *t;
    size_t *t_name;           /* arena offsets of tensor names (until the final fix-up) */
    tk_buf arena;
    int64_t *kv_hash, *t_hash; /* open addressing: slot -> index, -1 empty */
    size_t kv_hash_cap, t_hash_cap;
    size_t alignment, data_offset;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 1099511628211ULL; }
    return h;
}

static size_t hash_cap_for(int64_t n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    return cap;
}

/* Looks up name in a table whose entries name (arena offset, length) through get; -1 if absent. */
typedef const char *(*name_of_fn)(const tk_gguf *g, int64_t i, size_t *len);

static const char *kv_name(const tk_gguf *g, int64_t i, size_t *len) {
    *len = g->kv[i].key_len;
    return g->arena.data + g->kv[i].key;
}
static const char *t_name(const tk_gguf *g, int64_t i, size_t *len) {
    const char *s = g->arena.data + g->t_name[i];
    *len = strlen(s);
    return s;
}

static int64_t hash_find(const tk_gguf *g, const int64_t *tab, size_t cap, name_of_fn get, const char *s, size_t n) {
    if (!tab) return -1;
    size_t slot = (size_t)hash_bytes(s, n) & (cap - 1);
    for (;;) {
        int64_t idx = tab[slot];
        if (idx < 0) return -1;
        size_t len;
        const char *k = get(g, idx, &len);
        if (len == n && memcmp(k, s, n) == 0) return idx;
        slot = (slot + 1) & (cap - 1);
    }
}

/* Inserts index idx; returns the index already holding the same name, or -1. */
static int64_t hash_insert(const tk_gguf *g, int64_t *tab, size_t cap, name_of_fn get, int64_t idx) {
    size_t n;
    const char *s = get(g, idx, &n);
    size_t slot = (size_t)hash_bytes(s, n) & (cap - 1);
    for (;;) {
        int64_t cur = tab[slot];
        if (cur < 0) { tab[slot] = idx; return -1; }
        size_t len;
        const char *k = get(g, cur, &len);
        if (len == n && memcmp(k, s, n) == 0) return cur;
        slot = (slot + 1) & (cap - 1);
    }
}

void tk_gguf_close(tk_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].offs);
    free(g->kv);
    free(g->t);
    free(g->t_name);
    free(g->kv_hash);
    free(g->t_hash);
    tk_buf_free(&g->arena);
    tk_unmap_file(&g->mf);
    free(g->path);
    free(g);
}

/* ---------------------------------------------------------------- parsing */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
} rd;

static tk_status need(rd *r, size_t n, const char *what) {
    if (n > r->len - r->pos)
        return tk_fail(TK_ERR_FORMAT, "truncated: %s at offset %zu needs %zu bytes but only %zu remain", what,
                       r->pos, n, r->len - r->pos);
    return TK_OK;
}
static tk_status rd_u32(rd *r, uint32_t *v, const char *what) {
    tk_status st = need(r, 4, what);
    if (st) return st;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return TK_OK;
}
static tk_status rd_u64(rd *r, uint64_t *v, const char *what) {
    tk_status st = need(r, 8, what);
    if (st) return st;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return TK_OK;
}

/* Reads a string: returns a pointer into the image and its length (bounds-checked). */
static tk_status rd_str(rd *r, const uint8_t **s, size_t *n, const char *what) {
    uint64_t len;
    tk_status st = rd_u64(r, &len, what);
    if (st) return st;
    if (len > r->len - r->pos)
        return tk_fail(TK_ERR_FORMAT, "%s length %llu at offset %zu extends past the end of the data (%zu bytes remain)",
                       what, (unsigned long long)len, r->pos - 8, r->len - r->pos);
    *s = r->p + r->pos;
    *n = (size_t)len;
    r->pos += (size_t)len;
    return TK_OK;
}

/* Appends s[0..n) + NUL to the arena; *off gets its offset. */
static tk_status arena_add(tk_gguf *g, const uint8_t *s, size_t n, size_t *off) {
    *off = g->arena.len;
    tk_status st = tk_buf_append(&g->arena, s, n);
    if (st) return st;
    /* tk_buf_append keeps a NUL after the data; make it part of the arena. */
    g->arena.len++;
    return TK_OK;
}

/* Skips (validates) one value of type t, recursing into nested arrays. */
static tk_status skip_value(rd *r, uint32_t t, int depth) {
    size_t sz = scalar_size(t);
    if (sz) { tk_status st = need(r, sz, "value"); if (!st) r->pos += sz; return st; }
    if (t == TK_GGUF_STRING) { const uint8_t *s; size_t n; return rd_str(r, &s, &n, "string"); }
    if (t != TK_GGUF_ARRAY) return tk_fail(TK_ERR_FORMAT, "unknown value type %u", t);
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return tk_fail(TK_ERR_FORMAT, "arrays nested deeper than %d levels", GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t n;
    tk_status st = rd_u32(r, &et, "array element type");
    if (!st) st = rd_u64(r, &n, "array length");
    if (st) return st;
    if (et > TK_GGUF_FLOAT64) return tk_fail(TK_ERR_FORMAT, "array of unknown element type %u", et);
    size_t esz = scalar_size(et), min = esz ? esz : et == TK_GGUF_STRING ? 8 : 12;
    if (n > (r->len - r->pos) / min)
        return tk_fail(TK_ERR_FORMAT, "array of %llu %s elements cannot fit in the %zu bytes that remain",
                       (unsigned long long)n, value_type_name(et), r->len - r->pos);
    if (esz) { r->pos += (size_t)n * esz; return TK_OK; }
    for (uint64_t i = 0; i < n; i++) {
        st = skip_value(r, et, depth + 1); /* the top level names the element; inner levels add nothing */
        if (st) return st;
    }
    return TK_OK;
}

static tk_status parse_kv(tk_gguf *g, rd *r, gg_kv *kv) {
    const uint8_t *key;
    size_t klen;
    size_t koff;
    tk_status st = rd_str(r, &key, &klen, "key");
    if (st) return st;
    /* a key is a C string: one with a NUL byte would name another key in every lookup */
    if (memchr(key, 0, klen)) return tk_fail(TK_ERR_FORMAT, "key contains a NUL byte");
    if ((st = arena_add(g, key, klen, &koff))) return st;
    kv->key = koff;
    kv->key_len = klen;
    if ((st = rd_u32(r, &kv->type, "value type"))) return st;
    if (kv->type > TK_GGUF_FLOAT64) return tk_fail(TK_ERR_FORMAT, "unknown value type %u", kv->type);
    kv->val = r->p + r->pos;
    size_t start = r->pos;
    if (kv->type == TK_GGUF_STRING) {
        const uint8_t *s;
        if ((st = rd_str(r, &s, &kv->str_len, "string value"))) return st;
        if ((st = arena_add(g, s, kv->str_len, &kv->str))) return st;
    } else if (kv->type == TK_GGUF_ARRAY) {
        uint64_t n;
        if ((st = rd_u32(r, &kv->elem_type, "array element type"))) return st;
        if ((st = rd_u64(r, &n, "array length"))) return st;
        if (kv->elem_type > TK_GGUF_FLOAT64)
            return tk_fail(TK_ERR_FORMAT, "array of unknown element type %u", kv->elem_type);
        size_t esz = scalar_size(kv->elem_type);
        size_t min = esz ? esz : kv->elem_type == TK_GGUF_STRING ? 8 : 12;
        if (n > (r->len - r->pos) / min)
            return tk_fail(TK_ERR_FORMAT, "array of %llu %s elements cannot fit in the %zu bytes that remain",
                           (unsigned long long)n, value_type_name(kv->elem_type), r->len - r->pos);
        kv->n = (int64_t)n;
        kv->elems = r->p + r->pos;
        if (esz) {
            r->pos += (size_t)n * esz;
        } else if (kv->elem_type == TK_GGUF_STRING) {
            kv->offs = tk_malloc(((size_t)n + 1) * sizeof(size_t));
            if (!kv->offs) return TK_ERR_NOMEM;
            for (uint64_t i = 0; i < n; i++) {
                const uint8_t *s;
                size_t len;
                if ((st = rd_str(r, &s, &len, "string element")))
                    return tk_fail_ctx(st, "element %llu: ", (unsigned long long)i);
                if ((st = arena_add(g, s, len, &kv->offs[i]))) return st;
            }
            kv->offs[n] = g->arena.len;
        } else {
            for (uint64_t i = 0; i < n; i++) {
                if ((st = skip_value(r, TK_GGUF_ARRAY, 1)))
                    return tk_fail_ctx(st, "element %llu: ", (unsigned long long)i);
            }
        }
    } else {
        size_t sz = scalar_size(kv->type);
        if ((st = need(r, sz, "value"))) return st;
        r->pos += sz;
    }
    kv->val_len = r->pos - start;
    return TK_OK;
}

static tk_status parse_tensor(tk_gguf *g, rd *r, int64_t i, uint64_t *offset) {
    tk_tensor_ref *t = &g->t[i];
    const uint8_t *name;
    size_t nlen;
    tk_status st = rd_str(r, &name, &nlen, "tensor name");
    if (st) return st;
    if (memchr(name, 0, nlen)) return tk_fail(TK_ERR_FORMAT, "tensor name contains a NUL byte");
    if ((st = arena_add(g, name, nlen, &g->t_name[i]))) return st;
    const char *nm = g->arena.data + g->t_name[i];
    uint32_t n_dims, type;
    if ((st = rd_u32(r, &n_dims, "tensor n_dims"))) return tk_fail_ctx(st, "tensor '%s': ", nm);
    if (n_dims > TK_MAX_DIMS)
        return tk_fail(TK_ERR_FORMAT, "tensor '%s': %u dimensions (at most %d allowed)", nm, n_dims, TK_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < TK_MAX_DIMS; d++) t->ne[d] = 1;
    int64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((st = rd_u64(r, &ne, "tensor dimension"))) return tk_fail_ctx(st, "tensor '%s': ", nm);
        if (ne > (uint64_t)INT64_MAX)
            return tk_fail(TK_ERR_FORMAT, "tensor '%s': dimension %u is %llu (too large)", nm, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        if (__builtin_mul_overflow(nel, (int64_t)ne, &nel))
            return tk_fail(TK_ERR_FORMAT, "tensor '%s': element count overflows (shape product too large)", nm);
    }
    if ((st = rd_u32(r, &type, "tensor type"))) return tk_fail_ctx(st, "tensor '%s': ", nm);
    if (!tk_gguf_dtype_from_ggml(type, &t->dtype))
        return tk_fail(TK_ERR_UNSUPPORTED, "tensor '%s': unsupported ggml type %u (%s)", nm, type, ggml_type_name(type));
    int64_t blk = tk_dtype_block_elems(t->dtype);
    if (t->ne[0] % blk)
        return tk_fail(TK_ERR_FORMAT, "tensor '%s': row of %lld elements is not a whole number of %s blocks (%lld)", nm,
                       (long long)t->ne[0], tk_dtype_name(t->dtype), (long long)blk);
    if (tk_dtype_nbytes(t->dtype, nel, &t->nbytes) != TK_OK)
        return tk_fail(TK_ERR_FORMAT, "tensor '%s': byte size of %lld %s elements overflows", nm, (long long)nel,
                       tk_dtype_name(t->dtype));
    if ((st = rd_u64(r, offset, "tensor offset"))) return tk_fail_ctx(st, "tensor '%s': ", nm);
    if (*offset % g->alignment)
        return tk_fail(TK_ERR_FORMAT, "tensor '%s': data offset %llu is not a multiple of the alignment %zu", nm,
                       (unsigned long long)*offset, g->alignment);
    return TK_OK;
}

static tk_status parse(tk_gguf *g) {
    rd r = {g->data, g->size, 0};
    tk_status st;
    if (g->size < 4) return tk_fail(TK_ERR_FORMAT, "too short to be a GGUF file (%zu bytes)", g->size);
    if (memcmp(g->data, "GGUF", 4) != 0) {
        const uint8_t *m = g->data;
        return tk_fail(TK_ERR_FORMAT, "not a GGUF file (magic bytes %02x %02x %02x %02x, expected 'GGUF')", m[0], m[1], m[2], m[3]);
    }
    r.pos = 4;
    if ((st = rd_u32(&r, &g->version, "version"))) return st;
    if (g->version == 1) return tk_fail(TK_ERR_UNSUPPORTED, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return tk_fail(TK_ERR_UNSUPPORTED, "big-endian GGUF is not supported");
    if (g->version != 2 && g->version != 3)
        return tk_fail(TK_ERR_UNSUPPORTED, "unsupported GGUF version %u (only versions 2 and 3)", g->version);
    uint64_t nt, nkv;
    if ((st = rd_u64(&r, &nt, "tensor count"))) return st;
    if ((st = rd_u64(&r, &nkv, "key/value count"))) return st;
    /* Smallest possible entries: a kv is 8 (key length) + 4 (type) + 1 byte; a tensor
     * info is 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset). */
    size_t left = g->size - r.pos;
    if (nkv > left / 13)
        return tk_fail(TK_ERR_FORMAT, "key/value count %llu cannot fit in the %zu bytes that remain (truncated or corrupt file)",
                       (unsigned long long)nkv, left);
    if (nt > left / 24)
        return tk_fail(TK_ERR_FORMAT, "tensor count %llu cannot fit in the %zu bytes that remain (truncated or corrupt file)",
                       (unsigned long long)nt, left);
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;

    g->kv = tk_calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->kv_hash_cap = hash_cap_for(g->n_kv);
    g->kv_hash = tk_malloc(g->kv_hash_cap * sizeof(int64_t));
    if (!g->kv || !g->kv_hash) return TK_ERR_NOMEM;
    memset(g->kv_hash, 0xff, g->kv_hash_cap * sizeof(int64_t));
    for (int64_t i = 0; i < g->n_kv; i++) {
        g->kv[i].key = SIZE_MAX; /* "key not read yet", for the message below */
        if ((st = parse_kv(g, &r, &g->kv[i]))) {
            if (g->kv[i].key == SIZE_MAX) return tk_fail_ctx(st, "key/value #%lld: ", (long long)i);
            size_t kl = g->kv[i].key_len;
            return tk_fail_ctx(st, "key/value #%lld '%.*s%s': ", (long long)i, (int)(kl > 200 ? 200 : kl),
                               g->arena.data + g->kv[i].key, kl > 200 ? "..." : "");
        }
        int64_t dup = hash_insert(g, g->kv_hash, g->kv_hash_cap, kv_name, i);
        if (dup >= 0)
            return tk_fail(TK_ERR_FORMAT, "duplicate key '%s' (entries #%lld and #%lld)", g->arena.data + g->kv[i].key,
                           (long long)dup, (long long)i);
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = hash_find(g, g->kv_hash, g->kv_hash_cap, kv_name, "general.alignment", 17);
    if (ai >= 0) {
        const gg_kv *kv = &g->kv[ai];
        int64_t a;
        if (!is_int_type(kv->type) || kv->type == TK_GGUF_BOOL || !decode_i64(kv->type, kv->val, &a))
            return tk_fail(TK_ERR_FORMAT, "general.alignment has type %s, expected an unsigned integer", value_type_name(kv->type));
        if (a <= 0 || (a & (a - 1)) != 0)
            return tk_fail(TK_ERR_FORMAT, "general.alignment is %lld, not a power of two", (long long)a);
        if ((uint64_t)a > SIZE_MAX / 2) return tk_fail(TK_ERR_FORMAT, "general.alignment %lld is too large", (long long)a);
        g->alignment = (size_t)a;
    }

    g->t = tk_calloc(nt ? nt : 1, sizeof *g->t);
    g->t_name = tk_calloc(nt ? nt : 1, sizeof *g->t_name);
    uint64_t *offsets = tk_calloc(nt ? nt : 1, sizeof *offsets);
    g->t_hash_cap = hash_cap_for(g->n_tensors);
    g->t_hash = tk_malloc(g->t_hash_cap * sizeof(int64_t));
    if (!g->t || !g->t_name || !offsets || !g->t_hash) { free(offsets); return TK_ERR_NOMEM; }
    memset(g->t_hash, 0xff, g->t_hash_cap * sizeof(int64_t));
    for (int64_t i = 0; i < g->n_tensors; i++) {
        g->t_name[i] = SIZE_MAX; /* "name not read yet": messages after it name the tensor themselves */
        if ((st = parse_tensor(g, &r, i, &offsets[i]))) {
            free(offsets);
            return g->t_name[i] == SIZE_MAX ? tk_fail_ctx(st, "tensor info #%lld: ", (long long)i) : st;
        }
        int64_t dup = hash_insert(g, g->t_hash, g->t_hash_cap, t_name, i);
        if (dup >= 0) {
            free(offsets);
            return tk_fail(TK_ERR_FORMAT, "duplicate tensor name '%s' (tensor infos #%lld and #%lld)",
                           g->arena.data + g->t_name[i], (long long)dup, (long long)i);
        }
    }

    /* The data section starts at the next multiple of the alignment. */
    size_t ds;
    if (!tk_add_ok(r.pos, g->alignment - 1, &ds)) { free(offsets); return tk_fail(TK_ERR_FORMAT, "data offset overflows"); }
    ds -= ds % g->alignment;
    g->data_offset = ds;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        tk_tensor_ref *t = &g->t[i];
        size_t start, end;
        const char *nm = g->arena.data + g->t_name[i];
        if (offsets[i] > SIZE_MAX || !tk_add_ok(ds, (size_t)offsets[i], &start) || start > g->size) {
            tk_status e = tk_fail(TK_ERR_FORMAT, "tensor '%s' data offset %llu (+ data section start %zu) is past the end of file (size %zu)",
                                  nm, (unsigned long long)offsets[i], ds, g->size);
            free(offsets);
            return e;
        }
        if (!tk_add_ok(start, t->nbytes, &end) || end > g->size) {
            tk_status e = tk_fail(TK_ERR_FORMAT, "tensor '%s' data [%zu, %llu) extends past end of file (size %zu)", nm, start,
                                  (unsigned long long)start + (unsigned long long)t->nbytes, g->size);
            free(offsets);
            return e;
        }
        t->data = g->data + start;
    }
    free(offsets);

    /* The arena no longer grows: resolve names to pointers. */
    for (int64_t i = 0; i < g->n_tensors; i++) g->t[i].name = g->arena.data + g->t_name[i];
    return TK_OK;
}

static tk_status open_image(const uint8_t *buf, size_t len, const char *name, tk_mapped_file *mf, tk_gguf **out) {
    tk_gguf *g = tk_calloc(1, sizeof *g);
    if (!g) { if (mf) tk_unmap_file(mf); return TK_ERR_NOMEM; }
    if (mf) g->mf = *mf;
    g->data = buf;
    g->size = len;
    g->path = tk_strdup(name ? name : "<memory>");
    tk_status st = g->path ? parse(g) : TK_ERR_NOMEM;
    if (st) {
        tk_fail_ctx(st, "%s: ", name ? name : "<memory>");
        tk_gguf_close(g);
        return st;
    }
    *out = g;
    return TK_OK;
}

tk_status tk_gguf_open(const char *path, tk_gguf **out) {
    *out = NULL;
    if (!path) return tk_fail(TK_ERR_ARG, "tk_gguf_open: NULL path");
    tk_mapped_file mf;
    tk_status st = tk_map_file(path, &mf);
    if (st) return st;
    return open_image(mf.data, mf.size, path, &mf, out);
}

tk_status tk_gguf_open_memory(const void *buf, size_t len, const char *name, tk_gguf **out) {
    *out = NULL;
    if (!buf && len) return tk_fail(TK_ERR_ARG, "tk_gguf_open_memory: NULL buffer");
    return open_image(buf ? buf : (const uint8_t *)"", len, name, NULL, out);
}

/* ---------------------------------------------------------------- queries */

uint32_t tk_gguf_version(const tk_gguf *g) { return g->version; }
const char *tk_gguf_path(const tk_gguf *g) { return g->path; }
int64_t tk_gguf_n_kv(const tk_gguf *g) { return g->n_kv; }
const char *tk_gguf_kv_key(const tk_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->arena.data + g->kv[i].key : NULL;
}
tk_gguf_type tk_gguf_kv_type(const tk_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? (tk_gguf_type)g->kv[i].type : (tk_gguf_type)-1;
}
int64_t tk_gguf_find_key(const tk_gguf *g, const char *key) {
    return key ? hash_find(g, g->kv_hash, g->kv_hash_cap, kv_name, key, strlen(key)) : -1;
}
static const gg_kv *find(const tk_gguf *g, const char *key) {
    int64_t i = tk_gguf_find_key(g, key);
    return i >= 0 ? &g->kv[i] : NULL;
}

bool tk_gguf_get_i64(const tk_gguf *g, const char *key, int64_t *out) {
    const gg_kv *kv = find(g, key);
    int64_t v;
    if (!kv || !is_int_type(kv->type) || !decode_i64(kv->type, kv->val, &v)) return false;
    if (out) *out = v;
    return true;
}
bool tk_gguf_get_u64(const tk_gguf *g, const char *key, uint64_t *out) {
    const gg_kv *kv = find(g, key);
    if (!kv || !is_int_type(kv->type)) return false;
    uint64_t v;
    int64_t i;
    if (kv->type == TK_GGUF_UINT64) memcpy(&v, kv->val, 8);
    else if (decode_i64(kv->type, kv->val, &i) && i >= 0) v = (uint64_t)i;
    else return false;
    if (out) *out = v;
    return true;
}
bool tk_gguf_get_f64(const tk_gguf *g, const char *key, double *out) {
    const gg_kv *kv = find(g, key);
    if (!kv || (kv->type != TK_GGUF_FLOAT32 && kv->type != TK_GGUF_FLOAT64)) return false;
    double v;
    decode_f64(kv->type, kv->val, &v);
    if (out) *out = v;
    return true;
}
bool tk_gguf_get_bool(const tk_gguf *g, const char *key, bool *out) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_BOOL) return false;
    if (out) *out = kv->val[0] != 0;
    return true;
}
bool tk_gguf_get_str(const tk_gguf *g, const char *key, const char **s, size_t *len) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_STRING) return false;
    if (s) *s = g->arena.data + kv->str;
    if (len) *len = kv->str_len;
    return true;
}
bool tk_gguf_get_arr(const tk_gguf *g, const char *key, tk_gguf_type *elem_type, int64_t *n) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_ARRAY) return false;
    if (elem_type) *elem_type = (tk_gguf_type)kv->elem_type;
    if (n) *n = kv->n;
    return true;
}
const char *tk_gguf_arr_str(const tk_gguf *g, const char *key, int64_t i, size_t *len) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_ARRAY || kv->elem_type != TK_GGUF_STRING || i < 0 || i >= kv->n) return NULL;
    if (len) *len = kv->offs[i + 1] - kv->offs[i] - 1;
    return g->arena.data + kv->offs[i];
}
bool tk_gguf_arr_f64(const tk_gguf *g, const char *key, int64_t i, double *out) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_ARRAY || i < 0 || i >= kv->n) return false;
    size_t esz = scalar_size(kv->elem_type);
    double v;
    if (!esz || !decode_f64(kv->elem_type, kv->elems + (size_t)i * esz, &v)) return false;
    if (out) *out = v;
    return true;
}
bool tk_gguf_arr_i64(const tk_gguf *g, const char *key, int64_t i, int64_t *out) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_ARRAY || i < 0 || i >= kv->n || !is_int_type(kv->elem_type)) return false;
    int64_t v;
    if (!decode_i64(kv->elem_type, kv->elems + (size_t)i * scalar_size(kv->elem_type), &v)) return false;
    if (out) *out = v;
    return true;
}

const void *tk_gguf_arr_data(const tk_gguf *g, const char *key, tk_gguf_type *elem_type, int64_t *n) {
    const gg_kv *kv = find(g, key);
    if (!kv || kv->type != TK_GGUF_ARRAY || !scalar_size(kv->elem_type)) return NULL;
    if (elem_type) *elem_type = (tk_gguf_type)kv->elem_type;
    if (n) *n = kv->n;
    return kv->elems;
}

int64_t tk_gguf_n_tensors(const tk_gguf *g) { return g->n_tensors; }
const tk_tensor_ref *tk_gguf_tensor(const tk_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->t[i] : NULL;
}
const tk_tensor_ref *tk_gguf_find_tensor(const tk_gguf *g, const char *name) {
    if (!name) return NULL;
    int64_t i = hash_find(g, g->t_hash, g->t_hash_cap, t_name, name, strlen(name));
    return i >= 0 ? &g->t[i] : NULL;
}
size_t tk_gguf_alignment(const tk_gguf *g) { return g->alignment; }
size_t tk_gguf_data_offset(const tk_gguf *g) { return g->data_offset; }

/* ---------------------------------------------------------------- writer */

typedef struct wkv { char *key; uint32_t type; uint8_t *val; size_t len; } wkv;
typedef struct wt {
    char *name;
    tk_dtype dtype;
    uint32_t ggml;
    int n_dims;
    int64_t ne[TK_MAX_DIMS];
    const void *data;
    void *owned;
    size_t nbytes;
} wt;

struct tk_gguf_writer {
    wkv *kv;
    int64_t n_kv, cap_kv;
    wt *t;
    int64_t n_t, cap_t;
};

tk_gguf_writer *tk_gguf_writer_new(void) { return tk_calloc(1, sizeof(tk_gguf_writer)); }

void tk_gguf_writer_free(tk_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) { free(w->kv[i].key); free(w->kv[i].val); }
    for (int64_t i = 0; i < w->n_t; i++) { free(w->t[i].name); free(w->t[i].owned); }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Sets key to an already-encoded value (takes ownership of val, even on failure). */
static tk_status set_raw(tk_gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t len) {
    if (!w || !key) { free(val); return tk_fail(TK_ERR_ARG, "gguf writer: NULL writer or key"); }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].len = len;
            return TK_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *p = tk_realloc(w->kv, (size_t)cap * sizeof *p);
        if (!p) { free(val); return TK_ERR_NOMEM; }
        w->kv = p;
        w->cap_kv = cap;
    }
    char *k = tk_strdup(key);
    if (!k) { free(val); return TK_ERR_NOMEM; }
    w->kv[w->n_kv++] = (wkv){k, type, val, len};
    return TK_OK;
}

static tk_status set_bytes(tk_gguf_writer *w, const char *key, uint32_t type, const void *p, size_t n) {
    uint8_t *v = tk_malloc(n);
    if (!v) return TK_ERR_NOMEM;
    if (n) memcpy(v, p, n);
    return set_raw(w, key, type, v, n);
}

tk_status tk_gguf_set_scalar(tk_gguf_writer *w, const char *key, tk_gguf_type type, const void *value) {
    size_t sz = scalar_size((uint32_t)type);
    if (!sz || !value) return tk_fail(TK_ERR_ARG, "gguf writer: key '%s': %s is not a scalar type", key ? key : "?",
                                       value_type_name((uint32_t)type));
    if (type == TK_GGUF_BOOL) {
        uint8_t b = *(const bool *)value ? 1 : 0;
        return set_bytes(w, key, type, &b, 1);
    }
    return set_bytes(w, key, type, value, sz);
}
tk_status tk_gguf_set_u32(tk_gguf_writer *w, const char *key, uint32_t v) { return set_bytes(w, key, TK_GGUF_UINT32, &v, 4); }
tk_status tk_gguf_set_i32(tk_gguf_writer *w, const char *key, int32_t v) { return set_bytes(w, key, TK_GGUF_INT32, &v, 4); }
tk_status tk_gguf_set_u64(tk_gguf_writer *w, const char *key, uint64_t v) { return set_bytes(w, key, TK_GGUF_UINT64, &v, 8); }
tk_status tk_gguf_set_f32(tk_gguf_writer *w, const char *key, float v) { return set_bytes(w, key, TK_GGUF_FLOAT32, &v, 4); }
tk_status tk_gguf_set_bool(tk_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_bytes(w, key, TK_GGUF_BOOL, &b, 1);
}

tk_status tk_gguf_set_str(tk_gguf_writer *w, const char *key, const char *v) {
    if (!v) return tk_fail(TK_ERR_ARG, "gguf writer: key '%s': NULL string", key ? key : "?");
    uint64_t n = strlen(v);
    uint8_t *buf = tk_malloc(8 + (size_t)n);
    if (!buf) return TK_ERR_NOMEM;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, v, (size_t)n);
    return set_raw(w, key, TK_GGUF_STRING, buf, 8 + (size_t)n);
}

tk_status tk_gguf_set_arr_str(tk_gguf_writer *w, const char *key, const char *const *v, int64_t n) {
    if (n < 0 || (n && !v)) return tk_fail(TK_ERR_ARG, "gguf writer: key '%s': bad string array", key ? key : "?");
    tk_buf b = {0};
    uint32_t et = TK_GGUF_STRING;
    uint64_t un = (uint64_t)n;
    tk_status st = tk_buf_append(&b, &et, 4);
    if (!st) st = tk_buf_append(&b, &un, 8);
    for (int64_t i = 0; !st && i < n; i++) {
        if (!v[i]) { st = tk_fail(TK_ERR_ARG, "gguf writer: key '%s': NULL string at %lld", key ? key : "?", (long long)i); break; }
        uint64_t len = strlen(v[i]);
        st = tk_buf_append(&b, &len, 8);
        if (!st) st = tk_buf_append(&b, v[i], (size_t)len);
    }
    if (st) { tk_buf_free(&b); return st; }
    return set_raw(w, key, TK_GGUF_ARRAY, (uint8_t *)b.data, b.len);
}

tk_status tk_gguf_set_arr(tk_gguf_writer *w, const char *key, tk_gguf_type elem_type, const void *data, int64_t n) {
    size_t esz = scalar_size((uint32_t)elem_type), bytes, total;
    if (!esz || n < 0 || (n && !data))
        return tk_fail(TK_ERR_ARG, "gguf writer: key '%s': bad numeric array (element type %s, %lld elements)",
                       key ? key : "?", value_type_name((uint32_t)elem_type), (long long)n);
    if (!tk_mul_ok((size_t)n, esz, &bytes) || !tk_add_ok(bytes, 12, &total))
        return tk_fail(TK_ERR_NOMEM, "gguf writer: key '%s': array too large", key ? key : "?");
    uint8_t *buf = tk_malloc(total);
    if (!buf) return TK_ERR_NOMEM;
    uint32_t et = (uint32_t)elem_type;
    uint64_t un = (uint64_t)n;
    memcpy(buf, &et, 4);
    memcpy(buf + 4, &un, 8);
    if (bytes) memcpy(buf + 12, data, bytes);
    if (elem_type == TK_GGUF_BOOL)
        for (size_t i = 0; i < bytes; i++) buf[12 + i] = buf[12 + i] != 0;
    return set_raw(w, key, TK_GGUF_ARRAY, buf, total);
}

bool tk_gguf_writer_remove(tk_gguf_writer *w, const char *key) {
    for (int64_t i = 0; w && key && i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].key);
            free(w->kv[i].val);
            memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            return true;
        }
    }
    return false;
}

tk_status tk_gguf_copy_kv(tk_gguf_writer *w, const tk_gguf *g) {
    if (!w || !g) return tk_fail(TK_ERR_ARG, "tk_gguf_copy_kv: NULL argument");
    for (int64_t i = 0; i < g->n_kv; i++) {
        const gg_kv *kv = &g->kv[i];
        if (memchr(g->arena.data + kv->key, 0, kv->key_len))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: key #%lld contains a NUL byte and cannot be copied", g->path, (long long)i);
        tk_status st = set_bytes(w, g->arena.data + kv->key, kv->type, kv->val, kv->val_len);
        if (st) return st;
    }
    return TK_OK;
}

static tk_status add_tensor(tk_gguf_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne,
                            const void *data, bool copy) {
    if (!w || !name) return tk_fail(TK_ERR_ARG, "gguf writer: NULL writer or tensor name");
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= GGUF_MAX_NAME)
        return tk_fail(TK_ERR_ARG, "gguf writer: tensor name '%s' must be 1..%d bytes (llama.cpp's limit)", name,
                       GGUF_MAX_NAME - 1);
    uint32_t ggml;
    if (!tk_gguf_dtype_to_ggml(dtype, &ggml))
        return tk_fail(TK_ERR_UNSUPPORTED, "gguf writer: tensor '%s': dtype %d has no GGUF type", name, (int)dtype);
    if (n_dims < 1 || n_dims > TK_MAX_DIMS || !ne)
        return tk_fail(TK_ERR_ARG, "gguf writer: tensor '%s': %d dimensions (1..%d allowed)", name, n_dims, TK_MAX_DIMS);
    wt t = {0};
    int64_t nel = 1;
    for (int d = 0; d < TK_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || __builtin_mul_overflow(nel, ne[d], &nel))
            return tk_fail(TK_ERR_ARG, "gguf writer: tensor '%s': bad shape", name);
    }
    if (t.ne[0] % tk_dtype_block_elems(dtype))
        return tk_fail(TK_ERR_ARG, "gguf writer: tensor '%s': row of %lld elements is not a whole number of %s blocks",
                       name, (long long)t.ne[0], tk_dtype_name(dtype));
    if (tk_dtype_nbytes(dtype, nel, &t.nbytes) != TK_OK)
        return tk_fail_ctx(TK_ERR_ARG, "gguf writer: tensor '%s': ", name);
    if (t.nbytes && !data) return tk_fail(TK_ERR_ARG, "gguf writer: tensor '%s': NULL data", name);
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return tk_fail(TK_ERR_ARG, "gguf writer: duplicate tensor name '%s'", name);
    if (w->n_t == w->cap_t) {
        int64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wt *p = tk_realloc(w->t, (size_t)cap * sizeof *p);
        if (!p) return TK_ERR_NOMEM;
        w->t = p;
        w->cap_t = cap;
    }
    t.name = tk_strdup(name);
    if (!t.name) return TK_ERR_NOMEM;
    if (copy && t.nbytes) {
        t.owned = tk_malloc(t.nbytes);
        if (!t.owned) { free(t.name); return TK_ERR_NOMEM; }
        memcpy(t.owned, data, t.nbytes);
        t.data = t.owned;
    } else {
        t.data = data;
    }
    t.dtype = dtype;
    t.ggml = ggml;
    t.n_dims = n_dims;
    w->t[w->n_t++] = t;
    return TK_OK;
}

tk_status tk_gguf_add_tensor(tk_gguf_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne,
                             const void *data) {
    return add_tensor(w, name, dtype, n_dims, ne, data, true);
}

tk_status tk_gguf_add_tensor_ref(tk_gguf_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne,
                                 const void *data) {
    return add_tensor(w, name, dtype, n_dims, ne, data, false);
}

static tk_status write_all(int fd, const void *p, size_t n, const char *path) {
    const char *c = p;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t k = tk_io_write(fd, c, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return tk_fail(TK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        c += k;
        n -= (size_t)k;
    }
    return TK_OK;
}

static const uint8_t k_zeros[4096];

static tk_status write_pad(int fd, size_t n, const char *path) {
    while (n > 0) {
        size_t k = n < sizeof k_zeros ? n : sizeof k_zeros;
        tk_status st = write_all(fd, k_zeros, k, path);
        if (st) return st;
        n -= k;
    }
    return TK_OK;
}

static size_t pad_to(size_t x, size_t a) { return (a - x % a) % a; }

tk_status tk_gguf_write(tk_gguf_writer *w, const char *path) {
    if (!w || !path) return tk_fail(TK_ERR_ARG, "tk_gguf_write: NULL argument");
    size_t align = GGUF_DEFAULT_ALIGNMENT;
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment")) continue;
        int64_t a;
        if (w->kv[i].type != TK_GGUF_UINT32 || !decode_i64(w->kv[i].type, w->kv[i].val, &a) || a <= 0 || (a & (a - 1)))
            return tk_fail(TK_ERR_ARG, "%s: general.alignment must be a u32 power of two", path);
        align = (size_t)a;
    }

    /* Header, metadata and tensor infos are small: build them in memory. */
    tk_buf h = {0};
    uint32_t version = 3;
    uint64_t nt = (uint64_t)w->n_t, nkv = (uint64_t)w->n_kv;
    tk_status st = tk_buf_append(&h, "GGUF", 4);
    if (!st) st = tk_buf_append(&h, &version, 4);
    if (!st) st = tk_buf_append(&h, &nt, 8);
    if (!st) st = tk_buf_append(&h, &nkv, 8);
    for (int64_t i = 0; !st && i < w->n_kv; i++) {
        uint64_t kl = strlen(w->kv[i].key);
        st = tk_buf_append(&h, &kl, 8);
        if (!st) st = tk_buf_append(&h, w->kv[i].key, (size_t)kl);
        if (!st) st = tk_buf_append(&h, &w->kv[i].type, 4);
        if (!st) st = tk_buf_append(&h, w->kv[i].val, w->kv[i].len);
    }
    size_t off = 0;
    for (int64_t i = 0; !st && i < w->n_t; i++) {
        const wt *t = &w->t[i];
        uint64_t nl = strlen(t->name), o = off;
        uint32_t nd = (uint32_t)t->n_dims;
        st = tk_buf_append(&h, &nl, 8);
        if (!st) st = tk_buf_append(&h, t->name, (size_t)nl);
        if (!st) st = tk_buf_append(&h, &nd, 4);
        for (int d = 0; !st && d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            st = tk_buf_append(&h, &ne, 8);
        }
        if (!st) st = tk_buf_append(&h, &t->ggml, 4);
        if (!st) st = tk_buf_append(&h, &o, 8);
        if (!st && (!tk_add_ok(off, t->nbytes, &off) || !tk_add_ok(off, pad_to(off, align), &off)))
            st = tk_fail(TK_ERR_NOMEM, "%s: total tensor size overflows", path);
    }
    if (st) { tk_buf_free(&h); return st; }

    char *tmp = tk_tmp_path(path); /* also removes stale temporaries of killed writers */
    if (!tmp) { tk_buf_free(&h); return TK_ERR_NOMEM; }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = tk_fail(TK_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        tk_buf_free(&h);
        free(tmp);
        return st;
    }
    st = write_all(fd, h.data, h.len, tmp);
    if (!st) st = write_pad(fd, pad_to(h.len, align), tmp);
    tk_buf_free(&h);
    /* Tensor data is streamed straight from the caller's buffers. */
    for (int64_t i = 0; !st && i < w->n_t; i++) {
        st = write_all(fd, w->t[i].data, w->t[i].nbytes, tmp);
        if (!st) st = write_pad(fd, pad_to(w->t[i].nbytes, align), tmp);
    }
    if (!st && tk_io_fsync(fd) != 0) st = tk_fail(TK_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !st) st = tk_fail(TK_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (!st && tk_io_rename(tmp, path) != 0) st = tk_fail(TK_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (st) { unlink(tmp); free(tmp); return st; }
    free(tmp);
    char *dcopy = tk_strdup(path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(dcopy);
    }
    return TK_OK;
}
