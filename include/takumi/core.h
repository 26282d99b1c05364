/* takumi core: status codes, errors, dtypes, tensor descriptors. */
#ifndef TAKUMI_CORE_H
#define TAKUMI_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TK_VERSION "0.1.0"

typedef enum tk_status {
    TK_OK = 0,
    TK_ERR_ARG,         /* invalid argument from the caller */
    TK_ERR_IO,          /* open/read/write/mmap failed */
    TK_ERR_FORMAT,      /* malformed or corrupt input file */
    TK_ERR_UNSUPPORTED, /* well-formed but not supported (dtype, architecture…) */
    TK_ERR_NOMEM,       /* allocation failed or a size overflowed */
    TK_ERR_NOT_FOUND,   /* a named key/tensor/token is missing */
    TK_ERR_RANGE,       /* a value is outside what is allowed */
    TK_ERR_INTERNAL,    /* a bug in takumi */
    TK_ERR_BUSY,        /* a resource (a run folder) is held by another process */
} tk_status;

/* Returns the message of the last failure on this thread ("" if none); valid until the next failure. */
const char *tk_last_error(void);
/* Returns a short constant name for a status code, e.g. "format error". */
const char *tk_status_str(tk_status st);
/* Clears this thread's last error message. */
void tk_clear_error(void);

/* Element types. Quantized types are stored in blocks exactly as in GGUF (except TK_NF4, takumi's own). */
typedef enum tk_dtype {
    TK_F32 = 0, TK_F16, TK_BF16, TK_F64,
    TK_I8, TK_I16, TK_I32, TK_I64,
    TK_Q8_0, TK_Q4_0, TK_Q4_1, TK_Q5_0, TK_Q5_1, TK_Q8_1,
    TK_Q2_K, TK_Q3_K, TK_Q4_K, TK_Q5_K, TK_Q6_K, TK_Q8_K,
    TK_NF4, /* not a GGUF type: QLoRA's NormalFloat4, blocks of 64 with a resolved f32 scale (src/core/nf4.h) */
    TK_DTYPE_COUNT
} tk_dtype;

/* Returns the dtype's name ("f32", "q4_1", …). */
const char *tk_dtype_name(tk_dtype t);
/* Returns elements per block (1 for plain types). */
int64_t tk_dtype_block_elems(tk_dtype t);
/* Returns bytes per block (bytes per element for plain types). */
size_t tk_dtype_block_bytes(tk_dtype t);
/* Computes the byte size of n elements into *out; fails (TK_ERR_FORMAT) if n is not a whole number of blocks or overflows. */
tk_status tk_dtype_nbytes(tk_dtype t, int64_t n, size_t *out);

/* A view of a tensor stored somewhere else (usually an mmap'd file).
 * ne[] is in ggml order: ne[0] is the innermost, contiguous dimension.
 * An HF weight of torch shape [out, in] has ne[0] = in, ne[1] = out. */
#define TK_MAX_DIMS 4
typedef struct tk_tensor_ref {
    const char *name;       /* owned by the container it came from */
    tk_dtype dtype;
    int n_dims;
    int64_t ne[TK_MAX_DIMS]; /* unused dims are 1 */
    const void *data;       /* first byte; bounds-checked against the file */
    size_t nbytes;
} tk_tensor_ref;

/* Returns the number of elements of a tensor ref (product of ne). */
int64_t tk_tensor_nelems(const tk_tensor_ref *t);

/* Converts rows of any supported dtype to f32: n elements starting at src (n a multiple of the block size). Returns TK_ERR_UNSUPPORTED for unknown dtypes. */
tk_status tk_dequantize(tk_dtype t, const void *src, float *dst, int64_t n);
/* Converts n f32 values to dtype t (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q8_1, Q4_K, Q8_K, NF4); n a multiple of the
 * block size. NF4 quantizes the n values as one bitsandbytes tensor (the double quantization's mean and groups span all n). */
tk_status tk_quantize(tk_dtype t, const float *src, void *dst, int64_t n);

/* IEEE half / bfloat16 conversions (round-to-nearest-even). */
float tk_f16_to_f32(uint16_t h);
uint16_t tk_f32_to_f16(float f);
float tk_bf16_to_f32(uint16_t h);
uint16_t tk_f32_to_bf16(float f);

/* Growable byte buffer (always NUL-terminated after an append); zero-initialise, free with tk_buf_free. */
typedef struct tk_buf { char *data; size_t len, cap; } tk_buf;
tk_status tk_buf_reserve(tk_buf *b, size_t extra);
tk_status tk_buf_append(tk_buf *b, const void *p, size_t n);
tk_status tk_buf_printf(tk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tk_buf_free(tk_buf *b);

/* Growable int32 vector (token ids); zero-initialise, free with tk_ivec_free. */
typedef struct tk_ivec { int32_t *data; size_t len, cap; } tk_ivec;
tk_status tk_ivec_push(tk_ivec *v, int32_t x);
tk_status tk_ivec_reserve(tk_ivec *v, size_t extra);
void tk_ivec_free(tk_ivec *v);

/* Sets the number of compute threads (0 = all cores, or OMP_NUM_THREADS when the environment sets it). Process-wide: not for concurrent callers. */
void tk_set_threads(int n);
/* Returns the number of compute threads in use. */
int tk_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
