/* log.c — one JSON object per line on stderr (see log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

void log_write(log_level level, const char *msg, const char *fields_fmt, ...)
{
    char line[4096], qmsg[512], ts[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    format_ts(ts, sizeof ts, &now);
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
    /* One write(2) per line: lines from many threads never interleave, and no
     * stdio lock is taken. A failed log write has nowhere to be reported. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
