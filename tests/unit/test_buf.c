/*
 * test_buf.c — the growable text buffer (server/buf.c): appends of bytes,
 * strings and formatted text across many growths, and buf_json_str compared
 * byte for byte with Jansson's compact output for tricky strings (quotes,
 * backslashes, every control character, DEL, multi-byte UTF-8), then parsed
 * back by Jansson to the original bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_tricky_strings),
        cmocka_unit_test(test_json_every_control_char),
        cmocka_unit_test(test_json_null),
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_printf_long),
        cmocka_unit_test(test_bytes_with_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
