/*
 * test_tls.c — --tls-cert / --tls-key against a real fitd: a self-signed
 * certificate for 127.0.0.1 is generated at run time with the openssl CLI (the
 * `openssl` Debian package); libcurl verifies it as the CA. HTTPS works (with
 * authentication too), plain HTTP to the TLS port gets no HTTP answer, a client
 * that does not trust the certificate refuses it, and bad TLS settings stop
 * fitd at start-up with a message naming the flag and file.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "support.h"

#define TOKEN "tls-test-token-0123456789"

static char tmpdir[512];
static char cert[600], key[600], other_cert[600], other_key[600], tokens[600];

/* Run argv with stdout/stderr to /dev/null; the exit status or -1. */
static int run_quiet(const char *const *argv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A self-signed certificate for 127.0.0.1 (and localhost), valid for a day. */
static int make_cert(const char *cert_path, const char *key_path)
{
    const char *argv[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                          "-keyout", key_path, "-out", cert_path, "-days", "1",
                          "-subj", "/CN=localhost",
                          "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL};
    return run_quiet(argv);
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/fitd-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    snprintf(key, sizeof key, "%s/key.pem", tmpdir);
    snprintf(other_cert, sizeof other_cert, "%s/other-cert.pem", tmpdir);
    snprintf(other_key, sizeof other_key, "%s/other-key.pem", tmpdir);
    snprintf(tokens, sizeof tokens, "%s/tokens", tmpdir);
    if (make_cert(cert, key) != 0 || make_cert(other_cert, other_key) != 0) {
        fprintf(stderr, "cannot generate a certificate: the openssl CLI is needed "
                        "(Debian package openssl, tests/deps.sh test group)\n");
        return -1;
    }
    const char *t = TOKEN " tls-tenant\n";
    return it_write_file(tokens, t, strlen(t), 0);
}

static int group_teardown(void **state)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return tmpdir[0] && system(cmd) == 0 ? 0 : -1;
}

/* Start fitd over HTTPS with the generated certificate (and extra args). */
static void start_tls(it_server *s, const char *extra1, const char *extra2)
{
    memset(s, 0, sizeof *s);
    s->tls = 1;
    snprintf(s->ca_file, sizeof s->ca_file, "%s", cert);
    const char *args[] = {"--workers", "1", "--tls-cert", cert, "--tls-key", key, extra1, extra2,
                          NULL};
    assert_int_equal(it_start(s, args), 0); /* its /healthz probe is already HTTPS */
}

static void test_https_works(void **state)
{
    it_server s;
    start_tls(&s, NULL, NULL);
    it_resp r;
    assert_int_equal(it_get(&s, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    it_resp_free(&r);
    const char *ds = "{\"name\":\"t\",\"x\":[[1],[2]],\"y\":[0,1]}";
    assert_int_equal(it_post_json(&s, "/v1/datasets", ds, &r), 0);
    assert_int_equal(r.status, 201);
    it_resp_free(&r);
    assert_int_equal(it_get(&s, "/v1/datasets", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"name\":\"t\""));
    it_resp_free(&r);

    /* Plain HTTP to the TLS port: no HTTP response comes back. */
    it_server plain = s;
    plain.tls = 0;
    int rc = it_get(&plain, "/healthz", &r);
    if (rc == 0) fail_msg("plain HTTP to the TLS port was answered %ld: %s", r.status, r.body);
    it_resp_free(&r);

    /* A client that trusts another certificate refuses this one. */
    it_server wrong_ca = s;
    snprintf(wrong_ca.ca_file, sizeof wrong_ca.ca_file, "%s", other_cert);
    assert_int_not_equal(it_get(&wrong_ca, "/healthz", &r), 0);
    it_resp_free(&r);

    /* The server still serves after both failed handshakes. */
    assert_int_equal(it_get(&s, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    it_resp_free(&r);
    assert_int_equal(it_stop(&s), 0);
}

/* TLS and bearer tokens together; the env twins name the files. */
static void test_https_with_auth_and_env(void **state)
{
    it_server s;
    memset(&s, 0, sizeof s);
    s.tls = 1;
    snprintf(s.ca_file, sizeof s.ca_file, "%s", cert);
    setenv("FITD_TLS_CERT", cert, 1);
    setenv("FITD_TLS_KEY", key, 1);
    const char *args[] = {"--workers", "1", "--auth-tokens", tokens, NULL};
    int rc = it_start(&s, args);
    unsetenv("FITD_TLS_CERT");
    unsetenv("FITD_TLS_KEY");
    assert_int_equal(rc, 0);
    it_resp r;
    assert_int_equal(it_get(&s, "/v1/jobs", &r), 0);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.www_authenticate, "Bearer realm=\"fitd\"");
    it_resp_free(&r);
    it_server t = it_as(&s, TOKEN);
    assert_int_equal(it_get(&t, "/v1/jobs", &r), 0);
    assert_int_equal(r.status, 200);
    it_resp_free(&r);
    assert_int_equal(it_stop(&s), 0);
}

/* Bad TLS settings: exit status (2 for flags and files, 1 when the TLS library
 * refuses the pair) and a message naming what is wrong. */
static void test_bad_tls_settings(void **state)
{
    char db[700], missing[700], not_pem[700];
    snprintf(db, sizeof db, "%s/never.db", tmpdir);
    snprintf(missing, sizeof missing, "%s/missing.pem", tmpdir);
    snprintf(not_pem, sizeof not_pem, "%s/not.pem", tmpdir);
    assert_int_equal(it_write_file(not_pem, "hello\n", 6, 0), 0);
    static const char *const base[] = {"serve", "--listen", "127.0.0.1:0", "--db", NULL};
    const struct {
        const char *a[4];
        int exit;
        const char *want1, *want2;
    } cases[] = {
        {{"--tls-cert", cert, NULL, NULL}, 2, "--tls-cert is given without --tls-key", ""},
        {{"--tls-key", key, NULL, NULL}, 2, "--tls-key is given without --tls-cert", ""},
        {{"--tls-cert", missing, "--tls-key", key}, 2, "--tls-cert", missing},
        {{"--tls-cert", cert, "--tls-key", missing}, 2, "--tls-key", missing},
        {{"--tls-cert", not_pem, "--tls-key", key}, 2, "not a PEM file", not_pem},
        {{"--tls-cert", tmpdir, "--tls-key", key}, 2, "not a regular", tmpdir},
        /* A key that is not the certificate's: GnuTLS refuses the pair. */
        {{"--tls-cert", cert, "--tls-key", other_key}, 1, "TLS certificate and key were refused",
         ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[16];
        int n = 0;
        for (int k = 0; base[k]; k++) args[n++] = base[k];
        args[n++] = db;
        for (int k = 0; k < 4 && cases[i].a[k]; k++) args[n++] = cases[i].a[k];
        args[n] = NULL;
        char *out = NULL;
        int rc = it_run_fitd(args, &out);
        if (rc != cases[i].exit || !strstr(out, cases[i].want1) || !strstr(out, cases[i].want2))
            fail_msg("case %zu: exit %d (want %d), output: %s", i, rc, cases[i].exit, out);
        /* The private key's text is never echoed. */
        assert_null(strstr(out, "PRIVATE KEY"));
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_works),
        cmocka_unit_test(test_https_with_auth_and_env),
        cmocka_unit_test(test_bad_tls_settings),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
