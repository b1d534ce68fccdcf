/*
 * cmd_healthcheck.c — `fitd healthcheck [--url URL] [--timeout SECONDS]`: ask a
 * running fitd's GET /healthz and exit 0 when it answers 200, 1 otherwise
 * (refused, timed out, any other status), 2 on a usage error. Made for a
 * container's HEALTHCHECK, where the image has no curl: one HTTP/1.0 GET over a
 * plain TCP socket, with the whole exchange bounded by the timeout (3 s).
 *
 * The default URL comes from FITD_LISTEN, the same variable `fitd serve` reads:
 * HOST:PORT -> http://HOST:PORT/healthz, with a wildcard host (0.0.0.0, ::, empty)
 * replaced by the loopback address of its family.
 *
 * What it does not: TLS (a server started with --tls-cert is not reachable this
 * way), redirects, or reading the body; only the status line counts. Silent on
 * success; one line on stderr on failure.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"

static const char hc_usage[] =
    "usage: fitd healthcheck [--url http://HOST:PORT/PATH] [--timeout SECONDS]\n"
    "Asks a running fitd's /healthz: exit 0 on HTTP 200, 1 otherwise, 2 on bad usage.\n"
    "The default URL is built from FITD_LISTEN [127.0.0.1:8080] (a wildcard host\n"
    "becomes the loopback address); the default timeout is 3 seconds.\n";

/* A parsed http:// URL. host has no brackets (an IPv6 literal is bare). */
typedef struct hc_url {
    char host[256];
    char port[8];
    char path[1024];
} hc_url;

/* Milliseconds left before `deadline` (at least 0). */
static int hc_left_ms(double deadline)
{
    double left = (deadline - clock_mono_s()) * 1000.0;
    return left > 0 ? (int)left + 1 : 0;
}

/* "PORT": 1..65535, digits only. Copies it into out (8 bytes). 0 or -1. */
static int hc_port_copy(const char *s, size_t len, char out[8])
{
    if (len == 0 || len > 5) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) return -1;
    snprintf(out, 8, "%ld", v);
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" -> host and port; an empty host is left empty. */
static int hc_hostport_parse(const char *s, size_t len, hc_url *u, int need_port)
{
    const char *host = s, *colon = NULL;
    size_t host_len;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close) return -1;
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':') return -1;
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        host_len = colon ? (size_t)(colon - s) : len;
        if (colon && memchr(colon + 1, ':', len - host_len - 1)) return -1; /* bare v6 */
    }
    if (host_len >= sizeof u->host) return -1;
    memcpy(u->host, host, host_len);
    u->host[host_len] = 0;
    if (colon) return hc_port_copy(colon + 1, (size_t)(s + len - colon - 1), u->port);
    if (need_port) return -1;
    snprintf(u->port, sizeof u->port, "80");
    return 0;
}

/* "http://HOST[:PORT][/PATH]" -> *u. Only http; no user info, no fragment. */
static int hc_url_parse(const char *url, hc_url *u, const char **why)
{
    static const char scheme[] = "http://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        *why = strncmp(url, "https://", 8) == 0 ? "https is not supported (plain HTTP only)"
                                                : "the URL must start with http://";
        return -1;
    }
    const char *auth = url + sizeof scheme - 1;
    size_t auth_len = strcspn(auth, "/?#");
    const char *rest = auth + auth_len;
    if (memchr(auth, '@', auth_len) || strchr(url, '#') || strpbrk(url, " \t\r\n")) {
        *why = "the URL has characters or parts that are not supported";
        return -1;
    }
    if (hc_hostport_parse(auth, auth_len, u, 0) != 0 || !u->host[0]) {
        *why = "expected http://HOST[:PORT][/PATH] with a port in 1..65535";
        return -1;
    }
    int n = snprintf(u->path, sizeof u->path, "%s%s", rest[0] == '/' ? "" : "/", rest);
    if (n < 0 || (size_t)n >= sizeof u->path) {
        *why = "the URL's path is too long";
        return -1;
    }
    return 0;
}

/* The URL `fitd serve` listens on according to FITD_LISTEN. */
static int hc_url_from_env(hc_url *u, const char **why)
{
    const char *listen = getenv("FITD_LISTEN");
    if (!listen || !*listen) listen = "127.0.0.1:8080";
    if (hc_hostport_parse(listen, strlen(listen), u, 1) != 0) {
        *why = "FITD_LISTEN is not HOST:PORT with a port in 1..65535";
        return -1;
    }
    if (!u->host[0] || strcmp(u->host, "0.0.0.0") == 0 || strcmp(u->host, "*") == 0)
        snprintf(u->host, sizeof u->host, "127.0.0.1");
    else if (strcmp(u->host, "::") == 0)
        snprintf(u->host, sizeof u->host, "::1");
    snprintf(u->path, sizeof u->path, "/healthz");
    return 0;
}

/* Connect to one address within the deadline; the socket, or -1 with errno set. */
static int hc_connect(const struct addrinfo *ai, double deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) goto fail;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int rc;
    while ((rc = poll(&p, 1, hc_left_ms(deadline))) < 0 && errno == EINTR) {
    }
    if (rc == 0) {
        errno = ETIMEDOUT;
        goto fail;
    }
    if (rc < 0) goto fail;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) goto fail;
    if (soerr != 0) {
        errno = soerr;
        goto fail;
    }
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Wait until fd is ready for `events` or the deadline passes: 0, or -1 (errno). */
static int hc_wait(int fd, short events, double deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    while ((rc = poll(&p, 1, hc_left_ms(deadline))) < 0 && errno == EINTR) {
    }
    if (rc == 0) errno = ETIMEDOUT;
    return rc > 0 ? 0 : -1;
}

/* GET the URL and return the HTTP status (100..599), or -1 with a reason in why. */
static int hc_get_status(const hc_url *u, double deadline, char *why, size_t why_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int fd = -1, status = -1, err = 0;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_len, "cannot resolve %s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    for (const struct addrinfo *ai = res; ai && fd < 0 && hc_left_ms(deadline) > 0;
         ai = ai->ai_next) {
        fd = hc_connect(ai, deadline);
        if (fd < 0) err = errno;
    }
    if (fd < 0) {
        snprintf(why, why_len, "cannot connect: %s", strerror(err ? err : ETIMEDOUT));
        goto out;
    }

    /* IPv6 literals go back into brackets in the Host header. */
    int v6 = strchr(u->host, ':') != NULL;
    char req[1400];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: %s%s%s:%s\r\nUser-Agent: fitd-healthcheck\r\n"
                     "Connection: close\r\n\r\n",
                     u->path, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(why, why_len, "the request does not fit");
        goto out;
    }
    for (size_t sent = 0; sent < (size_t)n;) {
        ssize_t w = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            hc_wait(fd, POLLOUT, deadline) == 0)
            continue;
        snprintf(why, why_len, "cannot send the request: %s", strerror(errno));
        goto out;
    }

    /* Read until the status line is complete: "HTTP/1.x SSS ...\r\n". */
    char line[128];
    size_t got = 0;
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        ssize_t r = recv(fd, line + got, sizeof line - 1 - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) break;
        if (errno == EINTR) continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && hc_wait(fd, POLLIN, deadline) == 0)
            continue;
        snprintf(why, why_len, "no reply: %s", strerror(errno));
        goto out;
    }
    line[got] = 0;
    if (strncmp(line, "HTTP/1.", 7) != 0 || got < 12 || line[8] != ' ' || line[9] < '1' ||
        line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9') {
        snprintf(why, why_len, "not an HTTP reply%s", got ? "" : " (connection closed)");
        goto out;
    }
    status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
out:
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return status;
}

int cmd_healthcheck(int argc, char **argv)
{
    const char *url_arg = NULL, *why = NULL;
    double timeout_s = 3.0;
    hc_url u;
    memset(&u, 0, sizeof u);

    /* argv[0] is "healthcheck". Plain loop: no getopt state to reset. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(hc_usage, stdout);
            return 0;
        }
        int is_url = strncmp(a, "--url", 5) == 0 && (a[5] == 0 || a[5] == '=');
        int is_timeout = strncmp(a, "--timeout", 9) == 0 && (a[9] == 0 || a[9] == '=');
        if (!is_url && !is_timeout) {
            fprintf(stderr, "fitd healthcheck: unknown argument '%s'\n%s", a, hc_usage);
            return 2;
        }
        const char *eq = strchr(a, '=');
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "fitd healthcheck: %s needs a value\n", a);
            return 2;
        }
        if (is_url) {
            url_arg = val;
        } else {
            char *end = NULL;
            errno = 0;
            timeout_s = strtod(val, &end);
            if (errno || end == val || *end || !(timeout_s > 0 && timeout_s <= 3600)) {
                fprintf(stderr,
                        "fitd healthcheck: --timeout must be a number of seconds in (0, 3600]\n");
                return 2;
            }
        }
    }
    if (url_arg ? hc_url_parse(url_arg, &u, &why) : hc_url_from_env(&u, &why)) {
        const char *env = getenv("FITD_LISTEN");
        fprintf(stderr, "fitd healthcheck: bad %s '%s': %s\n", url_arg ? "URL" : "FITD_LISTEN",
                url_arg ? url_arg : env ? env : "", why);
        return 2;
    }

    char reason[320];
    int status = hc_get_status(&u, clock_mono_s() + timeout_s, reason, sizeof reason);
    if (status == 200) return 0;
    if (status > 0) snprintf(reason, sizeof reason, "HTTP %d", status);
    fprintf(stderr, "fitd healthcheck: unhealthy: http://%s%s%s:%s%s: %s\n",
            strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "", u.port, u.path,
            reason);
    return 1;
}
