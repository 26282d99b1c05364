/* Shared helpers for `takumi` subcommands. The CLI is the only code that prints
 * to the user and exits; stdout carries results only, diagnostics go to stderr. */
#ifndef TK_CLI_H
#define TK_CLI_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdint.h>
#include "takumi.h"

/* Prints "takumi: <message>" (with the library's last error when st != TK_OK) to stderr and returns 1. */
int cli_fail(tk_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns 1 if argv[*i] is --name (value in the next arg, or --name=value); sets *val and advances *i. Missing value: prints an error, sets *err. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val, int *err);
/* Returns 1 if argv[*i] is the flag --name. */
int cli_flag(char **argv, int i, const char *name);
/* Parses an integer / finite float option value within [lo, hi] — one rule for every command
 * (no wrap-around, no NaN); on error prints a message naming the option and the range, sets
 * *err and returns lo. */
long cli_parse_long(const char *opt, const char *v, long lo, long hi, int *err);
double cli_parse_double(const char *opt, const char *v, double lo, double hi, int *err);
/* A seed: a decimal integer in [0, 2^64). */
uint64_t cli_parse_u64(const char *opt, const char *v, int *err);
/* --threads N, as `takumi train` takes it: 0 (all cores; OMP_NUM_THREADS when set) .. CLI_MAX_THREADS;
 * applies it (tk_set_threads) when valid. */
#define CLI_MAX_THREADS 4096
int cli_parse_threads(const char *v, int *err);
/* --quantize-base V: q8_0, q4_k or nf4 -> its dtype; anything else prints a message, sets *err and gives TK_F32 (keep). */
tk_dtype cli_parse_quantize_base(const char *v, int *err);
/* Resolves the default model path: $TAKUMI_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf next to the binary's repo. NULL if not found. */
const char *cli_default_model(void);

/* True when paths a and b exist and name the same file or folder (same device and inode). */
int cli_same_file(const char *a, const char *b);

/* Builds the field map of --map SPEC or --map-file FILE (both NULL: *out = NULL). Returns 0, or an exit code after
 * printing why (2 when both are given, 1 for a bad map). */
int cli_data_map(const char *spec, const char *file, tk_data_map **out);

/* Monotonic wall clock in seconds (timings printed by the commands). */
double cli_now(void);

/* `takumi data synth|augment` (cmd_synth.c), dispatched by cmd_data.c; the usage lines of both. */
int cli_data_synth(int argc, char **argv);
int cli_data_augment(int argc, char **argv);
void cli_usage_synth(FILE *f);

/* Subcommands: each returns the process exit code. */
typedef int (*cli_cmd_fn)(int argc, char **argv);
#endif
