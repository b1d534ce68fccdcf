/*
 * test_log.c — server/log.c's batched lines (the access log): with batching off
 * they go out at once; with it on they are held, then written by the flusher
 * without any other line; a later immediate line carries them out first (the
 * file keeps their order); stopping writes what is queued; a flood larger than
 * the batch loses nothing; a stderr that does not drain (a full pipe) stalls only
 * the flusher, not the threads queueing lines. stderr is pointed at a temporary
 * file (or a pipe) to read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char path[64];
static int saved_stderr = -1;

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/fitd-test-log.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_batch_stop();
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    unlink(path);
    return 0;
}

/* The file's bytes (malloc'ed, NUL-terminated). */
static char *contents(void)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0, k;
    char *s = malloc(cap + 1);
    assert_non_null(s);
    while ((k = fread(s + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            cap *= 2;
            s = realloc(s, cap + 1);
            assert_non_null(s);
        }
    }
    fclose(f);
    s[n] = 0;
    return s;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_batching(void **state)
{
    (void)state;
    char *s;
    log_write_batched(LOG_INFO, "unbatched", "\"n\":%d", 0);
    s = contents();
    assert_non_null(strstr(s, "\"msg\":\"unbatched\""));
    free(s);

    assert_int_equal(log_batch_start(), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    log_write_batched(LOG_INFO, "held", "\"n\":%d", 1);
    s = contents();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Queued, not yet written (unless this thread was held up past the flush). */
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (ms < 40) assert_null(strstr(s, "\"msg\":\"held\""));
    free(s);
    int seen = 0;
    for (int i = 0; i < 500 && !seen; i++) { /* the flusher writes it (50 ms) */
        nap_ms(10);
        s = contents();
        seen = strstr(s, "\"msg\":\"held\"") != NULL;
        free(s);
    }
    assert_true(seen);

    /* An immediate line after a batched one: the batched one first. */
    log_write_batched(LOG_INFO, "first", NULL);
    log_write(LOG_WARN, "second", NULL);
    s = contents();
    const char *a = strstr(s, "\"msg\":\"first\""), *b = strstr(s, "\"msg\":\"second\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    free(s);

    /* More lines than the batch holds, then a stop: every one, in order. */
    for (int i = 0; i < 3000; i++) log_write_batched(LOG_INFO, "flood", "\"i\":%d", i);
    log_batch_stop();
    s = contents();
    assert_int_equal(count_of(s, "\"msg\":\"flood\""), 3000);
    const char *prev = s;
    for (int i = 0; i < 3000; i += 499) {
        char want[32];
        snprintf(want, sizeof want, "\"i\":%d}", i);
        const char *p = strstr(prev, want);
        assert_non_null(p);
        prev = p;
    }
    /* Every line is whole: one JSON object per line. */
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        assert_true(line[0] == '{');
        assert_true(line[strlen(line) - 1] == '}');
    }
    free(s);
}

static atomic_int queued;

static void *queue_line(void *arg)
{
    (void)arg;
    log_write_batched(LOG_INFO, "while blocked", NULL);
    atomic_store(&queued, 1);
    return NULL;
}

typedef struct drain {
    int fd;
    char buf[1 << 18]; /* the pipe's filling (64 KiB by default) and the lines */
    size_t n;
} drain;

static void *drain_main(void *arg)
{
    drain *d = arg;
    ssize_t k;
    while ((k = read(d->fd, d->buf + d->n, sizeof d->buf - 1 - d->n)) > 0) d->n += (size_t)k;
    d->buf[d->n] = 0;
    return NULL;
}

static void test_slow_stderr(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    /* Fill the pipe: the flusher's next write blocks until someone reads. */
    int fl = fcntl(STDERR_FILENO, F_GETFL);
    fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
    char junk[512];
    memset(junk, ' ', sizeof junk);
    while (write(STDERR_FILENO, junk, sizeof junk) > 0) {
    }
    fcntl(STDERR_FILENO, F_SETFL, fl);

    assert_int_equal(log_batch_start(), 0);
    log_write_batched(LOG_INFO, "first", NULL);
    nap_ms(200); /* the flusher is now stuck writing it */
    atomic_store(&queued, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, queue_line, NULL), 0);
    for (int i = 0; i < 1000 && !atomic_load(&queued); i++) nap_ms(10);
    int queued_at_once = atomic_load(&queued);

    /* Drain, so that everything unblocks whatever happened, then check. */
    static drain d;
    d.fd = p[0];
    d.n = 0;
    pthread_t r;
    assert_int_equal(pthread_create(&r, NULL, drain_main, &d), 0);
    pthread_join(t, NULL);
    log_batch_stop();
    dup2(saved_stderr, STDERR_FILENO); /* the pipe's last writer: the reader sees EOF */
    pthread_join(r, NULL);
    close(p[0]);
    assert_true(queued_at_once);
    const char *a = strstr(d.buf, "\"msg\":\"first\""), *b = strstr(d.buf, "\"msg\":\"while blocked\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_stderr, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
