/* libFuzzer target for the GGUF reader: parse the input as a GGUF image, then touch
 * everything a model loader would — every key with every typed getter, every array
 * element, every tensor by index and by name, and the first block of each tensor
 * dequantized — and copy the metadata into a writer. Any crash, sanitizer report or
 * leak is a bug; a rejected input is fine (it must only carry a message). */
#include "takumi.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_gguf *g = NULL;
    if (tk_gguf_open_memory(data, size, "fuzz.gguf", &g) != TK_OK) {
        if (g || !tk_last_error()[0]) abort(); /* failure must leave no handle and say why */
        return 0;
    }
    volatile double sink = 0;
    for (int64_t i = 0; i < tk_gguf_n_kv(g); i++) {
        const char *key = tk_gguf_kv_key(g, i);
        int64_t v;
        uint64_t u;
        double f;
        bool b;
        const char *s;
        size_t n;
        if (tk_gguf_get_i64(g, key, &v)) sink += (double)v;
        if (tk_gguf_get_u64(g, key, &u)) sink += (double)u;
        if (tk_gguf_get_f64(g, key, &f)) sink += f;
        if (tk_gguf_get_bool(g, key, &b)) sink += b;
        if (tk_gguf_get_str(g, key, &s, &n)) sink += n ? (unsigned char)s[n - 1] : 0;
        tk_gguf_type et;
        int64_t cnt;
        if (tk_gguf_get_arr(g, key, &et, &cnt)) {
            if (tk_gguf_find_key(g, key) != i) abort();
            for (int64_t k = 0; k < cnt && k < 4096; k++) {
                s = tk_gguf_arr_str(g, key, k, &n);
                if (s) sink += n + (s[n] != 0);
                if (tk_gguf_arr_f64(g, key, k, &f)) sink += f;
                if (tk_gguf_arr_i64(g, key, k, &v)) sink += (double)v;
            }
            tk_gguf_arr_data(g, key, &et, &cnt);
        }
    }
    float out[256];
    for (int64_t i = 0; i < tk_gguf_n_tensors(g); i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(g, i);
        if (tk_gguf_find_tensor(g, t->name) != t) abort();
        int64_t blk = tk_dtype_block_elems(t->dtype);
        if (tk_tensor_nelems(t) >= blk && t->nbytes >= tk_dtype_block_bytes(t->dtype)) {
            if (tk_dequantize(t->dtype, t->data, out, blk) != TK_OK) abort();
            sink += out[0];
        }
        /* the last byte must be readable too */
        if (t->nbytes) sink += ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    tk_gguf_writer *w = tk_gguf_writer_new();
    if (w && tk_gguf_copy_kv(w, g) != TK_OK && !tk_last_error()[0]) abort();
    tk_gguf_writer_free(w);
    (void)sink;
    tk_gguf_close(g);
    return 0;
}
