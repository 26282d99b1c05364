/* Which modules and layers an HF PEFT adapter_config.json says the adapter touches, checked
 * against the tensors of its adapter_model.safetensors, with PEFT's own matching rules
 * (peft/tuners/tuners_utils.py, check_target_module_exists): a list of names matches a module
 * whose path equals a name or ends with "." + name; a string is a regular expression that
 * must match the whole path ("all-linear" matches every linear); layers_to_transform (an
 * integer or a list) restricts the layers. A tensor outside what the config declares means
 * the file and its config disagree: refused rather than applied. */
#include "peft/peft_targets.h"
#include "core/core.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>

static bool regex_full_match(const char *pattern, const char *s, const char *cfg_name, tk_status *st) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                                   &err, &off, NULL);
    if (!re) {
        *st = tk_fail(TK_ERR_FORMAT, "%s: \"target_modules\" is not a valid regular expression (at offset %zu)", cfg_name, (size_t)off);
        return false;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) : PCRE2_ERROR_NOMEMORY;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc == PCRE2_ERROR_NOMEMORY) *st = tk_fail(TK_ERR_NOMEM, "%s: out of memory matching \"target_modules\"", cfg_name);
    return rc >= 0;
}

tk_status tk_peft_check_target(const cJSON *cfg, const char *cfg_name, const char *file, const char *tensor, const char *module_path,
                               int32_t layer) {
    const char *leaf = strrchr(module_path, '.');
    leaf = leaf ? leaf + 1 : module_path;
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(cfg, "target_modules");
    tk_status st = TK_OK;
    bool targeted = true;
    if (cJSON_IsString(tm)) {
        if (strcmp(tm->valuestring, "all-linear")) targeted = regex_full_match(tm->valuestring, module_path, cfg_name, &st);
    } else if (cJSON_IsArray(tm)) {
        targeted = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, tm) {
            if (!cJSON_IsString(e)) return tk_fail(TK_ERR_FORMAT, "%s: \"target_modules\" must list strings", cfg_name);
            size_t n = strlen(e->valuestring), k = strlen(module_path);
            if (!strcmp(e->valuestring, module_path) ||
                (k > n && module_path[k - n - 1] == '.' && !strcmp(module_path + k - n, e->valuestring)))
                targeted = true;
        }
    } else if (tm && !cJSON_IsNull(tm)) {
        return tk_fail(TK_ERR_FORMAT, "%s: \"target_modules\" must be a list of names or a regular expression", cfg_name);
    }
    if (st) return st;
    if (!targeted)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' adapts %s, which \"target_modules\" in %s does not name: "
                       "the adapter's files disagree", file, tensor, leaf, cfg_name);
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(cfg, "layers_to_transform");
    if (!lt || cJSON_IsNull(lt)) return TK_OK;
    bool in = false;
    if (cJSON_IsNumber(lt)) in = lt->valuedouble == (double)layer;
    else if (cJSON_IsArray(lt)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, lt) {
            if (!cJSON_IsNumber(e)) return tk_fail(TK_ERR_FORMAT, "%s: \"layers_to_transform\" must list layer numbers", cfg_name);
            if (e->valuedouble == (double)layer) in = true;
        }
    } else return tk_fail(TK_ERR_FORMAT, "%s: \"layers_to_transform\" must be a layer number or a list of them", cfg_name);
    if (!in)
        return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' adapts layer %d, which \"layers_to_transform\" in %s excludes: "
                       "the adapter's files disagree", file, tensor, (int)layer, cfg_name);
    return TK_OK;
}
