/* llama2.c checkpoint loader: the reader (src/io/llama2c.c) already exposes its f32
 * arrays under GGUF names in Meta's q/k row layout, so RoPE rotates interleaved pairs. */
#include "model/llama.h"
#include "io/llama2c.h"
#include "core/core.h"
#include <stdio.h>

static const tk_tensor_ref *l2c_find(void *ctx, const char *name, char *fname, size_t n) {
    (void)fname; (void)n;
    return tk_llama2c_find(ctx, name);
}

static void l2c_close(void *h) { tk_llama2c_close(h); }

tk_status tk_load_llama2c(tk_model *m, const char *path, const tk_model_params *p) {
    tk_llama2c *h;
    tk_status st = tk_llama2c_open(path, &h);
    if (st) return st;
    m->l2c = h;
    m->l2c_close = l2c_close;
    m->cfg = *tk_llama2c_config(h);
    if (p->n_ctx > 0) m->cfg.max_seq = p->n_ctx;
    return tk_weights_bind(m, l2c_find, h, path, false);
}
