/* Decode-path accuracy probe (dev/, not a test): perplexity of a text file computed one
 * token at a time through the KV cache (the decode kernels), with f32 activations
 * (exact) and with activations quantized to 8 bits per 32-block (int8, as llama.cpp).
 * Protocol of llama.cpp's llama-perplexity, so the numbers compare with it directly:
 * the text is tokenized once (with BOS if the model asks for it), cut into chunks of
 * n_ctx tokens, each chunk evaluated from an empty cache, and only the second half of
 * each chunk scored (logit at i predicts token i+1, i in [n_ctx/2, n_ctx-1)).
 * mode "decode" (default) evaluates every token alone; "prefill" evaluates tokens 0..n_ctx/2 as
 * one prompt (the prefill products: bf16 in the fast precision where the CPU has AVX512-BF16)
 * and decodes the rest, as a generation does: same tokens scored.
 * Usage: dev/ppl_decode.sh MODEL TEXT [n_ctx=128] [chunks=8] [decode|prefill] */
#include "takumi.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ppl_decode MODEL TEXT [n_ctx] [chunks]\n");
        return 1;
    }
    int n_ctx = argc > 3 ? atoi(argv[3]) : 128, max_chunks = argc > 4 ? atoi(argv[4]) : 8;
    bool prefill = argc > 5 && !strcmp(argv[5], "prefill");
    tk_model_params mp = tk_model_default_params();
    tk_model *m = NULL;
    if (tk_model_load(argv[1], &mp, &m)) { fprintf(stderr, "%s: %s\n", argv[1], tk_last_error()); return 1; }
    char *text = NULL;
    size_t text_len = 0;
    if (tk_read_file(argv[2], &text, &text_len)) { fprintf(stderr, "%s: %s\n", argv[2], tk_last_error()); return 1; }
    tk_ivec ids = {0};
    if (tk_tokenize(tk_model_tokenizer(m), text, text_len, TK_TOK_ADD_SPECIAL, &ids)) {
        fprintf(stderr, "tokenize: %s\n", tk_last_error());
        return 1;
    }
    int V = tk_model_get_config(m)->n_vocab, chunks = (int)(ids.len / n_ctx);
    if (chunks > max_chunks) chunks = max_chunks;
    float *lg = malloc((size_t)V * sizeof(float));
    for (int exact = 1; exact >= 0; exact--) {
        double nll = 0;
        int count = 0;
        for (int c = 0; c < chunks; c++) {
            tk_session *s = NULL;
            if (tk_session_new(m, n_ctx, &s)) { fprintf(stderr, "session: %s\n", tk_last_error()); return 1; }
            tk_session_set_exact(s, exact);
            const int32_t *t = ids.data + (size_t)c * n_ctx;
            for (int i = prefill ? n_ctx / 2 : 0; i < n_ctx - 1; i++) {
                int64_t n = prefill && i == n_ctx / 2 ? i + 1 : 1; /* the prompt: tokens 0..i at once */
                if (tk_session_eval(s, t + i + 1 - n, n, lg)) { fprintf(stderr, "eval: %s\n", tk_last_error()); return 1; }
                if (i < n_ctx / 2) continue;
                double mx = -INFINITY, z = 0;
                for (int v = 0; v < V; v++) mx = fmax(mx, lg[v]);
                for (int v = 0; v < V; v++) z += exp(lg[v] - mx);
                nll += mx + log(z) - lg[t[i + 1]];
                count++;
            }
            tk_session_free(s);
        }
        printf("%s %s: %d chunks of %d tokens, %d scored: perplexity %.4f\n", exact ? "exact" : "fast ",
               prefill ? "prefill+decode" : "decode", chunks, n_ctx, count, exp(nll / count));
        fflush(stdout);
    }
    free(lg);
    tk_ivec_free(&ids);
    free(text);
    tk_model_free(m);
    return 0;
}
