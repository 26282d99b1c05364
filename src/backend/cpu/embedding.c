/* Token embedding: forward gathers (and dequantizes) only the rows it needs from a
 * table of any dtype; backward scatters row gradients into an f32 table gradient. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "core/core.h"

tk_status tk_cpu_embedding_forward(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table) {
    size_t row_bytes;
    tk_status st = tk_embedding_check(out, ids, T, table, &row_bytes);
    if (st) return st;
    int64_t C = table->ne[0];
    const uint8_t *base = table->data;
    tk_status err = TK_OK;
    #pragma omp parallel for schedule(static) if (T * C > 65536)
    for (int64_t t = 0; t < T; t++) {
        tk_status s = tk_cpu_dequant_row(table->dtype, base + (size_t)ids[t] * row_bytes, out + t * C, C);
        if (s) {
            #pragma omp atomic write
            err = s;
        }
    }
    return err;
}

void tk_cpu_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C) {
    /* Serial over tokens: the same id may repeat, and a fixed order keeps the sum bit-identical. */
    for (int64_t t = 0; t < T; t++) {
        float *d = dtable + (int64_t)ids[t] * C;
        const float *g = dout + t * C;
        for (int64_t c = 0; c < C; c++) d[c] += g[c];
    }
}
