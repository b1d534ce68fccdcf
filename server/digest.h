/*
 * digest.h — SHA-256 as lowercase hex, the one form fitd shows and stores
 * (dataset and weights checksums, idempotency body hashes), and the ETag of a
 * reply body.
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

/* A strong ETag for a reply body: "\"<16 hex digits>\"" + NUL. A 64-bit
 * multiply-xorshift hash, 8 bytes a step: it only has to tell two versions of one
 * resource apart (a collision chance of 2^-64), not resist anyone, and SHA-256 was
 * a visible share of every poll of a job. */
#define DIGEST_ETAG 19
void digest_etag(const void *data, size_t len, char out[DIGEST_ETAG]);

#endif
