/* Logits of a token sequence under a takumi model, optionally with a LoRA adapter applied
 * unmerged (the same path as `takumi generate --adapter`), for tools/interop_check.py.
 *   takumi_logits MODEL ADAPTER|- IDS OUT
 * IDS: comma-separated token ids; OUT: raw little-endian f32 [n_ids x V], every position.
 *   takumi_logits --random-adapter MODEL DIR SEED
 * writes a LoRA (r 8, alpha 16, rsLoRA off, all seven linears, kaiming-uniform A as PEFT
 * initialises it, B ~ N(0, 0.05^2) instead of zero so that it changes the model) as
 * DIR/adapter (PEFT) and DIR/adapter.gguf (llama.cpp) with takumi's adapter writers.
 * Built by interop_check.py against build/libtakumi.a (not part of `make`). */
#include "takumi.h"
#include "peft/adapter_io.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int random_adapter(const char *model, const char *dir, uint64_t seed) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    tk_param_set ps = {0};
    tk_lora *l = NULL;
    tk_lora_config c = tk_lora_default_config();
    c.seed = seed;
    tk_status st = tk_model_load(model, &mp, &m);
    if (!st) st = tk_lora_new(m, &c, &ps, &l);
    if (!st) {
        /* Box-Muller from a splitmix stream: deterministic for the seed */
        uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
        for (int64_t i = 0; i < ps.n; i++) {
            if (!strstr(ps.p[i].name, "lora_B")) continue;
            for (int64_t j = 0; j < ps.p[i].n; j++) {
                double u[2];
                for (int k = 0; k < 2; k++) {
                    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
                    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                    z ^= z >> 31;
                    u[k] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
                }
                ps.p[i].w[j] = (float)(0.05 * sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
            }
        }
        char p[4096];
        snprintf(p, sizeof p, "%s/adapter", dir);
        st = tk_adapter_save_peft(l, m, p, model);
        snprintf(p, sizeof p, "%s/adapter.gguf", dir);
        if (!st) st = tk_adapter_save_gguf(l, m, p);
    }
    if (st) fprintf(stderr, "takumi_logits: %s: %s\n", tk_status_str(st), tk_last_error());
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
    return st ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--random-adapter")) return random_adapter(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc != 5) { fprintf(stderr, "usage: takumi_logits MODEL ADAPTER|- IDS OUT\n"); return 2; }
    int32_t ids[4096];
    int n = 0;
    for (char *s = argv[3]; *s && n < 4096;) { ids[n++] = (int32_t)strtol(s, &s, 10); if (*s == ',') s++; }
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    tk_adapter_handle *ah = NULL;
    tk_forward *f = NULL;
    tk_status st = tk_model_load(argv[1], &mp, &m);
    if (!st && strcmp(argv[2], "-")) st = tk_adapter_apply(m, argv[2], &ah);
    if (!st) st = tk_forward_new(m, 1, n, 0, &f);
    tk_adapter_use u = {tk_adapter_handle_peft(ah), 1.0f};
    if (!st && ah) st = tk_forward_set_adapters(f, &u, 1);
    int64_t V = m ? tk_model_get_config(m)->n_vocab : 0;
    float *lg = malloc((size_t)n * (size_t)V * sizeof(float));
    tk_batch b = {.n_rows = 1, .n_cols = n, .ids = ids};
    if (!st && !lg) st = TK_ERR_NOMEM;
    if (!st) st = tk_forward_run(f, &b, NULL, n, lg);
    if (st) { fprintf(stderr, "takumi_logits: %s: %s\n", tk_status_str(st), tk_last_error()); return 1; }
    FILE *o = fopen(argv[4], "wb");
    if (!o || fwrite(lg, sizeof(float), (size_t)n * (size_t)V, o) != (size_t)n * (size_t)V || fclose(o)) { perror(argv[4]); return 1; }
    free(lg);
    tk_forward_free(f);
    tk_adapter_detach(m, ah);
    tk_model_free(m);
    return 0;
}
