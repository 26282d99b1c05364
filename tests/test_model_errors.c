/* Bad models give one clear error naming the file and the problem, and no partial
 * state (the ASan build checks that nothing leaks): GGUF variants written from the real
 * stories260K GGUF with one defect each (missing tensor, wrong shape, unsupported
 * architecture, missing/absurd metadata, unsupported dtype), an HF folder with a missing
 * tensor and a bad config, truncated llama2.c checkpoints, and paths that do not exist. */
#include "test.h"
#include "core/core.h"
#include <sys/stat.h>

static char g_dir[256];

/* Rewrites src with one change: tensor `drop` left out, tensor `reshape` given ne0 - 1
 * columns (data truncated accordingly), key `set_key` set to string/int value. */
typedef struct { const char *drop, *reshape, *key_str, *str_val, *key_int; int64_t int_val; const char *key_f32; float f32_val; } edit;

static const char *write_variant(const tk_gguf *src, const char *name, const edit *e) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", g_dir, name);
    tk_gguf_writer *w = tk_gguf_writer_new();
    CHECK_OK(tk_gguf_copy_kv(w, src));
    if (e->key_str) CHECK_OK(tk_gguf_set_str(w, e->key_str, e->str_val));
    if (e->key_int) CHECK_OK(tk_gguf_set_u32(w, e->key_int, (uint32_t)e->int_val));
    if (e->key_f32) CHECK_OK(tk_gguf_set_f32(w, e->key_f32, e->f32_val));
    for (int64_t i = 0; i < tk_gguf_n_tensors(src); i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(src, i);
        if (e->drop && !strcmp(t->name, e->drop)) continue;
        int64_t ne[TK_MAX_DIMS];
        memcpy(ne, t->ne, sizeof ne);
        if (e->reshape && !strcmp(t->name, e->reshape)) ne[1] -= 1; /* one row fewer: a valid file, a wrong shape */
        CHECK_OK(tk_gguf_add_tensor(w, t->name, t->dtype, t->n_dims, ne, t->data));
    }
    CHECK_OK(tk_gguf_write(w, path));
    tk_gguf_writer_free(w);
    return path;
}

/* Loads path expecting failure st with every `needles` substring in the message. */
static void expect_fail(const char *what, const char *path, tk_status want, const char *n1, const char *n2) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = (tk_model *)0x1;
    tk_status st = tk_model_load(path, &mp, &m);
    const char *msg = tk_last_error();
    printf("%-22s -> %s: %s\n", what, tk_status_str(st), msg);
    CHECK(st == want, "%s: status %s, expected %s", what, tk_status_str(st), tk_status_str(want));
    CHECK(m == NULL, "%s: *out not NULL on failure", what);
    CHECK(!n1 || strstr(msg, n1), "%s: message lacks '%s': %s", what, n1, msg);
    CHECK(!n2 || strstr(msg, n2), "%s: message lacks '%s': %s", what, n2, msg);
    if (st == TK_OK) tk_model_free(m);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

int main(void) {
    const char *g32 = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    const char *l2c = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    const char *hf = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(g32 && l2c && hf ? g32 : NULL, "models/stories260K")) return tk_test_done("test_model_errors");
    snprintf(g_dir, sizeof g_dir, "/tmp/takumi-model-errors-XXXXXX");
    if (!mkdtemp(g_dir)) { CHECK(0, "mkdtemp"); return tk_test_done("test_model_errors"); }
    tk_gguf *src = NULL;
    CHECK_OK(tk_gguf_open(g32, &src));
    if (!src) return tk_test_done("test_model_errors");

    /* the unmodified rewrite loads (the writer round trip is sound) */
    edit none = {0};
    const char *p = write_variant(src, "ok", &none);
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(p, &mp, &m));
    tk_model_free(m);

    edit e1 = {.drop = "blk.3.ffn_up.weight"};
    p = write_variant(src, "missing", &e1);
    expect_fail("missing tensor", p, TK_ERR_NOT_FOUND, "blk.3.ffn_up.weight", "missing.gguf");
    edit e2 = {.reshape = "blk.2.attn_k.weight"};
    p = write_variant(src, "shape", &e2);
    expect_fail("wrong shape", p, TK_ERR_FORMAT, "blk.2.attn_k.weight", "{64, 31}");
    edit e3 = {.key_str = "general.architecture", .str_val = "gpt2"};
    p = write_variant(src, "arch", &e3);
    expect_fail("unsupported arch", p, TK_ERR_UNSUPPORTED, "'gpt2'", "arch.gguf");
    edit e4 = {.key_int = "llama.attention.head_count_kv", .int_val = 3};
    p = write_variant(src, "gqa", &e4);
    expect_fail("heads % kv_heads", p, TK_ERR_FORMAT, "n_kv_heads", "gqa.gguf");
    edit e5 = {.key_int = "llama.block_count", .int_val = 100000};
    p = write_variant(src, "layers", &e5);
    expect_fail("absurd layer count", p, TK_ERR_FORMAT, "n_layers", "layers.gguf");
    edit e6 = {.key_int = "llama.block_count", .int_val = 6};
    p = write_variant(src, "layers6", &e6);
    expect_fail("one layer too many", p, TK_ERR_NOT_FOUND, "blk.5.attn_norm.weight", NULL);
    edit e7 = {.key_f32 = "llama.attention.layer_norm_rms_epsilon", .f32_val = -1.0f};
    p = write_variant(src, "eps", &e7);
    expect_fail("negative eps", p, TK_ERR_FORMAT, "rms_eps", NULL);
    edit e8 = {.key_int = "llama.embedding_length", .int_val = 65};
    p = write_variant(src, "dim", &e8);
    expect_fail("dim vs tensors", p, TK_ERR_FORMAT, "token_embd.weight", NULL);

    /* a GGUF whose tensor has a dtype the matmul cannot use (I32) */
    {
        char path[512];
        snprintf(path, sizeof path, "%s/dtype.gguf", g_dir);
        tk_gguf_writer *w = tk_gguf_writer_new();
        CHECK_OK(tk_gguf_copy_kv(w, src));
        for (int64_t i = 0; i < tk_gguf_n_tensors(src); i++) {
            const tk_tensor_ref *t = tk_gguf_tensor(src, i);
            tk_dtype dt = !strcmp(t->name, "blk.0.attn_q.weight") ? TK_I32 : t->dtype;
            CHECK_OK(tk_gguf_add_tensor(w, t->name, dt, t->n_dims, t->ne, t->data));
        }
        CHECK_OK(tk_gguf_write(w, path));
        tk_gguf_writer_free(w);
        expect_fail("unusable dtype", path, TK_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "i32");
    }
    tk_gguf_close(src);

    /* truncated GGUF and llama2.c files: the container readers refuse them */
    {
        char *data = NULL, path[512];
        size_t n = 0;
        CHECK_OK(tk_read_file(g32, &data, &n));
        snprintf(path, sizeof path, "%s/trunc.gguf", g_dir);
        if (data) write_file(path, data, n / 2);
        tk_model_params q = tk_model_default_params();
        q.tokenizer = TK_TOKENIZER_NONE;
        m = NULL;
        tk_status st = tk_model_load(path, &q, &m);
        printf("%-22s -> %s: %s\n", "truncated gguf", tk_status_str(st), tk_last_error());
        CHECK(st != TK_OK && !m && strstr(tk_last_error(), "trunc.gguf"), "truncated gguf: %s", tk_last_error());
        free(data);
        CHECK_OK(tk_read_file(l2c, &data, &n));
        snprintf(path, sizeof path, "%s/trunc.bin", g_dir);
        if (data) write_file(path, data, n - 100);
        st = tk_model_load(path, &q, &m);
        printf("%-22s -> %s: %s\n", "truncated llama2.c", tk_status_str(st), tk_last_error());
        CHECK(st != TK_OK && !m && strstr(tk_last_error(), "trunc.bin"), "truncated llama2c: %s", tk_last_error());
        free(data);
    }

    /* HF folder: a config naming more layers than the weights hold; a config that is not JSON */
    {
        char dir[512], path[600], cfgp[600];
        snprintf(dir, sizeof dir, "%s/hf", g_dir);
        mkdir(dir, 0755);
        char *cfg = NULL, *st_data = NULL;
        size_t nst = 0;
        snprintf(path, sizeof path, "%s/config.json", hf);
        CHECK_OK(tk_read_file(path, &cfg, NULL));
        snprintf(path, sizeof path, "%s/model.safetensors", hf);
        CHECK_OK(tk_read_file(path, &st_data, &nst));
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (st_data) write_file(path, st_data, nst);
        char *six = cfg ? strstr(cfg, "\"num_hidden_layers\": 5") : NULL;
        CHECK(six != NULL, "stories260K hf config.json layout changed");
        if (six) six[strlen("\"num_hidden_layers\": ")] = '6';
        snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
        if (cfg) write_file(cfgp, cfg, strlen(cfg));
        expect_fail("hf missing layer", dir, TK_ERR_NOT_FOUND, "model.layers.5.input_layernorm.weight", "hf");
        write_file(cfgp, "{\"model_type\": ", 15);
        tk_model_params q = tk_model_default_params();
        q.tokenizer = TK_TOKENIZER_NONE;
        m = NULL;
        tk_status st = tk_model_load(dir, &q, &m);
        printf("%-22s -> %s: %s\n", "hf bad config.json", tk_status_str(st), tk_last_error());
        CHECK(st != TK_OK && !m && strstr(tk_last_error(), "config.json"), "bad config: %s", tk_last_error());
        free(cfg);
        free(st_data);
    }

    /* nothing there; a llama2.c checkpoint without any tokenizer beside it */
    expect_fail("no such path", "/nonexistent/model.gguf", TK_ERR_IO, "/nonexistent/model.gguf", NULL);
    {
        char *data = NULL, path[512];
        size_t n = 0;
        CHECK_OK(tk_read_file(l2c, &data, &n));
        snprintf(path, sizeof path, "%s/alone.bin", g_dir);
        if (data) write_file(path, data, n);
        free(data);
        m = NULL;
        tk_status st = tk_model_load(path, NULL, &m);
        printf("%-22s -> %s: %s\n", "llama2.c, no tokenizer", tk_status_str(st), tk_last_error());
        CHECK(st == TK_ERR_NOT_FOUND && !m && strstr(tk_last_error(), "--tokenizer"), "%s", tk_last_error());
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0, "cleanup");
    return tk_test_done("test_model_errors");
}
