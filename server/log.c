/* log.c — one JSON object per line on stderr (see log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

void log_write(log_level level, const char *msg, const char *fields_fmt, ...)
{
    char line[4096], qmsg[512], ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t t = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + t, sizeof ts - t, ".%03ldZ", now.tv_nsec / 1000000L);
    int n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":%s", ts,
                     log_level_name(level), log_quote(qmsg, sizeof qmsg, msg));
    if (n < 0) return;
    size_t len = (size_t)n < sizeof line - 3 ? (size_t)n : sizeof line - 3;
    if (fields_fmt && len + 4 < sizeof line) {
        line[len++] = ',';
        va_list ap;
        va_start(ap, fields_fmt);
        int m = vsnprintf(line + len, sizeof line - len - 2, fields_fmt, ap);
        va_end(ap);
        if (m < 0) m = 0;
        len += (size_t)m < sizeof line - len - 2 ? (size_t)m : sizeof line - len - 3;
        if (m == 0) len--; /* empty fields: drop the comma */
    }
    line[len++] = '}';
    line[len++] = '\n';
    line[len] = 0;
    fputs(line, stderr);
}
