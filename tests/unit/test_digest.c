/*
 * test_digest.c — server/digest.c: SHA-256 hex against the FIPS 180-2 example
 * vectors (one-shot and fed in pieces), and the reply ETag: its form, that it is
 * a function of the bytes alone, and that it changes when any single byte of a
 * body changes, for every length around the 8-byte step (the tail path).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "digest.h"

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[DIGEST_SHA256_HEX];
    digest_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    digest_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, 10, (const uint8_t *)two);
    sha256_update(&ctx, strlen(two) - 10, (const uint8_t *)two + 10);
    digest_sha256_finish_hex(&ctx, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static int is_etag(const char *t)
{
    if (strlen(t) != 18 || t[0] != '"' || t[17] != '"') return 0;
    for (int i = 1; i < 17; i++)
        if (!strchr("0123456789abcdef", t[i])) return 0;
    return 1;
}

static void test_etag(void **state)
{
    (void)state;
    unsigned char body[40];
    char a[DIGEST_ETAG], b[DIGEST_ETAG];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (unsigned char)(i * 37 + 11);

    for (size_t len = 0; len <= sizeof body; len++) {
        digest_etag(body, len, a);
        assert_true(is_etag(a));
        digest_etag(body, len, b);
        assert_string_equal(a, b); /* the bytes alone decide */
        /* One more byte (even a zero) is another body. */
        if (len < sizeof body) {
            unsigned char saved = body[len];
            body[len] = 0;
            digest_etag(body, len + 1, b);
            assert_string_not_equal(a, b);
            body[len] = saved;
        }
        /* Any one byte flipped, in the 8-byte words or in the tail. */
        for (size_t i = 0; i < len; i++) {
            body[i] ^= 0x01;
            digest_etag(body, len, b);
            assert_string_not_equal(a, b);
            body[i] ^= 0x01;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
