/* libFuzzer target: any byte string as an HF config.json. Parsing must either fail with
 * a message or yield a config whose sizes passed validation. */
#include <stdint.h>
#include <stddef.h>
#include "takumi.h"
#include "model/hfconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_model_config cfg;
    tk_hf_config_extra x;
    if (tk_hf_config_parse((const char *)data, size, "fuzz/config.json", &cfg, &x) != TK_OK) {
        if (!tk_last_error()[0]) __builtin_trap();
        return 0;
    }
    if (cfg.n_vocab <= 0 || cfg.dim <= 0 || cfg.n_layers <= 0 || cfg.n_heads <= 0 || cfg.n_kv_heads <= 0 ||
        cfg.n_heads % cfg.n_kv_heads || cfg.head_dim <= 0 || cfg.head_dim % 2 || cfg.hidden_dim <= 0 ||
        cfg.max_seq <= 0 || !(cfg.rms_eps > 0) || !(cfg.rope_theta > 0) || x.n_eos_ids > 8)
        __builtin_trap();
    return 0;
}
