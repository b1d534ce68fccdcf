/*
 * api_jobs.c — the /v1/jobs routes: submit, list, read, cancel, delete, metrics,
 * weights, model (the Keras 3 to_json() document, server/keras.h) and predict.
 *
 * Handlers never train (STYLE rule 13): they validate, persist through the calling
 * thread's store connection, signal the pool and reply. A submission is answered
 * 202 only after store_job_insert committed the row. The stored spec is the
 * resolved one (spec_job_to_json: every default written out), so GET shows what
 * will run and the worker parses exactly that.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "config.h"
#include "digest.h"
#include "http.h"
#include "log.h"
#include "nn.h"
#include "jobmem.h"
#include "keras.h"
#include "pool.h"
#include "record.h"
#include "spec.h"
#include "store.h"
#include "warmstart.h"

/* Rows one predict call may ask for. */
#define API_PREDICT_MAX_ROWS 10000

static const char *const json_types[] = {"application/json", NULL};

/* ---------------------------------------------------------------- helpers */

/* A failed store call: a 404 names `what`; every other status (a 409 with the
 * store's reason) is http_reply_store_error's, the one mapping of store results
 * to statuses. */
static void reply_store_error(http_req *req, store *st, store_rc rc, const char *what)
{
    if (rc == STORE_NOT_FOUND) http_reply_problem(req, 404, "%s not found", what);
    else http_reply_store_error(req, st, (int)rc);
}

/* Does a resource of `tenant` belong to the caller? (A resource's tenant never
 * changes, so checking before acting leaves no window.) */
static int own_tenant(http_req *req, const char *tenant)
{
    return strcmp(tenant, http_req_tenant(req)) == 0;
}

static const srv_config *app_config(http_req *req)
{
    const api_ctx *ctx = http_req_app(req);
    return ctx ? ctx->cfg : NULL;
}

static pool *app_pool(http_req *req)
{
    const api_ctx *ctx = http_req_app(req);
    return ctx ? ctx->pool : NULL;
}

static spec_limits limits_for(http_req *req)
{
    spec_limits l = spec_limits_default();
    const srv_config *cfg = app_config(req);
    if (cfg) {
        if (cfg->max_layers > 0) l.max_layers = cfg->max_layers;
        if (cfg->max_units > 0) l.max_units = cfg->max_units;
        if (cfg->max_params > 0) l.max_params = (size_t)cfg->max_params;
        if (cfg->max_epochs > 0) l.max_epochs = cfg->max_epochs;
        if (cfg->max_batch_size > 0) l.max_batch_size = cfg->max_batch_size;
        if (cfg->max_input_dim > 0) l.max_input_dim = cfg->max_input_dim;
    }
    return l;
}

/* A string, or null for NULL or "" (not yet set). */
static void json_str_or_null(buf *b, const char *s)
{
    buf_json_str(b, s && s[0] ? s : NULL);
}

/* The job resource as JSON text, appended to b. Written directly, not through
 * Jansson: this is the body of every poll (issue 3). The stored documents (last
 * metrics, test metrics, the resolved spec) are spliced in as stored: fitd wrote
 * them as JSON, and parsing and re-printing them was most of the cost of a poll. */
static void job_resource(buf *b, pool *workers, const store_job *j)
{
    pool_progress live;
    int epoch = j->epoch, epochs = j->epochs, batch = j->batch, batches = j->batches;
    if (j->status == STORE_JOB_RUNNING && pool_progress_get(workers, j->id, &live)) {
        if (live.epoch > 0) epoch = live.epoch;
        if (live.epochs > 0) epochs = live.epochs;
        batch = live.batch;
        if (live.batches > 0) batches = live.batches;
    }
    BUF_LIT(b, "{\"id\":");
    buf_json_str(b, j->id);
    BUF_LIT(b, ",\"name\":");
    json_str_or_null(b, j->name);
    BUF_LIT(b, ",\"status\":");
    buf_json_str(b, store_job_status_name(j->status));
    buf_printf(b, ",\"progress\":{\"epoch\":%d,\"epochs\":%d,\"batch\":%d,\"batches\":%d}", epoch,
               epochs, batch, batches);
    BUF_LIT(b, ",\"data\":{\"train\":");
    json_str_or_null(b, j->train_dataset_id);
    BUF_LIT(b, ",\"validation\":");
    json_str_or_null(b, j->validation_dataset_id);
    BUF_LIT(b, ",\"test\":");
    json_str_or_null(b, j->test_dataset_id);
    if (j->best_epoch > 0)
        buf_printf(b, "},\"best_epoch\":%d", j->best_epoch);
    else
        BUF_LIT(b, "},\"best_epoch\":null");
    BUF_LIT(b, ",\"error\":");
    json_str_or_null(b, j->error);
    buf_printf(b, ",\"attempts\":%d", j->attempts);
    const char *keys[] = {"created_at", "started_at", "finished_at", "updated_at", "sweep_id"};
    const char *vals[] = {j->created_at, j->started_at, j->finished_at, j->updated_at, j->sweep_id};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        BUF_LIT(b, ",\"");
        buf_str(b, keys[k]);
        BUF_LIT(b, "\":");
        json_str_or_null(b, vals[k]);
    }
    const char *docs[] = {"metrics", "test_metrics", "spec"};
    const char *texts[] = {j->last_metrics_json, j->test_metrics_json, j->spec_json};
    for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++) {
        /* Spliced as stored (fitd wrote them as JSON); plain appends, since a
         * printf of a spec this long would format it twice. */
        BUF_LIT(b, ",\"");
        buf_str(b, docs[k]);
        BUF_LIT(b, "\":");
        buf_str(b, texts[k] && texts[k][0] ? texts[k] : "null");
    }
    BUF_LIT(b, "}");
}

/* Reply with a built JSON text (the buffer passes to the reply). */
static void reply_buf(http_req *req, unsigned status, buf *b)
{
    buf_str(b, "\n");
    if (b->failed) {
        free(b->data);
        http_reply_nomem(req);
        return;
    }
    http_reply_bytes(req, status, "application/json", b->data, b->len);
}

static void reply_job(http_req *req, unsigned status, const store_job *j)
{
    buf b = {0};
    job_resource(&b, app_pool(req), j);
    reply_buf(req, status, &b);
}

/* The index in the "layers" array of the last dense layer (the output layer). */
static int output_layer_index(const nn_model_spec *m)
{
    for (int i = m->n_layers - 1; i >= 0; i--)
        if (m->layers[i].kind == NN_LAYER_DENSE) return i;
    return -1;
}

/* Check one dataset against the parsed spec; append problems to `errors`. *bytes
 * receives its size when it exists (for check_job_memory, without a second read).
 * Returns -1 on a store failure (after replying), else 0. */
static int check_dataset(http_req *req, store *st, const spec_job *job, const char *role,
                         const char *id, json_t *errors, double *bytes)
{
    store_dataset_meta meta;
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/data/%s", role);
    store_rc rc = store_dataset_get(st, id, &meta);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && !own_tenant(req, meta.tenant))) {
        http_problem_add(errors, ptr, "dataset %s does not exist", id);
        return 0;
    }
    if (rc != STORE_OK) {
        reply_store_error(req, st, rc, "dataset");
        return -1;
    }
    *bytes = (double)meta.bytes;
    if (strcmp(role, "train") == 0 && !job->validation[0] && job->fit.validation_split > 0) {
        size_t n = (size_t)meta.n_samples, at = nn_validation_split_at(n, job->fit.validation_split);
        if (at == 0 || at == n)
            http_problem_add(errors, "/fit/validation_split",
                             "validation_split %g of dataset %s's %zu samples leaves an empty %s "
                             "set",
                             job->fit.validation_split, id, n, at == 0 ? "training" : "validation");
    }
    if (meta.x_width != job->model.input_dim)
        http_problem_add(errors, "/model/input_shape",
                         "input_shape [%d] does not match dataset %s (data.%s), which has %d "
                         "features per sample",
                         job->model.input_dim, id, role, meta.x_width);
    int out = output_layer_index(&job->model);
    if (out < 0) return 0;
    int units = job->model.layers[out].units;
    char uptr[64];
    snprintf(uptr, sizeof uptr, "/model/layers/%d/units", out);
    /* Not with the sparse loss: its own check below asks for labels already. */
    if (job->compile.loss.kind != NN_LOSS_SPARSE_CATEGORICAL_CE && meta.y_width != 1) {
        for (int k = 0; k < job->compile.n_metrics; k++) {
            if (nn_metric_resolve(job->compile.metrics[k], &job->compile.loss, units) !=
                NN_METRIC_SPARSE_CATEGORICAL_ACCURACY)
                continue;
            char mptr[48];
            snprintf(mptr, sizeof mptr, "/compile/metrics/%d", k);
            http_problem_add(errors, mptr,
                             "sparse_categorical_accuracy needs one label per sample; dataset "
                             "%s (data.%s) has %d targets per sample",
                             id, role, meta.y_width);
        }
    }
    switch (job->compile.loss.kind) {
    case NN_LOSS_SPARSE_CATEGORICAL_CE:
        if (meta.y_width != 1 || !meta.y_integer)
            http_problem_add(errors, ptr,
                             "sparse_categorical_crossentropy needs one integer label per "
                             "sample; dataset %s has %s targets",
                             id, meta.y_width != 1 ? "several" : "non-integer");
        else if (meta.n_classes > units)
            http_problem_add(errors, uptr,
                             "the output layer has %d units but dataset %s (data.%s) has labels "
                             "up to %d",
                             units, id, role, meta.n_classes - 1);
        break;
    case NN_LOSS_BINARY_CE:
        if (meta.y_width != units)
            http_problem_add(errors, uptr,
                             "the output layer has %d units but dataset %s (data.%s) has %d "
                             "targets per sample",
                             units, id, role, meta.y_width);
        else if (meta.y_min < 0 || meta.y_max > 1) /* false when unknown (NaN) */
            http_problem_add(errors, ptr,
                             "binary_crossentropy needs targets in [0, 1]; dataset %s has "
                             "targets from %.9g to %.9g",
                             id, meta.y_min, meta.y_max);
        else if (meta.y_integer && meta.n_classes > 2) /* a dataset stored before 0005 */
            http_problem_add(errors, ptr,
                             "binary_crossentropy needs 0/1 targets; dataset %s has labels up "
                             "to %d",
                             id, meta.n_classes - 1);
        break;
    default:
        if (meta.y_width != units)
            http_problem_add(errors, uptr,
                             "the output layer has %d units but dataset %s (data.%s) has %d "
                             "targets per sample",
                             units, id, role, meta.y_width);
        break;
    }
    return 0;
}

/* When the spec did not parse, still say which named datasets do not exist. */
static int check_raw_datasets(http_req *req, store *st, const json_t *root, json_t *errors)
{
    static const char *const roles[] = {"train", "validation", "test"};
    const json_t *data = json_is_object(root) ? json_object_get(root, "data") : NULL;
    if (!json_is_object(data)) return 0;
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(data, roles[i]);
        if (!json_is_string(v)) continue;
        store_dataset_meta meta;
        const char *id = json_string_value(v);
        store_rc rc = store_dataset_get(st, id, &meta);
        if (rc == STORE_NOT_FOUND || (rc == STORE_OK && !own_tenant(req, meta.tenant))) {
            char ptr[64];
            snprintf(ptr, sizeof ptr, "/data/%s", roles[i]);
            http_problem_add(errors, ptr, "dataset %s does not exist", id);
        } else if (rc != STORE_OK && rc != STORE_INVALID) {
            reply_store_error(req, st, rc, "dataset");
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- POST /v1/jobs */

/* --max-job-memory: estimate what training will take (server/jobmem.h) and add a
 * problem naming the figure when it is over. bytes[] are the sizes of the train,
 * validation and test datasets (check_dataset); a dataset named twice is loaded
 * once. The pointer is /fit/batch_size when the activations at that batch size
 * are the larger part, else /model. */
static void check_job_memory(http_req *req, const spec_job *job, const double bytes[3],
                             json_t *errors)
{
    const srv_config *cfg = app_config(req);
    if (!cfg || cfg->max_job_memory == 0) return;
    const char *ids[3] = {job->train, job->validation, job->test};
    double data = 0;
    for (int i = 0; i < 3; i++) {
        if (!ids[i][0] || (i > 0 && strcmp(ids[i], ids[0]) == 0) ||
            (i == 2 && strcmp(ids[2], ids[1]) == 0))
            continue; /* a dataset is loaded once */
        data += bytes[i];
    }
    jobmem_estimate e = jobmem_estimate_job(job, data);
    const double mib = 1024.0 * 1024.0;
    if (e.total_bytes <= (double)cfg->max_job_memory) return;
    http_problem_add(errors, e.act_bytes > e.state_bytes + e.data_bytes ? "/fit/batch_size" : "/model",
                     "training this job needs an estimated %.1f MiB of memory (weights, "
                     "gradients and %d optimizer slots for %.0f parameters: %.1f MiB; activations "
                     "at batch size %d: %.1f MiB; datasets: %.1f MiB), over the limit of %.1f MiB "
                     "(--max-job-memory)",
                     e.total_bytes / mib, e.slots, e.params, e.state_bytes / mib,
                     job->fit.batch_size, e.act_bytes / mib, e.data_bytes / mib,
                     (double)cfg->max_job_memory / mib);
}

/* The one validation of a job spec, shared by POST /v1/jobs and POST /v1/sweeps
 * (api.h). */
int api_job_prepare(http_req *req, store *st, const json_t *root, json_t *errors,
                    api_job_draft *d)
{
    json_t *resolved = NULL;
    spec_problems *probs = NULL;
    size_t n_before = json_array_size(errors);
    double bytes[3] = {0}; /* train, validation, test dataset sizes */
    int ret = -1;
    memset(d, 0, sizeof *d);

    probs = calloc(1, sizeof *probs);
    if (!probs) {
        http_reply_nomem(req);
        goto out;
    }
    spec_limits lim = limits_for(req);
    int prc = spec_job_parse(root, &lim, 0, &d->job, probs);
    if (prc == SPEC_NOMEM) {
        http_reply_nomem(req);
        goto out;
    }
    for (int i = 0; i < probs->n; i++)
        http_problem_add(errors, probs->items[i].pointer, "%s", probs->items[i].message);
    if (prc == SPEC_OK) {
        if (check_dataset(req, st, &d->job, "train", d->job.train, errors, &bytes[0]) ||
            (d->job.validation[0] && check_dataset(req, st, &d->job, "validation",
                                                   d->job.validation, errors, &bytes[1])) ||
            (d->job.test[0] &&
             check_dataset(req, st, &d->job, "test", d->job.test, errors, &bytes[2])) ||
            warmstart_check(req, st, &d->job, errors))
            goto out;
    } else if (check_raw_datasets(req, st, root, errors)) {
        goto out;
    }
    if (json_array_size(errors) == n_before) check_job_memory(req, &d->job, bytes, errors);
    if (json_array_size(errors) > n_before) {
        ret = 1;
        goto out;
    }

    resolved = spec_job_to_json(&d->job);
    d->spec_text = resolved ? json_dumps(resolved, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!d->spec_text) {
        http_reply_nomem(req);
        goto out;
    }
    ret = 0;
out:
    if (ret != 0) api_job_draft_free(d);
    json_decref(resolved);
    free(probs);
    return ret;
}

void api_job_draft_free(api_job_draft *d)
{
    if (!d) return;
    spec_job_free(&d->job);
    free(d->spec_text);
    memset(d, 0, sizeof *d);
}

store_job_new api_job_draft_row(http_req *req, const api_job_draft *d)
{
    const srv_config *cfg = app_config(req);
    store_job_new in = {
        .tenant = http_req_tenant(req),
        .name = d->job.name[0] ? d->job.name : NULL,
        .spec_json = d->spec_text,
        .train_dataset_id = d->job.train,
        .validation_dataset_id = d->job.validation,
        .test_dataset_id = d->job.test,
        .epochs = d->job.fit.epochs,
        .max_queued = cfg ? cfg->max_queued : 0,
    };
    return in;
}

/* The insert found a dataset or the init source gone (deleted since the checks):
 * the same checks again name it at its pointer, as if it had gone before. */
static void reply_vanished(http_req *req, store *st, const json_t *root)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", store_errmsg(st));
    api_job_draft again = {0};
    json_t *e = json_array();
    if (!e) {
        http_reply_nomem(req);
        return;
    }
    int vrc = api_job_prepare(req, st, root, e, &again);
    api_job_draft_free(&again);
    if (vrc < 0) { /* replied */
        json_decref(e);
        return;
    }
    if (vrc == 0) http_problem_add(e, "", "%s", msg);
    http_reply_problem_errors(req, 422, "the job spec is invalid", e);
}

static void handle_submit(http_req *req)
{
    json_t *root = NULL, *errors = NULL;
    api_job_draft draft = {0};
    store_job row = {0};
    size_t body_len = 0;
    const char *body = NULL;
    store *st = http_store(req);
    if (!st) return;

    root = http_req_json(req);
    if (!root) goto out; /* replied 400 */
    body = http_req_body(req, &body_len);

    errors = json_array();
    if (!errors) {
        http_reply_nomem(req);
        goto out;
    }
    int vrc = api_job_prepare(req, st, root, errors, &draft);
    if (vrc < 0) goto out; /* replied */
    if (vrc > 0) {
        http_reply_problem_errors(req, 422, "the job spec is invalid", errors);
        errors = NULL;
        goto out;
    }
    const char *key = http_req_header(req, "Idempotency-Key");
    char hash[65] = "";
    if (key) {
        if (!key[0] || strlen(key) > 255) {
            json_t *e = json_array();
            http_problem_add(e, "", "Idempotency-Key must be 1 to 255 characters");
            http_reply_problem_errors(req, 400, "bad Idempotency-Key header", e);
            goto out;
        }
        digest_sha256_hex(body ? body : "", body_len, hash);
    }
    store_job_new in = api_job_draft_row(req, &draft);
    in.idempotency_key = key;
    in.body_hash = key ? hash : NULL;
    int created = 0;
    store_rc rc = store_job_insert(st, &in, &row, &created);
    if (rc == STORE_CONFLICT) {
        http_reply_problem(req, 409,
                           "Idempotency-Key %s was already used with a different request body",
                           key ? key : "");
        goto out;
    }
    if (rc == STORE_NOT_FOUND) { /* a dataset or the init source went since we checked */
        reply_vanished(req, st, root);
        goto out;
    }
    if (rc != STORE_OK) {
        reply_store_error(req, st, rc, "job");
        goto out;
    }
    if (created) {
        pool_notify(app_pool(req));
        LOG(LOG_INFO, "job queued", "\"request_id\":\"%s\",\"job_id\":\"%s\"", http_req_id(req),
            row.id);
    } else {
        http_reply_header(req, "Idempotent-Replayed", "true");
    }
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", row.id);
    http_reply_header(req, "Location", location);
    reply_job(req, 202, &row);
out:
    store_job_free(&row);
    api_job_draft_free(&draft);
    json_decref(errors);
    json_decref(root);
}

/* ---------------------------------------------------------------- GET /v1/jobs */

static void handle_list(http_req *req)
{
    store_job *jobs = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX] = "";
    store_list_query page;
    store *st = http_store(req);
    if (!st || api_list_query(req, &page)) return;

    store_job_query q = {.tenant = page.tenant, .limit = page.limit, .cursor = page.cursor};
    const char *status = http_req_query(req, "status");
    if (status) {
        q.status = store_job_status_from_name(status);
        if (q.status == STORE_JOB_STATUS_COUNT) {
            json_t *e = json_array();
            http_problem_add(e, "/status",
                             "status must be one of queued, running, succeeded, failed, "
                             "cancelled");
            http_reply_problem_errors(req, 400, "bad query parameter: status", e);
            return;
        }
        q.has_status = 1;
    }
    store_rc rc = store_job_list(st, &q, &jobs, &n, next);
    if (rc != STORE_OK) {
        api_reply_list_error(req, st, rc, "jobs");
        return;
    }
    /* Written directly like each job (the list is polled too). */
    buf b = {0};
    BUF_LIT(&b, "{\"items\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) BUF_LIT(&b, ",");
        job_resource(&b, app_pool(req), &jobs[i]);
    }
    store_job_list_free(jobs, n);
    BUF_LIT(&b, "],\"next_cursor\":");
    buf_json_str(&b, next[0] ? next : NULL);
    BUF_LIT(&b, "}");
    reply_buf(req, 200, &b);
}

/* ---------------------------------------------------------------- one job */

/* Load the job named by {id}; replies and returns -1 when it cannot. */
int api_job_load(http_req *req, store *st, store_job *out)
{
    const char *id = http_req_param(req, "id");
    store_rc rc = store_job_get(st, id ? id : "", out);
    /* Another tenant's job answers exactly as a missing one. */
    if (rc == STORE_OK && !own_tenant(req, out->tenant)) {
        store_job_free(out);
        rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_NOT_FOUND || rc == STORE_INVALID) {
        http_reply_problem(req, 404, "job %s not found", id ? id : "");
        return -1;
    }
    if (rc != STORE_OK) {
        reply_store_error(req, st, rc, "job");
        return -1;
    }
    return 0;
}

/* GET answers with an ETag: a strong hash of the very body it sends, so it
 * changes with anything in the resource (live progress included) and costs one
 * fast hash over a few KiB on top of the rendering, no extra column or query.
 * A matching If-None-Match gets 304 without the body. */
static void handle_get(http_req *req)
{
    store_job j = {0};
    buf b = {0};
    char etag[DIGEST_ETAG];
    store *st = http_store(req);
    if (!st) return;
    if (api_job_load(req, st, &j) != 0) goto out;
    job_resource(&b, app_pool(req), &j);
    if (b.failed) {
        reply_buf(req, 200, &b); /* replies 503 and frees */
        b.data = NULL;
        goto out;
    }
    digest_etag(b.data, b.len, etag);
    if (http_reply_header(req, "ETag", etag) != 0) {
        http_reply_nomem(req);
        goto out;
    }
    if (http_req_etag_matches(req, etag)) {
        http_reply_empty(req, 304);
        goto out;
    }
    reply_buf(req, 200, &b);
    b.data = NULL; /* owned by the reply */
out:
    free(b.data);
    store_job_free(&j);
}

static void handle_cancel(http_req *req)
{
    store_job j = {0};
    store_job_status after = STORE_JOB_STATUS_COUNT;
    const char *id = http_req_param(req, "id");
    store *st = http_store(req);
    if (!st) return;
    if (api_job_load(req, st, &j)) return; /* 404 unless it exists and is ours */
    store_job_free(&j);
    store_rc rc = store_job_cancel(st, id ? id : "", &after);
    if (rc == STORE_NOT_FOUND || rc == STORE_INVALID) {
        http_reply_problem(req, 404, "job %s not found", id ? id : "");
        return;
    }
    if (rc == STORE_CONFLICT) {
        http_reply_problem(req, 409, "job %s has already finished", id);
        return;
    }
    if (rc != STORE_OK) {
        reply_store_error(req, st, rc, "job");
        return;
    }
    if (after == STORE_JOB_RUNNING) pool_cancel(app_pool(req), id);
    LOG(LOG_INFO, "job cancel requested", "\"request_id\":\"%s\",\"job_id\":\"%s\",\"status\":\"%s\"",
        http_req_id(req), id, store_job_status_name(after));
    if (api_job_load(req, st, &j) == 0) reply_job(req, 202, &j);
    store_job_free(&j);
}

static void handle_delete(http_req *req)
{
    const char *id = http_req_param(req, "id");
    store *st = http_store(req);
    if (!st) return;
    store_job j = {0};
    if (api_job_load(req, st, &j)) return; /* 404 unless it exists and is ours */
    store_job_free(&j);
    store_rc rc = store_job_delete(st, id ? id : "");
    if (rc == STORE_NOT_FOUND || rc == STORE_INVALID) {
        http_reply_problem(req, 404, "job %s not found", id ? id : "");
        return;
    }
    if (rc != STORE_OK) { /* 409: unfinished, or a queued or running job starts from it */
        reply_store_error(req, st, rc, "job");
        return;
    }
    http_reply_empty(req, 204);
}

/* ---------------------------------------------------------------- metrics */

/* JSON: the stored record texts joined into one array, without re-parsing. */
static int metrics_json_row(void *user, int epoch, const char *text, size_t len)
{
    buf *b = user;
    buf_str(b, b->len > 1 ? "," : "");
    buf_add(b, text, len);
    return b->failed;
}

typedef struct csv_state {
    json_t *records; /* array of parsed records */
    int failed;
} csv_state;

static int metrics_csv_row(void *user, int epoch, const char *text, size_t len)
{
    csv_state *c = user;
    json_t *r = json_loadb(text, len, 0, NULL);
    if (!r || json_array_append_new(c->records, r)) c->failed = 1;
    return c->failed;
}

/* CSV: a header row with every key seen in `keys` (records; first-seen order),
 * then one row per record; a missing or null value is an empty field. */
static int metrics_csv(const json_t *records, const json_t *keys, buf *b)
{
    json_t *cols = json_array();
    size_t i, k;
    json_t *rec;
    if (!cols) return -1;
    json_array_foreach(keys, i, rec) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)rec, key, v) {
            int seen = 0;
            json_t *c;
            json_array_foreach(cols, k, c) if (strcmp(json_string_value(c), key) == 0) seen = 1;
            if (!seen) json_array_append_new(cols, json_string(key));
        }
    }
    json_t *c;
    json_array_foreach(cols, k, c) {
        if (k) buf_str(b, ",");
        buf_str(b, json_string_value(c));
    }
    buf_str(b, "\n");
    json_array_foreach(records, i, rec) {
        json_array_foreach(cols, k, c) {
            char num[64] = "";
            json_t *v = json_object_get(rec, json_string_value(c));
            if (json_is_integer(v))
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            else if (json_is_real(v))
                snprintf(num, sizeof num, "%.9g", json_real_value(v));
            if (k) buf_str(b, ",");
            buf_str(b, num);
        }
        buf_str(b, "\n");
    }
    json_decref(cols);
    return b->failed ? -1 : 0;
}

/* The q of media range `type` in an Accept header (RFC 9110 12.5.1; 1 when it has
 * no q parameter), or -1 when the header does not list it. */
static double accept_q(const char *accept, const char *type)
{
    size_t tl = strlen(type);
    for (const char *p = accept; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        size_t len = strcspn(p, ","), n = strcspn(p, ";,");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n == tl && strncasecmp(p, type, tl) == 0) {
            double q = 1;
            for (const char *s = p + n; s < p + len; s++) {
                if (*s != ';') continue;
                while (*++s == ' ' || *s == '\t') {
                }
                if ((*s == 'q' || *s == 'Q') && s[1] == '=') q = strtod(s + 2, NULL);
            }
            return q;
        }
        p += len;
    }
    return -1;
}

/* CSV when the client lists text/csv with a q above 0 and no lower than JSON's. */
static int accepts_csv(http_req *req)
{
    const char *accept = http_req_header(req, "Accept");
    if (!accept) return 0;
    double csv = accept_q(accept, "text/csv");
    return csv > 0 && csv >= accept_q(accept, "application/json");
}

/* Parse the job's stored spec (spec_job_parse_stored). On failure, replies (503
 * out of memory, 500 a row that cannot be read) and returns -1. */
static int load_stored_spec(http_req *req, const store_job *j, spec_job *out)
{
    int rc = spec_job_parse_stored(j->spec_json, out, NULL);
    if (rc == SPEC_OK) return 0;
    if (rc == SPEC_NOMEM)
        http_reply_nomem(req);
    else
        http_reply_problem(req, 500, "the stored spec of job %s cannot be read", j->id);
    return -1;
}

/* [a record with every key a job's epoch records will have, values null], for
 * the CSV header of a job without epochs; NULL after replying when it cannot. */
static json_t *record_keys_of(http_req *req, const store_job *j)
{
    spec_job spec = {0};
    if (load_stored_spec(req, j, &spec)) {
        spec_job_free(&spec);
        return NULL;
    }
    nn_epoch_record rec = {.loss = NAN, .val_loss = NAN, .regularization_loss = NAN,
                           .learning_rate = NAN, .seconds = NAN};
    rec.n_metrics = record_compiled_names(&spec.compile, rec.metric_names);
    for (int k = 0; k < rec.n_metrics; k++) rec.metrics[k] = rec.val_metrics[k] = NAN;
    rec.has_val = spec.validation[0] || spec.fit.validation_split > 0;
    json_t *o = record_epoch_json(&rec);
    spec_job_free(&spec);
    json_t *keys = o ? json_pack("[o]", o) : NULL;
    if (!keys) http_reply_nomem(req);
    return keys;
}

static void handle_metrics(http_req *req)
{
    buf b = {0};
    csv_state c = {0};
    const char *id = http_req_param(req, "id");
    store *st = http_store(req);
    if (!st) return;
    store_job j = {0};
    json_t *keys = NULL;
    if (api_job_load(req, st, &j)) return; /* 404 unless it exists and is ours */
    int csv = accepts_csv(req);
    store_rc rc;
    if (csv) {
        c.records = json_array();
        if (!c.records) {
            http_reply_nomem(req);
            goto out;
        }
        rc = store_job_metrics(st, id ? id : "", 0, metrics_csv_row, &c);
    } else {
        buf_str(&b, "[");
        rc = store_job_metrics(st, id ? id : "", 0, metrics_json_row, &b);
    }
    if (rc == STORE_NOT_FOUND || rc == STORE_INVALID) {
        http_reply_problem(req, 404, "job %s not found", id ? id : "");
        goto out;
    }
    if (c.failed || b.failed) {
        http_reply_nomem(req);
        goto out;
    }
    if (rc != STORE_OK) {
        reply_store_error(req, st, rc, "job");
        goto out;
    }
    if (csv) {
        /* No epoch yet: the header still comes, with the keys the spec will record. */
        keys = json_array_size(c.records) ? json_incref(c.records) : record_keys_of(req, &j);
        if (!keys) goto out; /* replied */
        if (metrics_csv(c.records, keys, &b) || !b.data) {
            http_reply_nomem(req);
            goto out;
        }
        http_reply_bytes(req, 200, "text/csv; charset=utf-8", b.data, b.len);
    } else {
        buf_str(&b, "]");
        if (b.failed) {
            http_reply_nomem(req);
            goto out;
        }
        http_reply_bytes(req, 200, "application/json", b.data, b.len);
    }
    b.data = NULL; /* owned by the reply now */
out:
    free(b.data);
    json_decref(c.records);
    json_decref(keys);
    store_job_free(&j);
}

/* Shared with the other resources (api.h). */
int api_accepts_csv(http_req *req)
{
    return accepts_csv(req);
}

void api_reply_store_error(http_req *req, store *st, store_rc rc, const char *what)
{
    reply_store_error(req, st, rc, what);
}

int api_list_query(http_req *req, store_list_query *q)
{
    int limit = 0;
    const char *cursor = NULL;
    if (http_req_page(req, STORE_LIST_DEFAULT, STORE_LIST_MAX, &limit, &cursor)) return -1;
    *q = (store_list_query){.tenant = http_req_tenant(req), .limit = limit, .cursor = cursor};
    return 0;
}

void api_reply_list_error(http_req *req, store *st, store_rc rc, const char *what)
{
    if (rc != STORE_INVALID) {
        reply_store_error(req, st, rc, what);
        return;
    }
    /* The only bad argument a list call can get is a cursor it did not issue. */
    json_t *e = json_array();
    if (e) http_problem_add(e, "/cursor", "not a cursor from a previous page of this list");
    http_reply_problem_errors(req, 400, "invalid query parameter cursor", e);
}

void api_reply_list(http_req *req, json_t *items, const char *next)
{
    json_t *o = items ? json_pack("{s:o, s:o}", "items", items, "next_cursor",
                                  next[0] ? json_string(next) : json_null())
                      : NULL;
    http_reply_json(req, 200, o); /* NULL: 503 out of memory */
}

/* ---------------------------------------------------------------- weights, predict */

/* Which weights a route serves: a succeeded job's final weights, stored when it
 * finished (/weights, predict, "init"), or a failed job's last good ones, read
 * from the checkpoint it keeps (/checkpoint): the state after the last epoch it
 * committed (or the batch a graceful stop saved) before it failed. */
typedef enum weights_kind { WEIGHTS_FINAL, WEIGHTS_LAST_GOOD } weights_kind;

/* 0 when the job has weights of that kind; otherwise replies 409 saying where to
 * look instead and returns -1. */
static int weights_available(http_req *req, const store_job *j, weights_kind kind)
{
    const char *status = store_job_status_name(j->status);
    if (kind == WEIGHTS_FINAL) {
        if (j->status == STORE_JOB_SUCCEEDED && j->has_weights) return 0;
        if (j->status == STORE_JOB_FAILED && j->has_checkpoint)
            http_reply_problem(req, 409,
                               "job %s failed and has no final weights; those of its last good "
                               "checkpoint (epoch %d) are at /v1/jobs/%s/checkpoint",
                               j->id, j->checkpoint_epoch, j->id);
        else
            http_reply_problem(req, 409, "job %s has no weights (status %s)", j->id, status);
        return -1;
    }
    if (j->status == STORE_JOB_FAILED && j->has_checkpoint) return 0;
    if (j->status == STORE_JOB_FAILED)
        http_reply_problem(req, 409, "job %s failed before it completed an epoch: it has no "
                                     "good checkpoint", j->id);
    else if (j->status == STORE_JOB_SUCCEEDED)
        http_reply_problem(req, 409, "job %s succeeded: its weights are at /v1/jobs/%s/weights",
                           j->id, j->id);
    else
        http_reply_problem(req, 409, "job %s is %s: the weights of a last good checkpoint are "
                                     "served when a job fails", j->id, status);
    return -1;
}

/* After a failed read of the job's stored weights or checkpoint: the reply. */
static void reply_blob_error(http_req *req, store *st, const store_job *j, weights_kind kind,
                             store_rc rc)
{
    if (rc == STORE_NOT_FOUND) /* deleted or pruned since the job was read */
        http_reply_problem(req, 409, "job %s has no weights (status %s)", j->id,
                           store_job_status_name(j->status));
    else
        reply_store_error(req, st, rc, kind == WEIGHTS_FINAL ? "weights" : "checkpoint");
}

/* The stored safetensors of a succeeded job's final weights. Replies and returns
 * -1 when there are none or the store fails. */
static int load_final_weights(http_req *req, store *st, const store_job *j, void **blob,
                              size_t *len)
{
    if (weights_available(req, j, WEIGHTS_FINAL)) return -1;
    store_rc rc = store_job_weights_load(st, j->id, blob, len);
    if (rc == STORE_OK) return 0;
    reply_blob_error(req, st, j, WEIGHTS_FINAL, rc);
    return -1;
}

/* A checkpoint's weights restored into a model in place, as
 * store_job_checkpoint_read hands the stored bytes over. */
typedef struct ckpt_restore {
    nn_model *m;
    int epoch, batch;
    nn_status status;
    nn_error err;
} ckpt_restore;

static void restore_use(void *user, nn_read_at_fn read, void *src, size_t len)
{
    ckpt_restore *c = user;
    c->status = nn_model_restore_checkpoint_at(c->m, read, src, len, &c->epoch, &c->batch, &c->err);
}

/* Why a model with the job's weights could not be made: out of memory, a
 * checkpoint the job itself left unusable (409), or stored weights that do not
 * read (500). */
static void reply_load_error(http_req *req, const store_job *j, weights_kind kind,
                             const nn_error *err)
{
    if (err->code == NN_ERR_NOMEM)
        http_reply_nomem(req);
    else if (kind == WEIGHTS_LAST_GOOD) /* a job can fail because of it: its own state */
        http_reply_problem(req, 409, "job %s failed and its checkpoint cannot be used: %s", j->id,
                           err->message);
    else
        http_reply_problem(req, 500, "the stored weights of job %s cannot be read: %s", j->id,
                           err->message);
}

/* Build the job's model from its stored spec and load the weights of that kind
 * into it (*epoch and *batch: the checkpoint's, for WEIGHTS_LAST_GOOD, read in
 * place: a checkpoint with Adam's slots and best weights is about 4x the weights).
 * Replies and returns NULL on failure. *spec_out receives the parsed spec (free it). */
static nn_model *load_trained_model(http_req *req, store *st, const store_job *j,
                                    weights_kind kind, spec_job *spec_out, int *epoch, int *batch)
{
    nn_error err = {0};
    void *blob = NULL;
    size_t len = 0;
    if (weights_available(req, j, kind)) return NULL;
    if (load_stored_spec(req, j, spec_out)) return NULL;
    nn_model *m = nn_model_new(&spec_out->model, spec_out->fit.seed, &err);
    if (!m) {
        reply_load_error(req, j, kind, &err);
        return NULL;
    }
    ckpt_restore c = {.m = m, .status = NN_OK};
    store_rc rc = kind == WEIGHTS_FINAL ? store_job_weights_load(st, j->id, &blob, &len)
                                        : store_job_checkpoint_read(st, j->id, restore_use, &c);
    if (rc != STORE_OK) {
        reply_blob_error(req, st, j, kind, rc);
        nn_model_free(m);
        return NULL;
    }
    if (kind == WEIGHTS_FINAL) {
        c.status = nn_model_load_safetensors(m, blob, len, &c.err);
        free(blob);
    }
    if (c.status == NN_OK) {
        if (epoch) *epoch = c.epoch;
        if (batch) *batch = c.batch;
        return m;
    }
    nn_model_free(m);
    reply_load_error(req, j, kind, &c.err);
    return NULL;
}

/* {"<layer>/kernel": {"shape": [in, out], "data": [[...], ...]}, "<layer>/bias":
 * {"shape": [out], "data": [...]}, ...}, as text: a model of the parameter limit
 * has tens of millions of numbers. */
static void weights_json(buf *b, const nn_model *m)
{
    const float *params = nn_model_params_const(m);
    BUF_LIT(b, "{");
    for (int t = 0; t < nn_model_tensor_count(m) && !b->failed; t++) {
        const nn_tensor_info *ti = nn_model_tensor(m, t);
        const float *w = params + ti->offset;
        if (t) BUF_LIT(b, ",");
        buf_json_str(b, ti->name);
        BUF_LIT(b, ":{\"shape\":[");
        for (int d = 0; d < ti->ndim; d++) buf_printf(b, d ? ",%lld" : "%lld", (long long)ti->shape[d]);
        BUF_LIT(b, "],\"data\":");
        if (ti->ndim == 2) {
            BUF_LIT(b, "[");
            for (int64_t r = 0; r < ti->shape[0]; r++) {
                if (r) BUF_LIT(b, ",");
                buf_json_floats(b, w + r * ti->shape[1], (size_t)ti->shape[1]);
            }
            BUF_LIT(b, "]");
        } else {
            buf_json_floats(b, w, ti->count);
        }
        BUF_LIT(b, "}");
    }
    BUF_LIT(b, "}");
}

/* GET /v1/jobs/{id}/weights and /checkpoint: safetensors (default) or JSON. A
 * succeeded job's safetensors are sent as stored; the rest is built from a model
 * holding the weights. */
static void reply_weights(http_req *req, weights_kind kind)
{
    store_job j = {0};
    spec_job spec = {0};
    void *w = NULL;
    size_t wlen = 0;
    nn_model *m = NULL;
    nn_error err = {0};
    char ck_epoch[16] = ""; /* epochs completed at the checkpoint */
    store *st = http_store(req);
    if (!st) return;
    const char *format = http_req_query(req, "format");
    int json = format && strcmp(format, "json") == 0;
    if (format && !json && strcmp(format, "safetensors") != 0) {
        json_t *e = json_array();
        http_problem_add(e, "/format", "format must be safetensors or json");
        http_reply_problem_errors(req, 400, "bad query parameter: format", e);
        return;
    }
    if (api_job_load(req, st, &j)) goto out;
    if (kind == WEIGHTS_FINAL && !json) { /* sent as stored */
        if (load_final_weights(req, st, &j, &w, &wlen)) goto out;
    } else {
        int epoch = 0, batch = 0;
        m = load_trained_model(req, st, &j, kind, &spec, &epoch, &batch);
        if (!m) goto out;
        snprintf(ck_epoch, sizeof ck_epoch, "%d", epoch);
        if (kind == WEIGHTS_LAST_GOOD && !json) {
            char ck_batch[16]; /* batches into the next epoch */
            snprintf(ck_batch, sizeof ck_batch, "%d", batch);
            nn_kv meta[4] = {{"job_id", j.id}, {"spec", j.spec_json}, {"epoch", ck_epoch},
                             {"batch", ck_batch}};
            if (nn_model_save_safetensors(m, meta, 4, &w, &wlen, &err) != NN_OK) {
                if (err.code == NN_ERR_NOMEM)
                    http_reply_nomem(req);
                else
                    http_reply_problem(req, 500, "%s", err.message);
                goto out;
            }
        }
    }
    buf text = {0};
    if (json) weights_json(&text, m);
    if (text.failed) {
        buf_free(&text);
        http_reply_nomem(req);
        goto out;
    }
    /* Set only now: a header goes out with any reply the request makes. */
    if (kind == WEIGHTS_LAST_GOOD) http_reply_header(req, "Fitd-Checkpoint-Epoch", ck_epoch);
    if (json) {
        reply_buf(req, 200, &text);
        goto out;
    }
    char disp[96];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s%s.safetensors\"", j.id,
             kind == WEIGHTS_LAST_GOOD ? "-checkpoint" : "");
    http_reply_header(req, "Content-Disposition", disp);
    http_reply_bytes(req, 200, "application/octet-stream", w, wlen);
    w = NULL;
out:
    nn_model_free(m);
    free(w);
    spec_job_free(&spec);
    store_job_free(&j);
}

/* GET /v1/jobs/{id}/model: the job's model as a Keras 3 to_json() document
 * (server/keras.h); any status, since the architecture is fixed at submission. */
static void handle_model(http_req *req)
{
    store_job j = {0};
    spec_job spec = {0};
    store *st = http_store(req);
    if (!st) return;
    if (api_job_load(req, st, &j)) goto out;
    if (load_stored_spec(req, &j, &spec)) goto out;
    http_reply_json(req, 200, keras_model_to_json(&spec.model)); /* NULL: 503 */
out:
    spec_job_free(&spec);
    store_job_free(&j);
}

static void handle_weights(http_req *req)
{
    reply_weights(req, WEIGHTS_FINAL);
}

/* A failed job's last good checkpoint, as weights (a diverged job's final state is
 * NaN; this is what it had learnt before). */
static void handle_checkpoint(http_req *req)
{
    reply_weights(req, WEIGHTS_LAST_GOOD);
}

/* Validate {"inputs": [[...], ...]} against the input width; fills x (malloc'ed,
 * rows * width floats). Problems go to `errors`. Returns the row count, or -1 when
 * out of memory. */
static long parse_inputs(const json_t *root, int width, json_t *errors, float **x)
{
    const char *key;
    json_t *v;
    char ptr[160];
    *x = NULL;
    if (!json_is_object(root)) {
        http_problem_add(errors, "", "the body must be an object {\"inputs\": [[...], ...]}");
        return 0;
    }
    json_object_foreach((json_t *)root, key, v) {
        if (strcmp(key, "inputs") != 0) {
            /* A JSON Pointer escapes ~ and / in keys. */
            char esc[128];
            size_t n = 0;
            for (const char *p = key; *p && n + 3 < sizeof esc; p++) {
                if (*p == '~' || *p == '/') {
                    esc[n++] = '~';
                    esc[n++] = *p == '~' ? '0' : '1';
                } else {
                    esc[n++] = *p;
                }
            }
            esc[n] = 0;
            snprintf(ptr, sizeof ptr, "/%s", esc);
            http_problem_add(errors, ptr, "unknown field");
        }
    }
    const json_t *inputs = json_object_get(root, "inputs");
    if (!inputs) {
        http_problem_add(errors, "/inputs", "required");
        return 0;
    }
    if (!json_is_array(inputs)) {
        http_problem_add(errors, "/inputs", "must be an array of rows");
        return 0;
    }
    size_t rows = json_array_size(inputs);
    if (rows == 0) {
        http_problem_add(errors, "/inputs", "must hold at least one row");
        return 0;
    }
    if (rows > API_PREDICT_MAX_ROWS) {
        http_problem_add(errors, "/inputs", "at most %d rows per request", API_PREDICT_MAX_ROWS);
        return 0;
    }
    *x = malloc(rows * (size_t)width * sizeof **x);
    if (!*x) return -1;
    int n_bad = 0;
    for (size_t r = 0; r < rows && n_bad < 32; r++) {
        const json_t *row = json_array_get(inputs, r);
        snprintf(ptr, sizeof ptr, "/inputs/%zu", r);
        if (!json_is_array(row)) {
            http_problem_add(errors, ptr, "must be an array of %d numbers", width);
            n_bad++;
            continue;
        }
        if (json_array_size(row) != (size_t)width) {
            http_problem_add(errors, ptr, "has %zu values; the model takes %d",
                             json_array_size(row), width);
            n_bad++;
            continue;
        }
        for (int c = 0; c < width; c++) {
            const json_t *cell = json_array_get(row, (size_t)c);
            /* finite as a float32 too: 1e300 would reach the model as Inf */
            if (!json_is_number(cell) || !isfinite((float)json_number_value(cell))) {
                snprintf(ptr, sizeof ptr, "/inputs/%zu/%d", r, c);
                http_problem_add(errors, ptr, "must be a finite number within the float32 range");
                n_bad++;
                break;
            }
            (*x)[r * (size_t)width + (size_t)c] = (float)json_number_value(cell);
        }
    }
    return (long)rows;
}

/* Does the model pick one class per row? Then "classes" holds argmax (or the 0.5
 * threshold for one sigmoid/binary output). Not for binary crossentropy over
 * several units: independent labels, each its own output. *logits is set when
 * outputs are logits. */
static int is_classifier(const spec_job *spec, const nn_model *m, int *logits)
{
    nn_loss_kind k = spec->compile.loss.kind;
    *logits = spec->compile.loss.from_logits;
    if (k == NN_LOSS_BINARY_CE) return nn_model_output_dim(m) == 1;
    if (k == NN_LOSS_SPARSE_CATEGORICAL_CE || k == NN_LOSS_CATEGORICAL_CE) return 1;
    nn_activation a = nn_model_output_activation(m);
    return (a == NN_ACT_SOFTMAX && nn_model_output_dim(m) > 1) ||
           (a == NN_ACT_SIGMOID && nn_model_output_dim(m) == 1);
}

/* The class a classifier's output row says: argmax, or above the threshold (0.5,
 * or 0 for a logit) for a single output; strictly above, as binary_accuracy
 * counts a probability. */
static int predicted_class(const float *y, int out_dim, int logits)
{
    if (out_dim == 1) return y[0] > (logits ? 0.0f : 0.5f);
    int best = 0;
    for (int c = 1; c < out_dim; c++)
        if (y[c] > y[best]) best = c;
    return best;
}

/* Output values (rows x outputs) one prediction may return: the reply is built
 * whole, ~13 bytes of text a value, and a 1 MiB body of one-feature rows for a
 * wide output layer would otherwise ask for gigabytes. */
#define PREDICT_MAX_VALUES (1L << 22)

static void handle_predict(http_req *req)
{
    store_job j = {0};
    spec_job spec = {0};
    json_t *root = NULL, *errors = NULL;
    nn_model *m = NULL;
    float *x = NULL, *y = NULL;
    nn_error err = {0};
    store *st = http_store(req);
    if (!st) return;
    root = http_req_json(req);
    if (!root) goto out;
    if (api_job_load(req, st, &j)) goto out;
    if (j.status != STORE_JOB_SUCCEEDED) {
        http_reply_problem(req, 409, "job %s has not succeeded (status %s)", j.id,
                           store_job_status_name(j.status));
        goto out;
    }
    m = load_trained_model(req, st, &j, WEIGHTS_FINAL, &spec, NULL, NULL);
    if (!m) goto out;
    int in = nn_model_input_dim(m), out_dim = nn_model_output_dim(m);
    errors = json_array();
    if (!errors) goto nomem;
    long rows = parse_inputs(root, in, errors, &x);
    if (rows < 0) goto nomem;
    if (json_array_size(errors) > 0) {
        http_reply_problem_errors(req, 422, "the inputs are invalid", errors);
        errors = NULL;
        goto out;
    }
    if ((long long)rows * out_dim > PREDICT_MAX_VALUES) {
        if (http_problem_add(errors, "/inputs",
                             "%ld rows of %d outputs are %lld values; one request may ask for "
                             "at most %ld: send fewer rows",
                             rows, out_dim, (long long)rows * out_dim, PREDICT_MAX_VALUES))
            goto nomem;
        http_reply_problem_errors(req, 422, "the prediction would be too large", errors);
        errors = NULL;
        goto out;
    }
    y = malloc((size_t)rows * (size_t)out_dim * sizeof *y);
    if (!y) goto nomem;
    if (nn_model_predict(m, x, (size_t)rows, y, &err) != NN_OK) {
        if (err.code == NN_ERR_NOMEM) goto nomem;
        http_reply_problem(req, 500, "prediction failed: %s", err.message);
        goto out;
    }
    int logits = 0, classify = is_classifier(&spec, m, &logits);
    buf b = {0};
    BUF_LIT(&b, "{\"outputs\":[");
    for (long r = 0; r < rows && !b.failed; r++) {
        if (r) BUF_LIT(&b, ",");
        buf_json_floats(&b, y + (size_t)r * (size_t)out_dim, (size_t)out_dim);
    }
    BUF_LIT(&b, "]");
    if (classify) {
        BUF_LIT(&b, ",\"classes\":[");
        for (long r = 0; r < rows && !b.failed; r++)
            buf_printf(&b, r ? ",%d" : "%d",
                       predicted_class(y + (size_t)r * (size_t)out_dim, out_dim, logits));
        BUF_LIT(&b, "]");
    }
    BUF_LIT(&b, "}");
    reply_buf(req, 200, &b); /* replies 503 and frees when out of memory */
    goto out;
nomem:
    http_reply_nomem(req);
out:
    json_decref(errors);
    json_decref(root);
    free(y);
    free(x);
    nn_model_free(m);
    spec_job_free(&spec);
    store_job_free(&j);
}

/* ---------------------------------------------------------------- routes */

int api_jobs_register(http_server *srv)
{
    static const char *const list_query[] = {"limit", "cursor", "status", NULL};
    static const char *const format_query[] = {"format", NULL};
    const http_route routes[] = {
        {.method = HTTP_POST, .pattern = "/v1/jobs", .handler = handle_submit,
         .body = HTTP_BODY_BUFFER, .content_types = json_types},
        {.method = HTTP_GET, .pattern = "/v1/jobs", .handler = handle_list, .query = list_query},
        {.method = HTTP_GET, .pattern = "/v1/jobs/{id}", .handler = handle_get},
        {.method = HTTP_DELETE, .pattern = "/v1/jobs/{id}", .handler = handle_delete},
        {.method = HTTP_POST, .pattern = "/v1/jobs/{id}/cancel", .handler = handle_cancel},
        {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/metrics", .handler = handle_metrics},
        {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/weights", .handler = handle_weights,
         .query = format_query},
        {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/checkpoint", .handler = handle_checkpoint,
         .query = format_query},
        {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/model", .handler = handle_model},
        {.method = HTTP_POST, .pattern = "/v1/jobs/{id}/predict", .handler = handle_predict,
         .body = HTTP_BODY_BUFFER, .content_types = json_types, .heavy = 1},
    };
    return http_route_add(srv, routes, sizeof routes / sizeof routes[0]);
}
