/* The command grader's runs: an external program (no shell) started in its own process group
 * with the sample as JSON on stdin; its score is the last number it prints on stdout. A run
 * past its timeout has its whole group killed; crashes, non-zero exits and silence are
 * per-sample failures with the reason. */
#include "eval/grader_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <pthread.h>

extern char **environ;

enum { OUT_MAX = 1 << 20, ERR_KEEP = 160 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* The last ERR_KEEP bytes of stderr, one line, for the failure message. */
static const char *err_tail(tk_buf *e) {
    if (!e->data) return "";
    char *s = e->data + (e->len > ERR_KEEP ? e->len - ERR_KEEP : 0);
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = 0;
    return s;
}

/* Reads what is available on *fd into b (kept to OUT_MAX bytes: the tail); closes it at EOF. */
static tk_status drain(int *fd, tk_buf *b) {
    char chunk[4096];
    ssize_t r = read(*fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return TK_OK;
    if (r <= 0) { close_fd(fd); return TK_OK; }
    if (b->len + (size_t)r > OUT_MAX) { /* keep the tail: the score is the last number */
        size_t keep = OUT_MAX / 2;
        memmove(b->data, b->data + b->len - keep, keep);
        b->len = keep;
    }
    return tk_buf_append(b, chunk, (size_t)r);
}

tk_status tk_command_score(char *const *argv, double timeout_s, const char *stdin_text, size_t stdin_len, double *score,
                           bool *failed, char *err, size_t errlen) {
    *failed = false;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
        int e = errno;
        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]), close_fd(&errp[0]), close_fd(&errp[1]);
        return tk_fail(TK_ERR_IO, "command grader '%s': cannot create pipes: %s", argv[0], strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0); /* its own group: a timeout kills its children too */
    sigset_t none, pending;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close_fd(&in[0]), close_fd(&out[1]), close_fd(&errp[1]);
    if (rc) {
        close_fd(&in[1]), close_fd(&out[0]), close_fd(&errp[0]);
        *failed = true;
        snprintf(err, errlen, "cannot run '%s': %s", argv[0], strerror(rc));
        return TK_OK;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    /* a program that exits without reading its stdin must not kill us with SIGPIPE: block it in
     * this thread while writing, and take a pending one back before unblocking */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    tk_buf ob = {0}, eb = {0};
    tk_status st = TK_OK;
    size_t written = 0;
    double deadline = now_s() + timeout_s;
    bool timed_out = false;
    if (stdin_len == 0) close_fd(&in[1]);
    while (!st && (out[0] >= 0 || errp[0] >= 0)) {
        double left = deadline - now_s();
        if (left <= 0) { timed_out = true; break; }
        struct pollfd p[3] = {{out[0], POLLIN, 0}, {errp[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        int r = poll(p, 3, (int)(left * 1000) + 1);
        if (r < 0 && errno != EINTR) { st = tk_fail(TK_ERR_IO, "command grader '%s': poll: %s", argv[0], strerror(errno)); break; }
        if (r <= 0) continue;
        if (p[0].revents) st = drain(&out[0], &ob);
        if (!st && p[1].revents) st = drain(&errp[0], &eb);
        if (p[2].revents) {
            ssize_t w = p[2].revents & POLLOUT ? write(in[1], stdin_text + written, stdin_len - written) : -1;
            if (w > 0) written += (size_t)w;
            if (w < 0 && errno == EAGAIN) continue;
            if (w <= 0 || written == stdin_len) close_fd(&in[1]); /* done, or the program stopped reading */
        }
    }
    close_fd(&in[1]);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        int sig;
        sigwait(&pipe_set, &sig);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close_fd(&out[0]), close_fd(&errp[0]);
    int status = 0;
    for (;;) { /* stdout closed: wait for the exit, still within the timeout */
        pid_t w = timed_out ? 0 : waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (timed_out || now_s() >= deadline) {
            timed_out = true;
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            break;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!st) {
        *failed = true;
        const char *tail = err_tail(&eb);
        const char *sep = *tail ? "; stderr: " : "";
        if (timed_out) {
            snprintf(err, errlen, "'%s' timed out after %g s (killed)", argv[0], timeout_s);
        } else if (WIFSIGNALED(status)) {
            snprintf(err, errlen, "'%s' crashed: killed by signal %d (%s)%s%s", argv[0], WTERMSIG(status),
                     strsignal(WTERMSIG(status)), sep, tail);
        } else if (WEXITSTATUS(status) != 0) {
            snprintf(err, errlen, "'%s' exited with status %d%s%s", argv[0], WEXITSTATUS(status), sep, tail);
        } else if (!tk_text_last_number(ob.data ? ob.data : "", score)) {
            snprintf(err, errlen, "'%s' printed no number on stdout%s%s", argv[0], sep, tail);
        } else {
            *failed = false;
        }
    }
    tk_buf_free(&ob);
    tk_buf_free(&eb);
    return st;
}
