/* safetensors: writer -> reader round trip (every dtype, 0..4 dims, metadata escapes,
 * 8-byte alignment, name order), the real stories260K file, sharded sets (folder, index
 * path, missing shard/tensor), a corpus of corrupt headers that must fail with a message
 * naming the file; files written by the reference `safetensors` package and by
 * transformers' save_pretrained (sharded) read back exactly; and — only when python3 has
 * numpy + safetensors — the reference package reading takumi's file. */
#include "test.h"
#include "core/core.h"
#include <sys/stat.h>
#include <fcntl.h>

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    char *b = buf[k++ & 7];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* A safetensors image from a header string: 8-byte length, header, data bytes. */
static size_t make_image(uint8_t *out, size_t cap, const char *header, const void *data, size_t ndata) {
    size_t h = strlen(header);
    if (8 + h + ndata > cap) { fprintf(stderr, "image too big\n"); exit(1); }
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(out + 8, header, h);
    if (ndata) memcpy(out + 8 + h, data, ndata);
    return 8 + h + ndata;
}

/* Opening the image must fail with status want (or any failure when want is TK_OK) and
 * a message that names the file and contains `needle`. */
static void expect_bad(const char *what, const char *header, size_t ndata, tk_status want, const char *needle) {
    static uint8_t img[4096], data[1024];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)i;
    size_t n = make_image(img, sizeof img, header, data, ndata);
    tk_safetensors *st = (tk_safetensors *)1;
    tk_status s = tk_st_open_memory(img, n, "bad.safetensors", &st);
    CHECK(s != TK_OK, "%s: accepted a corrupt header", what);
    CHECK(st == NULL, "%s: handle not NULL on failure", what);
    if (want != TK_OK) CHECK(s == want, "%s: status %s, want %s (%s)", what, tk_status_str(s), tk_status_str(want), tk_last_error());
    CHECK(strstr(tk_last_error(), "bad.safetensors") != NULL, "%s: message does not name the file: %s", what, tk_last_error());
    if (needle) CHECK(strstr(tk_last_error(), needle) != NULL, "%s: message lacks '%s': %s", what, needle, tk_last_error());
}

static void test_corrupt(void) {
    uint8_t img[64] = {0};
    tk_safetensors *st = NULL;
    /* too small, lengths past the end */
    for (size_t n = 0; n < 8; n++) {
        CHECK(tk_st_open_memory(img, n, "bad.safetensors", &st) == TK_ERR_FORMAT, "%zu-byte file accepted", n);
        CHECK(strstr(tk_last_error(), "bad.safetensors"), "message: %s", tk_last_error());
    }
    img[0] = 200; /* header length 200 in a 64-byte file */
    CHECK(tk_st_open_memory(img, sizeof img, "bad.safetensors", &st) == TK_ERR_FORMAT, "header length past the end");
    CHECK(strstr(tk_last_error(), "exceeds the file size"), "message: %s", tk_last_error());
    memset(img, 0xff, 8); /* 2^64-1: must not overflow the bound check */
    CHECK(tk_st_open_memory(img, sizeof img, "bad.safetensors", &st) == TK_ERR_FORMAT, "header length 2^64-1");

    expect_bad("not JSON", "{abc", 0, TK_ERR_FORMAT, "not valid JSON");
    expect_bad("not an object", "[1,2]   ", 0, TK_ERR_FORMAT, NULL);
    expect_bad("truncated JSON", "{\"a\":{\"dtype\":\"F32\",", 0, TK_ERR_FORMAT, "not valid JSON");
    expect_bad("trailing bytes", "{} x", 0, TK_ERR_FORMAT, "after the JSON header");
    expect_bad("entry not object", "{\"a\":3}", 0, TK_ERR_FORMAT, "'a'");
    expect_bad("missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "dtype");
    expect_bad("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "shape");
    expect_bad("missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, TK_ERR_FORMAT, "data_offsets");
    expect_bad("offsets arity", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, TK_ERR_FORMAT, "data_offsets");
    expect_bad("offsets past end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, TK_ERR_FORMAT, "past the end");
    expect_bad("begin > end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 12, TK_ERR_FORMAT, "begin");
    expect_bad("size mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, TK_ERR_FORMAT, "needs 16");
    expect_bad("unknown dtype", "{\"w\":{\"dtype\":\"Q9\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, TK_ERR_UNSUPPORTED, "'w' has unsupported dtype Q9");
    expect_bad("U8 dtype", "{\"mask\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, TK_ERR_UNSUPPORTED, "U8");
    expect_bad("F8 dtype", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, TK_ERR_UNSUPPORTED, "F8_E4M3");
    expect_bad("dtype not string", "{\"w\":{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "dtype");
    expect_bad("shape overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "overflow");
    expect_bad("byte size overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "overflow");
    expect_bad("5 dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, TK_ERR_UNSUPPORTED, "5 dimensions");
    expect_bad("negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "shape[0]");
    expect_bad("fractional dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "shape[0]");
    expect_bad("string dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "shape[0]");
    expect_bad("huge offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1e300,1e300]}}", 4, TK_ERR_FORMAT, NULL);
    expect_bad("negative offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, TK_ERR_FORMAT, NULL);
    expect_bad("duplicate name", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, TK_ERR_FORMAT, "twice");
    expect_bad("metadata not object", "{\"__metadata__\":[1]}", 0, TK_ERR_FORMAT, "__metadata__");
    expect_bad("metadata value", "{\"__metadata__\":{\"format\":1}}", 0, TK_ERR_FORMAT, "format");
    expect_bad("empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TK_ERR_FORMAT, "empty name");

    /* a NUL byte inside the header */
    uint8_t nul[32];
    size_t n = make_image(nul, sizeof nul, "{\"a\":1}", NULL, 0);
    nul[10] = 0;
    CHECK(tk_st_open_memory(nul, n, "bad.safetensors", &st) == TK_ERR_FORMAT, "NUL in header accepted");

    /* a header length above the cap, in a (sparse) file that is large enough */
    const char *big = tmp_path("big.safetensors");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t len8[8] = {0};
    uint64_t hl = 150ull * 1000 * 1000;
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hl >> (8 * i));
    CHECK(fd >= 0 && write(fd, len8, 8) == 8 && ftruncate(fd, (off_t)(hl + 64)) == 0, "sparse file");
    if (fd >= 0) close(fd);
    CHECK(tk_st_open(big, &st) == TK_ERR_FORMAT, "150 MB header accepted");
    CHECK(strstr(tk_last_error(), "limit") && strstr(tk_last_error(), "big.safetensors"), "message: %s", tk_last_error());
    unlink(big);

    /* files that are not there or not files */
    CHECK(tk_st_open(tmp_path("nope.safetensors"), &st) == TK_ERR_IO, "missing file");
    CHECK(strstr(tk_last_error(), "nope.safetensors"), "message: %s", tk_last_error());
    CHECK(tk_st_open(g_dir, &st) == TK_ERR_NOT_FOUND, "empty folder");
    CHECK(strstr(tk_last_error(), g_dir), "message: %s", tk_last_error());
}

/* deterministic test values */
static float val(int64_t i) { return (float)((i * 7919) % 1000) / 64.0f - 7.5f; }

static void test_roundtrip(void) {
    tk_st_writer *w = tk_st_writer_new();
    CHECK(w != NULL, "writer");
    float f32[6 * 5];
    uint16_t f16[7], bf16[2 * 3 * 4];
    double f64[3];
    int8_t i8[2 * 1 * 3 * 2];
    int16_t i16[4];
    int32_t i32[5];
    int64_t i64 = -1234567890123ll;
    for (int i = 0; i < 30; i++) f32[i] = val(i);
    for (int i = 0; i < 7; i++) f16[i] = tk_f32_to_f16(val(i + 100));
    for (int i = 0; i < 24; i++) bf16[i] = tk_f32_to_bf16(val(i + 200));
    for (int i = 0; i < 3; i++) f64[i] = val(i) / 3.0;
    for (int i = 0; i < 12; i++) i8[i] = (int8_t)(i * 21 - 128);
    for (int i = 0; i < 4; i++) i16[i] = (int16_t)(i * 9000 - 20000);
    for (int i = 0; i < 5; i++) i32[i] = i * 1000003 - 2;
    /* added out of name order: the file must come out sorted */
    CHECK_OK(tk_st_add(w, "z.weight", TK_F32, 2, (int64_t[]){5, 6}, f32));
    CHECK_OK(tk_st_add(w, "a.half", TK_F16, 1, (int64_t[]){7}, f16));
    CHECK_OK(tk_st_add(w, "m.bf16", TK_BF16, 3, (int64_t[]){4, 3, 2}, bf16));
    CHECK_OK(tk_st_add(w, "b.f64", TK_F64, 1, (int64_t[]){3}, f64));
    CHECK_OK(tk_st_add(w, "c.i8", TK_I8, 4, (int64_t[]){2, 3, 1, 2}, i8));
    CHECK_OK(tk_st_add(w, "d.i16", TK_I16, 1, (int64_t[]){4}, i16));
    CHECK_OK(tk_st_add(w, "e.i32", TK_I32, 1, (int64_t[]){5}, i32));
    CHECK_OK(tk_st_add(w, "f.scalar", TK_I64, 0, NULL, &i64));
    CHECK_OK(tk_st_add(w, "g.empty", TK_F32, 2, (int64_t[]){0, 3}, NULL));
    CHECK_OK(tk_st_add(w, "name \"with\" \\ quotes\n", TK_F32, 1, (int64_t[]){1}, f32));
    CHECK(tk_st_add(w, "z.weight", TK_F32, 1, (int64_t[]){1}, f32) == TK_ERR_ARG, "duplicate name accepted");
    CHECK(tk_st_add(w, "q", TK_Q4_0, 1, (int64_t[]){32}, f32) == TK_ERR_UNSUPPORTED, "quantized dtype accepted");
    CHECK(tk_st_add(w, "q", TK_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, f32) == TK_ERR_ARG, "5 dims accepted");
    CHECK(tk_st_add(w, "__metadata__", TK_F32, 1, (int64_t[]){1}, f32) == TK_ERR_ARG, "reserved name accepted");
    CHECK_OK(tk_st_set_metadata(w, "format", "np"));
    CHECK_OK(tk_st_set_metadata(w, "format", "pt")); /* replaces */
    CHECK_OK(tk_st_set_metadata(w, "note", "tab\t \"q\" \\ \xe6\x97\xa5\xe6\x9c\xac \x01"));
    const char *path = tmp_path("rt.safetensors");
    CHECK_OK(tk_st_write(w, path));
    tk_st_writer_free(w);

    char *raw = NULL;
    size_t rawn = 0;
    CHECK_OK(tk_read_file(path, &raw, &rawn));
    if (raw && rawn >= 8) {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = (h << 8) | (uint8_t)raw[i];
        CHECK((8 + h) % 8 == 0, "data section at %llu is not 8-aligned", (unsigned long long)(8 + h));
        CHECK(h <= rawn - 8 && raw[8 + h - 1] != 0, "header padding");
        /* names appear in sorted order in the header */
        const char *hdr = raw + 8;
        const char *pa = strstr(hdr, "\"a.half\""), *pz = strstr(hdr, "\"z.weight\""), *pm = strstr(hdr, "\"m.bf16\"");
        CHECK(pa && pm && pz && pa < pm && pm < pz, "tensors not in name order");
    }
    free(raw);

    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open(path, &st));
    if (!st) return;
    CHECK(tk_st_n_tensors(st) == 10, "n tensors %lld", (long long)tk_st_n_tensors(st));
    CHECK(tk_st_metadata(st, "format") && !strcmp(tk_st_metadata(st, "format"), "pt"), "metadata format");
    CHECK(tk_st_metadata(st, "note") && !strcmp(tk_st_metadata(st, "note"), "tab\t \"q\" \\ \xe6\x97\xa5\xe6\x9c\xac \x01"), "metadata escapes");
    CHECK(tk_st_metadata(st, "absent") == NULL, "absent metadata");
    const tk_tensor_ref *t = tk_st_find(st, "z.weight");
    CHECK(t && t->dtype == TK_F32 && t->n_dims == 2 && t->ne[0] == 5 && t->ne[1] == 6 && t->nbytes == sizeof f32 &&
          !memcmp(t->data, f32, sizeof f32), "z.weight");
    t = tk_st_find(st, "m.bf16");
    CHECK(t && t->dtype == TK_BF16 && t->n_dims == 3 && t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 2 && t->ne[3] == 1 &&
          !memcmp(t->data, bf16, sizeof bf16), "m.bf16");
    t = tk_st_find(st, "a.half");
    CHECK(t && t->dtype == TK_F16 && !memcmp(t->data, f16, sizeof f16), "a.half");
    t = tk_st_find(st, "b.f64");
    CHECK(t && t->dtype == TK_F64 && !memcmp(t->data, f64, sizeof f64), "b.f64");
    t = tk_st_find(st, "c.i8");
    CHECK(t && t->dtype == TK_I8 && t->n_dims == 4 && t->ne[2] == 1 && t->ne[3] == 2 && !memcmp(t->data, i8, sizeof i8), "c.i8");
    t = tk_st_find(st, "d.i16");
    CHECK(t && t->dtype == TK_I16 && !memcmp(t->data, i16, sizeof i16), "d.i16");
    t = tk_st_find(st, "e.i32");
    CHECK(t && t->dtype == TK_I32 && !memcmp(t->data, i32, sizeof i32), "e.i32");
    t = tk_st_find(st, "f.scalar");
    CHECK(t && t->dtype == TK_I64 && t->n_dims == 0 && tk_tensor_nelems(t) == 1 && !memcmp(t->data, &i64, 8), "scalar");
    t = tk_st_find(st, "g.empty");
    CHECK(t && t->nbytes == 0 && t->ne[0] == 0 && t->ne[1] == 3, "empty tensor");
    CHECK(tk_st_find(st, "name \"with\" \\ quotes\n") != NULL, "escaped name");
    CHECK(tk_st_find(st, "nope") == NULL && tk_st_find(st, "") == NULL, "absent name");
    /* tensors are listed in data order; every one found by name */
    const uint8_t *prev = NULL;
    for (int64_t i = 0; i < tk_st_n_tensors(st); i++) {
        const tk_tensor_ref *u = tk_st_tensor(st, i);
        CHECK(u && tk_st_find(st, u->name) == u, "find(tensor(%lld))", (long long)i);
        if (u && prev) CHECK((const uint8_t *)u->data >= prev, "data order");
        if (u) prev = u->data;
    }
    CHECK(tk_st_tensor(st, -1) == NULL && tk_st_tensor(st, 10) == NULL, "tensor index bounds");
    tk_st_close(st);
    tk_st_close(NULL);

    /* the same bytes through tk_st_open_memory */
    CHECK_OK(tk_read_file(path, &raw, &rawn));
    CHECK_OK(tk_st_open_memory(raw, rawn, "mem", &st));
    CHECK(st && tk_st_n_tensors(st) == 10, "memory open");
    tk_st_close(st);
    /* any truncation of a valid file fails cleanly */
    int bad = 0;
    for (size_t n = 0; n < rawn; n++) {
        st = NULL;
        if (tk_st_open_memory(raw, n, "trunc", &st) == TK_OK) { bad++; tk_st_close(st); }
    }
    CHECK(bad == 0, "%d truncations of a valid file were accepted", bad);
    free(raw);
}

static void test_stories(void) {
    const char *p = tk_test_shared("models/stories260K/hf/model.safetensors");
    if (tk_test_require(p, "models/stories260K/hf/model.safetensors")) return;
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open(p, &st));
    if (!st) return;
    /* shapes from the model card: dim 64, hidden 172, 5 layers, 8 heads x 8, 4 kv heads, vocab 512, tied */
    CHECK(tk_st_n_tensors(st) == 2 + 5 * 9, "n tensors %lld", (long long)tk_st_n_tensors(st));
    const tk_tensor_ref *e = tk_st_find(st, "model.embed_tokens.weight");
    CHECK(e && e->dtype == TK_F32 && e->n_dims == 2 && e->ne[0] == 64 && e->ne[1] == 512, "embed_tokens shape");
    const tk_tensor_ref *k = tk_st_find(st, "model.layers.4.self_attn.k_proj.weight");
    CHECK(k && k->ne[0] == 64 && k->ne[1] == 32, "k_proj {64, 32}");
    const tk_tensor_ref *d = tk_st_find(st, "model.layers.0.mlp.down_proj.weight");
    CHECK(d && d->ne[0] == 172 && d->ne[1] == 64, "down_proj {172, 64}");
    CHECK(tk_st_find(st, "lm_head.weight") == NULL, "tied: no lm_head");
    int64_t params = 0;
    for (int64_t i = 0; i < tk_st_n_tensors(st); i++) params += tk_tensor_nelems(tk_st_tensor(st, i));
    CHECK(params == 260032, "parameters %lld, model card says 260,032", (long long)params);
    tk_st_close(st);
    /* the folder form finds model.safetensors */
    const char *dir = tk_test_shared("models/stories260K/hf-bf16");
    CHECK_OK(tk_st_open(dir, &st));
    if (st) {
        const tk_tensor_ref *b = tk_st_find(st, "model.norm.weight");
        CHECK(b && b->dtype == TK_BF16 && b->ne[0] == 64, "bf16 folder");
        tk_st_close(st);
    }
}

/* writes a small shard holding the given tensors (one f32 each, value = index) */
static void write_shard(const char *name, const char *const *tensors, int n) {
    tk_st_writer *w = tk_st_writer_new();
    for (int i = 0; i < n; i++) {
        float v[3] = {(float)i, (float)i + 0.5f, (float)strlen(tensors[i])};
        CHECK_OK(tk_st_add(w, tensors[i], TK_F32, 1, (int64_t[]){3}, v));
    }
    CHECK_OK(tk_st_set_metadata(w, "format", "pt"));
    CHECK_OK(tk_st_write(w, tmp_path(name)));
    tk_st_writer_free(w);
}

static void write_text(const char *name, const char *text) { write_bytes(tmp_path(name), text, strlen(text)); }

static void test_sharded(void) {
    write_shard("model-00001-of-00002.safetensors", (const char *const[]){"model.embed_tokens.weight", "model.layers.0.x"}, 2);
    write_shard("model-00002-of-00002.safetensors", (const char *const[]){"model.layers.1.x", "model.norm.weight", "lm_head.weight"}, 3);
    const char *index =
        "{\"metadata\": {\"total_size\": 60, \"note\": \"idx\"}, \"weight_map\": {"
        "\"lm_head.weight\": \"model-00002-of-00002.safetensors\","
        "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
        "\"model.layers.0.x\": \"model-00001-of-00002.safetensors\","
        "\"model.layers.1.x\": \"model-00002-of-00002.safetensors\","
        "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}";
    write_text("model.safetensors.index.json", index);
    tk_safetensors *st = NULL;
    for (int form = 0; form < 2; form++) {
        CHECK_OK(tk_st_open(form ? tmp_path("model.safetensors.index.json") : g_dir, &st));
        if (!st) continue;
        CHECK(tk_st_n_tensors(st) == 5, "sharded: %lld tensors", (long long)tk_st_n_tensors(st));
        const tk_tensor_ref *t = tk_st_find(st, "model.norm.weight");
        float v[3];
        if (t) memcpy(v, t->data, sizeof v);
        CHECK(t && v[0] == 1.0f && v[1] == 1.5f && v[2] == 17.0f, "norm from shard 2");
        t = tk_st_find(st, "model.layers.0.x");
        if (t) memcpy(v, t->data, sizeof v);
        CHECK(t && v[0] == 1.0f && v[2] == 16.0f, "layer 0 from shard 1");
        CHECK(tk_st_metadata(st, "note") && !strcmp(tk_st_metadata(st, "note"), "idx"), "index metadata");
        CHECK(tk_st_metadata(st, "format") && !strcmp(tk_st_metadata(st, "format"), "pt"), "shard metadata");
        tk_st_close(st);
        st = NULL;
    }
    /* index naming a tensor its shard lacks */
    write_text("missing-tensor.index.json",
               "{\"weight_map\": {\"model.layers.0.x\": \"model-00001-of-00002.safetensors\","
               "\"model.ghost\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(tk_st_open(tmp_path("missing-tensor.index.json"), &st) == TK_ERR_NOT_FOUND, "missing tensor accepted");
    CHECK(strstr(tk_last_error(), "model.ghost") && strstr(tk_last_error(), "missing-tensor.index.json"), "message: %s", tk_last_error());
    /* index naming a missing shard */
    write_text("missing-shard.index.json", "{\"weight_map\": {\"a\": \"model-00003-of-00003.safetensors\"}}");
    CHECK(tk_st_open(tmp_path("missing-shard.index.json"), &st) == TK_ERR_IO, "missing shard accepted");
    CHECK(strstr(tk_last_error(), "model-00003-of-00003.safetensors") && strstr(tk_last_error(), "missing-shard.index.json"),
          "message: %s", tk_last_error());
    /* index putting a tensor in the wrong shard */
    write_text("wrong-shard.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\","
               "\"model.layers.1.x\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(tk_st_open(tmp_path("wrong-shard.index.json"), &st) != TK_OK, "wrong shard accepted");
    CHECK(strstr(tk_last_error(), "model.norm.weight"), "message: %s", tk_last_error());
    /* a tensor stored in two shards */
    write_shard("dup.safetensors", (const char *const[]){"model.norm.weight"}, 1);
    write_text("dup.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"dup.safetensors\", \"model.layers.1.x\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(tk_st_open(tmp_path("dup.index.json"), &st) == TK_ERR_FORMAT, "duplicate across shards accepted");
    CHECK(strstr(tk_last_error(), "two shards"), "message: %s", tk_last_error());
    /* escaping the folder, bad JSON, no weight_map, non-string entry */
    write_text("escape.index.json", "{\"weight_map\": {\"a\": \"../etc/passwd\"}}");
    CHECK(tk_st_open(tmp_path("escape.index.json"), &st) == TK_ERR_FORMAT, "../ shard accepted");
    write_text("abs.index.json", "{\"weight_map\": {\"a\": \"/etc/passwd\"}}");
    CHECK(tk_st_open(tmp_path("abs.index.json"), &st) == TK_ERR_FORMAT, "absolute shard accepted");
    write_text("broken.index.json", "{\"weight_map\": {");
    CHECK(tk_st_open(tmp_path("broken.index.json"), &st) == TK_ERR_FORMAT, "broken index accepted");
    CHECK(strstr(tk_last_error(), "broken.index.json"), "message: %s", tk_last_error());
    write_text("nomap.index.json", "{\"metadata\": {}}");
    CHECK(tk_st_open(tmp_path("nomap.index.json"), &st) == TK_ERR_FORMAT, "index without weight_map accepted");
    write_text("empty.index.json", "{\"weight_map\": {}}");
    CHECK(tk_st_open(tmp_path("empty.index.json"), &st) == TK_ERR_FORMAT, "empty weight_map accepted");
    write_text("nonstr.index.json", "{\"weight_map\": {\"a\": 3}}");
    CHECK(tk_st_open(tmp_path("nonstr.index.json"), &st) == TK_ERR_FORMAT, "non-string shard accepted");
    CHECK(st == NULL, "handle left after failures");

    /* a folder with both: model.safetensors wins */
    write_shard("model.safetensors", (const char *const[]){"single"}, 1);
    CHECK_OK(tk_st_open(g_dir, &st));
    CHECK(st && tk_st_n_tensors(st) == 1 && tk_st_find(st, "single"), "folder prefers model.safetensors");
    tk_st_close(st);
}

/* tests/fixtures/hf/reference.safetensors, written by the `safetensors` package
 * (tools/st_reference.py): every dtype and rank, values val(i). */
static void test_reference_file(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/hf/reference.safetensors", &st));
    if (!st) return;
    CHECK(tk_st_n_tensors(st) == 9, "reference: %lld tensors", (long long)tk_st_n_tensors(st));
    CHECK(tk_st_metadata(st, "format") && !strcmp(tk_st_metadata(st, "format"), "pt"), "reference metadata");
    const tk_tensor_ref *t = tk_st_find(st, "f32.2d");
    CHECK(t && t->dtype == TK_F32 && t->n_dims == 2 && t->ne[0] == 4 && t->ne[1] == 3, "f32.2d shape");
    for (int i = 0; t && i < 12; i++) { float v; memcpy(&v, (const char *)t->data + 4 * i, 4); CHECK(v == val(i), "f32[%d]", i); }
    t = tk_st_find(st, "f16.3d");
    CHECK(t && t->dtype == TK_F16 && t->n_dims == 3 && t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 2, "f16.3d shape");
    for (int i = 0; t && i < 24; i++) { uint16_t v; memcpy(&v, (const char *)t->data + 2 * i, 2); CHECK(v == tk_f32_to_f16(val(i)), "f16[%d]", i); }
    t = tk_st_find(st, "bf16.1d");
    CHECK(t && t->dtype == TK_BF16 && t->ne[0] == 7, "bf16 shape");
    for (int i = 0; t && i < 7; i++) { uint16_t v; memcpy(&v, (const char *)t->data + 2 * i, 2); CHECK(v == tk_f32_to_bf16(val(i)), "bf16[%d]", i); }
    t = tk_st_find(st, "f64.1d");
    for (int i = 0; t && i < 5; i++) { double v; memcpy(&v, (const char *)t->data + 8 * i, 8); CHECK(v == val(i), "f64[%d]", i); }
    CHECK(t && t->dtype == TK_F64, "f64");
    t = tk_st_find(st, "i8.4d");
    CHECK(t && t->dtype == TK_I8 && t->n_dims == 4 && t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 2 && t->ne[3] == 1, "i8.4d shape");
    for (int i = 0; t && i < 24; i++) CHECK(((const int8_t *)t->data)[i] == i - 12, "i8[%d]", i);
    t = tk_st_find(st, "i16.1d");
    for (int i = 0; t && i < 3; i++) { int16_t v; memcpy(&v, (const char *)t->data + 2 * i, 2); CHECK(v == i * 9000 - 9000, "i16[%d]", i); }
    t = tk_st_find(st, "i32.2d");
    for (int i = 0; t && i < 6; i++) { int32_t v; memcpy(&v, (const char *)t->data + 4 * i, 4); CHECK(v == i * 1000003 - 7, "i32[%d]", i); }
    t = tk_st_find(st, "i64.0d");
    int64_t v64 = 0;
    if (t) memcpy(&v64, t->data, 8);
    CHECK(t && t->dtype == TK_I64 && t->n_dims == 0 && v64 == -(1ll << 40), "i64 scalar");
    t = tk_st_find(st, "empty");
    CHECK(t && t->nbytes == 0 && t->ne[0] == 5 && t->ne[1] == 0, "empty");
    tk_st_close(st);
}

/* tests/fixtures/hf/sharded: a tiny Llama saved by transformers' save_pretrained in 6
 * shards; every tensor's sum matches the one transformers computed. */
static void test_sharded_fixture(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/hf/sharded", &st));
    char *text = NULL;
    CHECK_OK(tk_read_file("tests/fixtures/hf/sharded/sums.json", &text, NULL));
    if (!st || !text) { tk_st_close(st); free(text); return; }
    int n = 0;
    for (char *p = text; (p = strchr(p, '"')); n++) {
        char name[128];
        double want;
        char *q = strchr(p + 1, '"');
        if (!q || (size_t)(q - p - 1) >= sizeof name) break;
        memcpy(name, p + 1, (size_t)(q - p - 1));
        name[q - p - 1] = 0;
        if (sscanf(q + 1, " : %lf", &want) != 1) break;
        p = q + 1;
        const tk_tensor_ref *t = tk_st_find(st, name);
        CHECK(t && t->dtype == TK_F32, "sharded: %s missing", name);
        if (!t) continue;
        double sum = 0, abs = 0;
        for (int64_t i = 0; i < tk_tensor_nelems(t); i++) {
            float v;
            memcpy(&v, (const char *)t->data + 4 * i, 4);
            sum += v;
            abs += fabs(v);
        }
        CHECK(fabs(sum - want) <= 1e-9 * abs + 1e-12, "sharded: %s sums to %.17g, transformers %.17g", name, sum, want);
    }
    CHECK(n == 21 && tk_st_n_tensors(st) == 21, "sharded: %d sums, %lld tensors", n, (long long)tk_st_n_tensors(st));
    free(text);
    tk_st_close(st);
}

/* The reference package reads what takumi writes (only where python3 has numpy +
 * safetensors; CI lacks them, the fixture above covers the other direction there). */
static void test_python(void) {
    if (system("python3 -c 'import numpy, safetensors' >/dev/null 2>&1") != 0) {
        printf("note: python3 with numpy + safetensors not found; takumi -> safetensors package check skipped\n");
        return;
    }
    tk_st_writer *w = tk_st_writer_new();
    float a[3 * 4];
    uint16_t b[5], h[6];
    int64_t c[2] = {-5, 1ll << 40};
    for (int i = 0; i < 12; i++) a[i] = val(i);
    for (int i = 0; i < 5; i++) b[i] = tk_f32_to_bf16(val(i));
    for (int i = 0; i < 6; i++) h[i] = tk_f32_to_f16(val(i));
    CHECK_OK(tk_st_add(w, "a", TK_F32, 2, (int64_t[]){4, 3}, a));
    CHECK_OK(tk_st_add(w, "b", TK_BF16, 1, (int64_t[]){5}, b));
    CHECK_OK(tk_st_add(w, "h", TK_F16, 3, (int64_t[]){3, 2, 1}, h));
    CHECK_OK(tk_st_add(w, "c", TK_I64, 1, (int64_t[]){2}, c));
    CHECK_OK(tk_st_set_metadata(w, "format", "pt"));
    CHECK_OK(tk_st_set_metadata(w, "k\"ey", "v\\al\n"));
    CHECK_OK(tk_st_write(w, tmp_path("py_in.safetensors")));
    tk_st_writer_free(w);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
        "python3 - <<'EOF'\n"
        "import numpy as np\n"
        "from safetensors import deserialize, safe_open\n"
        "def val(i): return ((i * 7919) %% 1000) / 64.0 - 7.5\n"
        "p = '%s/py_in.safetensors'\n"
        "with safe_open(p, framework='numpy') as f:\n"
        "    assert sorted(f.keys()) == ['a', 'b', 'c', 'h'], f.keys()\n"
        "    assert f.metadata() == {'format': 'pt', 'k\"ey': 'v\\\\al\\n'}, f.metadata()\n"
        "d = dict(deserialize(open(p, 'rb').read()))\n"
        "a = d['a']; assert a['dtype'] == 'F32' and a['shape'] == [3, 4]\n"
        "assert np.frombuffer(a['data'], '<f4').tolist() == [val(i) for i in range(12)]\n"
        "b = d['b']; assert b['dtype'] == 'BF16' and b['shape'] == [5]\n"
        "x = np.array([val(i) for i in range(5)], np.float32).view(np.uint32)\n"
        "rne = ((x + 0x7fff + ((x >> 16) & 1)) >> 16).astype(np.uint16)\n"
        "assert np.frombuffer(b['data'], '<u2').tolist() == rne.tolist()\n"
        "h = d['h']; assert h['dtype'] == 'F16' and h['shape'] == [1, 2, 3]\n"
        "assert np.frombuffer(h['data'], '<f2').tolist() == np.array([val(i) for i in range(6)], np.float32).astype(np.float16).tolist()\n"
        "c = d['c']; assert c['dtype'] == 'I64' and np.frombuffer(c['data'], '<i8').tolist() == [-5, 1 << 40]\n"
        "EOF", g_dir);
    int rc = system(cmd);
    CHECK(rc == 0, "the safetensors package rejected or misread takumi's file (rc %d)", rc);
    if (rc == 0) printf("safetensors package reads takumi's file correctly\n");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/tk_test_st_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_corrupt();
    test_roundtrip();
    test_stories();
    test_reference_file();
    test_sharded_fixture();
    test_python();
    test_sharded();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tk_test_done("test_safetensors");
}
