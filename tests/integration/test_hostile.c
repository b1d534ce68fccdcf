/*
 * test_hostile.c — hostile input over HTTP against a real fitd, table-driven.
 *
 * Each row sends one request: JSON nested past any sane depth (job specs, predict
 * inputs, JSON datasets), very long strings, numbers out of range (huge, negative,
 * non-integral where an integer is due, 1e400, -0), duplicate keys, invalid UTF-8
 * (JSON bodies, CSV headers, query parameters), path traversal in every name and
 * in {id} segments (plain and %-encoded), SQL metacharacters and NUL (\u0000) in
 * every string field. A row expects either a 4xx problem+json whose `errors` name
 * the field (a JSON Pointer), or — where a free-text name is legitimately allowed
 * (dataset and job names) — acceptance with the name round-tripping byte for byte.
 * After every row the database is checked: the dataset and job counts moved by
 * exactly the row's expected delta and PRAGMA integrity_check says ok (sqlite3
 * CLI, read-only, when installed). A 5xx or a crash fails the test.
 */
#include <math.h>
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

#include "support.h"

static it_server srv;
static char ds_id[64];  /* a valid dataset (4 features, 3 classes) */
static char job_id[64]; /* a succeeded job on it, for predict */
static int have_sqlite3;

/* ---------------------------------------------------------------- the database */

/* Run the sqlite3 CLI read-only on fitd's database; the first output line. */
static int db_query(const char *sql, char *out, size_t size)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sqlite3 -readonly '%s' \"%s\" 2>&1", srv.db, sql);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    out[0] = 0;
    if (!fgets(out, (int)size, p)) out[0] = 0;
    out[strcspn(out, "\n")] = 0;
    return pclose(p) == 0 ? 0 : -1;
}

typedef struct db_state {
    long datasets, jobs;
} db_state;

static void db_snapshot(db_state *s)
{
    char line[256];
    if (have_sqlite3) {
        assert_int_equal(db_query("PRAGMA integrity_check", line, sizeof line), 0);
        assert_string_equal(line, "ok");
        assert_int_equal(db_query("SELECT (SELECT count(*) FROM datasets) || ' ' || "
                                  "(SELECT count(*) FROM jobs)",
                                  line, sizeof line),
                         0);
        assert_int_equal(sscanf(line, "%ld %ld", &s->datasets, &s->jobs), 2);
        return;
    }
    /* Without the CLI: count through the API (one page holds them all here). */
    it_resp r;
    const char *paths[2] = {"/v1/datasets?limit=1000", "/v1/jobs?limit=1000"};
    long *dst[2] = {&s->datasets, &s->jobs};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(it_get(&srv, paths[i], &r), 0);
        assert_int_equal(r.status, 200);
        json_t *doc = it_json(&r);
        *dst[i] = (long)json_array_size(json_object_get(doc, "items"));
        json_decref(doc);
        it_resp_free(&r);
    }
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    static const char *const args[] = {"--workers", "1", NULL};
    memset(&srv, 0, sizeof srv);
    have_sqlite3 = system("sqlite3 -version >/dev/null 2>&1") == 0;
    if (it_start(&srv, args) != 0) return -1;
    static const char csv[] = "a,b,c,d,y\n0,0,1,1,0\n1,0,0,1,1\n0,1,1,0,2\n1,1,0,0,0\n"
                              "0.5,0.5,1,0,1\n1,0.5,0,1,2\n";
    if (it_upload_csv(&srv, "/v1/datasets?name=hostile-base&label=y", csv, sizeof csv - 1, ds_id,
                      sizeof ds_id) != 0)
        return -1;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"name\":\"predictor\",\"data\":{\"train\":\"%s\"},\"model\":{\"input_shape\":[4],"
             "\"layers\":[{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]},"
             "\"compile\":{\"loss\":\"sparse_categorical_crossentropy\"},"
             "\"fit\":{\"epochs\":1,\"batch_size\":2,\"seed\":1}}",
             ds_id);
    if (it_post_id(&srv, "/v1/jobs", "application/json", spec, strlen(spec), 202, job_id,
                   sizeof job_id) != 0)
        return -1;
    json_decref(it_wait_job(&srv, job_id, "succeeded", 30 * it_slow(), 50));
    return 0;
}

static int teardown(void **state)
{
    return it_stop(&srv) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- the table */

/* Body placeholders: @DS@ becomes the dataset id, @JOB@ the job id, @DEEPA@ 3000
 * nested arrays, @DEEPO@ 3000 nested objects, @DEEP100@ 100 nested arrays around
 * a 1, @LONG@ 10000 'a's. */
typedef struct hcase {
    const char *what;
    const char *method;
    const char *path;       /* placeholders allowed */
    const char *ctype;      /* NULL: none */
    const char *body;       /* NULL: none; placeholders allowed */
    long lo, hi;            /* the expected status range */
    const char *pointer;    /* a 4xx's errors must contain this pointer (NULL: any) */
    const char *round_trip; /* a 2xx's "name" must equal this exactly */
    int d_datasets, d_jobs; /* expected change of the counts on success */
} hcase;

#define SPEC_HEAD "{\"data\":{\"train\":\"@DS@\"},"
#define MODEL_OK "\"model\":{\"input_shape\":[4],\"layers\":[{\"type\":\"dense\",\"units\":3," \
                 "\"activation\":\"softmax\"}]},"
#define COMPILE_OK "\"compile\":{\"loss\":\"sparse_categorical_crossentropy\"}"
#define FIT_OK ",\"fit\":{\"epochs\":1,\"batch_size\":2}"
#define LAYER(units, extra) \
    "\"model\":{\"input_shape\":[4],\"layers\":[{\"type\":\"dense\",\"units\":" units extra "}]},"
#define SQL "'; DROP TABLE jobs; --"
#define SQLJ "'; DROP TABLE jobs; --"
#define TRAV "../../etc/passwd"

static const hcase cases[] = {
    /* nesting depth */
    {"spec: 3000 nested arrays", "POST", "/v1/jobs", "application/json", "@DEEPA@", 400, 400, "", NULL, 0, 0},
    {"spec: 3000 nested objects", "POST", "/v1/jobs", "application/json", "@DEEPO@", 400, 400, "", NULL, 0, 0},
    {"spec: units nested 100 deep", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("@DEEP100@", "") COMPILE_OK "}", 422, 422, "/model/layers/0/units", NULL, 0, 0},
    {"predict: inputs 3000 deep", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     "{\"inputs\":@DEEPA@}", 400, 400, NULL, NULL, 0, 0},
    {"predict: inputs 100 deep", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     "{\"inputs\":[@DEEP100@]}", 422, 422, NULL, NULL, 0, 0},
    {"json dataset: x 3000 deep", "POST", "/v1/datasets", "application/json",
     "{\"x\":@DEEPA@,\"y\":[1]}", 400, 400, "", NULL, 0, 0},
    {"json dataset: x 100 deep", "POST", "/v1/datasets", "application/json",
     "{\"x\":[@DEEP100@],\"y\":[1]}", 422, 422, "/x/0/0", NULL, 0, 0},
    /* long strings */
    {"spec: 10000-char job name", "POST", "/v1/jobs", "application/json",
     "{\"name\":\"@LONG@\"," MODEL_OK COMPILE_OK ",\"data\":{\"train\":\"@DS@\"}}", 422, 422, "/name", NULL, 0, 0},
    {"spec: 10000-char layer name", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("3", ",\"name\":\"@LONG@\"") COMPILE_OK "}", 422, 422, "/model/layers/0/name", NULL, 0, 0},
    {"spec: 10000-char dataset id", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"@LONG@\"}," MODEL_OK COMPILE_OK "}", 422, 422, "/data/train", NULL, 0, 0},
    {"spec: 10000-char key", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"@LONG@\":1}", 422, 422, NULL, NULL, 0, 0},
    {"csv: 10000-char ?name=", "POST", "/v1/datasets?name=@LONG@", "text/csv", "a,y\n1,2\n", 400, 400, "/name", NULL, 0, 0},
    {"csv: 10000-char ?label=", "POST", "/v1/datasets?label=@LONG@", "text/csv", "a,y\n1,2\n", 400, 400, "/label", NULL, 0, 0},
    {"json dataset: 10000-char name", "POST", "/v1/datasets", "application/json",
     "{\"name\":\"@LONG@\",\"x\":[[1]],\"y\":[1]}", 422, 422, "/name", NULL, 0, 0},
    /* numbers */
    {"spec: units 1e400 (well-formed, out of range)", "POST", "/v1/jobs", "application/json", SPEC_HEAD LAYER("1e400", "") COMPILE_OK "}", 422, 422, "/model/layers/0/units", NULL, 0, 0},
    {"spec: units 2^70", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("1180591620717411303424", "") COMPILE_OK "}", 422, 422, "/model/layers/0/units", NULL, 0, 0},
    {"json: out-of-range number under escaped keys", "POST", "/v1/jobs", "application/json",
     "{\"a\\\"b\": [1, {\"c~/d\": -1e999}]}", 422, 422, "/a\"b/1/c~0~1d", NULL, 0, 0},
    {"spec: units -3", "POST", "/v1/jobs", "application/json", SPEC_HEAD LAYER("-3", "") COMPILE_OK "}", 422, 422, "/model/layers/0/units", NULL, 0, 0},
    {"spec: units 2.5", "POST", "/v1/jobs", "application/json", SPEC_HEAD LAYER("2.5", "") COMPILE_OK "}", 422, 422, "/model/layers/0/units", NULL, 0, 0},
    {"spec: units \"3\"", "POST", "/v1/jobs", "application/json", SPEC_HEAD LAYER("\"3\"", "") COMPILE_OK "}", 422, 422, "/model/layers/0/units", NULL, 0, 0},
    {"spec: epochs -0", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"epochs\":-0}}", 422, 422, "/fit/epochs", NULL, 0, 0},
    {"spec: batch_size 1e18", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"batch_size\":1e18}}", 422, 422, "/fit/batch_size", NULL, 0, 0},
    {"spec: seed -1", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"seed\":-1}}", 422, 422, "/fit/seed", NULL, 0, 0},
    /* the dataset's 6 samples known at submission: an empty side is refused then, not at run time */
    {"spec: validation_split 0.9999 (no training sample)", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"validation_split\":0.9999}}", 422, 422, "/fit/validation_split", NULL, 0, 0},
    {"spec: validation_split 1e-300 (no validation sample)", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"validation_split\":1e-300}}", 422, 422, "/fit/validation_split", NULL, 0, 0},
    {"spec: validation_split 0.5 of 6 samples", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"validation_split\":0.5,\"epochs\":1}}", 202, 202, NULL, NULL, 0, 1},
    {"spec: dropout rate -0.5", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD "\"model\":{\"input_shape\":[4],\"layers\":[{\"type\":\"dropout\",\"rate\":-0.5},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}," COMPILE_OK "}", 422, 422, "/model/layers/0/rate", NULL, 0, 0},
    {"spec: learning_rate 1e400", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK "\"compile\":{\"loss\":\"mse\",\"optimizer\":{\"name\":\"sgd\",\"learning_rate\":1e400}}}", 422, 422, "/compile/optimizer/learning_rate", NULL, 0, 0},
    {"spec: input_shape 2^40", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD "\"model\":{\"input_shape\":[1099511627776],\"layers\":[{\"type\":\"dense\",\"units\":3}]}," COMPILE_OK "}", 422, 422, "/model/input_shape/0", NULL, 0, 0},
    {"predict: input 1e300 (float overflow)", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     "{\"inputs\":[[1e300,0,0,0]]}", 422, 422, NULL, NULL, 0, 0},
    {"predict: input 1e400", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     "{\"inputs\":[[1e400,0,0,0]]}", 422, 422, "/inputs/0/0", NULL, 0, 0},
    {"json dataset: x 1e400", "POST", "/v1/datasets", "application/json",
     "{\"x\":[[1e400]],\"y\":[1]}", 422, 422, "/x/0/0", NULL, 0, 0},
    {"spec: seed 2^64 (past an integer)", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"seed\":18446744073709551616}}", 422, 422, "/fit/seed", NULL, 0, 0},
    {"json dataset: x 1e39 (float overflow)", "POST", "/v1/datasets", "application/json",
     "{\"x\":[[1e39]],\"y\":[1]}", 422, 422, "/x/0/0", NULL, 0, 0},
    {"csv: value 1e39", "POST", "/v1/datasets", "text/csv", "a,y\n1e39,1\n", 422, 422, NULL, NULL, 0, 0},
    {"list: limit=-1", "GET", "/v1/jobs?limit=-1", NULL, NULL, 400, 400, "/limit", NULL, 0, 0},
    {"list: limit=1.5", "GET", "/v1/datasets?limit=1.5", NULL, NULL, 400, 400, "/limit", NULL, 0, 0},
    {"list: limit=1e400", "GET", "/v1/jobs?limit=1e400", NULL, NULL, 400, 400, "/limit", NULL, 0, 0},
    {"list: limit=99999999999999999999", "GET", "/v1/jobs?limit=99999999999999999999", NULL, NULL, 400, 400, "/limit", NULL, 0, 0},
    {"csv: label=99999999999999999999", "POST", "/v1/datasets?label=99999999999999999999", "text/csv", "a,y\n1,2\n", 400, 422, NULL, NULL, 0, 0},
    /* duplicate keys */
    {"spec: duplicate name", "POST", "/v1/jobs", "application/json",
     "{\"name\":\"a\",\"name\":\"b\"," MODEL_OK COMPILE_OK "}", 400, 400, "", NULL, 0, 0},
    {"spec: duplicate layer key", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("3", ",\"units\":4") COMPILE_OK "}", 400, 400, "", NULL, 0, 0},
    {"json dataset: duplicate x", "POST", "/v1/datasets", "application/json",
     "{\"x\":[[1]],\"x\":[[2]],\"y\":[1]}", 400, 400, "", NULL, 0, 0},
    {"predict: duplicate inputs", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     "{\"inputs\":[[0,0,0,0]],\"inputs\":[[1,1,1,1]]}", 400, 400, NULL, NULL, 0, 0},
    /* invalid UTF-8 */
    {"spec: \\xff in name", "POST", "/v1/jobs", "application/json",
     "{\"name\":\"a\xff\xfe\"," MODEL_OK COMPILE_OK "}", 400, 400, "", NULL, 0, 0},
    {"spec: overlong '/' (\\xc0\\xaf) in dataset id", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"..\xc0\xaf..\"}," MODEL_OK COMPILE_OK "}", 400, 400, "", NULL, 0, 0},
    {"json dataset: \\xff in name", "POST", "/v1/datasets", "application/json",
     "{\"name\":\"\xff\",\"x\":[[1]],\"y\":[1]}", 400, 400, "", NULL, 0, 0},
    {"csv: \\xff in ?name=", "POST", "/v1/datasets?name=%FF%FE", "text/csv", "a,y\n1,2\n", 400, 400, "/name", NULL, 0, 0},
    {"csv: truncated UTF-8 in ?name=", "POST", "/v1/datasets?name=ab%E2%82", "text/csv", "a,y\n1,2\n", 400, 400, "/name", NULL, 0, 0},
    {"csv: \\xff in ?label=", "POST", "/v1/datasets?label=%FF", "text/csv", "a,y\n1,2\n", 400, 422, NULL, NULL, 0, 0},
    {"csv: \\xff in header, bad value under it", "POST", "/v1/datasets", "text/csv",
     "\xff\xfe,y\nabc,1\n", 422, 422, NULL, NULL, 0, 0},
    {"csv: \\xff in header, label by that name (accepted)", "POST", "/v1/datasets?label=%FF%FE", "text/csv",
     "\xff\xfe,y\n1,2\n", 201, 201, NULL, NULL, 1, 0}, /* header names are not stored */
    {"list: \\xff in ?cursor=", "GET", "/v1/datasets?cursor=%FF%FE", NULL, NULL, 400, 400, "/cursor", NULL, 0, 0},
    {"list: \\xff in ?status=", "GET", "/v1/jobs?status=%FF", NULL, NULL, 400, 400, "/status", NULL, 0, 0},
    {"get: \\xff in {id}", "GET", "/v1/jobs/%FF%FE", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"chart: \\xff in ?metric=", "GET", "/v1/jobs/@JOB@/metrics.svg?metric=%FF", NULL, NULL, 400, 400, "/metric", NULL, 0, 0},
    {"csv: \\xff in ?label= not in the header", "POST", "/v1/datasets?label=a%FFb", "text/csv", "a,y\n1,2\n", 422, 422, "/label", NULL, 0, 0},
    /* path traversal */
    {"csv: traversal ?name= (free text, kept verbatim)", "POST", "/v1/datasets?name=..%2F..%2Fetc%2Fpasswd",
     "text/csv", "a,y\n1,2\n", 201, 201, NULL, TRAV, 1, 0},
    {"spec: traversal job name (free text, kept verbatim)", "POST", "/v1/jobs", "application/json",
     "{\"name\":\"" TRAV "\"," "\"data\":{\"train\":\"@DS@\"}," MODEL_OK COMPILE_OK FIT_OK "}", 202, 202, NULL, TRAV, 0, 1},
    {"spec: traversal dataset id", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"" TRAV "\"}," MODEL_OK COMPILE_OK "}", 422, 422, "/data/train", NULL, 0, 0},
    {"spec: traversal validation id", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"@DS@\",\"validation\":\"..\\/..\\/x\"}," MODEL_OK COMPILE_OK "}", 422, 422, "/data/validation", NULL, 0, 0},
    {"spec: traversal layer name", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("3", ",\"name\":\"" TRAV "\"") COMPILE_OK "}", 422, 422, "/model/layers/0/name", NULL, 0, 0},
    {"get dataset: %2E%2E%2F in {id}", "GET", "/v1/datasets/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"delete dataset: ..%2F in {id}", "DELETE", "/v1/datasets/..%2F..%2Fetc%2Fpasswd", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"get job: %2E%2E in {id}", "GET", "/v1/jobs/%2E%2E/metrics", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"weights: traversal {id}", "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd/weights", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"delete job: traversal {id}", "DELETE", "/v1/jobs/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    /* SQL metacharacters and NUL */
    {"csv: SQL in ?name= (free text, kept verbatim)", "POST",
     "/v1/datasets?name=%27%3B%20DROP%20TABLE%20jobs%3B%20--", "text/csv", "a,y\n1,2\n", 201, 201, NULL, SQL, 1, 0},
    {"json dataset: SQL name (free text, kept verbatim)", "POST", "/v1/datasets", "application/json",
     "{\"name\":\"" SQLJ "\\\"\",\"x\":[[1]],\"y\":[1]}", 201, 201, NULL, SQL "\"", 1, 0},
    {"spec: SQL job name (free text, kept verbatim)", "POST", "/v1/jobs", "application/json",
     "{\"name\":\"" SQLJ "\"," "\"data\":{\"train\":\"@DS@\"}," MODEL_OK COMPILE_OK FIT_OK "}", 202, 202, NULL, SQL, 0, 1},
    {"spec: SQL dataset id", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"" SQLJ "\"}," MODEL_OK COMPILE_OK "}", 422, 422, "/data/train", NULL, 0, 0},
    {"spec: SQL-ish valid id that does not exist", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"x--1.OR.1\"}," MODEL_OK COMPILE_OK "}", 404, 422, NULL, NULL, 0, 0},
    {"spec: SQL layer name", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("3", ",\"name\":\"" SQLJ "\"") COMPILE_OK "}", 422, 422, "/model/layers/0/name", NULL, 0, 0},
    {"spec: SQL activation", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD LAYER("3", ",\"activation\":\"" SQLJ "\"") COMPILE_OK "}", 422, 422, "/model/layers/0/activation", NULL, 0, 0},
    {"spec: SQL loss", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK "\"compile\":{\"loss\":\"" SQLJ "\"}}", 422, 422, "/compile/loss", NULL, 0, 0},
    {"spec: SQL optimizer", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK "\"compile\":{\"loss\":\"mse\",\"optimizer\":\"" SQLJ "\"}}", 422, 422, "/compile/optimizer", NULL, 0, 0},
    {"spec: SQL metric", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK "\"compile\":{\"loss\":\"mse\",\"metrics\":[\"" SQLJ "\"]}}", 422, 422, "/compile/metrics/0", NULL, 0, 0},
    {"spec: SQL monitor", "POST", "/v1/jobs", "application/json",
     SPEC_HEAD MODEL_OK COMPILE_OK ",\"fit\":{\"early_stopping\":{\"monitor\":\"" SQLJ "\"}}}", 422, 422, "/fit/early_stopping/monitor", NULL, 0, 0},
    {"spec: NUL in name", "POST", "/v1/jobs", "application/json",
     "{\"name\":\"a\\u0000b\"," MODEL_OK COMPILE_OK "}", 400, 400, "", NULL, 0, 0},
    {"spec: NUL in dataset id", "POST", "/v1/jobs", "application/json",
     "{\"data\":{\"train\":\"@DS@\\u0000x\"}," MODEL_OK COMPILE_OK "}", 400, 400, "", NULL, 0, 0},
    {"json dataset: NUL in name", "POST", "/v1/datasets", "application/json",
     "{\"name\":\"a\\u0000b\",\"x\":[[1]],\"y\":[1]}", 400, 400, "", NULL, 0, 0},
    {"csv: SQL in ?label=", "POST", "/v1/datasets?label=%27%20OR%201%3D1%20--", "text/csv", "a,y\n1,2\n", 422, 422, "/label", NULL, 0, 0},
    {"delete dataset: %00 after a real {id}", "DELETE", "/v1/datasets/@DS@%00junk", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"get job: %00 after a real {id}", "GET", "/v1/jobs/@JOB@%00", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"csv: %00 in ?name= (was kept as the text %00)", "POST", "/v1/datasets?name=a%00b", "text/csv", "a,y\n1,2\n", 400, 400, "/name", NULL, 0, 0},
    {"weights: %00 in ?name=", "POST", "/v1/weights?name=w%00", "application/octet-stream", "xx", 400, 400, "/name", NULL, 0, 0},
    {"csv: %00 as ?label=", "POST", "/v1/datasets?label=%00", "text/csv", "a,y\n1,2\n", 422, 422, "/label", NULL, 0, 0},
    {"list: ?limit= twice (the first won)", "GET", "/v1/jobs?limit=1&limit=2", NULL, NULL, 400, 400, "/limit", NULL, 0, 0},
    {"list: ?limit without a value (read as none)", "GET", "/v1/datasets?limit", NULL, NULL, 400, 400, "/limit", NULL, 0, 0},
    {"csv: ?name= twice", "POST", "/v1/datasets?name=a&name=b", "text/csv", "a,y\n1,2\n", 400, 400, "/name", NULL, 0, 0},
    {"list: ?state= for ?status= (all jobs came back)", "GET", "/v1/jobs?state=running", NULL, NULL, 400, 400, "/state", NULL, 0, 0},
    {"csv: a misspelt ?lable=", "POST", "/v1/datasets?name=a&lable=y", "text/csv", "a,y\n1,2\n", 400, 400, "/lable", NULL, 0, 0},
    {"chart: a parameter the route does not take", "GET", "/v1/jobs/@JOB@/metrics.svg?verbose=1", NULL, NULL, 400, 400, "/verbose", NULL, 0, 0},
    {"probe: a query means nothing there (ignored)", "GET", "/healthz?probe=1&probe=2", NULL, NULL, 200, 200, NULL, NULL, 0, 0},
    /* pointers and repeated parts */
    {"json dataset: unknown key with / and ~", "POST", "/v1/datasets", "application/json",
     "{\"x\":[[1]],\"y\":[1],\"a/b~c\":1}", 422, 422, "/a~1b~0c", NULL, 0, 0},
    {"multipart: name part twice", "POST", "/v1/datasets", "multipart/form-data; boundary=XyZ",
     "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\na\r\n"
     "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nb\r\n--XyZ--\r\n",
     422, 422, "/name", NULL, 0, 0},
    {"multipart: unknown part a/b", "POST", "/v1/datasets", "multipart/form-data; boundary=XyZ",
     "--XyZ\r\nContent-Disposition: form-data; name=\"a/b\"\r\n\r\n1\r\n--XyZ--\r\n",
     400, 400, "/a~1b", NULL, 0, 0},
    /* outputs JSON cannot hold */
    {"predict: outputs overflow float32 (null, not a 503)", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     /* every sign pattern: some unit's sum overflows to +inf, so softmax gives NaN */
     "{\"inputs\":[[-3.4e38,-3.4e38,-3.4e38,-3.4e38],[3.4e38,-3.4e38,-3.4e38,-3.4e38],[-3.4e38,3.4e38,-3.4e38,-3.4e38],[3.4e38,3.4e38,-3.4e38,-3.4e38],[-3.4e38,-3.4e38,3.4e38,-3.4e38],[3.4e38,-3.4e38,3.4e38,-3.4e38],[-3.4e38,3.4e38,3.4e38,-3.4e38],[3.4e38,3.4e38,3.4e38,-3.4e38],"
     "[-3.4e38,-3.4e38,-3.4e38,3.4e38],[3.4e38,-3.4e38,-3.4e38,3.4e38],[-3.4e38,3.4e38,-3.4e38,3.4e38],[3.4e38,3.4e38,-3.4e38,3.4e38],[-3.4e38,-3.4e38,3.4e38,3.4e38],[3.4e38,-3.4e38,3.4e38,3.4e38],[-3.4e38,3.4e38,3.4e38,3.4e38],[3.4e38,3.4e38,3.4e38,3.4e38]]}", 200, 200, NULL, NULL, 0, 0},
    {"list: SQL in ?status=", "GET", "/v1/jobs?status=%27%20OR%201%3D1%20--", NULL, NULL, 400, 400, "/status", NULL, 0, 0},
    {"list: SQL in ?cursor=", "GET", "/v1/jobs?cursor=%27%20OR%201%3D1%20--", NULL, NULL, 400, 400, "/cursor", NULL, 0, 0},
    {"get dataset: SQL in {id}", "GET", "/v1/datasets/%27%20OR%20%271%27%3D%271", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"delete dataset: SQL in {id}", "DELETE", "/v1/datasets/%27%3B%20DELETE%20FROM%20datasets%3B--", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"cancel: SQL in {id}", "POST", "/v1/jobs/%27%20OR%201%3D1%20--/cancel", NULL, NULL, 404, 404, NULL, NULL, 0, 0},
    {"predict: SQL string input", "POST", "/v1/jobs/@JOB@/predict", "application/json",
     "{\"inputs\":[[\"" SQLJ "\",0,0,0]]}", 422, 422, NULL, NULL, 0, 0},
};

/* ---------------------------------------------------------------- running a row */

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap = *cap ? *cap * 2 : 1024;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

static void append_rep(char **b, size_t *l, size_t *c, const char *s, int times)
{
    for (int i = 0; i < times; i++) append(b, l, c, s, strlen(s));
}

/* Expand the placeholders of `tmpl`; malloc'ed. */
static char *expand(const char *tmpl, size_t *out_len)
{
    char *b = NULL;
    size_t l = 0, c = 0;
    append(&b, &l, &c, "", 0);
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "@DS@", 4) == 0) append(&b, &l, &c, ds_id, strlen(ds_id)), p += 4;
        else if (strncmp(p, "@JOB@", 5) == 0) append(&b, &l, &c, job_id, strlen(job_id)), p += 5;
        else if (strncmp(p, "@DEEPA@", 7) == 0) {
            append_rep(&b, &l, &c, "[", 3000);
            append_rep(&b, &l, &c, "]", 3000);
            p += 7;
        } else if (strncmp(p, "@DEEPO@", 7) == 0) {
            append_rep(&b, &l, &c, "{\"a\":", 3000);
            append(&b, &l, &c, "1", 1);
            append_rep(&b, &l, &c, "}", 3000);
            p += 7;
        } else if (strncmp(p, "@DEEP100@", 9) == 0) {
            append_rep(&b, &l, &c, "[", 100);
            append(&b, &l, &c, "1", 1);
            append_rep(&b, &l, &c, "]", 100);
            p += 9;
        } else if (strncmp(p, "@LONG@", 6) == 0) {
            append_rep(&b, &l, &c, "aaaaaaaaaa", 1000);
            p += 6;
        } else {
            append(&b, &l, &c, p, 1);
            p++;
        }
    }
    *out_len = l;
    return b;
}

/* The message of the problem's error at `pointer`, or NULL when it names none. */
static const char *pointer_message(json_t *problem, const char *pointer)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(problem, "errors"), i, e) {
        const char *p = json_string_value(json_object_get(e, "pointer"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (p && strcmp(p, pointer) == 0) return m ? m : "";
    }
    return NULL;
}

static int has_pointer(json_t *problem, const char *pointer)
{
    return pointer_message(problem, pointer) != NULL;
}

/* r is a 422 problem with an error at `pointer` whose message contains `needle`. */
static void expect_422_at(const it_resp *r, const char *pointer, const char *needle)
{
    json_t *p = assert_problem(r, 422);
    assert_true(has_pointer(p, pointer));
    const char *msg = pointer_message(p, pointer);
    assert_non_null(msg);
    if (!strstr(msg, needle)) fail_msg("%s: \"%s\" lacks \"%s\"", pointer, msg, needle);
    json_decref(p);
}

static int failures;

/* Report a row's failure and go on with the next row (all are listed at the end). */
#define ROW_FAIL(...)                   \
    do {                                \
        print_error(__VA_ARGS__);       \
        print_error("\n");              \
        failures++;                     \
        goto done;                      \
    } while (0)

static void run_case(const hcase *c)
{
    db_state before, after;
    db_snapshot(&before);
    size_t body_len = 0, path_len = 0;
    char *path = expand(c->path, &path_len);
    char *body = c->body ? expand(c->body, &body_len) : NULL;
    char ct[128];
    const char *headers[3] = {NULL, NULL, NULL};
    if (c->ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", c->ctype);
        headers[0] = ct;
    }
    it_resp r;
    memset(&r, 0, sizeof r);
    int rc = it_request(&srv, c->method, path, headers, body, body_len, &r);
    print_message("%-52.52s %s %.60s -> %ld\n", c->what, c->method, path, r.status);
    if (rc != 0) ROW_FAIL("%s: no response (did fitd crash?)", c->what);
    if (r.status >= 500) ROW_FAIL("%s: status %ld: %s", c->what, r.status, r.body);
    if (r.status < c->lo || r.status > c->hi)
        ROW_FAIL("%s: status %ld, expected %ld..%ld: %s", c->what, r.status, c->lo, c->hi, r.body);
    int d_ds = 0, d_jobs = 0;
    if (r.status >= 400) {
        json_t *p = assert_problem(&r, r.status);
        int named = !c->pointer || has_pointer(p, c->pointer);
        /* Every problem says what went wrong, even when it echoes invalid UTF-8. */
        int detailed = json_is_string(json_object_get(p, "detail"));
        json_decref(p);
        if (!detailed) ROW_FAIL("%s: the problem has no detail: %s", c->what, r.body);
        if (!named)
            ROW_FAIL("%s: the problem does not name %s: %s", c->what, c->pointer[0] ? c->pointer : "\"\"",
                     r.body);
    } else {
        json_t *doc = it_json(&r);
        assert_non_null(doc);
        if (c->round_trip) {
            /* The stored name, read back by id, equals what was sent. */
            const char *id = json_string_value(json_object_get(doc, "id"));
            assert_non_null(id);
            char get[160];
            snprintf(get, sizeof get, "/v1/%s/%s", c->d_jobs ? "jobs" : "datasets", id);
            it_resp g;
            assert_int_equal(it_get(&srv, get, &g), 0);
            assert_int_equal(g.status, 200);
            json_t *gd = it_json(&g);
            json_t *nm = json_object_get(gd, "name");
            if (!nm && c->d_jobs) nm = json_object_get(json_object_get(gd, "spec"), "name");
            const char *name = json_string_value(nm);
            int same = name && strcmp(name, c->round_trip) == 0;
            if (!same) print_error("%s: name came back as '%s'\n", c->what, name ? name : "(none)");
            json_decref(gd);
            it_resp_free(&g);
            if (!same) {
                json_decref(doc);
                failures++;
                goto done;
            }
        }
        json_decref(doc);
        d_ds = c->d_datasets;
        d_jobs = c->d_jobs;
    }
    db_snapshot(&after);
    if (after.datasets != before.datasets + d_ds || after.jobs != before.jobs + d_jobs)
        ROW_FAIL("%s: datasets %ld -> %ld, jobs %ld -> %ld (expected +%d, +%d)", c->what,
                 before.datasets, after.datasets, before.jobs, after.jobs, d_ds, d_jobs);
done:
    it_resp_free(&r);
    free(path);
    free(body);
}

/* An upload far larger than the early-discard allowance, refused at its header:
 * the 422 still arrives (the rest of a body within the route's limit is read and
 * dropped; closing the connection lost the reply). */
static void test_large_upload_early_error(void **state)
{
    (void)state;
    size_t rows = 6u << 20, len = 4 + rows * 4; /* "a,b\n" then "1,2\n" x 6 Mi: 24 MiB */
    char *body = malloc(len);
    assert_non_null(body);
    memcpy(body, "a,b\n", 4);
    for (size_t i = 0; i < rows; i++) memcpy(body + 4 + 4 * i, "1,2\n", 4);
    const char *headers[] = {"Content-Type: text/csv", NULL};
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", "/v1/datasets?label=nosuch", headers, body, len, &r), 0);
    json_t *p = assert_problem(&r, 422);
    assert_true(has_pointer(p, "/label"));
    json_decref(p);
    it_resp_free(&r);
    free(body);
}

/* POST a safetensors file (header text `hdr`, then `data`) to /v1/weights: it must
 * be a 422 whose detail contains `want`. */
static void weights_refused(const char *hdr, const void *data, size_t data_len, const char *want)
{
    uint64_t n = strlen(hdr);
    size_t len = 8 + (size_t)n + data_len;
    unsigned char *file = malloc(len);
    assert_non_null(file);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)(n >> (8 * i));
    memcpy(file + 8, hdr, n);
    memcpy(file + 8 + n, data, data_len);
    const char *headers[] = {"Content-Type: application/octet-stream", NULL};
    it_resp r;
    assert_int_equal(it_request(&srv, "POST", "/v1/weights", headers, file, len, &r), 0);
    free(file);
    json_t *p = assert_problem(&r, 422);
    const char *detail = json_string_value(json_object_get(p, "detail"));
    assert_non_null(detail);
    if (!strstr(detail, want)) fail_msg("detail \"%s\" lacks \"%s\"", detail, want);
    json_decref(p);
    it_resp_free(&r);
}

/* A safetensors header whose tensor name is not UTF-8: a 422 saying so (the name
 * reached Jansson, which refused it: a 503 "out of memory", or a 422 without a
 * detail). */
static void test_weights_name_not_utf8(void **state)
{
    (void)state;
    const float zero = 0.0f;
    weights_refused("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &zero,
                    sizeof zero, "UTF-8");
}

/* Weights holding NaN or an infinity are refused at upload (422 naming the tensor
 * and index): a warm start from them was accepted and failed at run time. */
static void test_weights_not_finite(void **state)
{
    (void)state;
    static const char hdr[] = "{\"d/kernel\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    const float nan_data[2] = {1.0f, NAN}, inf_data[2] = {1.0f, INFINITY};
    weights_refused(hdr, nan_data, sizeof nan_data, "tensor d/kernel holds NaN at index 1");
    weights_refused(hdr, inf_data, sizeof inf_data, "tensor d/kernel holds an infinity at index 1");
}

/* A prediction of more output values than one reply may hold (4194304) is a 422
 * at /inputs before anything is computed: a 2 KB body of one-feature rows for an
 * 8192-unit output layer (513 rows: 4202496 values) used to build a reply of
 * gigabytes' worth of JSON values. A few rows still work. */
static void test_predict_too_large(void **state)
{
    (void)state;
    char ds[64], job[64], spec[1024], path[128];
    static const char csv[] = "x,y\n0,0\n1,1\n";
    assert_int_equal(it_upload_csv(&srv, "/v1/datasets?name=wide-out", csv, sizeof csv - 1, ds,
                                   sizeof ds),
                     0);
    snprintf(spec, sizeof spec,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"input_shape\":[1],\"layers\":"
             "[{\"type\":\"dense\",\"units\":8192,\"activation\":\"softmax\"}]},"
             "\"compile\":{\"loss\":\"sparse_categorical_crossentropy\"},\"fit\":{\"epochs\":1}}",
             ds);
    assert_int_equal(it_post_id(&srv, "/v1/jobs", "application/json", spec, strlen(spec), 202, job,
                                sizeof job),
                     0);
    json_decref(it_wait_job(&srv, job, "succeeded", 30 * it_slow(), 50));
    it_resp r;
    json_t *doc;
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", job);
    static const int tries[] = {2, 513};
    for (size_t t = 0; t < 2; t++) {
        int rows = tries[t];
        size_t len = 0, cap = 0;
        char *body = NULL;
        append(&body, &len, &cap, "{\"inputs\":[[0]", 14);
        append_rep(&body, &len, &cap, ",[1]", rows - 1);
        append(&body, &len, &cap, "]}", 2);
        assert_int_equal(it_post_json(&srv, path, body, &r), 0);
        free(body);
        if (rows == 2) {
            assert_int_equal(r.status, 200);
            doc = it_json(&r);
            json_t *out = json_object_get(doc, "outputs");
            assert_int_equal(json_array_size(out), 2);
            assert_int_equal(json_array_size(json_array_get(out, 1)), 8192);
            assert_int_equal(json_array_size(json_object_get(doc, "classes")), 2);
            json_decref(doc);
        } else {
            expect_422_at(&r, "/inputs", "4202496 values");
        }
        it_resp_free(&r);
    }
}

/* Binary crossentropy's targets must lie in [0, 1]: a dataset whose targets leave
 * that range is a 422 at /data/train when the job is submitted (the range is kept
 * at upload), where it used to be accepted and fail at its first batch. Soft
 * targets inside the range are fine. */
static void test_bce_target_range(void **state)
{
    (void)state;
    static const char *const ys[] = {"[-1,1,0]", "[0.5,1.5,0]", "[0,0.25,1]"};
    for (int k = 0; k < 3; k++) {
        char body[256], ds[64], spec[1024];
        snprintf(body, sizeof body, "{\"name\":\"bce-%d\",\"x\":[[1,2],[1,3],[0,1]],\"y\":%s}", k,
                 ys[k]);
        assert_int_equal(it_post_id(&srv, "/v1/datasets", "application/json", body, strlen(body),
                                    201, ds, sizeof ds),
                         0);
        it_resp r;
        snprintf(spec, sizeof spec,
                 "{\"data\":{\"train\":\"%s\"},\"model\":{\"input_shape\":[2],\"layers\":"
                 "[{\"type\":\"dense\",\"units\":1,\"activation\":\"sigmoid\"}]},"
                 "\"compile\":{\"loss\":\"binary_crossentropy\"},\"fit\":{\"epochs\":1}}",
                 ds);
        assert_int_equal(it_post_json(&srv, "/v1/jobs", spec, &r), 0);
        if (k < 2) {
            expect_422_at(&r, "/data/train", "needs targets in [0, 1]");
        } else {
            assert_int_equal(r.status, 202);
        }
        it_resp_free(&r);
    }
}

/* sparse_categorical_accuracy compares an argmax with one label per sample: with
 * one-hot targets (categorical_crossentropy) it is a 422 at the metric, where the
 * core used to compare the targets with the outputs element by element. */
static void test_sparse_accuracy_needs_labels(void **state)
{
    (void)state;
    char ds[64], spec[1024];
    static const char body[] = "{\"name\":\"one-hot\",\"x\":[[1,2],[1,3],[0,1]],"
                               "\"y\":[[0,1],[1,0],[0,1]]}";
    assert_int_equal(it_post_id(&srv, "/v1/datasets", "application/json", body, sizeof body - 1,
                                201, ds, sizeof ds),
                     0);
    snprintf(spec, sizeof spec,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"input_shape\":[2],\"layers\":"
             "[{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}]},"
             "\"compile\":{\"loss\":\"categorical_crossentropy\",\"metrics\":"
             "[\"accuracy\",\"sparse_categorical_accuracy\"]},\"fit\":{\"epochs\":1}}",
             ds);
    it_resp r;
    assert_int_equal(it_post_json(&srv, "/v1/jobs", spec, &r), 0);
    json_t *p = assert_problem(&r, 422);
    assert_true(has_pointer(p, "/compile/metrics/1"));
    assert_false(has_pointer(p, "/compile/metrics/0")); /* "accuracy" is categorical here */
    json_decref(p);
    it_resp_free(&r);
}

static void test_hostile_table(void **state)
{
    failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    if (failures) fail_msg("%d of %zu hostile-input rows failed (listed above)", failures,
                           sizeof cases / sizeof cases[0]);
}

/* The rows' own machinery can fail: a wrong expectation is caught. */
static void test_table_can_fail(void **state)
{
    it_resp r;
    assert_int_equal(it_get(&srv, "/v1/jobs?limit=-1", &r), 0);
    json_t *p = assert_problem(&r, 400);
    assert_true(has_pointer(p, "/limit"));
    assert_false(has_pointer(p, "/cursor"));
    json_decref(p);
    it_resp_free(&r);
    size_t n;
    char *s = expand("x@DEEP100@y", &n);
    assert_int_equal(n, 203);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_can_fail),
        cmocka_unit_test(test_hostile_table),
        cmocka_unit_test(test_large_upload_early_error),
        cmocka_unit_test(test_weights_name_not_utf8),
        cmocka_unit_test(test_predict_too_large),
        cmocka_unit_test(test_bce_target_range),
        cmocka_unit_test(test_weights_not_finite),
        cmocka_unit_test(test_sparse_accuracy_needs_labels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
