/* test_safetensors.c — nn_st_encode / nn_st_decode and the header parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn_int.h"
#include "support.h"

/* A safetensors buffer: 8-byte length (`declared`, or the header's own length
 * when 0), the header text, then data_len bytes of float 1.0 patterns. */
static unsigned char *make_st(const char *header, size_t data_len, uint64_t declared, size_t *len)
{
    size_t hl = strlen(header);
    uint64_t n = declared ? declared : hl;
    unsigned char *b = malloc(8 + hl + data_len + 1);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (unsigned char)i;
    *len = 8 + hl + data_len;
    return b;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void test_round_trip(void **state)
{
    (void)state;
    const float kernel[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.125f, 1e-30f};
    const float bias[3] = {0.5f, -0.5f, 7.0f};
    const float odd[1] = {42.0f};
    const char *weird = "we\"ird\\name\n\xc3\xa9\x01";
    nn_st_tensor in[3] = {
        {"dense/kernel", 2, {2, 3}, kernel},
        {"dense/bias", 1, {3}, bias},
        {weird, 1, {1}, odd},
    };
    const nn_kv meta[2] = {{"format", "pt"}, {"fitd", "0.1.0 \"quoted\""}};
    void *buf = NULL;
    size_t len = 0;
    nn_error err = {0};
    assert_int_equal(nn_st_encode(in, 3, meta, 2, &buf, &len, &err), NN_OK);

    const unsigned char *b = buf;
    uint64_t hl = le64(b);
    assert_int_equal(hl % 8, 0);
    assert_int_equal(len, 8 + hl + (6 + 3 + 1) * 4);
    assert_int_equal(b[8], '{');
    char *header = malloc(hl + 1);
    assert_non_null(header);
    memcpy(header, b + 8, hl);
    header[hl] = 0;
    assert_non_null(strstr(header, "\"__metadata__\":{\"format\":\"pt\",\"fitd\":\"0.1.0 \\\"quoted\\\"\"}"));
    assert_non_null(strstr(header, "\"dense/kernel\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"));
    assert_non_null(strstr(header, "\"dense/bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}"));
    assert_non_null(strstr(header, "\"we\\\"ird\\\\name\\u000a\xc3\xa9\\u0001\""));
    free(header);
    /* data is contiguous in the given order */
    assert_memory_equal(b + 8 + hl, kernel, sizeof kernel);
    assert_memory_equal(b + 8 + hl + 24, bias, sizeof bias);

    nn_st_tensor *out = NULL;
    int n = 0;
    assert_int_equal(nn_st_decode(buf, len, NN_ST_EXACT, &out, &n, &err), NN_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(out[i].name, in[i].name);
        assert_int_equal(out[i].ndim, in[i].ndim);
        for (int d = 0; d < in[i].ndim; d++) assert_int_equal(out[i].shape[d], in[i].shape[d]);
    }
    float k2[6], b2[3], o2[1];
    memcpy(k2, out[0].data, sizeof k2); /* data may be unaligned: copy out */
    memcpy(b2, out[1].data, sizeof b2);
    memcpy(o2, out[2].data, sizeof o2);
    assert_memory_equal(k2, kernel, sizeof kernel);
    assert_memory_equal(b2, bias, sizeof bias);
    assert_true(o2[0] == 42.0f);
    assert_ptr_equal(out[0].data, b + 8 + hl);
    nn_st_free_list(out, n);
    free(buf);
    assert_int_equal(err.code, NN_OK);
}

/* No tensors, metadata only; and a zero-size tensor. */
static void test_edge_shapes(void **state)
{
    (void)state;
    const nn_kv meta[1] = {{"k", "v"}};
    void *buf = NULL;
    size_t len = 0;
    nn_st_tensor *out = NULL;
    int n = -1;
    nn_error err = {0};
    assert_int_equal(nn_st_encode(NULL, 0, meta, 1, &buf, &len, &err), NN_OK);
    assert_int_equal(nn_st_decode(buf, len, NN_ST_EXACT, &out, &n, &err), NN_OK);
    assert_int_equal(n, 0);
    nn_st_free_list(out, n);
    free(buf);

    const float one = 1.0f;
    nn_st_tensor in[3] = {{"empty", 2, {0, 3}, NULL}, {"scalar", 0, {0}, &one}, {"e2", 1, {0}, NULL}};
    assert_int_equal(nn_st_encode(in, 3, NULL, 0, &buf, &len, &err), NN_OK);
    assert_int_equal(nn_st_decode(buf, len, NN_ST_EXACT, &out, &n, &err), NN_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].shape[0], 0);
    assert_int_equal(out[1].ndim, 0);
    float v;
    memcpy(&v, out[1].data, 4);
    assert_true(v == 1.0f);
    nn_st_free_list(out, n);
    free(buf);
    nn_st_free_list(NULL, 0);
}

/* Hand-written headers: escapes, whitespace, any key order, gaps between tensors. */
static void test_decode_variants(void **state)
{
    (void)state;
    const char *h = " \n{ \"__metadata__\" : { } ,\r\n"
                    "\t\"a\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\" : {\"data_offsets\":[4,8],"
                    "\"shape\":[ ],\"dtype\":\"F32\"},"
                    "\"b\":{\"shape\":[1,1,1,1],\"dtype\":\"F32\",\"data_offsets\":[ 0 , 4 ]} }   ";
    size_t len;
    unsigned char *b = make_st(h, 8, 0, &len);
    nn_st_tensor *out = NULL;
    int n = 0;
    nn_error err = {0};
    nn_status rc = nn_st_decode(b, len, NN_ST_EXACT, &out, &n, &err);
    if (rc != NN_OK) print_error("%s\n", err.message);
    assert_int_equal(rc, NN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].name, "a\xc3\xa9\xf0\x9f\x98\x80\"\\/\b\f\n\r\t");
    assert_int_equal(out[0].ndim, 0);
    assert_ptr_equal(out[0].data, b + 8 + strlen(h) + 4);
    assert_string_equal(out[1].name, "b");
    assert_int_equal(out[1].ndim, 4);
    nn_st_free_list(out, n);
    free(b);
}

/* Without NN_ST_EXACT (fitd reading a file it stored before the tiling rule was
 * enforced at upload) a gap or trailing bytes are skipped; overlap never passes. */
static void test_lenient_decode(void **state)
{
    (void)state;
    const char *gap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    const char *overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    size_t len;
    nn_st_tensor *out = NULL;
    int n = 0;
    nn_error err = {0};
    unsigned char *b = make_st(gap, 16, 0, &len); /* a gap and 4 trailing bytes */
    assert_int_equal(nn_st_decode(b, len, 0, &out, &n, &err), NN_OK);
    assert_int_equal(n, 2);
    nn_st_free_list(out, n);
    assert_int_equal(nn_st_decode(b, len, NN_ST_EXACT, &out, &n, &err), NN_ERR_PARSE);
    free(b);
    b = make_st(overlap, 12, 0, &len);
    nn_error_clear(&err);
    assert_int_equal(nn_st_decode(b, len, 0, &out, &n, &err), NN_ERR_PARSE);
    if (!strstr(err.message, "overlap")) fail_msg("%s", err.message);
    free(b);
}

static void test_encode_errors(void **state)
{
    (void)state;
    const float x[2] = {1, 2};
    void *buf = NULL;
    size_t len = 0;
    nn_error err = {0};
    nn_st_tensor dup[2] = {{"w", 1, {2}, x}, {"w", 1, {2}, x}};
    assert_int_equal(nn_st_encode(dup, 2, NULL, 0, &buf, &len, &err), NN_ERR_INVALID);
    assert_non_null(strstr(err.message, "duplicate tensor name 'w'"));
    assert_null(buf);
    nn_st_tensor reserved[1] = {{"__metadata__", 1, {2}, x}};
    nn_error_clear(&err);
    assert_int_equal(nn_st_encode(reserved, 1, NULL, 0, &buf, &len, &err), NN_ERR_INVALID);
    nn_st_tensor five[1] = {{"w", 5, {1, 1, 1, 1}, x}};
    assert_int_equal(nn_st_encode(five, 1, NULL, 0, &buf, &len, &err), NN_ERR_INVALID);
    nn_st_tensor neg[1] = {{"w", 1, {-2}, x}};
    assert_int_equal(nn_st_encode(neg, 1, NULL, 0, &buf, &len, &err), NN_ERR_INVALID);
    nn_st_tensor nodata[1] = {{"w", 1, {2}, NULL}};
    assert_int_equal(nn_st_encode(nodata, 1, NULL, 0, &buf, &len, &err), NN_ERR_INVALID);
    nn_kv badmeta[1] = {{"k", NULL}};
    assert_int_equal(nn_st_encode(NULL, 0, badmeta, 1, &buf, &len, &err), NN_ERR_INVALID);
    assert_null(buf);
}

/* ---------------------------------------------------------------- malformed headers */

#define W "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

typedef struct st_case {
    const char *name;
    const char *header;
    size_t data_len;
    uint64_t declared; /* header length written in the prefix; 0 = the true one */
    nn_status code;
    const char *message;
} st_case;

static const st_case bad_cases[] = {
    {"header longer than file", "{\"w\":" W "}", 8, 200, NN_ERR_PARSE, "header length 200 exceeds the"},
    {"header over 100 MiB", "{\"w\":" W "}", 8, (uint64_t)200 << 20, NN_ERR_LIMIT, "exceeds 100 MiB"},
    {"empty header", "", 8, 0, NN_ERR_PARSE, "expected '{'"},
    {"not an object", "[1]", 8, 0, NN_ERR_PARSE, "byte 0: expected '{'"},
    {"unclosed object", "{\"w\":" W, 8, 0, NN_ERR_PARSE, "expected '}'"},
    {"trailing garbage", "{\"w\":" W "} x", 8, 0, NN_ERR_PARSE, "unexpected characters after the header"},
    {"two objects", "{\"w\":" W "}{}", 8, 0, NN_ERR_PARSE, "unexpected characters after the header"},
    {"trailing comma", "{\"w\":" W ",}", 8, 0, NN_ERR_PARSE, "expected a string"},
    {"missing colon", "{\"w\"" W "}", 8, 0, NN_ERR_PARSE, "expected ':'"},
    {"unquoted key", "{w:" W "}", 8, 0, NN_ERR_PARSE, "expected a string"},
    {"unterminated string", "{\"w", 8, 0, NN_ERR_PARSE, "unterminated string"},
    {"bad escape", "{\"w\\q\":" W "}", 8, 0, NN_ERR_PARSE, "bad escape '\\q'"},
    {"bad \\u", "{\"\\u12G4\":" W "}", 8, 0, NN_ERR_PARSE, "bad \\u escape"},
    {"short \\u", "{\"\\u12", 8, 0, NN_ERR_PARSE, "bad \\u escape"},
    {"lone high surrogate", "{\"\\ud800x\":" W "}", 8, 0, NN_ERR_PARSE, "lone high surrogate"},
    {"lone low surrogate", "{\"\\udc00\":" W "}", 8, 0, NN_ERR_PARSE, "lone low surrogate"},
    {"nul escape", "{\"a\\u0000\":" W "}", 8, 0, NN_ERR_PARSE, "\\u0000 is not allowed"},
    {"raw control char", "{\"a\tb\":" W "}", 8, 0, NN_ERR_PARSE, "control character in a string"},
    {"float in shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE,
     "found a fraction or exponent"},
    {"exponent in offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}", 8, 0,
     NN_ERR_PARSE, "found a fraction or exponent"},
    {"negative offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,8]}}", 8, 0, NN_ERR_PARSE,
     "negative number"},
    {"leading zero", "{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE,
     "leading zero"},
    {"huge integer", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999999]}}", 8,
     0, NN_ERR_PARSE, "integer too large"},
    {"huge dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,8]}}", 8,
     0, NN_ERR_PARSE, "dimension too large"},
    {"overflowing shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
     8, 0, NN_ERR_PARSE, "tensor 'w': its shape is too large"},
    {"boolean shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":true,\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE,
     "expected '['"},
    {"null dtype", "{\"w\":{\"dtype\":null,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE,
     "expected a string"},
    {"dtype F16", "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE,
     "tensor 'w' has dtype 'F16'; only F32 is supported"},
    {"dtype I64", "{\"w\":{\"shape\":[1],\"dtype\":\"I64\",\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE,
     "tensor 'w' has dtype 'I64'"},
    {"missing dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE, "tensor 'w' lacks dtype"},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, 0, NN_ERR_PARSE, "lacks shape"},
    {"missing offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, NN_ERR_PARSE, "lacks data_offsets"},
    {"empty tensor object", "{\"w\":{}}", 8, 0, NN_ERR_PARSE, "tensor 'w' is empty"},
    {"unknown key", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"foo\":1,\"data_offsets\":[0,8]}}", 8, 0,
     NN_ERR_PARSE, "unexpected or repeated key 'foo' in tensor 'w'"},
    {"repeated key", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
     NN_ERR_PARSE, "unexpected or repeated key 'dtype'"},
    {"tensor not an object", "{\"w\":[1]}", 8, 0, NN_ERR_PARSE, "expected '{'"},
    {"duplicate tensor", "{\"w\":" W ",\"w\":" W "}", 8, 0, NN_ERR_PARSE, "duplicate tensor name 'w'"},
    {"duplicate metadata", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, NN_ERR_PARSE,
     "duplicate __metadata__"},
    {"metadata number", "{\"__metadata__\":{\"a\":1}}", 0, 0, NN_ERR_PARSE, "__metadata__ values must be strings"},
    {"metadata nested", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0, 0, NN_ERR_PARSE,
     "__metadata__ values must be strings"},
    {"metadata array", "{\"__metadata__\":[]}", 0, 0, NN_ERR_PARSE, "expected '{'"},
    {"offsets out of range", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0,
     NN_ERR_PARSE, "tensor 'w': data_offsets [0, 16] outside the 8 data bytes"},
    {"begin after end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, 0, NN_ERR_PARSE,
     "data_offsets [8, 0] outside"},
    {"overlapping", "{\"a\":" W ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0,
     NN_ERR_PARSE, "tensors 'a' and 'b' overlap"},
    {"same range", "{\"b\":" W ",\"a\":" W "}", 8, 0, NN_ERR_PARSE, "overlap"},
    {"a gap between tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, 0, NN_ERR_PARSE,
     "data bytes [4, 8) belong to no tensor"},
    {"data after the last tensor", "{\"w\":" W "}", 12, 0, NN_ERR_PARSE, "data bytes [8, 12) belong to no tensor"},
    {"data and no tensor", "{}", 4, 0, NN_ERR_PARSE, "data bytes [0, 4) belong to no tensor"},
    {"shape/offset mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0,
     NN_ERR_PARSE, "tensor 'w': its shape needs 12 bytes but data_offsets span 8"},
    {"five dimensions", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, 0,
     NN_ERR_PARSE, "shape has more than 4 elements"},
    {"three offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, 0, NN_ERR_PARSE,
     "data_offsets has more than 2 elements"},
    {"one offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8, 0, NN_ERR_PARSE,
     "data_offsets needs 2 integers"},
    {"nested arrays", "{\"w\":{\"dtype\":\"F32\",\"shape\":[[[[[[[[2]]]]]]]],\"data_offsets\":[0,8]}}", 8, 0,
     NN_ERR_PARSE, "expected an integer"},
    {"nested objects", "{\"w\":{\"x\":{\"x\":{\"x\":{\"x\":{\"x\":{}}}}}}}", 8, 0, NN_ERR_PARSE,
     "unexpected or repeated key 'x'"},
    {"nested top", "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}", 8, 0, NN_ERR_PARSE,
     "expected a string"},
};

static void test_bad_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const st_case *c = &bad_cases[i];
        size_t len;
        unsigned char *b = make_st(c->header, c->data_len, c->declared, &len);
        nn_st_tensor *out = (nn_st_tensor *)b; /* must be reset to NULL */
        int n = -1;
        nn_error err = {0};
        nn_status rc = nn_st_decode(b, len, NN_ST_EXACT, &out, &n, &err);
        if (rc != c->code || !strstr(err.message, c->message)) {
            print_error("case '%s': got %s '%s', want %s '%s'\n", c->name, nn_status_name(rc), err.message,
                        nn_status_name(c->code), c->message);
            fail();
        }
        assert_null(out);
        assert_int_equal(n, 0);
        free(b);
    }
}

/* Buffers too short for the length prefix, and a 100,000-deep nesting that must
 * not recurse. */
static void test_short_and_deep(void **state)
{
    (void)state;
    nn_st_tensor *out = NULL;
    int n = 0;
    nn_error err = {0};
    unsigned char seven[7] = {0};
    assert_int_equal(nn_st_decode(seven, 7, NN_ST_EXACT, &out, &n, &err), NN_ERR_PARSE);
    assert_non_null(strstr(err.message, "too short"));
    nn_error_clear(&err);
    assert_int_equal(nn_st_decode(NULL, 0, NN_ST_EXACT, &out, &n, &err), NN_ERR_PARSE);

    size_t depth = 100000;
    char *h = malloc(6 + 5 * depth + depth + 2);
    assert_non_null(h);
    size_t k = 0;
    k += (size_t)sprintf(h + k, "{\"w\":");
    for (size_t i = 0; i < depth; i++) h[k++] = '[';
    for (size_t i = 0; i < depth; i++) h[k++] = ']';
    h[k++] = '}';
    h[k] = 0;
    size_t len;
    unsigned char *b = make_st(h, 0, 0, &len);
    nn_error_clear(&err);
    assert_int_equal(nn_st_decode(b, len, NN_ST_EXACT, &out, &n, &err), NN_ERR_PARSE);
    assert_non_null(strstr(err.message, "expected '{'"));
    free(b);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_edge_shapes),
        cmocka_unit_test(test_decode_variants),
        cmocka_unit_test(test_lenient_decode),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_short_and_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
