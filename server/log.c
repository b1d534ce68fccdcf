/* log.c — one JSON object per line on stderr (see log.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "log.h"

/* Set once at start-up; atomic so that reading it from any thread is defined. */
static atomic_int log_min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level level) { atomic_store(&log_min_level, (int)level); }

log_level log_get_level(void) { return (log_level)atomic_load(&log_min_level); }

int log_level_from_name(const char *name, log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    return -1;
}

const char *log_level_name(log_level level)
{
    return (level >= LOG_DEBUG && level <= LOG_ERROR) ? level_names[level] : "info";
}

char *log_quote(char *buf, size_t size, const char *s)
{
    size_t n = 0;
    if (size < 3) {
        if (size) buf[0] = 0;
        return buf;
    }
    buf[n++] = '"';
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t k;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            k = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            k = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            k = 6;
        } else {
            esc[0] = (char)c;
            k = 1;
        }
        if (n + k + 2 > size) break; /* room for the closing quote and NUL */
        memcpy(buf + n, esc, k);
        n += k;
    }
    buf[n++] = '"';
    buf[n] = 0;
    return buf;
}

/* RFC 3339 UTC with milliseconds. Computed by hand (days to civil date, Howard
 * Hinnant's algorithm) because gmtime_r takes glibc's time-zone lock, which every
 * request's access-log line would contend for. */
static void format_ts(char *out, size_t size, const struct timespec *now)
{
    long long secs = (long long)now->tv_sec, days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    /* Digits by hand: snprintf was a visible share of each request's log line. */
    const int parts[] = {(int)(year % 10000), (int)month, (int)(day), (int)(rem / 3600),
                         (int)(rem / 60 % 60), (int)(rem % 60), (int)(now->tv_nsec / 1000000L)};
    static const int width[] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[] = "--T::.Z";
    char tmp[32];
    size_t n = 0;
    for (int i = 0; i < 7; i++) {
        for (int k = width[i] - 1, v = parts[i]; k >= 0; k--, v /= 10) tmp[n + (size_t)k] = (char)('0' + v % 10);
        n += (size_t)width[i];
        tmp[n++] = after[i];
    }
    tmp[n] = '\0';
    snprintf(out, size, "%s", tmp);
}

/* One line into `line` (LOG_LINE_MAX bytes, newline-terminated); returns its length. */
#define LOG_LINE_MAX 4096
#if defined(__GNUC__)
__attribute__((format(printf, 4, 0)))
#endif
static size_t format_line(char *line, log_level level, const char *msg, const char *fields_fmt,
                          va_list ap)
{
    char qmsg[512], ts[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    format_ts(ts, sizeof ts, &now);
    int n = snprintf(line, LOG_LINE_MAX, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":%s", ts,
                     log_level_name(level), log_quote(qmsg, sizeof qmsg, msg));
    if (n < 0) return 0;
    size_t len = (size_t)n < LOG_LINE_MAX - 3 ? (size_t)n : LOG_LINE_MAX - 3;
    if (fields_fmt && len + 4 < LOG_LINE_MAX) {
        line[len++] = ',';
        int m = vsnprintf(line + len, LOG_LINE_MAX - len - 2, fields_fmt, ap);
        if (m < 0) m = 0;
        len += (size_t)m < LOG_LINE_MAX - len - 2 ? (size_t)m : LOG_LINE_MAX - len - 3;
        if (m == 0) len--; /* empty fields: drop the comma */
    }
    line[len++] = '}';
    line[len++] = '\n';
    line[len] = 0;
    return len;
}

/* ---------------------------------------------------------------- batched lines
 * The access log is one line per request: at tens of thousands of requests a
 * second, a write(2) each was a fifth of a poll's cost. Its lines are gathered
 * in one buffer (under one lock, so the file keeps their order) and written when
 * the buffer fills, before any other line (so order is kept across kinds), by a
 * flusher at most LOG_FLUSH_MS after they were queued, and when batching stops.
 * Without the flusher (CLI commands, tests of this file) every line goes at once. */
#define LOG_BATCH_BYTES (64 * 1024)
#define LOG_FLUSH_MS 50

/* Two buffers: lines queue in one while the other is written, so a slow stderr (a
 * full pipe) holds up only the writer, not every request thread. write_mu orders
 * the writes and is taken before batch_mu, which guards the queue. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t batch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t batch_cv = PTHREAD_COND_INITIALIZER;
static char bufs[2][LOG_BATCH_BYTES];
static char *batch = bufs[0];
static size_t batch_len;
static int batch_on, batch_stopping;
static pthread_t flusher;

/* A failed log write has nowhere to be reported; a short one is finished. */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* Write the queued lines: swapped out under batch_mu, written outside it. Caller
 * holds write_mu (so the buffer being written is not swapped back in meanwhile)
 * and not batch_mu. */
static void batch_write_out(void)
{
    pthread_mutex_lock(&batch_mu);
    char *out = batch;
    size_t n = batch_len;
    if (n) { /* swap: lines queue in the other buffer while this one is written */
        batch = out == bufs[0] ? bufs[1] : bufs[0];
        batch_len = 0;
    }
    pthread_mutex_unlock(&batch_mu);
    if (n) write_all(out, n);
}

/* Caller holds batch_mu; returns holding it again, with the queue written out. */
static void batch_flush_relocking(void)
{
    pthread_mutex_unlock(&batch_mu);
    pthread_mutex_lock(&write_mu);
    batch_write_out();
    pthread_mutex_unlock(&write_mu);
    pthread_mutex_lock(&batch_mu);
}

/* Sleeps while nothing is queued; once a line is, writes the batch LOG_FLUSH_MS
 * later (or at once when batching stops). */
static void *flusher_main(void *arg)
{
    prctl(PR_SET_NAME, "fitd-log", 0, 0, 0); /* shown by top -H and in /proc */
    (void)arg;
    pthread_mutex_lock(&batch_mu);
    while (!batch_stopping) {
        if (batch_len == 0) {
            pthread_cond_wait(&batch_cv, &batch_mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += LOG_FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!batch_stopping && pthread_cond_timedwait(&batch_cv, &batch_mu, &until) == 0) {
        }
        batch_flush_relocking();
    }
    batch_flush_relocking();
    pthread_mutex_unlock(&batch_mu);
    return NULL;
}

int log_batch_start(void)
{
    pthread_mutex_lock(&batch_mu);
    int rc = 0;
    if (!batch_on) {
        batch_stopping = 0;
        rc = pthread_create(&flusher, NULL, flusher_main, NULL) == 0 ? 0 : -1;
        batch_on = rc == 0;
    }
    pthread_mutex_unlock(&batch_mu);
    return rc;
}

void log_batch_stop(void)
{
    pthread_mutex_lock(&batch_mu);
    int was_on = batch_on;
    batch_on = 0;
    batch_stopping = 1;
    pthread_cond_signal(&batch_cv);
    pthread_mutex_unlock(&batch_mu);
    if (was_on) pthread_join(flusher, NULL); /* it flushes what is left */
}

static void emit(const char *line, size_t len, int batched)
{
    if (batched) {
        pthread_mutex_lock(&batch_mu);
        if (batch_on) {
            while (batch_len + len > LOG_BATCH_BYTES) batch_flush_relocking();
            if (batch_len == 0) pthread_cond_signal(&batch_cv); /* start the flusher's clock */
            memcpy(batch + batch_len, line, len);
            batch_len += len;
            pthread_mutex_unlock(&batch_mu);
            return;
        }
        pthread_mutex_unlock(&batch_mu);
    }
    pthread_mutex_lock(&write_mu);
    batch_write_out();     /* the lines queued before this one go first */
    write_all(line, len); /* one write(2): lines never interleave */
    pthread_mutex_unlock(&write_mu);
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 0)))
#endif
static void write_line(int batched, log_level level, const char *msg, const char *fields_fmt,
                       va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len = format_line(line, level, msg, fields_fmt, ap);
    if (len) emit(line, len, batched);
}

void log_write(log_level level, const char *msg, const char *fields_fmt, ...)
{
    va_list ap;
    va_start(ap, fields_fmt);
    write_line(0, level, msg, fields_fmt, ap);
    va_end(ap);
}

void log_write_batched(log_level level, const char *msg, const char *fields_fmt, ...)
{
    va_list ap;
    va_start(ap, fields_fmt);
    write_line(1, level, msg, fields_fmt, ap);
    va_end(ap);
}
