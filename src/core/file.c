/* Read-only file mapping, whole-file reads and atomic writes. */
#include "core/core.h"
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <libgen.h>

tk_status tk_map_file(const char *path, tk_mapped_file *f) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno; close(fd);
        return tk_fail(TK_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) { close(fd); return tk_fail(TK_ERR_IO, "%s: is a directory, expected a file", path); }
    if (!S_ISREG(st.st_mode)) { close(fd); return tk_fail(TK_ERR_IO, "%s: not a regular file", path); }
    f->path = tk_strdup(path);
    if (!f->path) { close(fd); return TK_ERR_NOMEM; }
    f->size = (size_t)st.st_size;
    if (f->size == 0) { close(fd); f->data = (const uint8_t *)""; return TK_OK; }
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        free(f->path); f->path = NULL;
        return tk_fail(TK_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    f->data = p;
    f->is_mmap = 1;
    return TK_OK;
}

void tk_drop_file_pages(const tk_mapped_file *f, const void *p, size_t n) {
    if (!f || !f->is_mmap || !p || !n) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(ps - 1), e = ((uintptr_t)p + n + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1);
    (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

void tk_unmap_file(tk_mapped_file *f) {
    if (!f) return;
    if (f->is_mmap && f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

tk_status tk_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        return tk_fail(TK_ERR_IO, "%s: is a directory, expected a file", path);
    }
    tk_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (tk_buf_append(&b, chunk, n) != TK_OK) { fclose(fp); tk_buf_free(&b); return TK_ERR_NOMEM; }
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) { tk_buf_free(&b); return tk_fail(TK_ERR_IO, "%s: read error", path); }
    if (tk_buf_reserve(&b, 1) != TK_OK) { tk_buf_free(&b); return TK_ERR_NOMEM; }
    b.data[b.len] = 0;
    *out = b.data;
    if (len) *len = b.len;
    return TK_OK;
}

tk_status tk_write_file_atomic(const char *path, const void *buf, size_t len) {
    char *tmp = tk_tmp_path(path); /* also removes stale temporaries of killed writers */
    if (!tmp) return TK_ERR_NOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tk_status st = tk_fail(TK_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = tk_io_write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            tk_status st = tk_fail(TK_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
            close(fd); unlink(tmp); free(tmp);
            return st;
        }
        p += w; left -= (size_t)w;
    }
    if (tk_io_fsync(fd) != 0 || close(fd) != 0) {
        tk_status st = tk_fail(TK_ERR_IO, "%s: fsync/close failed: %s", tmp, strerror(errno));
        unlink(tmp); free(tmp);
        return st;
    }
    if (tk_io_rename(tmp, path) != 0) {
        tk_status st = tk_fail(TK_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp); free(tmp);
        return st;
    }
    free(tmp);
    /* fsync the directory so the rename itself is durable */
    char *dcopy = tk_strdup(path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(dcopy);
    }
    return TK_OK;
}

tk_status tk_mkdir_p(const char *path) {
    char *p = tk_strdup(path);
    if (!p) return TK_ERR_NOMEM;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                tk_status st = tk_fail(TK_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
        }
        if (!c) break;
    }
    struct stat sb;
    tk_status st = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) ? TK_OK : tk_fail(TK_ERR_IO, "%s: not a folder", p);
    free(p);
    return st;
}
