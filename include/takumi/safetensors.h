/* safetensors reader (single file or sharded set with model.safetensors.index.json) and writer. */
#ifndef TAKUMI_SAFETENSORS_H
#define TAKUMI_SAFETENSORS_H
#include "takumi/core.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct tk_safetensors tk_safetensors;

/* Opens path: a .safetensors file, a *.safetensors.index.json, or a folder holding either; maps every shard read-only and validates headers and offsets. Close with tk_st_close. */
tk_status tk_st_open(const char *path, tk_safetensors **out);
/* Parses one safetensors image in memory (not copied); name is used in messages. */
tk_status tk_st_open_memory(const void *buf, size_t len, const char *name, tk_safetensors **out);
/* Releases the handle; accepts NULL. */
void tk_st_close(tk_safetensors *st);
/* Tensor count, i-th tensor, lookup by name (NULL when absent). ne[] in ggml order (reversed torch shape). */
int64_t tk_st_n_tensors(const tk_safetensors *st);
const tk_tensor_ref *tk_st_tensor(const tk_safetensors *st, int64_t i);
const tk_tensor_ref *tk_st_find(const tk_safetensors *st, const char *name);
/* __metadata__ string value for key (NULL when absent). */
const char *tk_st_metadata(const tk_safetensors *st, const char *key);

/* Takes the pages of [p, p + n) out of this process's resident set when the range lies in one of
 * st's file mappings (they fault back in from the file if read again); otherwise does nothing.
 * Thread-safe (a concurrent reader of the range only pays the page faults). */
void tk_st_drop_pages(const tk_safetensors *st, const void *p, size_t n);

typedef struct tk_st_writer tk_st_writer;
/* Returns a new writer or NULL (out of memory). */
tk_st_writer *tk_st_writer_new(void);
void tk_st_writer_free(tk_st_writer *w);
/* Adds a tensor (F32/F16/BF16/I32/I64…; ne in ggml order); data is copied. */
tk_status tk_st_add(tk_st_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data);
/* As tk_st_add without the copy (large buffers such as optimizer state): data must stay
 * valid and unchanged until tk_st_write returns. */
tk_status tk_st_add_ref(tk_st_writer *w, const char *name, tk_dtype dtype, int n_dims, const int64_t *ne, const void *data);
/* Adds a __metadata__ entry. */
tk_status tk_st_set_metadata(tk_st_writer *w, const char *key, const char *value);
/* Writes the file atomically (tensors in name order, 8-byte aligned header). */
tk_status tk_st_write(tk_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
