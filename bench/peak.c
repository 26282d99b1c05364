/* Peak probe: what this CPU can do, so every speed figure can be given as a fraction of it (MFU).
 *   fp32 FMA rate with 256-bit (vfmadd231ps ymm) and 512-bit (zmm) vectors,
 *   bf16 dot-product rate (vdpbf16ps zmm: 2 multiplies + 2 adds per fp32 lane),
 *   int8 dot-product rate (vpdpbusd zmm: 4 u8 x s8 multiplies + 4 adds per int32 lane),
 * each with 1 thread and with all OpenMP threads, and memory bandwidth (a STREAM-like triad
 * a[i] = b[i] + s * c[i] over arrays larger than the last-level cache; 12 bytes per element,
 * write-allocate not counted, as STREAM counts).
 * One binary runs everywhere: every kernel is compiled for its instruction set with a per-function
 * target attribute and run only where __builtin_cpu_supports says the CPU has it; what the CPU
 * lacks is reported as skipped with the reason.
 * Usage: peak [--json] [--seconds S] [--mb MB]   (bench/peak.sh builds and runs it)
 * Each figure is the best of 3 timed runs of about S seconds (default 0.3), each thread timed by its
 * own CPU time (the cores' rate while they run; on a shared machine the wall-clock rate, also given,
 * is lower). The triad is timed by the wall clock (a lower bound on a shared machine). */
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each kernel runs `iters` iterations of a block of independent vector operations (enough
 * accumulators to cover the instruction's latency) and returns a value that depends on all of
 * them, so nothing is optimized away. Operations per iteration: the OPS_* constants. */
#define OPS_FMA256 (12 * 8 * 2)
#define OPS_FMA512 (24 * 16 * 2)
#define OPS_BF16 (24 * 16 * 4)
#define OPS_VNNI (24 * 16 * 8)

__attribute__((target("avx2,fma"))) static float run_fma256(int64_t iters, float seed) {
    __m256 a = _mm256_set1_ps(seed), b = _mm256_set1_ps(0.999999f), c[12];
    for (int i = 0; i < 12; i++) c[i] = _mm256_set1_ps((float)i * seed);
    for (int64_t n = 0; n < iters; n++)
        _Pragma("GCC unroll 24") for (int i = 0; i < 12; i++) c[i] = _mm256_fmadd_ps(a, c[i], b);
    __m256 s = c[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, c[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) static float run_fma512(int64_t iters, float seed) {
    __m512 a = _mm512_set1_ps(seed), b = _mm512_set1_ps(0.999999f), c[24];
    for (int i = 0; i < 24; i++) c[i] = _mm512_set1_ps((float)i * seed);
    for (int64_t n = 0; n < iters; n++)
        _Pragma("GCC unroll 24") for (int i = 0; i < 24; i++) c[i] = _mm512_fmadd_ps(a, c[i], b);
    __m512 s = c[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, c[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float run_bf16(int64_t iters, float seed) {
    __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(seed), _mm512_set1_ps(seed));
    __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    __m512 c[24];
    for (int i = 0; i < 24; i++) c[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iters; n++)
        _Pragma("GCC unroll 24") for (int i = 0; i < 24; i++) c[i] = _mm512_dpbf16_ps(c[i], a, b);
    __m512 s = c[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, c[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512vnni"))) static float run_vnni(int64_t iters, float seed) {
    __m512i a = _mm512_set1_epi8((char)(1 + (int)seed)), b = _mm512_set1_epi8(1), c[24];
    for (int i = 0; i < 24; i++) c[i] = _mm512_set1_epi32(i);
    for (int64_t n = 0; n < iters; n++)
        _Pragma("GCC unroll 24") for (int i = 0; i < 24; i++) c[i] = _mm512_dpbusd_epi32(c[i], a, b);
    __m512i s = c[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_epi32(s, c[i]);
    return (float)_mm512_reduce_add_epi32(s);
}

typedef float (*kernel_fn)(int64_t, float);

typedef struct {
    const char *name, *what, *unit;
    int threads;
    double value;        /* by CPU time; < 0: skipped */
    double wall;         /* by wall-clock time (0: not measured) */
    const char *skipped; /* why */
} figure;

static figure figs[16];
static int nfigs;
static volatile float sink;

/* Operations per second of kern over `threads` threads, best of 3 runs of about `secs` seconds.
 * Each thread times itself by its own CPU time (CLOCK_THREAD_CPUTIME_ID) and the rates are summed:
 * the rate of the cores while they run, so other processes on a shared machine lower it only through
 * caches and clocks (the wall-clock rate is returned in *wall). */
static double rate(kernel_fn kern, int ops_per_iter, int threads, double secs, double *wall) {
    int64_t iters = 1000;
    for (;;) { /* calibrate on one thread */
        double t0 = now();
        sink += kern(iters, 1.0f);
        double dt = now() - t0;
        if (dt > secs / 4 || iters > ((int64_t)1 << 40)) { iters = (int64_t)((double)iters * secs / (dt > 1e-9 ? dt : 1e-9)); break; }
        iters *= 4;
    }
    if (iters < 1) iters = 1;
    double best = 0, bestw = 0;
    for (int rep = 0; rep < 3; rep++) {
        double sum = 0, t0 = now();
        #pragma omp parallel num_threads(threads) reduction(+ : sum)
        {
            double c0 = cpu_now();
            float r = kern(iters, 1.0f + (float)omp_get_thread_num() * 1e-3f);
            sum += (double)iters * ops_per_iter / (cpu_now() - c0);
            #pragma omp atomic
            sink += r;
        }
        double w = (double)iters * ops_per_iter * threads / (now() - t0);
        if (sum > best) best = sum;
        if (w > bestw) bestw = w;
    }
    *wall = bestw;
    return best;
}

/* Triad bandwidth in bytes/s over n floats per array, all threads (first touch by the same threads). */
static double triad(int64_t n, int threads) {
    float *a = aligned_alloc(64, (size_t)n * 4), *b = aligned_alloc(64, (size_t)n * 4), *c = aligned_alloc(64, (size_t)n * 4);
    if (!a || !b || !c) { free(a); free(b); free(c); return -1; }
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; i++) { a[i] = 0; b[i] = (float)(i & 7); c[i] = 1.0f; }
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        float s = 0.5f + (float)rep;
        double t0 = now();
        #pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        double r = 12.0 * (double)n / (now() - t0);
        if (r > best) best = r;
    }
    sink += a[n / 2];
    free(a); free(b); free(c);
    return best;
}

static void add(const char *name, const char *what, const char *unit, int threads, double v, double wall, const char *skipped) {
    figs[nfigs++] = (figure){name, what, unit, threads, v, wall, skipped};
}

static void cpu_name(char *out, size_t cap) {
    unsigned int r[12] = {0}, eax, ebx, ecx, edx;
    if (__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) && eax >= 0x80000004) {
        for (unsigned int i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    }
    char brand[49] = {0};
    memcpy(brand, r, 48);
    char *b = brand;
    while (*b == ' ') b++;
    unsigned int fam = 0, model = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        fam = (eax >> 8) & 0xf, model = (eax >> 4) & 0xf;
        if (fam == 0xf) fam += (eax >> 20) & 0xff;
        if (fam >= 6) model |= ((eax >> 16) & 0xf) << 4;
    }
    snprintf(out, cap, "%s (family %u model %u)", *b ? b : "unknown x86-64", fam, model);
}

int main(int argc, char **argv) {
    int json = 0;
    double secs = 0.3, mb = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: peak [--json] [--seconds S] [--mb MB]\n");
            return 2;
        }
    }
    if (secs <= 0 || mb <= 0) { fprintf(stderr, "peak: --seconds and --mb must be > 0\n"); return 2; }
    __builtin_cpu_init();
    int nt = omp_get_max_threads();
    struct { const char *name, *what, *isa, *unit; kernel_fn fn; int ops; int ok; } ks[] = {
        {"fp32_fma256", "fp32 FMA, 256-bit (vfmadd231ps ymm)", "avx2+fma", "GFLOP/s", run_fma256, OPS_FMA256,
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"fp32_fma512", "fp32 FMA, 512-bit (vfmadd231ps zmm)", "avx512f", "GFLOP/s", run_fma512, OPS_FMA512,
         __builtin_cpu_supports("avx512f")},
        {"bf16_dp512", "bf16 dot, fp32 accumulate (vdpbf16ps zmm)", "avx512bf16", "GFLOP/s", run_bf16, OPS_BF16,
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")},
        {"int8_vnni512", "int8 dot, int32 accumulate (vpdpbusd zmm)", "avx512vnni", "GOP/s", run_vnni, OPS_VNNI,
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")},
    };
    static char why[4][64];
    for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++) {
        int tl[2] = {1, nt};
        for (int j = 0; j < (nt > 1 ? 2 : 1); j++) {
            if (!ks[k].ok) {
                snprintf(why[k], sizeof why[k], "CPU lacks %s", ks[k].isa);
                add(ks[k].name, ks[k].what, ks[k].unit, tl[j], -1, 0, why[k]);
            } else {
                double w, v = rate(ks[k].fn, ks[k].ops, tl[j], secs, &w);
                add(ks[k].name, ks[k].what, ks[k].unit, tl[j], v * 1e-9, w * 1e-9, NULL);
            }
        }
    }
    int64_t n = (int64_t)(mb * 1048576.0 / 12.0);
    double bw = triad(n, nt);
    add("triad", "memory bandwidth, triad a = b + s*c (wall)", "GB/s", nt, bw < 0 ? -1 : bw * 1e-9, 0, bw < 0 ? "out of memory" : NULL);

    char cpu[128];
    cpu_name(cpu, sizeof cpu);
    if (json) {
        printf("{\"cpu\": \"%s\", \"threads\": %d, \"figures\": [", cpu, nt);
        for (int i = 0; i < nfigs; i++) {
            figure *f = &figs[i];
            printf("%s\n  {\"name\": \"%s\", \"threads\": %d, \"unit\": \"%s\", ", i ? "," : "", f->name, f->threads, f->unit);
            if (f->skipped) printf("\"value\": null, \"skipped\": \"%s\"}", f->skipped);
            else if (f->wall > 0) printf("\"value\": %.2f, \"wall\": %.2f}", f->value, f->wall);
            else printf("\"value\": %.2f}", f->value);
        }
        printf("\n]}\n");
    } else {
        printf("CPU: %s, %d threads\n", cpu, nt);
        for (int i = 0; i < nfigs; i++) {
            figure *f = &figs[i];
            if (f->skipped) printf("%-44s %2d thread%s: SKIP (%s)\n", f->what, f->threads, f->threads > 1 ? "s" : " ", f->skipped);
            else if (f->wall > 0)
                printf("%-44s %2d thread%s: %8.1f %s  (wall clock: %.1f)\n", f->what, f->threads, f->threads > 1 ? "s" : " ",
                       f->value, f->unit, f->wall);
            else printf("%-44s %2d thread%s: %8.1f %s\n", f->what, f->threads, f->threads > 1 ? "s" : " ", f->value, f->unit);
        }
    }
    return 0;
}
