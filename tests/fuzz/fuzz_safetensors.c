/* libFuzzer target: any byte string as a safetensors image. Opening must either fail
 * with a message or yield tensors whose every byte lies inside the image (touched here,
 * so ASan notices a bad bound) and which are found again by name. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "takumi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_safetensors *st = NULL;
    if (tk_st_open_memory(data, size, "fuzz.safetensors", &st) != TK_OK) {
        if (!tk_last_error()[0]) __builtin_trap(); /* a failure must say why */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < tk_st_n_tensors(st); i++) {
        const tk_tensor_ref *t = tk_st_tensor(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) __builtin_trap();
        if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1];
        size_t nb;
        if (tk_dtype_nbytes(t->dtype, tk_tensor_nelems(t), &nb) != TK_OK || nb != t->nbytes) __builtin_trap();
        if (tk_st_find(st, t->name) != t) __builtin_trap();
    }
    (void)tk_st_metadata(st, "format");
    (void)sink;
    tk_st_close(st);
    return 0;
}
