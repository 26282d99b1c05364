/* SHA-256 (FIPS 180-4): API keys are stored as salted SHA-256 digests (src/serve/keys.c). */
#ifndef TK_CORE_SHA256_H
#define TK_CORE_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct tk_sha256 { uint32_t h[8]; uint64_t n; uint8_t buf[64]; size_t used; } tk_sha256;
/* Starts a digest. Reentrant (state only in *c). */
void tk_sha256_init(tk_sha256 *c);
/* Adds n bytes. Reentrant. */
void tk_sha256_update(tk_sha256 *c, const void *data, size_t n);
/* Writes the 32-byte digest; c must be initialised again before reuse. Reentrant. */
void tk_sha256_final(tk_sha256 *c, uint8_t out[32]);
/* The digest of n bytes in one call. Reentrant. */
void tk_sha256_bytes(const void *data, size_t n, uint8_t out[32]);
/* The 64 lowercase hex characters of a digest and a NUL into hex[65]. Reentrant. */
void tk_sha256_hex(const uint8_t d[32], char hex[65]);
#endif
