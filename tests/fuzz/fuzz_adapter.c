/* libFuzzer target: adapter files (src/peft/adapter_io.c, lora_*.c). The input is read twice:
 *   - as a GGUF image -> tk_adapter_from_gguf;
 *   - as a PEFT folder packed into one buffer: 4-byte little-endian length n, n bytes of
 *     adapter_config.json, then the adapter_model.safetensors image.
 * Loading must either fail with a message or yield modules whose every value is readable
 * (touched here, so ASan notices a bad size) with consistent ranks and layer bounds. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "takumi.h"
#include "peft/adapter_io.h"

static void check(tk_status st, tk_adapter *a) {
    if (st != TK_OK) {
        if (!tk_last_error()[0] || a) __builtin_trap(); /* a failure must say why and return nothing */
        return;
    }
    tk_adapter_info info = tk_adapter_get_info(a);
    if (!a || !info.method || !info.path || !info.format || !info.arch || !info.base_model) __builtin_trap();
    const tk_lora_file *f = tk_adapter_lora_file(a); /* the checks below are LoRA's (NULL: another method's file) */
    if (f && (f->r < 1 || f->r > 4096 || f->n_mods < 1)) __builtin_trap();
    volatile float sink = 0;
    for (int64_t i = 0; f && i < f->n_mods; i++) {
        const tk_lora_file_module *m = &f->mods[i];
        if (m->layer < f->min_layer || m->layer > f->max_layer || (unsigned)m->which >= TK_LIN_COUNT) __builtin_trap();
        if (!(f->targets & (1u << m->which)) || m->K < 1 || m->N < 1) __builtin_trap();
        if (i && (m->layer < f->mods[i - 1].layer || (m->layer == f->mods[i - 1].layer && m->which <= f->mods[i - 1].which)))
            __builtin_trap();
        sink += m->A[0] + m->A[m->K * f->r - 1] + m->B[0] + m->B[m->N * f->r - 1];
    }
    (void)sink;
    tk_adapter_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_gguf *g = NULL;
    if (tk_gguf_open_memory(data, size, "fuzz.gguf", &g) == TK_OK) {
        tk_adapter *a = NULL;
        check(tk_adapter_from_gguf(g, &a), a);
        tk_gguf_close(g);
    }
    if (size < 4) return 0;
    uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    if (n > size - 4) return 0;
    tk_safetensors *sf = NULL;
    if (tk_st_open_memory(data + 4 + n, size - 4 - n, "fuzz.safetensors", &sf) == TK_OK) {
        tk_adapter *a = NULL;
        check(tk_adapter_from_peft((const char *)data + 4, n, sf, "fuzz", &a), a);
        tk_st_close(sf);
    }
    return 0;
}
