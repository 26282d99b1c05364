/* GGUF reader and writer.
 *
 * References (tools/make_gguf_fixtures.py, written with the `gguf` Python package):
 *   meta.gguf/meta.json     every metadata value type, nested arrays, alignment 64;
 *   types.gguf              a tensor of every dtype (gguf's writer);
 *   models.json             what gguf's GGUFReader sees in the real models.
 * Checked here: every key/value and tensor read back exactly; v2 files; takumi's writer
 * reproduces gguf's files byte for byte (copy_kv + tensors) and round-trips every
 * setter and dtype; writer errors; the real models (SmolLM2 Q4_1 from models/, the
 * stories260K GGUFs from ../shared); and a corpus of corrupt files built here (also
 * written to $TK_GGUF_CORPUS_DIR, if set, as fuzz seeds): each must fail with a message
 * that names the file and the problem, leave *out NULL, and never crash. */
#include "test.h"
#include "core/core.h"
#include <cJSON.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#define FIX "tests/fixtures/gguf/"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return s;
}

static const char *k_type_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
static int type_from_name(const char *s) {
    for (int i = 0; i < 13; i++)
        if (!strcmp(s, k_type_names[i])) return i;
    return -1;
}
static bool is_float(int t) { return t == TK_GGUF_FLOAT32 || t == TK_GGUF_FLOAT64; }
static bool is_unsigned(int t) { return t == TK_GGUF_UINT8 || t == TK_GGUF_UINT16 || t == TK_GGUF_UINT32 || t == TK_GGUF_UINT64; }

/* Compares one scalar value of type t (from a JSON string/bool) with the file. */
static void check_scalar(const tk_gguf *g, const char *key, int t, const cJSON *v) {
    if (t == TK_GGUF_STRING) {
        const char *s;
        size_t n;
        CHECK(tk_gguf_get_str(g, key, &s, &n), "%s: not a string", key);
        CHECK(n == strlen(v->valuestring) && !memcmp(s, v->valuestring, n) && s[n] == 0, "%s: '%s' vs '%s'", key, s, v->valuestring);
    } else if (t == TK_GGUF_BOOL) {
        bool b;
        CHECK(tk_gguf_get_bool(g, key, &b) && b == cJSON_IsTrue(v), "%s: bool value", key);
    } else if (is_float(t)) {
        double want = strtod(v->valuestring, NULL), got;
        CHECK(tk_gguf_get_f64(g, key, &got) && memcmp(&want, &got, 8) == 0, "%s: %a vs %a", key, got, want);
        CHECK(!tk_gguf_get_i64(g, key, NULL), "%s: float read as int", key);
    } else if (is_unsigned(t)) {
        uint64_t want = strtoull(v->valuestring, NULL, 10), got = 0;
        int64_t i;
        CHECK(tk_gguf_get_u64(g, key, &got) && got == want, "%s: %llu vs %llu", key, (unsigned long long)got, (unsigned long long)want);
        CHECK(tk_gguf_get_i64(g, key, &i) == (want <= INT64_MAX), "%s: get_i64 range", key);
        CHECK(!tk_gguf_get_f64(g, key, NULL) && !tk_gguf_get_str(g, key, NULL, NULL), "%s: int read as float/string", key);
    } else {
        int64_t want = strtoll(v->valuestring, NULL, 10), got = 0;
        CHECK(tk_gguf_get_i64(g, key, &got) && got == want, "%s: %lld vs %lld", key, (long long)got, (long long)want);
        CHECK(tk_gguf_get_u64(g, key, NULL) == (want >= 0), "%s: get_u64 sign", key);
    }
}

/* Compares array element i of type t with a JSON value. */
static void check_elem(const tk_gguf *g, const char *key, int t, int64_t i, const cJSON *v) {
    if (t == TK_GGUF_STRING) {
        size_t n;
        const char *s = tk_gguf_arr_str(g, key, i, &n);
        CHECK(s && n == strlen(v->valuestring) && !memcmp(s, v->valuestring, n) && s[n] == 0, "%s[%lld]: '%s' vs '%s'",
              key, (long long)i, s ? s : "(null)", v->valuestring);
        CHECK(!tk_gguf_arr_f64(g, key, i, NULL) && !tk_gguf_arr_i64(g, key, i, NULL), "%s: string array read as numbers", key);
    } else if (t == TK_GGUF_BOOL) {
        int64_t x;
        CHECK(tk_gguf_arr_i64(g, key, i, &x) && x == cJSON_IsTrue(v), "%s[%lld]: bool", key, (long long)i);
    } else if (is_float(t)) {
        double want = strtod(v->valuestring, NULL), got;
        CHECK(tk_gguf_arr_f64(g, key, i, &got) && memcmp(&want, &got, 8) == 0, "%s[%lld]: %a vs %a", key, (long long)i, got, want);
        CHECK(!tk_gguf_arr_i64(g, key, i, NULL), "%s: float array read as ints", key);
    } else if (t == TK_GGUF_UINT64) {
        uint64_t want = strtoull(v->valuestring, NULL, 10), got;
        tk_gguf_type et;
        int64_t n;
        const uint8_t *raw = tk_gguf_arr_data(g, key, &et, &n);
        CHECK(raw && et == TK_GGUF_UINT64 && i < n, "%s: raw u64 array", key);
        if (raw) { memcpy(&got, raw + 8 * i, 8); CHECK(got == want, "%s[%lld]: %llu", key, (long long)i, (unsigned long long)got); }
    } else {
        int64_t want = strtoll(v->valuestring, NULL, 10), got;
        double f;
        CHECK(tk_gguf_arr_i64(g, key, i, &got) && got == want, "%s[%lld]: %lld vs %lld", key, (long long)i, (long long)got, (long long)want);
        CHECK(tk_gguf_arr_f64(g, key, i, &f) && f == (double)want, "%s[%lld]: as f64", key, (long long)i);
    }
}

/* ------------------------------------------------------------------ meta.gguf */

static void check_meta(const tk_gguf *g, const uint8_t *base) {
    char *js = slurp(FIX "meta.json", NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    CHECK(root != NULL, "cannot read/parse " FIX "meta.json");
    if (!root) { free(js); return; }
    CHECK(tk_gguf_version(g) == 3, "version %u", tk_gguf_version(g));
    CHECK(tk_gguf_alignment(g) == 64, "alignment %zu", tk_gguf_alignment(g));
    const cJSON *kvs = cJSON_GetObjectItem(root, "kv"), *e;
    CHECK(tk_gguf_n_kv(g) == cJSON_GetArraySize(kvs), "n_kv %lld vs %d", (long long)tk_gguf_n_kv(g), cJSON_GetArraySize(kvs));
    int64_t idx = 0;
    cJSON_ArrayForEach(e, kvs) {
        const char *key = cJSON_GetObjectItem(e, "key")->valuestring;
        int t = type_from_name(cJSON_GetObjectItem(e, "type")->valuestring);
        CHECK(tk_gguf_kv_key(g, idx) && !strcmp(tk_gguf_kv_key(g, idx), key), "key #%lld is '%s', expected '%s'", (long long)idx,
              tk_gguf_kv_key(g, idx), key);
        CHECK(tk_gguf_find_key(g, key) == idx, "find_key(%s)", key);
        CHECK((int)tk_gguf_kv_type(g, idx) == t, "%s: type %d vs %d", key, tk_gguf_kv_type(g, idx), t);
        idx++;
        if (t != TK_GGUF_ARRAY) {
            check_scalar(g, key, t, cJSON_GetObjectItem(e, "value"));
            CHECK(!tk_gguf_get_arr(g, key, NULL, NULL), "%s: scalar read as array", key);
            continue;
        }
        tk_gguf_type et;
        int64_t n;
        const cJSON *vals = cJSON_GetObjectItem(e, "values");
        int want_et = type_from_name(cJSON_GetObjectItem(e, "elem_type")->valuestring);
        CHECK(tk_gguf_get_arr(g, key, &et, &n) && (int)et == want_et && n == cJSON_GetArraySize(vals), "%s: array %d x %lld", key,
              et, (long long)n);
        CHECK(!tk_gguf_get_str(g, key, NULL, NULL) && !tk_gguf_get_i64(g, key, NULL), "%s: array read as scalar", key);
        if (want_et == TK_GGUF_ARRAY) {
            CHECK(tk_gguf_arr_str(g, key, 0, NULL) == NULL && !tk_gguf_arr_f64(g, key, 0, NULL), "%s: nested array elements", key);
            continue;
        }
        int64_t i = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, vals) check_elem(g, key, want_et, i++, v);
        CHECK(tk_gguf_arr_str(g, key, n, NULL) == NULL && tk_gguf_arr_str(g, key, -1, NULL) == NULL, "%s: out of range", key);
        CHECK(!tk_gguf_arr_f64(g, key, n, NULL) && !tk_gguf_arr_i64(g, key, -1, NULL), "%s: out of range", key);
    }
    CHECK(tk_gguf_find_key(g, "no.such.key") == -1 && tk_gguf_kv_key(g, 9999) == NULL, "missing keys");
    CHECK(!tk_gguf_get_i64(g, "no.such.key", NULL) && !tk_gguf_get_bool(g, "test.u8", NULL), "typed getters");

    const cJSON *ts = cJSON_GetObjectItem(root, "tensors");
    CHECK(tk_gguf_n_tensors(g) == cJSON_GetArraySize(ts), "n_tensors");
    idx = 0;
    cJSON_ArrayForEach(e, ts) {
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        const tk_tensor_ref *t = tk_gguf_find_tensor(g, name);
        CHECK(t && t == tk_gguf_tensor(g, idx), "tensor %s (#%lld)", name, (long long)idx);
        idx++;
        if (!t) continue;
        const cJSON *ne = cJSON_GetObjectItem(e, "ne"), *v;
        CHECK(t->dtype == TK_F32 && t->n_dims == cJSON_GetArraySize(ne), "%s: dtype/n_dims", name);
        int d = 0;
        cJSON_ArrayForEach(v, ne) { CHECK(t->ne[d] == (int64_t)v->valuedouble, "%s: ne[%d]", name, d); d++; }
        for (; d < TK_MAX_DIMS; d++) CHECK(t->ne[d] == 1, "%s: unused ne[%d] = %lld", name, d, (long long)t->ne[d]);
        CHECK(t->nbytes == (size_t)tk_tensor_nelems(t) * 4, "%s: nbytes", name);
        if (base) CHECK(((const uint8_t *)t->data - base) % 64 == 0, "%s: data not 64-aligned in the file", name);
        int64_t i = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(e, "values")) {
            float want = (float)strtod(v->valuestring, NULL), got;
            memcpy(&got, (const float *)t->data + i, 4);
            CHECK(memcmp(&want, &got, 4) == 0, "%s[%lld]: %a vs %a", name, (long long)i, got, want);
            i++;
        }
    }
    CHECK(tk_gguf_find_tensor(g, "t.missing") == NULL && tk_gguf_tensor(g, -1) == NULL, "missing tensor");
    cJSON_Delete(root);
    free(js);
}

static void test_meta(void) {
    tk_gguf *g = NULL;
    CHECK_OK(tk_gguf_open(FIX "meta.gguf", &g));
    CHECK(g && !strcmp(tk_gguf_path(g), FIX "meta.gguf"), "path");
    if (g) check_meta(g, NULL);
    tk_gguf_close(g);

    /* From memory, so the tensors' file offsets can be checked; then as version 2
     * (v2 and v3 have the same little-endian layout). */
    size_t len;
    uint8_t *buf = (uint8_t *)slurp(FIX "meta.gguf", &len);
    CHECK(buf != NULL, "read meta.gguf");
    if (!buf) return;
    CHECK_OK(tk_gguf_open_memory(buf, len, "meta.gguf", &g));
    if (g) check_meta(g, buf);
    tk_gguf_close(g);
    buf[4] = 2;
    CHECK_OK(tk_gguf_open_memory(buf, len, "meta-v2.gguf", &g));
    CHECK(g && tk_gguf_version(g) == 2, "v2 version");
    if (g) {
        int64_t v;
        CHECK(tk_gguf_get_i64(g, "test.i32", &v) && v == INT32_MIN, "v2 value");
    }
    tk_gguf_close(g);
    free(buf);
}

/* ------------------------------------------------------------------ writer */

static char g_tmpdir[256];

static bool files_equal(const char *a, const char *b, size_t *first_diff) {
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    bool eq = x && y && la == lb && !memcmp(x, y, la);
    *first_diff = 0;
    if (x && y && !eq) {
        size_t m = la < lb ? la : lb, i = 0;
        while (i < m && x[i] == y[i]) i++;
        *first_diff = i;
    }
    free(x);
    free(y);
    return eq;
}

/* Rewrites a file written by gguf's GGUFWriter with takumi's writer (copy_kv + every
 * tensor): the two writers must agree byte for byte. */
static void test_writer_reproduces(const char *src) {
    tk_gguf *g = NULL;
    CHECK_OK(tk_gguf_open(src, &g));
    if (!g) return;
    tk_gguf_writer *w = tk_gguf_writer_new();
    CHECK_OK(tk_gguf_copy_kv(w, g));
    for (int64_t i = 0; i < tk_gguf_n_tensors(g); i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(g, i);
        CHECK_OK(tk_gguf_add_tensor_ref(w, t->name, t->dtype, t->n_dims, t->ne, t->data));
    }
    char out[512];
    snprintf(out, sizeof out, "%s/copy.gguf", g_tmpdir);
    CHECK_OK(tk_gguf_write(w, out));
    size_t diff;
    bool eq = files_equal(src, out, &diff);
    printf("writer copy of %s: %s\n", src, eq ? "byte-identical" : "DIFFERENT");
    CHECK(eq, "takumi's copy of %s differs from gguf's file at byte %zu", src, diff);
    tk_gguf_writer_free(w);
    tk_gguf_close(g);

    /* Rewriting a file in place from its own mapping is safe: the new file is built
     * beside it and renamed over it, so the old mapping stays valid while it is read. */
    CHECK_OK(tk_gguf_open(out, &g));
    if (!g) return;
    w = tk_gguf_writer_new();
    CHECK_OK(tk_gguf_copy_kv(w, g));
    for (int64_t i = 0; i < tk_gguf_n_tensors(g); i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(g, i);
        CHECK_OK(tk_gguf_add_tensor_ref(w, t->name, t->dtype, t->n_dims, t->ne, t->data));
    }
    CHECK_OK(tk_gguf_write(w, out));
    tk_gguf_writer_free(w);
    tk_gguf_close(g);
    CHECK(files_equal(src, out, &diff), "in-place rewrite of a copy of %s differs at byte %zu", src, diff);
}

static void test_writer_round_trip(void) {
    tk_gguf *src = NULL;
    CHECK_OK(tk_gguf_open(FIX "types.gguf", &src));
    if (!src) return;
    tk_gguf_writer *w = tk_gguf_writer_new();
    CHECK(w != NULL, "writer_new");
    uint8_t u8 = 200; int8_t i8 = -7; uint16_t u16 = 60000; int16_t i16 = -30000; int64_t i64 = INT64_MIN + 5; double f64 = -1.0 / 3;
    bool bt = true;
    CHECK_OK(tk_gguf_set_str(w, "general.architecture", "llama"));
    CHECK_OK(tk_gguf_set_u32(w, "general.alignment", 128));
    CHECK_OK(tk_gguf_set_scalar(w, "s.u8", TK_GGUF_UINT8, &u8));
    CHECK_OK(tk_gguf_set_scalar(w, "s.i8", TK_GGUF_INT8, &i8));
    CHECK_OK(tk_gguf_set_scalar(w, "s.u16", TK_GGUF_UINT16, &u16));
    CHECK_OK(tk_gguf_set_scalar(w, "s.i16", TK_GGUF_INT16, &i16));
    CHECK_OK(tk_gguf_set_u32(w, "s.u32", 4000000000u));
    CHECK_OK(tk_gguf_set_i32(w, "s.i32", -123456));
    CHECK_OK(tk_gguf_set_f32(w, "s.f32", 0.1f));
    CHECK_OK(tk_gguf_set_bool(w, "s.bool", true));
    CHECK_OK(tk_gguf_set_scalar(w, "s.bool2", TK_GGUF_BOOL, &bt));
    CHECK_OK(tk_gguf_set_str(w, "s.str", "日本語 🙂"));
    CHECK_OK(tk_gguf_set_str(w, "s.empty", ""));
    CHECK_OK(tk_gguf_set_u64(w, "s.u64", UINT64_MAX));
    CHECK_OK(tk_gguf_set_scalar(w, "s.i64", TK_GGUF_INT64, &i64));
    CHECK_OK(tk_gguf_set_scalar(w, "s.f64", TK_GGUF_FLOAT64, &f64));
    CHECK_OK(tk_gguf_set_i32(w, "s.replaced", 1));
    CHECK_OK(tk_gguf_set_str(w, "s.removed", "x"));
    CHECK_OK(tk_gguf_set_i32(w, "s.replaced", 2)); /* keeps its place, takes the new value */
    CHECK(tk_gguf_writer_remove(w, "s.removed") && !tk_gguf_writer_remove(w, "s.removed"), "remove");
    enum { NS = 5000 };
    char **strs = malloc(NS * sizeof *strs);
    for (int i = 0; i < NS; i++) { strs[i] = malloc(24); snprintf(strs[i], 24, i % 7 ? "tok_%d" : "", i); }
    CHECK_OK(tk_gguf_set_arr_str(w, "a.str", (const char *const *)strs, NS));
    CHECK_OK(tk_gguf_set_arr_str(w, "a.str_empty", NULL, 0));
    float fa[7] = {1, -2, 3.5f, 0, -0.0f, 1e30f, 1e-30f};
    int32_t ia[4] = {INT32_MIN, -1, 0, INT32_MAX};
    uint8_t ba[3] = {1, 0, 1};
    CHECK_OK(tk_gguf_set_arr(w, "a.f32", TK_GGUF_FLOAT32, fa, 7));
    CHECK_OK(tk_gguf_set_arr(w, "a.i32", TK_GGUF_INT32, ia, 4));
    CHECK_OK(tk_gguf_set_arr(w, "a.bool", TK_GGUF_BOOL, ba, 3));
    CHECK_OK(tk_gguf_set_arr(w, "a.empty", TK_GGUF_UINT64, NULL, 0));
    CHECK(tk_gguf_set_arr(w, "a.bad", TK_GGUF_STRING, fa, 1) == TK_ERR_ARG, "string elem type via set_arr");
    CHECK(tk_gguf_set_scalar(w, "a.bad", TK_GGUF_ARRAY, fa) == TK_ERR_ARG, "array via set_scalar");
    /* Every tensor of types.gguf (every dtype), re-shaped to 1..4 dims. */
    int64_t nt = tk_gguf_n_tensors(src);
    for (int64_t i = 0; i < nt; i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(src, i);
        int64_t ne[4] = {t->ne[0], t->ne[1], 1, 1};
        int nd = 1 + (int)(i % 4);
        if (nd == 1) ne[0] *= t->ne[1];
        CHECK_OK(tk_gguf_add_tensor(w, t->name, t->dtype, nd, ne, t->data));
    }
    char out[512];
    snprintf(out, sizeof out, "%s/round.gguf", g_tmpdir);
    CHECK_OK(tk_gguf_write(w, out));
    tk_gguf_writer_free(w);

    tk_gguf *g = NULL;
    size_t len;
    uint8_t *buf = (uint8_t *)slurp(out, &len);
    CHECK_OK(tk_gguf_open_memory(buf, len, out, &g));
    if (g) {
        CHECK(tk_gguf_version(g) == 3 && tk_gguf_alignment(g) == 128, "version/alignment");
        CHECK(tk_gguf_n_kv(g) == 23, "n_kv %lld", (long long)tk_gguf_n_kv(g));
        int64_t v; uint64_t u; double f; bool b; const char *s; size_t n; tk_gguf_type et; int64_t cnt;
        CHECK(tk_gguf_get_i64(g, "s.u8", &v) && v == 200 && tk_gguf_kv_type(g, tk_gguf_find_key(g, "s.u8")) == TK_GGUF_UINT8, "u8");
        CHECK(tk_gguf_get_i64(g, "s.i8", &v) && v == -7, "i8");
        CHECK(tk_gguf_get_i64(g, "s.u16", &v) && v == 60000, "u16");
        CHECK(tk_gguf_get_i64(g, "s.i16", &v) && v == -30000, "i16");
        CHECK(tk_gguf_get_i64(g, "s.u32", &v) && v == 4000000000LL, "u32");
        CHECK(tk_gguf_get_i64(g, "s.i32", &v) && v == -123456, "i32");
        CHECK(tk_gguf_get_f64(g, "s.f32", &f) && (float)f == 0.1f, "f32");
        CHECK(tk_gguf_get_bool(g, "s.bool", &b) && b && tk_gguf_get_bool(g, "s.bool2", &b) && b, "bool");
        CHECK(tk_gguf_get_str(g, "s.str", &s, &n) && !strcmp(s, "日本語 🙂") && n == strlen("日本語 🙂"), "str");
        CHECK(tk_gguf_get_str(g, "s.empty", &s, &n) && n == 0 && s[0] == 0, "empty str");
        CHECK(tk_gguf_get_u64(g, "s.u64", &u) && u == UINT64_MAX && !tk_gguf_get_i64(g, "s.u64", &v), "u64");
        CHECK(tk_gguf_get_i64(g, "s.i64", &v) && v == INT64_MIN + 5, "i64");
        CHECK(tk_gguf_get_f64(g, "s.f64", &f) && f == -1.0 / 3, "f64");
        CHECK(tk_gguf_get_i64(g, "s.replaced", &v) && v == 2 && tk_gguf_find_key(g, "s.replaced") == 16, "replaced key");
        CHECK(tk_gguf_find_key(g, "s.removed") < 0, "removed key");
        CHECK(tk_gguf_get_arr(g, "a.str", &et, &cnt) && et == TK_GGUF_STRING && cnt == NS, "string array");
        int bad = 0;
        for (int i = 0; i < NS; i++) {
            const char *x = tk_gguf_arr_str(g, "a.str", i, &n);
            bad += !x || strcmp(x, strs[i]) || n != strlen(strs[i]);
        }
        CHECK(bad == 0, "%d string array elements differ", bad);
        CHECK(tk_gguf_get_arr(g, "a.str_empty", &et, &cnt) && et == TK_GGUF_STRING && cnt == 0, "empty string array");
        CHECK(tk_gguf_get_arr(g, "a.empty", &et, &cnt) && et == TK_GGUF_UINT64 && cnt == 0, "empty array");
        for (int i = 0; i < 7; i++) CHECK(tk_gguf_arr_f64(g, "a.f32", i, &f) && (float)f == fa[i] && !signbit(f) == !signbit(fa[i]), "a.f32[%d]", i);
        for (int i = 0; i < 4; i++) CHECK(tk_gguf_arr_i64(g, "a.i32", i, &v) && v == ia[i], "a.i32[%d]", i);
        for (int i = 0; i < 3; i++) CHECK(tk_gguf_arr_i64(g, "a.bool", i, &v) && v == ba[i], "a.bool[%d]", i);
        CHECK(tk_gguf_n_tensors(g) == nt, "n_tensors");
        for (int64_t i = 0; i < nt; i++) {
            const tk_tensor_ref *a = tk_gguf_tensor(src, i), *c = tk_gguf_tensor(g, i);
            CHECK(c && !strcmp(a->name, c->name) && a->dtype == c->dtype && c->n_dims == 1 + (int)(i % 4), "tensor #%lld", (long long)i);
            if (!c) continue;
            CHECK(tk_tensor_nelems(a) == tk_tensor_nelems(c) && a->nbytes == c->nbytes && !memcmp(a->data, c->data, a->nbytes),
                  "tensor %s data", a->name);
            CHECK(((const uint8_t *)c->data - buf) % 128 == 0, "tensor %s not 128-aligned", a->name);
            CHECK(tk_gguf_find_tensor(g, a->name) == c, "find %s", a->name);
        }
    }
    tk_gguf_close(g);
    free(buf);
    for (int i = 0; i < NS; i++) free(strs[i]);
    free(strs);
    tk_gguf_close(src);
}

static void test_writer_errors(void) {
    tk_gguf_writer *w = tk_gguf_writer_new();
    float x[64] = {0};
    int64_t ne[4] = {32, 2, 1, 1}, bad[2] = {-1, 2}, odd[1] = {33};
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = 0;
    CHECK_OK(tk_gguf_add_tensor(w, "t", TK_F32, 2, ne, x));
    CHECK(tk_gguf_add_tensor(w, "t", TK_F32, 2, ne, x) == TK_ERR_ARG && strstr(tk_last_error(), "duplicate"), "duplicate: %s", tk_last_error());
    CHECK(tk_gguf_add_tensor(w, longname, TK_F32, 1, ne, x) == TK_ERR_ARG && strstr(tk_last_error(), "63"), "long name: %s", tk_last_error());
    CHECK(tk_gguf_add_tensor(w, "u", TK_F32, 0, ne, x) == TK_ERR_ARG, "0 dims");
    CHECK(tk_gguf_add_tensor(w, "u", TK_F32, 5, ne, x) == TK_ERR_ARG, "5 dims");
    CHECK(tk_gguf_add_tensor(w, "u", TK_F32, 2, bad, x) == TK_ERR_ARG, "negative ne");
    CHECK(tk_gguf_add_tensor(w, "u", TK_Q4_0, 1, odd, x) == TK_ERR_ARG && strstr(tk_last_error(), "block"), "partial block: %s", tk_last_error());
    CHECK(tk_gguf_add_tensor(w, "u", TK_F32, 2, ne, NULL) == TK_ERR_ARG, "NULL data");
    CHECK(tk_gguf_add_tensor(w, "u", TK_DTYPE_COUNT, 2, ne, x) == TK_ERR_UNSUPPORTED, "bad dtype");
    char path[512];
    snprintf(path, sizeof path, "%s/no/such/dir/x.gguf", g_tmpdir);
    CHECK(tk_gguf_write(w, path) == TK_ERR_IO && strstr(tk_last_error(), "x.gguf"), "unwritable: %s", tk_last_error());
    CHECK_OK(tk_gguf_set_u32(w, "general.alignment", 48));
    snprintf(path, sizeof path, "%s/bad-align.gguf", g_tmpdir);
    CHECK(tk_gguf_write(w, path) == TK_ERR_ARG && strstr(tk_last_error(), "alignment"), "alignment 48: %s", tk_last_error());
    CHECK_OK(tk_gguf_set_str(w, "general.alignment", "32"));
    CHECK(tk_gguf_write(w, path) == TK_ERR_ARG, "string alignment");
    CHECK(access(path, F_OK) != 0, "a failed write left %s", path);
    tk_gguf_writer_free(w);

    /* Overwriting: the new file replaces the old one whole. */
    snprintf(path, sizeof path, "%s/over.gguf", g_tmpdir);
    for (int round = 0; round < 2; round++) {
        w = tk_gguf_writer_new();
        CHECK_OK(tk_gguf_set_i32(w, "round", round));
        int64_t n1[1] = {round ? 32 : 64};
        CHECK_OK(tk_gguf_add_tensor(w, "t", TK_F32, 1, n1, x));
        CHECK_OK(tk_gguf_write(w, path));
        tk_gguf_writer_free(w);
    }
    tk_gguf *g = NULL;
    CHECK_OK(tk_gguf_open(path, &g));
    int64_t v;
    CHECK(g && tk_gguf_get_i64(g, "round", &v) && v == 1 && tk_gguf_tensor(g, 0)->ne[0] == 32, "overwrite");
    tk_gguf_close(g);
    /* No temp files are left behind. */
    DIR *d = opendir(g_tmpdir);
    struct dirent *de;
    int tmps = 0;
    while (d && (de = readdir(d))) tmps += strstr(de->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    CHECK(tmps == 0, "%d temp files left in %s", tmps, g_tmpdir);
}

/* ------------------------------------------------------------------ real models */

static void test_models(void) {
    char *js = slurp(FIX "models.json", NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    CHECK(root != NULL, "cannot read/parse " FIX "models.json");
    if (!root) { free(js); return; }
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(root, "models")) {
        const char *rel = cJSON_GetObjectItem(m, "path")->valuestring, *path;
        if (!strncmp(rel, "shared:", 7)) path = tk_test_shared(rel + 7);
        else path = access(rel, F_OK) == 0 ? rel : NULL;
        if (tk_test_require(path, rel)) continue;
        double t0 = tk_time_s();
        tk_gguf *g = NULL;
        CHECK_OK(tk_gguf_open(path, &g));
        double t_open = tk_time_s() - t0;
        if (!g) continue;
        CHECK(tk_gguf_version(g) == (uint32_t)cJSON_GetObjectItem(m, "version")->valuedouble, "%s: version", rel);
        CHECK(tk_gguf_alignment(g) == (size_t)cJSON_GetObjectItem(m, "alignment")->valuedouble, "%s: alignment", rel);
        CHECK(tk_gguf_data_offset(g) == (size_t)cJSON_GetObjectItem(m, "data_offset")->valuedouble, "%s: data offset %zu", rel,
              tk_gguf_data_offset(g));
        const cJSON *kvs = cJSON_GetObjectItem(m, "kv"), *e;
        CHECK(tk_gguf_n_kv(g) == cJSON_GetArraySize(kvs), "%s: n_kv %lld", rel, (long long)tk_gguf_n_kv(g));
        int64_t idx = 0;
        cJSON_ArrayForEach(e, kvs) {
            const char *key = cJSON_GetObjectItem(e, "key")->valuestring;
            int t = type_from_name(cJSON_GetObjectItem(e, "type")->valuestring);
            CHECK(tk_gguf_find_key(g, key) == idx && (int)tk_gguf_kv_type(g, idx) == t, "%s: key %s", rel, key);
            idx++;
            if (t != TK_GGUF_ARRAY) { check_scalar(g, key, t, cJSON_GetObjectItem(e, "value")); continue; }
            tk_gguf_type et;
            int64_t n;
            int want_et = type_from_name(cJSON_GetObjectItem(e, "elem_type")->valuestring);
            CHECK(tk_gguf_get_arr(g, key, &et, &n) && (int)et == want_et &&
                      n == (int64_t)cJSON_GetObjectItem(e, "n")->valuedouble, "%s: %s array", rel, key);
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(e, "samples"))
                check_elem(g, key, want_et, (int64_t)cJSON_GetArrayItem(s, 0)->valuedouble, cJSON_GetArrayItem(s, 1));
            if (want_et == TK_GGUF_STRING) { /* O(1) indexed access: walk the whole array */
                double t1 = tk_time_s();
                size_t total = 0, l;
                for (int64_t i = 0; i < n; i++) { tk_gguf_arr_str(g, key, i, &l); total += l; }
                if (n > 10000) printf("  %s: %lld strings (%zu bytes) walked in %.2f ms\n", key, (long long)n, total, (tk_time_s() - t1) * 1e3);
            }
        }
        const cJSON *ts = cJSON_GetObjectItem(m, "tensors");
        int64_t nt = cJSON_GetArraySize(ts);
        CHECK(tk_gguf_n_tensors(g) == nt, "%s: %lld tensors, expected %lld", rel, (long long)tk_gguf_n_tensors(g), (long long)nt);
        const uint8_t *base = NULL;
        int hist[TK_DTYPE_COUNT] = {0};
        idx = 0;
        cJSON_ArrayForEach(e, ts) {
            const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
            const tk_tensor_ref *t = tk_gguf_find_tensor(g, name);
            CHECK(t && t == tk_gguf_tensor(g, idx), "%s: tensor %s", rel, name);
            idx++;
            if (!t) continue;
            tk_dtype want;
            CHECK(tk_gguf_dtype_from_ggml((uint32_t)cJSON_GetObjectItem(e, "ggml_type")->valuedouble, &want) && want == t->dtype,
                  "%s: %s dtype %s", rel, name, tk_dtype_name(t->dtype));
            hist[t->dtype]++;
            const cJSON *ne = cJSON_GetObjectItem(e, "ne"), *v;
            int d = 0;
            cJSON_ArrayForEach(v, ne) { CHECK(t->ne[d] == (int64_t)v->valuedouble, "%s: %s ne[%d]", rel, name, d); d++; }
            CHECK(t->n_dims == d, "%s: %s n_dims", rel, name);
            size_t off = (size_t)cJSON_GetObjectItem(e, "offset")->valuedouble;
            if (!base) base = (const uint8_t *)t->data - off;
            CHECK((const uint8_t *)t->data - base == (ptrdiff_t)off, "%s: %s file offset", rel, name);
        }
        printf("%s: v%u, %lld keys, %lld tensors (", rel, tk_gguf_version(g), (long long)tk_gguf_n_kv(g), (long long)tk_gguf_n_tensors(g));
        for (int d = 0; d < TK_DTYPE_COUNT; d++) if (hist[d]) printf(" %s:%d", tk_dtype_name((tk_dtype)d), hist[d]);
        printf(" ), opened in %.1f ms\n", t_open * 1e3);
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "samples")) {
            const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
            const tk_tensor_ref *t = tk_gguf_find_tensor(g, name);
            const cJSON *vals = cJSON_GetObjectItem(e, "values"), *v;
            int64_t n = cJSON_GetArraySize(vals), blk = t ? tk_dtype_block_elems(t->dtype) : 1;
            float out[256];
            CHECK(t && n <= 256, "%s: sample tensor %s", rel, name);
            if (!t) continue;
            int64_t nd = (n + blk - 1) / blk * blk;
            CHECK_OK(tk_dequantize(t->dtype, t->data, out, nd));
            int64_t i = 0, bad = 0;
            cJSON_ArrayForEach(v, vals) {
                float want = (float)strtod(v->valuestring, NULL);
                bad += memcmp(&want, &out[i], 4) != 0;
                i++;
            }
            CHECK(bad == 0, "%s: %s: %lld of %lld dequantized values differ from gguf", rel, name, (long long)bad, (long long)n);
        }
        tk_gguf_close(g);
    }
    cJSON_Delete(root);
    free(js);
}

/* ------------------------------------------------------------------ corrupt files */

typedef struct bb { uint8_t *p; size_t n, cap; } bb;
static void put(bb *b, const void *p, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void u32(bb *b, uint32_t v) { put(b, &v, 4); }
static void u64(bb *b, uint64_t v) { put(b, &v, 8); }
static void str(bb *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void pad(bb *b, size_t a) { while (b->n % a) put(b, "", 1); }

enum {
    C_VALID, C_MAGIC, C_VER1, C_VER99, C_BIGENDIAN, C_ABSURD_KV, C_ABSURD_T, C_HUGE_KEY, C_HUGE_STR, C_BAD_VTYPE,
    C_BAD_ETYPE, C_HUGE_ARR, C_HUGE_STR_ARR, C_DEEP_ARR, C_DUP_KEY, C_ALIGN48, C_ALIGN0, C_ALIGN_STR, C_NDIMS5, C_NE_OVERFLOW,
    C_NE_HUGE, C_NBYTES_OVERFLOW, C_UNKNOWN_DTYPE, C_IQ_DTYPE, C_PARTIAL_BLOCK, C_MISALIGNED, C_PAST_END, C_OFFSET_OVERFLOW,
    C_DUP_TENSOR, C_NUL_NAME, C_NUL_KEY, C_COUNT
};
static const struct { const char *name; tk_status st; const char *msg; } k_cases[C_COUNT] = {
    [C_VALID] = {"valid", TK_OK, ""},
    [C_MAGIC] = {"magic", TK_ERR_FORMAT, "not a GGUF file"},
    [C_VER1] = {"version1", TK_ERR_UNSUPPORTED, "version 1"},
    [C_VER99] = {"version99", TK_ERR_UNSUPPORTED, "version 99"},
    [C_BIGENDIAN] = {"bigendian", TK_ERR_UNSUPPORTED, "big-endian"},
    [C_ABSURD_KV] = {"absurd-kv-count", TK_ERR_FORMAT, "key/value count 1152921504606846976 cannot fit"},
    [C_ABSURD_T] = {"absurd-tensor-count", TK_ERR_FORMAT, "tensor count 1152921504606846976 cannot fit"},
    [C_HUGE_KEY] = {"huge-key-length", TK_ERR_FORMAT, "key length"},
    [C_HUGE_STR] = {"huge-string-length", TK_ERR_FORMAT, "string value length"},
    [C_BAD_VTYPE] = {"bad-value-type", TK_ERR_FORMAT, "unknown value type 13"},
    [C_BAD_ETYPE] = {"bad-array-type", TK_ERR_FORMAT, "unknown element type 77"},
    [C_HUGE_ARR] = {"huge-array", TK_ERR_FORMAT, "cannot fit"},
    [C_HUGE_STR_ARR] = {"huge-string-array", TK_ERR_FORMAT, "cannot fit"},
    [C_DEEP_ARR] = {"deep-array", TK_ERR_FORMAT, "nested deeper"},
    [C_DUP_KEY] = {"duplicate-key", TK_ERR_FORMAT, "duplicate key 'a.arr'"},
    [C_NUL_KEY] = {"nul-in-key", TK_ERR_FORMAT, "key contains a NUL byte"},
    [C_ALIGN48] = {"alignment-48", TK_ERR_FORMAT, "not a power of two"},
    [C_ALIGN0] = {"alignment-0", TK_ERR_FORMAT, "not a power of two"},
    [C_ALIGN_STR] = {"alignment-string", TK_ERR_FORMAT, "general.alignment has type string"},
    [C_NDIMS5] = {"ndims5", TK_ERR_FORMAT, "tensor 'w': 5 dimensions"},
    [C_NE_OVERFLOW] = {"ne-overflow", TK_ERR_FORMAT, "tensor 'w': element count overflows"},
    [C_NE_HUGE] = {"ne-huge", TK_ERR_FORMAT, "tensor 'w': dimension 0"},
    [C_NBYTES_OVERFLOW] = {"nbytes-overflow", TK_ERR_FORMAT, "tensor 'w': byte size"},
    [C_UNKNOWN_DTYPE] = {"unknown-dtype", TK_ERR_UNSUPPORTED, "tensor 'q': unsupported ggml type 99"},
    [C_IQ_DTYPE] = {"iq-dtype", TK_ERR_UNSUPPORTED, "tensor 'q': unsupported ggml type 16 (iq2_xxs)"},
    [C_PARTIAL_BLOCK] = {"partial-block", TK_ERR_FORMAT, "tensor 'q': row of 16 elements is not a whole number of q4_0 blocks"},
    [C_MISALIGNED] = {"misaligned", TK_ERR_FORMAT, "tensor 'q': data offset 65 is not a multiple of the alignment 32"},
    [C_PAST_END] = {"past-end", TK_ERR_FORMAT, "tensor 'q' data offset 1048640 (+ data section start"},
    [C_OFFSET_OVERFLOW] = {"offset-overflow", TK_ERR_FORMAT, "tensor 'q' data offset 18446744073709551584 (+ data section start"},
    [C_DUP_TENSOR] = {"duplicate-tensor", TK_ERR_FORMAT, "duplicate tensor name 'w'"},
    [C_NUL_NAME] = {"nul-name", TK_ERR_FORMAT, "tensor info #0: tensor name contains a NUL byte"},
};

/* A small valid file (2 tensors: f32 'w' [8 x 2] and q4_0 'q' [32]) with one defect. */
static void build(int c, bb *b) {
    b->n = 0;
    put(b, c == C_MAGIC ? "GGUX" : "GGUF", 4);
    u32(b, c == C_VER1 ? 1 : c == C_VER99 ? 99 : c == C_BIGENDIAN ? 0x03000000u : 3);
    u64(b, c == C_ABSURD_T ? (1ULL << 60) : 2);
    u64(b, c == C_ABSURD_KV ? (1ULL << 60) : c == C_DUP_KEY || c == C_NUL_KEY ? 5 : 4);
    if (c == C_HUGE_KEY) { u64(b, 1ULL << 62); put(b, "general.architecture", 20); }
    else str(b, "general.architecture");
    if (c == C_BAD_VTYPE) u32(b, 13);
    else u32(b, TK_GGUF_STRING);
    if (c == C_HUGE_STR) { u64(b, UINT64_MAX); put(b, "llama", 5); }
    else str(b, "llama");
    str(b, "general.alignment");
    if (c == C_ALIGN_STR) { u32(b, TK_GGUF_STRING); str(b, "32"); }
    else { u32(b, TK_GGUF_UINT32); u32(b, c == C_ALIGN48 ? 48 : c == C_ALIGN0 ? 0 : 32); }
    str(b, "a.arr");
    u32(b, TK_GGUF_ARRAY);
    if (c == C_DEEP_ARR) {
        for (int i = 0; i < 12; i++) { u32(b, TK_GGUF_ARRAY); u64(b, 1); }
        u32(b, TK_GGUF_INT32); u64(b, 1); u32(b, 7);
    } else {
        u32(b, c == C_BAD_ETYPE ? 77 : TK_GGUF_INT32);
        u64(b, c == C_HUGE_ARR ? (1ULL << 61) : 3);
        u32(b, 1); u32(b, 2); u32(b, 3);
    }
    str(b, "a.strs");
    u32(b, TK_GGUF_ARRAY);
    u32(b, TK_GGUF_STRING);
    u64(b, c == C_HUGE_STR_ARR ? (1ULL << 59) : 2);
    str(b, "p"); str(b, "qq");
    if (c == C_DUP_KEY) { str(b, "a.arr"); u32(b, TK_GGUF_UINT8); put(b, "x", 1); }
    /* keys equal as C strings but not as bytes (the fuzz_gguf finding): refused, as llama.cpp's reader does */
    if (c == C_NUL_KEY) { u64(b, 6); put(b, "a.arr\0", 6); u32(b, TK_GGUF_UINT8); put(b, "x", 1); }
    /* tensor 'w' */
    if (c == C_NUL_NAME) { u64(b, 3); put(b, "w\0x", 3); }
    else str(b, "w");
    if (c == C_NDIMS5) { u32(b, 5); for (int i = 0; i < 5; i++) u64(b, 1); }
    else if (c == C_NE_OVERFLOW) { u32(b, 3); u64(b, 1ULL << 32); u64(b, 1ULL << 32); u64(b, 1ULL << 32); }
    else if (c == C_NE_HUGE) { u32(b, 2); u64(b, 1ULL << 63); u64(b, 2); }
    else if (c == C_NBYTES_OVERFLOW) { u32(b, 2); u64(b, 1ULL << 61); u64(b, 2); }
    else { u32(b, 2); u64(b, 8); u64(b, 2); }
    u32(b, c == C_NBYTES_OVERFLOW ? 28 : 0); /* f64 for the overflow case: 8 bytes x 2^62 */
    u64(b, 0);
    /* tensor 'q' */
    str(b, c == C_DUP_TENSOR ? "w" : "q");
    u32(b, 1);
    u64(b, c == C_PARTIAL_BLOCK ? 16 : 32);
    u32(b, c == C_UNKNOWN_DTYPE ? 99 : c == C_IQ_DTYPE ? 16 : 2);
    u64(b, c == C_MISALIGNED ? 65 : c == C_PAST_END ? (1ULL << 20) + 64 : c == C_OFFSET_OVERFLOW ? UINT64_MAX - 31 : 64);
    pad(b, 32);
    for (int i = 0; i < 16; i++) { float f = (float)i; put(b, &f, 4); }
    uint16_t d = tk_f32_to_f16(0.5f);
    put(b, &d, 2);
    for (int i = 0; i < 16; i++) { uint8_t q = (uint8_t)(i * 17); put(b, &q, 1); }
}

static void save_seed(const char *dir, const char *name, const uint8_t *p, size_t n) {
    if (!dir) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(p, 1, n, f); fclose(f); }
}

static void test_corrupt(void) {
    const char *seed_dir = getenv("TK_GGUF_CORPUS_DIR");
    bb b = {0};
    for (int c = 0; c < C_COUNT; c++) {
        build(c, &b);
        char name[128];
        snprintf(name, sizeof name, "corrupt-%s.gguf", k_cases[c].name);
        tk_gguf *g = (tk_gguf *)&b; /* must be reset to NULL on failure */
        tk_clear_error();
        tk_status st = tk_gguf_open_memory(b.p, b.n, name, &g);
        const char *msg = tk_last_error();
        CHECK(st == k_cases[c].st, "%s: status %s, expected %s (%s)", name, tk_status_str(st), tk_status_str(k_cases[c].st), msg);
        if (c == C_VALID) {
            CHECK(g != NULL, "valid file");
            if (g) {
                float out[32];
                const tk_tensor_ref *q = tk_gguf_find_tensor(g, "q");
                CHECK(q && q->dtype == TK_Q4_0 && q->nbytes == 18, "q tensor");
                if (q) CHECK_OK(tk_dequantize(q->dtype, q->data, out, 32));
                CHECK(tk_gguf_arr_str(g, "a.strs", 1, NULL) && !strcmp(tk_gguf_arr_str(g, "a.strs", 1, NULL), "qq"), "a.strs");
            }
            tk_gguf_close(g);
        } else {
            CHECK(g == NULL, "%s: *out not NULL on failure", name);
            CHECK(!strncmp(msg, name, strlen(name)) && strstr(msg, k_cases[c].msg), "%s: message '%s' should name the file and say '%s'",
                  name, msg, k_cases[c].msg);
        }
        if (c == C_PAST_END || c == C_UNKNOWN_DTYPE || c == C_ABSURD_KV) printf("  e.g. %s\n", msg);
        if (c != C_VALID) save_seed(seed_dir, name, b.p, b.n);
        else save_seed(seed_dir, "valid-small.gguf", b.p, b.n);
    }
    if (seed_dir) { /* a seed with one block of every dtype, written by takumi */
        tk_gguf *src = NULL;
        CHECK_OK(tk_gguf_open(FIX "types.gguf", &src));
        tk_gguf_writer *w = tk_gguf_writer_new();
        for (int64_t i = 0; src && i < tk_gguf_n_tensors(src); i++) {
            const tk_tensor_ref *t = tk_gguf_tensor(src, i);
            int64_t ne[1] = {tk_dtype_block_elems(t->dtype)};
            if (strstr(t->name, ".q")) CHECK_OK(tk_gguf_add_tensor(w, t->name, t->dtype, 1, ne, t->data));
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/valid-dtypes.gguf", seed_dir);
        CHECK_OK(tk_gguf_write(w, path));
        tk_gguf_writer_free(w);
        tk_gguf_close(src);
    }

    /* Every truncation of the valid file fails cleanly. */
    build(C_VALID, &b);
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size, so ASan sees any over-read */
        memcpy(cut, b.p, n);
        tk_gguf *g = NULL;
        tk_status st = tk_gguf_open_memory(cut, n, "cut.gguf", &g);
        if (st == TK_OK || g || strncmp(tk_last_error(), "cut.gguf: ", 10) ||
            (!strstr(tk_last_error(), "truncated") && !strstr(tk_last_error(), "past") && !strstr(tk_last_error(), "too short") &&
             !strstr(tk_last_error(), "cannot fit"))) {
            if (bad++ < 5) fprintf(stderr, "truncated at %zu: %s: %s\n", n, tk_status_str(st), tk_last_error());
        }
        if (n == b.n - 1)
            CHECK(strstr(tk_last_error(), "tensor 'q' data [") && strstr(tk_last_error(), "extends past end of file (size"),
                  "last byte cut: %s", tk_last_error());
        tk_gguf_close(g);
        if (n == 2 || n == 40 || n == 150 || n == b.n - 1) {
            char name[64];
            snprintf(name, sizeof name, "truncated-%zu.gguf", n);
            save_seed(seed_dir, name, cut, n);
        }
        free(cut);
    }
    CHECK(bad == 0, "%d truncations of a %zu-byte file were not rejected cleanly", bad, b.n);
    printf("corrupt corpus: %d crafted defects and %zu truncations rejected with messages\n", C_COUNT - 1, b.n);
    free(b.p);

    /* Files that are not there or not files. */
    tk_gguf *g = (tk_gguf *)&b;
    CHECK(tk_gguf_open("tests/fixtures/gguf/nope.gguf", &g) == TK_ERR_IO && g == NULL && strstr(tk_last_error(), "nope.gguf"),
          "missing file: %s", tk_last_error());
    CHECK(tk_gguf_open("tests/fixtures/gguf", &g) == TK_ERR_IO && g == NULL && strstr(tk_last_error(), "directory"),
          "directory: %s", tk_last_error());
    CHECK(tk_gguf_open(FIX "meta.json", &g) == TK_ERR_FORMAT && strstr(tk_last_error(), "meta.json: not a GGUF file"),
          "json as gguf: %s", tk_last_error());
}

int main(void) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/tk_test_gguf.%ld", (long)getpid());
    mkdir(g_tmpdir, 0700);
    test_meta();
    test_writer_reproduces(FIX "meta.gguf");
    test_writer_reproduces(FIX "types.gguf");
    test_writer_round_trip();
    test_writer_errors();
    test_corrupt();
    test_models();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmpdir);
    return tk_test_done("test_gguf");
}
