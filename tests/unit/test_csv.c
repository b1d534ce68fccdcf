/* test_csv.c — the CSV parser and the nn_dataset helpers (dataset.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "support.h"

/* Parse `len` bytes fed in pieces of `chunk` bytes (0: all at once). */
static nn_status parse_chunks(const char *s, size_t len, size_t chunk, const nn_csv_options *opt,
                              nn_dataset *out, nn_error *err)
{
    nn_status rc = NN_OK;
    nn_csv_parser *p = nn_csv_parser_new(opt, err);
    if (!p) return NN_ERR_NOMEM;
    if (chunk == 0) chunk = len ? len : 1;
    for (size_t i = 0; i < len && rc == NN_OK; i += chunk)
        rc = nn_csv_parser_feed(p, s + i, len - i < chunk ? len - i : chunk, err);
    if (rc == NN_OK) rc = nn_csv_parser_finish(p, out, err);
    nn_csv_parser_free(p);
    return rc;
}

/* Parse with pseudo-random piece sizes 1..max_piece. */
static nn_status parse_random(const char *s, size_t len, size_t max_piece, uint64_t seed,
                              const nn_csv_options *opt, nn_dataset *out, nn_error *err)
{
    nn_status rc = NN_OK;
    nn_csv_parser *p = nn_csv_parser_new(opt, err);
    if (!p) return NN_ERR_NOMEM;
    for (size_t i = 0; i < len && rc == NN_OK;) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t k = 1 + (size_t)((seed >> 33) % max_piece);
        if (k > len - i) k = len - i;
        rc = nn_csv_parser_feed(p, s + i, k, err);
        i += k;
    }
    if (rc == NN_OK) rc = nn_csv_parser_finish(p, out, err);
    nn_csv_parser_free(p);
    return rc;
}

/* An independent, lenient reference reader for the well-formed fixtures: split
 * lines on ',' and strtod every field; the label is column `label`. */
static void reference_parse(const char *text, int label, size_t *n, int *cols, float **x, float **y)
{
    const char *s = strchr(text, '\n') + 1; /* skip the header */
    int c = 1;
    for (const char *h = text; *h != '\n'; h++) c += *h == ',';
    size_t rows = 0;
    for (const char *q = s; *q; q++) rows += *q == '\n';
    if (s[strlen(s) - 1] != '\n') rows++;
    *x = calloc(rows * (size_t)(c - 1), sizeof **x);
    *y = calloc(rows, sizeof **y);
    assert_non_null(*x);
    assert_non_null(*y);
    size_t r = 0;
    while (*s && r < rows) {
        for (int j = 0, k = 0; j < c; j++) {
            char *end;
            float v = (float)strtod(s, &end);
            s = end;
            if (j == label) (*y)[r] = v;
            else (*x)[r * (size_t)(c - 1) + (size_t)k++] = v;
            if (*s == ',') s++;
        }
        while (*s == '\r' || *s == '\n') s++;
        r++;
    }
    *n = r;
    *cols = c;
}

static void check_fixture(const char *name, size_t n, int x_width, int n_classes, int y_integer)
{
    size_t len = 0, ref_n;
    int cols;
    float *rx, *ry;
    char *text = read_file(fixture_path(name), &len);
    assert_non_null(text);
    nn_csv_options opt = nn_csv_default();
    nn_dataset whole = {0}, bytes = {0}, random = {0}, file = {0};
    nn_error err = {0};

    assert_int_equal(parse_chunks(text, len, 0, &opt, &whole, &err), NN_OK);
    assert_int_equal(whole.n, n);
    assert_int_equal(whole.x_width, x_width);
    assert_int_equal(whole.y_width, 1);
    assert_int_equal(whole.y_integer, y_integer);
    if (n_classes >= 0) assert_int_equal(whole.n_classes, n_classes);

    reference_parse(text, x_width, &ref_n, &cols, &rx, &ry);
    assert_int_equal(ref_n, n);
    assert_int_equal(cols, x_width + 1);
    assert_memory_equal(whole.x, rx, n * (size_t)x_width * sizeof(float));
    assert_memory_equal(whole.y, ry, n * sizeof(float));

    /* every split gives the same bytes */
    assert_int_equal(parse_chunks(text, len, 1, &opt, &bytes, &err), NN_OK);
    assert_int_equal(bytes.n, n);
    assert_memory_equal(bytes.x, whole.x, n * (size_t)x_width * sizeof(float));
    assert_memory_equal(bytes.y, whole.y, n * sizeof(float));
    assert_int_equal(parse_random(text, len, 37, 12345, &opt, &random, &err), NN_OK);
    assert_memory_equal(random.x, whole.x, n * (size_t)x_width * sizeof(float));
    assert_memory_equal(random.y, whole.y, n * sizeof(float));
    assert_int_equal(nn_csv_load_file(fixture_path(name), &opt, &file, &err), NN_OK);
    assert_int_equal(file.n, n);
    assert_memory_equal(file.x, whole.x, n * (size_t)x_width * sizeof(float));
    assert_memory_equal(file.y, whole.y, n * sizeof(float));
    assert_int_equal(err.code, NN_OK);

    nn_dataset_free(&whole);
    nn_dataset_free(&bytes);
    nn_dataset_free(&random);
    nn_dataset_free(&file);
    free(rx);
    free(ry);
    free(text);
}

static void test_digits(void **state)
{
    (void)state;
    check_fixture("digits.csv", 1797, 64, 10, 1);
}

static void test_breast_cancer(void **state)
{
    (void)state;
    check_fixture("breast_cancer.csv", 569, 30, 2, 1);
}

static void test_diabetes(void **state)
{
    (void)state;
    /* integer-valued regression targets: n_classes is max + 1, checked below */
    check_fixture("diabetes.csv", 442, 10, -1, 1);
    nn_dataset ds = {0};
    nn_error err = {0};
    assert_int_equal(nn_csv_load_file(fixture_path("diabetes.csv"), NULL, &ds, &err), NN_OK);
    float max = 0;
    for (size_t i = 0; i < ds.n; i++) max = ds.y[i] > max ? ds.y[i] : max;
    assert_int_equal(ds.n_classes, (int)max + 1);
    nn_dataset_free(&ds);
}

/* The label by name, positive index and negative index select the same column. */
static void test_label_choice(void **state)
{
    (void)state;
    nn_error err = {0};
    nn_dataset by_name = {0}, by_index = {0}, by_neg = {0}, last = {0};
    nn_csv_options opt = nn_csv_default();
    opt.label_name = "bmi";
    assert_int_equal(nn_csv_load_file(fixture_path("diabetes.csv"), &opt, &by_name, &err), NN_OK);
    opt = nn_csv_default();
    opt.label_index = 2;
    assert_int_equal(nn_csv_load_file(fixture_path("diabetes.csv"), &opt, &by_index, &err), NN_OK);
    opt.label_index = -9;
    assert_int_equal(nn_csv_load_file(fixture_path("diabetes.csv"), &opt, &by_neg, &err), NN_OK);
    opt.label_index = -1;
    assert_int_equal(nn_csv_load_file(fixture_path("diabetes.csv"), &opt, &last, &err), NN_OK);

    /* first row: 59.0,2.0,32.1,101.0,157.0,93.2,38.0,4.0,4.8598,87.0,151.0 */
    const float row0[10] = {59.0f, 2.0f, 101.0f, 157.0f, 93.2f, 38.0f, 4.0f, 4.8598f, 87.0f, 151.0f};
    assert_int_equal(by_name.x_width, 10);
    assert_memory_equal(by_name.x, row0, sizeof row0);
    assert_true(by_name.y[0] == 32.1f);
    assert_false(by_name.y_integer);
    assert_int_equal(by_name.n_classes, 0);
    assert_memory_equal(by_index.x, by_name.x, by_name.n * 10 * sizeof(float));
    assert_memory_equal(by_index.y, by_name.y, by_name.n * sizeof(float));
    assert_memory_equal(by_neg.x, by_name.x, by_name.n * 10 * sizeof(float));
    assert_memory_equal(by_neg.y, by_name.y, by_name.n * sizeof(float));
    /* the default label is the last column */
    assert_true(last.y[0] == 151.0f);
    assert_true(last.x[2] == 32.1f);
    nn_dataset_free(&by_name);
    nn_dataset_free(&by_index);
    nn_dataset_free(&by_neg);
    nn_dataset_free(&last);
}

/* BOM, quoted names with "" and commas, spaces and tabs, CRLF, blank lines, no
 * final newline, exponent and bare-dot numbers. */
static void test_lenient_forms(void **state)
{
    (void)state;
    static const char text[] = "\xEF\xBB\xBF\"x 1\", \"y,\"\"q\"\"\" , z\r\n"
                               " 1 , 2.5e0 ,\t-3 \r\n"
                               "\r\n"
                               "4,.5,6.";
    size_t len = sizeof text - 1;
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        nn_dataset ds = {0};
        nn_error err = {0};
        nn_csv_options opt = nn_csv_default();
        assert_int_equal(parse_chunks(text, len, chunk, &opt, &ds, &err), NN_OK);
        const float ex[] = {1, 2.5f, 4, 0.5f}, ey[] = {-3, 6};
        assert_int_equal(ds.n, 2);
        assert_int_equal(ds.x_width, 2);
        assert_memory_equal(ds.x, ex, sizeof ex);
        assert_memory_equal(ds.y, ey, sizeof ey);
        assert_false(ds.y_integer); /* -3 */
        nn_dataset_free(&ds);

        opt.label_name = "y,\"q\"";
        assert_int_equal(parse_chunks(text, len, chunk, &opt, &ds, &err), NN_OK);
        const float ex2[] = {1, -3, 4, 6}, ey2[] = {2.5f, 0.5f};
        assert_memory_equal(ds.x, ex2, sizeof ex2);
        assert_memory_equal(ds.y, ey2, sizeof ey2);
        nn_dataset_free(&ds);
        opt.label_name = "x 1";
        assert_int_equal(parse_chunks(text, len, chunk, &opt, &ds, &err), NN_OK);
        assert_true(ds.y[0] == 1 && ds.y[1] == 4);
        assert_true(ds.y_integer);
        assert_int_equal(ds.n_classes, 5);
        nn_dataset_free(&ds);
    }
}

typedef struct csv_case {
    const char *name;
    const char *input;
    const char *label;     /* NULL: default; "#k": index k; else a column name */
    size_t max_bytes, max_samples, max_features;
    nn_status code;
    const char *message;   /* a substring of the error message */
} csv_case;

static const csv_case bad_cases[] = {
    {"short row", "a,b,c\n1,2,3\n4,5\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 3: expected 3 columns, found 2"},
    {"long row", "a,b,c\n1,2,3,4\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2: expected 3 columns, found 4"},
    {"long last row", "a,b,c\n1,2,3\n1,2,3,4,5", NULL, 0, 0, 0, NN_ERR_PARSE, "line 3: expected 3 columns, found 5"},
    {"trailing comma", "a,b,c\r\n1,2,3,\r\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2: expected 3 columns, found 4"},
    {"non-numeric", "a,b,c\n1,x,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 2 (b): not a number 'x'"},
    {"quoted number", "a,b\n\"1\",2\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 1 (a): not a number"},
    {"nan", "a,b,c\n1,2,3\n1,2,nan\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 3, column 3 (c): NaN and Inf"},
    {"NaN upper", "a,b\nNAN,2\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 1 (a): NaN and Inf"},
    {"inf", "a,b\n1,inf\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 2 (b): NaN and Inf"},
    {"-Infinity", "a,b\n-Infinity,1\n", NULL, 0, 0, 0, NN_ERR_PARSE, "column 1 (a): NaN and Inf"},
    {"float overflow", "a,b\n1e39,1\n", NULL, 0, 0, 0, NN_ERR_PARSE, "column 1 (a): number outside the float32 range"},
    {"double overflow", "a,b\n1,1e999\n", NULL, 0, 0, 0, NN_ERR_PARSE, "column 2 (b): number outside"},
    {"empty field", "a,b,c\n1,,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 2 (b): empty value"},
    {"blank field", "a,b,c\n1,  ,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 2 (b): empty value"},
    {"empty last field", "a,b,c\n1,2,\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 3 (c): empty value"},
    {"space inside", "a,b\n1 2,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 1 (a): unexpected '2' after '1'"},
    {"double sign", "a,b\n--1,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "not a number '--1'"},
    {"bare exponent", "a,b\n1e,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "not a number '1e'"},
    {"lone dot", "a,b\n.,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "not a number '.'"},
    {"hex", "a,b\n0x10,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "not a number '0x10'"},
    {"two dots", "a,b\n1.2.3,3\n", NULL, 0, 0, 0, NN_ERR_PARSE, "not a number '1.2.3'"},
    {"trailing letter", "a,b\n1,3f\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 2, column 2 (b): not a number '3f'"},
    {"stray CR", "a,b\r1,2\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 1: carriage return without line feed"},
    {"empty file", "", NULL, 0, 0, 0, NN_ERR_PARSE, "empty CSV"},
    {"blank lines only", "\n\r\n  \n", NULL, 0, 0, 0, NN_ERR_PARSE, "empty CSV"},
    {"header only", "a,b,c\n", NULL, 0, 0, 0, NN_ERR_PARSE, "header but no data rows"},
    {"header only no newline", "a,b,c", NULL, 0, 0, 0, NN_ERR_PARSE, "header but no data rows"},
    {"one column", "a\n1\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 1: the header has 1 column"},
    {"unterminated quote", "\"a,b\n1,2\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 1, column 1: unterminated quoted name"},
    {"text after quote", "\"a\"x,b\n1,2\n", NULL, 0, 0, 0, NN_ERR_PARSE, "line 1, column 1: unexpected 'x' after 'a'"},
    {"label name missing", "a,b\n1,2\n", "z", 0, 0, 0, NN_ERR_INVALID, "label column 'z' is not in the header"},
    {"label name twice", "a,a,b\n1,2,3\n", "a", 0, 0, 0, NN_ERR_INVALID, "'a' appears more than once"},
    {"label index high", "a,b\n1,2\n", "#2", 0, 0, 0, NN_ERR_INVALID, "label index 2 out of range for 2 columns"},
    {"label index low", "a,b\n1,2\n", "#-3", 0, 0, 0, NN_ERR_INVALID, "label index -3 out of range"},
    {"over max_bytes", "a,b,c\n1,2,3\n", NULL, 8, 0, 0, NN_ERR_LIMIT, "exceeds 8 bytes"},
    {"output over max_bytes", "a,b\n1,2\n3,4\n5,6\n7,8\n", NULL, 30, 0, 0, NN_ERR_LIMIT, "line 5: the dataset exceeds 30 bytes"},
    {"over max_samples", "a,b\n1,2\n3,4\n5,6\n", NULL, 0, 2, 0, NN_ERR_LIMIT, "line 4: more than 2 samples"},
    {"over max_features", "a,b,c,d\n1,2,3,4\n", NULL, 0, 0, 2, NN_ERR_LIMIT, "more than 2 feature columns"},
};

static void run_bad(const csv_case *c, size_t chunk, nn_error *err)
{
    nn_dataset ds = {0};
    nn_csv_options opt = nn_csv_default();
    opt.limits.max_bytes = c->max_bytes;
    opt.limits.max_samples = c->max_samples;
    opt.limits.max_features = c->max_features;
    if (c->label && c->label[0] == '#') opt.label_index = atoi(c->label + 1);
    else opt.label_name = c->label;
    nn_status rc = parse_chunks(c->input, strlen(c->input), chunk, &opt, &ds, err);
    if (rc != c->code || !strstr(err->message, c->message)) {
        print_error("case '%s' (chunk %zu): got %s '%s', want %s '%s'\n", c->name, chunk,
                    nn_status_name(rc), err->message, nn_status_name(c->code), c->message);
        fail();
    }
    assert_int_equal(err->code, c->code);
    assert_null(ds.x);
    assert_null(ds.y);
}

/* Every malformed input fails with its code and message, fed whole or byte by byte. */
static void test_bad_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        nn_error whole = {0}, bytes = {0};
        run_bad(&bad_cases[i], 0, &whole);
        run_bad(&bad_cases[i], 1, &bytes);
        if (bad_cases[i].max_bytes == 0) assert_string_equal(whole.message, bytes.message);
    }
}

/* A NUL byte inside a value is named: the value shown ends at it, and "not a
 * number '2'" for "2\0" was a riddle. */
static void test_nul_in_value(void **state)
{
    (void)state;
    static const char in[] = "a,b,c\n1,2\0,0\n";
    for (size_t chunk = 0; chunk < 2; chunk++) {
        nn_csv_options opt = nn_csv_default();
        nn_dataset ds = {0};
        nn_error err = {0};
        assert_int_equal(parse_chunks(in, sizeof in - 1, chunk, &opt, &ds, &err), NN_ERR_PARSE);
        assert_non_null(strstr(err.message, "line 2, column 2 (b): a NUL byte in the value"));
        assert_null(ds.x);
    }
}

static void test_field_too_long(void **state)
{
    (void)state;
    size_t n = 3000;
    char *s = malloc(n + 16);
    assert_non_null(s);
    memcpy(s, "a,b\n1,", 6);
    memset(s + 6, '7', n);
    memcpy(s + 6 + n, "\n", 2);
    nn_dataset ds = {0};
    nn_error err = {0};
    assert_int_equal(parse_chunks(s, strlen(s), 0, NULL, &ds, &err), NN_ERR_PARSE);
    assert_non_null(strstr(err.message, "line 2, column 2 (b): field longer than"));
    free(s);
}

/* After an error the parser keeps failing with the first error. */
static void test_sticky_error(void **state)
{
    (void)state;
    nn_error err = {0}, again = {0};
    nn_dataset ds = {0};
    nn_csv_parser *p = nn_csv_parser_new(NULL, &err);
    assert_non_null(p);
    assert_int_equal(nn_csv_parser_feed(p, "a,b\n1,x\n", 8, &err), NN_ERR_PARSE);
    assert_int_equal(nn_csv_parser_feed(p, "1,2\n", 4, &again), NN_ERR_PARSE);
    assert_string_equal(again.message, err.message);
    nn_error_clear(&again);
    assert_int_equal(nn_csv_parser_finish(p, &ds, &again), NN_ERR_PARSE);
    assert_string_equal(again.message, err.message);
    assert_null(ds.x);
    nn_csv_parser_free(p);
    nn_csv_parser_free(NULL);
}

static void test_missing_file(void **state)
{
    (void)state;
    nn_dataset ds = {0};
    nn_error err = {0};
    assert_int_equal(nn_csv_load_file(fixture_path("no-such-file.csv"), NULL, &ds, &err), NN_ERR_IO);
    assert_non_null(strstr(err.message, "no-such-file.csv"));
}

/* Geometric growth: many rows arrive in small pieces and all survive. */
static void test_many_rows(void **state)
{
    (void)state;
    size_t rows = 20000, cap = rows * 16 + 16, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    len += (size_t)snprintf(s, cap, "f,label\n");
    for (size_t i = 0; i < rows; i++)
        len += (size_t)snprintf(s + len, cap - len, "%zu,%zu\n", i, i % 7);
    nn_dataset ds = {0};
    nn_error err = {0};
    assert_int_equal(parse_random(s, len, 100, 7, NULL, &ds, &err), NN_OK);
    assert_int_equal(ds.n, rows);
    for (size_t i = 0; i < rows; i++) {
        assert_true(ds.x[i] == (float)i);
        assert_true(ds.y[i] == (float)(i % 7));
    }
    assert_int_equal(ds.n_classes, 7);
    nn_dataset_free(&ds);
    free(s);
}

/* ---------------------------------------------------------------- dataset.c */

static void test_limits_default(void **state)
{
    (void)state;
    nn_limits l = nn_limits_default();
    assert_int_equal(l.max_bytes, (size_t)2 << 30);
    assert_int_equal(l.max_samples, 10000000);
    assert_int_equal(l.max_features, 1000000);
}

static void test_describe(void **state)
{
    (void)state;
    float y[4] = {0, 2, 1, 2};
    nn_dataset ds = {.n = 4, .x_width = 1, .y_width = 1, .y = y};
    nn_dataset_describe(&ds);
    assert_true(ds.y_integer);
    assert_int_equal(ds.n_classes, 3);
    assert_true(ds.y_min == 0 && ds.y_max == 2);
    y[1] = 1.5f;
    nn_dataset_describe(&ds);
    assert_false(ds.y_integer);
    assert_int_equal(ds.n_classes, 0);
    assert_true(ds.y_min == 0 && ds.y_max == 2);
    y[1] = -1.0f;
    nn_dataset_describe(&ds);
    assert_false(ds.y_integer);
    assert_true(ds.y_min == -1 && ds.y_max == 2);
    y[1] = NAN;
    nn_dataset_describe(&ds);
    assert_false(ds.y_integer);
    assert_true(isnan(ds.y_min) && isnan(ds.y_max));
    y[1] = INFINITY;
    nn_dataset_describe(&ds);
    assert_false(ds.y_integer);
    /* Integral but past an int: no class labels (they passed the check against the
     * output width with n_classes 0, and sparse crossentropy skipped them). */
    y[1] = 3e9f;
    nn_dataset_describe(&ds);
    assert_false(ds.y_integer);
    assert_int_equal(ds.n_classes, 0);
    /* one-hot rows: integer, but no class count */
    float oh[4] = {1, 0, 0, 1};
    nn_dataset two = {.n = 2, .x_width = 1, .y_width = 2, .y = oh};
    nn_dataset_describe(&two);
    assert_true(two.y_integer);
    assert_int_equal(two.n_classes, 0);
    nn_dataset empty = {0};
    nn_dataset_describe(&empty);
    assert_false(empty.y_integer);
    nn_dataset_describe(NULL);
}

static void test_view_and_free(void **state)
{
    (void)state;
    nn_dataset ds = {.n = 5, .x_width = 2, .y_width = 1};
    ds.x = malloc(10 * sizeof(float));
    ds.y = malloc(5 * sizeof(float));
    assert_non_null(ds.x);
    assert_non_null(ds.y);
    for (int i = 0; i < 10; i++) ds.x[i] = (float)i;
    for (int i = 0; i < 5; i++) ds.y[i] = (float)(i % 3);
    nn_dataset_describe(&ds);
    nn_dataset v = nn_dataset_view(&ds, 1, 3);
    assert_int_equal(v.n, 3);
    assert_ptr_equal(v.x, ds.x + 2);
    assert_ptr_equal(v.y, ds.y + 1);
    assert_int_equal(v.x_width, 2);
    assert_int_equal(v.n_classes, 3);
    v = nn_dataset_view(&ds, 4, 10); /* clamped */
    assert_int_equal(v.n, 1);
    assert_ptr_equal(v.y, ds.y + 4);
    v = nn_dataset_view(&ds, 9, 1);
    assert_int_equal(v.n, 0);
    nn_dataset_free(&ds);
    assert_null(ds.x);
    assert_null(ds.y);
    assert_int_equal(ds.n, 0);
    nn_dataset_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_breast_cancer),
        cmocka_unit_test(test_diabetes),
        cmocka_unit_test(test_label_choice),
        cmocka_unit_test(test_lenient_forms),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_nul_in_value),
        cmocka_unit_test(test_field_too_long),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_view_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
