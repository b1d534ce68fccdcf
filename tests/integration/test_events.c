/*
 * test_events.c — GET /v1/jobs/{id}/events (Server-Sent Events) and the ETag of
 * GET /v1/jobs/{id}, against a real fitd (libcurl, ephemeral loopback port,
 * temporary database, one worker so a job can be held queued behind another).
 *
 * The stream is read with a libcurl write callback that parses the SSE framing
 * (id/event/data lines, blank-line dispatch, comments). Checked: a live job's
 * stream gives state queued, running, succeeded, one epoch event per epoch in
 * order whose data equals the metrics route's records, progress events, then
 * ends; Last-Event-ID resumes without repeats (finished and live); a finished
 * job replays and ends; 404; the stream limit answers 503 with Retry-After; a
 * client that disconnects mid-stream frees its slot while training finishes; a
 * graceful shutdown ends open streams cleanly (the fitd exit status also carries
 * ASan's leak check under make asan); the README's "events" block runs as written.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "support.h"

static it_server srv;
static int srv_up;
static it_server one;   /* test_limit_and_disconnect's and test_auth's own fitd */
static int one_up;
static char digits_id[64];

/* ---------------------------------------------------------------- SSE client */

typedef struct sse_event {
    char id[64];
    char name[32];
    char *data; /* malloc'ed; data lines joined with '\n' */
} sse_event;

typedef struct sse_stream {
    /* parser state */
    char *line;
    size_t line_len, line_cap;
    char cur_id[64], cur_name[32];
    char *cur_data;
    size_t cur_len;
    int cur_has_data;
    /* results */
    sse_event *ev;
    int n, cap;
    int comments;
    long status;
    char *raw; /* the body when status != 200 (a problem document) */
    size_t raw_len;
    char retry_after[32];
    char content_type[128];
    CURLcode rc;
    /* control */
    int stop_after_epochs;       /* > 0: disconnect once this many epoch events arrived */
    atomic_int stop;             /* set from another thread: disconnect */
    atomic_int n_seen;           /* events so far (read from other threads) */
    void (*on_event)(struct sse_stream *st, const sse_event *e);
} sse_stream;

static int count_named(const sse_stream *s, const char *name);

static void sse_free(sse_stream *s)
{
    for (int i = 0; i < s->n; i++) free(s->ev[i].data);
    free(s->ev);
    free(s->line);
    free(s->cur_data);
    free(s->raw);
    memset(s, 0, sizeof *s);
}

static void cur_data_add(sse_stream *s, const char *p, size_t n)
{
    char *d = realloc(s->cur_data, s->cur_len + n + 2);
    assert_non_null(d);
    s->cur_data = d;
    if (s->cur_has_data) s->cur_data[s->cur_len++] = '\n';
    memcpy(s->cur_data + s->cur_len, p, n);
    s->cur_len += n;
    s->cur_data[s->cur_len] = 0;
    s->cur_has_data = 1;
}

static void dispatch(sse_stream *s)
{
    if (!s->cur_has_data && !s->cur_name[0] && !s->cur_id[0]) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->ev = realloc(s->ev, (size_t)s->cap * sizeof *s->ev);
        assert_non_null(s->ev);
    }
    sse_event *e = &s->ev[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", s->cur_id);
    snprintf(e->name, sizeof e->name, "%s", s->cur_name[0] ? s->cur_name : "message");
    e->data = s->cur_data ? s->cur_data : strdup("");
    s->cur_data = NULL;
    s->cur_len = 0;
    s->cur_has_data = 0;
    s->cur_name[0] = 0;
    s->cur_id[0] = 0;
    atomic_store(&s->n_seen, s->n);
    if (s->on_event) s->on_event(s, e);
}

/* One complete line (without its line break). */
static void sse_line(sse_stream *s, char *l, size_t n)
{
    if (n == 0) {
        dispatch(s);
        return;
    }
    if (l[0] == ':') {
        s->comments++;
        return;
    }
    char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (colon && *v == ' ') v++;
    size_t vlen = (size_t)(l + n - v);
    if (name_len == 2 && !memcmp(l, "id", 2))
        snprintf(s->cur_id, sizeof s->cur_id, "%.*s", (int)vlen, v);
    else if (name_len == 5 && !memcmp(l, "event", 5))
        snprintf(s->cur_name, sizeof s->cur_name, "%.*s", (int)vlen, v);
    else if (name_len == 4 && !memcmp(l, "data", 4))
        cur_data_add(s, v, vlen);
    /* retry and unknown fields: ignored */
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *user)
{
    sse_stream *s = user;
    size_t n = size * nmemb;
    if (s->status != 200) {
        char *r = realloc(s->raw, s->raw_len + n + 1);
        if (!r) return 0;
        s->raw = r;
        memcpy(s->raw + s->raw_len, p, n);
        s->raw_len += n;
        s->raw[s->raw_len] = 0;
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            size_t len = s->line_len;
            if (len && s->line[len - 1] == '\r') len--;
            sse_line(s, s->line, len);
            s->line_len = 0;
            continue;
        }
        if (s->line_len + 1 >= s->line_cap) {
            s->line_cap = s->line_cap ? 2 * s->line_cap : 1024;
            s->line = realloc(s->line, s->line_cap);
            if (!s->line) return 0;
        }
        s->line[s->line_len++] = p[i];
    }
    if (s->stop_after_epochs > 0 && count_named(s, "epoch") >= s->stop_after_epochs)
        return 0; /* hang up */
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *user)
{
    sse_stream *s = user;
    size_t n = size * nmemb;
    if (n > 9 && !strncmp(p, "HTTP/", 5)) {
        const char *sp = memchr(p, ' ', n);
        if (sp) s->status = strtol(sp + 1, NULL, 10);
    }
    const char *names[] = {"retry-after:", "content-type:"};
    char *dest[] = {s->retry_after, s->content_type};
    size_t dsz[] = {sizeof s->retry_after, sizeof s->content_type};
    for (int k = 0; k < 2; k++) {
        size_t l = strlen(names[k]);
        if (n > l && !strncasecmp(p, names[k], l)) {
            const char *v = p + l;
            size_t vl = n - l;
            while (vl && (*v == ' ')) v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n')) vl--;
            snprintf(dest[k], dsz[k], "%.*s", (int)vl, v);
        }
    }
    return n;
}

static int on_xfer(void *user, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    sse_stream *s = user;
    return atomic_load(&s->stop) ? 1 : 0; /* non-zero aborts: the client goes away */
}

/* GET the job's event stream until it ends (or the client hangs up as told).
 * last_id: Last-Event-ID to send, or NULL. */
static void sse_run(const it_server *server, const char *job_id, const char *last_id,
                    sse_stream *s)
{
    char path[160], url[256], hdr[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", job_id);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", server->port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hl = NULL;
    if (last_id) {
        snprintf(hdr, sizeof hdr, "Last-Event-ID: %s", last_id);
        hl = curl_slist_append(hl, hdr);
    }
    if (server->token[0]) {
        char auth[300];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", server->token);
        hl = curl_slist_append(hl, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    if (hl) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    s->rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    /* For the API-document check: the events, each data parsed as JSON. */
    json_t *events = s->status == 200 ? json_array() : NULL;
    for (int i = 0; events && i < s->n; i++) {
        json_t *data = json_loads(s->ev[i].data, JSON_DECODE_ANY, NULL);
        json_array_append_new(events, json_pack("{s:s, s:o*, s:b}", "event", s->ev[i].name,
                                                "data", data, "data_error", !data));
    }
    it_record_response("GET", path, s->status, s->content_type,
                       s->raw, s->raw_len, events ? json_pack("{s:o}", "events", events) : NULL);
}

/* ---------------------------------------------------------------- helpers */

/* Submit a digits job; returns its id in `id`. */
static void submit(const it_server *server, const char *ds, int epochs, int batch_size, int units,
                   char *id, size_t id_len)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"data\": {\"train\": \"%s\"},"
             " \"model\": {\"input_shape\": [64], \"layers\": ["
             "   {\"type\": \"dense\", \"units\": %d, \"activation\": \"relu\"},"
             "   {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]},"
             " \"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\","
             "   \"metrics\": [\"accuracy\"]},"
             " \"fit\": {\"epochs\": %d, \"batch_size\": %d, \"validation_split\": 0.2, \"seed\": 3}}",
             ds, units, epochs, batch_size);
    it_submit_job(server, spec, id, id_len);
}

/* A job long enough to hold the single worker until cancelled. */
static void submit_blocker(const it_server *server, const char *ds, char *id, size_t id_len)
{
    submit(server, ds, 5000, 8, 64, id, id_len);
}

static void cancel(const it_server *server, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    it_resp r;
    assert_int_equal(it_request(server, "POST", path, NULL, NULL, 0, &r), 0);
    if (r.status != 202 && r.status != 409) expect_status(&r, 202);
    it_resp_free(&r);
}

static char *job_status(const it_server *server, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    it_resp r;
    assert_int_equal(it_get(server, path, &r), 0);
    expect_status(&r, 200);
    json_t *o = it_json(&r);
    assert_non_null(o);
    char *st = strdup(json_string_value(json_object_get(o, "status")));
    json_decref(o);
    it_resp_free(&r);
    return st;
}

/* Poll until the job ends; fails unless it ends `want`. */
static void wait_final(const it_server *server, const char *id, const char *want)
{
    json_decref(it_wait_job(server, id, want, 300 * it_slow(), 100));
}

static json_t *event_json(const sse_event *e)
{
    json_t *o = json_loads(e->data, 0, NULL);
    if (!o) fprintf(stderr, "event %s data is not JSON: %s\n", e->name, e->data);
    assert_non_null(o);
    return o;
}

static int count_named(const sse_stream *s, const char *name)
{
    int n = 0;
    for (int i = 0; i < s->n; i++) n += !strcmp(s->ev[i].name, name);
    return n;
}

/* The stream's non-progress events, as "name:data" strings joined by '\n'
 * (malloc'ed), for comparing two streams. */
static char *stable_events(const sse_stream *s, int from)
{
    size_t cap = 1, len = 0;
    for (int i = from; i < s->n; i++) cap += strlen(s->ev[i].name) + strlen(s->ev[i].data) + 3;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = 0;
    for (int i = from; i < s->n; i++) {
        if (!strcmp(s->ev[i].name, "progress")) continue;
        len += (size_t)sprintf(out + len, "%s:%s\n", s->ev[i].name, s->ev[i].data);
    }
    return out;
}

/* ---------------------------------------------------------------- fixtures */

static int group_setup(void **state)
{
    const char *args[] = {"--workers", "1", NULL};
    if (it_start(&srv, args) != 0) return -1;
    srv_up = 1;
    assert_int_equal(it_upload_digits(&srv, digits_id, sizeof digits_id), 0);
    return 0;
}

static int group_teardown(void **state)
{
    if (one_up) { /* a failed test left it running */
        one_up = 0;
        it_stop(&one);
    }
    if (!srv_up) return 0;
    srv_up = 0;
    int rc = it_stop(&srv);
    if (rc != 0) fprintf(stderr, "fitd exit status %d\n", rc);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- ETag */

static void get_job(const char *id, const char *if_none_match, it_resp *r)
{
    char path[128], h[200];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    snprintf(h, sizeof h, "If-None-Match: %s", if_none_match ? if_none_match : "");
    const char *hs[] = {h, NULL};
    assert_int_equal(it_request(&srv, "GET", path, if_none_match ? hs : NULL, NULL, 0, r), 0);
}

static void test_etag(void **state)
{
    char blocker[64], id[64], etag1[128], list[300], weak[140];
    it_resp r;
    submit_blocker(&srv, digits_id, blocker, sizeof blocker);
    submit(&srv, digits_id, 3, 32, 64, id, sizeof id); /* stays queued: the one worker is busy */

    get_job(id, NULL, &r);
    expect_status(&r, 200);
    assert_true(strlen(r.etag) > 2 && r.etag[0] == '"' && r.etag[strlen(r.etag) - 1] == '"');
    snprintf(etag1, sizeof etag1, "%s", r.etag);
    it_resp_free(&r);

    /* Unchanged: 304, no body, the same tag; also weak, in a list, and "*". */
    get_job(id, etag1, &r);
    expect_status(&r, 304);
    assert_int_equal(r.len, 0);
    assert_string_equal(r.etag, etag1);
    it_resp_free(&r);
    snprintf(weak, sizeof weak, "W/%s", etag1);
    get_job(id, weak, &r);
    expect_status(&r, 304);
    it_resp_free(&r);
    snprintf(list, sizeof list, "\"0123\", %s", etag1);
    get_job(id, list, &r);
    expect_status(&r, 304);
    it_resp_free(&r);
    get_job(id, "*", &r);
    expect_status(&r, 304);
    it_resp_free(&r);
    get_job(id, "\"not-the-tag\"", &r);
    expect_status(&r, 200);
    assert_string_equal(r.etag, etag1);
    it_resp_free(&r);

    /* A change (cancelled): the old tag no longer matches, a new one comes. */
    cancel(&srv, id);
    get_job(id, etag1, &r);
    expect_status(&r, 200);
    assert_true(strlen(r.etag) > 2);
    assert_string_not_equal(r.etag, etag1);
    json_t *o = it_json(&r);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "cancelled");
    json_decref(o);
    char etag2[128];
    snprintf(etag2, sizeof etag2, "%s", r.etag);
    it_resp_free(&r);
    get_job(id, etag2, &r);
    expect_status(&r, 304);
    it_resp_free(&r);

    cancel(&srv, blocker);
    wait_final(&srv, blocker, "cancelled");
}

/* ---------------------------------------------------------------- a live stream */

static char live_id[64];
static sse_stream live; /* the whole live stream, for the resume tests */
static char live_blocker[64];

/* Once the queued state arrived, free the worker: the job starts. */
static void release_on_first(sse_stream *s, const sse_event *e)
{
    if (s->n == 1) cancel(&srv, live_blocker);
}

#define LIVE_EPOCHS 10

static void test_live_stream(void **state)
{
    submit_blocker(&srv, digits_id, live_blocker, sizeof live_blocker);
    submit(&srv, digits_id, LIVE_EPOCHS, 2, 512, live_id, sizeof live_id);
    live.on_event = release_on_first;
    sse_run(&srv, live_id, NULL, &live);
    assert_int_equal(live.rc, CURLE_OK); /* the server ended the stream */
    assert_int_equal(live.status, 200);
    assert_true(!strncmp(live.content_type, "text/event-stream", 17));

    /* States, in order: queued, running, succeeded (the last event). */
    const char *want_states[] = {"queued", "running", "succeeded"};
    int n_states = 0, n_epochs = 0, n_progress = 0;
    json_t *records = it_job_metrics(&srv, live_id);
    assert_int_equal(json_array_size(records), LIVE_EPOCHS);
    for (int i = 0; i < live.n; i++) {
        const sse_event *e = &live.ev[i];
        assert_true(e->id[0]); /* every event has an id */
        for (int k = 0; k < i; k++) assert_string_not_equal(live.ev[k].id, e->id);
        json_t *o = event_json(e);
        if (!strcmp(e->name, "state")) {
            assert_true(n_states < 3);
            assert_string_equal(json_string_value(json_object_get(o, "status")),
                                want_states[n_states]);
            n_states++;
        } else if (!strcmp(e->name, "epoch")) {
            /* In order, equal to the metrics route's record, while running. */
            assert_int_equal(n_states, 2);
            assert_int_equal(json_integer_value(json_object_get(o, "epoch")), n_epochs + 1);
            assert_true(json_equal(o, json_array_get(records, (size_t)n_epochs)));
            n_epochs++;
        } else if (!strcmp(e->name, "progress")) {
            assert_int_equal(n_states, 2);
            json_int_t batches = json_integer_value(json_object_get(o, "batches"));
            json_int_t batch = json_integer_value(json_object_get(o, "batch"));
            json_int_t epoch = json_integer_value(json_object_get(o, "epoch"));
            assert_true(batches > 0 && batch >= 0 && batch <= batches);
            assert_true(epoch >= 1 && epoch <= LIVE_EPOCHS);
            assert_int_equal(json_integer_value(json_object_get(o, "epochs")), LIVE_EPOCHS);
            json_t *eta = json_object_get(o, "eta_seconds");
            assert_true(json_is_null(eta) || (json_is_number(eta) && json_number_value(eta) >= 0));
            n_progress++;
        } else {
            fail_msg("unexpected event %s", e->name);
        }
        json_decref(o);
    }
    json_decref(records);
    assert_int_equal(n_states, 3);
    assert_string_equal(live.ev[live.n - 1].name, "state");
    assert_int_equal(n_epochs, LIVE_EPOCHS);
    assert_true(n_progress >= 1);
    wait_final(&srv, live_blocker, "cancelled");
}

/* ---------------------------------------------------------------- resume, replay */

static void test_resume_finished(void **state)
{
    assert_true(live.n > 0); /* test_live_stream ran */
    /* Resume after the third epoch event: exactly the rest, no repeats. */
    int at = -1, seen = 0;
    for (int i = 0; i < live.n && at < 0; i++)
        if (!strcmp(live.ev[i].name, "epoch") && ++seen == 3) at = i;
    assert_true(at > 0);
    sse_stream s = {0};
    sse_run(&srv, live_id, live.ev[at].id, &s);
    assert_int_equal(s.rc, CURLE_OK);
    assert_int_equal(s.status, 200);
    char *want = stable_events(&live, at + 1), *got = stable_events(&s, 0);
    assert_string_equal(got, want);
    assert_int_equal(count_named(&s, "epoch"), LIVE_EPOCHS - 3);
    free(want);
    free(got);
    sse_free(&s);

    /* Resume after the very last event: nothing more, the stream just ends. */
    sse_run(&srv, live_id, live.ev[live.n - 1].id, &s);
    assert_int_equal(s.rc, CURLE_OK);
    assert_int_equal(s.status, 200);
    assert_int_equal(s.n, 0);
    sse_free(&s);
}

static void test_finished_replay(void **state)
{
    assert_true(live.n > 0);
    /* A fresh client (and one whose Last-Event-ID means nothing) of a finished
     * job: every epoch, then the final state as the last event (a client may stop
     * at it), then the end. */
    const char *ids[] = {NULL, "garbage"};
    for (int k = 0; k < 2; k++) {
        sse_stream s = {0};
        sse_run(&srv, live_id, ids[k], &s);
        assert_int_equal(s.rc, CURLE_OK);
        assert_int_equal(s.status, 200);
        assert_int_equal(s.n, LIVE_EPOCHS + 1);
        json_t *records = it_job_metrics(&srv, live_id);
        for (int i = 0; i < LIVE_EPOCHS; i++) {
            assert_string_equal(s.ev[i].name, "epoch");
            json_t *o = event_json(&s.ev[i]);
            assert_true(json_equal(o, json_array_get(records, (size_t)i)));
            json_decref(o);
            char want[32];
            snprintf(want, sizeof want, "%d.none", i + 1);
            assert_string_equal(s.ev[i].id, want);
        }
        json_decref(records);
        const sse_event *last = &s.ev[LIVE_EPOCHS];
        assert_string_equal(last->name, "state");
        json_t *o = event_json(last);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "succeeded");
        json_decref(o);
        sse_free(&s);
    }
    /* Resumed inside that replay: the epochs after it, then the state. */
    sse_stream s = {0};
    sse_run(&srv, live_id, "2.none", &s);
    assert_int_equal(s.status, 200);
    assert_int_equal(s.n, LIVE_EPOCHS - 2 + 1);
    assert_string_equal(s.ev[0].id, "3.none");
    assert_string_equal(s.ev[s.n - 1].name, "state");
    sse_free(&s);
}

/* Disconnect mid-stream after two epochs, reconnect with the last id: the two
 * parts together are the whole story, each event once. */
static char resume_blocker[64];
static void release_resume(sse_stream *s, const sse_event *e)
{
    if (s->n == 1) cancel(&srv, resume_blocker);
}

static void test_live_resume(void **state)
{
    char id[64];
    submit_blocker(&srv, digits_id, resume_blocker, sizeof resume_blocker);
    submit(&srv, digits_id, LIVE_EPOCHS, 2, 512, id, sizeof id);
    sse_stream a = {0}, b = {0};
    a.on_event = release_resume;
    a.stop_after_epochs = 2; /* hang up once two epoch events are in */
    sse_run(&srv, id, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_true(count_named(&a, "epoch") >= 2);
    if (count_named(&a, "epoch") < LIVE_EPOCHS) assert_int_not_equal(a.rc, CURLE_OK);
    sse_run(&srv, id, a.ev[a.n - 1].id, &b);
    assert_int_equal(b.rc, CURLE_OK);
    assert_int_equal(b.status, 200);
    wait_final(&srv, id, "succeeded");

    /* Together: state queued, state running, epochs 1..N, state succeeded, once. */
    char *pa = stable_events(&a, 0), *pb = stable_events(&b, 0);
    char *joined = malloc(strlen(pa) + strlen(pb) + 1);
    assert_non_null(joined);
    strcpy(joined, pa);
    strcat(joined, pb);
    json_t *records = it_job_metrics(&srv, id);
    assert_int_equal(json_array_size(records), LIVE_EPOCHS);
    int n_ep = 0, n_st = 0;
    const char *states[] = {"queued", "running", "succeeded"};
    for (const char *line = joined; *line;) {
        const char *nl = strchr(line, '\n');
        const char *colon = strchr(line, ':');
        assert_true(nl && colon && colon < nl);
        json_t *o = json_loadb(colon + 1, (size_t)(nl - colon - 1), 0, NULL);
        assert_non_null(o);
        if (!strncmp(line, "epoch:", 6)) {
            assert_int_equal(n_st, 2);
            assert_true(n_ep < LIVE_EPOCHS);
            assert_true(json_equal(o, json_array_get(records, (size_t)n_ep)));
            n_ep++;
        } else {
            assert_true(!strncmp(line, "state:", 6));
            assert_true(n_st < 3);
            assert_string_equal(json_string_value(json_object_get(o, "status")), states[n_st]);
            n_st++;
        }
        json_decref(o);
        line = nl + 1;
    }
    assert_int_equal(n_ep, LIVE_EPOCHS);
    assert_int_equal(n_st, 3);
    json_decref(records);
    free(joined);
    free(pa);
    free(pb);
    sse_free(&a);
    sse_free(&b);
    wait_final(&srv, resume_blocker, "cancelled");
}

/* A Last-Event-ID past the epochs the job has committed (made up, or from before
 * a resume redid them) counts for what exists: every epoch still arrives. Before,
 * epochs up to the cursor's number were never sent. */
static void test_cursor_past_epochs(void **state)
{
    char id[64];
    submit(&srv, digits_id, LIVE_EPOCHS, 2, 512, id, sizeof id);
    sse_stream s = {0};
    sse_run(&srv, id, "1000.queued", &s);
    assert_int_equal(s.rc, CURLE_OK);
    assert_int_equal(s.status, 200);
    assert_int_equal(count_named(&s, "epoch"), LIVE_EPOCHS);
    sse_free(&s);
    wait_final(&srv, id, "succeeded");
}

static void test_unknown_job(void **state)
{
    sse_stream s = {0};
    sse_run(&srv, "job_00000000000000000000000000", NULL, &s);
    assert_int_equal(s.status, 404);
    it_resp r = {.status = s.status, .body = s.raw, .len = s.raw_len};
    snprintf(r.content_type, sizeof r.content_type, "%s", s.content_type);
    json_t *p = assert_problem(&r, 404);
    json_decref(p);
    sse_free(&s);
}

/* ---------------------------------------------------------------- limit, disconnect */

typedef struct held {
    const it_server *server;
    const char *job_id;
    sse_stream s;
} held;

static void *hold_stream(void *arg)
{
    held *h = arg;
    sse_run(h->server, h->job_id, NULL, &h->s);
    return NULL;
}

static void test_limit_and_disconnect(void **state)
{
    const char *args[] = {"--workers", "1", "--max-event-streams", "1", NULL};
    assert_int_equal(it_start(&one, args), 0);
    one_up = 1;
    char ds[64], done_id[64], job[64];
    assert_int_equal(it_upload_digits(&one, ds, sizeof ds), 0);
    /* A finished job to probe with (its stream replays and ends at once). */
    submit(&one, ds, 1, 64, 64, done_id, sizeof done_id);
    wait_final(&one, done_id, "succeeded");
    /* A long job; a client watches it and then vanishes mid-stream. */
    submit_blocker(&one, ds, job, sizeof job);
    held h = {.server = &one, .job_id = job};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_stream, &h), 0);
    for (int i = 0; i < 3000 && atomic_load(&h.s.n_seen) < 2; i++) sleep_ms(10);
    assert_true(atomic_load(&h.s.n_seen) >= 2); /* queued or running, progress... */

    /* The one slot is taken: 503 problem with Retry-After. */
    sse_stream s = {0};
    sse_run(&one, done_id, NULL, &s);
    assert_int_equal(s.status, 503);
    assert_string_equal(s.retry_after, "5");
    it_resp r = {.status = s.status, .body = s.raw, .len = s.raw_len};
    snprintf(r.content_type, sizeof r.content_type, "%s", s.content_type);
    json_decref(assert_problem(&r, 503));
    sse_free(&s);

    /* The client hangs up; the server notices at its next write (a progress
     * event within seconds) and frees the slot: a new stream is accepted. */
    atomic_store(&h.s.stop, 1);
    pthread_join(th, NULL);
    assert_int_not_equal(h.s.rc, CURLE_OK); /* we hung up; the stream did not end */
    int got = 0;
    for (int i = 0; i < 600 && !got; i++) {
        sse_stream p = {0};
        sse_run(&one, done_id, NULL, &p);
        if (p.status == 200) {
            got = 1;
            assert_int_equal(p.rc, CURLE_OK);
            assert_int_equal(count_named(&p, "epoch"), 1);
        } else {
            assert_int_equal(p.status, 503);
            sleep_ms(100);
        }
        sse_free(&p);
    }
    assert_true(got);
    /* HEAD: the stream's headers, no body, and the one slot is free again at once
     * (three in a row, then a real stream). */
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", job);
    for (int i = 0; i < 3; i++) {
        it_resp hd;
        assert_int_equal(it_request(&one, "HEAD", path, NULL, NULL, 0, &hd), 0);
        assert_int_equal(hd.status, 200);
        assert_non_null(strstr(hd.content_type, "text/event-stream"));
        assert_int_equal(hd.len, 0);
        it_resp_free(&hd);
    }
    sse_stream after = {0};
    sse_run(&one, done_id, NULL, &after);
    assert_int_equal(after.status, 200);
    sse_free(&after);
    /* Freed while the job still runs (5000 epochs), and training goes on. */
    char *st = job_status(&one, job);
    assert_string_equal(st, "running");
    free(st);
    cancel(&one, job);
    wait_final(&one, job, "cancelled");
    sse_free(&h.s);
    one_up = 0;
    assert_int_equal(it_stop(&one), 0); /* clean exit: no leak report under ASan */
}

/* ---------------------------------------------------------------- auth */

#define TOK_ALICE "alice-token-0123456789abcdef"
#define TOK_BOB "bob-token-abcdefghijklmnop"

/* With --auth-tokens: no token is 401; another tenant's job is 404, exactly as a
 * missing one; the owner gets the stream. */
static void test_auth_and_tenants(void **state)
{
    char dir[512], tokens[600], ds[64], job[64];
    it_tokens_dir(dir, sizeof dir, tokens, sizeof tokens, TOK_ALICE " alice\n" TOK_BOB " bob\n");
    const char *args[] = {"--workers", "1", "--auth-tokens", tokens, NULL};
    memset(&one, 0, sizeof one);
    snprintf(one.token, sizeof one.token, "%s", TOK_ALICE);
    assert_int_equal(it_start(&one, args), 0);
    one_up = 1;
    assert_int_equal(it_upload_digits(&one, ds, sizeof ds), 0);
    submit(&one, ds, 1, 64, 64, job, sizeof job);
    wait_final(&one, job, "succeeded");

    sse_stream s = {0};
    it_server nobody = it_as(&one, ""), bob = it_as(&one, TOK_BOB);
    sse_run(&nobody, job, NULL, &s);
    assert_int_equal(s.status, 401);
    sse_free(&s);
    sse_run(&bob, job, NULL, &s);
    assert_int_equal(s.status, 404);
    it_resp r = {.status = s.status, .body = s.raw, .len = s.raw_len};
    snprintf(r.content_type, sizeof r.content_type, "%s", s.content_type);
    json_decref(assert_problem(&r, 404));
    sse_free(&s);
    sse_run(&one, job, NULL, &s);
    assert_int_equal(s.status, 200);
    assert_int_equal(s.rc, CURLE_OK);
    assert_int_equal(count_named(&s, "epoch"), 1);
    assert_int_equal(count_named(&s, "state"), 1);
    sse_free(&s);

    one_up = 0;
    assert_int_equal(it_stop(&one), 0);
    unlink(tokens);
    rmdir(dir);
}

/* ---------------------------------------------------------------- README */

/* The README's "events" block, run as written, its FITD= line pointed at this fitd. */
static void test_readme_block(void **state)
{
    char *out = it_run_readme_block(&srv, "<!-- events:");
    /* 10 epochs live, then 5 more on resume; the final state twice; then 304. */
    int n_epoch = 0, n_done = 0;
    for (const char *p = out; (p = strstr(p, "event: epoch\n")); p++) n_epoch++;
    for (const char *p = out; (p = strstr(p, "data: {\"status\":\"succeeded\"")); p++) n_done++;
    if (n_epoch != 15 || n_done != 2) fail_msg("unexpected README output:\n%s", out);
    size_t len = strlen(out);
    assert_true(len >= 4 && !strcmp(out + len - 4, "304\n"));
    free(out);
}

/* ---------------------------------------------------------------- drain */

/* SIGTERM while a client watches a queued job: the stream ends cleanly (the
 * terminating chunk arrives: CURLE_OK, not a cut connection) and fitd exits 0. */
static void test_drain_ends_streams(void **state)
{
    char blocker[64], id[64];
    submit_blocker(&srv, digits_id, blocker, sizeof blocker);
    submit(&srv, digits_id, 3, 32, 64, id, sizeof id);
    held h = {.server = &srv, .job_id = id};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_stream, &h), 0);
    for (int i = 0; i < 3000 && atomic_load(&h.s.n_seen) < 1; i++) sleep_ms(10);
    assert_int_equal(atomic_load(&h.s.n_seen), 1);
    srv_up = 0;
    assert_int_equal(it_stop(&srv), 0);
    pthread_join(th, NULL);
    assert_int_equal(h.s.rc, CURLE_OK);
    assert_int_equal(h.s.status, 200);
    assert_int_equal(h.s.n, 1);
    assert_string_equal(h.s.ev[0].name, "state");
    sse_free(&h.s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_live_stream),
        cmocka_unit_test(test_resume_finished),
        cmocka_unit_test(test_finished_replay),
        cmocka_unit_test(test_live_resume),
        cmocka_unit_test(test_cursor_past_epochs),
        cmocka_unit_test(test_unknown_job),
        cmocka_unit_test(test_limit_and_disconnect),
        cmocka_unit_test(test_auth_and_tenants),
        cmocka_unit_test(test_readme_block),
        cmocka_unit_test(test_drain_ends_streams),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    sse_free(&live);
    curl_global_cleanup();
    return rc;
}
