/*
 * test_store.c — the SQLite store against a real database file in a temp folder:
 * migrations, refusal of foreign or newer databases, datasets (bit-exact round
 * trip, pagination, atomicity under disk full), jobs (idempotency, claim order,
 * concurrent claims, epoch commits, cancel, finish, delete cascade, recovery).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "embedded.h"
#include "nn.h"
#include "store.h"
#include "support.h"

typedef struct fx {
    char dir[256];
    char path[300];
    store *s;
} fx;

static void path_in(const fx *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char err[512];
    const char *tmp = getenv("TMPDIR");
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "%s/fitd-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    path_in(f, "fitd.db", f->path, sizeof f->path);
    f->s = store_open(f->path, err, sizeof err);
    if (!f->s) {
        fprintf(stderr, "store_open: %s\n", err);
        rmdir(f->dir);
        free(f);
        return -1;
    }
    if (store_migrate(f->s) != STORE_OK) {
        fprintf(stderr, "store_migrate: %s\n", store_errmsg(f->s));
        store_close(f->s);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    static const char *const names[] = {"fitd.db", "fitd.db-wal", "fitd.db-shm", "garbage.db",
                                        "newer.db", "newer.db-wal", "newer.db-shm"};
    char p[320];
    store_close(f->s);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in(f, names[i], p, sizeof p);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* One integer from a query run on a separate raw connection (inspection only). */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The highest version among the embedded migrations. */
static int newest_embedded(void)
{
    int v = 0;
    for (const srv_embedded_file *e = srv_embedded; e->path; e++)
        if (strncmp(e->path, "migrations/", 11) == 0) {
            int k = atoi(e->path + 11);
            if (k > v) v = k;
        }
    return v;
}

static int count_embedded(void)
{
    int n = 0;
    for (const srv_embedded_file *e = srv_embedded; e->path; e++)
        if (strncmp(e->path, "migrations/", 11) == 0) n++;
    return n;
}

/* ---------------------------------------------------------------- helpers for data */

/* A dataset with awkward floats (signed zero, subnormals, NaN payloads, extremes). */
static void make_dataset(nn_dataset *ds, size_t n, int xw, int yw, uint32_t salt)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->x_width = xw;
    ds->y_width = yw;
    ds->x = malloc(n * (size_t)xw * sizeof(float));
    ds->y = malloc(n * (size_t)yw * sizeof(float));
    assert_non_null(ds->x);
    assert_non_null(ds->y);
    uint32_t h = 2166136261u ^ salt;
    for (size_t i = 0; i < n * (size_t)xw; i++) {
        h = (h ^ (uint32_t)i) * 16777619u;
        uint32_t bits = h;
        if (i % 17 == 3) bits = 0x80000000u;      /* -0.0 */
        if (i % 19 == 5) bits = 0x00000001u;      /* smallest subnormal */
        if (i % 23 == 7) bits = 0x7fc01234u;      /* NaN with a payload */
        if (i % 29 == 11) bits = 0x7f7fffffu;     /* FLT_MAX */
        memcpy(&ds->x[i], &bits, 4);
    }
    for (size_t i = 0; i < n * (size_t)yw; i++) ds->y[i] = (float)((i * 7 + salt) % 3);
    nn_dataset_describe(ds);
}

static void free_dataset(nn_dataset *ds)
{
    nn_dataset_free(ds);
}

static void insert_dataset(store *s, const char *name, nn_dataset *ds, store_dataset_meta *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->format, sizeof m->format, "csv");
    store_rc rc = store_dataset_insert(s, m, ds);
    if (rc != STORE_OK) fail_msg("store_dataset_insert: %s", store_errmsg(s));
}

/* A stored dataset of 8 x 3 -> 1 used by the job tests. */
static void small_dataset(store *s, store_dataset_meta *m)
{
    nn_dataset ds;
    make_dataset(&ds, 8, 3, 1, 1);
    insert_dataset(s, "small", &ds, m);
    free_dataset(&ds);
}

static void insert_job(store *s, const char *ds_id, const char *key, const char *hash,
                       store_job *out)
{
    store_job_new in = {0};
    int created = -1;
    in.name = "test job";
    in.spec_json = "{\"model\":{}}";
    in.train_dataset_id = ds_id;
    in.epochs = 5;
    in.idempotency_key = key;
    in.body_hash = hash;
    store_rc rc = store_job_insert(s, &in, out, &created);
    if (rc != STORE_OK) fail_msg("store_job_insert: %s", store_errmsg(s));
}

/* ---------------------------------------------------------------- migrations and open */

static void test_migrations_applied_and_recorded(void **state)
{
    fx *f = *state;
    int v = -1;
    assert_int_equal(store_schema_version(f->s, &v), STORE_OK);
    assert_true(newest_embedded() >= 1);
    assert_int_equal(v, newest_embedded());
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_migrations"), count_embedded());
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_migrations "
                                      "WHERE version = 1 AND name = '0001_init.sql' "
                                      "AND applied_at LIKE '____-__-__T__:__:__.___Z'"),
                     1);
    /* The tables exist and the database is in WAL mode. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                      "AND name IN ('datasets', 'dataset_chunks', 'jobs', "
                                      "'job_metrics', 'job_checkpoints', 'job_weights')"),
                     6);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(store_ping(f->s), STORE_OK);
}

static void test_reopen_is_idempotent(void **state)
{
    fx *f = *state;
    char err[512];
    store_dataset_meta m;
    small_dataset(f->s, &m);
    store_close(f->s);
    f->s = store_open(f->path, err, sizeof err);
    assert_non_null(f->s);
    assert_int_equal(store_migrate(f->s), STORE_OK);
    assert_int_equal(store_migrate(f->s), STORE_OK);
    int v = 0;
    assert_int_equal(store_schema_version(f->s, &v), STORE_OK);
    assert_int_equal(v, newest_embedded());
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_migrations"), count_embedded());
    store_dataset_meta got;
    assert_int_equal(store_dataset_get(f->s, m.id, &got), STORE_OK);
    assert_string_equal(got.name, "small");
}

static void test_newer_schema_refused(void **state)
{
    fx *f = *state;
    char err[512];
    raw_exec(f->path, "INSERT INTO schema_migrations (version, name, applied_at) "
                      "VALUES (9999, '9999_future.sql', '2030-01-01T00:00:00.000Z')");
    store *s2 = store_open(f->path, err, sizeof err);
    assert_non_null(s2);
    assert_int_equal(store_migrate(s2), STORE_ERROR);
    const char *msg = store_errmsg(s2);
    char newest[16];
    snprintf(newest, sizeof newest, "version %d", newest_embedded());
    assert_non_null(strstr(msg, f->path));
    assert_non_null(strstr(msg, "9999"));
    assert_non_null(strstr(msg, newest));
    assert_non_null(strstr(msg, "newer"));
    store_close(s2);
    /* Nothing was changed. */
    assert_int_equal(raw_int(f->path, "SELECT max(version) FROM schema_migrations"), 9999);
}

static void test_not_a_database_refused(void **state)
{
    fx *f = *state;
    char p[320], err[512];
    path_in(f, "garbage.db", p, sizeof p);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) fputs("this is not a database, ", fp);
    fclose(fp);
    store *s2 = store_open(p, err, sizeof err);
    assert_null(s2);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "not a SQLite database"));
}

static void test_new_id_format(void **state)
{
    (void)state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], tiny[8];
    assert_int_equal(store_new_id("job_", a, sizeof a), STORE_OK);
    assert_int_equal(store_new_id("job_", b, sizeof b), STORE_OK);
    assert_int_equal(strlen(a), 4 + 26);
    assert_memory_equal(a, "job_", 4);
    for (size_t i = 4; i < strlen(a); i++)
        assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz", a[i]));
    assert_string_not_equal(a, b);
    assert_int_equal(store_new_id("ds_", tiny, sizeof tiny), STORE_INVALID);
}

/* ---------------------------------------------------------------- datasets */

static void test_dataset_round_trip(void **state)
{
    fx *f = *state;
    nn_dataset ds, back;
    store_dataset_meta m, got, lm;
    make_dataset(&ds, 37, 6, 1, 7);
    store_test_set_chunk_bytes(f->s, 40); /* many chunks, including a short last one */
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "iris-ish");
    snprintf(m.format, sizeof m.format, "json");
    m.n_input_dims = 2;
    m.input_shape[0] = 2;
    m.input_shape[1] = 3;
    assert_int_equal(store_dataset_insert(f->s, &m, &ds), STORE_OK);
    assert_memory_equal(m.id, "ds_", 3);
    assert_int_equal(strlen(m.id), 29);
    assert_int_equal(strlen(m.sha256), 64);
    assert_int_equal(m.bytes, 37 * (6 + 1) * 4);
    assert_int_equal(strlen(m.created_at), 24);
    assert_true(raw_int(f->path, "SELECT count(*) FROM dataset_chunks") > 10);

    assert_int_equal(store_dataset_get(f->s, m.id, &got), STORE_OK);
    assert_string_equal(got.id, m.id);
    assert_string_equal(got.name, "iris-ish");
    assert_string_equal(got.format, "json");
    assert_int_equal(got.n_samples, 37);
    assert_int_equal(got.n_input_dims, 2);
    assert_int_equal(got.input_shape[0], 2);
    assert_int_equal(got.input_shape[1], 3);
    assert_int_equal(got.x_width, 6);
    assert_int_equal(got.y_width, 1);
    assert_int_equal(got.y_integer, 1);
    assert_int_equal(got.n_classes, 3);
    assert_true(got.y_min == 0 && got.y_max == 2); /* labels 0..2 */
    assert_int_equal(got.bytes, m.bytes);
    assert_string_equal(got.sha256, m.sha256);
    assert_string_equal(got.created_at, m.created_at);

    assert_int_equal(store_dataset_load(f->s, m.id, &lm, &back), STORE_OK);
    assert_int_equal(back.n, 37);
    assert_int_equal(back.x_width, 6);
    assert_int_equal(back.y_width, 1);
    assert_int_equal(back.n_classes, 3);
    assert_int_equal(back.y_integer, 1);
    assert_memory_equal(back.x, ds.x, 37 * 6 * sizeof(float)); /* bit-identical, NaNs too */
    assert_memory_equal(back.y, ds.y, 37 * sizeof(float));
    assert_string_equal(lm.id, m.id);
    assert_true(back.y_min == 0 && back.y_max == 2);
    free_dataset(&back);
    /* A dataset stored before migration 0005 has no range: unknown, NaN. */
    raw_exec(f->path, "UPDATE datasets SET y_min = NULL, y_max = NULL");
    assert_int_equal(store_dataset_get(f->s, m.id, &got), STORE_OK);
    assert_true(isnan(got.y_min) && isnan(got.y_max));

    /* The checksum follows the data: same data same hash, one bit flipped differs. */
    store_dataset_meta m2, m3;
    insert_dataset(f->s, "copy", &ds, &m2);
    assert_string_equal(m2.sha256, m.sha256);
    uint32_t bits;
    memcpy(&bits, &ds.x[5], 4);
    bits ^= 1u;
    memcpy(&ds.x[5], &bits, 4);
    insert_dataset(f->s, "flipped", &ds, &m3);
    assert_string_not_equal(m3.sha256, m.sha256);
    assert_string_not_equal(m3.id, m2.id);

    /* Missing ids and bad shapes. */
    assert_int_equal(store_dataset_get(f->s, "ds_nope", &got), STORE_NOT_FOUND);
    assert_int_equal(store_dataset_load(f->s, "ds_nope", NULL, &back), STORE_NOT_FOUND);
    assert_null(back.x);
    memset(&m, 0, sizeof m);
    m.n_input_dims = 2;
    m.input_shape[0] = 4;
    m.input_shape[1] = 2;
    assert_int_equal(store_dataset_insert(f->s, &m, &ds), STORE_INVALID);
    free_dataset(&ds);
}

static void test_dataset_damaged_chunks_detected(void **state)
{
    fx *f = *state;
    nn_dataset ds, back;
    store_dataset_meta m;
    make_dataset(&ds, 20, 4, 1, 3);
    store_test_set_chunk_bytes(f->s, 64);
    insert_dataset(f->s, "d", &ds, &m);
    raw_exec(f->path, "DELETE FROM dataset_chunks WHERE part = 'x' AND chunk = 1");
    assert_int_equal(store_dataset_load(f->s, m.id, NULL, &back), STORE_CORRUPT);
    assert_null(back.x);
    assert_non_null(strstr(store_errmsg(f->s), m.id));
    free_dataset(&ds);
}

static void test_dataset_list_pagination(void **state)
{
    fx *f = *state;
    char ids[7][STORE_ID_MAX];
    for (int i = 0; i < 7; i++) {
        nn_dataset ds;
        store_dataset_meta m;
        char name[16];
        snprintf(name, sizeof name, "d%d", i);
        make_dataset(&ds, 3, 2, 1, (uint32_t)i);
        insert_dataset(f->s, name, &ds, &m);
        memcpy(ids[i], m.id, STORE_ID_MAX);
        free_dataset(&ds);
    }
    store_list_query q = {0};
    char cursor[STORE_CURSOR_MAX] = "";
    int seen = 0, pages = 0;
    do {
        store_dataset_meta *items = NULL;
        size_t n = 0;
        char next[STORE_CURSOR_MAX];
        q.limit = 3;
        q.cursor = cursor;
        assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_OK);
        for (size_t i = 0; i < n; i++, seen++) assert_string_equal(items[i].id, ids[6 - seen]);
        assert_int_equal(n, pages < 2 ? 3 : 1);
        store_dataset_list_free(items);
        memcpy(cursor, next, sizeof cursor);
        pages++;
    } while (cursor[0] && pages < 10);
    assert_int_equal(pages, 3);
    assert_int_equal(seen, 7);

    /* Exactly one page: no cursor. */
    store_dataset_meta *items = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX];
    q.limit = 7;
    q.cursor = NULL;
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_OK);
    assert_int_equal(n, 7);
    assert_string_equal(next, "");
    store_dataset_list_free(items);

    /* Tenant filter and cursors we did not make. */
    q.tenant = "someone-else";
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(items);
    q.tenant = NULL;
    q.cursor = "not a cursor!";
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_INVALID);
    q.cursor = "djE6eA"; /* "v1:x" */
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_INVALID);
    q.cursor = "djI6ZGF0YXNldHM6"; /* "v2:datasets:" */
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_INVALID);
    q.cursor = "djE6ZGF0YXNldHM6Mw"; /* "v1:datasets:3": not this version */
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_INVALID);
    q.cursor = "djI6am9iczoz"; /* "v2:jobs:3": another list's */
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_INVALID);
    assert_non_null(strstr(store_errmsg(f->s), "not one of this list's"));
    q.cursor = "djI6ZGF0YXNldHM6Mw"; /* "v2:datasets:3" */
    assert_int_equal(store_dataset_list(f->s, &q, &items, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    store_dataset_list_free(items);
}

static void test_dataset_disk_full_leaves_nothing(void **state)
{
    fx *f = *state;
    nn_dataset ds;
    store_dataset_meta m;
    int64_t pages = raw_int(f->path, "PRAGMA page_count");
    assert_true(pages > 0);
    assert_int_equal(store_test_set_max_pages(f->s, pages + 4), STORE_OK);
    make_dataset(&ds, 5000, 20, 1, 9); /* ~420 KB, far beyond 4 pages */
    store_test_set_chunk_bytes(f->s, 4096);
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "big");
    assert_int_equal(store_dataset_insert(f->s, &m, &ds), STORE_FULL);
    assert_non_null(strstr(store_errmsg(f->s), "full"));
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM datasets"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM dataset_chunks"), 0);
    /* Lift the cap: the same insert succeeds. */
    assert_int_equal(store_test_set_max_pages(f->s, 0), STORE_OK);
    assert_int_equal(store_dataset_insert(f->s, &m, &ds), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM datasets"), 1);
    free_dataset(&ds);
}

static void test_dataset_injected_failure_leaves_nothing(void **state)
{
    fx *f = *state;
    nn_dataset ds;
    store_dataset_meta m;
    make_dataset(&ds, 50, 4, 1, 2);
    store_test_set_chunk_bytes(f->s, 128);
    for (int k = 1; k <= 6; k++) {
        memset(&m, 0, sizeof m);
        store_test_fail_after(f->s, k, STORE_ERROR);
        assert_int_equal(store_dataset_insert(f->s, &m, &ds), STORE_ERROR);
        assert_int_equal(raw_int(f->path, "SELECT count(*) FROM datasets"), 0);
        assert_int_equal(raw_int(f->path, "SELECT count(*) FROM dataset_chunks"), 0);
    }
    store_test_fail_after(f->s, 0, STORE_OK);
    free_dataset(&ds);
}

/* ---------------------------------------------------------------- jobs */

static void test_job_insert_and_idempotency(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job a, b, c, g;
    int created = -1;
    small_dataset(f->s, &d);

    insert_job(f->s, d.id, "key-1", "hash-A", &a);
    assert_memory_equal(a.id, "job_", 4);
    assert_int_equal(a.status, STORE_JOB_QUEUED);
    assert_string_equal(a.name, "test job");
    assert_string_equal(a.spec_json, "{\"model\":{}}");
    assert_string_equal(a.train_dataset_id, d.id);
    assert_string_equal(a.validation_dataset_id, "");
    assert_int_equal(a.epochs, 5);
    assert_string_equal(a.idempotency_key, "key-1");
    assert_string_equal(a.started_at, "");
    assert_int_equal(strlen(a.created_at), 24);

    store_job_new in = {0};
    in.spec_json = "{\"model\":{}}";
    in.train_dataset_id = d.id;
    in.epochs = 5;
    in.idempotency_key = "key-1";
    in.body_hash = "hash-A";
    assert_int_equal(store_job_insert(f->s, &in, &b, &created), STORE_OK);
    assert_int_equal(created, 0);
    assert_string_equal(b.id, a.id);

    in.body_hash = "hash-B";
    assert_int_equal(store_job_insert(f->s, &in, &c, &created), STORE_CONFLICT);
    assert_int_equal(created, 0);
    assert_non_null(strstr(store_errmsg(f->s), a.id));

    /* Another tenant has its own key space; no key means a new job each time. */
    in.tenant = "t2";
    assert_int_equal(store_job_insert(f->s, &in, &c, &created), STORE_OK);
    assert_int_equal(created, 1);
    assert_string_not_equal(c.id, a.id);
    assert_string_equal(c.tenant, "t2");
    store_job_free(&c);
    in.tenant = NULL;
    in.idempotency_key = NULL;
    assert_int_equal(store_job_insert(f->s, &in, &c, &created), STORE_OK);
    assert_int_equal(created, 1);
    assert_null(c.idempotency_key);
    assert_null(c.name);
    store_job_free(&c);

    /* Unknown datasets, bad arguments, the queue cap. */
    in.validation_dataset_id = "ds_missing";
    assert_int_equal(store_job_insert(f->s, &in, &c, &created), STORE_NOT_FOUND);
    assert_non_null(strstr(store_errmsg(f->s), "ds_missing"));
    in.validation_dataset_id = NULL;
    in.epochs = 0;
    assert_int_equal(store_job_insert(f->s, &in, &c, NULL), STORE_INVALID);
    in.epochs = 5;
    int64_t queued = 0;
    assert_int_equal(store_job_count(f->s, STORE_JOB_QUEUED, &queued), STORE_OK);
    assert_int_equal(queued, 3);
    in.max_queued = 3;
    assert_int_equal(store_job_insert(f->s, &in, &c, NULL), STORE_LIMIT);
    in.max_queued = 4;
    assert_int_equal(store_job_insert(f->s, &in, NULL, NULL), STORE_OK);

    assert_int_equal(store_job_get(f->s, a.id, &g), STORE_OK);
    assert_string_equal(g.id, a.id);
    store_job_free(&g);
    assert_int_equal(store_job_get(f->s, "job_nope", &g), STORE_NOT_FOUND);
    store_job_free(&a);
    store_job_free(&b);
}

/* A job's init source is checked in the insert's transaction: weights or a job
 * deleted after the handler's checks fail the insert (it was queued, to fail when
 * it started); once the job is queued the source cannot be deleted. */
static void test_job_insert_init_source(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job src, j;
    char spec[200];
    small_dataset(f->s, &d);
    insert_job(f->s, d.id, NULL, NULL, &src);
    store_weights_meta w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "w");
    w.tensors_json = "[]";
    assert_int_equal(store_weights_insert(f->s, &w, "abc", 3), STORE_OK);

    store_job_new in = {0};
    in.spec_json = spec;
    in.train_dataset_id = d.id;
    in.epochs = 1;
    const char *gone[] = {"{\"init\":{\"weights\":\"wts_gone\"}}",
                          "{\"init\":{\"from_job\":\"job_gone\",\"resume\":true}}"};
    for (int i = 0; i < 2; i++) {
        snprintf(spec, sizeof spec, "%s", gone[i]);
        assert_int_equal(store_job_insert(f->s, &in, &j, NULL), STORE_NOT_FOUND);
        assert_non_null(strstr(store_errmsg(f->s), i ? "init.from_job job_gone" : "init.weights wts_gone"));
    }
    int64_t queued = 0;
    assert_int_equal(store_job_count(f->s, STORE_JOB_QUEUED, &queued), STORE_OK);
    assert_int_equal(queued, 1); /* src only */

    snprintf(spec, sizeof spec, "{\"init\":{\"weights\":\"%s\"}}", w.id);
    assert_int_equal(store_job_insert(f->s, &in, &j, NULL), STORE_OK);
    store_job_free(&j);
    assert_int_equal(store_weights_delete(f->s, w.id), STORE_CONFLICT);

    /* from_job needs a finished source; finish src by cancelling it while queued. */
    assert_int_equal(store_job_cancel(f->s, src.id, NULL), STORE_OK);
    snprintf(spec, sizeof spec, "{\"init\":{\"from_job\":\"%s\"}}", src.id);
    assert_int_equal(store_job_insert(f->s, &in, &j, NULL), STORE_OK);
    store_job_free(&j);
    assert_int_equal(store_job_delete(f->s, src.id), STORE_CONFLICT);
    store_job_free(&src);
}

static void test_job_list_filter_and_pages(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    char ids[5][STORE_ID_MAX];
    small_dataset(f->s, &d);
    for (int i = 0; i < 5; i++) {
        store_job j;
        insert_job(f->s, d.id, NULL, NULL, &j);
        memcpy(ids[i], j.id, STORE_ID_MAX);
        store_job_free(&j);
    }
    store_job c;
    assert_int_equal(store_job_claim(f->s, &c), STORE_OK); /* ids[0] runs */
    assert_string_equal(c.id, ids[0]);
    store_job_free(&c);

    store_job_query q = {0};
    store_job *jobs = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_MAX];
    q.limit = 2;
    q.has_status = 1;
    q.status = STORE_JOB_QUEUED;
    assert_int_equal(store_job_list(f->s, &q, &jobs, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0].id, ids[4]);
    assert_string_equal(jobs[1].id, ids[3]);
    assert_string_not_equal(next, "");
    store_job_list_free(jobs, n);
    q.cursor = next;
    char next2[STORE_CURSOR_MAX];
    assert_int_equal(store_job_list(f->s, &q, &jobs, &n, next2), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0].id, ids[2]);
    assert_string_equal(jobs[1].id, ids[1]);
    assert_string_equal(next2, "");
    store_job_list_free(jobs, n);

    q.cursor = NULL;
    q.status = STORE_JOB_RUNNING;
    assert_int_equal(store_job_list(f->s, &q, &jobs, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, ids[0]);
    assert_int_equal(jobs[0].status, STORE_JOB_RUNNING);
    store_job_list_free(jobs, n);

    q.has_status = 0;
    q.limit = 0;
    assert_int_equal(store_job_list(f->s, &q, &jobs, &n, next), STORE_OK);
    assert_int_equal(n, 5);
    store_job_list_free(jobs, n);
}

static void test_claim_oldest_first(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    char ids[6][STORE_ID_MAX];
    store_job j;
    small_dataset(f->s, &d);
    assert_int_equal(store_job_claim(f->s, &j), STORE_NOT_FOUND);
    for (int i = 0; i < 6; i++) {
        insert_job(f->s, d.id, NULL, NULL, &j);
        memcpy(ids[i], j.id, STORE_ID_MAX);
        store_job_free(&j);
    }
    /* A cancelled job is skipped. */
    assert_int_equal(store_job_cancel(f->s, ids[2], NULL), STORE_OK);
    static const int expect[5] = {0, 1, 3, 4, 5};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
        assert_string_equal(j.id, ids[expect[i]]);
        assert_int_equal(j.status, STORE_JOB_RUNNING);
        assert_int_equal(j.attempts, 1);
        assert_int_equal(strlen(j.started_at), 24);
        assert_string_equal(j.spec_json, "{\"model\":{}}");
        store_job_free(&j);
    }
    assert_int_equal(store_job_claim(f->s, &j), STORE_NOT_FOUND);

    /* Requeue keeps started_at and counts the next attempt. */
    assert_int_equal(store_job_requeue(f->s, ids[0]), STORE_OK);
    assert_int_equal(store_job_requeue(f->s, ids[0]), STORE_CONFLICT);
    assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
    assert_string_equal(j.id, ids[0]);
    assert_int_equal(j.attempts, 2);
    store_job_free(&j);
}

typedef struct claimer {
    const char *path;
    char (*ids)[STORE_ID_MAX];
    int n, cap;
    int errors;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;
    char err[512];
    store *s = store_open(c->path, err, sizeof err);
    if (!s) {
        c->errors++;
        return NULL;
    }
    for (;;) {
        store_job j;
        store_rc rc = store_job_claim(s, &j);
        if (rc == STORE_NOT_FOUND) break;
        if (rc == STORE_BUSY) continue;
        if (rc != STORE_OK || c->n == c->cap) {
            c->errors++;
            break;
        }
        memcpy(c->ids[c->n++], j.id, STORE_ID_MAX);
        store_job_free(&j);
    }
    store_close(s);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_concurrent_claims_never_share(void **state)
{
    fx *f = *state;
    enum { N_JOBS = 300, N_THREADS = 4 };
    store_dataset_meta d;
    small_dataset(f->s, &d);
    for (int i = 0; i < N_JOBS; i++) {
        store_job_new in = {0};
        in.spec_json = "{}";
        in.train_dataset_id = d.id;
        in.epochs = 1;
        assert_int_equal(store_job_insert(f->s, &in, NULL, NULL), STORE_OK);
    }
    claimer c[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        c[t] = (claimer){.path = f->path, .cap = N_JOBS};
        c[t].ids = calloc(N_JOBS, STORE_ID_MAX);
        assert_non_null(c[t].ids);
    }
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, claim_thread, &c[t]), 0);
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);

    char (*all)[STORE_ID_MAX] = calloc(N_JOBS * N_THREADS, STORE_ID_MAX);
    assert_non_null(all);
    int total = 0;
    for (int t = 0; t < N_THREADS; t++) {
        assert_int_equal(c[t].errors, 0);
        memcpy(all[total], c[t].ids, (size_t)c[t].n * STORE_ID_MAX);
        total += c[t].n;
        free(c[t].ids);
    }
    assert_int_equal(total, N_JOBS);
    qsort(all, (size_t)total, STORE_ID_MAX, cmp_id);
    for (int i = 1; i < total; i++) assert_string_not_equal(all[i - 1], all[i]);
    free(all);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM jobs WHERE status = 'running' "
                                      "AND attempts = 1"),
                     N_JOBS);
}

typedef struct metric_rows {
    int n;
    int epochs[16];
    char records[16][64];
} metric_rows;

static int collect_metric(void *user, int epoch, const char *rec, size_t len)
{
    metric_rows *m = user;
    if (m->n == 16 || len >= sizeof m->records[0] || strlen(rec) != len) return 1;
    m->epochs[m->n] = epoch;
    snprintf(m->records[m->n], sizeof m->records[0], "%s", rec);
    m->n++;
    return 0;
}

/* A checkpoint's first 4 and last 2 bytes, read through store_job_checkpoint_read
 * (none when skip). */
typedef struct ckpt_parts {
    size_t len;
    char head[4], tail[2];
    int skip;
} ckpt_parts;

static void read_parts(void *user, nn_read_at_fn read, void *src, size_t len)
{
    ckpt_parts *c = user;
    c->len = len;
    if (!c->skip && !read(src, 0, c->head, 4)) read(src, len - 2, c->tail, 2);
}

static void test_epoch_commit(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job j, g;
    metric_rows rows;
    void *buf = NULL;
    size_t len = 0;
    int ep = 0;
    small_dataset(f->s, &d);
    insert_job(f->s, d.id, NULL, NULL, &j);

    store_epoch e = {.epoch = 1, .record_json = "{\"epoch\":1,\"loss\":0.9}",
                     .checkpoint = "ckpt-1", .checkpoint_len = 6, .best_epoch = 1, .batches = 4};
    /* Only a running job takes commits. */
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_CONFLICT);
    assert_int_equal(store_epoch_commit(f->s, "job_nope", &e), STORE_NOT_FOUND);
    assert_int_equal(store_job_progress(f->s, j.id, 1, 1, 4), STORE_CONFLICT);
    store_job_free(&j);
    assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
    assert_int_equal(store_job_checkpoint_load(f->s, j.id, &buf, &len, &ep), STORE_NOT_FOUND);

    assert_int_equal(store_job_progress(f->s, j.id, 1, 2, 4), STORE_OK);
    assert_int_equal(store_job_get(f->s, j.id, &g), STORE_OK);
    assert_int_equal(g.epoch, 1);
    assert_int_equal(g.batch, 2);
    assert_int_equal(g.batches, 4);
    assert_int_equal(g.epochs_done, 0);
    assert_null(g.last_metrics_json);
    store_job_free(&g);

    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    e = (store_epoch){.epoch = 2, .record_json = "{\"epoch\":2,\"loss\":0.7}",
                      .checkpoint = "ckpt-2", .checkpoint_len = 6, .best_epoch = 2, .batches = 4};
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    /* Epoch 2 again (a resumed run): replaced, not duplicated. */
    e.record_json = "{\"epoch\":2,\"loss\":0.6}";
    e.checkpoint = "ckpt-2b";
    e.checkpoint_len = 7;
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);

    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_job_metrics(f->s, j.id, 0, collect_metric, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.epochs[0], 1);
    assert_int_equal(rows.epochs[1], 2);
    assert_string_equal(rows.records[0], "{\"epoch\":1,\"loss\":0.9}");
    assert_string_equal(rows.records[1], "{\"epoch\":2,\"loss\":0.6}");
    /* Only the records after a given epoch (an event stream's resume point). */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_job_metrics(f->s, j.id, 1, collect_metric, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.epochs[0], 2);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_job_metrics(f->s, j.id, 2, collect_metric, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
    /* A callback that stops the walk is told apart from a store failure. */
    rows.n = 16;
    assert_int_equal(store_job_metrics(f->s, j.id, 0, collect_metric, &rows), STORE_STOPPED);

    assert_int_equal(store_job_checkpoint_load(f->s, j.id, &buf, &len, &ep), STORE_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "ckpt-2b", 7);
    assert_int_equal(ep, 2);
    free(buf);

    /* Read in place: byte ranges of it; a failure injected at any step or blob
     * read is the store's error, whatever the reader made of it, and each of the
     * reader's two reads is a point where one can strike. */
    ckpt_parts cp = {0};
    assert_int_equal(store_job_checkpoint_read(f->s, j.id, read_parts, &cp), STORE_OK);
    assert_int_equal(cp.len, 7);
    assert_memory_equal(cp.head, "ckpt", 4);
    assert_memory_equal(cp.tail, "2b", 2);
    int ok_at[2] = {0, 0};
    for (int reads = 0; reads < 2; reads++) {
        for (int k = 1; k <= 20 && !ok_at[reads]; k++) {
            memset(&cp, 0, sizeof cp);
            cp.skip = !reads;
            store_test_fail_after(f->s, k, STORE_ERROR);
            store_rc rc = store_job_checkpoint_read(f->s, j.id, read_parts, &cp);
            if (rc == STORE_OK) ok_at[reads] = k;
            else assert_int_equal(rc, STORE_ERROR);
        }
    }
    store_test_fail_after(f->s, 0, STORE_OK);
    assert_true(ok_at[0] > 0);
    assert_int_equal(ok_at[1], ok_at[0] + 2);
    assert_int_equal(store_job_checkpoint_read(f->s, "job_nope", read_parts, &cp), STORE_NOT_FOUND);

    assert_int_equal(store_job_get(f->s, j.id, &g), STORE_OK);
    assert_int_equal(g.epochs_done, 2);
    assert_int_equal(g.epoch, 2);
    assert_int_equal(g.batch, 4);
    assert_int_equal(g.best_epoch, 2);
    assert_int_equal(g.has_checkpoint, 1);
    assert_int_equal(g.checkpoint_epoch, 2);
    assert_string_equal(g.last_metrics_json, "{\"epoch\":2,\"loss\":0.6}");
    store_job_free(&g);

    /* A commit without a checkpoint keeps the old one; a failure inside the
     * transaction (here at COMMIT, the 5th step) leaves nothing behind. */
    e = (store_epoch){.epoch = 3, .record_json = "{\"epoch\":3}", .best_epoch = 2, .batches = 4};
    store_test_fail_after(f->s, 5, STORE_FULL);
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_FULL);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_job_metrics(f->s, j.id, 0, collect_metric, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    assert_int_equal(store_job_checkpoint_load(f->s, j.id, &buf, &len, &ep), STORE_OK);
    assert_int_equal(ep, 2);
    free(buf);

    /* Resumed from an older epoch: later rows go. */
    e = (store_epoch){.epoch = 2, .record_json = "{\"epoch\":2,\"loss\":0.5}",
                      .checkpoint = "c", .checkpoint_len = 1, .best_epoch = 2, .batches = 4};
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_job_metrics(f->s, j.id, 0, collect_metric, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.records[1], "{\"epoch\":2,\"loss\":0.5}");

    assert_int_equal(store_job_metrics(f->s, "job_nope", 0, collect_metric, &rows), STORE_NOT_FOUND);
    store_job_free(&j);
}

static void test_finish_and_weights(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job j, g;
    void *buf = NULL;
    size_t len = 0;
    small_dataset(f->s, &d);
    insert_job(f->s, d.id, NULL, NULL, &j);
    store_job_free(&j);
    assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
    store_epoch e = {.epoch = 1, .record_json = "{}", .checkpoint = "x", .checkpoint_len = 1,
                     .batches = 2};
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    assert_int_equal(store_job_weights_load(f->s, j.id, &buf, &len), STORE_NOT_FOUND);
    assert_int_equal(store_job_finish(f->s, j.id, STORE_JOB_RUNNING, NULL, NULL, 0, NULL),
                     STORE_INVALID);

    unsigned char w[300];
    for (size_t i = 0; i < sizeof w; i++) w[i] = (unsigned char)(i * 31);
    assert_int_equal(store_job_finish(f->s, j.id, STORE_JOB_SUCCEEDED, NULL, w, sizeof w,
                                      "{\"loss\":0.1}"),
                     STORE_OK);
    assert_int_equal(store_job_finish(f->s, j.id, STORE_JOB_FAILED, "again", NULL, 0, NULL),
                     STORE_CONFLICT);
    assert_int_equal(store_job_weights_load(f->s, j.id, &buf, &len), STORE_OK);
    assert_int_equal(len, sizeof w);
    assert_memory_equal(buf, w, sizeof w);
    free(buf);
    assert_int_equal(store_job_get(f->s, j.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_SUCCEEDED);
    assert_int_equal(g.has_weights, 1);
    assert_int_equal(g.has_checkpoint, 1); /* a success keeps its final state (resume) */
    assert_string_equal(g.test_metrics_json, "{\"loss\":0.1}");
    assert_null(g.error);
    assert_int_equal(strlen(g.finished_at), 24);
    store_job_free(&g);
    store_job_free(&j);

    /* A failure keeps its message. */
    insert_job(f->s, d.id, NULL, NULL, &j);
    store_job_free(&j);
    assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
    assert_int_equal(store_job_finish(f->s, j.id, STORE_JOB_FAILED, "loss became NaN at epoch 3",
                                      NULL, 0, NULL),
                     STORE_OK);
    assert_int_equal(store_job_get(f->s, j.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_FAILED);
    assert_string_equal(g.error, "loss became NaN at epoch 3");
    assert_int_equal(g.has_weights, 0);
    store_job_free(&g);
    store_job_free(&j);
}

static void test_cancel_transitions(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job q1, r1, g;
    store_job_status st = STORE_JOB_STATUS_COUNT;
    int flag = -1;
    small_dataset(f->s, &d);
    insert_job(f->s, d.id, NULL, NULL, &r1);
    insert_job(f->s, d.id, NULL, NULL, &q1);
    store_job_free(&r1);
    assert_int_equal(store_job_claim(f->s, &r1), STORE_OK); /* the older one runs */

    /* queued -> cancelled at once */
    assert_int_equal(store_job_cancel(f->s, q1.id, &st), STORE_OK);
    assert_int_equal(st, STORE_JOB_CANCELLED);
    assert_int_equal(store_job_get(f->s, q1.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_CANCELLED);
    assert_int_equal(strlen(g.finished_at), 24);
    store_job_free(&g);
    assert_int_equal(store_job_cancel(f->s, q1.id, &st), STORE_CONFLICT);

    /* running -> flag; the metrics stay */
    store_epoch e = {.epoch = 1, .record_json = "{\"epoch\":1}", .batches = 3};
    assert_int_equal(store_epoch_commit(f->s, r1.id, &e), STORE_OK);
    assert_int_equal(store_job_cancel_requested(f->s, r1.id, &flag), STORE_OK);
    assert_int_equal(flag, 0);
    assert_int_equal(store_job_cancel(f->s, r1.id, &st), STORE_OK);
    assert_int_equal(st, STORE_JOB_RUNNING);
    assert_int_equal(store_job_cancel(f->s, r1.id, &st), STORE_OK); /* twice is fine */
    assert_int_equal(store_job_cancel_requested(f->s, r1.id, &flag), STORE_OK);
    assert_int_equal(flag, 1);
    assert_int_equal(store_job_finish(f->s, r1.id, STORE_JOB_CANCELLED, NULL, NULL, 0, NULL),
                     STORE_OK);
    assert_int_equal(store_job_get(f->s, r1.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_CANCELLED);
    assert_int_equal(g.epochs_done, 1);
    store_job_free(&g);
    metric_rows rows;
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_job_metrics(f->s, r1.id, 0, collect_metric, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(store_job_cancel(f->s, r1.id, &st), STORE_CONFLICT);

    assert_int_equal(store_job_cancel(f->s, "job_nope", &st), STORE_NOT_FOUND);
    assert_int_equal(store_job_cancel_requested(f->s, "job_nope", &flag), STORE_NOT_FOUND);

    /* A queued job holding the checkpoint a shutdown left: cancelled, it goes too
     * (it stayed until the next restart). */
    store_job q2;
    void *buf = NULL;
    size_t len = 0;
    insert_job(f->s, d.id, NULL, NULL, &q2);
    store_job_free(&q2);
    assert_int_equal(store_job_claim(f->s, &q2), STORE_OK);
    assert_int_equal(store_job_suspend(f->s, q2.id, "ckpt", 4, 0, 2, 3), STORE_OK);
    assert_int_equal(store_job_checkpoint_load(f->s, q2.id, &buf, &len, NULL), STORE_OK);
    free(buf);
    assert_int_equal(store_job_cancel(f->s, q2.id, &st), STORE_OK);
    assert_int_equal(st, STORE_JOB_CANCELLED);
    assert_int_equal(store_job_checkpoint_load(f->s, q2.id, &buf, &len, NULL), STORE_NOT_FOUND);
    store_job_free(&q2);

    /* A finished job a queued job starts from (init.from_job) is neither deleted nor
     * pruned while that job waits for it (it failed when a worker claimed it). */
    char spec[160];
    snprintf(spec, sizeof spec, "{\"init\":{\"from_job\":\"%s\",\"resume\":false}}", r1.id);
    store_job_new in = {.name = "dep", .spec_json = spec, .train_dataset_id = d.id, .epochs = 1};
    store_job dep;
    int created = -1;
    assert_int_equal(store_job_insert(f->s, &in, &dep, &created), STORE_OK);
    assert_int_equal(store_job_delete(f->s, r1.id), STORE_CONFLICT);
    assert_non_null(strstr(store_errmsg(f->s), "init.from_job"));
    int64_t pruned = -1;
    assert_int_equal(store_jobs_prune(f->s, 4102444800.0 /* 2100 */, &pruned), STORE_OK);
    assert_int_equal(store_job_get(f->s, r1.id, &g), STORE_OK);
    store_job_free(&g);
    assert_int_equal(store_job_cancel(f->s, dep.id, &st), STORE_OK);
    assert_int_equal(store_job_delete(f->s, r1.id), STORE_OK);
    store_job_free(&dep);

    /* A cancel that reached a running job just as a shutdown requeued it: the next
     * start's recovery cancels it, checkpoint and all, instead of running it again. */
    store_job q3;
    insert_job(f->s, d.id, NULL, NULL, &q3);
    store_job_free(&q3);
    assert_int_equal(store_job_claim(f->s, &q3), STORE_OK);
    assert_int_equal(store_job_cancel(f->s, q3.id, &st), STORE_OK);
    assert_int_equal(st, STORE_JOB_RUNNING);
    assert_int_equal(store_job_suspend(f->s, q3.id, "ckpt", 4, 0, 1, 3), STORE_OK);
    int requeued = -1;
    assert_int_equal(store_recover_running(f->s, 3, &requeued, NULL), STORE_OK);
    assert_int_equal(requeued, 0);
    assert_int_equal(store_job_get(f->s, q3.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_CANCELLED);
    store_job_free(&g);
    assert_int_equal(store_job_checkpoint_load(f->s, q3.id, &buf, &len, NULL), STORE_NOT_FOUND);
    store_job_free(&q3);
    store_job_free(&q1);
    store_job_free(&r1);
}

static void test_delete_cascade(void **state)
{
    fx *f = *state;
    store_dataset_meta d, v;
    store_job j, g;
    int in_use = -1;
    small_dataset(f->s, &d);
    small_dataset(f->s, &v);
    store_job_new in = {0};
    in.spec_json = "{}";
    in.train_dataset_id = d.id;
    in.validation_dataset_id = v.id;
    in.epochs = 2;
    assert_int_equal(store_job_insert(f->s, &in, &j, NULL), STORE_OK);
    assert_string_equal(j.validation_dataset_id, v.id);

    /* Datasets in use by a queued job cannot go; nor can an unfinished job. */
    assert_int_equal(store_dataset_in_use(f->s, v.id, &in_use), STORE_OK);
    assert_int_equal(in_use, 1);
    assert_int_equal(store_dataset_delete(f->s, v.id), STORE_CONFLICT);
    assert_int_equal(store_dataset_delete(f->s, d.id), STORE_CONFLICT);
    assert_int_equal(store_job_delete(f->s, j.id), STORE_CONFLICT);
    store_job_free(&j);
    assert_int_equal(store_job_claim(f->s, &j), STORE_OK);
    assert_int_equal(store_dataset_delete(f->s, d.id), STORE_CONFLICT);
    assert_int_equal(store_job_delete(f->s, j.id), STORE_CONFLICT);

    store_epoch e = {.epoch = 1, .record_json = "{}", .checkpoint = "ck", .checkpoint_len = 2,
                     .batches = 1};
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    e.epoch = 2;
    assert_int_equal(store_epoch_commit(f->s, j.id, &e), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_checkpoints"), 1);
    assert_int_equal(store_job_finish(f->s, j.id, STORE_JOB_SUCCEEDED, NULL, "w", 1, NULL),
                     STORE_OK);

    /* Once finished, a dataset may go: the job loses the link but stays. */
    assert_int_equal(store_dataset_in_use(f->s, v.id, &in_use), STORE_OK);
    assert_int_equal(in_use, 0);
    assert_int_equal(store_dataset_delete(f->s, v.id), STORE_OK);
    assert_int_equal(store_dataset_delete(f->s, v.id), STORE_NOT_FOUND);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM datasets"), 1);
    assert_int_equal(store_job_get(f->s, j.id, &g), STORE_OK);
    assert_string_equal(g.validation_dataset_id, "");
    assert_string_equal(g.train_dataset_id, d.id);
    store_job_free(&g);

    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_metrics"), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_weights"), 1);
    assert_int_equal(store_job_delete(f->s, j.id), STORE_OK);
    assert_int_equal(store_job_get(f->s, j.id, &g), STORE_NOT_FOUND);
    assert_int_equal(store_job_delete(f->s, j.id), STORE_NOT_FOUND);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_metrics"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_weights"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_checkpoints"), 0);
    store_job_free(&j);

    /* Deleting a dataset takes its chunks with it. */
    assert_true(raw_int(f->path, "SELECT count(*) FROM dataset_chunks") > 0);
    assert_int_equal(store_dataset_delete(f->s, d.id), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM dataset_chunks"), 0);
}

static void test_recover_running(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job j[4], g;
    int n = -1;
    small_dataset(f->s, &d);
    for (int i = 0; i < 4; i++) {
        insert_job(f->s, d.id, NULL, NULL, &j[i]);
        store_job_free(&j[i]);
    }
    for (int i = 0; i < 3; i++) assert_int_equal(store_job_claim(f->s, &j[i]), STORE_OK);
    store_epoch e = {.epoch = 1, .record_json = "{}", .checkpoint = "ck1", .checkpoint_len = 3,
                     .batches = 5};
    assert_int_equal(store_epoch_commit(f->s, j[0].id, &e), STORE_OK);
    assert_int_equal(store_job_progress(f->s, j[0].id, 2, 3, 5), STORE_OK);
    assert_int_equal(store_job_cancel(f->s, j[2].id, NULL), STORE_OK);

    /* A new process: another connection recovers. */
    char err[512];
    store *s2 = store_open(f->path, err, sizeof err);
    assert_non_null(s2);
    assert_int_equal(store_recover_running(s2, 3, &n, NULL), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_job_get(s2, j[0].id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_QUEUED);
    assert_int_equal(g.has_checkpoint, 1); /* resumes from it */
    assert_int_equal(g.epoch, 1);          /* progress back to the committed epoch */
    assert_int_equal(g.batch, 0);
    store_job_free(&g);
    assert_int_equal(store_job_get(s2, j[1].id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_QUEUED);
    store_job_free(&g);
    assert_int_equal(store_job_get(s2, j[2].id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_CANCELLED);
    store_job_free(&g);
    assert_int_equal(store_recover_running(s2, 3, &n, NULL), STORE_OK);
    assert_int_equal(n, 0);

    /* The recovered job is claimed first again (oldest first), second attempt. */
    store_job c;
    assert_int_equal(store_job_claim(s2, &c), STORE_OK);
    assert_string_equal(c.id, j[0].id);
    assert_int_equal(c.attempts, 2);
    assert_int_equal(c.checkpoint_epoch, 1);
    store_job_free(&c);
    store_close(s2);
    for (int i = 0; i < 3; i++) store_job_free(&j[i]);
}

/* Claim the next queued job, which must be `want` (NULL: any). */
static void claim_expect(store *s, const char *want)
{
    store_job c;
    assert_int_equal(store_job_claim(s, &c), STORE_OK);
    if (want) assert_string_equal(c.id, want);
    store_job_free(&c);
}

/* The process died under its running job; the next start's recovery with
 * --crash-limit `limit`. Returns the jobs it failed; *requeued the jobs it queued. */
static int recover(store *s, int limit, int *requeued)
{
    int failed = -1;
    assert_int_equal(store_recover_running(s, limit, requeued, &failed), STORE_OK);
    return failed;
}

/* A job the process keeps dying under: each start's recovery counts the deaths
 * since the job last committed an epoch, and at the limit fails it instead of
 * requeuing it. A committed epoch starts the count again (also across a graceful
 * requeue); limit 0 never fails. */
static void test_recover_crash_limit(void **state)
{
    fx *f = *state;
    store_dataset_meta d;
    store_job a, b, g;
    int requeued = -1;
    small_dataset(f->s, &d);
    insert_job(f->s, d.id, NULL, NULL, &a);
    insert_job(f->s, d.id, NULL, NULL, &b);

    /* Death 1 in epoch 1. */
    claim_expect(f->s, a.id);
    assert_int_equal(recover(f->s, 2, &requeued), 0);
    assert_int_equal(requeued, 1);
    /* It commits epoch 1, then dies in epoch 2: one death since that epoch. */
    claim_expect(f->s, NULL);
    store_epoch e = {.epoch = 1, .record_json = "{}", .checkpoint = "ck1", .checkpoint_len = 3,
                     .batches = 5};
    assert_int_equal(store_epoch_commit(f->s, a.id, &e), STORE_OK);
    assert_int_equal(recover(f->s, 2, &requeued), 0);
    assert_int_equal(requeued, 1);
    /* Dies in epoch 2 again: the second death there reaches the limit. */
    claim_expect(f->s, NULL);
    assert_int_equal(recover(f->s, 2, &requeued), 1);
    assert_int_equal(requeued, 0);
    assert_int_equal(store_job_get(f->s, a.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_FAILED);
    assert_int_equal(g.attempts, 3);
    assert_int_equal(g.epochs_done, 1);
    assert_non_null(g.error);
    assert_non_null(strstr(g.error, "stopped 2 times"));
    assert_non_null(strstr(g.error, "after epoch 1 and before another completed"));
    assert_non_null(strstr(g.error, "--crash-limit 2"));
    assert_true(g.finished_at[0] != 0);
    store_job_free(&g);
    /* Its last good checkpoint stays readable, as for any failed job. */
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(store_job_checkpoint_load(f->s, a.id, &buf, &len, NULL), STORE_OK);
    assert_int_equal(len, 3);
    free(buf);

    /* No limit: the other job is requeued however often the process dies. */
    for (int i = 0; i < 5; i++) {
        claim_expect(f->s, b.id);
        assert_int_equal(recover(f->s, 0, &requeued), 0);
        assert_int_equal(requeued, 1);
    }
    /* Raising the limit later lets the next death count on from where it was. */
    claim_expect(f->s, NULL);
    assert_int_equal(recover(f->s, 7, &requeued), 0);
    claim_expect(f->s, NULL);
    assert_int_equal(recover(f->s, 7, &requeued), 1);

    /* Two deaths in epoch 1, then epoch 1 commits and a graceful stop requeues the
     * job: one more death (in epoch 2) is the first since that epoch. */
    store_job q;
    insert_job(f->s, d.id, NULL, NULL, &q);
    for (int i = 0; i < 2; i++) {
        claim_expect(f->s, NULL);
        assert_int_equal(recover(f->s, 3, &requeued), 0);
    }
    claim_expect(f->s, q.id);
    assert_int_equal(store_epoch_commit(f->s, q.id, &e), STORE_OK);
    assert_int_equal(store_job_requeue(f->s, q.id), STORE_OK);
    claim_expect(f->s, NULL);
    assert_int_equal(recover(f->s, 3, &requeued), 0);
    /* It commits its last epoch (5) and dies saving its weights: said so. */
    claim_expect(f->s, NULL);
    for (int ep = 2; ep <= 5; ep++) {
        store_epoch last = {.epoch = ep, .record_json = "{}", .checkpoint = "ck",
                            .checkpoint_len = 2, .batches = 5};
        assert_int_equal(store_epoch_commit(f->s, q.id, &last), STORE_OK);
    }
    assert_int_equal(recover(f->s, 1, &requeued), 1);
    assert_int_equal(store_job_get(f->s, q.id, &g), STORE_OK);
    assert_int_equal(g.status, STORE_JOB_FAILED);
    assert_non_null(g.error);
    assert_non_null(strstr(g.error, "stopped 1 time (killed"));
    assert_non_null(strstr(g.error, "finishing after its last epoch"));
    store_job_free(&g);
    store_job_free(&q);
    store_job_free(&a);
    store_job_free(&b);
}

static void test_status_names(void **state)
{
    (void)state;
    for (int i = 0; i < STORE_JOB_STATUS_COUNT; i++)
        assert_int_equal(store_job_status_from_name(store_job_status_name((store_job_status)i)), i);
    assert_int_equal(store_job_status_from_name("paused"), STORE_JOB_STATUS_COUNT);
    assert_int_equal(store_job_status_from_name(NULL), STORE_JOB_STATUS_COUNT);
    assert_string_equal(store_rc_name(STORE_FULL), "full");
    assert_true(store_job_status_finished(STORE_JOB_CANCELLED));
    assert_false(store_job_status_finished(STORE_JOB_RUNNING));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_applied_and_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database_refused, setup, teardown),
        cmocka_unit_test(test_new_id_format),
        cmocka_unit_test_setup_teardown(test_dataset_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_damaged_chunks_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_list_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_disk_full_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_injected_failure_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_insert_and_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_insert_init_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_list_filter_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_oldest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims_never_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_and_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_crash_limit, setup, teardown),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
