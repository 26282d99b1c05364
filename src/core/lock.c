/* Advisory locks held for a process's lifetime (flock on a lock file), and temporary
 * file names whose stale leftovers (of processes that died) are removed. */
#include "core/core.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
#include <dirent.h>
#include <libgen.h>
#include <sys/stat.h>

tk_status tk_lock_acquire(const char *path, const char *what, int *fd_out) {
    *fd_out = -1;
    int fd = -1;
    for (int tries = 0;; tries++) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return tk_fail(TK_ERR_IO, "%s: cannot create lock file: %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) break;
        /* locked; but a holder that released with unlink may have removed this inode meanwhile */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) goto locked;
        close(fd);
        if (tries == 8) return tk_fail(TK_ERR_IO, "%s: the lock file keeps being replaced", path);
    }
    {
        int e = errno;
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        close(fd);
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        if (e == EWOULDBLOCK) {
            if (pid > 0) return tk_fail(TK_ERR_BUSY, "%s is in use by another takumi process (pid %ld): wait for it to finish, or choose another", what, pid);
            return tk_fail(TK_ERR_BUSY, "%s is in use by another takumi process: wait for it to finish, or choose another", what);
        }
        return tk_fail(TK_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    }
locked:;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        tk_status st = tk_fail(TK_ERR_IO, "%s: cannot write the lock file: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    *fd_out = fd;
    return TK_OK;
}

void tk_lock_release(int fd) {
    if (fd >= 0) close(fd); /* closing releases the flock */
}

void tk_lock_release_unlink(int fd, const char *path) {
    if (fd < 0) return;
    unlink(path); /* while still held: a waiter that opened this inode sees it replaced (tk_lock_acquire retries) */
    close(fd);
}

/* Whether the name is "<base>.tmp.<pid>[.<n>]" of a process that no longer exists. */
static bool stale_tmp(const char *name, const char *base) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5)) return false;
    const char *p = name + bl + 5;
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p || pid <= 0 || (*end && *end != '.')) return false;
    if (*end == '.') {
        const char *q = end + 1;
        if (!*q) return false;
        for (; *q; q++) if (*q < '0' || *q > '9') return false;
    }
    if (pid == (long)getpid()) return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void tk_tmp_clean_stale(const char *path) {
    char *d = tk_strdup(path), *b = tk_strdup(path);
    if (!d || !b) { free(d); free(b); tk_clear_error(); return; }
    const char *dir = dirname(d), *base = basename(b);
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        while ((e = readdir(dp)))
            if (stale_tmp(e->d_name, base)) {
                char *f = tk_path_join(dir, e->d_name);
                if (f) unlink(f); /* best effort: a leftover that cannot be removed harms nothing */
                free(f);
            }
        closedir(dp);
    }
    free(d);
    free(b);
}

char *tk_tmp_path(const char *path) {
    static int counter;
    tk_tmp_clean_stale(path);
    tk_buf b = {0};
    if (tk_buf_printf(&b, "%s.tmp.%ld.%d", path, (long)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED))) {
        tk_buf_free(&b);
        return NULL;
    }
    return b.data;
}

void tk_hash_init(tk_hash_state *s) {
    /* four independent lanes over 8-byte words (little-endian loads), then the tail, then mixed */
    static const uint64_t h0[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull, 0x082efa98ec4e6c89ull};
    memcpy(s->h, h0, sizeof h0);
    s->n = 0;
}

size_t tk_hash_update(tk_hash_state *s, const void *data, size_t n) {
    const uint8_t *p = data;
    const uint64_t k = 0x9fb21c651e98df25ull;
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * l, 8);
            s->h[l] = (s->h[l] ^ w) * k;
            s->h[l] ^= s->h[l] >> 29;
        }
    s->n += i;
    return i;
}

uint64_t tk_hash_final(tk_hash_state *s, const void *tail, size_t n) {
    const uint8_t *p = tail;
    uint64_t t = 0;
    for (size_t j = 0; j < n; j++) t = (t << 8 | p[j]) * 0x100000001b3ull + 1;
    const uint64_t total = s->n + n, *h = s->h;
    uint64_t r = tk_mix64(h[0]) ^ tk_mix64(h[1] + 1) ^ tk_mix64(h[2] + 2) ^ tk_mix64(h[3] + 3) ^ tk_mix64(t ^ total);
    return tk_mix64(r);
}

uint64_t tk_hash_bytes(const void *data, size_t n) {
    tk_hash_state s;
    tk_hash_init(&s);
    size_t i = tk_hash_update(&s, data, n);
    return tk_hash_final(&s, (const uint8_t *)data + i, n - i);
}

tk_status tk_hash_file(const char *path, uint64_t *h) {
    /* read() through a 1 MiB buffer, not a mapping: the file's pages stay in the page cache and
     * out of this process's resident set (a checkpoint's read-back used to raise the peak) */
    enum { CHUNK = 1 << 20 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = tk_malloc(CHUNK);
    if (!buf) { close(fd); return TK_ERR_NOMEM; }
    tk_hash_state s;
    tk_hash_init(&s);
    size_t have = 0;
    tk_status st = TK_OK;
    for (;;) {
        ssize_t r = read(fd, buf + have, CHUNK - have);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { st = tk_fail(TK_ERR_IO, "%s: read failed: %s", path, strerror(errno)); break; }
        have += (size_t)r;
        if (r == 0 || have == CHUNK) {
            size_t used = tk_hash_update(&s, buf, have); /* whole 32-byte blocks; CHUNK is a multiple of 32 */
            memmove(buf, buf + used, have - used);
            have -= used;
            if (r == 0) break;
        }
    }
    if (!st) *h = tk_hash_final(&s, buf, have);
    free(buf);
    close(fd);
    return st;
}
