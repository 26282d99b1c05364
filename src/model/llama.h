/* Internals of the Llama-family model shared by the loaders (src/model/load_*.c), the
 * forward (src/model/llama.c), generation sessions (src/infer/) and, later, the
 * backward pass and adapters (issue 3). Dimension legend as in takumi/model.h:
 * V, C, L, H, KH, D, F; T = tokens in a forward (B rows x Tc columns flattened),
 * S = keys a query can see (Tc, or cached + new at inference). */
#ifndef TK_MODEL_LLAMA_H
#define TK_MODEL_LLAMA_H
#include "takumi/model.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"
#include "ops/ops.h"

struct tk_model {
    tk_model_config cfg;
    tk_weights w;                 /* the weight map; w.layers is [L] */
    char *path;
    const char *format;           /* "gguf" | "hf" | "llama2c" */
    tk_tokenizer *tok;            /* NULL when not loaded */
    /* containers the refs point into (exactly one is set) */
    tk_gguf *gguf;
    tk_safetensors *st;
    void *l2c;                    /* llama2.c checkpoint handle */
    void (*l2c_close)(void *);
    /* allocations the model owns (converted norm/bias vectors) */
    void **owned;
    size_t n_owned, owned_bytes;
    /* the weights as stored in the file (dtype, shape, bytes), in load order, for inspect */
    tk_tensor_ref *table;
    int64_t n_table;
    uint64_t identity;            /* tk_model_identity, computed at load from the stored weights */
    tk_rope rope;                 /* cos/sin for positions [0, rope.n_pos) */
    tk_rope rope_local;           /* sliding layers' RoPE when cfg.rope_theta_local is set (else unused, zeroed) */
};

struct tk_acts;
/* The virtual tokens of an input-embedding prefix (takumi/peft.h embed_prefix: prompt tuning) in a
 * workspace (src/model/vtoks.c): a 1 x P workspace of their own (activations kept when the parent
 * keeps them), run at positions -P..-1 with no adapter, and per layer the keys (after RoPE) and
 * values they add to the attention prefix. Made by tk_acts_set_adapters; a NULL = none. */
typedef struct tk_vtoks {
    int ad;                 /* the adapter with embed_prefix (index into the list) */
    int64_t P;              /* its rows */
    bool live;              /* the last forward used them (the adapter gave P rows, not 0) */
    bool ready;             /* kv was computed from emb (inference reuses it while the rows are unchanged) */
    struct tk_acts *a;      /* [1 x P] */
    float *kv;              /* [L][2][P x KH*D] keys then values per layer */
    float *emb;             /* [P x C] the rows kv was computed from */
    float *dkv;             /* [L][2][P x KH*D] the sequence's gradients of kv (training backward) */
    int32_t *ids;           /* [P] zeros: the virtual batch's ids (never embedded) */
} tk_vtoks;

/* One row's adapter list in a batched decode (tk_acts_set_row_adapters); the list is borrowed. */
typedef struct tk_row_adapters {
    const tk_adapter_use *ads;
    int n;
} tk_row_adapters;

/* Activations of one forward, allocated once per shape (rows x cols). With keep, every
 * per-layer buffer holds [L] consecutive slots (what a backward pass needs); without
 * it, one slot is reused by every layer. Use TK_ACT(a, field, l) for layer l's slot. */
typedef struct tk_acts {
    int32_t max_rows, max_cols;
    int64_t max_T;           /* max_rows * max_cols */
    bool keep;               /* TK_FWD_KEEP_ACTS */
    int mm_flags;            /* tk_matmul_ex flags: TK_MATMUL_EXACT keeps activations f32 in few-row products */
    float *x;       /* [L+1][T x C] residual stream entering layer l; slot L = last layer's output (keep); else [T x C] */
    float *xmid;    /* [L][T x C] residual after attention (input of ffn_norm) */
    float *xn1;     /* [L][T x C] attn_norm output: input of wq, wk, wv */
    float *rstd1;   /* [L][T] */
    float *q;       /* [L][T x H*D] after bias, adapter and RoPE */
    float *k, *v;   /* [L][T x KH*D] (k after RoPE) */
    float *att;     /* [L][B x H x Tc x Tc] attention probabilities with TK_FWD_KEEP_ATT_PROBS, else NULL
                       (the attention backward then recomputes them) */
    float *attn;    /* [L][T x H*D] attention output: input of wo */
    float *xn2;     /* [L][T x C] ffn_norm output: input of w_gate, w_up */
    float *rstd2;   /* [L][T] */
    float *gate, *up; /* [L][T x F] */
    float *ffh;     /* [L][T x F] silu(gate) * up: input of w_down */
    float *hn;      /* [T x C] final norm output (input of the LM head) */
    float *rstdf;   /* [T] */
    float *tmp;     /* [T x C] output of wo / w_down before the residual add */
    float *gather;  /* [T x C] hidden rows gathered for selected logits */
    /* block features (NULL when the model's config does not use them) */
    float *qr, *kr;       /* [L][T x H*D], [L][T x KH*D] q/k before their per-head norm (cfg.qk_norm) */
    float *rstdq, *rstdk; /* [L][T x H], [L][T x KH] */
    float *ao, *fo;       /* [L][T x C] o-proj / down-proj outputs before the post norms (cfg.sandwich_norm) */
    float *rstdpa, *rstdpf; /* [L][T] */
    float *fused;         /* [T x max((H+2KH)*D, 2F)] one fused product before its split (cfg.fused_*) */
    int32_t *pos, *seg; /* [T] positions / segments used by the last run */
    /* per-layer strides in floats of the kept buffers: T*C (x), T*C (xmid, xn1, xn2), T*H*D, T*KH*D, T*F, T,
       B*H*Tc*Tc; 0 for buffers with one slot (TK_ACTS_RECOMPUTE keeps only x per layer) */
    int64_t s_x, s_c, s_h, s_kv, s_f, s_t, s_att;
    float *base;    /* the one allocation every float buffer above is carved from */
    size_t bytes;
    /* adapters applied by this workspace's forwards (takumi/peft.h), in order */
    tk_adapter_use ads[TK_MAX_ADAPTERS];
    int n_ads;
    bool training;         /* adapters run their training entry points (set by the training step) */
    tk_scratch scratch;    /* per-workspace memory for adapter calls */
    tk_scratch pfx;        /* one layer's attention prefix when several adapters have one (concatenated) */
    const tk_model *m;     /* the model the workspace was made for */
    tk_vtoks vt;           /* virtual tokens of an adapter's embed_prefix (vt.a NULL = none) */
    /* per-row adapters (tk_acts_set_row_adapters): token row t of a decode forward uses row_ads[t]'s list
       instead of ads (then n_ads is 0); NULL = ads for every row */
    const tk_row_adapters *row_ads;
    int32_t n_row_ads;
} tk_acts;

/* Copies an adapter list into a (checked: n in [0, TK_MAX_ADAPTERS], each with a method; at most one
 * with an embed_prefix, for which the virtual tokens' workspace is made). */
tk_status tk_acts_set_adapters(tk_acts *a, const tk_adapter_use *ads, int n);
/* Per-row adapters for decode forwards (one token per row) of a TK_MATMUL_ROWWISE workspace: row r uses rows[r]'s
 * list (borrowed: must outlive the forwards; each checked as tk_acts_set_adapters does), the base products still run
 * once over all rows, each row's adapter products on its own row (its logits equal a one-row forward's with that list
 * bit for bit). Lists of linear and block adapters only: a method with an attention or input-embedding prefix is
 * refused (its prefix would change every row's attention; such rows run in a forward of their own). Clears the
 * workspace's own list; n = 0 (rows NULL) goes back to it. Not thread-safe per workspace. */
tk_status tk_acts_set_row_adapters(tk_acts *a, const tk_row_adapters *rows, int32_t n);
/* Whether every adapter of ads[0..n) can be a row's in tk_acts_set_row_adapters (no attention/embedding prefix). */
bool tk_adapters_row_batchable(const tk_adapter_use *ads, int n);
/* True when the workspace's adapter list equals ads[0..n). */
bool tk_acts_same_adapters(const tk_acts *a, const tk_adapter_use *ads, int n);

/* The attention prefix of `layer` from the workspace's adapters (takumi/peft.h attn_prefix): keys and
 * values [*P x kvd], concatenated in list order into a->pfx when several adapters have one (else the
 * adapter's own memory), the virtual tokens' (a->vt, when live) last; *P = 0 when none. Valid until
 * the next call. Not thread-safe per workspace. */
tk_status tk_acts_prefix(tk_acts *a, int32_t layer, int64_t kvd, const float **pk, const float **pv, int64_t *P);

#define TK_ACT(a, field, l, stride) ((a)->keep ? (a)->field + (int64_t)(l) * (a)->stride : (a)->field)

/* Activation recomputation layout (training): keep only each layer's input x per layer,
 * one slot of everything else; a backward re-runs a layer with tk_llama_forward_layers. */
enum { TK_ACTS_RECOMPUTE = 1 << 8 };
/* Allocates activations for up to rows x cols tokens; flags: TK_FWD_KEEP_ACTS,
 * TK_FWD_KEEP_ATT_PROBS, TK_ACTS_RECOMPUTE. Free with tk_acts_free. */
tk_status tk_acts_init(tk_acts *a, const tk_model *m, int32_t rows, int32_t cols, int flags);
void tk_acts_free(tk_acts *a);

/* Virtual tokens (src/model/vtoks.c). Makes a->vt for the workspace's adapter list (frees it when no
 * adapter has an embed_prefix; refuses two). */
tk_status tk_vtoks_setup(tk_acts *a);
void tk_vtoks_free(tk_vtoks *vt);
/* Before a forward: asks the adapter for its rows and, in training or when they changed, runs them
 * through the layers into vt->kv (sets vt->live). Not thread-safe per workspace. */
tk_status tk_vtoks_forward(tk_model *m, tk_acts *a);
/* The virtual tokens' keys/values of `layer` when live ([P x kvd] each), else 0. */
int64_t tk_vtoks_prefix(const tk_acts *a, int32_t layer, const float **k, const float **v);
/* Runs layers [l0, l1) of a workspace from its kept input x[l0] (rows x cols of b; positions pos,
 * segments seg or NULL); the layer loop of tk_llama_forward. */
tk_status tk_llama_run_layers(tk_model *m, tk_acts *a, const tk_batch *b, const int32_t *pos, const int32_t *seg, int32_t l0, int32_t l1);

/* f32 KV cache of one sequence: k/v [L x cap x KH*D]; cap grows up to n_ctx. */
typedef struct tk_kv_cache {
    int32_t n_layers, kvd;   /* kvd = KH*D */
    int32_t n, cap, n_ctx;   /* cached tokens, allocated slots, limit */
    float *k, *v;
    int32_t *tokens, *pos;   /* [cap] */
} tk_kv_cache;
/* Prefill chunk: bounds the workspace (and the attention scores of one call) while keeping
 * matmuls large enough for the BLAS/per-block path to be efficient. */
#define TK_PREFILL_CHUNK 256
/* A generation session (src/infer/session.c): the cache plus a decode/prefill workspace. */
struct tk_session {
    tk_model *m;
    tk_kv_cache kv;
    tk_acts a;       /* 1 x prefill-chunk tokens, activations not kept */
};
tk_status tk_kv_init(tk_kv_cache *kv, const tk_model *m, int32_t n_ctx);
/* Ensures room for n tokens (<= n_ctx), reallocating and relaying out the layers. */
tk_status tk_kv_reserve(tk_kv_cache *kv, int32_t n);
/* Appends ids[0..n) to the sequence of kv in chunks of a's max_cols (a: 1 row, activations not
 * kept) and writes the logits of the last one into logits[V] (may be NULL): tk_session_eval's
 * work. TK_ERR_RANGE when the context would overflow; on failure the cache is as before. */
tk_status tk_kv_eval(tk_model *m, tk_acts *a, tk_kv_cache *kv, const int32_t *ids, int64_t n, float *logits);
void tk_kv_free(tk_kv_cache *kv);
/* Makes dst hold the first n cached tokens of src (keys, values, tokens, positions; dst->n = n), as if
 * they had been evaluated into dst: a prompt shared by several sequences is evaluated once. src and
 * dst belong to the same model; src->n >= n. dst == src just truncates. */
tk_status tk_kv_copy_prefix(tk_kv_cache *dst, const tk_kv_cache *src, int32_t n);

/* The forward. With kv (then b->n_rows must be 1), the batch continues the cached sequence:
 * its keys/values are stored at [kv->n, kv->n + T) and attention sees the whole cache
 * (kv->n is advanced on success). Positions default to kv->n + t. Logits for out_idx as in
 * tk_forward_run. No allocation happens here. */
tk_status tk_llama_forward(tk_model *m, tk_acts *a, const tk_batch *b, tk_kv_cache *kv,
                           const int64_t *out_idx, int64_t n_out, float *logits);

/* The forward of B independent sequences: row r of b continues the cached sequence of
 * kvs[r] (B distinct caches, each with room for the row's n_cols tokens) as
 * tk_llama_forward does with one cache; the linear layers run once over all rows. With
 * a->mm_flags TK_MATMUL_ROWWISE, each row's logits equal those of a one-row forward on
 * its cache bit for bit. Not thread-safe per workspace or cache. */
tk_status tk_llama_forward_kvs(tk_model *m, tk_acts *a, const tk_batch *b, tk_kv_cache *const *kvs,
                               const int64_t *out_idx, int64_t n_out, float *logits);

/* Re-runs layers [l0, l1) of the last tk_llama_forward(m, a, b, NULL, ...) (same batch,
 * no KV cache) from the kept input x[l0], rewriting those layers' activation slots (for
 * activation recomputation in the backward, src/model/backward.c). */
tk_status tk_llama_forward_layers(tk_model *m, tk_acts *a, const tk_batch *b, int32_t l0, int32_t l1);

/* Loader helpers (src/model/weights.c). */
/* Looks up a weight by its llama.cpp GGUF name ("blk.3.attn_q.weight"); writes the name
 * the container uses into file_name[n] (for messages); NULL when absent. */
typedef const tk_tensor_ref *(*tk_find_tensor_fn)(void *ctx, const char *gguf_name, char *file_name, size_t n);
/* Refuses a tensor named "<prefix><L>.…" whose layer L is outside [0, n_layers) (a file whose
 * block count and tensors disagree); other names pass. Thread-safe. */
tk_status tk_weights_check_layer(const char *name, const char *prefix, int32_t n_layers, const char *file);
/* Fills m->w from a container: every tensor present with the shape the config implies
 * (messages name the tensor and `file`); vectors converted to f32 when stored otherwise.
 * cfg.tied_embeddings set on entry: the output is tok_embd; else the output is looked up
 * and, when absent and output_optional, tied (then cfg.tied_embeddings is set). Sets
 * cfg.qkv_bias when the biases exist (required when set on entry). */
tk_status tk_weights_bind(tk_model *m, tk_find_tensor_fn find, void *ctx, const char *file,
                         bool output_optional);
/* Records an allocation owned by the model (freed with it). */
tk_status tk_model_own(tk_model *m, void *p, size_t bytes);
/* --quantize-base (quantize_base.c): replaces every matmul weight stored in f32/f16/bf16 by an
 * owned copy in `want` (TK_Q8_0, TK_Q4_K or TK_NF4; rows that fit no block fall back or stay);
 * fails, naming the tensor, when a weight is already quantized. Not thread-safe (load time). */
tk_status tk_weights_quantize(tk_model *m, tk_dtype want);

/* Per-container loaders: fill m->cfg and m->w (and m->tok for GGUF when asked). */
tk_status tk_load_gguf(tk_model *m, const char *path, const tk_model_params *p);
tk_status tk_load_hf(tk_model *m, const char *dir, const tk_model_params *p);
tk_status tk_load_llama2c(tk_model *m, const char *path, const tk_model_params *p);
#endif
