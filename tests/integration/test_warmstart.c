/*
 * test_warmstart.c — warm starts against a real fitd: POST/GET/DELETE
 * /v1/weights, and jobs with "init": {"weights"}, {"from_job"} and {"from_job",
 * "resume": true}.
 *
 * The checks: a job started from uploaded weights (or from a job) with a
 * learning rate so small that float32 weights cannot move predicts what the
 * source predicts and its first val_loss is the source's last (a job without the
 * init predicts something else: the check can fail); a 3-epoch job resumed to 6
 * epochs ends with weights bit-identical to an uninterrupted 6-epoch job with the
 * same seed (shuffling and dropout included), its epochs numbered 4..6 with the
 * same losses; and every error: bad safetensors, wrong tensor name, wrong shape,
 * unknown ids, another tenant's ids, a source that has not succeeded, a resume
 * that changes the spec or does not add epochs, deleting weights in use (409),
 * and a delete racing a submission that starts from what it deletes.
 */
#include <pthread.h>
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

#define NO_WTS "wts_aaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NO_JOB "job_aaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TOK_A "alice-token-0123456789abcdef"
#define TOK_B "bob-token-abcdefghijklmnop"

static it_server srv;
static char digits_id[64];
static char src_job[64];   /* 3 epochs, succeeded (set up once) */
static char wts_id[64];    /* its weights, uploaded */

/* ---------------------------------------------------------------- helpers */

static it_resp post_octets(const it_server *s, const char *path, const void *data, size_t len)
{
    it_resp r;
    const char *h[] = {"Content-Type: application/octet-stream", NULL};
    assert_int_equal(it_request(s, "POST", path, h, data, len, &r), 0);
    return r;
}

/* The job spec used throughout: digits, dense(32 relu) - dropout - dense(10
 * softmax); `units` for the first layer, optimizer JSON, epochs, batch size and
 * the init member (or "" for none). Returns a static buffer. */
static const char *spec(int units, const char *optimizer, int epochs, int batch, const char *init)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": ["
             "   {\"type\": \"dense\", \"units\": %d, \"activation\": \"relu\"},"
             "   {\"type\": \"dropout\", \"rate\": 0.2},"
             "   {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": %s, \"loss\": \"sparse_categorical_crossentropy\","
             "   \"metrics\": [\"accuracy\"]},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": %d, \"validation_split\": 0.2,"
             "   \"seed\": 7}%s%s}",
             digits_id, units, optimizer, epochs, batch, init[0] ? ", \"init\": " : "", init);
    return buf;
}

#define ADAM "{\"name\": \"adam\", \"learning_rate\": 0.003}"
/* Updates of ~1e-30 vanish next to float32 weights of ~1e-2: the weights stay put. */
#define FROZEN "{\"name\": \"sgd\", \"learning_rate\": 1e-30}"

/* Does the problem list an error at `pointer` whose message contains `needle`? */
static void expect_error(json_t *problem, const char *pointer, const char *needle)
{
    json_t *errs = json_object_get(problem, "errors"), *e;
    size_t i;
    json_array_foreach(errs, i, e) {
        const char *p = json_string_value(json_object_get(e, "pointer"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (p && m && strcmp(p, pointer) == 0 && strstr(m, needle)) return;
    }
    char *text = json_dumps(problem, 0);
    fail_msg("no error at %s containing '%s' in %s", pointer, needle, text ? text : "?");
}

/* POST /v1/jobs expecting a 422 that lists an error at `pointer` whose message
 * contains `needle`. */
static void expect_422(const it_server *s, const char *body, const char *pointer,
                       const char *needle)
{
    it_resp r;
    assert_int_equal(it_post_json(s, "/v1/jobs", body, &r), 0);
    json_t *p = assert_problem(&r, 422);
    it_resp_free(&r);
    expect_error(p, pointer, needle);
    json_decref(p);
}

static json_t *wait_final(const it_server *s, const char *id, const char *want)
{
    return it_wait_job(s, id, want, 60 * it_slow(), 25);
}

/* GET /v1/jobs/{id}/weights (safetensors bytes; free). */
static char *job_weights(const char *id, size_t *len)
{
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    char *b = r.body;
    *len = r.len;
    r.body = NULL;
    it_resp_free(&r);
    return b;
}

/* The tensor data section of a safetensors file (after the 8-byte length and the
 * JSON header, which carries the job id and so differs between jobs). */
static const unsigned char *st_data(const char *file, size_t len, size_t *data_len)
{
    uint64_t n = 0;
    assert_true(len >= 8);
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)file[i];
    assert_true(n <= len - 8);
    *data_len = len - 8 - (size_t)n;
    return (const unsigned char *)file + 8 + n;
}

static double rec_num(const json_t *rec, const char *key)
{
    const json_t *v = json_object_get(rec, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* POST /v1/jobs/{id}/predict on the first 20 digits rows; outputs as floats. */
static void predict(const char *id, float *out /* [20 * 10] */)
{
    static char body[65536];
    size_t len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &len);
    assert_non_null(csv);
    size_t k = (size_t)snprintf(body, sizeof body, "{\"inputs\": [");
    char *p = strchr(csv, '\n') + 1;
    for (int row = 0; row < 20; row++) {
        k += (size_t)snprintf(body + k, sizeof body - k, "%s[", row ? "," : "");
        for (int c = 0; c < 64; c++) {
            char *end;
            double v = strtod(p, &end);
            p = end + 1; /* the comma */
            k += (size_t)snprintf(body + k, sizeof body - k, "%s%g", c ? "," : "", v);
        }
        p = strchr(p, '\n') + 1; /* skip the label */
        k += (size_t)snprintf(body + k, sizeof body - k, "]");
    }
    snprintf(body + k, sizeof body - k, "]}");
    free(csv);
    char path[128];
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", id);
    assert_int_equal(it_post_json(&srv, path, body, &r), 0);
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    it_resp_free(&r);
    json_t *outs = json_object_get(o, "outputs");
    assert_int_equal(json_array_size(outs), 20);
    for (size_t i = 0; i < 20; i++)
        for (size_t j = 0; j < 10; j++)
            out[i * 10 + j] = (float)json_number_value(json_array_get(json_array_get(outs, i), j));
    json_decref(o);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (d > m) m = d;
    }
    return m;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    *state = &srv;
    /* A 1 MiB cap (digits.csv is 267 kB) so that a 413 is cheap to provoke. */
    const char *args[] = {"--workers", "2", "--max-body-dataset", "1048576", NULL};
    return it_start_with_digits(&srv, args, digits_id, sizeof digits_id);
}

/* ---------------------------------------------------------------- tests */

/* A 3-epoch job resumed to 6 equals an uninterrupted 6-epoch job, bit for bit. */
static void test_resume_bit_identical(void **state)
{
    char six[64], resumed[64], init[160];
    it_submit_job(&srv, spec(32, ADAM, 3, 64, ""), src_job, sizeof src_job);
    json_decref(wait_final(&srv, src_job, "succeeded"));
    it_submit_job(&srv, spec(32, ADAM, 6, 64, ""), six, sizeof six);
    snprintf(init, sizeof init, "{\"from_job\": \"%s\", \"resume\": true}", src_job);
    it_submit_job(&srv, spec(32, ADAM, 6, 64, init), resumed, sizeof resumed);
    json_decref(wait_final(&srv, six, "succeeded"));
    json_t *job = wait_final(&srv, resumed, "succeeded");
    /* The stored spec renders the init; progress counts the total epochs. */
    json_t *ji = json_object_get(json_object_get(job, "spec"), "init");
    assert_string_equal(json_string_value(json_object_get(ji, "from_job")), src_job);
    assert_true(json_is_true(json_object_get(ji, "resume")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(job, "progress"), "epochs")), 6);
    json_decref(job);

    size_t la, lb, l3, da, db, d3;
    char *a = job_weights(six, &la), *b = job_weights(resumed, &lb), *c = job_weights(src_job, &l3);
    const unsigned char *pa = st_data(a, la, &da), *pb = st_data(b, lb, &db), *p3 = st_data(c, l3, &d3);
    assert_int_equal(da, db);
    assert_memory_equal(pa, pb, da);
    /* The comparison can fail: three more epochs changed the weights. */
    assert_int_equal(d3, da);
    assert_memory_not_equal(p3, pa, da);
    free(a);
    free(b);
    free(c);

    /* Epochs continue numbering after the source's, with the same losses. */
    json_t *mr = it_job_metrics(&srv, resumed), *m6 = it_job_metrics(&srv, six);
    assert_int_equal(json_array_size(mr), 3);
    assert_int_equal(json_array_size(m6), 6);
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(mr, i), *y = json_array_get(m6, i + 3);
        assert_int_equal(rec_num(x, "epoch"), 4 + (int)i);
        assert_true(rec_num(x, "loss") == rec_num(y, "loss"));
        assert_true(rec_num(x, "val_loss") == rec_num(y, "val_loss"));
    }
    json_decref(mr);
    json_decref(m6);
}

/* Specs stored by an older fitd are still read: one without a key added since
 * (weight_decay) is resumed (the comparison is of the parsed specs, not of their
 * texts), and one with a combination accepted then (clipnorm beside clipvalue)
 * still serves its model and predictions. */
static void test_older_stored_specs(void **state)
{
    (void)state;
    char a[64], b[64], resumed[64], init[160], path[160];
    it_submit_job(&srv, spec(32, ADAM, 2, 64, ""), a, sizeof a);
    it_submit_job(&srv, spec(32, ADAM, 2, 64, ""), b, sizeof b);
    json_decref(wait_final(&srv, a, "succeeded"));
    json_decref(wait_final(&srv, b, "succeeded"));
    it_db_exec(srv.db,
               "UPDATE jobs SET spec = json_remove(spec, '$.compile.optimizer.weight_decay') "
               "WHERE id = '%s';"
               "UPDATE jobs SET spec = json_set(spec, '$.compile.optimizer.clipnorm', 5.0, "
               "'$.compile.optimizer.clipvalue', 0.5) WHERE id = '%s'",
               a, b);

    snprintf(init, sizeof init, "{\"from_job\": \"%s\", \"resume\": true}", a);
    it_submit_job(&srv, spec(32, ADAM, 4, 64, init), resumed, sizeof resumed);
    json_decref(wait_final(&srv, resumed, "succeeded"));

    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/model", b);
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    it_resp_free(&r);
    float out[20 * 10];
    predict(b, out);
}

/* Upload a job's weights, start from them and from the job: predictions equal. */
static void test_weights_upload_and_start(void **state)
{
    if (!src_job[0]) skip();
    size_t len;
    char *file = job_weights(src_job, &len);
    it_resp r = post_octets(&srv, "/v1/weights?name=digits-3-epochs", file, len);
    expect_status(&r, 201);
    json_t *o = body_json(&r);
    snprintf(wts_id, sizeof wts_id, "%s", json_string_value(json_object_get(o, "id")));
    assert_true(strncmp(wts_id, "wts_", 4) == 0);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/weights/%s", wts_id);
    assert_string_equal(r.location, loc);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "digits-3-epochs");
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")), (json_int_t)len);
    struct sha256_ctx ctx;
    uint8_t dg[SHA256_DIGEST_SIZE];
    char hex[65];
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)file);
    sha256_digest(&ctx, sizeof dg, dg);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", dg[i]);
    assert_string_equal(json_string_value(json_object_get(o, "sha256")), hex);
    json_t *t = json_object_get(o, "tensors");
    assert_int_equal(json_array_size(t), 4);
    json_t *k0 = json_array_get(t, 0);
    assert_string_equal(json_string_value(json_object_get(k0, "name")), "dense/kernel");
    assert_string_equal(json_string_value(json_object_get(k0, "dtype")), "F32");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(k0, "shape"), 0)), 64);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(k0, "shape"), 1)), 32);
    it_resp_free(&r);

    /* GET equals the upload's answer; the list pages. */
    assert_int_equal(it_get(&srv, loc, &r), 0);
    expect_status(&r, 200);
    json_t *g = body_json(&r);
    assert_true(json_equal(g, o));
    json_decref(g);
    it_resp_free(&r);
    r = post_octets(&srv, "/v1/weights", file, len); /* a second, unnamed upload */
    expect_status(&r, 201);
    json_t *second = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(second, "name")), "weights");
    it_resp_free(&r);
    assert_int_equal(it_get(&srv, "/v1/weights?limit=1", &r), 0);
    expect_status(&r, 200);
    g = body_json(&r);
    it_resp_free(&r);
    json_t *items = json_object_get(g, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        json_string_value(json_object_get(second, "id")));
    const char *cur = json_string_value(json_object_get(g, "next_cursor"));
    assert_non_null(cur);
    char path[256];
    snprintf(path, sizeof path, "/v1/weights?limit=1&cursor=%s", cur);
    json_decref(g);
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    g = body_json(&r);
    it_resp_free(&r);
    items = json_object_get(g, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")), wts_id);
    json_decref(g);
    assert_int_equal(it_get(&srv, "/v1/weights?cursor=nonsense", &r), 0);
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/weights/%s", json_string_value(json_object_get(second, "id")));
    assert_int_equal(it_delete(&srv, path, &r), 0);
    expect_status(&r, 204);
    it_resp_free(&r);
    json_decref(second);
    json_decref(o);
    free(file);

    /* Jobs from the upload, from the job, and a control without init. */
    char from_w[64], from_j[64], plain[64], init[160];
    snprintf(init, sizeof init, "{\"weights\": \"%s\"}", wts_id);
    it_submit_job(&srv, spec(32, FROZEN, 1, 64, init), from_w, sizeof from_w);
    snprintf(init, sizeof init, "{\"from_job\": \"%s\"}", src_job);
    it_submit_job(&srv, spec(32, FROZEN, 1, 64, init), from_j, sizeof from_j);
    it_submit_job(&srv, spec(32, FROZEN, 1, 64, ""), plain, sizeof plain);
    json_decref(wait_final(&srv, from_w, "succeeded"));
    json_decref(wait_final(&srv, from_j, "succeeded"));
    json_decref(wait_final(&srv, plain, "succeeded"));

    float src[200], a[200], b[200], c[200];
    predict(src_job, src);
    predict(from_w, a);
    predict(from_j, b);
    predict(plain, c);
    assert_true(max_abs_diff(a, src, 200) < 1e-6);
    assert_true(max_abs_diff(b, src, 200) < 1e-6);
    assert_true(max_abs_diff(c, src, 200) > 1e-3);

    /* The first val_loss of the warm start is the source's last (same weights,
     * same validation rows). */
    json_t *ms = it_job_metrics(&srv, src_job), *mw = it_job_metrics(&srv, from_w),
           *mj = it_job_metrics(&srv, from_j);
    double last = rec_num(json_array_get(ms, 2), "val_loss");
    double vw = rec_num(json_array_get(mw, 0), "val_loss");
    double vj = rec_num(json_array_get(mj, 0), "val_loss");
    assert_true(vw > last - 1e-6 * last && vw < last + 1e-6 * last);
    assert_true(vj > last - 1e-6 * last && vj < last + 1e-6 * last);
    assert_int_equal(rec_num(json_array_get(mw, 0), "epoch"), 1);
    json_decref(ms);
    json_decref(mw);
    json_decref(mj);
}

/* Bodies POST /v1/weights refuses. */
static void test_bad_uploads(void **state)
{
    if (!src_job[0]) skip();
    it_resp r;
    r = post_octets(&srv, "/v1/weights", "hello, this is not safetensors", 30);
    json_t *p = assert_problem(&r, 422);
    assert_non_null(json_object_get(p, "errors"));
    json_decref(p);
    it_resp_free(&r);

    r = post_octets(&srv, "/v1/weights", "", 0);
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);

    size_t big_len = (size_t)2 << 20; /* over --max-body-dataset */
    char *big = calloc(1, big_len);
    assert_non_null(big);
    r = post_octets(&srv, "/v1/weights", big, big_len);
    json_decref(assert_problem(&r, 413));
    it_resp_free(&r);
    free(big);

    size_t len;
    char *file = job_weights(src_job, &len);
    r = post_octets(&srv, "/v1/weights", file, len - 5); /* truncated data */
    json_decref(assert_problem(&r, 422));
    it_resp_free(&r);
    /* A non-F32 dtype, named in the message. */
    char *f16 = NULL; /* the file starts with binary length bytes: no strstr */
    for (size_t i = 8; !f16 && i + 3 <= len; i++)
        if (memcmp(file + i, "F32", 3) == 0) f16 = file + i;
    assert_non_null(f16);
    memcpy(f16, "F16", 3);
    r = post_octets(&srv, "/v1/weights", file, len);
    p = assert_problem(&r, 422);
    assert_non_null(strstr(json_string_value(json_object_get(p, "detail")), "'F16'"));
    json_decref(p);
    it_resp_free(&r);
    free(file);

    const char *h[] = {"Content-Type: application/json", NULL};
    assert_int_equal(it_request(&srv, "POST", "/v1/weights", h, "{}", 2, &r), 0);
    json_decref(assert_problem(&r, 415));
    it_resp_free(&r);
    r = post_octets(&srv, "/v1/weights?name=", "x", 1);
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);

    assert_int_equal(it_get(&srv, "/v1/weights/" NO_WTS, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    assert_int_equal(it_delete(&srv, "/v1/weights/" NO_WTS, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
}

/* An upload is stored as one value, which SQLite caps at 1e9 bytes: with a dataset
 * limit above that, a larger declared body is still a 413 before any byte is
 * buffered (it used to be accepted and fail at the insert with a 503). */
static void test_upload_over_store_limit(void **state)
{
    (void)state;
    it_server big;
    memset(&big, 0, sizeof big);
    const char *args[] = {"--max-body-dataset", "2000000000", NULL};
    assert_int_equal(it_start(&big, args), 0);
    it_resp r;
    const char *h[] = {"Content-Type: application/octet-stream", "Content-Length: 1500000000",
                       NULL};
    assert_int_equal(it_request(&big, "POST", "/v1/weights", h, "x", 1, &r), 0);
    json_decref(assert_problem(&r, 413));
    it_resp_free(&r);
    /* Under the store's limit the declared size is let through to the stream. */
    const char *h2[] = {"Content-Type: application/octet-stream", NULL};
    assert_int_equal(it_request(&big, "POST", "/v1/weights", h2, "not safetensors", 15, &r), 0);
    json_decref(assert_problem(&r, 422));
    it_resp_free(&r);
    assert_int_equal(it_stop(&big), 0);
}

/* Specs whose init does not fit: each names the offending field and tensor. */
static void test_init_errors(void **state)
{
    if (!wts_id[0]) skip();
    char init[200];

    /* Wrong shape: 16 hidden units against weights of 32. */
    snprintf(init, sizeof init, "{\"weights\": \"%s\"}", wts_id);
    expect_422(&srv, spec(16, ADAM, 1, 64, init),
               "/init/weights", "'dense/kernel' has shape [64, 32], the model needs [64, 16]");
    snprintf(init, sizeof init, "{\"from_job\": \"%s\"}", src_job);
    expect_422(&srv, spec(16, ADAM, 1, 64, init), "/init/from_job", "dense/kernel");

    /* Wrong name: the first layer renamed. */
    char body[2048];
    snprintf(init, sizeof init, "{\"weights\": \"%s\"}", wts_id);
    snprintf(body, sizeof body, "%s", spec(32, ADAM, 1, 64, init));
    char *at = strstr(body, "\"units\": 32");
    assert_non_null(at);
    memmove(at + 18, at, strlen(at) + 1);
    memcpy(at, "\"name\": \"hidden\", ", 18);
    expect_422(&srv, body, "/init/weights", "'hidden/kernel'");

    /* Unknown ids. */
    expect_422(&srv, spec(32, ADAM, 1, 64, "{\"weights\": \"" NO_WTS "\"}"),
               "/init/weights", "do not exist");
    expect_422(&srv, spec(32, ADAM, 1, 64, "{\"from_job\": \"" NO_JOB "\"}"),
               "/init/from_job", "does not exist");

    /* Malformed init objects. */
    expect_422(&srv, spec(32, ADAM, 1, 64, "{\"weights\": \"a\", \"from_job\": \"b\"}"),
               "/init", "exactly one");
    snprintf(init, sizeof init, "{\"weights\": \"%s\", \"resume\": true}", wts_id);
    expect_422(&srv, spec(32, ADAM, 1, 64, init), "/init/resume", "from_job");
    expect_422(&srv, spec(32, ADAM, 1, 64, "{\"from_job\": \"x y\"}"),
               "/init/from_job", "a job id");

    /* Resume: no more epochs than the source ran; a changed spec. */
    snprintf(init, sizeof init, "{\"from_job\": \"%s\", \"resume\": true}", src_job);
    expect_422(&srv, spec(32, ADAM, 3, 64, init), "/fit/epochs", "must exceed the 3 epochs");
    expect_422(&srv, spec(32, ADAM, 6, 32, init), "/fit/batch_size", "differs from job");
    expect_422(&srv, spec(32, FROZEN, 6, 64, init), "/compile/optimizer/name", "differs from job");

    /* A source that has not succeeded; weights in use cannot be deleted. */
    char running[64], user[64], path[128];
    it_submit_job(&srv, spec(32, ADAM, 5000, 64, ""), running, sizeof running);
    snprintf(init, sizeof init, "{\"from_job\": \"%s\"}", running);
    expect_422(&srv, spec(32, ADAM, 1, 64, init), "/init/from_job", "only a succeeded job");
    snprintf(init, sizeof init, "{\"weights\": \"%s\"}", wts_id);
    it_submit_job(&srv, spec(32, ADAM, 5000, 64, init), user, sizeof user);
    it_resp r;
    snprintf(path, sizeof path, "/v1/weights/%s", wts_id);
    assert_int_equal(it_delete(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);
    const char *ids[2] = {running, user};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%s/cancel", ids[i]);
        assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &r), 0);
        expect_status(&r, 202);
        it_resp_free(&r);
        json_decref(wait_final(&srv, ids[i], "cancelled"));
    }
    snprintf(path, sizeof path, "/v1/weights/%s", wts_id);
    assert_int_equal(it_delete(&srv, path, &r), 0);
    expect_status(&r, 204);
    it_resp_free(&r);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
}

/* DELETE /v1/weights/W racing POST /v1/jobs with "init": {"weights": W}, while
 * long jobs hold both workers so that an accepted job stays queued: exactly one
 * wins. Either the job is queued and the delete is a 409, or the weights are gone
 * and the submission is a 422 at /init/weights. (Before the store checked the
 * init source in the insert's transaction, both succeeded in about a third of the
 * rounds and the job failed when it started.) */
typedef struct racer {
    pthread_barrier_t *go;
    char path[128];
    long status;
} racer;

static void *race_delete(void *arg)
{
    racer *r = arg;
    it_resp resp;
    pthread_barrier_wait(r->go);
    r->status = it_delete(&srv, r->path, &resp) == 0 ? resp.status : -1;
    if (r->status > 0) it_resp_free(&resp);
    return NULL;
}

static void test_delete_races_submit(void **state)
{
    if (!src_job[0]) skip();
    size_t len;
    char *file = job_weights(src_job, &len);
    char busy[2][64], path[200];
    for (int i = 0; i < 2; i++) it_submit_job(&srv, spec(32, ADAM, 5000, 64, ""), busy[i], sizeof busy[i]);
    pthread_barrier_t go;
    assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
    int queued = 0, refused = 0;
    for (int round = 0; round < 30; round++) {
        it_resp r = post_octets(&srv, "/v1/weights", file, len);
        expect_status(&r, 201);
        json_t *o = body_json(&r);
        char w[64], init[128];
        snprintf(w, sizeof w, "%s", json_string_value(json_object_get(o, "id")));
        json_decref(o);
        it_resp_free(&r);
        racer d = {.go = &go};
        snprintf(d.path, sizeof d.path, "/v1/weights/%s", w);
        snprintf(init, sizeof init, "{\"weights\": \"%s\"}", w);
        const char *body = spec(32, FROZEN, 1, 64, init);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, race_delete, &d), 0);
        pthread_barrier_wait(&go);
        assert_int_equal(it_post_json(&srv, "/v1/jobs", body, &r), 0);
        pthread_join(t, NULL);
        if (r.status == 202) {
            queued++;
            assert_int_equal(d.status, 409);
            o = body_json(&r);
            snprintf(path, sizeof path, "/v1/jobs/%s/cancel", json_string_value(json_object_get(o, "id")));
            json_decref(o);
            it_resp c;
            assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &c), 0);
            it_resp_free(&c);
        } else {
            refused++;
            assert_int_equal(d.status, 204);
            json_t *p = assert_problem(&r, 422);
            expect_error(p, "/init/weights", w);
            json_decref(p);
        }
        it_resp_free(&r);
    }
    print_message("delete vs submit: %d rounds queued the job, %d refused it\n", queued, refused);
    for (int i = 0; i < 2; i++) {
        it_resp c;
        snprintf(path, sizeof path, "/v1/jobs/%s/cancel", busy[i]);
        assert_int_equal(it_request(&srv, "POST", path, NULL, NULL, 0, &c), 0);
        it_resp_free(&c);
        json_decref(wait_final(&srv, busy[i], "cancelled"));
    }
    pthread_barrier_destroy(&go);
    free(file);
}

/* Another tenant's weights and jobs answer as missing ones. */
static void test_tenants(void **state)
{
    it_server t = {0};
    char dir[600], tokens[700];
    it_tokens_dir(dir, sizeof dir, tokens, sizeof tokens, TOK_A " alice\n" TOK_B " bob\n");
    const char *args[] = {"--workers", "1", "--auth-tokens", tokens, NULL};
    assert_int_equal(it_start(&t, args), 0);
    it_server alice = it_as(&t, TOK_A), bob = it_as(&t, TOK_B), nobody = it_as(&t, "");

    /* Without a token every weights route is 401. */
    const char *routes[][2] = {{"POST", "/v1/weights"}, {"GET", "/v1/weights"},
                               {"GET", "/v1/weights/" NO_WTS}, {"DELETE", "/v1/weights/" NO_WTS}};
    for (int i = 0; i < 4; i++) {
        it_resp u;
        assert_int_equal(it_request(&nobody, routes[i][0], routes[i][1], NULL, NULL, 0, &u), 0);
        json_decref(assert_problem(&u, 401));
        it_resp_free(&u);
    }

    /* Alice uploads data and weights and trains a job. */
    size_t len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &len);
    it_resp r;
    const char *h[] = {"Content-Type: text/csv", NULL};
    assert_int_equal(it_request(&alice, "POST", "/v1/datasets?label=label", h, csv, len, &r), 0);
    expect_status(&r, 201);
    json_t *o = body_json(&r);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", digits_id);
    snprintf(digits_id, sizeof digits_id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&r);
    free(csv);
    char job[64], wid[64], path[160], init[160];
    it_submit_job(&alice, spec(32, ADAM, 1, 64, ""), job, sizeof job);
    json_decref(wait_final(&alice, job, "succeeded"));
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", job);
    assert_int_equal(it_get(&alice, path, &r), 0);
    expect_status(&r, 200);
    it_resp up = post_octets(&alice, "/v1/weights", r.body, r.len);
    it_resp_free(&r);
    expect_status(&up, 201);
    o = body_json(&up);
    snprintf(wid, sizeof wid, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&up);

    /* Bob sees nothing of it. */
    snprintf(path, sizeof path, "/v1/weights/%s", wid);
    assert_int_equal(it_get(&bob, path, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    assert_int_equal(it_delete(&bob, path, &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
    assert_int_equal(it_get(&bob, "/v1/weights", &r), 0);
    expect_status(&r, 200);
    o = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 0);
    json_decref(o);
    it_resp_free(&r);
    /* Bob's own dataset, Alice's init ids: both "do not exist". */
    csv = read_file(fixture_path("digits.csv"), &len);
    assert_int_equal(it_request(&bob, "POST", "/v1/datasets?label=label", h, csv, len, &r), 0);
    free(csv);
    expect_status(&r, 201);
    o = body_json(&r);
    snprintf(digits_id, sizeof digits_id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&r);
    snprintf(init, sizeof init, "{\"weights\": \"%s\"}", wid);
    expect_422(&bob, spec(32, ADAM, 1, 64, init), "/init/weights", "do not exist");
    snprintf(init, sizeof init, "{\"from_job\": \"%s\", \"resume\": true}", job);
    expect_422(&bob, spec(32, ADAM, 2, 64, init), "/init/from_job", "does not exist");
    /* Alice's list has it. */
    assert_int_equal(it_get(&alice, "/v1/weights", &r), 0);
    o = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
    json_decref(o);
    it_resp_free(&r);

    snprintf(digits_id, sizeof digits_id, "%s", saved);
    assert_int_equal(it_stop(&t), 0);
    remove(tokens);
    remove(dir);
}

/* The README's "Warm starts" block, run as written against this fitd. */
static void test_readme_block(void **state)
{
    char *out = it_run_readme_block(&srv, "<!-- warmstart");
    const char *expect[] = {"\"epoch\":4", "\"epoch\":6", "\"name\":\"digits-3-epochs\"",
                            "\"status\":\"succeeded\"",
                            "'dense/kernel' has shape [64, 64], the model needs [64, 32]"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(out, expect[i])) fail_msg("README block output lacks %s:\n%s", expect[i], out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_older_stored_specs),
        cmocka_unit_test(test_weights_upload_and_start),
        cmocka_unit_test(test_bad_uploads),
        cmocka_unit_test(test_upload_over_store_limit),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_delete_races_submit),
        cmocka_unit_test(test_tenants),
        cmocka_unit_test(test_readme_block),
    };
    return cmocka_run_group_tests(tests, setup, it_group_teardown);
}
