/*
 * api_events.c — GET /v1/jobs/{id}/events: a job's life as Server-Sent Events.
 *
 * Events (each `data:` is one JSON object):
 *   state     {"status": "running", "error": null} — for a queued or running job
 *             the current state first, then every change; the final state
 *             (succeeded, failed, cancelled) is always the last event, after
 *             every epoch (a job that had ended before the client came streams
 *             its epochs, then that state); a running phase shorter than one
 *             poll is still reported between queued and the final state;
 *   epoch     the epoch's record, the same object GET /v1/jobs/{id}/metrics lists;
 *             on connect every epoch committed so far, so a late client sees the
 *             whole curve;
 *   progress  {"epoch", "epochs", "batch", "batches", "eta_seconds"} at most once
 *             a second while the job runs and moves; eta_seconds (null until
 *             measurable) is the remaining batches over the rate seen by this
 *             stream.
 * The stream ends after the final state (succeeded, failed, cancelled), when the
 * job is deleted, and when fitd drains. A comment line every 15 s of silence keeps
 * proxies from closing it.
 *
 * Event ids are resume cursors: "<E>.<S>" with E the number of epoch events sent
 * up to and including this one (epochs 1..E) and S the last state sent ("none"
 * before any: a finished job's replayed epochs); progress
 * events add ".<n>" (a per-connection counter, ignored on resume). A client that
 * reconnects with Last-Event-ID gets exactly what came after that event: the
 * epochs after E, the state only if it is no longer S. An id that does not parse
 * is ignored (the stream starts from the beginning).
 *
 * Cost to training: none. No hook into the worker: the reader (http_reply_stream)
 * polls the store (store_job_get; store_job_metrics only when an epoch was
 * committed since) and the pool's in-memory progress from the HTTP threads, each
 * time MHD asks for bytes or the stream's tick comes; the pool wakes the streams
 * at once when a job commits an epoch or ends (pool_on_news), so those events
 * are not a tick late. A stream holds at most one
 * poll's output (epoch replays are cut at EV_BUF_SOFT bytes and continued on the
 * next call), and a client that does not read is simply not asked for more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "api.h"
#include "buf.h"
#include "http.h"
#include "pool.h"
#include "store.h"

/* Output held per stream before it is handed to MHD; an epoch replay stops adding
 * records past this and goes on at the next call. */
#define EV_BUF_SOFT ((size_t)64 * 1024)
#define EV_PROGRESS_S 1.0
#define EV_KEEPALIVE_S 15.0

typedef struct ev_stream {
    char job_id[STORE_ID_MAX];
    pool *workers;
    int last_state;     /* store_job_status sent last; -1 = none yet */
    int epochs_sent;    /* epoch events 1..epochs_sent were sent (or precede the cursor) */
    unsigned progress_n;
    int done;           /* the final event is in `out`: end once it is sent */
    /* progress throttle and rate */
    double progress_t;  /* when the last progress event was made; 0 = never */
    int progress_epoch, progress_batch;
    double rate_t0;     /* first observation of this stream: time, batches done */
    long rate_g0;
    int rate_on;
    double write_t;     /* last bytes handed out (for the keep-alive) */
    /* pending output: bytes out.data[off..out.len) are still to be handed out;
     * out.failed is an allocation failure (the stream ends) */
    buf out;
    size_t off;
} ev_stream;

static void ev_free(void *ctx)
{
    ev_stream *s = ctx;
    if (!s) return;
    buf_free(&s->out);
    free(s);
}

/* One event: id (the cursor after it), name, and `data` as data lines (a line
 * break inside the text starts a new data line, as SSE requires). */
static void out_event(ev_stream *s, const char *name, const char *data, size_t n, int progress)
{
    char head[128];
    const char *state = s->last_state >= 0 ? store_job_status_name((store_job_status)s->last_state)
                                           : "none";
    if (progress)
        snprintf(head, sizeof head, "id: %d.%s.%u\nevent: %s\n", s->epochs_sent, state,
                 s->progress_n, name);
    else
        snprintf(head, sizeof head, "id: %d.%s\nevent: %s\n", s->epochs_sent, state, name);
    buf_str(&s->out, head);
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && data[j] != '\n' && data[j] != '\r') j++;
        buf_str(&s->out, "data: ");
        buf_add(&s->out, data + i, j - i);
        buf_str(&s->out, "\n");
        if (j >= n) break;
        i = j + 1;
    }
    buf_str(&s->out, "\n");
}

static void out_json_event(ev_stream *s, const char *name, json_t *o, int progress)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))
                   : NULL;
    json_decref(o);
    if (!text) {
        s->out.failed = 1;
        return;
    }
    out_event(s, name, text, strlen(text), progress);
    free(text);
}

static void send_state(ev_stream *s, store_job_status st, const char *error)
{
    s->last_state = (int)st;
    out_json_event(s, "state",
                   json_pack("{s:s, s:o}", "status", store_job_status_name(st), "error",
                             error && error[0] ? json_string(error) : json_null()),
                   0);
}

/* store_job_metrics callback for the records after epochs_sent, until the buffer
 * is full (then the walk stops; the rest comes next time). */
static int epoch_row(void *user, int epoch, const char *text, size_t len)
{
    ev_stream *s = user;
    if (s->out.len >= EV_BUF_SOFT) return 1;
    s->epochs_sent = epoch;
    out_event(s, "epoch", text, len, 0);
    return s->out.failed;
}

/* Progress of a running job, live from the pool when it runs here. */
static void send_progress(ev_stream *s, const store_job *j)
{
    pool_progress live;
    int epoch = j->epoch, epochs = j->epochs, batch = j->batch, batches = j->batches;
    if (pool_progress_get(s->workers, j->id, &live)) {
        if (live.epoch > 0) epoch = live.epoch;
        if (live.epochs > 0) epochs = live.epochs;
        batch = live.batch;
        if (live.batches > 0) batches = live.batches;
    }
    double t = clock_mono_s();
    if (s->progress_t > 0 && t - s->progress_t < EV_PROGRESS_S) return;
    if (s->progress_t > 0 && epoch == s->progress_epoch && batch == s->progress_batch) return;
    long done = (long)(epoch > 0 ? epoch - 1 : 0) * batches + batch;
    long total = (long)epochs * batches;
    if (!s->rate_on || done < s->rate_g0) { /* first sight, or restarted from a checkpoint */
        s->rate_on = 1;
        s->rate_t0 = t;
        s->rate_g0 = done;
    }
    json_t *eta = json_null();
    if (done > s->rate_g0 && t > s->rate_t0 && total >= done) {
        double rate = (double)(done - s->rate_g0) / (t - s->rate_t0);
        eta = json_real((double)(total - done) / rate);
    }
    s->progress_t = t;
    s->progress_epoch = epoch;
    s->progress_batch = batch;
    s->progress_n++;
    out_json_event(s,
                   "progress",
                   json_pack("{s:i, s:i, s:i, s:i, s:o}", "epoch", epoch, "epochs", epochs,
                             "batch", batch, "batches", batches, "eta_seconds", eta),
                   1);
}

/* Look at the job once and queue what changed. Returns 0, or -1 to end the stream
 * (the job is gone, or the store failed: the client reconnects with its cursor). */
static int ev_poll(ev_stream *s, http_req *req)
{
    store *st = http_store(req);
    if (!st) return -1;
    store_job j = {0};
    store_rc rc = store_job_get(st, s->job_id, &j);
    if (rc == STORE_BUSY) return 0; /* try again at the next tick */
    if (rc != STORE_OK) {
        store_job_free(&j);
        return -1;
    }
    store_job_status cur = j.status;
    int finished = store_job_status_finished(cur);
    if ((int)cur != s->last_state) {
        /* Ran and ended between two looks: it was running all the same. */
        if (finished && s->last_state == STORE_JOB_QUEUED && j.started_at[0])
            send_state(s, STORE_JOB_RUNNING, NULL);
        /* A final state comes after the epochs, as the stream's last event (also
         * for a job that had ended before the client came: a client may stop
         * reading at it). */
        if (!finished) send_state(s, cur, j.error);
    }
    /* A cursor past the committed epochs (made up, or from before a resume redid
     * them) would skip the epochs up to it: it counts for what exists. */
    if (s->epochs_sent > j.epochs_done) s->epochs_sent = j.epochs_done;
    if (j.epochs_done > s->epochs_sent) {
        rc = store_job_metrics(st, s->job_id, s->epochs_sent, epoch_row, s);
        if (rc != STORE_OK && rc != STORE_STOPPED) { /* stopped: the buffer is full */
            store_job_free(&j);
            return rc == STORE_BUSY ? 0 : -1;
        }
    }
    /* Ended, with every epoch sent: the final state, then the end. */
    if (finished && !s->out.failed && s->epochs_sent >= j.epochs_done && s->out.len < EV_BUF_SOFT) {
        if ((int)cur != s->last_state) send_state(s, cur, j.error);
        s->done = 1;
    } else if (cur == STORE_JOB_RUNNING && s->epochs_sent >= j.epochs_done) {
        send_progress(s, &j);
    }
    store_job_free(&j);
    return s->out.failed ? -1 : 0;
}

static ssize_t ev_read(void *ctx, http_req *req, char *dst, size_t max)
{
    ev_stream *s = ctx;
    if (s->off == s->out.len) {
        s->off = s->out.len = 0;
        if (s->done) return HTTP_STREAM_END;
        if (ev_poll(s, req) != 0) return HTTP_STREAM_END;
        double t = clock_mono_s();
        if (s->out.len == 0 && t - s->write_t >= EV_KEEPALIVE_S) buf_str(&s->out, ": keep-alive\n\n");
        if (s->out.failed) return HTTP_STREAM_END;
        if (s->out.len == 0) return 0;
        s->write_t = t;
    }
    size_t n = s->out.len - s->off;
    if (n > max) n = max;
    memcpy(dst, s->out.data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

/* Last-Event-ID "<E>.<S>[.<n>]" -> the cursor; ignored unless it parses. */
static void parse_cursor(ev_stream *s, const char *id)
{
    if (!id) return;
    char state[32];
    int epochs = 0, used = 0;
    if (sscanf(id, "%9d.%31[a-z]%n", &epochs, state, &used) != 2 || epochs < 0) return;
    if (id[used] != 0 && id[used] != '.') return;
    int st = strcmp(state, "none") == 0 ? -1 : (int)store_job_status_from_name(state);
    if (st == STORE_JOB_STATUS_COUNT) return;
    s->epochs_sent = epochs;
    s->last_state = st;
}

static void handle_events(http_req *req)
{
    const char *id = http_req_param(req, "id");
    store *st = http_store(req);
    if (!st) return;
    store_job j = {0};
    if (api_job_load(req, st, &j) != 0) return; /* 404 unless it exists and is ours */
    store_job_free(&j);
    ev_stream *s = calloc(1, sizeof *s);
    if (!s) {
        http_reply_nomem(req);
        return;
    }
    const api_ctx *ctx = http_req_app(req);
    snprintf(s->job_id, sizeof s->job_id, "%s", id);
    s->workers = ctx ? ctx->pool : NULL;
    s->last_state = -1;
    s->write_t = clock_mono_s();
    parse_cursor(s, http_req_header(req, "Last-Event-ID"));
    if (http_reply_header(req, "Cache-Control", "no-cache") != 0 ||
        http_reply_header(req, "X-Accel-Buffering", "no") != 0) {
        ev_free(s);
        http_reply_nomem(req);
        return;
    }
    http_reply_stream(req, 200, "text/event-stream; charset=utf-8", ev_read, ev_free, s);
}

int api_events_register(http_server *srv)
{
    const http_route r = {.method = HTTP_GET, .pattern = "/v1/jobs/{id}/events",
                          .handler = handle_events};
    return http_route_add(srv, &r, 1);
}
