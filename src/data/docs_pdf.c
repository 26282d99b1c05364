/* PDF documents through poppler-utils' pdftotext (`pdftotext -layout -enc UTF-8 FILE -`), run
 * with an argument vector (posix_spawnp, no shell: a file name cannot inject a command). Pages
 * are split at the form feeds pdftotext writes after each page; a page's paragraphs are split at
 * blank lines and their runs of layout spaces collapse; a short one-line block before another is
 * taken for a heading. A PDF without any text (a scan) is refused, naming its pages; pages without
 * text in a PDF that has some are counted. */
#include "data/docs_internal.h"
#include "data/data_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { ERR_KEEP = 300 };

tk_status tk_run_capture(const char *const *argv, char **out, size_t *len) {
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
        int e = errno;
        for (int k = 0; k < 2; k++) { if (op[k] >= 0) close(op[k]); if (ep[k] >= 0) close(ep[k]); }
        return tk_fail(TK_ERR_IO, "cannot create pipes for '%s': %s", argv[0], strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(op[1]), close(ep[1]);
    if (rc) {
        close(op[0]), close(ep[0]);
        return tk_fail(rc == ENOENT ? TK_ERR_NOT_FOUND : TK_ERR_IO, "cannot run '%s': %s%s", argv[0], strerror(rc),
                       rc == ENOENT ? " (install poppler-utils: apt-get install poppler-utils)" : "");
    }
    tk_buf ob = {0}, eb = {0};
    tk_status st = TK_OK;
    int fds[2] = {op[0], ep[0]};
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; st = tk_fail(TK_ERR_IO, "'%s': poll: %s", argv[0], strerror(errno)); break; }
        for (int k = 0; k < 2; k++) {
            if (fds[k] < 0 || !p[k].revents) continue;
            char chunk[65536];
            ssize_t r = read(fds[k], chunk, sizeof chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) { close(fds[k]); fds[k] = -1; continue; }
            tk_buf *b = k ? &eb : &ob;
            if (k && b->len > ERR_KEEP) continue;   /* keep the start of stderr only */
            if (!st) st = tk_buf_append(b, chunk, (size_t)r);
        }
    }
    for (int k = 0; k < 2; k++) if (fds[k] >= 0) close(fds[k]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!st && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        size_t n = 0;
        while (eb.data && n < eb.len && n < ERR_KEEP && eb.data[n] != '\n') n++;
        if (WIFSIGNALED(status)) st = tk_fail(TK_ERR_IO, "'%s' was killed by signal %d", argv[0], WTERMSIG(status));
        else st = tk_fail(TK_ERR_FORMAT, "'%s' exited with status %d%s%.*s", argv[0], WEXITSTATUS(status), n ? ": " : "", (int)n,
                          eb.data ? eb.data : "");
    }
    tk_buf_free(&eb);
    if (!st && !ob.data) st = tk_buf_append(&ob, "", 0);
    if (!st) st = tk_buf_append(&ob, "", 1);
    if (st) { tk_buf_free(&ob); return st; }
    *out = ob.data, *len = ob.len - 1;
    return TK_OK;
}

/* Page text with runs of 2+ spaces (layout columns) made one. In place; returns the new length. */
static size_t squeeze(char *s, size_t n) {
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (s[r] == ' ' && w && s[w - 1] == ' ') continue;
        s[w++] = s[r];
    }
    return w;
}

tk_status tk_doc_read_pdf(const char *path, tk_doc *d) {
    const char *prog = getenv("TAKUMI_PDFTOTEXT");
    if (!prog || !*prog) prog = "pdftotext";
    if (access(path, R_OK) != 0) return tk_fail(TK_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    const char *argv[] = {prog, "-layout", "-enc", "UTF-8", "-q", "--", path, "-", NULL};
    char *txt = NULL;
    size_t len = 0;
    tk_status st = tk_run_capture(argv, &txt, &len);
    if (st) return tk_fail_ctx(st, "%s: ", path);
    bool nul = false;
    size_t bad = tk_utf8_check(txt, len, &nul);
    if (bad < len) len = bad;   /* pdftotext -enc UTF-8 writes UTF-8; a stray byte ends the text */
    d->kind = TK_DOC_PDF;
    size_t i = 0;
    int page = 0;
    while (i < len && !st) {
        size_t e = i;
        while (e < len && txt[e] != '\f') e++;
        page++;
        size_t before = d->n_blocks;
        st = tk_doc_add_text(d, txt + i, e - i, i, page);
        for (size_t k = before; k < d->n_blocks && !st; k++) {
            tk_doc_block *bl = &d->blocks[k];
            bl->page = page;
            bl->text[squeeze(bl->text, strlen(bl->text))] = 0;
        }
        if (d->n_blocks == before) {
            if (!d->n_empty_pages) d->first_empty_page = page;
            d->n_empty_pages++;
        }
        i = e + 1;
    }
    d->n_pages = page;
    free(txt);
    /* pdftotext keeps no font sizes: a one-line block of at most 8 words that does not end like a sentence or a list
       item, followed by another block, is taken for a heading */
    for (size_t k = 0; k + 1 < d->n_blocks; k++) {
        const char *t = d->blocks[k].text;
        size_t n = strlen(t), words = 1;
        for (size_t i = 0; i < n; i++) words += t[i] == ' ';
        char last = n ? t[n - 1] : '.';
        if (!strchr(t, '\n') && words <= 8 && !strchr(".,;:!?)", last) && d->blocks[k + 1].level == 0) d->blocks[k].level = 2;
    }
    if (st) return st == TK_ERR_NOMEM ? tk_fail(st, "%s: out of memory", path) : st;
    if (!d->n_blocks)
        return tk_fail(TK_ERR_FORMAT, "%s: no extractable text on any of its %d page%s (a scanned PDF? run OCR first, e.g. ocrmypdf)",
                       path, page, page == 1 ? "" : "s");
    return TK_OK;
}
