/* The letters and digits of rapidfuzz's default_process (generated: tools/gen_fuzzy_alnum.py). */
#ifndef TK_EVAL_FUZZY_ALNUM_H
#define TK_EVAL_FUZZY_ALNUM_H
#include <stddef.h>
#include <stdint.h>
extern const uint32_t tk_fuzzy_alnum[][2]; /* sorted inclusive ranges */
extern const size_t tk_fuzzy_n_alnum;
#endif
