/* Argument helpers shared by the subcommands. */
#include "cli.h"
#include <stdarg.h>
#include <errno.h>
#include <unistd.h>
#include <limits.h>
#include <libgen.h>
#include <time.h>
#include <sys/stat.h>
#include <math.h>

int cli_fail(tk_status st, const char *fmt, ...) {
    fputs("takumi: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (st != TK_OK && tk_last_error()[0]) fprintf(stderr, ": %s", tk_last_error());
    fputc('\n', stderr);
    return 1;
}

int cli_opt(int argc, char **argv, int *i, const char *name, const char **val, int *err) {
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) return 0;
    size_t n = strlen(name);
    if (strncmp(a + 2, name, n) != 0) return 0;
    if (a[2 + n] == '=') { *val = a + 3 + n; return 1; }
    if (a[2 + n] != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "takumi: option --%s needs a value\n", name);
        *err = 1;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_flag(char **argv, int i, const char *name) {
    return strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0;
}

long cli_parse_long(const char *opt, const char *v, long lo, long hi, int *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno == ERANGE || (!errno && end != v && !*end && (x < lo || x > hi))) {
        fprintf(stderr, "takumi: --%s: %s is outside %ld..%ld\n", opt, v, lo, hi);
        *err = 1;
        return lo;
    }
    if (errno || end == v || *end) {
        fprintf(stderr, "takumi: --%s: expected an integer, got '%s'\n", opt, v);
        *err = 1;
        return lo;
    }
    return x;
}

double cli_parse_double(const char *opt, const char *v, double lo, double hi, int *err) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x)) {
        fprintf(stderr, "takumi: --%s: expected a finite number, got '%s'\n", opt, v);
        *err = 1;
        return lo;
    }
    if (x < lo || x > hi) {
        fprintf(stderr, "takumi: --%s: %s is outside [%g, %g]\n", opt, v, lo, hi);
        *err = 1;
        return lo;
    }
    return x;
}

uint64_t cli_parse_u64(const char *opt, const char *v, int *err) {
    char *end;
    errno = 0;
    unsigned long long x = v[0] == '-' ? 0 : strtoull(v, &end, 10);
    if (v[0] == '-' || errno || end == v || *end) {
        fprintf(stderr, "takumi: --%s: expected a non-negative integer below 2^64, got '%s'\n", opt, v);
        *err = 1;
        return 0;
    }
    return (uint64_t)x;
}

int cli_parse_threads(const char *v, int *err) {
    int t = (int)cli_parse_long("threads", v, 0, CLI_MAX_THREADS, err);
    if (!*err) tk_set_threads(t);
    return t;
}

tk_dtype cli_parse_quantize_base(const char *v, int *err) {
    const tk_dtype ok[3] = {TK_Q8_0, TK_Q4_K, TK_NF4};
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, tk_dtype_name(ok[i]))) return ok[i];
    fprintf(stderr, "takumi: --quantize-base: unknown type '%s' (choose from q8_0, q4_k, nf4)\n", v);
    *err = 1;
    return TK_F32;
}

const char *cli_default_model(void) {
    static char buf[PATH_MAX + 64];
    const char *env = getenv("TAKUMI_MODEL");
    if (env && *env) return env;
    const char *rel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (access(rel, R_OK) == 0) return rel;
    /* next to the repository the binary was built in: <repo>/build/takumi */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *d = dirname(exe);       /* <repo>/build */
        char *r = dirname(d);         /* <repo> */
        snprintf(buf, sizeof buf, "%s/%s", r, rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cli_data_map(const char *spec, const char *file, tk_data_map **out) {
    *out = NULL;
    if (spec && file) { fprintf(stderr, "takumi: give --map or --map-file, not both\n"); return 2; }
    tk_status st = TK_OK;
    if (spec) st = tk_data_map_parse(spec, out);
    else if (file) st = tk_data_map_load(file, out);
    if (st) return cli_fail(st, "%s", spec ? "--map" : "--map-file");
    return 0;
}
