/* tk_model: container detection (HF folder / GGUF / llama2.c), tokenizer loading beside
 * the weights, accessors for the weight map, parameter counts and the tensor table. */
#include "model/llama.h"
#include "model/arch.h"
#include "core/core.h"
#include <stdio.h>
#include <sys/stat.h>
#include <dirent.h>

tk_model_params tk_model_default_params(void) {
    tk_model_params p;
    memset(&p, 0, sizeof p);
    p.tokenizer = TK_TOKENIZER_REQUIRED;
    return p;
}

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool has_gguf_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char b[4] = {0};
    size_t n = fread(b, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(b, "GGUF", 4);
}

/* The tokenizer of a llama2.c checkpoint: tokenizer.bin or tok*.bin in its folder. */
static bool find_llama2c_tokenizer(const char *model_path, char *buf, size_t n) {
    const char *slash = strrchr(model_path, '/');
    int dl = slash ? (int)(slash - model_path) : 1;
    const char *dir = slash ? model_path : ".";
    snprintf(buf, n, "%.*s/tokenizer.bin", dl, dir);
    if (file_exists(buf)) return true;
    char d[4096];
    snprintf(d, sizeof d, "%.*s", dl, dir);
    DIR *dp = opendir(d);
    if (!dp) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(dp))) {
        if (!strncmp(e->d_name, "tok", 3) && tk_ends_with(e->d_name, ".bin")) {
            int k = snprintf(buf, n, "%s/%s", d, e->d_name);
            found = k > 0 && (size_t)k < n && file_exists(buf);
        }
    }
    closedir(dp);
    return found;
}

/* The tokenizer beside the weights (tk_tokenizer_load picks the right reader), or the
 * explicit override; a llama2.c checkpoint's tokenizer is looked for in its folder. */
static tk_status load_tokenizer(tk_model *m, const char *path, bool is_dir, const tk_model_params *p) {
    if (p->tokenizer == TK_TOKENIZER_NONE || m->tok) return TK_OK;
    if (p->tokenizer_path) return tk_tokenizer_load(path, p->tokenizer_path, &m->tok);
    char buf[4096];
    if (is_dir) {
        snprintf(buf, sizeof buf, "%s/tokenizer.json", path);
        if (file_exists(buf)) return tk_tokenizer_load(path, NULL, &m->tok);
        if (p->tokenizer == TK_TOKENIZER_IF_PRESENT) return TK_OK;
        return tk_fail(TK_ERR_NOT_FOUND, "%s: no tokenizer.json in the model folder (pass a tokenizer file)", path);
    }
    if (!strcmp(m->format, "llama2c")) {
        if (find_llama2c_tokenizer(path, buf, sizeof buf)) return tk_tokenizer_load(path, buf, &m->tok);
        if (p->tokenizer == TK_TOKENIZER_IF_PRESENT) return TK_OK;
        return tk_fail(TK_ERR_NOT_FOUND, "%s: llama2.c checkpoints carry no vocabulary and no tokenizer.bin / tok*.bin "
                       "was found beside it (pass --tokenizer FILE)", path);
    }
    return TK_OK; /* GGUF: read from the already open file by the GGUF loader */
}

static uint64_t identity_of(const tk_model *m);

tk_status tk_model_load(const char *path, const tk_model_params *params, tk_model **out) {
    *out = NULL;
    if (!path) return tk_fail(TK_ERR_ARG, "tk_model_load: no path");
    tk_model_params p = params ? *params : tk_model_default_params();
    if (p.n_ctx < 0) return tk_fail(TK_ERR_ARG, "context override %d must be positive", p.n_ctx);
    struct stat sb;
    if (stat(path, &sb) != 0) return tk_fail(TK_ERR_IO, "%s: no such file or folder", path);
    tk_model *m = tk_calloc(1, sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    m->path = tk_strdup(path);
    if (!m->path) { free(m); return TK_ERR_NOMEM; }
    bool is_dir = S_ISDIR(sb.st_mode);
    tk_status st;
    if (is_dir) { m->format = "hf"; st = tk_load_hf(m, path, &p); }
    else if (has_gguf_magic(path)) { m->format = "gguf"; st = tk_load_gguf(m, path, &p); }
    else if (tk_ends_with(path, ".gguf"))   /* named GGUF but without its magic: say that, not "not a llama2.c checkpoint" */
        st = tk_fail(TK_ERR_FORMAT, "%s: not a GGUF file (%s; a GGUF starts with \"GGUF\")", path,
                     sb.st_size < 4 ? "empty or truncated" : "no GGUF magic");
    else { m->format = "llama2c"; st = tk_load_llama2c(m, path, &p); }
    if (!st) m->identity = identity_of(m);
    if (!st && p.quantize_base != TK_F32) st = tk_weights_quantize(m, p.quantize_base);
    if (!st) st = load_tokenizer(m, path, is_dir, &p);
    if (!st && m->tok && tk_tokenizer_n_vocab(m->tok) > m->cfg.n_vocab)
        st = tk_fail(TK_ERR_FORMAT, "%s: the tokenizer has %d tokens but the model only %d", path,
                     tk_tokenizer_n_vocab(m->tok), m->cfg.n_vocab);
    /* RoPE tables for the context (capped: beyond the table, angles are computed on the fly). */
    if (!st) {
        int64_t n_pos = m->cfg.max_seq < 32768 ? m->cfg.max_seq : 32768;
        st = tk_rope_init(&m->rope, &m->cfg, n_pos);
        if (!st) m->owned_bytes += (size_t)n_pos * (size_t)m->rope.half * 2 * sizeof(float);
        /* sliding layers with their own base (Gemma 3): plain RoPE, no scaling */
        if (!st && m->cfg.sliding_window > 0 && m->cfg.rope_theta_local > 0) {
            tk_model_config lc = m->cfg;
            lc.rope_theta = m->cfg.rope_theta_local;
            lc.rope_scaling = TK_ROPE_SCALING_NONE;
            st = tk_rope_init(&m->rope_local, &lc, n_pos);
            if (!st) m->owned_bytes += (size_t)n_pos * (size_t)m->rope_local.half * 2 * sizeof(float);
        }
    }
    if (st) { tk_model_free(m); return st; }
    *out = m;
    return TK_OK;
}

void tk_model_free(tk_model *m) {
    if (!m) return;
    tk_tokenizer_free(m->tok);
    tk_rope_free(&m->rope);
    tk_rope_free(&m->rope_local);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->table);
    free(m->w.layers);
    tk_gguf_close(m->gguf);
    tk_st_close(m->st);
    if (m->l2c && m->l2c_close) m->l2c_close(m->l2c);
    free(m->path);
    free(m);
}

const tk_model_config *tk_model_get_config(const tk_model *m) { return &m->cfg; }
const tk_tokenizer *tk_model_tokenizer(const tk_model *m) { return m->tok; }
const char *tk_model_path(const tk_model *m) { return m->path; }
const char *tk_model_format(const tk_model *m) { return m->format; }
tk_weights *tk_model_weights(tk_model *m) { return &m->w; }

const tk_tensor_ref *tk_model_linear(const tk_model *m, int32_t layer, tk_linear_id which) {
    if (layer < 0 || layer >= m->cfg.n_layers) return NULL;
    const tk_layer_weights *y = &m->w.layers[layer];
    switch (which) {
    case TK_LIN_Q: return &y->wq;
    case TK_LIN_K: return &y->wk;
    case TK_LIN_V: return &y->wv;
    case TK_LIN_O: return &y->wo;
    case TK_LIN_GATE: return &y->w_gate;
    case TK_LIN_UP: return &y->w_up;
    case TK_LIN_DOWN: return &y->w_down;
    default: return NULL;
    }
}

const char *tk_model_linear_name(const tk_model *m, tk_linear_id which) {
    const tk_arch *a = tk_arch_by_name(m->cfg.arch);
    if ((unsigned)which >= TK_LIN_COUNT) return NULL;
    return a ? a->lin_hf[which] : tk_linear_name(which);
}

const char *tk_linear_name(tk_linear_id which) {
    static const char *names[TK_LIN_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    return (unsigned)which < TK_LIN_COUNT ? names[which] : "?";
}

const char *tk_block_site_name(tk_block_site site) {
    static const char *names[TK_BLOCK_COUNT] = {"attention", "MLP", "layer output"};
    return (unsigned)site < TK_BLOCK_COUNT ? names[site] : "?";
}

int64_t tk_model_n_params(const tk_model *m) {
    int64_t n = 0;
    for (int64_t i = 0; i < m->n_table; i++) n += tk_tensor_nelems(&m->table[i]);
    return n;
}

uint64_t tk_model_identity(const tk_model *m) { return m->identity; }

/* The identity of tk_model_identity, from the stored weights: computed once at load, before
 * --quantize-base takes the file's pages out of memory (reading 4 KiB of each weight later
 * faulted ~64 KiB of each back in: 14 MiB of SmolLM2's f32 file). */
static uint64_t identity_of(const tk_model *m) {
    const tk_model_config *c = &m->cfg;
    int64_t sizes[] = {c->n_vocab, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim};
    uint64_t h = tk_hash_bytes(c->arch, strlen(c->arch)) ^ tk_mix64(tk_hash_bytes(sizes, sizeof sizes));
    for (int64_t i = 0; i < m->n_table; i++) {
        const tk_tensor_ref *t = &m->table[i];
        int64_t meta[5] = {(int64_t)t->dtype, t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint64_t e = tk_hash_bytes(t->name ? t->name : "", t->name ? strlen(t->name) : 0) ^ tk_mix64(tk_hash_bytes(meta, sizeof meta));
        if (t->data) e ^= tk_mix64(tk_hash_bytes(t->data, t->nbytes < 4096 ? t->nbytes : 4096) + 1);
        h = tk_mix64(h ^ e);
    }
    return h;
}

size_t tk_model_weight_bytes(const tk_model *m) {
    size_t n = 0;
    for (int64_t i = 0; i < m->n_table; i++) n += m->table[i].nbytes;
    return n;
}

size_t tk_model_owned_bytes(const tk_model *m) { return m->owned_bytes; }
int64_t tk_model_n_tensors(const tk_model *m) { return m->n_table; }
const tk_tensor_ref *tk_model_tensor(const tk_model *m, int64_t i) {
    return i >= 0 && i < m->n_table ? &m->table[i] : NULL;
}
