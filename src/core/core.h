/* Internal helpers shared by every layer: error reporting, checked arithmetic,
 * read-only file mapping, growable buffers, a seeded RNG. Not public API. */
#ifndef TK_CORE_INTERNAL_H
#define TK_CORE_INTERNAL_H

#include "takumi/core.h"
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define TK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TK_PRINTF(a, b)
#endif

/* Records a formatted error message for this thread and returns st (so: `return tk_fail(TK_ERR_FORMAT, "%s: ...", path);`). */
tk_status tk_fail(tk_status st, const char *fmt, ...) TK_PRINTF(2, 3);
/* Prefixes the current error message with a formatted context ("loading x.gguf: ") and returns st. */
tk_status tk_fail_ctx(tk_status st, const char *fmt, ...) TK_PRINTF(2, 3);

/* Allocation that records TK_ERR_NOMEM on failure (returns NULL). Free with free(). */
void *tk_malloc(size_t n);
void *tk_calloc(size_t n, size_t size);
void *tk_realloc(void *p, size_t n);
char *tk_strdup(const char *s);
char *tk_strndup(const char *s, size_t n);

/* Fault injection (src/core/fault.c; compiled in only with FAULT=1): the I/O calls whose failure
 * the library handles go through these wrappers, so a test can make the Nth one fail. */
enum { TK_FAULT_IO = 0, TK_FAULT_ALLOC = 1 };
#include <errno.h>
#ifdef TK_FAULT_INJECT
bool tk_fault_hit(int kind);
#define TK_FAULT(kind) tk_fault_hit(kind)
#else
#define TK_FAULT(kind) false
#endif
#include <stdio.h>
#include <unistd.h>
static inline ssize_t tk_io_write(int fd, const void *p, size_t n) {
    if (TK_FAULT(TK_FAULT_IO)) { errno = ENOSPC; return -1; }
    return write(fd, p, n);
}
static inline size_t tk_io_fwrite(const void *p, size_t size, size_t n, FILE *fp) {
    if (TK_FAULT(TK_FAULT_IO)) { errno = ENOSPC; return 0; }
    return fwrite(p, size, n, fp);
}
static inline int tk_io_fsync(int fd) {
    if (TK_FAULT(TK_FAULT_IO)) { errno = EIO; return -1; }
    return fsync(fd);
}
static inline int tk_io_rename(const char *a, const char *b) {
    if (TK_FAULT(TK_FAULT_IO)) { errno = EIO; return -1; }
    return rename(a, b);
}

/* Checked arithmetic: return false on overflow. */
static inline bool tk_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool tk_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* A whole file mapped read-only (or read into memory when mmap is impossible). */
typedef struct tk_mapped_file {
    const uint8_t *data;
    size_t size;
    char *path;      /* owned copy, for messages */
    int is_mmap;
} tk_mapped_file;
/* Maps path read-only into *f; fails with a message naming the path (missing file, directory, I/O error). Release with tk_unmap_file. */
tk_status tk_map_file(const char *path, tk_mapped_file *f);
/* Takes the pages of [p, p + n), which must lie in f's data, out of the resident set: with
 * MADV_DONTNEED when f is mapped (read-only and private, so the pages fault back in from the file
 * if read again; whole pages around the range, harmless for the same reason), nothing when f
 * was read into memory. Thread-safe. */
void tk_drop_file_pages(const tk_mapped_file *f, const void *p, size_t n);
/* Unmaps/frees a file mapped by tk_map_file; safe on a zeroed struct. */
void tk_unmap_file(tk_mapped_file *f);
/* Reads a whole (small) file into a NUL-terminated malloc'd buffer; *len gets its size (may be NULL). */
tk_status tk_read_file(const char *path, char **out, size_t *len);
/* Creates path and any missing parent folders (like mkdir -p, mode 0755); fails naming the path if it exists and is not a folder. */
tk_status tk_mkdir_p(const char *path);
/* Writes buf to path atomically (temp file in the same folder, fsync, rename). */
tk_status tk_write_file_atomic(const char *path, const void *buf, size_t len);

/* Takes an exclusive advisory lock (flock) on the lock file at path, creating it, and writes this
 * process's pid into it; *fd holds the lock until tk_lock_release (or the process's end).
 * Held by another process: TK_ERR_BUSY, "<what> is in use by another takumi process (pid N)".
 * Thread-safe (no shared state); locks are per open file, so a second acquire in the same
 * process also fails. */
tk_status tk_lock_acquire(const char *path, const char *what, int *fd);
/* Releases a lock taken by tk_lock_acquire (fd < 0: nothing). */
void tk_lock_release(int fd);
/* Removes the lock file, then releases the lock (for locks of short operations, e.g. an export). */
void tk_lock_release_unlink(int fd, const char *path);
/* A fresh temporary name "<path>.tmp.<pid>.<n>" beside path (caller frees; NULL when out of
 * memory), after removing stale temporaries of path left by processes that died
 * (tk_tmp_clean_stale). Thread-safe. */
char *tk_tmp_path(const char *path);
/* Removes "<path>.tmp.<pid>[.<n>]" files whose process no longer exists (best effort). */
void tk_tmp_clean_stale(const char *path);
/* A 64-bit checksum of n bytes (fast, not cryptographic: detects damaged files). Reentrant. */
uint64_t tk_hash_bytes(const void *data, size_t n);
/* The same checksum in pieces: init, update with any lengths (it hashes the whole 32-byte blocks
 * and returns how many bytes it took; pass the rest again with the next piece), final with the
 * last (< 32) bytes. tk_hash_final(update(init, x)) equals tk_hash_bytes(x). Reentrant. */
typedef struct tk_hash_state { uint64_t h[4]; uint64_t n; } tk_hash_state;
void tk_hash_init(tk_hash_state *s);
size_t tk_hash_update(tk_hash_state *s, const void *data, size_t n);
uint64_t tk_hash_final(tk_hash_state *s, const void *tail, size_t n);
/* tk_hash_bytes of a file's bytes, read through a 1 MiB buffer (the file never enters the
 * process's resident set). Reentrant. */
tk_status tk_hash_file(const char *path, uint64_t *h);

/* "dir/name" (no doubled "/" when dir ends with one) as a new string (caller frees); NULL (TK_ERR_NOMEM recorded) when out of memory. */
char *tk_path_join(const char *dir, const char *name);
/* p as an absolute path (canonical when it exists, else joined to the working folder); caller
 * frees; NULL for NULL p or when out of memory. */
char *tk_path_abs(const char *p);
/* True when s ends with suffix. */
bool tk_ends_with(const char *s, const char *suffix);

/* SplitMix64's finaliser of x + golden ratio: a cheap, well-mixed 64-bit hash step (seeds, dropout masks, shuffles). */
static inline uint64_t tk_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
/* n rounded up to a multiple of a (a > 0). */
static inline size_t tk_round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Deterministic RNG (xoshiro256**), seeded with splitmix64. */
typedef struct tk_rng { uint64_t s[4]; } tk_rng;
void tk_rng_seed(tk_rng *r, uint64_t seed);
uint64_t tk_rng_u64(tk_rng *r);
/* Uniform float in [0, 1). */
float tk_rng_uniform(tk_rng *r);
/* Standard normal (Box–Muller). */
float tk_rng_normal(tk_rng *r);

/* Monotonic wall clock in seconds. */
double tk_time_s(void);

#endif
