/* llama2.c checkpoints: stories260K.bin (v0) against the same weights in HF safetensors
 * (f32 and bf16), which proves both readers and pins down the q/k row permutation
 * (HF = tk_permute_qk_rows_to_hf(Meta)); v1 ("ak42") and untied / freq_cis-less v0 images
 * built from the same tensors in export.py's order; truncated and corrupt headers. */
#include "test.h"
#include "core/core.h"
#include "model/hfconfig.h"
#include "io/llama2c.h"

/* Splits "blk.N.key" / "key" into key and layer (-1 for global). */
static void split_name(const char *name, char *key, size_t n, int *layer) {
    if (!strncmp(name, "blk.", 4)) {
        char *end;
        *layer = (int)strtol(name + 4, &end, 10);
        snprintf(key, n, "%s", end + 1);
    } else {
        *layer = -1;
        snprintf(key, n, "%s", name);
    }
}

static int is_qk(const char *key, int *heads, const tk_model_config *c) {
    if (!strcmp(key, "attn_q.weight")) { *heads = c->n_heads; return 1; }
    if (!strcmp(key, "attn_k.weight")) { *heads = c->n_kv_heads; return 1; }
    return 0;
}

static void compare_with_hf(const tk_llama2c *m, const char *hf_path, const char *bf16_path) {
    tk_safetensors *st = NULL, *sb = NULL;
    CHECK_OK(tk_st_open(hf_path, &st));
    CHECK_OK(tk_st_open(bf16_path, &sb));
    if (!st || !sb) { tk_st_close(st); tk_st_close(sb); return; }
    const tk_model_config *c = tk_llama2c_config(m);
    CHECK(tk_st_n_tensors(st) == tk_llama2c_n_tensors(m), "HF has %lld tensors, llama2.c %lld",
          (long long)tk_st_n_tensors(st), (long long)tk_llama2c_n_tensors(m));
    int n_exact = 0, n_perm = 0;
    for (int64_t i = 0; i < tk_llama2c_n_tensors(m); i++) {
        const tk_tensor_ref *t = tk_llama2c_tensor(m, i);
        char key[64], hf[128];
        int layer, heads;
        split_name(t->name, key, sizeof key, &layer);
        CHECK(tk_hf_weight_name(hf, sizeof hf, key, layer) != NULL, "no HF name for %s", t->name);
        const tk_tensor_ref *h = tk_st_find(st, hf);
        CHECK(h != NULL, "HF file lacks %s (for %s)", hf, t->name);
        if (!h) continue;
        CHECK(h->dtype == TK_F32 && t->dtype == TK_F32 && h->n_dims == t->n_dims && h->ne[0] == t->ne[0] &&
              h->ne[1] == t->ne[1] && h->nbytes == t->nbytes, "%s: shape/dtype differ from %s", t->name, hf);
        if (h->nbytes != t->nbytes) continue;
        if (is_qk(key, &heads, c)) {
            size_t row = (size_t)t->ne[0] * 4;
            uint8_t *to = malloc(t->nbytes), *from = malloc(t->nbytes);
            tk_permute_qk_rows_to_hf(to, t->data, heads, c->head_dim, row);
            tk_permute_qk_rows_from_hf(from, t->data, heads, c->head_dim, row);
            CHECK(!memcmp(to, h->data, h->nbytes), "%s: to_hf(llama2.c rows) != HF rows", t->name);
            /* the other direction and no permutation at all must not match: the test would
             * not notice a swapped permutation otherwise */
            CHECK(memcmp(from, h->data, h->nbytes) != 0, "%s: from_hf also matches", t->name);
            CHECK(memcmp(t->data, h->data, h->nbytes) != 0, "%s: unpermuted rows match", t->name);
            free(to);
            free(from);
            n_perm++;
        } else {
            CHECK(!memcmp(t->data, h->data, h->nbytes), "%s differs from %s", t->name, hf);
            n_exact++;
        }
    }
    CHECK(n_perm == 2 * c->n_layers && n_exact == (int)tk_llama2c_n_tensors(m) - n_perm, "compared %d + %d", n_exact, n_perm);
    /* bf16 folder = f32 weights rounded to nearest even */
    int64_t bad = 0, total = 0;
    for (int64_t i = 0; i < tk_st_n_tensors(st); i++) {
        const tk_tensor_ref *f = tk_st_tensor(st, i), *b = tk_st_find(sb, f->name);
        CHECK(b && b->dtype == TK_BF16 && b->ne[0] == f->ne[0] && b->ne[1] == f->ne[1], "bf16 %s", f->name);
        if (!b || b->nbytes * 2 != f->nbytes) continue;
        for (int64_t k = 0; k < tk_tensor_nelems(f); k++) {
            float x;
            uint16_t y;
            memcpy(&x, (const char *)f->data + 4 * k, 4);
            memcpy(&y, (const char *)b->data + 2 * k, 2);
            bad += tk_f32_to_bf16(x) != y;
            total++;
        }
    }
    CHECK(bad == 0 && total == 260032, "%lld of %lld bf16 values differ from rounded f32", (long long)bad, (long long)total);
    tk_st_close(st);
    tk_st_close(sb);
}

/* A writable image builder. */
typedef struct { uint8_t *p; size_t n, cap; } img;
static void put(img *b, const void *src, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_i32(img *b, int32_t v) { put(b, &v, 4); }
static void put_t(img *b, const tk_llama2c *m, const char *name) {
    const tk_tensor_ref *t = tk_llama2c_find(m, name);
    if (!t) { fprintf(stderr, "missing %s\n", name); exit(1); }
    put(b, t->data, t->nbytes);
}
static void put_layers(img *b, const tk_llama2c *m, const char *key) {
    char nm[64];
    for (int l = 0; l < tk_llama2c_config(m)->n_layers; l++) { snprintf(nm, sizeof nm, "blk.%d.%s", l, key); put_t(b, m, nm); }
}

static void same_tensors(const tk_llama2c *a, const tk_llama2c *b, const char *what) {
    int diff = 0;
    for (int64_t i = 0; i < tk_llama2c_n_tensors(a); i++) {
        const tk_tensor_ref *x = tk_llama2c_tensor(a, i), *y = tk_llama2c_find(b, x->name);
        if (!y || y->nbytes != x->nbytes || y->ne[0] != x->ne[0] || y->ne[1] != x->ne[1] || memcmp(x->data, y->data, x->nbytes)) {
            diff++;
            fprintf(stderr, "%s: %s differs\n", what, x->name);
        }
    }
    CHECK(diff == 0, "%s: %d tensors differ", what, diff);
}

static void test_other_layouts(const tk_llama2c *m, const uint8_t *file, size_t len) {
    const tk_model_config *c = tk_llama2c_config(m);
    const size_t freq_bytes = (size_t)c->max_seq * (size_t)c->head_dim * 4;
    tk_llama2c *o = NULL;
    /* v0 without freq_cis: same weights */
    img b = {0};
    put(&b, file, len - freq_bytes);
    CHECK_OK(tk_llama2c_open_memory(b.p, b.n, "nofreq.bin", &o));
    if (o) { same_tensors(m, o, "v0 without freq_cis"); tk_llama2c_close(o); }
    /* v0 untied: negative vocab, classifier appended (here: embeddings reversed, so it differs) */
    b.n = 0;
    put(&b, file, len);
    int32_t negv = -c->n_vocab;
    memcpy(b.p + 20, &negv, 4);
    const tk_tensor_ref *emb = tk_llama2c_find(m, "token_embd.weight");
    float *cls = malloc(emb->nbytes);
    for (size_t k = 0; k < emb->nbytes / 4; k++) memcpy(&cls[k], (const char *)emb->data + emb->nbytes - 4 * (k + 1), 4);
    put(&b, cls, emb->nbytes);
    CHECK_OK(tk_llama2c_open_memory(b.p, b.n, "untied.bin", &o));
    if (o) {
        const tk_tensor_ref *out = tk_llama2c_find(o, "output.weight");
        CHECK(!tk_llama2c_config(o)->tied_embeddings && tk_llama2c_n_tensors(o) == tk_llama2c_n_tensors(m) + 1, "untied config");
        CHECK(out && out->ne[0] == c->dim && out->ne[1] == c->n_vocab && !memcmp(out->data, cls, emb->nbytes), "untied classifier");
        same_tensors(m, o, "v0 untied");
        tk_llama2c_close(o);
    }
    /* v1 ("ak42"), in version1_export's order, tied and untied */
    for (int shared = 1; shared >= 0; shared--) {
        b.n = 0;
        put_i32(&b, 0x616b3432);
        put_i32(&b, 1);
        put_i32(&b, c->dim); put_i32(&b, c->hidden_dim); put_i32(&b, c->n_layers); put_i32(&b, c->n_heads);
        put_i32(&b, c->n_kv_heads); put_i32(&b, c->n_vocab); put_i32(&b, c->max_seq);
        uint8_t flag = (uint8_t)shared, zero[256] = {0};
        put(&b, &flag, 1);
        put(&b, zero, 256 - b.n);
        put_layers(&b, m, "attn_norm.weight");
        put_layers(&b, m, "ffn_norm.weight");
        put_t(&b, m, "output_norm.weight");
        put_t(&b, m, "token_embd.weight");
        put_layers(&b, m, "attn_q.weight");
        put_layers(&b, m, "attn_k.weight");
        put_layers(&b, m, "attn_v.weight");
        put_layers(&b, m, "attn_output.weight");
        put_layers(&b, m, "ffn_gate.weight"); /* w1 */
        put_layers(&b, m, "ffn_down.weight"); /* w2 */
        put_layers(&b, m, "ffn_up.weight");   /* w3 */
        if (!shared) put(&b, cls, emb->nbytes);
        CHECK_OK(tk_llama2c_open_memory(b.p, b.n, "v1.bin", &o));
        if (!o) continue;
        CHECK(tk_llama2c_version(o) == 1 && tk_llama2c_config(o)->tied_embeddings == (shared == 1), "v1 header");
        same_tensors(m, o, shared ? "v1 tied" : "v1 untied");
        if (!shared) {
            const tk_tensor_ref *out = tk_llama2c_find(o, "output.weight");
            CHECK(out && !memcmp(out->data, cls, emb->nbytes), "v1 classifier");
        }
        tk_llama2c_close(o);
        /* every truncation of the v1 image fails */
        int acc = 0;
        for (size_t n = 0; n < b.n; n += (n < 300 ? 1 : 97))
            if (tk_llama2c_open_memory(b.p, n, "v1.bin", &o) == TK_OK) { acc++; tk_llama2c_close(o); }
        CHECK(acc == 0, "%d truncated v1 images accepted", acc);
    }
    /* v1 header corruptions */
    uint8_t saved[4];
    memcpy(saved, b.p + 4, 4);
    int32_t v = 2;
    memcpy(b.p + 4, &v, 4);
    CHECK(tk_llama2c_open_memory(b.p, b.n, "v2.bin", &o) == TK_ERR_UNSUPPORTED, "v2 accepted");
    CHECK(strstr(tk_last_error(), "v2.bin") && strstr(tk_last_error(), "version 2"), "message: %s", tk_last_error());
    v = 9;
    memcpy(b.p + 4, &v, 4);
    CHECK(tk_llama2c_open_memory(b.p, b.n, "v9.bin", &o) == TK_ERR_FORMAT, "v9 accepted");
    memcpy(b.p + 4, saved, 4);
    b.p[36] = 7;
    CHECK(tk_llama2c_open_memory(b.p, b.n, "flag.bin", &o) == TK_ERR_FORMAT, "bad shared flag accepted");
    free(cls);
    free(b.p);
}

static void test_corrupt(const uint8_t *file, size_t len, size_t freq_bytes) {
    tk_llama2c *o = NULL;
    /* no length but the two exact ones (with and without freq_cis) is accepted: every
     * length up to 4 KB, every 61st after that, and every one near the exact sizes */
    uint8_t *buf = malloc(len + 16);
    memcpy(buf, file, len);
    memset(buf + len, 0, 16);
    size_t accepted = 0, bad_len = 0;
    for (size_t n = 0; n <= len + 16; n += n < 4096 ? 1 : 61) {
        for (int near = 0; near < 2; near++) {
            size_t exact = near ? len : len - freq_bytes;
            if (n + 64 > exact && n < exact + 64) {
                for (size_t k = exact - 64; k <= exact + 16; k++)
                    if (tk_llama2c_open_memory(buf, k, "stories260K.bin", &o) == TK_OK) {
                        accepted++;
                        if (k != exact) bad_len = k;
                        tk_llama2c_close(o);
                    }
                n = exact + 64;
            }
        }
        if (n > len + 16) break;
        tk_status s = tk_llama2c_open_memory(buf, n, "stories260K.bin", &o);
        if (s == TK_OK) {
            accepted++;
            if (n != len && n != len - freq_bytes) bad_len = n;
            tk_llama2c_close(o);
        }
    }
    CHECK(accepted == 2 && bad_len == 0, "%zu lengths accepted (a wrong one: %zu)", accepted, bad_len);
    CHECK(tk_llama2c_open_memory(buf, len - 4, "stories260K.bin", &o) == TK_ERR_FORMAT, "truncated");
    CHECK(strstr(tk_last_error(), "stories260K.bin") && strstr(tk_last_error(), "truncated"), "message: %s", tk_last_error());
    /* header fields: dim, hidden, layers, heads, kv heads, vocab, seq */
    static const struct { int field; int32_t value; } bad[] = {
        {0, 0}, {0, -64}, {0, 1 << 20}, {0, 63}, {1, 0}, {1, -1}, {2, 0}, {2, 100000}, {3, 0}, {3, 3}, {3, 128},
        {4, 0}, {4, 3}, {4, 16}, {5, 0}, {5, INT32_MIN}, {5, 1 << 30}, {6, 0}, {6, -1}, {6, 1 << 30},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(buf, file, 28);
        memcpy(buf + 4 * bad[i].field, &bad[i].value, 4);
        tk_status s = tk_llama2c_open_memory(buf, len, "hdr.bin", &o);
        CHECK(s == TK_ERR_FORMAT, "header field %d = %d: %s", bad[i].field, (int)bad[i].value, tk_status_str(s));
        CHECK(strstr(tk_last_error(), "hdr.bin"), "message: %s", tk_last_error());
    }
    free(buf);
    /* through a real file: the path is named */
    char path[] = "/tmp/tk_test_l2c_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, file, len / 2) == (ssize_t)(len / 2), "temp file");
    if (fd >= 0) close(fd);
    CHECK(tk_llama2c_open(path, &o) == TK_ERR_FORMAT, "truncated file accepted");
    CHECK(strstr(tk_last_error(), path), "message: %s", tk_last_error());
    unlink(path);
    CHECK(tk_llama2c_open(path, &o) == TK_ERR_IO && strstr(tk_last_error(), path), "missing file: %s", tk_last_error());
    CHECK(o == NULL, "handle left after failure");
}

int main(void) {
    const char *bin = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    const char *hf = tk_test_shared("models/stories260K/hf/model.safetensors");
    const char *bf = tk_test_shared("models/stories260K/hf-bf16/model.safetensors");
    const char *cfgp = tk_test_shared("models/stories260K/hf/config.json");
    if (tk_test_require(bin && hf && bf && cfgp ? bin : NULL, "models/stories260K (llama2c + hf + hf-bf16)"))
        return tk_test_done("test_llama2c");
    tk_llama2c *m = NULL;
    CHECK_OK(tk_llama2c_open(bin, &m));
    if (!m) return tk_test_done("test_llama2c");
    const tk_model_config *c = tk_llama2c_config(m);
    CHECK(tk_llama2c_version(m) == 0, "v0");
    /* the model card: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512, seq 512, tied */
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4 &&
          c->n_vocab == 512 && c->max_seq == 512 && c->head_dim == 8 && c->tied_embeddings, "stories260K header");
    CHECK(c->rope_interleaved == 1 && c->rms_eps == 1e-5f && c->rope_theta == 10000.0f && !c->qkv_bias, "run.c conventions");
    CHECK(!strcmp(c->arch, "llama") && !strcmp(c->name, "stories260K.bin"), "arch/name %s %s", c->arch, c->name);
    CHECK(tk_llama2c_n_tensors(m) == 2 + 5 * 9, "tensor count %lld", (long long)tk_llama2c_n_tensors(m));
    int64_t params = 0;
    for (int64_t i = 0; i < tk_llama2c_n_tensors(m); i++) {
        const tk_tensor_ref *t = tk_llama2c_tensor(m, i);
        params += tk_tensor_nelems(t);
        CHECK(tk_llama2c_find(m, t->name) == t, "find %s", t->name);
        CHECK((uintptr_t)t->data % 4 == 0, "%s aligned", t->name);
    }
    CHECK(params == 260032, "parameters %lld, model card says 260,032", (long long)params);
    const tk_tensor_ref *q = tk_llama2c_find(m, "blk.4.attn_k.weight"), *dn = tk_llama2c_find(m, "blk.0.ffn_down.weight");
    CHECK(q && q->ne[0] == 64 && q->ne[1] == 32, "attn_k {64, 32}");
    CHECK(dn && dn->ne[0] == 172 && dn->ne[1] == 64, "ffn_down {172, 64}");
    CHECK(!tk_llama2c_find(m, "output.weight") && !tk_llama2c_find(m, "blk.5.attn_q.weight") &&
          !tk_llama2c_find(m, "blk.01.attn_q.weight") && !tk_llama2c_find(m, "blk.0.nope") && !tk_llama2c_find(m, "blk."),
          "absent names");
    CHECK(tk_llama2c_tensor(m, -1) == NULL && tk_llama2c_tensor(m, 47) == NULL, "index bounds");

    /* the HF config of the same model agrees on every size */
    tk_model_config hc;
    CHECK_OK(tk_hf_config_load(cfgp, &hc, NULL));
    CHECK(hc.dim == c->dim && hc.hidden_dim == c->hidden_dim && hc.n_layers == c->n_layers && hc.n_heads == c->n_heads &&
          hc.n_kv_heads == c->n_kv_heads && hc.head_dim == c->head_dim && hc.n_vocab == c->n_vocab &&
          hc.tied_embeddings == c->tied_embeddings && hc.rms_eps == c->rms_eps && hc.rope_theta == c->rope_theta,
          "HF config and llama2.c header disagree");

    compare_with_hf(m, hf, bf);

    char *file = NULL;
    size_t len = 0;
    CHECK_OK(tk_read_file(bin, &file, &len));
    if (file) {
        size_t freq = (size_t)c->max_seq * (size_t)c->head_dim * 4;
        test_other_layouts(m, (const uint8_t *)file, len);
        test_corrupt((const uint8_t *)file, len, freq);
        free(file);
    }
    tk_llama2c_close(m);
    tk_llama2c_close(NULL);
    return tk_test_done("test_llama2c");
}
