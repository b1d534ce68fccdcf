/*
 * fuzz.h — the entry points of fitd's fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Each fuzz_<target> takes one input, drives the code under test with it and
 * checks the properties that must hold for any input (no crash is checked by the
 * sanitizers; the entry adds differential checks such as "any split of a stream
 * parses the same" or "a parsed spec renders and re-parses to the same spec").
 * It returns 0 when every property held, or -1 after printing what broke on
 * stderr. The same functions are called by libFuzzer (tests/fuzz/run.sh compiles
 * each fuzz_<target>.h as C with -DFITD_FUZZER, which adds LLVMFuzzerTestOneInput)
 * and by the regression replay in `make test` (tests/unit/test_fuzz_replay.c
 * includes every fuzz_<target>.h), which feeds every file of
 * tests/fuzz/corpus/<target>/ and tests/fuzz/crashes/<target>/. The targets are
 * .h files only because the Makefile links every non-.h prerequisite a test
 * includes; each is included once per program (include guards).
 *
 * The server targets (multipart, router) start one in-process fitd HTTP server
 * lazily (fuzz_server.h): a temp database, the real routes, no worker pool.
 */
#ifndef FITD_FUZZ_H
#define FITD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

int fuzz_spec(const uint8_t *data, size_t size);
int fuzz_csv(const uint8_t *data, size_t size);
int fuzz_idx(const uint8_t *data, size_t size);
int fuzz_safetensors(const uint8_t *data, size_t size);
int fuzz_multipart(const uint8_t *data, size_t size);
int fuzz_router(const uint8_t *data, size_t size);

/* fuzz_server.h: the port of the in-process server (started on first use), or 0
 * when it cannot start. */
unsigned fuzz_server_port(void);
/* Stop it and remove its temp folder (the replay test calls this at the end). */
void fuzz_server_stop(void);
/* Send `req` (a whole HTTP/1.1 request with Connection: close) and read the reply.
 * Returns the status code, or -1 on a transport error or a malformed status line.
 * *body (may be NULL) receives the reply's body, malloc'ed and NUL-terminated. */
int fuzz_http(const void *req, size_t len, char **body);

/* The streaming parsers' feed call, behind one signature. */
typedef nn_status (*fuzz_feed_fn)(void *parser, const uint8_t *data, size_t n, nn_error *err);

/* Feed `len` bytes to `parser` in pieces of 1..max_piece bytes whose sizes come
 * from `seed` and `salt` (seed 0: all at once), up to the first error. Shared by
 * the "any split parses the same" targets. */
static inline nn_status fuzz_feed_split(void *parser, fuzz_feed_fn feed, const uint8_t *s,
                                        size_t len, unsigned seed, unsigned salt,
                                        size_t max_piece, nn_error *err)
{
    size_t off = 0;
    unsigned x = seed * 2654435761u + salt;
    nn_status rc = NN_OK;
    while (off < len && rc == NN_OK) {
        size_t n = len - off;
        if (seed) {
            x = x * 1103515245u + 12345u;
            size_t k = 1 + (x >> 16) % max_piece;
            if (k < n) n = k;
        }
        rc = feed(parser, s + off, n, err);
        off += n;
    }
    return rc;
}

/* Under libFuzzer, each target file defines the entry point. */
#ifdef FITD_FUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#define FUZZ_ENTRY(fn)                                                     \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)           \
    {                                                                      \
        if (fn(data, size) != 0) __builtin_trap(); /* a property failed */ \
        return 0;                                                          \
    }
#else
#define FUZZ_ENTRY(fn)
#endif

#endif
