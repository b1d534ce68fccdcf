/*
 * test_datasets.c — /v1/datasets against a real fitd: CSV (label by name and by
 * index), JSON, multipart IDX (plain, gzipped, and Fashion-MNIST's own files when
 * installed), every class of bad upload (each answered with a problem naming the
 * place), an aborted upload leaving nothing behind, list/get/delete with
 * pagination, and 409 on deleting a dataset a queued or running job uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nettle/sha2.h>

#include "support.h"

static it_server srv;

static int setup(void **state)
{
    static const char *const args[] = {"--workers", "1", "--max-body-json", "256KiB", NULL};
    memset(&srv, 0, sizeof srv);
    return it_start(&srv, args);
}

static int teardown(void **state)
{
    return it_stop(&srv) == 0 ? 0 : -1;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) fail_msg("missing string %s", key);
    return s;
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("missing integer %s", key);
    return json_integer_value(v);
}

/* POST a body; expect 201 and a full resource with a matching Location. */
static json_t *upload_ok(const char *path, const char *content_type, const void *body, size_t len)
{
    char h[256];
    snprintf(h, sizeof h, "%s%s", strncmp(content_type, "Content-Type:", 13) ? "Content-Type: " : "",
             content_type);
    const char *const headers[] = {h, NULL};
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", path, headers, body, len, &r), 0);
    if (r.status != 201) fail_msg("expected 201, got %ld: %s", r.status, r.body);
    assert_string_equal(r.content_type, "application/json");
    json_t *doc = it_json(&r);
    assert_non_null(doc);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/datasets/%s", str(doc, "id"));
    assert_string_equal(r.location, loc);
    assert_memory_equal(str(doc, "id"), "ds_", 3);
    assert_int_equal(strlen(str(doc, "sha256")), 64);
    assert_true(strlen(str(doc, "created_at")) >= 20);
    /* The upload's own digest is over the raw body. */
    char hex[65];
    sha256_hex(body, len, hex);
    json_t *upl = json_object_get(doc, "upload");
    assert_string_equal(str(upl, "sha256"), hex);
    assert_int_equal(num(upl, "bytes"), (json_int_t)len);
    it_resp_free(&r);
    return doc;
}

/* POST a body; expect a problem with `status` whose detail contains `needle` and
 * (when pointer is non-NULL) an errors entry with that pointer. */
static void upload_bad(const char *path, const char *content_type, const void *body, size_t len,
                       long status, const char *needle, const char *pointer)
{
    char h[256];
    snprintf(h, sizeof h, "%s%s", strncmp(content_type, "Content-Type:", 13) ? "Content-Type: " : "",
             content_type);
    const char *const headers[] = {h, NULL};
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", path, headers, body, len, &r), 0);
    json_t *doc = assert_problem(&r, status);
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    if (!detail || (needle && !strstr(detail, needle)))
        fail_msg("detail lacks '%s': %s", needle, r.body);
    if (pointer) {
        json_t *errors = json_object_get(doc, "errors");
        int found = 0;
        for (size_t i = 0; i < json_array_size(errors); i++)
            found |= strcmp(json_string_value(json_object_get(json_array_get(errors, i), "pointer")),
                            pointer) == 0;
        if (!found) fail_msg("no error with pointer '%s': %s", pointer, r.body);
    }
    json_decref(doc);
    it_resp_free(&r);
}

static size_t count_datasets(void)
{
    it_resp r;
    assert_int_equal(it_get(&srv, "/v1/datasets?limit=1000", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *doc = it_json(&r);
    size_t n = json_array_size(json_object_get(doc, "items"));
    json_decref(doc);
    it_resp_free(&r);
    return n;
}

/* ---------------------------------------------------------------- CSV */

static void test_csv_digits(void **state)
{
    size_t len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &len);
    assert_non_null(csv);
    json_t *by_name = upload_ok("/v1/datasets?name=digits&label=label", "text/csv", csv, len);
    json_t *by_index = upload_ok("/v1/datasets?name=digits-idx&label=64", "text/csv", csv, len);
    json_t *by_last = upload_ok("/v1/datasets?name=digits-last&label=-1", "text/csv", csv, len);
    json_t *dflt = upload_ok("/v1/datasets", "text/csv; charset=utf-8", csv, len);
    json_t *all[] = {by_name, by_index, by_last, dflt};
    for (int i = 0; i < 4; i++) {
        json_t *d = all[i];
        assert_int_equal(num(d, "n_samples"), 1797);
        assert_int_equal(json_array_size(json_object_get(d, "input_shape")), 1);
        assert_int_equal(json_integer_value(json_array_get(json_object_get(d, "input_shape"), 0)),
                         64);
        json_t *t = json_object_get(d, "target");
        assert_string_equal(str(t, "kind"), "classes");
        assert_int_equal(num(t, "n_classes"), 10);
        assert_int_equal(num(d, "bytes"), 1797 * 65 * 4);
        assert_string_equal(str(d, "format"), "csv");
        /* The same data gives the same content digest whichever way the label was named. */
        assert_string_equal(str(d, "sha256"), str(by_name, "sha256"));
    }
    assert_string_equal(str(by_name, "name"), "digits");
    assert_string_equal(str(dflt, "name"), "dataset");
    for (int i = 0; i < 4; i++) json_decref(all[i]);

    /* Label column 0 is another dataset: 64 features, another digest. */
    json_t *first = upload_ok("/v1/datasets?name=d0&label=0", "text/csv", csv, len);
    json_t *ref = upload_ok("/v1/datasets?name=d1&label=label", "text/csv", csv, len);
    assert_string_not_equal(str(first, "sha256"), str(ref, "sha256"));
    json_decref(first);
    json_decref(ref);
    free(csv);
}

static void test_csv_regression(void **state)
{
    static const char csv[] = "a,b,t1\n1,2,0.5\n3,4,1.5\n5,6,-2.25\n";
    json_t *d = upload_ok("/v1/datasets?name=reg&label=t1", "text/csv", csv, sizeof csv - 1);
    assert_int_equal(num(d, "n_samples"), 3);
    json_t *t = json_object_get(d, "target");
    assert_string_equal(str(t, "kind"), "regression");
    assert_int_equal(num(t, "width"), 1);
    json_decref(d);
}

static void test_csv_bad(void **state)
{
    size_t before = count_datasets();
    static const char ragged[] = "a,b,c\n1,2,3\n4,5\n6,7,8\n";
    upload_bad("/v1/datasets?label=c", "text/csv", ragged, sizeof ragged - 1, 422, "line 3", NULL);
    static const char not_number[] = "a,b\n1,2\n3,x4\n";
    upload_bad("/v1/datasets", "text/csv", not_number, sizeof not_number - 1, 422, "line 3", NULL);
    static const char ok[] = "a,b\n1,2\n";
    upload_bad("/v1/datasets?label=zz", "text/csv", ok, sizeof ok - 1, 422, "zz", NULL);
    upload_bad("/v1/datasets?label=7", "text/csv", ok, sizeof ok - 1, 422, NULL, NULL);
    upload_bad("/v1/datasets?label=", "text/csv", ok, sizeof ok - 1, 400, "label", "/label");
    upload_bad("/v1/datasets?name=", "text/csv", ok, sizeof ok - 1, 400, "name", "/name");
    upload_bad("/v1/datasets", "text/csv", "", 0, 422, NULL, NULL);
    assert_int_equal(count_datasets(), before);
}

/* ---------------------------------------------------------------- JSON */

static void test_json_upload(void **state)
{
    static const char classes[] = "{\"name\":\"xor\",\"x\":[[0,0],[0,1],[1,0],[1,1]],"
                                  "\"y\":[0,1,1,0]}";
    json_t *d = upload_ok("/v1/datasets", "application/json", classes, sizeof classes - 1);
    assert_string_equal(str(d, "name"), "xor");
    assert_string_equal(str(d, "format"), "json");
    assert_int_equal(num(d, "n_samples"), 4);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(d, "input_shape"), 0)), 2);
    assert_string_equal(str(json_object_get(d, "target"), "kind"), "classes");
    assert_int_equal(num(json_object_get(d, "target"), "n_classes"), 2);
    assert_int_equal(num(d, "bytes"), 4 * 3 * 4);
    json_decref(d);

    static const char multi[] = "{\"name\":\"two\",\"x\":[[1,2,3],[4,5,6]],"
                                "\"y\":[[0.5,1],[2,-1.5]]}";
    d = upload_ok("/v1/datasets", "application/json", multi, sizeof multi - 1);
    json_t *t = json_object_get(d, "target");
    assert_string_equal(str(t, "kind"), "regression");
    assert_int_equal(num(t, "width"), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(d, "input_shape"), 0)), 3);
    json_decref(d);
}

static void test_json_bad(void **state)
{
    size_t before = count_datasets();
    struct {
        const char *body;
        long status;
        const char *pointer;
    } cases[] = {
        {"{\"x\":[[1,2],[3]],\"y\":[0,1]}", 422, "/x/1"},
        {"{\"x\":[[1,2],[3,\"a\"]],\"y\":[0,1]}", 422, "/x/1/1"},
        {"{\"x\":[[1,2]],\"y\":[0,1]}", 422, "/y"},
        {"{\"x\":[[1,2]],\"y\":[true]}", 422, "/y/0"},
        {"{\"x\":[[1,2]]}", 422, "/y"},
        {"{\"y\":[1]}", 422, "/x"},
        {"{\"x\":[],\"y\":[]}", 422, "/x"},
        {"{\"x\":[[1]],\"y\":[1],\"extra\":1}", 422, "/extra"},
        {"{\"x\":[[1]],\"y\":[1],\"name\":5}", 422, "/name"},
        {"[1,2]", 422, ""},
        {"{\"x\":[[1,2]],\"y\":[0]", 400, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        upload_bad("/v1/datasets", "application/json", cases[i].body, strlen(cases[i].body),
                   cases[i].status, NULL, cases[i].pointer);
    /* Every problem is listed, not only the first. */
    static const char many[] = "{\"x\":[[1,\"a\"],[\"b\",2]],\"y\":[0,1],\"zz\":0}";
    it_resp r;
    static const char *const h[] = {"Content-Type: application/json", NULL};
    assert_int_equal(it_request(&srv, "POST", "/v1/datasets", h, many, sizeof many - 1, &r), 0);
    json_t *doc = assert_problem(&r, 422);
    assert_int_equal(json_array_size(json_object_get(doc, "errors")), 3);
    json_decref(doc);
    it_resp_free(&r);
    assert_int_equal(count_datasets(), before);
}

/* ---------------------------------------------------------------- IDX */

/* An IDX ubyte array: magic 0 0 0x08 ndim, big-endian dims, data. */
static unsigned char *idx_ubyte(const uint32_t *dims, int ndim, const unsigned char *data,
                                size_t count, size_t *len)
{
    *len = 4 + 4 * (size_t)ndim + count;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    b[0] = 0;
    b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    memcpy(b + 4 + 4 * ndim, data, count);
    return b;
}

typedef struct idx_pair {
    unsigned char *x, *y;
    size_t x_len, y_len;
} idx_pair;

/* Five 2x3 images and their labels (0..3). */
static idx_pair small_idx(void)
{
    unsigned char pix[30], lab[5] = {3, 0, 1, 2, 1};
    for (int i = 0; i < 30; i++) pix[i] = (unsigned char)(i * 8);
    uint32_t xd[3] = {5, 2, 3}, yd[1] = {5};
    idx_pair p;
    p.x = idx_ubyte(xd, 3, pix, sizeof pix, &p.x_len);
    p.y = idx_ubyte(yd, 1, lab, sizeof lab, &p.y_len);
    return p;
}

static void idx_pair_free(idx_pair *p)
{
    free(p->x);
    free(p->y);
}

static void check_small(json_t *d)
{
    assert_string_equal(str(d, "format"), "idx");
    assert_int_equal(num(d, "n_samples"), 5);
    json_t *shape = json_object_get(d, "input_shape");
    size_t width = 1;
    for (size_t i = 0; i < json_array_size(shape); i++)
        width *= (size_t)json_integer_value(json_array_get(shape, i));
    assert_int_equal(width, 6);
    assert_string_equal(str(json_object_get(d, "target"), "kind"), "classes");
    assert_int_equal(num(json_object_get(d, "target"), "n_classes"), 4);
    assert_int_equal(num(d, "bytes"), 5 * 7 * 4);
}

static void test_multipart_idx(void **state)
{
    idx_pair p = small_idx();
    const char *ct = NULL;
    size_t len = 0;

    /* Plain, as files the test wrote. */
    char xpath[700], ypath[700];
    snprintf(xpath, sizeof xpath, "%s/x.idx", srv.dir);
    snprintf(ypath, sizeof ypath, "%s/y.idx", srv.dir);
    assert_int_equal(it_write_file(xpath, p.x, p.x_len, 0), 0);
    assert_int_equal(it_write_file(ypath, p.y, p.y_len, 0), 0);
    size_t xl = 0, yl = 0;
    char *xf = read_file(xpath, &xl), *yf = read_file(ypath, &yl);
    it_part parts[] = {{"name", NULL, "tiny", 4}, {"x", "x.idx", xf, xl}, {"y", "y.idx", yf, yl}};
    char *body = it_multipart(parts, 3, &len, &ct);
    json_t *d = upload_ok("/v1/datasets", ct, body, len);
    check_small(d);
    assert_string_equal(str(d, "name"), "tiny");
    char plain_sha[65];
    snprintf(plain_sha, sizeof plain_sha, "%s", str(d, "sha256"));
    json_decref(d);
    free(body);
    free(xf);
    free(yf);

    /* Gzipped files, y first, name from the query string. */
    snprintf(xpath, sizeof xpath, "%s/x.idx.gz", srv.dir);
    snprintf(ypath, sizeof ypath, "%s/y.idx.gz", srv.dir);
    assert_int_equal(it_write_file(xpath, p.x, p.x_len, 1), 0);
    assert_int_equal(it_write_file(ypath, p.y, p.y_len, 1), 0);
    xf = read_file(xpath, &xl);
    yf = read_file(ypath, &yl);
    assert_int_equal((unsigned char)xf[0], 0x1f); /* really gzip */
    it_part gz[] = {{"y", "y.idx.gz", yf, yl}, {"x", "x.idx.gz", xf, xl}};
    body = it_multipart(gz, 2, &len, &ct);
    d = upload_ok("/v1/datasets?name=tiny-gz", ct, body, len);
    check_small(d);
    assert_string_equal(str(d, "name"), "tiny-gz");
    assert_string_equal(str(d, "sha256"), plain_sha); /* same content */
    json_decref(d);
    free(body);
    free(xf);
    free(yf);
    idx_pair_free(&p);
}

static void test_multipart_fashion_mnist(void **state)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char xpath[256], ypath[256];
    snprintf(xpath, sizeof xpath, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(ypath, sizeof ypath, "%s/t10k-labels-idx1-ubyte.gz", dir);
    if (access(xpath, R_OK) != 0 || access(ypath, R_OK) != 0) {
        skip();
        return;
    }
    size_t xl = 0, yl = 0, len = 0;
    char *xf = read_file(xpath, &xl), *yf = read_file(ypath, &yl);
    assert_non_null(xf);
    assert_non_null(yf);
    const char *ct = NULL;
    it_part parts[] = {{"x", "t10k-images-idx3-ubyte.gz", xf, xl},
                       {"y", "t10k-labels-idx1-ubyte.gz", yf, yl},
                       {"name", NULL, "fashion-mnist-test", 18}};
    char *body = it_multipart(parts, 3, &len, &ct);
    json_t *d = upload_ok("/v1/datasets", ct, body, len);
    assert_int_equal(num(d, "n_samples"), 10000);
    json_t *shape = json_object_get(d, "input_shape");
    size_t width = 1;
    for (size_t i = 0; i < json_array_size(shape); i++)
        width *= (size_t)json_integer_value(json_array_get(shape, i));
    assert_int_equal(width, 784);
    assert_int_equal(num(json_object_get(d, "target"), "n_classes"), 10);
    assert_string_equal(str(d, "name"), "fashion-mnist-test");
    json_decref(d);
    free(body);
    free(xf);
    free(yf);
}

static void test_multipart_bad(void **state)
{
    size_t before = count_datasets();
    idx_pair p = small_idx();
    const char *ct = NULL;
    size_t len = 0;
    char *body;

    /* Missing y. */
    it_part only_x[] = {{"x", "x.idx", p.x, p.x_len}};
    body = it_multipart(only_x, 1, &len, &ct);
    upload_bad("/v1/datasets", ct, body, len, 400, "'y'", "/y");
    free(body);

    /* An unknown part. */
    it_part extra[] = {{"x", "x", p.x, p.x_len}, {"y", "y", p.y, p.y_len}, {"z", "z", "1", 1}};
    body = it_multipart(extra, 3, &len, &ct);
    upload_bad("/v1/datasets", ct, body, len, 400, "'z'", NULL);
    free(body);

    /* No boundary parameter. */
    upload_bad("/v1/datasets", "multipart/form-data", "--x\r\n", 5, 400, "boundary", NULL);

    /* Cut off before the closing boundary. */
    it_part both[] = {{"x", "x", p.x, p.x_len}, {"y", "y", p.y, p.y_len}};
    body = it_multipart(both, 2, &len, &ct);
    upload_bad("/v1/datasets", ct, body, len - 40, 400, NULL, NULL);
    free(body);

    /* A lying IDX header: 100 images declared, 5 sent. */
    unsigned char *lying = malloc(p.x_len);
    memcpy(lying, p.x, p.x_len);
    lying[7] = 100;
    it_part lie[] = {{"x", "x", lying, p.x_len}, {"y", "y", p.y, p.y_len}};
    body = it_multipart(lie, 2, &len, &ct);
    upload_bad("/v1/datasets", ct, body, len, 422, "part x", "/x");
    free(body);
    free(lying);

    /* Not IDX at all. */
    it_part junk[] = {{"x", "x", "hello world, not idx", 20}, {"y", "y", p.y, p.y_len}};
    body = it_multipart(junk, 2, &len, &ct);
    upload_bad("/v1/datasets", ct, body, len, 422, "part x", "/x");
    free(body);

    /* Counts disagree: 5 images, 4 labels. */
    unsigned char lab4[4] = {0, 1, 2, 3};
    uint32_t yd[1] = {4};
    size_t y4_len = 0;
    unsigned char *y4 = idx_ubyte(yd, 1, lab4, 4, &y4_len);
    it_part mismatch[] = {{"x", "x", p.x, p.x_len}, {"y", "y", y4, y4_len}};
    body = it_multipart(mismatch, 2, &len, &ct);
    upload_bad("/v1/datasets", ct, body, len, 422, "5 images but 4 labels", "/y");
    free(body);
    free(y4);

    idx_pair_free(&p);
    assert_int_equal(count_datasets(), before);
}

/* ---------------------------------------------------------------- aborted upload */

static void test_aborted_upload_leaves_nothing(void **state)
{
    size_t before = count_datasets();
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /v1/datasets?name=aborted HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\n"
                     "a,b\n1,2\n3,4\n5,6\n");
    assert_int_equal(it_raw_send_close(&srv, req, (size_t)n, 300), 0);
    /* The server notices the closed connection; give it a moment, then check. */
    for (int i = 0; i < 500; i++) {
        char *log = read_file(srv.log_path, NULL);
        int seen = log && strstr(log, "\"aborted\":true") != NULL;
        free(log);
        if (seen) break;
        usleep(20000);
    }
    char *log = read_file(srv.log_path, NULL);
    assert_non_null(log);
    if (!strstr(log, "\"aborted\":true")) it_dump_log(&srv);
    assert_non_null(strstr(log, "\"aborted\":true"));
    free(log);
    assert_int_equal(count_datasets(), before);
    /* The server still answers. */
    it_resp r;
    assert_int_equal(it_get(&srv, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    it_resp_free(&r);
}

/* ---------------------------------------------------------------- list, get, delete */

static void test_list_get_delete(void **state)
{
    char ids[3][64];
    for (int i = 0; i < 3; i++) {
        char named[160];
        snprintf(named, sizeof named, "{\"name\":\"page-%d\",\"x\":[[%d]],\"y\":[1]}", i, i);
        json_t *d = upload_ok("/v1/datasets", "application/json", named, strlen(named));
        snprintf(ids[i], sizeof ids[i], "%s", str(d, "id"));
        json_decref(d);
    }

    /* Newest first, two per page, then the cursor. */
    it_resp r;
    assert_int_equal(it_get(&srv, "/v1/datasets?limit=2", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *page = it_json(&r);
    json_t *items = json_object_get(page, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(str(json_array_get(items, 0), "id"), ids[2]);
    assert_string_equal(str(json_array_get(items, 1), "id"), ids[1]);
    const char *cursor = str(page, "next_cursor");
    char path[256];
    /* A cursor belongs to its list: elsewhere it is a 400, not a position. */
    const char *others[] = {"jobs", "sweeps", "weights"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/%s?cursor=%s", others[i], cursor);
        it_resp o;
        assert_int_equal(it_get(&srv, path, &o), 0);
        json_t *doc = assert_problem(&o, 400);
        json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
        assert_string_equal(str(e0, "pointer"), "/cursor");
        assert_non_null(strstr(str(e0, "message"), "of this list"));
        json_decref(doc);
        it_resp_free(&o);
    }
    snprintf(path, sizeof path, "/v1/datasets?limit=2&cursor=%s", cursor);
    it_resp_free(&r);
    json_decref(page);
    assert_int_equal(it_get(&srv, path, &r), 0);
    assert_int_equal(r.status, 200);
    page = it_json(&r);
    items = json_object_get(page, "items");
    assert_true(json_array_size(items) >= 1);
    assert_string_equal(str(json_array_get(items, 0), "id"), ids[0]);
    it_resp_free(&r);
    json_decref(page);

    /* One. */
    snprintf(path, sizeof path, "/v1/datasets/%s", ids[1]);
    assert_int_equal(it_get(&srv, path, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *d = it_json(&r);
    assert_string_equal(str(d, "id"), ids[1]);
    assert_string_equal(str(d, "name"), "page-1");
    assert_int_equal(num(d, "n_samples"), 1);
    assert_null(json_object_get(d, "upload")); /* only in the upload's answer */
    json_decref(d);
    it_resp_free(&r);

    /* Delete, then it is gone. */
    assert_int_equal(it_delete(&srv, path, &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    it_resp_free(&r);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    assert_int_equal(it_delete(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);

    /* Unknown ids and bad pagination. */
    assert_int_equal(it_get(&srv, "/v1/datasets/ds_doesnotexist", &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    const char *bad[] = {"/v1/datasets?limit=0", "/v1/datasets?limit=abc",
                         "/v1/datasets?limit=100000", "/v1/datasets?cursor=garbage!"};
    const char *ptr[] = {"/limit", "/limit", "/limit", "/cursor"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(it_get(&srv, bad[i], &r), 0);
        json_t *doc = assert_problem(&r, 400);
        assert_string_equal(
            str(json_array_get(json_object_get(doc, "errors"), 0), "pointer"), ptr[i]);
        json_decref(doc);
        it_resp_free(&r);
    }
}

static void test_delete_in_use(void **state)
{
    size_t len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &len);
    assert_non_null(csv);
    json_t *d = upload_ok("/v1/datasets?name=busy&label=label", "text/csv", csv, len);
    free(csv);
    char spec[1024], path[128];
    /* A job long enough to still be queued or running when we try to delete. */
    snprintf(spec, sizeof spec,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"input_shape\":[64],\"layers\":["
             "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}]},"
             "\"compile\":{\"optimizer\":\"sgd\",\"loss\":\"sparse_categorical_crossentropy\"},"
             "\"fit\":{\"epochs\":5000,\"batch_size\":1}}",
             str(d, "id"));
    it_resp r;
    assert_int_equal(it_post_json(&srv, "/v1/jobs", spec, &r), 0);
    if (r.status != 202) fail_msg("job submit: %ld %s", r.status, r.body);
    json_t *job = it_json(&r);
    char job_id[64];
    snprintf(job_id, sizeof job_id, "%s", str(job, "id"));
    json_decref(job);
    it_resp_free(&r);

    snprintf(path, sizeof path, "/v1/datasets/%s", str(d, "id"));
    assert_int_equal(it_delete(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);

    /* Cancel it; once finished, the dataset can go. */
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", job_id);
    assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 202);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s", job_id);
    int finished = 0;
    for (int i = 0; i < 500 && !finished; i++) {
        assert_int_equal(it_get(&srv, path, &r), 0);
        json_t *j = it_json(&r);
        const char *st = json_string_value(json_object_get(j, "status"));
        finished = st && strcmp(st, "cancelled") == 0;
        json_decref(j);
        it_resp_free(&r);
        if (!finished) usleep(20000);
    }
    assert_true(finished);
    snprintf(path, sizeof path, "/v1/datasets/%s", str(d, "id"));
    assert_int_equal(it_delete(&srv, path, &r), 0);
    assert_int_equal(r.status, 204);
    it_resp_free(&r);
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_digits),
        cmocka_unit_test(test_csv_regression),
        cmocka_unit_test(test_csv_bad),
        cmocka_unit_test(test_json_upload),
        cmocka_unit_test(test_json_bad),
        cmocka_unit_test(test_multipart_idx),
        cmocka_unit_test(test_multipart_fashion_mnist),
        cmocka_unit_test(test_multipart_bad),
        cmocka_unit_test(test_aborted_upload_leaves_nothing),
        cmocka_unit_test(test_list_get_delete),
        cmocka_unit_test(test_delete_in_use),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
