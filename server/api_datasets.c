/*
 * api_datasets.c — the dataset resource: upload (CSV, JSON, multipart IDX), list,
 * read, delete.
 *
 * Uploads stream: each body chunk goes to the core's streaming parser (CSV, or an
 * IDX parser per multipart part through MHD's post processor) while a SHA-256 of
 * the raw body is computed; nothing is written until the whole body has parsed,
 * then the dataset is stored in one transaction. A failed or aborted upload
 * therefore leaves no row. JSON datasets are small by nature and are buffered up
 * to --max-body-json.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>
#include <nettle/sha2.h>

#include "api.h"
#include "digest.h"
#include "http.h"
#include "log.h"
#include "nn.h"
#include "spec.h"
#include "store.h"

typedef enum upload_kind { UP_CSV = 1, UP_JSON, UP_MULTIPART } upload_kind;

#define MAX_JSON_PROBLEMS 20

/* Per-request upload state (http_req_set_state); freed by upload_free. */
typedef struct upload {
    upload_kind kind;
    const api_ctx *ctx;
    struct sha256_ctx sha;
    size_t raw_bytes;
    char name[STORE_NAME_MAX];
    nn_limits limits;
    /* csv */
    nn_csv_parser *csv;
    char label_name[256];
    /* json */
    char *json;
    size_t json_len, json_cap, json_max;
    /* multipart */
    struct MHD_PostProcessor *pp;
    nn_idx_parser *idx_x, *idx_y;
    int seen_x, seen_y, name_from_form;
    size_t name_len;
    /* the first error met while streaming (reply status 0 = none) */
    unsigned err_status;
    char err_field[600]; /* a pointer: an escaped part name, /label, ... */
    nn_error err;
} upload;

static const char *const upload_types[] = {"text/csv", "application/json", "multipart/form-data",
                                           NULL};

static void upload_free(void *p, int aborted)
{
    upload *u = p;
    if (!u) return;
    if (u->pp) MHD_destroy_post_processor(u->pp);
    nn_csv_parser_free(u->csv);
    nn_idx_parser_free(u->idx_x);
    nn_idx_parser_free(u->idx_y);
    free(u->json);
    free(u);
}

static const api_ctx *ctx_of(http_req *req) { return http_req_app(req); }

/* The reply status for a core error while parsing an upload. */
static unsigned status_for(nn_status code)
{
    switch (code) {
    case NN_ERR_LIMIT: return 413;
    case NN_ERR_NOMEM: return 503;
    default: return 422;
    }
}

/* Reply with the upload's recorded error: detail is the core's message (it names
 * the line/column or the byte), `errors` points at the field (query parameter,
 * multipart part). */
static void reply_upload_error(http_req *req, const upload *u)
{
    if (u->err_status == 503) {
        http_reply_nomem(req);
        return;
    }
    json_t *errors = json_array();
    if (errors) http_problem_add(errors, u->err_field, "%s", u->err.message);
    http_reply_problem_errors(req, u->err_status, u->err.message, errors);
}

/* A CSV parser error: only the label option's (NN_ERR_INVALID: not in the header,
 * twice in it, index out of range) names a field of the request. */
static void reply_csv_error(http_req *req, upload *u)
{
    u->err_status = status_for(u->err.code);
    snprintf(u->err_field, sizeof u->err_field, "%s", u->err.code == NN_ERR_INVALID ? "/label" : "");
    reply_upload_error(req, u);
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static void fail(upload *u, unsigned status, const char *field, nn_status code, const char *fmt,
                 ...)
{
    char msg[256];
    va_list ap;
    if (u->err_status) return; /* the first error wins */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    u->err_status = status;
    snprintf(u->err_field, sizeof u->err_field, "%s", field);
    nn_error_set(&u->err, code, "%s", msg);
}

/* 1 to 255 bytes of valid UTF-8 without control characters: a name is echoed in
 * JSON, which cannot carry invalid UTF-8 (Jansson refuses it: a 500 before). */
int api_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= STORE_NAME_MAX) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    json_t *probe = json_stringn(s - n, n); /* NULL unless valid UTF-8 */
    json_decref(probe);
    return probe != NULL;
}

/* ---------------------------------------------------------------- multipart */

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    upload *u = cls;
    if (u->err_status) return MHD_NO;
    nn_idx_parser **pp = NULL;
    if (!key) { /* MHD passes NULL for a part without a usable Content-Disposition name */
        fail(u, 400, "", NN_ERR_INVALID, "%s", "a multipart part has no name: expected x, y and name");
        return MHD_NO;
    }
    /* A part's first chunk comes at offset 0: a second one with a known name is
     * that part again (its bytes were appended to the first's: "ab", or an IDX
     * parser seeing "trailing data"). */
    int *seen = strcmp(key, "x") == 0 ? &u->seen_x : strcmp(key, "y") == 0 ? &u->seen_y
              : strcmp(key, "name") == 0 ? &u->name_from_form : NULL;
    if (seen && off == 0 && *seen) {
        char ptr[8];
        snprintf(ptr, sizeof ptr, "/%s", key); /* x, y or name */
        fail(u, 422, ptr, NN_ERR_INVALID, "the multipart part '%s' appears more than once", key);
        return MHD_NO;
    }
    if (!seen) {
        char ptr[sizeof u->err_field] = "";
        size_t n = 0;
        spec_path_push(ptr, sizeof ptr, &n, key);
        fail(u, 400, ptr, NN_ERR_INVALID,
             "unknown multipart part '%.100s': expected x, y and optionally name", key);
        return MHD_NO;
    }
    *seen = 1;
    if (seen == &u->name_from_form) {
        if (u->name_len + size >= sizeof u->name) {
            fail(u, 422, "/name", NN_ERR_INVALID, "the name is longer than %d characters", STORE_NAME_MAX - 1);
            return MHD_NO;
        }
        memcpy(u->name + u->name_len, data, size);
        u->name_len += size;
        u->name[u->name_len] = 0;
        return MHD_YES;
    }
    pp = seen == &u->seen_x ? &u->idx_x : &u->idx_y;
    if (!*pp) {
        *pp = nn_idx_parser_new(&u->limits, &u->err);
        if (!*pp) {
            u->err_status = status_for(u->err.code);
            snprintf(u->err_field, sizeof u->err_field, "/%s", key);
            return MHD_NO;
        }
    }
    if (size == 0) return MHD_YES;
    nn_error e = {0};
    nn_status rc = nn_idx_parser_feed(*pp, data, size, &e);
    if (rc != NN_OK) {
        u->err_status = status_for(rc);
        snprintf(u->err_field, sizeof u->err_field, "/%s", key);
        nn_error_set(&u->err, rc, "part %s: %s", key, e.message);
        return MHD_NO;
    }
    return MHD_YES;
}

/* ---------------------------------------------------------------- streaming */

static int upload_begin(http_req *req)
{
    const api_ctx *ctx = ctx_of(req);
    const char *mt = http_req_media_type(req);
    upload *u = calloc(1, sizeof *u);
    if (!u) return http_reply_nomem(req), -1;
    http_req_set_state(req, u, upload_free);
    u->ctx = ctx;
    sha256_init(&u->sha);
    u->limits = nn_limits_default();
    if (ctx->cfg->max_input_dim > 0) u->limits.max_features = (size_t)ctx->cfg->max_input_dim;

    const char *name = http_req_query(req, "name");
    if (name) {
        if (!api_name_ok(name)) {
            json_t *errors = json_array();
            if (errors) http_problem_add(errors, "/name", "must be 1 to 255 printable characters");
            http_reply_problem_errors(req, 400, "invalid query parameter name", errors);
            return -1;
        }
        snprintf(u->name, sizeof u->name, "%s", name);
    }

    if (strcmp(mt, "text/csv") == 0) {
        u->kind = UP_CSV;
        nn_csv_options opt = nn_csv_default();
        opt.limits = u->limits;
        const char *label = http_req_query(req, "label");
        if (label) {
            char *end = NULL;
            errno = 0;
            long idx = strtol(label, &end, 10);
            if (*label && !*end && !errno) {
                if (idx < -1000000 || idx > 1000000) {
                    json_t *errors = json_array();
                    if (errors) http_problem_add(errors, "/label", "column index out of range");
                    http_reply_problem_errors(req, 400, "invalid query parameter label", errors);
                    return -1;
                }
                opt.label_index = (int)idx;
            } else {
                if (!*label || strlen(label) >= sizeof u->label_name) {
                    json_t *errors = json_array();
                    if (errors)
                        http_problem_add(errors, "/label", "a column name or a column index");
                    http_reply_problem_errors(req, 400, "invalid query parameter label", errors);
                    return -1;
                }
                snprintf(u->label_name, sizeof u->label_name, "%s", label);
                opt.label_name = u->label_name; /* lives in u, which outlives the parser */
            }
        }
        u->csv = nn_csv_parser_new(&opt, &u->err);
        if (!u->csv) return reply_csv_error(req, u), -1;
    } else if (strcmp(mt, "application/json") == 0) {
        u->kind = UP_JSON;
        u->json_max = ctx->cfg->max_body_json;
        const char *cl = http_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > u->json_max) {
            http_reply_problem(req, 413,
                               "a JSON dataset may have at most %zu bytes (--max-body-json); "
                               "upload larger data as CSV or IDX",
                               u->json_max);
            return -1;
        }
    } else {
        u->kind = UP_MULTIPART;
        /* A gzipped part counts at its inflated size: the upload limit holds for
         * what is parsed and stored, not only for what crossed the wire. */
        u->limits.max_file_bytes = (size_t)ctx->cfg->max_body_dataset;
        u->pp = MHD_create_post_processor(http_req_connection(req), 64 * 1024, on_part, u);
        if (!u->pp) {
            http_reply_problem(req, 400, "multipart/form-data needs a boundary parameter");
            return -1;
        }
    }
    return 0;
}

static int upload_chunk(http_req *req, const char *data, size_t len)
{
    upload *u = http_req_state(req);
    sha256_update(&u->sha, len, (const uint8_t *)data);
    u->raw_bytes += len;
    switch (u->kind) {
    case UP_CSV: {
        if (nn_csv_parser_feed(u->csv, data, len, &u->err) != NN_OK) {
            reply_csv_error(req, u);
            return -1;
        }
        break;
    }
    case UP_JSON:
        if (len > u->json_max - u->json_len) {
            http_reply_problem(req, 413, "a JSON dataset may have at most %zu bytes (--max-body-json)",
                               u->json_max);
            return -1;
        }
        if (u->json_len + len + 1 > u->json_cap) {
            size_t cap = u->json_cap ? u->json_cap : 65536;
            while (cap < u->json_len + len + 1) cap *= 2;
            char *nb = realloc(u->json, cap);
            if (!nb) return http_reply_nomem(req), -1;
            u->json = nb;
            u->json_cap = cap;
        }
        memcpy(u->json + u->json_len, data, len);
        u->json_len += len;
        u->json[u->json_len] = 0;
        break;
    case UP_MULTIPART:
        if (MHD_post_process(u->pp, data, len) != MHD_YES || u->err_status) {
            if (!u->err_status)
                fail(u, 400, "", NN_ERR_PARSE, "%s", "malformed multipart/form-data body");
            reply_upload_error(req, u);
            return -1;
        }
        break;
    }
    return 0;
}

/* ---------------------------------------------------------------- JSON datasets */

/* Fill a matrix from a JSON array of rows (or of numbers when `allow_flat`).
 * Problems go to `errors` (at most MAX_JSON_PROBLEMS); returns 0 when none. */
static int json_matrix(const json_t *rows, const char *ptr, int allow_flat, size_t n,
                       int *width, float **out, json_t *errors, int *n_problems)
{
    int problems = 0;
    *width = 0;
    *out = NULL;
    if (!json_is_array(rows) || json_array_size(rows) == 0) {
        http_problem_add(errors, ptr, "must be a non-empty array");
        (*n_problems)++;
        return -1;
    }
    if (json_array_size(rows) != n) {
        http_problem_add(errors, ptr, "has %zu entries; x has %zu rows", json_array_size(rows), n);
        (*n_problems)++;
        return -1;
    }
    const json_t *first = json_array_get(rows, 0);
    int flat = allow_flat && json_is_number(first);
    size_t w = flat ? 1 : (json_is_array(first) ? json_array_size(first) : 0);
    if (w == 0 || w > 1000000) {
        char p[96];
        snprintf(p, sizeof p, "%s/0", ptr);
        http_problem_add(errors, p, "must be a non-empty array of numbers%s",
                         allow_flat ? " (or a number, when every entry is one)" : "");
        (*n_problems)++;
        return -1;
    }
    if (n > SIZE_MAX / sizeof(float) / w) {
        http_problem_add(errors, ptr, "too large");
        (*n_problems)++;
        return -1;
    }
    float *m = malloc(n * w * sizeof *m);
    if (!m) return -2;
    for (size_t i = 0; i < n && *n_problems < MAX_JSON_PROBLEMS; i++) {
        const json_t *row = json_array_get(rows, i);
        if (flat) {
            if (!json_is_number(row)) {
                char p[96];
                snprintf(p, sizeof p, "%s/%zu", ptr, i);
                http_problem_add(errors, p, "must be a number");
                (*n_problems)++, problems++;
                continue;
            }
            m[i] = (float)json_number_value(row);
            if (!isfinite(m[i])) { /* 1e39 overflows float32: CSV rejects it too */
                char p[96];
                snprintf(p, sizeof p, "%s/%zu", ptr, i);
                http_problem_add(errors, p, "outside the float32 range");
                (*n_problems)++, problems++;
            }
            continue;
        }
        if (!json_is_array(row) || json_array_size(row) != w) {
            char p[96];
            snprintf(p, sizeof p, "%s/%zu", ptr, i);
            http_problem_add(errors, p, "must be an array of %zu numbers", w);
            (*n_problems)++, problems++;
            continue;
        }
        for (size_t j = 0; j < w; j++) {
            const json_t *v = json_array_get(row, j);
            if (!json_is_number(v)) {
                char p[96];
                snprintf(p, sizeof p, "%s/%zu/%zu", ptr, i, j);
                http_problem_add(errors, p, "must be a number");
                (*n_problems)++, problems++;
                if (*n_problems >= MAX_JSON_PROBLEMS) break;
                continue;
            }
            m[i * w + j] = (float)json_number_value(v);
            if (!isfinite(m[i * w + j])) {
                char p[96];
                snprintf(p, sizeof p, "%s/%zu/%zu", ptr, i, j);
                http_problem_add(errors, p, "outside the float32 range");
                (*n_problems)++, problems++;
                if (*n_problems >= MAX_JSON_PROBLEMS) break;
            }
        }
    }
    if (problems) {
        free(m);
        return -1;
    }
    *width = (int)w;
    *out = m;
    return 0;
}

/* Parse {"name","x","y"} into ds. Returns 0; -1 after replying. */
static int json_dataset(http_req *req, upload *u, nn_dataset *ds)
{
    json_error_t jerr;
    json_t *root = NULL, *errors = NULL, *x = NULL, *y = NULL;
    const char *name = NULL;
    int rc = -1, n_problems = 0;
    if (u->json_len == 0) {
        http_reply_problem(req, 400, "the request body is empty; a JSON document is required");
        return -1;
    }
    root = json_loadb(u->json, u->json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        http_reply_json_error(req, &jerr, u->json, u->json_len);
        return -1;
    }
    errors = json_array();
    if (!errors) goto oom;
    /* Check the shape of the document by hand (instead of json_unpack_ex) so that
     * every problem is listed, not only the first. */
    if (!json_is_object(root)) {
        http_problem_add(errors, "", "must be an object {\"name\", \"x\", \"y\"}");
        http_reply_problem_errors(req, 422, "the JSON dataset is invalid", errors);
        errors = NULL;
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "name") && strcmp(key, "x") && strcmp(key, "y")) {
            char p[600] = "";
            size_t n = 0;
            spec_path_push(p, sizeof p, &n, key);
            http_problem_add(errors, p, "unknown key (expected name, x, y)");
        }
    }
    x = json_object_get(root, "x");
    y = json_object_get(root, "y");
    json_t *nm = json_object_get(root, "name");
    if (nm && !json_is_null(nm)) {
        if (!json_is_string(nm)) http_problem_add(errors, "/name", "must be a string");
        else name = json_string_value(nm);
    }
    if (!x) http_problem_add(errors, "/x", "required: an array of rows of numbers");
    if (!y) http_problem_add(errors, "/y", "required: an array of numbers or of rows");
    n_problems = (int)json_array_size(errors);
    if (!x || !y) {
        http_reply_problem_errors(req, 422, "the JSON dataset is invalid", errors);
        errors = NULL;
        goto out;
    }
    if (name) {
        if (!api_name_ok(name)) http_problem_add(errors, "/name", "must be 1 to 255 printable characters");
        else snprintf(u->name, sizeof u->name, "%s", name);
    }
    size_t n = json_is_array(x) ? json_array_size(x) : 0;
    int xw = 0, yw = 0;
    float *xm = NULL, *ym = NULL;
    int too_many = n > u->limits.max_samples;
    if (too_many) {
        http_problem_add(errors, "/x", "more than %zu samples", u->limits.max_samples);
        n_problems++;
    }
    int xr = too_many ? -1 : json_matrix(x, "/x", 0, n, &xw, &xm, errors, &n_problems);
    int yr = too_many ? -1 : json_matrix(y, "/y", 1, n ? n : json_array_size(y), &yw, &ym, errors, &n_problems);
    if (xr == -2 || yr == -2) {
        free(xm);
        free(ym);
        goto oom;
    }
    if (xr == 0 && (size_t)xw > u->limits.max_features) {
        http_problem_add(errors, "/x", "rows have %d features; the limit is %zu", xw,
                         u->limits.max_features);
    }
    if (json_array_size(errors) > 0) {
        free(xm);
        free(ym);
        http_reply_problem_errors(req, 422, "the JSON dataset is invalid", errors);
        errors = NULL;
        goto out;
    }
    ds->n = n;
    ds->x_width = xw;
    ds->y_width = yw;
    ds->x = xm;
    ds->y = ym;
    nn_dataset_describe(ds);
    rc = 0;
    goto out;
oom:
    http_reply_nomem(req);
out:
    json_decref(errors);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- resources */

/* The public JSON of a dataset; NULL when out of memory. */
static json_t *dataset_json(const store_dataset_meta *m)
{
    json_t *shape = json_array();
    json_t *target = NULL;
    if (!shape) return NULL;
    if (m->n_input_dims > 0) {
        for (int i = 0; i < m->n_input_dims; i++)
            json_array_append_new(shape, json_integer(m->input_shape[i]));
    } else {
        json_array_append_new(shape, json_integer(m->x_width));
    }
    if (m->y_width == 1 && m->y_integer && m->n_classes > 0)
        target = json_pack("{s:s, s:i, s:i}", "kind", "classes", "n_classes", m->n_classes,
                           "width", m->y_width);
    else
        target = json_pack("{s:s, s:i}", "kind", "regression", "width", m->y_width);
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:i, s:o, s:I, s:s, s:s}", "id", m->id, "name",
                     m->name, "format", m->format, "n_samples", (json_int_t)m->n_samples,
                     "input_shape", shape, "x_width", m->x_width, "target", target, "bytes",
                     (json_int_t)m->bytes, "sha256", m->sha256, "created_at", m->created_at);
}

static void upload_finish(http_req *req)
{
    upload *u = http_req_state(req);
    nn_dataset ds = {0};
    nn_idx_array xa = {0}, ya = {0};
    store *st = NULL;
    if (!u) { /* on_begin always sets the state; keep the invariant visible */
        http_reply_problem(req, 500, "upload state missing");
        return;
    }
    switch (u->kind) {
    case UP_CSV:
        if (nn_csv_parser_finish(u->csv, &ds, &u->err) != NN_OK) {
            reply_csv_error(req, u);
            goto out;
        }
        break;
    case UP_JSON:
        if (json_dataset(req, u, &ds) != 0) goto out;
        break;
    case UP_MULTIPART: {
        struct MHD_PostProcessor *pp = u->pp;
        u->pp = NULL;
        if (MHD_destroy_post_processor(pp) != MHD_YES && !u->err_status)
            fail(u, 400, "", NN_ERR_PARSE, "%s",
                 "malformed multipart/form-data body: it ended before the closing boundary");
        if (!u->err_status && (!u->seen_x || !u->seen_y))
            fail(u, 400, !u->seen_x ? "/x" : "/y", NN_ERR_INVALID,
                 "multipart part '%s' is missing: send IDX files as parts x and y",
                 !u->seen_x ? "x" : "y");
        if (!u->err_status) {
            nn_error e = {0};
            nn_status rc = nn_idx_parser_finish(u->idx_x, &xa, &e);
            if (rc != NN_OK) {
                u->err_status = status_for(rc);
                snprintf(u->err_field, sizeof u->err_field, "/x");
                nn_error_set(&u->err, rc, "part x: %s", e.message);
            }
        }
        if (!u->err_status) {
            nn_error e = {0};
            nn_status rc = nn_idx_parser_finish(u->idx_y, &ya, &e);
            if (rc != NN_OK) {
                u->err_status = status_for(rc);
                snprintf(u->err_field, sizeof u->err_field, "/y");
                nn_error_set(&u->err, rc, "part y: %s", e.message);
            }
        }
        if (!u->err_status) {
            nn_status rc = nn_dataset_from_idx(&xa, &ya, &ds, &u->err);
            if (rc != NN_OK) { /* labels that do not fit the images, or images too wide */
                u->err_status = status_for(rc);
                snprintf(u->err_field, sizeof u->err_field, rc == NN_ERR_LIMIT ? "/x" : "/y");
            }
        }
        if (u->err_status) {
            reply_upload_error(req, u);
            goto out;
        }
        if (u->name_from_form && !api_name_ok(u->name)) {
            json_t *errors = json_array();
            if (errors) http_problem_add(errors, "/name", "must be 1 to 255 printable characters");
            http_reply_problem_errors(req, 422, "invalid form field name", errors);
            goto out;
        }
        break;
    }
    }
    nn_dataset_describe(&ds);

    st = http_store(req);
    if (!st) goto out;
    store_dataset_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.tenant, sizeof meta.tenant, "%s", http_req_tenant(req));
    snprintf(meta.name, sizeof meta.name, "%s", u->name[0] ? u->name : "dataset");
    snprintf(meta.format, sizeof meta.format, "%s",
             u->kind == UP_CSV ? "csv" : u->kind == UP_JSON ? "json" : "idx");
    store_rc rc = store_dataset_insert(st, &meta, &ds);
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, (int)rc);
        goto out;
    }

    char hex[DIGEST_SHA256_HEX];
    digest_sha256_finish_hex(&u->sha, hex);
    json_t *body = dataset_json(&meta);
    json_t *upl = json_pack("{s:I, s:s}", "bytes", (json_int_t)u->raw_bytes, "sha256", hex);
    if (!body || !upl || json_object_set_new(body, "upload", upl) != 0) {
        if (!body) json_decref(upl); /* set_new takes it otherwise, also on failure */
        json_decref(body);
        http_reply_nomem(req);
        goto out;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/datasets/%s", meta.id);
    http_reply_header(req, "Location", loc);
    http_reply_json(req, 201, body);
    char q[300];
    LOG(LOG_INFO, "dataset stored",
        "\"request_id\":\"%s\",\"dataset_id\":\"%s\",\"name\":%s,\"n_samples\":%lld,"
        "\"x_width\":%d,\"bytes_in\":%zu",
        http_req_id(req), meta.id, log_quote(q, sizeof q, meta.name), (long long)meta.n_samples,
        meta.x_width, u->raw_bytes);
out:
    nn_idx_array_free(&xa);
    nn_idx_array_free(&ya);
    nn_dataset_free(&ds);
}

static void dataset_list(http_req *req)
{
    store_list_query q;
    if (api_list_query(req, &q) != 0) return;
    store *st = http_store(req);
    if (!st) return;
    store_dataset_meta *items = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX] = "";
    store_rc rc = store_dataset_list(st, &q, &items, &n, next);
    if (rc != STORE_OK) {
        api_reply_list_error(req, st, rc, "datasets");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, dataset_json(&items[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    store_dataset_list_free(items);
    api_reply_list(req, arr, next);
}

/* Is the dataset the calling tenant's? (A tenant never changes, so checking
 * before acting leaves no window.) */
static int own_dataset(http_req *req, const store_dataset_meta *m)
{
    return strcmp(m->tenant, http_req_tenant(req)) == 0;
}

static void dataset_get(http_req *req)
{
    store *st = http_store(req);
    if (!st) return;
    store_dataset_meta meta;
    const char *id = http_req_param(req, "id");
    store_rc rc = store_dataset_get(st, id, &meta);
    /* Another tenant's dataset answers exactly as a missing one. */
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && !own_dataset(req, &meta))) {
        http_reply_problem(req, 404, "no dataset with id %s", id);
        return;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, (int)rc);
        return;
    }
    http_reply_json(req, 200, dataset_json(&meta)); /* NULL: 503 out of memory */
}

static void dataset_delete(http_req *req)
{
    store *st = http_store(req);
    if (!st) return;
    const char *id = http_req_param(req, "id");
    store_dataset_meta meta;
    store_rc rc = store_dataset_get(st, id, &meta);
    if (rc == STORE_OK && !own_dataset(req, &meta)) rc = STORE_NOT_FOUND;
    if (rc == STORE_OK) rc = store_dataset_delete(st, id);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(req, 404, "no dataset with id %s", id);
        return;
    }
    if (rc == STORE_CONFLICT) {
        http_reply_problem(req, 409, "dataset %s is used by a queued or running job", id);
        return;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, (int)rc);
        return;
    }
    LOG(LOG_INFO, "dataset deleted", "\"request_id\":\"%s\",\"dataset_id\":\"%s\"",
        http_req_id(req), id);
    http_reply_empty(req, 204);
}

int api_datasets_register(http_server *srv)
{
    static const char *const upload_query[] = {"name", "label", NULL};
    const api_ctx *ctx = http_server_app(srv);
    http_route routes[] = {
        {.method = HTTP_POST,
         .pattern = "/v1/datasets",
         .handler = upload_finish,
         .body = HTTP_BODY_STREAM,
         .max_body = ctx->cfg->max_body_dataset,
         .content_types = upload_types,
         .on_begin = upload_begin,
         .on_body = upload_chunk,
         .query = upload_query},
        {.method = HTTP_GET, .pattern = "/v1/datasets", .handler = dataset_list,
         .query = http_page_query},
        {.method = HTTP_GET, .pattern = "/v1/datasets/{id}", .handler = dataset_get},
        {.method = HTTP_DELETE, .pattern = "/v1/datasets/{id}", .handler = dataset_delete},
    };
    return http_route_add(srv, routes, sizeof routes / sizeof routes[0]);
}
