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

/* ---------------------------------------------------------------- jobs */

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
    it_submit_job(&srv, spec, id, cap);
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
static json_t *st_header(const it_resp *f, const unsigned char **data, size_t *data_len)
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
    assert_int_equal(it_upload_digits(&srv, digits_id, sizeof digits_id), 0);
    submit("4e-4", 40, id, sizeof id);
    json_t *job = it_wait_job(&srv, id, "failed", 60 * it_slow(), 100);
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
    it_resp f;
    char epoch_header[32]; /* Fitd-Checkpoint-Epoch */
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint", id);
    assert_int_equal(it_get(&srv, path, &f), 0);
    if (f.status != 200) fprintf(stderr, "%.500s\n", f.body ? f.body : "");
    assert_int_equal(f.status, 200);
    assert_string_equal(f.content_type, "application/octet-stream");
    it_header(&f, "Fitd-Checkpoint-Epoch", epoch_header, sizeof epoch_header);
    assert_int_equal(atoi(epoch_header), good);
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
    it_restored rs;
    it_restore_checkpoint(srv.db, id, digits_id, &rs);
    assert_int_equal(rs.epoch, good);
    nn_model *restored = rs.model;
    nn_error ne = {0};
    nn_model *served = nn_model_new(&rs.sj.model, rs.sj.fit.seed, &ne);
    assert_non_null(served);
    if (nn_model_load_safetensors(served, f.body, f.len, &ne) != NN_OK)
        fail_msg("served weights: %s", ne.message);
    size_t np = nn_model_param_count(restored);
    assert_int_equal(np, nn_model_param_count(served));
    assert_memory_equal(nn_model_params_const(restored), nn_model_params_const(served),
                        np * sizeof(float));

    /* ?format=json: the same values. */
    it_resp fj;
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint?format=json", id);
    assert_int_equal(it_get(&srv, path, &fj), 0);
    assert_int_equal(fj.status, 200);
    it_header(&fj, "Fitd-Checkpoint-Epoch", epoch_header, sizeof epoch_header);
    assert_int_equal(atoi(epoch_header), good);
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
    it_resp_free(&fj);

    nn_model_free(served);
    it_restored_free(&rs);
    it_resp_free(&f);

    /* A damaged checkpoint (its last byte cut): 409 saying so, without the epoch
     * header. */
    assert_int_equal(it_db_exec(srv.db,
                                "UPDATE job_checkpoints SET data = substr(data, 1, length(data) - 1) "
                                "WHERE job_id = '%s'",
                                id),
                     1);
    snprintf(path, sizeof path, "/v1/jobs/%s/checkpoint", id);
    assert_int_equal(it_get(&srv, path, &r), 0);
    json_t *damaged = assert_problem(&r, 409);
    assert_non_null(strstr(json_string_value(json_object_get(damaged, "detail")),
                           "checkpoint cannot be used"));
    json_decref(damaged);
    assert_string_equal(it_header(&r, "Fitd-Checkpoint-Epoch", epoch_header, sizeof epoch_header),
                        "");
    it_resp_free(&r);

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
    assert_int_equal(it_upload_digits(&srv, digits_id, sizeof digits_id), 0);
    submit("1e6", 3, bad, sizeof bad);
    submit("1e-4", 2, ok, sizeof ok);
    json_t *job = it_wait_job(&srv, bad, "failed", 60 * it_slow(), 100);
    assert_int_equal(failed_epoch(job), 1);
    json_decref(job);
    json_decref(it_wait_job(&srv, ok, "succeeded", 60 * it_slow(), 100));

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
