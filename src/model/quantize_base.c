/* --quantize-base: the frozen base of a model stored in plain floats (HF f32/f16/bf16, an
 * f32/f16 GGUF, a llama2.c checkpoint) quantized at load time to q8_0, q4_k or nf4 (QLoRA).
 * Every 2-D weight the matmuls read (the seven linears of each layer, the token embedding and
 * an untied output head) becomes an owned quantized copy; the matmuls then dequantize per
 * block as they do for GGUF bases. A weight whose rows are not a whole number of the type's
 * blocks falls back as llama.cpp's quantizer does (q4_k -> q5_0), or stays as stored when no
 * block fits (stories260K's 172-wide down projection). The source pages of the file mapping
 * are dropped chunk by chunk as they are read, so the float copy never stays resident. */
#include "model/llama.h"
#include "core/core.h"
#include "core/nf4.h"
#include <sys/mman.h>
#include <unistd.h>

/* The dtype a weight with rows of K values gets for the requested type, or TK_F32 to keep it. */
static tk_dtype pick(tk_dtype want, int64_t K) {
    if (K % tk_dtype_block_elems(want) == 0) return want;
    if (want == TK_Q4_K && K % tk_dtype_block_elems(TK_Q5_0) == 0) return TK_Q5_0;
    return TK_F32;
}

/* Asks the kernel to reclaim the pages of [p, p + n) (MADV_PAGEOUT, Linux 5.4+): clean pages
 * of a file mapping leave this process's resident set (a later read faults them back in from
 * the file). Never destructive, so safe on pages shared with other tensors or on owned
 * (malloc'd) memory, where it does nothing without swap. Best effort. */
static void drop_pages(const void *p, size_t n) {
#ifdef MADV_PAGEOUT
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || !p || !n) return;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(ps - 1), e = ((uintptr_t)p + n + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1);
    (void)madvise((void *)a, e - a, MADV_PAGEOUT);
#else
    (void)p; (void)n;
#endif
}

typedef struct { const void *p; size_t n; } src_range;

static tk_status quantize_one(tk_model *m, tk_tensor_ref *r, tk_dtype want, int *kept, src_range *src_out) {
    if (!r->data) return TK_OK;
    if (r->dtype != TK_F32 && r->dtype != TK_F16 && r->dtype != TK_BF16)
        return tk_fail(TK_ERR_ARG, "--quantize-base %s: %s: tensor '%s' is already stored as %s; quantizing applies to bases in "
                       "f32, f16 or bf16 (use the file as it is, without --quantize-base)", tk_dtype_name(want), m->path,
                       r->name ? r->name : "?", tk_dtype_name(r->dtype));
    const int64_t K = r->ne[0], N = tk_tensor_nelems(r) / (K > 0 ? K : 1);
    const tk_dtype t = pick(want, K);
    if (t == TK_F32) { (*kept)++; return TK_OK; }
    size_t nbytes;
    tk_status st = tk_dtype_nbytes(t, K * N, &nbytes);
    if (st) return st;
    void *q = tk_malloc(nbytes);
    if (!q) return tk_fail(TK_ERR_NOMEM, "--quantize-base: out of memory for '%s' (%zu bytes)", r->name ? r->name : "?", nbytes);
    /* chunks of rows of ~4 MiB of source, each chunk's pages dropped once read, so at most one
     * chunk of the float weight is resident (not the whole 671 MiB embedding of Gemma-3-270M).
     * The ggml types' rows are independent; NF4 is one bitsandbytes tensor (its scales' mean and
     * groups run over the whole weight): its codes go chunk by chunk, the scales resolved at the end */
    const size_t src_row = (size_t)K * (r->dtype == TK_F32 ? 4 : 2), dst_row = nbytes / (size_t)N;
    const int64_t rows = src_row >= (4u << 20) ? 1 : (int64_t)((4u << 20) / src_row);
    const bool direct = r->dtype == TK_F32 && (uintptr_t)r->data % sizeof(float) == 0;
    float *tmp = direct ? NULL : tk_malloc((size_t)((rows < N ? rows : N) * K) * sizeof(float));
    if (!direct && !tmp) { free(q); return tk_fail(TK_ERR_NOMEM, "--quantize-base: out of memory converting '%s'", r->name ? r->name : "?"); }
    for (int64_t n = 0; n < N && !st; n += rows) {
        const int64_t c = N - n < rows ? N - n : rows;
        const uint8_t *src = (const uint8_t *)r->data + (size_t)n * src_row;
        const float *x = (const float *)src;
        if (!direct) { st = tk_dequantize(r->dtype, src, tmp, c * K); x = tmp; }
        if (!st && t == TK_NF4) tk_nf4_quantize_blocks(x, (uint8_t *)q + (size_t)n * dst_row, c * K);
        else if (!st) st = tk_quantize(t, x, (uint8_t *)q + (size_t)n * dst_row, c * K);
        drop_pages(src, (size_t)c * src_row);
    }
    if (!st && t == TK_NF4) tk_nf4_resolve_scales(q, K * N / TK_NF4_BLOCK);
    free(tmp);
    if (st) { free(q); return tk_fail_ctx(st, "--quantize-base: tensor '%s'", r->name ? r->name : "?"); }
    if ((st = tk_model_own(m, q, nbytes))) return st;
    src_out->p = r->data;
    src_out->n = (size_t)N * src_row;
    r->dtype = t;
    r->data = q;
    r->nbytes = nbytes;
    return TK_OK;
}

tk_status tk_weights_quantize(tk_model *m, tk_dtype want) {
    if (want != TK_Q8_0 && want != TK_Q4_K && want != TK_NF4)
        return tk_fail(TK_ERR_ARG, "--quantize-base: %s is not offered (q8_0, q4_k or nf4)", tk_dtype_name(want));
    tk_weights *w = &m->w;
    const bool tied = w->output.data == w->tok_embd.data;
    int kept = 0;
    /* the source ranges read, taken out of the resident set at the end: the per-chunk MADV_PAGEOUT
     * leaves some pages mapped (measured: 9 MiB of SmolLM2's f32 file resident without this pass, 4 MiB
     * with it, the rest the f32 norms in use; peak 206 vs 188 MiB); in a safetensors file mapping
     * (read-only, private) MADV_DONTNEED removes them for sure, and a later read faults them back in */
    const size_t n_src = 2 + 7 * (size_t)m->cfg.n_layers;
    src_range *src = tk_calloc(n_src, sizeof *src);
    if (!src) return TK_ERR_NOMEM;
    size_t k = 0;
    tk_status st = quantize_one(m, &w->tok_embd, want, &kept, &src[k++]);
    if (!st && tied) w->output = w->tok_embd;
    else if (!st) st = quantize_one(m, &w->output, want, &kept, &src[k++]);
    for (int32_t l = 0; l < m->cfg.n_layers && !st; l++) {
        tk_layer_weights *y = &w->layers[l];
        tk_tensor_ref *v[] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
        for (size_t i = 0; i < sizeof v / sizeof v[0] && !st; i++) st = quantize_one(m, v[i], want, &kept, &src[k++]);
    }
    for (size_t i = 0; i < k && m->st; i++) tk_st_drop_pages(m->st, src[i].p, src[i].n);
    free(src);
    return st;
}
