/*
 * digest.c — SHA-256 hex digests (see digest.h). The hex is written from a table:
 * a snprintf per byte cost more than the hash itself on every GET of a job (its
 * ETag).
 */
#include "digest.h"

#include <stdint.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

void digest_sha256_finish_hex(struct sha256_ctx *ctx, char out[DIGEST_SHA256_HEX])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        out[2 * i] = hex_digits[d[i] >> 4];
        out[2 * i + 1] = hex_digits[d[i] & 15];
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

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

void digest_etag(const void *data, size_t len, char out[DIGEST_ETAG])
{
    const unsigned char *p = data;
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    uint64_t h = (uint64_t)len * k, w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8); /* byte order does not matter: only equality is asked */
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, p, len);
    h = mix64((h ^ w) * k);
    out[0] = '"';
    for (int i = 0; i < 16; i++) out[1 + i] = hex_digits[(h >> (60 - 4 * i)) & 15];
    out[17] = '"';
    out[18] = '\0';
}
