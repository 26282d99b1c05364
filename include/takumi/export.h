/* Exporting a model (with an adapter merged into its weights: tk_adapter_merge in
 * takumi/adapter.h), as
 *
 *   an HF folder  config.json + model.safetensors, HF tensor names, q/k rows in HF order.
 *                 From an HF folder: its config.json (torch_dtype updated) and tokenizer /
 *                 generation files are copied. From a GGUF or llama2.c source: config.json is
 *                 written from the model's configuration (architecture, sizes, RoPE, tied
 *                 head, bos/eos ids); no tokenizer files are written (the GGUF keeps the
 *                 tokenizer in llama.cpp's form: load the folder with `--tokenizer SOURCE.gguf`
 *                 in takumi, or the tokenizer of the original HF repository).
 *   a GGUF file   from a GGUF source only: every metadata key of the source is copied
 *                 (architecture, tokenizer, chat template; general.file_type updated) and the
 *                 tensors are replaced, in the source's order and row layout.
 *
 * Dtypes: f32, f16, bf16 for matrices in either container, q8_0 for GGUF (a matrix whose rows
 * are not a whole number of 32-blocks falls back to f16, as llama.cpp's converter does).
 * Vectors (norms, biases) stay f32 in a GGUF and take the dtype in an HF folder. A tensor
 * that is neither merged nor converted (same dtype) is copied byte for byte.
 * Memory: the output tensors are held until the file is written (the model's size in the
 * output dtype) plus one f32 copy of the largest tensor. */
#ifndef TAKUMI_EXPORT_H
#define TAKUMI_EXPORT_H
#include "takumi/model.h"

typedef struct tk_export_params {
    tk_dtype dtype;      /* TK_F32, TK_F16, TK_BF16 or TK_Q8_0 (GGUF only); default TK_F16 */
} tk_export_params;

/* Returns the defaults (f16). Pure; thread-safe. */
tk_export_params tk_export_default_params(void);

/* Writes model m as it is (converted to p->dtype) to out: a path ending in ".gguf" as a GGUF
 * file (GGUF sources only), anything else as an HF folder (created when missing; files inside
 * written atomically). p may be NULL (defaults). Returns TK_OK or a status with a message
 * naming the output and the tensor at fault. Reads m only; m must not be used by another
 * thread while it runs (adapters are not part of the model: merge one with tk_adapter_merge). */
tk_status tk_export_model(tk_model *m, const char *out, const tk_export_params *p);

/* Parses "f32", "f16", "bf16", "q8_0" into *dt; false (and *dt untouched) for anything else. Thread-safe. */
bool tk_export_parse_dtype(const char *s, tk_dtype *dt);
#endif
