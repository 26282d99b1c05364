/* POST /v1/files bodies: multipart/form-data (RFC 7578 over RFC 2046's multipart) with the fields
 * "purpose" and "file". Pure and bounds-checked over the body's length (no NUL terminator needed):
 * the fuzz target drives it directly. */
#include "serve/request.h"
#include "core/core.h"
#include <stdio.h>
#include <strings.h>

#define BAD(e, param, ...) srv_err(e, 400, "invalid_request_error", "invalid_value", param, __VA_ARGS__)

/* The value of parameter name (case-insensitive) in a header value like `form-data; name="file"; filename="a.jsonl"`,
 * quoted or not, into out (n bytes, truncated). False when absent. Reads at most hlen bytes of h. */
static bool header_param(const char *h, size_t hlen, const char *name, char *out, size_t n) {
    size_t nl = strlen(name);
    for (size_t i = 0; i < hlen; i++) {
        if (h[i] != ';') continue;
        size_t j = i + 1;
        while (j < hlen && (h[j] == ' ' || h[j] == '\t')) j++;
        if (j + nl >= hlen || strncasecmp(h + j, name, nl) || h[j + nl] != '=') continue;
        j += nl + 1;
        size_t o = 0;
        if (j < hlen && h[j] == '"') {
            for (j++; j < hlen && h[j] != '"'; j++) {
                if (h[j] == '\\' && j + 1 < hlen) j++;
                if (o + 1 < n) out[o++] = h[j];
            }
        } else {
            for (; j < hlen && h[j] != ';' && h[j] != ' ' && h[j] != '\t' && h[j] != '\r'; j++)
                if (o + 1 < n) out[o++] = h[j];
        }
        out[o] = 0;
        return true;
    }
    return false;
}

/* The first occurrence of needle (nn bytes) in hay (hn bytes), or NULL. */
static const char *find(const char *hay, size_t hn, const char *needle, size_t nn) {
    return nn <= hn ? memmem(hay, hn, needle, nn) : NULL;
}

/* One part's headers [h, h + hlen): its field name and filename (has_file: a filename parameter was present). */
static int part_headers(const char *h, size_t hlen, char *name, size_t nn, char *fname, size_t fn, bool *has_file, srv_error *e) {
    *name = *fname = 0;
    *has_file = false;
    bool disp = false;
    for (size_t i = 0; i < hlen;) {
        const char *eol = find(h + i, hlen - i, "\r\n", 2);
        size_t ll = eol ? (size_t)(eol - (h + i)) : hlen - i;
        const char *line = h + i;
        static const char cd[] = "content-disposition:";
        if (ll >= sizeof cd - 1 && !strncasecmp(line, cd, sizeof cd - 1)) {
            size_t k = sizeof cd - 1;
            while (k < ll && line[k] == ' ') k++;
            if (ll - k < 9 || strncasecmp(line + k, "form-data", 9))
                return BAD(e, NULL, "A part of the multipart body is not form-data (Content-Disposition: %.*s).", (int)(ll < 60 ? ll : 60), line);
            disp = true;
            if (!header_param(line + k, ll - k, "name", name, nn))
                return BAD(e, NULL, "A part of the multipart body has no field name (Content-Disposition without name=).");
            *has_file = header_param(line + k, ll - k, "filename", fname, fn);
        }
        i += ll + 2;
    }
    if (!disp) return BAD(e, NULL, "A part of the multipart body has no Content-Disposition header.");
    return 0;
}

int srv_parse_upload(const char *content_type, const char *body, size_t len, srv_upload *u, srv_error *e) {
    memset(u, 0, sizeof *u);
    memset(e, 0, sizeof *e);
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19))
        return BAD(e, NULL, "POST /v1/files takes a multipart/form-data body (fields 'purpose' and 'file'), not '%.60s'.",
                   content_type ? content_type : "(no Content-Type)");
    char boundary[80];
    size_t ctl = strlen(content_type);
    if (!header_param(content_type, ctl, "boundary", boundary, sizeof boundary) || !boundary[0] || strlen(boundary) > 70)
        return BAD(e, NULL, "The multipart/form-data Content-Type has no boundary (or one longer than 70 characters).");
    char delim[84];
    int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    /* the body starts with the first delimiter (a preamble before it is allowed) */
    const char *p;
    if (len >= (size_t)dl - 2 && !memcmp(body, delim + 2, (size_t)dl - 2)) p = body + dl - 2;
    else if (!(p = find(body, len, delim, (size_t)dl))) return BAD(e, NULL, "The multipart body has no part (boundary '%s' not found).", boundary);
    else p += dl;
    const char *end = body + len;
    bool have_purpose = false, have_file = false;
    for (int parts = 0;; parts++) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') break;   /* the closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return BAD(e, NULL, "The multipart body ends inside a part (no closing boundary).");
        p += 2;
        if (parts >= 8) return BAD(e, NULL, "The multipart body has more than 8 parts (fields 'purpose' and 'file' are expected).");
        const char *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *data;
        size_t hlen;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') { hlen = 0; data = p + 2; }   /* a part without headers */
        else if (!hend) return BAD(e, NULL, "A part of the multipart body has no end to its headers.");
        else { hlen = (size_t)(hend - p); data = hend + 4; }
        const char *next = find(data, (size_t)(end - data), delim, (size_t)dl);
        if (!next) return BAD(e, NULL, "The multipart body ends inside a part (no closing boundary).");
        char name[64], fname[256];
        bool has_file;
        if (part_headers(p, hlen, name, sizeof name, fname, sizeof fname, &has_file, e)) return -1;
        size_t dlen = (size_t)(next - data);
        if (!strcmp(name, "purpose")) {
            if (have_purpose) return BAD(e, "purpose", "The field 'purpose' is given twice.");
            have_purpose = true;
            if (dlen >= sizeof u->purpose || memchr(data, 0, dlen))
                return BAD(e, "purpose", "Invalid value for 'purpose': expected 'fine-tune'.");
            memcpy(u->purpose, data, dlen);
            u->purpose[dlen] = 0;
        } else if (!strcmp(name, "file")) {
            if (have_file) return BAD(e, "file", "The field 'file' is given twice.");
            if (!has_file) return BAD(e, "file", "The field 'file' must be a file (a part with a filename).");
            have_file = true;
            const char *base = strrchr(fname, '/'), *b2 = strrchr(fname, '\\');
            if (b2 && (!base || b2 > base)) base = b2;
            snprintf(u->filename, sizeof u->filename, "%s", base ? base + 1 : fname);
            u->data = data;
            u->len = dlen;
        } else {
            return srv_err(e, 400, "invalid_request_error", "unknown_parameter", name[0] ? name : NULL,
                           "Unrecognized request argument supplied: %.60s", name);
        }
        p = next + dl;
    }
    if (!have_file) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "file", "Missing required parameter: 'file'.");
    if (!have_purpose) return srv_err(e, 400, "invalid_request_error", "missing_required_parameter", "purpose", "Missing required parameter: 'purpose'.");
    if (strcmp(u->purpose, "fine-tune"))
        return BAD(e, "purpose", "Invalid value for 'purpose': '%.30s'. takumi serve takes files for 'fine-tune' only.", u->purpose);
    return 0;
}
