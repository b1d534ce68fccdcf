/*
 * test_buf.c — the growable text buffer (server/buf.c): appends of bytes,
 * strings and formatted text across many growths, and buf_json_str compared
 * byte for byte with Jansson's compact output for tricky strings (quotes,
 * backslashes, every control character, DEL, multi-byte UTF-8), then parsed
 * back by Jansson to the original bytes; buf_json_real compared byte for byte
 * with Jansson's real at precision 9 over special and random values, and each
 * float32 read back exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"

/* Jansson's compact text for the string s (the caller frees it). */
static char *jansson_text(const char *s)
{
    json_t *v = json_string(s);
    assert_non_null(v);
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(v);
    assert_non_null(text);
    return text;
}

/* buf_json_str(s) must equal Jansson's text and parse back to s. */
static void check_like_jansson(const char *s)
{
    buf b = {0};
    buf_json_str(&b, s);
    assert_false(b.failed);
    char *want = jansson_text(s);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    json_error_t err;
    json_t *back = json_loads(b.data, JSON_DECODE_ANY, &err);
    assert_non_null(back);
    assert_string_equal(json_string_value(back), s);
    json_decref(back);
    free(want);
    buf_free(&b);
}

static void test_json_tricky_strings(void **state)
{
    (void)state;
    const char *cases[] = {
        "",
        "plain",
        "say \"hi\"",
        "back\\slash\\",
        "\\\"",
        "tab\there, newline\nthere, cr\r, bs\b, ff\f",
        "\x01\x02\x1f start and end \x1e",
        "\x7f del",
        "slash / stays",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8",
        "\"\\\"\\\\\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_like_jansson(cases[i]);
}

static void test_json_every_control_char(void **state)
{
    (void)state;
    char s[3] = {'a', 0, 0};
    for (int c = 1; c < 0x20; c++) {
        s[1] = (char)c;
        check_like_jansson(s);
    }
}

static void test_json_null(void **state)
{
    (void)state;
    buf b = {0};
    buf_json_str(&b, NULL);
    assert_string_equal(b.data, "null");
    buf_free(&b);
}

static void test_append_and_grow(void **state)
{
    (void)state;
    buf b = {0};
    /* Enough to cross the first allocation several times. */
    for (int i = 0; i < 5000; i++) {
        buf_printf(&b, "%d,", i);
        buf_str(&b, "x");
        BUF_LIT(&b, "y;");
    }
    assert_false(b.failed);
    assert_int_equal(b.len, strlen(b.data));
    assert_true(b.cap > b.len);
    assert_memory_equal(b.data, "0,xy;1,xy;2,xy;", 15);
    char tail[32];
    snprintf(tail, sizeof tail, "%d,xy;", 4999);
    assert_string_equal(b.data + b.len - strlen(tail), tail);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    buf_free(NULL);
}

static void test_printf_long(void **state)
{
    (void)state;
    /* Longer than the stack buffer buf_printf tries first. */
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    buf b = {0};
    BUF_LIT(&b, "<");
    buf_printf(&b, "%s|%d", big, 42);
    assert_false(b.failed);
    assert_int_equal(b.len, 1 + strlen(big) + 3);
    assert_int_equal(b.data[0], '<');
    assert_memory_equal(b.data + 1, big, strlen(big));
    assert_string_equal(b.data + 1 + strlen(big), "|42");
    buf_free(&b);
}

static void test_bytes_with_nul(void **state)
{
    (void)state;
    buf b = {0};
    buf_add(&b, "a\0b", 3);
    buf_add(&b, "", 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4); /* and the terminating NUL */
    buf_free(&b);
}

/* buf_json_real(v) must equal Jansson's text for json_real(v) at precision 9
 * and, for a float32 v, read back as v exactly. */
static void check_real_like_jansson(double v)
{
    buf b = {0};
    buf_json_real(&b, v);
    assert_false(b.failed);
    json_t *j = json_real(v);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(j);
    assert_non_null(want);
    if (strcmp(b.data, want) != 0) fail_msg("%.17g: buf %s, jansson %s", v, b.data, want);
    free(want);
    if ((double)(float)v == v) assert_true((float)strtod(b.data, NULL) == (float)v);
    buf_free(&b);
}

static void test_json_real(void **state)
{
    (void)state;
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 100.0, 1e5, 1e9, 123456789.0,
                                     1234567890.0, 1e10, 1e-5, 1e-7, 1e100, -1e-100, 1e300,
                                     FLT_MAX, -FLT_MAX, FLT_MIN, 1.4e-45, 0.1, 1.0 / 3.0,
                                     0.12593659700000001, 3e38, 65504.0};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) check_real_like_jansson(special[i]);
    /* Random float32 bit patterns (NaN and Inf skipped) and random doubles. */
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t bits = (uint32_t)(s >> 32);
        float f;
        memcpy(&f, &bits, sizeof f);
        if (isfinite(f)) check_real_like_jansson(f);
        double d;
        memcpy(&d, &s, sizeof d);
        if (isfinite(d)) check_real_like_jansson(d);
    }
    buf b = {0};
    buf_json_real(&b, NAN);
    buf_json_real(&b, -INFINITY);
    assert_string_equal(b.data, "nullnull");
    buf_free(&b);
    const float v[] = {1.0f, -0.25f, NAN, 3e-6f};
    buf_json_floats(&b, v, 4);
    buf_json_floats(&b, v, 0);
    assert_string_equal(b.data, "[1.0,-0.25,null,3.00000011e-6][]");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_tricky_strings),
        cmocka_unit_test(test_json_every_control_char),
        cmocka_unit_test(test_json_null),
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_printf_long),
        cmocka_unit_test(test_bytes_with_nul),
        cmocka_unit_test(test_json_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
