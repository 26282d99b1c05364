/* dtype table and f16/bf16 conversions. Block layouts match GGUF/ggml. */
#include "core/core.h"

static const struct { const char *name; int64_t blk; size_t bytes; } k_dtypes[TK_DTYPE_COUNT] = {
    [TK_F32] = {"f32", 1, 4},   [TK_F16] = {"f16", 1, 2},   [TK_BF16] = {"bf16", 1, 2},
    [TK_F64] = {"f64", 1, 8},   [TK_I8] = {"i8", 1, 1},     [TK_I16] = {"i16", 1, 2},
    [TK_I32] = {"i32", 1, 4},   [TK_I64] = {"i64", 1, 8},
    [TK_Q8_0] = {"q8_0", 32, 34},  [TK_Q4_0] = {"q4_0", 32, 18}, [TK_Q4_1] = {"q4_1", 32, 20},
    [TK_Q5_0] = {"q5_0", 32, 22},  [TK_Q5_1] = {"q5_1", 32, 24}, [TK_Q8_1] = {"q8_1", 32, 36},
    [TK_Q2_K] = {"q2_k", 256, 84}, [TK_Q3_K] = {"q3_k", 256, 110}, [TK_Q4_K] = {"q4_k", 256, 144},
    [TK_Q5_K] = {"q5_k", 256, 176}, [TK_Q6_K] = {"q6_k", 256, 210}, [TK_Q8_K] = {"q8_k", 256, 292},
    [TK_NF4] = {"nf4", 64, 36},
};

const char *tk_dtype_name(tk_dtype t) { return (unsigned)t < TK_DTYPE_COUNT ? k_dtypes[t].name : "?"; }
int64_t tk_dtype_block_elems(tk_dtype t) { return (unsigned)t < TK_DTYPE_COUNT ? k_dtypes[t].blk : 0; }
size_t tk_dtype_block_bytes(tk_dtype t) { return (unsigned)t < TK_DTYPE_COUNT ? k_dtypes[t].bytes : 0; }

tk_status tk_dtype_nbytes(tk_dtype t, int64_t n, size_t *out) {
    if ((unsigned)t >= TK_DTYPE_COUNT) return tk_fail(TK_ERR_UNSUPPORTED, "unknown dtype %d", (int)t);
    if (n < 0) return tk_fail(TK_ERR_FORMAT, "negative element count");
    int64_t blk = k_dtypes[t].blk;
    if (n % blk) return tk_fail(TK_ERR_FORMAT, "%lld elements is not a whole number of %s blocks (%lld)",
                                (long long)n, k_dtypes[t].name, (long long)blk);
    if (!tk_mul_ok((size_t)(n / blk), k_dtypes[t].bytes, out))
        return tk_fail(TK_ERR_FORMAT, "tensor byte size overflows");
    return TK_OK;
}

int64_t tk_tensor_nelems(const tk_tensor_ref *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims && i < TK_MAX_DIMS; i++) n *= t->ne[i];
    return n;
}

float tk_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t tk_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int32_t exp = (int32_t)e - 127 + 15;
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

float tk_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t tk_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
