/* GGUF v2/v3 reader and writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
 * The reader maps the file read-only; every offset, length and count read from the
 * file is bounds-checked before use. Tensor refs point into the mapping. A handle does
 * not change after open, so many threads may read it at once. Key and tensor-name
 * lookups are hashed and string-array elements are indexed at open (O(1) access);
 * every returned pointer lives until tk_gguf_close. */
#ifndef TAKUMI_GGUF_H
#define TAKUMI_GGUF_H
#include "takumi/core.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum tk_gguf_type {
    TK_GGUF_UINT8 = 0, TK_GGUF_INT8 = 1, TK_GGUF_UINT16 = 2, TK_GGUF_INT16 = 3,
    TK_GGUF_UINT32 = 4, TK_GGUF_INT32 = 5, TK_GGUF_FLOAT32 = 6, TK_GGUF_BOOL = 7,
    TK_GGUF_STRING = 8, TK_GGUF_ARRAY = 9, TK_GGUF_UINT64 = 10, TK_GGUF_INT64 = 11,
    TK_GGUF_FLOAT64 = 12,
} tk_gguf_type;

typedef struct tk_gguf tk_gguf;

/* Opens and validates a GGUF file; on failure *out is NULL and the message names the file and the problem. Close with tk_gguf_close. */
tk_status tk_gguf_open(const char *path, tk_gguf **out);
/* Parses a GGUF image already in memory (not copied: buf must outlive the handle); name is used in messages. */
tk_status tk_gguf_open_memory(const void *buf, size_t len, const char *name, tk_gguf **out);
/* Releases the handle and its mapping; accepts NULL. */
void tk_gguf_close(tk_gguf *g);

/* Returns the file's GGUF version (2 or 3). */
uint32_t tk_gguf_version(const tk_gguf *g);
/* Returns the path (or name) the handle was opened with. */
const char *tk_gguf_path(const tk_gguf *g);

/* Metadata: number of key/value pairs, and key i's name and type. */
int64_t tk_gguf_n_kv(const tk_gguf *g);
const char *tk_gguf_kv_key(const tk_gguf *g, int64_t i);
tk_gguf_type tk_gguf_kv_type(const tk_gguf *g, int64_t i);
/* Returns the index of key, or -1 when absent. */
int64_t tk_gguf_find_key(const tk_gguf *g, const char *key);

/* Typed getters by key; return false when the key is absent or has an incompatible type.
 * Integer getters accept any integer type (and bool) whose value fits; float getters accept f32/f64. */
bool tk_gguf_get_i64(const tk_gguf *g, const char *key, int64_t *out);
bool tk_gguf_get_f64(const tk_gguf *g, const char *key, double *out);
/* Unsigned getter: any integer type (and bool) whose value is >= 0; the only way to read a u64 above INT64_MAX. */
bool tk_gguf_get_u64(const tk_gguf *g, const char *key, uint64_t *out);
bool tk_gguf_get_bool(const tk_gguf *g, const char *key, bool *out);
/* String value (not NUL-terminated in the file: use *len; a NUL-terminated copy is also kept, so s[len]==0). */
bool tk_gguf_get_str(const tk_gguf *g, const char *key, const char **s, size_t *len);
/* Array: element type and count. */
bool tk_gguf_get_arr(const tk_gguf *g, const char *key, tk_gguf_type *elem_type, int64_t *n);
/* i-th string of a string array (NUL-terminated copy; *len may be NULL); NULL if out of range or not a string array. */
const char *tk_gguf_arr_str(const tk_gguf *g, const char *key, int64_t i, size_t *len);
/* i-th element of a numeric array converted to double / int64; false if out of range or not numeric. */
bool tk_gguf_arr_f64(const tk_gguf *g, const char *key, int64_t i, double *out);
bool tk_gguf_arr_i64(const tk_gguf *g, const char *key, int64_t i, int64_t *out);
/* Raw little-endian elements of a numeric/bool array (inside the file image, unaligned: read with memcpy); NULL if absent or not numeric. */
const void *tk_gguf_arr_data(const tk_gguf *g, const char *key, tk_gguf_type *elem_type, int64_t *n);

/* Tensors: count, i-th descriptor, lookup by name (NULL when absent). */
int64_t tk_gguf_n_tensors(const tk_gguf *g);
const tk_tensor_ref *tk_gguf_tensor(const tk_gguf *g, int64_t i);
const tk_tensor_ref *tk_gguf_find_tensor(const tk_gguf *g, const char *name);
/* Data alignment in bytes (general.alignment, default 32) and the file offset where tensor data starts. */
size_t tk_gguf_alignment(const tk_gguf *g);
size_t tk_gguf_data_offset(const tk_gguf *g);
/* Maps a ggml type id to a tk_dtype (false for unknown ids). */
bool tk_gguf_dtype_from_ggml(uint32_t ggml_type, tk_dtype *out);
/* Maps a tk_dtype to its ggml type id (false if it has none). */
bool tk_gguf_dtype_to_ggml(tk_dtype t, uint32_t *out);

/* Writer: collect metadata and tensors, then write the file atomically. */
typedef struct tk_gguf_writer tk_gguf_writer;
/* Returns a new writer or NULL (out of memory). */
tk_gguf_writer *tk_gguf_writer_new(void);
/* Frees the writer; accepts NULL. */
void tk_gguf_writer_free(tk_gguf_writer *w);
/* Set metadata (a key set twice keeps the last value). Strings are copied. */
tk_status tk_gguf_set_u32(tk_gguf_writer *w, const char *key, uint32_t v);
tk_status tk_gguf_set_i32(tk_gguf_writer *w, const char *key, int32_t v);
tk_status tk_gguf_set_u64(tk_gguf_writer *w, const char *key, uint64_t v);
tk_status tk_gguf_set_f32(tk_gguf_writer *w, const char *key, float v);
tk_status tk_gguf_set_bool(tk_gguf_writer *w, const char *key, bool v);
tk_status tk_gguf_set_str(tk_gguf_writer *w, const char *key, const char *v);
/* Any fixed-size scalar type (u8..f64, bool): value points to a C value of that type (bool for BOOL). */
tk_status tk_gguf_set_scalar(tk_gguf_writer *w, const char *key, tk_gguf_type type, const void *value);
tk_status tk_gguf_set_arr_str(tk_gguf_writer *w, const char *key, const char *const *v, int64_t n);
/* Numeric array of elem_type (not STRING/ARRAY); data is copied. */
tk_status tk_gguf_set_arr(tk_gguf_writer *w, const char *key, tk_gguf_type elem_type, const void *data, int64_t n);
/* Copies every key/value of g (e.g. to rewrite a model with new tensors); nested arrays are copied verbatim. */
tk_status tk_gguf_copy_kv(tk_gguf_writer *w, const tk_gguf *g);
/* Removes key; returns false when it was not set. */
bool tk_gguf_writer_remove(tk_gguf_writer *w, const char *key);
/* Adds a tensor; data (in dtype's layout, ne in ggml order) is copied. Names must be unique and
 * shorter than 64 bytes (llama.cpp's limit); ne[0] must be a whole number of blocks. */
tk_status tk_gguf_add_tensor(tk_gguf_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data);
/* As tk_gguf_add_tensor, but data is NOT copied: it must stay valid until tk_gguf_write returns (saves memory for big models). */
tk_status tk_gguf_add_tensor_ref(tk_gguf_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data);
/* Writes GGUF v3 (alignment 32 unless general.alignment is set, as a u32 power of two) to path via
 * temp file + fsync + rename, streaming tensor data (no whole-file buffer). The writer stays usable. */
tk_status tk_gguf_write(tk_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
