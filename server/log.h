/*
 * log.h — structured logs: one JSON object per line on stderr, with "ts"
 * (RFC 3339 UTC, milliseconds), "level", "msg" and optional fields.
 *
 * LOG(level, msg, fields...) checks the level before anything is formatted.
 * Fields are given as a printf format producing JSON members, e.g.
 *   LOG(LOG_INFO, "listening", "\"port\":%u", port);
 *   LOG(LOG_WARN, "job failed", "\"job_id\":\"%s\",\"error\":%s", id, quoted);
 * Use log_quote to turn untrusted text into a JSON string for a field.
 *
 * Thread-safe: each line is formatted into a local buffer and written with one
 * write(2), so lines from several threads do not interleave. The level is set
 * once at start-up (log_set_level) before threads start.
 */
#ifndef FITD_LOG_H
#define FITD_LOG_H

#include <stddef.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level level);
log_level log_get_level(void);
/* "debug", "info", "warn", "error" -> level; returns -1 if unknown. */
int log_level_from_name(const char *name, log_level *out);
const char *log_level_name(log_level level);

/* Write one line; `fields_fmt` may be NULL or produce comma-separated JSON members
 * (no leading comma). Prefer the LOG macro. */
void log_write(log_level level, const char *msg, const char *fields_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The same, for frequent unimportant lines (the access log): while batching is on
 * (log_batch_start), they are written in batches, at most 50 ms late, always before
 * any later log_write line; otherwise at once. */
void log_write_batched(log_level level, const char *msg, const char *fields_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Start the flusher thread (0, or -1 if it cannot start: lines then go at once);
 * log_batch_stop writes what is queued and stops it. */
int log_batch_start(void);
void log_batch_stop(void);

#define LOG(level, msg, ...)                                                                     \
    do {                                                                                         \
        if ((level) >= log_get_level()) log_write((level), (msg), __VA_ARGS__);                 \
    } while (0)

/* Write `s` as a JSON string literal (with quotes, escaped, truncated to fit) into
 * buf; returns buf. For putting untrusted text into a field. */
char *log_quote(char *buf, size_t size, const char *s);

#endif
