/* Numbers in free text: the last decimal number a program printed, and the score in a judge
 * model's reply (a JSON object's "result"/"score", else the last number). */
#include "eval/grader_internal.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>

/* Length of a decimal number starting at s (digits, optional fraction, optional exponent), 0 if none. */
static size_t number_len(const char *s) {
    size_t i = 0, digits = 0;
    while (isdigit((unsigned char)s[i])) i++, digits++;
    if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        i++;
        while (isdigit((unsigned char)s[i])) i++, digits++;
    }
    if (!digits) return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (isdigit((unsigned char)s[j])) {
            while (isdigit((unsigned char)s[j])) j++;
            i = j;
        }
    }
    return i;
}

bool tk_text_last_number(const char *s, double *out) {
    bool found = false;
    for (size_t i = 0; s[i];) {
        size_t n = number_len(s + i);
        if (!n || (i > 0 && (isalpha((unsigned char)s[i - 1]) || s[i - 1] == '_'))) { /* "gpt4", "e5": not a number */
            i += n ? n : 1;
            continue;
        }
        size_t b = i;
        /* a sign belongs to the number unless it follows a word or a number ("8-10" is 8 and 10) */
        if (b > 0 && (s[b - 1] == '-' || s[b - 1] == '+') &&
            (b == 1 || !(isalnum((unsigned char)s[b - 2]) || s[b - 2] == ')' || s[b - 2] == '.' || s[b - 2] == '_')))
            b--;
        char buf[128];
        size_t len = i + n - b;
        if (len < sizeof buf) {
            memcpy(buf, s + b, len);
            buf[len] = 0;
            double v = strtod(buf, NULL);
            if (isfinite(v)) { *out = v; found = true; }
        }
        i += n;
    }
    return found;
}

/* "result" or "score" of o as a number (a numeric string counts too). */
static bool object_score(const cJSON *o, double *out) {
    static const char *const keys[] = {"result", "score"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) { *out = v->valuedouble; return true; }
        if (cJSON_IsString(v)) {
            char *end;
            double d = strtod(v->valuestring, &end);
            while (isspace((unsigned char)*end)) end++;
            if (end != v->valuestring && !*end && isfinite(d)) { *out = d; return true; }
        }
    }
    return false;
}

bool tk_judge_reply_score(const char *reply, double *out) {
    bool found = false;
    int tries = 0;
    for (const char *s = strchr(reply, '{'); s && tries < 64; s = strchr(s + 1, '{'), tries++) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithOpts(s, &end, 0);
        double v;
        if (cJSON_IsObject(j) && object_score(j, &v)) { *out = v; found = true; }
        cJSON_Delete(j);
    }
    return found || tk_text_last_number(reply, out);
}
