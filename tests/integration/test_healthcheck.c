/*
 * test_healthcheck.c — `fitd healthcheck` as a container's HEALTHCHECK runs it:
 * exit 0 against a live fitd (explicit --url, and the URL derived from
 * FITD_LISTEN with a wildcard host), 1 once it is stopped, 1 for a non-200 status,
 * a non-HTTP reply and a server that never answers (bounded by --timeout), 2 with
 * a message for bad URLs and arguments. A one-shot fake server checks the request
 * it sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "support.h"

/* Run `fitd healthcheck ARGS...`; *out receives the output (caller frees). */
static int healthcheck(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *args[] = {"healthcheck", a1, a2, a3, a4, NULL};
    return it_run_fitd(args, out);
}

/* A listening loopback socket on an ephemeral port; *port receives the port. */
static int listen_loopback(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Fork a server that accepts one connection, reads the request head and sends
 * `reply` — or "HTTP/1.0 400 Bad Request" when the request is not the GET fitd
 * healthcheck must send for http://127.0.0.1:PORT/healthz. Returns its pid. */
static pid_t fake_server(const char *reply, unsigned *port)
{
    int lfd = listen_loopback(port);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(lfd);
        return pid;
    }
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) _exit(1);
    char req[2048], host[64];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = read(fd, req + got, sizeof req - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    req[got] = 0;
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%u\r\n", *port);
    int ok = strncmp(req, "GET /healthz HTTP/1.0\r\n", 23) == 0 && strstr(req, host) &&
             strstr(req, "\r\n\r\n");
    const char *r = ok ? reply : "HTTP/1.0 400 Bad Request\r\n\r\n";
    ssize_t w = write(fd, r, strlen(r));
    close(fd);
    _exit(w == (ssize_t)strlen(r) ? 0 : 1);
}

static void reap(pid_t pid)
{
    int st = 0;
    kill(pid, SIGKILL); /* no-op when it already exited */
    waitpid(pid, &st, 0);
}

static void test_live_then_stopped(void **state)
{
    (void)state;
    it_server s = {0};
    char url[128], bad_path[128], listen[64], *out = NULL;
    assert_int_equal(it_start(&s, NULL), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", s.port);
    snprintf(bad_path, sizeof bad_path, "http://127.0.0.1:%u/no-such-path", s.port);

    assert_int_equal(healthcheck(&out, "--url", url, NULL, NULL), 0);
    assert_string_equal(out, ""); /* silent when healthy */
    free(out);

    /* --url=URL form, and localhost resolved by name. */
    char by_name[160];
    snprintf(by_name, sizeof by_name, "--url=http://localhost:%u/healthz", s.port);
    assert_int_equal(healthcheck(&out, by_name, NULL, NULL, NULL), 0);
    free(out);

    /* No --url: FITD_LISTEN as the container sets it (wildcard host -> loopback). */
    snprintf(listen, sizeof listen, "0.0.0.0:%u", s.port);
    setenv("FITD_LISTEN", listen, 1);
    int rc = healthcheck(&out, NULL, NULL, NULL, NULL);
    unsetenv("FITD_LISTEN");
    if (rc != 0) fprintf(stderr, "healthcheck said: %s\n", out);
    assert_int_equal(rc, 0);
    free(out);

    /* Another status than 200 is unhealthy. */
    assert_int_equal(healthcheck(&out, "--url", bad_path, NULL, NULL), 1);
    assert_non_null(strstr(out, "HTTP 404"));
    free(out);

    assert_int_equal(it_stop(&s), 0);
    assert_int_equal(healthcheck(&out, "--url", url, NULL, NULL), 1);
    assert_non_null(strstr(out, "unhealthy"));
    assert_non_null(strstr(out, "refused"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* exactly one line */
    free(out);
}

static void test_fake_servers(void **state)
{
    (void)state;
    struct {
        const char *reply;
        int rc;
        const char *says; /* in the output, or NULL for silence */
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, NULL},
        {"HTTP/1.0 200 OK\r\n\r\n", 0, NULL},
        {"HTTP/1.1 503 Service Unavailable\r\n\r\n", 1, "HTTP 503"},
        {"HTTP/1.1 204 No Content\r\n\r\n", 1, "HTTP 204"},
        {"SSH-2.0-OpenSSH_9.2\r\n", 1, "not an HTTP reply"},
        {"HTTP/1.1 2x0 OK\r\n\r\n", 1, "not an HTTP reply"},
        {"", 1, "connection closed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned port = 0;
        char listen[64], *out = NULL;
        pid_t pid = fake_server(cases[i].reply, &port);
        /* Through FITD_LISTEN: the fake checks the Host header and the path. */
        snprintf(listen, sizeof listen, ":%u", port);
        setenv("FITD_LISTEN", listen, 1);
        int rc = healthcheck(&out, NULL, NULL, NULL, NULL);
        unsetenv("FITD_LISTEN");
        reap(pid);
        if (rc != cases[i].rc) fprintf(stderr, "case %zu: exit %d, output: %s\n", i, rc, out);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].says)
            assert_non_null(strstr(out, cases[i].says));
        else
            assert_string_equal(out, "");
        free(out);
    }
}

/* A server that accepts the connection (the kernel does) but never answers: the
 * check gives up after --timeout, not after the container's own timeout. */
static void test_timeout(void **state)
{
    (void)state;
    unsigned port = 0;
    char url[128], *out = NULL;
    int lfd = listen_loopback(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", port);
    double t0 = it_now_s();
    int rc = healthcheck(&out, "--url", url, "--timeout", "0.5");
    double took = it_now_s() - t0;
    close(lfd);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "timed out"));
    assert_true(took >= 0.4);
    assert_true(took < 2.5);
    free(out);
}

static void test_bad_usage(void **state)
{
    (void)state;
    static const char *const bad_urls[] = {
        "https://127.0.0.1:8080/healthz", "127.0.0.1:8080/healthz", "http://",
        "http://127.0.0.1:0/healthz", "http://127.0.0.1:65536/", "http://127.0.0.1:80x/",
        "http://user@127.0.0.1/", "http://[::1/", "http://::1:8080/", "http://h/a b",
    };
    char *out = NULL;
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        int rc = healthcheck(&out, "--url", bad_urls[i], NULL, NULL);
        if (rc != 2) fprintf(stderr, "%s: exit %d, output: %s\n", bad_urls[i], rc, out);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, "bad URL"));
        free(out);
    }
    assert_int_equal(healthcheck(&out, "--bogus", NULL, NULL, NULL), 2);
    assert_non_null(strstr(out, "unknown argument"));
    free(out);
    assert_int_equal(healthcheck(&out, "--url", NULL, NULL, NULL), 2);
    assert_non_null(strstr(out, "needs a value"));
    free(out);
    assert_int_equal(healthcheck(&out, "--timeout", "-1", NULL, NULL), 2);
    assert_non_null(strstr(out, "--timeout"));
    free(out);
    setenv("FITD_LISTEN", "no-port-here", 1);
    int rc = healthcheck(&out, NULL, NULL, NULL, NULL);
    unsetenv("FITD_LISTEN");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "FITD_LISTEN"));
    free(out);
    assert_int_equal(healthcheck(&out, "--help", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "usage: fitd healthcheck"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_then_stopped),
        cmocka_unit_test(test_fake_servers),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_bad_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
