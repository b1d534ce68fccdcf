/*
 * digest.c — SHA-256 hex digests (see digest.h). The hex is written from a table:
 * a snprintf per byte cost more than the hash itself on every GET of a job (its
 * ETag).
 */
#include "digest.h"

#include <stdint.h>

void digest_sha256_finish_hex(struct sha256_ctx *ctx, char out[DIGEST_SHA256_HEX])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * SHA256_DIGEST_SIZE] = '\0';
}

void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    digest_sha256_finish_hex(&ctx, out);
}
