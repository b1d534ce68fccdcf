/*
 * digest.h — SHA-256 as lowercase hex, the one form fitd shows and stores
 * (dataset and weights checksums, idempotency body hashes, ETags).
 */
#ifndef FITD_DIGEST_H
#define FITD_DIGEST_H

#include <stddef.h>

#include <nettle/sha2.h>

#define DIGEST_SHA256_HEX (2 * SHA256_DIGEST_SIZE + 1) /* 64 digits + NUL */

/* Finish a running SHA-256 (nettle) into 64 hex digits + NUL. */
void digest_sha256_finish_hex(struct sha256_ctx *ctx, char out[DIGEST_SHA256_HEX]);

/* SHA-256 of len bytes at data, as 64 hex digits + NUL. */
void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX]);

#endif
