/*
 * test_checkpoint.c — GET /v1/jobs/{id}/checkpoint: a failed job's last good
 * weights, against the real fitd binary.
 *
 * A job that diverges (SGD with a learning rate that blows up after a few epochs)
 * ends failed; /weights answers 409 pointing at /checkpoint, and /checkpoint serves
 * safetensors whose tensors are finite and bit-equal to the parameters of the
 * stored checkpoint restored into a trainer, with Fitd-Checkpoint-Epoch and the
 * file's metadata naming the epoch before the one that diverged. A job that
 * diverges in its first epoch, a succeeded job and an unknown id answer 409, 409
 * and 404; a bad ?format= 400.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "nn.h"
#include "spec.h"
#include "store.h"
#include "support.h"

static it_server srv;
static char digits_id[64];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void expect_status(const it_resp *r, long want)
{
    if (r->status != want)
        fprintf(stderr, "want %ld, got %ld: %.600s\n", want, r->status, r->body ? r->body : "");
    assert_int_equal(r->status, want);
}

/* ---------------------------------------------------------------- a GET with headers */

typedef struct fetched {
    long status;
    char *body;
    size_t len;
    char epoch_header[32]; /* Fitd-Checkpoint-Epoch, "" if absent */
    char content_type[128];
} fetched;

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    fetched *f = user;
    size_t k = size * n;
    char *grown = realloc(f->body, f->len + k + 1);
    if (!grown) return 0;
    memcpy(grown + f->len, p, k);
    f->body = grown;
    f->len += k;
    f->body[f->len] = 0;
    return k;
}

/* Copy the value of header `name` from a header line into out (trimmed). */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
    snprintf(out, cap, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    fetched *f = user;
    header_value(p, size * n, "Fitd-Checkpoint-Epoch", f->epoch_header, sizeof f->epoch_header);
    header_value(p, size * n, "Content-Type", f->content_type, sizeof f->content_type);
    return size * n;
}

static void fetch(const char *path, fetched *f)
{
    char url[512];
    memset(f, 0, sizeof *f);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", srv.port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_cleanup(c);
}

/* ---------------------------------------------------------------- jobs */

static void upload_digits(void)
{
    size_t len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &len);
    assert_non_null(csv);
    const char *h[] = {"Content-Type: text/csv", NULL};
    it_resp r;
    assert_int_equal(
        it_request(&srv, "POST", "/v1/datasets?name=digits&label=label", h, csv, len, &r), 0);
    free(csv);
    expect_status(&r, 201);
    json_t *o = it_json(&r);
    assert_non_null(o);
    snprintf(digits_id, sizeof digits_id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&r);
}

/* Submit a one-layer linear regression on digits with SGD at `rate`. */
static void submit(const char *rate, int epochs, char *id, size_t cap)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": [{\"type\": \"dense\", \"units\": 1}]},"
             " \"compile\": {\"optimizer\": {\"name\": \"sgd\", \"learning_rate\": %s},"
             "   \"loss\": \"mse\"},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": 16, \"shuffle\": false}}",
             digits_id, rate, epochs);
    it_resp r;
    assert_int_equal(it_post_json(&srv, "/v1/jobs", spec, &r), 0);
    expect_status(&r, 202);
    json_t *o = it_json(&r);
    assert_non_null(o);
    snprintf(id, cap, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&r);
}

/* Poll until the job is finished; it must end `want`. Returns the job (decref). */
static json_t *wait_job(const char *id, const char *want)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    int budget_ms = getenv("FITD_TEST_SANITIZED") ? 240000 : 60000;
    for (int waited = 0; waited < budget_ms; waited += 100) {
        it_resp r;
        assert_int_equal(it_get(&srv, path, &r), 0);
        expect_status(&r, 200);
        json_t *o = it_json(&r);
        it_resp_free(&r);
        assert_non_null(o);
        const char *st = json_string_value(json_object_get(o, "status"));
        if (st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
            if (strcmp(st, want) != 0) fprintf(stderr, "job %s is %s\n", id, st);
            assert_string_equal(st, want);
            return o;
        }
        json_decref(o);
        sleep_ms(100);
    }
    fail_msg("job %s did not finish", id);
    return NULL;
}

/* The epoch named in a failed job's error ("... at epoch N, batch M ..."). */
static int failed_epoch(const json_t *job)
{
    const char *err = json_string_value(json_object_get(job, "error"));
    assert_non_null(err);
    const char *at = strstr(err, "at epoch ");
    if (!at) fprintf(stderr, "error: %s\n", err);
    assert_non_null(at);
    assert_non_null(strstr(at, ", batch "));
    return atoi(at + 9);
}

/* ---------------------------------------------------------------- safetensors */

/* Parse a safetensors buffer's header (a new reference) and point *data at the
 * byte buffer after it. */
static json_t *st_header(const fetched *f, const unsigned char **data, size_t *data_len)
{
    assert_true(f->len >= 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)f->body[i];
    assert_true(n <= f->len - 8);
    json_error_t je;
    json_t *h = json_loadb(f->body + 8, (size_t)n, 0, &je);
    if (!h) fail_msg("safetensors header: %s", je.text);
    *data = (const unsigned char *)f->body + 8 + n;
    *data_len = f->len - 8 - (size_t)n;
    return h;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    const char *args[] = {"--workers", "1", NULL};
    if (it_start(&srv, args) != 0) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = it_stop(&srv);
    if (rc != 0) fprintf(stderr, "fitd exited with %d\n", rc);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

/* The diverged job's checkpoint weights: finite, equal to the stored checkpoint's
 * parameters, at the epoch before the divergence, in both formats. */
static void test_diverged_job_checkpoint(void **state)
{
    (void)state;
    char id[64], path[160];
    upload_digits();
    submit("4e-4", 40, id, sizeof id);
    json_t *job = wait_job(id, "failed");
    int bad_epoch = failed_epoch(job);
    json_decref(job);
    assert_true(bad_epoch >= 2);
    const int good = bad_epoch - 1;

    /* /weights: no final weights, and the reply says where the good ones are. */
    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_t *p = assert_problem(&r, 409);
    const char *detail = json_string_value(json_object_get(p, "detail"));
    assert_non_null(detail);
    assert_non_null(strstr(detail, "/checkpoint"));
    json_decref(p);
    it_resp_free(&r);
    /* Nor does it predict with them. */
    char input[1024] = "{\"inputs\": [[0";
    for (int i = 1; i < 64; i++) strcat(input, ",0");
    strcat(input, "]]}");
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", id);
    assert_int_equal(it_post_json(&srv, path, input, &r), 0);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);

    /* /checkpoint as safetensors. */
    fetched f;
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint", id);
    fetch(path, &f);
    if (f.status != 200) fprintf(stderr, "%.500s\n", f.body ? f.body : "");
    assert_int_equal(f.status, 200);
    assert_string_equal(f.content_type, "application/octet-stream");
    assert_int_equal(atoi(f.epoch_header), good);
    const unsigned char *data = NULL;
    size_t data_len = 0;
    json_t *h = st_header(&f, &data, &data_len);
    json_t *meta = json_object_get(h, "__metadata__");
    assert_string_equal(json_string_value(json_object_get(meta, "job_id")), id);
    assert_int_equal(atoi(json_string_value(json_object_get(meta, "epoch"))), good);
    assert_string_equal(json_string_value(json_object_get(meta, "batch")), "0");
    json_t *kernel = NULL, *tv;
    const char *key;
    json_object_foreach(h, key, tv) {
        size_t kl = strlen(key);
        if (kl > 7 && strcmp(key + kl - 7, "/kernel") == 0) kernel = tv;
    }
    assert_non_null(kernel);
    assert_string_equal(json_string_value(json_object_get(kernel, "dtype")), "F32");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(kernel, "shape"), 0)), 64);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(kernel, "shape"), 1)), 1);
    json_decref(h);
    for (size_t i = 0; i + 4 <= data_len; i += 4) {
        float v;
        memcpy(&v, data + i, 4);
        assert_true(isfinite(v));
    }

    /* Bit-equal to the stored checkpoint restored into a trainer of the job's spec. */
    store *st = store_open(srv.db, NULL, 0);
    assert_non_null(st);
    store_job j = {0};
    assert_int_equal(store_job_get(st, id, &j), STORE_OK);
    void *ck = NULL;
    size_t ck_len = 0;
    int ck_epoch = 0;
    assert_int_equal(store_job_checkpoint_load(st, id, &ck, &ck_len, &ck_epoch), STORE_OK);
    assert_int_equal(ck_epoch, good);
    nn_dataset ds = {0};
    assert_int_equal(store_dataset_load(st, digits_id, NULL, &ds), STORE_OK);
    store_close(st);
    spec_job sj = {0};
    spec_limits lim = spec_limits_default();
    assert_int_equal(spec_job_parse_text(j.spec_json, strlen(j.spec_json), &lim, 0, &sj, NULL),
                     SPEC_OK);
    nn_error ne = {0};
    nn_model *restored = nn_model_new(&sj.model, sj.fit.seed, &ne);
    nn_model *served = nn_model_new(&sj.model, sj.fit.seed, &ne);
    assert_non_null(restored);
    assert_non_null(served);
    nn_trainer *t = nn_trainer_new(restored, &sj.compile, &sj.fit, &ds, NULL, &ne);
    assert_non_null(t);
    if (nn_trainer_restore(t, ck, ck_len, &ne) != NN_OK) fail_msg("restore: %s", ne.message);
    if (nn_model_load_safetensors(served, f.body, f.len, &ne) != NN_OK)
        fail_msg("served weights: %s", ne.message);
    size_t np = nn_model_param_count(restored);
    assert_int_equal(np, nn_model_param_count(served));
    assert_memory_equal(nn_model_params_const(restored), nn_model_params_const(served),
                        np * sizeof(float));

    /* ?format=json: the same values. */
    fetched fj;
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint?format=json", id);
    fetch(path, &fj);
    assert_int_equal(fj.status, 200);
    assert_int_equal(atoi(fj.epoch_header), good);
    json_t *o = json_loadb(fj.body, fj.len, 0, NULL);
    assert_non_null(o);
    const nn_tensor_info *ti = nn_model_tensor(served, 0);
    json_t *rows = json_object_get(json_object_get(o, ti->name), "data");
    assert_int_equal(json_array_size(rows), 64);
    const float *params = nn_model_params_const(served) + ti->offset;
    for (size_t r0 = 0; r0 < 64; r0++)
        assert_true((float)json_number_value(json_array_get(json_array_get(rows, r0), 0)) ==
                    params[r0]);
    json_decref(o);
    free(fj.body);

    nn_trainer_free(t);
    nn_model_free(restored);
    nn_model_free(served);
    spec_job_free(&sj);
    nn_dataset_free(&ds);
    free(ck);
    store_job_free(&j);
    free(f.body);

    /* A bad format, an unknown job. */
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint?format=npz", id);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 400));
    it_resp_free(&r);
    assert_int_equal(it_get(&srv, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa/checkpoint", &r), 0);
    json_decref(assert_problem(&r, 404));
    it_resp_free(&r);
}

/* 409 without a last good checkpoint: a job that diverges in its first epoch, and
 * a succeeded job (whose weights are at /weights). */
static void test_no_last_good_checkpoint(void **state)
{
    (void)state;
    char bad[64], ok[64], path[160];
    upload_digits();
    submit("1e6", 3, bad, sizeof bad);
    submit("1e-4", 2, ok, sizeof ok);
    json_t *job = wait_job(bad, "failed");
    assert_int_equal(failed_epoch(job), 1);
    json_decref(job);
    json_decref(wait_job(ok, "succeeded"));

    it_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint", bad);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_t *p = assert_problem(&r, 409);
    assert_non_null(strstr(json_string_value(json_object_get(p, "detail")), "before it completed"));
    json_decref(p);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", bad);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_decref(assert_problem(&r, 409));
    it_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint?format=json", ok);
    assert_int_equal(it_get(&srv, path, &r), 0);
    p = assert_problem(&r, 409);
    assert_non_null(strstr(json_string_value(json_object_get(p, "detail")), "/weights"));
    json_decref(p);
    it_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", ok);
    assert_int_equal(it_get(&srv, path, &r), 0);
    expect_status(&r, 200);
    it_resp_free(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_diverged_job_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_last_good_checkpoint, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
