/* Output files of convert/split/redact: written to "<path>.tmp.<pid>.<n>", fsync'd and
 * renamed into place on commit, so an interrupted run never leaves half a file under
 * the final name. */
#include "data/data_internal.h"
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <libgen.h>

tk_status tk_outfile_open(tk_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    o->path = tk_strdup(path);
    o->tmp = tk_tmp_path(path); /* also removes stale temporaries of killed writers */
    if (!o->path || !o->tmp) { tk_outfile_abort(o); return TK_ERR_NOMEM; }
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) {
        tk_status st = tk_fail(TK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(o->path); free(o->tmp);
        memset(o, 0, sizeof *o);
        return st;
    }
    return TK_OK;
}

tk_status tk_outfile_write(tk_outfile *o, const void *p, size_t n) {
    if (n && tk_io_fwrite(p, 1, n, o->fp) != n) return tk_fail(TK_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    return TK_OK;
}

tk_status tk_outfile_commit(tk_outfile *o) {
    tk_status st = TK_OK;
    if (fflush(o->fp) != 0 || tk_io_fsync(fileno(o->fp)) != 0) st = tk_fail(TK_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    if (fclose(o->fp) != 0 && !st) st = tk_fail(TK_ERR_IO, "%s: close failed: %s", o->path, strerror(errno));
    o->fp = NULL;
    if (!st && tk_io_rename(o->tmp, o->path) != 0) st = tk_fail(TK_ERR_IO, "%s: rename failed: %s", o->path, strerror(errno));
    if (st) unlink(o->tmp);
    else {
        char *d = tk_strdup(o->path);
        if (d) {
            int fd = open(dirname(d), O_RDONLY | O_DIRECTORY);
            if (fd >= 0) { fsync(fd); close(fd); }
            free(d);
        }
    }
    free(o->path); free(o->tmp);
    memset(o, 0, sizeof *o);
    return st;
}

void tk_outfile_abort(tk_outfile *o) {
    if (o->fp) { fclose(o->fp); unlink(o->tmp); }
    free(o->path); free(o->tmp);
    memset(o, 0, sizeof *o);
}
