/* Exporting a model, optionally with a LoRA adapter merged into its weights
 * (W' = W + scale * B A, computed in f32 from the dequantized base rows, then stored in the
 * requested dtype), as
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
#ifndef TK_MODEL_EXPORT_H
#define TK_MODEL_EXPORT_H
#include "takumi/model.h"
#include "peft/lora.h"

typedef struct tk_export_params {
    tk_dtype dtype;      /* TK_F32, TK_F16, TK_BF16 or TK_Q8_0 (GGUF only); default TK_F16 */
} tk_export_params;

/* Defaults: f16. */
tk_export_params tk_export_default_params(void);

/* Writes model m with adapter l merged (l NULL: the model as it is, converted) to out: a path
 * ending in ".gguf" is written as a GGUF file, anything else as an HF folder (created when
 * missing; files inside written atomically). l must have been created on m. p may be NULL
 * (defaults). Messages name the output and the tensor at fault. */
tk_status tk_export_model(tk_model *m, tk_lora *l, const char *out, const tk_export_params *p);

/* Parses "f32", "f16", "bf16", "q8_0" into *dt; false for anything else. */
bool tk_export_parse_dtype(const char *s, tk_dtype *dt);
#endif
