/*
 * api_weights.c — uploaded weights for warm starts: POST /v1/weights (a
 * safetensors file, application/octet-stream, ?name=), GET /v1/weights (list),
 * GET /v1/weights/{id} (meta: tensors with names, shapes and dtypes, bytes,
 * sha256), DELETE /v1/weights/{id} (409 while a queued or running job names it).
 *
 * The body arrives capped at --max-body-dataset or the store's limit for one
 * value, the smaller (413 past it, counted while it streams) and is parsed with the core's safetensors reader before anything is
 * stored: a file the reader refuses is 422 with the reader's message. Jobs use an
 * upload through "init": {"weights": id} (server/warmstart.h). Another tenant's
 * upload answers exactly as a missing one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "http.h"
#include "log.h"
#include "nn.h"
#include "nn_int.h" /* nn_st_decode: the core's safetensors reader (no public twin) */
#include "store.h"

static const char *const octet_types[] = {"application/octet-stream", NULL};

/* ?name= is checked before any body byte arrives. */
static int upload_begin(http_req *req)
{
    const char *name = http_req_query(req, "name");
    if (name && !api_name_ok(name)) {
        json_t *errors = json_array();
        if (errors) http_problem_add(errors, "/name", "must be 1 to 255 printable characters");
        http_reply_problem_errors(req, 400, "invalid query parameter name", errors);
        return -1;
    }
    return 0;
}

/* A non-finite value (NaN, Inf) in a tensor: a warm start from it could only
 * diverge, so the upload is refused with where it is (else NN_OK). */
static nn_status tensors_finite(const nn_st_tensor *t, int n, nn_error *err)
{
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < t[i].ndim; d++) count *= (size_t)t[i].shape[d];
        const unsigned char *p = t[i].data;
        for (size_t k = 0; k < count; k++) {
            float v;
            memcpy(&v, p + k * sizeof v, sizeof v); /* the data may be unaligned */
            if (!isfinite(v))
                return nn_error_set(err, NN_ERR_PARSE, "tensor %s holds %s at index %zu", t[i].name,
                                    isnan(v) ? "NaN" : "an infinity", k);
        }
    }
    return NN_OK;
}

/* The decoded tensors as [{"name","dtype","shape"}]; NULL when out of memory. */
static json_t *tensors_json(const nn_st_tensor *t, int n)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; shape && d < t[i].ndim; d++)
            if (json_array_append_new(shape, json_integer(t[i].shape[d])) != 0) {
                json_decref(shape);
                shape = NULL;
            }
        json_t *o = shape ? json_pack("{s:s, s:s, s:o}", "name", t[i].name, "dtype", "F32",
                                      "shape", shape)
                          : NULL;
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* The public JSON of an upload; NULL when out of memory or unreadable. */
static json_t *weights_json(const store_weights_meta *m)
{
    json_t *tensors = json_loads(m->tensors_json ? m->tensors_json : "", 0, NULL);
    if (!tensors) return NULL;
    return json_pack("{s:s, s:s, s:o, s:I, s:s, s:s}", "id", m->id, "name", m->name, "tensors",
                     tensors, "bytes", (json_int_t)m->bytes, "sha256", m->sha256, "created_at",
                     m->created_at);
}

static void upload_finish(http_req *req)
{
    nn_st_tensor *t = NULL;
    int n = 0;
    nn_error err = {0};
    json_t *tensors = NULL, *errors = NULL;
    char *tensors_text = NULL;
    store_weights_meta meta;
    memset(&meta, 0, sizeof meta);
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    store *st = http_store(req);
    if (!st) return;

    if (!body || len == 0) {
        errors = json_array();
        http_problem_add(errors, "", "the body is empty: send a safetensors file");
        http_reply_problem_errors(req, 400, "empty body", errors);
        return;
    }
    nn_status rc = nn_st_decode(body, len, NN_ST_EXACT, &t, &n, &err);
    if (rc == NN_OK && n == 0) rc = nn_error_set(&err, NN_ERR_PARSE, "the file holds no tensors");
    if (rc == NN_OK) rc = tensors_finite(t, n, &err);
    if (rc != NN_OK) {
        if (rc == NN_ERR_NOMEM) {
            http_reply_nomem(req);
            goto out;
        }
        errors = json_array();
        http_problem_add(errors, "", "%s", err.message);
        http_reply_problem_errors(req, 422, err.message, errors);
        goto out;
    }
    tensors = tensors_json(t, n);
    tensors_text = tensors ? json_dumps(tensors, JSON_COMPACT) : NULL;
    if (!tensors_text) {
        http_reply_nomem(req);
        goto out;
    }
    const char *name = http_req_query(req, "name");
    snprintf(meta.tenant, sizeof meta.tenant, "%s", http_req_tenant(req));
    snprintf(meta.name, sizeof meta.name, "%s", name ? name : "weights");
    meta.tensors_json = tensors_text; /* borrowed: freed below, not by meta */
    store_rc src = store_weights_insert(st, &meta, body, len);
    if (src != STORE_OK) {
        http_reply_store_error(req, st, (int)src);
        goto out;
    }
    json_t *out = weights_json(&meta);
    if (!out) {
        http_reply_nomem(req);
        goto out;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/weights/%s", meta.id);
    http_reply_header(req, "Location", loc);
    http_reply_json(req, 201, out);
    LOG(LOG_INFO, "weights stored", "\"request_id\":\"%s\",\"weights_id\":\"%s\",\"tensors\":%d,\"bytes\":%zu",
        http_req_id(req), meta.id, n, len);
out:
    free(tensors_text);
    json_decref(tensors);
    nn_st_free_list(t, n);
}

static void weights_list(http_req *req)
{
    store_weights_meta *items = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX] = "";
    store_list_query q;
    if (api_list_query(req, &q) != 0) return;
    store *st = http_store(req);
    if (!st) return;
    store_rc rc = store_weights_list(st, &q, &items, &n, next);
    if (rc != STORE_OK) {
        api_reply_list_error(req, st, rc, "weights");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, weights_json(&items[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    store_weights_list_free(items, n);
    api_reply_list(req, arr, next);
}

/* The caller's upload `id` into *m, or a reply (404 for another tenant's too).
 * Returns 0 when found. */
static int load_own(http_req *req, store *st, const char *id, store_weights_meta *m)
{
    store_rc rc = store_weights_get(st, id, m);
    if (rc == STORE_OK && strcmp(m->tenant, http_req_tenant(req)) != 0) rc = STORE_NOT_FOUND;
    if (rc == STORE_OK) return 0;
    if (rc == STORE_NOT_FOUND)
        http_reply_problem(req, 404, "no weights with id %s", id);
    else
        http_reply_store_error(req, st, (int)rc);
    store_weights_meta_free(m);
    return -1;
}

static void weights_get(http_req *req)
{
    store_weights_meta m;
    store *st = http_store(req);
    if (!st) return;
    if (load_own(req, st, http_req_param(req, "id"), &m) != 0) return;
    json_t *body = weights_json(&m);
    store_weights_meta_free(&m);
    http_reply_json(req, 200, body); /* NULL: 503 out of memory */
}

static void weights_delete(http_req *req)
{
    store_weights_meta m;
    store *st = http_store(req);
    if (!st) return;
    const char *id = http_req_param(req, "id");
    if (load_own(req, st, id, &m) != 0) return;
    store_weights_meta_free(&m);
    store_rc rc = store_weights_delete(st, id);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(req, 404, "no weights with id %s", id);
        return;
    }
    if (rc == STORE_CONFLICT) {
        http_reply_problem(req, 409, "weights %s are used by a queued or running job", id);
        return;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, (int)rc);
        return;
    }
    LOG(LOG_INFO, "weights deleted", "\"request_id\":\"%s\",\"weights_id\":\"%s\"",
        http_req_id(req), id);
    http_reply_empty(req, 204);
}

int api_weights_register(http_server *srv)
{
    static const char *const upload_query[] = {"name", NULL};
    const api_ctx *ctx = http_server_app(srv);
    http_route routes[] = {
        {.method = HTTP_POST,
         .pattern = "/v1/weights",
         .handler = upload_finish,
         .body = HTTP_BODY_BUFFER,
         .max_body = ctx->cfg->max_body_dataset < STORE_MAX_BLOB ? ctx->cfg->max_body_dataset
                                                                 : STORE_MAX_BLOB,
         .content_types = octet_types,
         .on_begin = upload_begin,
         .query = upload_query},
        {.method = HTTP_GET, .pattern = "/v1/weights", .handler = weights_list,
         .query = http_page_query},
        {.method = HTTP_GET, .pattern = "/v1/weights/{id}", .handler = weights_get},
        {.method = HTTP_DELETE, .pattern = "/v1/weights/{id}", .handler = weights_delete},
    };
    return http_route_add(srv, routes, sizeof routes / sizeof routes[0]);
}
