/* The modules and layers an HF PEFT config declares, checked against a tensor's (see
 * peft_targets.c). Shared by every method's PEFT reader. */
#ifndef TK_PEFT_TARGETS_H
#define TK_PEFT_TARGETS_H
#include "takumi/core.h"
#include <cjson/cJSON.h>

/* OK when cfg's target_modules (list or regex, PEFT's matching) names module_path (e.g.
 * "model.layers.3.self_attn.q_proj") and its layers_to_transform (when set) includes layer;
 * else TK_ERR_FORMAT naming file, tensor and cfg_name. Thread-safe. */
tk_status tk_peft_check_target(const cJSON *cfg, const char *cfg_name, const char *file, const char *tensor, const char *module_path,
                               int32_t layer);
#endif
